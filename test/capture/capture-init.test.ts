// `thoughtgate capture-init` for real: the built CLI installs its rules with the real iptables
// (nft and legacy backends, each in its own network namespace) and connections made as different
// uids show what passes. Per backend: a pod netns joined by a veth to an upstream netns whose
// listeners answer "upstream <address>:<port>" (TCP) or "udp <address>" (UDP 53); in the pod
// netns a stand-in sidecar answers "sidecar <port>" on 127.0.0.1 and ::1, ports 7470 and 7471.
// Needs root (ip netns, iptables, setpriv): the machine's tools come from scripts/net-tools.sh.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SIDECAR_UID } from '../../api/capture.js';
import { CaptureStateSchema } from '../../api/capture-state.js';
import { CLI, type Proc, run } from '../support/processes.js';

const AGENT_UID = 4242;
const BACKENDS = ['nft', 'legacy'] as const;
const id = [...randomBytes(4)].map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
const subnet = 1 + (randomBytes(1)[0]! % 250);
const dir = mkdtempSync(join(tmpdir(), 'tg-capture-init-'));
const procs: Proc[] = [];
/** Directories to delete in afterAll (besides `dir`). */
const cleanup: string[] = [];
const namespaces: string[] = [];
/** Wall-clock and in-process (state.durationMs) times of capture-init runs, per backend. */
const timings: Record<string, { wallMs: number[]; durationMs: number[] }> = {};

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const inNs = (ns: string, cmd: string, ...args: string[]) =>
  execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

// Upstream: TCP on every port the tests dial, dual-stack; UDP 53 answers each datagram.
const UPSTREAM = `
const net = require('node:net'), dgram = require('node:dgram');
const plain = (a) => a.replace(/^::ffff:/, '');
const ports = [53, 80, 443, 5432, 8080, 9000];
// UDP: one socket per address, so each reply leaves from the address the query went to.
const addresses = JSON.parse(process.argv[1]);
let pending = ports.length + addresses.length;
const up = () => { if (--pending === 0) console.log('ready'); };
for (const port of ports)
  net.createServer((s) => s.end('upstream ' + plain(s.localAddress) + ':' + port)).listen({ port, host: '::', ipv6Only: false }, up);
for (const a of addresses) {
  const u = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
  u.on('message', (m, r) => u.send('udp', r.port, r.address));
  u.bind(53, a, up);
}
`;

// The pod: the stand-in sidecar on loopback (where REDIRECT delivers), and a pod-wide listener.
const POD = `
const net = require('node:net');
const binds = [['127.0.0.1', 7470], ['::1', 7470], ['127.0.0.1', 7471], ['::1', 7471], ['::', 7480]];
let pending = binds.length;
for (const [host, port] of binds)
  net.createServer((s) => s.end((port === 7480 ? 'pod ' : 'sidecar ') + port)).listen({ port, host }, () => { if (--pending === 0) console.log('ready'); });
`;

// One process per uid and batch: every probe at once, the results as JSON in the same order.
const PROBE = `
const net = require('node:net'), dgram = require('node:dgram');
const probes = JSON.parse(process.argv[1]);
const one = ([proto, host, port]) => new Promise((resolve) => {
  const timer = setTimeout(() => resolve('timeout'), 2000);
  const done = (r) => { clearTimeout(timer); resolve(r); };
  if (proto === 'udp') {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.on('error', (e) => { done('error ' + e.code); s.close(); });
    s.on('message', (m) => { done(String(m)); s.close(); });
    s.connect(port, host, () => s.send('q'));
    return;
  }
  let data = '';
  const s = net.connect({ host, port });
  s.on('data', (d) => { data += d; });
  s.on('end', () => done(data));
  s.on('error', (e) => done('error ' + e.code));
});
Promise.all(probes.map(one)).then((r) => { console.log(JSON.stringify(r)); process.exit(0); });
`;

type Probe = [proto: 'tcp' | 'udp', host: string, port: number];

async function waitReady(p: Proc, what: string): Promise<void> {
  const until = Date.now() + 15_000;
  while (!p.out().includes('ready')) {
    if (p.child.exitCode !== null) throw new Error(`${what} exited: ${p.err()}`);
    if (Date.now() > until) throw new Error(`${what} not ready: ${p.err()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Pair {
  pod: string;
  upstream: string;
  v4: (host: number) => string;
  v6: (host: number) => string;
}

/** A pod netns and an upstream netns joined by a veth: pod .1, upstream .2–.5 (IPv4 /29, IPv6 /64). */
async function pair(n: number): Promise<Pair> {
  const pod = `tgt${id}-p${n}`;
  const upstream = `tgt${id}-u${n}`;
  const v4 = (h: number) => `10.214.${(subnet + n) % 256}.${h}`;
  const v6 = (h: number) => `fd74:6700:${((subnet + n) % 256).toString(16)}::${h}`;
  for (const ns of [pod, upstream]) {
    ip('netns', 'add', ns);
    namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  ip('link', 'add', `tgt${id}p${n}`, 'netns', pod, 'type', 'veth', 'peer', 'name', `tgt${id}u${n}`, 'netns', upstream);
  ip('-n', pod, 'addr', 'add', `${v4(1)}/29`, 'dev', `tgt${id}p${n}`);
  ip('-n', pod, '-6', 'addr', 'add', `${v6(1)}/64`, 'dev', `tgt${id}p${n}`, 'nodad');
  for (const h of [2, 3, 4, 5]) {
    ip('-n', upstream, 'addr', 'add', `${v4(h)}/29`, 'dev', `tgt${id}u${n}`);
    ip('-n', upstream, '-6', 'addr', 'add', `${v6(h)}/64`, 'dev', `tgt${id}u${n}`, 'nodad');
  }
  ip('-n', pod, 'link', 'set', `tgt${id}p${n}`, 'up');
  ip('-n', upstream, 'link', 'set', `tgt${id}u${n}`, 'up');
  const up = run('ip', ['netns', 'exec', upstream, process.execPath, '-e', UPSTREAM, JSON.stringify([2, 3, 4, 5].flatMap((h) => [v4(h), v6(h)]))]);
  const local = run('ip', ['netns', 'exec', pod, process.execPath, '-e', POD]);
  procs.push(up, local);
  await Promise.all([waitReady(up, 'upstream listeners'), waitReady(local, 'pod listeners')]);
  return { pod, upstream, v4, v6 };
}

async function probe(ns: string, uid: number, probes: Probe[]): Promise<string[]> {
  const p = run('ip', [
    'netns',
    'exec',
    ns,
    'setpriv',
    '--reuid',
    String(uid),
    '--regid',
    String(uid),
    '--clear-groups',
    process.execPath,
    '-e',
    PROBE,
    JSON.stringify(probes),
  ]);
  const code = await p.exited;
  if (code !== 0) throw new Error(`probe as ${uid} exited ${code}: ${p.err()}`);
  return JSON.parse(p.out()) as string[];
}

/** Each probe with its result, so a failure shows which connection went where. */
async function outcomes(ns: string, uid: number, expected: [Probe, string][]): Promise<void> {
  const got = await probe(
    ns,
    uid,
    expected.map(([p]) => p),
  );
  expect(expected.map(([p], i) => `${p.join(' ')} → ${got[i]}`)).toEqual(expected.map(([p, want]) => `${p.join(' ')} → ${want}`));
}

async function captureInit(ns: string, args: string[]): Promise<{ code: number | null; out: string; err: string; wallMs: number }> {
  const started = performance.now();
  const p = run('ip', ['netns', 'exec', ns, process.execPath, CLI, 'capture-init', ...args]);
  const code = await p.exited;
  return { code, out: p.out(), err: p.err(), wallMs: performance.now() - started };
}

/** Both families' rules of one backend, without comments and counters (legacy-save prints live counters). */
function saved(ns: string, backend: string): string {
  return ['iptables', 'ip6tables']
    .map((t) => inNs(ns, `${t}-${backend}-save`))
    .join('\n')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]$/, '[0:0]'))
    .join('\n');
}

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  for (const ns of namespaces) {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* already gone */
    }
  }
  for (const d of [dir, ...cleanup]) rmSync(d, { recursive: true, force: true });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]?.toFixed(1);
  for (const [b, t] of Object.entries(timings))
    process.stdout.write(`capture-init ${b}: median wall ${median(t.wallMs)} ms, in-process ${median(t.durationMs)} ms (${t.wallMs.length} runs)\n`);
});

describe.each(BACKENDS.map((b, i) => [b, i] as const))('capture-init with the %s backend', (backend, n) => {
  let net: Pair;
  const state = join(dir, `${backend}/state.json`);
  const resolv = join(dir, `${backend}.resolv.conf`);
  const flags = () => [
    '--backend',
    backend,
    '--redirect-ports',
    '80,8080',
    '--resolv-conf',
    resolv,
    '--allow',
    `${net.v4(5)}/32:5432`,
    '--allow',
    `${net.v6(5)}/128:5432`,
    // An exception on a redirected port: the sidecar still decides there.
    '--allow',
    `${net.v4(4)}/32:80,${net.v6(4)}/128:80`,
    '--state-file',
    state,
  ];
  const install = async (extra: string[] = []) => {
    const r = await captureInit(net.pod, [...flags(), ...extra]);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    const s = CaptureStateSchema().parse(JSON.parse(readFileSync(state, 'utf8')));
    const t = timings[backend] ?? { wallMs: [], durationMs: [] };
    timings[backend] = t;
    t.wallMs.push(r.wallMs);
    t.durationMs.push(s.durationMs);
    return s;
  };

  beforeAll(async () => {
    net = await pair(n);
    writeFileSync(resolv, `search cluster.local\nnameserver ${net.v4(3)}\nnameserver ${net.v6(3)}\noptions ndots:5\n`);
  }, 60_000);

  it('installs without --tls-port: state written, 443 rejected', async () => {
    const s = await install();
    expect(s).toMatchObject({
      version: 1,
      backend,
      families: ['ipv4', 'ipv6'],
      spec: { uid: SIDECAR_UID, redirectPorts: [80, 8080], transparentPort: 7470, tlsPort: null, dns: 'resolv' },
    });
    await outcomes(net.pod, AGENT_UID, [
      [['tcp', net.v4(2), 443], 'error ECONNREFUSED'],
      [['tcp', net.v6(2), 443], 'error ECONNREFUSED'],
      [['tcp', net.v4(2), 80], 'sidecar 7470'],
    ]);
  });

  it('--dry-run prints the rules and changes nothing', async () => {
    const before = saved(net.pod, backend);
    const r = await captureInit(net.pod, [...flags(), '--tls-port', '7471', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('-A TG_CAPTURE -p tcp --dport 443 -j REDIRECT --to-ports 7471');
    expect(r.out).toContain(`-A TG_CAPTURE -d ${net.v6(3)}/128 -p udp --dport 53 -j ACCEPT`);
    expect(r.out.match(/^\*nat$/gm)).toHaveLength(2);
    expect(saved(net.pod, backend)).toBe(before);
    expect(before).not.toContain('7471');
  });

  it('re-installs with --tls-port, and again: the same rules (idempotent)', async () => {
    const first = await install(['--tls-port', '7471']);
    const rules = saved(net.pod, backend);
    expect(rules.match(/^-A OUTPUT -j TG_CAPTURE$/gm)).toHaveLength(4); // nat and filter, two families
    const again = await install(['--tls-port', '7471']);
    expect(saved(net.pod, backend)).toBe(rules);
    expect(again.rulesHash).toBe(first.rulesHash);
    for (let i = 0; i < 3; i++) await install(['--tls-port', '7471']);
    expect(saved(net.pod, backend)).toBe(rules);
  });

  it('the agent: redirect ports reach the sidecar, 443 its TLS listener, anything else is refused', async () => {
    const at = (v: (h: number) => string) =>
      [
        [['tcp', v(2), 80], 'sidecar 7470'],
        [['tcp', v(2), 8080], 'sidecar 7470'],
        [['tcp', v(4), 80], 'sidecar 7470'], // redirected although an exception names it
        [['tcp', v(2), 443], 'sidecar 7471'],
        [['tcp', v(2), 9000], 'error ECONNREFUSED'],
        [['tcp', v(2), 5432], 'error ECONNREFUSED'],
        [['tcp', v(5), 5432], `upstream ${v(5)}:5432`], // the --allow exception
        [['tcp', v(5), 9000], 'error ECONNREFUSED'], // … for its port only
        [['tcp', v(3), 53], `upstream ${v(3)}:53`], // DNS to the resolv.conf nameserver
        [['udp', v(3), 53], 'udp'],
        [['tcp', v(4), 53], 'error ECONNREFUSED'], // DNS elsewhere
        [['udp', v(4), 53], 'error ECONNREFUSED'],
        [['udp', v(2), 9000], 'error ECONNREFUSED'],
      ] as [Probe, string][];
    await outcomes(net.pod, AGENT_UID, [...at(net.v4), ...at(net.v6)]);
  });

  it('the agent: loopback and the pod address pass', async () => {
    await outcomes(net.pod, AGENT_UID, [
      [['tcp', '127.0.0.1', 7470], 'sidecar 7470'],
      [['tcp', '::1', 7471], 'sidecar 7471'],
      [['tcp', '127.0.0.1', 7480], 'pod 7480'],
      [['tcp', net.v4(1), 7480], 'pod 7480'],
      [['tcp', net.v6(1), 7480], 'pod 7480'],
    ]);
  });

  it('root in the pod is captured like any uid but the sidecar’s', async () => {
    await outcomes(net.pod, 0, [
      [['tcp', net.v4(2), 9000], 'error ECONNREFUSED'],
      [['tcp', net.v6(2), 80], 'sidecar 7470'],
    ]);
  });

  it('the sidecar’s uid goes straight to the upstream, on every port and address', async () => {
    const at = (v: (h: number) => string) =>
      [
        [['tcp', v(2), 80], `upstream ${v(2)}:80`],
        [['tcp', v(2), 8080], `upstream ${v(2)}:8080`],
        [['tcp', v(2), 443], `upstream ${v(2)}:443`],
        [['tcp', v(2), 9000], `upstream ${v(2)}:9000`],
        [['tcp', v(2), 5432], `upstream ${v(2)}:5432`],
        [['udp', v(4), 53], 'udp'],
      ] as [Probe, string][];
    await outcomes(net.pod, SIDECAR_UID, [...at(net.v4), ...at(net.v6)]);
  });

  it('--backend auto keeps the backend that holds the rules', async () => {
    const r = await captureInit(net.pod, [...flags().slice(2), '--tls-port', '7471', '--backend', 'auto']);
    expect(r.code).toBe(0);
    expect(CaptureStateSchema().parse(JSON.parse(readFileSync(state, 'utf8'))).backend).toBe(backend);
  });

  it('fails closed: exit 1 with the reason and no state file when iptables cannot run', async () => {
    // A directory the agent may write: only iptables stands in its way.
    const other = join(mkdtempSync(join(tmpdir(), 'tg-capture-init-agent-')), 'state.json');
    chmodSync(dirname(other), 0o777);
    cleanup.push(dirname(other));
    const p = run('ip', [
      'netns',
      'exec',
      net.pod,
      'setpriv',
      '--reuid',
      String(AGENT_UID),
      '--regid',
      String(AGENT_UID),
      '--clear-groups',
      process.execPath,
      CLI,
      'capture-init',
      ...flags().slice(0, -2),
      '--dns',
      'any',
      '--state-file',
      other,
    ]);
    expect(await p.exited).toBe(1);
    expect(p.err()).toMatch(new RegExp(`^thoughtgate capture-init: ip(6)?tables-${backend}-(save|restore) failed`));
    expect(existsSync(other)).toBe(false);
    // The earlier run's state file goes first: a failed re-run leaves none.
    expect(existsSync(state)).toBe(true);
    const unreadable = await captureInit(net.pod, ['--backend', backend, '--resolv-conf', join(dir, 'missing'), '--state-file', state]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.err).toBe(
      `thoughtgate capture-init: --dns resolv: cannot read ${join(dir, 'missing')}: ENOENT: no such file or directory, open '${join(dir, 'missing')}'\n`,
    );
    expect(existsSync(state)).toBe(false);
  });
});

describe('capture-init, the rest', () => {
  it('auto picks nft in a netns with no rules (nft works here)', async () => {
    const net = await pair(BACKENDS.length);
    const state = join(dir, 'auto/state.json');
    const r = await captureInit(net.pod, ['--resolv-conf', join(dir, 'nft.resolv.conf'), '--state-file', state]);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    expect(r.out).toMatch(/^thoughtgate capture-init: installed \(nft, ipv4\+ipv6\) in [\d.]+ ms; state in /);
    expect(CaptureStateSchema().parse(JSON.parse(readFileSync(state, 'utf8'))).backend).toBe('nft');
  }, 60_000);

  it.each([
    [['--allow', '10.0.0.0/8'], '--allow: "10.0.0.0/8": expected CIDR:PORT'],
    [['--redirect-ports', '80,99999'], '--redirect-ports: "99999" is not a port'],
    [['--uid', '0'], '--uid 0 would exempt root from capture'],
    [['--dns', 'cluster'], '--dns must be one of resolv, any, none'],
    [['--bogus'], "Unknown option '--bogus'"],
  ])('refuses %j before touching anything (exit 2)', async (args, message) => {
    const p = run(process.execPath, [CLI, 'capture-init', ...args, '--dry-run']);
    expect(await p.exited).toBe(2);
    expect(p.err()).toContain(`thoughtgate capture-init: ${message}`);
    expect(p.out()).toBe('');
  });

  it('--help lists every flag', async () => {
    const p = run(process.execPath, [CLI, 'capture-init', '--help']);
    expect(await p.exited).toBe(0);
    for (const f of [
      '--uid',
      '--redirect-ports',
      '--transparent-port',
      '--tls-port',
      '--dns',
      '--resolv-conf',
      '--allow',
      '--backend',
      '--ipv6',
      '--state-file',
      '--dry-run',
    ])
      expect(p.out()).toContain(f);
    expect(p.out()).toContain('(default 7467)');
  });
});

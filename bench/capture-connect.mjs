// What capture adds to an agent's MCP connection, in a pod built from the e2e harness's pieces
// (e2e/support: e2e-run.sh's sandbox with an upstream namespace, upstream-servers.mjs with the real
// server-everything, pod-agent.mjs as the agent): capture-init (the built CLI, as root with
// NET_ADMIN+NET_RAW only) installs the rules, the standalone sidecar runs as SIDECAR_UID, and the
// agent (another UID) opens a fresh connection per request, interleaved:
//   redirected  http://mcp.test/mcp, captured to the transparent listener (the agent knows nothing)
//   sidecar     $THOUGHTGATE_URL/mcp/upstream (the sidecar's own port, no redirect)
//   direct      http://mcp.test/mcp as the sidecar's UID (exempt): the upstream alone, for scale
// (each by the upstream's address with Host: mcp.test; redirected_by_name adds the agent's lookup)
// Prints `name value` lines (medians, ms): TCP connect and a first request (MCP initialize) on a
// new connection, each way; and capture-init's run time (first run, and re-runs, which replace
// the rules). Root only (network namespaces, iptables).
//
//   node bench/capture-connect.mjs        (make bench runs it; BENCH_N requests per way, default 200)
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SUPPORT = join(ROOT, 'e2e/support');
const CLI = join(ROOT, 'dist/cli.js');
const N = Number(process.env.BENCH_N || 200);
const SIDECAR_UID = 7467; // api/capture.ts
const AGENT_UID = 4242;
// This node, not BENCH_NODE: the sidecar runs as its UID, which cannot read a node under /root/.npm.
const NODE = process.execPath;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const out = (name, v) => console.log(`${name} ${typeof v === 'number' ? v.toFixed(3) : v}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  let text = '';
  child.stdout.on('data', (d) => (text += d));
  child.stderr.on('data', (d) => (text += d));
  return { child, text: () => text };
}

async function until(what, fn, ms = 30_000) {
  for (const end = Date.now() + ms; ; ) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// A run directory of our own, as jest's global setup makes one (e2e-run.sh gc ends it if we die).
const runsRoot = process.env.THOUGHTGATE_E2E_RUNS ?? '/tmp/thoughtgate-e2e';
execFileSync(join(SUPPORT, 'e2e-run.sh'), ['gc']);
mkdirSync(runsRoot, { recursive: true });
const runDir = join(runsRoot, `b${randomBytes(3).toString('hex').slice(0, 3)}`);
mkdirSync(runDir);
writeFileSync(join(runDir, 'pid'), String(process.pid));
const procs = [];
const cleanup = () => {
  for (const p of procs.reverse()) p.child.kill('SIGKILL');
  execFileSync(join(SUPPORT, 'e2e-run.sh'), ['end', runDir]);
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

try {
  const [ns, , , upNs, up4, up6] = execFileSync(join(SUPPORT, 'e2e-run.sh'), ['pod-add', runDir, 'upstream'], { encoding: 'utf8' }).trim().split(' ');
  const inPod = (args) => ['netns', 'exec', ns, ...args];

  const servers = start('ip', [
    'netns',
    'exec',
    upNs,
    process.execPath,
    join(SUPPORT, 'upstream-servers.mjs'),
    JSON.stringify({ dns: { listen: [up4, up6], hosts: { 'mcp.test': [up4, up6] } }, http: [80] }),
  ]);
  procs.push(servers);
  await until('the upstream', async () => servers.text().includes('"ready"'));

  // capture-init, as the webhook's init container runs it (root, NET_ADMIN+NET_RAW only).
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-capture-'));
  const state = join(dir, 'state.json');
  const initArgs = [
    'capture-init',
    '--uid',
    String(SIDECAR_UID),
    '--redirect-ports',
    '80',
    '--transparent-port',
    '7470',
    '--dns',
    'resolv',
    '--state-file',
    state,
  ];
  const caps = ['setpriv', '--reuid=0', '--regid=0', '--clear-groups', '--no-new-privs', '--bounding-set=-all,+net_admin,+net_raw', '--'];
  const initMs = [];
  for (let i = 0; i < 6; i++) {
    const t0 = process.hrtime.bigint();
    execFileSync('ip', inPod([...caps, NODE, CLI, ...initArgs]), {
      env: { PATH: process.env.PATH, XTABLES_LOCKFILE: join(dir, 'xtables.lock') },
      stdio: 'pipe',
    });
    initMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }

  // The standalone sidecar with the one source, as its UID.
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(config, 'sources:\n  - name: upstream\n    url: http://mcp.test/mcp\ndefaultAction: forward\n');
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  const sidecar = start(
    'ip',
    inPod([
      'setpriv',
      `--reuid=${SIDECAR_UID}`,
      `--regid=${SIDECAR_UID}`,
      '--clear-groups',
      NODE,
      CLI,
      'sidecar',
      '--config',
      config,
      '--transparent-port',
      '7470',
      '--capture-state',
      state,
    ]),
    { env: { PATH: process.env.PATH } },
  );
  procs.push(sidecar);
  const agentAs = (uid) => {
    const p = start('ip', inPod(['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, join(SUPPORT, 'pod-agent.mjs')]), {
      env: { PATH: process.env.PATH, THOUGHTGATE_URL: 'http://127.0.0.1:7467' },
    });
    procs.push(p);
    const waiting = new Map();
    readline.createInterface({ input: p.child.stdout }).on('line', (l) => {
      const a = JSON.parse(l);
      waiting.get(a.id)?.(a);
    });
    let n = 0;
    return (op, args) =>
      new Promise((resolve) => {
        const id = ++n;
        waiting.set(id, resolve);
        p.child.stdin.write(`${JSON.stringify({ ...args, id, op })}\n`);
      });
  };
  const agent = agentAs(AGENT_UID);
  const exempt = agentAs(SIDECAR_UID);
  await until('the sidecar ready', async () => {
    if (sidecar.child.exitCode !== null) throw new Error(`the sidecar exited: ${sidecar.text()}`);
    return (await agent('http', { url: 'http://127.0.0.1:7469/ready' })).status === 200;
  });

  // By address with Host: mcp.test, so the agent's own DNS lookup is not in the figures (the
  // by-name way shows what it adds).
  const ways = {
    redirected: [agent, { host: up4, port: 80, path: '/mcp', hostHeader: 'mcp.test' }],
    redirected_by_name: [agent, { host: 'mcp.test', port: 80, path: '/mcp', family: 4 }],
    sidecar: [agent, { host: '127.0.0.1', port: 7467, path: '/mcp/upstream' }],
    direct: [exempt, { host: up4, port: 80, path: '/mcp', hostHeader: 'mcp.test' }],
  };
  const results = Object.fromEntries(Object.keys(ways).map((k) => [k, { connect: [], request: [] }]));
  // Warm-up, then interleaved rounds so drift hits every way alike.
  for (const [ask, t] of Object.values(ways)) await ask('timed', { ...t, n: 20 });
  for (let round = 0; round < N / 20; round++) {
    for (const [name, [ask, t]] of Object.entries(ways)) {
      const r = await ask('timed', { ...t, n: 20 });
      if (r.error) throw new Error(`${name}: ${r.error}`);
      results[name].connect.push(...r.connect);
      results[name].request.push(...r.request);
    }
  }
  for (const [name, r] of Object.entries(results)) {
    out(`capture_connect_ms_${name}`, median(r.connect));
    out(`capture_first_request_ms_${name}`, median(r.request));
  }
  out('capture_added_connect_ms', median(results.redirected.connect) - median(results.sidecar.connect));
  out('capture_added_first_request_ms', median(results.redirected.request) - median(results.sidecar.request));
  console.log(`# node ${process.version} for capture-init, the sidecar and the agent; ${N} requests per way`);
  out('capture_init_first_run_ms', initMs[0]);
  out('capture_init_rerun_ms', median(initMs.slice(1)));
  rmSync(dir, { recursive: true, force: true });
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
}
process.exit();

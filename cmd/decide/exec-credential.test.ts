import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../../test/support/processes.js';
import { CredentialError, execPlan, parseExecCredential, runExecPlugin, type ExecSpec } from './exec-credential.js';

const CRED = (status: Record<string, unknown>, apiVersion = 'client.authentication.k8s.io/v1') =>
  JSON.stringify({ apiVersion, kind: 'ExecCredential', status });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tg-exec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A plugin: a node script run with the test's node. */
function plugin(name: string, source: string, extra: Partial<ExecSpec> = {}): ExecSpec {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, source);
  return { command: process.execPath, args: [file], apiVersion: 'client.authentication.k8s.io/v1', ...extra };
}

// Asks for a password on stdin, as an interactive login does: without a terminal it reads
// end-of-file at once and gives up (client-node's runner left it waiting on an open pipe forever).
const ASKS_PASSWORD = `
process.stderr.write('Password: ');
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  if (!input.trim()) { process.stderr.write('no password given\\n'); process.exit(3); }
  process.stdout.write(${JSON.stringify(CRED({ token: 'from-password' }))});
});
`;

const ctx = { userName: 'oidc', env: { PATH: process.env['PATH'] ?? '' } };

describe('the exec credential plan', () => {
  test('stdin is the terminal only when interactiveMode allows it and there is one', () => {
    const spec: ExecSpec = { command: 'kubelogin', args: ['get-token'], apiVersion: 'client.authentication.k8s.io/v1' };
    expect(execPlan({ ...spec, interactiveMode: 'Never' }, { ...ctx, stdinIsTTY: true })).toMatchObject({ stdin: 'ignore', timeoutMs: 30_000 });
    expect(execPlan({ ...spec, interactiveMode: 'IfAvailable' }, { ...ctx, stdinIsTTY: true })).toMatchObject({ stdin: 'inherit', timeoutMs: 120_000 });
    expect(execPlan({ ...spec, interactiveMode: 'IfAvailable' }, { ...ctx, stdinIsTTY: false })).toMatchObject({ stdin: 'ignore' });
    expect(execPlan({ ...spec, interactiveMode: 'Always' }, { ...ctx, stdinIsTTY: true })).toMatchObject({ stdin: 'inherit' });
    expect(() => execPlan({ ...spec, interactiveMode: 'Always' }, { ...ctx, stdinIsTTY: false })).toThrow(
      'the credential plugin "kubelogin get-token" (kubeconfig user oidc) needs a terminal (interactiveMode: Always)',
    );
    expect(() => execPlan({ ...spec, interactiveMode: 'Sometimes' }, { ...ctx, stdinIsTTY: false })).toThrow(/not one of Never, IfAvailable, Always/);
  });

  test('KUBERNETES_EXEC_INFO says whether it may prompt, and the cluster when asked; env entries are added', () => {
    const p = execPlan(
      { command: 'p', apiVersion: 'client.authentication.k8s.io/v1beta1', provideClusterInfo: true, env: [{ name: 'X', value: '1' }] },
      { ...ctx, stdinIsTTY: false, cluster: { server: 'https://k:6443', caData: 'Q0E=', tlsServerName: 'k' } },
    );
    expect(p.env['X']).toBe('1');
    expect(JSON.parse(p.env['KUBERNETES_EXEC_INFO']!)).toEqual({
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      kind: 'ExecCredential',
      spec: { interactive: false, cluster: { server: 'https://k:6443', 'certificate-authority-data': 'Q0E=', 'tls-server-name': 'k' } },
    });
  });

  test("a relative command with a slash is the kubeconfig directory's (kubectl's rule); a bare name is looked up in PATH", () => {
    expect(execPlan({ command: './bin/auth' }, { ...ctx, stdinIsTTY: false, kubeconfigDir: '/home/me/.kube' }).command).toBe('/home/me/.kube/bin/auth');
    expect(execPlan({ command: 'auth' }, { ...ctx, stdinIsTTY: false, kubeconfigDir: '/home/me/.kube' }).command).toBe('auth');
  });

  test.each<[string, string, RegExp]>([
    ['not JSON', 'Please log in at https://...', /printed no ExecCredential JSON/],
    ['another kind', JSON.stringify({ kind: 'Status' }), /printed a Status, not an ExecCredential/],
    ['another apiVersion', CRED({ token: 't' }, 'client.authentication.k8s.io/v1beta1'), /answered apiVersion .*v1beta1, but the kubeconfig asks for .*\/v1$/],
    ['no token nor certificate', CRED({ clientCertificateData: 'c' }), /neither a token nor a client certificate and key/],
  ])('an answer that is %s is refused, naming the plugin', (_what, out, message) => {
    expect(() => parseExecCredential(out, { describe: 'the credential plugin "p"' }, 'client.authentication.k8s.io/v1')).toThrow(message);
  });

  test('a token with its expiry', () => {
    expect(parseExecCredential(CRED({ token: 't', expirationTimestamp: '2030-01-01T00:00:00Z' }), { describe: 'p' })).toEqual({
      token: 't',
      expiresAt: Date.parse('2030-01-01T00:00:00Z'),
    });
  });
});

describe('running the exec credential plugin', () => {
  const run = (spec: ExecSpec, o: { stdinIsTTY?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}) => {
    const stderr: string[] = [];
    const plan = execPlan(spec, { ...ctx, stdinIsTTY: o.stdinIsTTY ?? false, timeoutMs: o.timeoutMs ?? 10_000 });
    const p = runExecPlugin(plan, {
      stderr: (s) => void stderr.push(s),
      ...(spec.installHint ? { installHint: spec.installHint } : {}),
      ...(spec.apiVersion ? { apiVersion: spec.apiVersion } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    return { p, stderr };
  };

  test('its token, with KUBERNETES_EXEC_INFO in its environment', async () => {
    const { p } = run(
      plugin(
        'ok',
        `const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO); process.stdout.write(${JSON.stringify(CRED({ token: 'T' }))}.replace('"T"', JSON.stringify('T-' + info.spec.interactive)));`,
      ),
    );
    await expect(p).resolves.toEqual({ token: 'T-false' });
  });

  test('a plugin asking for a password with interactiveMode Never gets no stdin: it fails at once, its messages shown', async () => {
    const { p, stderr } = run(plugin('asks', ASKS_PASSWORD, { interactiveMode: 'Never' }), { stdinIsTTY: true, timeoutMs: 60_000 });
    await expect(p).rejects.toThrow(/the credential plugin ".*asks\.mjs" \(kubeconfig user oidc\) failed \(exit status 3\); its messages are above/);
    expect(stderr.join('')).toContain('no password given');
  });

  test('a plugin that never answers is killed at the bound, with an error naming it', async () => {
    const { p } = run(plugin('hangs', 'setInterval(() => {}, 1000);'), { timeoutMs: 300 });
    await expect(p).rejects.toThrow(CredentialError);
    await expect(p).rejects.toThrow(
      /the credential plugin ".*hangs\.mjs" \(kubeconfig user oidc\) gave no credential within 300 ms; it may be waiting for input it cannot get/,
    );
  });

  test('a missing plugin says so, with its install hint', async () => {
    const { p } = run({ command: 'thoughtgate-no-such-plugin', installHint: 'brew install no-such-plugin' });
    await expect(p).rejects.toThrow(/cannot be run: thoughtgate-no-such-plugin not found\nbrew install no-such-plugin/);
  });

  test('an interrupt kills it', async () => {
    const ac = new AbortController();
    const { p } = run(plugin('slow', 'setInterval(() => {}, 1000);'), { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toThrow(/was interrupted/);
  });

  test("a wrapper's children are killed with it at the bound (its own process group), not left running", async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const wrapper = plugin(
      'wrapper',
      `import { spawn } from 'node:child_process'; import { writeFileSync } from 'node:fs';
const c = spawn('sleep', ['47'], { stdio: 'ignore' });
writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));
setInterval(() => {}, 1000);`,
    );
    const { p } = run(wrapper, { timeoutMs: 1_000 });
    await expect(p).rejects.toThrow(/gave no credential within 1s/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await expect(goneWithin(pid, 5_000)).resolves.toBe(true);
  });

  test('output over 1 MiB is counted in bytes, not characters', async () => {
    // 600 000 "é" are 600 000 UTF-16 units but 1.2 MB on the wire.
    const big = plugin('wide', `process.stdout.write(${JSON.stringify(CRED({ token: 'T' }))}.replace('"T"', JSON.stringify('é'.repeat(600000))));`);
    await expect(run(big).p).rejects.toThrow(/printed more than 1048576 bytes/);
  });

  test('an endless stream: reading stops at the bound, its stdout is closed and it is killed', async () => {
    const marker = join(dir, 'endless.epipe');
    const endless = plugin(
      'endless',
      `import { writeFileSync } from 'node:fs';
process.on('SIGTERM', () => {});
process.stdout.on('error', (e) => { writeFileSync(${JSON.stringify(marker)}, String(e.code)); process.exit(0); });
const chunk = Buffer.alloc(64 * 1024, 120);
const pump = () => { process.stdout.write(chunk); setImmediate(pump); };
pump();`,
    );
    const { p } = run(endless);
    await expect(p).rejects.toThrow(/printed more than 1048576 bytes/);
    // It ignores SIGTERM: only the closed pipe (EPIPE on its next write) ends it before the SIGKILL.
    for (let i = 0; i < 100 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(marker) ? readFileSync(marker, 'utf8') : 'no EPIPE: its stdout was still read').toBe('EPIPE');
  });
});

test('the built CLI interrupted while the plugin runs: its children are gone when it exits, even one ignoring SIGTERM', async () => {
  const pidFile = join(dir, 'stubborn.pid');
  const wrapper = plugin(
    'stubborn',
    `import { spawn } from 'node:child_process'; import { writeFileSync } from 'node:fs';
const c = spawn('sh', ['-c', "trap '' TERM; exec sleep 47"], { stdio: 'ignore' });
writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));
setInterval(() => {}, 1000);`,
  );
  // The plugin runs before anything is sent, so no API server is needed.
  const kubeconfig = join(dir, 'stubborn.kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:9' } }],
      users: [{ name: 'u', user: { exec: wrapper } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  const cli = spawn(process.execPath, [CLI, 'approve', 'req', '--kubeconfig', kubeconfig], { env: { PATH: process.env['PATH'] ?? '', HOME: dir } });
  let err = '';
  cli.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => cli.on('exit', (code) => r(code)));
  for (let i = 0; i < 200 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
  const pid = Number(readFileSync(pidFile, 'utf8'));
  cli.kill('SIGINT');
  expect(await exited).toBe(130);
  expect(err).toContain('interrupted; no decision was created');
  await expect(goneWithin(pid, 5_000)).resolves.toBe(true);
});

/** Whether `pid` is gone (or a zombie nobody reaps: PID 1 here may not) within `ms`. */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const alive = () => {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
    } catch {
      return true;
    }
  };
  for (const until = Date.now() + ms; Date.now() < until; ) {
    if (!alive()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (alive()) process.kill(pid, 'SIGKILL');
  return false;
}

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecretValue } from '../../api/config.js';
import { createLogger } from '../../lib/log.js';
import { emptySecretVolume, writeSecretVolume } from '../../test/custody/secret-volume.js';
import { createCredentialStore, type CredentialStore } from './store.js';

async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const SECRET = 'tok-9f8e7d6c5b4a';
let dir: string;
let store: CredentialStore | null;
let logged: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tg-cred-'));
  store = null;
  logged = [];
});
afterEach(() => {
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

function make(env: Record<string, string> = {}, pollMs = 3_600_000): CredentialStore {
  store = createCredentialStore({ secretsDir: dir, env, cwd: dir, pollMs, debounceMs: 20, log: createLogger('debug', (l) => logged.push(l)) });
  return store;
}

const ref: SecretValue = { valueFrom: { secretKeyRef: { name: 'upstream', key: 'token' } }, prefix: 'Bearer ' };

test('a Secret key: read, rotated by a ..data swap, removed and restored with the same value', async () => {
  writeSecretVolume(join(dir, 'upstream'), { token: `${SECRET}-1` });
  const s = make();
  s.retain([ref]);
  expect(s.get(ref)).toEqual({ ok: true, value: `Bearer ${SECRET}-1` });

  writeSecretVolume(join(dir, 'upstream'), { token: `${SECRET}-2` });
  await waitFor(() => (s.get(ref) as { value?: string }).value === `Bearer ${SECRET}-2`, 'the rotated value');

  emptySecretVolume(join(dir, 'upstream'), ['token']);
  await waitFor(() => !s.get(ref).ok, 'the removal');
  expect(s.get(ref)).toEqual({ ok: false, reason: 'Secret "upstream" key "token" does not exist (not mounted, or the Secret or key is missing)' });
  expect(s.report()).toEqual([expect.objectContaining({ credential: 'Secret "upstream" key "token"', ok: false })]);

  writeSecretVolume(join(dir, 'upstream'), { token: `${SECRET}-2` });
  await waitFor(() => s.get(ref).ok, 'the restored value');
  expect(s.get(ref)).toEqual({ ok: true, value: `Bearer ${SECRET}-2` });
  expect(logged.join('')).not.toContain(SECRET);
  expect(JSON.stringify(s.report())).not.toContain(SECRET);
});

test('a Secret missing at start becomes usable when the kubelet mounts it', async () => {
  // No directory to watch yet: the poll finds it.
  const s = make({}, 100);
  expect(s.get(ref).ok).toBe(false);
  writeSecretVolume(join(dir, 'upstream'), { token: SECRET });
  await waitFor(() => s.get(ref).ok, 'the mounted value');
});

test('file and env; invalid and oversized values are refused without quoting them', () => {
  writeFileSync(join(dir, 'tok'), `${SECRET}\n`);
  writeFileSync(join(dir, 'bad'), `${SECRET}\nsecond line\n`);
  writeFileSync(join(dir, 'big'), 'x'.repeat(64 * 1024 + 1));
  const s = make({ TOKEN: SECRET });
  expect(s.get({ valueFrom: { file: 'tok' } })).toEqual({ ok: true, value: SECRET });
  expect(s.get({ valueFrom: { env: 'TOKEN' }, prefix: 'Token ' })).toEqual({ ok: true, value: `Token ${SECRET}` });
  expect(s.get({ valueFrom: { env: 'UNSET' } })).toEqual({ ok: false, reason: 'environment variable UNSET is not set' });
  expect(s.get({ valueFrom: { file: 'bad' } })).toEqual({
    ok: false,
    reason: `file bad has a line break at position ${SECRET.length} (only one trailing newline is allowed)`,
  });
  expect(s.get({ valueFrom: { file: 'big' } })).toEqual({ ok: false, reason: 'file big is larger than 65536 bytes' });
  expect(logged.join('') + JSON.stringify(s.report())).not.toContain(SECRET);
});

test('retain drops what the new snapshot does not use and re-reads what it keeps', () => {
  writeFileSync(join(dir, 'a'), 'one');
  writeFileSync(join(dir, 'b'), 'two');
  const s = make();
  const a: SecretValue = { valueFrom: { file: 'a' } };
  const b: SecretValue = { valueFrom: { file: 'b' } };
  s.retain([a, b]);
  expect(s.report().map((r) => r.credential)).toEqual(['file a', 'file b']);
  writeFileSync(join(dir, 'a'), 'uno');
  s.retain([a]);
  expect(s.report().map((r) => r.credential)).toEqual(['file a']);
  expect(s.get(a)).toEqual({ ok: true, value: 'uno' });
});

test('an in-place rewrite of a standalone file is picked up', async () => {
  writeFileSync(join(dir, 'tok'), 'first');
  const s = make();
  const f: SecretValue = { valueFrom: { file: join(dir, 'tok') } };
  s.retain([f]);
  writeFileSync(join(dir, 'tok'), 'second\n');
  await waitFor(() => (s.get(f) as { value?: string }).value === 'second', 'the new value');
});

test('a FIFO or a device at a file reference is refused before it is opened: the sidecar never blocks on it', async () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // A blocking open would wait for this writer (the event loop frozen until then) and read its "x".
  const writer = spawn('sh', ['-c', 'sleep 1; exec printf x > "$0"', fifo], { stdio: 'ignore' });
  try {
    const s = make({}, 50);
    const f: SecretValue = { valueFrom: { file: 'fifo' } };
    const t0 = Date.now();
    s.retain([f]);
    expect(Date.now() - t0).toBeLessThan(500);
    const refused = { ok: false, reason: 'file fifo is not a regular file (it is a FIFO)' };
    expect(s.get(f)).toEqual(refused);
    // The watch re-reads it every 50 ms (asynchronously): still refused once the writer would have written.
    await new Promise((r) => setTimeout(r, 1500));
    expect(s.get(f)).toEqual(refused);
    expect(s.get({ valueFrom: { file: '/dev/null' } })).toEqual({ ok: false, reason: 'file /dev/null is not a regular file (it is a character device)' });
    expect(s.get({ valueFrom: { file: dir } })).toMatchObject({ ok: false, reason: expect.stringContaining('is not a regular file (it is a directory)') });
  } finally {
    writer.kill();
  }
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { CredentialError } from './exec-credential.js';
import { bounded, kubeconfigFiles, rawUser } from './kubeconfig.js';

describe("the CLI's kubeconfig", () => {
  test('the files kubectl reads: --kubeconfig, else each of $KUBECONFIG, else ~/.kube/config', () => {
    expect(kubeconfigFiles('/k', { KUBECONFIG: '/a' })).toEqual(['/k']);
    expect(kubeconfigFiles(undefined, { KUBECONFIG: `/a${delimiter}${delimiter}/b` })).toEqual(['/a', '/b']);
    expect(kubeconfigFiles(undefined, { HOME: '/home/me' })).toEqual(['/home/me/.kube/config']);
  });

  test("a user's raw map comes from the first file that defines it (kubectl's merge), with that file's directory", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-kc-'));
    try {
      const a = join(dir, 'a');
      const b = join(dir, 'sub', 'b');
      writeFileSync(a, 'users: [{ name: other, user: { as: x } }]\n');
      mkdirSync(join(dir, 'sub'));
      writeFileSync(b, 'users: [{ name: me, user: { as: bob, as-groups: [g] } }]\n');
      expect(rawUser([join(dir, 'missing'), a, b], 'me')).toEqual({ user: { as: 'bob', 'as-groups': ['g'] }, dir: join(dir, 'sub') });
      expect(rawUser([a], 'me')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('credentials that never come are bounded, and Ctrl-C does not wait for them', async () => {
    const never = { describe: 'kubeconfig context c (user oidc)', tls: () => new Promise<never>(() => {}), authorization: () => new Promise<never>(() => {}) };
    const b = bounded(never, 50);
    await expect(b.authorization(false)).rejects.toThrow(CredentialError);
    await expect(b.tls()).rejects.toThrow('the credentials of kubeconfig context c (user oidc) did not come within 50 ms');
    const ac = new AbortController();
    const p = bounded(never, 60_000, ac.signal).authorization(false);
    ac.abort(new Error('interrupted'));
    await expect(p).rejects.toThrow('interrupted');
    const ok = { describe: 'x', tls: async () => ({}), authorization: async () => 'Bearer t' };
    await expect(bounded(ok, 50).authorization(false)).resolves.toBe('Bearer t');
  });
});

import type { SecretValue } from '../../api/config.js';
import { acceptValue, describeRef, locate, refKey } from './plan.js';

const secret: SecretValue = { valueFrom: { secretKeyRef: { name: 'github', key: 'token' } }, prefix: 'Bearer ' };

test('a Secret key is read under the secrets dir, named by Secret and key', () => {
  expect(locate(secret, '/var/run/tg', '/cwd')).toEqual({ kind: 'file', path: '/var/run/tg/github/token' });
  expect(describeRef(secret)).toBe('Secret "github" key "token"');
  expect(refKey(secret)).toBe('secret:github/token');
});

test('files are absolute or relative to the working directory; env is a name', () => {
  expect(locate({ valueFrom: { file: 'tok.txt' } }, '/s', '/etc/tg')).toEqual({ kind: 'file', path: '/etc/tg/tok.txt' });
  expect(locate({ valueFrom: { file: '/run/tok' } }, '/s', '/etc/tg')).toEqual({ kind: 'file', path: '/run/tok' });
  expect(locate({ valueFrom: { env: 'TOKEN' } }, '/s', '/x')).toEqual({ kind: 'env', name: 'TOKEN' });
  expect(describeRef({ valueFrom: { env: 'TOKEN' } })).toBe('environment variable TOKEN');
});

test('one trailing newline is dropped; other control characters make the value invalid', () => {
  expect(acceptValue('abc')).toEqual({ ok: true, value: 'abc' });
  expect(acceptValue('abc\n')).toEqual({ ok: true, value: 'abc' });
  expect(acceptValue('abc\r\n')).toEqual({ ok: true, value: 'abc' });
  expect(acceptValue('a\tb c')).toEqual({ ok: true, value: 'a\tb c' });
  expect(acceptValue('abc\n\n')).toEqual({ ok: false, reason: 'has a line break at position 3 (only one trailing newline is allowed)' });
  expect(acceptValue('a\x00b')).toEqual({ ok: false, reason: 'has a control character at position 1' });
  expect(acceptValue('tökén')).toEqual({ ok: false, reason: 'has a non-ASCII character at position 1' });
  expect(acceptValue('\n')).toEqual({ ok: false, reason: 'is empty' });
});

test('reasons never quote the value', () => {
  const r = acceptValue('s3cr3t\x01value');
  expect(r.ok).toBe(false);
  expect(JSON.stringify(r)).not.toContain('s3cr3t');
});

// Credential custody, the pure half: where a SecretValue is read from, how it is named in errors,
// logs and /ready (never by its value), and which bytes make a usable value.
import { isAbsolute, join, resolve } from 'node:path';
import type { SecretValue } from '../../api/config.js';

/** A credential file larger than this is refused: a header value, a token or a client secret fit in far less. */
export const MAX_CREDENTIAL_BYTES = 64 * 1024;

export type Location = { kind: 'file'; path: string } | { kind: 'env'; name: string };

export type CredentialResult = { ok: true; value: string } | { ok: false; reason: string };

/** The identity of what a reference reads (its prefix is applied on use, not part of it). */
export function refKey(ref: SecretValue): string {
  const v = ref.valueFrom;
  if ('secretKeyRef' in v) return `secret:${v.secretKeyRef.name}/${v.secretKeyRef.key}`;
  if ('file' in v) return `file:${v.file}`;
  return `env:${v.env}`;
}

/** How errors, logs and /ready name a credential: where it comes from, never what it holds. */
export function describeRef(ref: SecretValue): string {
  const v = ref.valueFrom;
  if ('secretKeyRef' in v) return `Secret "${v.secretKeyRef.name}" key "${v.secretKeyRef.key}"`;
  if ('file' in v) return `file ${v.file}`;
  return `environment variable ${v.env}`;
}

/**
 * Where a reference is read: a Secret key is `<secretsDir>/<name>/<key>` (the kubelet's layout of a
 * secret volume: the key is a symlink through `..data`); a relative file is taken from `cwd`.
 */
export function locate(ref: SecretValue, secretsDir: string, cwd: string): Location {
  const v = ref.valueFrom;
  if ('secretKeyRef' in v) return { kind: 'file', path: join(secretsDir, v.secretKeyRef.name, v.secretKeyRef.key) };
  if ('file' in v) return { kind: 'file', path: isAbsolute(v.file) ? v.file : resolve(cwd, v.file) };
  return { kind: 'env', name: v.env };
}

/**
 * The value a credential's text stands for. The kubelet writes a Secret's exact bytes, but a file
 * made with `echo` or an editor ends in a newline: one trailing "\n" or "\r\n" is dropped. Anything
 * else that cannot go in an HTTP header (control characters, non-ASCII) makes the value invalid
 * rather than silently changed; the reason says what, never the value itself.
 */
export function acceptValue(text: string): CredentialResult {
  const value = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (value.length === 0) return { ok: false, reason: 'is empty' };
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x09 || (c >= 0x20 && c <= 0x7e)) continue;
    return {
      ok: false,
      reason:
        c === 0x0a || c === 0x0d
          ? `has a line break at position ${i} (only one trailing newline is allowed)`
          : `has a ${c < 0x20 || c === 0x7f ? 'control' : 'non-ASCII'} character at position ${i}`,
    };
  }
  return { ok: true, value };
}

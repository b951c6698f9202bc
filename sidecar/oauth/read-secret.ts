// Reads a SecretValue when a token is fetched (rarely: tokens are cached), so a rotated secret is
// used from the next token on. Interim: the credential store of sidecar/credentials/ replaces it
// once merged (the same contract: a value or a reason naming the reference, never the value).
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { SecretValue } from '../../api/config.js';
import { SECRETS_DIR } from '../../api/capture.js';
import type { ResolveSecret } from './client-credentials.js';

export function readSecretNow(env: NodeJS.ProcessEnv, cwd = process.cwd()): ResolveSecret {
  return (ref: SecretValue) => {
    const v = ref.valueFrom;
    let text: string | undefined;
    let what: string;
    if ('env' in v) {
      what = `environment variable ${v.env}`;
      text = env[v.env];
    } else {
      const path =
        'file' in v
          ? isAbsolute(v.file)
            ? v.file
            : resolve(cwd, v.file)
          : join(env['THOUGHTGATE_SECRETS_DIR'] ?? SECRETS_DIR, v.secretKeyRef.name, v.secretKeyRef.key);
      what = 'file' in v ? `file ${v.file}` : `Secret "${v.secretKeyRef.name}" key "${v.secretKeyRef.key}"`;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        text = undefined;
      }
    }
    const value = text?.replace(/\r?\n$/, '');
    if (!value) return { ok: false, reason: `${what} is missing or empty` };
    return { ok: true, value: `${ref.prefix ?? ''}${value}` };
  };
}

// Who this sidecar governs: the pod's identity from the downward API (cluster), or the config
// file's `identity` (standalone). It becomes the Cedar principal, so it must be right.
import { readFileSync } from 'node:fs';
import { IdentitySchema } from '../../api/config.js';
import type { ConfigFile, Identity } from '../../api/config.js';
import { ENV } from '../../api/wellknown.js';
import type { Env } from '../../policy/config/env.js';
import { describeError } from '../../lib/describe-error.js';

export const DEFAULT_LABELS_FILE = '/etc/podinfo/labels';

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };

/**
 * Decodes a Go double-quoted string literal (what strconv.Quote / `%q` writes), quotes included.
 * \x and octal escapes are bytes, \u and \U are code points; the bytes are read as UTF-8.
 */
export function unquoteGo(quoted: string): string | { error: string } {
  if (quoted.length < 2 || !quoted.startsWith('"') || !quoted.endsWith('"')) return { error: 'value is not a "quoted" string' };
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  const pushCodePoint = (cp: number): void => {
    for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
  };
  const hex = (s: string, n: number): number | null => (new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(s) ? parseInt(s, 16) : null);
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === '"') return { error: 'unescaped " inside the value' };
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      pushCodePoint(cp);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return { error: 'value ends with a lone backslash' };
    if (e in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[e]!);
      i += 2;
    } else if (e === 'x') {
      const v = hex(body.slice(i + 2, i + 4), 2);
      if (v === null) return { error: `bad escape "${body.slice(i, i + 4)}"` };
      bytes.push(v);
      i += 4;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const v = hex(body.slice(i + 2, i + 2 + n), n);
      if (v === null || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return { error: `bad escape "${body.slice(i, i + 2 + n)}"` };
      pushCodePoint(v);
      i += 2 + n;
    } else if (e >= '0' && e <= '7') {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) return { error: `bad escape "\\${oct}"` };
      bytes.push(parseInt(oct, 8));
      i += 4;
    } else {
      return { error: `unknown escape "\\${e}"` };
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parses the downward-API labels file: one `key="value"` line per label, the value quoted as Go's
 * %q does (kubelet's fieldpath.FormatMap). Bad lines are skipped and reported with their number.
 */
export function parseLabelsFile(text: string): { labels: Record<string, string>; errors: string[] } {
  const labels: Record<string, string> = {};
  const errors: string[] = [];
  text.split('\n').forEach((rawLine, idx) => {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? '' : line.slice(0, eq);
    if (eq <= 0 || /[\s"]/.test(key)) {
      errors.push(`line ${idx + 1}: expected key="value", got ${JSON.stringify(line)}`);
      return;
    }
    const value = unquoteGo(line.slice(eq + 1));
    if (typeof value !== 'string') {
      errors.push(`line ${idx + 1} (${key}): ${value.error}`);
      return;
    }
    // A label key such as "__proto__" must stay an ordinary key.
    Object.defineProperty(labels, key, { value, enumerable: true, writable: true, configurable: true });
  });
  return { labels, errors };
}

export interface ClusterIdentity {
  identity: Identity;
  /** Things to log: a missing or partly unreadable labels file, a missing POD_NAME. */
  warnings: string[];
}

/**
 * The pod's identity from the environment the webhook injects (downward API), or null when
 * POD_NAMESPACE is unset (standalone). `readFile` is injectable for tests.
 */
export function identityFromEnv(env: Env, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): ClusterIdentity | null {
  const namespace = env[ENV.podNamespace];
  if (!namespace) return null;
  const warnings: string[] = [];
  let pod = env[ENV.podName];
  if (!pod) {
    // Kubernetes sets HOSTNAME to the pod name unless the pod overrides its hostname.
    pod = env.HOSTNAME || 'unknown';
    warnings.push(`${ENV.podName} is not set; using "${pod}" as the pod name`);
  }
  let serviceAccount = env[ENV.serviceAccount];
  if (!serviceAccount) {
    serviceAccount = 'default';
    warnings.push(`${ENV.serviceAccount} is not set; using "default"`);
  }
  const labelsFile = env[ENV.labelsFile] || DEFAULT_LABELS_FILE;
  let labels: Record<string, string> = {};
  try {
    const parsed = parseLabelsFile(readFile(labelsFile));
    labels = parsed.labels;
    for (const e of parsed.errors) warnings.push(`${labelsFile}: ${e}`);
  } catch (err) {
    // Not fatal, but worth a warning: policies that look at pod labels will see none.
    warnings.push(`${labelsFile}: cannot read pod labels (${describeError(err)}); policies will see no labels`);
  }
  return { identity: { namespace, serviceAccount, pod, labels }, warnings };
}

/** The standalone identity: the config file's `identity`, with the schema's defaults. */
export function standaloneIdentity(config: Pick<ConfigFile, 'identity'>): Identity {
  return IdentitySchema.parse(config.identity ?? {});
}

/** Cluster identity when running in a pod, else the config file's. */
export function resolveIdentity(env: Env, config: Pick<ConfigFile, 'identity'>, readFile?: (path: string) => string): ClusterIdentity {
  return identityFromEnv(env, readFile) ?? { identity: standaloneIdentity(config), warnings: [] };
}

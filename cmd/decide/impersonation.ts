// Impersonation as kubectl does it (pure): a kubeconfig user's `as`, `as-uid`, `as-groups` and
// `as-user-extra`, each overridden by --as / --as-uid / --as-group when given, become the
// Impersonate-* headers of every request. The API server then authenticates the caller, checks
// its `impersonate` RBAC and treats the request (and the SelfSubjectReview, hence spec.user) as
// the impersonated user's.

export interface Impersonation {
  user?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** A kubeconfig `users[].user` as written (client-node keeps only `as`). */
export interface RawKubeUser {
  as?: unknown;
  'as-uid'?: unknown;
  'as-groups'?: unknown;
  'as-user-extra'?: unknown;
}

/** Throws an Error naming the field when the kubeconfig's impersonation fields are malformed. */
export function impersonationOfUser(u: RawKubeUser | undefined, userName: string): Impersonation {
  if (!u) return {};
  const bad = (field: string, want: string) => new Error(`kubeconfig user "${userName}": ${field} must be ${want}`);
  const out: Impersonation = {};
  if (u.as !== undefined && u.as !== null && u.as !== '') {
    if (typeof u.as !== 'string') throw bad('as', 'a string');
    out.user = u.as;
  }
  if (u['as-uid'] !== undefined && u['as-uid'] !== null && u['as-uid'] !== '') {
    if (typeof u['as-uid'] !== 'string') throw bad('as-uid', 'a string');
    out.uid = u['as-uid'];
  }
  const groups = u['as-groups'];
  if (groups !== undefined && groups !== null) {
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) throw bad('as-groups', 'a list of strings');
    if (groups.length) out.groups = groups as string[];
  }
  const extra = u['as-user-extra'];
  if (extra !== undefined && extra !== null) {
    if (typeof extra !== 'object' || Array.isArray(extra)) throw bad('as-user-extra', 'a map of lists of strings');
    const e: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(extra as Record<string, unknown>)) {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`as-user-extra.${k}`, 'a list of strings');
      e[k] = v as string[];
    }
    if (Object.keys(e).length) out.extra = e;
  }
  return out;
}

/** The kubeconfig's impersonation with the command line's over it, field by field (kubectl's merge). */
export function mergeImpersonation(fromKubeconfig: Impersonation, fromFlags: Impersonation): Impersonation {
  const m: Impersonation = { ...fromKubeconfig };
  if (fromFlags.user) m.user = fromFlags.user;
  if (fromFlags.uid) m.uid = fromFlags.uid;
  if (fromFlags.groups?.length) m.groups = fromFlags.groups;
  return m;
}

// Header name bytes that need no escaping (RFC 7230 tchar without "%"), as client-go escapes the
// keys of Impersonate-Extra-<key>.
const TCHAR = /[A-Za-z0-9!#$&'*+\-.^_`|~]/;

const escapeKey = (k: string) =>
  [...Buffer.from(k, 'utf8')]
    .map((b) => (TCHAR.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');

// What no header value may hold (a newline would end the header); the transport refuses these.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** The flag (or kubeconfig field) a header's value comes from, for messages; undefined: not ours. */
export function impersonationSource(header: string): string | undefined {
  const h = header.toLowerCase();
  if (h === 'impersonate-user') return '--as (or the kubeconfig user\'s "as")';
  if (h === 'impersonate-group') return '--as-group (or the kubeconfig user\'s "as-groups")';
  if (h === 'impersonate-uid') return '--as-uid (or the kubeconfig user\'s "as-uid")';
  if (h.startsWith('impersonate-extra-')) return 'the kubeconfig user\'s "as-user-extra"';
  return undefined;
}

/**
 * A value as the header string that puts its UTF-8 bytes on the wire. Node's HTTP clients
 * (undici) write a header string one byte per character (latin1), so "jürgen" would go out as
 * 6a fc 72..., a different name than kubectl's UTF-8 6a c3 bc 72..., and anything above U+00FF
 * would be refused; the API server reads the bytes as UTF-8.
 */
const utf8OnTheWire = (v: string): string => Buffer.from(v, 'utf8').toString('latin1');

/**
 * The Impersonate-* headers; throws an Error when they cannot be sent: groups, a uid or extras
 * without a user (the API server refuses those), or a value no HTTP header can carry (naming the
 * flag it came from).
 */
export function impersonationHeaders(i: Impersonation): Record<string, string | string[]> {
  if (!i.user) {
    if (i.groups?.length || i.uid || (i.extra && Object.keys(i.extra).length))
      throw new Error('impersonating groups, a uid or extras needs a user to impersonate (--as, or the kubeconfig user\'s "as")');
    return {};
  }
  const h: Record<string, string[]> = { 'impersonate-user': [i.user] };
  if (i.uid) h['impersonate-uid'] = [i.uid];
  if (i.groups?.length) h['impersonate-group'] = i.groups;
  for (const [k, v] of Object.entries(i.extra ?? {})) if (v.length) h[`impersonate-extra-${escapeKey(k)}`] = v;
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(h)) {
    for (const v of values) {
      const bad = CONTROL.test(v) ? 'has control characters' : Buffer.from(v, 'utf8').toString('utf8') !== v ? 'is not valid Unicode (a lone surrogate)' : '';
      if (bad) throw new Error(`cannot impersonate: ${JSON.stringify(v)} (${impersonationSource(name)}) ${bad}`);
    }
    const wire = values.map(utf8OnTheWire);
    out[name] = name === 'impersonate-user' || name === 'impersonate-uid' ? wire[0]! : wire;
  }
  return out;
}

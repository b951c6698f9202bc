// egress.allow / egress.deny compiled into entries compared with canonical destinations. Pure.
//
// An entry is `host`, `host:port` or `[ipv6]:port`; the port part is a glob on the decimal port.
// Its host part is one of:
// - an address literal in any spelling ("169.254.169.254", "0xa9fea9fe", "[::1]"): compared with
//   the canonical address of the destination and the IPv4 address an IPv6 form embeds;
// - a CIDR prefix ("10.0.0.0/8", "[fd00::/8]"): the same, by prefix;
// - a glob ("*.example.com", "10.0.0.*", "*"): compared with the canonical name of a named
//   destination and with the canonical text of each destination address.
import { compileGlobs, type Matcher } from '../../api/glob.js';
import { addressBytes, aliases, inCidr, parseHost, parseIPv6 } from '../../lib/destination.js';

type HostPattern = { kind: 'address'; address: string } | { kind: 'cidr'; net: string; len: number } | { kind: 'glob'; match: Matcher };

export interface EgressEntry {
  raw: string;
  host: HostPattern;
  /** null: any port. */
  port: Matcher | null;
  /** The host is written out (no wildcard): only such entries open this host's own addresses. */
  explicit: boolean;
  /** The entry may match a destination address (an address, a prefix, or a glob an address's text could fit). */
  addresses: boolean;
}

export interface EgressRules {
  allow: readonly EgressEntry[];
  deny: readonly EgressEntry[];
}

/** What an entry is compared with: a canonical name, or a canonical address. */
export type Candidate = { name: string } | { address: string };

const WILDCARD = /[*?\\]/;

function splitHostPort(raw: string): { host: string; port: string | null } | { error: string } {
  if (raw.startsWith('[')) {
    const end = raw.indexOf(']');
    if (end < 0) return { error: 'unbalanced brackets' };
    const rest = raw.slice(end + 1);
    if (rest === '') return { host: raw.slice(0, end + 1), port: null };
    if (rest.startsWith(':') && rest.length > 1) return { host: raw.slice(0, end + 1), port: rest.slice(1) };
    return { error: 'expected [address] or [address]:port' };
  }
  const i = raw.lastIndexOf(':');
  if (i < 0) return { host: raw, port: null };
  const host = raw.slice(0, i);
  // Unbracketed IPv6 (documented as host:port, "fd00::1:443"): the host part must be an address.
  if (host.includes(':') && !parseIPv6(host)) return { error: 'write IPv6 addresses in brackets: "[::1]" or "[::1]:443"' };
  if (i === raw.length - 1) return { error: 'empty port' };
  return { host: host.includes(':') ? `[${host}]` : host, port: raw.slice(i + 1) };
}

function compileHost(host: string): HostPattern | { error: string } {
  const cidr = /^\[?([^\]/]+)\/(\d{1,3})\]?$/.exec(host);
  if (cidr) {
    const bracketed = host.startsWith('[');
    const h = parseHost(bracketed ? `[${cidr[1]}]` : cidr[1]!);
    if (h.kind !== 'address') return { error: 'not a CIDR prefix' };
    // An IPv4-mapped prefix (::ffff:a.b.c.d/112) is the IPv4 prefix it maps.
    const len = Number(cidr[2]) - (bracketed && !h.address.includes(':') ? 96 : 0);
    if (len < 0 || len > addressBytes(h.address).length * 8) return { error: 'CIDR prefix length out of range' };
    return { kind: 'cidr', net: h.address, len };
  }
  if (WILDCARD.test(host)) {
    const lower = host.toLowerCase();
    return { kind: 'glob', match: compileGlobs(lower.endsWith('.') && lower.length > 1 ? lower.slice(0, -1) : lower, { caseInsensitive: true }) };
  }
  const h = parseHost(host);
  if (h.kind === 'invalid') return { error: h.reason };
  if (h.kind === 'address') return { kind: 'address', address: h.address };
  return { kind: 'glob', match: compileGlobs(h.name, { caseInsensitive: true }) };
}

/**
 * Whether a host glob could match the canonical text of some address ("10.0.0.*", "*"): its
 * literal characters all belong to an address's text (digits, hex letters, dots, colons,
 * brackets). Conservative: "*.cafe" counts, "*.example.com" does not.
 */
function globFitsAddressText(glob: string): boolean {
  const literals = glob.replace(/\\(.)|[*?]/g, '$1');
  return /^[0-9a-f.:[\]]*$/i.test(literals);
}

/** Compiles one list; errors name the entry (`egress.deny[2]: ...`). */
export function compileEgressList(list: readonly string[], key: string): { entries: EgressEntry[]; errors: string[] } {
  const entries: EgressEntry[] = [];
  const errors: string[] = [];
  list.forEach((raw, i) => {
    const hp = splitHostPort(raw);
    if ('error' in hp) {
      errors.push(`${key}[${i}]: "${raw}": ${hp.error}`);
      return;
    }
    if (hp.port !== null && !/^[0-9*?]+$/.test(hp.port)) {
      errors.push(`${key}[${i}]: "${raw}": the port must be a number or a glob of digits`);
      return;
    }
    const host = compileHost(hp.host);
    if ('error' in host) {
      errors.push(`${key}[${i}]: "${raw}": ${host.error}`);
      return;
    }
    entries.push({
      raw,
      host,
      port: hp.port === null ? null : compileGlobs(hp.port),
      explicit: !WILDCARD.test(hp.host),
      addresses: host.kind !== 'glob' || globFitsAddressText(hp.host),
    });
  });
  return { entries, errors };
}

export function entryMatches(e: EgressEntry, c: Candidate, port: number): boolean {
  if (e.port && !e.port(String(port))) return false;
  if ('name' in c) return e.host.kind === 'glob' && e.host.match(c.name);
  const h = e.host;
  return aliases(c.address).some((a) => {
    if (h.kind === 'address') return a === h.address;
    if (h.kind === 'cidr') return inCidr(a, h.net, h.len);
    return h.match(a) || (a.includes(':') && h.match(`[${a}]`));
  });
}

export type EgressVerdict = { ok: true } | { ok: false; why: 'denied' | 'unlisted' | 'local' };

/**
 * Deny wins: a deny entry matching the name or ANY address it resolves to denies. Allow: the name,
 * or the address that will be connected to. A destination on this host's own addresses (where the
 * sources and the sidecar listen) is allowed only by an entry that writes its host out, never by a
 * wildcard such as "*".
 */
export function egressVerdict(rules: EgressRules, dest: { name?: string; addresses: readonly string[]; port: number; local: boolean }): EgressVerdict {
  const cands: Candidate[] = [...(dest.name !== undefined ? [{ name: dest.name }] : []), ...dest.addresses.map((address) => ({ address }))];
  if (cands.some((c) => rules.deny.some((e) => entryMatches(e, c, dest.port)))) return { ok: false, why: 'denied' };
  const connectTo: Candidate[] = [...(dest.name !== undefined ? [{ name: dest.name }] : []), ...dest.addresses.slice(0, 1).map((address) => ({ address }))];
  const usable = rules.allow.filter((e) => !dest.local || e.explicit);
  if (connectTo.some((c) => usable.some((e) => entryMatches(e, c, dest.port)))) return { ok: true };
  if (dest.local && connectTo.some((c) => rules.allow.some((e) => entryMatches(e, c, dest.port)))) return { ok: false, why: 'local' };
  return { ok: false, why: 'unlisted' };
}

/**
 * Before any lookup: whether a named destination's addresses could change what egress decides.
 * A name is resolved only if an allow entry could let it through: one matching the name, or one
 * matching addresses (then any name may resolve into it). Otherwise the sidecar's own resolver
 * would carry a name the agent chose (a DNS covert channel) for nothing: it is refused unlooked-up.
 * Deny by name is decided here too ("denied" wins, as egressVerdict has it). Pure.
 */
export function nameVerdict(rules: EgressRules, name: string, port: number): 'resolve' | 'denied' | 'unlisted' {
  const c = { name };
  if (rules.deny.some((e) => entryMatches(e, c, port))) return 'denied';
  const portOk = (e: EgressEntry) => !e.port || e.port(String(port));
  return rules.allow.some((e) => portOk(e) && (e.addresses || entryMatches(e, c, port))) ? 'resolve' : 'unlisted';
}

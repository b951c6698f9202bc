// Destinations are addresses, not strings. Pure: every spelling of a host the WHATWG URL parser,
// inet_aton (getaddrinfo) or net.connect would take to the same machine canonicalises to one value,
// so the forward proxy's decisions (is it a source? is it denied?) hold for every alias.
//
// Canonical forms: IPv4 "a.b.c.d"; IPv6 RFC 5952 (lower case, longest zero run as "::", no
// brackets), with IPv4-mapped ::ffff:a.b.c.d turned into the IPv4 address (a dual-stack socket
// reaches the IPv4 host); names lower case, ASCII (IDNA), without the root's trailing dot.
import { domainToASCII } from 'node:url';

export type HostSpec = { kind: 'address'; address: string } | { kind: 'name'; name: string };
export type HostResult = HostSpec | { kind: 'invalid'; reason: string };

// ---------------------------------------------------------------- IPv4 (WHATWG URL = inet_aton)

/** One part of an IPv4 literal: decimal, 0x hex or 0-prefixed octal; null when not a number. */
function ipv4Number(s: string): number | null {
  if (s === '') return null;
  let radix = 10;
  if (s.length >= 2 && (s.startsWith('0x') || s.startsWith('0X'))) {
    s = s.slice(2);
    radix = 16;
  } else if (s.length >= 2 && s.startsWith('0')) {
    s = s.slice(1);
    radix = 8;
  }
  if (s === '') return 0;
  const ok = radix === 10 ? /^[0-9]+$/ : radix === 16 ? /^[0-9a-fA-F]+$/ : /^[0-7]+$/;
  if (!ok.test(s)) return null;
  // Long inputs lose precision but stay far above 2^32, which is all that matters here.
  return parseInt(s, radix);
}

/** WHATWG's "ends in a number": such a host is an IPv4 literal or invalid, never a name. */
function endsInNumber(host: string): boolean {
  const parts = host.split('.');
  if (parts.at(-1) === '') {
    if (parts.length === 1) return false;
    parts.pop();
  }
  const last = parts.at(-1)!;
  return /^[0-9]+$/.test(last) || ipv4Number(last) !== null;
}

/**
 * Every IPv4 form the URL parser and inet_aton accept: 1 to 4 parts (the last fills the remaining
 * bytes: "127.1", "2130706433"), each decimal, octal ("0177") or hex ("0x7f"); one trailing dot.
 */
export function parseIPv4(host: string): number | null {
  const parts = host.split('.');
  if (parts.at(-1) === '' && parts.length > 1) parts.pop();
  if (parts.length > 4) return null;
  const nums: number[] = [];
  for (const p of parts) {
    const n = ipv4Number(p);
    if (n === null) return null;
    nums.push(n);
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255)) return null;
  if (last >= 256 ** (4 - nums.length)) return null;
  let v = last;
  nums.forEach((n, i) => {
    v += n * 256 ** (3 - i);
  });
  return v;
}

export function formatIPv4(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

// ---------------------------------------------------------------- IPv6

/** Strict dotted-decimal IPv4 inside an IPv6 literal (the URL parser allows no other form there). */
function embeddedDotted(s: string): [number, number] | null {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return null;
  return [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
}

function groups(side: string): number[] | null {
  if (side === '') return [];
  const out: number[] = [];
  const parts = side.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (i === parts.length - 1 && p.includes('.')) {
      const v4 = embeddedDotted(p);
      if (!v4) return null;
      out.push(...v4);
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
      out.push(parseInt(p, 16));
    }
  }
  return out;
}

/** Eight 16-bit groups, or null. Zone ids ("%eth0") are refused: they name an interface, not a host. */
export function parseIPv6(text: string): number[] | null {
  if (text.includes('%')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  if (halves.length === 1) {
    const g = groups(text);
    return g && g.length === 8 ? g : null;
  }
  const left = groups(halves[0]!);
  const right = groups(halves[1]!);
  if (!left || !right || left.length + right.length > 7) return null;
  // An embedded IPv4 may only end the address.
  if (halves[0]!.includes('.')) return null;
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** RFC 5952 text; IPv4-mapped (::ffff:0:0/96) becomes the IPv4 address itself. */
export function formatIPv6(g: readonly number[]): string {
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return formatIPv4(((g[6]! << 16) | g[7]!) >>> 0);
  let best = -1,
    bestLen = 1,
    i = 0;
  while (i < 8) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------- hosts

/**
 * One host, as written in a URL's host, a CONNECT authority or a config entry, to its canonical
 * form. Brackets mark IPv6; a host that ends in a number must be a valid IPv4 literal; anything
 * else is a DNS name (IDNA-mapped, lower case, at most one trailing dot, LDH labels and "_").
 */
export function parseHost(raw: string): HostResult {
  if (raw.startsWith('[') || raw.endsWith(']')) {
    if (!(raw.startsWith('[') && raw.endsWith(']'))) return { kind: 'invalid', reason: 'unbalanced brackets' };
    const g = parseIPv6(raw.slice(1, -1));
    return g ? { kind: 'address', address: formatIPv6(g) } : { kind: 'invalid', reason: 'not an IPv6 address (zone ids are not accepted)' };
  }
  if (raw.includes(':')) {
    // Unbracketed IPv6, as net.connect and dns.lookup answers write it.
    const g = parseIPv6(raw);
    return g ? { kind: 'address', address: formatIPv6(g) } : { kind: 'invalid', reason: 'not a host' };
  }
  // WHATWG maps the host through IDNA first (full-width digits and dots become ASCII ones).
  const ascii = /^[\x21-\x7e]*$/.test(raw) ? raw.toLowerCase() : domainToASCII(raw);
  if (ascii === '') return { kind: 'invalid', reason: 'not a valid host name' };
  if (endsInNumber(ascii)) {
    const v = parseIPv4(ascii);
    return v === null ? { kind: 'invalid', reason: 'not a valid IPv4 address' } : { kind: 'address', address: formatIPv4(v) };
  }
  const name = ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
  if (name.length === 0 || name.length > 253) return { kind: 'invalid', reason: 'not a valid host name' };
  for (const label of name.split('.')) {
    if (!/^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) return { kind: 'invalid', reason: 'not a valid host name' };
  }
  return { kind: 'name', name };
}

/** A canonical address (from parseHost or canonicalAddress) to its bytes. */
export function addressBytes(address: string): Uint8Array {
  if (!address.includes(':')) {
    const v = parseIPv4(address)!;
    return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  }
  const g = parseIPv6(address)!;
  return Uint8Array.from(g.flatMap((x) => [x >> 8, x & 255]));
}

/** Canonical text of an address as the OS reports it (dns.lookup, os.networkInterfaces); null if it is none. */
export function canonicalAddress(text: string): string | null {
  const h = parseHost(text.includes(':') && !text.startsWith('[') ? `[${text}]` : text);
  return h.kind === 'address' ? h.address : null;
}

/**
 * The IPv4 host an IPv6 address reaches or stands for: IPv4-compatible (::a.b.c.d), SIIT
 * (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002:AABB:CCDD::/48). A deny or a source
 * named by its IPv4 address must also catch these spellings.
 */
export function embeddedIPv4(address: string): string | null {
  if (!address.includes(':')) return null;
  const g = parseIPv6(address)!;
  const v4 = (hi: number, lo: number) => formatIPv4(((hi << 16) | lo) >>> 0);
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 6) && (g[6] !== 0 || g[7]! > 1)) return v4(g[6]!, g[7]!);
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return null;
}

/**
 * The address, the IPv4 address it embeds, and what the socket actually reaches: connecting to
 * 0.0.0.0 reaches 127.0.0.1, and :: reaches ::1.
 */
export function aliases(address: string): string[] {
  if (address === '0.0.0.0') return [address, '127.0.0.1'];
  if (address === '::') return [address, '::1'];
  const e = embeddedIPv4(address);
  return e ? [address, e] : [address];
}

/**
 * This host, whatever the interface: 0.0.0.0/8 and :: connect to the local host, 127.0.0.0/8 and
 * ::1 are loopback, and `own` holds the host's interface addresses (a server bound on 0.0.0.0 is
 * reachable at each of them).
 */
export function isLocalAddress(address: string, own: ReadonlySet<string> = new Set()): boolean {
  return aliases(address).some((a) => {
    if (own.has(a)) return true;
    if (a.includes(':')) return a === '::' || a === '::1';
    const first = Number(a.slice(0, a.indexOf('.')));
    return first === 127 || first === 0;
  });
}

/** Whether `address` is inside the prefix `net/len` (both canonical; families must agree). */
export function inCidr(address: string, net: string, len: number): boolean {
  const a = addressBytes(address);
  const n = addressBytes(net);
  if (a.length !== n.length) return false;
  for (let i = 0; i < a.length; i++) {
    const bits = Math.min(8, Math.max(0, len - i * 8));
    if (bits === 0) return true;
    const mask = (0xff << (8 - bits)) & 0xff;
    if ((a[i]! & mask) !== (n[i]! & mask)) return false;
  }
  return true;
}

/** Default port by scheme; a CONNECT authority must name its port. */
export function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** A canonical host as it goes in a URL or a Host header (IPv6 in brackets). */
export function hostForUrl(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

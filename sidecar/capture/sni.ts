// The server name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), for the TLS passthrough
// listener. Pure and bounded: it reads the bytes the agent sent so far and says whether they hold a
// whole ClientHello, and if so its host_name; it never reads past the buffer and never throws.
// The ClientHello may span several TLS records, and the records several TCP reads.
// Hand-written: the npm packages for this either read the socket themselves and compute
// fingerprints (read-tls-client-hello) or predate record reassembly and bounds (sni 1.0.0).

/** The most bytes the listener buffers before the ClientHello is complete (a large one, with post-quantum key shares, is ~2 KiB). */
export const CLIENT_HELLO_LIMIT = 16 * 1024;

export type SniFailure = 'not_tls' | 'malformed' | 'too_large' | 'no_sni';

export type SniResult =
  /** More bytes are needed; nothing can change before the buffer holds `need` bytes. */
  { kind: 'incomplete'; need: number } | { kind: 'sni'; host: string } | { kind: 'error'; reason: SniFailure; detail: string };

const RECORD_HEADER = 5;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME = 0;
const HOST_NAME = 0;
/** A TLSPlaintext fragment is at most 2^14 bytes. */
const MAX_FRAGMENT = 1 << 14;

const fail = (reason: SniFailure, detail: string): SniResult => ({ kind: 'error', reason, detail });

/** A DNS host name as RFC 6066 allows it (ASCII, no trailing dot); underscores are tolerated. */
const HOST_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;

/** Reads the ClientHello in `buf` (the first bytes of a connection), with at most `limit` bytes buffered. */
export function readClientHello(buf: Uint8Array, limit = CLIENT_HELLO_LIMIT): SniResult {
  // Reassemble the handshake stream from consecutive handshake records, without copying until whole.
  const fragments: Uint8Array[] = [];
  let have = 0;
  let want = -1; // handshake bytes needed (4 + length), once the handshake header is known
  let at = 0;
  for (;;) {
    if (buf.length < at + RECORD_HEADER) return more(at + RECORD_HEADER, limit);
    const type = buf[at]!;
    const major = buf[at + 1]!;
    const len = (buf[at + 3]! << 8) | buf[at + 4]!;
    if (type !== HANDSHAKE) return fail(at === 0 ? 'not_tls' : 'malformed', at === 0 ? 'not a TLS handshake' : 'a non-handshake record inside the ClientHello');
    if (major !== 3) return fail(at === 0 ? 'not_tls' : 'malformed', 'not a TLS record version');
    if (len === 0 || len > MAX_FRAGMENT) return fail('malformed', 'record length out of range');
    const end = at + RECORD_HEADER + len;
    if (end > limit) return fail('too_large', `the ClientHello exceeds ${limit} bytes`);
    if (buf.length < end) return more(end, limit);
    fragments.push(buf.subarray(at + RECORD_HEADER, end));
    have += len;
    at = end;
    if (want < 0 && have >= 4) {
      const head = concat(fragments, 4);
      if (head[0] !== CLIENT_HELLO) return fail('malformed', 'the first handshake message is not a ClientHello');
      want = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (want > limit) return fail('too_large', `the ClientHello exceeds ${limit} bytes`);
    }
    if (want >= 0 && have >= want) return parseBody(concat(fragments, want).subarray(4));
  }
}

function more(need: number, limit: number): SniResult {
  return need > limit ? fail('too_large', `the ClientHello exceeds ${limit} bytes`) : { kind: 'incomplete', need };
}

function concat(parts: readonly Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    if (o >= n) break;
    const take = Math.min(p.length, n - o);
    out.set(p.subarray(0, take), o);
    o += take;
  }
  return out;
}

/** A bounds-checked reader over one vector: every read past its end fails the parse. */
class Reader {
  constructor(
    private b: Uint8Array,
    private at = 0,
    private end = b.length,
  ) {}
  get left(): number {
    return this.end - this.at;
  }
  u8(): number | null {
    return this.left >= 1 ? this.b[this.at++]! : null;
  }
  u16(): number | null {
    if (this.left < 2) return null;
    const v = (this.b[this.at]! << 8) | this.b[this.at + 1]!;
    this.at += 2;
    return v;
  }
  skip(n: number): boolean {
    if (this.left < n) return false;
    this.at += n;
    return true;
  }
  /** A sub-reader over the next n bytes (a length-prefixed vector), or null when they are not there. */
  sub(n: number | null): Reader | null {
    if (n === null || this.left < n) return null;
    const r = new Reader(this.b, this.at, this.at + n);
    this.at += n;
    return r;
  }
  bytes(): Uint8Array {
    return this.b.subarray(this.at, this.end);
  }
}

function parseBody(body: Uint8Array): SniResult {
  const r = new Reader(body);
  if (!r.skip(2 + 32)) return fail('malformed', 'ClientHello too short'); // legacy_version, random
  const sessionLen = r.u8();
  if (sessionLen === null || sessionLen > 32 || !r.skip(sessionLen)) return fail('malformed', 'bad legacy_session_id');
  const suitesLen = r.u16();
  if (suitesLen === null || suitesLen < 2 || suitesLen % 2 !== 0 || !r.skip(suitesLen)) return fail('malformed', 'bad cipher_suites');
  const compLen = r.u8();
  if (compLen === null || compLen < 1 || !r.skip(compLen)) return fail('malformed', 'bad legacy_compression_methods');
  if (r.left === 0) return fail('no_sni', 'the ClientHello has no extensions');
  const exts = r.sub(r.u16());
  if (!exts || r.left !== 0) return fail('malformed', 'bad extensions length');
  const seen = new Set<number>();
  let host: string | null = null;
  while (exts.left > 0) {
    const type = exts.u16();
    const data = exts.sub(exts.u16());
    if (type === null || !data) return fail('malformed', 'truncated extension');
    if (seen.has(type)) return fail('malformed', 'an extension appears twice');
    seen.add(type);
    if (type !== SERVER_NAME) continue;
    const named = serverName(data);
    if (typeof named !== 'string') return named;
    host = named;
  }
  return host === null ? fail('no_sni', 'the ClientHello names no server') : { kind: 'sni', host };
}

/** The one host_name of a server_name extension (RFC 6066 §3), lower case. */
function serverName(data: Reader): string | SniResult {
  const list = data.sub(data.u16());
  if (!list || data.left !== 0 || list.left === 0) return fail('malformed', 'bad server_name list');
  let host: string | null = null;
  while (list.left > 0) {
    const nameType = list.u8();
    const name = list.sub(list.u16());
    if (nameType === null || !name) return fail('malformed', 'truncated server_name entry');
    if (nameType !== HOST_NAME) continue;
    if (host !== null) return fail('malformed', 'more than one host_name');
    let text = '';
    for (const c of name.bytes()) {
      if (c < 0x21 || c > 0x7e) return fail('malformed', 'host_name is not a printable ASCII name');
      text += String.fromCharCode(c);
    }
    if (!HOST_NAME_RE.test(text)) return fail('malformed', 'host_name is not a DNS host name');
    host = text.toLowerCase();
  }
  return host ?? fail('no_sni', 'the server_name extension has no host_name');
}

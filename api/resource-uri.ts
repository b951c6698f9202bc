// Resource URIs as the upstream reads them. The gates compare, and the sidecar forwards, one
// canonical spelling per resource, so another spelling of a hidden or denied URI cannot reach it.
//
// The string is first read by the WHATWG URL parser (what MCP SDK servers run: `new URL(uri)`),
// which trims surrounding whitespace, drops tabs and newlines, lowercases the scheme (and the host
// of special schemes), removes `.`/`..` segments (also `%2e` ones) and default ports. RFC 3986 §6.2.2
// syntax-based normalisation follows, the same for special (http, file) and other (demo://) schemes:
// host lowercased, percent-encoded unreserved characters decoded, the hex of the others uppercased,
// characters a URI may not carry literally percent-encoded. Then the rules servers' routing needs:
// empty path segments removed (`a//b` is `a/b` to file-backed servers), an empty query dropped,
// and numbers in path segments written one way (`007` is `7`; other spellings that number parsers
// read as an integer, such as `1.0`, `+1`, `0x1`, `1e0`, are refused).
// Anything that cannot be brought to one spelling is refused. Pure; no dependencies but zod.
import { z } from 'zod';
import { Glob } from './primitives.js';

export type CanonicalUri = { ok: true; uri: string } | { ok: false; reason: string };

/**
 * Longer URIs are refused: real resource URIs are far shorter, and canonicalising costs up to
 * ~1 µs of CPU per character (measured on a 2M-character URI), which must stay small per message.
 */
export const MAX_URI_LENGTH = 8192;

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });
const HEX = '0123456789ABCDEF';
const SUB_DELIMS = "!$&'()*+,;=";

function unreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

type Part = 'host' | 'segment' | 'opaque' | 'query';

/** May this ASCII character stand for itself in this part (RFC 3986 §3)? */
function literalOk(c: number, part: Part): boolean {
  if (unreserved(c) || SUB_DELIMS.includes(String.fromCharCode(c))) return true;
  if (part === 'host') return false;
  if (c === 0x3a || c === 0x40) return true; // ":" "@" (pchar)
  if (part === 'segment') return false;
  return c === 0x2f || (part === 'query' && c === 0x3f); // "/" and, in a query, "?"
}

/** literalOk as one table per part, and each ASCII character's text: the loop below runs per character. */
const LITERAL: Record<Part, Uint8Array> = { host: new Uint8Array(128), segment: new Uint8Array(128), opaque: new Uint8Array(128), query: new Uint8Array(128) };
const ASCII: string[] = [];
const LOWER: string[] = [];
const ENCODED: string[] = [];
for (let c = 0; c < 128; c++) {
  for (const part of ['host', 'segment', 'opaque', 'query'] as const) LITERAL[part][c] = literalOk(c, part) ? 1 : 0;
  ASCII.push(String.fromCharCode(c));
  LOWER.push(String.fromCharCode(c).toLowerCase());
  ENCODED.push(`%${HEX[c >> 4]}${HEX[c & 15]}`);
}

type Normalised = { ok: true; text: string; decoded: string } | { ok: false; reason: string };

// Parts that are already in canonical form (the common case): no per-character work.
const PLAIN: Record<Part, RegExp> = {
  host: /^[a-z0-9\-._~!$&'()*+,;=]*$/,
  segment: /^[A-Za-z0-9\-._~!$&'()*+,;=:@]*$/,
  opaque: /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/,
  query: /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*$/,
};

/** Percent-encoding normalisation of one part; `decoded` is its full percent-decoding (UTF-8). */
function normalisePart(s: string, part: Part): Normalised {
  if (PLAIN[part].test(s)) return { ok: true, text: s, decoded: s };
  const literal = LITERAL[part];
  const chars = part === 'host' ? LOWER : ASCII;
  let out = '';
  for (let i = 0; i < s.length; ) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const h = hexValue(s.charCodeAt(i + 1));
      const l = hexValue(s.charCodeAt(i + 2));
      if (h < 0 || l < 0) return fail('invalid percent-encoding (a "%" not followed by two hex digits)');
      const b = h * 16 + l;
      if (b === 0) return fail('percent-encoded NUL (%00)');
      if (part !== 'query' && (b < 0x20 || b === 0x7f)) return fail('percent-encoded control character');
      if (part === 'segment' && (b === 0x2f || b === 0x5c)) return fail('percent-encoded "/" or "\\" in a path segment (%2F, %5C)');
      out += unreserved(b) ? chars[b] : (ENCODED[b] ?? `%${HEX[h]}${HEX[l]}`);
      i += 3;
    } else if (c < 0x80) {
      if (c === 0x5c && part !== 'query') return fail('backslash in the URI');
      out += literal[c] ? chars[c] : ENCODED[c];
      i += 1;
    } else {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out += encodeURIComponent(ch); // UTF-8, uppercase hex; well-formed (lone surrogates were refused)
      i += ch.length;
    }
  }
  if (!out.includes('%')) return { ok: true, text: out, decoded: out };
  // decodeURIComponent throws on byte sequences that are not UTF-8 (overlong forms and
  // surrogates included), as a strict decoder does.
  try {
    return { ok: true, text: out, decoded: decodeURIComponent(out) };
  } catch {
    return fail('percent-encoded bytes that are not UTF-8');
  }
}

/**
 * A path segment number parsers read as an integer, written otherwise than plain decimal:
 * `1.0`, `+1`, `-0`, `1e0`, `0x1`, ` 1` (JavaScript `Number`), `1_0` and non-ASCII digits (Python
 * `int`). Values beyond 2^53 are not ids a `Number` can tell apart, so hex hashes pass.
 */
function ambiguousNumber(d: string): boolean {
  if (/^(0|-?[1-9][0-9]*)$/.test(d)) return false;
  const n = Number(d);
  if (d.trim() !== '' && Number.isInteger(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER && String(n) !== d) return true;
  return /^\s*[+-]?\p{Nd}+(?:_\p{Nd}+)*(?:\.\p{Nd}*)?\s*$/u.test(d) && !/^-?[0-9]+(?:\.[0-9]+)?$/.test(d);
}

/** The canonical text, and how the WHATWG parser serialised the input (for the fixed-point check). */
// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: the RFC 3986 section 6 steps in order, each refusing with its own reason; split up they would pass partial state around
function normaliseUri(input: string): { ok: true; uri: string; href: string } | { ok: false; reason: string } {
  if (input.length > MAX_URI_LENGTH) return fail(`longer than ${MAX_URI_LENGTH} characters`);
  // In a u-mode regex a surrogate range matches only unpaired halves.
  if (/[\uD800-\uDFFF]/u.test(input)) return fail('not well-formed Unicode (a lone surrogate)');
  // As the WHATWG parser reads it: surrounding whitespace trimmed, tabs and newlines dropped.
  const s = input.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '').replace(/[\t\n\r]/g, '');
  if (/[\x00-\x1f\x7f-\x9f]/.test(s)) return fail('control character in the URI');
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return fail('not an absolute URI');
  }
  // Servers differ on fragments (kept, stripped, an error) and on user information: refused.
  if (u.href.includes('#')) return fail('a resource URI has no #fragment');
  if (u.username !== '' || u.password !== '') return fail('user information (user@) in a resource URI');
  const scheme = u.protocol;
  const authority = u.href.startsWith(`${scheme}//`);
  let out = scheme;
  if (authority) {
    out += '//';
    if (u.hostname.startsWith('[')) {
      out += u.hostname; // IPv6, already serialised by the parser
    } else {
      const h = normalisePart(u.hostname, 'host');
      if (!h.ok) return h;
      // A fully qualified name's trailing dot names the same host to a resolver.
      const host = h.text.endsWith('.') ? h.text.slice(0, -1) : h.text;
      if (host.endsWith('.') || (host === '' && h.text !== '')) return fail('empty label at the end of the host');
      out += host;
    }
    if (u.port !== '') out += `:${u.port}`;
  }
  const path = u.pathname;
  if (!authority && !path.startsWith('/')) {
    const p = normalisePart(path, 'opaque'); // urn:…, mailto:…: no segments
    if (!p.ok) return p;
    out += p.text;
  } else if (path !== '') {
    const segs = path.split('/').slice(1);
    const kept: string[] = [];
    let trailing = false;
    for (let i = 0; i < segs.length; i++) {
      const last = i === segs.length - 1;
      const n = normalisePart(segs[i]!, 'segment');
      if (!n.ok) return n;
      let t = n.text;
      if (t === '' || t === '.' || t === '..') {
        if (t === '..') kept.pop();
        trailing = last;
        continue;
      }
      if (/^[0-9]+$/.test(t)) t = t.replace(/^0+(?=[0-9])/, '');
      else if (ambiguousNumber(n.decoded))
        return fail(`path segment "${t}" is a number written in a form servers may read as another; write it as a plain decimal integer`);
      kept.push(t);
      trailing = false;
    }
    out += `/${kept.join('/')}${trailing && kept.length > 0 ? '/' : ''}`;
  }
  if (u.search !== '') {
    const q = normalisePart(u.search.slice(1), 'query');
    if (!q.ok) return q;
    if (q.text !== '') out += `?${q.text}`;
  }
  return { ok: true, uri: out, href: u.href };
}

/**
 * The canonical form of a resource URI, or why there is none. Idempotent, and `new URL(uri).href`
 * of the result is the result itself (checked here, so a parser surprise is a refusal, never a
 * second spelling).
 */
export function canonicalUri(input: string): CanonicalUri {
  const once = normaliseUri(input);
  if (!once.ok) return once;
  if (once.uri.length > MAX_URI_LENGTH) return fail(`longer than ${MAX_URI_LENGTH} characters in canonical form`);
  const twice = normaliseUri(once.uri);
  if (!twice.ok || twice.uri !== once.uri || twice.href !== once.uri) return fail('the URI has no stable canonical form');
  return { ok: true, uri: once.uri };
}

// Templates and globs hold parts that are not URI text ({var} expressions, * and ?). They are put
// aside as placeholders that every step above leaves alone (lowercase letters and digits), and put
// back afterwards; a placeholder that a step removed, doubled or moved means no canonical form.
const MARK = 'zztgh';
const placeholder = (i: number): string => `${MARK}${i}zz`;

type Piece = { lit: string } | { hole: string };

function canonicalWithHoles(pieces: readonly Piece[]): { ok: true; pieces: Piece[] } | { ok: false; reason: string } {
  let text = '';
  const holes: string[] = [];
  for (const p of pieces) {
    if ('lit' in p) {
      if (p.lit.toLowerCase().includes(MARK)) return fail(`contains the reserved text "${MARK}"`);
      text += p.lit;
    } else {
      text += placeholder(holes.length);
      holes.push(p.hole);
    }
  }
  const c = canonicalUri(text);
  if (!c.ok) return c;
  const out: Piece[] = [];
  let rest = c.uri;
  for (let i = 0; i < holes.length; i++) {
    const at = rest.indexOf(placeholder(i));
    if (at < 0) return fail('a template expression or wildcard sits where the URI cannot keep it (e.g. in a dot segment)');
    if (at > 0) out.push({ lit: rest.slice(0, at) });
    out.push({ hole: holes[i]! });
    rest = rest.slice(at + placeholder(i).length);
  }
  if (rest.includes(MARK)) return fail('a template expression or wildcard was repeated by normalisation');
  if (rest !== '') out.push({ lit: rest });
  return { ok: true, pieces: out };
}

/** Splits literal text around RFC 6570 `{…}` expressions; null when braces do not pair. */
function templatePieces(text: string): Piece[] | null {
  const out: Piece[] = [];
  const re = /\{[^{}]*\}/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push({ lit: text.slice(last, m.index) });
    out.push({ hole: m[0] });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ lit: text.slice(last) });
  return out.some((p) => 'lit' in p && /[{}]/.test(p.lit)) ? null : out;
}

/**
 * The canonical form of a URI template (resources/templates/list, completion/complete's
 * ref/resource): the URI text around its `{…}` expressions is canonicalised, the expressions are
 * kept as written. A plain URI comes out as canonicalUri gives it.
 */
export function canonicalUriTemplate(input: string): CanonicalUri {
  const pieces = templatePieces(input);
  if (pieces === null) return fail('unbalanced "{" or "}" in a URI template');
  if (!pieces.some((p) => 'hole' in p)) return canonicalUri(input);
  const c = canonicalWithHoles(pieces);
  if (!c.ok) return c;
  return { ok: true, uri: c.pieces.map((p) => ('lit' in p ? p.lit : p.hole)).join('') };
}

/**
 * A probe for a hidden resource: same scheme and authority, a path that cannot exist. Built from
 * parts rather than by setting `URL.pathname`, which an opaque URI (`urn:…`) ignores: the probe
 * would then be the hidden URI itself.
 */
export function probeUriFor(canonical: string, probeName: string): string {
  const fallback = `thoughtgate:///${probeName}`;
  let u: URL;
  try {
    u = new URL(canonical);
  } catch {
    return fallback;
  }
  const authority = u.href.startsWith(`${u.protocol}//`);
  const probe = authority ? `${u.protocol}//${u.host}/${probeName}` : u.pathname.startsWith('/') ? `${u.protocol}/${probeName}` : `${u.protocol}${probeName}`;
  const c = canonicalUri(probe);
  return c.ok && c.uri === probe && probe !== canonical ? probe : fallback;
}

// Resource globs in the config are compared with canonical URIs, so they must be written in
// canonical form themselves: a glob that is not would never match the spelling it names (a hidden
// resource shown, a deny rule skipped). Such a glob is refused, with the canonical spelling in the
// message, rather than rewritten behind the author's back (a wildcard next to a host or scheme
// could be read either way).

/** Glob text → pieces: literal text (escapes resolved) and wildcards (`*`, `?`) as holes. */
function globPieces(glob: string): Piece[] {
  const out: Piece[] = [];
  let lit = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) lit += glob[++i]!;
    else if (c === '*' || c === '?') {
      if (lit !== '') out.push({ lit });
      lit = '';
      out.push({ hole: c });
    } else lit += c;
  }
  if (lit !== '') out.push({ lit });
  return out;
}

const escapeGlob = (s: string): string => s.replace(/[*?\\]/g, (c) => `\\${c}`);
const globText = (pieces: readonly Piece[]): string => pieces.map((p) => ('lit' in p ? escapeGlob(p.lit) : p.hole)).join('');

/** Literal text of a glob that is not URI-shaped (e.g. the `.env` of `*.env`): what it may contain. */
function checkFragment(lit: string): string | null {
  if (/[\x00-\x20\x7f-\x9f]/.test(lit)) return 'whitespace or a control character';
  if (lit.includes('#')) return 'a "#" (resource URIs have no fragment)';
  if (/[^\x00-\x7f]/.test(lit)) return 'non-ASCII characters (canonical URIs carry them percent-encoded, e.g. é as %C3%A9)';
  const pct = /%(.{0,2})/gs;
  for (const m of lit.matchAll(pct)) {
    const h = hexValue(m[1]!.charCodeAt(0));
    const l = hexValue(m[1]!.charCodeAt(1));
    if (h < 0 || l < 0) return 'a "%" not followed by two hex digits';
    if (unreserved(h * 16 + l)) return `"${m[0]}", an encoded unreserved character (canonical URIs have "${String.fromCharCode(h * 16 + l)}")`;
    if (m[1] !== m[1]!.toUpperCase()) return `"${m[0]}" (canonical URIs use uppercase hex: "${m[0].toUpperCase()}")`;
  }
  return null;
}

/** null when a resource glob is in canonical form, else why not (with the canonical spelling when there is one). */
export function resourceGlobProblem(glob: string): string | null {
  const pieces = globPieces(glob);
  const first = pieces[0];
  // URI-shaped: it starts with a literal scheme. Otherwise where a literal falls (scheme, host,
  // path) is unknown, and only what no canonical URI contains can be checked.
  if (first && 'lit' in first && /^[A-Za-z][A-Za-z0-9+.-]*:/.test(first.lit)) {
    const withTemplates: Piece[] = [];
    for (const p of pieces) {
      if ('hole' in p) {
        withTemplates.push(p);
        continue;
      }
      const t = templatePieces(p.lit);
      if (t === null) return 'unbalanced "{" or "}"';
      withTemplates.push(...t);
    }
    const c = canonicalWithHoles(withTemplates);
    if (!c.ok) return `not a resource URI ThoughtGate can compare: ${c.reason}`;
    const canonical = globText(c.pieces.flatMap((p) => ('hole' in p && p.hole.startsWith('{') ? [{ lit: p.hole }] : [p])));
    return canonical === globText(pieces)
      ? null
      : `not in canonical form; write it as "${canonical}" (resource URIs are compared in canonical form, see docs/configuration.md)`;
  }
  for (const p of pieces) {
    if (!('lit' in p)) continue;
    const why = checkFragment(p.lit);
    if (why) return `contains ${why}, so it can never match a canonical resource URI (see docs/configuration.md)`;
  }
  return null;
}

/** A glob on resource URIs (expose.resources, rules[].match.resource): must be canonical. */
export const ResourceGlob = Glob.superRefine((g, ctx) => {
  const problem = resourceGlobProblem(g);
  if (problem) ctx.addIssue({ code: 'custom', message: `resource glob "${g}": ${problem}` });
});
export const ResourceGlobList = z.union([ResourceGlob, z.array(ResourceGlob).min(1)], { error: 'expected a glob or a non-empty list of globs' });

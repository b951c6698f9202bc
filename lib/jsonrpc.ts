// JSON-RPC 2.0 parsing for the request path.
//
// The proxy decides on what it parsed and forwards the original bytes, so the parse must be exactly the
// reading an upstream will make: ids keep their exact token text, duplicate keys (read differently by
// different parsers) make a message invalid, and anything JSON.parse rejects is a parse error.
//
// One hand-written single-pass scanner validates the text, tracks nesting and duplicate keys, and records
// per message its source span and the span of its `id` value. Values then come from one native
// JSON.parse of the whole body (faster than building them in JS, and it creates `__proto__` keys as
// plain own properties).

import { Buffer, isUtf8 } from 'node:buffer';
import {
  BACKSLASH,
  COLON,
  COMMA,
  CR,
  D0,
  D1,
  D9,
  DOT,
  LBRACE,
  LBRACKET,
  LF,
  LOWER_B,
  LOWER_E,
  LOWER_F,
  LOWER_N,
  LOWER_R,
  LOWER_T,
  LOWER_U,
  MINUS,
  PLUS,
  QUOTE,
  RBRACE,
  RBRACKET,
  SLASH,
  SPACE,
  TAB,
  UPPER_E,
} from './char-codes.js';

export interface RawId {
  raw: string; // exact JSON token text of the id, e.g. `1`, `"1"`, `1.0`, `12345678901234567890`
  value: string | number;
}

export type Message =
  | { kind: 'request'; id: RawId; method: string; params: unknown; raw: string }
  | { kind: 'notification'; method: string; params: unknown; raw: string }
  | { kind: 'response'; id: RawId | null; isError: boolean; result?: unknown; error?: unknown; raw: string }
  | { kind: 'invalid'; id: RawId | null; reason: string; raw: string };

export type Parsed =
  | { ok: true; batch: false; message: Message }
  | { ok: true; batch: true; messages: Message[] }
  | { ok: false; code: -32700 | -32600; reason: string };

/** Containers nested deeper than this are a parse error (the scanner is iterative; this bounds work and memory). */
export const MAX_DEPTH = 512;

const OBJ = 1,
  ARR = 2;

// Message-level keys that classification needs, recorded as bits while scanning.
const K_JSONRPC = 1,
  K_ID = 2,
  K_METHOD = 4,
  K_PARAMS = 8,
  K_RESULT = 16,
  K_ERROR = 32;

// Objects with more keys than this switch duplicate detection from a linear scan (of key hashes) to a Set.
const LINEAR_KEYS = 32;

// Scanner scratch state, reused across calls (parsing is synchronous, so never re-entered) to keep
// the hot path free of per-call allocations.
const ctype = new Uint8Array(MAX_DEPTH + 2);
const keyBase = new Int32Array(MAX_DEPTH + 2);
const keySets: (Set<string> | undefined)[] = new Array(MAX_DEPTH + 2).fill(undefined);
// Keys of the open objects, as a stack of source spans plus a hash, so that the common case (small
// objects, unescaped keys) compares keys without allocating strings. Escaped keys are decoded into
// escKeys and their kStart is -1 - (index in escKeys).
let kStart = new Int32Array(64);
let kEnd = new Int32Array(64);
let kHash = new Int32Array(64);
let keyTop = 0;
const escKeys: string[] = [];
// Per message (index 0 for a single body, one per element for a batch).
const msgStart: number[] = [];
const msgEnd: number[] = [];
const idStart: number[] = []; // -1: no id key; -2: id key repeated
const idEnd: number[] = [];
const keyMask: number[] = [];
// First duplicate key of each message, as a span (-1: none) or, when it had escapes, its decoded text.
// Spans rather than strings: a slice would keep the whole body alive in this module-level table.
const dupStart: number[] = [];
const dupEnd: number[] = [];
const dupDec: (string | null)[] = [];
let usedSets = false; // some keySets entry may still hold slices of the body
let msgCount = 0;
let batchBody_ = false;
// Set by readKey: the key just read is the first `id` of a message object.
let keyIsId = false;
let failReason = '';

function fail(reason: string, pos: number): -1 {
  failReason = `${reason} at offset ${pos}`;
  return -1;
}

// A run of string characters that need no attention. A sticky regex skips such runs several times
// faster than a charCodeAt loop, even for short strings (irregexp compiles it to a native loop).
const PLAIN_RUN = /[^"\\\x00-\x1f]*/y;

/** pos is at the opening quote; returns the index after the closing quote, or -1. */
function scanString(s: string, pos: number): number {
  const start = pos;
  pos++;
  for (;;) {
    PLAIN_RUN.lastIndex = pos;
    PLAIN_RUN.test(s);
    pos = PLAIN_RUN.lastIndex;
    const c = s.charCodeAt(pos++);
    if (c === QUOTE) return pos;
    if (c === BACKSLASH) {
      const e = s.charCodeAt(pos++);
      if (e === LOWER_U) {
        for (let k = 0; k < 4; k++) {
          const h = s.charCodeAt(pos + k);
          // 0-9, A-F, a-f (h | 32 folds upper to lower case)
          if (!((h >= D0 && h <= D9) || ((h | 32) >= 97 && (h | 32) <= LOWER_F))) return fail('invalid \\u escape', pos - 2);
        }
        pos += 4;
      } else if (e !== QUOTE && e !== BACKSLASH && e !== SLASH && e !== LOWER_B && e !== LOWER_F && e !== LOWER_N && e !== LOWER_R && e !== LOWER_T) {
        return fail(Number.isNaN(e) ? 'unterminated string' : 'invalid escape', pos - 2); // NaN: past the end
      }
    } else {
      // c is a control character, or NaN past the end
      return fail(Number.isNaN(c) ? 'unterminated string' : 'control character in string', Number.isNaN(c) ? start : pos - 1);
    }
  }
}

/** pos is at '-' or a digit; returns the index after the number, or -1. Out-of-range reads give NaN. */
function scanNumber(s: string, pos: number): number {
  const start = pos;
  let c = s.charCodeAt(pos);
  if (c === MINUS) c = s.charCodeAt(++pos);
  if (c === D0) {
    c = s.charCodeAt(++pos);
  } else if (c >= D1 && c <= D9) {
    do c = s.charCodeAt(++pos);
    while (c >= D0 && c <= D9);
  } else {
    return fail('invalid number', start);
  }
  if (c === DOT) {
    c = s.charCodeAt(++pos);
    if (!(c >= D0 && c <= D9)) return fail('invalid number', start);
    do c = s.charCodeAt(++pos);
    while (c >= D0 && c <= D9);
  }
  if (c === LOWER_E || c === UPPER_E) {
    c = s.charCodeAt(++pos);
    if (c === PLUS || c === MINUS) c = s.charCodeAt(++pos);
    if (!(c >= D0 && c <= D9)) return fail('invalid number', start);
    do c = s.charCodeAt(++pos);
    while (c >= D0 && c <= D9);
  }
  return pos;
}

function skipWs(s: string, pos: number, n: number): number {
  while (pos < n) {
    const c = s.charCodeAt(pos);
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) break;
    pos++;
  }
  return pos;
}

function spanEquals(s: string, start: number, end: number, str: string): boolean {
  return end - start === str.length && s.startsWith(str, start);
}

/** Is the key (already known to have name's length) equal to name? */
function keyIs(s: string, ks: number, dec: string | null, name: string): boolean {
  return dec === null ? s.startsWith(name, ks) : dec === name;
}

/** Is stacked key j equal to the key at s[ks, ke) (dec: its decoded text when it had escapes)? */
function keyEquals(s: string, j: number, ks: number, ke: number, dec: string | null): boolean {
  const js = kStart[j]!;
  if (js < 0) {
    const jd = escKeys[-1 - js]!;
    return dec !== null ? jd === dec : spanEquals(s, ks, ke, jd);
  }
  const je = kEnd[j]!;
  if (dec !== null) return spanEquals(s, js, je, dec);
  const len = ke - ks;
  if (je - js !== len) return false;
  for (let i = 0; i < len; i++) if (s.charCodeAt(js + i) !== s.charCodeAt(ks + i)) return false;
  return true;
}

function keyText(s: string, j: number): string {
  const js = kStart[j]!;
  return js < 0 ? escKeys[-1 - js]! : s.slice(js, kEnd[j]);
}

function pushKey(ks: number, ke: number, h: number, dec: string | null): void {
  if (keyTop === kStart.length) {
    const cap = keyTop * 2;
    const ns = new Int32Array(cap),
      ne = new Int32Array(cap),
      nh = new Int32Array(cap);
    ns.set(kStart);
    ne.set(kEnd);
    nh.set(kHash);
    kStart = ns;
    kEnd = ne;
    kHash = nh;
  }
  kStart[keyTop] = dec === null ? ks : -escKeys.push(dec);
  kEnd[keyTop] = ke;
  kHash[keyTop] = h;
  keyTop++;
}

/**
 * Reads `"key" :` with pos at the key's opening quote, checks for a duplicate among the keys of the
 * object at `depth`, and for message-level objects records the keys classification needs.
 * Returns the index of the value (whitespace skipped), or -1.
 */
// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: part of the single-pass scanner: one loop over a state machine reads better than helpers called per character
function readKey(s: string, pos: number, n: number, depth: number, msgLevel: boolean, m: number): number {
  if (s.charCodeAt(pos) !== QUOTE) return fail(pos >= n ? 'unexpected end of input' : 'expected string key', pos);
  const q = pos;
  // Keys are short: one loop both checks and hashes them; anything unusual takes the general path.
  let h = 0;
  let c = s.charCodeAt(++pos);
  while (c !== QUOTE && c !== BACKSLASH && c >= SPACE) {
    h = (Math.imul(h, 31) + c) | 0;
    c = s.charCodeAt(++pos);
  }
  const ks = q + 1;
  let ke = pos;
  let dec: string | null = null;
  if (c === QUOTE) {
    pos++;
  } else {
    pos = scanString(s, q);
    if (pos < 0) return -1;
    // Escaped keys are compared decoded: "a" and "\u0061" are the same key.
    ke = pos - 1;
    dec = JSON.parse(s.slice(q, pos)) as string;
    h = 0;
    for (let i = 0; i < dec.length; i++) h = (Math.imul(h, 31) + dec.charCodeAt(i)) | 0;
  }

  let dup = false;
  const set = keySets[depth];
  if (set !== undefined) {
    const k = dec ?? s.slice(ks, ke);
    if (set.has(k)) dup = true;
    else set.add(k);
  } else {
    const base = keyBase[depth]!;
    for (let j = base; j < keyTop; j++) {
      if (kHash[j] === h && keyEquals(s, j, ks, ke, dec)) {
        dup = true;
        break;
      }
    }
    if (!dup) {
      if (keyTop - base >= LINEAR_KEYS) {
        // Wide object: move its keys into a Set so detection stays linear overall.
        const big = new Set<string>();
        usedSets = true;
        for (let j = base; j < keyTop; j++) big.add(keyText(s, j));
        big.add(dec ?? s.slice(ks, ke));
        keySets[depth] = big;
        keyTop = base;
      } else {
        pushKey(ks, ke, h, dec);
      }
    }
  }
  if (dup && m >= 0 && dupStart[m] === -1) {
    dupStart[m] = ks;
    dupEnd[m] = ke;
    dupDec[m] = dec;
  }

  pos = skipWs(s, pos, n);
  if (s.charCodeAt(pos) !== COLON) return fail(pos >= n ? 'unexpected end of input' : "expected ':'", pos);
  pos = skipWs(s, pos + 1, n);

  keyIsId = false;
  if (msgLevel) {
    const len = dec === null ? ke - ks : dec.length;
    if (len === 2 && keyIs(s, ks, dec, 'id')) {
      if (keyMask[m]! & K_ID) {
        idStart[m] = -2; // repeated: the message is invalid and its id ambiguous
      } else {
        idStart[m] = pos;
        keyIsId = true;
      }
      keyMask[m] = keyMask[m]! | K_ID;
    } else if (len === 7 && keyIs(s, ks, dec, 'jsonrpc')) keyMask[m] = keyMask[m]! | K_JSONRPC;
    else if (len === 6) {
      if (keyIs(s, ks, dec, 'method')) keyMask[m] = keyMask[m]! | K_METHOD;
      else if (keyIs(s, ks, dec, 'params')) keyMask[m] = keyMask[m]! | K_PARAMS;
      else if (keyIs(s, ks, dec, 'result')) keyMask[m] = keyMask[m]! | K_RESULT;
    } else if (len === 5 && keyIs(s, ks, dec, 'error')) keyMask[m] = keyMask[m]! | K_ERROR;
  }
  return pos;
}

function newMessage(pos: number): number {
  const m = msgCount++;
  msgStart[m] = pos;
  msgEnd[m] = pos;
  idStart[m] = -1;
  idEnd[m] = -1;
  keyMask[m] = 0;
  dupStart[m] = -1;
  dupDec[m] = null;
  return m;
}

/** Validates `s` as JSON and fills the per-message tables. Returns null, or the reason it is not JSON. */
function scan(s: string): string | null {
  const reason = scanBody(s);
  if (usedSets) {
    // A failed scan can leave Sets of open objects behind; drop them so they do not pin the body.
    keySets.fill(undefined);
    usedSets = false;
  }
  return reason;
}

// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: part of the single-pass scanner: one loop over a state machine reads better than helpers called per character
function scanBody(s: string): string | null {
  const n = s.length;
  let pos = 0;
  let depth = 0;
  let msgDepth = 1; // depth of the message objects: 1 for a single body, 2 inside a batch array
  let m = -1; // current message
  let pendingId = false; // the value being scanned is a message-level `id`
  msgCount = 0;
  batchBody_ = false;
  keyTop = 0;
  if (escKeys.length !== 0) escKeys.length = 0;

  for (;;) {
    // Scan one value starting at pos (leading whitespace allowed).
    pos = skipWs(s, pos, n);
    if (pos >= n) return depth === 0 ? 'empty body' : `unexpected end of input at offset ${pos}`;
    let c = s.charCodeAt(pos);
    if (depth === 0) {
      if (c === LBRACKET) {
        batchBody_ = true;
        msgDepth = 2;
      } else {
        m = newMessage(pos);
      }
    } else if (depth === 1 && batchBody_) {
      m = newMessage(pos);
    }

    if (c === LBRACE) {
      if (++depth > MAX_DEPTH) return `nesting deeper than ${MAX_DEPTH} at offset ${pos}`;
      ctype[depth] = OBJ;
      keyBase[depth] = keyTop;
      keySets[depth] = undefined;
      pos = skipWs(s, pos + 1, n);
      if (s.charCodeAt(pos) === RBRACE) {
        pos++;
        depth--;
      } else {
        const msgLevel = depth === msgDepth;
        pos = readKey(s, pos, n, depth, msgLevel, m);
        if (pos < 0) return failReason;
        pendingId = keyIsId;
        continue;
      }
    } else if (c === LBRACKET) {
      if (++depth > MAX_DEPTH) return `nesting deeper than ${MAX_DEPTH} at offset ${pos}`;
      ctype[depth] = ARR;
      pos = skipWs(s, pos + 1, n);
      if (s.charCodeAt(pos) === RBRACKET) {
        pos++;
        depth--;
      } else {
        continue;
      }
    } else if (c === QUOTE) {
      pos = scanString(s, pos);
      if (pos < 0) return failReason;
    } else if (c === MINUS || (c >= D0 && c <= D9)) {
      pos = scanNumber(s, pos);
      if (pos < 0) return failReason;
    } else if (c === LOWER_T && s.startsWith('true', pos)) {
      pos += 4;
    } else if (c === LOWER_F && s.startsWith('false', pos)) {
      pos += 5;
    } else if (c === LOWER_N && s.startsWith('null', pos)) {
      pos += 4;
    } else {
      return `unexpected character at offset ${pos}`;
    }

    // A value just ended at pos. Close containers until one expects another element.
    for (;;) {
      if (depth === msgDepth && pendingId) {
        idEnd[m] = pos;
        pendingId = false;
      }
      if (depth === 0) {
        if (!batchBody_) msgEnd[0] = pos;
        pos = skipWs(s, pos, n);
        return pos < n ? `unexpected data after the JSON value at offset ${pos}` : null;
      }
      if (depth === 1 && batchBody_) msgEnd[m] = pos;
      pos = skipWs(s, pos, n);
      if (pos >= n) return `unexpected end of input at offset ${pos}`;
      c = s.charCodeAt(pos);
      if (ctype[depth] === OBJ) {
        if (c === COMMA) {
          const msgLevel = depth === msgDepth;
          pos = readKey(s, skipWs(s, pos + 1, n), n, depth, msgLevel, m);
          if (pos < 0) return failReason;
          pendingId = keyIsId;
          break;
        }
        if (c !== RBRACE) return `expected ',' or '}' at offset ${pos}`;
        keyTop = keyBase[depth]!;
        keySets[depth] = undefined;
      } else {
        if (c === COMMA) {
          pos++;
          break;
        }
        if (c !== RBRACKET) return `expected ',' or ']' at offset ${pos}`;
      }
      pos++;
      depth--;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(id: RawId | null, reason: string, raw: string): Message {
  return { kind: 'invalid', id, reason, raw };
}

// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: one check per JSON-RPC 2.0 rule, in the order of the spec, each with its own error text
function classify(body: string, m: number, v: unknown, raw: string): Message {
  if (!isPlainObject(v)) return invalid(null, 'message must be a JSON object', raw);
  const mask = keyMask[m]!;
  const is = idStart[m]!;
  let id: RawId | null = null;
  let idOk = false; // the id key is present and a string or a number
  if (is >= 0) {
    const ic = body.charCodeAt(is);
    if (ic === QUOTE || ic === MINUS || (ic >= D0 && ic <= D9)) {
      id = { raw: body.slice(is, idEnd[m]), value: v.id as string | number };
      idOk = true;
    }
  }
  if (dupStart[m] !== -1) {
    const dk = dupDec[m] ?? body.slice(dupStart[m], dupEnd[m]);
    return invalid(id, `duplicate key ${JSON.stringify(dk)}`, raw);
  }
  if (!(mask & K_JSONRPC) || v.jsonrpc !== '2.0') return invalid(id, 'jsonrpc must be "2.0"', raw);

  if (mask & K_METHOD) {
    const method = v.method;
    if (typeof method !== 'string') return invalid(id, 'method must be a string', raw);
    // Both shapes at once would be read as a request by some peers and a response by others.
    if (mask & (K_RESULT | K_ERROR)) return invalid(id, 'a message with method cannot have result or error', raw);
    let params: unknown;
    if (mask & K_PARAMS) {
      params = v.params;
      if (typeof params !== 'object' || params === null) return invalid(id, 'params must be an object or array', raw);
    }
    if (mask & K_ID) {
      if (!idOk) return invalid(null, 'request id must be a string or a number', raw);
      return { kind: 'request', id: id as RawId, method, params, raw };
    }
    return { kind: 'notification', method, params, raw };
  }

  const hasResult = (mask & K_RESULT) !== 0;
  const hasError = (mask & K_ERROR) !== 0;
  if (!hasResult && !hasError) {
    return invalid(id, mask & K_ID ? 'response must have result or error' : 'missing method', raw);
  }
  if (hasResult && hasError) return invalid(id, 'response cannot have both result and error', raw);
  if (mask & K_ID) {
    if (!idOk && v.id !== null) return invalid(null, 'response id must be a string, a number or null', raw);
  } else if (hasResult) {
    // MCP 2025-11-25 lets an error response omit an unreadable id; a result always answers one.
    return invalid(null, 'response without id', raw);
  }
  if (hasError) {
    const e = v.error;
    if (!isPlainObject(e)) return invalid(id, 'error must be an object', raw);
    if (!Number.isInteger(e.code)) return invalid(id, 'error.code must be an integer', raw);
    if (typeof e.message !== 'string') return invalid(id, 'error.message must be a string', raw);
    return { kind: 'response', id, isError: true, error: e, raw };
  }
  return { kind: 'response', id, isError: false, result: v.result, raw };
}

/** Parses a request body. Never throws. */
export function parseJsonRpc(body: string): Parsed {
  const reason = scan(body);
  if (reason !== null) return { ok: false, code: -32700, reason };
  let root: unknown;
  try {
    root = JSON.parse(body);
  } catch {
    // The scanner accepted what JSON.parse did not: a scanner bug. Fail closed.
    return { ok: false, code: -32700, reason: 'invalid JSON' };
  }
  if (Array.isArray(root)) {
    const len = root.length;
    if (len === 0) return { ok: false, code: -32600, reason: 'empty batch' };
    if (len !== msgCount) return { ok: false, code: -32700, reason: 'invalid JSON' }; // as above: fail closed
    const messages: Message[] = new Array(len);
    for (let i = 0; i < len; i++) messages[i] = classify(body, i, root[i], body.slice(msgStart[i], msgEnd[i]));
    return { ok: true, batch: true, messages };
  }
  if (isPlainObject(root)) {
    return { ok: true, batch: false, message: classify(body, 0, root, body.slice(msgStart[0], msgEnd[0])) };
  }
  return { ok: false, code: -32600, reason: 'body must be a JSON-RPC message object or a batch array' };
}

/**
 * Any JSON text read by the same scanner: duplicate keys at any depth and nesting past MAX_DEPTH are
 * refused, as for JSON-RPC bodies. For bodies that are not JSON-RPC (A2A's HTTP+JSON binding), which
 * a server reading the last duplicate would see differently. Never throws.
 */
export function parseStrictJson(body: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  const reason = scan(body);
  if (reason !== null) return { ok: false, reason };
  for (let m = 0; m < msgCount; m++) {
    if (dupStart[m] !== -1) return { ok: false, reason: `duplicate key ${JSON.stringify(dupDec[m] ?? body.slice(dupStart[m], dupEnd[m]))}` };
  }
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch {
    return { ok: false, reason: 'invalid JSON' };
  }
}

/** A RawId for an id the proxy creates itself (e.g. for requests it originates). */
export function rawId(value: string | number): RawId {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError('id must be a finite number');
  return { raw: JSON.stringify(value), value };
}

// The answers ThoughtGate writes live in jsonrpc-reply.ts; re-exported for the parser's callers.

/** Re-assembles raw messages into a batch body, `[a,b]`. */
export function batchBody(raws: string[]): string {
  return `[${raws.join(',')}]`;
}

/**
 * UTF-8 to string, or null when the bytes are not valid UTF-8 (overlongs, surrogates, truncated or
 * out-of-range sequences). A leading BOM is kept, so parseJsonRpc rejects it like JSON.parse does.
 */
export function decodeUtf8Strict(buf: Uint8Array): string | null {
  if (!isUtf8(buf)) return null;
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8');
}

// Numeric text as a peer might read it from a string id ("1", " 1.0", "1e0", "0x1" is not numeric here).
const NUMERIC_TEXT = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/**
 * The keys under which peers may file a request id. Two ids that share a key may be taken for the
 * same request by some peer: the MCP SDK keys its response handlers by the parsed value in a JS Map
 * (1, 1.0, 1e0 and -0/0 collide; integers beyond 2^53 collapse), and other servers turn numeric
 * strings into numbers. So a number has the key of its parsed value, and a string its own text
 * plus, when it reads as a number, that number's key: "1" and 1 share "n:1".
 */
export function idKeys(id: RawId): string[] {
  if (typeof id.value === 'number') return [`n:${String(id.value)}`];
  const keys = [`s:${id.value}`];
  if (NUMERIC_TEXT.test(id.value)) {
    const n = Number(id.value.trim());
    if (Number.isFinite(n)) keys.push(`n:${String(n)}`);
  }
  return keys;
}

/**
 * Ids that make a batch ambiguous: two requests (or invalid elements with an id) whose ids share a key (idKeys), or a response the
 * client sends whose id shares a key with one of the batch's requests (a peer matching by id alone
 * could mix them up). Returns a sentence for the agent, or null.
 */
export function ambiguousIds(messages: readonly Message[]): string | null {
  const requests = new Map<string, string>(); // key -> raw id text
  for (const m of messages) {
    // An invalid element is answered under its id too: it counts as a request here.
    const id = m.kind === 'request' || m.kind === 'invalid' ? m.id : null;
    if (id === null) continue;
    for (const k of idKeys(id)) {
      const prev = requests.get(k);
      if (prev !== undefined) return `requests with ids ${prev} and ${id.raw} in one batch: ids must be unique`;
      requests.set(k, id.raw);
    }
  }
  for (const m of messages) {
    if (m.kind !== 'response' || m.id === null) continue;
    for (const k of idKeys(m.id)) {
      const prev = requests.get(k);
      if (prev !== undefined) return `a response with id ${m.id.raw} and a request with id ${prev} in one batch: ids must be unique`;
    }
  }
  return null;
}

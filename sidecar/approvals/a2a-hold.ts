// Gate 4 for A2A, the pure half (the acts are a2a.ts): which A2A calls can be held, the head and
// keep-alive bytes of a held answer, the refusals before and after that head in each binding's
// shape, and the check that the bytes about to be forwarded are the call that was approved.
//
// Wire facts (/work/a2a/captures/hold-*.txt, DESIGN §1.9): every SDK client accepts a 200 head
// followed by whitespace (JSON) or SSE comments (stream) before the answer; Python's client gives
// up after 5 s without a byte, hence a keep-alive every ≤ 2 s whatever approvals.heldKeepAlive
// says. A JSON-RPC refusal after the head is a JSON-RPC error with the request's id (a `data:`
// event on a stream) and every client reports it with ThoughtGate's message. HTTP+JSON has no
// such place: an error body under 200 is misread as success by two clients, so a refusal after
// the head is a cut connection (reported as an error by every client; the reason is logged).
import { a2aJsonRpcError, a2aRestError, tgRestError } from '../../api/a2a-errors.js';
import { a2aCode, a2aGateError, ERRORS, type ErrorName } from '../../api/errors.js';
import { canonicalA2aMethod } from '../../policy/gates/a2a-methods.js';
import { decodeUtf8Strict, parseJsonRpc, type RawId } from '../../lib/jsonrpc.js';
import { errorResponse, errorText } from '../../lib/jsonrpc-reply.js';
import type { A2aHold } from '../proxy/gate4.js';
import { formatSseEvent } from '../sse.js';
import { a2aRequestHash, type A2aTarget } from './hash.js';
import type { JsonRpcErrorObject } from './tasks.js';

/** The longest silence a held A2A answer may have (Python's client times out after 5 s). */
export const A2A_KEEP_ALIVE_MAX_MS = 2000;
/** What a held JSON answer writes while it waits: whitespace every JSON parser skips. */
export const JSON_KEEP_ALIVE = ' ';
/** What a held SSE answer writes while it waits: a comment, which SSE parsers skip. */
export const SSE_KEEP_ALIVE = ': thoughtgate: waiting for approval\n\n';

/** The methods a human can approve (canonical names; the 0.3 spellings map onto them). */
export const APPROVABLE_A2A = new Set(['SendMessage', 'SendStreamingMessage']);

type Head = Record<string, string>;

export type HoldPlan = { kind: 'refuse'; name: ErrorName; reason: string } | { kind: 'hold'; head: Head; keepAlive: string; intervalMs: number };

/** Whether the call can be held, and how its answer starts. `keepAliveMs`: approvals.heldKeepAlive. */
export function planA2aHold(h: Pick<A2aHold, 'canonical' | 'binding' | 'version' | 'id' | 'stream' | 'decision'>, keepAliveMs: number): HoldPlan {
  if (!APPROVABLE_A2A.has(h.canonical))
    return {
      kind: 'refuse',
      name: 'APPROVAL_UNAVAILABLE',
      reason: `${h.decision.reason}; ThoughtGate asks humans to approve A2A SendMessage and SendStreamingMessage only, so this ${h.canonical} is not forwarded`,
    };
  if (h.binding === 'jsonrpc' && h.id === null)
    return {
      kind: 'refuse',
      name: 'APPROVAL_UNAVAILABLE',
      reason: `${h.decision.reason}; a JSON-RPC notification (no id) has no answer to hold while a human decides, so it is not forwarded; send it as a request`,
    };
  const intervalMs = Math.max(1, Math.min(keepAliveMs, A2A_KEEP_ALIVE_MAX_MS));
  if (h.stream)
    return {
      kind: 'hold',
      head: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
      keepAlive: SSE_KEEP_ALIVE,
      intervalMs,
    };
  // The type the agent itself answers with: JSON-RPC and 0.3 REST application/json, 1.0 REST application/a2a+json.
  const type = h.binding === 'rest' && h.version === '1.0' ? 'application/a2a+json' : 'application/json';
  return { kind: 'hold', head: { 'content-type': type, 'cache-control': 'no-cache' }, keepAlive: JSON_KEEP_ALIVE, intervalMs };
}

export interface Refusal {
  status: number;
  headers: Head;
  body: string;
}

/** A refusal before anything was written (no hold, the approval limit, …) in the binding's shape. */
export function refusalBeforeHead(
  h: Pick<A2aHold, 'binding' | 'version' | 'id' | 'stream'>,
  name: ErrorName,
  d: { reason: string; correlationId: string; rule?: string; retryAfterMs?: number },
): Refusal {
  const data = {
    reason: d.reason,
    correlationId: d.correlationId,
    ...(d.rule !== undefined ? { rule: d.rule } : {}),
    ...(d.retryAfterMs !== undefined ? { retryAfterMs: d.retryAfterMs } : {}),
  };
  const retry: Head = d.retryAfterMs !== undefined ? { 'retry-after': String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))) } : {};
  // A 0.3 stream method's refusal is one SSE error event: the 0.3.14 client reads nothing else there.
  if (h.binding === 'jsonrpc' && h.version === '0.3' && h.stream)
    return {
      status: 200,
      headers: { 'content-type': 'text/event-stream', ...retry },
      body: `event: error\ndata: ${errorText(h.id, a2aGateError(name, data))}\n\n`,
    };
  if (h.binding === 'jsonrpc')
    return { status: 200, headers: { 'content-type': 'application/json', ...retry }, body: errorText(h.id, a2aGateError(name, data)) };
  const e = tgRestError(h.version, name, data);
  return { status: e.http, headers: { 'content-type': e.contentType, ...retry }, body: JSON.stringify(e.body) };
}

const NAME_BY_CODE = new Map<number, ErrorName>(Object.entries(ERRORS).map(([name, e]) => [e.code as number, name as ErrorName]));

/** ThoughtGate's error as an A2A client must get it: its MCP code moved to the A2A block (api/errors.ts a2aCode). */
export function toA2aError(e: JsonRpcErrorObject): JsonRpcErrorObject {
  const name = NAME_BY_CODE.get(e.code);
  return name === undefined ? e : { ...e, code: a2aCode(name) };
}

/**
 * The body that ends a held answer with a refusal (rejected, expired, cancelled, the agent
 * unreachable…): JSON-RPC: the error with the request's id (an SSE `data:` event on a stream).
 * HTTP+JSON: null, the connection is to be cut (nothing under a 200 would read as an error).
 */
export function refusalAfterHead(h: Pick<A2aHold, 'binding' | 'id' | 'stream'>, error: JsonRpcErrorObject): string | null {
  if (h.binding === 'rest') return null;
  const e = toA2aError(error);
  const text = errorResponse(h.id as RawId | null, e.code, e.message, e.data);
  return h.stream ? formatSseEvent({ data: text }) : text;
}

/** A2A's InvalidParams (-32602; HTTP+JSON 400) before anything was written, in the binding's shape. */
export function invalidParamsBeforeHead(h: Pick<A2aHold, 'binding' | 'version' | 'id' | 'stream'>, message: string): Refusal {
  if (h.binding === 'rest') {
    const e = a2aRestError(h.version, 'INVALID_PARAMS', message);
    return { status: e.http, headers: { 'content-type': e.contentType }, body: JSON.stringify(e.body) };
  }
  const text = errorText(h.id, a2aJsonRpcError(h.version, 'INVALID_PARAMS', message));
  if (h.version === '0.3' && h.stream) return { status: 200, headers: { 'content-type': 'text/event-stream' }, body: `event: error\ndata: ${text}\n\n` };
  return { status: 200, headers: { 'content-type': 'application/json' }, body: text };
}

/**
 * The first number literal in a JSON text (valid JSON: the held body was parsed) whose parsed
 * value is not what the digits say: an integer beyond ±(2^53−1), or a literal out of double range.
 * A human approving it would see the rounded value (JSON.parse) while an agent in Python reads the
 * digits exactly. `fromDepth`: only literals nested at least this deep (a JSON-RPC request's id
 * is at depth 1 and is echoed as sent, never shown). Null when every number is exact.
 */
export function inexactNumber(text: string, fromDepth: number): string | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skipped whole, escapes included.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const m = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
      m.lastIndex = i;
      const lit = m.exec(text)![0];
      i += lit.length - 1;
      if (depth < fromDepth) continue;
      const n = Number(lit);
      if (!Number.isFinite(n) || (!/[.eE]/.test(lit) && !Number.isSafeInteger(n))) return lit;
    }
  }
  return null;
}

/**
 * The params of a held call read from its bytes (JSON-RPC: `params` of the one request, whose
 * method must spell `canonical`; REST: the body): what the human sees and the hash binds.
 * `inexact`: a number in them would be shown other than the agent reads it (inexactNumber).
 */
export function readHeldParams(
  h: Pick<A2aHold, 'binding' | 'canonical' | 'bytes'>,
): { ok: true; params: Record<string, unknown> } | { ok: false; reason: string; inexact?: string } {
  const text = decodeUtf8Strict(h.bytes);
  if (text === null) return { ok: false, reason: 'the held body is not UTF-8' };
  let params: unknown;
  if (h.binding === 'jsonrpc') {
    const p = parseJsonRpc(text);
    if (!p.ok || p.batch || p.message.kind !== 'request') return { ok: false, reason: 'the held body is not one JSON-RPC request' };
    if (canonicalA2aMethod(p.message.method) !== h.canonical) return { ok: false, reason: `the held body's method is not ${h.canonical}` };
    params = p.message.params ?? {};
  } else {
    // The handler parsed this body strictly (duplicate keys refused) before it was held.
    try {
      params = JSON.parse(text) as unknown;
    } catch {
      return { ok: false, reason: 'the held body is not JSON' };
    }
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return { ok: false, reason: 'the held params are not an object' };
  const inexact = inexactNumber(text, h.binding === 'jsonrpc' ? 2 : 1);
  if (inexact !== null)
    return {
      ok: false,
      inexact,
      reason: `the number ${inexact.length > 40 ? `${inexact.slice(0, 40)}…` : inexact} is beyond what ThoughtGate can show exactly for approval (integers up to ±9007199254740991); send it as a string`,
    };
  return { ok: true, params: params as Record<string, unknown> };
}

/**
 * Null when `bytes` still are the approved call (same canonical method, params, tenant, version
 * and binding hashing to `approvedHash`), else why not. Read again from the bytes themselves, so what is forwarded is
 * what was approved, whatever happened to the buffer while a human decided.
 */
export function checkHeldBytes(
  source: string,
  h: Pick<A2aHold, 'binding' | 'canonical' | 'bytes' | 'tenant' | 'version'>,
  approvedHash: string,
): string | null {
  const read = readHeldParams(h);
  if (!read.ok) return read.reason;
  return a2aRequestHash(source, h.canonical, read.params, heldTarget(h)) === approvedHash
    ? null
    : 'the held body does not match the approved request (hash mismatch)';
}

/** Where a held call goes besides its source (what its hash binds with the params). */
export function heldTarget(h: Pick<A2aHold, 'tenant' | 'version' | 'binding'>): A2aTarget {
  return { tenant: h.tenant, version: h.version, binding: h.binding };
}

// The governed endpoint of one A2A agent (issue 13, DESIGN §2.2–2.8): a request below
// /a2a/<source>/ is classified (classify.ts), its body read strictly, described (describeA2a),
// decided by the same gates as an MCP call (decide → enforce, rate limits, audit), and then either
// answered here in A2A's shapes (errors.ts) or forwarded as the original bytes with the source's
// headers. Answers stream back unbuffered; only the card (public and extended) is read, bounded,
// filtered and rewritten (card.ts), and a ListTasks answer a hook filters is read whole; what is
// held is charged to the request's byte budget. Browser clients get MCP's CORS policy (cors.ts).
//
// Task isolation, push-URL egress and gate 4 plug in through A2aHooks (built elsewhere).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import type { A2aVersion } from '../../api/config.js';
import type { A2aErrorName, ErrorName } from '../../api/errors.js';
import { decodeUtf8Strict, parseJsonRpc, parseStrictJson } from '../../lib/jsonrpc.js';
import { BodyError, readBodyBytes, readBodyText } from '../../lib/read-body.js';
import { cedarReadsText } from '../../policy/cedar/evaluate.js';
import { a2aVersionOf, jsonRpcMethod, type A2aRow } from '../../policy/gates/a2a-methods.js';
import { decideExtensionHeaders } from '../../policy/gates/a2a-extensions.js';
import { describeA2a, tenantOf, type A2aCall } from '../../policy/gates/a2a-operation.js';
import { decide, type Decision } from '../../policy/gates/decide.js';
import { enforce } from '../../policy/gates/enforcement.js';
import type { A2aFacts, Operation } from '../../policy/gates/operation.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { readBody, type BodyResult } from '../proxy/body.js';
import { type BudgetHold, EDIT_CHARGE } from '../proxy/budget.js';
import type { RequestContext } from '../proxy/context.js';
import { relay, relayDispatched, releaseWhenRead, streamTo, toClient } from '../proxy/forward.js';
import { headerValue, mediaType } from '../proxy/headers.js';
import { corsHeaders, preflightHeaders } from '../proxy/cors.js';
import { flushHead } from '../proxy/pipe.js';
import { SseBudgetExceededError } from '../sse.js';
import { describeUpstreamError } from '../proxy/upstream.js';
import { ownBase, rewriteCard } from './card.js';
import { A2A_CORS } from './cors.js';
import { cardPath, classifyA2a, layoutOf, queryRefusal, tenantParam, versionParam } from './classify.js';
import { type CardSkills, skillIdsOf } from './skills.js';
import { planA2a } from './plan.js';
import { traceA2aDecision, traceA2aRequest } from './trace.js';
import { traceClock } from '../proxy/trace.js';
import { a2aError, type A2aAnswerShape, refuseA2a, rpcRequestError, sseErrorEvent, UNREAD } from './errors.js';

/** A call gates 1–3 let through (or sent for approval), as the hooks see it. */
export interface A2aGovernedCall {
  ctx: RequestContext;
  req: IncomingMessage;
  res: ServerResponse;
  snap: Snapshot;
  source: CompiledSource;
  /** The operation the gates decided (canonical method, skill, facts: task ids, push URL…). */
  op: Operation & { a2a: A2aFacts };
  row: A2aRow;
  /** How answers to this call are worded (binding, version, JSON-RPC id). */
  shape: A2aAnswerShape;
  /** The body as the client sent it (forwarded as is); undefined without one. */
  body: string | undefined;
  /** The HTTP method sent upstream. */
  method: string;
}

/** A hook's refusal: ThoughtGate's own (e.g. PUSH_URL_NOT_ALLOWED) or one of A2A's (e.g. TASK_NOT_FOUND as the agent words it). */
export type A2aHookRefusal =
  | { kind: 'thoughtgate'; name: ErrorName; reason: string; rule?: string }
  /** `sse`: a 0.3 JSON-RPC stream method, answered as one SSE error event (as the agents do). */
  | { kind: 'a2a'; name: A2aErrorName; reason: string; message?: string; sse?: boolean };

/**
 * The seam for the parts built beside the data path: task isolation and push egress
 * (sidecar/a2a/tasks.ts, push.ts) and gate 4 (sidecar/approvals/a2a.ts). Every member optional.
 */
export interface A2aHooks {
  /** Before an allowed call goes upstream: a refusal is answered instead and nothing is forwarded. */
  beforeForward?(call: A2aGovernedCall): A2aHookRefusal | null | Promise<A2aHookRefusal | null>;
  /**
   * The answer of a forwarded call, when the hook must read it (task ids, ListTasks filtering): a
   * Transform the answer's bytes pass through on their way to the client (streamed, never whole),
   * or null to relay untouched. Called after the head arrived (2xx only).
   */
  onAnswer?(call: A2aGovernedCall, status: number, headers: Record<string, string | string[] | undefined>): Transform | null;
  /** Whether onAnswer may want to read this call's answer (false: the cheapest relay is used). */
  readsAnswer?(call: A2aGovernedCall): boolean;
  /** Gate 4: the call whose decision is approve. Absent: refused with APPROVAL_UNAVAILABLE. */
  approve?(call: A2aGovernedCall, decision: Decision & { action: 'approve' }): Promise<void>;
}

/** What the A2A endpoints of one sidecar share: the hooks, and the skills the agents' cards named. */
export interface A2aEnv {
  hooks: A2aHooks;
  skills: CardSkills;
}

/**
 * `sub`: the request target after /a2a/<source> (path and query). `base`: where the client reaches
 * the agent, the prefix of the card's interface URLs (default: the sidecar's own socket address and
 * /a2a/<source>, never the client's Host header; a captured
 * request to the agent's own origin passes that origin: sidecar/proxy/a2a-origin.ts).
 */
export async function handleA2a(
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  sub: string,
  env: A2aEnv,
  base = `${ownBase(req.socket)}/a2a/${source.name}`,
  /** The listener the request came in on, for the refusal counters. */
  listener: 'proxy' | 'transparent' = 'proxy',
): Promise<void> {
  ctx.sourceLabel = source.name;
  ctx.protocol = 'a2a';
  const a2a = source.a2a!;
  const origin = headerValue(req.headers['origin']);
  if (origin !== undefined && !snap.allowedOrigins.has(origin)) {
    ctx.metrics.httpRefused.inc({ listener, check: 'origin' });
    return refuseA2a(ctx, res, UNREAD, 'ORIGIN_NOT_ALLOWED', `Origin "${origin}" is not in server.allowedOrigins`);
  }
  if (origin !== undefined) {
    // An allowed browser client, as for MCP: CORS headers on every answer, and preflights answered
    // here (they carry no A2A call and are never forwarded).
    for (const [k, v] of Object.entries(corsHeaders(origin, A2A_CORS))) res.setHeader(k, v);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.writeHead(204, preflightHeaders(origin, headerValue(req.headers['access-control-request-headers']), A2A_CORS)).end();
      return ctx.finish({ status: 204, decision: 'forward', gate: 'transport', reason: 'CORS preflight' });
    }
  }
  const ep = classifyA2a(sub, layoutOf(source.url, a2a));
  if (ep.kind === 'refused') return a2aError(ctx, res, { ...UNREAD, binding: 'rest' }, 'METHOD_NOT_FOUND', ep.reason, 'Not found');
  const binding = ep.kind === 'rest' ? 'rest' : 'jsonrpc';
  const io: Io = { ctx, req, res, snap, source, hooks: env.hooks, skills: env.skills, query: ep.query, base, extensions: [] };
  const v = a2aVersionOf(req.headers['a2a-version'], versionParam(ep.query), a2a.versions);
  // The 1.3.0 and Python servers read only the header (absent or empty: 0.3), so the agent is always
  // told the version the gates decided on: set here whatever the client sent (absent, empty, or only
  // in the query), and a Connection header naming it, which would drop it on the way as hop-by-hop,
  // is refused.
  const connection = [req.headers['connection'] ?? ''].flat().join(',').toLowerCase().split(',');
  const hopVersion = connection.some((t) => t.trim() === 'a2a-version');
  if (!v.ok || hopVersion) {
    const [reason, message] = v.ok
      ? ['the Connection header names A2A-Version (the agent would not receive it)', undefined]
      : [v.reason, `Supported versions: ${a2a.versions.join(', ')}`];
    if (ep.kind === 'jsonrpc') return versionRefusedRpc(io, reason, message);
    return a2aError(ctx, res, { ...UNREAD, binding }, 'VERSION_NOT_SUPPORTED', reason, message);
  }
  const version = v.version;
  req.headers['a2a-version'] = version;
  const encoding = encodingRefusal(req.headers['content-encoding']);
  if (encoding !== null) return a2aError(ctx, res, { ...UNREAD, binding, version }, 'CONTENT_TYPE_NOT_SUPPORTED', encoding);
  // The extensions asked for are decided (context.extensions) and sent as decided: one header, the version's spelling.
  const ext = decideExtensionHeaders(req.headers, version);
  if (!ext.ok) return a2aError(ctx, res, { ...UNREAD, binding, version }, 'INVALID_PARAMS', ext.reason, `Invalid params: ${ext.reason}`);
  io.extensions = ext.extensions;
  const headers = source.headers();
  if (!headers.ok) return refuseA2a(ctx, res, { ...UNREAD, binding, version }, 'CREDENTIAL_UNAVAILABLE', `source "${source.name}": ${headers.reason}`);
  ctx.upstreamPath = ep.upstreamPath;
  if (ep.kind === 'card') {
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      return a2aError(ctx, res, { ...UNREAD, binding: 'rest', version }, 'METHOD_NOT_FOUND', `${req.method} on the agent card`, 'Not found');
    }
    traceA2aRequest(ctx, 'GetAgentCard', version, 'rest');
    const q = queryRefusal(ep.query, 'card', 'GetAgentCard');
    if (q !== null) return refuseA2a(ctx, res, { binding: 'rest', version, id: null, read: true }, 'QUERY_NOT_ALLOWED', q);
    return serveCard(io, { binding: 'rest', version, id: null, read: true }, 'GET', undefined, 'card');
  }
  if (ep.kind === 'jsonrpc') return jsonRpc(io, version);
  return rest(io, version, ep.route);
}

interface Io {
  ctx: RequestContext;
  req: IncomingMessage;
  res: ServerResponse;
  snap: Snapshot;
  source: CompiledSource;
  hooks: A2aHooks;
  skills: CardSkills;
  /** The request's query ("" or "?…"), as forwarded. */
  query: string;
  /** The prefix of the card's interface URLs (handleA2a's `base`). */
  base: string;
  /** The extensions the call asks for (as forwarded; set once the headers are decided). */
  extensions: string[];
}

/** Content types a binding accepts (the SDK servers' own rules), charset utf-8 or none. */
function contentTypeOk(header: string | string[] | undefined, binding: 'jsonrpc' | 'rest'): boolean {
  const type = mediaType(header);
  if (type !== 'application/json' && (binding === 'jsonrpc' || type !== 'application/a2a+json')) return false;
  const v = headerValue(header) ?? '';
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(v)?.[1];
  return charset === undefined || charset.toLowerCase() === 'utf-8';
}

/**
 * Why a request's Content-Encoding is refused, or null. The gates read the body's bytes as they
 * came; an agent that decodes gzip, deflate or br (express.json does) would run what the gates
 * never read. Only identity (or none) passes.
 */
export function encodingRefusal(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const codings = [header]
    .flat()
    .join(',')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '');
  if (codings.every((c) => c === 'identity')) return null;
  return `Content-Encoding "${cut([header].flat().join(', '))}": ThoughtGate reads request bodies as sent and takes only identity`;
}

/**
 * A JSON-RPC call refused for its A2A-Version, answered as the agents answer it: with the call's
 * own id (HTTP 200, the 1.0 wording) when its body is a readable JSON-RPC request, else id null.
 */
async function versionRefusedRpc(io: Io, reason: string, message: string | undefined): Promise<void> {
  const { ctx, req, res } = io;
  const unread: A2aAnswerShape = { ...UNREAD, binding: 'jsonrpc' };
  if (req.method !== 'POST' || !contentTypeOk(req.headers['content-type'], 'jsonrpc') || encodingRefusal(req.headers['content-encoding']) !== null)
    return a2aError(ctx, res, unread, 'VERSION_NOT_SUPPORTED', reason, message);
  const text = await bodyText(io, unread);
  if (text === null) return;
  const parsed = text.trimStart().startsWith('[') ? null : parseJsonRpc(text);
  const id = parsed?.ok && !parsed.batch && parsed.message.kind === 'request' ? parsed.message.id : null;
  const shape: A2aAnswerShape = id === null ? unread : { binding: 'jsonrpc', version: '1.0', id, read: true };
  return a2aError(ctx, res, shape, 'VERSION_NOT_SUPPORTED', reason, message);
}

/** The body as text, or the answer already given (too large, too slow, aborted, not UTF-8). */
async function bodyText(io: Io, shape: A2aAnswerShape): Promise<string | null> {
  const { ctx, req, res, snap } = io;
  const hold = ctx.budget.hold('request_body');
  const body: BodyResult = await readBody(req, snap.maxBodyBytes, { timeoutMs: snap.server.requestBodyTimeoutMs, hold });
  if (!body.ok) {
    hold.release();
    if (body.reason === 'aborted') {
      ctx.finish({ status: 499, decision: 'deny', gate: 'transport', reason: 'client went away' });
      return null;
    }
    res.setHeader('connection', 'close');
    if (body.reason === 'timeout') {
      ctx.metrics.requestTimeouts.inc({ phase: 'body' });
      refuseA2a(ctx, res, shape, 'INVALID_REQUEST', `request body did not arrive within server.requestBodyTimeout (${snap.server.requestBodyTimeoutMs} ms)`);
    } else if (body.reason === 'overloaded') refuseA2a(ctx, res, shape, 'OVERLOADED', 'too many bytes are buffered for other requests; retry shortly');
    else refuseA2a(ctx, res, shape, 'REQUEST_TOO_LARGE', `request body exceeds limits.maxBodyBytes (${snap.maxBodyBytes} bytes)`);
    return null;
  }
  const text = decodeUtf8Strict(body.body);
  hold.release();
  if (text === null) {
    if (shape.binding === 'jsonrpc') rpcRequestError(ctx, res, -32700, 'Invalid JSON payload.', 'request body is not valid UTF-8');
    else refuseA2a(ctx, res, shape, 'PARSE_ERROR', 'request body is not valid UTF-8');
    return null;
  }
  return text;
}

async function jsonRpc(io: Io, version: A2aVersion): Promise<void> {
  const { ctx, req, res } = io;
  const unread: A2aAnswerShape = { binding: 'jsonrpc', version, id: null, read: false };
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return refuseA2a(ctx, res, unread, 'INVALID_REQUEST', `${req.method} is not how A2A JSON-RPC is called (POST)`, undefined);
  }
  if (!contentTypeOk(req.headers['content-type'], 'jsonrpc'))
    return a2aError(ctx, res, unread, 'CONTENT_TYPE_NOT_SUPPORTED', 'A2A JSON-RPC takes Content-Type application/json (charset utf-8)');
  const text = await bodyText(io, unread);
  if (text === null) return;
  // A batch would slip several calls past per-call gates; both SDK servers refuse them anyway.
  if (text.trimStart().startsWith('[')) return rpcRequestError(ctx, res, -32600, 'Invalid JSON-RPC Request.', 'A2A has no JSON-RPC batches');
  const parsed = parseJsonRpc(text);
  if (!parsed.ok)
    return rpcRequestError(
      ctx,
      res,
      parsed.code === -32700 ? -32700 : -32600,
      parsed.code === -32700 ? 'Invalid JSON payload.' : 'Invalid JSON-RPC Request.',
      parsed.reason,
    );
  if (parsed.batch) return rpcRequestError(ctx, res, -32600, 'Invalid JSON-RPC Request.', 'A2A has no JSON-RPC batches');
  const m = parsed.message;
  if (m.kind === 'invalid' || m.kind === 'response')
    return rpcRequestError(ctx, res, -32600, 'Invalid JSON-RPC Request.', m.kind === 'invalid' ? m.reason : 'a response is not an A2A call');
  // A 0.3 stream method's refusals go as one SSE error event: the 0.3.14 client reads nothing else there.
  const sse = version === '0.3' && jsonRpcMethod(version, m.method)?.stream === true;
  const shape: A2aAnswerShape = { binding: 'jsonrpc', version, id: m.kind === 'request' ? m.id : null, read: true, ...(sse ? { sse } : {}) };
  return governed(io, shape, { version, binding: 'jsonrpc', method: m.method, params: m.params }, text, 'POST', m.kind === 'notification');
}

async function rest(io: Io, version: A2aVersion, route: string): Promise<void> {
  const { ctx, req, res } = io;
  const shape: A2aAnswerShape = { binding: 'rest', version, id: null, read: true };
  const method = req.method ?? 'GET';
  const text = await bodyText(io, shape);
  if (text === null) return;
  let params: unknown;
  if (text !== '') {
    if (method !== 'POST') return refuseA2a(ctx, res, shape, 'INVALID_REQUEST', `a ${method} request carries no body in A2A's HTTP+JSON binding`);
    if (!contentTypeOk(req.headers['content-type'], 'rest'))
      return a2aError(
        ctx,
        res,
        shape,
        'CONTENT_TYPE_NOT_SUPPORTED',
        'A2A HTTP+JSON takes Content-Type application/json or application/a2a+json (charset utf-8)',
      );
    const parsed = parseStrictJson(text);
    if (!parsed.ok) return refuseA2a(ctx, res, shape, 'PARSE_ERROR', parsed.reason);
    params = parsed.value;
  }
  return governed(io, shape, { version, binding: 'rest', method: `${method} ${route}`, params }, text === '' ? undefined : text, method, false);
}

/** Gates 1–3 for one described call, then the answer: refused here, handed to a hook, or forwarded. */
async function governed(io: Io, shape: A2aAnswerShape, call: A2aCall, body: string | undefined, method: string, notification: boolean): Promise<void> {
  const { ctx, res, snap, source, hooks } = io;
  const d = describeA2a(source.name, { ...call, extensions: io.extensions }, { skillFrom: source.a2a!.skillFrom, text: cedarReadsText(snap.gates.cedar) });
  if (!d.ok) {
    ctx.messages = [{ method: cut(call.method), kind: notification ? 'notification' : 'request', decision: 'invalid', reason: d.reason }];
    if (d.error === 'method')
      return a2aError(ctx, res, shape, 'METHOD_NOT_FOUND', d.reason, shape.version === '1.0' ? undefined : `Method not found: ${call.method}`);
    return a2aError(ctx, res, shape, 'INVALID_PARAMS', d.reason);
  }
  const { op, row } = d;
  const q = queryRefusal(io.query, call.binding, row.canonical);
  if (q !== null) {
    ctx.messages = [{ method: op.method, kind: notification ? 'notification' : 'request', decision: 'invalid', reason: q }];
    return refuseA2a(ctx, res, shape, 'QUERY_NOT_ALLOWED', q);
  }
  // The tenant may also come from the query (the JS 1.3.0 REST server reads it there): it must
  // agree with the path's and the body's, and Cedar sees the one the agent will use.
  const tenant = tenantOf(op.a2a.tenant || undefined, tenantParam(io.query), undefined);
  if (!tenant.ok) {
    ctx.messages = [{ method: cut(call.method), kind: notification ? 'notification' : 'request', decision: 'invalid', reason: tenant.reason }];
    return a2aError(ctx, res, shape, 'INVALID_PARAMS', tenant.reason);
  }
  op.a2a.tenant = tenant.tenant;
  const planStart = ctx.tracer.on ? traceClock() : 0;
  traceA2aRequest(ctx, op.method, call.version, call.binding);
  const gates = { ...snap.gates, visibility: source.visibility };
  // A skill the agent's cards do not name is answered as a hidden one, by the same path (gate 1):
  // every skill is looked up (and waits for a stale list's refresh) before visibility is read, so
  // neither the answer nor its timing tells a hidden skill from an unknown one.
  const known = op.target?.kind === 'skill' ? await knownSkill(io, call.version, op.target.name) : true;
  const decided: Decision = known ? decide(gates, op, new Date()) : { action: 'hidden', gate: 'visibility', reason: 'skill is not in the agent card' };
  const { decision, audit } = enforce(gates, op, decided);
  const limited = decision.action === 'forward' ? ctx.rateLimiter.take(snap.rateLimits, op) : null;
  const plan = planA2a({ op, decision, audit, limited, notification });
  ctx.messages = [plan.outcome];
  if (ctx.tracer.on) traceA2aDecision(ctx, plan.outcome, planStart);
  ctx.metrics.requests.inc(plan.count);
  if (audit) ctx.audit.call(snap.policy, source.name, audit);
  if (limited) ctx.metrics.rateLimited.inc({ source: source.name, rule: limited.rule });
  const g: A2aGovernedCall = { ...io, op, row, shape, body, method };
  const a = plan.action;
  switch (a.kind) {
    case 'drop':
      return dropped(ctx, res);
    case 'refuse':
      return refuseA2a(ctx, res, shape, a.name, a.reason, a.rule);
    case 'a2a-error':
      return a2aError(ctx, res, shape, a.name, a.reason);
    case 'approve':
      if (hooks.approve) {
        // Task isolation and push egress first: a call they refuse is never put to a human.
        const first = (await hooks.beforeForward?.(g)) ?? null;
        if (first) return hookRefusal(ctx, res, shape, first);
        return hooks.approve(g, a.decision);
      }
      return refuseA2a(
        ctx,
        res,
        shape,
        'APPROVAL_UNAVAILABLE',
        `${a.decision.reason}; this sidecar cannot hold A2A calls for approval, so the call is not forwarded`,
        a.decision.rule,
      );
  }
  const refused = (await hooks.beforeForward?.(g)) ?? null;
  if (refused) return hookRefusal(ctx, res, shape, refused);
  if (row.canonical === 'GetExtendedAgentCard') return serveCard(io, shape, method, body, call.binding === 'jsonrpc' ? 'jsonrpc' : 'card');
  return forward(io, g);
}

/** A hook's refusal, in the call's shape. */
function hookRefusal(ctx: RequestContext, res: ServerResponse, shape: A2aAnswerShape, r: A2aHookRefusal): void {
  if (r.kind === 'thoughtgate') return refuseA2a(ctx, res, shape, r.name, r.reason, r.rule);
  return a2aError(ctx, res, shape, r.name, r.reason, r.message, r.sse);
}

/** A notification the gates refused: it gets no answer (as JSON-RPC says), only an empty 202. */
function dropped(ctx: RequestContext, res: ServerResponse): void {
  res.writeHead(202).end();
  ctx.finish({ status: 202, decision: 'deny' });
}

const cut = (s: string): string => (s.length <= 128 ? s : `${s.slice(0, 128)}…`);

/** Sends the call upstream as the client's bytes and relays the answer as it arrives. */
async function forward(io: Io, g: A2aGovernedCall): Promise<void> {
  const { ctx, req, res, source, hooks } = io;
  const failed = (kind: Parameters<typeof describeUpstreamError>[0]) =>
    refuseA2a(ctx, res, g.shape, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(kind, source.name));
  const reads = hooks.onAnswer !== undefined && (hooks.readsAnswer?.(g) ?? true);
  if (g.method === 'POST' && g.body !== undefined && !reads) {
    const relayed = relayDispatched(ctx, req, res, source, { body: g.body, describe: undefined }, failed);
    if (relayed !== null) return relayed;
  }
  // An answer a hook reads is asked for uncompressed (its scanners read bytes as JSON).
  const up = await ctx.sendUpstream(source, req, g.method, g.body, reads);
  if (!up.ok) return failed(up.kind);
  const { statusCode, headers, body } = up.response;
  const through = reads && statusCode >= 200 && statusCode < 300 ? hooks.onAnswer!(g, statusCode, headers) : null;
  if (!through) return relay(ctx, res, source, statusCode, headers, body);
  const sse = mediaType(headers['content-type']) === 'text/event-stream';
  if (EDITED_WHOLE.has(g.op.method) && !sse) return editedWhole(io, g, statusCode, headers, body, through);
  res.writeHead(statusCode, toClient(res, headers, true));
  flushHead(res, headers);
  ctx.markResponseStart();
  return streamCharged(io, g, body, through, sse);
}

/** Answers a hook edits as a whole (isolation.ts: ListTasks, filtered to the caller's tasks): read, bounded and charged, before anything is written. */
const EDITED_WHOLE = new Set<string>(['ListTasks']);

/**
 * An answer a hook edits whole: read within limits.maxFilteredResponseBytes and the byte budget
 * (EDIT_CHARGE per byte: the bytes, their text, the parsed list and the output), passed through
 * the hook, then written with its length. Over the budget the client gets OVERLOADED and no byte
 * of the answer: nothing goes out half.
 */
async function editedWhole(
  io: Io,
  g: A2aGovernedCall,
  statusCode: number,
  headers: Record<string, string | string[] | undefined>,
  body: Readable,
  through: Transform,
): Promise<void> {
  const { ctx, res, snap, source } = io;
  const hold = ctx.budget.hold('filtered_response', EDIT_CHARGE);
  let written = false;
  const invalid = (reason: string) => {
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: 'a2a' });
    return refuseA2a(ctx, res, g.shape, 'UPSTREAM_RESPONSE_INVALID', `agent "${source.name}": ${reason}; it is not passed unfiltered`);
  };
  try {
    let bytes: Buffer;
    try {
      bytes = await readBodyBytes(body, { limitBytes: snap.maxFilteredResponseBytes, grow: (n) => hold.grow(n) });
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      // The agent (or the connection to it) ended the answer early: it failed, nothing was wrong with what it sent.
      if (err.reason === 'aborted') return refuseA2a(ctx, res, g.shape, 'UPSTREAM_UNAVAILABLE', `agent "${source.name}": its ${g.op.method} answer broke off`);
      if (err.reason === 'over-budget')
        return refuseA2a(
          ctx,
          res,
          g.shape,
          'OVERLOADED',
          `too many bytes are buffered for other requests (limits.maxBufferedBytes) to filter the ${g.op.method} answer of agent "${source.name}"; it reached the agent but its answer was dropped, retry shortly`,
        );
      if (err.reason === 'too-large') return invalid(`its ${g.op.method} answer exceeds limits.maxFilteredResponseBytes`);
      return invalid(`its ${g.op.method} answer could not be read`);
    }
    let out: Buffer;
    try {
      out = await throughWhole(through, bytes);
    } catch (err) {
      return invalid((err as Error).message);
    }
    const h = toClient(res, headers, true);
    h['content-length'] = out.length;
    // Parsing is over: what stays held is the output, until the client has read it (as MCP's edits).
    hold.settle(out.length);
    res.writeHead(statusCode, h);
    ctx.markResponseStart();
    res.end(out);
    ctx.finish({ status: statusCode });
    written = true;
  } finally {
    // The answer's bytes stay held until the client has read it; a refusal holds nothing.
    if (written) releaseWhenRead(ctx, res, snap, hold);
    else hold.release();
  }
}

/** All of `input` through a Transform: its whole output. */
function throughWhole(t: Transform, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    t.on('data', (c: Buffer | string) => out.push(Buffer.from(c)));
    t.once('end', () => resolve(Buffer.concat(out)));
    t.once('error', reject);
    t.end(input);
  });
}

/**
 * Streams an answer through a hook's Transform (isolation.ts: the id scanners of a Send*),
 * charging what the Transform holds — bytes in that are not out yet: an SSE event read until it
 * ends, an id — to the byte budget, EDIT_CHARGE per byte, as the MCP path charges its SSE events.
 * Checked before each chunk goes in. Over the budget the stream ends: on a JSON-RPC stream that
 * stopped between events, with one error event (OVERLOADED) so the client learns why; otherwise
 * cut (every client reports an error), as an event half sent cannot be finished.
 */
async function streamCharged(io: Io, g: A2aGovernedCall, body: Readable, through: Transform, sse: boolean): Promise<void> {
  const { ctx, res, source } = io;
  const hold = ctx.budget.hold(sse ? 'sse_event' : 'filtered_response', EDIT_CHARGE);
  let taken = 0;
  let given = 0;
  let tail = '';
  let over = false;
  body.on('data', (c: Buffer) => {
    if (!over && !hold.resize(taken - given)) {
      over = true;
      through.destroy(new SseBudgetExceededError());
    }
    taken += c.length;
  });
  through.on('data', (c: Buffer) => {
    given += c.length;
    tail = (tail + c.subarray(-4).toString('latin1')).slice(-4);
  });
  try {
    await streamTo(ctx, source, body, res, through, () => {
      const betweenEvents = given === 0 || tail.endsWith('\n\n') || tail.endsWith('\r\r') || tail.endsWith('\r\n\r\n');
      if (!over || !sse || g.shape.binding !== 'jsonrpc' || !betweenEvents || res.destroyed) return false;
      const reason = `too many bytes are buffered for other requests (limits.maxBufferedBytes) to read the answer of agent "${source.name}"; the stream was ended`;
      res.end(sseErrorEvent(ctx, g.shape, 'OVERLOADED', reason));
      ctx.finish({ status: res.statusCode, decision: 'deny', gate: 'transport', reason });
      return true;
    });
  } finally {
    hold.release();
  }
}

/**
 * Gate 1 for a card: fetched with the client's own headers (A2A-Version negotiates its shape),
 * read within limits.maxFilteredResponseBytes, filtered and rewritten. `wrap`: 'card' the body is
 * the card; 'jsonrpc' it is a JSON-RPC answer whose result is the card. An answer that cannot be
 * read is refused, never passed unfiltered; the agent's errors pass as they are.
 */
async function serveCard(io: Io, shape: A2aAnswerShape, method: string, body: string | undefined, wrap: 'card' | 'jsonrpc'): Promise<void> {
  const { ctx, res, snap } = io;
  const hold = ctx.budget.hold('filtered_response', EDIT_CHARGE);
  try {
    await serveCardHeld(io, shape, method, body, wrap, hold);
  } finally {
    // The card's bytes stay held until the client has read it (a refusal gave them back first).
    releaseWhenRead(ctx, res, snap, hold);
  }
}

/** serveCard once `hold` is taken; a refusal gives back what the hold took. */

async function serveCardHeld(
  io: Io,
  shape: A2aAnswerShape,
  method: string,
  body: string | undefined,
  wrap: 'card' | 'jsonrpc',
  hold: BudgetHold,
): Promise<void> {
  const { ctx, req, res, snap, source } = io;
  const up = await ctx.sendUpstream(source, req, method, body, true);
  if (!up.ok) return refuseA2a(ctx, res, shape, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(up.kind, source.name));
  const { statusCode, headers, body: answer } = up.response;
  if (statusCode < 200 || statusCode >= 300) return relay(ctx, res, source, statusCode, headers, answer);
  const invalid = (reason: string) => {
    hold.release();
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: 'a2a' });
    return refuseA2a(ctx, res, shape, 'UPSTREAM_RESPONSE_INVALID', `agent "${source.name}": ${reason}; the card is not passed unfiltered`);
  };
  const parsed = await readJsonAnswer(snap, headers, answer, hold);
  if (!parsed.ok && parsed.overloaded) {
    hold.release();
    return refuseA2a(ctx, res, shape, 'OVERLOADED', `agent "${source.name}": ${parsed.reason}`);
  }
  if (!parsed.ok) return invalid(parsed.reason);
  let out: unknown;
  const rewrite = {
    visibility: source.visibility,
    origin: source.origin,
    layout: layoutOf(source.url, source.a2a!),
    sidecarBase: io.base,
  };
  if (wrap === 'jsonrpc') {
    const rpc = parsed.value as Record<string, unknown> | null;
    if (rpc === null || typeof rpc !== 'object' || Array.isArray(rpc)) return invalid('the answer is not a JSON-RPC response');
    if (!Object.hasOwn(rpc, 'result'))
      out = rpc; // the agent's error, as it is
    else {
      const r = rewriteCard(rpc['result'], rewrite);
      if (!r.ok) return invalid(r.reason);
      io.skills.seen(source, skillIdsOf(rpc['result']));
      out = { ...rpc, result: r.card };
    }
  } else {
    const r = rewriteCard(parsed.value, rewrite);
    if (!r.ok) return invalid(r.reason);
    io.skills.seen(source, skillIdsOf(parsed.value));
    out = r.card;
  }
  const text2 = JSON.stringify(out);
  const h = toClient(res, headers, true);
  delete h['etag'];
  h['content-length'] = Buffer.byteLength(text2);
  // What stays held is the output, until the client has read it (serveCard releases it then).
  hold.settle(h['content-length']);
  res.writeHead(statusCode, h);
  ctx.markResponseStart();
  res.end(text2);
  ctx.finish({ status: statusCode });
}

/**
 * An answer read whole within limits.maxFilteredResponseBytes and the byte budget (`hold`, EDIT_CHARGE
 * per byte: the caller gives it back), as strict JSON; or why not.
 */
async function readJsonAnswer(
  snap: Snapshot,
  headers: Record<string, string | string[] | undefined>,
  answer: Readable,
  hold: BudgetHold,
): Promise<{ ok: true; value: unknown } | { ok: false; reason: string; overloaded?: true }> {
  const type = mediaType(headers['content-type']);
  if (type !== 'application/json' && type !== 'application/a2a+json') {
    answer.resume();
    return { ok: false, reason: 'the card is not JSON' };
  }
  try {
    const text = await readBodyText(answer, { limitBytes: snap.maxFilteredResponseBytes, grow: (n) => hold.grow(n) });
    const parsed = parseStrictJson(text);
    return parsed.ok ? parsed : { ok: false, reason: `the card is not strict JSON (${parsed.reason})` };
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    if (err.reason === 'over-budget')
      return {
        ok: false,
        overloaded: true,
        reason: 'too many bytes are buffered for other requests (limits.maxBufferedBytes) to filter the card; retry shortly',
      };
    return { ok: false, reason: err.reason === 'too-large' ? 'the card exceeds limits.maxFilteredResponseBytes' : 'the card could not be read' };
  }
}

/**
 * Whether the agent's cards name `skill` (skills.ts: the list is read again when due). The
 * public card is re-read with the source's configured headers and the decided A2A-Version only:
 * never the caller's, whose If-None-Match, Range or Content-Type would get a 304, a 206 or another
 * card, and empty or corrupt the list every caller is judged by. The read is the sidecar's own,
 * shared by every caller waiting for it: the caller that starts it going away does not end it
 * (detached), the source's response timeout bounds it whole (head and body), and its bytes are held
 * in the sidecar's byte budget like any card's.
 */
async function knownSkill(io: Io, version: A2aVersion, skill: string): Promise<boolean> {
  const { ctx, snap, source, skills } = io;
  return skills.known(source, skill, async () => {
    const signal = AbortSignal.timeout(source.responseTimeoutMs);
    const callPath = ctx.upstreamPath;
    ctx.upstreamPath = cardPath(source.url.pathname);
    // sendUpstream reads only `headers` of the request it is given, and the path before its first await.
    const own = { headers: { accept: 'application/json', 'a2a-version': version } } as unknown as IncomingMessage;
    const sent = ctx.sendUpstream(source, own, 'GET', undefined, true, undefined, signal, true);
    ctx.upstreamPath = callPath;
    const up = await sent;
    if (!up.ok) return 'failed';
    if (up.response.statusCode !== 200) {
      up.response.body.resume();
      return 'failed';
    }
    const hold = ctx.budget.hold('filtered_response', EDIT_CHARGE);
    try {
      const parsed = await readJsonAnswer(snap, up.response.headers, up.response.body, hold);
      if (parsed.ok) return skillIdsOf(parsed.value);
      return parsed.overloaded ? 'busy' : 'failed';
    } finally {
      hold.release();
    }
  });
}

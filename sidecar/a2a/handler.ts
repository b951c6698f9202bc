// The governed endpoint of one A2A agent (issue 13, DESIGN §2.2–2.8): a request below
// /a2a/<source>/ is classified (classify.ts), its body read strictly, described (describeA2a),
// decided by the same gates as an MCP call (decide → enforce, rate limits, audit), and then either
// answered here in A2A's shapes (errors.ts) or forwarded as the original bytes with the source's
// headers. Answers stream back unbuffered; only the card (public and extended) is read, bounded,
// filtered and rewritten (card.ts).
//
// Task isolation, push-URL egress and gate 4 plug in through A2aHooks (built elsewhere).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import type { A2aVersion } from '../../api/config.js';
import type { A2aErrorName, ErrorName } from '../../api/errors.js';
import { decodeUtf8Strict, parseJsonRpc, parseStrictJson } from '../../lib/jsonrpc.js';
import { BodyError, readBodyText } from '../../lib/read-body.js';
import { cedarReadsText } from '../../policy/cedar/evaluate.js';
import { a2aVersionOf, jsonRpcMethod, type A2aRow } from '../../policy/gates/a2a-methods.js';
import { describeA2a, tenantOf, type A2aCall } from '../../policy/gates/a2a-operation.js';
import { decide, type Decision } from '../../policy/gates/decide.js';
import { enforce } from '../../policy/gates/enforcement.js';
import type { A2aFacts, Operation } from '../../policy/gates/operation.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { readBody, type BodyResult } from '../proxy/body.js';
import { EDIT_CHARGE } from '../proxy/budget.js';
import type { RequestContext } from '../proxy/context.js';
import { relay, relayDispatched, streamTo, toClient } from '../proxy/forward.js';
import { headerValue, mediaType } from '../proxy/headers.js';
import { flushHead } from '../proxy/pipe.js';
import { describeUpstreamError } from '../proxy/upstream.js';
import { rewriteCard } from './card.js';
import { cardPath, classifyA2a, layoutOf, tenantParam, versionParam } from './classify.js';
import { type CardSkills, skillIdsOf } from './skills.js';
import { isVisible } from '../../policy/gates/visibility.js';
import { planA2a } from './plan.js';
import { traceA2aDecision, traceA2aRequest } from './trace.js';
import { traceClock } from '../proxy/trace.js';
import { a2aError, type A2aAnswerShape, refuseA2a, rpcRequestError, UNREAD } from './errors.js';

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
 * the agent, the prefix of the card's interface URLs (default http://<Host>/a2a/<source>; a captured
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
  base = `http://${headerValue(req.headers.host) ?? ''}/a2a/${source.name}`,
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
  const ep = classifyA2a(sub, layoutOf(source.url, a2a));
  if (ep.kind === 'refused') return a2aError(ctx, res, { ...UNREAD, binding: 'rest' }, 'METHOD_NOT_FOUND', ep.reason, 'Not found');
  const binding = ep.kind === 'rest' ? 'rest' : 'jsonrpc';
  const v = a2aVersionOf(req.headers['a2a-version'], versionParam(ep.query), a2a.versions);
  if (!v.ok) return a2aError(ctx, res, { ...UNREAD, binding }, 'VERSION_NOT_SUPPORTED', v.reason, `Supported versions: ${a2a.versions.join(', ')}`);
  const version = v.version;
  // The 1.3.0 and Python servers read only the header (absent or empty: 0.3), so the agent is always
  // told the version the gates decided on: set here whatever the client sent (absent, empty, or only
  // in the query), and a Connection header naming it, which would drop it on the way as hop-by-hop,
  // is refused.
  const connection = [req.headers['connection'] ?? ''].flat().join(',').toLowerCase().split(',');
  if (connection.some((t) => t.trim() === 'a2a-version'))
    return a2aError(ctx, res, { ...UNREAD, binding }, 'VERSION_NOT_SUPPORTED', 'the Connection header names A2A-Version (the agent would not receive it)');
  req.headers['a2a-version'] = version;
  const headers = source.headers();
  if (!headers.ok) return refuseA2a(ctx, res, { ...UNREAD, binding, version }, 'CREDENTIAL_UNAVAILABLE', `source "${source.name}": ${headers.reason}`);
  ctx.upstreamPath = ep.upstreamPath;
  const io: Io = { ctx, req, res, snap, source, hooks: env.hooks, skills: env.skills, query: ep.query, base };
  if (ep.kind === 'card') {
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      return a2aError(ctx, res, { ...UNREAD, binding: 'rest', version }, 'METHOD_NOT_FOUND', `${req.method} on the agent card`, 'Not found');
    }
    traceA2aRequest(ctx, 'GetAgentCard', version, 'rest');
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
}

/** Content types a binding accepts (the SDK servers' own rules), charset utf-8 or none. */
function contentTypeOk(header: string | string[] | undefined, binding: 'jsonrpc' | 'rest'): boolean {
  const type = mediaType(header);
  if (type !== 'application/json' && (binding === 'jsonrpc' || type !== 'application/a2a+json')) return false;
  const v = headerValue(header) ?? '';
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(v)?.[1];
  return charset === undefined || charset.toLowerCase() === 'utf-8';
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
  const d = describeA2a(source.name, call, { skillFrom: source.a2a!.skillFrom, text: cedarReadsText(snap.gates.cedar) });
  if (!d.ok) {
    ctx.messages = [{ method: cut(call.method), kind: notification ? 'notification' : 'request', decision: 'invalid', reason: d.reason }];
    if (d.error === 'method')
      return a2aError(ctx, res, shape, 'METHOD_NOT_FOUND', d.reason, shape.version === '1.0' ? undefined : `Method not found: ${call.method}`);
    return a2aError(ctx, res, shape, 'INVALID_PARAMS', d.reason);
  }
  const { op, row } = d;
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
  // A skill the agent's cards do not name is answered as a hidden one, by the same path (gate 1).
  const unknown = op.target?.kind === 'skill' && isVisible(source.visibility, 'skill', op.target.name) && !(await knownSkill(io, op.target.name));
  const decided: Decision = unknown ? { action: 'hidden', gate: 'visibility', reason: 'skill is not in the agent card' } : decide(gates, op, new Date());
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
  const up = await ctx.sendUpstream(source, req, g.method, g.body, false);
  if (!up.ok) return failed(up.kind);
  const { statusCode, headers, body } = up.response;
  const through = reads && statusCode >= 200 && statusCode < 300 ? hooks.onAnswer!(g, statusCode, headers) : null;
  if (!through) return relay(ctx, res, source, statusCode, headers, body);
  res.writeHead(statusCode, toClient(res, headers, true));
  flushHead(res, headers);
  ctx.markResponseStart();
  return streamTo(ctx, source, body, res, through);
}

/**
 * Gate 1 for a card: fetched with the client's own headers (A2A-Version negotiates its shape),
 * read within limits.maxFilteredResponseBytes, filtered and rewritten. `wrap`: 'card' the body is
 * the card; 'jsonrpc' it is a JSON-RPC answer whose result is the card. An answer that cannot be
 * read is refused, never passed unfiltered; the agent's errors pass as they are.
 */
async function serveCard(io: Io, shape: A2aAnswerShape, method: string, body: string | undefined, wrap: 'card' | 'jsonrpc'): Promise<void> {
  const { ctx, req, res, snap, source } = io;
  const up = await ctx.sendUpstream(source, req, method, body, true);
  if (!up.ok) return refuseA2a(ctx, res, shape, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(up.kind, source.name));
  const { statusCode, headers, body: answer } = up.response;
  if (statusCode < 200 || statusCode >= 300) return relay(ctx, res, source, statusCode, headers, answer);
  const invalid = (reason: string) => {
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: 'a2a' });
    return refuseA2a(ctx, res, shape, 'UPSTREAM_RESPONSE_INVALID', `agent "${source.name}": ${reason}; the card is not passed unfiltered`);
  };
  const parsed = await readJsonAnswer(ctx, snap, headers, answer);
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
  res.writeHead(statusCode, h);
  ctx.markResponseStart();
  res.end(text2);
  ctx.finish({ status: statusCode });
}

/** An answer read whole within limits.maxFilteredResponseBytes and the byte budget, as strict JSON; or why not. */
async function readJsonAnswer(
  ctx: RequestContext,
  snap: Snapshot,
  headers: Record<string, string | string[] | undefined>,
  answer: Readable,
): Promise<{ ok: true; value: unknown } | { ok: false; reason: string }> {
  const type = mediaType(headers['content-type']);
  if (type !== 'application/json' && type !== 'application/a2a+json') {
    answer.resume();
    return { ok: false, reason: 'the card is not JSON' };
  }
  const hold = ctx.budget.hold('filtered_response', EDIT_CHARGE);
  try {
    const text = await readBodyText(answer, { limitBytes: snap.maxFilteredResponseBytes, grow: (n) => hold.grow(n) });
    const parsed = parseStrictJson(text);
    return parsed.ok ? parsed : { ok: false, reason: `the card is not strict JSON (${parsed.reason})` };
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    return { ok: false, reason: err.reason === 'too-large' ? 'the card exceeds limits.maxFilteredResponseBytes' : 'the card could not be read' };
  } finally {
    hold.release();
  }
}

/**
 * Whether the agent's cards name `skill`: from the cards served so far, else from its public card,
 * fetched again at most once per REFRESH_MS (skills.ts). A card that cannot be read names nothing.
 */
async function knownSkill(io: Io, skill: string): Promise<boolean> {
  const { ctx, req, snap, source, skills } = io;
  if (skills.has(source, skill)) return true;
  if (!skills.mayRefresh(source)) return false;
  const callPath = ctx.upstreamPath;
  ctx.upstreamPath = cardPath(source.url.pathname);
  let ids: string[] = [];
  try {
    const up = await ctx.sendUpstream(source, req, 'GET', undefined, true);
    if (up.ok && up.response.statusCode === 200) {
      const parsed = await readJsonAnswer(ctx, snap, up.response.headers, up.response.body);
      if (parsed.ok) ids = skillIdsOf(parsed.value);
    } else if (up.ok) up.response.body.resume();
  } finally {
    ctx.upstreamPath = callPath;
  }
  skills.seen(source, ids, true);
  return skills.has(source, skill);
}

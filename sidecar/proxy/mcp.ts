// The governed MCP endpoint of one source: POST (requests, notifications, responses, batches),
// GET (server-to-client streams, resumption) and DELETE (end of session). Every message of a POST
// passes gates 1–3 before anything is sent upstream; responses stream back as they arrive.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { LIMITS_DEFAULTS, SERVER_DEFAULTS } from '../../api/config.js';
import { parseDuration } from '../../api/duration.js';
import { ERRORS, type ErrorData, type ErrorName } from '../../api/errors.js';
import { decide, type Decision } from '../../policy/gates/decide.js';
import { toolMayNeedApproval } from '../../policy/gates/approval-tools.js';
import { cancelHeld, handleApprovalCall, handleOwnTask, handleTaskMethod, handleTasksList, isOwnTaskCall } from '../approvals/http.js';
import { rememberToolSupport, sessionKey } from '../approvals/runtime.js';
import { isOurTaskId, upstreamTaskSupport } from '../approvals/tasks.js';
import { describeMessage, type Operation } from '../../policy/gates/operation.js';
import { probeUriFor } from '../../api/resource-uri.js';
import { needsListFilter } from '../../policy/gates/visibility.js';
import { ambiguousIds, batchBody, decodeUtf8Strict, errorResponse, parseJsonRpc, type Message, type RawId } from '../../lib/jsonrpc.js';
import { summariseArguments } from '../../lib/log.js';
import { methodLabel } from '../metrics.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { createSseRewriter, formatSseEvent, SseBudgetExceededError, SseParser, type SseEvent } from '../sse.js';
import { batchExceeds } from './batch-size.js';
import { readBody, type BodyResult } from './body.js';
import { EDIT_CHARGE, type BudgetHold } from './budget.js';
import { EditTable, editPayload, filterByShape, newProbeName, notGoverned, probeRequest, type ResponseEdit } from './edits.js';
import { flushHead, pipeTo } from './pipe.js';
import { corsHeaders, preflightHeaders } from './cors.js';
import type { OutgoingHttpHeaders } from 'node:http';
import { upstreamTarget } from './query.js';
import { clientResponseHeaders, decodeMcpHeader, describingHeaders, headerValue, mediaType } from './headers.js';
import type { MessageOutcome, RequestContext } from './context.js';
import { classifyUpstreamError, describeUpstreamError } from './upstream.js';

function errorData(ctx: RequestContext, gate: ErrorData['gate'], reason: string, rule?: string): ErrorData {
  return rule === undefined ? { gate, reason, correlationId: ctx.correlationId } : { gate, rule, reason, correlationId: ctx.correlationId };
}

export function errorFor(ctx: RequestContext, id: RawId | null, name: ErrorName, reason: string, rule?: string): string {
  const e = ERRORS[name];
  return errorResponse(id, e.code, e.message, errorData(ctx, e.gate, reason, rule));
}

/** Answers with one JSON-RPC error and no id: for failures before any message could be read. */
export function replyError(ctx: RequestContext, res: ServerResponse, name: ErrorName, reason: string, status?: number): void {
  sendJson(res, status ?? ERRORS[name].http, errorFor(ctx, null, name, reason));
  ctx.finish({ status: res.statusCode, decision: 'deny', gate: ERRORS[name].gate, reason });
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) { res.end(); return; }
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Refuses everything in a request while keeping each request's id, so a client's pending call
 * fails at once with a clear error instead of waiting for a reply that never comes.
 */
export async function denyAll(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, name: ErrorName, reason: string): Promise<void> {
  if (req.method !== 'POST') return replyError(ctx, res, name, reason, 503);
  // No config: the defaults of limits and server bound what is read.
  const hold = ctx.budget.hold('request_body');
  const body = await readBody(req, LIMITS_DEFAULTS.maxBodyBytes, { timeoutMs: DEFAULT_BODY_TIMEOUT_MS, hold });
  const text = body.ok ? decodeUtf8Strict(body.body) : null;
  hold.release();
  const tooMany = text !== null && batchExceeds(text, LIMITS_DEFAULTS.maxBatchMessages);
  const parsed = text === null || tooMany ? null : parseJsonRpc(text);
  if (!parsed || !parsed.ok) {
    if (!body.ok) res.setHeader('connection', 'close');
    return replyError(ctx, res, name, reason, 503);
  }
  const messages = parsed.batch ? parsed.messages : [parsed.message];
  const replies = messages.flatMap((m) => (m.kind === 'request' ? [errorFor(ctx, m.id, name, reason)] : []));
  if (replies.length === 0) {
    res.writeHead(503).end();
    return ctx.finish({ status: 503, decision: 'deny', gate: ERRORS[name].gate, reason });
  }
  sendJson(res, 200, parsed.batch ? batchBody(replies) : replies[0]!);
  ctx.finish({ status: 200, decision: 'deny', gate: ERRORS[name].gate, reason });
}

const DEFAULT_BODY_TIMEOUT_MS = parseDuration(SERVER_DEFAULTS.requestBodyTimeout) as number;

/** The answer to a body that could not be read whole: too large, too slow, or no budget left. */
function refuseBody(ctx: RequestContext, res: ServerResponse, snap: Snapshot, r: BodyResult & { ok: false }): void {
  if (r.reason === 'aborted') return ctx.finish({ status: 499, decision: 'deny', gate: 'transport', reason: 'client went away' });
  // The rest of the body is never read: the connection cannot carry another request.
  res.setHeader('connection', 'close');
  if (r.reason === 'timeout') {
    ctx.metrics.requestTimeouts.inc({ phase: 'body' });
    return replyError(ctx, res, 'INVALID_REQUEST', `request body did not arrive within server.requestBodyTimeout (${snap.server.requestBodyTimeoutMs} ms)`, 408);
  }
  if (r.reason === 'overloaded') return replyError(ctx, res, 'OVERLOADED', 'too many bytes are buffered for other requests (limits.maxBufferedBytes); nothing was forwarded, retry shortly');
  return replyError(ctx, res, 'REQUEST_TOO_LARGE', `request body exceeds limits.maxBodyBytes (${snap.maxBodyBytes} bytes)`);
}

function refuseBatch(ctx: RequestContext, res: ServerResponse, snap: Snapshot): void {
  ctx.metrics.batchesRejected.inc();
  replyError(ctx, res, 'BATCH_TOO_LARGE', `a batch holds at most limits.maxBatchMessages (${snap.maxBatchMessages}) messages; nothing was forwarded`);
}

export async function handleMcp(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, snap: Snapshot, source: CompiledSource): Promise<void> {
  ctx.sourceLabel = source.name;
  const origin = headerValue(req.headers['origin']);
  if (origin !== undefined) {
    if (!snap.allowedOrigins.has(origin)) {
      ctx.metrics.httpRefused.inc({ listener: 'proxy', check: 'origin' });
      return replyError(ctx, res, 'ORIGIN_NOT_ALLOWED', `Origin "${origin}" is not in server.allowedOrigins`);
    }
    // An allowed browser client: CORS headers on every answer, and preflights answered here
    // (they carry no MCP message and are never forwarded).
    for (const [k, v] of Object.entries(corsHeaders(origin))) res.setHeader(k, v);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.writeHead(204, preflightHeaders(origin, headerValue(req.headers['access-control-request-headers']))).end();
      return ctx.finish({ status: 204, decision: 'forward', gate: 'transport', reason: 'CORS preflight' });
    }
  }
  const target = upstreamTarget(source.path, req.url);
  if (!target.ok) return replyError(ctx, res, 'QUERY_NOT_ALLOWED', target.reason);
  switch (req.method) {
    case 'POST':
      return handlePost(ctx, req, res, snap, source);
    case 'GET':
      return handleGet(ctx, req, res, snap, source);
    case 'DELETE':
      return forwardAsIs(ctx, req, res, source, 'DELETE');
    default:
      res.setHeader('allow', 'GET, POST, DELETE');
      return replyError(ctx, res, 'INVALID_REQUEST', `method ${req.method} is not part of the MCP Streamable HTTP transport`, 405);
  }
}

async function handlePost(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, snap: Snapshot, source: CompiledSource): Promise<void> {
  const hold = ctx.budget.hold('request_body');
  const body = await readBody(req, snap.maxBodyBytes, { timeoutMs: snap.server.requestBodyTimeoutMs, hold });
  if (!body.ok) return refuseBody(ctx, res, snap, body);
  // The budget covers the body while it arrives (where a slow client holds it); once decoded it is the request's own.
  const text = decodeUtf8Strict(body.body);
  hold.release();
  if (text === null) return replyError(ctx, res, 'PARSE_ERROR', 'request body is not valid UTF-8');
  // A batch is refused whole before any of it is parsed or decided: per-message work and log lines stay bounded.
  if (batchExceeds(text, snap.maxBatchMessages)) return refuseBatch(ctx, res, snap);
  const parsed = parseJsonRpc(text);
  if (!parsed.ok) {
    ctx.debug('unparseable request body', { bytes: body.body.length, contentLength: req.headers['content-length'], reason: parsed.reason });
    return replyError(ctx, res, parsed.code === -32700 ? 'PARSE_ERROR' : 'INVALID_REQUEST', parsed.reason);
  }
  if (parsed.batch && parsed.messages.length > snap.maxBatchMessages) return refuseBatch(ctx, res, snap); // the scan's count is exact for valid JSON: not reached
  const messages = parsed.batch ? parsed.messages : [parsed.message];

  // Answers are matched to requests by id: a batch whose ids a peer could confuse is refused whole.
  const ambiguous = parsed.batch ? ambiguousIds(parsed.messages) : null;
  if (ambiguous !== null) return replyError(ctx, res, 'INVALID_REQUEST', ambiguous);
  // ThoughtGate's own upstream requests in the client's session (approved tasks, tasks/list pages)
  // use ids "thoughtgate-…" the client can know; a client request under one could take its answer.
  const reserved = messages.find((m) => m.kind === 'request' && typeof m.id.value === 'string' && m.id.value.trim().toLowerCase().startsWith('thoughtgate-'));
  if (reserved) return replyError(ctx, res, 'INVALID_REQUEST', 'request ids starting with "thoughtgate-" are reserved for requests ThoughtGate sends itself');

  const mismatch = checkRoutingHeaders(req, parsed.batch ? null : parsed.message);
  if (mismatch) {
    const id = !parsed.batch && parsed.message.kind === 'request' ? parsed.message.id : null;
    sendJson(res, 400, errorFor(ctx, id, 'HEADER_MISMATCH', mismatch));
    return ctx.finish({ status: 400, decision: 'deny', gate: 'transport', reason: mismatch });
  }

  // A single invalid message is an HTTP-level error, like the MCP SDK answers it.
  if (!parsed.batch && parsed.message.kind === 'invalid') {
    sendJson(res, 400, errorFor(ctx, parsed.message.id, 'INVALID_REQUEST', parsed.message.reason));
    return ctx.finish({ status: 400, decision: 'deny', gate: 'transport', reason: parsed.message.reason, messages: [{ method: '', kind: 'invalid', decision: 'invalid', reason: parsed.message.reason }] });
  }

  // A request id still in flight in this session would let the upstream mix up the answers.
  const session = headerValue(req.headers['mcp-session-id']);
  if (session !== undefined) {
    const claim = ctx.inflight.claim(session, messages.flatMap((m) => (m.kind === 'request' ? [m.id] : [])));
    if (!claim.ok) return replyError(ctx, res, 'INVALID_REQUEST', `request id ${claim.id.raw} is still in flight in this session; ids must not be reused`);
    res.once('close', claim.release);
  }

  const now = new Date();
  const rt = ctx.approvals;
  const single = !parsed.batch;
  /** A single request gate 4 answers itself (approval, ThoughtGate's tasks): run after the loop. */
  let special: (() => Promise<void>) | null = null;
  /** The upstream session an initialize answer opens (for what it declared of tasks). */
  const init: { session: string | undefined } = { session: undefined };
  const toForward: string[] = [];
  const forwardedIds: RawId[] = [];
  const local: string[] = [];
  const edits = new EditTable();
  const outcomes: MessageOutcome[] = [];
  const gates = { ...snap.gates, visibility: source.visibility };

  for (const m of messages) {
    if (m.kind === 'response') {
      toForward.push(m.raw);
      outcomes.push({ method: '', kind: 'response', decision: 'response' });
      continue;
    }
    if (m.kind === 'invalid') {
      local.push(errorFor(ctx, m.id, 'INVALID_REQUEST', m.reason));
      outcomes.push({ method: '', kind: 'invalid', decision: 'invalid', reason: m.reason });
      continue;
    }
    const d = describeMessage(source.name, m);
    if (!d.ok) {
      if (m.kind === 'request') local.push(errorResponse(m.id, -32602, 'Invalid params', errorData(ctx, 'transport', d.reason)));
      outcomes.push({ method: m.method, kind: m.kind, decision: 'invalid', reason: d.reason });
      continue;
    }
    const decision = decide(gates, d.op, now);
    outcomes.push(outcomeOf(m, d.op, decision, ctx.logging));
    ctx.metrics.requests.inc({ source: source.name, method: methodLabel(m.method), decision: decision.action, gate: decision.gate });
    switch (decision.action) {
      case 'forward': {
        // A held call still waiting for a human is ours to cancel; the upstream never saw it.
        if (rt && m.kind === 'notification' && m.method === 'notifications/cancelled' && cancelHeld(rt, source.name, req.headers, m.params)) break;
        if (rt && m.kind === 'request') {
          const req1 = m;
          const op = d.op;
          const taskId = (m.params as Record<string, unknown> | undefined)?.['taskId'];
          const ours = (m.method === 'tasks/get' || m.method === 'tasks/result' || m.method === 'tasks/cancel') && isOurTaskId(taskId);
          const ownTask = !ours && isOwnTaskCall(rt, source, m, (tool) => toolMayNeedApproval(gates, source.name, tool));
          if (ours || ownTask) {
            if (single) {
              special = ours ? () => handleTaskMethod(ctx, req, res, snap, source, req1) : () => handleOwnTask(ctx, req, res, snap, source, req1, op);
            } else {
              local.push(errorFor(ctx, m.id, 'INVALID_REQUEST', ours ? "ThoughtGate's tasks are read with single requests, not inside a JSON-RPC batch" : 'a task-augmented tools/call must be sent as a single request, not inside a JSON-RPC batch'));
            }
            break;
          }
          if (m.method === 'tasks/list' && single) {
            special = () => handleTasksList(ctx, req, res, snap, source, req1);
            break;
          }
        }
        toForward.push(d.raw ?? m.raw); // a resource URI goes upstream in the canonical form decided on
        if (m.kind === 'request') {
          forwardedIds.push(m.id);
          let edit: ResponseEdit | null = null;
          const marking = rt !== null && m.method === 'tools/list' && source.mayNeedApproval;
          if (marking) {
            edit = {
              kind: 'filter',
              method: m.method,
              visibility: source.visibility,
              tasks: { mayNeedApproval: (tool) => toolMayNeedApproval(gates, source.name, tool), seen: (tool, support) => rememberToolSupport(rt, source.name, tool, support) },
            };
          } else if (needsListFilter(source.visibility, m.method)) {
            edit = { kind: 'filter', method: m.method, visibility: source.visibility };
          } else if (rt !== null && m.method === 'initialize') {
            edit = { kind: 'initialize', seen: (result) => rt.upstreamTasks.set(sessionKey(source.name, init.session), upstreamTaskSupport(result)) };
          }
          edits.add(m.id, edit);
        }
        break;
      }
      case 'hidden':
        if (m.kind === 'request' && d.op.target) {
          const probe = d.op.target.kind === 'resource' ? probeUri(d.op.target.name) : newProbeName();
          toForward.push(probeRequest(m.id, m.method, d.op.target.kind, probe, m.params));
          forwardedIds.push(m.id);
          edits.add(m.id, { kind: 'probe', probe, original: d.op.target.name });
        }
        break;
      case 'deny':
        if (m.kind === 'request') local.push(errorFor(ctx, m.id, decision.error, decision.reason, decision.rule));
        break;
      case 'approve':
        if (m.kind !== 'request') break; // a notification cannot wait for anyone: dropped
        if (!rt) {
          local.push(errorFor(ctx, m.id, 'APPROVAL_UNAVAILABLE', `${decision.reason}; this sidecar has no approval channels configured (approvalChannels in thoughtgate.yaml, or ApprovalChannels in a cluster), so the call is not forwarded`, decision.rule));
        } else if (!single) {
          local.push(errorFor(ctx, m.id, 'APPROVAL_UNAVAILABLE', `${decision.reason}; approvals are not available inside JSON-RPC batches, so the call is not forwarded: send it as a request of its own`, decision.rule));
        } else {
          const req1 = m;
          const op = d.op;
          special = () => handleApprovalCall(ctx, req, res, snap, source, req1, op, decision);
        }
        break;
    }
  }
  ctx.messages = outcomes;
  if (special) return (special as () => Promise<void>)();

  if (toForward.length === 0) {
    if (local.length === 0) {
      res.writeHead(202).end();
      return ctx.finish({ status: 202 });
    }
    sendJson(res, 200, parsed.batch ? batchBody(local) : local[0]!);
    return ctx.finish({ status: 200 });
  }

  const upstreamBody = parsed.batch ? batchBody(toForward) : toForward[0]!;
  await forwardPost(ctx, req, res, snap, source, {
    body: upstreamBody,
    describe: forwardedDescription(req, messages, toForward, parsed.batch),
    batch: parsed.batch,
    forwardedIds,
    local,
    edits,
    onHeaders: (h) => { init.session = headerValue(h['mcp-session-id']); },
  });
}

function probeUri(canonical: string): string {
  // Same scheme and authority, a path that cannot exist, in canonical form, so the upstream echoes
  // exactly the string we later replace (api/resource-uri.ts).
  return probeUriFor(canonical, newProbeName());
}

function outcomeOf(m: Message & { kind: 'request' | 'notification' }, op: Operation, d: Decision, logging: boolean): MessageOutcome {
  return {
    method: m.method,
    kind: m.kind,
    target: op.target?.name,
    decision: d.action,
    gate: d.gate,
    rule: 'rule' in d ? d.rule : undefined,
    reason: d.reason,
    arguments: logging ? summariseArguments(op.arguments) : undefined,
  };
}

/** Mcp-Method / Mcp-Name (2026-07-28) must agree with the body the gates decide on. */
function checkRoutingHeaders(req: IncomingMessage, single: Message | null): string | null {
  const method = headerValue(req.headers['mcp-method']);
  const name = headerValue(req.headers['mcp-name']);
  if (method === undefined && name === undefined) return null;
  if (single === null) return 'Mcp-Method/Mcp-Name headers cannot describe a batch';
  if (single.kind !== 'request' && single.kind !== 'notification') return 'Mcp-Method/Mcp-Name headers on a message that is not a request or notification';
  if (method !== undefined && method.trim() !== single.method) return `Mcp-Method header "${method}" does not match the body's method "${single.method}"`;
  if (name !== undefined) {
    const p = (single.params ?? {}) as Record<string, unknown>;
    const bodyName = p['name'] ?? p['uri'] ?? p['taskId'];
    if (decodeMcpHeader(name) !== bodyName) return `Mcp-Name header does not match the body's name`;
  }
  return null;
}

/**
 * Headers that describe the message (Mcp-Method, Mcp-Name, Mcp-Param-*) must say what the upstream
 * reads in the body, never what the agent sent when that differs: a body that is not the agent's
 * (a probe, a batch with elements removed, a rewritten URI) gets them rebuilt from the forwarded
 * message; a batch gets none. Undefined: the agent's body goes as is, and so do its headers.
 */
function forwardedDescription(req: IncomingMessage, messages: readonly Message[], toForward: readonly string[], batch: boolean): Record<string, string> | undefined {
  if (batch) return describingHeaders(req.headers, null);
  if (toForward[0] === messages[0]!.raw) return undefined;
  const p = parseJsonRpc(toForward[0]!);
  return describingHeaders(req.headers, p.ok && !p.batch ? p.message : null);
}

interface ForwardPlan {
  body: string;
  /** See forwardedDescription. */
  describe: Record<string, string> | undefined;
  batch: boolean;
  forwardedIds: RawId[];
  local: string[];
  edits: EditTable;
  /** Sees the upstream's response headers before any edit runs. */
  onHeaders?: (headers: Record<string, string | string[] | undefined>) => void;
}

async function forwardPost(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, snap: Snapshot, source: CompiledSource, plan: ForwardPlan): Promise<void> {
  const inspect = plan.edits.edits > 0 || plan.local.length > 0;
  const up = await ctx.sendUpstream(source, req, 'POST', plan.body, inspect, plan.describe);
  if (!up.ok) {
    const reason = describeUpstreamError(up.kind, source.name);
    const replies = [...plan.local, ...plan.forwardedIds.map((id) => errorFor(ctx, id, 'UPSTREAM_UNAVAILABLE', reason))];
    if (replies.length === 0) {
      // Only notifications/responses were forwarded: there is no id to answer; say it in HTTP.
      return replyError(ctx, res, 'UPSTREAM_UNAVAILABLE', reason, 502);
    }
    sendJson(res, 200, plan.batch ? batchBody(replies) : replies[0]!);
    return ctx.finish({ status: 200, decision: 'deny', gate: 'upstream', reason });
  }
  const { statusCode, headers, body } = up.response;
  plan.onHeaders?.(headers);
  const type = mediaType(headers['content-type']);
  const ok2xx = statusCode >= 200 && statusCode < 300;

  if (!inspect || !ok2xx) {
    // Errors from the upstream (401/403 with WWW-Authenticate, 400, 404…) come back unchanged.
    return relay(ctx, res, source, statusCode, headers, body);
  }
  if (statusCode === 202 || (type !== 'text/event-stream' && type !== 'application/json')) {
    // An answer that must be edited reaches the agent only through the parser: anything the
    // proxy does not read (no or another content type, 202 with a body) is not passed on.
    body.resume();
    if (plan.edits.edits > 0) {
      ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response' });
      return replyError(ctx, res, 'UPSTREAM_RESPONSE_INVALID', `upstream "${source.name}" answered with a content type that is not application/json or text/event-stream`, 502);
    }
    if (plan.local.length > 0) {
      sendJson(res, 200, plan.batch ? batchBody(plan.local) : plan.local[0]!);
      return ctx.finish({ status: 200 });
    }
    res.writeHead(statusCode, toClient(res, headers, true)).end();
    return ctx.finish({ status: statusCode });
  }
  const editCtx = { edits: plan.edits, correlationId: ctx.correlationId };

  if (type === 'application/json') {
    const hold = ctx.budget.hold('filtered_response', EDIT_CHARGE);
    try {
      return await sendEdited(ctx, res, snap, source, plan, statusCode, headers, body, hold);
    } finally {
      // Kept only while the edited answer waits to be written to a slow client (sendEdited's own),
      // and not for longer than server.slowReaderTimeout: a client that never reads must not keep
      // other clients' answers out of the budget.
      if (!res.writableFinished && !res.destroyed && hold.bytes > 0) {
        const timer = setTimeout(() => {
          ctx.metrics.requestTimeouts.inc({ phase: 'response' });
          ctx.debug('client did not read an edited answer in time; disconnected', { slowReaderTimeoutMs: snap.server.slowReaderTimeoutMs });
          res.destroy();
        }, snap.server.slowReaderTimeoutMs);
        timer.unref();
        res.once('close', () => { clearTimeout(timer); hold.release(); });
      } else hold.release();
    }
  }

  // SSE: our local answers first, then the upstream's events as they arrive. Every event is
  // rebuilt from what the parser read (comments and unknown fields are not passed on). An event
  // whose data is not JSON-RPC ends what reaches the agent: each request still unanswered gets
  // -32015 in its place, and whatever else the upstream sends on this stream is dropped.
  let failed = false;
  const rewriter = createSseRewriter({
    maxEventBytes: snap.maxFilteredResponseBytes,
    rewrite: (ev) => {
      if (failed) return '';
      const fields = { event: ev.event ?? undefined, id: eventId(ev.id), retry: ev.retry ?? undefined };
      if (ev.data === null) return dataless(ev);
      if (ev.data === '') return formatSseEvent({ ...fields, data: '' });
      const edited = editPayload(ev.data, editCtx);
      if (edited !== null) return formatSseEvent({ ...fields, data: edited.text });
      failed = true;
      ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response' });
      const reason = `upstream "${source.name}" sent an event that is not JSON-RPC; not passed through`;
      return plan.edits.pending().map((id) => formatSseEvent({ event: 'message', data: notGoverned(id, reason, ctx.correlationId) })).join('');
    },
    onOversize: () => ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response' }),
    hold: ctx.budget.hold('sse_event', EDIT_CHARGE),
  });
  res.writeHead(statusCode, toClient(res, headers, true));
  res.flushHeaders();
  ctx.markResponseStart();
  for (const l of plan.local) res.write(formatSseEvent({ event: 'message', data: l }));
  await streamTo(ctx, source, body, res, rewriter);
}

/** An SSE event without data (a keep-alive, an id or retry alone), rebuilt without its comments. */
function dataless(ev: SseEvent): string {
  let out = '';
  const id = eventId(ev.id);
  if (id !== undefined) out += `id: ${id}\n`;
  if (ev.retry !== null) out += `retry: ${ev.retry}\n`;
  return (out || ':\n') + '\n';
}

/**
 * An upstream event id kept on an edited stream (clients resume with it): a short token of
 * visible ASCII, as servers make them. Anything else is not an id but a payload, and is dropped.
 */
function eventId(id: string | null): string | undefined {
  return id !== null && id.length <= 128 && /^[\x21-\x7e]*$/.test(id) ? id : undefined;
}

/** A JSON answer that must be edited: read whole (within the budget), edited, sent. */
async function sendEdited(ctx: RequestContext, res: ServerResponse, snap: Snapshot, source: CompiledSource, plan: ForwardPlan, statusCode: number, headers: Record<string, string | string[] | undefined>, body: Readable, hold: BudgetHold): Promise<void> {
  const editCtx = { edits: plan.edits, correlationId: ctx.correlationId };
  const length = headerValue(headers['content-length']);
  const text = await readBounded(body, snap.maxFilteredResponseBytes, hold, length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined);
  if (typeof text !== 'string') hold.release(); // what was read is dropped
  if (text === 'overloaded') {
    return replyError(ctx, res, 'OVERLOADED', `too many bytes are buffered for other requests (limits.maxBufferedBytes) to filter the answer of upstream "${source.name}"; the request reached the upstream but its answer was dropped, retry shortly`);
  }
  if (text === null) {
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response' });
    return replyError(ctx, res, 'UPSTREAM_RESPONSE_INVALID', `upstream "${source.name}" response exceeds limits.maxFilteredResponseBytes or is not UTF-8`, 502);
  }
  const edited = editPayload(text, editCtx);
  if (edited === null) {
    hold.release();
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response' });
    return replyError(ctx, res, 'UPSTREAM_RESPONSE_INVALID', `upstream "${source.name}" answered with a body that is not JSON-RPC`, 502);
  }
  let out = edited.text;
  if (plan.local.length > 0) {
    // Our local answers join the upstream's batch answer.
    out = out.trimStart().startsWith('[') ? `[${out.trim().slice(1, -1)}${out.trim() === '[]' ? '' : ','}${plan.local.join(',')}]` : batchBody([out, ...plan.local]);
  }
  const h = toClient(res, headers, true);
  h['content-length'] = Buffer.byteLength(out);
  // Parsing is over: what stays is the output, until the client has read it.
  hold.settle(h['content-length']);
  res.writeHead(statusCode, h);
  ctx.markResponseStart();
  res.end(out);
  return ctx.finish({ status: statusCode });
}

/**
 * The upstream's response headers as the agent gets them. CORS is the sidecar's to decide: the
 * upstream's Access-Control-* never pass, and its Vary keeps our `Origin`.
 */
function toClient(res: ServerResponse, upstream: Record<string, string | string[] | undefined>, dropLength: boolean): OutgoingHttpHeaders {
  const h = clientResponseHeaders(upstream, { dropLength });
  for (const k of Object.keys(h)) if (k.startsWith('access-control-')) delete h[k];
  const ours = res.getHeader('vary');
  if (ours !== undefined && h['vary'] !== undefined) h['vary'] = `${String(h['vary'])}, ${String(ours)}`;
  return h;
}

/** Passes an upstream response through untouched, streaming. */
async function relay(ctx: RequestContext, res: ServerResponse, source: CompiledSource, status: number, headers: Record<string, string | string[] | undefined>, body: Readable): Promise<void> {
  res.writeHead(status, toClient(res, headers, false));
  flushHead(res, headers);
  ctx.markResponseStart();
  await streamTo(ctx, source, body, res, null);
}

async function streamTo(ctx: RequestContext, source: CompiledSource, body: Readable, res: ServerResponse, through: Transform | null): Promise<void> {
  const gauge = ctx.metrics.openStreams.labels({ source: source.name });
  gauge.inc();
  try {
    await pipeTo(body, res, through);
    ctx.finish({ status: res.statusCode });
  } catch (err) {
    // The agent went away (which cancels the upstream call too) or the upstream broke mid-stream.
    // Out of byte budget is ours, not the upstream's: counted in buffer_rejections_total.
    const kind = (err as { code?: string }).code === 'CLIENT_CLOSED' ? 'client-closed' : err instanceof SseBudgetExceededError ? 'overloaded' : classifyUpstreamError(err);
    if (kind !== 'client-closed' && kind !== 'aborted' && kind !== 'overloaded') ctx.metrics.upstreamErrors.inc({ source: source.name, kind });
    if (!res.destroyed) res.destroy();
    ctx.finish({ status: res.statusCode, reason: `stream ended early: ${kind}` });
  } finally {
    gauge.dec();
  }
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number, hold: BudgetHold, declared?: number): Promise<string | null | 'overloaded'> {
  // A declared length is checked and reserved before any of the body is read, so an answer that
  // cannot be served costs nothing; bytes beyond the declaration still count (and fail below).
  let reserved = 0;
  if (declared !== undefined && Number.isSafeInteger(declared) && declared >= 0) {
    if (declared > limit) { body.destroy(); return null; }
    if (!hold.grow(declared)) { body.destroy(); return 'overloaded'; }
    reserved = declared;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.length;
    if (size > limit) { body.destroy(); return null; }
    if (size > reserved && !hold.grow(size - Math.max(reserved, size - c.length))) { body.destroy(); return 'overloaded'; }
    chunks.push(c);
  }
  return decodeUtf8Strict(Buffer.concat(chunks, size));
}

async function handleGet(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, snap: Snapshot, source: CompiledSource): Promise<void> {
  const filtering = source.visibility.tool !== null || source.visibility.resource !== null || source.visibility.prompt !== null;
  const up = await ctx.sendUpstream(source, req, 'GET', undefined, filtering);
  if (!up.ok) return replyError(ctx, res, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(up.kind, source.name), 502);
  const { statusCode, headers, body } = up.response;
  const isSse = mediaType(headers['content-type']) === 'text/event-stream';
  if (!isSse || statusCode !== 200) return relay(ctx, res, source, statusCode, headers, body);

  // The head goes out at once (an idle stream is a normal stream). The 2024-11-05 HTTP+SSE
  // transport announces a POST endpoint that would bypass the gates in an `endpoint` event: no
  // Streamable HTTP server sends one, so on any GET stream it is replaced by -32013 and the
  // stream ends. The rewriter holds each event until it is complete, so none of it leaks.
  let legacy = false;
  const rewriter = createSseRewriter({
    maxEventBytes: snap.maxFilteredResponseBytes,
    hold: ctx.budget.hold('sse_event', EDIT_CHARGE),
    rewrite: (ev) => {
      if (legacy) return '';
      if (ev.event === 'endpoint') {
        legacy = true;
        // After this chunk is pushed: stop reading the upstream and end the agent's stream.
        setImmediate(() => { body.unpipe(rewriter); body.destroy(); rewriter.end(); });
        ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response' });
        const err = errorFor(ctx, null, 'UNSUPPORTED_TRANSPORT', `upstream "${source.name}" speaks the 2024-11-05 HTTP+SSE transport, which ThoughtGate does not govern; use a Streamable HTTP endpoint`);
        return formatSseEvent({ event: 'message', data: err });
      }
      if (ev.data === null || ev.data === '' || !filtering) return null;
      const out = filterByShape(ev.data, source.visibility, ctx.correlationId);
      // Data that is not JSON-RPC could be read another way by a client: it is not passed on.
      if (out === null) return dataless(ev);
      if (out === ev.data) return null;
      return formatSseEvent({ data: out, event: ev.event ?? undefined, id: ev.id ?? undefined });
    },
    onOversize: () => ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response' }),
  });
  res.writeHead(statusCode, toClient(res, headers, true));
  res.flushHeaders();
  ctx.markResponseStart();
  await streamTo(ctx, source, body, res, rewriter);
}

async function forwardAsIs(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, source: CompiledSource, method: 'DELETE'): Promise<void> {
  const up = await ctx.sendUpstream(source, req, method, undefined, false);
  if (!up.ok) return replyError(ctx, res, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(up.kind, source.name), 502);
  return relay(ctx, res, source, up.response.statusCode, up.response.headers, up.response.body);
}

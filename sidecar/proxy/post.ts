// POST: the body is read (bounded), parsed and checked as a whole, planned message by message
// (plan.ts, pure), and the plan executed here: metrics counted, held calls cancelled, a takeover
// handed to gate 4, local answers sent, or the rest forwarded (forward.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SERVER_DEFAULTS } from '../../api/config.js';
import { parseDuration } from '../../api/duration.js';
import { batchBody, decodeUtf8Strict, parseJsonRpc, type Message } from '../../lib/jsonrpc.js';
import { methodLabel } from '../metrics.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { batchExceeds } from './batch-size.js';
import { readBody, type BodyResult } from './body.js';
import type { RequestContext } from './context.js';
import { forwardedDescription, forwardPost } from './forward.js';
import { headerValue } from './headers.js';
import { checkPost, errorFor, planPost, type PostPlan, type Refusal } from './plan.js';
import { replyError, sendJson } from './reply.js';
import { traceClock, traceDecisions } from './trace.js';

export const DEFAULT_BODY_TIMEOUT_MS = parseDuration(SERVER_DEFAULTS.requestBodyTimeout) as number;

/** The answer to a body that could not be read whole: too large, too slow, or no budget left. */
function refuseBody(ctx: RequestContext, res: ServerResponse, snap: Snapshot, r: BodyResult & { ok: false }): void {
  if (r.reason === 'aborted') return ctx.finish({ status: 499, decision: 'deny', gate: 'transport', reason: 'client went away' });
  // The rest of the body is never read: the connection cannot carry another request.
  res.setHeader('connection', 'close');
  if (r.reason === 'timeout') {
    ctx.metrics.requestTimeouts.inc({ phase: 'body' });
    return replyError(
      ctx,
      res,
      'INVALID_REQUEST',
      `request body did not arrive within server.requestBodyTimeout (${snap.server.requestBodyTimeoutMs} ms)`,
      408,
    );
  }
  if (r.reason === 'overloaded')
    return replyError(ctx, res, 'OVERLOADED', 'too many bytes are buffered for other requests (limits.maxBufferedBytes); nothing was forwarded, retry shortly');
  return replyError(ctx, res, 'REQUEST_TOO_LARGE', `request body exceeds limits.maxBodyBytes (${snap.maxBodyBytes} bytes)`);
}

function refuseBatch(ctx: RequestContext, res: ServerResponse, snap: Snapshot): void {
  ctx.metrics.batchesRejected.inc();
  replyError(ctx, res, 'BATCH_TOO_LARGE', `a batch holds at most limits.maxBatchMessages (${snap.maxBatchMessages}) messages; nothing was forwarded`);
}

export async function handlePost(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, snap: Snapshot, source: CompiledSource): Promise<void> {
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
  const refused = checkPost(parsed, req.headers, snap.maxBatchMessages);
  if (refused) return refuse(ctx, res, snap, refused);
  const messages = parsed.batch ? parsed.messages : [parsed.message];

  // A request id still in flight in this session would let the upstream mix up the answers.
  const session = headerValue(req.headers['mcp-session-id']);
  if (session !== undefined) {
    const claim = ctx.inflight.claim(
      session,
      messages.flatMap((m) => (m.kind === 'request' ? [m.id] : [])),
    );
    if (!claim.ok) return replyError(ctx, res, 'INVALID_REQUEST', `request id ${claim.id.raw} is still in flight in this session; ids must not be reused`);
    res.once('close', claim.release);
  }

  const planStart = ctx.tracer.on ? traceClock() : 0;
  const plan = planPost({
    messages,
    batch: parsed.batch,
    snap,
    source,
    headers: req.headers,
    approvals: ctx.approvals,
    now: new Date(),
    correlationId: ctx.correlationId,
    logging: ctx.logging,
    rateLimit: (op, nameBlindOnly) => ctx.rateLimiter.take(snap.rateLimits, op, undefined, nameBlindOnly),
    onListAudit: (method, hidden) => ctx.audit.listItems(snap.policy, source.name, method, hidden),
  });
  if (ctx.tracer.on) traceDecisions(ctx, messages, plan.outcomes, parsed.batch, planStart);
  return executePost(ctx, req, res, snap, source, messages, parsed.batch, plan);
}

/** The answer to a body refused whole (checkPost). */
function refuse(ctx: RequestContext, res: ServerResponse, snap: Snapshot, r: Refusal): void {
  if (r.kind === 'batch-too-large') return refuseBatch(ctx, res, snap);
  if (r.kind === 'refused') return replyError(ctx, res, r.name, r.reason);
  // A message the refusal is about, answered at HTTP level (as the MCP SDK answers it).
  sendJson(res, 400, errorFor(ctx, r.id, r.name, r.reason));
  ctx.finish({
    status: 400,
    decision: 'deny',
    gate: 'transport',
    reason: r.reason,
    ...(r.name === 'INVALID_REQUEST' ? { messages: [{ method: '', kind: 'invalid', decision: 'invalid', reason: r.reason }] } : {}),
  });
}

/** Carries a plan out: the effects the planner only names. */
async function executePost(
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  messages: readonly Message[],
  batch: boolean,
  plan: PostPlan,
): Promise<void> {
  for (const c of plan.counts)
    ctx.metrics.requests.inc({ source: source.name, method: methodLabel(c.method), decision: c.decision, gate: c.gate, rule: c.rule, protocol: 'mcp' });
  for (const rule of plan.rateLimited) ctx.metrics.rateLimited.inc({ source: source.name, rule });
  for (const a of plan.audits) ctx.audit.call(snap.policy, source.name, a);
  for (const id of plan.cancelHeld) ctx.approvals?.cancelHeld(id);
  ctx.messages = plan.outcomes;
  if (plan.takeover) return ctx.approvals!.takeover(plan.takeover, { ctx, req, res, snap, source });

  if (plan.forward.length === 0) {
    if (plan.local.length === 0) {
      res.writeHead(202).end();
      return ctx.finish({ status: 202 });
    }
    sendJson(res, 200, batch ? batchBody(plan.local) : plan.local[0]!);
    return ctx.finish({ status: 200 });
  }

  await forwardPost(ctx, req, res, snap, source, {
    body: batch ? batchBody(plan.forward) : plan.forward[0]!,
    describe: forwardedDescription(req, messages, plan.forward, batch),
    batch,
    forwardedIds: plan.forwardedIds,
    local: plan.local,
    edits: plan.edits,
    onHeaders: (h) => {
      plan.init.session = headerValue(h['mcp-session-id']);
    },
  });
}

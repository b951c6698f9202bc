// Forward-and-edit: a planned POST goes upstream and its answer comes back to the agent, passed
// through untouched when nothing in it is ours to change, else read (JSON whole and bounded, SSE
// event by event) and edited: lists filtered, probes put back, our local answers joined in.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { batchBody, parseJsonRpc, type Message, type RawId } from '../../lib/jsonrpc.js';
import { BodyError, readBodyText } from '../../lib/read-body.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { createSseRewriter, formatSseEvent, SseBudgetExceededError, type SseEvent } from '../sse.js';
import { EDIT_CHARGE, type BudgetHold } from './budget.js';
import type { RequestContext } from './context.js';
import { editPayload, notGoverned, type EditTable } from './edits.js';
import { clientResponseHeaders, describingHeaders, headerValue, mediaType } from './headers.js';
import { flushHead, pipeTo } from './pipe.js';
import { relayed } from './reclaim.js';
import { errorFor } from './plan.js';
import { replyError, sendJson } from './reply.js';
import { classifyUpstreamError, describeUpstreamError, type UpstreamErrorKind } from './upstream.js';

/**
 * Headers that describe the message (Mcp-Method, Mcp-Name, Mcp-Param-*) must say what the upstream
 * reads in the body, never what the agent sent when that differs: a body that is not the agent's
 * (a probe, a batch with elements removed, a rewritten URI) gets them rebuilt from the forwarded
 * message; a batch gets none. Undefined: the agent's body goes as is, and so do its headers.
 */
export function forwardedDescription(
  req: IncomingMessage,
  messages: readonly Message[],
  toForward: readonly string[],
  batch: boolean,
): Record<string, string> | undefined {
  if (batch) return describingHeaders(req.headers, null);
  if (toForward[0] === messages[0]!.raw) return undefined;
  const p = parseJsonRpc(toForward[0]!);
  return describingHeaders(req.headers, p.ok && !p.batch ? p.message : null);
}

export interface ForwardPlan {
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

/** The answer when the upstream call failed before its head: each forwarded request gets UPSTREAM_UNAVAILABLE (-32000). */
export function upstreamFailed(ctx: RequestContext, res: ServerResponse, source: CompiledSource, plan: ForwardPlan, kind: UpstreamErrorKind): void {
  const reason = describeUpstreamError(kind, source.name);
  const replies = [...plan.local, ...plan.forwardedIds.map((id) => errorFor(ctx, id, 'UPSTREAM_UNAVAILABLE', reason))];
  if (replies.length === 0) {
    // Only notifications/responses were forwarded: there is no id to answer; say it in HTTP.
    return replyError(ctx, res, 'UPSTREAM_UNAVAILABLE', reason, 502);
  }
  sendJson(res, 200, plan.batch ? batchBody(replies) : replies[0]!);
  return ctx.finish({ status: 200, decision: 'deny', gate: 'upstream', reason });
}

export async function forwardPost(
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  plan: ForwardPlan,
): Promise<void> {
  const inspect = plan.edits.edits > 0 || plan.local.length > 0;
  // The common case, an answer nothing edits, is relayed from undici's handler (relayDispatched, below).
  if (!inspect) {
    const relayed = relayDispatched(ctx, req, res, source, plan);
    if (relayed !== null) return relayed;
  }
  const up = await ctx.sendUpstream(source, req, 'POST', plan.body, inspect, plan.describe);
  if (!up.ok) return upstreamFailed(ctx, res, source, plan, up.kind);
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
      ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: source.protocol });
      return replyError(
        ctx,
        res,
        'UPSTREAM_RESPONSE_INVALID',
        `upstream "${source.name}" answered with a content type that is not application/json or text/event-stream`,
        502,
      );
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
      releaseWhenRead(ctx, res, snap, hold);
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
      ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: source.protocol });
      const reason = `upstream "${source.name}" sent an event that is not JSON-RPC; not passed through`;
      return plan.edits
        .pending()
        .map((id) => formatSseEvent({ event: 'message', data: notGoverned(id, reason, ctx.correlationId) }))
        .join('');
    },
    onOversize: () => ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: source.protocol }),
    hold: ctx.budget.hold('sse_event', EDIT_CHARGE),
  });
  res.writeHead(statusCode, toClient(res, headers, true));
  res.flushHeaders();
  ctx.markResponseStart();
  for (const l of plan.local) res.write(formatSseEvent({ event: 'message', data: l }));
  await streamTo(ctx, source, body, res, rewriter);
}

/** An SSE event without data (a keep-alive, an id or retry alone), rebuilt without its comments. */
export function dataless(ev: SseEvent): string {
  let out = '';
  const id = eventId(ev.id);
  if (id !== undefined) out += `id: ${id}\n`;
  if (ev.retry !== null) out += `retry: ${ev.retry}\n`;
  return `${out || ':\n'}\n`;
}

/**
 * An upstream event id kept on an edited stream (clients resume with it): a short token of
 * visible ASCII, as servers make them. Anything else is not an id but a payload, and is dropped.
 */
function eventId(id: string | null): string | undefined {
  return id !== null && id.length <= 128 && /^[\x21-\x7e]*$/.test(id) ? id : undefined;
}

/** A JSON answer that must be edited: read whole (within the budget), edited, sent. */
async function sendEdited(
  ctx: RequestContext,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  plan: ForwardPlan,
  statusCode: number,
  headers: Record<string, string | string[] | undefined>,
  body: Readable,
  hold: BudgetHold,
): Promise<void> {
  const editCtx = { edits: plan.edits, correlationId: ctx.correlationId };
  const length = headerValue(headers['content-length']);
  const text = await readBounded(body, snap.maxFilteredResponseBytes, hold, length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined);
  if (typeof text !== 'string') hold.release(); // what was read is dropped
  if (text === 'overloaded') {
    return replyError(
      ctx,
      res,
      'OVERLOADED',
      `too many bytes are buffered for other requests (limits.maxBufferedBytes) to filter the answer of upstream "${source.name}"; the request reached the upstream but its answer was dropped, retry shortly`,
    );
  }
  if (text === null) {
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: source.protocol });
    return replyError(ctx, res, 'UPSTREAM_RESPONSE_INVALID', `upstream "${source.name}" response exceeds limits.maxFilteredResponseBytes or is not UTF-8`, 502);
  }
  const edited = editPayload(text, editCtx);
  if (edited === null) {
    hold.release();
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: source.protocol });
    return replyError(ctx, res, 'UPSTREAM_RESPONSE_INVALID', `upstream "${source.name}" answered with a body that is not JSON-RPC`, 502);
  }
  let out = edited.text;
  if (plan.local.length > 0) {
    // Our local answers join the upstream's batch answer.
    out = out.trimStart().startsWith('[')
      ? `[${out.trim().slice(1, -1)}${out.trim() === '[]' ? '' : ','}${plan.local.join(',')}]`
      : batchBody([out, ...plan.local]);
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
 * Gives `hold` back once the client has read the edited answer written to `res` (its settled size is
 * kept while the answer waits for a slow client), and not later than server.slowReaderTimeout: a
 * client that never reads is disconnected, so it cannot keep other clients' answers out of the budget.
 */
export function releaseWhenRead(ctx: RequestContext, res: ServerResponse, snap: Snapshot, hold: BudgetHold): void {
  if (res.writableFinished || res.destroyed || hold.bytes === 0) return hold.release();
  const timer = setTimeout(() => {
    ctx.metrics.requestTimeouts.inc({ phase: 'response' });
    ctx.debug('client did not read an edited answer in time; disconnected', { slowReaderTimeoutMs: snap.server.slowReaderTimeoutMs });
    res.destroy();
  }, snap.server.slowReaderTimeoutMs);
  timer.unref();
  res.once('close', () => {
    clearTimeout(timer);
    hold.release();
  });
}

/**
 * The upstream's response headers as the agent gets them. CORS is the sidecar's to decide: the
 * upstream's Access-Control-* never pass, and its Vary keeps our `Origin`.
 */
export function toClient(res: ServerResponse, upstream: Record<string, string | string[] | undefined>, dropLength: boolean): OutgoingHttpHeaders {
  const h = clientResponseHeaders(upstream, { dropLength, dropCors: true });
  const ours = res.getHeader('vary');
  if (ours !== undefined && h['vary'] !== undefined) h['vary'] = `${String(h['vary'])}, ${String(ours)}`;
  return h;
}

/**
 * A forwarded POST whose answer nothing edits, relayed from undici's dispatch handler straight to
 * the agent: no Readable body, no AsyncResource, no promise per step (docs/performance.md, CPU per
 * request). The same bounds as relay(): the upstream pauses while the agent's side is full, the
 * agent hanging up aborts the call, an upstream failure before the head answers as forwardPost's,
 * after it ends the response as streamTo's. Null when the request cannot take this path (nothing
 * was sent); else resolves once the answer is done.
 */
export function relayDispatched(
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  source: CompiledSource,
  plan: Pick<ForwardPlan, 'body' | 'describe' | 'onHeaders'>,
  /** The answer when the call failed before its head (A2A answers in its own shapes); default forwardPost's. */
  failed: (kind: UpstreamErrorKind) => void = (kind) => upstreamFailed(ctx, res, source, plan as ForwardPlan, kind),
): Promise<void> | null {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  let streaming = false;
  let ended = false;
  let settled = false;
  const labels = { source: source.name };
  const clientClosed = () => Object.assign(new Error('client closed'), { code: 'CLIENT_CLOSED' });
  const settle = (err: unknown): void => {
    if (settled) return;
    settled = true;
    if (err === null) ctx.finish({ status: res.statusCode });
    else streamEndedEarly(ctx, source, res, err);
    ctx.metrics.openStreams.dec(labels);
    resolve();
  };
  const sent = ctx.dispatchUpstream(source, req, plan.body, plan.describe, {
    onHead(status, headers, resume) {
      plan.onHeaders?.(headers);
      // A head Node refuses throws here: undici then ends the call, and onError hands the error on.
      relayHead(ctx, res, status, headers);
      streaming = true;
      ctx.metrics.openStreams.inc(labels);
      res.once('finish', () => settle(null));
      res.once('close', () => {
        if (!res.writableFinished) settle(clientClosed());
      });
      // A parser's resume outlives the answer (the socket serves the next request): not after the end.
      res.on('drain', () => {
        if (!ended && !settled) resume();
      });
    },
    onData(chunk) {
      relayed(chunk.length);
      return res.write(chunk);
    },
    onEnd() {
      ended = true;
      res.end();
    },
    onError(err, beforeHead, agentGone) {
      if (beforeHead) {
        failed(classifyUpstreamError(err));
        return resolve();
      }
      // onHead threw: failing as relay() would (the request's handler answers 500).
      if (!streaming) return reject(err);
      settle(agentGone ? clientClosed() : err);
    },
  });
  return sent ? done : null;
}

/** Passes an upstream response through untouched, streaming. */
export async function relay(
  ctx: RequestContext,
  res: ServerResponse,
  source: CompiledSource,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: Readable,
): Promise<void> {
  relayHead(ctx, res, status, headers);
  await streamTo(ctx, source, body, res, null);
}

/** The upstream's head, passed through untouched: written, flushed (flushHead), and marked as the response's start. */
function relayHead(ctx: RequestContext, res: ServerResponse, status: number, headers: Record<string, string | string[] | undefined>): void {
  res.writeHead(status, toClient(res, headers, false));
  flushHead(res, headers);
  ctx.markResponseStart();
}

export async function streamTo(
  ctx: RequestContext,
  source: CompiledSource,
  body: Readable,
  res: ServerResponse,
  through: Transform | null,
  /** A stream that ended early, answered by the caller (true) rather than cut (streamEndedEarly). */
  endedEarly?: (err: unknown) => boolean,
): Promise<void> {
  const labels = { source: source.name };
  ctx.metrics.openStreams.inc(labels);
  try {
    await pipeTo(body, res, through);
    ctx.finish({ status: res.statusCode });
  } catch (err) {
    if (!endedEarly?.(err)) streamEndedEarly(ctx, source, res, err);
  } finally {
    ctx.metrics.openStreams.dec(labels);
  }
}

/** A relayed answer cut short: the agent went away (which cancels the upstream call too) or the upstream broke mid-stream. */
export function streamEndedEarly(ctx: RequestContext, source: CompiledSource, res: ServerResponse, err: unknown): void {
  // Out of byte budget is ours, not the upstream's: counted in buffer_rejections_total.
  const kind =
    (err as { code?: string }).code === 'CLIENT_CLOSED' ? 'client-closed' : err instanceof SseBudgetExceededError ? 'overloaded' : classifyUpstreamError(err);
  if (kind !== 'client-closed' && kind !== 'aborted' && kind !== 'overloaded')
    ctx.metrics.upstreamErrors.inc({ source: source.name, kind, protocol: source.protocol });
  if (!res.destroyed) res.destroy();
  ctx.finish({ status: res.statusCode, reason: `stream ended early: ${kind}` });
}

/**
 * An answer read whole to be edited, within `limit` and the byte budget: its text, null when it is
 * over the limit or not UTF-8, 'overloaded' when the budget refused it. A stream that breaks
 * throws what broke it, as reading it directly would.
 */
async function readBounded(body: Readable, limit: number, hold: BudgetHold, declared?: number): Promise<string | null | 'overloaded'> {
  // A declared length is checked and reserved before any of the body is read, so an answer that
  // cannot be served costs nothing; bytes beyond the declaration still count (and fail below).
  let reserved = 0;
  if (declared !== undefined && declared <= limit) {
    if (!hold.grow(declared)) {
      body.destroy();
      return 'overloaded';
    }
    reserved = declared;
  }
  let size = 0;
  const grow = (n: number) => {
    size += n;
    return size <= reserved || hold.grow(size - Math.max(reserved, size - n));
  };
  try {
    return await readBodyText(body, { limitBytes: limit, grow, ...(declared !== undefined ? { declaredLength: declared } : {}) });
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    if (err.reason === 'over-budget') return 'overloaded';
    if (err.reason === 'too-large' || err.reason === 'invalid-utf8') return null;
    throw err.cause ?? err;
  }
}

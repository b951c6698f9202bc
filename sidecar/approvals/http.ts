// Gate 4 on the wire (MCP 2025-11-25 tasks): the proxy hands a single request here when
// - a tools/call needs approval: with `params.task` it becomes an MCP task (CreateTaskResult at
//   once), without it the call is held open as SSE until it is decided and, if approved, run;
// - a task-augmented tools/call of a tool ThoughtGate marked task-capable was simply forwarded by
//   the gates: ThoughtGate answers the task itself (the upstream never sees `params.task`);
// - tasks/get, tasks/result, tasks/cancel name one of ThoughtGate's task ids;
// - tasks/list: ThoughtGate's tasks of the client first, then the upstream's (tasks.ts cursors).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERRORS, type ErrorName } from '../../api/errors.js';
import type { Operation } from '../../policy/gates/operation.js';
import { parseJsonRpc, type Message, type RawId } from '../../lib/jsonrpc.js';
import { errorResponse, requestText, resultResponse } from '../../lib/jsonrpc-reply.js';
import type { RequestContext, TakeoverRequest } from '../proxy/context.js';
import type { ApproveDecision, JsonRpcRequest as Request } from '../proxy/gate4.js';
import { idKey } from '../proxy/edits.js';
import { headerValue } from '../proxy/headers.js';
import { pipeTo } from '../proxy/pipe.js';
import { describeUpstreamError } from '../proxy/upstream.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { createSseRewriter, formatSseEvent } from '../sse.js';
import { isAnonymous, type ApprovalTask, type ApprovedCall, type Executor } from './engine.js';
import { errorOutcome } from './lifecycle.js';
import { traceApprovalWait } from './trace.js';
import { formatTraceparent } from '../../lib/trace-context.js';
import { heldKey, ownerOf, sessionKey, type ApprovalRuntime } from './runtime.js';
import {
  decodeCursor,
  encodeCursor,
  IMMEDIATE_RESPONSE_META,
  taskView,
  withRelatedTask,
  type CallOutcome,
  type JsonRpcErrorObject,
  type TaskSupport,
} from './tasks.js';
import { bufferedExecutor, callBody, outcomeOf, readAnswer, sessionHeaders } from './upstream.js';

/** Our tasks per tasks/list page. */
export const LIST_PAGE_SIZE = 50;

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' };

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function sendJson(res: ServerResponse, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function errorJson(ctx: RequestContext, id: RawId, name: ErrorName, reason: string, rule?: string, retryAfterMs?: number): string {
  const e = ERRORS[name];
  return errorResponse(id, e.code, e.message, {
    gate: e.gate,
    ...(rule !== undefined ? { rule } : {}),
    reason,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    correlationId: ctx.correlationId,
  });
}

function invalidParams(ctx: RequestContext, id: RawId, message: string, reason: string): string {
  return errorResponse(id, -32602, message, { gate: 'approval', reason, correlationId: ctx.correlationId });
}

/** The answer the call gives (for a held call, or tasks/result with the related-task meta). */
export function outcomeResponse(id: RawId, o: CallOutcome, taskId?: string): string {
  if (o.kind === 'result') return resultResponse(id, taskId !== undefined ? withRelatedTask(o.result, taskId) : o.result);
  return errorResponse(id, o.error.code, o.error.message, o.error.data);
}

function reply(ctx: RequestContext, res: ServerResponse, body: string, decision?: string): void {
  sendJson(res, body);
  ctx.finish({ status: 200, ...(decision !== undefined ? { decision } : {}) });
}

function progressTokenOf(meta: Record<string, unknown> | null): string | number | undefined {
  const t = meta?.['progressToken'];
  return typeof t === 'string' || typeof t === 'number' ? t : undefined;
}

interface CallParts {
  tool: string;
  args: Record<string, unknown>;
  task: { ttl?: number } | undefined;
  meta: Record<string, unknown> | null;
}

/** params of a tools/call that ThoughtGate will run itself, or the -32602 it answers instead. */
function callParts(ctx: RequestContext, m: Request, op: Operation): CallParts | string {
  const p = obj(m.params) ?? {};
  const args = p['arguments'] === undefined ? {} : obj(p['arguments']);
  if (args === null) return invalidParams(ctx, m.id, 'Invalid params', 'tools/call params.arguments must be an object');
  const task = p['task'];
  if (task !== undefined && obj(task) === null) return invalidParams(ctx, m.id, 'Invalid params', 'params.task must be an object such as {"ttl": 60000}');
  const ttl = obj(task)?.['ttl'];
  return {
    tool: op.target!.name,
    args,
    task: task === undefined ? undefined : typeof ttl === 'number' ? { ttl } : {},
    meta: obj(p['_meta']),
  };
}

/** A tools/call that gate 2 or 3 sent to approval. */
export async function handleApprovalCall(rt: ApprovalRuntime, r: TakeoverRequest, m: Request, op: Operation, d: ApproveDecision): Promise<void> {
  const { ctx, req, res, snap, source } = r;
  if (m.method !== 'tools/call' || op.target?.kind !== 'tool') {
    return reply(
      ctx,
      res,
      errorJson(
        ctx,
        m.id,
        'APPROVAL_UNAVAILABLE',
        `${d.reason}; ThoughtGate asks humans to approve tools/call only, so this ${m.method} is not forwarded`,
        d.rule,
      ),
      'deny',
    );
  }
  const parts = callParts(ctx, m, op);
  if (typeof parts === 'string') return reply(ctx, res, parts, 'deny');
  const approval = {
    channel: d.channel,
    ...(d.timeoutMs !== undefined ? { ruleTimeoutMs: d.timeoutMs } : {}),
    reason: d.reason,
    ...(d.rule !== undefined ? { rule: d.rule } : {}),
  };
  if (parts.task) return startTask(rt, ctx, req, res, snap, source, m, parts, approval);
  return holdCall(rt, ctx, req, res, snap, source, m, parts, approval);
}

/**
 * A forwarded tools/call with `params.task` for a tool ThoughtGate marked task-capable although
 * the upstream did not: ThoughtGate runs it at once and answers the task itself. Returns false
 * when the upstream takes tasks for this tool itself (the request is then forwarded untouched).
 */
export function isOwnTaskCall(rt: ApprovalRuntime, source: CompiledSource, m: Message, mayNeedApproval: (tool: string) => boolean): boolean {
  if (m.kind !== 'request' || m.method !== 'tools/call') return false;
  const p = obj(m.params);
  const tool = p?.['name'];
  if (!p || p['task'] === undefined || typeof tool !== 'string' || !source.mayNeedApproval || !mayNeedApproval(tool)) return false;
  const upstream = rt.toolSupport.get(source.name)?.get(tool);
  return upstream !== 'optional' && upstream !== 'required';
}

export async function handleOwnTask(rt: ApprovalRuntime, r: TakeoverRequest, m: Request, op: Operation): Promise<void> {
  const { ctx, req, res, snap, source } = r;
  const parts = callParts(ctx, m, op);
  if (typeof parts === 'string') return reply(ctx, res, parts, 'deny');
  return startTask(rt, ctx, req, res, snap, source, m, parts, null);
}

function upstreamSupport(rt: ApprovalRuntime, source: string, tool: string): TaskSupport | undefined {
  return rt.toolSupport.get(source)?.get(tool);
}

async function startTask(
  rt: ApprovalRuntime,
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  m: Request,
  parts: CallParts,
  approval: { channel: string; ruleTimeoutMs?: number; reason: string; rule?: string } | null,
): Promise<void> {
  const owner = ownerOf(source.name, req.headers);
  // No `_meta` of the client's goes upstream (callBody): a task has no stream for progress anyway.
  const execute = bufferedExecutor(rt.upstream, {
    source,
    headers: sessionHeaders(req.headers),
    resultRoom: () => rt.engine.resultRoom(owner),
    upstreamTask: upstreamSupport(rt, source.name, parts.tool) === 'required',
    maxBytes: snap.maxFilteredResponseBytes,
    correlationId: ctx.correlationId,
  });
  const session = headerValue(req.headers['mcp-session-id']);
  const r = rt.engine.start(
    {
      mode: 'task',
      owner,
      source: source.name,
      tool: parts.tool,
      arguments: parts.args,
      approval,
      ...(session !== undefined ? { mcpSessionId: session } : {}),
      ...(parts.task?.ttl !== undefined ? { requestedTtlMs: parts.task.ttl } : {}),
      correlationId: ctx.correlationId,
      execute,
    },
    snap.approvals,
  );
  if (!r.ok) return reply(ctx, res, errorJson(ctx, m.id, r.error, r.reason, approval?.rule, r.retryAfterMs), 'deny');
  const result: Record<string, unknown> = { task: taskView(r.task) };
  if (approval) {
    result['_meta'] = {
      [IMMEDIATE_RESPONSE_META]: `The call to ${parts.tool} needs human approval and was not run yet; it runs once approved. Task ${r.task.id}: poll tasks/get, then read tasks/result.`,
    };
  }
  sendJson(res, resultResponse(m.id, result));
  ctx.markResponseStart();
  ctx.finish({ status: 200, decision: approval ? 'approve' : 'forward', gate: approval ? 'approval' : 'rules', reason: `task ${r.task.id} created` });
}

/** A call needing approval without `params.task`: answered as SSE at once, kept open until the end. */
async function holdCall(
  rt: ApprovalRuntime,
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  m: Request,
  parts: CallParts,
  approval: { channel: string; ruleTimeoutMs?: number; reason: string; rule?: string },
): Promise<void> {
  const s = snap.approvals;
  const token = progressTokenOf(parts.meta);
  let answered = false;
  let progressSent = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  const required = upstreamSupport(rt, source.name, parts.tool) === 'required';
  const waitTrace = traceApprovalWait(ctx.tracer, ctx.span, approval);
  /** The engine closed (the sidecar is stopping) before this call ended: nothing is sent after that. */
  let stopped = false;
  /** The call went upstream: from then on it may have run there, whatever cuts it. */
  let sent = false;
  /** Settles once the approved call gave up or ended (at once when it never ran). */
  let ran: Promise<void> = Promise.resolve();
  /** Where notifications/cancelled finds this call while ThoughtGate holds it (null: anonymous). */
  let key: string | null = null;
  const run = async (call: ApprovedCall, task: ApprovalTask, signal: AbortSignal): Promise<CallOutcome> => {
    if (stopped || signal.aborted) return errorOutcome(task, 'APPROVAL_CANCELLED', `${SHUTTING_DOWN}; it was not executed`);
    // From here the upstream has the request: the client's notifications/cancelled is the upstream's
    // to handle (forwarded), not a cut of its connection, which the upstream may not read as a cancel.
    if (key !== null && rt.held.get(key) === task.id) rt.held.delete(key);
    sent = true;
    if (required) {
      return bufferedExecutor(rt.upstream, {
        source,
        headers: sessionHeaders(req.headers),
        upstreamTask: true,
        maxBytes: snap.maxFilteredResponseBytes,
        correlationId: ctx.correlationId,
      })(call, task, signal);
    }
    return executeHeld(ctx, req, res, snap, source, m.id, call, task, token, progressSent, signal, () => {
      answered = true;
    });
  };
  const execute: Executor = (call, task, signal) => {
    stop();
    waitTrace.decided(task);
    const running = run(call, task, signal);
    ran = running.then(
      () => undefined,
      () => undefined,
    );
    return running;
  };
  const session = headerValue(req.headers['mcp-session-id']);
  const r = rt.engine.start(
    {
      mode: 'held',
      owner: ownerOf(source.name, req.headers),
      source: source.name,
      tool: parts.tool,
      arguments: parts.args,
      approval,
      ...(session !== undefined ? { mcpSessionId: session } : {}),
      correlationId: ctx.correlationId,
      ...(waitTrace.ref ? { traceparent: formatTraceparent(waitTrace.ref) } : {}),
      execute,
    },
    s,
  );
  if (!r.ok) return reply(ctx, res, errorJson(ctx, m.id, r.error, r.reason, approval.rule, r.retryAfterMs), 'deny');
  const task = r.task;
  // Found again by notifications/cancelled only from the same owner; anonymous clients cannot be
  // told apart, so theirs is never registered (it is cancelled by closing its connection).
  key = isAnonymous(task.owner) ? null : heldKey(task.owner, idKey(m.id));
  if (key !== null) rt.held.set(key, task.id);
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders(); // the agent sees the stream start before the first keep-alive
  ctx.markResponseStart();
  const progress = () => {
    if (token === undefined || res.writableEnded) return;
    const n = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: progressSent++, message: task.statusMessage } };
    res.write(formatSseEvent({ event: 'message', data: JSON.stringify(n) }));
  };
  progress();
  timer = setInterval(() => {
    if (task.phase !== 'submitting' && task.phase !== 'pending') return stop();
    res.write(': keep-alive\n\n');
    progress();
  }, s.keepAliveMs);
  res.once('close', () => {
    stop();
    // A response that ended normally also closes; only a cut one cancels.
    if (!res.writableFinished && task.phase !== 'done') rt.engine.cancel(task.id, null, 'the held client disconnected');
  });
  await rt.engine.wait(task);
  stop();
  waitTrace.decided(task);
  if (key !== null && rt.held.get(key) === task.id) rt.held.delete(key);
  if (task.phase !== 'done') {
    // The engine closed without ending the call (the sidecar is stopping; a drain never wakes a held
    // call that runs: it finishes). Nothing is sent from now on (run checks `stopped`); a running call
    // was aborted upstream by the engine's signal: once it gave up, the client is told whether it left.
    stopped = true;
    await ran;
  }
  const outcome = stopped ? errorOutcome(task, 'APPROVAL_CANCELLED', sent ? STOPPED_AFTER_SEND : `${SHUTTING_DOWN}; it was not executed`) : task.outcome!;
  if (!answered && !res.writableEnded && !res.destroyed) {
    res.end(formatSseEvent({ event: 'message', data: outcomeResponse(m.id, outcome) }));
  }
  ctx.finish({ status: 200, decision: 'approve', gate: 'approval', reason: stopped ? SHUTTING_DOWN : task.statusMessage });
}

const SHUTTING_DOWN = 'the sidecar is shutting down';
/** Never "not executed" once the call went out: a client told that would send it again. */
const STOPPED_AFTER_SEND = `${SHUTTING_DOWN}; the approved call was sent and may have run upstream (do not assume it did not run)`;

/**
 * Runs an approved held call in the client's request: the upstream's SSE events pass through as
 * they come (its progress notifications renumbered after ours, so progress keeps increasing);
 * a JSON answer is read whole (bounded) and sent as one event.
 */
async function executeHeld(
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  id: RawId,
  call: { tool: string; arguments: Record<string, unknown> },
  task: ApprovalTask,
  token: string | number | undefined,
  offset: number,
  signal: AbortSignal,
  markAnswered: () => void,
): Promise<CallOutcome> {
  const data = { correlationId: ctx.correlationId };
  if (res.destroyed) return outcomeOf({ kind: 'failed', reason: 'the client went away' }, data);
  /** The engine's signal stopped the call after it was sent: the task's end when it was cancelled, else the sidecar is stopping. */
  const aborted = () => (task.phase === 'done' && task.outcome ? task.outcome : errorOutcome(task, 'APPROVAL_CANCELLED', STOPPED_AFTER_SEND));
  // The upstream gets a progress token of ours, never the client's (callBody): ours maps back.
  const ourToken = token === undefined ? undefined : `thoughtgate-progress-${task.id}`;
  // The engine's signal aborts the upstream request (and its answer's body), as the client hanging up does.
  const up = await ctx.sendUpstream(source, req, 'POST', callBody(id.raw, call, ourToken, false), true, undefined, signal);
  if (!up.ok && signal.aborted) return aborted();
  if (!up.ok) return outcomeOf({ kind: 'failed', reason: describeUpstreamError(up.kind, source.name) }, data);
  const { statusCode, headers, body } = up.response;
  const type = headerValue(headers['content-type']) ?? '';
  if (statusCode >= 200 && statusCode < 300 && type.startsWith('text/event-stream')) {
    const want = idKey(id);
    let outcome: CallOutcome | null = null;
    const rewriter = createSseRewriter({
      maxEventBytes: snap.maxFilteredResponseBytes,
      rewrite: (ev) => {
        if (ev.data === null || ev.data === '') return null;
        const p = parseJsonRpc(ev.data);
        if (!p.ok || p.batch) return null;
        const msg = p.message;
        if (msg.kind === 'response' && msg.id !== null && idKey(msg.id) === want) {
          outcome = msg.isError ? { kind: 'error', error: msg.error as JsonRpcErrorObject } : { kind: 'result', result: obj(msg.result) ?? {} };
          return null;
        }
        if (token !== undefined && offset > 0 && msg.kind === 'notification' && msg.method === 'notifications/progress') {
          const params = obj(msg.params);
          if (!params || params['progressToken'] !== ourToken || typeof params['progress'] !== 'number') return null;
          const shifted: Record<string, unknown> = { ...params, progressToken: token, progress: params['progress'] + offset };
          if (typeof params['total'] === 'number') shifted['total'] = params['total'] + offset;
          return formatSseEvent({
            data: JSON.stringify({ jsonrpc: '2.0', method: msg.method, params: shifted }),
            event: ev.event ?? undefined,
            id: ev.id ?? undefined,
          });
        }
        return null;
      },
    });
    markAnswered();
    try {
      await pipeTo(body, res, rewriter);
    } catch {
      // Stopped by the engine before the upstream answered (cancelled, or the sidecar stopping): the
      // stream so far ends on whole events (the rewriter passes nothing else), so the client is told, last.
      if (signal.aborted && outcome === null && !res.destroyed && !res.writableEnded) {
        const o = aborted();
        res.end(formatSseEvent({ event: 'message', data: outcomeResponse(id, o) }));
        return o;
      }
      if (!res.destroyed) res.destroy();
    }
    return outcome ?? outcomeOf({ kind: 'failed', reason: `upstream "${source.name}" ended its stream without answering` }, data);
  }
  const answer = await readAnswer(up, source.name, id.raw, snap.maxFilteredResponseBytes);
  if (answer.kind === 'response' && !res.writableEnded) {
    // The upstream's message as it sent it, framed as one event.
    markAnswered();
    res.end(formatSseEvent({ event: 'message', data: answer.message.raw }));
  }
  return outcomeOf(answer, data);
}

/**
 * notifications/cancelled from a client whose call is held: while it still waits for a human the
 * approval is cancelled instead of forwarded (the SDK client cancels this way, without closing the
 * stream). Once it runs, the upstream knows the request id and the notification is for it. The
 * held call's task id, or null when the notification is not about a held call still open.
 */
export function findHeld(rt: ApprovalRuntime, source: string, headers: IncomingMessage['headers'], params: unknown): string | null {
  const requestId = obj(params)?.['requestId'];
  if (typeof requestId !== 'string' && typeof requestId !== 'number') return null;
  const owner = ownerOf(source, headers);
  // Only the owner that holds the call can name it; an anonymous sender owns nothing it could name.
  if (isAnonymous(owner)) return null;
  const id = rt.held.get(heldKey(owner, idKey({ raw: JSON.stringify(requestId), value: requestId })));
  return id !== undefined && rt.engine.isOpen(id) ? id : null;
}

/** tasks/get, tasks/result, tasks/cancel for one of ThoughtGate's task ids. */
export async function handleTaskMethod(rt: ApprovalRuntime, { ctx, req, res, snap, source }: TakeoverRequest, m: Request): Promise<void> {
  const owner = ownerOf(source.name, req.headers);
  const id = obj(m.params)!['taskId'] as string;
  const notFound = () =>
    reply(
      ctx,
      res,
      invalidParams(
        ctx,
        m.id,
        'Failed to retrieve task: Task not found',
        `no task ${id} for this client (a task belongs to the client that created it, and is dropped after its ttl)`,
      ),
    );
  if (m.method === 'tasks/cancel') {
    const r = rt.engine.cancel(id, owner, 'tasks/cancel');
    if (r.ok) return reply(ctx, res, resultResponse(m.id, taskView(r.task)));
    if (r.reason === 'terminal')
      return reply(ctx, res, invalidParams(ctx, m.id, `Cannot cancel task: already in terminal status '${r.task!.status}'`, 'the task has ended'));
    return notFound();
  }
  const t = rt.engine.get(id, owner);
  if (!t) return notFound();
  if (m.method === 'tasks/get') return reply(ctx, res, resultResponse(m.id, taskView(t)));
  // tasks/result blocks until the task ends; SSE with keep-alive comments while it waits.
  if (t.phase === 'done') return reply(ctx, res, outcomeResponse(m.id, t.outcome!, t.id));
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders(); // the agent sees the stream start before the first keep-alive
  ctx.markResponseStart();
  const timer = setInterval(() => res.write(': keep-alive\n\n'), snap.approvals.keepAliveMs);
  await rt.engine.wait(t, res);
  clearInterval(timer);
  if ((t as ApprovalTask).phase === 'done' && t.outcome && !res.writableEnded && !res.destroyed)
    res.end(formatSseEvent({ event: 'message', data: outcomeResponse(m.id, t.outcome, t.id) }));
  else if (!res.writableEnded) res.end();
  ctx.finish({ status: 200 });
}

/** tasks/list: the client's ThoughtGate tasks, then the upstream's own (see tasks.ts for the cursors). */
export async function handleTasksList(rt: ApprovalRuntime, { ctx, req, res, snap, source }: TakeoverRequest, m: Request): Promise<void> {
  const params = obj(m.params) ?? {};
  const raw = params['cursor'];
  const cursor = raw === undefined ? null : decodeCursor(raw);
  if (raw !== undefined && cursor === null) return reply(ctx, res, invalidParams(ctx, m.id, 'Invalid params', 'invalid tasks/list cursor'));
  const { cursor: _c, ...rest } = params;

  if (cursor?.kind === 'upstream') {
    const page = await upstreamList(ctx, req, snap, source, rest, cursor.cursor);
    if (page.kind === 'error') return reply(ctx, res, page.body(m.id));
    return reply(
      ctx,
      res,
      resultResponse(m.id, { tasks: page.tasks, ...(page.next !== undefined ? { nextCursor: encodeCursor({ kind: 'upstream', cursor: page.next }) } : {}) }),
    );
  }
  const owner = ownerOf(source.name, req.headers);
  const ours = rt.engine.list(owner, cursor?.kind === 'ours' ? cursor.after : null, LIST_PAGE_SIZE);
  const tasks: unknown[] = ours.tasks.map(taskView);
  if (ours.more) {
    const last = ours.tasks[ours.tasks.length - 1]!;
    return reply(ctx, res, resultResponse(m.id, { tasks, nextCursor: encodeCursor({ kind: 'ours', after: [last.createdAt, last.id] }) }));
  }
  // Ours are done: the upstream's first page follows on this one, unless it declared no tasks.list.
  const declared = rt.upstreamTasks.get(sessionKey(source.name, headerValue(req.headers['mcp-session-id'])));
  let next: string | undefined;
  if (declared?.list !== false) {
    const page = await upstreamList(ctx, req, snap, source, rest, undefined);
    // An upstream without tasks/list (an error, or no list) simply has no tasks to add.
    if (page.kind === 'page') {
      tasks.push(...page.tasks);
      next = page.next;
    }
  }
  return reply(ctx, res, resultResponse(m.id, { tasks, ...(next !== undefined ? { nextCursor: encodeCursor({ kind: 'upstream', cursor: next }) } : {}) }));
}

type Page = { kind: 'page'; tasks: unknown[]; next?: string } | { kind: 'error'; body: (id: RawId) => string };

async function upstreamList(
  ctx: RequestContext,
  req: IncomingMessage,
  snap: Snapshot,
  source: CompiledSource,
  params: Record<string, unknown>,
  cursor: string | undefined,
): Promise<Page> {
  const idRaw = JSON.stringify(`thoughtgate-list-${ctx.correlationId}`);
  const body = requestText({ raw: idRaw }, 'tasks/list', { ...params, ...(cursor !== undefined ? { cursor } : {}) });
  const answer = await readAnswer(await ctx.sendUpstream(source, req, 'POST', body, true), source.name, idRaw, snap.maxFilteredResponseBytes);
  if (answer.kind === 'failed') return { kind: 'error', body: (id) => errorJson(ctx, id, 'UPSTREAM_UNAVAILABLE', answer.reason) };
  const msg = answer.message;
  if (msg.isError) {
    const e = msg.error as { code: number; message: string; data?: unknown };
    return { kind: 'error', body: (id) => errorResponse(id, e.code, e.message, e.data) };
  }
  const r = obj(msg.result);
  if (!r || !Array.isArray(r['tasks']))
    return {
      kind: 'error',
      body: (id) => errorJson(ctx, id, 'UPSTREAM_RESPONSE_INVALID', `upstream "${source.name}" answered tasks/list without a tasks array`),
    };
  return { kind: 'page', tasks: r['tasks'] as unknown[], ...(typeof r['nextCursor'] === 'string' ? { next: r['nextCursor'] } : {}) };
}

// Gate 4 for A2A (issue 13, DESIGN §2.6): a SendMessage / SendStreamingMessage whose decision is
// `approve` is held open through the approval engine (limits, timers, Slack or ApprovalRequest,
// markExecuting before the call, at most once) and, once approved, its original bytes are sent
// to the agent once. The pure half (what can be held, heads, refusal bodies, the bytes check) is
// a2a-hold.ts.
//
// The A2A handler calls it as its approve hook (a2aApprovalHook(rt): A2aHooks.approve), or
// directly:
//
//   holdA2a(rt: ApprovalRuntime, r: A2aHoldRequest, hold: A2aHold): Promise<void>
//
// It answers the request itself, whatever happens, and resolves once the answer is done:
// - a call that cannot be held (not Send*, a notification) or refused by the limits: the
//   binding's error (JSON-RPC -32056/-32060 with the request id; HTTP+JSON 503/429), nothing sent;
// - else the 200 head at once (Content-Type application/json, application/a2a+json for 1.0 REST,
//   text/event-stream for streams), then every ≤ 2 s one space (JSON) or `: thoughtgate: waiting
//   for approval` (SSE) until decided;
// - approved: the bytes are checked against the approved hash again, then sent (hold.send) and
//   the agent's answer body follows the keep-alive bytes (hold.relay, or as it comes);
// - rejected, expired, cancelled, the agent unreachable: JSON-RPC: the error with the request id
//   (A2A codes: -32057 rejected, -32058 timeout…; on SSE one `data:` event); HTTP+JSON: the
//   connection is cut (the reason is in the request's log line) — nothing ran upstream.
// The client hanging up while held cancels the approval (APPROVAL_CANCELLED; the Slack message
// or ApprovalRequest says so); while the call runs, it aborts the upstream request. The sidecar
// draining (engine.drain) answers a call still waiting for a human APPROVAL_CANCELLED at once, never
// sent later; an approved one runs on and its answer is given (within drainTimeout). The engine
// closing aborts a running one at the agent; once sent, the reason says it may have reached it.
//
// What a human sees (Slack, the ApprovalRequest) is the params with push credentials redacted
// (redactPushSecrets); the hash binds the params as sent, with the tenant, version and binding
// (hash.ts). A stream refused with plain JSON is read whole: bounded and charged to ctx.budget.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { formatTraceparent } from '../../lib/trace-context.js';
import { BodyError, readBodyText } from '../../lib/read-body.js';
import type { RawId } from '../../lib/jsonrpc.js';
import type { A2aHold, ApproveDecision } from '../proxy/gate4.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import type { RequestContext } from '../proxy/context.js';
import { EDIT_CHARGE, type ByteBudget } from '../proxy/budget.js';
import { redactPushSecrets } from '../a2a/push.js';
import { headerValue } from '../proxy/headers.js';
import { pipeTo } from '../proxy/pipe.js';
import { describeUpstreamError, type UpstreamResponse } from '../proxy/upstream.js';
import { formatSseEvent } from '../sse.js';
import {
  checkHeldBytes,
  heldTarget,
  invalidParamsBeforeHead,
  planA2aHold,
  readHeldParams,
  refusalAfterHead,
  refusalBeforeHead,
  toA2aError,
} from './a2a-hold.js';
import type { ApprovalSettings, Executor } from './engine.js';
import { errorOutcome, type ApprovalTask } from './lifecycle.js';
import type { ApprovalRuntime } from './runtime.js';
import { a2aOwner } from '../a2a/tasks.js';
import type { CallOutcome } from './tasks.js';
import { traceApprovalWait } from './trace.js';

/**
 * What the A2A handler knows of a call whose decision is approve (structurally its
 * A2aGovernedCall, sidecar/a2a/handler.ts): enough to hold it.
 */
export interface A2aApprovalCall {
  ctx: RequestContext;
  req: IncomingMessage;
  res: ServerResponse;
  snap: Snapshot;
  source: CompiledSource;
  op: { method: string; a2a: { skill: string; tenant: string } };
  row: { stream: boolean };
  shape: { binding: 'jsonrpc' | 'rest'; version: '0.3' | '1.0'; id: RawId | null };
  /** The body as the client sent it. */
  body: string | undefined;
  /** The HTTP method sent upstream. */
  method: string;
}

/**
 * The handler's gate 4 hook (A2aHooks.approve) over holdA2a: the call is sent with the
 * request's own upstream client (ctx.sendUpstream: the handler's upstream path, the client's and
 * the source's headers; the client hanging up aborts it, and so does the engine's signal).
 * `relay`: how an answer's body reaches the client (the task-owner scanner), default as it comes.
 */
export function a2aApprovalHook<C extends A2aApprovalCall>(
  rt: ApprovalRuntime,
  relay?: (call: C, up: UpstreamResponse, res: ServerResponse) => Promise<void>,
): (call: C, decision: ApproveDecision) => Promise<void> {
  return (g, decision) =>
    holdA2a(
      rt,
      { ctx: g.ctx, req: g.req, res: g.res, source: g.source.name, settings: g.snap.approvals, maxAnswerBytes: g.snap.maxFilteredResponseBytes },
      {
        version: g.shape.version,
        binding: g.shape.binding,
        canonical: g.op.method,
        id: g.shape.id,
        stream: g.row.stream,
        skill: g.op.a2a.skill,
        tenant: g.op.a2a.tenant,
        bytes: Buffer.from(g.body ?? '', 'utf8'),
        decision,
        send: (body, signal) => g.ctx.sendUpstream(g.source, g.req, g.method, body.toString('utf8'), false, undefined, signal),
        ...(relay ? { relay: (up: UpstreamResponse, res: ServerResponse) => relay(g, up, res) } : {}),
      },
    );
}

/**
 * The relay of an approved call's answer through the A2A hooks that read answers (task isolation
 * learns the task's owner from it, as for a forwarded call): a2aApprovalHook's `relay`.
 */
export function answerRelayThrough<C extends A2aApprovalCall>(hooks: {
  onAnswer?(call: C, status: number, headers: Record<string, string | string[] | undefined>): Transform | null;
  readsAnswer?(call: C): boolean;
}): (call: C, up: UpstreamResponse, res: ServerResponse) => Promise<void> {
  return (g, up, res) => {
    const reads = hooks.onAnswer !== undefined && (hooks.readsAnswer?.(g) ?? true);
    const through = reads && up.statusCode >= 200 && up.statusCode < 300 ? hooks.onAnswer!(g, up.statusCode, up.headers) : null;
    return pipeTo(up.body as Readable, res, through);
  };
}

/** What holdA2a needs of the request's context (a RequestContext has it all). */
export type A2aHoldContext = Pick<RequestContext, 'correlationId' | 'tracer' | 'span' | 'budget' | 'markResponseStart' | 'finish'>;

export interface A2aHoldRequest {
  ctx: A2aHoldContext;
  req: IncomingMessage;
  res: ServerResponse;
  /** The source's name (the approval's `source`, and part of what its hash binds). */
  source: string;
  /** snap.approvals. */
  settings: ApprovalSettings;
  /** Bound on an agent's JSON answer that must be re-framed as an SSE event (limits.maxFilteredResponseBytes). */
  maxAnswerBytes: number;
}

/** Writes `text` every `intervalMs` until stopped (or the response ends). */
export function startKeepAlive(res: Pick<ServerResponse, 'write' | 'writableEnded' | 'destroyed'>, text: string, intervalMs: number): { stop(): void } {
  let timer: ReturnType<typeof setInterval> | undefined = setInterval(() => {
    if (res.writableEnded || res.destroyed) return stop();
    res.write(text);
  }, intervalMs);
  const stop = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  return { stop };
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Holds an approvable A2A call until a human decides, then forwards its bytes once or refuses. See the head of this file. */
export async function holdA2a(rt: ApprovalRuntime, r: A2aHoldRequest, h: A2aHold): Promise<void> {
  const { ctx, req, res } = r;
  const d = h.decision;
  const plan = planA2aHold(h, r.settings.keepAliveMs);
  if (plan.kind === 'refuse') {
    const e = refusalBeforeHead(h, plan.name, { reason: plan.reason, correlationId: ctx.correlationId, ...(d.rule !== undefined ? { rule: d.rule } : {}) });
    send(res, e.status, e.headers, e.body);
    return ctx.finish({ status: e.status, decision: 'deny', gate: 'approval', reason: plan.reason });
  }
  const read = readHeldParams(h);
  if (!read.ok && read.inexact !== undefined) {
    // The human would approve a rounded value while the agent may read the exact one: A2A's own InvalidParams.
    const e = invalidParamsBeforeHead(h, `Invalid params: ${read.reason}`);
    send(res, e.status, e.headers, e.body);
    return ctx.finish({ status: e.status, decision: 'deny', gate: 'approval', reason: read.reason });
  }
  if (!read.ok) {
    const reason = `${d.reason}; ${read.reason}, so it cannot be shown for approval and is not forwarded`;
    const e = refusalBeforeHead(h, 'APPROVAL_UNAVAILABLE', { reason, correlationId: ctx.correlationId, ...(d.rule !== undefined ? { rule: d.rule } : {}) });
    send(res, e.status, e.headers, e.body);
    return ctx.finish({ status: e.status, decision: 'deny', gate: 'approval', reason });
  }
  const approval = {
    channel: d.channel,
    ...(d.timeoutMs !== undefined ? { ruleTimeoutMs: d.timeoutMs } : {}),
    reason: d.reason,
    ...(d.rule !== undefined ? { rule: d.rule } : {}),
  };
  const waitTrace = traceApprovalWait(ctx.tracer, ctx.span, approval);
  let keepAlive: { stop(): void } | null = null;
  /** The agent's answer started to flow to the client: it is the answer from now on. */
  let answered = false;
  /** The engine closed (the sidecar is stopping) before this call ended: nothing is sent after that. */
  let stopped = false;
  /** h.send started: from then on the message may have reached the agent, whatever cuts the call. */
  let sent = false;
  const execute: Executor = async (_call, task, signal) => {
    keepAlive?.stop();
    waitTrace.decided(task);
    const bad = checkHeldBytes(r.source, h, task.pending!.requestHash);
    if (bad) return errorOutcome(task, 'APPROVAL_UNAVAILABLE', `${bad}; it was not sent`);
    if (stopped || signal.aborted) return errorOutcome(task, 'APPROVAL_CANCELLED', `${SHUTTING_DOWN}; it was not sent`);
    if (res.destroyed) return errorOutcome(task, 'APPROVAL_CANCELLED', 'the client went away before the approved message was sent; it was not sent');
    sent = true;
    const up = await h.send(h.bytes, signal);
    if (!up.ok && signal.aborted)
      return errorOutcome(
        task,
        'APPROVAL_CANCELLED',
        `${describeUpstreamError(up.kind, r.source)} after the approved message was sent; it may have reached the agent`,
      );
    if (!up.ok) return errorOutcome(task, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(up.kind, r.source));
    // Aborted while the agent answered (the sidecar stopping): its answer goes nowhere, the client's is cut.
    const abort = () => {
      up.response.body.destroy();
      res.destroy();
    };
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    answered = true;
    try {
      return await relayAnswer(h, up.response, res, task, { maxBytes: r.maxAnswerBytes, budget: ctx.budget });
    } finally {
      signal.removeEventListener('abort', abort);
    }
  };
  const started = rt.engine.start(
    {
      mode: 'held',
      // As task isolation keys clients (a2aOwner): the Authorization only, never an Mcp-Session-Id a
      // client picks (it would spend another's limits, or escape its own with a fresh id each time).
      owner: { source: r.source, client: a2aOwner(r.source, req.headers) },
      source: r.source,
      protocol: 'a2a',
      method: h.canonical,
      tool: h.skill,
      target: heldTarget(h),
      arguments: read.params,
      // The push config's token and authentication.credentials never reach Slack or an ApprovalRequest
      // (the hash binds them still); everything else the agent reads is shown as it is.
      shown: redactPushSecrets(read.params, h) as Record<string, unknown>,
      approval,
      correlationId: ctx.correlationId,
      ...(waitTrace.ref ? { traceparent: formatTraceparent(waitTrace.ref) } : {}),
      execute,
    },
    r.settings,
  );
  if (!started.ok) {
    const e = refusalBeforeHead(h, started.error, {
      reason: started.reason,
      correlationId: ctx.correlationId,
      ...(d.rule !== undefined ? { rule: d.rule } : {}),
      ...(started.retryAfterMs !== undefined ? { retryAfterMs: started.retryAfterMs } : {}),
    });
    send(res, e.status, e.headers, e.body);
    return ctx.finish({ status: e.status, decision: 'deny', gate: 'approval', reason: started.reason });
  }
  const task = started.task;
  res.writeHead(200, plan.head);
  res.flushHeaders(); // the client's read timeout starts over with the head
  ctx.markResponseStart();
  keepAlive = startKeepAlive(res, plan.keepAlive, plan.intervalMs);
  res.once('close', () => {
    keepAlive?.stop();
    // A response that ended normally also closes; only a cut one cancels.
    if (!res.writableFinished && task.phase !== 'done') rt.engine.cancel(task.id, null, 'the held client disconnected');
  });
  await rt.engine.wait(task);
  keepAlive.stop();
  waitTrace.decided(task);
  if (task.phase !== 'done') {
    // The engine closed without ending the call (the sidecar is stopping; a drain never wakes a held
    // call that runs: it finishes). Whatever the backend decides later, nothing is sent (execute
    // checks `stopped`); the client is answered now, and told whether the message left.
    stopped = true;
    if (answered) res.destroy();
  }
  const outcome =
    task.phase === 'done' ? task.outcome : errorOutcome(task, 'APPROVAL_CANCELLED', sent ? STOPPED_AFTER_SEND : `${SHUTTING_DOWN}; the message was not sent`);
  if (!answered && outcome?.kind === 'error' && !res.writableEnded && !res.destroyed) {
    const body = refusalAfterHead(h, outcome.error);
    // HTTP+JSON: a refusal after a 200 head cannot be expressed; a cut connection is an error to every client.
    if (body === null) res.destroy();
    else res.end(body);
  }
  ctx.finish({ status: 200, decision: 'approve', gate: 'approval', reason: stopped ? SHUTTING_DOWN : reasonOf(task) });
}

const SHUTTING_DOWN = 'the sidecar is shutting down';
/** Never "not sent" once the bytes went out: a client told that would send it again. */
const STOPPED_AFTER_SEND = `${SHUTTING_DOWN}; the approved message was sent and may have reached the agent (do not assume it did not run)`;

function reasonOf(task: ApprovalTask): string {
  const o = task.outcome;
  const why = o?.kind === 'error' ? (o.error.data as { reason?: unknown } | undefined)?.reason : undefined;
  return typeof why === 'string' ? `${task.statusMessage}: ${why}` : task.statusMessage;
}

/** The agent's answer into the held response (its head is already out), and how the call ended. */
async function relayAnswer(
  h: A2aHold,
  up: UpstreamResponse,
  res: ServerResponse,
  task: ApprovalTask,
  limits: { maxBytes: number; budget: ByteBudget },
): Promise<CallOutcome> {
  const type = headerValue(up.headers['content-type']) ?? '';
  const ok = up.statusCode >= 200 && up.statusCode < 300;
  const sse = type.startsWith('text/event-stream');
  const cut = (reason: string): CallOutcome => {
    up.body.destroy();
    res.destroy();
    return errorOutcome(task, 'UPSTREAM_RESPONSE_INVALID', reason);
  };
  const pipe = async (): Promise<CallOutcome> => {
    try {
      await (h.relay ? h.relay(up, res) : pipeTo(up.body as Readable, res));
    } catch (err) {
      res.destroy();
      return errorOutcome(task, 'UPSTREAM_UNAVAILABLE', `the approved message was sent; relaying the agent's answer failed: ${String(err)}`);
    }
    return { kind: 'result', result: {} };
  };
  if (h.binding === 'rest') {
    // A status other than 2xx cannot follow a 200 head on HTTP+JSON: cut, as for every refusal.
    if (!ok) return cut(`the agent answered HTTP ${up.statusCode} after the approval; HTTP+JSON cannot carry that after the held 200 head`);
    if (h.stream !== sse) return cut(`the agent answered ${type || 'without a type'} where the held answer is ${h.stream ? 'a stream' : 'JSON'}`);
    return pipe();
  }
  if (h.stream === sse && (ok || !sse)) return pipe();
  if (h.stream && !sse) {
    // A stream refused before it began (the 1.3.0 server answers an unknown task with plain JSON): one `data:` event.
    // Read whole, so bounded (limits.maxFilteredResponseBytes) and charged to the sidecar's byte budget.
    let text: string;
    const hold = limits.budget.hold('filtered_response', EDIT_CHARGE);
    try {
      text = await readBodyText(up.body, { limitBytes: limits.maxBytes, grow: (n) => hold.grow(n) });
      text = JSON.stringify(JSON.parse(text));
    } catch (err) {
      if (err instanceof BodyError && err.reason === 'over-budget') {
        const o = errorOutcome(
          task,
          'OVERLOADED',
          `the agent answered the approved stream with JSON that does not fit limits.maxBufferedBytes now; it was not relayed`,
        );
        if (o.kind === 'error') res.end(refusalAfterHead(h, o.error) ?? undefined);
        return o;
      }
      return cut('the agent answered the approved stream with a body that is not JSON, or over limits.maxFilteredResponseBytes');
    } finally {
      hold.release();
    }
    res.end(formatSseEvent({ data: text }));
    const error = (JSON.parse(text) as { error?: unknown }).error;
    return error && typeof error === 'object' ? { kind: 'error', error: toA2aError(error as never) } : { kind: 'result', result: {} };
  }
  return cut(`the agent answered ${type || 'without a type'} where the held answer is JSON`);
}

// Requests ThoughtGate itself sends upstream on behalf of a client: an approved call that runs
// after the request that asked for it has been answered (MCP tasks), and the upstream's page of a
// merged tasks/list. They go in the client's MCP session with the headers that session needs.
import type { IncomingHttpHeaders } from 'node:http';
import { ERRORS } from '../../api/errors.js';
import { parseJsonRpc, type Message } from '../../lib/jsonrpc.js';
import { requestText } from '../../lib/jsonrpc-reply.js';
import { BodyError, readBodyText } from '../../lib/read-body.js';
import { idKey } from '../proxy/edits.js';
import { headerValue } from '../proxy/headers.js';
import { classifyUpstreamError, describeUpstreamError, type UpstreamClient, type UpstreamResponse, type UpstreamResult } from '../proxy/upstream.js';
import type { CompiledSource } from '../snapshot.js';
import { SseParser } from '../sse.js';
import type { ApprovedCall, Executor, ResultRoom } from './engine.js';
import { RELATED_TASK_META, type CallOutcome, type JsonRpcErrorObject } from './tasks.js';

/**
 * The client's headers an approved call needs to run in its MCP session later. Kept in memory
 * only (Authorization included), never in logs or in what the backend stores.
 */
export function sessionHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['authorization', 'mcp-session-id', 'mcp-protocol-version']) {
    const v = headerValue(h[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** What the upstream answered to one request of ours. */
export type Answer =
  | { kind: 'response'; message: Message & { kind: 'response' } }
  | { kind: 'failed'; reason: string; status?: number /** The answer was over `maxBytes`. */; tooLarge?: boolean };

/**
 * Reads the upstream's answer to the request with id `idRaw` (JSON or SSE, at most `maxBytes` per
 * body or event). Other messages on an SSE stream (progress, server requests) are dropped: a task
 * has no stream to carry them. A non-2xx answer with a JSON-RPC error body counts as that error.
 */
export async function readAnswer(up: UpstreamResult, source: string, idRaw: string, maxBytes: number): Promise<Answer> {
  if (!up.ok) return { kind: 'failed', reason: describeUpstreamError(up.kind, source) };
  const { statusCode, headers, body } = up.response;
  const type = headerValue(headers['content-type']) ?? '';
  const want = idKey({ raw: idRaw, value: JSON.parse(idRaw) as string | number });
  const pick = (text: string): (Message & { kind: 'response' }) | null => {
    const p = parseJsonRpc(text);
    if (!p.ok) return null;
    for (const m of p.batch ? p.messages : [p.message]) {
      if (m.kind === 'response' && (m.id === null ? statusCode >= 400 : idKey(m.id) === want)) return m;
    }
    return null;
  };
  try {
    if (statusCode >= 200 && statusCode < 300 && type.startsWith('text/event-stream')) return await readSseAnswer(body, pick, source, maxBytes);
    let text: string;
    try {
      text = await readBodyText(body, { limitBytes: maxBytes });
    } catch (err) {
      if (!(err instanceof BodyError) || err.reason === 'aborted') throw (err as BodyError).cause ?? err;
      if (err.reason === 'invalid-utf8') return { kind: 'failed', reason: `upstream "${source}" answered with a body that is not UTF-8`, status: statusCode };
      return { kind: 'failed', reason: `upstream "${source}" answered with a body over limits.maxFilteredResponseBytes`, status: statusCode, tooLarge: true };
    }
    const m = text.trim() === '' ? null : pick(text);
    if (m) return { kind: 'response', message: m };
    return {
      kind: 'failed',
      reason:
        statusCode >= 200 && statusCode < 300
          ? `upstream "${source}" answered without a JSON-RPC response`
          : `upstream "${source}" answered HTTP ${statusCode}`,
      status: statusCode,
    };
  } catch (err) {
    body.destroy();
    if (err instanceof StreamAnswerError) return { kind: 'failed', reason: err.message, ...(err.tooLarge ? { tooLarge: true } : {}) };
    return { kind: 'failed', reason: describeUpstreamError(classifyUpstreamError(err), source) };
  }
}

/** A stream answer that cannot be read: an event over the limit, or bytes that are not UTF-8. */
class StreamAnswerError extends Error {
  constructor(
    message: string,
    readonly tooLarge: boolean,
  ) {
    super(message);
  }
}

/** The answer on an SSE stream: the first event carrying it; other events are dropped. */
async function readSseAnswer(
  body: UpstreamResponse['body'],
  pick: (text: string) => (Message & { kind: 'response' }) | null,
  source: string,
  maxBytes: number,
): Promise<Answer> {
  const parser = new SseParser();
  // One UTF-8 rule everywhere (lib/read-body): bytes that are not UTF-8 are refused, never replaced.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const tooLarge = () => new StreamAnswerError(`upstream "${source}" sent an event over limits.maxFilteredResponseBytes`, true);
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let text: string;
    try {
      text = decoder.decode(chunk, { stream: true });
    } catch {
      throw new StreamAnswerError(`upstream "${source}" sent an event that is not UTF-8`, false);
    }
    for (const ev of parser.push(text)) {
      if (ev.data === null || ev.data === '') continue;
      if (ev.data.length > maxBytes) throw tooLarge();
      const m = pick(ev.data);
      if (m) {
        body.destroy();
        return { kind: 'response', message: m };
      }
    }
    if (parser.buffered > maxBytes) throw tooLarge();
  }
  const last = parser.end();
  const m = last?.data ? pick(last.data) : null;
  return m ? { kind: 'response', message: m } : { kind: 'failed', reason: `upstream "${source}" ended its stream without answering` };
}

/** The call's outcome from the upstream's answer; `failed` becomes UPSTREAM_UNAVAILABLE with its reason. */
export function outcomeOf(a: Answer, data: Record<string, unknown>): CallOutcome {
  if (a.kind === 'failed') {
    const e = ERRORS.UPSTREAM_UNAVAILABLE;
    return { kind: 'error', error: { code: e.code, message: e.message, data: { ...data, gate: e.gate, reason: a.reason } } };
  }
  const m = a.message;
  if (m.isError) return { kind: 'error', error: m.error as JsonRpcErrorObject };
  const r = m.result;
  return {
    kind: 'result',
    result: r !== null && typeof r === 'object' && !Array.isArray(r) ? (r as Record<string, unknown>) : {},
    bytes: Buffer.byteLength(m.raw),
  };
}

/**
 * The tools/call request ThoughtGate sends for an approved call: built from the verified copy.
 * Nothing the agent sent beyond {name, arguments} (what the human saw and the hash binds) goes
 * upstream: its `_meta` is dropped, and a held call's progress is asked for with a token of
 * ThoughtGate's own (`progressToken`), mapped back to the client's on the way out.
 */
export function callBody(idRaw: string, call: ApprovedCall, progressToken: string | undefined, task: boolean): string {
  const params: Record<string, unknown> = { name: call.tool, arguments: call.arguments };
  if (progressToken !== undefined) params['_meta'] = { progressToken };
  if (task) params['task'] = {};
  return requestText({ raw: idRaw }, 'tools/call', params);
}

export interface BufferedPlan {
  source: CompiledSource;
  /** sessionHeaders() of the client's request. */
  headers: Record<string, string>;
  /**
   * A task's result is kept until its ttl: how many bytes it may have (asked when it runs, of the
   * engine); over that it becomes TASK_RESULT_TOO_LARGE, read no further. Absent for held calls,
   * whose answer is not kept.
   */
  resultRoom?: () => ResultRoom;
  /** The upstream declared the tool taskSupport "required": run it as the upstream's task and wait for its result. */
  upstreamTask: boolean;
  maxBytes: number;
  correlationId: string;
}

/**
 * An executor that runs the call upstream and keeps the whole answer (for tasks/result). When the
 * upstream needs the call as its own task, it follows with a blocking tasks/result and takes that.
 */
export function bufferedExecutor(upstream: UpstreamClient, plan: BufferedPlan): Executor {
  return async (call, task, signal) => {
    const idRaw = JSON.stringify(`thoughtgate-${task.id}`);
    const data = { correlationId: plan.correlationId, ...(task.mode === 'task' ? { taskId: task.id } : {}) };
    const room = plan.resultRoom?.();
    const limit = Math.min(plan.maxBytes, room?.bytes ?? Infinity);
    const tooLarge = (a: Answer): CallOutcome | null => {
      if (a.kind !== 'failed' || !a.tooLarge || !room || limit !== room.bytes) return null;
      const e = ERRORS.TASK_RESULT_TOO_LARGE;
      const reason =
        room.limit === 'result_size'
          ? `the tool's result is over ${limit} bytes; ThoughtGate keeps task results of at most that (approvals.maxTaskResultBytes); the call did run`
          : `the tool's result is over the ${limit} bytes of room left for task results (approvals.maxRetainedTaskBytes is ${room.total}); the call did run, its result was not kept`;
      return { kind: 'error', error: { code: e.code, message: e.message, data: { ...data, gate: e.gate, reason } }, refusedBy: room.limit };
    };
    const first = await readAnswer(
      await upstream.post(plan.source, plan.headers, callBody(idRaw, call, undefined, plan.upstreamTask), signal),
      plan.source.name,
      idRaw,
      limit,
    );
    const big = tooLarge(first);
    if (big) return big;
    const upstreamTaskId = plan.upstreamTask ? createdTaskId(first) : null;
    if (upstreamTaskId === null) return outcomeOf(first, data);
    const resultId = JSON.stringify(`thoughtgate-${task.id}-result`);
    const body = JSON.stringify({ jsonrpc: '2.0', id: JSON.parse(resultId) as unknown, method: 'tasks/result', params: { taskId: upstreamTaskId } });
    // tasks/result blocks until the upstream's task ends: no deadline for its response head.
    const second = await readAnswer(await upstream.post(plan.source, plan.headers, body, signal, 0), plan.source.name, resultId, limit);
    const out = tooLarge(second) ?? outcomeOf(second, data);
    if (out.kind === 'result') {
      // The related-task meta named the upstream's task; tasks/result of ours adds our own.
      const meta = out.result['_meta'];
      if (meta && typeof meta === 'object' && !Array.isArray(meta) && RELATED_TASK_META in meta) {
        const { [RELATED_TASK_META]: _drop, ...rest } = meta as Record<string, unknown>;
        out.result = { ...out.result, _meta: rest };
        if (Object.keys(rest).length === 0) delete out.result['_meta'];
      }
    }
    return out;
  };
}

function createdTaskId(a: Answer): string | null {
  if (a.kind !== 'response' || a.message.isError) return null;
  const task = (a.message.result as { task?: { taskId?: unknown } } | undefined)?.task;
  return typeof task?.taskId === 'string' ? task.taskId : null;
}

// Gate 4 as the proxy sees it: an interceptor the sidecar plugs in when it has an approval
// backend (sidecar/approvals/interceptor.ts implements it). The proxy's planner reads the
// interceptor's view (pure lookups), the executor hands it the requests it takes over and the held
// calls to cancel (ApprovalInterceptor, in context.ts beside the request it gets). Declared here, below gate 4, so that the proxy never imports the approvals.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Message, RawId } from '../../lib/jsonrpc.js';
import type { Decision } from '../../policy/gates/decide.js';
import type { Operation } from '../../policy/gates/operation.js';
import type { TaskSupport } from '../approvals/tasks.js';
import type { CompiledSource } from '../snapshot.js';
import type { UpstreamResponse, UpstreamResult } from './upstream.js';

export type JsonRpcRequest = Message & { kind: 'request' };
export type ApproveDecision = Extract<Decision, { action: 'approve' }>;

/** A single request gate 4 answers itself instead of the upstream. */
export type Takeover =
  /** tasks/get, tasks/result, tasks/cancel of one of ThoughtGate's task ids. */
  | { kind: 'task-method'; message: JsonRpcRequest }
  /** A task-augmented tools/call of a tool ThoughtGate marked task-capable (the upstream did not). */
  | { kind: 'own-task'; message: JsonRpcRequest; op: Operation }
  /** tasks/list: ThoughtGate's tasks of the client, then the upstream's. */
  | { kind: 'tasks-list'; message: JsonRpcRequest }
  /** A call gate 2 or 3 sent to a human. */
  | { kind: 'approval'; message: JsonRpcRequest; op: Operation; decision: ApproveDecision };

/**
 * An A2A call to hold for approval, as the A2A handler read it. The handler decides gates 1–3
 * and answers every refusal before this; gate 4 answers the rest (a refusal before the hold in
 * the binding's error shape, else the 200 head at once, keep-alive bytes while a human decides,
 * then the agent's answer or the refusal: see sidecar/approvals/a2a.ts).
 */
export interface A2aHold {
  version: '0.3' | '1.0';
  binding: 'jsonrpc' | 'rest';
  /** Canonical (1.0) method: only SendMessage and SendStreamingMessage can be approved. */
  canonical: string;
  /** JSON-RPC: the request's id (null: a notification, refused); REST: null. */
  id: RawId | null;
  /** Answered as SSE (SendStreamingMessage, any spelling). */
  stream: boolean;
  /** The skill the message names (a2a.skillFrom), or "". */
  skill: string;
  /** 1.0: the tenant the agent runs the message for (path, query or params), or "". Bound by the approval's hash. */
  tenant: string;
  /**
   * The request body exactly as received (already parsed strictly by the handler). Gate 4 reads
   * its params from these bytes (JSON-RPC `params`, the REST body): what the human sees and the
   * approval is bound to; on approval the same bytes are checked again and forwarded once.
   */
  bytes: Buffer;
  decision: ApproveDecision;
  /**
   * Sends `body` to the agent as this call (the handler's upstream path, the client's and the
   * source's headers); `signal` aborts it (the approval engine stopped the call: shutdown).
   */
  send(body: Buffer, signal: AbortSignal): Promise<UpstreamResult>;
  /**
   * Optional: writes the agent's answer body into `res` (its head is already sent), e.g. through
   * the handler's task-owner scanner. Default: the bytes as they come.
   */
  relay?(up: UpstreamResponse, res: ServerResponse): Promise<void>;
}

/** What the planner may ask of gate 4: lookups, no effects. */
export interface ApprovalView {
  /** The task id of this client's held call with `params.requestId` still waiting, if any. */
  heldCall(source: string, headers: IncomingHttpHeaders, params: unknown): string | null;
  /** Whether gate 4 answers this task-augmented tools/call itself (see approvals/http.ts isOwnTaskCall). */
  ownsTaskCall(source: CompiledSource, m: Message, mayNeedApproval: (tool: string) => boolean): boolean;
  /** Learns the upstream's own taskSupport of a listed tool (called by the tools/list edit). */
  toolSupportSeen(source: string, tool: string, support: TaskSupport): void;
  /** Learns what an upstream session declared of tasks (called by the initialize edit). */
  initializeSeen(source: string, session: string | undefined, result: unknown): void;
}

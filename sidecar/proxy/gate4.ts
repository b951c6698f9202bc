// Gate 4 as the proxy sees it: an interceptor the sidecar plugs in when it has an approval
// backend (sidecar/approvals/interceptor.ts implements it). The proxy's planner reads the
// interceptor's view (pure lookups), the executor hands it the requests it takes over and the held
// calls to cancel (ApprovalInterceptor, in context.ts beside the request it gets). Declared here, below gate 4, so that the proxy never imports the approvals.
import type { IncomingHttpHeaders } from 'node:http';
import type { Message } from '../../lib/jsonrpc.js';
import type { Decision } from '../../policy/gates/decide.js';
import type { Operation } from '../../policy/gates/operation.js';
import type { TaskSupport } from '../approvals/tasks.js';
import type { CompiledSource } from '../snapshot.js';

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

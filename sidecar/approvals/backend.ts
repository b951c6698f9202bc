// Where a human decides, as seen by the sidecar's task engine. Two implementations: standalone
// (the sidecar talks to Slack itself, state in memory) and cluster (the sidecar writes an
// ApprovalRequest; the operator talks to Slack and writes the decision into its status).
import type { Registry } from 'prom-client';
import type { A2aTarget } from './hash.js';

export interface ApprovalWorkload {
  namespace: string;
  serviceAccount: string;
  pod: string;
}

/** One call awaiting a human decision. */
export interface PendingApproval {
  /** The sidecar's task id; unique, and the key of everything below. */
  id: string;
  channel: string;
  workload: ApprovalWorkload;
  source: string;
  /** tools/call, or the canonical A2A method (protocol a2a). */
  method: string;
  /** Absent: MCP. a2a: `tool` is the skill (or ""), `arguments` the call's parsed params. */
  protocol?: 'a2a';
  /** With protocol a2a: the tenant ("" for none), A2A version and binding the hash binds; shown to the approver. */
  target?: A2aTarget;
  tool: string;
  arguments: Record<string, unknown>;
  /** sha256 hex of the canonical {source, tool, arguments} (A2A: {source, protocol, method, params, target}; hash.ts). */
  requestHash: string;
  reason: string;
  mcpSessionId?: string;
  /**
   * Who asked, as an opaque key (in memory only, never stored or shown): the standalone backend
   * posts round-robin across owners, so one client's flood cannot delay another's approval.
   */
  owner?: string;
  /**
   * The client the task belongs to (runtime.ts ownerOf: `session:…`, `auth:<hash>`, `anonymous`):
   * stored with the approval (ApprovalRequest spec.owner), so that a task adopted after a restart
   * answers to the same client. A hash, never the Authorization header.
   */
  client?: string;
  createdAt: Date;
  expiresAt: Date;
  /** Tracing on: the approval wait span's traceparent (the cluster backend annotates the ApprovalRequest with it). */
  traceparent?: string;
}

export type DecisionOutcome = 'approved' | 'rejected' | 'expired' | 'cancelled' | 'failed';

export interface Decision {
  id: string;
  outcome: DecisionOutcome;
  /** Who decided (approved/rejected): Slack user ids with display names where known. */
  by?: { id: string; name?: string }[];
  at: Date;
  /** A sentence for the agent and the logs; for `failed`, what went wrong (Slack down, channel missing…). */
  message: string;
  /** The decider records this decision's span in the call's trace itself (cluster: the operator). */
  tracedElsewhere?: boolean;
}

/** A pending approval found again after a sidecar restart, with what the backend knows of it. */
export interface AdoptedApproval {
  pending: PendingApproval;
  /** Set when the decision was already made while the sidecar was down. */
  decision?: Decision;
  /** The sidecar had started executing it before it stopped: never run it again. */
  executionStarted: boolean;
}

export interface ApprovalBackend {
  /** For logs and errors, e.g. "Slack channel C0123 (standalone)" or "ApprovalRequest team-a/…". */
  readonly description: string;
  /**
   * Records the pending approval where a human will see it. Resolves once it is durably recorded
   * (standalone: posted to Slack; cluster: the ApprovalRequest exists). Rejects with a clear error
   * when that is impossible (unknown channel, Slack refuses the token, API server unreachable…):
   * the call is then refused, never forwarded.
   */
  submit(p: PendingApproval): Promise<void>;
  /** Called once per approval with its final decision. */
  onDecision(cb: (d: Decision) => void): void;
  /** The agent cancelled (tasks/cancel, or a held call whose client went away). */
  cancel(id: string): Promise<void>;
  /** Right before executing an approved call: persisted first, so a restart never runs it twice. */
  markExecuting(id: string): Promise<void>;
  /** After execution: whether the approved call succeeded, for the human's record (e.g. the Slack message). */
  finished(id: string, result: { ok: boolean; summary: string }): Promise<void>;
  /** After a restart: the approvals this sidecar had submitted and not yet finished. */
  adopt(): Promise<AdoptedApproval[]>;
  close(): Promise<void>;
  /** Standalone with --state-dir: the durable store's use against its bounds, and whether it can still write. */
  storeStatus?(): ApprovalStoreStatus;
  /** Adds the backend's own metrics (standalone: its Socket Mode receivers') to the sidecar's /metrics. */
  registerMetrics?(registry: Registry): void;
}

export interface ApprovalStoreStatus {
  approvals: number;
  maxApprovals: number;
  /** Bytes of the live approvals' records (what maxBytes bounds), and the file's size. */
  bytes: number;
  maxBytes: number;
  fileBytes: number;
  /** Why the store refuses every write (the sidecar is then not ready), or null. */
  failure: string | null;
  /** Writes refused so far: full (a bound), broken (the journal can no longer be written), io (one write failed). */
  writeFailures: Record<StoreFailure, number>;
}

export type StoreFailure = 'full' | 'broken' | 'io';

/** Marks an error as the approval store's (its `storeFailure`), for the failure metrics' cause. */
export function storeError<E extends Error>(err: E, failure: StoreFailure): E & { storeFailure: StoreFailure } {
  return Object.assign(err, { storeFailure: failure });
}

// The approval task engine: every call that needs a human (an MCP task or a held call) from
// submission to its end, in memory. Each task's life is the pure transition in lifecycle.ts; this
// is its runner: it keeps the tasks and the bounds across them (admission, retention, result
// bytes), feeds events in and carries out the effects: backend writes (ApprovalBackend, where humans
// decide), the executor the HTTP layer hands it (so it knows nothing of HTTP), timers, metrics.
//
// Guarantees:
// - at most once: an approved call runs only from the `pending` phase, after backend.markExecuting
//   resolved; a second decision, a late one, or one for a cancelled task runs nothing;
// - exactly the approved request: the call kept here is re-hashed and compared with the hash the
//   backend was given (and, for adopted approvals, with what the backend stored) before it runs;
// - bounded: pending approvals per workload and per client, and how fast they are created (token
//   buckets; APPROVAL_LIMIT); tasks kept until their ttl, at most maxRetainedTasksPerClient per
//   owner and maxRetainedTasks in all, results at most maxTaskResultBytes each and
//   maxRetainedTaskBytes together (TASK_RESULT_TOO_LARGE).
// - owners apart: one owner's tasks never push out another's unless the global bound is reached,
//   and then the owner keeping the most loses first; anonymous clients (who cannot be told apart)
//   are refused rather than evicting (docs/approvals.md, "Who sees a task").
import { backoffDelay, type BackoffPolicy } from '../../lib/backoff.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import { describeError } from '../../lib/describe-error.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import type { RateBudget } from '../../slack/rate-limiter.js';
import type { Logger } from '../../lib/log.js';
import type { AdoptedApproval, ApprovalBackend, ApprovalWorkload, Decision, PendingApproval, StoreFailure } from './backend.js';
import { callHash, type A2aTarget } from './hash.js';
import { errorOutcome, isWaiting, step, waitingMessage, type ApprovalTask, type ApprovedCall, type TaskEffect, type TaskEvent } from './lifecycle.js';
import { cleanupAt, comparePosition, newTaskId, taskTtl, type CallOutcome, type Owner } from './tasks.js';

export interface ApprovalSettings {
  maxPendingWorkload: number;
  maxPendingClient: number;
  defaultTimeoutMs: number;
  taskTtlMs: number;
  maxTaskTtlMs: number;
  pollIntervalMs: number;
  keepAliveMs: number;
  maxRetainedTasks: number;
  /** Tasks kept per owner (default 100). */
  maxRetainedTasksPerClient?: number;
  /** Largest result kept for tasks/result (default 4 MiB). */
  maxTaskResultBytes?: number;
  /** Result bytes kept across all owners (default 64 MiB). */
  maxRetainedTaskBytes?: number;
  /** Creation rate of approval requests (defaults: client 30/min burst 10, workload 120/min burst 30). */
  rate?: { client: RateBudget; workload: RateBudget };
}

const DEFAULT_LIMITS = {
  maxRetainedTasksPerClient: 100,
  maxTaskResultBytes: 4 * 1024 * 1024,
  maxRetainedTaskBytes: 64 * 1024 * 1024,
  rate: { client: { perMinute: 30, burst: 10 }, workload: { perMinute: 120, burst: 30 } },
};

/** Owners whose creation rate is remembered; full buckets are forgotten first (they hold no state). */
const MAX_RATE_OWNERS = 10_000;
/** setTimeout fires at once beyond 2^31-1 ms: longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Optional knowledge a backend may have of its channels (the standalone one does). */
export interface ApprovalChannelInfo {
  /** The channel names it serves: rules and @approve must name one of them (checked at load). */
  readonly channels?: ReadonlySet<string>;
  /** A channel's own timeout, used when the rule sets none. */
  channelTimeoutMs?(channel: string): number | undefined;
  /** Where a channel's humans decide, for task status messages (e.g. "Slack channel C0123"). */
  channelDescription?(channel: string): string | undefined;
}

/** Runs the approved call upstream and says what it answered. */
export type Executor = (call: ApprovedCall, task: ApprovalTask, signal: AbortSignal) => Promise<CallOutcome>;

export type { ApprovalTask, ApprovedCall };

export interface StartInput {
  mode: 'task' | 'held';
  owner: Owner;
  source: string;
  /** MCP: the tool. A2A: the skill the message names, or "". */
  tool: string;
  /** MCP: the tool arguments. A2A: the call's parsed params (what the human sees and the hash binds). */
  arguments: Record<string, unknown>;
  /** An A2A call (sidecar/approvals/a2a.ts): bound by a2aRequestHash, recorded with its protocol. Absent: MCP tools/call. */
  protocol?: 'a2a';
  /** With protocol a2a: the canonical method (SendMessage, SendStreamingMessage). */
  method?: string;
  /** With protocol a2a: the call's tenant, version and binding, which its hash binds too. */
  target?: A2aTarget;
  /**
   * What the backend records and shows the human in place of `arguments` (A2A: the params with
   * push credentials redacted); the hash still binds `arguments`. Absent: `arguments`.
   */
  shown?: Record<string, unknown>;
  /** null: no approval needed, run at once (ThoughtGate answers the task itself). */
  approval: { channel: string; ruleTimeoutMs?: number; reason: string; rule?: string } | null;
  mcpSessionId?: string;
  requestedTtlMs?: number;
  correlationId: string;
  /** Tracing on: the approval wait span's traceparent, carried with the pending approval. */
  traceparent?: string;
  execute: Executor;
}

export type StartResult = { ok: true; task: ApprovalTask } | { ok: false; error: 'APPROVAL_LIMIT'; reason: string; retryAfterMs?: number };

/** How many bytes a task's result may have when it runs, and which bound sets that. */
export interface ResultRoom {
  bytes: number;
  limit: 'result_size' | 'result_bytes_total';
  /** approvals.maxRetainedTaskBytes, for the error's reason. */
  total: number;
}

/** Which bound refused or evicted (metric label values; a closed set). */
export type LimitName =
  | 'pending_workload'
  | 'pending_client'
  | 'rate_workload'
  | 'rate_client'
  | 'tasks_client'
  | 'tasks_total'
  | 'result_size'
  | 'result_bytes_total';
export type CancelResult = { ok: true; task: ApprovalTask } | { ok: false; reason: 'not-found' | 'terminal'; task?: ApprovalTask };

export interface ApprovalEngineMetrics {
  pending: { set(v: number): void };
  /** Unix seconds the longest-waiting pending call started waiting; 0 when none waits. */
  oldestPending?: { set(v: number): void };
  /** Tasks kept in memory (running or finished). */
  retainedTasks?: { set(v: number): void };
  /** Bytes of task results kept. */
  retainedBytes?: { set(v: number): void };
  /** A bound refused a call, or replaced a result by -32024. */
  refused?: { inc(labels: { limit: LimitName }): void };
  /** A finished task dropped before its ttl to keep a bound. */
  evicted?: { inc(labels: { limit: LimitName }): void };
  decisions: { inc(labels: { outcome: string }): void };
  waitSeconds: { observe(v: number): void };
  /** A backend write failed for good (after its retries, for those retried). */
  backendWriteFailures?: { inc(labels: { op: BackendWrite; cause: WriteFailureCause }): void };
}

export type BackendWrite = 'submit' | 'mark_executing' | 'cancel' | 'finished';

/**
 * Why a backend write failed: the standalone store full, broken (refusing every write) or one of
 * its writes failing (`storeFailure` on the error, backend.ts), else the backend itself (Slack
 * standalone, the API server in a cluster), or a retry given up at shutdown.
 */
export type WriteFailureCause = `store_${StoreFailure}` | 'backend' | 'shutdown';

function causeOf(err: unknown): WriteFailureCause {
  const f = (err as { storeFailure?: StoreFailure } | null)?.storeFailure;
  return f ? `store_${f}` : 'backend';
}

/**
 * Retries of a backend write that comes after the client's answer (cancel, finished): the human's
 * record must not stay wrong after a blip of the API server or Slack. Waits of about 1 s, 5 s and
 * 25 s (lib/backoff.ts, equal jitter), then the write is given up.
 */
export const BACKEND_RETRY: BackoffPolicy = { baseMs: 1_000, factor: 5, maxMs: 30_000 };
export const BACKEND_RETRIES = 3;

export interface ApprovalEngineOptions {
  backend: ApprovalBackend & ApprovalChannelInfo;
  workload: () => ApprovalWorkload;
  log: Logger;
  clock?: Clock;
  metrics?: ApprovalEngineMetrics;
  /** After the approval's expiry plus this, a call the backend never decided ends as timed out. */
  deadlineGraceMs?: number;
}

interface Entry {
  task: ApprovalTask;
  /** The call as it will run: the engine's own copy; executors get it only once it is verified. */
  call: ApprovedCall;
  execute: Executor | null;
  abort: AbortController | null;
  waiters: Set<() => void>;
  deadline: unknown;
  cleanup: unknown;
  /** Bytes of the kept result (tasks only), counted in retainedBytes. */
  bytes: number;
}

/** The owner key of the per-owner indexes. */
function ownerKey(o: Owner): string {
  return `${o.source}\u0000${o.client}`;
}

/** Clients without a session or Authorization: one quota group, never evicted for another's sake. */
export function isAnonymous(o: Owner): boolean {
  return o.client === 'anonymous';
}

const DEFAULT_DEADLINE_GRACE_MS = 30_000;

export class ApprovalEngine {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly backend: ApprovalBackend & ApprovalChannelInfo;
  private readonly graceMs: number;
  private pendingCount = 0;
  private readonly pendingByClient = new Map<string, number>();
  /** When each pending call started waiting (as many as pendingCount: bounded by approvals.maxPending). */
  private readonly pendingSince = new Map<string, number>();
  private settings: ApprovalSettings | null = null;
  /** Tasks (mode 'task') per owner, oldest first. */
  private readonly byOwner = new Map<string, Map<string, Entry>>();
  private retainedBytes = 0;
  /** Tasks (mode 'task') in memory: the sum of byOwner's sizes. */
  private taskCount = 0;
  private readonly rateByOwner = new Map<string, TokenBucket>();
  private workloadRate: TokenBucket | null = null;
  private closed = false;
  /** Backend writes waiting to be retried, by timer handle. */
  private readonly retries = new Map<unknown, { op: BackendWrite; id: string; attempt: number }>();

  constructor(private readonly o: ApprovalEngineOptions) {
    this.clock = o.clock ?? systemClock;
    this.backend = o.backend;
    this.graceMs = o.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS;
    o.backend.onDecision((d) => {
      try {
        this.onDecision(d);
      } catch (err) {
        o.log.error('approval decision could not be applied', { id: d.id, error: describeError(err) });
      }
    });
  }

  get description(): string {
    return this.backend.description;
  }

  /** Calls waiting for a human right now (submitted or being submitted). */
  get pending(): number {
    return this.pendingCount;
  }

  /** Tasks and held calls in memory. */
  get size(): number {
    return this.entries.size;
  }

  start(input: StartInput, s: ApprovalSettings): StartResult {
    if (this.closed) return { ok: false, error: 'APPROVAL_LIMIT', reason: 'the sidecar is shutting down' };
    this.settings = s;
    const refused = this.admit(input, s);
    if (refused) {
      this.o.metrics?.refused?.inc({ limit: refused.limit });
      return {
        ok: false,
        error: 'APPROVAL_LIMIT',
        reason: refused.reason,
        ...(refused.retryAfterMs !== undefined ? { retryAfterMs: refused.retryAfterMs } : {}),
      };
    }

    const now = this.clock.now();
    const a = input.approval;
    const timeoutMs = a ? (a.ruleTimeoutMs ?? this.backend.channelTimeoutMs?.(a.channel) ?? s.defaultTimeoutMs) : 0;
    const id = newTaskId(input.mode);
    // Our own copy of the call; what the backend gets is another copy, so nothing it does can change what runs.
    const call: ApprovedCall = {
      ...(input.protocol === 'a2a' ? { protocol: 'a2a' as const, method: input.method ?? '', ...(input.target ? { target: { ...input.target } } : {}) } : {}),
      tool: input.tool,
      arguments: structuredClone(input.arguments),
    };
    const pending: PendingApproval | undefined = a
      ? {
          id,
          channel: a.channel,
          workload: this.o.workload(),
          source: input.source,
          method: call.protocol === 'a2a' ? call.method! : 'tools/call',
          ...(call.protocol === 'a2a' ? { protocol: 'a2a' as const, ...(call.target ? { target: { ...call.target } } : {}) } : {}),
          tool: input.tool,
          arguments: structuredClone(input.shown ?? input.arguments),
          requestHash: callHash(input.source, call),
          reason: a.reason,
          ...(input.mcpSessionId !== undefined ? { mcpSessionId: input.mcpSessionId } : {}),
          owner: ownerKey(input.owner),
          client: input.owner.client,
          createdAt: new Date(now),
          expiresAt: new Date(now + timeoutMs),
          ...(input.traceparent !== undefined ? { traceparent: input.traceparent } : {}),
        }
      : undefined;
    const task: ApprovalTask = {
      id,
      mode: input.mode,
      owner: input.owner,
      ...(pending ? { pending } : {}),
      correlationId: input.correlationId,
      ...(a?.rule !== undefined ? { rule: a.rule } : {}),
      status: 'working',
      phase: a ? 'submitting' : 'executing',
      statusMessage: a ? waitingMessage(this.where(a.channel), a.channel, now + timeoutMs, false) : 'Executing',
      createdAt: now,
      lastUpdatedAt: now,
      ttlMs: taskTtl(input.requestedTtlMs, s, timeoutMs),
      pollIntervalMs: s.pollIntervalMs,
    };
    const e: Entry = { task, call, execute: input.execute, abort: null, waiters: new Set(), deadline: undefined, cleanup: undefined, bytes: 0 };
    this.keep(e);
    // A task lives no longer than its ttl, finished or not (an upstream that never answers included).
    if (task.mode === 'task') this.scheduleCleanup(e, now + task.ttlMs);
    this.dispatch(e, { type: 'start', deadlineMs: timeoutMs + this.graceMs });
    return { ok: true, task };
  }

  /**
   * Whether a new call may start, and else which bound refuses it. Pure checks first, then the
   * evictions that make room (only once nothing else refuses), then the rate tokens are taken.
   */
  private admit(input: StartInput, s: ApprovalSettings): { limit: LimitName; reason: string; retryAfterMs?: number } | null {
    const owner = input.owner;
    const now = this.clock.now();
    const rate = s.rate ?? DEFAULT_LIMITS.rate;
    let ownerBucket: TokenBucket | undefined;
    let workloadBucket: TokenBucket | undefined;
    if (input.approval) {
      if (this.pendingCount >= s.maxPendingWorkload) {
        return {
          limit: 'pending_workload',
          reason: `${this.pendingCount} calls of this workload are already waiting for approval (approvals.maxPending.workload is ${s.maxPendingWorkload}); retry after some are decided`,
        };
      }
      const mine = this.pendingByClient.get(owner.client) ?? 0;
      if (mine >= s.maxPendingClient) {
        return {
          limit: 'pending_client',
          reason: `this client already has ${mine} calls waiting for approval (approvals.maxPending.client is ${s.maxPendingClient}); retry after some are decided`,
        };
      }
      workloadBucket = this.workloadBucket(rate.workload, now);
      const wAt = workloadBucket.readyAt(now);
      if (wAt > now) {
        return {
          limit: 'rate_workload',
          retryAfterMs: wAt - now,
          reason: `this workload is creating approval requests faster than approvals.rate.workload allows (${rate.workload.perMinute} per minute, burst ${rate.workload.burst}); retry in ${seconds(wAt - now)}`,
        };
      }
      ownerBucket = this.ownerBucket(owner.client, rate.client, now);
      const cAt = ownerBucket.readyAt(now);
      if (cAt > now) {
        return {
          limit: 'rate_client',
          retryAfterMs: cAt - now,
          reason: `this client is creating approval requests faster than approvals.rate.client allows (${rate.client.perMinute} per minute, burst ${rate.client.burst}); retry in ${seconds(cAt - now)}`,
        };
      }
    }
    if (input.mode === 'task') {
      const perClient = s.maxRetainedTasksPerClient ?? DEFAULT_LIMITS.maxRetainedTasksPerClient;
      const mine = this.byOwner.get(ownerKey(owner));
      if (mine && mine.size >= perClient) {
        // Make room from the client's own finished tasks; an anonymous client's "own" could be anyone's.
        const oldest = isAnonymous(owner) ? undefined : firstDone(mine);
        if (!oldest) {
          return {
            limit: 'tasks_client',
            reason: `this client already keeps ${mine.size} tasks (approvals.maxRetainedTasksPerClient is ${perClient})${isAnonymous(owner) ? '; clients without a session or Authorization share this limit' : ''}; read finished tasks with tasks/result and retry when some have ended and expired`,
          };
        }
        this.drop(oldest, 'tasks_client');
      }
    }
    // Held calls are not kept after they end; while they wait, maxPending bounds them.
    if (input.mode === 'task' && this.taskCount >= s.maxRetainedTasks) {
      // The global bound: the owner keeping the most tasks gives up its oldest finished one, if it
      // keeps more than the caller will (max-min fair: many new sessions with a task each cannot
      // push out a client's only task; they are refused instead).
      const mine = (this.byOwner.get(ownerKey(owner))?.size ?? 0) + 1;
      const own = !isAnonymous(owner) ? this.byOwner.get(ownerKey(owner)) : undefined;
      // Else the caller's own oldest finished task makes room.
      const victim = this.heaviestOldestDone(mine) ?? (own ? firstDone(own) : undefined);
      if (!victim)
        return {
          limit: 'tasks_total',
          reason: `this sidecar already keeps ${this.taskCount} tasks (approvals.maxRetainedTasks is ${s.maxRetainedTasks}) and none it may drop for this client; retry later`,
        };
      this.drop(victim, 'tasks_total');
    }
    workloadBucket?.tryTake(now);
    ownerBucket?.tryTake(now);
    return null;
  }

  private workloadBucket(b: RateBudget, now: number): TokenBucket {
    if (!this.workloadRate || !sameBudget(this.workloadRate.budget, b)) this.workloadRate = new TokenBucket(b, now);
    return this.workloadRate;
  }

  private ownerBucket(client: string, b: RateBudget, now: number): TokenBucket {
    let bucket = this.rateByOwner.get(client);
    if (bucket && !sameBudget(bucket.budget, b)) bucket = undefined;
    if (bucket) return bucket;
    if (this.rateByOwner.size >= MAX_RATE_OWNERS) {
      for (const [k, v] of this.rateByOwner) if (v.available(now) >= v.budget.burst - 1e-9) this.rateByOwner.delete(k);
      // Still full of busy owners: forget the oldest (the workload bucket still bounds them all).
      while (this.rateByOwner.size >= MAX_RATE_OWNERS) this.rateByOwner.delete(this.rateByOwner.keys().next().value as string);
    }
    bucket = new TokenBucket(b, now);
    this.rateByOwner.set(client, bucket);
    return bucket;
  }

  /**
   * The oldest finished task of the owner keeping the most tasks, if that is more than
   * `callerWillKeep` (held calls are never kept).
   * Anonymous clients' tasks are not candidates: whose they are is unknown, and their number is
   * already bounded by maxRetainedTasksPerClient for all of them together.
   */
  private heaviestOldestDone(callerWillKeep: number): Entry | undefined {
    let best: Entry | undefined;
    let bestSize = callerWillKeep;
    for (const tasks of this.byOwner.values()) {
      if (tasks.size <= bestSize) continue;
      const first = tasks.values().next().value;
      if (first && isAnonymous(first.task.owner)) continue;
      const d = firstDone(tasks);
      if (d) {
        best = d;
        bestSize = tasks.size;
      }
    }
    return best;
  }

  private keep(e: Entry): void {
    this.entries.set(e.task.id, e);
    if (e.task.mode === 'task') {
      const k = ownerKey(e.task.owner);
      let m = this.byOwner.get(k);
      if (!m) {
        m = new Map();
        this.byOwner.set(k, m);
      }
      m.set(e.task.id, e);
      this.taskCount++;
    }
    this.gauges();
  }

  /** Forgets an entry (ttl, eviction, a held call's end); `limit` when a bound made it go early. */
  private drop(e: Entry, limit?: LimitName): void {
    if (this.entries.get(e.task.id) !== e) return;
    if (e.cleanup !== undefined) this.clock.clearTimeout(e.cleanup);
    e.cleanup = undefined;
    this.entries.delete(e.task.id);
    const k = ownerKey(e.task.owner);
    const m = this.byOwner.get(k);
    if (m?.delete(e.task.id)) {
      this.taskCount--;
      if (m.size === 0) this.byOwner.delete(k);
    }
    this.retainedBytes -= e.bytes;
    e.bytes = 0;
    if (limit) {
      this.o.metrics?.evicted?.inc({ limit });
      this.o.log.info('finished task dropped before its ttl', { id: e.task.id, limit });
    }
    this.gauges();
  }

  private gauges(): void {
    this.o.metrics?.retainedTasks?.set(this.taskCount);
    this.o.metrics?.retainedBytes?.set(this.retainedBytes);
  }

  /**
   * The result a finished task keeps: within maxTaskResultBytes, and within maxRetainedTaskBytes
   * together with every other kept result (the owner's own oldest results make room first;
   * never another owner's). Otherwise -32024, and the task keeps only that error.
   */
  private bound(e: Entry, outcome: CallOutcome): CallOutcome {
    const s = this.settings;
    if (e.task.mode !== 'task') return outcome;
    if (outcome.kind !== 'result') {
      // The executor stopped reading at the room resultRoom() gave it.
      if (outcome.refusedBy) this.o.metrics?.refused?.inc({ limit: outcome.refusedBy });
      return outcome;
    }
    const max = s?.maxTaskResultBytes ?? DEFAULT_LIMITS.maxTaskResultBytes;
    const total = s?.maxRetainedTaskBytes ?? DEFAULT_LIMITS.maxRetainedTaskBytes;
    const bytes = outcome.bytes ?? Buffer.byteLength(JSON.stringify(outcome.result));
    if (bytes > max) {
      this.o.metrics?.refused?.inc({ limit: 'result_size' });
      return errorOutcome(
        e.task,
        'TASK_RESULT_TOO_LARGE',
        `the tool's result has ${bytes} bytes; ThoughtGate keeps task results of at most ${max} bytes (approvals.maxTaskResultBytes); the call did run`,
      );
    }
    if (this.retainedBytes + bytes > total && !isAnonymous(e.task.owner)) {
      for (const other of [...(this.byOwner.get(ownerKey(e.task.owner))?.values() ?? [])]) {
        if (this.retainedBytes + bytes <= total) break;
        if (other !== e && other.task.phase === 'done' && other.bytes > 0) this.drop(other, 'result_bytes_total');
      }
    }
    if (this.retainedBytes + bytes > total) {
      this.o.metrics?.refused?.inc({ limit: 'result_bytes_total' });
      return errorOutcome(
        e.task,
        'TASK_RESULT_TOO_LARGE',
        `ThoughtGate already keeps ${this.retainedBytes} bytes of task results (approvals.maxRetainedTaskBytes is ${total}); the call did run, its result of ${bytes} bytes was not kept`,
      );
    }
    e.bytes = bytes;
    this.retainedBytes += bytes;
    this.gauges();
    return outcome;
  }

  /**
   * The most bytes a result of `owner` can be kept with right now: maxTaskResultBytes, or less
   * when the results kept in all leave less room (counting the owner's own finished results,
   * which would make way). The executor reads no further, so a result that cannot be kept is not
   * held in memory whole first. bound() decides again when the result is in.
   */
  resultRoom(owner: Owner): ResultRoom {
    const s = this.settings;
    const max = s?.maxTaskResultBytes ?? DEFAULT_LIMITS.maxTaskResultBytes;
    const total = s?.maxRetainedTaskBytes ?? DEFAULT_LIMITS.maxRetainedTaskBytes;
    let room = total - this.retainedBytes;
    if (!isAnonymous(owner)) for (const e of this.byOwner.get(ownerKey(owner))?.values() ?? []) if (e.task.phase === 'done') room += e.bytes;
    return room < max ? { bytes: Math.max(0, room), limit: 'result_bytes_total', total } : { bytes: max, limit: 'result_size', total };
  }

  /** The task, when it exists and belongs to `owner` (another client's task does not exist for it). */
  get(id: string, owner: Owner): ApprovalTask | undefined {
    const e = this.entries.get(id);
    if (e?.task.mode !== 'task' || e.task.owner.source !== owner.source || e.task.owner.client !== owner.client) return undefined;
    return e.task;
  }

  /** Whether a task or held call exists and has not ended (it can still be cancelled). */
  isOpen(id: string): boolean {
    const t = this.entries.get(id)?.task;
    return t !== undefined && t.phase !== 'done';
  }

  /** The owner's tasks after `after`, oldest first, at most `limit`; `more` when others follow. */
  list(owner: Owner, after: [number, string] | null, limit: number): { tasks: ApprovalTask[]; more: boolean } {
    // Anonymous clients cannot be told apart: each knows its tasks by id only, and lists none.
    if (isAnonymous(owner)) return { tasks: [], more: false };
    const mine = [...(this.byOwner.get(ownerKey(owner))?.values() ?? [])]
      .map((e) => e.task)
      .filter((t) => after === null || comparePosition([t.createdAt, t.id], after) > 0)
      .sort((a, b) => comparePosition([a.createdAt, a.id], [b.createdAt, b.id]));
    return { tasks: mine.slice(0, limit), more: mine.length > limit };
  }

  /** Cancels for the client (tasks/cancel, or a held call's client went away). */
  cancel(id: string, owner: Owner | null, why: string): CancelResult {
    const e = this.entries.get(id);
    const t = e?.task;
    if (!e || !t || (owner !== null && (t.owner.source !== owner.source || t.owner.client !== owner.client))) return { ok: false, reason: 'not-found' };
    if (t.phase === 'done') return { ok: false, reason: 'terminal', task: t };
    this.dispatch(e, { type: 'cancel', why });
    return { ok: true, task: t };
  }

  /** Resolves once the task is terminal (at once when it is); `signal` stops waiting. */
  wait(task: ApprovalTask, signal?: { once(ev: 'close', fn: () => void): unknown }): Promise<void> {
    if (task.phase === 'done') return Promise.resolve();
    const e = this.entries.get(task.id);
    if (!e) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        e.waiters.delete(done);
        resolve();
      };
      e.waiters.add(done);
      signal?.once('close', done);
    });
  }

  /**
   * After a restart: what the backend still has for this sidecar. Held calls' clients are gone,
   * so those are cancelled; tasks come back (their clients poll them by id) and run on approval
   * with `executorFor` (no client Authorization: it was only ever in memory).
   */
  async adopt(adopted: AdoptedApproval[], executorFor: (p: PendingApproval) => { owner: Owner; execute: Executor } | null, s: ApprovalSettings): Promise<void> {
    for (const a of adopted) {
      const p = a.pending;
      if (this.entries.has(p.id)) continue;
      const plan = p.id.startsWith('tgh-') ? null : executorFor(p);
      if (!plan) {
        if (!a.decision && !a.executionStarted) this.write('cancel', p.id, () => this.backend.cancel(p.id));
        else if (!a.executionStarted && a.decision?.outcome === 'approved')
          this.write('finished', p.id, () =>
            this.backend.finished(p.id, { ok: false, summary: 'Not executed: the sidecar restarted and the client that asked is gone' }),
          );
        continue;
      }
      const now = this.clock.now();
      const created = p.createdAt.getTime();
      const task: ApprovalTask = {
        id: p.id,
        mode: 'task',
        owner: plan.owner,
        pending: p,
        correlationId: 'adopted',
        status: 'working',
        phase: 'pending',
        statusMessage: waitingMessage(this.where(p.channel), p.channel, p.expiresAt.getTime(), true),
        createdAt: created,
        lastUpdatedAt: now,
        ttlMs: taskTtl(undefined, s, p.expiresAt.getTime() - created),
        pollIntervalMs: s.pollIntervalMs,
      };
      // The call runs exactly as the backend stored it, and only if that still matches its hash.
      const e: Entry = {
        task,
        call: {
          ...(p.protocol === 'a2a' ? { protocol: 'a2a' as const, method: p.method, ...(p.target ? { target: { ...p.target } } : {}) } : {}),
          tool: p.tool,
          arguments: structuredClone(p.arguments),
        },
        execute: plan.execute,
        abort: null,
        waiters: new Set(),
        deadline: undefined,
        cleanup: undefined,
        bytes: 0,
      };
      this.keep(e);
      this.countPending(task, +1);
      if (a.executionStarted) this.dispatch(e, { type: 'interrupted' });
      else if (a.decision) this.dispatch(e, { type: 'decided', decision: a.decision });
      else this.apply(e, [{ type: 'arm-deadline', inMs: Math.max(0, p.expiresAt.getTime() - now) + this.graceMs }]);
    }
  }

  /**
   * The sidecar is stopping: held calls still waiting for a human are cancelled (their clients
   * get -32009 now rather than a cut connection), and blocking tasks/result calls stop waiting
   * (their clients ask again, of this sidecar's successor). Calls already running finish: a held
   * call that was approved is not woken (its waiter is the client's own request, which gets the
   * answer; close() aborts it if the drain's deadline passes first).
   */
  drain(): void {
    this.closed = true;
    for (const e of [...this.entries.values()]) {
      if (e.task.phase === 'done') continue;
      if (e.task.mode === 'held') {
        if (isWaiting(e.task)) this.cancel(e.task.id, null, 'the sidecar is shutting down');
      } else for (const w of [...e.waiters]) w();
    }
  }

  close(): void {
    this.closed = true;
    // A retry waiting for its turn must not keep a stopping sidecar alive: given up, and said so.
    for (const [handle, w] of this.retries) {
      this.clock.clearTimeout(handle);
      this.o.metrics?.backendWriteFailures?.inc({ op: w.op, cause: 'shutdown' });
      this.o.log.error('approval backend write failed; given up', {
        id: w.id,
        op: w.op,
        attempts: w.attempt,
        backend: this.backend.description,
        error: 'the sidecar is shutting down',
      });
    }
    this.retries.clear();
    for (const e of this.entries.values()) {
      if (e.deadline !== undefined) this.clock.clearTimeout(e.deadline);
      if (e.cleanup !== undefined) this.clock.clearTimeout(e.cleanup);
      e.abort?.abort();
      for (const w of [...e.waiters]) w();
    }
  }

  // ---------- the runner ----------

  private where(channel: string): string {
    return this.backend.channelDescription?.(channel) ?? this.backend.description;
  }

  /** One event into the task's transition; the new state replaces the task's (callers hold it), then the effects run. */
  private dispatch(e: Entry, ev: TaskEvent): void {
    const next = step(e.task, ev, { now: this.clock.now(), backend: this.backend.description, where: (c) => this.where(c), call: e.call });
    Object.assign(e.task, next.task);
    this.apply(e, next.effects);
  }

  private apply(e: Entry, effects: readonly TaskEffect[]): void {
    const t = e.task;
    for (const fx of effects) {
      switch (fx.type) {
        case 'pending':
          this.countPending(t, fx.delta);
          break;
        case 'arm-deadline':
          e.deadline = this.clock.setTimeout(() => {
            e.deadline = undefined;
            this.dispatch(e, { type: 'deadline' });
          }, fx.inMs);
          break;
        case 'clear-deadline':
          if (e.deadline !== undefined) this.clock.clearTimeout(e.deadline);
          e.deadline = undefined;
          break;
        case 'submit':
          // The backend works after this turn: building and queueing the Slack message (or writing
          // the ApprovalRequest) is not on the path of the CreateTaskResult or the held call's first bytes.
          setImmediate(() => {
            if (t.phase !== 'submitting') return; // cancelled before it was even submitted
            this.settle(
              e,
              'submit',
              () => this.backend.submit(t.pending!),
              { type: 'submitted' },
              (error) => ({ type: 'submit-failed', error }),
            );
          });
          break;
        case 'mark-executing':
          this.settle(
            e,
            'mark_executing',
            () => this.backend.markExecuting(t.id),
            { type: 'marked' },
            (error) => ({ type: 'mark-failed', error }),
          );
          break;
        case 'execute': {
          const abort = new AbortController();
          e.abort = abort;
          let running: Promise<CallOutcome>;
          try {
            running = e.execute!(e.call, t, abort.signal);
          } catch (err) {
            running = Promise.reject(err);
          }
          running.then(
            (outcome) => this.dispatch(e, { type: 'executed', outcome }),
            (err: unknown) =>
              this.dispatch(e, {
                type: 'executed',
                outcome: errorOutcome(t, 'UPSTREAM_UNAVAILABLE', `the approved call failed in ThoughtGate: ${describeError(err)}`),
              }),
          );
          break;
        }
        case 'abort':
          e.abort?.abort();
          break;
        case 'backend-cancel':
          this.write('cancel', t.id, () => this.backend.cancel(t.id));
          break;
        case 'backend-finished':
          this.write('finished', t.id, () => this.backend.finished(t.id, { ok: fx.ok, summary: fx.summary }));
          break;
        case 'count':
          this.o.metrics?.decisions.inc({ outcome: fx.outcome });
          break;
        case 'waited':
          this.o.metrics?.waitSeconds.observe(fx.seconds);
          break;
        case 'log':
          this.o.log[fx.level](fx.msg, fx.fields);
          break;
        case 'ended':
          this.ended(e);
          break;
      }
    }
  }

  /**
   * A backend write the client's answer waits on (submit, markExecuting): not retried here, its
   * failure is the client's answer (-32006). Counted and logged like every failed write.
   */
  private settle(e: Entry, op: BackendWrite, write: () => Promise<void>, ok: TaskEvent, failed: (error: string) => TaskEvent): void {
    let p: Promise<void>;
    try {
      p = write();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => this.dispatch(e, ok),
      (err: unknown) => {
        this.o.metrics?.backendWriteFailures?.inc({ op, cause: causeOf(err) });
        this.dispatch(e, failed(describeError(err)));
      },
    );
  }

  /**
   * A backend write after the client's answer is settled (cancel, finished): it keeps the human's
   * record true (the Slack message, the ApprovalRequest), so it is retried after
   * backoff (BACKEND_RETRY, BACKEND_RETRIES times); each failure is logged, and one that is given up is an error in the
   * log and counted in approval_backend_write_failures_total (docs/approvals.md).
   */
  private write(op: BackendWrite, id: string, fn: () => Promise<void>, attempt = 0): void {
    let p: Promise<void>;
    try {
      p = fn();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.catch((err: unknown) => {
      if (attempt >= BACKEND_RETRIES || this.closed) {
        this.o.metrics?.backendWriteFailures?.inc({ op, cause: causeOf(err) });
        this.o.log.error('approval backend write failed; given up', {
          id,
          op,
          attempts: attempt + 1,
          backend: this.backend.description,
          error: describeError(err),
        });
        return;
      }
      const delay = backoffDelay(attempt, BACKEND_RETRY);
      this.o.log.warn('approval backend write failed; retrying', { id, op, attempt: attempt + 1, retryInMs: delay, error: describeError(err) });
      const handle = this.clock.setTimeout(() => {
        this.retries.delete(handle);
        this.write(op, id, fn, attempt + 1);
      }, delay);
      this.retries.set(handle, { op, id, attempt: attempt + 1 });
    });
  }

  private countPending(t: ApprovalTask, delta: 1 | -1): void {
    this.pendingCount += delta;
    const n = (this.pendingByClient.get(t.owner.client) ?? 0) + delta;
    if (n <= 0) this.pendingByClient.delete(t.owner.client);
    else this.pendingByClient.set(t.owner.client, n);
    this.o.metrics?.pending.set(this.pendingCount);
    if (delta > 0) this.pendingSince.set(t.id, t.createdAt);
    else this.pendingSince.delete(t.id);
    let oldest = Number.POSITIVE_INFINITY;
    for (const at of this.pendingSince.values()) oldest = Math.min(oldest, at);
    this.o.metrics?.oldestPending?.set(oldest === Number.POSITIVE_INFINITY ? 0 : oldest / 1000);
  }

  /** The task ended: its result bounded, its waiters woken, then dropped (held) or kept until its clean-up. */
  private ended(e: Entry): void {
    const t = e.task;
    const outcome = t.outcome!;
    t.outcome = this.bound(e, outcome);
    if (t.outcome !== outcome && t.outcome.kind === 'error') t.status = 'failed';
    // The executor holds the client's headers (Authorization among them): not a moment longer.
    e.execute = null;
    for (const w of [...e.waiters]) w();
    if (t.mode === 'held') {
      // Nobody can ask for a held call again: its one client already has the answer.
      this.drop(e);
      return;
    }
    if (e.cleanup !== undefined) this.clock.clearTimeout(e.cleanup);
    e.cleanup = undefined;
    if (!this.closed) this.scheduleCleanup(e, cleanupAt(t.createdAt, t.ttlMs, t.terminalAt ?? this.clock.now()));
  }

  private onDecision(d: Decision): void {
    const e = this.entries.get(d.id);
    if (e) this.dispatch(e, { type: 'decided', decision: d });
  }

  /** Drops the task at `at` (re-armed in steps: timers cannot wait longer than 2^31-1 ms). */
  private scheduleCleanup(e: Entry, at: number): void {
    const wait = Math.max(0, at - this.clock.now());
    e.cleanup = this.clock.setTimeout(
      () => {
        e.cleanup = undefined;
        if (this.clock.now() < at) this.scheduleCleanup(e, at);
        else if (e.task.phase !== 'done') this.dispatch(e, { type: 'ttl' });
        else this.drop(e);
      },
      Math.min(wait, MAX_TIMER_MS),
    );
  }
}

function firstDone(tasks: Map<string, Entry>): Entry | undefined {
  for (const e of tasks.values()) if (e.task.phase === 'done') return e;
  return undefined;
}

function sameBudget(a: RateBudget, b: RateBudget): boolean {
  return a.perMinute === b.perMinute && a.burst === b.burst;
}

function seconds(ms: number): string {
  return `${Math.ceil(ms / 1000)} s`;
}

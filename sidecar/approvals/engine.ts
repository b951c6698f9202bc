// The approval task engine: every call that needs a human (an MCP task or a held call) from
// submission to its end, in memory. It talks to the ApprovalBackend (where humans decide) and
// runs the approved call through an executor the HTTP layer hands it, so it knows nothing of HTTP.
//
// Guarantees:
// - at most once: an approved call runs only from the `pending` phase, after backend.markExecuting
//   resolved; a second decision, a late one, or one for a cancelled task runs nothing;
// - exactly the approved request: the call kept here is re-hashed and compared with the hash the
//   backend was given (and, for adopted approvals, with what the backend stored) before it runs;
// - bounded: pending approvals per workload and per client (APPROVAL_LIMIT), finished tasks kept
//   until their ttl and at most approvals.maxRetainedTasks of them.
import { ERRORS, type ErrorName } from '../../api/errors.js';
import { systemClock, type Clock } from '../../slack/clock.js';
import type { Logger } from '../log.js';
import type { AdoptedApproval, ApprovalBackend, ApprovalWorkload, Decision, PendingApproval } from './backend.js';
import { requestHash } from './hash.js';
import {
  cleanupAt,
  comparePosition,
  decisionError,
  decisionMessage,
  executionStatus,
  newTaskId,
  taskTtl,
  type CallOutcome,
  type Owner,
  type Phase,
  type TaskState,
} from './tasks.js';

export interface ApprovalSettings {
  maxPendingWorkload: number;
  maxPendingClient: number;
  defaultTimeoutMs: number;
  taskTtlMs: number;
  maxTaskTtlMs: number;
  pollIntervalMs: number;
  keepAliveMs: number;
  maxRetainedTasks: number;
}

/** Optional knowledge a backend may have of its channels (the standalone one does). */
export interface ApprovalChannelInfo {
  /** The channel names it serves: rules and @approve must name one of them (checked at load). */
  readonly channels?: ReadonlySet<string>;
  /** A channel's own timeout, used when the rule sets none. */
  channelTimeoutMs?(channel: string): number | undefined;
  /** Where a channel's humans decide, for task status messages (e.g. "Slack channel C0123"). */
  channelDescription?(channel: string): string | undefined;
}

/** The call as it runs: the engine's own, hash-checked copy. */
export interface ApprovedCall {
  tool: string;
  arguments: Record<string, unknown>;
}

/** Runs the approved call upstream and says what it answered. */
export type Executor = (call: ApprovedCall, task: ApprovalTask, signal: AbortSignal) => Promise<CallOutcome>;

export interface ApprovalTask extends TaskState {
  readonly mode: 'task' | 'held';
  readonly owner: Owner;
  /** Absent for tasks that need no approval (a task-augmented call that was simply forwarded). */
  readonly pending?: PendingApproval;
  readonly correlationId: string;
  readonly rule?: string;
  phase: Phase;
  decision?: Decision;
  outcome?: CallOutcome;
  terminalAt?: number;
}

export interface StartInput {
  mode: 'task' | 'held';
  owner: Owner;
  source: string;
  tool: string;
  arguments: Record<string, unknown>;
  /** null: no approval needed, run at once (ThoughtGate answers the task itself). */
  approval: { channel: string; ruleTimeoutMs?: number; reason: string; rule?: string } | null;
  mcpSessionId?: string;
  requestedTtlMs?: number;
  correlationId: string;
  execute: Executor;
}

export type StartResult = { ok: true; task: ApprovalTask } | { ok: false; error: 'APPROVAL_LIMIT'; reason: string };
export type CancelResult = { ok: true; task: ApprovalTask } | { ok: false; reason: 'not-found' | 'terminal'; task?: ApprovalTask };

export interface ApprovalEngineMetrics {
  pending: { set(v: number): void };
  decisions: { inc(labels: { outcome: string }): void };
  waitSeconds: { observe(v: number): void };
}

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
}

const DEFAULT_DEADLINE_GRACE_MS = 30_000;

export class ApprovalEngine {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly backend: ApprovalBackend & ApprovalChannelInfo;
  private readonly graceMs: number;
  private pendingCount = 0;
  private readonly pendingByClient = new Map<string, number>();
  private maxRetained = 1000;
  private closed = false;

  constructor(private readonly o: ApprovalEngineOptions) {
    this.clock = o.clock ?? systemClock;
    this.backend = o.backend;
    this.graceMs = o.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS;
    o.backend.onDecision((d) => {
      try {
        this.onDecision(d);
      } catch (err) {
        o.log.error('approval decision could not be applied', { id: d.id, error: (err as Error).message });
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
    const client = input.owner.client;
    if (input.approval) {
      if (this.pendingCount >= s.maxPendingWorkload) {
        return { ok: false, error: 'APPROVAL_LIMIT', reason: `${this.pendingCount} calls of this workload are already waiting for approval (approvals.maxPending.workload is ${s.maxPendingWorkload}); retry after some are decided` };
      }
      const mine = this.pendingByClient.get(client) ?? 0;
      if (mine >= s.maxPendingClient) {
        return { ok: false, error: 'APPROVAL_LIMIT', reason: `this client already has ${mine} calls waiting for approval (approvals.maxPending.client is ${s.maxPendingClient}); retry after some are decided` };
      }
    }
    this.maxRetained = s.maxRetainedTasks;
    this.evict(s.maxRetainedTasks - 1);

    const now = this.clock.now();
    const a = input.approval;
    const timeoutMs = a ? (a.ruleTimeoutMs ?? this.backend.channelTimeoutMs?.(a.channel) ?? s.defaultTimeoutMs) : 0;
    const id = newTaskId(input.mode);
    // Our own copy of the call; what the backend gets is another copy, so nothing it does can change what runs.
    const call = { tool: input.tool, arguments: structuredClone(input.arguments) };
    const pending: PendingApproval | undefined = a
      ? {
          id,
          channel: a.channel,
          workload: this.o.workload(),
          source: input.source,
          method: 'tools/call',
          tool: input.tool,
          arguments: structuredClone(input.arguments),
          requestHash: requestHash(input.source, input.tool, call.arguments),
          reason: a.reason,
          ...(input.mcpSessionId !== undefined ? { mcpSessionId: input.mcpSessionId } : {}),
          createdAt: new Date(now),
          expiresAt: new Date(now + timeoutMs),
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
      statusMessage: a ? this.waitingMessage(a.channel, now + timeoutMs, false) : 'Executing',
      createdAt: now,
      lastUpdatedAt: now,
      ttlMs: taskTtl(input.requestedTtlMs, s, timeoutMs),
      pollIntervalMs: s.pollIntervalMs,
    };
    const e: Entry = { task, call, execute: input.execute, abort: null, waiters: new Set(), deadline: undefined, cleanup: undefined };
    this.entries.set(id, e);
    if (!pending) {
      void this.run(e);
      return { ok: true, task };
    }
    this.countPending(task, +1);
    e.deadline = this.clock.setTimeout(() => this.onDeadline(e), timeoutMs + this.graceMs);
    this.o.log.info('approval requested', { id, mode: task.mode, source: input.source, tool: input.tool, channel: pending.channel, rule: task.rule, expiresAt: pending.expiresAt.toISOString(), correlationId: task.correlationId });
    // The backend works after this turn: building and queueing the Slack message (or writing the
    // ApprovalRequest) is not on the path of the CreateTaskResult or the held call's first bytes.
    setImmediate(() => this.submit(e, pending));
    return { ok: true, task };
  }

  /** The task, when it exists and belongs to `owner` (another client's task does not exist for it). */
  get(id: string, owner: Owner): ApprovalTask | undefined {
    const e = this.entries.get(id);
    if (!e || e.task.mode !== 'task' || e.task.owner.source !== owner.source || e.task.owner.client !== owner.client) return undefined;
    return e.task;
  }

  /** The owner's tasks after `after`, oldest first, at most `limit`; `more` when others follow. */
  list(owner: Owner, after: [number, string] | null, limit: number): { tasks: ApprovalTask[]; more: boolean } {
    const mine = [...this.entries.values()]
      .map((e) => e.task)
      .filter((t) => t.mode === 'task' && t.owner.source === owner.source && t.owner.client === owner.client)
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
    const waiting = t.phase === 'submitting' || t.phase === 'pending';
    this.o.log.info('approval cancelled by the client', { id, phase: t.phase, why });
    if (!waiting) e.abort?.abort();
    this.o.metrics?.decisions.inc({ outcome: 'cancelled' });
    this.end(e, 'cancelled', this.errorOutcome(t, 'APPROVAL_CANCELLED', `the call was cancelled by the client (${why})${waiting ? ' before a decision; it was not executed' : ' while executing; the upstream request was aborted'}`), `Cancelled by the client (${why})`);
    // While executing, run() tells the backend how it ended once the executor returns.
    if (waiting && t.pending) this.backend.cancel(id).catch((err: unknown) => this.o.log.warn('approval backend cancel failed', { id, error: (err as Error)?.message }));
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
        if (!a.decision && !a.executionStarted) await this.backend.cancel(p.id).catch(() => undefined);
        else if (!a.executionStarted && a.decision?.outcome === 'approved') await this.backend.finished(p.id, { ok: false, summary: 'Not executed: the sidecar restarted and the client that asked is gone' }).catch(() => undefined);
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
        statusMessage: this.waitingMessage(p.channel, p.expiresAt.getTime(), true),
        createdAt: created,
        lastUpdatedAt: now,
        ttlMs: taskTtl(undefined, s, p.expiresAt.getTime() - created),
        pollIntervalMs: s.pollIntervalMs,
      };
      // The call runs exactly as the backend stored it, and only if that still matches its hash.
      const e: Entry = { task, call: { tool: p.tool, arguments: structuredClone(p.arguments) }, execute: plan.execute, abort: null, waiters: new Set(), deadline: undefined, cleanup: undefined };
      this.entries.set(p.id, e);
      this.countPending(task, +1);
      if (a.executionStarted) {
        this.end(e, 'failed', this.errorOutcome(task, 'APPROVAL_UNAVAILABLE', 'the sidecar restarted while this approved call was executing; it may or may not have run and is not run again'), 'Interrupted by a sidecar restart while executing; not run again');
        continue;
      }
      if (a.decision) {
        this.onDecision(a.decision);
        continue;
      }
      e.deadline = this.clock.setTimeout(() => this.onDeadline(e), Math.max(0, p.expiresAt.getTime() - now) + this.graceMs);
    }
  }

  /**
   * The sidecar is stopping: held calls still waiting for a human are cancelled (their clients
   * get -32009 now rather than a cut connection), and blocking tasks/result calls stop waiting
   * (their clients ask again, of this sidecar's successor). Calls already running finish.
   */
  drain(): void {
    this.closed = true;
    for (const e of [...this.entries.values()]) {
      if (e.task.mode === 'held' && (e.task.phase === 'submitting' || e.task.phase === 'pending')) this.cancel(e.task.id, null, 'the sidecar is shutting down');
      else if (e.task.phase !== 'done') for (const w of [...e.waiters]) w();
    }
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) {
      if (e.deadline !== undefined) this.clock.clearTimeout(e.deadline);
      if (e.cleanup !== undefined) this.clock.clearTimeout(e.cleanup);
      e.abort?.abort();
      for (const w of [...e.waiters]) w();
    }
  }

  // ---------- internals ----------

  private submit(e: Entry, pending: PendingApproval): void {
    const task = e.task;
    if (task.phase !== 'submitting') return; // cancelled before it was even submitted
    let submitted: Promise<void>;
    try {
      submitted = this.backend.submit(pending);
    } catch (err) {
      submitted = Promise.reject(err);
    }
    submitted.then(
      () => {
        if (task.phase !== 'submitting') return;
        task.phase = 'pending';
        this.touch(task, this.waitingMessage(pending.channel, pending.expiresAt.getTime(), true));
      },
      (err: unknown) => {
        if (task.phase !== 'submitting') return;
        const reason = `the approval request could not be recorded (${this.backend.description}): ${(err as Error)?.message ?? String(err)}; the call was not forwarded`;
        this.o.log.warn('approval submit failed', { id: task.id, channel: pending.channel, error: (err as Error)?.message });
        this.o.metrics?.decisions.inc({ outcome: 'unavailable' });
        this.end(e, 'failed', this.errorOutcome(task, 'APPROVAL_UNAVAILABLE', reason), `Approval unavailable; not executed: ${(err as Error)?.message ?? String(err)}`);
      },
    );
  }

  private waitingMessage(channel: string, expiresAt: number, posted: boolean): string {
    const where = this.backend.channelDescription?.(channel) ?? this.backend.description;
    return `${posted ? 'Waiting for' : 'Requesting'} human approval through approval channel "${channel}" (${where}); expires ${new Date(expiresAt).toISOString()}`;
  }

  private touch(t: ApprovalTask, message: string): void {
    t.statusMessage = message;
    t.lastUpdatedAt = Math.max(t.lastUpdatedAt, this.clock.now());
  }

  private countPending(t: ApprovalTask, delta: 1 | -1): void {
    this.pendingCount += delta;
    const n = (this.pendingByClient.get(t.owner.client) ?? 0) + delta;
    if (n <= 0) this.pendingByClient.delete(t.owner.client);
    else this.pendingByClient.set(t.owner.client, n);
    this.o.metrics?.pending.set(this.pendingCount);
  }

  errorOutcome(t: ApprovalTask, name: ErrorName, reason: string): CallOutcome {
    const e = ERRORS[name];
    const data: Record<string, unknown> = { gate: e.gate, ...(t.rule !== undefined ? { rule: t.rule } : {}), reason, correlationId: t.correlationId };
    if (t.mode === 'task') data['taskId'] = t.id;
    return { kind: 'error', error: { code: e.code, message: e.message, data } };
  }

  private onDecision(d: Decision): void {
    const e = this.entries.get(d.id);
    if (!e) return;
    const t = e.task;
    if (t.phase !== 'submitting' && t.phase !== 'pending') {
      // Decided after the call already ended here (cancelled, or timed out locally): make sure
      // the human's record does not suggest it ran.
      if (d.outcome === 'approved' && t.phase === 'done' && t.pending && t.decision?.outcome !== 'approved') {
        this.backend.finished(d.id, { ok: false, summary: `Not executed: ${t.statusMessage}` }).catch(() => undefined);
      }
      return;
    }
    if (e.deadline !== undefined) this.clock.clearTimeout(e.deadline);
    e.deadline = undefined;
    t.decision = d;
    this.o.metrics?.decisions.inc({ outcome: d.outcome });
    this.o.metrics?.waitSeconds.observe(Math.max(0, this.clock.now() - t.createdAt) / 1000);
    this.o.log.info('approval decided', { id: t.id, outcome: d.outcome, by: d.by?.map((b) => b.id), correlationId: t.correlationId });
    if (d.outcome === 'approved') {
      this.countPending(t, -1);
      t.phase = 'executing';
      this.touch(t, decisionMessage(d));
      void this.run(e);
      return;
    }
    const { name, status } = decisionError(d.outcome, d.message);
    this.end(e, status, this.errorOutcome(t, name, d.message || decisionMessage(d)), decisionMessage(d));
  }

  private onDeadline(e: Entry): void {
    e.deadline = undefined;
    const t = e.task;
    if (t.phase !== 'submitting' && t.phase !== 'pending') return;
    this.o.log.warn('approval deadline passed without a decision from the backend', { id: t.id, backend: this.backend.description });
    this.backend.cancel(t.id).catch(() => undefined);
    this.onDecision({ id: t.id, outcome: 'expired', at: new Date(this.clock.now()), message: `no decision arrived from ${this.backend.description} by the deadline` });
  }

  private async run(e: Entry): Promise<void> {
    const t = e.task;
    if (t.pending) {
      // Exactly what was submitted, or nothing.
      if (requestHash(t.owner.source, e.call.tool, e.call.arguments) !== t.pending.requestHash || e.call.tool !== t.pending.tool) {
        this.o.log.error('approved request does not match its hash; not executed', { id: t.id });
        this.end(e, 'failed', this.errorOutcome(t, 'APPROVAL_UNAVAILABLE', 'the approved request does not match the request that was submitted for approval (hash mismatch); it was not executed'), 'Not executed: the request does not match what was approved');
        this.backend.finished(t.id, { ok: false, summary: 'Not executed: the request did not match its hash' }).catch(() => undefined);
        return;
      }
      try {
        await this.backend.markExecuting(t.id);
      } catch (err) {
        if (t.phase === 'done') return;
        const msg = (err as Error)?.message ?? String(err);
        this.end(e, 'failed', this.errorOutcome(t, 'APPROVAL_UNAVAILABLE', `approved, but the start of execution could not be recorded (${msg}); not executed, so that it can never run twice`), `Approved but not executed: ${msg}`);
        this.backend.finished(t.id, { ok: false, summary: `Not executed: ${msg}` }).catch(() => undefined);
        return;
      }
      if (t.phase === 'done') {
        // Cancelled while the start was being recorded: nothing ran.
        this.backend.finished(t.id, { ok: false, summary: `Not executed: ${t.statusMessage}` }).catch(() => undefined);
        return;
      }
    }
    e.abort = new AbortController();
    let outcome: CallOutcome;
    try {
      outcome = await e.execute!(e.call, t, e.abort.signal);
    } catch (err) {
      outcome = this.errorOutcome(t, 'UPSTREAM_UNAVAILABLE', `the approved call failed in ThoughtGate: ${(err as Error)?.message ?? String(err)}`);
    }
    const result = executionStatus(outcome);
    if (t.phase === 'done') {
      // Cancelled while it ran: the task stays cancelled (spec), the human's record says so.
      if (t.pending) this.backend.finished(t.id, { ok: false, summary: 'Cancelled by the client while executing; the upstream request was aborted' }).catch(() => undefined);
      return;
    }
    const by = t.decision ? decisionMessage(t.decision).replace(/; executing$/, '') : 'Executed';
    this.end(e, result.status, outcome, t.pending ? `${by}. ${result.summary}` : result.summary);
    if (t.pending) this.backend.finished(t.id, { ok: result.ok, summary: result.summary }).catch((err: unknown) => this.o.log.warn('approval backend finished failed', { id: t.id, error: (err as Error)?.message }));
  }

  private end(e: Entry, status: ApprovalTask['status'], outcome: CallOutcome, message: string): void {
    const t = e.task;
    if (t.phase === 'submitting' || t.phase === 'pending') this.countPending(t, -1);
    if (e.deadline !== undefined) this.clock.clearTimeout(e.deadline);
    e.deadline = undefined;
    const now = this.clock.now();
    t.phase = 'done';
    t.status = status;
    t.outcome = outcome;
    t.terminalAt = now;
    // The executor holds the client's headers (Authorization among them): not a moment longer.
    e.execute = null;
    this.touch(t, message);
    for (const w of [...e.waiters]) w();
    if (t.mode === 'held') {
      // Nobody can ask for a held call again: its one client already has the answer.
      this.entries.delete(t.id);
      return;
    }
    if (!this.closed) e.cleanup = this.clock.setTimeout(() => this.entries.delete(t.id), cleanupAt(t.createdAt, t.ttlMs, now) - now);
    this.evict(this.maxRetained);
  }

  /** Drops the oldest finished tasks while more than `max` entries are kept. */
  private evict(max: number): void {
    if (this.entries.size <= max) return;
    for (const [id, e] of this.entries) {
      if (this.entries.size <= max) break;
      if (e.task.phase !== 'done') continue;
      if (e.cleanup !== undefined) this.clock.clearTimeout(e.cleanup);
      this.entries.delete(id);
    }
  }
}

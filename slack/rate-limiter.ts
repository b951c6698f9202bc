// One rate limiter per Slack bot token, shared by every channel client and every pending approval
// that uses the token (in a cluster: all pods' ApprovalRequests that the operator relays).
//
// - Per-method token buckets sized from Slack's published tiers (SLACK_RATE_BUDGETS below).
// - One priority queue: posting a new approval and final message updates go before routine polls.
// - A 429 pauses *every* call for the token until Retry-After has passed. Slack limits per
//   token+method, but a 429 usually arrives in a storm (other apps, other replicas), so backing off
//   entirely is the polite and safe reaction. The method's bucket is also emptied: after the pause
//   one call may go at once, then only the sustained rate (no burst).
// - What the limiter knows of the budget (buckets, pause) lives in a RateLimitMemory that can
//   outlive it: the operator's next leadership term, or a client rebuilt for the same token, takes
//   over the spent budget instead of starting with full buckets.
// - The WebClient is built with rejectRateLimitedCalls: true and retries: 0, so this queue is the
//   only place that schedules retries: a rate-limited call is re-queued (a 429 means Slack did not
//   execute it, so even chat.postMessage is safe to repeat) up to maxRateLimitRetries times.
import { systemClock, type Clock } from '../lib/clock.js';
import { TokenBucket, type BucketBudget } from '../lib/token-bucket.js';
import { SlackApprovalError, rateLimitRetryAfterMs } from './errors.js';

export type Priority = 'high' | 'normal' | 'low';
const RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

export interface RateBudget extends BucketBudget {
  /** 'channel': one bucket per channel (chat.postMessage); 'token' (default): one per token. */
  scope?: 'token' | 'channel';
}

// Slack documents tiers as minimums per method per workspace ("Tier 3: 50+ per minute").
// We keep perMinute + burst 10 % under the tier, so even a full burst followed by the sustained
// rate stays within the tier in any one-minute window, with room for calls sent a minute apart that
// arrive closer together (a busy event loop, the network). At exactly the tier (45 + 5 = 50) the
// e2e test's fake Slack, which counts arrivals in a sliding minute, answered 429s.
export const SLACK_RATE_BUDGETS: Readonly<Record<string, RateBudget>> = {
  // Special tier: about one message per second per channel, short bursts tolerated.
  'chat.postMessage': { perMinute: 60, burst: 1, scope: 'channel' },
  // Tier 3 (50+/min).
  'chat.update': { perMinute: 40, burst: 5 },
  'reactions.get': { perMinute: 40, burst: 5 },
  'conversations.info': { perMinute: 40, burst: 5 },
  // Only to find a message after a crash mid-post (operator recovery).
  'conversations.history': { perMinute: 40, burst: 5 },
  // Tier 4 (100+/min).
  'users.info': { perMinute: 80, burst: 10 },
  // Socket Mode buttons: telling a non-approver, and the reject-reason modal, whose trigger_id
  // expires 3 s after the click (so it must not wait behind a small burst).
  'chat.postEphemeral': { perMinute: 80, burst: 10 },
  'views.open': { perMinute: 80, burst: 10 },
  // Tier 2 (20+/min).
  'usergroups.users.list': { perMinute: 16, burst: 2 },
  // Special tier (generous); called rarely, so budgeted like Tier 3.
  'auth.test': { perMinute: 40, burst: 5 },
};
/** Methods not listed above get Tier 2, the common minimum. */
export const DEFAULT_RATE_BUDGET: RateBudget = { perMinute: 16, burst: 2 };

/** A token's spent budget: its buckets and its pause after a 429. */
export class RateLimitMemory {
  readonly buckets = new Map<string, TokenBucket>();
  pausedUntilMs = 0;
  /** When a call last started or was refused (for RateLimitMemories' eviction). */
  touchedMs = -Infinity;
}

/**
 * RateLimitMemory per key (API URL + token hash), for the life of a process. A memory untouched
 * for a minute and not paused is dropped: by then every bucket is full again (the slowest budget
 * refills in well under a minute), so a fresh one is the same budget. That keeps the map as small as
 * the set of tokens used in the last minute.
 */
export class RateLimitMemories {
  private readonly byKey = new Map<string, RateLimitMemory>();

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly idleMs = 60_000,
  ) {}

  get(key: string): RateLimitMemory {
    const now = this.clock.now();
    for (const [k, m] of this.byKey) if (now - m.touchedMs >= this.idleMs && now >= m.pausedUntilMs) this.byKey.delete(k);
    let m = this.byKey.get(key);
    if (!m) {
      m = new RateLimitMemory();
      m.touchedMs = now;
      this.byKey.set(key, m);
    }
    return m;
  }

  get size(): number {
    return this.byKey.size;
  }
}

export interface RateLimiterOptions {
  /** Overrides per method (merged over SLACK_RATE_BUDGETS). */
  budgets?: Readonly<Record<string, RateBudget>>;
  defaultBudget?: RateBudget;
  /** Calls in flight at once for the token. */
  maxConcurrent?: number;
  /** Queued calls beyond this are refused at once (retryable queue_full). */
  maxQueued?: number;
  /** How often one call is re-queued after a 429 before it fails with rate_limited. */
  maxRateLimitRetries?: number;
  clock?: Clock;
  /** Where the spent budget is kept; default: this limiter's own. */
  memory?: RateLimitMemory;
  /** Called on every 429 (for logs and metrics). */
  onRateLimited?: (info: { method: string; retryAfterMs: number; pausedUntil: number }) => void;
}

export interface RunOptions {
  priority?: Priority;
  /** The channel, for channel-scoped budgets (chat.postMessage). */
  channel?: string;
  /** Drops the call while it is still queued. */
  signal?: AbortSignal;
}

export interface RateLimiterStats {
  queued: number;
  inFlight: number;
  started: number;
  rateLimited: number;
  retried: number;
  pausedUntil: number;
}

interface Task {
  method: string;
  bucketKey: string;
  rank: number;
  seq: number;
  attempts: number;
  fn: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class SlackRateLimiter {
  private readonly clock: Clock;
  private readonly budgets: Readonly<Record<string, RateBudget>>;
  private readonly defaultBudget: RateBudget;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly maxRetries: number;
  private readonly memory: RateLimitMemory;
  /** Sorted by (rank, seq): a re-queued call keeps its place ahead of newer ones. */
  private readonly queue: Task[] = [];
  private inFlight = 0;
  private seq = 0;
  private timer: unknown;
  private timerAt = Infinity;
  private closed = false;
  private counters = { started: 0, rateLimited: 0, retried: 0 };

  constructor(private readonly options: RateLimiterOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.budgets = { ...SLACK_RATE_BUDGETS, ...options.budgets };
    this.defaultBudget = options.defaultBudget ?? DEFAULT_RATE_BUDGET;
    this.maxConcurrent = options.maxConcurrent ?? 8;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.maxRetries = options.maxRateLimitRetries ?? 3;
    this.memory = options.memory ?? new RateLimitMemory();
  }

  /** Runs `fn` (one Slack call of `method`) when the budget, the pause and the queue allow. */
  run<T>(method: string, fn: () => Promise<T>, opts: RunOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new SlackApprovalError('permanent', 'closed', method, `Slack ${method}: the Slack client is closed`));
    if (opts.signal?.aborted) return Promise.reject(this.abortError(method));
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new SlackApprovalError('retryable', 'queue_full', method, `Slack ${method}: ${this.queue.length} calls already queued for this token`),
      );
    }
    const budget = this.budgetFor(method);
    return new Promise<T>((resolve, reject) => {
      const task: Task = {
        method,
        bucketKey: budget.scope === 'channel' ? `${method}#${opts.channel ?? ''}` : method,
        rank: RANK[opts.priority ?? 'normal'],
        seq: ++this.seq,
        attempts: 0,
        fn,
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      if (opts.signal) {
        const signal = opts.signal;
        task.signal = signal;
        task.onAbort = () => {
          const i = this.queue.indexOf(task);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(this.abortError(method));
          }
        };
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      this.enqueue(task);
      this.pump();
    });
  }

  /** Until when every call for this token is held back after a 429 (0 when not paused). */
  get pausedUntil(): number {
    const until = this.memory.pausedUntilMs;
    return until > this.clock.now() ? until : 0;
  }

  stats(): RateLimiterStats {
    return { queued: this.queue.length, inFlight: this.inFlight, ...this.counters, pausedUntil: this.pausedUntil };
  }

  budgetFor(method: string): RateBudget {
    return this.budgets[method] ?? this.defaultBudget;
  }

  /** Refuses new calls and fails the queued ones; calls in flight finish. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    for (const t of this.queue.splice(0)) {
      this.detach(t);
      t.reject(new SlackApprovalError('permanent', 'closed', t.method, `Slack ${t.method}: the Slack client was closed`));
    }
  }

  private abortError(method: string): SlackApprovalError {
    return new SlackApprovalError('permanent', 'aborted', method, `Slack ${method}: call cancelled before it was sent`);
  }

  private enqueue(task: Task): void {
    // Binary search for the first element ordered after the task.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const q = this.queue[mid]!;
      if (q.rank < task.rank || (q.rank === task.rank && q.seq < task.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, task);
  }

  private bucket(task: Task, now: number): TokenBucket {
    let b = this.memory.buckets.get(task.bucketKey);
    if (!b) {
      b = new TokenBucket(this.budgetFor(task.method), now);
      this.memory.buckets.set(task.bucketKey, b);
    }
    return b;
  }

  private detach(task: Task): void {
    if (task.signal && task.onAbort) task.signal.removeEventListener('abort', task.onAbort);
  }

  /** Starts every queued call that may go now, in priority order; arms a timer for the rest. */
  private pump(): void {
    if (this.closed) return;
    const now = this.clock.now();
    if (now < this.memory.pausedUntilMs) {
      this.arm(this.memory.pausedUntilMs);
      return;
    }
    let wakeAt = Infinity;
    const exhausted = new Set<string>();
    for (let i = 0; i < this.queue.length && this.inFlight < this.maxConcurrent; ) {
      const task = this.queue[i]!;
      if (exhausted.has(task.bucketKey)) {
        i++;
        continue;
      }
      const b = this.bucket(task, now);
      if (!b.tryTake(now)) {
        // Later tasks of the same bucket wait too, so a low-priority poll never overtakes a post.
        exhausted.add(task.bucketKey);
        wakeAt = Math.min(wakeAt, b.readyAt(now));
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.memory.touchedMs = now;
      this.start(task);
    }
    if (this.queue.length > 0 && this.inFlight < this.maxConcurrent && wakeAt < Infinity) this.arm(wakeAt);
  }

  private start(task: Task): void {
    this.detach(task);
    this.inFlight++;
    this.counters.started++;
    let p: Promise<unknown>;
    try {
      p = task.fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (v) => {
        this.inFlight--;
        task.resolve(v);
        this.pump();
      },
      (e: unknown) => {
        this.inFlight--;
        const retryAfterMs = rateLimitRetryAfterMs(e);
        if (retryAfterMs !== undefined) this.onRateLimited(task, retryAfterMs, e);
        else task.reject(e);
        this.pump();
      },
    );
  }

  private onRateLimited(task: Task, retryAfterMs: number, e: unknown): void {
    const now = this.clock.now();
    this.counters.rateLimited++;
    const m = this.memory;
    m.touchedMs = now;
    m.pausedUntilMs = Math.max(m.pausedUntilMs, now + retryAfterMs);
    this.bucket(task, now).drain(m.pausedUntilMs);
    this.options.onRateLimited?.({ method: task.method, retryAfterMs, pausedUntil: m.pausedUntilMs });
    if (this.closed || task.signal?.aborted || task.attempts >= this.maxRetries) {
      task.reject(
        new SlackApprovalError(
          'retryable',
          'rate_limited',
          task.method,
          `Slack ${task.method}: rate limited (Retry-After ${retryAfterMs / 1000}s), gave up after ${task.attempts + 1} attempts`,
          retryAfterMs,
          { cause: e },
        ),
      );
      return;
    }
    task.attempts++;
    this.counters.retried++;
    if (task.signal && task.onAbort) task.signal.addEventListener('abort', task.onAbort, { once: true });
    this.enqueue(task);
  }

  private arm(at: number): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, at - this.clock.now());
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}

// Polls the reactions of many pending approvals and reports each one's end exactly once.
//
// Schedule per approval (nextPollDelay, pure):
//   - first poll 2 s after add(); then the interval grows ×1.5 per quiet poll up to 30 s
//     (2, 3, 4.5, 6.75, 10.1, 15.2, 22.8, 30, 30 … s): a quick decision is seen quickly, a long
//     wait costs 2 reactions.get calls per minute;
//   - any change in the reactions (someone reacted, even a non-approver) resets it to 2 s, since
//     a person is looking at the message right now;
//   - a failed poll backs off like a quiet one, and never sooner than a 429's Retry-After;
//   - polls never run past the expiry: the last one is scheduled at expiresAt itself. A decision
//     counts if its poll result arrives by expiresAt + 5 s (grace for a queued final poll);
//     after that the approval is reported expired.
// At most one poll per approval is in flight; the token's rate limiter decides when it runs, so
// many approvals share the budget (routine polls are 'low' priority, the final poll 'normal').
// The poller never talks to Slack about outcomes: the caller gets onResult and does chat.update.
import { backoffCeiling } from '../lib/backoff.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Decision, Tally } from './decision.js';
import { type SlackApprovalError, classifySlackError } from './errors.js';
import type { Priority } from './rate-limiter.js';

export interface PollResult {
  decision: Decision | null;
  /** Where the vote stands (k of N approvals), when anyone allowed or not voted. */
  tally?: Tally;
  /** Changes whenever anyone's reactions change. */
  fingerprint: string;
}

export interface PendingApproval {
  id: string;
  expiresAt: Date | number;
  poll(priority: Priority): Promise<PollResult>;
}

export type PollerResult =
  | { id: string; status: 'approved' | 'rejected'; by: string[]; at: number }
  | { id: string; status: 'expired'; at: number }
  | { id: string; status: 'failed'; error: SlackApprovalError; at: number };

export interface BackoffConfig {
  initialMs: number;
  factor: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = { initialMs: 2000, factor: 1.5, maxMs: 30_000 };
/**
 * Reactions of a message with buttons (clicks arrive over Socket Mode): a slow safety net for when
 * the socket was down (SlackApprovalClient.pendingWithButtons skips the reads while it stayed up).
 * 30 s ×2 up to 5 min: at most about 0.5 reads per approval per minute over its first 10 minutes, 0.2 after.
 */
export const SAFETY_BACKOFF: BackoffConfig = { initialMs: 30_000, factor: 2, maxMs: 300_000 };
export const DEFAULT_EXPIRY_GRACE_MS = 5000;

export type PollOutcome = { kind: 'quiet' } | { kind: 'activity' } | { kind: 'error'; retryAfterMs?: number };

/**
 * The step of the schedule after `step` (0 at add(), back to 0 on activity) and the delay before the
 * next poll. Pure. The interval is lib/backoff's ceiling without its jitter: this is a pacing
 * schedule, and the token's rate limiter already spreads the polls of many approvals.
 */
export function nextPollDelay(step: number, outcome: PollOutcome, cfg: BackoffConfig = DEFAULT_BACKOFF): { step: number; delayMs: number } {
  const policy = { baseMs: cfg.initialMs, maxMs: cfg.maxMs, factor: cfg.factor };
  if (outcome.kind === 'activity') return { step: 0, delayMs: backoffCeiling(0, policy) };
  const next = backoffCeiling(step + 1, policy);
  const delayMs = outcome.kind === 'error' ? Math.max(next, outcome.retryAfterMs ?? 0) : next;
  return { step: step + 1, delayMs };
}

export interface PollerOptions {
  onResult: (result: PollerResult) => void;
  /** Each failed poll that will be retried (for logs and metrics). */
  onPollError?: (id: string, error: SlackApprovalError) => void;
  backoff?: Partial<BackoffConfig>;
  expiryGraceMs?: number;
  clock?: Clock;
}

interface Entry {
  p: PendingApproval;
  expiresAt: number;
  /** Polls since add() or the last activity: the position in the schedule. */
  step: number;
  fingerprint: string | undefined;
  timer: unknown;
  inFlight: boolean;
  done: boolean;
}

export class ApprovalPoller {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly backoff: BackoffConfig;
  private readonly graceMs: number;
  private closed = false;

  constructor(private readonly opts: PollerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.graceMs = opts.expiryGraceMs ?? DEFAULT_EXPIRY_GRACE_MS;
  }

  /** Starts polling; false when the id is already pending or the poller is closed. */
  add(p: PendingApproval): boolean {
    if (this.closed || this.entries.has(p.id)) return false;
    const e: Entry = {
      p,
      expiresAt: typeof p.expiresAt === 'number' ? p.expiresAt : p.expiresAt.getTime(),
      step: 0,
      fingerprint: undefined,
      timer: undefined,
      inFlight: false,
      done: false,
    };
    this.entries.set(p.id, e);
    this.schedule(e, this.backoff.initialMs);
    return true;
  }

  /** Stops polling (decided elsewhere, cancelled); a poll in flight is ignored. */
  remove(id: string): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    this.stop(e);
    return true;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.closed = true;
    for (const e of [...this.entries.values()]) this.stop(e);
  }

  private stop(e: Entry): void {
    e.done = true;
    if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    e.timer = undefined;
    this.entries.delete(e.p.id);
  }

  private report(e: Entry, result: PollerResult): void {
    this.stop(e);
    try {
      this.opts.onResult(result);
    } catch {
      // A throwing callback must not take the poller (and every other approval) down.
    }
  }

  /** Next poll after `delayMs`, but never later than the expiry (the final poll) or the grace end. */
  private schedule(e: Entry, delayMs: number): void {
    const now = this.clock.now();
    const at = now < e.expiresAt ? Math.min(now + delayMs, e.expiresAt) : Math.min(now + delayMs, e.expiresAt + this.graceMs);
    e.timer = this.clock.setTimeout(() => {
      e.timer = undefined;
      this.tick(e);
    }, at - now);
  }

  private tick(e: Entry): void {
    if (e.done || e.inFlight) return;
    const now = this.clock.now();
    if (now >= e.expiresAt + this.graceMs) return this.report(e, { id: e.p.id, status: 'expired', at: now });
    const final = now >= e.expiresAt;
    e.inFlight = true;
    let pending: Promise<PollResult>;
    try {
      pending = e.p.poll(final ? 'normal' : 'low');
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (r) => this.onPolled(e, r, final),
      (err: unknown) => this.onFailed(e, err),
    );
  }

  private onPolled(e: Entry, r: PollResult, final: boolean): void {
    e.inFlight = false;
    if (e.done) return;
    const now = this.clock.now();
    if (r.decision && now <= e.expiresAt + this.graceMs) {
      return this.report(e, { id: e.p.id, status: r.decision.outcome, by: r.decision.by, at: now });
    }
    if (final || now >= e.expiresAt) return this.report(e, { id: e.p.id, status: 'expired', at: now });
    const activity = e.fingerprint !== undefined && e.fingerprint !== r.fingerprint;
    e.fingerprint = r.fingerprint;
    const next = nextPollDelay(e.step, { kind: activity ? 'activity' : 'quiet' }, this.backoff);
    e.step = next.step;
    this.schedule(e, next.delayMs);
  }

  private onFailed(e: Entry, err: unknown): void {
    e.inFlight = false;
    if (e.done) return;
    const error = classifySlackError('reactions.get', err);
    const now = this.clock.now();
    if (!error.retryable) return this.report(e, { id: e.p.id, status: 'failed', error, at: now });
    try {
      this.opts.onPollError?.(e.p.id, error);
    } catch {
      // see report()
    }
    const next = nextPollDelay(e.step, { kind: 'error', retryAfterMs: error.retryAfterMs }, this.backoff);
    e.step = next.step;
    this.schedule(e, next.delayMs);
  }
}

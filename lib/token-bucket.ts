// A token bucket with explicit time: `burst` calls at once, then `perMinute` sustained. Pure
// arithmetic, no timers and no clock of its own, so every user passes its time (Slack's limiter a
// Clock, the sidecar a monotonic one, tests a manual one). Times may be fractional milliseconds.

export interface BucketBudget {
  /** Sustained calls per minute. */
  perMinute: number;
  /** Calls allowed at once after an idle period (bucket size). */
  burst: number;
}

export class TokenBucket {
  private tokens: number;
  private at: number;
  private notBefore = -Infinity;
  private readonly perMs: number;

  /** `tokens`: what is left at `now` (a new budget for a bucket in use: capped at the new burst); default full. */
  constructor(
    readonly budget: BucketBudget,
    now: number,
    tokens = budget.burst,
  ) {
    if (!(budget.perMinute > 0) || !(budget.burst >= 1)) throw new Error(`invalid rate budget ${JSON.stringify(budget)}`);
    this.tokens = Math.min(budget.burst, Math.max(0, tokens));
    this.at = now;
    this.perMs = budget.perMinute / 60_000;
  }

  private refill(now: number): void {
    if (now <= this.at) return;
    this.tokens = Math.min(this.budget.burst, this.tokens + (now - this.at) * this.perMs);
    this.at = now;
  }

  /** Takes one call's worth if available. */
  tryTake(now: number): boolean {
    if (now < this.notBefore) return false;
    this.refill(now);
    // The epsilon absorbs float error so readyAt() and tryTake() agree.
    if (this.tokens < 1 - 1e-9) return false;
    this.tokens = Math.max(0, this.tokens - 1);
    return true;
  }

  /** The earliest time tryTake can succeed (≥ now). */
  readyAt(now: number): number {
    if (now < this.notBefore) return this.notBefore;
    this.refill(now);
    if (this.tokens >= 1 - 1e-9) return now;
    return Math.max(now, this.at) + Math.ceil((1 - this.tokens) / this.perMs);
  }

  /** After a 429: nothing before `until`, then one call, then the sustained rate (no burst). */
  drain(until: number): void {
    this.notBefore = Math.max(this.notBefore, until);
    this.tokens = 1;
    this.at = Math.max(this.at, this.notBefore);
  }

  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }
}

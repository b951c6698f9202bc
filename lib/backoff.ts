// Exponential backoff with one jitter policy for everything that retries: "equal jitter".
//
// Attempt n waits a random time in [ceiling/2, ceiling], where the ceiling grows from `baseMs` by
// `factor` per attempt up to `maxMs`. Why equal jitter and not full jitter ([0, ceiling]): the
// random half spreads a fleet of sidecars or operator replicas that failed together (an API server
// or Slack restart) so they do not come back in lockstep, and the fixed half keeps any one of them
// from retrying at once in a tight loop, which full jitter allows on every attempt.

export interface BackoffPolicy {
  /** The ceiling of the first attempt (attempt 0), in milliseconds. */
  baseMs: number;
  /** No wait is ever longer. */
  maxMs: number;
  /** Growth of the ceiling per attempt (default 2). */
  factor?: number;
}

/** The ceiling for `attempt` (0-based): base × factor^attempt, capped at maxMs. No jitter. */
export function backoffCeiling(attempt: number, p: BackoffPolicy): number {
  const factor = p.factor ?? 2;
  if (!(p.baseMs >= 0) || !(p.maxMs >= 0) || !(factor >= 1)) throw new RangeError(`invalid backoff policy ${JSON.stringify(p)}`);
  const n = Math.max(0, Math.floor(attempt));
  if (p.baseMs === 0 || factor === 1 || p.baseMs >= p.maxMs) return Math.min(p.maxMs, p.baseMs);
  // Past the cap further growth changes nothing, and a huge exponent would overflow to Infinity.
  const toCap = Math.ceil(Math.log(p.maxMs / p.baseMs) / Math.log(factor));
  return Math.min(p.maxMs, p.baseMs * factor ** Math.min(n, toCap));
}

/** The wait before retry `attempt` (0-based): equal jitter in [ceiling/2, ceiling], whole milliseconds. */
export function backoffDelay(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(attempt, p);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** The attempt counter for a retry loop: next() after each failure, reset() after a success. */
export class Backoff {
  private n = 0;
  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** The wait before the next retry; counts the attempt. */
  next(): number {
    return backoffDelay(this.n++, this.policy, this.random);
  }

  reset(): void {
    this.n = 0;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.n;
  }
}

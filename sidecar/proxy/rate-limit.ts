// Rate limits (config `rateLimits`): token buckets for the calls gates 1–3 forward. One sidecar is
// one workload, so the buckets are this process's, keyed by (limit, source, target). Every matching
// limit applies: a call is refused when any of its buckets is empty, and takes a token from each
// only when none is. The bucket arithmetic is the approvals' and Slack's (slack/rate-limiter.ts).
// Decision only, with time passed in: no socket, no metric (the caller counts refusals).
import type { RateLimit } from '../../api/config.js';
import { compileGlobs, type Matcher } from '../../api/glob.js';
import type { Operation, TargetKind } from '../../policy/gates/operation.js';
import { TokenBucket, type RateBudget } from '../../slack/rate-limiter.js';

/** The methods rate limits apply to, and the kind of target each names. */
const LIMITED: Readonly<Record<string, TargetKind>> = { 'tools/call': 'tool', 'resources/read': 'resource', 'prompts/get': 'prompt' };

export interface CompiledRateLimit {
  /** Its `name`, else `rateLimits[<index>]`: the `rule` of the error and of the metric. */
  label: string;
  source: Matcher;
  /** null: any of the limited methods. */
  kind: TargetKind | null;
  target: Matcher;
  budget: RateBudget;
}

export function compileRateLimits(limits: readonly RateLimit[]): CompiledRateLimit[] {
  return limits.map((l, i) => {
    const kind: TargetKind | null =
      l.match.tool !== undefined ? 'tool' : l.match.resource !== undefined ? 'resource' : l.match.prompt !== undefined ? 'prompt' : null;
    return {
      label: l.name ?? `rateLimits[${i}]`,
      source: compileGlobs(l.match.source),
      kind,
      target: compileGlobs(kind === null ? undefined : l.match[kind]),
      budget: { perMinute: l.perMinute, burst: l.burst },
    };
  });
}

export interface RateRefusal {
  rule: string;
  /** When the call could succeed: the latest of the empty buckets' refill times. */
  retryAfterMs: number;
  reason: string;
}

/** Buckets kept at once; beyond it full buckets are dropped, then each limit's new keys share one. */
export const DEFAULT_MAX_BUCKETS = 10_000;

export interface RateLimiterOptions {
  maxBuckets?: number;
  /** The number of buckets after it changed (a gauge). */
  onBuckets?: (n: number) => void;
}

export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly max: number;

  constructor(private readonly o: RateLimiterOptions = {}) {
    this.max = o.maxBuckets ?? DEFAULT_MAX_BUCKETS;
  }

  get size(): number {
    return this.buckets.size;
  }

  /**
   * Whether `op` may go upstream now; when it may, its tokens are taken. Only tools/call,
   * resources/read and prompts/get are limited; anything else (and a call no limit matches) passes.
   */
  take(limits: readonly CompiledRateLimit[], op: Operation, now: number): RateRefusal | null {
    if (limits.length === 0 || !op.target) return null;
    const kind = LIMITED[op.method];
    if (kind === undefined || kind !== op.target.kind) return null;
    const matched: [CompiledRateLimit, TokenBucket][] = [];
    let refusal: RateRefusal | null = null;
    for (const l of limits) {
      if ((l.kind !== null && l.kind !== kind) || !l.source(op.source) || !l.target(op.target.name)) continue;
      const b = this.bucket(l, op.source, kind, op.target.name, now);
      const at = b.readyAt(now);
      if (at > now && (refusal === null || at - now > refusal.retryAfterMs)) {
        refusal = {
          rule: l.label,
          retryAfterMs: at - now,
          reason: `${l.label} allows ${l.budget.perMinute} calls per minute (burst ${l.budget.burst}) for ${kind} "${op.target.name}" of source "${op.source}" in this workload; retry in ${at - now} ms`,
        };
      }
      matched.push([l, b]);
    }
    if (refusal) return refusal;
    for (const [, b] of matched) b.tryTake(now);
    return null;
  }

  private bucket(l: CompiledRateLimit, source: string, kind: TargetKind, name: string, now: number): TokenBucket {
    // JSON keeps the parts apart whatever characters the names hold.
    const key = JSON.stringify([l.label, source, kind, name]);
    let b = this.buckets.get(key);
    // A reload that changed the limit starts its buckets afresh (full).
    if (b && !sameBudget(b.budget, l.budget)) b = undefined;
    if (b) return b;
    if (this.buckets.size >= this.max) {
      for (const [k, v] of this.buckets) if (v.available(now) >= v.budget.burst - 1e-9) this.buckets.delete(k);
      if (this.buckets.size >= this.max) {
        // Still full of busy buckets: this limit's new keys share one, so an agent calling ever new
        // names cannot get fresh bursts nor push out a busy bucket (which would refill it).
        const shared = JSON.stringify([l.label, '*overflow*']);
        b = this.buckets.get(shared);
        if (b && sameBudget(b.budget, l.budget)) return b;
        b = new TokenBucket(l.budget, now);
        this.buckets.set(shared, b);
        this.o.onBuckets?.(this.buckets.size);
        return b;
      }
    }
    b = new TokenBucket(l.budget, now);
    this.buckets.set(key, b);
    this.o.onBuckets?.(this.buckets.size);
    return b;
  }
}

function sameBudget(a: RateBudget, b: RateBudget): boolean {
  return a.perMinute === b.perMinute && a.burst === b.burst;
}

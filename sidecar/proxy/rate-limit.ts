// Rate limits (config `rateLimits`): token buckets for the calls gates 1–3 forward. One sidecar is
// one workload, so the buckets are this process's. Every matching limit applies: a call is refused
// when any of its buckets is empty, and takes a token from each only when none is.
//
// A limit protects the upstream from load, so by default (`per: limit`) it has ONE bucket per source
// that every call it matches takes from, whatever the name: varying tool names or resource query
// strings gets no extra tokens. `per: target` adds a bucket per tool, resource (URI without query)
// or prompt name for per-tool budgets; those cannot stop an agent that invents names (each new name
// is a fresh bucket), which is why they are bounded and why the limit-wide bucket is the protection.
//
// A2A calls (issue 13) are counted only by limits that name a `method` or a `skill` (so a limit
// written for MCP does not start counting agents' calls); those count no MCP call. Methods match
// as in rules (either generation's spelling); `per: target` buckets by skill, or by method when the
// call names no skill.
// Decision only, with a monotonic time passed in or read: no socket, no metric (the caller counts).
import type { RateLimit } from '../../api/config.js';
import { compileGlobs, type Matcher } from '../../api/glob.js';
import { TokenBucket, type BucketBudget } from '../../lib/token-bucket.js';
import { a2aAliases } from '../../policy/gates/a2a-methods.js';
import type { Operation, TargetKind } from '../../policy/gates/operation.js';

/** The methods rate limits apply to, and the kind of target each names. */
const LIMITED: Readonly<Record<string, TargetKind>> = { 'tools/call': 'tool', 'resources/read': 'resource', 'prompts/get': 'prompt' };

export interface CompiledRateLimit {
  /** Its `name`, else `rateLimits[<index>]`: the `rule` of the error and of the metric. */
  label: string;
  /** Whether it counts A2A calls (it names a method or a skill) instead of MCP ones. */
  a2a: boolean;
  source: Matcher;
  /** A2A: the canonical method (matched in either spelling); always true for MCP limits. */
  method: Matcher;
  /** null: any of the limited methods. */
  kind: TargetKind | null;
  target: Matcher;
  budget: BucketBudget;
  /** 'limit': one bucket per source for all it matches; 'target': one per source and target name. */
  per: 'limit' | 'target';
  /**
   * Whether it matches, and buckets, whatever the target's name: no tool/resource/prompt in `match`
   * (or only "*") and one bucket per source. Only these also charge calls to hidden targets: their
   * answer is the same for any name, so it cannot tell a hidden target from an unknown one.
   */
  nameBlind: boolean;
}

export function compileRateLimits(limits: readonly RateLimit[]): CompiledRateLimit[] {
  return limits.map((l, i) => {
    const m = l.match;
    const kind: TargetKind | null =
      m.tool !== undefined ? 'tool' : m.resource !== undefined ? 'resource' : m.prompt !== undefined ? 'prompt' : m.skill !== undefined ? 'skill' : null;
    const methods = m.method === undefined ? null : compileGlobs(m.method);
    const names = kind === null ? undefined : m[kind];
    const per = l.per ?? 'limit';
    return {
      label: l.name ?? `rateLimits[${i}]`,
      a2a: m.method !== undefined || m.skill !== undefined,
      source: compileGlobs(m.source),
      method: methods === null ? () => true : (method) => methods(method) || a2aAliases(method).some(methods),
      kind,
      target: compileGlobs(names),
      budget: { perMinute: l.perMinute, burst: l.burst },
      per,
      nameBlind: per === 'limit' && (names === undefined || [names].flat().every((n) => n === '*')),
    };
  });
}

/**
 * The name a per-target bucket is kept under: a resource's canonical URI without its query (and
 * fragment, which canonical URIs never have), so `db://x/orders?n=1`, `?n=2`… share one bucket.
 */
export function targetKey(kind: TargetKind, name: string): string {
  if (kind !== 'resource') return name;
  const end = name.search(/[?#]/);
  return end < 0 ? name : name.slice(0, end);
}

export interface RateRefusal {
  rule: string;
  /** When the call could succeed: the latest of the empty buckets' refill times (whole ms, ≥ 1). */
  retryAfterMs: number;
  reason: string;
}

/** Per-target buckets kept at once; beyond it full ones are dropped, then each limit's new names share one. */
export const DEFAULT_MAX_BUCKETS = 10_000;

export interface RateLimiterOptions {
  /** The bound on per-target buckets (limit-wide ones are one per limit and source, so bounded by the config). */
  maxBuckets?: number;
  /** The number of buckets after it changed (a gauge). */
  onBuckets?: (n: number) => void;
  /** Milliseconds on a monotonic clock (default performance.now()): a wall-clock step must not refill or drain buckets. */
  now?: () => number;
}

export class RateLimiter {
  /** `per: limit` buckets, keyed (limit, source). */
  private readonly wide = new Map<string, TokenBucket>();
  /** `per: target` buckets, keyed (limit, source, kind, name); bounded. */
  private readonly perTarget = new Map<string, TokenBucket>();
  private readonly max: number;
  private readonly now: () => number;

  constructor(private readonly o: RateLimiterOptions = {}) {
    this.max = o.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    this.now = o.now ?? (() => performance.now());
  }

  get size(): number {
    return this.wide.size + this.perTarget.size;
  }

  /**
   * Whether `op` may go upstream now; when it may, its tokens are taken. Only tools/call,
   * resources/read and prompts/get are limited; anything else (and a call no limit matches) passes.
   */
  take(limits: readonly CompiledRateLimit[], op: Operation, now: number = this.now(), nameBlindOnly = false): RateRefusal | null {
    if (limits.length === 0) return null;
    const call = limitedCall(op);
    if (!call) return null;
    const { kind } = call;
    const matched: TokenBucket[] = [];
    let refusal: RateRefusal | null = null;
    for (const l of limits) {
      if (l.a2a !== call.a2a || (nameBlindOnly && !l.nameBlind) || (l.kind !== null && l.kind !== kind)) continue;
      if (!l.source(op.source) || !l.method(op.method) || !l.target(call.name)) continue;
      const name = kind === 'method' ? call.name : targetKey(kind, call.name);
      const b = l.per === 'limit' ? this.wideBucket(l, op.source, now) : this.targetBucket(l, op.source, kind, name, now);
      const wait = Math.ceil(b.readyAt(now) - now);
      if (wait > 0 && (refusal === null || wait > refusal.retryAfterMs)) {
        const what = l.per === 'limit' ? `for all the calls it matches of source "${op.source}"` : `for ${kind} "${name}" of source "${op.source}"`;
        refusal = {
          rule: l.label,
          retryAfterMs: wait,
          reason: `${l.label} allows ${l.budget.perMinute} calls per minute (burst ${l.budget.burst}) ${what} in this workload; retry in ${wait} ms`,
        };
      }
      matched.push(b);
    }
    if (refusal) return refusal;
    for (const b of matched) b.tryTake(now);
    return null;
  }

  private wideBucket(l: CompiledRateLimit, source: string, now: number): TokenBucket {
    const key = JSON.stringify([l.label, source]);
    let b = this.wide.get(key);
    // A reload that changed the limit starts its buckets afresh (full).
    if (b && sameBudget(b.budget, l.budget)) return b;
    b = new TokenBucket(l.budget, now);
    this.wide.set(key, b);
    this.o.onBuckets?.(this.size);
    return b;
  }

  private targetBucket(l: CompiledRateLimit, source: string, kind: TargetKind | 'method', name: string, now: number): TokenBucket {
    // JSON keeps the parts apart whatever characters the names hold.
    const key = JSON.stringify([l.label, source, kind, name]);
    let b = this.perTarget.get(key);
    if (b && !sameBudget(b.budget, l.budget)) b = undefined;
    if (b) return b;
    if (this.perTarget.size >= this.max) {
      // A full bucket dropped and made again is the same full bucket: no budget is lost or gained.
      for (const [k, v] of this.perTarget) if (v.available(now) >= v.budget.burst - 1e-9) this.perTarget.delete(k);
      if (this.perTarget.size >= this.max) {
        // Still full of busy buckets: this limit's new names share one, so they cannot push out a
        // busy bucket (which would refill it).
        const shared = JSON.stringify([l.label, '*overflow*']);
        b = this.perTarget.get(shared);
        if (b && sameBudget(b.budget, l.budget)) return b;
        b = new TokenBucket(l.budget, now);
        this.perTarget.set(shared, b);
        this.o.onBuckets?.(this.size);
        return b;
      }
    }
    b = new TokenBucket(l.budget, now);
    this.perTarget.set(key, b);
    this.o.onBuckets?.(this.size);
    return b;
  }
}

/**
 * What a limit can count of this call: MCP tools/call, resources/read and prompts/get by their
 * target; A2A calls by skill when they name one, else by method. null: no limit counts it.
 */
function limitedCall(op: Operation): { a2a: boolean; kind: TargetKind | 'method'; name: string } | null {
  if (op.a2a) return op.target?.kind === 'skill' ? { a2a: true, kind: 'skill', name: op.target.name } : { a2a: true, kind: 'method', name: op.method };
  if (!op.target) return null;
  const kind = LIMITED[op.method];
  return kind !== undefined && kind === op.target.kind ? { a2a: false, kind, name: op.target.name } : null;
}

function sameBudget(a: BucketBudget, b: BucketBudget): boolean {
  return a.perMinute === b.perMinute && a.burst === b.burst;
}

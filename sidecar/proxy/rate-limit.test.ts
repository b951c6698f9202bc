// Rate limits without a socket: bucket arithmetic on a manual clock, which limits match, one bucket
// per limit whatever the name (per: limit) or one per name (per: target), all matching limits
// applying at once, reloads, the bound on per-target buckets, and the slowest rate allowed.
import { PolicyDocumentSchema } from '../../api/config.js';
import { noFacts } from '../../policy/gates/a2a-operation.js';
import type { Operation } from '../../policy/gates/operation.js';
import { ManualClock } from '../../test/support/manual-clock.js';
import { compileRateLimits, RateLimiter, targetKey } from './rate-limit.js';

const limits = (rateLimits: unknown[]) => compileRateLimits(PolicyDocumentSchema.parse({ rateLimits }).rateLimits);
const call = (tool: string, source = 'gh'): Operation => ({
  source,
  method: 'tools/call',
  target: { kind: 'tool', name: tool },
  arguments: {},
  governed: true,
});
const read = (uri: string, source = 'gh'): Operation => ({
  source,
  method: 'resources/read',
  target: { kind: 'resource', name: uri },
  arguments: undefined,
  governed: true,
});

describe('RateLimiter', () => {
  test('burst at once, then perMinute sustained; retryAfterMs is when the next token is there', async () => {
    const clock = new ManualClock();
    const l = limits([{ name: 'slow', match: { tool: 'search' }, perMinute: 30, burst: 2 }]);
    const rl = new RateLimiter();
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    const r = rl.take(l, call('search'), clock.now());
    expect(r).toMatchObject({ rule: 'slow', retryAfterMs: 2000 });
    expect(r!.reason).toBe('slow allows 30 calls per minute (burst 2) for all the calls it matches of source "gh" in this workload; retry in 2000 ms');
    await clock.advance(1500);
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ retryAfterMs: 500 });
    await clock.advance(500);
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    expect(rl.take(l, call('search'), clock.now())).not.toBeNull();
    // A long idle refills to burst, never beyond.
    await clock.advance(3_600_000);
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    expect(rl.take(l, call('search'), clock.now())).not.toBeNull();
  });

  test('per: limit (the default): one bucket per source, whatever the tool name; unmatched and other methods pass', () => {
    const l = limits([{ match: { source: 'gh', tool: 'search*' }, perMinute: 1, burst: 2 }]);
    const rl = new RateLimiter();
    expect(rl.take(l, call('search'), 0)).toBeNull();
    expect(rl.take(l, call('searchCode'), 0)).toBeNull();
    // Another name gets nothing more: the bucket is the limit's.
    for (const t of ['search', 'searchCode', 'search-1', 'search-2', 'searchX'])
      expect(rl.take(l, call(t), 0)).toMatchObject({ rule: 'rateLimits[0]', retryAfterMs: 60_000 });
    expect(rl.take(l, call('search', 'other'), 0)).toBeNull();
    expect(rl.take(l, call('search', 'other'), 0)).toBeNull();
    expect(rl.take(l, call('echo'), 0)).toBeNull();
    expect(rl.take(l, call('echo'), 0)).toBeNull();
    const list: Operation = { source: 'gh', method: 'tools/list', target: null, arguments: undefined, governed: false };
    expect(rl.take(l, list, 0)).toBeNull();
    // One bucket in all, however many names were tried.
    expect(rl.size).toBe(1);
  });

  test('per: limit over resource URIs: query strings get no bucket of their own', () => {
    const l = limits([{ name: 'orders', match: { resource: 'db://prod/*' }, perMinute: 10, burst: 3 }]);
    const rl = new RateLimiter();
    const answers = Array.from({ length: 1000 }, (_, i) => rl.take(l, read(`db://prod/orders?n=${i}`), 0));
    expect(answers.filter((a) => a === null)).toHaveLength(3);
    expect(answers[3]).toMatchObject({ rule: 'orders', retryAfterMs: 6000 });
    expect(answers[3]!.reason).toBe(
      'orders allows 10 calls per minute (burst 3) for all the calls it matches of source "gh" in this workload; retry in 6000 ms',
    );
  });

  test('per: target: one bucket per source and tool; other tools are unaffected', () => {
    const l = limits([{ match: { source: 'gh', tool: 'search*' }, per: 'target', perMinute: 1, burst: 1 }]);
    const rl = new RateLimiter();
    expect(rl.take(l, call('search'), 0)).toBeNull();
    expect(rl.take(l, call('search'), 0)).toMatchObject({ rule: 'rateLimits[0]', retryAfterMs: 60_000 });
    expect(rl.take(l, call('search'), 0)!.reason).toContain('for tool "search" of source "gh"');
    expect(rl.take(l, call('searchCode'), 0)).toBeNull();
    // Another source is not matched by this limit.
    expect(rl.take(l, call('search', 'other'), 0)).toBeNull();
    expect(rl.take(l, call('search', 'other'), 0)).toBeNull();
  });

  test('per: target keys a resource by its URI without query and fragment', () => {
    expect(targetKey('resource', 'db://prod/orders?n=1')).toBe('db://prod/orders');
    expect(targetKey('resource', 'db://prod/orders#x')).toBe('db://prod/orders');
    expect(targetKey('resource', 'db://prod/orders')).toBe('db://prod/orders');
    // Tool and prompt names are names, not URIs: kept whole.
    expect(targetKey('tool', 'a?b')).toBe('a?b');
    const l = limits([{ name: 'r', match: { resource: 'db://prod/*' }, per: 'target', perMinute: 1, burst: 1 }]);
    const rl = new RateLimiter();
    expect(rl.take(l, read('db://prod/orders?n=1'), 0)).toBeNull();
    const r = rl.take(l, read('db://prod/orders?n=2'), 0);
    expect(r).toMatchObject({ rule: 'r' });
    expect(r!.reason).toContain('for resource "db://prod/orders" of source "gh"');
    expect(rl.take(l, read('db://prod/customers?n=2'), 0)).toBeNull();
  });

  test('per: target and a limit-wide limit together: names are isolated, and the total still holds', () => {
    const l = limits([
      { name: 'each', match: { tool: '*' }, per: 'target', perMinute: 1, burst: 2 },
      { name: 'total', match: { tool: '*' }, perMinute: 1, burst: 5 },
    ]);
    const rl = new RateLimiter();
    const names = Array.from({ length: 50 }, (_, i) => `t${i}`);
    const passed = names.flatMap((t) => [t, t]).filter((t) => rl.take(l, call(t), 0) === null);
    expect(passed).toEqual(['t0', 't0', 't1', 't1', 't2']);
    expect(rl.take(l, call('t2'), 0)).toMatchObject({ rule: 'total' });
  });

  test('a limit without a target is one bucket for tools, resources and prompts together; a tool limit only counts tools', () => {
    const l = limits([
      { name: 'any', perMinute: 60, burst: 2 },
      { name: 'tools', match: { tool: '*' }, perMinute: 60, burst: 1 },
    ]);
    const rl = new RateLimiter();
    const prompt: Operation = { source: 'gh', method: 'prompts/get', target: { kind: 'prompt', name: 'p' }, arguments: {}, governed: true };
    expect(rl.take(l, read('file:///a'), 0)).toBeNull();
    expect(rl.take(l, prompt, 0)).toBeNull();
    expect(rl.take(l, prompt, 0)).toMatchObject({ rule: 'any' });
    expect(rl.take(l, read('file:///b'), 0)).toMatchObject({ rule: 'any' });
    expect(rl.take(l, call('t'), 0)).toMatchObject({ rule: 'any' });
    // resources/subscribe names a resource but is not limited.
    expect(rl.take(l, { ...read('file:///a'), method: 'resources/subscribe' }, 0)).toBeNull();
    // After a second: one token each; the tool limit took none while "any" refused.
    expect(rl.take(l, call('t'), 1000)).toBeNull();
    expect(rl.take(l, call('u'), 1000)).toMatchObject({ rule: 'any' });
  });

  test('every matching limit applies; a refused call takes no token from any; the longest wait is reported', async () => {
    const clock = new ManualClock();
    const l = limits([
      { name: 'tools', match: { tool: '*' }, perMinute: 60, burst: 3 },
      { name: 'search', match: { tool: 'search' }, perMinute: 6, burst: 1 },
    ]);
    const rl = new RateLimiter();
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    // tools has 2 left, search none: refused by search, and tools keeps its tokens.
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ rule: 'search', retryAfterMs: 10_000 });
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ rule: 'search' });
    expect(rl.take(l, call('echo'), clock.now())).toBeNull();
    expect(rl.take(l, call('echo'), clock.now())).toBeNull();
    expect(rl.take(l, call('echo'), clock.now())).toMatchObject({ rule: 'tools', retryAfterMs: 1000 });
    // Both empty: the longer wait is reported.
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ rule: 'search', retryAfterMs: 10_000 });
    await clock.advance(10_000);
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    // tools was full again after 10 s; search is empty once more.
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ rule: 'search' });
  });

  test('a reload that changes a limit starts its buckets full; an unchanged one keeps them', () => {
    const rl = new RateLimiter();
    const a = limits([{ name: 'x', perMinute: 1, burst: 1 }]);
    expect(rl.take(a, call('t'), 0)).toBeNull();
    expect(rl.take(limits([{ name: 'x', perMinute: 1, burst: 1 }]), call('t'), 0)).not.toBeNull();
    expect(rl.take(limits([{ name: 'x', perMinute: 2, burst: 1 }]), call('t'), 0)).toBeNull();
  });

  test('per-target buckets are bounded: full ones are dropped first, then new names share one bucket per limit', () => {
    const counts: number[] = [];
    const rl = new RateLimiter({ maxBuckets: 3, onBuckets: (n) => counts.push(n) });
    const l = limits([{ name: 'x', match: { tool: '*' }, per: 'target', perMinute: 1, burst: 1 }]);
    for (const t of ['a', 'b', 'c']) expect(rl.take(l, call(t), 0)).toBeNull();
    expect(rl.size).toBe(3);
    // All three are busy (empty): new names share the overflow bucket, one call in all.
    expect(rl.take(l, call('d'), 0)).toBeNull();
    expect(rl.take(l, call('e'), 0)).toMatchObject({ rule: 'x' });
    expect(rl.take(l, call('f'), 0)).toMatchObject({ rule: 'x' });
    // A busy bucket was not pushed out (which would have refilled it).
    expect(rl.take(l, call('a'), 0)).toMatchObject({ rule: 'x' });
    expect(rl.size).toBe(4);
    // A minute later all are full again: they are dropped to make room for a name of its own.
    expect(rl.take(l, call('g'), 60_000)).toBeNull();
    expect(rl.size).toBe(1);
    expect(counts.at(-1)).toBe(1);
  });

  test('limit-wide buckets are outside the bound and never share the overflow bucket', () => {
    const rl = new RateLimiter({ maxBuckets: 1 });
    const l = limits([
      { name: 'each', match: { tool: '*' }, per: 'target', perMinute: 1, burst: 1 },
      { name: 'total', match: { tool: '*' }, perMinute: 1, burst: 5 },
    ]);
    expect(rl.take(l, call('a'), 0)).toBeNull();
    // 'a' is busy and the bound reached: 'b' takes from each's overflow bucket; total is its own.
    expect(rl.take(l, call('b'), 0)).toBeNull();
    expect(rl.size).toBe(3);
    expect(rl.take(l, call('c'), 0)).toMatchObject({ rule: 'each' });
    // total lost nothing to the refusal: 3 of its 5 are left for new targets once each refills.
    const l2 = limits([{ name: 'total', match: { tool: '*' }, perMinute: 1, burst: 5 }]);
    for (const t of ['x', 'y', 'z']) expect(rl.take(l2, call(t), 0)).toBeNull();
    expect(rl.take(l2, call('w'), 0)).toMatchObject({ rule: 'total' });
  });
});

describe('RateLimiter time', () => {
  test('the slowest rate (0.01 per minute) refuses with a finite wait of 100 minutes', () => {
    const l = limits([{ name: 'slowest', perMinute: 0.01, burst: 1 }]);
    const rl = new RateLimiter();
    expect(rl.take(l, call('t'), 0)).toBeNull();
    expect(rl.take(l, call('t'), 0)).toMatchObject({ rule: 'slowest', retryAfterMs: 6_000_000 });
    expect(rl.take(l, call('t'), 5_999_999)).toMatchObject({ retryAfterMs: 1 });
    expect(rl.take(l, call('t'), 6_000_000)).toBeNull();
  });

  test('reads a monotonic clock by default; fractional times give whole, never early, waits', () => {
    let t = 1000.3;
    const rl = new RateLimiter({ now: () => t });
    const l = limits([{ name: 'x', perMinute: 60, burst: 1 }]);
    expect(rl.take(l, call('a'))).toBeNull();
    const r = rl.take(l, call('a'))!;
    expect(Number.isInteger(r.retryAfterMs)).toBe(true);
    expect(r.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(r.retryAfterMs).toBeLessThanOrEqual(1001);
    t += r.retryAfterMs;
    expect(rl.take(l, call('a'))).toBeNull();
    // The default clock is performance.now(), not Date.now(): a wall-clock step changes nothing.
    const def = new RateLimiter();
    expect(def.take(l, call('a'))).toBeNull();
    const realNow = Date.now;
    Date.now = () => realNow() + 3_600_000;
    try {
      expect(def.take(l, call('a'))).toMatchObject({ rule: 'x' });
    } finally {
      Date.now = realNow;
    }
  });
});

describe('rateLimits in the config', () => {
  test('defaults to none; perMinute (≥ 0.01) and burst are required; per is limit or target, unset by default; one target kind; names unique', () => {
    expect(PolicyDocumentSchema.parse({}).rateLimits).toEqual([]);
    const bad = (rateLimits: unknown) => {
      const r = PolicyDocumentSchema.safeParse({ rateLimits });
      if (r.success) throw new Error('expected an error');
      return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    };
    expect(bad([{ perMinute: 10 }])).toContain('rateLimits.0.burst');
    expect(bad([{ perMinute: 0, burst: 1 }])).toContain('rateLimits.0.perMinute');
    expect(bad([{ perMinute: 0.009, burst: 1 }])).toContain('rateLimits.0.perMinute: at least 0.01 (one call per 100 minutes)');
    expect(bad([{ perMinute: 1e-300, burst: 1 }])).toContain('rateLimits.0.perMinute');
    expect(PolicyDocumentSchema.parse({ rateLimits: [{ perMinute: 0.01, burst: 1 }] }).rateLimits[0]).not.toHaveProperty('per');
    expect(bad([{ perMinute: 1, burst: 1, per: 'tool' }])).toContain('rateLimits.0.per');
    expect(bad([{ perMinute: 1, burst: 0 }])).toContain('rateLimits.0.burst');
    expect(bad([{ perMinute: 1, burst: 1, match: { tool: 'a', prompt: 'b' } }])).toContain('names tool and prompt');
    expect(bad([{ perMinute: 1, burst: 1, match: { verb: 'tools/call' } }])).toContain('unknown key "verb"');
    expect(bad([{ perMinute: 1, burst: 1, rate: 3 }])).toContain('unknown key "rate"');
    expect(bad([{ name: 'a b', perMinute: 1, burst: 1 }])).toContain('rateLimits.0.name');
    expect(
      bad([
        { name: 'a', perMinute: 1, burst: 1 },
        { name: 'a', perMinute: 2, burst: 1 },
      ]),
    ).toContain('rateLimits.1.name: duplicate rate limit name "a"');
  });
});

describe('hidden targets: only limits whose answer does not depend on the name', () => {
  test('name-blind: no target in match, or only "*", and one bucket per source', () => {
    const l = limits([
      { name: 'any', perMinute: 60, burst: 1 },
      { name: 'any-tool', match: { tool: '*' }, perMinute: 60, burst: 1 },
      { name: 'admin', match: { tool: 'admin_*' }, perMinute: 60, burst: 1 },
      { name: 'per-name', match: { tool: '*' }, per: 'target', perMinute: 60, burst: 1 },
    ]);
    expect(l.map((x) => [x.label, x.nameBlind])).toEqual([
      ['any', true],
      ['any-tool', true],
      ['admin', false],
      ['per-name', false],
    ]);
  });

  test('a hidden call takes only from name-blind limits: the same refusal a made-up name would get', () => {
    const clock = new ManualClock();
    const l = limits([
      { name: 'total', perMinute: 60, burst: 2 },
      { name: 'admin', match: { tool: 'admin_*' }, perMinute: 1, burst: 1 },
    ]);
    const rl = new RateLimiter();
    // Hidden admin_reset: the admin limit (which names it) is not consulted, the total is.
    expect(rl.take(l, call('admin_reset'), clock.now(), true)).toBeNull();
    expect(rl.take(l, call('admin_reset'), clock.now(), true)).toBeNull();
    const hidden = rl.take(l, call('admin_reset'), clock.now(), true);
    const madeUp = rl.take(l, call('no_such_tool'), clock.now());
    expect(hidden).toMatchObject({ rule: 'total' });
    expect(madeUp).toMatchObject({ rule: 'total', retryAfterMs: hidden!.retryAfterMs });
  });
});

describe('RateLimiter on A2A calls', () => {
  const a2a = (method: string, skill: string | null, source = 'billing'): Operation => ({
    source,
    method,
    target: skill === null ? null : { kind: 'skill', name: skill },
    arguments: undefined,
    governed: true,
    a2a: noFacts('1.0', 'jsonrpc'),
  });

  test('only limits naming a method or a skill count A2A calls, and those count no MCP call', () => {
    const l = limits([
      { name: 'mcp-wide', match: {}, perMinute: 1, burst: 1 },
      { name: 'refunds', match: { source: 'billing', skill: 'refund*' }, perMinute: 1, burst: 1 },
    ]);
    const rl = new RateLimiter();
    const now = 0;
    expect(rl.take(l, a2a('SendMessage', 'refund-small'), now)).toBeNull();
    // Same limit-wide bucket for every skill it matches; another skill, another agent or no skill is not counted.
    expect(rl.take(l, a2a('SendStreamingMessage', 'refund-large'), now)).toMatchObject({ rule: 'refunds' });
    expect(rl.take(l, a2a('SendMessage', 'status'), now)).toBeNull();
    expect(rl.take(l, a2a('SendMessage', 'refund-small', 'other'), now)).toBeNull();
    expect(rl.take(l, a2a('GetTask', null), now)).toBeNull();
    // The MCP limit still counts MCP calls only.
    expect(rl.take(l, call('search'), now)).toBeNull();
    expect(rl.take(l, call('search'), now)).toMatchObject({ rule: 'mcp-wide' });
  });

  test('methods match in either spelling; per: target buckets by skill, else by method', () => {
    const l = limits([{ name: 'sends', match: { method: 'message/send' }, per: 'target', perMinute: 1, burst: 1 }]);
    const rl = new RateLimiter();
    expect(rl.take(l, a2a('SendMessage', 'a'), 0)).toBeNull();
    expect(rl.take(l, a2a('SendMessage', 'a'), 0)).toMatchObject({ rule: 'sends' });
    expect(rl.take(l, a2a('SendMessage', 'b'), 0)).toBeNull();
    expect(rl.take(l, a2a('SendMessage', null), 0)).toBeNull();
    expect(rl.take(l, a2a('SendMessage', null), 0)!.reason).toContain('for method "SendMessage"');
    expect(rl.take(l, a2a('SendStreamingMessage', 'c'), 0)).toBeNull();
  });

  test('a limit with method cannot name a tool, resource or prompt; skill is one target kind', () => {
    expect(() => limits([{ match: { method: 'SendMessage', tool: 'x' }, perMinute: 1, burst: 1 }])).toThrow(/method counts A2A calls/);
    expect(() => limits([{ match: { skill: 'x', prompt: 'y' }, perMinute: 1, burst: 1 }])).toThrow(/one kind of target/);
  });
});

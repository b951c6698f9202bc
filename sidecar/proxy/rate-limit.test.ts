// Rate limits without a socket: bucket arithmetic on a manual clock, which limits match, all
// matching limits applying at once, reloads, and the bound on buckets.
import { PolicyDocumentSchema } from '../../api/config.js';
import type { Operation } from '../../policy/gates/operation.js';
import { ManualClock } from '../../test/support/manual-clock.js';
import { compileRateLimits, RateLimiter } from './rate-limit.js';

const limits = (rateLimits: unknown[]) => compileRateLimits(PolicyDocumentSchema.parse({ rateLimits }).rateLimits);
const call = (tool: string, source = 'gh'): Operation => ({
  source,
  method: 'tools/call',
  target: { kind: 'tool', name: tool },
  arguments: {},
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
    expect(r!.reason).toContain('30 calls per minute (burst 2) for tool "search" of source "gh"');
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

  test('one bucket per source and tool: others are unaffected; unmatched and other methods pass', () => {
    const l = limits([{ match: { source: 'gh', tool: 'search*' }, perMinute: 1, burst: 1 }]);
    const rl = new RateLimiter();
    expect(rl.take(l, call('search'), 0)).toBeNull();
    expect(rl.take(l, call('search'), 0)).toMatchObject({ rule: 'rateLimits[0]', retryAfterMs: 60_000 });
    expect(rl.take(l, call('searchCode'), 0)).toBeNull();
    expect(rl.take(l, call('search', 'other'), 0)).toBeNull();
    expect(rl.take(l, call('search', 'other'), 0)).toBeNull();
    expect(rl.take(l, call('echo'), 0)).toBeNull();
    expect(rl.take(l, call('echo'), 0)).toBeNull();
    const list: Operation = { source: 'gh', method: 'tools/list', target: null, arguments: undefined, governed: false };
    expect(rl.take(l, list, 0)).toBeNull();
  });

  test('a limit without a target covers tools, resources and prompts; a tool limit only tools', () => {
    const l = limits([
      { name: 'any', perMinute: 60, burst: 1 },
      { name: 'tools', match: { tool: '*' }, perMinute: 60, burst: 1 },
    ]);
    const rl = new RateLimiter();
    const read: Operation = { source: 'gh', method: 'resources/read', target: { kind: 'resource', name: 'file:///a' }, arguments: undefined, governed: true };
    const prompt: Operation = { source: 'gh', method: 'prompts/get', target: { kind: 'prompt', name: 'p' }, arguments: {}, governed: true };
    expect(rl.take(l, read, 0)).toBeNull();
    expect(rl.take(l, read, 0)).toMatchObject({ rule: 'any' });
    expect(rl.take(l, prompt, 0)).toBeNull();
    expect(rl.take(l, prompt, 0)).toMatchObject({ rule: 'any' });
    // resources/subscribe names a resource but is not limited.
    expect(rl.take(l, { ...read, method: 'resources/subscribe' }, 0)).toBeNull();
  });

  test('every matching limit applies; a refused call takes no token from any; the longest wait is reported', async () => {
    const clock = new ManualClock();
    const l = limits([
      { name: 'per-tool', match: { tool: '*' }, perMinute: 60, burst: 3 },
      { name: 'search', match: { tool: 'search' }, perMinute: 6, burst: 1 },
    ]);
    const rl = new RateLimiter();
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    // per-tool has 2 left, search none: refused by search, and per-tool keeps its tokens.
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ rule: 'search', retryAfterMs: 10_000 });
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ rule: 'search' });
    await clock.advance(10_000);
    expect(rl.take(l, call('search'), clock.now())).toBeNull();
    // per-tool was full again after 10 s; search is empty once more.
    expect(rl.take(l, call('search'), clock.now())).toMatchObject({ rule: 'search' });
  });

  test('a reload that changes a limit starts its buckets full; an unchanged one keeps them', () => {
    const rl = new RateLimiter();
    const a = limits([{ name: 'x', perMinute: 1, burst: 1 }]);
    expect(rl.take(a, call('t'), 0)).toBeNull();
    expect(rl.take(limits([{ name: 'x', perMinute: 1, burst: 1 }]), call('t'), 0)).not.toBeNull();
    expect(rl.take(limits([{ name: 'x', perMinute: 2, burst: 1 }]), call('t'), 0)).toBeNull();
  });

  test('buckets are bounded: full ones are dropped first, then new names share one bucket per limit', () => {
    const counts: number[] = [];
    const rl = new RateLimiter({ maxBuckets: 3, onBuckets: (n) => counts.push(n) });
    const l = limits([{ name: 'x', match: { tool: '*' }, perMinute: 1, burst: 1 }]);
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
});

describe('rateLimits in the config', () => {
  test('defaults to none; perMinute and burst are required; one target kind; names unique', () => {
    expect(PolicyDocumentSchema.parse({}).rateLimits).toEqual([]);
    const bad = (rateLimits: unknown) => {
      const r = PolicyDocumentSchema.safeParse({ rateLimits });
      if (r.success) throw new Error('expected an error');
      return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    };
    expect(bad([{ perMinute: 10 }])).toContain('rateLimits.0.burst');
    expect(bad([{ perMinute: 0, burst: 1 }])).toContain('rateLimits.0.perMinute');
    expect(bad([{ perMinute: 1, burst: 0 }])).toContain('rateLimits.0.burst');
    expect(bad([{ perMinute: 1, burst: 1, match: { tool: 'a', prompt: 'b' } }])).toContain('names tool and prompt');
    expect(bad([{ perMinute: 1, burst: 1, match: { method: 'tools/call' } }])).toContain('unknown key "method"');
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

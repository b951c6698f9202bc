import { DEFAULT_FAKE_TOKEN, startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';
import { ManualClock } from '../support/manual-clock.js';
import { SlackConnection, SlackConnectionPool } from '../../slack/connection.js';
import { SlackApprovalError } from '../../slack/errors.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import { RateLimitMemories, SLACK_RATE_BUDGETS, SlackRateLimiter } from '../../slack/rate-limiter.js';

const rateLimited = (ms: number) => new SlackApprovalError('retryable', 'rate_limited', 'm', 'limited', ms);

describe('TokenBucket (pure)', () => {
  test('burst, then the sustained rate', () => {
    const b = new TokenBucket({ perMinute: 60, burst: 2 }, 0);
    expect(b.tryTake(0)).toBe(true);
    expect(b.tryTake(0)).toBe(true);
    expect(b.tryTake(0)).toBe(false);
    expect(b.readyAt(0)).toBe(1000);
    expect(b.tryTake(999)).toBe(false);
    expect(b.tryTake(1000)).toBe(true);
    expect(b.available(60_000)).toBe(2); // never more than the burst
  });

  test('drain after a 429: nothing before the pause ends, then one call, then no burst', () => {
    const b = new TokenBucket({ perMinute: 60, burst: 5 }, 0);
    b.drain(10_000);
    expect(b.tryTake(9_999)).toBe(false);
    expect(b.readyAt(5_000)).toBe(10_000);
    expect(b.tryTake(10_000)).toBe(true);
    expect(b.tryTake(10_000)).toBe(false);
    expect(b.readyAt(10_000)).toBe(11_000);
    expect(b.tryTake(11_000)).toBe(true);
  });

  test('every default budget stays within its Slack tier per minute', () => {
    const tier: Record<string, number> = {
      'chat.update': 50,
      'reactions.get': 50,
      'conversations.info': 50,
      'conversations.history': 50,
      'auth.test': 50,
      'users.info': 100,
      'usergroups.users.list': 20,
    };
    for (const [method, max] of Object.entries(tier)) {
      const b = SLACK_RATE_BUDGETS[method]!;
      expect(b.perMinute + b.burst).toBeLessThanOrEqual(max);
    }
    expect(SLACK_RATE_BUDGETS['chat.postMessage']).toMatchObject({ perMinute: 60, burst: 1, scope: 'channel' });
  });
});

describe('SlackRateLimiter scheduling (manual clock, no I/O)', () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock(0);
  });

  /** A call that records when it started and resolves at once. */
  const recorder = () => {
    const starts: [string, number][] = [];
    const fn = (name: string) => () => {
      starts.push([name, clock.now()]);
      return Promise.resolve(name);
    };
    return { starts, fn };
  };

  test('calls beyond the budget wait for tokens', async () => {
    const l = new SlackRateLimiter({ clock, budgets: { m: { perMinute: 60, burst: 2 } } });
    const { starts, fn } = recorder();
    const done = Promise.all(['a', 'b', 'c', 'd'].map((n) => l.run('m', fn(n))));
    await clock.advance(3000);
    expect(await done).toEqual(['a', 'b', 'c', 'd']);
    expect(starts).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 1000],
      ['d', 2000],
    ]);
  });

  test('higher priority goes first when the budget frees up', async () => {
    const l = new SlackRateLimiter({ clock, budgets: { m: { perMinute: 60, burst: 1 } } });
    const { starts, fn } = recorder();
    const all = [
      l.run('m', fn('poll1'), { priority: 'low' }),
      l.run('m', fn('poll2'), { priority: 'low' }),
      l.run('m', fn('post'), { priority: 'high' }),
      l.run('m', fn('check'), { priority: 'normal' }),
    ];
    await clock.advance(5000);
    await Promise.all(all);
    expect(starts.map((s) => s[0])).toEqual(['poll1', 'post', 'check', 'poll2']);
  });

  test('budgets are per method, and per channel for chat.postMessage', async () => {
    const l = new SlackRateLimiter({ clock });
    const { starts, fn } = recorder();
    const all = [
      l.run('chat.postMessage', fn('C1-a'), { channel: 'C1' }),
      l.run('chat.postMessage', fn('C1-b'), { channel: 'C1' }),
      l.run('chat.postMessage', fn('C2-a'), { channel: 'C2' }),
      l.run('reactions.get', fn('r')),
    ];
    await clock.advance(2000);
    await Promise.all(all);
    expect(Object.fromEntries(starts)).toEqual({ 'C1-a': 0, 'C2-a': 0, r: 0, 'C1-b': 1000 });
  });

  test('a 429 pauses every method for the token, then the call is retried', async () => {
    const seen: unknown[] = [];
    const l = new SlackRateLimiter({ clock, onRateLimited: (i) => seen.push(i) });
    const starts: [string, number][] = [];
    let first = true;
    const limited = l.run('reactions.get', () => {
      starts.push(['reactions.get', clock.now()]);
      if (first) {
        first = false;
        return Promise.reject(rateLimited(5000));
      }
      return Promise.resolve('ok');
    });
    await clock.advance(10);
    const other = l.run('users.info', () => {
      starts.push(['users.info', clock.now()]);
      return Promise.resolve('u');
    });
    expect(l.pausedUntil).toBe(5000);
    await clock.advance(4980);
    expect(starts).toEqual([['reactions.get', 0]]);
    await clock.advance(100);
    await expect(limited).resolves.toBe('ok');
    await expect(other).resolves.toBe('u');
    expect(starts).toEqual([
      ['reactions.get', 0],
      ['reactions.get', 5000],
      ['users.info', 5000],
    ]);
    expect(seen).toEqual([{ method: 'reactions.get', retryAfterMs: 5000, pausedUntil: 5000 }]);
    expect(l.stats()).toMatchObject({ rateLimited: 1, retried: 1, queued: 0, inFlight: 0, pausedUntil: 0 });
  });

  test('gives up after maxRateLimitRetries with a retryable rate_limited error', async () => {
    const l = new SlackRateLimiter({ clock, maxRateLimitRetries: 2 });
    let attempts = 0;
    const p = l.run('m', () => {
      attempts++;
      return Promise.reject(rateLimited(1000));
    });
    const outcome = p.catch((e: unknown) => e);
    await clock.advance(10_000);
    const e = (await outcome) as SlackApprovalError;
    expect(attempts).toBe(3);
    expect(e).toBeInstanceOf(SlackApprovalError);
    expect(e).toMatchObject({ kind: 'retryable', code: 'rate_limited', retryAfterMs: 1000 });
  });

  test('other errors pass through untouched and do not pause', async () => {
    const l = new SlackRateLimiter({ clock });
    const boom = new SlackApprovalError('permanent', 'channel_not_found', 'm', 'nope');
    await expect(l.run('m', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(l.pausedUntil).toBe(0);
  });

  test('abort drops a queued call; queue_full; close fails what is queued', async () => {
    const l = new SlackRateLimiter({ clock, maxQueued: 3, budgets: { m: { perMinute: 1, burst: 1 } } });
    const ok = l.run('m', () => Promise.resolve(1));
    const ac = new AbortController();
    const aborted = l.run('m', () => Promise.resolve(2), { signal: ac.signal });
    const queued = l.run('m', () => Promise.resolve(3));
    const queued2 = l.run('m', () => Promise.resolve(4));
    await expect(l.run('m', () => Promise.resolve(5))).rejects.toMatchObject({ code: 'queue_full', kind: 'retryable' });
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'aborted' });
    await expect(ok).resolves.toBe(1);
    l.close();
    await expect(queued).rejects.toMatchObject({ code: 'closed' });
    await expect(queued2).rejects.toMatchObject({ code: 'closed' });
    await expect(l.run('m', () => Promise.resolve(6))).rejects.toMatchObject({ code: 'closed' });
    expect(clock.pending).toBe(0);
  });
});

describe("the spent budget outlives a limiter (an operator's next leadership term)", () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock(0);
  });
  const call = (l: SlackRateLimiter, starts: number[]) => l.run('m', () => Promise.resolve(starts.push(clock.now())));

  test('a limiter on the same memory resumes the buckets: no second burst', async () => {
    const memories = new RateLimitMemories(clock);
    const budgets = { m: { perMinute: 60, burst: 3 } };
    const starts: number[] = [];
    const first = new SlackRateLimiter({ clock, budgets, memory: memories.get('k') });
    await Promise.all([1, 2, 3].map(() => call(first, starts)));
    first.close();
    const second = new SlackRateLimiter({ clock, budgets, memory: memories.get('k') });
    const next = Promise.all([1, 2].map(() => call(second, starts)));
    await clock.advance(2000);
    await next;
    // With its own memory the second limiter would have started both at 0.
    expect(starts).toEqual([0, 0, 0, 1000, 2000]);
    // Another key is another token's budget.
    const other = new SlackRateLimiter({ clock, budgets, memory: memories.get('k2') });
    const otherStarts: number[] = [];
    await Promise.all([1, 2, 3].map(() => call(other, otherStarts)));
    expect(otherStarts).toEqual([2000, 2000, 2000]);
  });

  test('a 429 pause carries over too', async () => {
    const memories = new RateLimitMemories(clock);
    const first = new SlackRateLimiter({ clock, memory: memories.get('k'), maxRateLimitRetries: 0 });
    await expect(first.run('reactions.get', () => Promise.reject(rateLimited(30_000)))).rejects.toMatchObject({ code: 'rate_limited' });
    first.close();
    const second = new SlackRateLimiter({ clock, memory: memories.get('k') });
    expect(second.pausedUntil).toBe(30_000);
    const starts: number[] = [];
    const p = second.run('users.info', () => Promise.resolve(starts.push(clock.now())));
    await clock.advance(30_000);
    await p;
    expect(starts).toEqual([30_000]);
  });

  test('memories idle for a minute (and not paused) are dropped: the map holds the tokens of the last minute', async () => {
    const memories = new RateLimitMemories(clock);
    const a = memories.get('a');
    a.pausedUntilMs = 120_000;
    memories.get('b');
    expect(memories.size).toBe(2);
    await clock.advance(60_000);
    memories.get('c');
    // b was idle a minute; a is still paused.
    expect(memories.size).toBe(2);
    expect(memories.get('a')).toBe(a);
    await clock.advance(60_000);
    memories.get('c');
    expect(memories.size).toBe(1);
  });

  test('a closed pool hands out no connection (a reconcile still running after step-down)', () => {
    const pool = new SlackConnectionPool({ clock });
    const c = pool.get('xoxb-1', 'http://127.0.0.1:9/api/');
    expect(pool.get('xoxb-1', 'http://127.0.0.1:9/api')).toBe(c);
    pool.close();
    expect(() => pool.get('xoxb-1', 'http://127.0.0.1:9/api/')).toThrow(expect.objectContaining({ code: 'closed', kind: 'permanent' }));
    expect(pool.size).toBe(0);
  });

  test("two pools on one RateLimitMemories share each token's budget", async () => {
    const memories = new RateLimitMemories(clock);
    const budgets = { 'auth.test': { perMinute: 60, burst: 1 } };
    const first = new SlackConnectionPool({ clock, limiter: { budgets } }, memories);
    const second = new SlackConnectionPool({ clock, limiter: { budgets } }, memories);
    const a = first.get('xoxb-1', 'http://127.0.0.1:9/api/');
    expect(a.limiter.budgetFor('auth.test')).toEqual({ perMinute: 60, burst: 1 });
    const starts: number[] = [];
    await a.limiter.run('auth.test', () => Promise.resolve(starts.push(clock.now())));
    first.close();
    const b = second.get('xoxb-1', 'http://127.0.0.1:9/api/');
    const p = b.limiter.run('auth.test', () => Promise.resolve(starts.push(clock.now())));
    await clock.advance(1000);
    await p;
    expect(starts).toEqual([0, 1000]);
    second.close();
  });
});

describe('429 over real HTTP (WebClient → fake Slack)', () => {
  let fake: FakeSlack;
  beforeEach(async () => {
    fake = await startFakeSlack({ tokens: [DEFAULT_FAKE_TOKEN, 'xoxb-other'], channels: [{ id: 'C1', name: 'a' }], users: [{ id: 'U1', name: 'alice' }] });
  });
  afterEach(async () => {
    await fake.close();
  });

  test('Retry-After is honoured and every call for the token waits; another token does not', async () => {
    let onLimited!: () => void;
    const limited = new Promise<void>((resolve) => (onLimited = resolve));
    const conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url, limiter: { onRateLimited: () => onLimited() } });
    const other = new SlackConnection({ token: 'xoxb-other', apiUrl: fake.url });
    try {
      const ts = (await conn.call('chat.postMessage', { channel: 'C1', text: 'x' })).ts as string;
      fake.force429('reactions.get', 1, 1);
      const poll = conn.call('reactions.get', { channel: 'C1', timestamp: ts }, { priority: 'low' });
      await limited; // the limiter has seen the 429; everything queued from here must wait
      const during = [
        conn.call('users.info', { user: 'U1' }),
        conn.call('conversations.info', { channel: 'C1' }),
        conn.call('chat.postMessage', { channel: 'C1', text: 'y' }, { priority: 'high', channel: 'C1' }),
        conn.call('auth.test', {}),
      ];
      const otherToken = await other.call('auth.test', {});
      await Promise.all([poll, ...during]);
      expect(otherToken.ok).toBe(true);

      const calls = fake.calls();
      const hit = calls.find((c) => c.status === 429)!;
      expect(hit).toMatchObject({ method: 'reactions.get', retryAfter: 1 });
      const pauseEnd = hit.time + 1000;
      const mine = calls.filter((c) => c.token === DEFAULT_FAKE_TOKEN && c.seq > hit.seq);
      expect(mine.map((c) => c.method).sort()).toEqual(['auth.test', 'chat.postMessage', 'conversations.info', 'reactions.get', 'users.info']);
      // Recorded data, not timing: nothing from this token reached Slack inside the pause window…
      expect(mine.filter((c) => c.time < pauseEnd)).toEqual([]);
      // …while the other token was not held back.
      expect(calls.some((c) => c.token === 'xoxb-other' && c.time < pauseEnd)).toBe(true);
      expect(mine.every((c) => c.status === 200 && c.ok)).toBe(true);
    } finally {
      conn.close();
      other.close();
    }
  });
});

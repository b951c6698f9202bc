import { DEFAULT_FAKE_TOKEN, startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';
import { SlackApprovalClient, type ApprovalPostInput } from '../../slack/client.js';
import { ManualClock } from '../support/manual-clock.js';
import { SlackConnection } from '../../slack/connection.js';
import { SlackApprovalError } from '../../slack/errors.js';
import { ApprovalPoller, DEFAULT_BACKOFF, nextPollDelay, type PollResult, type PollerResult } from '../../slack/poller.js';
import type { Priority } from '../../slack/rate-limiter.js';

/** Waits for a condition (checked every 10 ms); fails after `maxMs` so a bug cannot hang the suite. */
async function waitFor(what: string, cond: () => boolean, maxMs = 15_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('nextPollDelay (pure)', () => {
  test('2 s ×1.5 up to 30 s; activity resets; errors honour Retry-After', () => {
    const seq: number[] = [DEFAULT_BACKOFF.initialMs];
    let step = 0;
    for (let k = 0; k < 9; k++) {
      const next = nextPollDelay(step, { kind: 'quiet' });
      step = next.step;
      seq.push(next.delayMs);
    }
    expect(seq.map((x) => Math.round(x))).toEqual([2000, 3000, 4500, 6750, 10125, 15188, 22781, 30000, 30000, 30000]);
    expect(nextPollDelay(9, { kind: 'activity' })).toEqual({ step: 0, delayMs: 2000 });
    expect(nextPollDelay(0, { kind: 'error', retryAfterMs: 20_000 })).toEqual({ step: 1, delayMs: 20_000 });
    expect(nextPollDelay(0, { kind: 'error' })).toEqual({ step: 1, delayMs: 3000 });
    expect(nextPollDelay(1e6, { kind: 'quiet' })).toEqual({ step: 1e6 + 1, delayMs: 30_000 });
  });
});

describe('ApprovalPoller scheduling (manual clock, scripted polls)', () => {
  let clock: ManualClock;
  let results: PollerResult[];
  let poller: ApprovalPoller;
  beforeEach(() => {
    clock = new ManualClock(0);
    results = [];
    poller = new ApprovalPoller({ clock, onResult: (r) => results.push(r) });
  });
  afterEach(() => poller.close());

  /** A pending approval whose poll answers come from `script` (last answer repeats). */
  function scripted(id: string, expiresAt: number, script: Array<PollResult | Error>) {
    const polls: { at: number; priority: Priority }[] = [];
    poller.add({
      id,
      expiresAt,
      poll: (priority) => {
        polls.push({ at: clock.now(), priority });
        const next = script.length > 1 ? script.shift()! : script[0]!;
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
      },
    });
    return polls;
  }
  const quiet = (fp = ''): PollResult => ({ decision: null, fingerprint: fp });

  test('backs off while quiet, resets on activity, reports the decision once and stops', async () => {
    const polls = scripted('a', 3_600_000, [
      quiet(),
      quiet(),
      quiet(),
      quiet('eyes:U9'),
      quiet('eyes:U9'),
      { decision: { outcome: 'approved', by: ['U1'] }, fingerprint: 'x' },
    ]);
    await clock.advance(60_000);
    expect(polls.map((p) => p.at)).toEqual([2000, 5000, 9500, 16250, 18250, 21250]);
    expect(polls.every((p) => p.priority === 'low')).toBe(true);
    expect(results).toEqual([{ id: 'a', status: 'approved', by: ['U1'], at: 21250 }]);
    expect(poller.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  test('the last poll runs at the expiry (normal priority); nothing decided → expired', async () => {
    const polls = scripted('a', 10_000, [quiet()]);
    await clock.advance(20_000);
    expect(polls.map((p) => p.at)).toEqual([2000, 5000, 9500, 10_000]);
    expect(polls.at(-1)!.priority).toBe('normal');
    expect(results).toEqual([{ id: 'a', status: 'expired', at: 10_000 }]);
  });

  test('a decision seen by the final poll counts', async () => {
    scripted('a', 6000, [quiet(), quiet(), { decision: { outcome: 'rejected', by: ['U2'] }, fingerprint: 'x' }]);
    await clock.advance(20_000);
    expect(results).toEqual([{ id: 'a', status: 'rejected', by: ['U2'], at: 6000 }]);
  });

  test('retryable errors keep polling (after Retry-After); a permanent error ends as failed', async () => {
    const errors: string[] = [];
    poller.close();
    poller = new ApprovalPoller({ clock, onResult: (r) => results.push(r), onPollError: (_id, e) => errors.push(e.code) });
    const limited = new SlackApprovalError('retryable', 'rate_limited', 'reactions.get', 'slow down', 20_000);
    const gone = new SlackApprovalError('permanent', 'message_not_found', 'reactions.get', 'deleted');
    const polls = scripted('a', 3_600_000, [new Error('socket hang up'), limited, quiet(), gone]);
    await clock.advance(60_000);
    expect(polls.map((p) => p.at)).toEqual([2000, 5000, 25_000, 31_750]);
    expect(errors).toEqual(['unknown', 'rate_limited']);
    expect(results).toEqual([{ id: 'a', status: 'failed', error: gone, at: 31_750 }]);
  });

  test('remove() stops polling and drops a poll in flight; duplicates are refused', async () => {
    let release!: (r: PollResult) => void;
    poller.add({ id: 'a', expiresAt: 3_600_000, poll: () => new Promise((r) => (release = r)) });
    expect(poller.add({ id: 'a', expiresAt: 1, poll: () => Promise.resolve(quiet()) })).toBe(false);
    await clock.advance(2000);
    expect(poller.remove('a')).toBe(true);
    release({ decision: { outcome: 'approved', by: ['U1'] }, fingerprint: '' });
    await clock.advance(60_000);
    expect(results).toEqual([]);
    expect(poller.remove('a')).toBe(false);
  });

  test('a throwing callback does not stop the other approvals', async () => {
    poller.close();
    let n = 0;
    poller = new ApprovalPoller({
      clock,
      onResult: (r) => {
        results.push(r);
        if (n++ === 0) throw new Error('callback bug');
      },
    });
    scripted('a', 5000, [{ decision: { outcome: 'approved', by: ['U1'] }, fingerprint: '' }]);
    scripted('b', 5000, [{ decision: { outcome: 'approved', by: ['U1'] }, fingerprint: '' }]);
    await clock.advance(10_000);
    expect(results.map((r) => r.id).sort()).toEqual(['a', 'b']);
  });
});

describe('ApprovalPoller over real HTTP (WebClient → fake Slack)', () => {
  const CH = 'C1';
  let fake: FakeSlack;
  const request = (id: string, expiresAt = Date.now() + 600_000): ApprovalPostInput => ({
    id,
    tool: 'deploy',
    source: 'ci',
    arguments: { env: 'prod' },
    workload: { namespace: 'ns', serviceAccount: 'sa', pod: 'p' },
    expiresAt,
  });
  const channel = { channel: CH, approvers: { users: ['U1', 'U2'], userGroups: [] }, reactions: { approve: ['white_check_mark'], reject: ['x'] } };

  beforeEach(async () => {
    fake = await startFakeSlack({
      channels: [{ id: CH, name: 'approvals' }],
      users: [
        { id: 'U1', name: 'alice' },
        { id: 'U2', name: 'bob' },
      ],
    });
  });
  afterEach(async () => {
    await fake.close();
  });

  test('many approvals: each decided exactly once, polling stops after the decision', async () => {
    const conn = new SlackConnection({
      token: DEFAULT_FAKE_TOKEN,
      apiUrl: fake.url,
      limiter: { budgets: { 'chat.postMessage': { perMinute: 6000, burst: 20, scope: 'channel' }, 'reactions.get': { perMinute: 6000, burst: 20 } } },
    });
    const client = new SlackApprovalClient(conn, channel);
    const results: (PollerResult & { reportedAt: number })[] = [];
    const poller = new ApprovalPoller({ onResult: (r) => results.push({ ...r, reportedAt: Date.now() }), backoff: { initialMs: 30, maxMs: 120 } });
    try {
      const posted = await Promise.all(Array.from({ length: 10 }, (_, i) => client.post(request(`ar-${i}`))));
      for (const [i, p] of posted.entries()) poller.add(client.pending(`ar-${i}`, p.ts, Date.now() + 600_000));
      await waitFor('a few polls', () => fake.calls('reactions.get').length >= 20);
      for (const [i, p] of posted.entries()) fake.addReaction(CH, p.ts, i % 2 ? 'x' : 'white_check_mark', i % 3 ? 'U1' : 'U2');
      await waitFor('all decisions', () => results.length === 10);
      const byId = new Map(results.map((r) => [r.id, r]));
      expect(byId.size).toBe(10);
      posted.forEach((p, i) => {
        const r = byId.get(`ar-${i}`)!;
        expect(r).toMatchObject({ status: i % 2 ? 'rejected' : 'approved', by: [i % 3 ? 'U1' : 'U2'] });
        const later = fake.calls('reactions.get').filter((c) => c.args.timestamp === p.ts && c.time > r.reportedAt);
        expect(later).toEqual([]);
      });
      expect(poller.size).toBe(0);
    } finally {
      poller.close();
      conn.close();
    }
  });

  test('an approval nobody decides expires', async () => {
    const conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url });
    const client = new SlackApprovalClient(conn, channel);
    const results: PollerResult[] = [];
    const poller = new ApprovalPoller({ onResult: (r) => results.push(r), backoff: { initialMs: 30, maxMs: 60 }, expiryGraceMs: 50 });
    try {
      const expiresAt = Date.now() + 300;
      const { ts } = await client.post(request('ar-x', expiresAt));
      fake.addReaction(CH, ts, 'white_check_mark', 'U9'); // not an approver
      poller.add(client.pending('ar-x', ts, expiresAt));
      await waitFor('expiry', () => results.length === 1);
      expect(results[0]).toMatchObject({ id: 'ar-x', status: 'expired' });
    } finally {
      poller.close();
      conn.close();
    }
  });

  test('429 storm with many pending approvals: the fake’s own limit is never exceeded, pauses are honoured', async () => {
    // maxConcurrent 1 makes "no request inside a pause window" exact: no call can already be in
    // flight when the 429 arrives. Fake limit: 8 reactions.get per second per token; limiter
    // budget: burst 2 + 4/s, i.e. ≤ 6 in any second (margin for loopback jitter).
    fake.setRateLimit('reactions.get', { limit: 8, windowMs: 1000 });
    const conn = new SlackConnection({
      token: DEFAULT_FAKE_TOKEN,
      apiUrl: fake.url,
      limiter: {
        maxConcurrent: 1,
        budgets: { 'reactions.get': { perMinute: 240, burst: 2 }, 'chat.postMessage': { perMinute: 6000, burst: 20, scope: 'channel' } },
      },
    });
    const client = new SlackApprovalClient(conn, channel);
    const results: PollerResult[] = [];
    const pollErrors: string[] = [];
    const poller = new ApprovalPoller({
      onResult: (r) => results.push(r),
      onPollError: (_id, e) => pollErrors.push(e.code),
      backoff: { initialMs: 50, maxMs: 200 },
    });
    const N = 12;
    try {
      const posted = await Promise.all(Array.from({ length: N }, (_, i) => client.post(request(`ar-${i}`))));
      fake.force429('reactions.get', 3, 1); // the storm: three 429s in a row, Retry-After 1 s each
      for (const [i, p] of posted.entries()) fake.addReaction(CH, p.ts, i % 4 === 0 ? 'x' : 'white_check_mark', 'U1');
      for (const [i, p] of posted.entries()) poller.add(client.pending(`ar-${i}`, p.ts, Date.now() + 600_000));
      await waitFor('all decisions', () => results.length === N, 50_000);

      expect(results.map((r) => r.status).sort()).toEqual([...Array(3).fill('rejected'), ...Array(N - 3).fill('approved')].sort());
      const calls = fake.calls().filter((c) => c.token === DEFAULT_FAKE_TOKEN);
      const limited = calls.filter((c) => c.status === 429);
      // Only the three forced 429s: the limiter never ran into the fake's own rate limit.
      expect(limited).toHaveLength(3);
      for (const hit of limited) {
        const inWindow = calls.filter((c) => c.seq > hit.seq && c.time < hit.time + hit.retryAfter! * 1000);
        expect(inWindow).toEqual([]);
      }
      const gets = fake.calls('reactions.get').filter((c) => c.status === 200);
      const maxPerSecond = Math.max(...gets.map((c) => gets.filter((d) => d.time >= c.time && d.time < c.time + 1000).length));
      expect(maxPerSecond).toBeLessThanOrEqual(8);
      // 429s are absorbed by the limiter's re-queueing; polls themselves did not fail.
      expect(pollErrors).toEqual([]);
    } finally {
      poller.close();
      conn.close();
    }
  }, 60_000);

  test('Slack down (500s, then refused connections): polls fail retryably, nothing crashes, the decision arrives after recovery', async () => {
    const conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url });
    const client = new SlackApprovalClient(conn, channel);
    const results: PollerResult[] = [];
    const errors: string[] = [];
    const poller = new ApprovalPoller({
      onResult: (r) => results.push(r),
      onPollError: (_id, e) => errors.push(e.code),
      backoff: { initialMs: 20, maxMs: 60 },
    });
    try {
      const { ts } = await client.post(request('ar-down'));
      poller.add(client.pending('ar-down', ts, Date.now() + 600_000));
      await fake.setDown('http500');
      await waitFor('500 errors', () => errors.filter((c) => c === 'http_500').length >= 2);
      await fake.setDown('refuse');
      await waitFor('network errors', () => errors.filter((c) => c === 'network').length >= 2);
      fake.addReaction(CH, ts, 'white_check_mark', 'U2');
      expect(results).toEqual([]);
      await fake.setDown(false);
      await waitFor('decision', () => results.length === 1);
      expect(results[0]).toMatchObject({ id: 'ar-down', status: 'approved', by: ['U2'] });
      expect(new Set(errors)).toEqual(new Set(['http_500', 'network']));
    } finally {
      poller.close();
      conn.close();
    }
  });
});

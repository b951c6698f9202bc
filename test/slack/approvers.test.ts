import { DEFAULT_FAKE_TOKEN, startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';
import { ApproverDirectory, LruTtlCache, APPROVER_CACHE_MAX_ENTRIES, APPROVER_CACHE_TTL_MS } from '../../slack/approvers.js';
import { ManualClock } from '../support/manual-clock.js';
import { SlackConnection } from '../../slack/connection.js';

describe('LruTtlCache (manual clock)', () => {
  test('defaults: 1000 entries, 10 minutes', () => {
    expect(APPROVER_CACHE_MAX_ENTRIES).toBe(1000);
    expect(APPROVER_CACHE_TTL_MS).toBe(600_000);
    const c = new LruTtlCache<string, number>();
    expect([c.maxEntries, c.ttlMs]).toEqual([1000, 600_000]);
  });

  test('bounded: the least recently used entry is evicted', () => {
    const c = new LruTtlCache<string, number>({ maxEntries: 3, clock: new ManualClock() });
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    expect(c.get('a')).toBe(1); // a is now the most recent
    c.set('d', 4);
    expect(c.size).toBe(3);
    expect(c.get('b')).toBeUndefined();
    expect([c.get('a'), c.get('c'), c.get('d')]).toEqual([1, 3, 4]);
    for (let i = 0; i < 100; i++) c.set(`k${i}`, i);
    expect(c.size).toBe(3);
  });

  test('entries expire after the TTL', async () => {
    const clock = new ManualClock();
    const c = new LruTtlCache<string, number>({ ttlMs: 1000, clock });
    c.set('a', 1);
    await clock.advance(999);
    expect(c.get('a')).toBe(1);
    await clock.advance(1);
    expect(c.get('a')).toBeUndefined();
    expect(c.size).toBe(0);
  });
});

describe('ApproverDirectory against the fake (real WebClient)', () => {
  let fake: FakeSlack;
  let conn: SlackConnection;
  let clock: ManualClock;
  let dir: ApproverDirectory;

  beforeEach(async () => {
    fake = await startFakeSlack({
      users: [
        { id: 'U1', name: 'alice', realName: 'Alice Anders', displayName: 'ali' },
        { id: 'U2', name: 'bob', realName: 'Bob B' },
        { id: 'U3', name: 'carol' },
      ],
      userGroups: [{ id: 'S1', users: ['U2'] }],
    });
    conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url });
    clock = new ManualClock();
    // The cache runs on the manual clock; the HTTP calls are real.
    dir = new ApproverDirectory((m, a, o) => conn.call(m, a, o), { maxEntries: 2, ttlMs: 60_000, clock });
  });
  afterEach(async () => {
    conn.close();
    await fake.close();
  });

  test('display names: display_name, then real_name, then name; cached', async () => {
    expect(await dir.displayName('U1')).toBe('ali');
    expect(await dir.displayName('U2')).toBe('Bob B');
    expect(await dir.displayName('U1')).toBe('ali');
    expect(fake.calls('users.info')).toHaveLength(2);
  });

  test('unknown users fall back to the id and are remembered; outages are not', async () => {
    expect(await dir.displayName('U404')).toBe('U404');
    expect(await dir.displayName('U404')).toBe('U404');
    expect(fake.calls('users.info')).toHaveLength(1);
    await fake.setDown('http500');
    expect(await dir.displayName('U3')).toBe('U3');
    await fake.setDown(false);
    expect(await dir.displayName('U3')).toBe('carol');
  });

  test('concurrent lookups share one call', async () => {
    const names = await Promise.all(Array.from({ length: 5 }, () => dir.displayName('U1')));
    expect(new Set(names)).toEqual(new Set(['ali']));
    expect(fake.calls('users.info')).toHaveLength(1);
  });

  test('the cache is bounded (maxEntries 2): an evicted user is looked up again', async () => {
    await dir.displayName('U1');
    await dir.displayName('U2');
    await dir.displayName('U3'); // evicts U1
    expect(dir.names.size).toBe(2);
    await dir.displayName('U1');
    expect(fake.calls('users.info').map((c) => c.args.user)).toEqual(['U1', 'U2', 'U3', 'U1']);
  });

  test('group membership is cached until the TTL ends', async () => {
    expect(await dir.allowlist({ users: ['U1'], userGroups: ['S1'] })).toEqual(new Set(['U1', 'U2']));
    fake.addUserGroup({ id: 'S1', users: ['U3'] }); // membership changes in Slack
    expect(await dir.allowlist({ users: ['U1'], userGroups: ['S1'] })).toEqual(new Set(['U1', 'U2']));
    expect(fake.calls('usergroups.users.list')).toHaveLength(1);
    await clock.advance(60_000);
    expect(await dir.allowlist({ users: ['U1'], userGroups: ['S1'] })).toEqual(new Set(['U1', 'U3']));
    expect(fake.calls('usergroups.users.list')).toHaveLength(2);
  });

  test('allowlist without groups makes no calls; an unknown group is a permanent error', async () => {
    expect(await dir.allowlist({ users: ['U1'], userGroups: ['S1'] }, false)).toEqual(new Set(['U1']));
    expect(fake.calls()).toHaveLength(0);
    await expect(dir.allowlist({ users: [], userGroups: ['S404'] })).rejects.toMatchObject({ kind: 'permanent', code: 'no_such_subteam' });
  });
});

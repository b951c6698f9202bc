// SlackApprovalClient end to end: the real @slack/web-api WebClient against the fake Slack.
import { DEFAULT_FAKE_TOKEN, startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';
import { SlackApprovalClient, type ApprovalPostInput, type SlackChannelConfig } from '../../slack/client.js';
import { SlackConnection, SlackConnectionPool, normalizeApiUrl } from '../../slack/connection.js';
import { SlackApprovalError } from '../../slack/errors.js';

const CH = 'C0APPROVE';
const config: SlackChannelConfig = {
  channel: CH,
  approvers: { users: ['U1', 'UBOT'], userGroups: ['S1'] }, // the bot listed by mistake must still not count
  reactions: { approve: ['white_check_mark', '+1'], reject: ['x'] },
  redact: ['*token*'],
};
const request: ApprovalPostInput = {
  id: 'ar-1',
  tool: 'create_issue',
  source: 'github',
  arguments: { title: 'Bug', auth: { githubToken: 'ghp_secret' } },
  workload: { namespace: 'agents', serviceAccount: 'bot', pod: 'bot-1' },
  expiresAt: Date.now() + 600_000,
};

let fake: FakeSlack;
let conn: SlackConnection;
let client: SlackApprovalClient;

beforeEach(async () => {
  fake = await startFakeSlack({
    channels: [{ id: CH, name: 'approvals' }],
    users: [
      { id: 'U1', name: 'alice', realName: 'Alice' },
      { id: 'U2', name: 'bob', realName: 'Bob' },
      { id: 'U9', name: 'mallory' },
    ],
    userGroups: [{ id: 'S1', users: ['U2'] }],
  });
  conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url });
  client = new SlackApprovalClient(conn, config);
});
afterEach(async () => {
  conn.close();
  await fake.close();
});

test("findPosted finds this bot's message for a request id in a time window (crash recovery)", async () => {
  const since = Date.now() - 1000;
  expect(await client.findPosted('ar-1', { since, until: Date.now() + 1000 })).toEqual({ message: null, complete: true });
  const posted = await client.post(request);
  for (let i = 0; i < 3; i++) await client.post({ ...request, id: `other-${i}` });
  // Another app's message with the same metadata does not count.
  fake.addToken('xoxb-other', { userId: 'UOTHER', botId: 'BOTHER' });
  const other = new SlackConnection({ token: 'xoxb-other', apiUrl: fake.url });
  await new SlackApprovalClient(other, config).post({ ...request, id: 'ar-2' });
  other.close();
  expect(await client.findPosted('ar-1', { since, until: Date.now() + 1000 })).toEqual({ message: { channel: CH, ts: posted.ts }, complete: true });
  expect(await client.findPosted('ar-2', { since, until: Date.now() + 1000 })).toEqual({ message: null, complete: true });
  // Outside the window: not found.
  expect((await client.findPosted('ar-1', { since: Date.now() + 5000, until: Date.now() + 6000 })).message).toBeNull();
  // A bounded scan says when it did not see everything.
  expect(await client.findPosted('ar-1', { since, until: Date.now() + 1000 }, 0)).toEqual({ message: null, complete: false });
  expect(fake.calls('conversations.history').at(-1)!.args).toMatchObject({ channel: CH, include_all_metadata: 'true', inclusive: 'true', limit: '200' });
});

test('post → approve → finish round trip', async () => {
  const posted = await client.post(request);
  expect(posted).toEqual({ channel: CH, ts: expect.stringMatching(/^\d+\.\d{6}$/) });
  let [m] = fake.messages(CH);
  expect(m!.ts).toBe(posted.ts);
  expect(JSON.stringify(m)).not.toContain('ghp_secret');
  expect(m!.metadata).toMatchObject({ event_type: 'thoughtgate_approval', event_payload: { request_id: 'ar-1' } });
  expect(fake.calls('chat.postMessage')[0]!.args).toMatchObject({ unfurl_links: 'false', unfurl_media: 'false' });

  expect(await client.readDecision(posted.ts)).toBeNull();
  fake.addReaction(CH, posted.ts, 'white_check_mark', 'U1');
  const decision = await client.readDecision(posted.ts);
  expect(decision).toEqual({ outcome: 'approved', by: ['U1'] });
  expect(fake.calls('reactions.get').at(-1)!.args).toMatchObject({ channel: CH, timestamp: posted.ts, full: 'true' });

  await client.finish(posted.ts, request, { status: 'approved', by: decision!.by.map((id) => ({ id })), at: Date.now() });
  [m] = fake.messages(CH);
  expect(m!.history).toHaveLength(2);
  expect(JSON.stringify(m!.blocks)).toContain('✅ Approved');
  expect(JSON.stringify(m!.blocks)).toContain('<@U1>');
  expect(m!.text).toContain('Approved by Alice');
  expect(m!.metadata).toMatchObject({ event_payload: { status: 'approved' } });
});

test('only listed approvers count; the bot never does', async () => {
  const { ts } = await client.post(request);
  fake.addReaction(CH, ts, 'white_check_mark', 'U9'); // not an approver
  fake.addReaction(CH, ts, 'white_check_mark', 'UBOT'); // the bot itself
  fake.addReaction(CH, ts, 'x', 'UBOT');
  fake.addReaction(CH, ts, 'eyes', 'U1'); // not a decision reaction
  expect(await client.readDecision(ts)).toBeNull();
  fake.addReaction(CH, ts, '+1::skin-tone-3', 'U1');
  expect(await client.readDecision(ts)).toEqual({ outcome: 'approved', by: ['U1'] });
});

test('user-group members count (resolved through usergroups.users.list, cached)', async () => {
  const { ts } = await client.post(request);
  fake.addReaction(CH, ts, 'white_check_mark', 'U2');
  expect(await client.readDecision(ts)).toEqual({ outcome: 'approved', by: ['U2'] });
  expect(await client.readDecision(ts)).toEqual({ outcome: 'approved', by: ['U2'] });
  expect(fake.calls('usergroups.users.list')).toHaveLength(1);
  expect(fake.calls('usergroups.users.list')[0]!.args).toEqual({ usergroup: 'S1' });
});

test('explicit approvers alone need no group lookup', async () => {
  const { ts } = await client.post(request);
  fake.addReaction(CH, ts, 'white_check_mark', 'U1');
  await client.readDecision(ts);
  expect(fake.calls('usergroups.users.list')).toHaveLength(0);
});

test('approve and reject from approvers in the same read → rejected (fail closed)', async () => {
  const { ts } = await client.post(request);
  fake.addReaction(CH, ts, 'white_check_mark', 'U1');
  fake.addReaction(CH, ts, 'x', 'U2');
  expect(await client.readDecision(ts)).toEqual({ outcome: 'rejected', by: ['U2'] });
});

test('a failed group lookup fails the read instead of deciding on a partial allowlist', async () => {
  const { ts } = await client.post(request);
  fake.addReaction(CH, ts, 'white_check_mark', 'U1');
  fake.addReaction(CH, ts, 'x', 'U2'); // a group member's reject must not be missed
  fake.force429('usergroups.users.list', 10, 1);
  const limited = new SlackApprovalClient(new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url, limiter: { maxRateLimitRetries: 0 } }), config);
  try {
    await expect(limited.readDecision(ts)).rejects.toMatchObject({ kind: 'retryable', code: 'rate_limited' });
  } finally {
    limited.connection.close();
  }
});

test('approvers.required: 2 over reactions: pending 1 of 2 until a second listed approver reacts; one reject still wins', async () => {
  client = new SlackApprovalClient(conn, { ...config, approvers: { ...config.approvers, required: 2 } });
  const { ts } = await client.post(request);
  expect(JSON.stringify(fake.messages(CH)[0]!.blocks)).toContain('2 different approvers must approve');
  fake.addReaction(CH, ts, 'white_check_mark', 'U1');
  fake.addReaction(CH, ts, '+1', 'U1'); // the same person twice is one approval
  fake.addReaction(CH, ts, 'white_check_mark', 'U9'); // not listed
  const first = await client.pollReactions(ts);
  expect(first.decision).toBeNull();
  expect(first.tally).toEqual({ state: 'pending', approvedBy: ['U1'], approvals: 1, required: 2 });
  fake.addReaction(CH, ts, 'white_check_mark', 'U2'); // a member of S1
  expect(await client.readDecision(ts)).toEqual({ outcome: 'approved', by: ['U1', 'U2'] });
  fake.addReaction(CH, ts, 'x', 'U2');
  expect(await client.readDecision(ts)).toEqual({ outcome: 'rejected', by: ['U2'] });
});

test('check() reports token, channel and approvers', async () => {
  expect(await client.check()).toEqual({
    tokenOk: true,
    channelOk: true,
    approversOk: true,
    approverCount: 3,
    team: 'Fake Workspace',
    teamId: 'T0FAKE',
    botUserId: 'UBOT',
    channelName: 'approvals',
  });
  const wrongChannel = new SlackApprovalClient(conn, { ...config, channel: 'C404' });
  expect(await wrongChannel.check()).toMatchObject({ tokenOk: true, channelOk: false, retryable: false, error: expect.stringContaining('channel_not_found') });
  const wrongGroup = new SlackApprovalClient(conn, { ...config, approvers: { users: [], userGroups: ['S404'] } });
  expect(await wrongGroup.check()).toMatchObject({ tokenOk: true, channelOk: true, approversOk: false, error: expect.stringContaining('no_such_subteam') });
  // U1 and S1's U2 can approve (the listed bot cannot): 2 of 2 is fine, 3 could never happen.
  expect(await new SlackApprovalClient(conn, { ...config, approvers: { ...config.approvers, required: 2 } }).check()).toMatchObject({ approversOk: true });
  expect(await new SlackApprovalClient(conn, { ...config, approvers: { ...config.approvers, required: 3 } }).check()).toMatchObject({
    approversOk: false,
    approverCount: 3,
    retryable: false,
    error: '3 approvals are required but only 2 approvers can approve (users and user-group members, not the bot)',
  });
  // An invalid N is a configuration error, not "1" (which would fail open on the two-person rule).
  expect(await new SlackApprovalClient(conn, { ...config, approvers: { ...config.approvers, required: 2.5 } }).check()).toMatchObject({
    approversOk: false,
    retryable: false,
    error: expect.stringContaining('approvers.required must be an integer'),
  });
});

describe('errors are classified so callers can fail closed', () => {
  test('invalid or missing token → permanent', async () => {
    const bad = new SlackApprovalClient(new SlackConnection({ token: 'xoxb-revoked', apiUrl: fake.url }), config);
    try {
      const err = await bad.post(request).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlackApprovalError);
      expect(err).toMatchObject({ kind: 'permanent', code: 'invalid_auth', method: 'chat.postMessage' });
      expect((err as Error).message).toContain('bot token is not valid');
      expect(await bad.check()).toMatchObject({ tokenOk: false, channelOk: false, retryable: false, error: expect.stringContaining('invalid_auth') });
    } finally {
      bad.connection.close();
    }
    const none = new SlackApprovalClient(new SlackConnection({ token: '', apiUrl: fake.url }), config);
    try {
      await expect(none.post(request)).rejects.toMatchObject({ kind: 'permanent', code: 'not_authed' });
    } finally {
      none.connection.close();
    }
  });

  test('missing channel or deleted message → permanent', async () => {
    await expect(new SlackApprovalClient(conn, { ...config, channel: 'C404' }).post(request)).rejects.toMatchObject({
      kind: 'permanent',
      code: 'channel_not_found',
    });
    await expect(client.readDecision('1.000000')).rejects.toMatchObject({ kind: 'permanent', code: 'message_not_found' });
    await expect(client.finish('1.000000', request, { status: 'expired', at: Date.now() })).rejects.toMatchObject({
      kind: 'permanent',
      code: 'message_not_found',
    });
  });

  test('Slack answering 500 → retryable, and fine again afterwards', async () => {
    const { ts } = await client.post(request);
    await fake.setDown('http500');
    await expect(client.readDecision(ts)).rejects.toMatchObject({ kind: 'retryable', code: 'http_500' });
    await expect(client.post(request)).rejects.toMatchObject({ kind: 'retryable', code: 'http_500' });
    expect(await client.check()).toMatchObject({ tokenOk: false, retryable: true });
    await fake.setDown(false);
    expect(await client.readDecision(ts)).toBeNull();
  });

  test('refused connections → retryable network errors, and fine again afterwards', async () => {
    const { ts } = await client.post(request);
    await fake.setDown('refuse');
    const err = await client.readDecision(ts).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'retryable', code: 'network' });
    expect((err as Error).message).toMatch(/cannot reach Slack/);
    await fake.setDown(false);
    expect(await client.readDecision(ts)).toBeNull();
  });
});

test('the pool shares one connection (one limiter) per token and API URL', () => {
  const pool = new SlackConnectionPool();
  try {
    const a = pool.get('xoxb-a', fake.url);
    expect(pool.get('xoxb-a', fake.url)).toBe(a);
    expect(pool.get('xoxb-a', fake.url.replace(/\/$/, ''))).toBe(a); // trailing slash normalised
    expect(pool.get('xoxb-b', fake.url)).not.toBe(a);
    expect(pool.size).toBe(2);
    expect(SlackConnectionPool.key('xoxb-a', fake.url)).not.toContain('xoxb-a');
    expect(normalizeApiUrl(undefined)).toBe('https://slack.com/api/');
  } finally {
    pool.close();
  }
});

test('showProgress and finish on one message cannot reorder: a 429 on the progress update’s name lookup does not bring the buttons back', async () => {
  const buttons = new SlackApprovalClient(conn, { ...config, buttons: true, approvers: { ...config.approvers, required: 2 } });
  const { ts } = await buttons.post(request);
  // The progress update first looks up a name, which gets a 429 and waits in the limiter's queue;
  // finish() (names known) comes meanwhile.
  fake.force429('users.info', 1, 1);
  const progress = buttons.showProgress(ts, request, [{ id: 'U1' }]);
  await new Promise((r) => setTimeout(r, 100));
  const finished = buttons.finish(ts, request, { status: 'rejected', by: [{ id: 'U2', name: 'Bob' }], at: Date.now() });
  await Promise.all([progress, finished]);
  const last = JSON.stringify(fake.messages(CH).at(-1)!.blocks);
  expect(last).toContain('Rejected');
  expect(last).not.toContain('thoughtgate_approve');
  // A progress update after the outcome is dropped (no chat.update at all).
  const updates = fake.calls().filter((c) => c.method === 'chat.update' && c.ok).length;
  await buttons.showProgress(ts, request, [{ id: 'U1' }]);
  expect(fake.calls().filter((c) => c.method === 'chat.update' && c.ok)).toHaveLength(updates);
  expect(JSON.stringify(fake.messages(CH).at(-1)!.blocks)).not.toContain('thoughtgate_approve');
});

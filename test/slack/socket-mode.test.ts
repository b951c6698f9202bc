// SocketModeReceiver end to end: the real @slack/socket-mode client (on undici's WebSocket) and the
// real WebClient against the fake Slack, which speaks Socket Mode with the `ws` library.
// By default the fake delivers a click once (Slack documents redelivery only for Events API
// envelopes): a click must be applied or its clicker told, never left to a redelivery. Tests of
// idempotency turn interactive redelivery on (fake.socketMode.setInteractiveRedelivery).
import { SlackApprovalClient, type ApprovalPostInput, type SlackChannelConfig } from '../../slack/client.js';
import { SlackConnection } from '../../slack/connection.js';
import { tally } from '../../slack/decision.js';
import { REASON_ACTION_ID } from '../../slack/interactions.js';
import { APPROVE_ACTION_ID, REJECT_ACTION_ID } from '../../slack/message.js';
import { SocketModeReceiver, type ApprovalVote, type ReceiverEvent, type SocketModeReceiverOptions } from '../../slack/socket-mode.js';
import { DEFAULT_FAKE_APP_TOKEN, DEFAULT_FAKE_TOKEN, startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';

const CH = 'C0APPROVE';
const config: SlackChannelConfig = {
  channel: CH,
  approvers: { users: ['U1', 'U2'], userGroups: ['S1'], required: 1 },
  reactions: { approve: ['white_check_mark'], reject: ['x'] },
  buttons: true,
};
const request: ApprovalPostInput = {
  id: 'req-1',
  tool: 'delete_branch',
  source: 'github',
  arguments: { branch: 'main' },
  workload: { namespace: 'agents', serviceAccount: 'bot', pod: 'bot-1' },
  expiresAt: Date.now() + 600_000,
};

let fake: FakeSlack;
let conn: SlackConnection;
let client: SlackApprovalClient;
let receiver: SocketModeReceiver | undefined;
let ts: string;
/** The durable store the caller would keep: votes by (approval, user, action). */
let store: Map<string, ApprovalVote>;
let calls: ApprovalVote[];
let events: ReceiverEvent[];
let pending: Set<string>;

beforeEach(async () => {
  fake = await startFakeSlack({
    channels: [{ id: CH, name: 'approvals' }],
    users: [
      { id: 'U1', name: 'alice' },
      { id: 'U2', name: 'bob' },
      { id: 'U3', name: 'carol' },
      { id: 'U8', name: 'trudy' },
      { id: 'U9', name: 'mallory' },
    ],
    userGroups: [{ id: 'S1', users: ['U3'] }],
    socketMode: { redeliverAfterMs: 300, maxRedeliveries: 5 },
  });
  conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url });
  client = new SlackApprovalClient(conn, config);
  ts = (await client.post(request)).ts;
  store = new Map();
  calls = [];
  events = [];
  pending = new Set(['req-1']);
});
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
  conn.close();
  await fake.close();
});

/** The caller's durable write, as a store keyed by (approval, user, action). */
async function recordVote(v: ApprovalVote): Promise<void> {
  calls.push(v);
  store.set(`${v.approvalId}/${v.user}/${v.action}`, v);
}

async function startReceiver(over: Partial<SocketModeReceiverOptions> = {}): Promise<SocketModeReceiver> {
  receiver = new SocketModeReceiver({
    appToken: DEFAULT_FAKE_APP_TOKEN,
    apiUrl: fake.url,
    lookup: (id) => (pending.has(id) ? { client, ts, tool: request.tool } : undefined),
    onVote: recordVote,
    retries: 0,
    reconnect: { baseMs: 20, maxMs: 100 },
    onEvent: (e) => events.push(e),
    ...over,
  });
  await receiver.start();
  return receiver;
}

const click = (user: string, actionId = APPROVE_ACTION_ID) => fake.socketMode.click({ user, channel: CH, ts, actionId });
/** What happened to the envelopes and the connection (acks and notices apart: acked(), their own tests). */
const kinds = () => events.filter((e) => e.kind !== 'acked' && e.kind !== 'notice').map((e) => e.kind);
/** An onVote that records the vote, then (for votes `hold` picks) waits until release(). */
function heldHandler(hold: (v: ApprovalVote) => boolean = () => true) {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const onVote = async (v: ApprovalVote) => {
    calls.push(v);
    if (hold(v)) await gate;
  };
  return { release: () => release(), onVote };
}
const until = async (cond: () => boolean, what: string, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test("an approver's click reaches the handler, and is acknowledged only after the handler resolved", async () => {
  const { release, onVote } = heldHandler();
  await startReceiver({ onVote });
  const { envelopeId } = click('U1');
  await until(() => calls.length === 1, 'the handler');
  expect(calls[0]).toEqual({ approvalId: 'req-1', user: 'U1', action: 'approve', via: 'button', channel: CH, ts, envelopeId });
  await new Promise((r) => setTimeout(r, 100));
  expect(fake.socketMode.envelopes()[0]!.ackedAt).toBeUndefined();
  release();
  await fake.socketMode.acked(envelopeId);
  expect(kinds()).toEqual(['connected', 'vote']);
  // The ack is timed from the envelope's arrival, the handler's wait included.
  await until(() => events.some((e) => e.kind === 'acked'), 'the acked event');
  const acked = events.find((e) => e.kind === 'acked') as Extract<ReceiverEvent, { kind: 'acked' }>;
  expect(acked.envelopeId).toBe(envelopeId);
  expect(acked.durationMs).toBeGreaterThanOrEqual(100);
});

test('a user-group member counts; a non-approver gets the ephemeral and nothing is decided', async () => {
  await startReceiver();
  const mallory = click('U9');
  await fake.socketMode.acked(mallory.envelopeId);
  expect(calls).toEqual([]);
  await until(() => fake.socketMode.ephemerals().length === 1, 'the ephemeral');
  expect(fake.socketMode.ephemerals()).toEqual([expect.objectContaining({ channel: CH, user: 'U9', text: expect.stringMatching(/not an approver/) })]);
  const carol = click('U3');
  await fake.socketMode.acked(carol.envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U3']);
  expect(kinds()).toEqual(['connected', 'not_approver', 'vote']);
  await until(() => events.some((e) => e.kind === 'notice'), 'the notice event');
  expect(events.filter((e) => e.kind === 'notice')).toEqual([{ kind: 'notice', notice: 'not_approver', result: 'sent' }]);
});

test('a failing handler leaves the envelope unacked; the redelivery is applied exactly once, and a second click is a duplicate', async () => {
  fake.socketMode.setInteractiveRedelivery(true);
  let failures = 1;
  await startReceiver({
    onVote: async (v) => {
      calls.push(v);
      if (failures-- > 0) throw new Error('API server unavailable');
      store.set(`${v.approvalId}/${v.user}/${v.action}`, v);
    },
  });
  const { envelopeId } = click('U2');
  await until(() => calls.length === 1, 'the first attempt');
  // The clicker is told to try again, and the envelope stays unacked until Slack delivers it again.
  await until(() => fake.socketMode.ephemerals().length === 1, 'the ephemeral');
  expect(fake.socketMode.ephemerals()[0]!.text).toMatch(/could not be recorded/);
  expect(fake.socketMode.envelopes()[0]!.ackedAt).toBeUndefined();
  await fake.socketMode.acked(envelopeId);
  expect(fake.socketMode.envelopes()[0]!.deliveries).toBe(2);
  expect(calls).toHaveLength(2);
  expect([...store.keys()]).toEqual(['req-1/U2/approve']);
  // The same person clicking again: acked without calling the handler.
  const again = click('U2');
  await fake.socketMode.acked(again.envelopeId);
  expect(calls).toHaveLength(2);
  expect(kinds()).toEqual(['connected', 'handler_failed', 'vote', 'duplicate']);
});

test('a redelivery while the first delivery is still being written waits for it and is not applied twice', async () => {
  fake.socketMode.setInteractiveRedelivery(true);
  const { release, onVote } = heldHandler();
  await startReceiver({ onVote });
  const { envelopeId } = click('U1');
  // The fake redelivers after 300 ms; the handler is still running.
  await until(() => fake.socketMode.envelopes()[0]!.deliveries === 2, 'the redelivery');
  release();
  await fake.socketMode.acked(envelopeId);
  await new Promise((r) => setTimeout(r, 50));
  expect(calls).toHaveLength(1);
  expect(kinds().filter((k) => k === 'vote' || k === 'duplicate')).toEqual(expect.arrayContaining(['vote', 'duplicate']));
});

test('disconnect envelopes and dropped connections: the receiver reconnects and no click is lost', async () => {
  fake.socketMode.setInteractiveRedelivery(true);
  // The handler is swapped below, for the lost-ack case.
  let handler: (v: ApprovalVote) => Promise<void> = recordVote;
  await startReceiver({ onVote: (v) => handler(v) });
  expect(fake.socketMode.opened).toBe(1);
  fake.socketMode.disconnect('refresh_requested');
  await until(() => fake.socketMode.opened === 2 && receiver!.connected, 'the reconnect after refresh_requested');
  fake.socketMode.disconnect('link_disabled');
  await until(() => fake.socketMode.opened === 3 && receiver!.connected, 'the reconnect after link_disabled');
  const before = click('U1');
  await fake.socketMode.acked(before.envelopeId);

  // A click while no connection is open is delivered once the receiver is back.
  const { release, onVote } = heldHandler();
  fake.socketMode.drop();
  const during = click('U2');
  await until(() => fake.socketMode.opened === 4 && receiver!.connected, 'the reconnect after a dropped connection');
  await fake.socketMode.acked(during.envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U1', 'U2']);

  // The connection dies while a vote is being written: the ack is lost, Slack delivers it again,
  // and the receiver acks it without writing it twice.
  handler = onVote;
  const lost = click('U3');
  await until(() => calls.length === 3, 'the third vote');
  fake.socketMode.drop();
  release();
  await fake.socketMode.acked(lost.envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U1', 'U2', 'U3']);
  // The ack went into a dead connection (or could not be sent: ack_failed); either way it came again.
  expect(fake.socketMode.envelopes().find((e) => e.envelopeId === lost.envelopeId)!.deliveries).toBeGreaterThan(1);
  expect(kinds().at(-1)).toBe('duplicate');
});

test('Slack unreachable: the receiver keeps retrying with backoff (no unhandled rejection, unlike the SDK’s own reconnect) and comes back', async () => {
  await startReceiver();
  await fake.setDown('refuse');
  await until(() => events.filter((e) => e.kind === 'connect_failed').length >= 2, 'failed attempts');
  expect(events.find((e) => e.kind === 'connect_failed')).toMatchObject({ willRetry: true, error: { code: 'network' } });
  expect(receiver!.connected).toBe(false);
  await fake.setDown(false);
  await until(() => receiver!.connected, 'the reconnect');
  await fake.socketMode.acked(click('U1').envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U1']);
});

test('Reject asks for a reason in a modal; the submission is the reject, with its reason, and the message shows it', async () => {
  fake.socketMode.setInteractiveRedelivery(true);
  await startReceiver();
  const rejectClick = click('U1', REJECT_ACTION_ID);
  await fake.socketMode.acked(rejectClick.envelopeId);
  expect(calls).toEqual([]);
  const [view] = fake.socketMode.views();
  expect(view).toMatchObject({ user: 'U1', view: { type: 'modal', callback_id: 'thoughtgate_reject_reason' } });
  // Removed from the approvers while the modal was open: an error in the modal.
  const approverClient = client;
  client = new SlackApprovalClient(conn, { ...config, approvers: { users: ['U2'], userGroups: [], required: 1 } });
  const bad = fake.socketMode.submitView(view!.id, 'U1', { [REASON_ACTION_ID]: 'mine' });
  expect(await fake.socketMode.acked(bad.envelopeId)).toMatchObject({ response_action: 'errors' });
  client = approverClient;
  const ok = fake.socketMode.submitView(view!.id, 'U1', { [REASON_ACTION_ID]: '  not on a Friday  ' });
  expect(await fake.socketMode.acked(ok.envelopeId)).toEqual({});
  expect(calls).toEqual([expect.objectContaining({ user: 'U1', action: 'reject', reason: 'not on a Friday', via: 'modal' })]);
  // An ack lost on the way: the vote comes again and is not applied twice; a lost ack of a Reject
  // click does not open a second modal, nor reject without asking.
  fake.socketMode.loseAcks(1);
  const again = click('U2', REJECT_ACTION_ID);
  await fake.socketMode.acked(again.envelopeId);
  expect(fake.socketMode.lostAcks).toBe(1);
  expect(fake.socketMode.envelopes().find((e) => e.envelopeId === again.envelopeId)!.deliveries).toBe(2);
  expect(fake.socketMode.views()).toHaveLength(2);
  expect(calls).toHaveLength(1);
  await client.finish(ts, request, { status: 'rejected', by: [{ id: 'U1' }], at: Date.now(), reason: calls[0]!.reason! });
  const m = fake.messages(CH)[0]!;
  expect(JSON.stringify(m.blocks)).toContain('not on a Friday');
  expect(JSON.stringify(m.blocks)).not.toContain(REJECT_ACTION_ID);
  expect(kinds()).toEqual(['connected', 'reason_asked', 'not_approver', 'vote', 'reason_asked']);
});

test('when the modal cannot be opened (the trigger_id is spent or expired), Reject rejects without a reason', async () => {
  await startReceiver();
  const { envelopeId, triggerId } = click('U1', REJECT_ACTION_ID);
  // Spend the trigger before the receiver does: its views.open then fails with invalid_trigger_id.
  await conn.call('views.open', { trigger_id: triggerId, view: { type: 'modal', title: { type: 'plain_text', text: 'x' }, blocks: [] } });
  await fake.socketMode.acked(envelopeId);
  expect(calls).toEqual([expect.objectContaining({ user: 'U1', action: 'reject', via: 'button' })]);
  expect(calls[0]!.reason).toBeUndefined();
});

test('a button must come from the approval’s own message; a request no longer pending decides nothing', async () => {
  const other = await client.post(request); // a second message carrying the same id
  await startReceiver();
  const wrong = fake.socketMode.click({ user: 'U1', channel: CH, ts: other.ts, actionId: APPROVE_ACTION_ID });
  await fake.socketMode.acked(wrong.envelopeId);
  pending.delete('req-1');
  const late = click('U1');
  await fake.socketMode.acked(late.envelopeId);
  expect(calls).toEqual([]);
  expect(kinds()).toEqual(['connected', 'wrong_message', 'unknown_approval']);
});

test('a lookup that throws (not loaded yet) leaves the click unacked and tells the clicker to click again', async () => {
  let ready = false;
  await startReceiver({
    lookup: (id) => {
      if (!ready) throw new Error('not loaded yet');
      return pending.has(id) ? { client, ts, tool: request.tool } : undefined;
    },
  });
  const first = click('U1');
  await until(() => kinds().includes('handler_failed'), 'the failed lookup');
  // No lookup ever succeeded, so the receiver does not know the channel's bot token: the click's
  // response_url carries the notice.
  await until(() => fake.socketMode.ephemerals().length === 1, 'the notice');
  expect(fake.socketMode.ephemerals()[0]).toMatchObject({ channel: CH, user: 'U1', via: 'response_url', text: expect.stringMatching(/click again/) });
  expect(fake.socketMode.envelopes()[0]!.ackedAt).toBeUndefined();
  expect(calls).toEqual([]);
  ready = true;
  await fake.socketMode.acked(click('U1').envelopeId);
  expect(calls).toHaveLength(1);
  const lost = fake.socketMode.envelopes().find((e) => e.envelopeId === first.envelopeId)!;
  expect(lost.deliveries).toBe(1);
  expect(lost.ackedAt).toBeUndefined();
});

test('bounded: beyond maxInFlight a click is left unacked and its clicker told to click again', async () => {
  const { release, onVote } = heldHandler((v) => v.user === 'U1');
  await startReceiver({ maxInFlight: 1, onVote });
  const first = click('U1');
  await until(() => calls.length === 1, 'the first vote');
  click('U2');
  await until(() => kinds().includes('overloaded'), 'the overload');
  expect(receiver!.inFlight).toBe(1);
  await until(() => fake.socketMode.ephemerals().length === 1, 'the notice');
  expect(fake.socketMode.ephemerals()[0]).toMatchObject({ user: 'U2', text: expect.stringMatching(/could not be recorded/) });
  release();
  await fake.socketMode.acked(first.envelopeId);
  // U2 clicks again, as told.
  await fake.socketMode.acked(click('U2').envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U1', 'U2']);
});

test('close() waits for the handler in flight, acks it, and leaves later envelopes to the next connection', async () => {
  fake.socketMode.setInteractiveRedelivery(true);
  const { release, onVote } = heldHandler();
  await startReceiver({ onVote });
  const { envelopeId } = click('U1');
  await until(() => calls.length === 1, 'the vote');
  const closed = receiver!.close();
  setTimeout(release, 50);
  await closed;
  expect(fake.socketMode.envelopes()[0]!.ackedAt).toBeDefined();
  expect(fake.socketMode.envelopes()[0]!.envelopeId).toBe(envelopeId);
  await until(() => fake.socketMode.connections === 0, 'the closed connection');
  // The next holder of the socket (a new leader) gets what arrives meanwhile.
  const meanwhile = click('U2');
  receiver = undefined;
  await startReceiver();
  await fake.socketMode.acked(meanwhile.envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U1', 'U2']);
});

test('envelopes that are not approval clicks (events, other apps’ buttons) are acked and ignored', async () => {
  await startReceiver();
  const event = fake.socketMode.send('events_api', { type: 'event_callback', event: { type: 'app_mention' } });
  const foreign = fake.socketMode.send('interactive', { type: 'block_actions', user: { id: 'U1' }, actions: [{ action_id: 'other_app', value: 'req-1' }] });
  await fake.socketMode.acked(event.envelopeId);
  await fake.socketMode.acked(foreign.envelopeId);
  expect(calls).toEqual([]);
  expect(kinds()).toEqual(['connected', 'ignored', 'ignored']);
});

test('a bad app-level token fails start(); a bot token is not an app token', async () => {
  const bad = new SocketModeReceiver({ appToken: 'xapp-wrong', apiUrl: fake.url, lookup: () => undefined, onVote: async () => {} });
  await expect(bad.start()).rejects.toMatchObject({ kind: 'permanent', code: 'invalid_auth' });
  await bad.close();
  const bot = new SocketModeReceiver({ appToken: DEFAULT_FAKE_TOKEN, apiUrl: fake.url, lookup: () => undefined, onVote: async () => {} });
  await expect(bot.start()).rejects.toMatchObject({ code: 'not_allowed_token_type' });
  await bot.close();
});

test('two-person rule over clicks: the message shows 1 of 2, then the outcome with both names', async () => {
  const two: SlackChannelConfig = { ...config, approvers: { ...config.approvers, required: 2 } };
  client = new SlackApprovalClient(conn, two);
  ts = (await client.post(request)).ts;
  const votes = { approve: new Set<string>(), reject: new Set<string>() };
  const allowed = await conn.directory.allowlist(two.approvers);
  await startReceiver({
    onVote: async (v) => {
      calls.push(v);
      votes[v.action].add(v.user);
      const t = tally(votes, allowed, two.approvers.required);
      if (t.state === 'pending')
        await client.showProgress(
          ts,
          request,
          t.approvedBy.map((id) => ({ id })),
        );
      else await client.finish(ts, request, { status: t.state, by: t.by.map((id) => ({ id })), at: Date.now() });
    },
  });
  expect(JSON.stringify(fake.messages(CH).at(-1)!.blocks)).toContain('2 different approvers must approve');
  await fake.socketMode.acked(click('U1').envelopeId);
  const mid = JSON.stringify(fake.messages(CH).at(-1)!.blocks);
  expect(mid).toContain('1 of 2 approvals');
  expect(mid).toContain(APPROVE_ACTION_ID);
  // The same approver again does not make two.
  await fake.socketMode.acked(click('U1').envelopeId);
  expect(calls).toHaveLength(1);
  await fake.socketMode.acked(click('U3').envelopeId);
  const done = JSON.stringify(fake.messages(CH).at(-1)!.blocks);
  expect(done).toContain('Approved');
  expect(done).toContain('(2 of 2 approvals)');
  expect(done).not.toContain(APPROVE_ACTION_ID);
});

test('non-approvers cannot fill the in-flight slots: 40 fast clicks are acked at once, told once, and an approver’s click still counts', async () => {
  // A cold group cache (a new leader): every click waits for one shared usergroups.users.list,
  // screening, which does not take a handler slot.
  await startReceiver();
  const spam = Array.from({ length: 40 }, (_, i) => click(i % 2 === 0 ? 'U9' : 'U8'));
  const approver = click('U1');
  await fake.socketMode.acked(approver.envelopeId);
  for (const s of spam) await fake.socketMode.acked(s.envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U1']);
  expect(kinds()).not.toContain('overloaded');
  // One notice per person per window, however often they click.
  await until(() => fake.socketMode.ephemerals().length === 2, 'the notices');
  await new Promise((r) => setTimeout(r, 100));
  expect(
    fake.socketMode
      .ephemerals()
      .map((e) => e.user)
      .sort(),
  ).toEqual(['U8', 'U9']);
});

test('one deadline on the steps before the vote: a group lookup stuck behind a 429 frees its slot and tells the clicker', async () => {
  fake.force429('usergroups.users.list', 1, 30);
  await startReceiver({ preVoteTimeoutMs: 300 });
  click('U3'); // counts only through the group S1
  await until(() => kinds().includes('handler_failed'), 'the deadline');
  expect(receiver!.inFlight).toBe(0);
  await until(() => fake.socketMode.ephemerals().length === 1, 'the notice');
  expect(fake.socketMode.ephemerals()[0]).toMatchObject({ user: 'U3', text: expect.stringMatching(/click again/) });
  expect(calls).toEqual([]);
});

test('someone removed from an approver group cannot approve with the cached membership', async () => {
  // The membership is cached (as after any earlier decision), then U3 leaves the group.
  fake.addUserGroup({ id: 'S1', users: ['U3', 'U8'] });
  expect((await conn.directory.allowlist(config.approvers)).has('U3')).toBe(true);
  fake.addUserGroup({ id: 'S1', users: ['U8'] });
  await startReceiver({ approveGroupMaxAgeMs: 300 });
  await new Promise((r) => setTimeout(r, 350));
  await fake.socketMode.acked(click('U3').envelopeId);
  expect(calls).toEqual([]);
  expect(kinds()).toEqual(['connected', 'not_approver']);
  // A member still in the group counts (the read made for U3 is young enough: one Tier 2 call).
  await fake.socketMode.acked(click('U8').envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U8']);
  expect(fake.calls('usergroups.users.list')).toHaveLength(2);
});

test('a notice to a user not in the channel fails quietly (debug, not a warning)', async () => {
  fake.addChannel({ id: CH, name: 'approvals', members: ['U1', 'U2', 'U3'] });
  const logs: { level: string; message: string }[] = [];
  await startReceiver({ log: (level, message) => logs.push({ level, message }) });
  await fake.socketMode.acked(click('U9').envelopeId);
  await until(() => logs.some((l) => l.message.includes('user_not_in_channel')), 'the attempt');
  expect(logs.filter((l) => l.message.includes('could not tell'))).toEqual([{ level: 'debug', message: expect.stringContaining('user_not_in_channel') }]);
  expect(fake.socketMode.ephemerals()).toEqual([]);
});

test('a connection that closes right after its hello is not reopened at once: the backoff resets only after a stable connection', async () => {
  const states: string[] = [];
  await startReceiver({ reconnect: { baseMs: 400, maxMs: 800 }, onState: (s) => states.push(s) });
  for (let n = 2; n <= 3; n++) {
    fake.socketMode.drop();
    await new Promise((r) => setTimeout(r, 100));
    // The first wait is at least 200 ms (equal jitter of 400): nothing reopened yet.
    expect(fake.socketMode.opened).toBe(n - 1);
    await until(() => fake.socketMode.opened === n && receiver!.connected, `reconnect ${n}`);
  }
  expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected', 'reconnecting', 'connected']);
  expect(fake.calls('apps.connections.open')).toHaveLength(3);
});

test('a permanent error after a connection was established is retried with the long backoff, and shows in state', async () => {
  const states: string[] = [];
  await startReceiver({ permanentRetry: { baseMs: 50, maxMs: 100 }, onState: (s) => states.push(s) });
  // The app token stops working (an auth incident, a proxy answering 4xx): not the end.
  fake.appTokens.delete(DEFAULT_FAKE_APP_TOKEN);
  fake.socketMode.drop();
  await until(() => events.filter((e) => e.kind === 'connect_failed').length >= 2, 'failed attempts');
  expect(events.find((e) => e.kind === 'connect_failed')).toMatchObject({ willRetry: true, error: { code: 'invalid_auth' } });
  expect(receiver!.state).toBe('reconnecting');
  expect(receiver!.error).toMatchObject({ code: 'invalid_auth' });
  fake.appTokens.add(DEFAULT_FAKE_APP_TOKEN);
  await until(() => receiver!.connected, 'the reconnect');
  expect(receiver!.state).toBe('connected');
  expect(receiver!.error).toBeUndefined();
  expect(states.at(-1)).toBe('connected');
  await fake.socketMode.acked(click('U1').envelopeId);
  expect(calls.map((c) => c.user)).toEqual(['U1']);
});

test('a 429 from apps.connections.open (Tier 1) is waited out for its Retry-After, not hammered', async () => {
  fake.setRateLimit('apps.connections.open', { limit: 1, windowMs: 1000, retryAfterSec: 1 });
  await startReceiver({ reconnect: { baseMs: 10, maxMs: 20 } });
  fake.socketMode.drop();
  await until(() => receiver!.connected && fake.socketMode.opened === 2, 'the reconnect', 8000);
  const failed = events.filter((e) => e.kind === 'connect_failed');
  expect(failed[0]).toMatchObject({ willRetry: true, error: { code: 'rate_limited', retryAfterMs: 1000 } });
  // With a 10-20 ms backoff and no regard for Retry-After this would be dozens of calls.
  expect(fake.calls('apps.connections.open').length).toBeLessThanOrEqual(4);
});

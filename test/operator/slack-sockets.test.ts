// The operator leader's Socket Mode receivers (operator/slack-socket.ts) against the fake Slack's
// Socket Mode, with the real @slack/socket-mode client: one connection per Slack app wanted,
// closed when no channel wants it any more and all at once at step-down; a click reaches onVote
// with the app key lookup was asked for.
import { Registry } from 'prom-client';
import { createLogger } from '../../lib/log.js';
import { approvalMetrics } from '../../operator/metrics.js';
import { appLabel, planSockets, SlackSockets, type SlackApp } from '../../operator/slack-socket.js';
import { SlackApprovalClient } from '../../slack/client.js';
import { SlackConnection } from '../../slack/connection.js';
import type { ApprovalVote } from '../../slack/socket-mode.js';
import { startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';

const CH = 'C0SOCK';
let fake: FakeSlack;
let sockets: SlackSockets | undefined;

beforeEach(async () => {
  fake = await startFakeSlack({
    tokens: { 'xoxb-a': { userId: 'UBOT' } },
    appTokens: ['xapp-a', 'xapp-b'],
    channels: [{ id: CH, name: 'approvals' }],
    users: [{ id: 'U0ALICE', name: 'alice' }],
  });
});
afterEach(async () => {
  await sockets?.close();
  await fake.close();
});

const app = (key: string, token: string): SlackApp => ({ key, appToken: token, apiUrl: fake.url });
const wanted = (...apps: SlackApp[]) => new Map(apps.map((a) => [a.key, a]));

test('planSockets: start what is wanted and not held, close what is held and not wanted', () => {
  const a = { key: 'a', appToken: 'xapp-a', apiUrl: 'u' };
  const b = { key: 'b', appToken: 'xapp-b', apiUrl: 'u' };
  expect(
    planSockets(
      new Set(['a', 'c']),
      new Map([
        ['a', a],
        ['b', b],
      ]),
    ),
  ).toEqual({ start: [b], close: ['c'] });
  expect(planSockets(new Set(), new Map())).toEqual({ start: [], close: [] });
});

test('one socket per Slack app; a channel change closes the app no channel uses; step-down closes all', async () => {
  const lookups: string[] = [];
  sockets = new SlackSockets({
    log: createLogger('error', () => undefined),
    lookup: (_id, key) => {
      lookups.push(key);
      return undefined;
    },
    onVote: async () => undefined,
    receiver: { reconnect: { baseMs: 50, maxMs: 100 } },
  });
  sockets.sync(wanted(app('A', 'xapp-a')));
  await fake.socketMode.waitForConnections(1);
  sockets.sync(wanted(app('A', 'xapp-a'), app('B', 'xapp-b')));
  await fake.socketMode.waitForConnections(2);
  expect(fake.socketMode.opened).toBe(2);
  // The same apps again: nothing new is opened.
  sockets.sync(wanted(app('A', 'xapp-a'), app('B', 'xapp-b')));
  sockets.sync(wanted(app('B', 'xapp-b')));
  await waitFor(() => fake.socketMode.connections === 1);
  expect(fake.socketMode.opened).toBe(2);
  expect([...sockets.keys]).toEqual(['B']);
  await sockets.close();
  await waitFor(() => fake.socketMode.connections === 0);
});

test("a click reaches onVote, asked about with its app's key, and is acked after onVote resolved", async () => {
  const bot = new SlackApprovalClient(new SlackConnection({ token: 'xoxb-a', apiUrl: fake.url }), {
    channel: CH,
    approvers: { users: ['U0ALICE'], userGroups: [] },
    reactions: { approve: ['white_check_mark'], reject: ['x'] },
    buttons: true,
  });
  const { ts } = await bot.post({
    id: 'ns/ar-1',
    tool: 'deploy',
    source: 'up',
    arguments: {},
    workload: { namespace: 'ns', serviceAccount: 'sa', pod: 'p' },
    expiresAt: Date.now() + 60_000,
  });
  const votes: ApprovalVote[] = [];
  let release!: () => void;
  const written = new Promise<void>((r) => {
    release = r;
  });
  sockets = new SlackSockets({
    log: createLogger('error', () => undefined),
    lookup: (id, key) => (id === 'ns/ar-1' && key === 'A' ? { client: bot, ts, tool: 'deploy' } : undefined),
    onVote: async (v) => {
      votes.push(v);
      await written;
    },
  });
  sockets.sync(wanted(app('A', 'xapp-a')));
  await fake.socketMode.waitForConnections(1);
  const { envelopeId } = fake.socketMode.click({ channel: CH, ts, user: 'U0ALICE', actionId: 'thoughtgate_approve' });
  await waitFor(() => votes.length === 1);
  expect(votes[0]).toMatchObject({ approvalId: 'ns/ar-1', user: 'U0ALICE', action: 'approve', ts });
  expect(fake.socketMode.envelopes().find((e) => e.envelopeId === envelopeId)!.ackedAt).toBeUndefined();
  release();
  await fake.socketMode.acked(envelopeId);
  bot.connection.close();
});

async function waitFor(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('metrics: the state gauge follows a dropped connection and the reconnect, a click is counted; only the leader has the series', async () => {
  const registry = new Registry();
  const metrics = approvalMetrics(registry).sockets;
  const value = async (name: string, labels: Record<string, string>) =>
    ((await registry.getSingleMetric(`thoughtgate_operator_slack_socket_${name}`)!.get()).values as { labels: Record<string, unknown>; value: number }[]).find(
      (v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x),
    )?.value;
  const key = 'a1b2c3d4e5f6a7b8';
  const label = appLabel(key);
  sockets = new SlackSockets({
    log: createLogger('error', () => undefined),
    lookup: () => undefined,
    onVote: async () => undefined,
    metrics,
    receiver: { reconnect: { baseMs: 50, maxMs: 100 } },
  });
  sockets.sync(wanted(app(key, 'xapp-a')));
  await fake.socketMode.waitForConnections(1);
  await waitForAsync(async () => (await value('state', { app: label, state: 'connected' })) === 1);
  await fake.setDown('http500');
  fake.socketMode.drop();
  await waitForAsync(async () => (await value('state', { app: label, state: 'reconnecting' })) === 1);
  expect(await value('state', { app: label, state: 'connected' })).toBe(0);
  await waitForAsync(async () => ((await value('connect_failures_total', { app: label, retryable: 'true' })) ?? 0) >= 1);
  await fake.setDown(false);
  await waitForAsync(async () => (await value('state', { app: label, state: 'connected' })) === 1);
  expect(await value('reconnects_total', { app: label })).toBe(1);
  // A click on no pending request: acked, counted as not_pending.
  fake.socketMode.send('interactive', {
    type: 'block_actions',
    user: { id: 'U0ALICE' },
    channel: { id: CH },
    container: { type: 'message', channel_id: CH, message_ts: '1.000001' },
    message: { ts: '1.000001' },
    actions: [{ action_id: 'thoughtgate_approve', value: 'ns/gone', type: 'button' }],
  });
  await waitForAsync(async () => (await value('envelopes_total', { app: label, outcome: 'not_pending' })) === 1);
  // Step-down: the series go (the next leader reports them).
  await sockets.close();
  await waitForAsync(async () => (await value('state', { app: label, state: 'closed' })) === undefined);
  expect(await value('envelopes_total', { app: label, outcome: 'not_pending' })).toBeUndefined();
});

async function waitForAsync(pred: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

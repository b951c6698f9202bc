// The fake Slack's Socket Mode, on the wire: a plain `ws` client plays the app, WebClient calls
// the Web API. (The real @slack/socket-mode client against it: test/slack/socket-mode.test.ts.)
import { WebClient } from '@slack/web-api';
import WebSocket from 'ws';
import { DEFAULT_FAKE_APP_TOKEN, DEFAULT_FAKE_TOKEN, startFakeSlack, type FakeSlack } from './slack-server.js';

let fake: FakeSlack;
let bot: WebClient;
let app: WebClient;
const sockets: WebSocket[] = [];

beforeEach(async () => {
  fake = await startFakeSlack({
    channels: [{ id: 'C1', name: 'approvals' }],
    users: [{ id: 'U1', name: 'alice' }],
    socketMode: { redeliverAfterMs: 150, maxRedeliveries: 2, triggerTtlMs: 1000 },
  });
  bot = new WebClient(DEFAULT_FAKE_TOKEN, { slackApiUrl: fake.url, retryConfig: { retries: 0 } });
  app = new WebClient(DEFAULT_FAKE_APP_TOKEN, { slackApiUrl: fake.url, retryConfig: { retries: 0 } });
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await fake.close();
});

/** Opens a Socket Mode connection; resolves with it and a queue of the messages it received. */
async function connect(): Promise<{ ws: WebSocket; next: () => Promise<Record<string, any>> }> {
  const { url } = await app.apps.connections.open();
  const ws = new WebSocket(url!);
  sockets.push(ws);
  const queue: Record<string, any>[] = [];
  const waiting: ((m: Record<string, any>) => void)[] = [];
  ws.on('message', (d: Buffer) => {
    const m = JSON.parse(d.toString()) as Record<string, any>;
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const next = () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise<Record<string, any>>((r) => waiting.push(r)));
  expect(await next()).toMatchObject({ type: 'hello', connection_info: { app_id: 'A0FAKE' } });
  return { ws, next };
}

async function postWithButtons(): Promise<string> {
  const blocks = [
    { type: 'section', text: { type: 'mrkdwn', text: 'deploy?' } },
    {
      type: 'actions',
      block_id: 'decide',
      elements: [
        { type: 'button', action_id: 'yes', value: 'req-1', text: { type: 'plain_text', text: 'Approve' } },
        { type: 'button', action_id: 'no', value: 'req-1', text: { type: 'plain_text', text: 'Reject' } },
      ],
    },
  ];
  return (await bot.chat.postMessage({ channel: 'C1', text: 'deploy?', blocks })).ts!;
}

test('apps.connections.open takes app tokens only, and a ticket works once', async () => {
  await expect(bot.apiCall('apps.connections.open')).rejects.toMatchObject({ data: { error: 'not_allowed_token_type' } });
  await expect(app.auth.test()).rejects.toMatchObject({ data: { error: 'not_allowed_token_type' } });
  const { url } = await app.apps.connections.open();
  expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/link\/\?ticket=/);
  const first = new WebSocket(url!);
  sockets.push(first);
  await new Promise((r) => first.once('open', r));
  const again = new WebSocket(url!);
  sockets.push(again);
  await expect(new Promise((_r, reject) => again.once('error', reject))).rejects.toThrow(/401/);
  expect(fake.socketMode.connections).toBe(1);
});

test('a click is a block_actions envelope from the real button; acks are recorded; with interactive redelivery on, unacked ones come again, then Slack gives up', async () => {
  fake.socketMode.setInteractiveRedelivery(true);
  const ts = await postWithButtons();
  expect(() => fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'maybe' })).toThrow(/no button maybe/);
  const { ws, next } = await connect();
  const { envelopeId, triggerId } = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'yes' });
  const env = await next();
  expect(env).toMatchObject({
    envelope_id: envelopeId,
    type: 'interactive',
    accepts_response_payload: true,
    payload: {
      type: 'block_actions',
      user: { id: 'U1', username: 'alice' },
      trigger_id: triggerId,
      container: { type: 'message', channel_id: 'C1', message_ts: ts },
      channel: { id: 'C1' },
      message: { ts },
      actions: [{ action_id: 'yes', block_id: 'decide', value: 'req-1', type: 'button' }],
    },
  });
  expect(env.retry_attempt).toBeUndefined();
  // Not acked: delivered again with retry_attempt, twice, then no more.
  expect(await next()).toMatchObject({ envelope_id: envelopeId, retry_attempt: 1, retry_reason: 'timeout' });
  expect(await next()).toMatchObject({ envelope_id: envelopeId, retry_attempt: 2 });
  await new Promise((r) => setTimeout(r, 400));
  expect(fake.socketMode.envelopes()[0]).toMatchObject({ deliveries: 3, gaveUp: true });
  // An acked one is not delivered again.
  const second = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'no' });
  const got = await next();
  ws.send(JSON.stringify({ envelope_id: got.envelope_id, payload: { ok: 1 } }));
  expect(await fake.socketMode.acked(second.envelopeId)).toEqual({ ok: 1 });
  await new Promise((r) => setTimeout(r, 400));
  expect(fake.socketMode.envelopes()[1]).toMatchObject({ deliveries: 1, ackPayload: { ok: 1 } });
  // A lost ack: the envelope comes again.
  fake.socketMode.loseAcks(1);
  const third = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'yes' });
  ws.send(JSON.stringify({ envelope_id: (await next()).envelope_id }));
  const redelivered = await next();
  expect(redelivered).toMatchObject({ envelope_id: third.envelopeId, retry_attempt: 1 });
  ws.send(JSON.stringify({ envelope_id: third.envelopeId }));
  await fake.socketMode.acked(third.envelopeId);
  expect(fake.socketMode.lostAcks).toBe(1);
});

test('by default an unacked click is delivered once (and one made with no connection open is lost); other envelopes come again', async () => {
  const ts = await postWithButtons();
  const lost = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'yes' });
  const event = fake.socketMode.send('events_api', { type: 'event_callback' });
  const { next } = await connect();
  // The Events API envelope waited for the connection and comes again; the click made while no
  // connection was open is gone.
  expect(await next()).toMatchObject({ envelope_id: event.envelopeId });
  const click = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'no' });
  expect(await next()).toMatchObject({ envelope_id: click.envelopeId });
  expect(await next()).toMatchObject({ envelope_id: event.envelopeId, retry_attempt: 1 });
  await new Promise((r) => setTimeout(r, 400));
  const byId = new Map(fake.socketMode.envelopes().map((e) => [e.envelopeId, e]));
  expect(byId.get(lost.envelopeId)).toMatchObject({ deliveries: 0, gaveUp: true });
  expect(byId.get(click.envelopeId)).toMatchObject({ deliveries: 1 });
  expect(byId.get(event.envelopeId)!.deliveries).toBe(3);
});

test('an envelope with no connection waits for the next one (interactive redelivery on); disconnect and drop', async () => {
  fake.socketMode.setInteractiveRedelivery(true);
  const ts = await postWithButtons();
  const { envelopeId } = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'yes' });
  const { ws, next } = await connect();
  expect((await next()).envelope_id).toBe(envelopeId);
  fake.socketMode.disconnect('refresh_requested');
  expect(await next()).toMatchObject({ type: 'disconnect', reason: 'refresh_requested' });
  const closed = new Promise<number>((r) => ws.once('close', r));
  fake.socketMode.drop();
  expect(await closed).toBe(1006);
  expect(fake.socketMode.connections).toBe(0);
  expect(fake.socketMode.opened).toBe(1);
});

test('views.open with a fresh trigger_id, submitView, chat.postEphemeral', async () => {
  const ts = await postWithButtons();
  await connect();
  const { triggerId } = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'no' });
  const view = {
    type: 'modal' as const,
    callback_id: 'why',
    private_metadata: 'req-1',
    title: { type: 'plain_text' as const, text: 'Reject' },
    submit: { type: 'plain_text' as const, text: 'Reject' },
    blocks: [
      {
        type: 'input',
        block_id: 'reason',
        optional: true,
        label: { type: 'plain_text', text: 'Why?' },
        element: { type: 'plain_text_input', action_id: 'text' },
      },
    ],
  };
  await expect(bot.views.open({ trigger_id: 'nope', view })).rejects.toMatchObject({ data: { error: 'invalid_trigger_id' } });
  // A modal with an input needs a submit button.
  const { submit: _submit, ...noSubmit } = view;
  await expect(bot.views.open({ trigger_id: triggerId, view: noSubmit })).rejects.toMatchObject({ data: { error: 'invalid_arguments' } });
  const retry = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'no' });
  const opened = await bot.views.open({ trigger_id: retry.triggerId, view });
  expect(opened.view).toMatchObject({ id: expect.stringMatching(/^V/), callback_id: 'why', private_metadata: 'req-1' });
  // A trigger_id works once.
  await expect(bot.views.open({ trigger_id: retry.triggerId, view })).rejects.toMatchObject({ data: { error: 'invalid_trigger_id' } });
  // Only the person it was opened for sees the modal, so only they can submit it.
  expect(() => fake.socketMode.submitView(opened.view!.id!, 'U2', {})).toThrow(/opened for U1, not U2/);
  const { envelopeId } = fake.socketMode.submitView(opened.view!.id!, 'U1', { text: 'not today' });
  const env = fake.socketMode.envelopes().find((e) => e.envelopeId === envelopeId)!;
  expect(env.payload).toMatchObject({
    type: 'view_submission',
    user: { id: 'U1' },
    view: { callback_id: 'why', private_metadata: 'req-1', state: { values: { reason: { text: { type: 'plain_text_input', value: 'not today' } } } } },
  });
  expect((await bot.chat.postEphemeral({ channel: 'C1', user: 'U1', text: 'hi' })).ok).toBe(true);
  await expect(bot.chat.postEphemeral({ channel: 'C1', user: 'U404', text: 'hi' })).rejects.toMatchObject({ data: { error: 'user_not_found' } });
  expect(fake.socketMode.ephemerals()).toEqual([expect.objectContaining({ channel: 'C1', user: 'U1', text: 'hi' })]);
});

test('an expired trigger_id is refused', async () => {
  await fake.close();
  fake = await startFakeSlack({ channels: [{ id: 'C1', name: 'a' }], socketMode: { triggerTtlMs: 0 } });
  bot = new WebClient(DEFAULT_FAKE_TOKEN, { slackApiUrl: fake.url, retryConfig: { retries: 0 } });
  const ts = await postWithButtons();
  const { triggerId } = fake.socketMode.click({ user: 'U1', channel: 'C1', ts, actionId: 'no' });
  await new Promise((r) => setTimeout(r, 5));
  await expect(bot.views.open({ trigger_id: triggerId, view: { type: 'modal', title: { type: 'plain_text', text: 'x' }, blocks: [] } })).rejects.toMatchObject({
    data: { error: 'expired_trigger_id' },
  });
});

test('chat.postEphemeral to a user not in the channel fails with user_not_in_channel', async () => {
  fake.addChannel({ id: 'C2', name: 'small', members: ['U1'] });
  fake.addUser({ id: 'U2', name: 'bob' });
  expect((await bot.chat.postEphemeral({ channel: 'C2', user: 'U1', text: 'hi' })).ok).toBe(true);
  await expect(bot.chat.postEphemeral({ channel: 'C2', user: 'U2', text: 'hi' })).rejects.toMatchObject({ data: { error: 'user_not_in_channel' } });
});

test('apps.connections.open is rate limited like Tier 1 (a reconnect storm gets 429s)', async () => {
  fake.setRateLimit('apps.connections.open', { limit: 2, windowMs: 60_000 });
  const strict = new WebClient(DEFAULT_FAKE_APP_TOKEN, { slackApiUrl: fake.url, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
  await strict.apps.connections.open();
  await strict.apps.connections.open();
  await expect(strict.apps.connections.open()).rejects.toMatchObject({ code: 'slack_webapi_rate_limited_error', retryAfter: expect.any(Number) });
  expect(fake.calls('apps.connections.open').map((c) => c.status)).toEqual([200, 200, 429]);
});

test('a button confirm object must have the shape Slack checks', async () => {
  const button = (confirm: unknown) => [
    { type: 'actions', elements: [{ type: 'button', action_id: 'yes', value: 'v', text: { type: 'plain_text', text: 'Approve' }, confirm }] },
  ];
  const plain = (text: string) => ({ type: 'plain_text', text });
  const good = { title: plain('Sure?'), text: { type: 'mrkdwn', text: '*really*' }, confirm: plain('Yes'), deny: plain('No') };
  expect((await bot.chat.postMessage({ channel: 'C1', text: 'x', blocks: button(good) })).ok).toBe(true);
  for (const bad of [{ ...good, deny: undefined }, { ...good, title: { type: 'mrkdwn', text: 'x' } }, { ...good, confirm: plain('x'.repeat(31)) }, 'yes']) {
    await expect(bot.chat.postMessage({ channel: 'C1', text: 'x', blocks: button(bad) })).rejects.toMatchObject({ data: { error: 'invalid_blocks' } });
  }
});

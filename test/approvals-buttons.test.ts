// Slack buttons over Socket Mode in the standalone sidecar: the real @slack/socket-mode client
// (SocketModeReceiver) against the fake Slack's Socket Mode, the sidecar with the standalone
// backend, a real SDK client whose call is held, and the real SDK upstream that counts calls.
// The reactions' safety poll runs every 50 ms here: while the socket stays up it makes no Slack
// call (reactions.get is counted), so a decision seen within a test came from the click.
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { APPROVE_ACTION_ID, REJECT_ACTION_ID } from '../slack/message.js';
import {
  ALICE,
  APP_TOKEN,
  approvalConfig,
  BOB,
  CHANNEL,
  MALLORY,
  messageText,
  plainClient,
  sleep,
  startRig,
  until,
  withButtons,
  type Rig,
} from './approvals-harness.js';

const FAST_SAFETY_POLL = { initialMs: 50, factor: 1, maxMs: 50 };

async function buttonsRig(required = 1): Promise<Rig> {
  const rig = await startRig({
    config: (u, s) => withButtons(approvalConfig(u, s), required),
    env: { TG_TEST_SLACK_APP_TOKEN: APP_TOKEN },
    backend: { buttonsBackoff: FAST_SAFETY_POLL, socket: { reconnect: { baseMs: 50, maxMs: 200 } } },
    // The harder case than Slack documents: an unacknowledged click comes again.
    socketMode: { redeliverAfterMs: 300, redeliverInteractive: true },
  });
  await rig.fake.socketMode.waitForConnections(1);
  return rig;
}

/** A held tools/call (a client without tasks): resolves with the result or the McpError. */
async function heldCall(rig: Rig, args: Record<string, unknown>): Promise<{ result: Promise<unknown>; close: () => Promise<void> }> {
  const { client } = await plainClient(rig.url);
  const result = client.callTool({ name: 'deploy', arguments: args }, CallToolResultSchema, { timeout: 30_000 }).then(
    (ok) => ok,
    (e: unknown) => (e instanceof McpError ? { code: e.code, message: e.message } : Promise.reject(e)),
  );
  return { result, close: () => client.close() };
}

const click = (rig: Rig, ts: string, user: string, actionId = APPROVE_ACTION_ID) => rig.fake.socketMode.click({ channel: CHANNEL, ts, user, actionId });

let rig: Rig;
/** The rig of the running test, if it started one. */
let current: Rig | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

test('an approver clicks Approve: the held call runs once, the envelope is acked after, the message says who; no reactions polled', async () => {
  rig = current = await buttonsRig();
  const call = await heldCall(rig, { service: 'api', version: '1.0.0' });
  const m = await rig.message(0);
  expect(JSON.stringify(m.blocks)).toContain(APPROVE_ACTION_ID);
  // The first ack is lost on the way: the click comes again, and it is applied once.
  rig.fake.socketMode.loseAcks(1);
  const { envelopeId } = click(rig, m.ts, ALICE);
  expect(await call.result).toMatchObject({ content: [{ type: 'text', text: 'deployed api@1.0.0' }] });
  await rig.fake.socketMode.acked(envelopeId);
  expect(rig.fake.socketMode.envelopes().find((e) => e.envelopeId === envelopeId)!.deliveries).toBe(2);
  expect(rig.upstream.calls).toHaveLength(1);
  await until(() => /Approved/.test(messageText(rig.fake, m.ts)) && /U0ALICE/.test(messageText(rig.fake, m.ts)), 'the outcome in the message');
  expect(rig.fake.calls('reactions.get')).toHaveLength(0);
  await call.close();
});

test('a non-approver click gets the ephemeral and changes nothing; a reject with a reason from the modal rejects', async () => {
  rig = current = await buttonsRig();
  const call = await heldCall(rig, { service: 'db', version: '2' });
  const m = await rig.message(0);
  const before = rig.fake.messages(CHANNEL)[0]!.history.length;
  const { envelopeId } = click(rig, m.ts, MALLORY);
  await rig.fake.socketMode.acked(envelopeId);
  await until(() => rig.fake.socketMode.ephemerals().length === 1, 'the ephemeral');
  expect(rig.fake.socketMode.ephemerals()[0]).toMatchObject({ channel: CHANNEL, user: MALLORY, text: expect.stringMatching(/not an approver/) });
  expect(rig.fake.messages(CHANNEL)[0]!.history).toHaveLength(before);
  expect(rig.upstream.calls).toHaveLength(0);

  // Reject opens the reason modal; its submission is the reject.
  click(rig, m.ts, BOB, REJECT_ACTION_ID);
  await until(() => rig.fake.socketMode.views().length === 1, 'the reason modal');
  rig.fake.socketMode.submitView(rig.fake.socketMode.views()[0]!.id, BOB, { reason_text: 'not during the freeze' });
  expect(await call.result).toMatchObject({ code: -32007 });
  expect(rig.upstream.calls).toHaveLength(0);
  await until(() => /Rejected/.test(messageText(rig.fake, m.ts)) && /not during the freeze/.test(messageText(rig.fake, m.ts)), 'the outcome with the reason');
  await call.close();
});

test('two of two by clicks: the first shows 1 of 2 and runs nothing, a repeat is still one person, the second approves', async () => {
  rig = current = await buttonsRig(2);
  const call = await heldCall(rig, { service: 'web', version: '3' });
  const m = await rig.message(0);
  const first = click(rig, m.ts, ALICE);
  await rig.fake.socketMode.acked(first.envelopeId);
  await until(() => /1 of 2/.test(messageText(rig.fake, m.ts)), 'the progress line');
  expect(JSON.stringify(rig.fake.messages(CHANNEL)[0]!.blocks)).toContain(APPROVE_ACTION_ID);
  const again = click(rig, m.ts, ALICE);
  await rig.fake.socketMode.acked(again.envelopeId);
  expect(rig.upstream.calls).toHaveLength(0);
  click(rig, m.ts, BOB);
  expect(await call.result).toMatchObject({ content: [{ type: 'text', text: 'deployed web@3' }] });
  expect(rig.upstream.calls).toHaveLength(1);
  await until(() => /2 of 2 approvals/.test(messageText(rig.fake, m.ts)), 'the outcome with both approvers');
  await call.close();
});

test('two of two across a reaction and a click: the click reads the reactions at once (no poll waited for)', async () => {
  rig = current = await buttonsRig(2);
  const call = await heldCall(rig, { service: 'web', version: '4' });
  const m = await rig.message(0);
  rig.approve(m.ts, BOB);
  await sleep(200);
  expect(rig.upstream.calls).toHaveLength(0);
  click(rig, m.ts, ALICE);
  expect(await call.result).toMatchObject({ content: [{ type: 'text', text: 'deployed web@4' }] });
  expect(rig.upstream.calls).toHaveLength(1);
  // One read, the one the click made: not a poll.
  expect(rig.fake.calls('reactions.get')).toHaveLength(1);
  await call.close();
});

test('while the socket is down, reactions are read (the safety poll) and decide', async () => {
  rig = current = await buttonsRig();
  const call = await heldCall(rig, { service: 'ops', version: '5' });
  const m = await rig.message(0);
  rig.reject(m.ts, ALICE);
  await sleep(300);
  // Up: no read, so nothing decided by the reaction yet.
  expect(rig.fake.calls('reactions.get')).toHaveLength(0);
  // The socket goes down (and Slack refuses the app token from now on, so it stays down).
  rig.fake.appTokens.delete(APP_TOKEN);
  rig.fake.socketMode.drop();
  expect(await call.result).toMatchObject({ code: -32007 });
  expect(rig.fake.calls('reactions.get').length).toBeGreaterThan(0);
  expect(rig.upstream.calls).toHaveLength(0);
  await call.close();
});

test('a channel whose app token variable is not set is a configuration error at the start', async () => {
  const { standaloneBackend, ApprovalSetupError } = await import('../sidecar/approvals/standalone.js');
  const { FileApprovalChannelSchema } = await import('../api/approval.js');
  const { createLogger } = await import('../lib/log.js');
  const channel = FileApprovalChannelSchema.parse({
    name: 'oncall',
    slack: { channel: CHANNEL, tokenEnv: 'BOT', appTokenEnv: 'APP' },
    approvers: { users: [ALICE] },
  });
  const make = () =>
    standaloneBackend(
      [channel],
      { BOT: 'xoxb-x' },
      createLogger('error', () => undefined),
    );
  expect(make).toThrow(ApprovalSetupError);
  expect(make).toThrow(/APP \(slack\.appTokenEnv\) is not set/);
});

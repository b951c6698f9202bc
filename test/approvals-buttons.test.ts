// Slack buttons over Socket Mode in the standalone sidecar: the real @slack/socket-mode client
// (SocketModeReceiver) against the fake Slack's Socket Mode, the sidecar with the standalone
// backend, a real SDK client whose call is held, and the real SDK upstream that counts calls.
// The reactions' safety poll runs every 50 ms here: while the socket stays up it makes no Slack
// call (reactions.get is counted), so a decision seen within a test came from the click.
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { FileApprovalChannelSchema } from '../api/approval.js';
import { runSidecar } from '../sidecar/main.js';
import { createLogger } from '../lib/log.js';
import { ApprovalSetupError, standaloneBackend, type StandaloneBackend } from '../sidecar/approvals/standalone.js';
import { APPROVE_ACTION_ID, REJECT_ACTION_ID } from '../slack/message.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-server.js';
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

// ---------- operating Socket Mode: metrics and the start check ----------

/** The sample of `metric` whose labels include `labels` in the sidecar's /metrics; undefined when absent. */
async function sample(rig: Rig, metric: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${rig.sidecar.adminPort}/metrics`)).text();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== metric) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const APP = { app: 'TG_TEST_SLACK_APP_TOKEN' };
const state = (rig: Rig, s: string) => sample(rig, 'thoughtgate_sidecar_slack_socket_state', { ...APP, state: s });

test('the socket state gauge follows a dropped connection and the reconnect; connect failures and reconnects are counted', async () => {
  rig = current = await buttonsRig();
  expect(await state(rig, 'connected')).toBe(1);
  expect(await state(rig, 'reconnecting')).toBe(0);
  // Slack answers 500 from now on, and the link drops: down, retrying.
  await rig.fake.setDown('http500');
  rig.fake.socketMode.drop();
  await until(async () => (await state(rig, 'reconnecting')) === 1, 'the gauge to show reconnecting');
  expect(await state(rig, 'connected')).toBe(0);
  await until(
    async () => ((await sample(rig, 'thoughtgate_sidecar_slack_socket_connect_failures_total', { ...APP, retryable: 'true' })) ?? 0) >= 2,
    'failed attempts counted',
  );
  // Logged once when it went down, not at every retry.
  const warned = rig.logs().filter((l) => String(l.message).includes('cannot connect') && l.level === 'warn');
  expect(warned).toHaveLength(1);
  await rig.fake.setDown(false);
  await until(async () => (await state(rig, 'connected')) === 1, 'the gauge to show connected again');
  expect(await state(rig, 'reconnecting')).toBe(0);
  expect(await sample(rig, 'thoughtgate_sidecar_slack_socket_reconnects_total', APP)).toBe(1);
  // Socket Mode down never made the sidecar unready (reactions still decide).
  expect((await fetch(`http://127.0.0.1:${rig.sidecar.adminPort}/ready`)).status).toBe(200);
});

test('envelopes are counted by outcome: an approver click as counted, a non-approver click as not_approver with its ephemeral; acks are timed', async () => {
  rig = current = await buttonsRig();
  const call = await heldCall(rig, { service: 'api', version: '9' });
  const m = await rig.message(0);
  const envelopes = (outcome: string) => sample(rig, 'thoughtgate_sidecar_slack_socket_envelopes_total', { ...APP, outcome });
  expect(await envelopes('counted')).toBeUndefined();
  const mallory = click(rig, m.ts, MALLORY);
  await rig.fake.socketMode.acked(mallory.envelopeId);
  await until(async () => (await envelopes('not_approver')) === 1, 'the non-approver click counted');
  await until(
    async () => (await sample(rig, 'thoughtgate_sidecar_slack_socket_ephemerals_total', { ...APP, notice: 'not_approver', result: 'sent' })) === 1,
    'the ephemeral counted as sent',
  );
  expect(await envelopes('counted')).toBeUndefined();
  click(rig, m.ts, ALICE);
  expect(await call.result).toMatchObject({ content: [{ type: 'text', text: 'deployed api@9' }] });
  await until(async () => (await envelopes('counted')) === 1, 'the approver click counted');
  expect(await envelopes('not_approver')).toBe(1);
  expect(await sample(rig, 'thoughtgate_sidecar_slack_socket_ack_seconds_count', APP)).toBe(2);
  await call.close();
});

describe('the app token is checked at the start', () => {
  const channel = (appTokenEnv: string) =>
    FileApprovalChannelSchema.parse({
      name: 'oncall',
      slack: { channel: CHANNEL, tokenEnv: 'BOT', appTokenEnv, apiUrl: fake.url },
      approvers: { users: [ALICE, BOB] },
    });
  let fake: FakeSlack;
  let backend: StandaloneBackend | undefined;
  const lines: string[] = [];
  const log = createLogger('debug', (l) => lines.push(l));
  beforeEach(async () => {
    lines.length = 0;
    fake = await startFakeSlack({ tokens: { 'xoxb-x': { userId: 'UBOT' } }, appTokens: ['xapp-good'], channels: [{ id: CHANNEL, name: 'approvals' }] });
  });
  afterEach(async () => {
    await backend?.close();
    backend = undefined;
    await fake.close();
  });
  const make = (env: Record<string, string>) =>
    (backend = standaloneBackend([channel('TG_APP')], { BOT: 'xoxb-x', ...env }, log, undefined, { socket: { reconnect: { baseMs: 50, maxMs: 100 } } }));

  test('a token Slack refuses (revoked, invalid, a bot token) refuses the start, naming the channel and the variable', async () => {
    for (const token of ['xapp-revoked', 'xoxb-x']) {
      const b = make({ TG_APP: token });
      const refused = b.checkAppTokens(5000);
      await expect(refused).rejects.toThrow(ApprovalSetupError);
      await expect(refused).rejects.toThrow(/"oncall".*TG_APP \(slack\.appTokenEnv\).*(invalid_auth|not_allowed_token_type)/);
      await b.close();
    }
  });

  test('runSidecar: a revoked app token ends the start with exit status 1 and says which channel and variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-app-token-'));
    const config = join(dir, 'thoughtgate.yaml');
    writeFileSync(config, withButtons(approvalConfig('http://127.0.0.1:9/mcp', fake.url)));
    const written: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const r = await runSidecar({
        configPath: config,
        env: { TG_TEST_SLACK_TOKEN: 'xoxb-x', TG_TEST_SLACK_APP_TOKEN: 'xapp-revoked' },
        log,
        options: { port: 0, adminPort: 0, bind: '127.0.0.1' },
      });
      expect(r).toEqual({ kind: 'exit', code: 1 });
    } finally {
      spy.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(written.join('')).toMatch(/invalid configuration[\s\S]*"oncall".*TG_TEST_SLACK_APP_TOKEN \(slack\.appTokenEnv\).*invalid_auth/);
  });

  test('a good token passes; Slack unreachable or rate limiting passes with a warning, and the receiver keeps trying', async () => {
    await make({ TG_APP: 'xapp-good' }).checkAppTokens(5000);
    await backend!.close();
    lines.length = 0;
    fake.clearCalls();
    fake.force429('apps.connections.open', 1, 1);
    const b = make({ TG_APP: 'xapp-good' });
    await b.checkAppTokens(5000);
    expect(lines.some((l) => l.includes('could not check the app token') && l.includes('TG_APP'))).toBe(true);
    // Retry-After 1 s, then it connects (closed only once connected: the SDK's close during its handshake waits 30 s).
    await until(() => lines.some((l) => l.includes('Slack Socket Mode connected')), 'the receiver connected');
    expect(fake.calls('apps.connections.open').map((c) => c.status)).toEqual([429, 200]);
    await b.close();
    lines.length = 0;
    await fake.setDown('http500');
    await make({ TG_APP: 'xapp-good' }).checkAppTokens(5000);
    expect(lines.some((l) => l.includes('could not check the app token'))).toBe(true);
  });
});

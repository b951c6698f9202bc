// Standalone approvals across a real `kill -9` of the built sidecar (--state-dir): a pending
// approval is adopted by the next process, which polls Slack for it, runs it on approval and
// answers its task to the client that created it only; an approval killed after its execution
// mark is never run again. The fake Slack and the upstream live in the test process and outlive
// the sidecars; the upstream counts the calls it gets.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTaskResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { encodeBatch, encodeRecord, JOURNAL_MAGIC } from '../lib/journal.js';
import {
  ALICE,
  APP_TOKEN,
  approvalConfig,
  BOB,
  CHANNEL,
  messageText,
  startApprovalUpstream,
  tasksClient,
  TOKEN,
  until,
  withButtons,
  type ApprovalUpstream,
} from './approvals-harness.js';
import { APPROVE_ACTION_ID } from '../slack/message.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-server.js';
import { messagesOf, rawPost } from './support/sidecar.js';
import { CLI, freePort, run, startCliSidecar } from './support/processes.js';

const PROTOCOL = '2025-11-25';

let fake: FakeSlack;
let upstream: ApprovalUpstream;
let dir: string;
let config: string;
let stateDir: string;
const env = { TG_TEST_SLACK_TOKEN: TOKEN };

beforeEach(async () => {
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [
      { id: ALICE, name: 'alice' },
      { id: BOB, name: 'bob' },
    ],
    // A click that reached the killed sidecar's dying socket comes again, to the next one.
    socketMode: { redeliverInteractive: true, redeliverAfterMs: 500 },
  });
  upstream = await startApprovalUpstream();
  dir = mkdtempSync(join(tmpdir(), 'tg-approvals-kill-'));
  config = join(dir, 'thoughtgate.yaml');
  stateDir = join(dir, 'state');
  writeFileSync(config, approvalConfig(upstream.url, fake.url, { channelTimeout: '5m' }));
});

afterEach(async () => {
  upstream.release();
  await upstream.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const start = () => startCliSidecar(config, env, ['--state-dir', stateDir]);

async function kill9(tg: Awaited<ReturnType<typeof start>>): Promise<void> {
  tg.proc.child.kill('SIGKILL');
  await tg.proc.exited;
}

/** A task-augmented tools/call from an SDK client with its own MCP session; its id and the session. */
async function createTask(base: string, tool: string, args: Record<string, unknown>): Promise<{ taskId: string; session: string; close: () => Promise<void> }> {
  const { client, transport } = await tasksClient(`${base}/mcp/up`);
  const r = await client.request({ method: 'tools/call', params: { name: tool, arguments: args } }, CreateTaskResultSchema, { task: { ttl: 600_000 } });
  return { taskId: r.task.taskId, session: transport.sessionId!, close: () => client.close().catch(() => undefined) };
}

/** One tasks/* request as a client of `session` (none: an anonymous client). */
async function taskCall(base: string, method: string, taskId: string, session?: string): Promise<any> {
  const headers: Record<string, string> = { 'mcp-protocol-version': PROTOCOL, ...(session ? { 'mcp-session-id': session } : {}) };
  const r = await rawPost(`${base}/mcp/up`, JSON.stringify({ jsonrpc: '2.0', id: 7, method, params: { taskId } }), headers);
  return messagesOf(r).find((m) => m.id === 7);
}

test('a pending approval survives kill -9: the next sidecar polls Slack for it, runs it on approval, for its owner only', async () => {
  const first = await start();
  const task = await createTask(first.base, 'deploy', { service: 'api', version: '9.9.9' });
  await until(() => fake.messages(CHANNEL).length === 1, 'the approval message');
  const ts = fake.messages(CHANNEL)[0]!.ts;
  await task.close();
  await kill9(first);
  expect(statSync(join(stateDir, 'approvals.journal')).mode & 0o777).toBe(0o600);
  expect(statSync(stateDir).mode & 0o777).toBe(0o700);

  const second = await start();
  try {
    await until(() => /approvals found in the approval store/.test(second.proc.out()), 'the adoption log line');
    expect(second.proc.out()).toMatch(/"count":1/);
    // Adopted: the task is there for its owner, still waiting; no second message was posted.
    const waiting = await taskCall(second.base, 'tasks/get', task.taskId, task.session);
    expect(waiting.result).toMatchObject({ taskId: task.taskId, status: 'working' });
    expect(waiting.result.statusMessage).toMatch(/^Waiting for human approval/);
    fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);
    await until(
      async () => (await taskCall(second.base, 'tasks/get', task.taskId, task.session)).result?.status === 'completed',
      'the task to complete',
      20_000,
    );
    const result = await taskCall(second.base, 'tasks/result', task.taskId, task.session);
    expect(JSON.stringify(result.result.content)).toContain('deployed api@9.9.9');
    expect(upstream.calls.map((c) => [c.tool, c.args, c.session])).toEqual([['deploy', { service: 'api', version: '9.9.9' }, task.session]]);
    // Another client, and an anonymous one, do not see it.
    const other = await tasksClient(`${second.base}/mcp/up`);
    expect((await taskCall(second.base, 'tasks/get', task.taskId, other.transport.sessionId)).error).toMatchObject({ code: -32602 });
    await other.client.close();
    expect((await taskCall(second.base, 'tasks/get', task.taskId)).error).toMatchObject({ code: -32602 });
    expect(fake.messages(CHANNEL)).toHaveLength(1);
    await until(() => /Approved/.test(messageText(fake, ts)) && /succeeded|returned a result/i.test(messageText(fake, ts)), 'the message to show the result');
  } finally {
    await second.proc.stop();
  }
  // Ended, so gone from the store: a third start adopts nothing.
  const third = await start();
  await third.proc.stop();
  expect(third.proc.out()).not.toMatch(/approvals found in the approval store/);
}, 90_000);

test('an approval killed after its execution mark is never run again; its task ends failed for its owner', async () => {
  const first = await start();
  const task = await createTask(first.base, 'slow_deploy', { service: 'db' });
  await until(() => fake.messages(CHANNEL).length === 1, 'the approval message');
  const ts = fake.messages(CHANNEL)[0]!.ts;
  fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);
  // The call reached the upstream (so its mark was written first); it hangs there until release().
  await until(() => upstream.calls.length === 1, 'the approved call to reach the upstream', 20_000);
  await task.close();
  await kill9(first);

  const second = await start();
  try {
    const ended = await taskCall(second.base, 'tasks/get', task.taskId, task.session);
    expect(ended.result).toMatchObject({ taskId: task.taskId, status: 'failed' });
    expect(ended.result.statusMessage).toMatch(/Interrupted by a sidecar restart while executing; not run again/);
    const result = await taskCall(second.base, 'tasks/result', task.taskId, task.session);
    expect(result.error).toMatchObject({ code: -32006 });
    expect(result.error.data.reason).toMatch(/may or may not have run and is not run again/);
    await until(() => /interrupted by a restart of the sidecar/.test(messageText(fake, ts)), 'the message to say it was interrupted');
    // The reaction is still on the message and the new sidecar read the journal: still one call.
    expect(upstream.calls.map((c) => c.tool)).toEqual(['slow_deploy']);
  } finally {
    await second.proc.stop();
  }
  const third = await start();
  await third.proc.stop();
  expect(third.proc.out()).not.toMatch(/approvals found in the approval store/);
  expect(upstream.calls).toHaveLength(1);
}, 90_000);

test('two of two with buttons: the first click, acked, survives kill -9; the second click after the restart approves', async () => {
  writeFileSync(config, withButtons(approvalConfig(upstream.url, fake.url, { channelTimeout: '5m' }), 2));
  const buttonsEnv = { ...env, TG_TEST_SLACK_APP_TOKEN: APP_TOKEN };
  const startButtons = () => startCliSidecar(config, buttonsEnv, ['--state-dir', stateDir]);
  const first = await startButtons();
  const task = await createTask(first.base, 'deploy', { service: 'api', version: '2.2.2' });
  await until(() => fake.messages(CHANNEL).length === 1, 'the approval message');
  const ts = fake.messages(CHANNEL)[0]!.ts;
  await fake.socketMode.waitForConnections(1);
  const alice = fake.socketMode.click({ channel: CHANNEL, ts, user: ALICE, actionId: APPROVE_ACTION_ID });
  // Acked only once the vote is in the journal.
  await fake.socketMode.acked(alice.envelopeId, 10_000);
  await task.close();
  await kill9(first);

  const second = await startButtons();
  try {
    await until(() => fake.socketMode.opened >= 2 && fake.socketMode.connections >= 1, 'the new sidecar on the socket');
    expect(upstream.calls).toHaveLength(0);
    const bob = fake.socketMode.click({ channel: CHANNEL, ts, user: BOB, actionId: APPROVE_ACTION_ID });
    await fake.socketMode.acked(bob.envelopeId, 10_000);
    await until(
      async () => (await taskCall(second.base, 'tasks/get', task.taskId, task.session)).result?.status === 'completed',
      'the task to complete',
      20_000,
    );
    expect(upstream.calls.map((c) => [c.tool, c.args])).toEqual([['deploy', { service: 'api', version: '2.2.2' }]]);
    await until(() => /2 of 2 approvals/.test(messageText(fake, ts)), 'the outcome naming both approvers');
    expect(messageText(fake, ts)).toMatch(/U0ALICE[\s\S]*U0BOB|U0BOB[\s\S]*U0ALICE/);
  } finally {
    await second.proc.stop();
  }
}, 90_000);

test('a damaged journal stops the start with the reason; without --state-dir the start log says approvals do not survive a restart', async () => {
  mkdirSync(stateDir, { mode: 0o700 });
  const good = (n: number) => encodeBatch([encodeRecord({ op: 'end', id: `tg-${n}` })]);
  writeFileSync(
    join(stateDir, 'approvals.journal'),
    Buffer.concat([JOURNAL_MAGIC, encodeBatch([encodeRecord({ op: 'header', v: 1 })]), encodeBatch([Buffer.from('0000dead {"op":"put"}\n')]), good(1)]),
  );
  const [port, admin] = [await freePort(), await freePort()];
  const p = run(process.execPath, [CLI, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(admin), '--state-dir', stateDir], env);
  expect(await p.exited).toBe(1);
  expect(p.err()).toMatch(
    /cannot open the approval store: .*approvals\.journal: the batch at byte \d+ is damaged \(checksum mismatch\) and valid batches follow it/,
  );

  const plain = await startCliSidecar(config, env);
  await until(() => plain.proc.out().includes('approvals are kept in memory only and do not survive a restart'), 'the start log line');
  await plain.proc.stop();
}, 60_000);

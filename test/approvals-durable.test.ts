// The standalone backend with its approval store, in process, where the real kill -9 test
// (approvals-kill.test.ts) cannot look: the order of the store's fsyncs and the actions they
// protect (an injected JournalIo holds chosen fsyncs back), and a post interrupted between
// chat.postMessage and the record of its ts (staged by writing the store as the crashed process
// would have left it, with the real Slack client posting its message).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTaskResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { nodeJournalIo, type JournalIo } from '../lib/journal.js';
import { createLogger } from '../lib/log.js';
import { openApprovalStore } from '../sidecar/approvals/approval-store.js';
import type { PendingApproval } from '../sidecar/approvals/backend.js';
import { requestHash } from '../sidecar/approvals/hash.js';
import { postInput, standaloneBackend } from '../sidecar/approvals/standalone.js';
import { fileProvider, loadInitial } from '../sidecar/providers/file.js';
import { startSidecar, type Sidecar } from '../sidecar/sidecar.js';
import { SlackApprovalClient } from '../slack/client.js';
import { SlackConnectionPool } from '../slack/connection.js';
import { ALICE, approvalConfig, CHANNEL, FAST, startApprovalUpstream, tasksClient, TOKEN, until, type ApprovalUpstream } from './approvals-harness.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-server.js';
import { messagesOf, rawPost } from './support/sidecar.js';

const env = { TG_TEST_SLACK_TOKEN: TOKEN };
let fake: FakeSlack;
let upstream: ApprovalUpstream;
let dir: string;
let configPath: string;
let stateDir: string;
let lines: string[];
const log = () => createLogger('debug', (l) => lines.push(l));
const sidecars: Sidecar[] = [];

beforeEach(async () => {
  lines = [];
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [{ id: ALICE, name: 'alice' }],
  });
  upstream = await startApprovalUpstream();
  dir = mkdtempSync(join(tmpdir(), 'tg-approvals-durable-'));
  configPath = join(dir, 'thoughtgate.yaml');
  stateDir = join(dir, 'state');
  writeFileSync(configPath, approvalConfig(upstream.url, fake.url, { channelTimeout: '5m' }));
});

afterEach(async () => {
  for (const s of sidecars.splice(0)) await s.close();
  await upstream.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(io?: JournalIo, maxApprovals?: number): Promise<string> {
  const initial = await loadInitial(configPath, env);
  if (!initial.ok) throw new Error(initial.errors.join('\n'));
  const l = log();
  const store = await openApprovalStore(stateDir, { log: l, ...(io ? { io } : {}), ...(maxApprovals ? { maxApprovals } : {}) });
  const sidecar = await startSidecar({
    port: 0,
    adminPort: 0,
    bind: '127.0.0.1',
    log: l,
    provider: fileProvider(configPath, env, initial, l, 100),
    drainTimeoutMs: 1000,
    approvals: standaloneBackend(initial.config.approvalChannels!, env, l, undefined, { ...FAST, store }),
  });
  sidecars.push(sidecar);
  return `http://127.0.0.1:${sidecar.port}/mcp/up`;
}

/** Real files; an fsync of a record of one of the `held` kinds waits until release(kind). */
function holdingIo(held: Set<string>) {
  const waiting = new Map<string, () => void>();
  const io: JournalIo = {
    ...nodeJournalIo,
    async openAppend(f) {
      const h = await nodeJournalIo.openAppend(f);
      let last = '';
      return {
        write: (data) => {
          last = data.toString();
          return h.write(data);
        },
        async sync() {
          const op = /"op":"(\w+)"/.exec(last)?.[1];
          if (op && held.has(op)) await new Promise<void>((r) => waiting.set(op, r));
          await h.sync();
        },
        truncate: (n) => h.truncate(n),
        close: () => h.close(),
      };
    },
  };
  return {
    io,
    isHeld: (op: string) => waiting.has(op),
    release(op: string) {
      held.delete(op);
      waiting.get(op)?.();
      waiting.delete(op);
    },
  };
}

test('each record is durable before the action it protects: the approval before its post, the post before chat.postMessage, the mark before the call', async () => {
  const gate = holdingIo(new Set(['put', 'posting', 'executing']));
  const url = await start(gate.io);
  const { client } = await tasksClient(url);
  const created = await client.request({ method: 'tools/call', params: { name: 'deploy', arguments: { service: 'api' } } }, CreateTaskResultSchema, {
    task: {},
  });
  const id = created.task.taskId;

  await until(() => gate.isHeld('put'), 'the approval record to wait for its fsync');
  await new Promise((r) => setTimeout(r, 100));
  expect(fake.calls('chat.postMessage')).toHaveLength(0);
  gate.release('put');

  await until(() => gate.isHeld('posting'), 'the post record to wait for its fsync');
  await new Promise((r) => setTimeout(r, 100));
  expect(fake.calls('chat.postMessage')).toHaveLength(0);
  gate.release('posting');
  await until(() => fake.messages(CHANNEL).length === 1, 'the post');

  fake.addReaction(CHANNEL, fake.messages(CHANNEL)[0]!.ts, 'white_check_mark', ALICE);
  await until(() => gate.isHeld('executing'), 'the execution mark to wait for its fsync');
  await new Promise((r) => setTimeout(r, 100));
  expect(upstream.calls).toHaveLength(0);
  gate.release('executing');
  await until(async () => (await client.experimental.tasks.getTask(id)).status === 'completed', 'the task to complete');
  expect(upstream.calls.map((c) => c.tool)).toEqual(['deploy']);
  await client.close();
});

/** Posts the approval's message as the sidecar's Slack client does (same message and metadata). */
async function postMessage(p: PendingApproval): Promise<string> {
  const pool = new SlackConnectionPool({});
  const slack = new SlackApprovalClient(pool.get(TOKEN, fake.url), {
    channel: CHANNEL,
    approvers: { users: [ALICE], userGroups: [] },
    reactions: { approve: ['white_check_mark'], reject: ['x'] },
  });
  try {
    return (await slack.post(postInput(p))).ts;
  } finally {
    pool.close();
  }
}

/** The store as a process killed right after `posting` leaves it: the approval and the start of its post. */
async function crashedMidPost(p: PendingApproval): Promise<void> {
  const store = await openApprovalStore(stateDir, { log: log() });
  await store.put(p, CHANNEL);
  await store.posting(p.id, new Date());
  await store.close();
}

function pendingFor(auth: string): PendingApproval {
  const now = Date.now();
  const args = { service: 'web', version: '1.0.0' };
  return {
    id: 'tg-0123456789abcdef0123456789abcdef',
    channel: 'oncall',
    workload: { namespace: 'default', serviceAccount: 'default', pod: 'standalone' },
    source: 'up',
    method: 'tools/call',
    tool: 'deploy',
    arguments: args,
    requestHash: requestHash('up', 'deploy', args),
    reason: 'deploys need a human',
    client: `auth:${createHash('sha256').update(auth).digest('hex').slice(0, 32)}`,
    createdAt: new Date(now),
    expiresAt: new Date(now + 300_000),
  };
}

async function taskGet(url: string, taskId: string, headers: Record<string, string>): Promise<any> {
  const r = await rawPost(url, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tasks/get', params: { taskId } }), {
    'mcp-protocol-version': '2025-11-25',
    ...headers,
  });
  return messagesOf(r).find((m) => m.id === 3);
}

test('a post interrupted after chat.postMessage: the message is found in the channel history and adopted, not posted twice', async () => {
  const auth = 'Bearer agent-token';
  const p = pendingFor(auth);
  await crashedMidPost(p);
  // The crashed process's post did reach Slack.
  const ts = await postMessage(p);

  const url = await start();
  await until(() => lines.some((l) => l.includes('found the Slack message of a post interrupted by a restart')), 'the message to be found');
  expect(fake.messages(CHANNEL)).toHaveLength(1);
  expect((await taskGet(url, p.id, { authorization: auth })).result).toMatchObject({ taskId: p.id, status: 'working' });
  expect((await taskGet(url, p.id, { authorization: 'Bearer someone-else' })).error).toMatchObject({ code: -32602 });
  fake.addReaction(CHANNEL, ts, 'x', ALICE);
  await until(async () => (await taskGet(url, p.id, { authorization: auth })).result?.status === 'failed', 'the rejection to end the task');
  expect((await taskGet(url, p.id, { authorization: auth })).result.statusMessage).toMatch(/^Rejected by/);
  expect(fake.calls('chat.postMessage')).toHaveLength(1);
  expect(upstream.calls).toHaveLength(0);
});

test('a post interrupted before Slack got it: the history is looked at first, then it is posted once', async () => {
  const auth = 'Bearer agent-token';
  const p = pendingFor(auth);
  await crashedMidPost(p);
  const url = await start();
  await until(() => fake.messages(CHANNEL).length === 1, 'the post');
  const order = fake
    .calls()
    .map((c) => c.method)
    .filter((m) => m === 'conversations.history' || m === 'chat.postMessage');
  expect(order).toEqual(['conversations.history', 'chat.postMessage']);
  expect((await taskGet(url, p.id, { authorization: auth })).result).toMatchObject({ status: 'working' });
  expect(fake.messages(CHANNEL)).toHaveLength(1);
});

/** The store as a process killed while the approval waited in Slack leaves it, with its message posted. */
async function crashedWhilePosted(p: PendingApproval): Promise<string> {
  const store = await openApprovalStore(stateDir, { log: log() });
  await store.put(p, CHANNEL);
  await store.posting(p.id, new Date());
  const ts = await postMessage(p);
  await store.posted(p.id, ts);
  await store.close();
  return ts;
}

test('a held call found after a restart cannot be resumed: it is cancelled, its message says so, and it leaves the store', async () => {
  const p = { ...pendingFor('Bearer agent-token'), id: 'tgh-0123456789abcdef0123456789abcdef' };
  const ts = await crashedWhilePosted(p);
  await start();
  await until(() => fake.calls('chat.update').some((c) => c.args['ts'] === ts), 'the message update');
  expect(JSON.stringify(fake.messages(CHANNEL)[0]!.blocks)).toMatch(/Cancelled/);
  // The end record was queued before the update was sent; closing flushes the journal.
  for (const s of sidecars.splice(0)) await s.close();
  const again = await openApprovalStore(stateDir, { log: log() });
  expect(again.found).toBe(0);
  await again.close();
  expect(upstream.calls).toHaveLength(0);
});

test('an approval that expired while no sidecar ran, before it was posted, ends expired without a message', async () => {
  const auth = 'Bearer agent-token';
  const p = { ...pendingFor(auth), expiresAt: new Date(Date.now() - 1000) };
  const store = await openApprovalStore(stateDir, { log: log() });
  await store.put(p, CHANNEL);
  await store.close();
  const url = await start();
  const t = (await taskGet(url, p.id, { authorization: auth })).result;
  expect(t).toMatchObject({ taskId: p.id, status: 'failed' });
  expect(t.statusMessage).toMatch(/expired before it was posted/);
  expect(fake.calls('chat.postMessage')).toHaveLength(0);
});

test('an approval whose channel left approvalChannels ends failed after the restart, for its owner', async () => {
  const auth = 'Bearer agent-token';
  const p = { ...pendingFor(auth), channel: 'gone' };
  const store = await openApprovalStore(stateDir, { log: log() });
  await store.put(p, CHANNEL);
  await store.posted(p.id, '1.000001');
  await store.close();
  const url = await start();
  const t = (await taskGet(url, p.id, { authorization: auth })).result;
  expect(t).toMatchObject({ status: 'failed' });
  expect(t.statusMessage).toMatch(/approval channel "gone" is no longer configured/);
  expect(upstream.calls).toHaveLength(0);
});

/** A task-augmented deploy call; its task id. */
async function createDeploy(client: Awaited<ReturnType<typeof tasksClient>>['client'], version: string): Promise<string> {
  const r = await client.request({ method: 'tools/call', params: { name: 'deploy', arguments: { service: 'api', version } } }, CreateTaskResultSchema, {
    task: {},
  });
  return r.task.taskId;
}

test('a full store refuses a new approval with a clear error, counted as a failed submit; nothing is posted for it', async () => {
  const url = await start(undefined, 1);
  const { client } = await tasksClient(url);
  const create = (version: string) => createDeploy(client, version);
  const first = await create('1');
  await until(() => fake.messages(CHANNEL).length === 1, 'the first post');
  const second = await create('2');
  await until(async () => (await client.experimental.tasks.getTask(second)).status === 'failed', 'the second task to fail');
  expect((await client.experimental.tasks.getTask(second)).statusMessage).toMatch(
    /^Approval unavailable; not executed: the approval store .*approvals\.journal already holds 1 approvals, the most it keeps \(1\)/,
  );
  expect((await client.experimental.tasks.getTask(first)).status).toBe('working');
  const metrics = await (await fetch(`http://127.0.0.1:${sidecars[0]!.adminPort}/metrics`)).text();
  expect(metrics).toMatch(/thoughtgate_sidecar_approval_backend_write_failures_total\{op="submit",cause="store_full"\} 1/);
  expect(fake.calls('chat.postMessage')).toHaveLength(1);
  await client.close();
});

/** The store as a process that can write it (but not Slack) would forge it: an approval, maybe a message, and a decision. */
async function forged(p: PendingApproval, ts?: string): Promise<void> {
  const store = await openApprovalStore(stateDir, { log: log() });
  await store.put(p, CHANNEL);
  if (ts !== undefined) await store.posted(p.id, ts);
  await store.decided(p.id, { id: p.id, outcome: 'approved', by: [{ id: ALICE }], at: new Date(), message: 'approved in Slack by alice' });
  await store.close();
}

test('an approval recorded as decided with no Slack message on record is never run after a restart', async () => {
  const auth = 'Bearer agent-token';
  const p = pendingFor(auth);
  await forged(p);
  const url = await start();
  const t = (await taskGet(url, p.id, { authorization: auth })).result;
  expect(t).toMatchObject({ status: 'failed' });
  expect(t.statusMessage).toMatch(/never posted to Slack; not run/);
  await new Promise((r) => setTimeout(r, 200));
  expect(upstream.calls).toHaveLength(0);
});

test('an approval recorded as decided is read again from Slack after a restart: it runs only once Slack says approved', async () => {
  const auth = 'Bearer agent-token';
  const p = pendingFor(auth);
  const ts = await postMessage(p);
  await forged(p, ts);
  const url = await start();
  // Slack shows no decision: the store alone does not run it.
  await until(() => fake.calls('reactions.get').length >= 2, 'Slack to be read again');
  expect(upstream.calls).toHaveLength(0);
  expect((await taskGet(url, p.id, { authorization: auth })).result).toMatchObject({ status: 'working' });
  fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);
  // Run once Slack says so (this upstream then refuses the call: the client's MCP session is gone
  // with the restart; what counts is that it was executed).
  await until(async () => (await taskGet(url, p.id, { authorization: auth })).result?.status !== 'working', 'the task to end');
  expect((await taskGet(url, p.id, { authorization: auth })).result.statusMessage).toMatch(/^Approved by U0ALICE\. Tool execution failed: Session not found/);
});

test('an approval decided before a restart that came long after its expiry is not run: it ends failed and its message says why', async () => {
  const auth = 'Bearer agent-token';
  const p = { ...pendingFor(auth), expiresAt: new Date(Date.now() - 60_000) };
  const ts = await postMessage(p);
  fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);
  await forged(p, ts);
  const url = await start();
  const t = (await taskGet(url, p.id, { authorization: auth })).result;
  expect(t).toMatchObject({ status: 'failed' });
  expect(t.statusMessage).toMatch(/after the approval expired; not run this late/);
  await until(() => fake.calls('chat.update').some((c) => c.args['ts'] === ts), 'the message update');
  expect(JSON.stringify(fake.messages(CHANNEL)[0]!.blocks)).toMatch(/not run this late/);
  expect(upstream.calls).toHaveLength(0);
});

test("the store's use against its bounds is on /metrics; a journal that breaks fails /ready with the reason and counts as broken, a full store as full", async () => {
  let broken = false;
  const io: JournalIo = {
    ...nodeJournalIo,
    async openAppend(f) {
      const h = await nodeJournalIo.openAppend(f);
      const fail = async () => {
        if (broken) throw new Error('EIO: i/o error');
      };
      return {
        async write(d) {
          await fail();
          await h.write(d);
        },
        sync: () => h.sync(),
        async truncate(n) {
          await fail();
          await h.truncate(n);
        },
        close: () => h.close(),
      };
    },
  };
  const url = await start(io, 2);
  const admin = `http://127.0.0.1:${sidecars[0]!.adminPort}`;
  const metric = async (name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${admin}/metrics`)).text())?.[1];
  const { client } = await tasksClient(url);
  const create = (version: string) => createDeploy(client, version);
  const first = await create('1');
  const second = await create('2');
  await until(() => fake.messages(CHANNEL).length === 2, 'the posts');
  expect(await metric('thoughtgate_sidecar_approval_store_approvals')).toBe('2');
  expect(await metric('thoughtgate_sidecar_approval_store_approvals_max')).toBe('2');
  expect(Number(await metric('thoughtgate_sidecar_approval_store_bytes'))).toBeGreaterThan(0);
  expect(await metric('thoughtgate_sidecar_approval_store_bytes_max')).toBe(String(64 * 1024 * 1024));
  expect(await metric('thoughtgate_sidecar_approval_store_writable')).toBe('1');
  expect((await fetch(`${admin}/ready`)).status).toBe(200);
  const full = await create('3');
  await until(async () => (await client.experimental.tasks.getTask(full)).status === 'failed', 'the full store to refuse');
  expect(await metric('thoughtgate_sidecar_approval_store_write_failures_total\\{reason="full"\\}')).toBe('1');

  // The disk fails from here on: the cancel writes the first approval's end, which fails and
  // cannot be cut off again, so the journal refuses every later write.
  broken = true;
  await client.experimental.tasks.cancelTask(first);
  await until(async () => (await fetch(`${admin}/ready`)).status === 503, '/ready to fail');
  const ready = (await (await fetch(`${admin}/ready`)).json()) as { approvalStore: { writable: boolean; reason: string } };
  expect(ready.approvalStore).toEqual({ writable: false, reason: expect.stringMatching(/could not be written nor repaired \(EIO.*refusing further writes/) });
  expect(await metric('thoughtgate_sidecar_approval_store_writable')).toBe('0');
  expect(await metric('thoughtgate_sidecar_approval_store_write_failures_total\\{reason="broken"\\}')).toBe('1');
  // An approval given now cannot get its execution mark: not run, counted with its cause.
  fake.addReaction(CHANNEL, fake.messages(CHANNEL)[1]!.ts, 'white_check_mark', ALICE);
  await until(async () => (await client.experimental.tasks.getTask(second)).status === 'failed', 'the approved call to fail');
  expect(await metric('thoughtgate_sidecar_approval_backend_write_failures_total\\{op="mark_executing",cause="store_broken"\\}')).toBe('1');
  expect(await metric('thoughtgate_sidecar_approval_backend_write_failures_total\\{op="submit",cause="store_full"\\}')).toBe('1');
  expect(upstream.calls).toHaveLength(0);
  await client.close();
});

// The upstream's own MCP tasks next to ThoughtGate's, against server-everything run as a process
// (its simulate-research-query tool is taskSupport "required" and its tasks/list paginates by 10).
// Three sources point at it: `ev` forwards everything, `evapp` needs approval for echo, `evreq`
// needs approval for the task-required tool itself.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema, CreateTaskResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { standaloneBackend } from '../sidecar/approvals/standalone.js';
import { createLogger } from '../lib/log.js';
import { fileProvider, loadInitial } from '../sidecar/providers/file.js';
import { startSidecar, type Sidecar } from '../sidecar/sidecar.js';
import { ALICE, CHANNEL, FAST, tasksClient, TOKEN, until } from './approvals-harness.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-server.js';
import { startEverything, type Proc } from './support/processes.js';

const RELATED = 'io.modelcontextprotocol/related-task';
const RESEARCH = 'simulate-research-query';

let everything: { url: string; proc: Proc };
let fake: FakeSlack;
let sidecar: Sidecar;
let dir: string;
const url = (source: string) => `http://127.0.0.1:${sidecar.port}/mcp/${source}`;

beforeAll(async () => {
  everything = await startEverything();
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [{ id: ALICE, name: 'alice' }],
  });
  dir = mkdtempSync(join(tmpdir(), 'tg-approvals-ev-'));
  const configPath = join(dir, 'thoughtgate.yaml');
  writeFileSync(
    configPath,
    `
sources:
  - { name: ev, url: "${everything.url}" }
  - { name: evapp, url: "${everything.url}" }
  - { name: evreq, url: "${everything.url}" }
rules:
  - match: { source: evapp, tool: echo }
    action: approve
    approval: { channel: oncall }
  - match: { source: evreq, tool: ${RESEARCH} }
    action: approve
    approval: { channel: oncall }
defaultAction: forward
approvalChannels:
  - name: oncall
    slack: { channel: ${CHANNEL}, apiUrl: "${fake.url}", tokenEnv: TG_TEST_SLACK_TOKEN }
    approvers: { users: [${ALICE}] }
approvals:
  pollInterval: 100ms
`,
  );
  const env = { TG_TEST_SLACK_TOKEN: TOKEN };
  const log = createLogger('warn', () => undefined);
  const initial = await loadInitial(configPath, env);
  if (!initial.ok) throw new Error(initial.errors.join('\n'));
  sidecar = await startSidecar({
    port: 0,
    adminPort: 0,
    bind: '127.0.0.1',
    log,
    provider: fileProvider(configPath, env, initial, log, 100),
    approvals: standaloneBackend(initial.config.approvalChannels ?? [], env, log, undefined, FAST),
  });
}, 30_000);

afterAll(async () => {
  await sidecar?.close();
  await fake?.close();
  await everything?.proc.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('capabilities and taskSupport: the upstream declared tasks, and everything it declared is kept', async () => {
  const { client } = await tasksClient(url('evapp'));
  expect(client.getServerCapabilities()?.tasks).toEqual({ list: {}, cancel: {}, requests: { tools: { call: {} } } });
  const tools = Object.fromEntries((await client.listTools()).tools.map((t) => [t.name, t.execution?.taskSupport]));
  expect(tools[RESEARCH]).toBe('required'); // the upstream's own, kept
  expect(tools['echo']).toBe('optional'); // needs approval here; the upstream said "forbidden"
  expect(tools['get-sum']).toBe('forbidden'); // forwarded, untouched
  await client.close();
});

test("the upstream's own tasks pass through untouched: create, get, result, list", async () => {
  const { client } = await tasksClient(url('ev'));
  await client.listTools();
  const events: { type: string; task?: { taskId: string }; result?: Record<string, unknown> }[] = [];
  for await (const ev of client.experimental.tasks.callToolStream({ name: RESEARCH, arguments: { topic: 'otters' } }, CallToolResultSchema, {
    task: { ttl: 60_000 },
  })) {
    events.push(ev as (typeof events)[number]);
  }
  const created = events[0]!;
  expect(created.type).toBe('taskCreated');
  const id = created.task!.taskId;
  expect(id).not.toMatch(/^tg-/);
  const last = events[events.length - 1]!;
  expect(last.type).toBe('result');
  expect((last.result!['_meta'] as Record<string, unknown>)[RELATED]).toEqual({ taskId: id });
  expect((await client.experimental.tasks.getTask(id)).status).toBe('completed');
  expect((await client.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).toContain(id);
  await client.close();
}, 30_000);

test("tasks/list: ThoughtGate's tasks first, then the upstream's, and both paginations keep working", async () => {
  const { client } = await tasksClient(url('evapp'));
  await client.listTools();
  // Ours: an echo waiting for approval. The upstream's: 11 research tasks (it pages by 10).
  const ours = await client.request({ method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } }, CreateTaskResultSchema, { task: {} });
  const theirs: string[] = [];
  for (let i = 0; i < 11; i++) {
    const r = await client.request({ method: 'tools/call', params: { name: RESEARCH, arguments: { topic: `t${i}` } } }, CreateTaskResultSchema, {
      task: { ttl: 60_000 },
    });
    theirs.push(r.task.taskId);
  }
  const page1 = await client.experimental.tasks.listTasks();
  expect(page1.tasks[0]!.taskId).toBe(ours.task.taskId);
  expect(page1.tasks.slice(1).map((t) => t.taskId)).toEqual(theirs.slice(0, 10));
  expect(page1.nextCursor).toMatch(/^up1\./);
  const page2 = await client.experimental.tasks.listTasks(page1.nextCursor);
  expect(page2.tasks.map((t) => t.taskId)).toEqual([theirs[10]]);
  expect(page2.nextCursor).toBeUndefined();
  // Cancelling one of ours does not touch the upstream; cancelling one of theirs is forwarded.
  expect((await client.experimental.tasks.cancelTask(ours.task.taskId)).status).toBe('cancelled');
  expect((await client.experimental.tasks.cancelTask(theirs[0]!)).status).toBe('cancelled');
  await client.close();
}, 30_000);

test('approval of a task-required upstream tool: ThoughtGate runs it as the upstream task and returns its result as ours', async () => {
  const { client } = await tasksClient(url('evreq'));
  await client.listTools();
  const before = fake.messages(CHANNEL).length;
  const created = await client.request({ method: 'tools/call', params: { name: RESEARCH, arguments: { topic: 'beavers' } } }, CreateTaskResultSchema, {
    task: {},
  });
  expect(created.task.taskId).toMatch(/^tg-/);
  await until(() => fake.messages(CHANNEL).length > before, 'the approval message');
  const m = fake.messages(CHANNEL)[before]!;
  fake.addReaction(CHANNEL, m.ts, 'white_check_mark', ALICE);
  const r = await client.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema, { timeout: 30_000 });
  expect(JSON.stringify(r['content'])).toContain('beavers');
  expect((r['_meta'] as Record<string, unknown>)[RELATED]).toEqual({ taskId: created.task.taskId });
  expect((await client.experimental.tasks.getTask(created.task.taskId)).status).toBe('completed');
  await client.close();
}, 30_000);

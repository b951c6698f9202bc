// Gate 4 end to end with real peers: the MCP SDK client (its tasks API, and a plain client whose
// call is held), the sidecar with the standalone backend, the real @slack/web-api against the fake
// Slack Web API, and a real SDK upstream that records every call it receives.
import { CallToolResultSchema, CreateTaskResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { IdentitySchema } from '../api/config.js';
import { createLogger } from '../lib/log.js';
import { parseConfigText } from '../policy/config/load.js';
import { approvalInterceptor } from '../sidecar/approvals/interceptor.js';
import { createApprovalRuntime, type ApprovalRuntime } from '../sidecar/approvals/runtime.js';
import { standaloneBackend } from '../sidecar/approvals/standalone.js';
import { createSidecarMetrics } from '../sidecar/metrics.js';
import { ByteBudget } from '../sidecar/proxy/budget.js';
import { createRequestContext } from '../sidecar/proxy/context.js';
import { handleMcp } from '../sidecar/proxy/mcp.js';
import { createUpstreamClient, UpstreamPools } from '../sidecar/proxy/upstream.js';
import { compileSnapshot } from '../sidecar/snapshot.js';
import {
  ALICE,
  approvalConfig,
  BOB,
  CHANNEL,
  FAST,
  MALLORY,
  messageText,
  plainClient,
  sleep,
  startRig,
  tasksClient,
  TOKEN,
  until,
  updatesOf,
  type Rig,
} from './approvals-harness.js';
import { connectClient, messagesOf, rawPost, startTestSidecar } from './support/sidecar.js';
import { startUpstream } from './support/upstream.js';
import { governedConfig } from './support/configs.js';

const RELATED = 'io.modelcontextprotocol/related-task';

async function createTask(client: Client, name: string, args: Record<string, unknown>, ttl?: number) {
  const r = await client.request({ method: 'tools/call', params: { name, arguments: args } }, CreateTaskResultSchema, {
    task: ttl === undefined ? {} : { ttl },
  });
  return r.task;
}

async function resultOrError(p: Promise<unknown>): Promise<{ ok: unknown } | { code: number; message: string; data: unknown }> {
  return p.then(
    (ok) => ({ ok }),
    (e: unknown) => (e instanceof McpError ? { code: e.code, message: e.message, data: e.data } : Promise.reject(e)),
  );
}

/** Waits until the poller has read the message at least `n` more times (so a reaction was seen). */
async function polled(rig: Rig, ts: string, n = 2): Promise<void> {
  const count = () => rig.fake.calls('reactions.get').filter((c) => c.args['timestamp'] === ts).length;
  const start = count();
  await until(() => count() >= start + n, `${n} more polls of ${ts}`);
}

async function finalUpdate(rig: Rig, ts: string, pattern: RegExp): Promise<void> {
  await until(() => pattern.test(messageText(rig.fake, ts)), `Slack message ${ts} to match ${pattern}`);
}

describe('what the sidecar advertises', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig();
  });
  afterAll(async () => {
    await rig.close();
  });

  test('initialize merges capabilities.tasks; tools that may need approval become task-capable', async () => {
    const { client } = await tasksClient(rig.url);
    expect(client.getServerCapabilities()?.tasks).toEqual({ list: {}, cancel: {}, requests: { tools: { call: {} } } });
    expect(client.getServerCapabilities()?.tools).toEqual({});
    const tools = Object.fromEntries((await client.listTools()).tools.map((t) => [t.name, t.execution?.taskSupport]));
    // deploy and fail_* need approval, scale may (Cedar with @approve): absent upstream → optional.
    // status is only ever forwarded and keeps the upstream's "forbidden".
    expect(tools).toEqual({
      deploy: 'optional',
      status: 'forbidden',
      fail_soft: 'optional',
      fail_hard: 'optional',
      slow_deploy: 'optional',
      scale: 'optional',
    });
    await client.close();
  });

  test('without approval channels nothing is advertised and approval calls answer -32006', async () => {
    const upstream = await startUpstream({ stateful: true });
    const tg = await startTestSidecar(governedConfig(upstream.url));
    try {
      const { client } = await connectClient(tg.mcpUrl('up'));
      expect(client.getServerCapabilities()?.tasks).toBeUndefined();
      expect((await client.listTools()).tools.every((t) => t.execution?.taskSupport !== 'optional')).toBe(true);
      const err = await resultOrError(client.callTool({ name: 'transfer_funds', arguments: { amount: 5000, to: 'bob' } }));
      expect(err).toMatchObject({ code: -32006 });
      expect((err as { data: { reason: string } }).data.reason).toMatch(/no approval channels configured/);
      await client.close();
    } finally {
      await tg.close();
      await upstream.close();
    }
  });
});

describe('MCP tasks (SDK client with the tasks API)', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await startRig({ config: (u, s) => approvalConfig(u, s, { approvals: '  maxPending: { client: 3, workload: 5 }' }) });
  });
  afterEach(async () => {
    await rig.close();
  });

  test('approved by an allowlisted approver: runs once, exactly as submitted, and the Slack message follows it', async () => {
    const { client, transport } = await tasksClient(rig.url);
    const args = { service: 'api', version: '1.2.3', deployToken: 'hunter2', nested: { b: [1, 2, { c: null }], a: 'x' } };
    const events: { type: string; task?: { taskId: string; status: string; statusMessage?: string }; result?: Record<string, unknown> }[] = [];
    const stream = client.experimental.tasks.callToolStream({ name: 'deploy', arguments: args }, CallToolResultSchema, { task: { ttl: 120_000 } });
    const approver = rig.message(0).then((m) => rig.approve(m.ts));
    for await (const ev of stream) events.push(ev as (typeof events)[number]);
    await approver;

    const created = events[0]!;
    expect(created.type).toBe('taskCreated');
    expect(created.task!.taskId).toMatch(/^tg-[0-9a-f]{32}$/);
    expect(created.task!.status).toBe('working');
    expect(created.task!.statusMessage).toMatch(/approval channel "oncall" \(Slack channel C0APPROVE\)/);
    expect(JSON.stringify(events)).not.toContain('xoxb');
    const last = events[events.length - 1]!;
    expect(last.type).toBe('result');
    expect(last.result!['content']).toEqual([{ type: 'text', text: 'deployed api@1.2.3' }]);
    expect(last.result!['_meta']).toEqual({ [RELATED]: { taskId: created.task!.taskId } });

    // The upstream saw it once, in the client's own MCP session, with exactly the submitted arguments.
    expect(rig.upstream.calls).toHaveLength(1);
    expect(rig.upstream.calls[0]).toMatchObject({ tool: 'deploy', args, session: transport.sessionId });
    expect(rig.upstream.calls[0]!.task).toBeUndefined();

    const ts = (await rig.message(0)).ts;
    const posted = rig.fake.messages(CHANNEL)[0]!.history[0]!;
    const postedText = JSON.stringify(posted.blocks);
    expect(postedText).toContain('deploy');
    expect(postedText).toContain('1.2.3');
    expect(postedText).not.toContain('hunter2'); // the channel redacts *token*
    await finalUpdate(rig, ts, /Executed; the tool returned a result/);
    expect(messageText(rig.fake, ts)).toMatch(/Approved/);
    expect((await client.experimental.tasks.getTask(created.task!.taskId)).status).toBe('completed');
    await client.close();
  });

  test('rejected: -32007 from tasks/result, status failed, nothing forwarded, message updated', async () => {
    const { client } = await tasksClient(rig.url);
    const task = await createTask(client, 'deploy', { service: 'db', version: '9' });
    const m = await rig.message(0);
    rig.reject(m.ts, BOB);
    const r = await resultOrError(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema));
    expect(r).toMatchObject({ code: -32007, data: { gate: 'approval', rule: 'deploys-need-approval', taskId: task.taskId } });
    const t = await client.experimental.tasks.getTask(task.taskId);
    expect(t.status).toBe('failed');
    expect(t.statusMessage).toMatch(/^Rejected by/);
    expect(rig.upstream.calls).toHaveLength(0);
    await finalUpdate(rig, m.ts, /Rejected/);
    await client.close();
  });

  test('a non-approver is ignored; with approve and reject both present, reject wins', async () => {
    const { client } = await tasksClient(rig.url);
    const task = await createTask(client, 'deploy', { service: 'cache', version: '1' });
    const m = await rig.message(0);
    rig.approve(m.ts, MALLORY);
    await polled(rig, m.ts, 3);
    expect((await client.experimental.tasks.getTask(task.taskId)).status).toBe('working');
    rig.approve(m.ts, ALICE);
    rig.reject(m.ts, BOB);
    const r = await resultOrError(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema));
    expect(r).toMatchObject({ code: -32007 });
    expect(rig.upstream.calls).toHaveLength(0);
    await client.close();
  });

  test('tasks/cancel: cancelled at once, -32009 from tasks/result, a late approval runs nothing', async () => {
    const { client } = await tasksClient(rig.url);
    const task = await createTask(client, 'deploy', { service: 'queue', version: '3' });
    const m = await rig.message(0);
    const cancelled = await client.experimental.tasks.cancelTask(task.taskId);
    expect(cancelled.status).toBe('cancelled');
    const again = await resultOrError(client.experimental.tasks.cancelTask(task.taskId));
    expect(again).toMatchObject({ code: -32602 });
    expect((again as { message: string }).message).toMatch(/terminal status 'cancelled'/);
    expect(await resultOrError(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema))).toMatchObject({ code: -32009 });
    await finalUpdate(rig, m.ts, /Cancelled/);
    rig.approve(m.ts);
    await sleep(300);
    expect(rig.upstream.calls).toHaveLength(0);
    await client.close();
  });

  test('the upstream failing after approval: tasks/result is exactly its JSON-RPC error, or its isError result', async () => {
    const { client } = await tasksClient(rig.url);
    const hard = await createTask(client, 'fail_hard', {});
    rig.approve((await rig.message(0)).ts);
    const err = await resultOrError(client.experimental.tasks.getTaskResult(hard.taskId, CallToolResultSchema));
    // The upstream's error object as it sent it (the SDK server's McpError already says "MCP error
    // -32050: …" on the wire, and the SDK client prefixes it once more when it throws).
    expect(err).toEqual({ code: -32050, message: 'MCP error -32050: MCP error -32050: deploy pipeline exploded', data: { stage: 'build' } });
    const t1 = await client.experimental.tasks.getTask(hard.taskId);
    expect(t1.status).toBe('failed');
    expect(t1.statusMessage).toMatch(/deploy pipeline exploded/);

    const soft = await createTask(client, 'fail_soft', {});
    rig.approve((await rig.message(1)).ts);
    const r = await client.experimental.tasks.getTaskResult(soft.taskId, CallToolResultSchema);
    expect(r).toEqual({ content: [{ type: 'text', text: 'disk full' }], isError: true, _meta: { [RELATED]: { taskId: soft.taskId } } });
    expect((await client.experimental.tasks.getTask(soft.taskId)).status).toBe('failed');
    expect(rig.upstream.calls.map((c) => c.tool)).toEqual(['fail_hard', 'fail_soft']);
    await finalUpdate(rig, (await rig.message(1)).ts, /failed/);
    await client.close();
  });

  test('ids: unknown and foreign ids are -32602; another client sees nothing of a task', async () => {
    const a = await tasksClient(rig.url);
    const b = await tasksClient(rig.url);
    const task = await createTask(a.client, 'deploy', { service: 'x', version: '1' });
    for (const c of [a.client, b.client]) {
      expect(await resultOrError(c.experimental.tasks.getTask(`tg-${'0'.repeat(32)}`))).toMatchObject({ code: -32602 });
    }
    expect(await resultOrError(b.client.experimental.tasks.getTask(task.taskId))).toMatchObject({
      code: -32602,
      message: expect.stringMatching(/Task not found/),
    });
    expect(await resultOrError(b.client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema))).toMatchObject({ code: -32602 });
    expect(await resultOrError(b.client.experimental.tasks.cancelTask(task.taskId))).toMatchObject({ code: -32602 });
    expect((await b.client.experimental.tasks.listTasks()).tasks).toEqual([]);
    const mine = await a.client.experimental.tasks.listTasks();
    expect(mine.tasks.map((t) => t.taskId)).toEqual([task.taskId]);
    expect(mine.nextCursor).toBeUndefined();
    // Still pending for its owner.
    expect((await a.client.experimental.tasks.getTask(task.taskId)).status).toBe('working');
    expect(await resultOrError(a.client.experimental.tasks.listTasks('garbage'))).toMatchObject({ code: -32602 });
    await a.client.close();
    await b.client.close();
  });

  test('limits: -32010 per client and per workload, with a clear message', async () => {
    const c1 = await tasksClient(rig.url);
    const c2 = await tasksClient(rig.url);
    for (let i = 0; i < 3; i++) await createTask(c1.client, 'deploy', { service: 's', version: String(i) });
    const overClient = await resultOrError(createTask(c1.client, 'deploy', { service: 's', version: '4' }));
    expect(overClient).toMatchObject({ code: -32010, data: { gate: 'approval', reason: expect.stringMatching(/approvals\.maxPending\.client is 3/) } });
    await createTask(c2.client, 'deploy', { service: 't', version: '1' });
    await createTask(c2.client, 'deploy', { service: 't', version: '2' });
    const overWorkload = await resultOrError(createTask(c2.client, 'deploy', { service: 't', version: '3' }));
    expect(overWorkload).toMatchObject({ code: -32010, data: { reason: expect.stringMatching(/approvals\.maxPending\.workload is 5/) } });
    // A held call counts too, and is refused as plain JSON before anything is held.
    const held = await rawPost(rig.url, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'deploy', arguments: {} } }), {
      'mcp-protocol-version': '2025-11-25',
    });
    expect(held.headers.get('content-type')).toMatch(/application\/json/);
    expect(messagesOf(held)[0]).toMatchObject({ id: 7, error: { code: -32010 } });
    expect(rig.upstream.calls).toHaveLength(0);
    await c1.client.close();
    await c2.client.close();
  });

  test('ttl: the requested ttl is bounded by approvals.maxTaskTtl and never below the approval timeout', async () => {
    const { client } = await tasksClient(rig.url);
    const long = await createTask(client, 'deploy', { service: 'a', version: '1' }, 1000 * 3600 * 1000);
    expect(long.ttl).toBe(24 * 3600 * 1000);
    const short = await createTask(client, 'deploy', { service: 'a', version: '2' }, 1000);
    expect(short.ttl).toBe(20_000 + 60_000); // the channel timeout (20s) plus a minute
    expect(short.pollInterval).toBe(50);
    await client.close();
  });

  test('Cedar decides per call: a task for a small scale is answered by ThoughtGate without approval, a big one waits', async () => {
    const { client } = await tasksClient(rig.url);
    const tools = Object.fromEntries((await client.listTools()).tools.map((t) => [t.name, t.execution?.taskSupport]));
    expect(tools['scale']).toBe('optional');
    const small = await createTask(client, 'scale', { replicas: 2 });
    expect(small.taskId).toMatch(/^tg-/);
    const r = await client.experimental.tasks.getTaskResult(small.taskId, CallToolResultSchema);
    expect(r).toEqual({ content: [{ type: 'text', text: 'scaled to 2' }], _meta: { [RELATED]: { taskId: small.taskId } } });
    expect(rig.fake.calls('chat.postMessage')).toHaveLength(0);
    // The upstream never declared tasks: it never sees params.task.
    expect(rig.upstream.calls).toEqual([expect.objectContaining({ tool: 'scale', args: { replicas: 2 }, task: undefined })]);

    const big = await createTask(client, 'scale', { replicas: 20 });
    const m = await rig.message(0);
    expect(messageText(rig.fake, m.ts)).toContain('big-scale');
    rig.approve(m.ts);
    expect((await client.experimental.tasks.getTaskResult(big.taskId, CallToolResultSchema))['content']).toEqual([{ type: 'text', text: 'scaled to 20' }]);
    // A tool that is only ever forwarded keeps the upstream's "forbidden": its tasks are the upstream's business.
    expect(tools['status']).toBe('forbidden');
    await client.close();
  });
});

describe('the approval deadline', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await startRig({ config: (u, s) => approvalConfig(u, s, { channelTimeout: '700ms' }) });
  });
  afterEach(async () => {
    await rig.close();
  });

  test('no decision in time: -32008 for the task and the held call; Slack says expired', async () => {
    const { client } = await tasksClient(rig.url);
    const task = await createTask(client, 'deploy', { service: 'slow', version: '1' });
    const plain = await plainClient(rig.url);
    const held = resultOrError(plain.client.callTool({ name: 'deploy', arguments: { service: 'held', version: '1' } }));
    expect(await resultOrError(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema))).toMatchObject({ code: -32008 });
    expect(await held).toMatchObject({ code: -32008 });
    const t = await client.experimental.tasks.getTask(task.taskId);
    expect(t.status).toBe('failed');
    expect(t.statusMessage).toMatch(/No decision in time/);
    await finalUpdate(rig, (await rig.message(0)).ts, /Expired/);
    expect(rig.upstream.calls).toHaveLength(0);
    await client.close();
    await plain.client.close();
  });
});

describe('held calls (a plain SDK client without tasks)', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await startRig();
  });
  afterEach(async () => {
    await rig.close();
  });

  test('approved: progress says approval is pending, then the upstream result arrives on the same response', async () => {
    const { client } = await plainClient(rig.url);
    const progress: { progress: number; message?: string }[] = [];
    const call = client.callTool({ name: 'deploy', arguments: { service: 'web', version: '2' } }, undefined, { onprogress: (p) => progress.push(p) });
    const m = await rig.message(0);
    await until(() => progress.length >= 2, 'progress notifications');
    rig.approve(m.ts);
    expect(await call).toEqual({ content: [{ type: 'text', text: 'deployed web@2' }] });
    expect(progress[0]!.message).toMatch(/approval channel "oncall"/);
    expect(progress.map((p) => p.progress)).toEqual(progress.map((_, i) => i));
    expect(rig.upstream.calls).toHaveLength(1);
    expect(rig.upstream.calls[0]!.args).toEqual({ service: 'web', version: '2' });
    await finalUpdate(rig, m.ts, /Executed/);
    await client.close();
  });

  test("the upstream's own progress follows ours, still increasing, and its result streams through", async () => {
    const { client } = await plainClient(rig.url);
    const progress: { progress: number; total?: number; message?: string }[] = [];
    const call = client.callTool({ name: 'slow_deploy', arguments: {} }, undefined, { onprogress: (p) => progress.push(p) });
    const m = await rig.message(0);
    await until(() => progress.length >= 1, 'first progress');
    rig.approve(m.ts);
    await until(() => progress.some((p) => p.message === 'halfway'), "the upstream's progress");
    rig.upstream.release();
    expect(await call).toEqual({ content: [{ type: 'text', text: 'slow deploy done' }] });
    const values = progress.map((p) => p.progress);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
    const ours = progress.filter((p) => /approval/.test(p.message ?? '')).length;
    expect(progress.slice(-2)).toEqual([
      { progress: ours, total: ours + 2, message: 'starting' },
      { progress: ours + 1, total: ours + 2, message: 'halfway' },
    ]);
    await client.close();
  });

  test('rejected: a JSON-RPC error -32007 on the held response', async () => {
    const { client } = await plainClient(rig.url);
    const call = resultOrError(client.callTool({ name: 'deploy', arguments: { service: 'no', version: '0' } }));
    rig.reject((await rig.message(0)).ts);
    expect(await call).toMatchObject({ code: -32007, data: { gate: 'approval', rule: 'deploys-need-approval' } });
    expect(rig.upstream.calls).toHaveLength(0);
    await client.close();
  });

  test('the client disconnecting cancels the approval; Slack says so and a late approval runs nothing', async () => {
    const ac = new AbortController();
    const { client } = await plainClient(rig.url);
    const r = fetch(rig.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'deploy', arguments: { service: 'gone', version: '1' } } }),
      signal: ac.signal,
    });
    const res = await r;
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const m = await rig.message(0);
    ac.abort();
    await finalUpdate(rig, m.ts, /Cancelled/);
    rig.approve(m.ts);
    await sleep(300);
    expect(rig.upstream.calls).toHaveLength(0);
    expect(rig.logs().some((l) => l['msg'] === 'approval cancelled by the client' && /disconnected/.test(String(l['why'])))).toBe(true);
    await client.close();
  });

  test('the SDK client giving up (notifications/cancelled, stream left open) cancels the waiting approval', async () => {
    const { client } = await plainClient(rig.url);
    const ac = new AbortController();
    const call = resultOrError(client.callTool({ name: 'deploy', arguments: { service: 'abandoned', version: '1' } }, undefined, { signal: ac.signal }));
    const m = await rig.message(0);
    ac.abort('the user pressed stop');
    expect(await call).toMatchObject({ code: expect.any(Number) });
    await finalUpdate(rig, m.ts, /Cancelled/);
    rig.approve(m.ts);
    await sleep(300);
    expect(rig.upstream.calls).toHaveLength(0);
    expect(rig.logs().some((l) => l['msg'] === 'approval cancelled by the client' && /notifications\/cancelled/.test(String(l['why'])))).toBe(true);
    // The notification was ThoughtGate's to handle: the upstream never heard of the request.
    expect(rig.upstream.bodies.some((b) => (b as { method?: string }).method === 'notifications/cancelled')).toBe(false);
    await client.close();
  });

  test('once the approved call runs upstream, the client giving up (notifications/cancelled) is forwarded to the upstream, never a cut of its request', async () => {
    const { client } = await plainClient(rig.url);
    const ac = new AbortController();
    const call = resultOrError(client.callTool({ name: 'slow_deploy', arguments: { service: 'running' } }, undefined, { signal: ac.signal }));
    rig.approve((await rig.message(0)).ts);
    await until(() => rig.upstream.calls.some((c) => c.tool === 'slow_deploy'), 'the approved call to run upstream');
    ac.abort('the user pressed stop');
    await call;
    await until(
      () => rig.upstream.bodies.some((b) => (b as { method?: string }).method === 'notifications/cancelled'),
      'the cancellation to reach the upstream',
    );
    expect(callCut(rig)).toBe(false);
    expect(rig.logs().some((l) => l['msg'] === 'approval cancelled by the client')).toBe(false);
    rig.upstream.release();
    await client.close();
  });

  test('inside a JSON-RPC batch an approval call is refused with -32006; the rest of the batch runs', async () => {
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'deploy', arguments: {} } },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'status', arguments: {} } },
    ];
    const { client } = await plainClient(rig.url);
    const session = (client as unknown as { _transport: { sessionId: string } })._transport.sessionId;
    const r = await rawPost(rig.url, JSON.stringify(batch), { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' });
    const msgs = messagesOf(r);
    expect(msgs.find((x) => x.id === 1)).toMatchObject({
      error: { code: -32006, data: { reason: expect.stringMatching(/not available inside JSON-RPC batches/) } },
    });
    expect(msgs.find((x) => x.id === 2)).toMatchObject({ result: { content: [{ type: 'text', text: 'all green' }] } });
    expect(rig.upstream.calls.map((c) => c.tool)).toEqual(['status']);
    expect(rig.fake.calls('chat.postMessage')).toHaveLength(0);
    await client.close();
  });
});

describe('held calls to an upstream that answers JSON', () => {
  test('the JSON answer arrives as one SSE event', async () => {
    const rig = await startRig({ upstream: { json: true } });
    try {
      const { client } = await plainClient(rig.url);
      const call = client.callTool({ name: 'deploy', arguments: { service: 'json', version: '1' } });
      rig.approve((await rig.message(0)).ts);
      expect(await call).toEqual({ content: [{ type: 'text', text: 'deployed json@1' }] });
      const { client: tc } = await tasksClient(rig.url);
      const task = await createTask(tc, 'fail_hard', {});
      rig.approve((await rig.message(1)).ts);
      expect(await resultOrError(tc.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema))).toMatchObject({
        code: -32050,
        data: { stage: 'build' },
      });
      await client.close();
      await tc.close();
    } finally {
      await rig.close();
    }
  });
});

describe('Slack trouble', () => {
  test('a 429 storm: the limiter pauses for Retry-After, and the approval is still decided', async () => {
    // Slack's real budgets here, and the fake enforcing Slack's tiers: only forced 429s may appear.
    const rig = await startRig({ backend: { limiter: {} } });
    try {
      rig.fake.setRateLimit('reactions.get', { limit: 50, windowMs: 60_000 });
      rig.fake.force429('chat.postMessage', 2, 1);
      const { client } = await tasksClient(rig.url);
      const task = await createTask(client, 'deploy', { service: 'storm', version: '1' });
      const m = await rig.message(0);
      rig.fake.force429('reactions.get', 3, 1);
      rig.approve(m.ts);
      const r = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema, { timeout: 30_000 });
      expect(r['content']).toEqual([{ type: 'text', text: 'deployed storm@1' }]);
      const calls = rig.fake.calls();
      const limited = calls.filter((c) => c.status === 429);
      expect(limited.map((c) => c.method).sort()).toEqual(['chat.postMessage', 'chat.postMessage', 'reactions.get', 'reactions.get', 'reactions.get']);
      // After each 429 nothing went to Slack for this token until Retry-After had passed.
      for (const l of limited) {
        const next = calls.find((c) => c.seq > l.seq);
        if (next) expect(next.time - l.time).toBeGreaterThanOrEqual(900);
      }
      expect(rig.upstream.calls).toHaveLength(1);
      await client.close();
    } finally {
      await rig.close();
    }
  }, 60_000);

  test('Slack down at submit: -32006 with the reason, for tasks and held calls; nothing forwarded', async () => {
    const rig = await startRig();
    try {
      await rig.fake.setDown('refuse');
      const { client } = await tasksClient(rig.url);
      const task = await createTask(client, 'deploy', { service: 'down', version: '1' });
      expect(task.status).toBe('working');
      const r = await resultOrError(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema));
      expect(r).toMatchObject({
        code: -32006,
        data: { reason: expect.stringMatching(/could not be recorded \(Slack, standalone\).*cannot reach Slack.*not forwarded/) },
      });
      expect((await client.experimental.tasks.getTask(task.taskId)).statusMessage).toMatch(/Approval unavailable/);
      const plain = await plainClient(rig.url);
      expect(await resultOrError(plain.client.callTool({ name: 'deploy', arguments: { service: 'down', version: '2' } }))).toMatchObject({ code: -32006 });
      expect(rig.upstream.calls).toHaveLength(0);
      await client.close();
      await plain.client.close();
    } finally {
      await rig.fake.setDown(false);
      await rig.close();
    }
  });

  test('Slack down while pending: polling backs off and the decision counts once Slack is back', async () => {
    const rig = await startRig();
    try {
      const { client } = await tasksClient(rig.url);
      const task = await createTask(client, 'deploy', { service: 'flaky', version: '1' });
      const m = await rig.message(0);
      await rig.fake.setDown('http500');
      rig.approve(m.ts);
      await until(() => rig.fake.calls('reactions.get').filter((c) => c.status === 500).length >= 3, 'failed polls');
      expect((await client.experimental.tasks.getTask(task.taskId)).status).toBe('working');
      // Backoff: the gaps between failed polls grow.
      const failed = rig.fake
        .calls('reactions.get')
        .filter((c) => c.status === 500)
        .map((c) => c.time);
      expect(failed[2]! - failed[1]!).toBeGreaterThanOrEqual(failed[1]! - failed[0]! - 5);
      await rig.fake.setDown(false);
      const r = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
      expect(r['content']).toEqual([{ type: 'text', text: 'deployed flaky@1' }]);
      expect(rig.upstream.calls).toHaveLength(1);
      await client.close();
    } finally {
      await rig.close();
    }
  });

  test('Slack down until the deadline: the approval expires cleanly (-32008) and polling stops', async () => {
    const rig = await startRig({ config: (u, s) => approvalConfig(u, s, { channelTimeout: '600ms' }) });
    try {
      const { client } = await tasksClient(rig.url);
      const task = await createTask(client, 'deploy', { service: 'dark', version: '1' });
      await rig.message(0);
      await rig.fake.setDown('http500');
      expect(await resultOrError(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema))).toMatchObject({ code: -32008 });
      const polls = rig.fake.calls('reactions.get').length;
      await sleep(500);
      expect(rig.fake.calls('reactions.get').length).toBe(polls);
      expect(rig.upstream.calls).toHaveLength(0);
      await client.close();
    } finally {
      await rig.fake.setDown(false);
      await rig.close();
    }
  });
});

describe('shutdown', () => {
  test('a held call waiting for a human gets -32009 when the sidecar stops', async () => {
    const rig = await startRig();
    const { client } = await plainClient(rig.url);
    const call = resultOrError(client.callTool({ name: 'deploy', arguments: { service: 'bye', version: '1' } }));
    const m = await rig.message(0);
    await rig.sidecar.close();
    expect(await call).toMatchObject({ code: -32009, data: { reason: expect.stringMatching(/shutting down/) } });
    expect(updatesOf(rig.fake, m.ts).length).toBeGreaterThanOrEqual(1);
    await rig.close();
  });

  test('the sidecar stopping past its drain deadline while an approved held call runs upstream: aborted there, and nothing fails in ThoughtGate', async () => {
    const rig = await startRig({ upstream: { json: true }, sidecar: { drainTimeoutMs: 300 } });
    const { client } = await plainClient(rig.url);
    const call = resultOrError(client.callTool({ name: 'slow_deploy', arguments: { service: 'late' } }));
    rig.approve((await rig.message(0)).ts);
    await until(() => rig.upstream.calls.some((c) => c.tool === 'slow_deploy'), 'the approved call to run upstream');
    await rig.sidecar.close();
    // The client's connection was cut at the deadline: its call gets no answer (the SDK client keeps waiting).
    void call;
    await until(() => callCut(rig), 'the upstream request to be aborted');
    await sleep(100);
    expect(rig.logs().filter((l) => l['level'] === 'error')).toEqual([]);
    await client.close();
    await rig.close();
  });

  // The sidecar stops its engine after the drain deadline (engine.close(); engine.drain() at SIGTERM):
  // here the test stops it, on a front doing what the sidecar does for /mcp/up (a real request
  // context, handleMcp, the approval interceptor) over a runtime of its own.
  test.each([
    ['SSE, before its first event', false, false],
    ['SSE, its progress relayed', false, true],
    ['JSON', true, false],
  ])(
    'the engine closing while an approved held call runs upstream (%s): aborted at the upstream, the client told -32009 that it may have run',
    async (_how, json, progress) => {
      const rig = await startRig({ upstream: { json } });
      const front = await ownFront(rig);
      try {
        const { client } = await plainClient(front.url);
        const seen: string[] = [];
        const onprogress = (p: { message?: string }) => void seen.push(p.message ?? '');
        const call = resultOrError(client.callTool({ name: 'slow_deploy', arguments: { service: 'stop' } }, undefined, progress ? { onprogress } : {}));
        rig.approve((await rig.message(0)).ts);
        await until(() => rig.upstream.calls.some((c) => c.tool === 'slow_deploy'), 'the approved call to run upstream');
        // The upstream's stream already flows to the client: the error is its last event.
        if (progress) await until(() => seen.includes('halfway'), "the upstream's progress to reach the client");
        front.rt.engine.close();
        const r = await within(call, 5_000);
        expect(r).toMatchObject({ code: -32009, data: { reason: expect.stringContaining('shutting down') } });
        // It left: a client told "not executed" would send it again.
        const reason = (r as { data: { reason: string } }).data.reason;
        expect(reason).toContain('may have run upstream');
        expect(reason).not.toMatch(/not executed/);
        // The upstream request is aborted (slow_deploy would wait for release() forever), not left running.
        await until(() => callCut(rig), 'the upstream request to be aborted');
        expect(rig.upstream.calls.filter((c) => c.tool === 'slow_deploy')).toHaveLength(1);
        expect(front.errors).toEqual([]);
        await client.close();
      } finally {
        await front.close();
        await rig.close();
      }
    },
  );

  test('the engine closing while a held call waits for a human: -32009 "not executed" at once, and an approval arriving later runs nothing', async () => {
    const rig = await startRig();
    const front = await ownFront(rig);
    try {
      const { client } = await plainClient(front.url);
      const call = resultOrError(client.callTool({ name: 'deploy', arguments: { service: 'bye', version: '2' } }));
      const m = await rig.message(0);
      front.rt.engine.close();
      expect(await within(call, 5_000)).toMatchObject({ code: -32009, data: { reason: expect.stringMatching(/shutting down.*not executed/) } });
      rig.approve(m.ts);
      await sleep(500);
      expect(rig.upstream.calls).toEqual([]);
      expect(front.errors).toEqual([]);
      await client.close();
    } finally {
      await front.close();
      await rig.close();
    }
  });

  test("the engine draining (SIGTERM) while an approved held call runs upstream: it runs on and the client gets the upstream's answer", async () => {
    const rig = await startRig();
    const front = await ownFront(rig);
    try {
      const { client } = await plainClient(front.url);
      const call = resultOrError(client.callTool({ name: 'slow_deploy', arguments: { service: 'drain' } }));
      rig.approve((await rig.message(0)).ts);
      await until(() => rig.upstream.calls.some((c) => c.tool === 'slow_deploy'), 'the approved call to run upstream');
      front.rt.engine.drain();
      await sleep(300);
      expect(rig.upstream.cut).toEqual([]);
      rig.upstream.release();
      expect(await call).toEqual({ ok: expect.objectContaining({ content: [{ type: 'text', text: 'slow deploy done' }] }) });
      await client.close();
    } finally {
      await front.close();
      await rig.close();
    }
  });
});

/** The upstream saw its tools/call aborted (the connection closed before it answered). */
const callCut = (rig: Rig) => rig.upstream.cut.some((b) => (b as { method?: string } | undefined)?.method === 'tools/call');

/** `p`'s value, or 'pending' when it has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, sleep(ms).then(() => 'pending' as const)]);
}

/**
 * What the sidecar does for /mcp/up (a real request context, handleMcp, gate 4's interceptor) over
 * an approval runtime of the test's own, on the rig's upstream and fake Slack: the test stops its
 * engine while the client is still connected (the sidecar closes it only after cutting connections).
 * `errors`: what handleMcp threw (the sidecar would log it and cut the connection).
 */
async function ownFront(rig: Rig): Promise<{ url: string; rt: ApprovalRuntime; errors: unknown[]; close(): Promise<void> }> {
  const env = { TG_TEST_SLACK_TOKEN: TOKEN };
  const parsed = parseConfigText(approvalConfig(rig.upstream.url, rig.fake.url), 'thoughtgate.yaml', env);
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  const { identity: _identity, ...doc } = parsed.config;
  const log = createLogger('error', () => {});
  const backend = standaloneBackend(doc.approvalChannels ?? [], env, log, undefined, FAST);
  const compiled = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
  if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
  const snap = compiled.snapshot;
  const pools = new UpstreamPools();
  const rt = createApprovalRuntime({ backend, upstream: createUpstreamClient(pools), log, registry: new Registry(), identity: () => null });
  const deps = { pools, metrics: createSidecarMetrics(), budget: new ByteBudget(64 << 20), log, approvals: approvalInterceptor(rt) };
  const errors: unknown[] = [];
  const server = http.createServer((req, res) => {
    const ctx = createRequestContext(deps, req, res, 'up');
    handleMcp(ctx, req, res, snap, snap.sources.get('up')!).catch((err: unknown) => {
      errors.push(err);
      res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp/up`,
    rt,
    errors,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rt.close();
      await pools.close();
    },
  };
}

// Gate 4 as an adversary tries it (issue 7, classes 7, 8, 9e and 10): tasks and held calls of one
// client against another's, a flood of approval requests against the queue, task results against
// the pod's memory, and what an approver sees against what runs. Real peers: the sidecar with the
// standalone backend, the real @slack/web-api against the fake Slack, and as the oracle either
// the recording SDK upstream of the approvals harness or server-everything behind the recording
// relay (what the upstream received is what counts).
import fc from 'fast-check';
import { ALICE, approvalConfig, CHANNEL, FAST, startRig, until, type Rig } from '../approvals-harness.js';
import { buildApprovalMessage, buildOutcomeMessage, type ApprovalMessageInput } from '../../slack/message.js';
import { ApprovalEngine, type ApprovalSettings, type Executor } from '../../sidecar/approvals/engine.js';
import type { ApprovalBackend, Decision } from '../../sidecar/approvals/backend.js';
import { FairQueue } from '../../lib/fair-queue.js';
import { createLogger } from '../../lib/log.js';
import { ManualClock } from '../support/manual-clock.js';
import { openSession, post, startRecordedEverything, type RecordedEverything } from './harness.js';

const BASE = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
let ids = 1000;

type Reply = {
  id?: unknown;
  result?: Record<string, unknown> & { task?: { taskId: string; status: string } };
  error?: { code: number; message: string; data?: Record<string, unknown> };
};

/** One request; its answer (the last message of the reply: SSE replies may carry progress first). */
async function rpc(url: string, headers: Record<string, string>, method: string, params: Record<string, unknown>): Promise<Reply> {
  const r = await post(url, headers, { jsonrpc: '2.0', id: ids++, method, params });
  return r.messages[r.messages.length - 1] as Reply;
}

async function notify(url: string, headers: Record<string, string>, method: string, params: Record<string, unknown>): Promise<number> {
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method, params }) });
  await r.text();
  return r.status;
}

const task = (url: string, h: Record<string, string>, name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) =>
  rpc(url, h, 'tools/call', { name, arguments: args, task: {}, ...(meta ? { _meta: meta } : {}) });
const taskId = (r: Reply): string => {
  if (!r.result?.task) throw new Error(`no task: ${JSON.stringify(r)}`);
  return r.result.task.taskId;
};
const result = (url: string, h: Record<string, string>, id: string) => rpc(url, h, 'tasks/result', { taskId: id });
const getTask = (url: string, h: Record<string, string>, id: string) => rpc(url, h, 'tasks/get', { taskId: id });

async function metrics(rig: Rig): Promise<string> {
  return (await fetch(`http://127.0.0.1:${rig.sidecar.adminPort}/metrics`)).text();
}

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Posted approval messages' request ids, in posting order. */
function postedIds(rig: Rig): string[] {
  return rig.fake.messages(CHANNEL).map((m) => (m.metadata as { event_payload?: { request_id?: string } } | undefined)?.event_payload?.request_id ?? '?');
}

// ---------------------------------------------------------------------------------------------
describe('7. tasks and held calls belong to their owner', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({
      config: (u, s) =>
        approvalConfig(u, s, {
          approvals:
            '  maxRetainedTasksPerClient: 3\n  maxRetainedTasks: 8\n  rate: { client: { perMinute: 6000, burst: 1000 }, workload: { perMinute: 6000, burst: 1000 } }',
        }),
    });
  }, 30_000);
  afterAll(() => rig?.close());

  test('a held call is cancelled by notifications/cancelled only from its owner: never from another session, auth, or an anonymous client', async () => {
    // The holder has no session and no Authorization: nobody can name its call, not even by id.
    const anonHeld = fetch(rig.url, {
      method: 'POST',
      headers: BASE,
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'deploy', arguments: { service: 'anon', version: '1' } } }),
    }).then((r) => r.text());
    const anonMsg = await rig.message(0);
    const other = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
    for (const h of [BASE, { ...BASE, authorization: 'Bearer guess' }, other]) {
      // (Not ours to handle, so it goes upstream, which may refuse a session-less notification: either way nothing here.)
      for (const requestId of [7, '7']) await notify(rig.url, h, 'notifications/cancelled', { requestId, reason: 'not yours' });
    }
    // Held by a client with Authorization: another token cannot cancel it, the same token can.
    const alice = { ...BASE, authorization: 'Bearer alice' };
    const aliceHeld = fetch(rig.url, {
      method: 'POST',
      headers: alice,
      body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'deploy', arguments: { service: 'alice', version: '1' } } }),
    }).then((r) => r.text());
    await rig.message(1);
    await notify(rig.url, { ...BASE, authorization: 'Bearer mallory' }, 'notifications/cancelled', { requestId: 8 });
    await notify(rig.url, BASE, 'notifications/cancelled', { requestId: 8 });
    expect(rig.logs().filter((l) => l['msg'] === 'approval cancelled by the client')).toHaveLength(0);
    expect(await notify(rig.url, alice, 'notifications/cancelled', { requestId: 8 })).toBeLessThan(300);
    expect(await aliceHeld).toContain('-32009');
    // The anonymous call was never cancelled: approving it runs it (the upstream then wants a session).
    rig.approve(anonMsg.ts);
    const text = await anonHeld;
    expect(text).not.toContain('-32009');
    expect(rig.logs().filter((l) => l['msg'] === 'approval cancelled by the client')).toHaveLength(1);
  }, 30_000);

  test('end to end: the posted Slack message shows invisible characters and mrkdwn of the arguments escaped', async () => {
    const h = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
    const before = rig.fake.messages(CHANNEL).length;
    const id = taskId(
      await task(rig.url, h, 'deploy', { service: 'api\u202E\u2066txt.exe\u2069\u200B', version: '<!channel> <https://x.example|ok> \u0085\u2028' }),
    );
    const m = await rig.message(before);
    const shown = JSON.stringify(m.blocks);
    for (const esc of ['\\\\u202E', '\\\\u2066', '\\\\u200B', '\\\\u0085', '\\\\u2028', '&lt;!channel&gt;', '&lt;https://x.example|ok&gt;'])
      expect(shown).toContain(esc);
    expect(shown).not.toMatch(/[\u202E\u2066\u2069\u200B\u0085\u2028]|<!channel>|<https/);
    await rpc(rig.url, h, 'tasks/cancel', { taskId: id });
  }, 30_000);

  test('anonymous clients: tasks are reachable by id only, never listed, and their flood is refused rather than evicting', async () => {
    const a = taskId(await task(rig.url, BASE, 'scale', { replicas: 3 }));
    await result(rig.url, BASE, a);
    const list = await rpc(rig.url, BASE, 'tasks/list', {});
    expect(JSON.stringify(list)).not.toContain(a);
    const answers: Reply[] = [];
    for (let n = 0; n < 5; n++) answers.push(await task(rig.url, BASE, 'scale', { replicas: 4 }));
    expect(answers.some((r) => r.error?.code === -32010 && /maxRetainedTasks/.test(String(r.error.data?.['reason'])))).toBe(true);
    // The first anonymous task is still there for whoever holds its id.
    expect((await getTask(rig.url, BASE, a)).result).toMatchObject({ taskId: a });
  }, 30_000);
  // Last: it leaves the sidecar at its bound.
  test("one client's flood of tasks (from one or many sessions) never evicts another's finished result", async () => {
    const victim = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
    // scale with few replicas: Cedar permits it without approval, so ThoughtGate runs the task itself.
    const mine = taskId(await task(rig.url, victim, 'scale', { replicas: 1 }));
    expect(await result(rig.url, victim, mine)).toMatchObject({ result: { content: [{ text: 'scaled to 1' }] } });
    const floods = await Promise.all([0, 1, 2, 3].map(() => openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' })));
    const firsts: string[] = [];
    let refused = 0;
    for (const [i, h] of floods.entries()) {
      for (let n = 0; n < 6; n++) {
        const r = await task(rig.url, h, 'scale', { replicas: 2 + i });
        // At the sidecar's bound a session with as many tasks as the others is refused, not served at their cost.
        if (r.error) {
          expect(r.error).toMatchObject({ code: -32010, data: { reason: expect.stringMatching(/maxRetainedTasks\b/) } });
          refused++;
          continue;
        }
        const id = taskId(r);
        if (n === 0 && i === 0) firsts.push(id);
        await result(rig.url, h, id);
      }
    }
    // Then many fresh sessions with one task each: they take from the heavy flooders until everyone
    // keeps one, and are refused after that; the victim's only task is never theirs to take.
    for (let n = 0; n < 10; n++) {
      const h = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      const r = await task(rig.url, h, 'scale', { replicas: 9 });
      if (r.error) {
        expect(r.error).toMatchObject({ code: -32010, data: { reason: expect.stringMatching(/maxRetainedTasks is 8/) } });
        refused++;
      } else await result(rig.url, h, taskId(r));
    }
    expect(refused).toBeGreaterThan(0);
    // The victim's result is still there, exactly as it was, and it ran once.
    expect(await result(rig.url, victim, mine)).toMatchObject({ result: { content: [{ text: 'scaled to 1' }] } });
    expect(rig.upstream.calls.filter((c) => c.tool === 'scale' && c.args['replicas'] === 1)).toHaveLength(1);
    // The first flooder, alone under the sidecar's bound, made room from its own oldest.
    expect(await getTask(rig.url, floods[0]!, firsts[0]!)).toMatchObject({ error: { code: -32602 } });
    const m = await metrics(rig);
    expect(metric(m, 'thoughtgate_sidecar_tasks_evicted_total', 'limit="tasks_client"')).toBeGreaterThan(0);
    expect(metric(m, 'thoughtgate_sidecar_tasks_retained')).toBeLessThanOrEqual(8);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
describe('8. the approval queue is fair', () => {
  // Slack's own budget for posts: one per second per channel, no burst.
  const SLACK_PACE = {
    ...FAST,
    limiter: { budgets: { ...FAST.limiter!.budgets, 'chat.postMessage': { perMinute: 60, burst: 1, scope: 'channel' as const } } },
  };

  test("create-and-cancel floods never reach Slack, and another session's approval is posted next", async () => {
    const rig = await startRig({
      backend: SLACK_PACE,
      config: (u, s) =>
        approvalConfig(u, s, { approvals: '  rate: { client: { perMinute: 60000, burst: 10000 }, workload: { perMinute: 60000, burst: 10000 } }' }),
    });
    try {
      const flooder = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      const victim = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      const cycle = async (n: number) => {
        const id = taskId(await task(rig.url, flooder, 'deploy', { service: 'flood', version: String(n) }));
        await rpc(rig.url, flooder, 'tasks/cancel', { taskId: id });
        return id;
      };
      const flood: string[] = [];
      for (let n = 0; n < 40; n++) flood.push(await cycle(n));
      const mine = taskId(await task(rig.url, victim, 'deploy', { service: 'victim', version: '1' }));
      for (let n = 40; n < 80; n++) flood.push(await cycle(n));
      await until(() => postedIds(rig).includes(mine), "the victim's approval to be posted", 20_000);
      const posted = postedIds(rig);
      // At most the one flood post already on its way to Slack went before it, and nothing cancelled
      // while it waited was ever posted.
      expect(posted.indexOf(mine)).toBeLessThanOrEqual(1);
      expect(posted.filter((id) => flood.includes(id)).length).toBeLessThanOrEqual(1);
    } finally {
      await rig.close();
    }
  }, 40_000);

  test("the reported attack with the shipped limits: 150 create-and-cancel cycles, then another session's approval is posted at once", async () => {
    const rig = await startRig({ backend: SLACK_PACE, config: (u, s) => approvalConfig(u, s) });
    try {
      const flooder = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      const victim = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      let created = 0;
      let limited = 0;
      const began = Date.now();
      for (let n = 0; n < 150; n++) {
        const r = await task(rig.url, flooder, 'deploy', { service: 'flood', version: String(n) });
        if (r.error) {
          expect(r.error).toMatchObject({ code: -32010, data: { reason: expect.stringMatching(/approvals\.rate\.(client|workload)/) } });
          limited++;
          continue;
        }
        created++;
        await rpc(rig.url, flooder, 'tasks/cancel', { taskId: taskId(r) });
      }
      // The client's burst, plus what its bucket refilled (30 a minute: one per 2 s) while the loop
      // ran: on a loaded machine 150 cycles can take seconds.
      expect(created).toBeLessThanOrEqual(10 + Math.floor((Date.now() - began) / 2000));
      expect(limited).toBe(150 - created);
      const mine = taskId(await task(rig.url, victim, 'deploy', { service: 'victim', version: '1' }));
      await until(() => postedIds(rig).includes(mine), "the victim's approval to be posted", 20_000);
      expect(postedIds(rig).indexOf(mine)).toBeLessThanOrEqual(1);
    } finally {
      await rig.close();
    }
  }, 40_000);

  test('posting takes owners in turn: a backlog of pending approvals of one client delays another by at most one post', async () => {
    const rig = await startRig({
      backend: SLACK_PACE,
      config: (u, s) =>
        approvalConfig(u, s, {
          approvals:
            '  maxPending: { workload: 100, client: 50 }\n  rate: { client: { perMinute: 60000, burst: 10000 }, workload: { perMinute: 60000, burst: 10000 } }',
        }),
    });
    try {
      const flooder = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      const victims = await Promise.all([0, 1].map(() => openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' })));
      for (let n = 0; n < 12; n++) taskId(await task(rig.url, flooder, 'deploy', { service: 'backlog', version: String(n) }));
      const mine: string[] = [];
      for (const v of victims) mine.push(taskId(await task(rig.url, v, 'deploy', { service: 'victim', version: '1' })));
      await until(() => mine.every((id) => postedIds(rig).includes(id)), "the victims' approvals to be posted", 20_000);
      const posted = postedIds(rig);
      // The flooder's first post may already be on its way; then each owner in turn.
      expect(Math.max(...mine.map((id) => posted.indexOf(id)))).toBeLessThanOrEqual(3);
    } finally {
      await rig.close();
    }
  }, 40_000);

  test('creation rate per client and per workload: -32010 naming the limit and when to retry; other clients keep their own budget', async () => {
    const rig = await startRig({
      config: (u, s) => approvalConfig(u, s, { approvals: '  rate: { client: { perMinute: 1, burst: 3 }, workload: { perMinute: 1, burst: 5 } }' }),
    });
    try {
      const a = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      const b = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      const c = await openSession(rig.url, { 'mcp-protocol-version': '2025-11-25' });
      for (let n = 0; n < 3; n++) {
        const id = taskId(await task(rig.url, a, 'deploy', { service: 'a', version: String(n) }));
        await rpc(rig.url, a, 'tasks/cancel', { taskId: id }); // cancelling gives nothing back
      }
      const over = await task(rig.url, a, 'deploy', { service: 'a', version: 'x' });
      expect(over.error).toMatchObject({
        code: -32010,
        data: { reason: expect.stringMatching(/approvals\.rate\.client .*retry in \d+ s/), retryAfterMs: expect.any(Number) },
      });
      // A held call is refused the same way, as plain JSON, before anything is held.
      expect(await rpc(rig.url, a, 'tools/call', { name: 'deploy', arguments: { service: 'a', version: 'held' } })).toMatchObject({ error: { code: -32010 } });
      taskId(await task(rig.url, b, 'deploy', { service: 'b', version: '1' }));
      taskId(await task(rig.url, b, 'deploy', { service: 'b', version: '2' }));
      const workload = await task(rig.url, c, 'deploy', { service: 'c', version: '1' });
      expect(workload.error).toMatchObject({ code: -32010, data: { reason: expect.stringMatching(/approvals\.rate\.workload/) } });
      expect(metric(await metrics(rig), 'thoughtgate_sidecar_approval_limit_refusals_total', 'limit="rate_client"')).toBeGreaterThanOrEqual(2);
      expect(rig.upstream.calls).toHaveLength(0);
    } finally {
      await rig.close();
    }
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
describe('9e and 10, against server-everything', () => {
  let up: RecordedEverything;
  let rig: Rig;
  const url = () => rig.url.replace(/\/mcp\/up$/, '/mcp/e');
  beforeAll(async () => {
    up = await startRecordedEverything();
    rig = await startRig({
      config: (_u, slack) => `
sources:
  - name: e
    url: ${up.url}
rules:
  - match: { tool: trigger-long-running-operation }
    action: approve
    approval: { channel: oncall }
  - match: { tool: echo }
    action: policy
defaultAction: forward
cedar:
  policies: |
    @id("echo-approve") @approve("oncall")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "echo" && context.arguments has message && context.arguments.message == "approve me" };
    @id("echo-free")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "echo" && context.arguments has message && context.arguments.message != "approve me" };
approvalChannels:
  - name: oncall
    slack: { channel: ${CHANNEL}, apiUrl: "${slack}", tokenEnv: TG_TEST_SLACK_TOKEN }
    approvers: { users: [${ALICE}] }
    timeout: 20s
approvals:
  pollInterval: 50ms
  heldKeepAlive: 100ms
  maxTaskResultBytes: 100000
  maxRetainedTaskBytes: 200000
`,
    });
  }, 60_000);
  afterAll(async () => {
    await rig?.close();
    await up?.close();
  });

  test("9e. task results are bounded each, and together; the bytes of one client never push out another's", async () => {
    const s = () => openSession(url(), { 'mcp-protocol-version': '2025-11-25' });
    const [a, b, c] = [await s(), await s(), await s()];
    const big = 'x'.repeat(70_000);
    // Over maxTaskResultBytes: the call ran once, its result is -32024, nothing of it is kept.
    const huge = taskId(await task(url(), a, 'echo', { message: 'h'.repeat(150_000) }));
    expect(await result(url(), a, huge)).toMatchObject({ error: { code: -32024, data: { reason: expect.stringMatching(/maxTaskResultBytes/) } } });
    const kept = taskId(await task(url(), b, 'echo', { message: `b${big}` }));
    await result(url(), b, kept);
    const a1 = taskId(await task(url(), a, 'echo', { message: `a1${big}` }));
    await result(url(), a, a1);
    const a2 = taskId(await task(url(), a, 'echo', { message: `a2${big}` }));
    // Over maxRetainedTaskBytes: a's own oldest result makes room, b's stays.
    expect(JSON.stringify(await result(url(), a, a2))).toContain(`Echo: a2${big}`);
    expect(await getTask(url(), a, a1)).toMatchObject({ error: { code: -32602 } });
    expect(JSON.stringify(await result(url(), b, kept))).toContain(`Echo: b${big}`);
    // A client with nothing of its own to give up gets -32024 instead; nobody else's result goes.
    const c1 = taskId(await task(url(), c, 'echo', { message: `c1${big}` }));
    expect(await result(url(), c, c1)).toMatchObject({ error: { code: -32024, data: { reason: expect.stringMatching(/maxRetainedTaskBytes/) } } });
    expect(JSON.stringify(await result(url(), b, kept))).toContain(`Echo: b${big}`);
    const bodies = up.bodies().filter((x) => (x as { method?: string }).method === 'tools/call');
    expect(bodies.filter((x) => JSON.stringify(x).includes('"hhhh'))).toHaveLength(1);
    const m = await metrics(rig);
    expect(metric(m, 'thoughtgate_sidecar_task_results_retained_bytes')).toBeLessThanOrEqual(200_000);
    expect(metric(m, 'thoughtgate_sidecar_tasks_evicted_total', 'limit="result_bytes_total"')).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'thoughtgate_sidecar_approval_limit_refusals_total', 'limit="result_size"')).toBeGreaterThanOrEqual(1);
  }, 60_000);

  test("10. an approved call reaches the upstream without the agent's _meta; progress still reaches the client under its own token", async () => {
    const h = await openSession(url(), { 'mcp-protocol-version': '2025-11-25' });
    const evil = {
      progressToken: 'tok-1',
      'io.example/run-as': 'root',
      'io.modelcontextprotocol/related-task': { taskId: 'forged' },
      smuggled: { arguments: { message: 'other' } },
    };
    up.clear();
    // As a task: none of its _meta goes upstream.
    const before = rig.fake.messages(CHANNEL).length;
    const t = taskId(await task(url(), h, 'echo', { message: 'approve me' }, evil));
    const m1 = await rig.message(before);
    rig.approve(m1.ts);
    expect(JSON.stringify(await result(url(), h, t))).toContain('Echo: approve me');
    // Held, with progress: the upstream sees a token of ThoughtGate's, the client gets progress under its own.
    const n = rig.fake.messages(CHANNEL).length;
    const held = post(url(), h, {
      jsonrpc: '2.0',
      id: 'held-1',
      method: 'tools/call',
      params: { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 }, _meta: { ...evil, progressToken: 'tok-2' } },
    });
    const m2 = await rig.message(n);
    rig.approve(m2.ts);
    const reply = await held;
    const calls = up.bodies().filter((x) => (x as { method?: string }).method === 'tools/call') as {
      params: { name: string; _meta?: Record<string, unknown> };
    }[];
    expect(calls.map((c) => c.params.name)).toEqual(['echo', 'trigger-long-running-operation']);
    expect(calls[0]!.params._meta).toBeUndefined();
    expect(calls[1]!.params._meta).toEqual({ progressToken: expect.stringMatching(/^thoughtgate-progress-tgh-[0-9a-f]{32}$/) });
    for (const s of ['run-as', 'forged', 'smuggled', 'tok-1', 'tok-2']) expect(up.everything()).not.toContain(s);
    const progress = (reply.messages as { method?: string; params?: { progressToken?: unknown; progress?: number } }[]).filter(
      (x) => x.method === 'notifications/progress',
    );
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.every((p) => p.params?.progressToken === 'tok-2')).toBe(true);
    const steps = progress.map((p) => p.params!.progress!);
    expect(steps).toEqual([...steps].sort((x, y) => x - y));
    expect(reply.messages[reply.messages.length - 1]).toMatchObject({ id: 'held-1', result: { content: expect.any(Array) } });
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
describe('10. what the approver sees is what the agent sent, visibly', () => {
  // Every class that prints as nothing or reorders text, and mrkdwn that would ping or link.
  const HIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u2800]|(?! )\p{Zs}/u;
  const INPUT: Omit<ApprovalMessageInput, 'tool' | 'arguments'> = {
    id: 'tg-0123',
    source: 'up',
    workload: { namespace: 'ns', serviceAccount: 'sa', pod: 'p' },
    expiresAt: Date.UTC(2026, 10, 21, 10),
    reactions: { approve: ['white_check_mark'], reject: ['x'] },
    approvers: { users: ['U0ALICE'], userGroups: [] },
  };

  /**
   * All mrkdwn of a message (plain_text is never parsed by Slack, so `<!channel>` there is just
   * text), our own markup (the date, the approver mention, our \u200b between backticks) taken out.
   */
  function agentVisible(msg: { text: string; blocks: unknown[] }): string {
    const mrkdwn: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        const o = v as { type?: unknown; text?: unknown };
        if (o.type === 'mrkdwn' && typeof o.text === 'string') mrkdwn.push(o.text);
        else Object.values(o).forEach(walk);
      }
    };
    walk(msg.blocks);
    return mrkdwn
      .join('\n')
      .replace(/<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[0-9TZ:-]+>/g, '')
      .replace(/<@U0ALICE>/g, '')
      .replace(/`\u200b`\u200b`/g, '```')
      .replace(/[✅❌⌛🚫⚠]\uFE0F?/gu, '')
      .concat(msg.text);
  }

  function check(tool: string, args: unknown, reason?: string): void {
    for (const msg of [
      buildApprovalMessage({ ...INPUT, tool, arguments: args, rule: reason ?? 'r' }),
      buildOutcomeMessage({ ...INPUT, tool, arguments: args }, { status: 'failed', at: 0, reason: reason ?? 'x' }),
    ]) {
      const text = agentVisible(msg);
      // JSON.stringify above escapes C0 controls itself; look at the decoded block texts too.
      const decoded = JSON.parse(
        JSON.stringify(msg.blocks)
          .replace(/`\u200b`\u200b`/g, '```')
          .replace(/[✅❌⌛🚫⚠]\uFE0F?/gu, ''),
      ) as unknown;
      const strings: string[] = [];
      const walk = (v: unknown): void => {
        if (typeof v === 'string') strings.push(v);
        else if (v && typeof v === 'object') Object.values(v).forEach(walk);
      };
      walk(decoded);
      // Our own layout: the newline between a field's label and its value, and in pretty JSON.
      for (const s of [...strings, msg.text.replace(/[✅❌⌛🚫⚠]\uFE0F?/gu, '')])
        expect(s.replace(/<!date[^>]*>|<@U0ALICE>/g, '').replace(/\n/g, '')).not.toMatch(HIDDEN);
      expect(text).not.toMatch(/<[!@#]|<https?:|<mailto:/i);
    }
  }

  test('bidirectional and invisible characters are escaped visibly, in arguments, tool names and reasons', () => {
    const nasty =
      'rm -rf /safe\u202E\u2066evil\u2069\u200B\u200C\u200D\u200E\u200F\uFEFF\u0085\u2028\u2029\u00A0\u3164\u{E0041}\u034F\uFE0F\u0338\u0000\u001B[31m';
    const msg = buildApprovalMessage({ ...INPUT, tool: `deploy${nasty}`, arguments: { [`key${nasty}`]: nasty, nested: [nasty] }, rule: nasty });
    const all = JSON.stringify(msg);
    for (const esc of ['\\\\u202E', '\\\\u2066', '\\\\u200B', '\\\\uFEFF', '\\\\u0085', '\\\\u2028', '\\\\u00A0', '\\\\u3164', '\\\\u{E0041}', '\\\\u0338'])
      expect(all).toContain(esc);
    check(`deploy${nasty}`, { [`key${nasty}`]: nasty }, nasty);
  });

  test('agent text cannot ping, link or format: it is escaped and shown as code', () => {
    const inject = '<!channel> <!here> <@U0ALICE> <#C123> <https://evil.example|Approved by security> *APPROVED* _ok_ ~x~ ``` `code` &lt;';
    check(inject, { message: inject, [inject]: 1 }, inject);
    const msg = buildOutcomeMessage(
      { ...INPUT, tool: 'deploy', arguments: {} },
      { status: 'failed', at: 0, reason: 'Tool execution failed: *Approved by everyone*' },
    );
    expect(JSON.stringify(msg.blocks)).toContain('`Tool execution failed: *Approved by everyone*`');
    const post = buildApprovalMessage({ ...INPUT, tool: '*APPROVED*', arguments: {} });
    expect(JSON.stringify(post.blocks)).toContain('`*APPROVED*`');
  });

  test('property: for any tool name, argument keys and values and reason, nothing hidden and no mrkdwn control reaches Slack', () => {
    const text = fc.string({
      unit: fc.oneof(
        fc.constantFrom('\u202E', '\u2066', '\u200B', '\uFEFF', '\u0085', '\u2028', '\u00A0', '<', '>', '&', '*', '`', '!', '@', '|', '\\', '\n', '\u0338'),
        fc.constantFrom('a', 'Z', ' ', '/'),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      ),
      maxLength: 40,
    });
    fc.assert(
      fc.property(text, fc.dictionary(text, fc.oneof(text, fc.array(text, { maxLength: 3 })), { maxKeys: 4 }), text, (tool, args, reason) => {
        check(tool, args, reason);
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
describe('the engine and the posting order, with a manual clock', () => {
  const S: ApprovalSettings = {
    maxPendingWorkload: 100,
    maxPendingClient: 100,
    defaultTimeoutMs: 60_000,
    taskTtlMs: 3_600_000,
    maxTaskTtlMs: 40 * 86_400_000,
    pollIntervalMs: 1000,
    keepAliveMs: 15_000,
    maxRetainedTasks: 6,
    maxRetainedTasksPerClient: 3,
    rate: { client: { perMinute: 60, burst: 1000 }, workload: { perMinute: 60, burst: 1000 } },
  };
  function engine(execute: Executor) {
    const clock = new ManualClock();
    let cb: (d: Decision) => void = () => undefined;
    const backend: ApprovalBackend = {
      description: 'test',
      submit: async () => undefined,
      onDecision: (f) => {
        cb = f;
      },
      cancel: async () => undefined,
      markExecuting: async () => undefined,
      finished: async () => undefined,
      adopt: async () => [],
      close: async () => undefined,
    };
    const e = new ApprovalEngine({
      backend,
      workload: () => ({ namespace: 'n', serviceAccount: 's', pod: 'p' }),
      log: createLogger('error', () => undefined),
      clock,
    });
    const own = (client: string, s: ApprovalSettings = S, ttl?: number) =>
      e.start(
        {
          mode: 'task',
          owner: { source: 'up', client },
          source: 'up',
          tool: 't',
          arguments: {},
          approval: null,
          correlationId: 'c',
          execute,
          ...(ttl !== undefined ? { requestedTtlMs: ttl } : {}),
        },
        s,
      );
    return { clock, e, own, decide: (d: Decision) => cb(d) };
  }
  const ok: Executor = async () => ({ kind: 'result', result: { content: [] } });

  test("retention: floods of one owner or of many sessions evict the heaviest owner's oldest or are refused, never a lighter owner's; anonymous tasks are refused, never evicted", async () => {
    const { clock, e, own } = engine(ok);
    const victim = own('session:victim');
    const anon = own('anonymous');
    if (!victim.ok || !anon.ok) throw new Error('refused');
    await clock.advance(0);
    for (let i = 0; i < 50; i++) {
      own(`session:flood-${i % 5}`);
      await clock.advance(0);
    }
    expect(e.get(victim.task.id, { source: 'up', client: 'session:victim' })).toBeDefined();
    expect(e.get(anon.task.id, { source: 'up', client: 'anonymous' })).toBeDefined();
    expect(e.size).toBeLessThanOrEqual(6);
    // Many new sessions with one task each: refused at the bound, the victim's only task stays.
    expect(own('session:sybil')).toMatchObject({ ok: false, reason: expect.stringMatching(/maxRetainedTasks is 6/) });
    // A heavy owner loses to a light newcomer.
    const heavy = engine(ok);
    const first = heavy.own('session:heavy');
    await heavy.clock.advance(0);
    for (let i = 0; i < 5; i++) {
      heavy.own('session:heavy', { ...S, maxRetainedTasksPerClient: 10 });
      await heavy.clock.advance(0);
    }
    expect(heavy.own('session:new', { ...S, maxRetainedTasksPerClient: 10 }).ok).toBe(true);
    if (!first.ok) throw new Error('refused');
    expect(heavy.e.get(first.task.id, { source: 'up', client: 'session:heavy' })).toBeUndefined();
    own('anonymous');
    own('anonymous');
    await clock.advance(0);
    expect(own('anonymous')).toMatchObject({ ok: false, reason: expect.stringMatching(/maxRetainedTasks/) });
    expect(e.get(anon.task.id, { source: 'up', client: 'anonymous' })).toBeDefined();
  });

  test('ttl: a task still running at its ttl is aborted and ends; ttls beyond the 24.8-day timer limit are kept, not dropped at once', async () => {
    let aborted = false;
    const { clock, e, own } = engine(
      (_c, _t, signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve({ kind: 'result', result: {} });
          }),
        ),
    );
    const hung = own('session:a', S, 120_000);
    if (!hung.ok) throw new Error('refused');
    await clock.advance(120_001);
    expect(aborted).toBe(true);
    expect(hung.task).toMatchObject({ status: 'failed', phase: 'done' });
    expect(hung.task.outcome).toMatchObject({ kind: 'error', error: { code: -32000 } });
    await clock.advance(60_001);
    expect(e.get(hung.task.id, { source: 'up', client: 'session:a' })).toBeUndefined();

    const long = engine(ok);
    const t = long.own('session:b', S, 30 * 86_400_000);
    if (!t.ok) throw new Error('refused');
    await long.clock.advance(1000);
    expect(t.task.ttlMs).toBe(30 * 86_400_000);
    await long.clock.advance(25 * 86_400_000);
    expect(long.e.get(t.task.id, { source: 'up', client: 'session:b' })).toBeDefined();
    await long.clock.advance(5 * 86_400_000);
    expect(long.e.get(t.task.id, { source: 'up', client: 'session:b' })).toBeUndefined();
  });

  test('property: the posting queue serves owners in turn: between two items of one owner, every other owner then waiting gets at most one', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.record({ push: fc.constantFrom('a', 'b', 'c', 'd') }), fc.constant({ shift: true })), { maxLength: 200 }), (ops) => {
        const q = new FairQueue<string>();
        const out: string[] = [];
        let n = 0;
        for (const op of ops) {
          if ('push' in op) q.push(op.push, `${op.push}${n++}`);
          else {
            const x = q.shift();
            if (x !== undefined) out.push(x[0]!);
          }
        }
        for (let x = q.shift(); x !== undefined; x = q.shift()) out.push(x[0]!);
        expect(out).toHaveLength(n);
      }),
      { numRuns: 200 },
    );
    // Everything queued first: when an owner gets its (c+1)-th turn, every owner with items left has had c.
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { maxLength: 100 }), (keys) => {
        const q = new FairQueue<string>();
        const left = new Map<string, number>();
        keys.forEach((k) => {
          q.push(k, k);
          left.set(k, (left.get(k) ?? 0) + 1);
        });
        const turns = new Map<string, number>();
        for (let x = q.shift(); x !== undefined; x = q.shift()) {
          const c = turns.get(x) ?? 0;
          for (const [k, n] of left) if (k !== x && n > 0) expect(turns.get(k) ?? 0).toBeGreaterThanOrEqual(c);
          turns.set(x, c + 1);
          left.set(x, left.get(x)! - 1);
        }
        expect([...left.values()].every((n) => n === 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
    // A concrete schedule: a backlog of 5 for "a", then "b" and "c" arrive.
    const q = new FairQueue<string>();
    q.push('a', 'a1');
    expect(q.shift()).toBe('a1');
    for (let i = 2; i <= 5; i++) q.push('a', `a${i}`);
    q.push('b', 'b1');
    q.push('c', 'c1');
    q.push('b', 'b2');
    const order = [];
    for (let x = q.shift(); x !== undefined; x = q.shift()) order.push(x);
    expect(order).toEqual(['b1', 'c1', 'a2', 'b2', 'a3', 'a4', 'a5']);
    expect(q.remove('a', 'a9')).toBe(false);
  });
});

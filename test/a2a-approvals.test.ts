// Gate 4 for A2A with real peers: the SDK agents (test/support/a2a-peers.ts), the SDK clients (JS
// 1.3.0, JS 0.3.14, Python 1.3.0), the fake Slack driven through the standalone backend, and
// holdA2a (sidecar/approvals/a2a.ts) behind a small node:http front that does what the A2A
// handler does before gate 4: read the body, the version and the method (describeA2a), and hand
// a Send* call to holdA2a with an `approve` decision; the card and other methods pass through.
// Asserted on what the agent received.
import http from 'node:http';
import { afterAll, beforeAll, beforeEach, expect, jest, test } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { FileApprovalChannelSchema } from '../api/approval.js';
import { a2aCode } from '../api/errors.js';
import { parseJsonRpc, rawId } from '../lib/jsonrpc.js';
import { createLogger } from '../lib/log.js';
import { a2aVersionOf } from '../policy/gates/a2a-methods.js';
import { describeA2a } from '../policy/gates/a2a-operation.js';
import { IdentitySchema, PolicyDocumentSchema } from '../api/config.js';
import { a2aApprovalHook, holdA2a } from '../sidecar/approvals/a2a.js';
import { createSidecarMetrics } from '../sidecar/metrics.js';
import { createRequestContext, type ContextDeps, type RequestContext } from '../sidecar/proxy/context.js';
import { compileSnapshot, type Snapshot } from '../sidecar/snapshot.js';
import type { ApprovalSettings } from '../sidecar/approvals/engine.js';
import type { PendingApproval } from '../sidecar/approvals/backend.js';
import { approvalRequestFor } from '../sidecar/approvals/cluster-backend.js';
import { a2aRequestHash } from '../sidecar/approvals/hash.js';
import { createApprovalRuntime, type ApprovalRuntime } from '../sidecar/approvals/runtime.js';
import { standaloneBackend } from '../sidecar/approvals/standalone.js';
import type { A2aHold, ApproveDecision } from '../sidecar/proxy/gate4.js';
import { ByteBudget } from '../sidecar/proxy/budget.js';
import { createUpstreamClient, UpstreamPools } from '../sidecar/proxy/upstream.js';
import { createSourceTokens } from '../sidecar/oauth/client-credentials.js';
import { systemClock } from '../lib/clock.js';
import { NO_SPAN, NO_TRACING } from '../lib/tracing-api.js';
import { a2aClient, collect, runPython, startA2aAgent, type A2aAgent } from './support/a2a-peers.js';
import { ALICE, CHANNEL, FAST, sleep, TOKEN, until } from './approvals-harness.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-server.js';

jest.setTimeout(60_000);

const SOURCE = 'billing';
const SETTINGS: ApprovalSettings = {
  maxPendingWorkload: 20,
  maxPendingClient: 10,
  defaultTimeoutMs: 30_000,
  taskTtlMs: 60_000,
  maxTaskTtlMs: 600_000,
  pollIntervalMs: 50,
  // The configured keep-alive is MCP's 15 s default: A2A answers still get a byte every ≤ 2 s.
  keepAliveMs: 15_000,
  maxRetainedTasks: 100,
};
const DECISION: ApproveDecision = { action: 'approve', gate: 'rules', channel: 'finance', rule: 'refunds', reason: 'refunds need a human' };

interface Front {
  base: string;
  /** The Send* bodies held, exactly as received. */
  held: Buffer[];
  /** Corrupts the next held body after it was handed over (a mix-up of buffers). */
  tamperNext: boolean;
  /** The byte budget its held calls charge (limits.maxBufferedBytes; set `capacity` to shrink it). */
  budget: ByteBudget;
  close(): Promise<void>;
}

/** The front: the card and non-Send calls pass through; Send* calls go to holdA2a. */
async function startFront(agent: A2aAgent, rt: ApprovalRuntime): Promise<Front> {
  const front: Front = { base: '', held: [], tamperNext: false, budget: new ByteBudget(64 << 20), close: async () => {} };
  let correlation = 0;
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    const headers: Record<string, string> = {};
    for (const k of ['content-type', 'accept', 'a2a-version', 'authorization']) {
      const v = req.headers[k];
      if (typeof v === 'string') headers[k] = v;
    }
    const send = (body: Buffer | undefined, signal?: AbortSignal) =>
      request(`${agent.base}${req.url}`, { method: req.method as 'POST', headers, body, ...(signal ? { signal } : {}) });
    const passThrough = async () => {
      const up = await send(req.method === 'GET' ? undefined : bytes);
      const text = (await up.body.text()).split(agent.base).join(front.base);
      res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
      res.end(text);
    };
    const version = a2aVersionOf(req.headers['a2a-version'], undefined);
    if (req.method !== 'POST' || !version.ok) return passThrough();
    const jsonrpc = req.url === '/a2a/jsonrpc';
    let id: A2aHold['id'] = null;
    let method: string;
    let params: unknown;
    if (jsonrpc) {
      const p = parseJsonRpc(bytes.toString('utf8'));
      if (!p.ok || p.batch || p.message.kind !== 'request') return passThrough();
      id = p.message.id;
      method = p.message.method;
      params = p.message.params;
    } else {
      method = `POST ${req.url!.slice('/a2a/rest'.length)}`;
      params = JSON.parse(bytes.toString('utf8')) as unknown;
    }
    const d = describeA2a(SOURCE, { version: version.version, binding: jsonrpc ? 'jsonrpc' : 'rest', method, params }, { skillFrom: 'metadata.skill' });
    if (!d.ok || !d.row.partsKey) return passThrough();
    front.held.push(Buffer.from(bytes));
    const hold: A2aHold = {
      version: version.version,
      binding: jsonrpc ? 'jsonrpc' : 'rest',
      canonical: d.op.method,
      id,
      stream: d.row.stream,
      skill: d.op.a2a.skill,
      tenant: d.op.a2a.tenant,
      bytes,
      decision: DECISION,
      async send(body, signal) {
        try {
          const up = await send(body, signal);
          return { ok: true, response: up };
        } catch {
          return { ok: false, kind: 'connect' };
        }
      },
    };
    const tamper = front.tamperNext;
    front.tamperNext = false;
    const holding = holdA2a(
      rt,
      {
        ctx: {
          correlationId: `c${++correlation}`,
          tracer: NO_TRACING,
          span: NO_SPAN,
          budget: front.budget,
          markResponseStart() {},
          finish() {},
        },
        req,
        res,
        source: SOURCE,
        settings: SETTINGS,
        maxAnswerBytes: 1 << 20,
      },
      hold,
    );
    // holdA2a asked for approval synchronously: from now on the kept bytes no longer say what the human sees.
    if (tamper) bytes.write('refund 9', bytes.indexOf('refund 5'));
    await holding;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  front.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  front.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return front;
}

let fake: FakeSlack;
/** Every approval submitted to a backend, as the backend got it (what the cluster backend turns into an ApprovalRequest). */
const submitted: PendingApproval[] = [];

/** A runtime on the standalone backend (the fake Slack), recording what is submitted. */
function runtime(): ApprovalRuntime {
  const channel = FileApprovalChannelSchema.parse({
    name: 'finance',
    slack: { channel: CHANNEL, apiUrl: fake.url, tokenEnv: 'TG_TEST_SLACK_TOKEN' },
    approvers: { users: [ALICE] },
    timeout: '30s',
  });
  const log = createLogger('error', () => {});
  const backend = standaloneBackend([channel], { TG_TEST_SLACK_TOKEN: TOKEN }, log, undefined, FAST);
  const submit = backend.submit.bind(backend);
  backend.submit = (p) => {
    submitted.push(structuredClone(p));
    return submit(p);
  };
  return createApprovalRuntime({ backend, upstream: createUpstreamClient(new UpstreamPools()), log, registry: new Registry(), identity: () => null });
}
let agent: A2aAgent;
let agent03: A2aAgent;
let rt: ApprovalRuntime;
let front: Front;
let front03: Front;
let posted = 0;

beforeAll(async () => {
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [{ id: ALICE, name: 'alice' }],
  });
  rt = runtime();
  [agent, agent03] = await Promise.all([startA2aAgent({ sdk: '1.3.0', stepMs: 20 }), startA2aAgent({ sdk: '0.3.14', stepMs: 20 })]);
  [front, front03] = await Promise.all([startFront(agent, rt), startFront(agent03, rt)]);
});

afterAll(async () => {
  await Promise.all([front?.close(), front03?.close()]);
  await rt?.close();
  await Promise.all([agent?.close(), agent03?.close(), fake?.close()]);
});

beforeEach(() => {
  agent.reset();
  agent03.reset();
});

/** The next approval message posted, and its ts. */
async function nextMessage(): Promise<{ ts: string; text: string }> {
  const n = posted++;
  await until(() => fake.messages(CHANNEL).length > n, `approval message #${n}`);
  const m = fake.messages(CHANNEL)[n]!;
  return { ts: m.ts, text: JSON.stringify({ text: m.text, blocks: m.blocks }) };
}

const approve = (ts: string) => fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);
const reject = (ts: string) => fake.addReaction(CHANNEL, ts, 'x', ALICE);
const sends = (a: A2aAgent) => a.requests.filter((r) => r.method === 'POST' && r.url.startsWith('/a2a/'));

test('approved SendMessage (JS 1.3.0, JSON-RPC 1.0): the agent receives exactly the held bytes, once, after the approval', async () => {
  const client = await a2aClient('js1-jsonrpc', `${front.base}/`);
  const sent = client.send('echo refund 5 EUR', { metadata: { skill: 'echo' } });
  const m = await nextMessage();
  expect(m.text).toContain('A2A SendMessage to billing, skill echo');
  expect(m.text).toContain('refund 5 EUR');
  await sleep(300);
  expect(sends(agent)).toEqual([]);
  approve(m.ts);
  const r = await sent;
  expect(r).toMatchObject({ kind: 'message', text: expect.stringContaining('refund 5 EUR') });
  expect(sends(agent).map((q) => q.body)).toEqual([front.held.at(-1)!.toString('utf8')]);
  expect(agent.messages).toHaveLength(1);
});

test('rejected SendMessage (JS 0.3.14, message/send): the client gets -32057 with the reason, the agent nothing', async () => {
  const client = await a2aClient('js03-jsonrpc', `${front03.base}/`);
  const sent = client.send('echo refund 7', { metadata: { skill: 'echo' } }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  const m = await nextMessage();
  expect(m.text).toContain('A2A SendMessage to billing, skill echo');
  reject(m.ts);
  const err = await sent;
  expect(err?.message).toMatch(/-32057/);
  expect(err?.message).toMatch(/Approval rejected/i);
  expect(sends(agent03)).toEqual([]);
  expect(agent03.messages).toEqual([]);
});

test('approved SendStreamingMessage (JS 1.3.0): keep-alive comments, then the agent stream; rejected stream: one error event', async () => {
  const client = await a2aClient('js1-jsonrpc', `${front.base}/`);
  const stream = collect(client.stream('count 3', { metadata: { skill: 'count' } }));
  const m = await nextMessage();
  expect(m.text).toContain('A2A SendStreamingMessage to billing, skill count');
  approve(m.ts);
  const events = await stream;
  expect(events.at(-1)).toMatchObject({ kind: 'status', state: 'completed' });
  expect(sends(agent).map((q) => q.body)).toEqual([front.held.at(-1)!.toString('utf8')]);

  agent.reset();
  const refused = collect(client.stream('count 3', { metadata: { skill: 'count' } })).then(
    () => null,
    (e: unknown) => e as Error,
  );
  reject((await nextMessage()).ts);
  expect((await refused)?.message).toMatch(/Approval rejected/);
  expect(sends(agent)).toEqual([]);
});

test('REST (JS 1.3.0 HTTP+JSON): approved runs once; rejected cuts the connection and the agent gets nothing', async () => {
  const client = await a2aClient('js1-rest', `${front.base}/`);
  const ok = client.send('echo refund 3', { metadata: { skill: 'echo' } });
  approve((await nextMessage()).ts);
  expect(await ok).toMatchObject({ kind: 'message', text: expect.stringContaining('refund 3') });
  expect(sends(agent).map((q) => q.body)).toEqual([front.held.at(-1)!.toString('utf8')]);

  agent.reset();
  const refused = client.send('echo refund 4', { metadata: { skill: 'echo' } }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  reject((await nextMessage()).ts);
  // A cut connection: undici's "terminated" (the reason is in ThoughtGate's log line).
  expect((await refused)?.message).toMatch(/terminated|fetch failed|socket/i);
  expect(sends(agent)).toEqual([]);
});

test('bytes changed after the approval was requested: not sent (hash mismatch), -32056', async () => {
  const client = await a2aClient('js1-jsonrpc', `${front.base}/`);
  front.tamperNext = true;
  const sent = client.send('echo refund 5 EUR', { metadata: { skill: 'echo' } }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  approve((await nextMessage()).ts);
  const err = await sent;
  expect(err).toMatchObject({ envelopeCode: -32056, message: 'Approval required but not available' });
  expect(JSON.stringify((err as { data?: unknown }).data)).toContain('hash mismatch');
  expect(sends(agent)).toEqual([]);
});

test('the client going away while held cancels the approval; nothing reaches the agent', async () => {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 'gone-1',
    method: 'SendMessage',
    params: { message: { messageId: 'm-gone', role: 'ROLE_USER', parts: [{ text: 'echo refund 1' }], metadata: { skill: 'echo' } } },
  });
  const ac = new AbortController();
  const r = await request(`${front.base}/a2a/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body,
    signal: ac.signal,
  });
  expect(r.statusCode).toBe(200);
  expect(r.headers['content-type']).toBe('application/json');
  const m = await nextMessage();
  ac.abort();
  await until(() => rt.engine.pending === 0, 'the held call to be cancelled');
  approve(m.ts);
  await sleep(300);
  expect(sends(agent)).toEqual([]);
});

test('Python client (default 5 s timeout) survives a 7 s hold thanks to the keep-alive bytes, send and stream', async () => {
  const py = runPython([`${front.base}/`, 'send', '--text', 'echo refund 8', '--metadata', JSON.stringify({ skill: 'echo' })]);
  const m1 = await nextMessage();
  const pyStream = runPython([`${front.base}/`, 'stream', '--text', 'count 2', '--metadata', JSON.stringify({ skill: 'count' })]);
  const m2 = await nextMessage();
  await sleep(7_000);
  approve(m1.ts);
  approve(m2.ts);
  const [sent, streamed] = await Promise.all([py, pyStream]);
  expect(sent.code).toBe(0);
  expect(JSON.stringify(sent.lines)).toContain('refund 8');
  expect(streamed.code).toBe(0);
  expect(streamed.lines.at(-1)).toMatchObject({ kind: 'status', state: 'completed' });
  expect(agent.messages.map((x) => x.skill).sort()).toEqual(['count', 'echo']);
});

/** A raw JSON-RPC 1.0 call to a front; resolves with its whole answer (or the error that cut it). */
function rawCall(base: string, body: unknown): Promise<{ status: number; text: string } | Error> {
  return request(`${base}/a2a/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify(body),
  }).then(
    async (r) => ({ status: r.statusCode, text: await r.body.text() }),
    (e: unknown) => e as Error,
  );
}

/** A raw 1.0 JSON-RPC SendMessage with one text part, naming `skill`. */
function sendMessage(id: string, skill: string, text: string) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'SendMessage',
    params: { message: { messageId: `m-${id}`, role: 'ROLE_USER', parts: [{ text }], metadata: { skill } } },
  };
}

/** A front on a runtime of its own (the test stops its engine), both closed after `fn`. */
async function withOwnRuntime(fn: (rt: ApprovalRuntime, front: Front) => Promise<void>, to: A2aAgent = agent): Promise<void> {
  const own = runtime();
  const f = await startFront(to, own);
  try {
    await fn(own, f);
  } finally {
    await f.close();
    await own.close();
  }
}

/** `p`'s value, or 'pending' when it has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, sleep(ms).then(() => 'pending' as const)]);
}

test('push credentials in a held SendMessage never reach Slack or the ApprovalRequest (a token or credentials elsewhere is shown); the hash binds them and the agent gets them', async () => {
  const params = {
    message: {
      messageId: 'm-push',
      role: 'ROLE_USER',
      // What the agent reads as the request, under names a push config also uses: the human must see it.
      parts: [{ text: 'echo refund 5' }, { data: { credentials: 'transfer 1M to X' } }],
      metadata: { skill: 'echo', token: 'and close the account' },
    },
    configuration: {
      taskPushNotificationConfig: {
        url: 'https://hooks.example/a2a',
        token: 'tok-SECRET-1',
        authentication: { scheme: 'Bearer', credentials: 'cred-SECRET-2' },
      },
    },
  };
  const answer = rawCall(front.base, { jsonrpc: '2.0', id: 'p-1', method: 'SendMessage', params });
  const m = await nextMessage();
  // The Slack message (standalone backend).
  expect(m.text).toContain('hooks.example');
  expect(m.text).toContain('[redacted]');
  expect(m.text).not.toMatch(/SECRET/);
  expect(m.text).toContain('transfer 1M to X');
  expect(m.text).toContain('and close the account');
  // The ApprovalRequest the cluster backend would write to the API server (etcd) for the same approval.
  const spec = approvalRequestFor(submitted.at(-1)!).spec as { arguments: unknown; requestHash: string };
  expect(JSON.stringify(spec)).not.toMatch(/SECRET/);
  expect(spec.arguments).toMatchObject({
    message: { parts: [{ text: 'echo refund 5' }, { data: { credentials: 'transfer 1M to X' } }], metadata: { token: 'and close the account' } },
    configuration: { taskPushNotificationConfig: { token: '[redacted]', authentication: { credentials: '[redacted]' } } },
  });
  expect(spec.requestHash).toBe(a2aRequestHash('billing', 'SendMessage', params, { tenant: '', version: '1.0', binding: 'jsonrpc' }));
  approve(m.ts);
  await answer;
  // What runs is the message as sent, credentials included (they are the agent's to use).
  expect(sends(agent).map((q) => q.body)).toEqual([front.held.at(-1)!.toString('utf8')]);
  expect(sends(agent)[0]!.body).toContain('cred-SECRET-2');
});

test('the sidecar stopping while an approved call runs at the agent: the call is aborted and the client answered, not left hanging', async () => {
  await withOwnRuntime(async (rt3, front3) => {
    const answer = rawCall(front3.base, sendMessage('stop-2', 'wait', 'wait'));
    approve((await nextMessage()).ts);
    await until(() => agent.messages.some((x) => x.skill === 'wait'), 'the agent to run the approved message');
    rt3.engine.close();
    const r = await within(answer, 3_000);
    expect(r).toMatchObject({ status: 200 });
    const body = JSON.parse((r as { text: string }).text) as { id: string; error: { code: number; data: { reason: string } } };
    expect(body).toMatchObject({ id: 'stop-2', error: { code: a2aCode('APPROVAL_CANCELLED') } });
    // It left: a client told "not sent" would send it again (a refund run twice).
    expect(body.error.data.reason).toContain('may have reached the agent');
    expect(body.error.data.reason).not.toMatch(/not sent/);
    // Sent once, before the stop; never again.
    await sleep(300);
    expect(sends(agent)).toHaveLength(1);
  });
});

test("the sidecar draining (SIGTERM) while an approved call runs at the agent: it runs on and the client gets the agent's answer", async () => {
  const slow = await startA2aAgent({ sdk: '1.3.0', waitMaxMs: 1_500 });
  try {
    await withOwnRuntime(async (rtD, frontD) => {
      const answer = rawCall(frontD.base, sendMessage('drain-1', 'wait', 'wait'));
      approve((await nextMessage()).ts);
      await until(() => slow.messages.some((x) => x.skill === 'wait'), 'the agent to run the approved message');
      rtD.engine.drain();
      // Not answered for the agent ("not sent" while it runs there), not cut: it is still running.
      expect(await within(answer, 300)).toBe('pending');
      const r = await within(answer, 5_000);
      expect(r).toMatchObject({ status: 200 });
      const body = JSON.parse((r as { text: string }).text) as { id: string; result?: unknown; error?: unknown };
      expect(body.error).toBeUndefined();
      expect(body).toMatchObject({ id: 'drain-1', result: { task: { status: { state: 'TASK_STATE_COMPLETED' } } } });
      expect(sends(slow)).toHaveLength(1);
    }, slow);
  } finally {
    await slow.close();
  }
});

test.each([
  ['the engine closed', 'stop-1', (rt: ApprovalRuntime) => rt.engine.close()],
  ['draining: SIGTERM', 'drain-2', (rt: ApprovalRuntime) => rt.engine.drain()],
])(
  'the sidecar stopping (%s) while a call waits for a human: -32059 "not sent" at once, and an approval arriving later sends nothing',
  async (_how, id, stop) => {
    await withOwnRuntime(async (own, f) => {
      const answer = rawCall(f.base, sendMessage(id, 'echo', 'echo refund 2'));
      const m = await nextMessage();
      stop(own);
      const r = await within(answer, 3_000);
      expect(r).toMatchObject({ status: 200 });
      const body = JSON.parse((r as { text: string }).text) as { id: string; error: { code: number; data: { reason: string } } };
      expect(body).toMatchObject({ id, error: { code: a2aCode('APPROVAL_CANCELLED') } });
      expect(body.error.data.reason).toMatch(/shutting down.*not (sent|executed)/);
      // The backend still polls: the approval is seen, and nothing is sent for it.
      approve(m.ts);
      await sleep(1_000);
      expect(sends(agent)).toEqual([]);
    });
  },
);

test('an approved stream the agent refuses with plain JSON: that answer is read within the request memory budget (over it: OVERLOADED), and the budget is given back', async () => {
  const call = (id: string) =>
    rawCall(front.base, {
      jsonrpc: '2.0',
      id,
      method: 'SendStreamingMessage',
      params: {
        message: {
          messageId: `m-${id}`,
          taskId: `no-such-task-${'x'.repeat(200)}`,
          role: 'ROLE_USER',
          parts: [{ text: 'count 2' }],
          metadata: { skill: 'count' },
        },
      },
    });
  // Within the budget: the agent's own refusal, as one SSE data event.
  const ok = call('b-1');
  approve((await nextMessage()).ts);
  const first = (await ok) as { text: string };
  expect(first.text).toMatch(/^(: thoughtgate: waiting for approval\n\n)*data: /);
  expect(JSON.parse(first.text.slice(first.text.indexOf('data: ') + 6))).toMatchObject({ id: 'b-1', error: { code: -32001 } });
  expect(front.budget.inUse).toBe(0);
  // The budget cannot hold that answer (charged 4 per byte, as every answer read to be edited).
  front.budget.capacity = 300;
  try {
    const over = call('b-2');
    approve((await nextMessage()).ts);
    const second = (await over) as { text: string };
    expect(JSON.parse(second.text.slice(second.text.indexOf('data: ') + 6))).toMatchObject({
      id: 'b-2',
      error: { code: a2aCode('OVERLOADED'), data: { reason: expect.stringContaining('maxBufferedBytes') } },
    });
    expect(front.budget.inUse).toBe(0);
  } finally {
    front.budget.capacity = 64 << 20;
  }
});

/** A snapshot with one A2A source `billing` (`over`: more of its keys); `credentials`: the sidecar's store. */
function billingSnapshot(over: Record<string, unknown> = {}, credentials?: { get(): { ok: true; value: string } }): Snapshot {
  const compiled = compileSnapshot(
    PolicyDocumentSchema.parse({
      sources: [
        { name: 'billing', protocol: 'a2a', url: agent.base, a2a: { jsonrpc: '/a2a/jsonrpc', rest: '/a2a/rest', skillFrom: 'metadata.skill' }, ...over },
      ],
      defaultAction: 'forward',
    }),
    IdentitySchema.parse({}),
    { hash: 'h', generation: 1, ...(credentials ? { credentials } : {}) },
  );
  if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
  return compiled.snapshot;
}

/** A server doing what the A2A handler does first for each JSON-RPC call: the body read, a real request context on `deps`. */
async function contextServer(
  deps: ContextDeps,
  handle: (ctx: RequestContext, req: http.IncomingMessage, res: http.ServerResponse, body: string) => Promise<void>,
): Promise<{ base: string; close(): Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const ctx = createRequestContext(deps, req, res, 'billing');
    ctx.upstreamPath = '/a2a/jsonrpc';
    ctx.protocol = 'a2a';
    await handle(ctx, req, res, Buffer.concat(chunks).toString('utf8'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test("the sidecar's hook (a2aApprovalHook, a real request context): the engine stopping an approved call aborts it at the agent, and its client is answered -32059", async () => {
  const rt4 = runtime();
  const snap = billingSnapshot();
  const source = snap.sources.get('billing')!;
  const pools = new UpstreamPools();
  const deps = { pools, metrics: createSidecarMetrics(), budget: new ByteBudget(64 << 20), log: createLogger('error', () => {}) };
  const hook = a2aApprovalHook(rt4);
  // What the A2A handler does before its approve hook, for one SendMessage of skill `wait`.
  const server = await contextServer(deps, async (ctx, req, res, body) => {
    const call = {
      ctx,
      req,
      res,
      snap,
      source,
      op: { method: 'SendMessage', a2a: { skill: 'wait', tenant: '' } },
      row: { stream: false },
      shape: { binding: 'jsonrpc' as const, version: '1.0' as const, id: rawId('hook-1') },
      body,
      method: 'POST',
    };
    await hook(call, DECISION);
  });
  try {
    const answer = rawCall(server.base, sendMessage('hook-1', 'wait', 'wait'));
    approve((await nextMessage()).ts);
    await until(() => agent.messages.some((x) => x.skill === 'wait'), 'the agent to run the approved message');
    expect(pools.forSource(source).stats.running).toBe(1);
    rt4.engine.close();
    const r = await within(answer, 3_000);
    expect(JSON.parse((r as { text: string }).text)).toMatchObject({ id: 'hook-1', error: { code: a2aCode('APPROVAL_CANCELLED') } });
    // The call to the agent is aborted, not left to run until the agent answers (the `wait` skill: 20 s).
    await until(() => pools.forSource(source).stats.running === 0, 'the approved call to be aborted', 3_000);
  } finally {
    await server.close();
    await rt4.close();
    await pools.close();
  }
});

test("the engine's abort while the sidecar fetches the source's OAuth token (clientCredentials): the approved message is not sent after it", async () => {
  // A real token endpoint that holds its answer until released.
  let tokenAsked = 0;
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const as = http.createServer(async (req, res) => {
    for await (const _ of req);
    tokenAsked++;
    await released;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: 'tok-1', token_type: 'Bearer', expires_in: 300 }));
  });
  await new Promise<void>((r) => as.listen(0, '127.0.0.1', r));
  const asUrl = `http://127.0.0.1:${(as.address() as AddressInfo).port}`;
  const source = billingSnapshot(
    { auth: { mode: 'clientCredentials', clientId: 'tg', clientSecret: { valueFrom: { env: 'TG_TEST_CLIENT_SECRET' } }, tokenUrl: `${asUrl}/token` } },
    // The sidecar's credential store, which reads the client secret.
    { get: () => ({ ok: true, value: 's3cret' }) },
  ).sources.get('billing')!;
  const pools = new UpstreamPools();
  const tokens = createSourceTokens({ secret: () => ({ ok: true, value: 's3cret' }), clock: systemClock, log: createLogger('error', () => {}) });
  const deps = { pools, tokens, metrics: createSidecarMetrics(), budget: new ByteBudget(64 << 20), log: createLogger('error', () => {}) };
  const engineStop = new AbortController();
  let result: unknown;
  const server = await contextServer(deps, async (ctx, req, res, body) => {
    const up = await ctx.sendUpstream(source, req, 'POST', body, false, undefined, engineStop.signal);
    result = up.ok ? { ok: true, status: up.response.statusCode } : up;
    if (up.ok) await up.response.body.text();
    res.end();
  });
  try {
    const answer = rawCall(server.base, sendMessage('tok-1', 'echo', 'echo refund 9'));
    await until(() => tokenAsked === 1 || result !== undefined, 'the token request');
    expect(result).toBeUndefined();
    engineStop.abort();
    release();
    await answer;
    expect(result).toEqual({ ok: false, kind: 'aborted' });
    await sleep(300);
    expect(sends(agent)).toEqual([]);
  } finally {
    release();
    await server.close();
    as.closeAllConnections();
    await new Promise<void>((r) => as.close(() => r()));
    await pools.close();
  }
});

test('a held SendMessage with an integer the approver would see rounded (beyond 2^53): refused as InvalidParams before any approval, nothing sent', async () => {
  const before = fake.messages(CHANNEL).length;
  const params = JSON.stringify({
    message: { messageId: 'm-big', role: 'ROLE_USER', parts: [{ text: 'echo refund' }], metadata: { skill: 'echo', amount: 0 } },
  }).replace('"amount":0', '"amount":12345678901234567891');
  const r = await request(`${front.base}/a2a/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: `{"jsonrpc":"2.0","id":"big-1","method":"SendMessage","params":${params}}`,
  });
  const body = JSON.parse(await r.body.text()) as { id: string; error: { code: number; message: string } };
  // JSON.parse would show the approver 12345678901234567000; an agent in Python reads 12345678901234567891.
  expect(body).toMatchObject({ id: 'big-1', error: { code: -32602, message: expect.stringContaining('12345678901234567891') } });
  expect(body.error.message).toContain('send it as a string');
  await sleep(300);
  expect(fake.messages(CHANNEL)).toHaveLength(before);
  expect(sends(agent)).toEqual([]);
});

test('what the approval is bound to names where the message goes: the 1.0 HTTP+JSON path tenant, the version and the binding', async () => {
  const body = { message: { messageId: 'm-tenant', role: 'ROLE_USER', parts: [{ text: 'echo refund 6' }], metadata: { skill: 'echo' } } };
  const answer = request(`${front.base}/a2a/rest/tenant-a/message:send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify(body),
  }).then((r) => r.body.text());
  const m = await nextMessage();
  const hash = submitted.at(-1)!.requestHash;
  expect(hash).toBe(a2aRequestHash('billing', 'SendMessage', body, { tenant: 'tenant-a', version: '1.0', binding: 'rest' }));
  expect(hash).not.toBe(a2aRequestHash('billing', 'SendMessage', body, { tenant: '', version: '1.0', binding: 'rest' }));
  // What the approver sees names it too: the Slack message, and the ApprovalRequest the cluster backend would write.
  expect(m.text).toContain('A2A SendMessage to billing, tenant tenant-a, skill echo (A2A 1.0 over HTTP+JSON)');
  expect(approvalRequestFor(submitted.at(-1)!).spec!['a2a']).toEqual({ tenant: 'tenant-a', version: '1.0', binding: 'rest' });
  approve(m.ts);
  expect(await answer).toContain('refund 6');
  expect(sends(agent).map((q) => q.url)).toEqual(['/a2a/rest/tenant-a/message:send']);
});

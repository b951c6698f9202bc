// A2A through a real sidecar (issue 13, part B): the official SDK agents and clients of both
// generations, the sidecar between them at /a2a/<source>/. Asserts on what reached the agent (its
// recorders) as well as on what the clients saw.
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  type A2aAgent,
  type A2aClientKind,
  type A2aEvent,
  type A2aSdk,
  type A2aWebhook,
  a2aClient,
  collect,
  runPython,
  startA2aAgent,
  startA2aWebhook,
} from './support/a2a-peers.js';
import { startTestSidecar, type TestSidecar } from './support/sidecar.js';
import type { SpanRef } from '../lib/trace-context.js';
import type { Attributes, Tracer } from '../lib/tracing-api.js';

const STEP_MS = 150;

function config(agents: { name: string; url: string }[], extra = ''): string {
  return `
sources:
${agents
  .map(
    (a) => `  - name: ${a.name}
    protocol: a2a
    url: ${a.url}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest, skillFrom: metadata.skill }
    expose: { mode: blocklist, skills: ["wait"] }
    headers: { X-Agent-Key: "k-\${AGENT_KEY}" }
`,
  )
  .join('')}
rules:
  - name: no-cancel
    match: { method: CancelTask }
    action: deny
    reason: cancelling is not allowed here
  - name: no-count-skill
    match: { skill: "count" }
    action: deny
defaultAction: forward
${extra}`;
}

let a1: A2aAgent;
let a03: A2aAgent;
let tg: TestSidecar;

beforeAll(async () => {
  a1 = await startA2aAgent({ sdk: '1.3.0', stepMs: STEP_MS });
  a03 = await startA2aAgent({ sdk: '0.3.14', stepMs: STEP_MS });
  tg = await startTestSidecar(
    config([
      { name: 'agent1', url: a1.base },
      { name: 'agent03', url: a03.base },
    ]),
    { AGENT_KEY: 'from-env' },
  );
});
afterAll(async () => {
  await tg?.close();
  await a1?.close();
  await a03?.close();
});

const agentOf = (sdk: A2aSdk) => (sdk === '1.3.0' ? { agent: a1, name: 'agent1' } : { agent: a03, name: 'agent03' });
const byKind = <K extends A2aEvent['kind']>(events: A2aEvent[], kind: K) => events.filter((e): e is Extract<A2aEvent, { kind: K }> => e.kind === kind);

const CELLS: [A2aClientKind, A2aSdk][] = [
  ['js1-jsonrpc', '1.3.0'],
  ['js1-rest', '1.3.0'],
  ['js1-compat-jsonrpc', '1.3.0'],
  ['js1-compat-rest', '1.3.0'],
  ['js03-jsonrpc', '0.3.14'],
  ['js03-jsonrpc', '1.3.0'],
  ['js03-rest', '0.3.14'],
];

/** The error each SDK client raises for ThoughtGate's rule denial and for an unknown skill: its class and what its message says. */
const REFUSALS: Record<A2aClientKind, { denied: [string, RegExp]; unknownSkill: [string, RegExp] }> = {
  'js1-jsonrpc': { denied: ['JsonRpcTransportError', /^Denied by ThoughtGate rule$/], unknownSkill: ['JsonRpcRequestMalformedError', /^Invalid params$/] },
  'js1-rest': { denied: ['RestA2AErrorImpl', /^Denied by ThoughtGate rule$/], unknownSkill: ['RestRequestMalformedError', /^Invalid params$/] },
  'js1-compat-jsonrpc': {
    denied: ['JsonRpcTransportError', /^Denied by ThoughtGate rule$/],
    unknownSkill: ['JsonRpcRequestMalformedError', /^Invalid params$/],
  },
  'js1-compat-rest': { denied: ['Error', /Denied by ThoughtGate rule \(Code: -32053\)/], unknownSkill: ['RequestMalformedError', /^Invalid params$/] },
  'js03-jsonrpc': {
    denied: ['JSONRPCTransportError', /Denied by ThoughtGate rule \(Code: -32053\).*"rule":"no-cancel"/],
    unknownSkill: ['JSONRPCTransportError', /Invalid params \(Code: -32602\)/],
  },
  'js03-rest': { denied: ['Error', /Denied by ThoughtGate rule \(Code: -32053\)/], unknownSkill: ['Error', /Invalid params \(Code: -32602\)/] },
};

async function errorOf(p: Promise<unknown>): Promise<[string, string]> {
  try {
    await p;
  } catch (e) {
    return [(e as Error).constructor.name, (e as Error).message];
  }
  throw new Error('expected a refusal, the call succeeded');
}

describe.each(CELLS)('%s client, %s agent, through the sidecar', (kind, sdk) => {
  test('card filtered and rewritten; send and stream end to end', async () => {
    const { agent, name } = agentOf(sdk);
    const base = `${tg.base}/a2a/${name}/`;
    const client = await a2aClient(kind, base);
    // expose.skills blocklist hides "wait"; every interface the client uses is the sidecar's.
    expect(client.publicCard.skills).toEqual(['echo', 'count']);
    const raw = JSON.stringify(client.publicCard.raw);
    expect(raw).not.toContain(agent.base);
    expect(raw).toContain(`${tg.base}/a2a/${name}/a2a/`);

    agent.reset();
    const sent = await client.send('hello there', { metadata: { note: kind } });
    expect(sent).toMatchObject({ kind: 'message', text: 'echo: hello there' });
    expect(agent.messages.map((m) => m.text)).toEqual(['hello there']);
    // Everything the agent received came through the sidecar, with the source's configured header.
    expect(agent.requests.every((r) => String(r.headers['via'] ?? '').includes('thoughtgate'))).toBe(true);
    expect(agent.requests.map((r) => r.headers['x-agent-key'])).toEqual(agent.requests.map(() => 'k-from-env'));

    const events = await collect(client.stream('count 4'));
    const taskId = byKind(events, 'task')[0]!.taskId;
    expect(byKind(events, 'artifact').map((e) => e.text)).toEqual(['1 ', '2 ', '3 ', '4 ']);
    const finishedAt = agent.tasks.get(taskId)!.finishedAt!;
    // Not buffered: the first chunk is in the client's hands well before the agent finishes.
    expect(byKind(events, 'artifact')[0]!.receivedAt).toBeLessThanOrEqual(finishedAt - 2 * STEP_MS);
    expect(await client.getTask(taskId)).toMatchObject({ id: taskId, state: 'completed' });
  });

  test('a denied method and a hidden skill are refused with their codes; nothing reaches the agent', async () => {
    const { agent, name } = agentOf(sdk);
    const client = await a2aClient(kind, `${tg.base}/a2a/${name}/`);
    agent.reset();
    const want = REFUSALS[kind];
    // CancelTask is denied by rule: ThoughtGate's A2A code (-32053; HTTP 403 on REST) in the SDK's own error class.
    const denied = await errorOf(client.cancelTask('any-task'));
    expect(denied[0]).toBe(want.denied[0]);
    expect(denied[1]).toMatch(want.denied[1]);
    // A skill hidden by expose.skills is answered as invalid params (unknown skill).
    const hidden = await errorOf(client.send('wait', { metadata: { skill: 'wait' } }));
    expect(hidden[0]).toBe(want.unknownSkill[0]);
    expect(hidden[1]).toMatch(want.unknownSkill[1]);
    // A skill denied by rule.
    const denySkill = await errorOf(client.send('count 2', { metadata: { skill: 'count' } }));
    expect(denySkill[1]).toMatch(/Denied by ThoughtGate rule/);
    // Only the public card may have been read (the skill list, refreshed alike for every skill).
    expect(agent.requests.filter((r) => !(r.method === 'GET' && r.url === '/.well-known/agent-card.json'))).toEqual([]);
    expect(agent.calls).toEqual([]);
  });
});

test('a skill the agent does not have is answered exactly as a hidden one; neither message reaches the agent', async () => {
  const post = (skill: string) =>
    fetch(`${tg.base}/a2a/agent1/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'SendMessage',
        params: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'x' }], metadata: { skill } } },
      }),
    });
  a1.reset();
  const answers: string[] = [];
  for (const skill of ['wait', 'no-such-skill', 'Echo']) {
    const r = await post(skill);
    expect(r.status).toBe(200);
    answers.push((await r.text()).replace(/"correlationId":"[^"]+"/, '').replace(/unknown skill \\"[^\\]*\\"/, 'unknown skill'));
  }
  expect(answers[0]).toContain('-32602');
  expect(new Set(answers).size).toBe(1);
  // At most the public card was read again to learn the agent's skills; no message went.
  expect(a1.requests.every((r) => r.method === 'GET' && r.url === '/.well-known/agent-card.json')).toBe(true);
  expect(a1.messages).toEqual([]);
});

test('the extended card is filtered by every route of both generations', async () => {
  for (const [kind, sdk] of CELLS) {
    const { name } = agentOf(sdk);
    const authed = await a2aClient(kind, `${tg.base}/a2a/${name}/`, { Authorization: 'Bearer alice' });
    // The agent's extended card adds "admin"; "wait" stays hidden there too.
    expect({ kind, sdk, skills: (await authed.card()).skills }).toEqual({ kind, sdk, skills: ['echo', 'count', 'admin'] });
  }
  // The REST routes of the extended card (1.0 and 0.3's /v1/card), raw.
  for (const [path, version] of [
    ['/a2a/rest/extendedAgentCard', '1.0'],
    ['/a2a/rest/v1/card', '0.3'],
  ] as const) {
    const r = await fetch(`${tg.base}/a2a/agent1${path}`, { headers: { 'A2A-Version': version, Authorization: 'Bearer alice' } });
    expect(r.status).toBe(200);
    const card = (await r.json()) as { skills: { id: string }[]; signatures?: unknown };
    expect(card.skills.map((s) => s.id)).toEqual(['echo', 'count', 'admin']);
    expect(r.headers.get('etag')).toBeNull();
  }
});

test('the public card keeps Vary, drops ETag and its signatures, and names only the sidecar', async () => {
  for (const version of ['1.0', '0.3']) {
    const r = await fetch(`${tg.base}/a2a/agent1/.well-known/agent-card.json`, { headers: { 'A2A-Version': version } });
    expect(r.status).toBe(200);
    expect(r.headers.get('vary') ?? '').toMatch(/A2A-Version/i);
    expect(r.headers.get('etag')).toBeNull();
    const text = await r.text();
    expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    const card = JSON.parse(text) as Record<string, unknown>;
    expect(card['signatures']).toBeUndefined();
    expect(text).not.toContain(a1.base);
  }
});

test('the Python client: card and send, and streams over both bindings, through the sidecar', async () => {
  const base = `${tg.base}/a2a/agent1/`;
  a1.reset();
  const stream = (binding: string) =>
    runPython([base, 'stream', '--binding', binding, '--text', 'count 4', '--metadata', JSON.stringify({ delayMs: STEP_MS })]);
  const [card, sent, ...streams] = await Promise.all([
    runPython([base, 'card', '--extended', '--header', 'Authorization: Bearer py']),
    runPython([base, 'send', '--text', 'hi from python']),
    stream('JSONRPC'),
    stream('HTTP+JSON'),
  ]);
  expect(card.lines.map((l) => l['skills'])).toEqual([
    ['echo', 'count'],
    ['echo', 'count', 'admin'],
  ]);
  expect(sent.code).toBe(0);
  expect(sent.lines).toEqual([{ kind: 'message', text: 'echo: hi from python' }]);
  for (const s of streams) {
    expect(s.code).toBe(0);
    const events = s.lines as unknown as A2aEvent[];
    expect(byKind(events, 'artifact').map((e) => e.text)).toEqual(['1 ', '2 ', '3 ', '4 ']);
    const taskId = byKind(events, 'task')[0]!.taskId;
    expect(byKind(events, 'artifact')[0]!.receivedAt).toBeLessThanOrEqual(a1.tasks.get(taskId)!.finishedAt! - 2 * STEP_MS);
  }
  // GetTask over both bindings: what the Python client puts in the path and query passes the per-call query allowlist.
  const taskId = byKind(streams[1]!.lines as unknown as A2aEvent[], 'task')[0]!.taskId;
  for (const binding of ['JSONRPC', 'HTTP+JSON']) {
    const got = await runPython([base, 'get', '--binding', binding, '--task-id', taskId]);
    expect({ binding, code: got.code, task: got.lines[0]?.['task'] }).toMatchObject({ binding, code: 0, task: { id: taskId, state: 'completed' } });
  }
  expect(a1.requests.every((r) => String(r.headers['via'] ?? '').includes('thoughtgate'))).toBe(true);
}, 60_000);

test('log lines and metrics name the protocol, the canonical method, version, binding and skill (never the text)', async () => {
  const client = await a2aClient('js1-compat-jsonrpc', `${tg.base}/a2a/agent1/`);
  await client.send('a very private sentence', { metadata: { skill: 'echo' } });
  const line = tg
    .logs()
    .filter((l) => l['msg'] === 'request' && l['protocol'] === 'a2a')
    .find((l) => l['method'] === 'SendMessage' && l['skill'] === 'echo');
  expect(line).toMatchObject({ source: 'agent1', a2aVersion: '0.3', binding: 'jsonrpc', decision: 'forward' });
  expect(JSON.stringify(tg.logs())).not.toContain('a very private sentence');
  const metrics = await (await fetch(`${tg.admin}/metrics`)).text();
  expect(metrics).toMatch(/thoughtgate_sidecar_requests_total\{[^}]*source="agent1",method="SendMessage"[^}]*protocol="a2a"[^}]*\} \d+/);
  expect(metrics).toMatch(/thoughtgate_sidecar_added_latency_seconds_count\{[^}]*source="agent1"[^}]*protocol="a2a"[^}]*\}/);
});

describe('with tracing on (the sendUpstream path)', () => {
  interface Recorded {
    name: string;
    attributes: Attributes;
    ended: boolean;
  }
  const spans: Recorded[] = [];
  let n = 0;
  const tracer: Tracer = {
    on: true,
    start(name, o) {
      const rec: Recorded = { name, attributes: { ...(o?.attributes ?? {}) }, ended: false };
      spans.push(rec);
      const id = (++n).toString(16).padStart(16, '0');
      return {
        ref: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: id, sampled: true } satisfies SpanRef,
        set: (a) => Object.assign(rec.attributes, a),
        rename: (x) => {
          rec.name = x;
        },
        fail: () => undefined,
        link: () => undefined,
        end: () => {
          rec.ended = true;
        },
      };
    },
    shutdown: async () => undefined,
  };
  let traced: TestSidecar;
  beforeAll(async () => {
    traced = await startTestSidecar(config([{ name: 'agent1', url: a1.base }]), { AGENT_KEY: 'x' }, { tracer });
  });
  afterAll(async () => {
    await traced?.close();
  });

  test('the request span is named for the canonical method and says rpc.system a2a; the call still goes through', async () => {
    const client = await a2aClient('js1-jsonrpc', `${traced.base}/a2a/agent1/`);
    expect(await client.send('traced')).toMatchObject({ kind: 'message', text: 'echo: traced' });
    const events = await collect(client.stream('count 2'));
    expect(byKind(events, 'artifact').map((e) => e.text)).toEqual(['1 ', '2 ']);
    await expect(client.cancelTask('t')).rejects.toThrow(/Denied by ThoughtGate rule/);
    const server = spans.filter((s) => s.name.startsWith('a2a '));
    expect(server.map((s) => s.name)).toEqual(expect.arrayContaining(['a2a GetAgentCard', 'a2a SendMessage', 'a2a SendStreamingMessage', 'a2a CancelTask']));
    expect(server.find((s) => s.name === 'a2a SendMessage')?.attributes).toMatchObject({
      'rpc.system': 'a2a',
      'a2a.version': '1.0',
      'a2a.binding': 'jsonrpc',
      'thoughtgate.source': 'agent1',
    });
    expect(spans.find((s) => s.name === 'gate rules' && s.attributes['thoughtgate.rule'] === 'no-cancel')).toMatchObject({
      attributes: { 'thoughtgate.decision': 'deny', 'rpc.method': 'CancelTask' },
    });
    expect(JSON.stringify(spans)).not.toContain('traced');
  });
});

describe('plumbing through the sidecar: resubscribe, cancel, push configs', () => {
  let open: TestSidecar;
  let hook: A2aWebhook;
  beforeAll(async () => {
    hook = await startA2aWebhook();
    open = await startTestSidecar(`
sources:
  - { name: agent1, protocol: a2a, url: ${a1.base}, a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest } }
  - { name: agent03, protocol: a2a, url: ${a03.base}, a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest } }
# A push URL is egress (sidecar/a2a/push.ts): the webhook, on loopback, is named without wildcards.
egress: { allow: ["127.0.0.1:${new URL(hook.url).port}"] }
defaultAction: forward
`);
  });
  afterAll(async () => {
    await open?.close();
    await hook?.close();
  });

  test.each<[A2aClientKind, A2aSdk]>([
    ['js1-jsonrpc', '1.3.0'],
    ['js1-rest', '1.3.0'],
    ['js1-compat-rest', '1.3.0'],
    ['js03-jsonrpc', '0.3.14'],
  ])('%s against the %s agent', async (kind, sdk) => {
    const { agent, name } = agentOf(sdk);
    const client = await a2aClient(kind, `${open.base}/a2a/${name}/`);
    const long = client.stream('wait');
    const first = (await long.next()).value as A2aEvent;
    const id = first.kind === 'task' ? first.taskId : '';
    expect(id).not.toBe('');
    const resub = client.resubscribe(id);
    expect((await resub.next()).value).toMatchObject({ kind: 'task', taskId: id });
    expect(await client.pushSet(id, { id: 'cfg-1', url: hook.url, token: 'tok-1' })).toMatchObject({ taskId: id, id: 'cfg-1' });
    expect((await client.pushList(id)).map((c) => c.id)).toEqual(['cfg-1']);
    expect(await client.pushGet(id, 'cfg-1')).toMatchObject({ id: 'cfg-1', url: hook.url });
    expect(await client.cancelTask(id)).toMatchObject({ id, state: 'canceled' });
    const rest = await collect(long);
    expect(rest.at(-1)).toMatchObject({ kind: 'status', state: 'canceled' });
    expect((await collect(resub)).at(-1)).toMatchObject({ kind: 'status', state: 'canceled' });
    expect(agent.tasks.get(id)?.state).toBe('canceled');
  });
});

describe('the skill list gate 1 judges by (read from the public card)', () => {
  /** A sidecar whose skill list was never read (a fresh compiled source). */
  const fresh = () => startTestSidecar(config([{ name: 'agent1', url: a1.base }]), { AGENT_KEY: 'k' });
  const sendSkill = (base: string, skill: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/a2a/agent1/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...headers },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'SendMessage',
        params: { message: { messageId: `m-${Math.random()}`, role: 'ROLE_USER', parts: [{ text: 'x' }], metadata: { skill } } },
      }),
    }).then(async (r) => ({ status: r.status, text: await r.text() }));
  const cardReads = () => a1.requests.filter((r) => r.url === '/.well-known/agent-card.json');

  test("is read with the source's headers, never the caller's (If-None-Match, Range would empty it)", async () => {
    const s = await fresh();
    try {
      a1.reset();
      const r = await sendSkill(s.base, 'echo', { 'if-none-match': '*', range: 'bytes=0-9', 'if-modified-since': new Date().toUTCString() });
      expect(r.text).toContain('echo: x');
      expect(cardReads()).toHaveLength(1);
      const h = cardReads()[0]!.headers;
      expect(h['if-none-match'] ?? h['range'] ?? h['if-modified-since']).toBeUndefined();
      expect(h['x-agent-key']).toBe('k-k');
      expect(h['a2a-version']).toBe('1.0');
    } finally {
      await s.close();
    }
  });

  test('concurrent callers share one read', async () => {
    const s = await fresh();
    try {
      a1.reset();
      const answers = await Promise.all(['echo', 'nope', 'echo', 'wait', 'echo', 'nope'].map((k) => sendSkill(s.base, k)));
      expect(answers.map((a) => (a.text.includes('echo: x') ? 'ok' : a.text.includes('-32602') ? 'unknown' : a.text))).toEqual([
        'ok',
        'unknown',
        'ok',
        'unknown',
        'ok',
        'unknown',
      ]);
      expect(cardReads()).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  test('a hidden skill and an unknown one take the same route: the first of either reads the list, later ones read nothing', async () => {
    for (const order of [
      ['wait', 'no-such', 'wait', 'no-such'],
      ['no-such', 'wait', 'no-such', 'wait'],
    ]) {
      const s = await fresh();
      try {
        a1.reset();
        const reads: number[] = [];
        for (const skill of order) {
          const r = await sendSkill(s.base, skill);
          expect(r.text).toContain('-32602');
          reads.push(cardReads().length);
        }
        expect({ order, reads }).toEqual({ order, reads: [1, 1, 1, 1] });
        expect(a1.messages).toEqual([]);
      } finally {
        await s.close();
      }
    }
  });
});

describe('browser A2A clients (CORS, server.allowedOrigins as for MCP)', () => {
  const APP = 'https://app.example';
  let web: TestSidecar;
  beforeAll(async () => {
    web = await startTestSidecar(config([{ name: 'agent1', url: a1.base }], `server: { allowedOrigins: ["${APP}"] }`), { AGENT_KEY: 'k' });
  });
  afterAll(async () => {
    await web?.close();
  });

  test('a preflight from an allowed origin is answered here for every A2A route; nothing reaches the agent', async () => {
    a1.reset();
    for (const [path, method] of [
      ['/a2a/jsonrpc', 'POST'],
      ['/a2a/rest/message:send', 'POST'],
      ['/a2a/rest/tasks/t1/pushNotificationConfigs/c1', 'DELETE'],
      ['/.well-known/agent-card.json', 'GET'],
    ]) {
      const r = await fetch(`${web.base}/a2a/agent1${path}`, {
        method: 'OPTIONS',
        headers: { origin: APP, 'access-control-request-method': method!, 'access-control-request-headers': 'content-type, a2a-version, authorization' },
      });
      expect({ path, status: r.status }).toEqual({ path, status: 204 });
      expect(r.headers.get('access-control-allow-origin')).toBe(APP);
      expect(r.headers.get('access-control-allow-methods')).toContain(method);
      expect(r.headers.get('access-control-allow-headers')).toBe('content-type, a2a-version, authorization');
    }
    // A header A2A clients do not send is not allowed: the browser refuses the request.
    const odd = await fetch(`${web.base}/a2a/agent1/a2a/jsonrpc`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-sneaky' },
    });
    expect(odd.headers.get('access-control-allow-headers')).toBeNull();
    // The extensions header of both generations (0.3: X-A2A-Extensions).
    const ext = await fetch(`${web.base}/a2a/agent1/a2a/jsonrpc`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'a2a-extensions, x-a2a-extensions' },
    });
    expect(ext.headers.get('access-control-allow-headers')).toBe('a2a-extensions, x-a2a-extensions');
    expect(a1.requests).toEqual([]);
  });

  test('answers to an allowed origin carry its CORS headers (the card keeps Vary: A2A-Version); another origin is refused', async () => {
    a1.reset();
    const card = await fetch(`${web.base}/a2a/agent1/.well-known/agent-card.json`, { headers: { origin: APP, 'a2a-version': '1.0' } });
    expect(card.status).toBe(200);
    expect(card.headers.get('access-control-allow-origin')).toBe(APP);
    expect(card.headers.get('access-control-expose-headers')).toContain('X-ThoughtGate-Correlation-Id');
    expect(card.headers.get('access-control-expose-headers')).toMatch(/(^|, )A2A-Extensions, X-A2A-Extensions(,|$)/);
    expect(card.headers.get('vary')).toMatch(/A2A-Version.*Origin|Origin.*A2A-Version/);
    const sent = await fetch(`${web.base}/a2a/agent1/a2a/jsonrpc`, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'SendMessage',
        params: { message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'from a page' }] } },
      }),
    });
    expect(sent.headers.get('access-control-allow-origin')).toBe(APP);
    expect(await sent.text()).toContain('echo: from a page');
    const other = await fetch(`${web.base}/a2a/agent1/.well-known/agent-card.json`, { headers: { origin: 'https://evil.example' } });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(a1.messages.map((m) => m.text)).toEqual(['from a page']);
  });
});

test("the card's URLs name the address the client's connection reached, never its Host header", async () => {
  const { default: http } = await import('node:http');
  const u = new URL(tg.base);
  for (const host of [`localhost:1`, `127.0.0.1:9`, 'localhost']) {
    const text = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: u.hostname, port: u.port, path: '/a2a/agent1/.well-known/agent-card.json', headers: { host, 'a2a-version': '1.0' } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
    const card = JSON.parse(text) as { supportedInterfaces: { url: string }[] };
    expect({ host, urls: [...new Set(card.supportedInterfaces.map((i) => new URL(i.url).origin))] }).toEqual({ host, urls: [tg.base] });
  }
});

describe('the extended card is its own method for rules (GetExtendedAgentCard, every route of both generations)', () => {
  let closed: TestSidecar;
  beforeAll(async () => {
    closed = await startTestSidecar(
      config([
        { name: 'agent1', url: a1.base },
        { name: 'agent03', url: a03.base },
      ]).replace(
        'defaultAction: forward',
        `  - { name: no-extended-card, match: { method: GetExtendedAgentCard }, action: deny, reason: "the source credential's card is not for every client" }\ndefaultAction: forward`,
      ),
      { AGENT_KEY: 'k' },
    );
  });
  afterAll(async () => {
    await closed?.close();
  });

  test('a rule denying GetExtendedAgentCard refuses all four routes; nothing reaches the agent; the public card is still served', async () => {
    for (const { agent, name } of [agentOf('1.3.0'), agentOf('0.3.14')]) {
      agent.reset();
      const rpcCall = (method: string, version?: string) =>
        fetch(`${closed.base}/a2a/${name}/a2a/jsonrpc`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer alice', ...(version ? { 'a2a-version': version } : {}) },
          body: JSON.stringify({ jsonrpc: '2.0', id: 3, method, ...(version ? { params: {} } : {}) }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: number; data?: { rule?: string } } } }));
      for (const r of [await rpcCall('GetExtendedAgentCard', '1.0'), await rpcCall('agent/getAuthenticatedExtendedCard')])
        expect(r.body.error).toMatchObject({ code: -32053, data: { rule: 'no-extended-card' } });
      for (const [path, version] of [
        ['/a2a/rest/extendedAgentCard', '1.0'],
        ['/a2a/rest/v1/card', '0.3'],
      ] as const) {
        const r = await fetch(`${closed.base}/a2a/${name}${path}`, { headers: { 'a2a-version': version, authorization: 'Bearer alice' } });
        expect({ path, status: r.status }).toEqual({ path, status: 403 });
        expect(await r.text()).not.toContain('admin');
      }
      expect(agent.requests).toEqual([]);
      const card = await fetch(`${closed.base}/a2a/${name}/.well-known/agent-card.json`);
      expect(card.status).toBe(200);
    }
  });
});

describe("the skill list refresh is the sidecar's own: clients hanging up do not empty it", () => {
  // An agent whose card's head comes `headMs` after the request and its body `bodyMs` after that;
  // it answers any JSON-RPC message at once.
  let slow: http.Server;
  let slowBase = '';
  let cardReads = 0;
  const timing = { headMs: 0, bodyMs: 0 };
  const CARD = JSON.stringify({
    name: 's',
    description: 'd',
    version: '1',
    url: 'http://x/a2a/jsonrpc',
    protocolVersion: '0.3.0',
    capabilities: {},
    defaultInputModes: [],
    defaultOutputModes: [],
    skills: [{ id: 'echo', name: 'echo', description: 'e', tags: [] }],
  });
  beforeAll(async () => {
    slow = http.createServer((req, res) => {
      if (req.url?.includes('agent-card')) {
        cardReads++;
        const { headMs, bodyMs } = timing;
        const head = setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(CARD.slice(0, 10));
          const rest = setTimeout(() => res.end(CARD.slice(10)), bodyMs);
          res.once('close', () => clearTimeout(rest));
        }, headMs);
        res.once('close', () => clearTimeout(head));
        return;
      }
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const id = (JSON.parse(body) as { id: unknown }).id;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { kind: 'message', messageId: 'r', role: 'agent', parts: [{ kind: 'text', text: 'ran' }] } }));
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    slowBase = `http://127.0.0.1:${(slow.address() as net.AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => slow.close(() => r())));

  const start = (response = '60s') =>
    startTestSidecar(`
sources:
  - name: slow
    protocol: a2a
    url: ${slowBase}
    a2a: { jsonrpc: /a2a/jsonrpc, skillFrom: metadata.skill }
    timeouts: { response: ${response} }
defaultAction: forward
`);
  const rpc = (id: number) =>
    JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'message/send',
      params: { message: { kind: 'message', messageId: `m${id}`, role: 'user', parts: [{ kind: 'text', text: 'x' }], metadata: { skill: 'echo' } } },
    });
  /** Sends a message naming skill echo on a raw socket and hangs up after `ms`. */
  const abandon = async (base: string, ms: number) => {
    const u = new URL(base);
    const sock = net.connect(Number(u.port), u.hostname);
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    const b = rpc(1);
    sock.write(
      `POST /a2a/slow/a2a/jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`,
    );
    await sleep(ms);
    sock.destroy();
  };
  const victim = (base: string) =>
    fetch(`${base}/a2a/slow/a2a/jsonrpc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: rpc(2) }).then((r) => r.text());

  test('a client hanging up mid-card: the refresh completes and the next caller is judged by the card', async () => {
    const s = await start();
    try {
      cardReads = 0;
      Object.assign(timing, { headMs: 0, bodyMs: 400 });
      await abandon(s.base, 150); // the card's head is in, its body not
      await sleep(600);
      expect(await victim(s.base)).toContain('"ran"');
      expect(cardReads).toBe(1);
    } finally {
      await s.close();
    }
  });

  test('two clients hanging up before the card arrives, ahead of a waiting victim: the victim is judged by the card', async () => {
    const s = await start();
    try {
      cardReads = 0;
      Object.assign(timing, { headMs: 300, bodyMs: 0 });
      const first = abandon(s.base, 150);
      await sleep(30);
      const second = abandon(s.base, 300);
      await sleep(30);
      const v = victim(s.base);
      await Promise.all([first, second]);
      expect(await v).toContain('"ran"');
      expect(cardReads).toBe(1);
    } finally {
      await s.close();
    }
  });

  test("a card whose body never comes: the refresh ends at the source's response timeout, failing closed", async () => {
    const s = await start('300ms');
    try {
      cardReads = 0;
      Object.assign(timing, { headMs: 0, bodyMs: 60_000 });
      expect(await victim(s.base)).toContain('-32602');
      // Failed: tried again after RETRY_MS, not before.
      expect(await victim(s.base)).toContain('-32602');
      expect(cardReads).toBe(1);
    } finally {
      await s.close();
    }
  });
});

test('a client that does not read the card it asked for holds its bytes in the budget until server.slowReaderTimeout cuts it off', async () => {
  // An ~8 MB card: more than a never-reading client's socket buffers take, so the edited card stays
  // in the sidecar (and in the budget) until the client reads it or is cut off.
  const skills = Array.from({ length: 40_000 }, (_, i) => ({ id: `s${i}`, name: `skill ${i}`, description: 'd'.repeat(150), tags: [] }));
  let card = '';
  const agent = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(card);
  });
  await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(agent.address() as net.AddressInfo).port}`;
  const common = { name: 'big', description: 'd', version: '1', protocolVersion: '0.3.0', capabilities: {}, defaultInputModes: [], defaultOutputModes: [] };
  card = JSON.stringify({ ...common, url: `${url}/a2a/jsonrpc`, skills });
  const s = await startTestSidecar(`
sources:
  - name: big
    protocol: a2a
    url: ${url}
    a2a: { jsonrpc: /a2a/jsonrpc }
defaultAction: forward
limits: { maxFilteredResponseBytes: 16777216, maxBufferedBytes: 67108864 }
server: { slowReaderTimeout: 1s }
`);
  const metric = async (name: string) => {
    const text = await (await fetch(`${s.admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const until = async (pred: () => Promise<boolean>, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (await pred()) return true;
    return false;
  };
  const sock = net.connect(Number(new URL(s.base).port), '127.0.0.1');
  try {
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.pause(); // never reads
    sock.write('GET /a2a/big/.well-known/agent-card.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // Once the card is read, filtered and written, its bytes are still held for the client.
    expect(await until(async () => (await metric('thoughtgate_sidecar_buffered_bytes')) > 0, 10_000)).toBe(true);
    await sleep(500);
    expect(await metric('thoughtgate_sidecar_buffered_bytes')).toBeGreaterThan(card.length / 2);
    // Cut off after slowReaderTimeout, and the budget comes back.
    expect(await until(async () => (await metric('thoughtgate_sidecar_request_timeouts_total{phase="response"}')) === 1, 10_000)).toBe(true);
    expect(await until(async () => (await metric('thoughtgate_sidecar_buffered_bytes')) === 0, 5_000)).toBe(true);
    sock.resume();
    await closed;
  } finally {
    sock.destroy();
    await s.close();
    await new Promise<void>((r) => agent.close(() => r()));
  }
}, 30_000);

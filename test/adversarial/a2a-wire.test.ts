// A2A on the wire, as a hostile caller writes it (issue 13, DESIGN §1.7, §2.8, §2.13): every body,
// path, header and spelling the sidecar does not read exactly as the agent would is refused here,
// and the agent's recorder proves nothing reached it. Against the real SDK agents of both
// generations (the 0.3.14 server ignores A2A-Version and runs `message/send` whatever it says; the
// 1.3.0 server matches REST paths case-insensitively and runs the last of duplicate keys).
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { a2aCode } from '../../api/errors.js';
import { type A2aAgent, type A2aSdk, startA2aAgent } from '../support/a2a-peers.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

let a1: A2aAgent;
let a03: A2aAgent;
let mcpUpstream: string;
let tg: TestSidecar;

const source = (name: string, url: string, extra = '') => `  - name: ${name}
    protocol: a2a
    url: ${url}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest, skillFrom: metadata.skill${extra} }
`;

beforeAll(async () => {
  a1 = await startA2aAgent({ sdk: '1.3.0' });
  a03 = await startA2aAgent({ sdk: '0.3.14' });
  mcpUpstream = a1.base; // only its name matters: nothing may reach it under /a2a/
  tg = await startTestSidecar(`
sources:
${source('agent1', a1.base)}${source('agent03', a03.base)}${source('only10', a1.base, ", versions: ['1.0']")}  - name: mcp
    url: ${mcpUpstream}/mcp
rules:
  - { name: no-send-audited, match: { source: agent03, method: SendMessage, skill: wait }, action: deny, enforcement: audit }
  - { name: no-send, match: { method: SendMessage, skill: count }, action: deny }
defaultAction: forward
`);
});
afterAll(async () => {
  await tg?.close();
  await a1?.close();
  await a03?.close();
});

const agents = (): Record<A2aSdk, { agent: A2aAgent; name: string }> => ({ '1.3.0': { agent: a1, name: 'agent1' }, '0.3.14': { agent: a03, name: 'agent03' } });

const msg03 = (text: string, metadata: Record<string, unknown> = {}) => ({
  kind: 'message',
  messageId: `m-${Math.random()}`,
  role: 'user',
  parts: [{ kind: 'text', text }],
  metadata,
});
const msg10 = (text: string, metadata: Record<string, unknown> = {}) => ({ messageId: `m-${Math.random()}`, role: 'ROLE_USER', parts: [{ text }], metadata });
const rpc = (method: string, params: unknown, id: unknown = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, params });

/** A raw request (node:http sends the path as written: no client-side normalisation of "..", "%2e" or "//"). */
function send(path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  return sendTo(tg.base, path, init.body, init.headers, init.method);
}

const rpcCode = (j: Record<string, unknown> | null) => (j?.['error'] as { code?: number } | undefined)?.code;

interface Case {
  what: string;
  path: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** JSON-RPC error code, or HTTP status for REST / pre-read refusals. */
  code?: number;
  status?: number;
}

const CASES: Case[] = [
  // Bodies
  { what: 'a batch of one SendMessage', path: '/a2a/jsonrpc', body: `[${rpc('message/send', { message: msg03('hi') })}]`, code: -32600 },
  { what: 'an empty batch', path: '/a2a/jsonrpc', body: '[]', code: -32600 },
  {
    what: 'duplicate method keys (servers run the last)',
    path: '/a2a/jsonrpc',
    body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","method":"message/send","params":{"message":${JSON.stringify(msg03('dup'))}}}`,
    code: -32600,
  },
  {
    what: 'a duplicate key deep in params',
    path: '/a2a/jsonrpc',
    body: `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"kind":"message","messageId":"x","role":"user","parts":[{"kind":"text","text":"a","text":"b"}]}}}`,
    code: -32600,
  },
  { what: 'a BOM before the body', path: '/a2a/jsonrpc', body: `\uFEFF${rpc('message/send', { message: msg03('bom') })}`, code: -32700 },
  { what: 'text/plain', path: '/a2a/jsonrpc', body: rpc('message/send', { message: msg03('tp') }), headers: { 'content-type': 'text/plain' }, code: -32005 },
  {
    what: 'application/a2a+json on JSON-RPC',
    path: '/a2a/jsonrpc',
    body: rpc('message/send', { message: msg03('a2a+json') }),
    headers: { 'content-type': 'application/a2a+json' },
    code: -32005,
  },
  {
    what: 'charset utf-16',
    path: '/a2a/jsonrpc',
    body: rpc('message/send', { message: msg03('u16') }),
    headers: { 'content-type': 'application/json; charset=utf-16' },
    code: -32005,
  },
  // A body the agent would decode first (express.json inflates gzip, deflate, br): the gates read the bytes as sent.
  {
    what: 'Content-Encoding gzip on JSON-RPC',
    path: '/a2a/jsonrpc',
    body: rpc('message/send', { message: msg03('gz', { skill: 'echo' }) }),
    headers: { 'content-encoding': 'gzip' },
    code: -32005,
  },
  {
    what: 'Content-Encoding "identity, deflate" on JSON-RPC',
    path: '/a2a/jsonrpc',
    body: rpc('message/send', { message: msg03('gz', { skill: 'echo' }) }),
    headers: { 'content-encoding': 'identity, deflate' },
    code: -32005,
  },
  {
    what: 'Content-Encoding br on REST',
    path: '/a2a/rest/message:send',
    body: JSON.stringify({ message: msg10('br') }),
    headers: { 'a2a-version': '1.0', 'content-encoding': 'br' },
    status: 400,
  },
  { what: 'a response, not a call', path: '/a2a/jsonrpc', body: '{"jsonrpc":"2.0","id":1,"result":{}}', code: -32600 },
  // Method spelling and generation
  { what: 'Message/Send', path: '/a2a/jsonrpc', body: rpc('Message/Send', { message: msg03('case') }), code: -32601 },
  { what: 'sendMessage', path: '/a2a/jsonrpc', body: rpc('sendMessage', { message: msg10('case') }), headers: { 'a2a-version': '1.0' }, code: -32601 },
  {
    what: '"SendMessage " with a space',
    path: '/a2a/jsonrpc',
    body: rpc('SendMessage ', { message: msg10('sp') }),
    headers: { 'a2a-version': '1.0' },
    code: -32601,
  },
  { what: 'a 1.0 name with no version (0.3)', path: '/a2a/jsonrpc', body: rpc('SendMessage', { message: msg10('gen') }), code: -32601 },
  {
    what: 'a 0.3 name with A2A-Version 1.0',
    path: '/a2a/jsonrpc',
    body: rpc('message/send', { message: msg03('gen') }),
    headers: { 'a2a-version': '1.0' },
    code: -32601,
  },
  { what: '__proto__ as a method', path: '/a2a/jsonrpc', body: rpc('__proto__', {}), code: -32601 },
  // Version games
  { what: 'A2A-Version 1.0.0', path: '/a2a/jsonrpc', body: rpc('SendMessage', { message: msg10('v') }), headers: { 'a2a-version': '1.0.0' }, code: -32009 },
  { what: 'A2A-Version 0.3.0', path: '/a2a/jsonrpc', body: rpc('message/send', { message: msg03('v') }), headers: { 'a2a-version': '0.3.0' }, code: -32009 },
  {
    what: 'two versions in one header',
    path: '/a2a/jsonrpc',
    body: rpc('message/send', { message: msg03('v') }),
    headers: { 'a2a-version': '0.3, 1.0' },
    code: -32009,
  },
  {
    what: 'header and query disagreeing',
    path: '/a2a/jsonrpc?A2A-Version=0.3',
    body: rpc('SendMessage', { message: msg10('v') }),
    headers: { 'a2a-version': '1.0' },
    code: -32009,
  },
  // Params the gates could read differently from the agent
  { what: 'a skill that is not a string', path: '/a2a/jsonrpc', body: rpc('message/send', { message: msg03('s', { skill: ['echo'] }) }), code: -32602 },
  { what: 'a part with no kind', path: '/a2a/jsonrpc', body: rpc('message/send', { message: { ...msg03('x'), parts: [{ text: 'x' }] } }), code: -32602 },
  // Rules: a skill spelt in another case is not the rule's skill, but a denied one stays denied in either generation
  { what: 'a denied skill (0.3)', path: '/a2a/jsonrpc', body: rpc('message/send', { message: msg03('f', { skill: 'count' }) }), code: -32053 },
  {
    what: 'a denied skill (1.0)',
    path: '/a2a/jsonrpc',
    body: rpc('SendMessage', { message: msg10('f', { skill: 'count' }) }),
    headers: { 'a2a-version': '1.0' },
    code: -32053,
  },
  // REST paths: a 1.0 send under each spelling the route table does not have (the 1.3.0 server runs /Message:Send)
  ...(
    [
      ['REST /Message:Send', '/Message:Send'],
      ['REST %3A for ":"', '/message%3Asend'],
      ['REST dot segment', '/x/../message:send'],
      ['REST //', '//message:send'],
      ['REST %2e%2e segment', '/x/%2e%2e/message:send'],
      ['REST trailing /', '/message:send/'],
      ['REST /v1/ path with 1.0', '/v1/message:send'],
    ] as const
  ).map(
    ([what, route]): Case => ({
      what,
      path: `/a2a/rest${route}`,
      body: JSON.stringify({ message: msg10('c') }),
      headers: { 'a2a-version': '1.0' },
      status: 404,
    }),
  ),
  {
    what: 'a 1.0 body on the 0.3 /v1/message:send (runs with empty text upstream)',
    path: '/a2a/rest/v1/message:send',
    body: JSON.stringify({ message: msg10('shape') }),
    status: 400,
  },
  {
    what: 'a REST body with duplicate keys',
    path: '/a2a/rest/message:send',
    body: `{"message":${JSON.stringify(msg10('a'))},"message":${JSON.stringify(msg10('b'))}}`,
    headers: { 'a2a-version': '1.0' },
    status: 400,
  },
  {
    what: 'a tenant in the query other than the body names',
    path: '/a2a/rest/message:send?tenant=other',
    body: JSON.stringify({ message: msg10('t'), tenant: 'mine' }),
    headers: { 'a2a-version': '1.0' },
    status: 400,
  },
  {
    what: 'a tenant twice in the query',
    path: '/a2a/rest/message:send?tenant=a&tenant=b',
    body: JSON.stringify({ message: msg10('t') }),
    headers: { 'a2a-version': '1.0' },
    status: 400,
  },
  {
    what: 'a REST body as text/plain',
    path: '/a2a/rest/message:send',
    body: JSON.stringify({ message: msg10('t') }),
    headers: { 'a2a-version': '1.0', 'content-type': 'text/plain' },
    status: 400,
  },
  // Query strings: only the names each call takes, once each (a qs-style parser reads ?tenant[]=x as a tenant)
  ...(
    [
      ['a tenant[] in the query (qs reads it as the tenant)', 'POST', '/a2a/rest/message:send?tenant[]=x'],
      ['a %-encoded tenant[] in the query', 'POST', '/a2a/rest/message:send?tenant%5B%5D=x'],
      ['a tenant[k] in the query', 'POST', '/a2a/rest/message:send?tenant[k]=x'],
      ['an unknown query parameter on a send', 'POST', '/a2a/rest/message:send?skill=admin'],
      ['a repeated historyLength', 'GET', '/a2a/rest/tasks/t1?historyLength=1&historyLength=2'],
      ['a ";" in the query', 'GET', '/a2a/rest/tasks/t1?historyLength=1;tenant=x'],
      ['a query parameter the card does not take', 'GET', '/.well-known/agent-card.json?tenant=x'],
      // express's parser stops at 1000 parameters, empty ones counted; URLSearchParams skips them
      ['a tenant after 1000 empty parameters', 'POST', `/a2a/rest/message:send?${'&'.repeat(1000)}tenant=sandbox`],
      ['an empty parameter in the query', 'POST', '/a2a/rest/message:send?tenant=t&&A2A-Version=1.0'],
      ['a leading "&" in the query', 'GET', '/a2a/rest/tasks/t1?&historyLength=1'],
    ] as const
  ).map(
    ([what, method, path]): Case => ({
      what,
      path,
      method,
      ...(method === 'POST' ? { body: JSON.stringify({ message: msg10('q') }) } : {}),
      headers: { 'a2a-version': '1.0' },
      status: 400,
    }),
  ),
  {
    what: 'a query parameter on JSON-RPC other than A2A-Version',
    path: '/a2a/jsonrpc?tenant=x',
    body: rpc('message/send', { message: msg03('q') }),
    code: a2aCode('QUERY_NOT_ALLOWED'),
  },
  // A fragment in the query: express drops it (tenant "prod"), URLSearchParams keeps it ("prod#").
  ...(['/a2a/rest/message:send?tenant=prod#', '/a2a/rest/message:send?x#&tenant=prod'] as const).map(
    (path): Case => ({
      what: `a "#" in the query (${path})`,
      path,
      body: JSON.stringify({ message: msg10('f') }),
      headers: { 'a2a-version': '1.0' },
      status: 404,
    }),
  ),
  { what: 'GET on the JSON-RPC path', path: '/a2a/jsonrpc', method: 'GET', status: 400 },
  { what: 'a path the agent has but ThoughtGate does not serve', path: '/.well-known/agent.json', method: 'GET', status: 404 },
  { what: 'the agent root', path: '/', method: 'GET', status: 404 },
];

describe.each<A2aSdk>(['1.3.0', '0.3.14'])('the %s agent', (sdk) => {
  test.each(CASES)('$what is refused and never reaches the agent', async (c) => {
    const { agent, name } = agents()[sdk];
    agent.reset();
    const r = await send(`/a2a/${name}${c.path}`, {
      ...(c.method ? { method: c.method } : {}),
      ...(c.body !== undefined ? { body: c.body } : {}),
      ...(c.headers ? { headers: c.headers } : {}),
    });
    if (c.code !== undefined) expect({ code: rpcCode(r.json), text: r.text }).toMatchObject({ code: c.code });
    if (c.status !== undefined) expect({ status: r.status, text: r.text }).toMatchObject({ status: c.status });
    // Nothing of it reached the agent (the sidecar may read the public card to learn the agent's skills).
    expect(agent.requests.filter((q) => !(q.method === 'GET' && q.url === '/.well-known/agent-card.json'))).toEqual([]);
    expect(agent.calls).toEqual([]);
  });

  test('the same call, well formed, does reach the agent (the cases above are refused for their flaw alone)', async () => {
    const { agent, name } = agents()[sdk];
    agent.reset();
    const r = await send(`/a2a/${name}/a2a/jsonrpc`, { body: rpc('message/send', { message: msg03('fine', { skill: 'echo' }) }) });
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.json)).toContain('echo: fine');
    expect(agent.messages.map((m) => m.text)).toEqual(['fine']);
  });

  test('a notification (no id) is governed: a denied one gets no answer and does not run', async () => {
    const { agent, name } = agents()[sdk];
    agent.reset();
    const body = JSON.stringify({ jsonrpc: '2.0', method: 'message/send', params: { message: msg03('n', { skill: 'count' }) } });
    const r = await send(`/a2a/${name}/a2a/jsonrpc`, { body });
    expect(r.status).toBe(202);
    expect(r.text).toBe('');
    expect(agent.requests).toEqual([]);
  });
});

test('a version the source does not allow is refused (a2a.versions)', async () => {
  a1.reset();
  const r = await send('/a2a/only10/a2a/jsonrpc', { body: rpc('message/send', { message: msg03('v03') }) });
  expect(rpcCode(r.json)).toBe(-32009);
  const ok = await send('/a2a/only10/a2a/jsonrpc', { body: rpc('SendMessage', { message: msg10('v10') }), headers: { 'a2a-version': '1.0' } });
  expect(ok.status).toBe(200);
  expect(a1.messages.map((m) => m.text)).toEqual(['v10']);
});

test('audit mode forwards what enforce would deny, with a record', async () => {
  a03.reset();
  const r = await send('/a2a/agent03/a2a/jsonrpc', { body: rpc('message/send', { message: msg03('audited', { skill: 'wait', delayMs: 1 }) }) });
  expect(r.status).toBe(200);
  expect(a03.messages.map((m) => m.text)).toEqual(['audited']);
  const line = tg.logs().find((l) => l['msg'] === 'request' && l['rule'] === 'no-send-audited');
  expect(line).toMatchObject({ decision: 'forward', audit: { would: 'deny', rule: 'no-send-audited' }, protocol: 'a2a' });
});

describe('routing', () => {
  test('an unknown agent, an MCP source under /a2a/ and an A2A agent under /mcp/ are unknown sources; nothing is forwarded', async () => {
    a1.reset();
    for (const path of ['/a2a/nope/.well-known/agent-card.json', '/a2a/mcp/.well-known/agent-card.json']) {
      const r = await send(path, { method: 'GET' });
      expect({ path, status: r.status }).toEqual({ path, status: 404 });
      expect(rpcCode(r.json)).toBe(a2aCode('UNKNOWN_SOURCE'));
    }
    const m = await send('/mcp/agent1', { body: rpc('tools/list', {}) });
    expect(m.status).toBe(404);
    expect(a1.requests).toEqual([]);
  });

  test('the base URL without its trailing slash is answered with the slash rule', async () => {
    // The JS client resolves .well-known/agent-card.json against …/a2a/agent1 (no slash): /a2a/.well-known/….
    const r = await send('/a2a/.well-known/agent-card.json', { method: 'GET' });
    expect(r.status).toBe(404);
    expect(r.text).toContain('trailing slash');
  });

  test('a captured or forward-proxied request to the agent origin is not relayed as MCP', async () => {
    a1.reset();
    const r = await send(`/mcp/agent1`, { body: rpc('message/send', { message: msg03('x') }) });
    expect(r.status).toBe(404);
    expect(a1.requests).toEqual([]);
  });
});

describe('a tampering agent card', () => {
  // A plain node:http agent whose card is whatever the test sets: the SDK servers only serve honest cards.
  /** `cut`: the agent announces more than it sends and hangs up. */
  let card: { type: string; body: string; headers?: Record<string, string>; cut?: true } = { type: 'application/json', body: '{}' };
  let served = 0;
  let fake: http.Server;
  let fakeBase: string;
  let t2: TestSidecar;
  beforeAll(async () => {
    fake = http.createServer((_req, res) => {
      served++;
      const length = card.cut ? { 'content-length': String(Buffer.byteLength(card.body) + 100) } : {};
      res.writeHead(200, { 'content-type': card.type, etag: '"v1"', vary: 'A2A-Version', ...length, ...(card.headers ?? {}) });
      if (card.cut) res.write(card.body, () => res.destroy());
      else res.end(card.body);
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    fakeBase = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
    t2 = await startTestSidecar(`
limits: { maxFilteredResponseBytes: 4096, maxBodyBytes: 2048 }
sources:
  - name: liar
    protocol: a2a
    url: ${fakeBase}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest }
    expose: { mode: allowlist, skills: ["public-*"] }
`);
  });
  afterAll(async () => {
    await t2?.close();
    await new Promise<void>((r) => fake.close(() => r()));
  });
  const getCard = () => fetch(`${t2.base}/a2a/liar/.well-known/agent-card.json`, { headers: { 'A2A-Version': '1.0' } });

  test('interfaces elsewhere, gRPC and unconfigured paths are dropped; hidden skills and signatures go; ETag goes, Vary stays', async () => {
    card = {
      type: 'application/json',
      body: JSON.stringify({
        name: 'liar',
        skills: [{ id: 'public-echo' }, { id: 'admin-wipe' }, { id: 'PUBLIC-ECHO' }],
        supportedInterfaces: [
          { url: `${fakeBase}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
          { url: 'http://169.254.169.254/a2a/jsonrpc', protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
          { url: `${fakeBase}/a2a/grpc`, protocolBinding: 'GRPC', protocolVersion: '1.0' },
          { url: `${fakeBase}/backdoor`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
        ],
        signatures: [{ protected: 'eyJhbGciOiJFUzI1NiJ9', signature: 'sig' }],
      }),
    };
    const r = await getCard();
    expect(r.status).toBe(200);
    expect(r.headers.get('etag')).toBeNull();
    expect(r.headers.get('vary')).toMatch(/A2A-Version/);
    expect(await r.json()).toEqual({
      name: 'liar',
      skills: [{ id: 'public-echo' }],
      supportedInterfaces: [{ url: `${t2.base}/a2a/liar/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
    });
  });

  test('a body over limits.maxBodyBytes is refused (413) before any of it is decided or sent', async () => {
    const before = served;
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'message/send',
      params: { message: { kind: 'message', messageId: 'm', role: 'user', parts: [{ kind: 'text', text: 'x'.repeat(4096) }] } },
    });
    const r = await fetch(`${t2.base}/a2a/liar/a2a/jsonrpc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { code: number } }).error.code).toBe(a2aCode('REQUEST_TOO_LARGE'));
    expect(served).toBe(before);
  });

  test('a ListTasks answer the agent cuts short is UPSTREAM_UNAVAILABLE (the agent failed), never passed', async () => {
    card = { type: 'application/json', body: '{"jsonrpc":"2.0","id":1,"result":{"tasks":[', cut: true };
    const before = served;
    const r = await fetch(`${t2.base}/a2a/liar/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ListTasks', params: {} }),
    });
    expect(served).toBe(before + 1);
    const text = await r.text();
    expect((JSON.parse(text) as { error: { code: number } }).error.code).toBe(a2aCode('UPSTREAM_UNAVAILABLE'));
    expect(text).not.toContain('"tasks"');
  });

  test.each([
    ['an oversized card', () => ({ type: 'application/json', body: JSON.stringify({ skills: [{ id: 'public-x', description: 'x'.repeat(8000) }] }) })],
    ['a card that is not JSON', () => ({ type: 'application/json', body: '{"skills": [' })],
    ['a card with duplicate keys', () => ({ type: 'application/json', body: '{"skills":[],"skills":[{"id":"admin-wipe"}]}' })],
    ['a card of another content type', () => ({ type: 'text/html', body: '<html></html>' })],
    ['a card whose skills are not a list', () => ({ type: 'application/json', body: '{"skills":{"id":"admin-wipe"}}' })],
  ])('%s is refused, never passed unfiltered', async (_what, make) => {
    card = make();
    const before = served;
    const r = await getCard();
    expect(served).toBe(before + 1);
    expect(r.status).toBe(502);
    const text = await r.text();
    expect(text).toContain('"reason":"UPSTREAM_RESPONSE_INVALID"');
    expect(text).not.toContain('admin-wipe');
  });
});

test('a version told by the query alone reaches the agent as the header it reads: decided and run as 1.0', async () => {
  a1.reset();
  const r = await send('/a2a/agent1/a2a/jsonrpc?A2A-Version=1.0', { body: rpc('SendMessage', { message: msg10('by query') }) });
  expect(r.status).toBe(200);
  expect(r.json).toMatchObject({ result: expect.anything() });
  expect(r.json?.error).toBeUndefined();
  expect(a1.requests.at(-1)?.headers['a2a-version']).toBe('1.0');
});

test('the agent always reads the version the gates decided on: an empty header is replaced, a Connection header naming it refused', async () => {
  a1.reset();
  const empty = await send('/a2a/agent1/a2a/jsonrpc?A2A-Version=1.0', {
    body: rpc('SendMessage', { message: msg10('empty') }),
    headers: { 'a2a-version': '' },
  });
  expect(empty.json?.error).toBeUndefined();
  expect(a1.requests.at(-1)?.headers['a2a-version']).toBe('1.0');
  a1.reset();
  const hop = await send('/a2a/agent1/a2a/jsonrpc', {
    body: rpc('SendMessage', { message: msg10('hop') }),
    headers: { 'a2a-version': '1.0', connection: 'keep-alive, A2A-Version' },
  });
  expect(hop.json).toMatchObject({ error: { code: -32009 } });
  expect(a1.requests).toEqual([]);
});

test('a 0.3 stream method refused here is answered as one SSE error event, as the agents answer (the 0.3.14 client reads nothing else there)', async () => {
  for (const { agent, name } of Object.values(agents())) {
    agent.reset();
    const r = await sendRaw(`/a2a/${name}/a2a/jsonrpc`, rpc('message/stream', { message: msg03('s', { skill: ['echo'] }) }, 7));
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('text/event-stream');
    expect(r.text).toMatch(/^event: error\ndata: /);
    expect(JSON.parse(r.text.slice('event: error\ndata: '.length))).toMatchObject({ id: 7, error: { code: -32602 } });
    expect(agent.requests).toEqual([]);
  }
});

/** As send(), with the answer's content type. */
function sendRaw(path: string, body: string) {
  const u = new URL(tg.base);
  return new Promise<{ status: number; contentType: string; text: string }>((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('Content-Encoding identity is read and forwarded like none', async () => {
  a1.reset();
  const r = await send('/a2a/agent1/a2a/jsonrpc', {
    body: rpc('message/send', { message: msg03('plain', { skill: 'echo' }) }),
    headers: { 'content-encoding': 'identity' },
  });
  expect(JSON.stringify(r.json)).toContain('echo: plain');
});

test("a version refusal names the call's id when its body is a JSON-RPC request (as the agent answers it), id null otherwise", async () => {
  for (const { agent, name } of Object.values(agents())) {
    agent.reset();
    const r = await send(`/a2a/${name}/a2a/jsonrpc`, { body: rpc('SendMessage', { message: msg10('v') }, 42), headers: { 'a2a-version': '2.0' } });
    expect({ status: r.status, json: r.json }).toMatchObject({ status: 200, json: { id: 42, error: { code: -32009 } } });
    const hop = await send(`/a2a/${name}/a2a/jsonrpc`, {
      body: rpc('SendMessage', { message: msg10('v') }, 'req-7'),
      headers: { 'a2a-version': '1.0', connection: 'keep-alive, A2A-Version' },
    });
    expect(hop.json).toMatchObject({ id: 'req-7', error: { code: -32009 } });
    const unreadable = await send(`/a2a/${name}/a2a/jsonrpc`, { body: '{"id": 3, ', headers: { 'a2a-version': '2.0' } });
    expect(unreadable.json).toMatchObject({ id: null, error: { code: -32009 } });
    expect(agent.requests).toEqual([]);
  }
});

test('the query names a call takes pass: ListTasks paging, GetTask history, A2A-Version', async () => {
  a1.reset();
  const list = await send('/a2a/agent1/a2a/rest/tasks?pageSize=5&includeArtifacts=false&A2A-Version=1.0', { method: 'GET' });
  expect({ status: list.status, text: list.text }).toMatchObject({ status: 200 });
  expect(a1.requests.at(-1)?.url).toBe('/a2a/rest/tasks?pageSize=5&includeArtifacts=false&A2A-Version=1.0');
});

describe('the byte budget (limits.maxBufferedBytes) covers what the A2A path holds', () => {
  // An agent whose stream's first event arrives in two halves, 150 ms apart (a large event split by the network).
  let fake: http.Server;
  let t3: TestSidecar;
  beforeAll(async () => {
    fake = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const id = (JSON.parse(body) as { id: unknown }).id;
        const ev = `data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { kind: 'task', id: 't-split', contextId: 'c-split', status: { state: 'working' }, metadata: { pad: 'x'.repeat(8000) } } })}\n\n`;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(ev.slice(0, 6000));
        setTimeout(() => res.end(ev.slice(6000)), 150);
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const fakeBase = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
    t3 = await startTestSidecar(`
limits: { maxBufferedBytes: 65536, maxFilteredResponseBytes: 16384, maxBodyBytes: 65536 }
sources:
${source('agent1', a1.base)}  - name: splitter
    protocol: a2a
    url: ${fakeBase}
    a2a: { jsonrpc: /a2a/jsonrpc }
defaultAction: forward
`);
  });
  afterAll(async () => {
    await t3?.close();
    await new Promise<void>((r) => fake.close(() => r()));
  });

  /** Another client's upload, 62 000 bytes of its body held by the sidecar until `release`. */
  async function hog(): Promise<() => void> {
    const net = await import('node:net');
    const u = new URL(t3.base);
    const sock = net.connect(Number(u.port), u.hostname);
    await new Promise((r) => sock.once('connect', r));
    sock.on('error', () => undefined);
    sock.write(`POST /a2a/agent1/a2a/jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 65000\r\n\r\n`);
    sock.write('x'.repeat(62_000));
    for (let i = 0; i < 200; i++) {
      const m = /thoughtgate_sidecar_buffered_bytes (\d+)/.exec(await (await fetch(`${t3.admin}/metrics`)).text());
      if (Number(m?.[1] ?? 0) >= 62_000) return () => sock.destroy();
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('the sidecar never held the upload');
  }

  test('a ListTasks answer the budget cannot hold is refused whole (OVERLOADED), and served again once there is room', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await sendTo(t3.base, '/a2a/agent1/a2a/jsonrpc', rpc('SendMessage', { message: msg10('count 1', { delayMs: 1 }) }), { 'a2a-version': '1.0' });
      expect(r.json?.['result']).toBeDefined();
    }
    const ok = await sendTo(t3.base, '/a2a/agent1/a2a/rest/tasks?pageSize=5', undefined, { 'a2a-version': '1.0' }, 'GET');
    expect(ok.status).toBe(200);
    expect(((ok.json as { tasks: unknown[] }).tasks ?? []).length).toBeGreaterThan(0);
    const release = await hog();
    try {
      const rest = await sendTo(t3.base, '/a2a/agent1/a2a/rest/tasks?pageSize=5', undefined, { 'a2a-version': '1.0' }, 'GET');
      expect({ status: rest.status, text: rest.text }).toMatchObject({ status: 503 });
      expect(rest.text).toContain('OVERLOADED');
      expect(rest.text).not.toContain('"tasks"');
      const rpcList = await sendTo(t3.base, '/a2a/agent1/a2a/jsonrpc', rpc('ListTasks', { pageSize: 5 }, 9), { 'a2a-version': '1.0' });
      expect(rpcList.json).toMatchObject({ id: 9, error: { code: a2aCode('OVERLOADED') } });
      // The card, read whole to be filtered, likewise.
      const card = await sendTo(t3.base, '/a2a/agent1/.well-known/agent-card.json', undefined, { 'a2a-version': '1.0' }, 'GET');
      expect({ status: card.status, text: card.text }).toMatchObject({ status: 503 });
      expect(card.text).not.toContain('skills');
    } finally {
      release();
    }
    let again = { status: 0 };
    for (let i = 0; i < 50 && again.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      again = await sendTo(t3.base, '/a2a/agent1/a2a/rest/tasks?pageSize=5', undefined, { 'a2a-version': '1.0' }, 'GET');
    }
    expect(again.status).toBe(200);
  });

  test('an SSE event the budget cannot hold ends a JSON-RPC stream with one error event, never half an event', async () => {
    const release = await hog();
    try {
      const v03 = await sendTo(t3.base, '/a2a/splitter/a2a/jsonrpc', rpc('message/stream', { message: msg03('s') }, 5));
      expect(v03.text).toMatch(/^event: error\ndata: /);
      expect(JSON.parse(v03.text.replace(/^event: error\ndata: /, ''))).toMatchObject({ id: 5, error: { code: a2aCode('OVERLOADED') } });
      const v10 = await sendTo(t3.base, '/a2a/splitter/a2a/jsonrpc', rpc('SendStreamingMessage', { message: msg10('s') }, 6), { 'a2a-version': '1.0' });
      expect(v10.text).toMatch(/^data: /);
      expect(v10.text).not.toContain('t-split');
      expect(JSON.parse(v10.text.replace(/^data: /, ''))).toMatchObject({ id: 6, error: { code: a2aCode('OVERLOADED') } });
    } finally {
      release();
    }
  });
});

/** A raw request to any sidecar (send() is this for the file's own). */
function sendTo(base: string, path: string, body: string | undefined, headers: Record<string, string> = {}, method = 'POST') {
  const u = new URL(base);
  return new Promise<{ status: number; text: string; json: Record<string, unknown> | null }>((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> | null = null;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// A2A extensions through a real sidecar: the extensions a client asks for (A2A-Extensions, 0.3's
// X-A2A-Extensions) are decided by Cedar (context.extensions) and reach the agent exactly as
// decided, under the one name the agent's version reads. Real SDK agents and clients.
import http from 'node:http';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { type A2aAgent, a2aClient, startA2aAgent } from './support/a2a-peers.js';
import { startTestSidecar, type TestSidecar } from './support/sidecar.js';

const TRACED = 'https://ext.example/traced/v1';
const FORBIDDEN = 'https://ext.example/unsafe-tools/v1';

const config = (agent1: string, agent03: string) => `
sources:
  - { name: agent1, protocol: a2a, url: "${agent1}", a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest } }
  - { name: agent03, protocol: a2a, url: "${agent03}", a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest } }
defaultAction: policy
cedar:
  policies: |
    @id("all") permit(principal, action, resource);
    @id("no-unsafe-tools") forbid(principal, action, resource is ThoughtGate::Agent) when { context.extensions.contains("${FORBIDDEN}") };
`;

let a1: A2aAgent;
let a03: A2aAgent;
let tg: TestSidecar;

beforeAll(async () => {
  a1 = await startA2aAgent({ sdk: '1.3.0' });
  a03 = await startA2aAgent({ sdk: '0.3.14' });
  tg = await startTestSidecar(config(a1.base, a03.base));
});
afterAll(async () => {
  await tg?.close();
  await a1?.close();
  await a03?.close();
});

const sent = (agent: A2aAgent) => agent.requests.filter((r) => r.method === 'POST');

test('1.0: a forbidden extension is refused by Cedar and nothing reaches the agent; an allowed one arrives as decided', async () => {
  const base = `${tg.base}/a2a/agent1/`;
  const bad = await a2aClient('js1-jsonrpc', base, { 'A2A-Extensions': `${TRACED}, ${FORBIDDEN}` });
  a1.reset();
  await expect(bad.send('hello')).rejects.toThrow(/Denied by ThoughtGate policy/);
  expect(sent(a1)).toEqual([]);

  // Repeated, padded and given under both spellings (the same set): one canonical header, 1.0's name.
  const good = await a2aClient('js1-jsonrpc', base, { 'A2A-Extensions': ` ${TRACED},,${TRACED} `, 'X-A2A-Extensions': TRACED });
  a1.reset();
  expect(await good.send('hello')).toMatchObject({ kind: 'message', text: 'echo: hello' });
  const [req] = sent(a1);
  expect(req!.headers['a2a-extensions']).toBe(TRACED);
  expect(req!.headers['x-a2a-extensions']).toBeUndefined();
});

test('0.3: the 0.3.14 agent reads only X-A2A-Extensions, so a 1.0 spelling is sent under it; a forbidden one is refused', async () => {
  const base = `${tg.base}/a2a/agent03/`;
  const good = await a2aClient('js03-jsonrpc', base, { 'A2A-Extensions': TRACED });
  a03.reset();
  expect(await good.send('hi')).toMatchObject({ kind: 'message', text: 'echo: hi' });
  const [req] = sent(a03);
  expect(req!.headers['x-a2a-extensions']).toBe(TRACED);
  expect(req!.headers['a2a-extensions']).toBeUndefined();

  const bad = await a2aClient('js03-jsonrpc', base, { 'X-A2A-Extensions': FORBIDDEN });
  a03.reset();
  await expect(bad.send('hi')).rejects.toThrow(/Denied by ThoughtGate policy/);
  expect(sent(a03)).toEqual([]);
});

test('malformed or disagreeing extension headers are refused with a clear reason before anything is forwarded', async () => {
  // node:http, not fetch: fetch refuses to send a Connection header.
  const post = (headers: Record<string, string>) =>
    new Promise<{ json(): Promise<unknown> }>((resolve, reject) => {
      const body = JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'SendMessage',
        params: { message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'x' }] } },
      });
      const req = http.request(
        `${tg.base}/a2a/agent1/a2a/jsonrpc`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...headers } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ json: async () => JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  a1.reset();
  for (const [headers, reason] of [
    [{ 'A2A-Extensions': 'not a uri' }, /is not an extension URI/],
    [{ 'A2A-Extensions': `https://e.example/${'a'.repeat(600)}` }, /longer than 512/],
    [{ 'A2A-Extensions': Array.from({ length: 17 }, (_, i) => `urn:e:${i}`).join(',') }, /more than 16 extensions/],
    [{ 'A2A-Extensions': TRACED, 'X-A2A-Extensions': FORBIDDEN }, /name different extensions/],
    [{ 'A2A-Extensions': TRACED, Connection: 'a2a-extensions' }, /Connection header names an extensions header/],
  ] as const) {
    const r = await post(headers);
    const body = (await r.json()) as { error: { code: number; data?: unknown } };
    expect(body.error.code).toBe(-32602);
    expect(JSON.stringify(body.error)).toMatch(reason);
  }
  expect(a1.requests).toEqual([]);
});

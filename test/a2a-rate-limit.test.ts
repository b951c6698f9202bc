// Rate limits by A2A skill and method through a real sidecar: the official SDK agent and clients.
// A limit naming a skill counts the messages naming it, in both bindings and generations alike;
// other skills and MCP-only limits are not affected.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { type A2aAgent, a2aClient, startA2aAgent } from './support/a2a-peers.js';
import { startTestSidecar, type TestSidecar } from './support/sidecar.js';

let agent: A2aAgent;
let tg: TestSidecar;

beforeAll(async () => {
  agent = await startA2aAgent({ sdk: '1.3.0' });
  tg = await startTestSidecar(`
sources:
  - name: billing
    protocol: a2a
    url: ${agent.base}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest, skillFrom: metadata.skill }
defaultAction: forward
rateLimits:
  - { name: mcp-only, match: {}, perMinute: 0.01, burst: 1 }
  - { name: echo-budget, match: { source: billing, skill: echo }, perMinute: 0.01, burst: 2 }
  - { name: task-reads, match: { method: [GetTask] }, perMinute: 0.01, burst: 1 }
`);
});
afterAll(async () => {
  await tg?.close();
  await agent?.close();
});

test('a limit on a skill: its burst, shared by every binding and generation, then RATE_LIMITED; other skills flow', async () => {
  const base = `${tg.base}/a2a/billing/`;
  const jsonrpc = await a2aClient('js1-jsonrpc', base);
  const rest = await a2aClient('js1-rest', base);
  const legacy = await a2aClient('js1-compat-jsonrpc', base);
  agent.reset();
  expect(await jsonrpc.send('one', { metadata: { skill: 'echo' } })).toMatchObject({ kind: 'message', text: 'echo: one' });
  expect(await rest.send('two', { metadata: { skill: 'echo' } })).toMatchObject({ kind: 'message', text: 'echo: two' });
  await expect(legacy.send('three', { metadata: { skill: 'echo' } })).rejects.toThrow(/Rate limit exceeded/);
  await expect(jsonrpc.send('four', { metadata: { skill: 'echo' } })).rejects.toThrow(/Rate limit exceeded/);
  expect(agent.messages.map((m) => m.text)).toEqual(['one', 'two']);
  // Another skill, and a message naming none, are not counted by it (nor by the MCP-only limit).
  const events = await rest.send('count 1', { metadata: { skill: 'count' } });
  expect(events.kind).toBe('task');
  expect(await jsonrpc.send('five')).toMatchObject({ kind: 'message' });
  expect(await jsonrpc.send('six')).toMatchObject({ kind: 'message' });
});

test('a limit on a method: GetTask once, then refused as RATE_LIMITED (HTTP 429 on HTTP+JSON)', async () => {
  const base = `${tg.base}/a2a/billing/`;
  const client = await a2aClient('js1-jsonrpc', base);
  const sent = await client.send('count 1', { metadata: { skill: 'count' } });
  if (sent.kind !== 'task') throw new Error('expected a task');
  await client.getTask(sent.task.id);
  await expect(client.getTask(sent.task.id)).rejects.toThrow(/Rate limit exceeded/);
  const r = await fetch(`${base}a2a/rest/tasks/${sent.task.id}`, { headers: { 'A2A-Version': '1.0' } });
  expect(r.status).toBe(429);
  await r.body?.cancel();
});

// The A2A example (examples/a2a): its policy tests pass with the built CLI, and its agent (on the
// official SDK) answers the SDK clients of both generations.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { a2aClient } from './support/a2a-peers.js';
import { CLI, freePort, ROOT, run, waitForPort, type Proc } from './support/processes.js';

const EXAMPLE = join(ROOT, 'examples/a2a');

let agent: Proc;
let agentBase: string;

beforeAll(async () => {
  const port = await freePort();
  agent = run(process.execPath, [join(EXAMPLE, 'agent.mjs'), String(port)]);
  await waitForPort(port);
  agentBase = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await agent?.stop();
});

test('the example policy tests pass with the built CLI', async () => {
  const p = run(process.execPath, [CLI, 'test', join(EXAMPLE, 'billing.test.yaml')]);
  expect([await p.exited, p.err()]).toEqual([0, '']);
  expect(p.out()).toMatch(/\n1 file, 5 cases: 5 passed, 0 failed\n$/);
});

test('the example agent answers JS 1.3.0 (1.0) and JS 0.3.14 clients, naming the skill asked for', async () => {
  const c1 = await a2aClient('js1-jsonrpc', `${agentBase}/`);
  expect(c1.publicCard.skills).toEqual(['invoice', 'status', 'refund', 'export']);
  expect(await c1.send('invoice ACME', { metadata: { skill: 'invoice', amount: 50 } })).toMatchObject({
    kind: 'message',
    text: 'invoice: done (invoice ACME)',
  });
  const c03 = await a2aClient('js03-rest', `${agentBase}/`);
  expect(await c03.send('status 7', { metadata: { skill: 'status' } })).toMatchObject({ kind: 'message', text: 'status: done (status 7)' });
  expect(agent.out()).toContain('[agent] ran skill status: status 7');
});

// The A2A example (examples/a2a): its policy tests pass with the built CLI, its agent (on the
// official SDK) answers the SDK clients of both generations, and the demo as `make run DEMO=a2a`
// runs it (the agent, the built sidecar with the example config, a fake Slack) governs it.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { a2aClient } from './support/a2a-peers.js';
import { CLI, freePort, ROOT, run, startCliSidecar, waitForPort, type Proc } from './support/processes.js';
import { startFakeSlack } from './fakes/slack-server.js';

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

test('the demo: card filtered, Cedar on metadata, a refund held until approved in Slack and then run once', async () => {
  const slack = await startFakeSlack({
    tokens: { 'xoxb-demo': { userId: 'UBOT' } },
    channels: [{ id: 'C0APPROVE', name: 'approvals' }],
    users: [{ id: 'U0ALICE', name: 'alice' }],
  });
  const sidecar = await startCliSidecar(join(EXAMPLE, 'thoughtgate.yaml'), {
    AGENT_URL: agentBase,
    SLACK_BOT_TOKEN: 'xoxb-demo',
    SLACK_API_URL: slack.url,
    SLACK_CHANNEL: 'C0APPROVE',
    SLACK_APPROVER: 'U0ALICE',
  });
  try {
    const client = await a2aClient('js1-jsonrpc', `${sidecar.base}/a2a/billing/`);
    expect(client.publicCard.skills).toEqual(['invoice', 'status', 'refund']);
    expect(await client.send('invoice ACME', { metadata: { skill: 'invoice', amount: 50 } })).toMatchObject({ text: 'invoice: done (invoice ACME)' });
    await expect(client.send('invoice ACME', { metadata: { skill: 'invoice', amount: 5000 } })).rejects.toMatchObject({ envelopeCode: -32054 });
    const refund = client.send('refund order 42', { metadata: { skill: 'refund' } });
    const until = Date.now() + 10_000;
    while (slack.messages('C0APPROVE').length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const [m] = slack.messages('C0APPROVE');
    expect(m?.text).toContain('A2A SendMessage to billing, skill refund');
    expect(agent.out()).not.toContain('ran skill refund');
    slack.addReaction('C0APPROVE', m!.ts, 'white_check_mark', 'U0ALICE');
    expect(await refund).toMatchObject({ text: 'refund: done (refund order 42)' });
    expect(agent.out().split('ran skill refund')).toHaveLength(2);
  } finally {
    await sidecar.proc.stop();
    await slack.close();
  }
});

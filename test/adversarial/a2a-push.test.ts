// Push notification URLs are egress (issue 13, DESIGN §2.11, §2.13 "push SSRF"): a webhook URL
// handed to an A2A agent is a request the agent makes from inside the cluster. Through the
// isolation hooks (test/support/a2a-hooks-relay.ts calls them where the data path does), a push
// URL that the sidecar's egress lists refuse never reaches the real SDK agent (its push store stays
// empty, its executor runs nothing); an allowed one is stored and delivered to a real webhook. The
// last block runs the same through the real sidecar.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { compileEgressList } from '../../sidecar/proxy/egress-rules.js';
import { Resolver } from '../../sidecar/proxy/resolver.js';
import { a2aIsolationHooks } from '../../sidecar/a2a/isolation.js';
import { TaskOwners } from '../../sidecar/a2a/tasks.js';
import { type A2aAgent, type A2aClientKind, type A2aWebhook, a2aClient, collect, startA2aAgent, startA2aWebhook } from '../support/a2a-peers.js';
import { type HooksRelay, startHooksRelay } from '../support/a2a-hooks-relay.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

const ALICE = { authorization: 'Bearer alice' };

let agent: A2aAgent;
let agent03: A2aAgent;
let webhook: A2aWebhook;
let relay: HooksRelay;
let relay03: HooksRelay;
let hookPort: number;

beforeAll(async () => {
  agent = await startA2aAgent({ sdk: '1.3.0', users: 'shared', stepMs: 20 });
  agent03 = await startA2aAgent({ sdk: '0.3.14', stepMs: 20 });
  webhook = await startA2aWebhook();
  hookPort = Number(new URL(webhook.url).port);
  // Public destinations by wildcard; the webhook (on loopback) only because an entry writes it out.
  const egress = { allow: compileEgressList(['*', `127.0.0.1:${hookPort}`], 'egress.allow').entries, deny: [] };
  const hooks = () => a2aIsolationHooks({ tasks: new TaskOwners(), resolver: new Resolver(), own: () => new Set() });
  const snap = { egress, maxFilteredResponseBytes: 1 << 20 };
  relay = await startHooksRelay(agent.base, 'agent1', hooks(), snap);
  relay03 = await startHooksRelay(agent03.base, 'agent03', hooks(), snap);
});
afterAll(async () => {
  await relay?.close();
  await relay03?.close();
  await webhook?.close();
  await agent?.close();
  await agent03?.close();
});

const HOSTILE: [string, (port: number) => string][] = [
  ['cloud metadata', () => 'http://169.254.169.254/latest/meta-data/'],
  ['IPv4-mapped loopback', () => 'http://[::ffff:127.0.0.1]:9/hook'],
  ['hex loopback', () => 'http://0x7f000001:9/hook'],
  ['short loopback', () => 'http://127.1/hook'],
  ['loopback on another port than the allowed one', () => 'http://127.0.0.1:9/hook'],
  ['a name resolving to loopback', () => 'http://localhost:9/hook'],
  ['userinfo on the allowed host', (p) => `http://user@127.0.0.1:${p}/hook`],
  ['private address', () => 'http://10.0.0.1/hook'],
  ['file:', () => 'file:///etc/passwd'],
];

const CELLS: [A2aClientKind, 'agent' | 'agent03'][] = [
  ['js1-jsonrpc', 'agent'],
  ['js1-rest', 'agent'],
  ['js1-compat-jsonrpc', 'agent'],
  ['js03-jsonrpc', 'agent03'],
];

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return `${(e as Error).constructor.name} ${(e as Error).message}`;
  }
  throw new Error('expected a refusal');
}

describe.each(CELLS)('%s → %s', (kind, which) => {
  const peers = () => (which === 'agent' ? { a: agent, r: relay } : { a: agent03, r: relay03 });

  it.each(HOSTILE)('a push config create to %s is refused and never reaches the agent', async (_what, url) => {
    const { a, r } = peers();
    const c = await a2aClient(kind, `${r.base}/`, ALICE);
    const t = await c.send('count 1', { metadata: { skill: 'count', delayMs: 1 } });
    if (t.kind !== 'task') throw new Error('expected a task');
    a.reset();
    const e = await refusal(c.pushSet(t.task.id, { id: 'cfg', url: url(hookPort) }));
    expect(e).toMatch(/Push notification URL not allowed|-32068|403/);
    expect(a.pushConfigs).toEqual([]);
    expect(a.calls).toEqual([]);
  });

  it.each(HOSTILE)('a send carrying a push config to %s is refused: the agent runs nothing', async (_what, url) => {
    const { a, r } = peers();
    const c = await a2aClient(kind, `${r.base}/`, ALICE);
    a.reset();
    const e = await refusal(c.send('count 1', { metadata: { skill: 'count', delayMs: 1 }, push: { id: 'cfg', url: url(hookPort), token: 't' } }));
    expect(e).toMatch(/Push notification URL not allowed|-32068|403/);
    expect(a.messages).toEqual([]);
    expect(a.pushConfigs).toEqual([]);
    expect(a.calls).toEqual([]);
  });
});

describe('an allowed webhook', () => {
  it.each([
    ['hex', (p: number) => `http://0x7f000001:${p}/hook`],
    ['IPv4-mapped', (p: number) => `http://[::ffff:127.0.0.1]:${p}/hook`],
    ['a name resolving to it', (p: number) => `http://localhost:${p}/hook`],
  ])('is one destination in every spelling (%s): decided on the canonical address, allowed', async (_what, url) => {
    const c = await a2aClient('js1-jsonrpc', `${relay.base}/`, ALICE);
    const t = await c.send('count 1', { metadata: { skill: 'count', delayMs: 1 } });
    if (t.kind !== 'task') throw new Error('expected a task');
    agent.reset();
    await c.pushSet(t.task.id, { id: 'spelled', url: url(hookPort) });
    expect(agent.pushConfigs.map((p) => p.url)).toEqual([url(hookPort)]);
  });

  it('js1-jsonrpc: a push config in the send is stored and the agent delivers to the webhook', async () => {
    const c = await a2aClient('js1-jsonrpc', `${relay.base}/`, ALICE);
    agent.reset();
    const before = webhook.deliveries.length;
    const events = await collect(c.stream('count 2', { metadata: { skill: 'count', delayMs: 5 }, push: { id: 'ok', url: webhook.url, token: 'tok-1' } }));
    expect(events.length).toBeGreaterThan(0);
    expect(agent.pushConfigs.map((p) => p.url)).toEqual([webhook.url]);
    for (let i = 0; i < 100 && webhook.deliveries.length === before; i++) await new Promise((r) => setTimeout(r, 20));
    const got = webhook.deliveries.slice(before);
    expect(got.length).toBeGreaterThan(0);
    expect(got[0]!.headers['x-a2a-notification-token']).toBe('tok-1');
  });

  it('js03-jsonrpc: a push config create on her task is stored', async () => {
    const c = await a2aClient('js03-jsonrpc', `${relay03.base}/`, ALICE);
    const t = await c.send('count 1', { metadata: { skill: 'count', delayMs: 1 } });
    if (t.kind !== 'task') throw new Error('expected a task');
    agent03.reset();
    const cfg = await c.pushSet(t.task.id, { id: 'ok', url: webhook.url, token: 'tok-2' });
    expect(cfg.url).toBe(webhook.url);
    expect(agent03.pushConfigs.map((p) => p.url)).toEqual([webhook.url]);
  });
});

describe('through the sidecar (sidecar/a2a/handler.ts with the hooks wired)', () => {
  let tg: TestSidecar;
  beforeAll(async () => {
    tg = await startTestSidecar(`
sources:
  - { name: agent1, protocol: a2a, url: ${agent.base}, a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest } }
  - { name: agent03, protocol: a2a, url: ${agent03.base}, a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest } }
egress: { allow: ["*", "127.0.0.1:${hookPort}"] }
defaultAction: forward
`);
  });
  afterAll(async () => {
    await tg?.close();
  });

  it.each(CELLS)('%s → %s: hostile push URLs in creates and sends never reach the agent; the webhook does', async (kind, which) => {
    const a = which === 'agent' ? agent : agent03;
    const c = await a2aClient(kind, `${tg.base}/a2a/${which === 'agent' ? 'agent1' : 'agent03'}/`, ALICE);
    const t = await c.send('count 1', { metadata: { skill: 'count', delayMs: 1 } });
    if (t.kind !== 'task') throw new Error('expected a task');
    a.reset();
    for (const [, url] of HOSTILE) {
      expect(await refusal(c.pushSet(t.task.id, { id: 'cfg', url: url(hookPort) }))).toMatch(/Push notification URL not allowed|-32068|403/);
      expect(await refusal(c.send('count 1', { metadata: { skill: 'count' }, push: { id: 'cfg', url: url(hookPort) } }))).toMatch(
        /Push notification URL not allowed|-32068|403/,
      );
    }
    expect(a.calls).toEqual([]);
    expect(a.pushConfigs).toEqual([]);
    expect(a.messages).toEqual([]);
    expect(await c.pushSet(t.task.id, { id: 'ok', url: webhook.url, token: 'tok' })).toMatchObject({ url: webhook.url });
    expect(a.pushConfigs.map((p) => p.url)).toEqual([webhook.url]);
  });
});

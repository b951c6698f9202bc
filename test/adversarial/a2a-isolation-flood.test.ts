// A flood of made-up identities against the A2A task owner table, through the sidecar in front of
// the official SDK agent (one shared credential: the agent cannot tell clients apart), with small
// `a2a.tasks` bounds from the config. Before: ~10 made-up Authorization headers × maxPerOwner filled
// the table and every client was refused for a day. Now each made-up client at its bound evicts its
// own oldest, a full table evicts from the client holding most, so alice (a client of modest use)
// keeps her task and can start more; the flood's cost is its own.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { type A2aAgent, type A2aTestClient, a2aClient, collect, startA2aAgent } from '../support/a2a-peers.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

const ALICE = { authorization: 'Bearer alice' };

let agent: A2aAgent;
let tg: TestSidecar;

const config = (tasks: string) => `
sources:
  - name: agent1
    protocol: a2a
    url: ${agent.base}
    a2a: { jsonrpc: /a2a/jsonrpc }
    headers: { Authorization: "Bearer the-one-shared-credential" }
defaultAction: forward
a2a:
  tasks: ${tasks}
`;

beforeAll(async () => {
  agent = await startA2aAgent({ sdk: '1.3.0', users: 'shared', stepMs: 50 });
  // maxEntries / maxOwners = 6: a client holding fewer than 6 ids never loses one to others.
  tg = await startTestSidecar(config('{ maxEntries: 36, maxPerOwner: 10, maxOwners: 6, rate: { perMinute: 1, burst: 15 } }'));
});
afterAll(async () => {
  await tg?.close();
  await agent?.close();
});

async function failure(p: () => Promise<unknown>): Promise<string> {
  try {
    return `answered: ${JSON.stringify(await p())}`;
  } catch (e) {
    return `${(e as Error).constructor.name} ${(e as Error).message}`;
  }
}

const metric = async (name: string): Promise<string[]> =>
  (await (await fetch(`${tg.admin}/metrics`)).text()).split('\n').filter((l) => l.startsWith(`thoughtgate_sidecar_a2a_task_owner_${name}`));

test('made-up identities flooding the table cost only themselves: alice keeps her task and can start more; the rate and the client bound refuse with clear errors', async () => {
  const base = `${tg.base}/a2a/agent1/`;
  const alice = await a2aClient('js1-jsonrpc', base, ALICE);
  const [first] = await collect(alice.stream('wait', { metadata: { skill: 'wait' } }), (e) => e.kind === 'task');
  if (first?.kind !== 'task') throw new Error('no task');
  const task = first.taskId;

  const flood: A2aTestClient[] = [];
  for (let n = 0; n < 5; n++) flood.push(await a2aClient('js1-jsonrpc', base, { authorization: `Bearer made-up-${n}` }));
  // 5 × 15 echo messages, each a new context: 75 ids for a table of 36.
  for (let i = 0; i < 15; i++) await Promise.all(flood.map((c, n) => c.send(`flood ${n}.${i}`, { metadata: { skill: 'echo' } })));
  expect((await metric('entries')).join()).toMatch(/entries 36$/);
  expect((await metric('evictions_total')).join('\n')).toMatch(/reason="table_full"\} \d+/);

  // Alice's task is still hers (not bob's), and she may start another.
  expect((await alice.getTask(task)).state).toBe('working');
  expect((await alice.send('still here', { metadata: { skill: 'echo' } })).kind).toBe('message');

  // The 16th new task of one client, its burst being 15 (then 1 per minute): refused, nothing forwarded.
  agent.reset();
  expect(await failure(() => flood[0]!.send('one too many', { metadata: { skill: 'echo' } }))).toMatch(/Rate limit exceeded|-32076/);
  expect(agent.messages).toEqual([]);
  // Six clients hold ids: a seventh is refused until places free up (the existing ones keep working).
  const late = await a2aClient('js1-jsonrpc', base, { authorization: 'Bearer latecomer' });
  expect(await failure(() => late.send('hello', { metadata: { skill: 'echo' } }))).toMatch(/overloaded|-32072/i);
  const refusals = (await metric('refusals_total')).join('\n');
  expect(refusals).toMatch(/reason="rate"\} 1/);
  expect(refusals).toMatch(/reason="owners"\} 1/);

  // Her task is hers to end.
  expect((await alice.cancelTask(task)).state).toBe('canceled');
}, 60_000);

test('a reload with a lower bound applies to the live table at once', async () => {
  tg.writeConfig(config('{ maxEntries: 36, maxPerOwner: 2, maxOwners: 6, rate: { perMinute: 1, burst: 15 } }'));
  await tg.waitFor(() => tg.sidecar.snapshot()?.a2aTasks.maxPerOwner === 2, 'the reload');
  // Six clients, two ids each at most.
  expect((await metric('entries')).join()).toMatch(/entries (\d|1[0-2])$/);
});

// Task isolation across a real `kill -9` of the built sidecar (--state-dir): the A2A task owner
// table is journaled (<dir>/a2a-tasks.journal), so after the restart a client still reaches its own
// task and context and another client still cannot; without --state-dir a restart forgets them
// (fail closed: every id is unknown, refused for everyone). The agent (the official SDK, one shared
// credential: it cannot tell clients apart) lives in the test process and outlives the sidecars.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type A2aAgent, type A2aTestClient, a2aClient, collect, startA2aAgent } from '../support/a2a-peers.js';
import { startCliSidecar } from '../support/processes.js';

const ALICE = { authorization: 'Bearer alice' };
const BOB = { authorization: 'Bearer bob' };

let agent: A2aAgent;
let dir: string;
let config: string;
let stateDir: string;

beforeAll(async () => {
  agent = await startA2aAgent({ sdk: '1.3.0', users: 'shared', stepMs: 50 });
  dir = mkdtempSync(join(tmpdir(), 'tg-a2a-owners-'));
  config = join(dir, 'thoughtgate.yaml');
  stateDir = join(dir, 'state');
  writeFileSync(
    config,
    `
sources:
  - name: agent1
    protocol: a2a
    url: ${agent.base}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest }
    headers: { Authorization: "Bearer the-one-shared-credential" }
defaultAction: forward
a2a:
  tasks: { ttl: 2h, maxPerOwner: 100, rate: { perMinute: 600, burst: 20 } }
`,
  );
});
afterAll(async () => {
  await agent?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A `wait` task (runs on the agent until cancelled): its id and context, from the first stream event. */
async function longTask(c: A2aTestClient): Promise<{ id: string; contextId: string }> {
  const [first] = await collect(c.stream('wait', { metadata: { skill: 'wait' } }), (e) => e.kind === 'task');
  if (first?.kind !== 'task') throw new Error(`no task event: ${JSON.stringify(first)}`);
  return { id: first.taskId, contextId: first.contextId };
}

async function refusal(p: () => Promise<unknown>): Promise<string> {
  try {
    return `answered: ${JSON.stringify(await p())}`;
  } catch (e) {
    return `${(e as Error).constructor.name} ${(e as Error).message}`;
  }
}

const NOT_FOUND = /Task ?Not ?Found|Task not found|-32001/i;

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('after kill -9 a client still reaches its own task and context, another client still cannot; without --state-dir both are unknown', async () => {
  const base = (tg: { base: string }) => `${tg.base}/a2a/agent1/`;
  const first = await startCliSidecar(config, {}, ['--state-dir', stateDir]);
  let t: { id: string; contextId: string };
  try {
    t = await longTask(await a2aClient('js1-jsonrpc', base(first), ALICE));
    const journal = join(stateDir, 'a2a-tasks.journal');
    // Written (and fsync'd) just after the answer: the client had it first.
    await until(() => readFileSync(journal, 'utf8').includes(t.contextId), 'the journal to hold the task');
    expect(statSync(journal).mode & 0o777).toBe(0o600);
    first.proc.child.kill('SIGKILL');
    await first.proc.exited;
  } finally {
    first.proc.child.kill('SIGKILL');
  }

  const second = await startCliSidecar(config, {}, ['--state-dir', stateDir]);
  try {
    expect(second.proc.out()).toMatch(/A2A task owners survive a restart.*"ids":2/);
    const alice = await a2aClient('js1-jsonrpc', base(second), ALICE);
    const bob = await a2aClient('js1-jsonrpc', base(second), BOB);
    expect((await alice.getTask(t.id)).state).toBe('working');
    agent.reset();
    expect(await refusal(() => bob.getTask(t.id))).toMatch(NOT_FOUND);
    expect(await refusal(() => bob.cancelTask(t.id))).toMatch(NOT_FOUND);
    expect(await refusal(() => bob.send('hello', { contextId: t.contextId }))).toMatch(NOT_FOUND);
    expect(agent.calls).toEqual([]);
    // Alice continues in her context (a new message there is hers).
    expect((await alice.send('echo again', { contextId: t.contextId, metadata: { skill: 'echo' } })).kind).toBeDefined();
  } finally {
    await second.proc.stop();
  }

  // As before --state-dir existed: a restart without it knows no task, so refuses alice too (never hands it to anyone).
  const third = await startCliSidecar(config);
  try {
    const alice = await a2aClient('js1-jsonrpc', base(third), ALICE);
    expect(await refusal(() => alice.getTask(t.id))).toMatch(NOT_FOUND);
  } finally {
    await third.proc.stop();
  }
  const fourth = await startCliSidecar(config, {}, ['--state-dir', stateDir]);
  try {
    await (await a2aClient('js1-jsonrpc', base(fourth), ALICE)).cancelTask(t.id);
  } finally {
    await fourth.proc.stop();
  }
}, 90_000);

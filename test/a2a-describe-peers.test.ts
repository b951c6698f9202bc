// Every request the real SDK clients send (JS 1.3.0 in both generations and bindings, JS 0.3.14,
// Python a2a-sdk over JSON-RPC and HTTP+JSON), as the agent received it, is read by describeA2a:
// the gates' body checks (both spellings, push config shapes, tenants) refuse no real client.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { a2aVersionOf } from '../policy/gates/a2a-methods.js';
import { type A2aCall, describeA2a } from '../policy/gates/a2a-operation.js';
import {
  A2A_CLIENT_KINDS,
  type A2aAgent,
  type A2aEvent,
  type A2aSdk,
  type A2aWebhook,
  a2aClient,
  clientSupports,
  collect,
  runPython,
  startA2aAgent,
  startA2aWebhook,
} from './support/a2a-peers.js';

/** The A2A call a recorded request is, or null for what is no A2A call (the card). */
function callOf(r: { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }): A2aCall | null {
  const u = new URL(r.url, 'http://agent');
  const v = a2aVersionOf(r.headers['a2a-version'], u.searchParams.getAll('A2A-Version'));
  if (!v.ok) throw new Error(v.reason);
  if (u.pathname === '/a2a/jsonrpc') {
    const body = JSON.parse(r.body) as { method: string; params?: unknown };
    return { version: v.version, binding: 'jsonrpc', method: body.method, params: body.params };
  }
  if (u.pathname.startsWith('/a2a/rest/'))
    return {
      version: v.version,
      binding: 'rest',
      method: `${r.method} ${u.pathname.slice('/a2a/rest'.length)}`,
      params: r.body ? JSON.parse(r.body) : undefined,
    };
  return null;
}

function expectAllRead(agent: A2aAgent): number {
  const calls = agent.requests.map(callOf).filter((c): c is A2aCall => c !== null);
  for (const call of calls) {
    const d = describeA2a('agent', call, { skillFrom: 'metadata.skill', text: true });
    expect({ call, refused: d.ok ? null : d.reason }).toEqual({ call, refused: null });
  }
  return calls.length;
}

describe.each<A2aSdk>(['1.3.0', '0.3.14'])('the JS clients against the %s agent', (sdk) => {
  let agent: A2aAgent;
  let hook: A2aWebhook;
  beforeAll(async () => {
    agent = await startA2aAgent({ sdk, stepMs: 20 });
    hook = await startA2aWebhook();
  });
  afterAll(async () => {
    await agent?.close();
    await hook?.close();
  });

  test.each(A2A_CLIENT_KINDS.filter((k) => clientSupports(k, sdk)))('%s', async (kind) => {
    agent.reset();
    const client = await a2aClient(kind, agent.base);
    await client.send('hello', { metadata: { skill: 'echo' }, push: { id: 'inline', url: hook.url, token: 't' } });
    const long = client.stream('wait');
    const first = (await long.next()).value as A2aEvent;
    const id = first.kind === 'task' ? first.taskId : '';
    await client.getTask(id);
    const resub = client.resubscribe(id);
    await resub.next();
    await client.pushSet(id, { id: 'cfg-1', url: hook.url, token: 't' }).catch(() => undefined);
    await client.pushList(id).catch(() => undefined);
    await client.pushGet(id, 'cfg-1').catch(() => undefined);
    await client.pushDelete(id, 'cfg-1').catch(() => undefined);
    await client.cancelTask(id);
    await collect(long);
    await collect(resub);
    expect(expectAllRead(agent)).toBeGreaterThanOrEqual(8);
  });
});

describe('the Python client against the 1.3.0 agent', () => {
  let agent: A2aAgent;
  let hook: A2aWebhook;
  beforeAll(async () => {
    agent = await startA2aAgent({ sdk: '1.3.0', stepMs: 20 });
    hook = await startA2aWebhook();
  });
  afterAll(async () => {
    await agent?.close();
    await hook?.close();
  });

  test('send, stream, get, push-set and cancel over both bindings', async () => {
    const js = await a2aClient('js1-jsonrpc', agent.base);
    const long = js.stream('wait');
    const first = (await long.next()).value as A2aEvent;
    const id = first.kind === 'task' ? first.taskId : '';
    agent.reset();
    const py = (...args: string[]) => runPython([agent.base, ...args]);
    await Promise.all(
      ['JSONRPC', 'HTTP+JSON'].flatMap((binding) => [
        py('send', '--binding', binding, '--text', 'hi', '--metadata', '{"skill":"echo"}'),
        py('stream', '--binding', binding, '--text', 'count 2'),
        py('get', '--binding', binding, '--task-id', id),
        py('push-set', '--binding', binding, '--task-id', id, '--push-url', hook.url, '--push-id', `cfg-${binding}`, '--push-token', 't'),
      ]),
    );
    await py('cancel', '--binding', 'HTTP+JSON', '--task-id', id);
    await collect(long);
    expect(expectAllRead(agent)).toBeGreaterThanOrEqual(9);
  });
});

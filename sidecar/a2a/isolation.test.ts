// The isolation hooks as the data path calls them: which refusal for which call, which answers are
// read, and the bounded ListTasks edit. The hooks against real SDK peers: test/adversarial/a2a-*.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { noFacts } from '../../policy/gates/a2a-operation.js';
import type { A2aFacts } from '../../policy/gates/operation.js';
import { compileEgressList } from '../proxy/egress-rules.js';
import { Resolver } from '../proxy/resolver.js';
import { a2aIsolationHooks, type IsolationCall } from './isolation.js';
import { a2aOwner, TaskOwners } from './tasks.js';

const ALICE = { authorization: 'Bearer alice' };
const BOB = { authorization: 'Bearer bob' };

function call(method: string, facts: Partial<A2aFacts>, o: { headers?: object; version?: '1.0' | '0.3'; stream?: boolean; max?: number } = {}): IsolationCall {
  const version = o.version ?? '1.0';
  return {
    req: { headers: { ...(o.headers ?? ALICE) } },
    source: { name: 'agent' },
    op: { method, a2a: { ...noFacts(version, 'jsonrpc'), ...facts } },
    shape: { binding: 'jsonrpc', version },
    row: { stream: o.stream ?? false },
    snap: { egress: { allow: compileEgressList(['*'], 'egress.allow').entries, deny: [] }, maxFilteredResponseBytes: o.max ?? 1 << 16 },
  };
}

function setup(o: ConstructorParameters<typeof TaskOwners>[0] = {}) {
  const tasks = new TaskOwners(o);
  const refused: string[] = [];
  const hooks = a2aIsolationHooks({
    tasks,
    resolver: new Resolver({ lookup: async () => [{ address: '10.0.0.1' }] }),
    own: () => new Set(),
    pushRefused: (s) => refused.push(s),
  });
  return { tasks, hooks, refused };
}

async function through(t: NodeJS.ReadWriteStream, text: string): Promise<string> {
  let out = '';
  await pipeline(
    Readable.from([Buffer.from(text)]),
    t,
    new Writable({
      write(c: Buffer, _e, done) {
        out += c.toString();
        done();
      },
    }),
  );
  return out;
}

describe('beforeForward', () => {
  it('refuses another client’s task as TASK_NOT_FOUND; 0.3 stream methods as an SSE error event', async () => {
    const { tasks, hooks } = setup();
    tasks.learn('agent', a2aOwner('agent', ALICE), 'task', 't');
    expect(await hooks.beforeForward(call('GetTask', { taskId: 't' }))).toBeNull();
    expect(await hooks.beforeForward(call('GetTask', { taskId: 't' }, { headers: BOB }))).toEqual({
      kind: 'a2a',
      name: 'TASK_NOT_FOUND',
      reason: 't is not a task of this client',
      message: 'Task not found: t',
      sse: false,
    });
    expect(await hooks.beforeForward(call('SubscribeToTask', { taskId: 't' }, { headers: BOB, version: '0.3', stream: true }))).toMatchObject({ sse: true });
    expect(await hooks.beforeForward(call('SubscribeToTask', { taskId: 't' }, { headers: BOB, version: '1.0', stream: true }))).toMatchObject({ sse: false });
  });

  it('refuses a Send from a client beyond a2a.tasks.maxOwners (OVERLOADED) and one starting tasks too fast (RATE_LIMITED), before anything is forwarded', async () => {
    const { tasks, hooks } = setup({ maxOwners: 1, rate: { perMinute: 1, burst: 1 } });
    tasks.learn('agent', 'someone', 'task', 'x');
    expect(await hooks.beforeForward(call('SendMessage', {}))).toMatchObject({ kind: 'thoughtgate', name: 'OVERLOADED' });
    expect(await hooks.beforeForward(call('GetTask', { taskId: 'x' }, { headers: {} }))).toMatchObject({ name: 'TASK_NOT_FOUND' });
    const own = setup({ rate: { perMinute: 1, burst: 1 } });
    expect(await own.hooks.beforeForward(call('SendMessage', {}))).toBeNull();
    expect(await own.hooks.beforeForward(call('SendStreamingMessage', {}))).toMatchObject({
      kind: 'thoughtgate',
      name: 'RATE_LIMITED',
      rule: 'a2a.tasks.rate',
      reason: expect.stringMatching(/retry in 60 s/),
    });
    // Continuing its own task is not a new task: never refused for the rate.
    own.tasks.learn('agent', a2aOwner('agent', ALICE), 'task', 't');
    expect(await own.hooks.beforeForward(call('SendMessage', { taskId: 't' }))).toBeNull();
  });

  it('refuses a push URL egress refuses (a name resolving to a private address), and counts it', async () => {
    const { hooks, refused } = setup();
    expect(await hooks.beforeForward(call('SendMessage', { pushUrl: 'https://hooks.example.com/x' }))).toMatchObject({
      kind: 'thoughtgate',
      name: 'PUSH_URL_NOT_ALLOWED',
      reason: expect.stringContaining('10.0.0.1, an internal address'),
    });
    expect(refused).toEqual(['agent']);
    expect(await hooks.beforeForward(call('SendMessage', { pushUrl: 'https://93.184.216.34/x' }))).toBeNull();
  });
});

describe('answers', () => {
  it('reads the answers of sends and ListTasks only', () => {
    const { hooks } = setup();
    expect(['SendMessage', 'SendStreamingMessage', 'ListTasks', 'GetTask', 'CancelTask'].map((m) => hooks.readsAnswer(call(m, {})))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(hooks.onAnswer(call('GetTask', {}), 200, {})).toBeNull();
  });

  it('learns a send’s ids as JSON or SSE by the answer’s content type', async () => {
    const { tasks, hooks } = setup();
    const owner = a2aOwner('agent', ALICE);
    await through(
      hooks.onAnswer(call('SendMessage', {}), 200, { 'content-type': 'application/json' })!,
      '{"jsonrpc":"2.0","id":1,"result":{"task":{"id":"j"}}}',
    );
    await through(
      hooks.onAnswer(call('SendStreamingMessage', {}), 200, { 'content-type': 'text/event-stream; charset=utf-8' })!,
      'data: {"jsonrpc":"2.0","id":1,"result":{"task":{"id":"s"}}}\n\n',
    );
    expect([tasks.ownerOf('agent', 'task', 'j'), tasks.ownerOf('agent', 'task', 's')]).toEqual([owner, owner]);
  });

  it('filters ListTasks within maxFilteredResponseBytes, and never passes an answer it cannot read', async () => {
    const { tasks, hooks } = setup();
    tasks.learn('agent', a2aOwner('agent', ALICE), 'task', 'mine');
    const list = '{"jsonrpc":"2.0","id":1,"result":{"tasks":[{"id":"mine"},{"id":"theirs"}],"totalSize":2}}';
    expect(JSON.parse(await through(hooks.onAnswer(call('ListTasks', {}), 200, {})!, list))).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: { tasks: [{ id: 'mine' }], totalSize: 1 },
    });
    await expect(through(hooks.onAnswer(call('ListTasks', {}, { max: 32 }), 200, {})!, list)).rejects.toThrow(/larger than 32 bytes/);
    await expect(through(hooks.onAnswer(call('ListTasks', {}), 200, {})!, '{"tasks":[')).rejects.toThrow(/not JSON/);
  });
});

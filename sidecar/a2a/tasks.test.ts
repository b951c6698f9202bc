// Task isolation: the owner table, the check on every task-naming field, the answer scanner (JSON
// split at every byte, SSE), the ListTasks filter. The answers are the SDK servers' own bytes
// (shapes from /work/a2a/captures); test/adversarial/a2a-isolation.test.ts drives a real agent.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Registry } from 'prom-client';
import { A2A_MAX_ID_BYTES, noFacts } from '../../policy/gates/a2a-operation.js';
import type { A2aFacts } from '../../policy/gates/operation.js';
import {
  a2aOwner,
  admit,
  filterTaskList,
  type OwnerRecord,
  ownerCheck,
  scanAnswer,
  TaskOwners,
  TaskTableFullError,
  taskNotFoundAnswer,
  taskOwnerMetrics,
} from './tasks.js';
import { IdTooLongError, idAt, JsonIdScanner } from './task-ids.js';

const S = 'billing';
const facts = (f: Partial<A2aFacts>): A2aFacts => ({ ...noFacts('1.0', 'jsonrpc'), ...f });

/** Runs bytes through scanAnswer in the given chunks; what came out, and what the table knew when each output chunk was written. */
async function scan(table: TaskOwners, owner: string, shape: Parameters<typeof scanAnswer>[3], chunks: Buffer[], probe?: () => unknown) {
  const out: Buffer[] = [];
  const seen: { end: number; known: unknown }[] = [];
  let end = 0;
  await pipeline(
    Readable.from(chunks),
    scanAnswer(table, S, owner, shape),
    new Writable({
      write(c: Buffer, _e, done) {
        out.push(c);
        end += c.length;
        seen.push({ end, known: probe?.() });
        done();
      },
    }),
  );
  return { bytes: Buffer.concat(out), seen };
}

const split = (s: string, at: number[]) => {
  const b = Buffer.from(s);
  const cuts = [0, ...at, b.length];
  return cuts.slice(1).map((end, i) => b.subarray(cuts[i], end));
};

const TASK_1_0 =
  '{"jsonrpc":"2.0","id":7,"result":{"task":{"id":"t-1","contextId":"c-1","status":{"state":"TASK_STATE_WORKING"},"history":[{"messageId":"m","contextId":"c-1","taskId":"t-1","parts":[{"text":"wait"}]}]}}}';

describe('a2aOwner', () => {
  it('is the approvals owner key of the Authorization header, and ignores a client-chosen Mcp-Session-Id', () => {
    const alice = a2aOwner(S, { authorization: 'Bearer alice' });
    expect(alice).toMatch(/^auth:[0-9a-f]{32}$/);
    expect(a2aOwner(S, { authorization: 'Bearer alice', 'mcp-session-id': 'x' })).toBe(alice);
    expect(a2aOwner(S, { authorization: 'Bearer bob' })).not.toBe(alice);
    expect(a2aOwner(S, { 'mcp-session-id': 'x' })).toBe('anonymous');
    expect(a2aOwner(S, {})).toBe('anonymous');
  });
});

describe('ownerCheck', () => {
  const table = new TaskOwners();
  table.learn(S, 'alice', 'task', 't-a');
  table.learn(S, 'alice', 'context', 'c-a');
  table.learn(S, 'bob', 'task', 't-b');

  it('lets the owner name its own task, context and references', () => {
    expect(ownerCheck(table, S, 'alice', facts({ taskId: 't-a', contextId: 'c-a', referenceTaskIds: ['t-a'] }))).toBeNull();
    expect(ownerCheck(table, S, 'alice', facts({}))).toBeNull();
  });

  it.each([
    ['the call task id (GetTask, CancelTask, SubscribeToTask, push configs)', { taskId: 't-a' }, 't-a'],
    ['message.taskId (continuing a task)', { taskId: 't-a', contextId: 'c-b-new' }, 't-a'],
    ['a referenceTaskIds entry', { referenceTaskIds: ['t-b', 't-a'] }, 't-a'],
    ['message.contextId', { contextId: 'c-a' }, 'c-a'],
    ['an unknown task id (never seen, expired, before a restart)', { taskId: 'nope' }, 'nope'],
    ['an unknown referenced task', { referenceTaskIds: ['nope'] }, 'nope'],
  ])('refuses another owner naming %s, as the agent answers an unknown task', (_what, f, id) => {
    expect(ownerCheck(table, S, 'bob', facts(f))).toEqual({ error: 'TASK_NOT_FOUND', id, message: `Task not found: ${id}` });
  });

  it('keeps sources apart: the same id on another source is unknown', () => {
    expect(ownerCheck(table, 'other', 'alice', facts({ taskId: 't-a' }))).not.toBeNull();
  });

  it('lets a client start a context of its own (an unknown contextId)', () => {
    expect(ownerCheck(table, S, 'bob', facts({ contextId: 'c-new' }))).toBeNull();
  });

  it('answers with the SDK servers exact bodies for each binding and version', () => {
    const r = ownerCheck(table, S, 'bob', facts({ taskId: 'no-such-task' }))!;
    // Captured: js1-jsonrpc-v10-12-get-unknown-task.txt, js1-rest-v10-…, js03-srv03-jsonrpc-…, js03-srv03-rest-….
    expect(JSON.stringify(taskNotFoundAnswer(r, '1.0', 'jsonrpc').error)).toBe(
      '{"code":-32001,"message":"Task not found: no-such-task","data":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"TASK_NOT_FOUND","domain":"a2a-protocol.org"}]}',
    );
    expect(JSON.stringify(taskNotFoundAnswer(r, '0.3', 'jsonrpc').error)).toBe('{"code":-32001,"message":"Task not found: no-such-task"}');
    const rest = taskNotFoundAnswer(r, '1.0', 'rest').error as { http: number; body: unknown };
    expect(rest.http).toBe(404);
    expect(JSON.stringify(rest.body)).toBe(
      '{"error":{"code":404,"status":"NOT_FOUND","message":"Task not found: no-such-task","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"TASK_NOT_FOUND","domain":"a2a-protocol.org"}]}}',
    );
    expect(JSON.stringify((taskNotFoundAnswer(r, '0.3', 'rest').error as { body: unknown }).body)).toBe(
      '{"code":-32001,"message":"Task not found: no-such-task"}',
    );
  });
});

describe('TaskOwners bounds', () => {
  it('keeps the first owner of an id', () => {
    const t = new TaskOwners();
    expect(t.learn(S, 'alice', 'task', 'x')).toBe('recorded');
    expect(t.learn(S, 'alice', 'task', 'x')).toBe('known');
    expect(t.learn(S, 'bob', 'task', 'x')).toBe('foreign');
    expect(t.ownerOf(S, 'task', 'x')).toBe('alice');
  });

  it('forgets ids after the ttl (then they are unknown: refused for everyone)', () => {
    let now = 0;
    const t = new TaskOwners({ ttlMs: 1000, now: () => now });
    t.learn(S, 'alice', 'task', 'x');
    now = 999;
    expect(t.ownerOf(S, 'task', 'x')).toBe('alice');
    now = 1000;
    expect(ownerCheck(t, S, 'alice', facts({ taskId: 'x' }))).not.toBeNull();
    expect(t.learn(S, 'bob', 'task', 'x')).toBe('recorded');
  });

  it('a task in use stays its owner’s: a known id (learn, or a call naming it) gets a new ttl and moves behind younger ids', () => {
    let now = 0;
    const t = new TaskOwners({ ttlMs: 1000, now: () => now });
    t.learn(S, 'alice', 'task', 'x');
    now = 100;
    t.learn(S, 'alice', 'task', 'y');
    now = 900;
    expect(t.learn(S, 'alice', 'task', 'x')).toBe('known');
    now = 1150; // y expired (and is swept first: x is behind it now); x lives until 1900
    expect(t.learn(S, 'bob', 'task', 'z')).toBe('recorded');
    expect(t.ownerOf(S, 'task', 'y')).toBeUndefined();
    expect(t.ownerOf(S, 'task', 'x')).toBe('alice');
    expect(t.size).toBe(2);
    now = 1800;
    expect(ownerCheck(t, S, 'alice', facts({ taskId: 'x' }))).toBeNull(); // GetTask: used again, until 2800
    now = 2700;
    expect(t.ownerOf(S, 'task', 'x')).toBe('alice');
    expect(ownerCheck(t, S, 'bob', facts({ taskId: 'x' }))).not.toBeNull(); // another client's call does not keep it alive
    now = 2800;
    expect(t.ownerOf(S, 'task', 'x')).toBeUndefined();
  });

  it('an expired or evicted context stays refused for everyone for contextTombstoneMs (nobody takes it over), bounded', () => {
    let now = 0;
    const t = new TaskOwners({ ttlMs: 1000, contextTombstoneMs: 5000, maxTombstones: 2, maxPerOwner: 1, now: () => now });
    t.learn(S, 'alice', 'context', 'c-a');
    now = 1000;
    expect(ownerCheck(t, S, 'bob', facts({ contextId: 'c-a' }))).toEqual(expect.objectContaining({ id: 'c-a' }));
    expect(ownerCheck(t, S, 'alice', facts({ contextId: 'c-a' }))).not.toBeNull();
    expect(t.learn(S, 'bob', 'context', 'c-a')).toBe('foreign'); // the sweep made it a tombstone
    expect(t.tombstones).toBe(1);
    now = 2000;
    t.learn(S, 'carol', 'context', 'c-1');
    t.learn(S, 'carol', 'context', 'c-2'); // carol's bound is 1: c-1 evicted, a tombstone too
    expect(ownerCheck(t, S, 'bob', facts({ contextId: 'c-1' }))).not.toBeNull();
    expect(t.tombstones).toBe(2);
    now = 6000; // c-a's tombstone is over: a context anyone may start again
    expect(ownerCheck(t, S, 'bob', facts({ contextId: 'c-a' }))).toBeNull();
    expect(ownerCheck(t, S, 'bob', facts({ contextId: 'c-1' }))).not.toBeNull();
  });
});

describe('TaskOwners under a flood (one client, or identities it makes up)', () => {
  const registry = () => new Registry();

  it('a client at its own bound loses its own oldest ids, and is not refused', async () => {
    const reg = registry();
    const t = new TaskOwners({ maxEntries: 100, maxPerOwner: 2, metrics: taskOwnerMetrics(reg) });
    t.learn(S, 'alice', 'task', 'a1');
    t.learn(S, 'mallory', 'task', 'm1');
    t.learn(S, 'mallory', 'task', 'm2');
    expect(t.learn(S, 'mallory', 'task', 'm3')).toBe('recorded');
    expect([t.ownerOf(S, 'task', 'm1'), t.ownerOf(S, 'task', 'm2'), t.ownerOf(S, 'task', 'm3')]).toEqual([undefined, 'mallory', 'mallory']);
    expect(t.ownerOf(S, 'task', 'a1')).toBe('alice');
    expect(admit(t, S, 'mallory')).toBeNull();
    expect(await reg.metrics()).toMatch(/a2a_task_owner_evictions_total\{source="billing",reason="owner_bound"\} 1/);
  });

  it('made-up identities filling the table evict from the client holding most, never from a client of modest use', async () => {
    const reg = registry();
    // maxEntries / maxOwners = 10: a client holding fewer than 10 ids never loses one to others.
    const t = new TaskOwners({
      maxEntries: 100,
      maxPerOwner: 50,
      maxOwners: 10,
      rate: { perMinute: 1_000_000, burst: 1_000_000 },
      metrics: taskOwnerMetrics(reg),
    });
    for (let i = 0; i < 5; i++) t.learn(S, 'alice', i % 2 ? 'context' : 'task', `a${i}`);
    for (let n = 0; n < 9; n++) {
      const who = `made-up-${n}`;
      expect(admit(t, S, who)).toBeNull();
      for (let i = 0; i < 50; i++) expect(t.learn(S, who, 'task', `${who}-${i}`)).toBe('recorded');
    }
    expect(t.size).toBe(100);
    for (let i = 0; i < 5; i++) expect(t.ownerOf(S, i % 2 ? 'context' : 'task', `a${i}`)).toBe('alice');
    expect(admit(t, S, 'alice')).toBeNull();
    expect(t.learn(S, 'alice', 'task', 'a-new')).toBe('recorded');
    expect(t.ownerOf(S, 'task', 'a0')).toBe('alice');
    expect(await reg.metrics()).toMatch(/a2a_task_owner_evictions_total\{source="billing",reason="table_full"\} \d+/);
    expect(await reg.metrics()).toMatch(/a2a_task_owner_entries 100/);
  });

  it('the number of clients is bounded: a new client beyond it is refused (existing ones keep their tasks); an idle empty place is given back', () => {
    let now = 0;
    const reg = registry();
    const t = new TaskOwners({ maxOwners: 2, maxPerOwner: 1, now: () => now, metrics: taskOwnerMetrics(reg) });
    expect(admit(t, S, 'alice')).toBeNull();
    t.learn(S, 'alice', 'task', 'a1');
    expect(admit(t, S, 'bob')).toBeNull();
    expect(admit(t, S, 'carol')).toEqual({
      reason: 'owners',
      message: expect.stringMatching(/too many clients hold A2A tasks on this source \(a2a\.tasks\.maxOwners: 2\)/),
    });
    // An answer for a client with no place is cut (its id is never given out).
    expect(t.learn(S, 'carol', 'task', 'c1')).toBe('full');
    now = 60_000; // bob was admitted but holds nothing: after a minute his place goes
    expect(admit(t, S, 'carol')).toBeNull();
    expect(t.ownerOf(S, 'task', 'a1')).toBe('alice');
    expect(t.owners).toBe(2);
  });

  it('a client starting tasks faster than its rate is refused with the time to wait; continuing its own task is never refused', async () => {
    let now = 0;
    const reg = registry();
    const t = new TaskOwners({ maxOwners: 1, rate: { perMinute: 6, burst: 2 }, now: () => now, metrics: taskOwnerMetrics(reg) });
    expect(admit(t, S, 'alice')).toBeNull();
    t.learn(S, 'alice', 'task', 'a1');
    expect(admit(t, S, 'alice')).toBeNull();
    expect(admit(t, S, 'alice')).toEqual({
      reason: 'rate',
      message: expect.stringMatching(/a2a\.tasks\.rate allows \(2 at once, then 6 per minute\); retry in 10 s/),
    });
    // Continuing a1: no new id, so neither the rate nor the full client list (maxOwners 1) refuses it.
    expect(admit(t, S, 'alice', facts({ taskId: 'a1' }))).toBeNull();
    expect(admit(t, S, 'bob', facts({ taskId: 'a1' }))?.reason).toBe('owners'); // not bob's task
    now = 10_000;
    expect(admit(t, S, 'alice')).toBeNull();
    const text = await reg.metrics();
    expect(text).toMatch(/a2a_task_owner_refusals_total\{source="billing",reason="rate"\} 1/);
    expect(text).toMatch(/a2a_task_owner_refusals_total\{source="billing",reason="owners"\} 1/);
  });

  it('the scanner cuts an answer for a client the table has no place for', async () => {
    const t = new TaskOwners({ maxOwners: 1 });
    t.learn(S, 'alice', 'task', 'a1');
    await expect(scan(t, 'bob', { binding: 'jsonrpc', sse: false }, [Buffer.from(TASK_1_0)])).rejects.toBeInstanceOf(TaskTableFullError);
  });

  it('lower bounds from a reload evict down to them at once', () => {
    const t = new TaskOwners();
    for (let i = 0; i < 4; i++) t.learn(S, 'alice', 'task', `a${i}`);
    t.learn(S, 'bob', 'task', 'b0');
    t.configure({ maxPerOwner: 2 });
    expect(t.size).toBe(3);
    expect(t.ownerOf(S, 'task', 'a3')).toBe('alice');
    expect(t.ownerOf(S, 'task', 'a1')).toBeUndefined();
    t.configure({ maxEntries: 2 });
    expect(t.ownerOf(S, 'task', 'b0')).toBe('bob');
    expect(t.size).toBe(2);
  });
  it('after a reload lowers the ttl, an expired id waiting behind a live one is dropped before its key is reused', () => {
    let now = 0;
    const t = new TaskOwners({ ttlMs: 1000, now: () => now });
    t.learn(S, 'alice', 'task', 'a');
    t.configure({ ttlMs: 100 });
    now = 10;
    t.learn(S, 'alice', 'task', 'b');
    now = 200; // b expired, a (in front) not: the sweep has not reached b
    expect(t.learn(S, 'bob', 'task', 'b')).toBe('recorded');
    t.configure({ maxPerOwner: 1 });
    t.learn(S, 'alice', 'task', 'c'); // alice's oldest goes: never bob's b
    expect(t.ownerOf(S, 'task', 'b')).toBe('bob');
    expect(t.ownerOf(S, 'task', 'c')).toBe('alice');
    expect(t.size).toBe(2);
  });
});

describe('TaskOwners records (the --state-dir journal)', () => {
  it('a replay of its records gives the same owners, expiries and tombstones; expired ids are left out', () => {
    let now = 0;
    const log: OwnerRecord[] = [];
    const t = new TaskOwners({ ttlMs: 1000, contextTombstoneMs: 10_000, maxPerOwner: 2, now: () => now, record: (r) => log.push(r) });
    t.learn(S, 'alice', 'task', 'a1');
    t.learn(S, 'alice', 'context', 'ca');
    t.learn(S, 'alice', 'task', 'a2'); // alice's bound is 2: a1 (her oldest) is evicted, a drop
    t.learn(S, 'bob', 'context', 'cb1');
    t.learn(S, 'bob', 'context', 'cb2');
    t.learn(S, 'bob', 'context', 'cb3'); // cb1 evicted: a tombstone
    now = 500;
    const again = new TaskOwners({ ttlMs: 1000, contextTombstoneMs: 10_000, maxPerOwner: 2, now: () => now });
    again.restore(log);
    const compacted = new TaskOwners({ ttlMs: 1000, contextTombstoneMs: 10_000, maxPerOwner: 2, now: () => now });
    compacted.restore(t.records());
    for (const r of [again, compacted]) {
      expect(r.ownerOf(S, 'task', 'a1')).toBeUndefined();
      expect(r.ownerOf(S, 'task', 'a2')).toBe('alice');
      expect(r.ownerOf(S, 'context', 'ca')).toBe('alice');
      expect(r.ownerOf(S, 'context', 'cb3')).toBe('bob');
      expect(r.closed(S, 'cb1')).toBe(true);
      expect(r.size).toBe(4);
    }
    now = 1500; // all expired: the contexts are tombstones after a replay too
    const late = new TaskOwners({ ttlMs: 1000, contextTombstoneMs: 10_000, now: () => now });
    late.restore(log);
    expect(late.size).toBe(0);
    expect(late.closed(S, 'ca')).toBe(true);
    expect(ownerCheck(late, S, 'alice', facts({ taskId: 'a2' }))).not.toBeNull();
  });

  it('a context id holding a NUL character survives the records whole', () => {
    const log: OwnerRecord[] = [];
    const t = new TaskOwners({ maxPerOwner: 1, record: (r) => log.push(r) });
    t.learn(S, 'alice', 'context', 'c\u0000x');
    t.learn(S, 'alice', 'context', 'd'); // c\0x evicted: a tombstone
    const again = new TaskOwners();
    again.restore(log);
    expect(again.closed(S, 'c\u0000x')).toBe(true);
    expect(t.records()).toContainEqual(expect.objectContaining({ op: 'tomb', s: S, id: 'c\u0000x' }));
  });
});

describe('idAt: where answers name ids', () => {
  it.each([
    [['result'], ['result', 'task', 'id'], 'task'],
    [['result'], ['result', 'task', 'contextId'], 'context'],
    [['result'], ['result', 'id'], 'task'], // 0.3 {kind:'task', id}
    [['result'], ['result', 'contextId'], 'context'],
    [['result'], ['result', 'taskId'], 'task'], // 0.3 status-update
    [['result'], ['result', 'statusUpdate', 'taskId'], 'task'],
    [['result'], ['result', 'message', 'contextId'], 'context'],
    [['result'], ['result', 'message', 'id'], null],
    [['result'], ['id'], null], // the JSON-RPC id
    [['result'], ['result', 'task', 'status', 'message', 'taskId'], null],
    [[], ['task', 'id'], 'task'],
    [[], ['msg', 'contextId'], 'context'],
    [[], ['result', 'task', 'id'], null],
  ])('%j %j → %s', (root, path, kind) => {
    expect(idAt(root, path)).toBe(kind);
  });
});

describe('TaskOwners.restore within lower bounds', () => {
  it('a context whose owner gets no place (a lower maxOwners) becomes a tombstone: nobody may start it', () => {
    const now = 1_000_000;
    const live = new TaskOwners({ now: () => now, maxOwners: 3 });
    for (const o of ['o1', 'o2', 'o3']) {
      live.learn(S, o, 'context', `c-${o}`);
      live.learn(S, o, 'task', `t-${o}`);
    }
    const restored = new TaskOwners({ now: () => now, maxOwners: 2 });
    restored.restore(live.records());
    expect(restored.ownerOf(S, 'context', 'c-o3')).toBeUndefined();
    expect(restored.ownerOf(S, 'task', 't-o3')).toBeUndefined();
    expect(restored.closed(S, 'c-o3')).toBe(true);
    expect(ownerCheck(restored, S, 'mallory', facts({ contextId: 'c-o3' }))?.error).toBe('TASK_NOT_FOUND');
    expect(ownerCheck(restored, S, 'o3', facts({ contextId: 'c-o3' }))?.error).toBe('TASK_NOT_FOUND');
    expect(restored.ownerOf(S, 'context', 'c-o1')).toBe('o1');
  });

  it('owners whose ids were all dropped in the replay give their places back', () => {
    const now = 1_000_000;
    const recs: OwnerRecord[] = [
      { op: 'set', s: S, o: 'x', k: 'task', id: 'x1', e: now + 1000 },
      { op: 'drop', s: S, k: 'task', id: 'x1' },
      { op: 'set', s: S, o: 'y', k: 'task', id: 'y1', e: now + 1000 },
      { op: 'drop', s: S, k: 'task', id: 'y1' },
      { op: 'set', s: S, o: 'v', k: 'context', id: 'cv', e: now + 1000 },
      { op: 'set', s: S, o: 'w', k: 'context', id: 'cw', e: now + 1000 },
    ];
    const t = new TaskOwners({ now: () => now, maxOwners: 2 });
    t.restore(recs);
    expect(t.ownerOf(S, 'context', 'cv')).toBe('v');
    expect(t.ownerOf(S, 'context', 'cw')).toBe('w');
    expect(t.owners).toBe(2);
  });
});

describe('TaskOwners records: stale tombstones', () => {
  /**
   * A tombstone made after a longer one, ending first: alice's context cA (ttl lowered to 10)
   * waits unswept behind her long-lived task until 1000, while carol's c1, evicted at 50, gets a
   * tombstone until 50 + tombMs. At 1000 the sweep reaches cA: its tombstone ends at 11 + tombMs.
   */
  function staleBehindLonger(tombMs: number) {
    let now = 0;
    const t = new TaskOwners({ now: () => now, ttlMs: 1000, contextTombstoneMs: tombMs, maxPerOwner: 2 });
    t.learn(S, 'alice', 'task', 'a-long'); // expires at 1000
    t.configure({ ttlMs: 10 });
    now = 1;
    t.learn(S, 'alice', 'context', 'cA'); // expires at 11, behind a-long
    now = 50;
    for (const c of ['c1', 'c2', 'c3']) t.learn(S, 'carol', 'context', c); // c1 evicted: tombstone until 50 + tombMs
    now = 1000;
    t.learn(S, 'dave', 'task', 'd1'); // the sweep reaches cA
    return { t, at: (n: number) => (now = n), options: { now: () => now, ttlMs: 10, contextTombstoneMs: tombMs } };
  }

  it("a compaction's replay keeps an id started after its context's tombstone expired (no stale tombstone drops it)", () => {
    const { t, at, options } = staleBehindLonger(2000); // cA's tombstone until 2011, behind c1's 2050
    at(2020);
    expect(t.closed(S, 'cA')).toBe(false);
    expect(t.learn(S, 'bob', 'context', 'cA')).toBe('recorded');
    const r = new TaskOwners(options);
    r.restore(t.records());
    expect(r.ownerOf(S, 'context', 'cA')).toBe('bob');
    expect(ownerCheck(r, S, 'mallory', facts({ contextId: 'cA' }))?.error).toBe('TASK_NOT_FOUND');
    expect(r.closed(S, 'c1')).toBe(true);
    expect(t.records().filter((x) => x.op === 'tomb' && x.id === 'cA')).toEqual([]);
  });

  it('a sweep reaching a context long expired makes no tombstone already over', () => {
    const { t } = staleBehindLonger(960); // cA's would end at 971, before now (1000); c1's at 1010
    expect(t.closed(S, 'cA')).toBe(false);
    expect(t.closed(S, 'c1')).toBe(true);
    expect(t.tombstones).toBe(3); // c1, and c2 and c3 swept at 1000 (until 1020)
  });
});

describe('TaskOwners.configure (a reload)', () => {
  it("a new rate keeps what each client has left: a reload does not refill a flooder's bucket", () => {
    const now = 0;
    const t = new TaskOwners({ now: () => now, rate: { perMinute: 1, burst: 2 } });
    expect(admit(t, S, 'mallory')).toBeNull();
    expect(admit(t, S, 'mallory')).toBeNull();
    expect(admit(t, S, 'mallory')?.reason).toBe('rate');
    t.configure({ rate: { perMinute: 2, burst: 5 } });
    expect(admit(t, S, 'mallory')?.reason).toBe('rate');
    expect(admit(t, S, 'alice')).toBeNull(); // a new client: a full bucket of the new rate
  });

  it('drops expired ids before evicting down to lower bounds: they are not counted as evictions', () => {
    let now = 0;
    const evicted: string[] = [];
    const t = new TaskOwners({ now: () => now, ttlMs: 100, metrics: { refused: () => {}, evicted: (_s, r) => evicted.push(r), entries: () => {} } });
    for (let i = 0; i < 4; i++) t.learn(S, 'alice', 'task', `old${i}`);
    now = 200;
    t.configure({ maxPerOwner: 2 });
    expect(evicted).toEqual([]);
    expect(t.size).toBe(0);
  });
});

describe('TaskOwners maxOwners', () => {
  it('is per source: made-up clients filling one source leave the places of another alone', () => {
    let now = 0;
    const t = new TaskOwners({ now: () => now, maxOwners: 50 });
    for (let i = 0; i < 50; i++) {
      expect(admit(t, 'other-source', `fake${i}`)).toBeNull();
      t.learn('other-source', `fake${i}`, 'task', `f${i}`);
    }
    now += 3600_000;
    expect(admit(t, 'other-source', 'newcomer')?.reason).toBe('owners');
    expect(admit(t, S, 'alice')).toBeNull();
    expect(t.learn(S, 'alice', 'task', 'a1')).toBe('recorded');
    expect(t.owners).toBe(51);
  });
});

describe('TaskOwners tombstones under a flood', () => {
  it("a client churning its own contexts pushes out only its own tombstones, never another client's", () => {
    let now = 0;
    const t = new TaskOwners({ now: () => now, ttlMs: 1000, maxTombstones: 100, maxPerOwner: 10 });
    t.learn(S, 'alice', 'context', 'c-alice');
    now = 2000; // alice idle: her context expires
    t.learn(S, 'mallory', 'task', 'warm'); // the sweep makes her tombstone
    expect(t.closed(S, 'c-alice')).toBe(true);
    for (let i = 0; i < 1000; i++) {
      now += 1;
      expect(t.learn(S, 'mallory', 'context', `mc${i}`)).toBe('recorded'); // beyond her 10, her oldest become tombstones
    }
    expect(t.tombstones).toBe(100);
    expect(t.closed(S, 'c-alice')).toBe(true);
    expect(ownerCheck(t, S, 'bob', facts({ contextId: 'c-alice' }))?.error).toBe('TASK_NOT_FOUND');
    // After a restart, whose tombstone is whose is kept: the fairness holds on.
    const r = new TaskOwners({ now: () => now, ttlMs: 1000, maxTombstones: 100, maxPerOwner: 10 });
    r.restore(t.records());
    for (let i = 0; i < 50; i++) r.learn(S, 'mallory', 'context', `mx${i}`);
    expect(r.closed(S, 'c-alice')).toBe(true);
  });

  it('beyond maxTombstones the holder of the most loses its oldest; counts follow expiries', () => {
    let now = 0;
    const t = new TaskOwners({ now: () => now, ttlMs: 10, contextTombstoneMs: 1000, maxTombstones: 5, maxPerOwner: 1 });
    // maxPerOwner 1: each context learnt makes the owner's previous one a tombstone.
    const learn = (owner: string, ...ids: string[]) => {
      for (const id of ids) expect(t.learn(S, owner, 'context', id)).toBe('recorded');
    };
    const closed = (...ids: string[]) => ids.map((id) => t.closed(S, id));
    learn('bob', 'b1', 'b2', 'b3');
    learn('mallory', 'm1', 'm2', 'm3', 'm4');
    expect(t.tombstones).toBe(5);
    learn('carol', 'c1', 'c2'); // mallory holds most (3): her oldest goes
    expect(closed('b1', 'b2', 'm1', 'm2', 'm3', 'c1')).toEqual([true, true, false, true, true, true]);
    now = 1001; // those tombstones (until 1000) end; the live contexts (expired at 10) become tombstones until 1010
    t.learn(S, 'dave', 'task', 'd1');
    expect(t.tombstones).toBe(3);
    learn('mallory', 'm5', 'm6', 'm7'); // mallory: m4, m5, m6
    learn('bob', 'b4', 'b5'); // bob: b3, b4: six in all, mallory holds most
    expect(closed('m4', 'm5', 'm6', 'b3', 'b4', 'c2')).toEqual([false, true, true, true, true, true]);
  });
});

describe('scanAnswer: JSON answers', () => {
  it('records the task and context before the chunk naming them is written, at every split point', async () => {
    const b = Buffer.from(TASK_1_0);
    const firstTaskByte = TASK_1_0.indexOf('"t-1"') + 1;
    const firstContextByte = TASK_1_0.indexOf('"c-1"') + 1;
    for (let cut = 0; cut <= b.length; cut++) {
      const t = new TaskOwners();
      const { bytes, seen } = await scan(t, 'alice', { binding: 'jsonrpc', sse: false }, split(TASK_1_0, [cut]), () => [
        t.ownerOf(S, 'task', 't-1'),
        t.ownerOf(S, 'context', 'c-1'),
      ]);
      expect(bytes.toString()).toBe(TASK_1_0);
      for (const { end, known } of seen) {
        const [task, context] = known as [string | undefined, string | undefined];
        if (end > firstTaskByte) expect(task).toBe('alice');
        if (end > firstContextByte) expect(context).toBe('alice');
      }
    }
  });

  it('never writes a byte of an id before recording it, even split one byte at a time', async () => {
    const t = new TaskOwners();
    const out: string[] = [];
    const bytes = Buffer.from(TASK_1_0);
    const chunks = [...bytes].map((x) => Buffer.of(x));
    await pipeline(
      Readable.from(chunks),
      scanAnswer(t, S, 'alice', { binding: 'jsonrpc', sse: false }),
      new Writable({
        write(c: Buffer, _e, done) {
          out.push(c.toString());
          const sofar = out.join('');
          if (sofar.includes('"t-')) expect(t.ownerOf(S, 'task', 't-1')).toBe('alice');
          if (sofar.includes('"c-')) expect(t.ownerOf(S, 'context', 'c-1')).toBe('alice');
          done();
        },
      }),
    );
    expect(out.join('')).toBe(TASK_1_0);
  });

  it.each([
    [
      '0.3 JSON-RPC task',
      'jsonrpc',
      '{"jsonrpc":"2.0","id":1,"result":{"kind":"task","id":"t-1","contextId":"c-1","status":{"state":"working"}}}',
      ['t-1'],
      ['c-1'],
    ],
    ['0.3 JSON-RPC message', 'jsonrpc', '{"jsonrpc":"2.0","id":1,"result":{"kind":"message","messageId":"m-1","contextId":"c-1","parts":[]}}', [], ['c-1']],
    ['1.0 JSON-RPC message', 'jsonrpc', '{"jsonrpc":"2.0","id":1,"result":{"message":{"messageId":"m","contextId":"c-1","taskId":"t-1"}}}', ['t-1'], ['c-1']],
    ['1.0 REST task', 'rest', '{"task":{"id":"t-1","contextId":"c-1"}}', ['t-1'], ['c-1']],
    ['0.3 REST message', 'rest', '{"message":{"messageId":"m","contextId":"c-1","content":[{"text":"echo: hello"}]}}', [], ['c-1']],
    ['escaped id', 'rest', '{"task":{"\\u0069d":"t\\u002d1","contextId":"c-1"}}', ['t-1'], ['c-1']],
    ['duplicate key before the context (a parser keeps the last)', 'rest', '{"task":{"id":"t-0","id":"t-1","contextId":"c-1"}}', ['t-0', 't-1'], ['c-1']],
    [
      'id after a long history, with strings holding brackets',
      'rest',
      `{"task":{"history":[{"x":"}]{[\\"","taskId":"nope"}],"meta":"${'x'.repeat(5000)}","id":"t-1","contextId":"c-1"}}`,
      ['t-1'],
      ['c-1'],
    ],
    ['error answer (nothing)', 'jsonrpc', '{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Task not found: x"}}', [], []],
    ['keep-alive spaces first (a held call)', 'jsonrpc', `   \n {"jsonrpc":"2.0","id":1,"result":{"task":{"id":"t-1","contextId":"c-1"}}}`, ['t-1'], ['c-1']],
  ] as const)('%s', async (_what, binding, text, tasks, contexts) => {
    for (const cut of [1, 7, 19, 33]) {
      const t = new TaskOwners();
      const { bytes } = await scan(t, 'alice', { binding, sse: false }, split(text, [Math.min(cut, text.length)]));
      expect(bytes.toString()).toBe(text);
      for (const id of tasks) expect(t.ownerOf(S, 'task', id)).toBe('alice');
      for (const id of contexts) expect(t.ownerOf(S, 'context', id)).toBe('alice');
      expect(t.size).toBe(tasks.length + contexts.length);
    }
  });

  it('stops scanning once a task and a context are recorded: a later duplicate id stays unknown (refused for everyone)', async () => {
    const text = '{"task":{"id":"t-1","contextId":"c-1","history":[],"id":"t-2"}}';
    for (const cut of [0, 20, 40, 45, 55]) {
      const t = new TaskOwners();
      const { bytes } = await scan(t, 'alice', { binding: 'rest', sse: false }, split(text, [cut]));
      expect(bytes.toString()).toBe(text);
      expect(t.ownerOf(S, 'task', 't-1')).toBe('alice');
      expect(ownerCheck(t, S, 'alice', facts({ taskId: 't-2' }))).not.toBeNull();
    }
  });

  it('cuts an answer naming an id already owned by someone else', async () => {
    const t = new TaskOwners();
    t.learn(S, 'alice', 'task', 't-1');
    await expect(scan(t, 'bob', { binding: 'rest', sse: false }, [Buffer.from('{"task":{"id":"t-1"}}')])).rejects.toThrow(/another client/);
  });

  it('keeps no more than a few frames however deep the answer nests, and still finds the ids after it', () => {
    const deep = `{"result":{"task":{"history":${'['.repeat(100_000)}${']'.repeat(100_000)},"id":"t-deep","contextId":"c-deep"}}}`;
    const ids: string[] = [];
    const s = new JsonIdScanner(['result'], (_k, id) => ids.push(id));
    s.feed(Buffer.from(deep));
    expect(ids).toEqual(['t-deep', 'c-deep']);
    expect(s.done).toBe(true);
    expect((s as unknown as { stack: unknown[] }).stack.length).toBe(0);
  });

  it('refuses an id longer than its bound instead of holding it', () => {
    const s = new JsonIdScanner([], () => {}, 16);
    expect(() => s.feed(Buffer.from(`{"task":{"id":"${'x'.repeat(17)}"}}`))).toThrow(/longer than 16 bytes/);
  });
});

describe('scanAnswer: SSE answers', () => {
  const events = [
    'data: {"jsonrpc":"2.0","id":3,"result":{"task":{"id":"t-1","contextId":"c-1","status":{"state":"TASK_STATE_SUBMITTED"}}}}\n\n',
    'data: {"jsonrpc":"2.0","id":3,"result":{"statusUpdate":{"taskId":"t-1","contextId":"c-1","status":{"state":"TASK_STATE_WORKING"}}}}\n\n',
    ': keep-alive\n\n',
    'data: {"jsonrpc":"2.0","id":3,"result":{"artifactUpdate":{"taskId":"t-1","contextId":"c-1","artifact":{"parts":[{"text":"1 é"}]}}}}\n\n',
  ].join('');

  it('records before the first event is written and passes every byte through, split anywhere', async () => {
    const b = Buffer.from(events);
    for (let cut = 0; cut <= b.length; cut += 7) {
      const t = new TaskOwners();
      const { bytes, seen } = await scan(t, 'alice', { binding: 'jsonrpc', sse: true }, split(events, [cut]), () => t.ownerOf(S, 'task', 't-1'));
      expect(bytes.equals(b)).toBe(true);
      const first = events.indexOf('"t-1"');
      for (const { end, known } of seen) if (end > first) expect(known).toBe('alice');
      expect(t.ownerOf(S, 'context', 'c-1')).toBe('alice');
    }
  });

  it('reads 0.3 REST stream events and a message-only stream', async () => {
    const t = new TaskOwners();
    await scan(t, 'alice', { binding: 'rest', sse: true }, [Buffer.from('data: {"message":{"messageId":"m","contextId":"c-9","content":[]}}\n\n')]);
    expect(t.ownerOf(S, 'context', 'c-9')).toBe('alice');
    await scan(t, 'alice', { binding: 'jsonrpc', sse: true }, [
      Buffer.from('data: {"jsonrpc":"2.0","id":1,"result":{"kind":"task","id":"t-9","contextId":"c-9"}}\r\n\r\n'),
    ]);
    expect(t.ownerOf(S, 'task', 't-9')).toBe('alice');
  });

  it('an answer naming an id longer than the request bound is cut before its bytes and not recorded (SSE and JSON alike)', async () => {
    const big = 'x'.repeat(A2A_MAX_ID_BYTES + 1);
    const ok = 'é'.repeat(A2A_MAX_ID_BYTES / 2); // 1024 bytes: at the bound
    for (const sse of [true, false]) {
      const t = new TaskOwners();
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { kind: 'task', id: 't1', contextId: big } });
      const out: Buffer[] = [];
      await expect(
        pipeline(
          Readable.from([Buffer.from(sse ? `data: ${body}\n\n` : body)]),
          scanAnswer(t, S, 'alice', { binding: 'jsonrpc', sse, maxEventBytes: 16 << 20 }),
          new Writable({
            write(c: Buffer, _e, d) {
              out.push(c);
              d();
            },
          }),
        ),
      ).rejects.toBeInstanceOf(IdTooLongError);
      expect(Buffer.concat(out).includes(big)).toBe(false);
      expect(t.ownerOf(S, 'context', big)).toBeUndefined();
      expect(t.tombstones).toBe(0);
      const fine = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { kind: 'task', id: 't2', contextId: ok } });
      await scan(t, 'alice', { binding: 'jsonrpc', sse }, [Buffer.from(sse ? `data: ${fine}\n\n` : fine)]);
      expect(t.ownerOf(S, 'context', ok)).toBe('alice');
    }
  });

  it('bounds an event held while it is read', async () => {
    const t = new TaskOwners();
    await expect(scan(t, 'alice', { binding: 'rest', sse: true, maxEventBytes: 64 }, [Buffer.from(`data: {"x":"${'y'.repeat(100)}`)])).rejects.toThrow(
      /larger than 64/,
    );
  });
});

describe('filterTaskList', () => {
  const t = new TaskOwners();
  t.learn(S, 'alice', 'task', 'a');
  t.learn(S, 'bob', 'task', 'b');
  it('keeps only the caller tasks and recounts totalSize (JSON-RPC and REST)', () => {
    const list = { tasks: [{ id: 'a' }, { id: 'b' }, { id: 'unknown' }, { nope: 1 }], totalSize: 4, nextPageToken: '' };
    expect(filterTaskList(t, S, 'alice', 'rest', list)).toEqual({ tasks: [{ id: 'a' }], totalSize: 1, nextPageToken: '' });
    expect(filterTaskList(t, S, 'bob', 'jsonrpc', { jsonrpc: '2.0', id: 1, result: list })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: { tasks: [{ id: 'b' }], totalSize: 1, nextPageToken: '' },
    });
    expect(filterTaskList(t, S, 'mallory', 'rest', list)).toEqual({ tasks: [], totalSize: 0, nextPageToken: '' });
  });
  it('leaves an error answer alone', () => {
    const e = { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'x' } };
    expect(filterTaskList(t, S, 'alice', 'jsonrpc', e)).toBe(e);
  });
});

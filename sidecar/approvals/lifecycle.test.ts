// A task's life as pure transitions: each event gives the next state and the effects the runner
// carries out, with no backend, clock or executor involved.
import type { Decision, PendingApproval } from './backend.js';
import { requestHash } from './hash.js';
import { step, type ApprovalTask, type StepContext, type TaskEffect, type TaskEvent } from './lifecycle.js';

const NOW = 1_700_000_000_000;
const call = { tool: 'deploy', arguments: { to: 'prod' } };
const pending: PendingApproval = {
  id: 'tg-1',
  channel: 'oncall',
  workload: { namespace: 'ns', serviceAccount: 'sa', pod: 'p' },
  source: 'up',
  method: 'tools/call',
  tool: 'deploy',
  arguments: call.arguments,
  requestHash: requestHash('up', 'deploy', call.arguments),
  reason: 'r',
  createdAt: new Date(NOW),
  expiresAt: new Date(NOW + 60_000),
};
const base: ApprovalTask = {
  id: 'tg-1',
  mode: 'task',
  owner: { source: 'up', client: 'session:s' },
  pending,
  correlationId: 'c',
  status: 'working',
  phase: 'submitting',
  statusMessage: 'Requesting',
  createdAt: NOW,
  lastUpdatedAt: NOW,
  ttlMs: 3_600_000,
  pollIntervalMs: 1000,
};
const ctx = (over: Partial<StepContext> = {}): StepContext => ({ now: NOW + 5_000, backend: 'test backend', where: (c) => `channel ${c}`, call, ...over });
const decided = (outcome: Decision['outcome']): TaskEvent => ({ type: 'decided', decision: { id: 'tg-1', outcome, at: new Date(NOW), message: '' } });
const kinds = (fx: TaskEffect[]) =>
  fx.map((f) => (f.type === 'backend-finished' ? `finished:${f.ok}` : f.type === 'pending' ? `pending${f.delta > 0 ? '+' : '-'}` : f.type));

/** Runs events in order from `t`, collecting the effects. */
function run(t: ApprovalTask, events: TaskEvent[], c = ctx()): { task: ApprovalTask; effects: TaskEffect[] } {
  const effects: TaskEffect[] = [];
  for (const ev of events) {
    const s = step(t, ev, c);
    t = s.task;
    effects.push(...s.effects);
  }
  return { task: t, effects };
}

test('the happy path: submitted, approved, marked, executed; the backend is told how it went', () => {
  const start = step(base, { type: 'start', deadlineMs: 90_000 }, ctx());
  expect(kinds(start.effects)).toEqual(['pending+', 'arm-deadline', 'log', 'submit']);
  const r = run(start.task, [
    { type: 'submitted' },
    decided('approved'),
    { type: 'marked' },
    { type: 'executed', outcome: { kind: 'result', result: { content: [] } } },
  ]);
  expect(r.task).toMatchObject({
    phase: 'done',
    status: 'completed',
    statusMessage: 'Approved. Executed; the tool returned a result',
    terminalAt: NOW + 5_000,
  });
  expect(kinds(r.effects)).toEqual([
    'clear-deadline',
    'count',
    'waited',
    'log',
    'pending-',
    'mark-executing',
    'execute',
    'clear-deadline',
    'ended',
    'finished:true',
  ]);
  expect(base.phase).toBe('submitting'); // the input task is never changed
});

test('a task without approval runs at once and tells no backend', () => {
  const { pending: _p, ...own } = { ...base, phase: 'executing' as const };
  expect(kinds(step(own, { type: 'start', deadlineMs: 0 }, ctx()).effects)).toEqual(['execute']);
  expect(kinds(run(own, [{ type: 'executed', outcome: { kind: 'result', result: { isError: true } } }]).effects)).toEqual(['clear-deadline', 'ended']);
});

test('a call that no longer matches its approved hash is not marked or run', () => {
  const r = run({ ...base, phase: 'pending' }, [decided('approved')], ctx({ call: { tool: 'deploy', arguments: { to: 'elsewhere' } } }));
  expect(r.task).toMatchObject({
    phase: 'done',
    status: 'failed',
    outcome: { error: { code: -32006, data: { reason: expect.stringMatching(/hash mismatch/) } } },
  });
  expect(kinds(r.effects)).not.toContain('mark-executing');
  expect(kinds(r.effects)).not.toContain('execute');
  expect(kinds(r.effects)).toContain('finished:false');
});

test('rejections, the deadline and a failed submit end the task with their errors; late events change nothing', () => {
  expect(run({ ...base, phase: 'pending' }, [decided('rejected')]).task).toMatchObject({ status: 'failed', outcome: { error: { code: -32007 } } });
  const late = run({ ...base, phase: 'pending' }, [{ type: 'deadline' }, decided('approved')]);
  expect(late.task).toMatchObject({ status: 'failed', outcome: { error: { code: -32008 } } });
  // The human approved after the deadline: the record must not suggest it ran.
  expect(kinds(late.effects)).toEqual([
    'log',
    'backend-cancel',
    'clear-deadline',
    'count',
    'waited',
    'log',
    'pending-',
    'clear-deadline',
    'ended',
    'finished:false',
  ]);
  const failed = run(base, [{ type: 'submit-failed', error: 'API server unreachable' }, { type: 'submitted' }]);
  expect(failed.task).toMatchObject({
    phase: 'done',
    outcome: { error: { code: -32006, data: { reason: expect.stringMatching(/could not be recorded \(test backend\): API server unreachable/) } } },
  });
});

test('cancel: while waiting the backend is told, while executing the call is aborted; marked after cancel runs nothing', () => {
  expect(kinds(run({ ...base, phase: 'pending' }, [{ type: 'cancel', why: 'tasks/cancel' }]).effects)).toEqual([
    'log',
    'count',
    'pending-',
    'clear-deadline',
    'ended',
    'backend-cancel',
  ]);
  const executing = run({ ...base, phase: 'executing' }, [
    { type: 'cancel', why: 'tasks/cancel' },
    { type: 'marked' },
    { type: 'executed', outcome: { kind: 'result', result: {} } },
  ]);
  expect(executing.task).toMatchObject({ status: 'cancelled', outcome: { error: { code: -32009 } } });
  expect(kinds(executing.effects)).toEqual(['log', 'abort', 'count', 'clear-deadline', 'ended', 'finished:false', 'finished:false']);
  expect(kinds(run({ ...base, phase: 'done' }, [{ type: 'cancel', why: 'x' }]).effects)).toEqual([]);
});

test('mark-failed ends without running; the ttl aborts a call still running', () => {
  const marked = run({ ...base, phase: 'executing' }, [{ type: 'mark-failed', error: 'conflict' }]);
  expect(marked.task.outcome).toMatchObject({ error: { data: { reason: expect.stringMatching(/can never run twice/) } } });
  const ttl = run({ ...base, phase: 'executing' }, [{ type: 'ttl' }]);
  expect(kinds(ttl.effects)).toEqual(['log', 'abort', 'clear-deadline', 'ended']);
  expect(ttl.task.outcome).toMatchObject({ error: { code: -32000, data: { reason: expect.stringMatching(/ttl/) } } });
});

test('cancelled while the submit was in flight: the request recorded afterwards is cancelled too', () => {
  const cancelled = step(base, { type: 'cancel', why: 'client cancelled' }, ctx());
  expect(cancelled.task.phase).toBe('done');
  const late = step(cancelled.task, { type: 'submitted' }, ctx());
  expect(kinds(late.effects)).toEqual(['backend-cancel']);
  // A task that ended by a decision or a failed submit asks for nothing more.
  const failed = step(base, { type: 'submit-failed', error: 'x' }, ctx()).task;
  expect(step(failed, { type: 'submitted' }, ctx()).effects).toEqual([]);
});

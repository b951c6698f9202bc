import { describe, expect, test } from '@jest/globals';
import { noFacts } from '../../policy/gates/a2a-operation.js';
import type { Decision } from '../../policy/gates/decide.js';
import { planA2a, type A2aDecided } from './plan.js';

const op: A2aDecided['op'] = {
  source: 'billing',
  method: 'SendMessage',
  target: { kind: 'skill', name: 'refund' },
  arguments: undefined,
  governed: true,
  a2a: { ...noFacts('1.0', 'rest'), skill: 'refund' },
};
const base = { op, audit: null, limited: null, notification: false };
const forward: Decision = { action: 'forward', gate: 'rules', rule: 'r1', reason: 'ok' } as Decision;
const deny = { action: 'deny', gate: 'rules', rule: 'no-refunds', reason: 'denied by no-refunds', error: 'DENIED_BY_RULE' } as Decision;

describe('planA2a', () => {
  test('forward: the outcome names version, binding and skill; the count is bounded and says a2a', () => {
    const p = planA2a({ ...base, decision: forward });
    expect(p.action).toEqual({ kind: 'forward' });
    expect(p.outcome).toMatchObject({
      method: 'SendMessage',
      target: 'refund',
      decision: 'forward',
      a2a: { version: '1.0', binding: 'rest', skill: 'refund' },
    });
    expect(p.count).toEqual({ source: 'billing', method: 'SendMessage', decision: 'forward', gate: 'rules', rule: 'r1', protocol: 'a2a' });
  });

  test('deny: ThoughtGate refusal with its rule; a notification is dropped instead', () => {
    expect(planA2a({ ...base, decision: deny }).action).toEqual({ kind: 'refuse', name: 'DENIED_BY_RULE', reason: 'denied by no-refunds', rule: 'no-refunds' });
    expect(planA2a({ ...base, decision: deny, notification: true }).action).toEqual({ kind: 'drop' });
  });

  test('hidden: answered as an unknown skill (invalid params), counted under rule expose', () => {
    const p = planA2a({ ...base, decision: { action: 'hidden', gate: 'visibility', reason: 'skill is not exposed' } as Decision });
    expect(p.action).toEqual({ kind: 'a2a-error', name: 'INVALID_PARAMS', reason: 'unknown skill "refund"' });
    expect(p.count.rule).toBe('expose');
  });

  test('a rate limit turns a forward into RATE_LIMITED', () => {
    const p = planA2a({ ...base, decision: forward, limited: { rule: 'rl', reason: 'slow down', retryAfterMs: 10 } as never });
    expect(p.action).toMatchObject({ kind: 'refuse', name: 'RATE_LIMITED', rule: 'rl' });
    expect(p.outcome).toMatchObject({ decision: 'deny', gate: 'ratelimit', rule: 'rl' });
  });

  test('approve goes to gate 4; an unknown method is counted as other', () => {
    const approve = { action: 'approve', gate: 'rules', rule: 'big', reason: 'needs a human', channel: 'finance' } as unknown as Decision;
    expect(planA2a({ ...base, decision: approve }).action.kind).toBe('approve');
    expect(planA2a({ ...base, op: { ...op, method: 'Nope' }, decision: forward }).count.method).toBe('other');
  });
});

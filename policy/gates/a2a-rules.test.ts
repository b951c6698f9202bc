// Gate 2 for A2A calls: rules name methods in either generation's spelling, and skills.
import { RuleSchema } from '../../api/config.js';
import { noFacts } from './a2a-operation.js';
import type { A2aFacts, Operation } from './operation.js';
import { compileRules, firstMatch } from './rules.js';

const facts: A2aFacts = noFacts('0.3', 'jsonrpc');
const a2aOp = (method: string, skill: string | null, governed = true): Operation => ({
  source: 'billing',
  method,
  target: skill === null ? null : { kind: 'skill', name: skill },
  arguments: {},
  governed,
  a2a: { ...facts, skill: skill ?? '' },
});
const rules = (...rs: object[]) => compileRules(rs.map((r) => RuleSchema.parse(r)));

describe('rules on A2A calls', () => {
  test('a method in 0.3 spelling matches the canonical name, and globs reach the old spelling too', () => {
    const r = rules({ name: 'old', match: { method: 'message/send' }, action: 'deny' });
    expect(firstMatch(r, a2aOp('SendMessage', null))?.label).toBe('old');
    expect(firstMatch(r, a2aOp('SendStreamingMessage', null))).toBeUndefined();
    const glob = rules({ name: 'msgs', match: { method: 'message/*' }, action: 'deny' });
    expect(firstMatch(glob, a2aOp('SendStreamingMessage', null))?.label).toBe('msgs');
    expect(firstMatch(glob, a2aOp('GetTask', null, false))).toBeUndefined();
    expect(firstMatch(rules({ match: { method: 'SendMessage' }, action: 'deny' }), a2aOp('SendMessage', null))).toBeDefined();
  });

  test('aliases apply to A2A calls only: an MCP method named like a canonical A2A one is not matched by its 0.3 spelling', () => {
    const r = rules({ match: { method: 'message/send' }, action: 'deny' });
    const mcp: Operation = { source: 'github', method: 'SendMessage', target: null, arguments: {}, governed: true };
    expect(firstMatch(r, mcp)).toBeUndefined();
  });

  test('skill globs match the named skill; a message naming none is not matched by a skill rule', () => {
    const r = rules({ name: 'refunds', match: { skill: 'refund*' }, action: 'deny' });
    expect(firstMatch(r, a2aOp('SendMessage', 'refund-big'))?.label).toBe('refunds');
    expect(firstMatch(r, a2aOp('SendMessage', 'status'))).toBeUndefined();
    expect(firstMatch(r, a2aOp('SendMessage', null))).toBeUndefined();
    // Plumbing flows unless a rule names its method.
    expect(firstMatch(rules({ match: {}, action: 'deny' }), a2aOp('GetTask', null, false))).toBeUndefined();
    expect(firstMatch(rules({ match: { method: 'tasks/get' }, action: 'deny' }), a2aOp('GetTask', null, false))).toBeDefined();
  });

  test('couldMatch knows skills and either spelling', () => {
    const [r] = rules({ match: { method: 'message/send', skill: 'x' }, action: 'approve', approval: { channel: 'c' } });
    expect(r!.couldMatch('SendMessage', 'billing', 'skill')).toBe(true);
    expect(r!.couldMatch('SendMessage', 'billing', null)).toBe(false);
    expect(r!.couldMatch('tools/call', 'billing', 'skill')).toBe(false);
  });
});

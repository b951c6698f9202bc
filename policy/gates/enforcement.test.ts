// The enforcement step after decide(): enforce keeps every decision; audit turns a deny, hide or
// approve into a forward with a record; a rule's own enforcement overrides the document's.
import fc from 'fast-check';
import { ConfigFileSchema } from '../../api/config.js';
import { compilePolicies } from '../cedar/policies.js';
import { sourceMayNeedApproval, toolMayNeedApproval } from './approval-tools.js';
import { decide, type GateInputs } from './decide.js';
import { enforce, enforcementOf, visibilityEnforced, type EnforcementInputs } from './enforcement.js';
import { describe as describeOp, type Operation } from './operation.js';
import { compileRules } from './rules.js';
import { compileVisibility } from './visibility.js';

const identity = { namespace: 'team-a', serviceAccount: 'agent', pod: 'agent-0', labels: {} };
const op = (method: string, params: unknown, source = 'github'): Operation => {
  const d = describeOp(source, method, params);
  if (!d.ok) throw new Error(d.reason);
  return d.op;
};
const CEDAR = `permit(principal, action, resource) when { context.arguments.amount < 100 };
@approve("finance") permit(principal, action, resource) when { context.arguments.amount >= 100 && context.arguments.amount < 1000 };`;

function inputs(doc: object): GateInputs & EnforcementInputs {
  const cfg = ConfigFileSchema.parse({ cedar: { policies: CEDAR }, ...doc });
  const cedar = compilePolicies(CEDAR);
  if (!cedar.ok) throw new Error(cedar.errors.join('\n'));
  return {
    visibility: compileVisibility(cfg.sources[0]?.expose ?? { mode: 'all' }),
    rules: compileRules(cfg.rules),
    defaultAction: cfg.defaultAction,
    cedar: cedar.policies,
    identity,
    enforcement: cfg.enforcement ?? 'enforce',
  };
}

const doc = (enforcement: 'enforce' | 'audit' | undefined, ruleEnforcement: Record<string, 'enforce' | 'audit'> = {}) => ({
  ...(enforcement ? { enforcement } : {}),
  sources: [{ name: 'github', url: 'http://gh/mcp', expose: { mode: 'blocklist', tools: ['secret_*'] } }],
  rules: [
    {
      name: 'no-delete',
      match: { tool: 'delete_*' },
      action: 'deny',
      reason: 'deleting is not allowed',
      ...(ruleEnforcement['no-delete'] ? { enforcement: ruleEnforcement['no-delete'] } : {}),
    },
    { name: 'pay', match: { tool: 'pay' }, action: 'policy', ...(ruleEnforcement['pay'] ? { enforcement: ruleEnforcement['pay'] } : {}) },
    { name: 'merge', match: { tool: 'merge' }, action: 'approve', approval: { channel: 'eng' } },
  ],
  defaultAction: 'forward',
  approvalChannels: [
    { name: 'eng', slack: { channel: 'C1', tokenEnv: 'T' }, approvers: { users: ['U1'] } },
    { name: 'finance', slack: { channel: 'C2', tokenEnv: 'T' }, approvers: { users: ['U1'] } },
  ],
});

const run = (g: GateInputs & EnforcementInputs, o: Operation) => enforce(g, o, decide(g, o, new Date(0)));

describe('enforce (the default)', () => {
  test('every decision stands and nothing is recorded', () => {
    for (const g of [inputs(doc(undefined)), inputs(doc('enforce'))]) {
      expect(run(g, op('tools/call', { name: 'delete_repo' }))).toMatchObject({ decision: { action: 'deny', rule: 'no-delete' }, audit: null });
      expect(run(g, op('tools/call', { name: 'secret_x' }))).toMatchObject({ decision: { action: 'hidden' }, audit: null });
      expect(run(g, op('tools/call', { name: 'merge' }))).toMatchObject({ decision: { action: 'approve' }, audit: null });
      expect(visibilityEnforced(g)).toBe(true);
    }
  });
});

describe('audit', () => {
  const g = inputs(doc('audit'));

  test('a rule deny, a hidden tool and an approval become forwards with what enforce would have done', () => {
    expect(run(g, op('tools/call', { name: 'delete_repo' }))).toEqual({
      decision: { action: 'forward', gate: 'rules', rule: 'no-delete', reason: 'audit: would deny: deleting is not allowed' },
      audit: { would: 'deny', gate: 'rules', rule: 'no-delete', reason: 'deleting is not allowed' },
    });
    expect(run(g, op('tools/call', { name: 'secret_x' }))).toMatchObject({
      decision: { action: 'forward', gate: 'visibility', rule: 'expose' },
      audit: { would: 'hide', gate: 'visibility', rule: 'expose' },
    });
    expect(run(g, op('tools/call', { name: 'merge' }))).toMatchObject({
      decision: { action: 'forward' },
      audit: { would: 'approve', gate: 'rules', rule: 'merge' },
    });
    expect(visibilityEnforced(g)).toBe(false);
  });

  test('Cedar verdicts carry the policies that determined them', () => {
    const deny = run(g, op('tools/call', { name: 'pay', arguments: { amount: 5000 } }));
    expect(deny).toMatchObject({ decision: { action: 'forward', gate: 'cedar', rule: 'pay' }, audit: { would: 'deny', gate: 'cedar', rule: 'pay' } });
    const approve = run(g, op('tools/call', { name: 'pay', arguments: { amount: 500 } }));
    expect(approve.audit).toMatchObject({ would: 'approve', gate: 'cedar', rule: 'pay', policies: ['policy1'] });
    expect(approve.decision).toMatchObject({ action: 'forward', policies: ['policy1'] });
  });

  test('what is forwarded anyway is not recorded', () => {
    expect(run(g, op('tools/call', { name: 'echo' }))).toMatchObject({ decision: { action: 'forward' }, audit: null });
    expect(run(g, op('tools/call', { name: 'pay', arguments: { amount: 5 } }))).toMatchObject({ decision: { action: 'forward' }, audit: null });
    expect(run(g, op('tools/list', {}))).toMatchObject({ audit: null });
  });

  test('no tool needs approval, so none is advertised as task-capable', () => {
    expect(toolMayNeedApproval(g, 'github', 'merge')).toBe(false);
    expect(toolMayNeedApproval(g, 'github', 'pay')).toBe(false);
    expect(sourceMayNeedApproval(g, 'github')).toBe(false);
    const enforced = inputs(doc('enforce'));
    expect(toolMayNeedApproval(enforced, 'github', 'merge')).toBe(true);
    expect(sourceMayNeedApproval(enforced, 'github')).toBe(true);
  });
});

describe("a rule's own enforcement overrides the document's", () => {
  test('an audited rule in an enforced document: only that rule is relaxed', () => {
    const g = inputs(doc('enforce', { 'no-delete': 'audit' }));
    expect(run(g, op('tools/call', { name: 'delete_repo' }))).toMatchObject({ decision: { action: 'forward' }, audit: { would: 'deny', rule: 'no-delete' } });
    expect(run(g, op('tools/call', { name: 'merge' }))).toMatchObject({ decision: { action: 'approve' }, audit: null });
    expect(run(g, op('tools/call', { name: 'secret_x' }))).toMatchObject({ decision: { action: 'hidden' }, audit: null });
  });

  test('an enforced rule in an audited document keeps denying; gate 1 follows the document', () => {
    const g = inputs(doc('audit', { pay: 'enforce' }));
    expect(run(g, op('tools/call', { name: 'pay', arguments: { amount: 5000 } }))).toMatchObject({ decision: { action: 'deny' }, audit: null });
    expect(run(g, op('tools/call', { name: 'pay', arguments: { amount: 500 } }))).toMatchObject({ decision: { action: 'approve' }, audit: null });
    expect(run(g, op('tools/call', { name: 'delete_repo' }))).toMatchObject({ decision: { action: 'forward' }, audit: { would: 'deny' } });
    expect(run(g, op('tools/call', { name: 'secret_x' }))).toMatchObject({ decision: { action: 'forward' }, audit: { would: 'hide' } });
    expect(toolMayNeedApproval(g, 'github', 'pay')).toBe(true);
    expect(toolMayNeedApproval(g, 'github', 'merge')).toBe(false);
  });

  test('defaultAction follows the document', () => {
    const g = inputs({ ...doc('audit', { 'no-delete': 'enforce' }), defaultAction: 'deny' });
    expect(run(g, op('tools/call', { name: 'anything' }))).toMatchObject({ decision: { action: 'forward' }, audit: { would: 'deny', rule: 'defaultAction' } });
  });
});

test('the enforcement is found from the config alone: any operation of the same target gets the same one', () => {
  // Whatever else the agent puts in the message (arguments, _meta, task, extra params), the
  // enforcement depends only on the decision's rule, which the config's rules choose by target.
  const g = inputs(doc('enforce', { 'no-delete': 'audit' }));
  const extra = fc.dictionary(
    fc.string().filter((k) => k !== 'name' && k !== 'arguments'),
    fc.jsonValue(),
    { maxKeys: 4 },
  );
  fc.assert(
    fc.property(fc.constantFrom('delete_repo', 'merge', 'echo', 'secret_x'), extra, fc.jsonValue(), (name, params, args) => {
      const base = op('tools/call', { name });
      const o = op('tools/call', { ...params, name, arguments: args, _meta: { enforcement: 'audit', 'thoughtgate.io/enforcement': 'audit' } });
      const d = decide(g, o, new Date(0));
      expect(enforcementOf(g, o, d)).toBe(enforcementOf(g, base, decide(g, base, new Date(0))));
    }),
    { numRuns: 300 },
  );
});

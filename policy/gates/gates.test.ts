// Gates 1–3 as pure functions: operation → decision.
import { ConfigFileSchema } from '../../api/config.js';
import { compilePolicies } from '../cedar/policies.js';
import { decide, type GateInputs } from './decide.js';
import { describe as describeOp, type Operation } from './operation.js';
import { compileRules } from './rules.js';
import { compileVisibility, filterListResult, needsListFilter } from './visibility.js';

const identity = { namespace: 'team-a', serviceAccount: 'agent', pod: 'agent-0', labels: { app: 'agent' } };
const op = (method: string, params: unknown, source = 'github'): Operation => {
  const d = describeOp(source, method, params);
  if (!d.ok) throw new Error(d.reason);
  return d.op;
};

function inputs(yaml: object, cedarText?: string): GateInputs {
  const cfg = ConfigFileSchema.parse(cedarText ? { ...yaml, cedar: { policies: cedarText } } : yaml);
  const cedar = cedarText ? compilePolicies(cedarText) : null;
  if (cedar && !cedar.ok) throw new Error(cedar.errors.join('\n'));
  return {
    visibility: compileVisibility(cfg.sources[0]?.expose ?? { mode: 'all' }),
    rules: compileRules(cfg.rules),
    defaultAction: cfg.defaultAction,
    cedar: cedar?.ok ? cedar.policies : null,
    identity,
  };
}

describe('operation', () => {
  test('reads the target of every governed method', () => {
    expect(op('tools/call', { name: 'x', arguments: { a: 1 } })).toMatchObject({ target: { kind: 'tool', name: 'x' }, arguments: { a: 1 }, governed: true });
    expect(op('resources/read', { uri: 'file:///a' }).target).toEqual({ kind: 'resource', name: 'file:///a' });
    expect(op('resources/subscribe', { uri: 'file:///a' }).target).toEqual({ kind: 'resource', name: 'file:///a' });
    expect(op('prompts/get', { name: 'p' }).target).toEqual({ kind: 'prompt', name: 'p' });
    expect(op('completion/complete', { ref: { type: 'ref/prompt', name: 'p' }, argument: { name: 'a', value: '' } }).target).toEqual({
      kind: 'prompt',
      name: 'p',
    });
    expect(op('completion/complete', { ref: { type: 'ref/resource', uri: 'u://x' } }).target).toEqual({ kind: 'resource', name: 'u://x' });
  });

  test('plumbing is not governed; unknown methods are', () => {
    for (const m of ['initialize', 'ping', 'tools/list', 'notifications/initialized', 'tasks/get', 'logging/setLevel']) expect(op(m, {}).governed).toBe(false);
    expect(op('vendor/new-verb', {}).governed).toBe(true);
  });

  test('a governed method without its target is refused', () => {
    expect(describeOp('s', 'tools/call', { name: 5 })).toEqual({ ok: false, reason: 'tools/call needs params.name (a string)' });
    expect(describeOp('s', 'resources/read', {})).toMatchObject({ ok: false });
    expect(describeOp('s', 'completion/complete', { ref: { type: 'ref/other' } })).toMatchObject({ ok: false });
  });
});

describe('gate 1: visibility', () => {
  test('allowlist: omitted kinds show nothing; blocklist: omitted kinds hide nothing', () => {
    const allow = compileVisibility({ mode: 'allowlist', tools: ['get_*'] });
    expect(allow.tool!('get_issue')).toBe(true);
    expect(allow.tool!('delete_issue')).toBe(false);
    expect(allow.prompt!('anything')).toBe(false);
    const block = compileVisibility({ mode: 'blocklist', tools: ['delete_*'] });
    expect(block.tool!('delete_issue')).toBe(false);
    expect(block.tool!('get_issue')).toBe(true);
    expect(block.prompt).toBeNull();
    expect(needsListFilter(block, 'prompts/list')).toBe(false);
    expect(needsListFilter(block, 'tools/list')).toBe(true);
  });

  test('filtering keeps nextCursor and every other field, and refuses a malformed result', () => {
    const v = compileVisibility({ mode: 'blocklist', tools: ['secret'] });
    expect(filterListResult(v, 'tools/list', { tools: [{ name: 'a' }, { name: 'secret' }, { nameless: true }], nextCursor: 'c', _meta: { x: 1 } })).toEqual({
      tools: [{ name: 'a' }],
      nextCursor: 'c',
      _meta: { x: 1 },
    });
    expect(filterListResult(v, 'tools/list', { tools: 'nope' })).toBeNull();
    expect(filterListResult(v, 'tools/list', null)).toBeNull();
    const r = compileVisibility({ mode: 'allowlist', resources: ['file:///pub/*'] });
    expect(
      filterListResult(r, 'resources/templates/list', { resourceTemplates: [{ uriTemplate: 'file:///pub/{x}' }, { uriTemplate: 'file:///priv/{x}' }] }),
    ).toEqual({ resourceTemplates: [{ uriTemplate: 'file:///pub/{x}' }] });
  });

  test('a hidden target is decided before any rule', () => {
    const g = inputs({
      sources: [{ name: 'github', url: 'http://x', expose: { mode: 'blocklist', tools: ['t'] } }],
      rules: [{ match: { tool: 't' }, action: 'forward' }],
    });
    expect(decide(g, op('tools/call', { name: 't' }), new Date())).toMatchObject({ action: 'hidden', gate: 'visibility' });
  });
});

describe('gate 2: rules', () => {
  const g = inputs({
    rules: [
      { name: 'no-deletes', match: { tool: 'delete_*' }, action: 'deny', reason: 'no' },
      { match: { tool: 'create_*', source: 'github' }, action: 'approve', approval: { channel: 'oncall', timeout: '10m' } },
      { name: 'lists', match: { method: 'prompts/list' }, action: 'deny' },
      { match: { resource: 'file:///etc/*' }, action: 'deny' },
    ],
    defaultAction: 'forward',
  });
  const now = new Date();

  test('first match wins, with rule names or positions in the decision', () => {
    expect(decide(g, op('tools/call', { name: 'delete_repo' }), now)).toMatchObject({
      action: 'deny',
      rule: 'no-deletes',
      reason: 'no',
      error: 'DENIED_BY_RULE',
    });
    expect(decide(g, op('tools/call', { name: 'create_issue' }), now)).toMatchObject({
      action: 'approve',
      channel: 'oncall',
      timeoutMs: 600_000,
      rule: 'rules[1]',
    });
    expect(decide(g, op('tools/call', { name: 'create_issue' }, 'gitlab'), now)).toMatchObject({ action: 'forward', rule: 'defaultAction' });
    expect(decide(g, op('resources/read', { uri: 'file:///etc/passwd' }), now)).toMatchObject({ action: 'deny', rule: 'rules[3]' });
  });

  test('plumbing flows unless a rule names its method', () => {
    const strict = inputs({ rules: [{ match: {}, action: 'deny' }], defaultAction: 'deny' });
    expect(decide(strict, op('initialize', {}), now)).toMatchObject({ action: 'forward' });
    expect(decide(strict, op('tools/list', {}), now)).toMatchObject({ action: 'forward' });
    expect(decide(strict, op('tools/call', { name: 'x' }), now)).toMatchObject({ action: 'deny', rule: 'rules[0]' });
    expect(decide(g, op('prompts/list', {}), now)).toMatchObject({ action: 'deny', rule: 'lists' });
  });

  test('defaultAction deny covers unknown verbs', () => {
    const strict = inputs({ defaultAction: 'deny' });
    expect(decide(strict, op('vendor/new-verb', {}), now)).toMatchObject({ action: 'deny', rule: 'defaultAction' });
  });
});

describe('gate 3: policy rules ask Cedar', () => {
  const policies = `
@id("small") permit(principal, action == ThoughtGate::Action::"tools/call", resource) when { context.arguments.amount < 100 };
@id("medium") @approve("finance") permit(principal, action == ThoughtGate::Action::"tools/call", resource) when { context.arguments.amount >= 100 && context.arguments.amount < 1000 };
`;
  const g = inputs({ rules: [{ match: { tool: 'pay' }, action: 'policy' }], defaultAction: 'deny' }, policies);
  const now = new Date();

  test('permit forwards, @approve asks a human, no permit denies, errors deny', () => {
    expect(decide(g, op('tools/call', { name: 'pay', arguments: { amount: 5 } }), now)).toMatchObject({
      action: 'forward',
      gate: 'cedar',
      policies: ['small'],
    });
    expect(decide(g, op('tools/call', { name: 'pay', arguments: { amount: 500 } }), now)).toMatchObject({
      action: 'approve',
      gate: 'cedar',
      channel: 'finance',
    });
    expect(decide(g, op('tools/call', { name: 'pay', arguments: { amount: 5000 } }), now)).toMatchObject({ action: 'deny', error: 'DENIED_BY_POLICY' });
    expect(decide(g, op('tools/call', { name: 'pay', arguments: { amount: 'lots' } }), now)).toMatchObject({ action: 'deny', error: 'POLICY_ERROR' });
  });

  test('a policy rule without cedar is refused by validation, and denies if it ever reaches a gate', () => {
    const r = ConfigFileSchema.safeParse({ rules: [{ match: { tool: 'pay' }, action: 'policy' }] });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({ path: ['rules', 0, 'action'], message: expect.stringContaining('no cedar section') });
    const none: GateInputs = { ...inputs({}), rules: compileRules([{ match: { tool: 'pay' }, action: 'policy' }]) };
    expect(decide(none, op('tools/call', { name: 'pay' }), now)).toMatchObject({ action: 'deny', gate: 'cedar' });
  });

  test('defaultAction cannot be approve, and timeouts cannot be zero', () => {
    expect(ConfigFileSchema.safeParse({ defaultAction: 'approve' }).success).toBe(false);
    expect(ConfigFileSchema.safeParse({ sources: [{ name: 's', url: 'http://x', timeouts: { connect: '0s' } }] }).error!.issues[0]!.message).toBe(
      'must be greater than zero',
    );
  });
});

import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Identity } from '../../api/config.js';
import { compilePolicies, type CompiledPolicies } from './policies.js';
import { evaluate, type CedarInput } from './evaluate.js';
import { partition, scopeOf, type Scope } from './partition.js';

function compile(text: string, partitioned = true): CompiledPolicies {
  const c = compilePolicies(text, { partition: partitioned });
  if (!c.ok) throw new Error(c.errors.join('\n'));
  return c.policies;
}

function scope(policy: string): unknown {
  const j = cedar.policyToJson(policy);
  if (j.type !== 'success') throw new Error('parse');
  const s = scopeOf(j.json);
  const plain = (v: Scope['actions']) => (v === 'any' ? 'any' : [...v].sort());
  return { actions: plain(s.actions), sources: plain(s.sources) };
}

describe('scopeOf', () => {
  test('actions by == , in and in [ … ]', () => {
    expect(scope('permit(principal, action == ThoughtGate::Action::"tools/call", resource);')).toEqual({ actions: ['tools/call'], sources: 'any' });
    expect(scope('permit(principal, action in ThoughtGate::Action::"tools/call", resource);')).toEqual({ actions: ['tools/call'], sources: 'any' });
    expect(scope('permit(principal, action in [ThoughtGate::Action::"tools/call", ThoughtGate::Action::"prompts/get"], resource);')).toEqual({
      actions: ['prompts/get', 'tools/call'],
      sources: 'any',
    });
  });

  test('sources by resource in Source, with or without is', () => {
    expect(scope('permit(principal, action, resource in ThoughtGate::Source::"bank");')).toEqual({ actions: 'any', sources: ['bank'] });
    expect(scope('permit(principal, action, resource is ThoughtGate::Tool in ThoughtGate::Source::"bank");')).toEqual({ actions: 'any', sources: ['bank'] });
  });

  test('an A2A agent: its id is the source', () => {
    expect(scope('permit(principal, action == ThoughtGate::Action::"SendMessage", resource == ThoughtGate::Agent::"billing");')).toEqual({
      actions: ['SendMessage'],
      sources: ['billing'],
    });
    expect(scope('permit(principal, action, resource in ThoughtGate::Agent::"billing");')).toEqual({ actions: 'any', sources: ['billing'] });
    expect(scope('permit(principal, action, resource is ThoughtGate::Agent);')).toEqual({ actions: 'any', sources: 'any' });
  });

  test('sources by the first segment of a resource id', () => {
    expect(scope('permit(principal, action, resource == ThoughtGate::Tool::"github/drop");')).toEqual({ actions: 'any', sources: ['github'] });
    expect(scope('permit(principal, action, resource in ThoughtGate::Resource::"fs/file:///a/b");')).toEqual({ actions: 'any', sources: ['fs'] });
    expect(scope('permit(principal, action, resource is ThoughtGate::Prompt in ThoughtGate::Prompt::"p/x");')).toEqual({ actions: 'any', sources: ['p'] });
    expect(scope('permit(principal, action, resource == ThoughtGate::Method::"s/completion/complete");')).toEqual({ actions: 'any', sources: ['s'] });
  });

  test('everything else is any', () => {
    for (const p of [
      'permit(principal, action, resource);',
      'permit(principal, action == Other::Action::"tools/call", resource == Other::Tool::"bank/x");',
      'permit(principal, action, resource == ThoughtGate::Source::"bank");',
      'permit(principal, action, resource == ThoughtGate::Tool::"no-slash");',
      'permit(principal, action, resource == ThoughtGate::Tool::"/x");',
      'permit(principal, action in [ThoughtGate::Action::"a", Other::Action::"b"], resource is ThoughtGate::Tool);',
      'permit(principal in ThoughtGate::Source::"bank", action, resource) when { resource in ThoughtGate::Source::"bank" };',
    ]) {
      expect(scope(p)).toEqual({ actions: 'any', sources: 'any' });
    }
  });
});

describe('partition', () => {
  const any: Scope = { actions: 'any', sources: 'any' };
  const p = (id: string, actions: string[] | 'any', sources: string[] | 'any') => ({
    id,
    scope: { actions: actions === 'any' ? actions : new Set(actions), sources: sources === 'any' ? sources : new Set(sources) },
  });

  test('each call gets exactly the policies whose scope can match', () => {
    const plan = partition([p('all', 'any', 'any'), p('call', ['tools/call'], 'any'), p('bank', 'any', ['bank']), p('call-bank', ['tools/call'], ['bank'])]);
    const ids = (m: string, s: string) => plan.subsets[plan.pick(m, s)];
    expect(ids('tools/call', 'bank')).toEqual(['all', 'call', 'bank', 'call-bank']);
    expect(ids('tools/call', 'github')).toEqual(['all', 'call']);
    expect(ids('prompts/get', 'bank')).toEqual(['all', 'bank']);
    expect(ids('prompts/get', 'github')).toEqual(['all']);
    expect(ids('resources/read', 'x')).toEqual(['all']);
    // identical groups are preparsed once
    expect(plan.subsets).toHaveLength(4);
  });

  test('sources split only where a policy names them', () => {
    const plan = partition(Array.from({ length: 10 }, (_, i) => p(`s${i}`, [`m${i}`], [`src${i}`])));
    expect(plan.subsets[plan.pick('m3', 'src3')]).toEqual(['s3']);
    expect(plan.subsets[plan.pick('m3', 'anything')]).toEqual([]);
    expect(plan.subsets).toHaveLength(11);
  });

  test('too many groups: split by method only, then not at all', () => {
    const methods = Array.from({ length: 6 }, (_, i) => p(`a${i}`, [`m${i}`], 'any'));
    const sources = Array.from({ length: 6 }, (_, i) => p(`b${i}`, 'any', [`src${i}`]));
    const all = [...methods, ...sources];
    expect(partition(all, 100).subsets).toHaveLength(49);
    expect(partition(all).subsets).toHaveLength(7); // the default cap is 32
    const byMethod = partition(all, 10);
    expect(byMethod.subsets).toHaveLength(7);
    expect(byMethod.subsets[byMethod.pick('m3', 'src0')]).toEqual(['a3', 'b0', 'b1', 'b2', 'b3', 'b4', 'b5']);
    const one = partition(all, 5);
    expect(one.subsets).toEqual([all.map((x) => x.id)]);
    expect(partition([{ id: 'a', scope: any }]).subsets).toEqual([['a']]);
  });

  test('an empty set is one empty group', () => {
    const plan = partition([]);
    expect(plan.subsets).toEqual([[]]);
    expect(plan.pick('tools/call', 'x')).toBe(0);
  });
});

describe('partitioning changes no decision (differential, real Cedar)', () => {
  const text = `
    @id("call-small") @approve("finance")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"bank")
      when { context.arguments has amount && context.arguments.amount < 1000 };
    @id("no-deletes") forbid(principal, action, resource) when { resource.name like "delete_*" };
    @id("bank-forbid") forbid(principal, action, resource is ThoughtGate::Tool in ThoughtGate::Source::"bank") when { context.arguments has force };
    @id("read") permit(principal, action in [ThoughtGate::Action::"resources/read", ThoughtGate::Action::"prompts/get"], resource);
    @id("gh") permit(principal, action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"github");
    @id("gh-err") forbid(principal, action, resource in ThoughtGate::Source::"github") when { context.arguments.dangerous };
    @id("exact") forbid(principal, action == ThoughtGate::Action::"tools/call", resource == ThoughtGate::Tool::"github/drop");
    @id("other-action") forbid(principal, action == ThoughtGate::Action::"completion/complete", resource);
    @id("ns") permit(principal in ThoughtGate::Namespace::"ops", action, resource);
  `;
  const partitioned = compile(text);
  const whole = compile(text, false);
  const identities: Identity[] = [
    { namespace: 'prod', serviceAccount: 'a', pod: 'p', labels: {} },
    { namespace: 'ops', serviceAccount: 'b', pod: 'q', labels: {} },
  ];
  const inputs: CedarInput[] = [];
  const targets: [string, CedarInput['target']][] = [
    ['tools/call', { kind: 'tool', name: 'transfer' }],
    ['tools/call', { kind: 'tool', name: 'delete_repo' }],
    ['tools/call', { kind: 'tool', name: 'drop' }],
    ['resources/read', { kind: 'resource', name: 'file:///x' }],
    ['prompts/get', { kind: 'prompt', name: 'p' }],
    ['completion/complete', { kind: 'method', name: 'completion/complete' }],
    ['unknown/method', { kind: 'method', name: 'unknown/method' }],
  ];
  for (const identity of identities) {
    for (const source of ['bank', 'github', 'other']) {
      for (const [method, target] of targets) {
        for (const args of [{}, { amount: 5 }, { amount: 5000, force: true }, { dangerous: false }, { dangerous: true }]) {
          inputs.push({ identity, method, source, target, arguments: args, now: new Date('2026-11-21T10:00:00Z') });
        }
      }
    }
  }

  test('the set is split', () => {
    expect(partitioned.sets.length).toBeGreaterThan(1);
    expect(whole.sets.map((s) => s.policies)).toEqual([whole.policies.map((p) => p.id)]);
  });

  test(`split and whole sets decide alike in all ${inputs.length} cases`, () => {
    expect(inputs.map((i) => evaluate(partitioned, i))).toEqual(inputs.map((i) => evaluate(whole, i)));
    const seen = new Set(inputs.map((i) => evaluate(partitioned, i).decision));
    expect([...seen].sort()).toEqual(['allow', 'deny', 'error']);
  });
});

describe('disposal', () => {
  test('disposing a compile empties every one of its preparsed sets', () => {
    const big = compilePolicies(
      'permit(principal, action == ThoughtGate::Action::"a", resource);\npermit(principal, action == ThoughtGate::Action::"b", resource);',
    );
    if (!big.ok) throw new Error(big.errors.join());
    const ids = big.policies.sets.map((s) => s.id);
    expect(ids.length).toBeGreaterThan(1);
    const ask = (id: string, action: string) => {
      const r = cedar.statefulIsAuthorized({
        principal: { type: 'ThoughtGate::Workload', id: 'x' },
        action: { type: 'ThoughtGate::Action', id: action },
        resource: { type: 'ThoughtGate::Tool', id: 'x' },
        context: {},
        entities: [],
        preparsedPolicySetId: id,
      });
      return r.type === 'success' ? r.response.decision : 'failure';
    };
    const all = () => ids.flatMap((id) => ['a', 'b'].map((action) => ask(id, action)));
    expect(all().filter((d) => d === 'allow')).toHaveLength(2);
    big.policies.dispose();
    expect(all().every((d) => d === 'deny')).toBe(true);
  });
});

import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Identity } from '../../api/config.js';
import { compilePolicies, type CompiledPolicies } from './policies.js';
import { buildRequest, evaluate, interpret, type CedarInput } from './evaluate.js';
import { project, type Need } from './projection.js';

function compile(text: string, options?: Parameters<typeof compilePolicies>[1]): CompiledPolicies {
  const c = compilePolicies(text, options);
  if (!c.ok) throw new Error(c.errors.join('\n'));
  return c.policies;
}

/** The need as plain data, for readable expectations. */
function shape(need: Need): unknown {
  if (need.whole) return 'whole';
  return Object.fromEntries([...need.children].map(([k, v]) => [k, shape(v)]));
}
const needOf = (condition: string) => shape(compile(`permit(principal, action, resource) when { ${condition} };`).needs.context);

describe('what policies observe', () => {
  test('attribute paths, by . and ["…"]', () => {
    expect(needOf('context.arguments.amount < 1000 && context.arguments["to"].iban == "x"')).toEqual({
      arguments: { amount: 'whole', to: { iban: 'whole' } },
    });
  });

  test('has keeps only the key; nested has paths too', () => {
    expect(needOf('context.arguments has memo')).toEqual({ arguments: { memo: {} } });
    expect(needOf('context has arguments.options.recursive')).toEqual({ arguments: { options: { recursive: {} } } });
  });

  test('any other use keeps the value whole', () => {
    expect(needOf('context.arguments.tags.contains("x")')).toEqual({ arguments: { tags: 'whole' } });
    expect(needOf('context.arguments == {}')).toEqual({ arguments: 'whole' });
    expect(needOf('context.time.toTime() < duration("1h")')).toEqual({ time: 'whole' });
  });

  test('context used on its own, or through an expression, is whole', () => {
    expect(needOf('context == {}')).toBe('whole');
    expect(needOf('(if true then context else context).arguments.x == 1')).toBe('whole');
    expect(needOf('[context].contains(context)')).toBe('whole');
    expect(needOf('{a: context}.a.arguments.x == 1')).toBe('whole');
  });

  test('unions across policies and clauses', () => {
    const c = compile(`
      permit(principal, action, resource) when { context.arguments has a } unless { context.source == "x" };
      forbid(principal, action, resource) when { context.arguments.a.b };
    `);
    expect(shape(c.needs.context)).toEqual({ arguments: { a: { b: 'whole' } }, source: 'whole' });
  });

  test('no policy looks at the context: it is sent empty', () => {
    expect(shape(compile('permit(principal, action, resource);').needs.context)).toEqual({});
  });
});

describe('what policies read of the entities', () => {
  const entityNeeds = (condition: string) => {
    const { principal, resource } = compile(`permit(principal, action, resource) when { ${condition} };`).needs;
    const plain = (s: Set<string> | 'all') => (s === 'all' ? 'all' : [...s].sort());
    return { principal: [plain(principal.attrs), plain(principal.tags)], resource: [plain(resource.attrs), plain(resource.tags)] };
  };

  test('attributes and literal tag names', () => {
    expect(
      entityNeeds('principal.namespace == "x" && principal has pod && principal.hasTag("team") && principal.getTag("env") == "p" && resource.name like "*"'),
    ).toEqual({
      principal: [
        ['namespace', 'pod'],
        ['env', 'team'],
      ],
      resource: [['name'], []],
    });
    expect(entityNeeds('principal["serviceAccount"] == "a" && resource has source.x')).toEqual({
      principal: [['serviceAccount'], []],
      resource: [['source'], []],
    });
  });

  test('scopes and equality need no attributes', () => {
    expect(entityNeeds('principal == ThoughtGate::Workload::"a/b" && principal in ThoughtGate::Namespace::"x" && resource is ThoughtGate::Tool')).toEqual({
      principal: [[], []],
      resource: [[], []],
    });
  });

  test('a computed tag name needs all tags', () => {
    expect(entityNeeds('principal.getTag(context.arguments.k) == "v"').principal).toEqual([[], 'all']);
  });

  test('entity data read any other way needs everything', () => {
    const all = { principal: ['all', 'all'], resource: ['all', 'all'] };
    expect(entityNeeds('ThoughtGate::Workload::"prod/a".namespace == "prod"')).toEqual(all);
    expect(entityNeeds('(if true then principal else resource).name == "x"')).toEqual(all);
    expect(entityNeeds('(if true then principal else resource).hasTag("x")')).toEqual(all);
    expect(entityNeeds('ThoughtGate::Workload::"prod/a" has pod')).toEqual(all);
  });
});

describe('project', () => {
  const need = compile('permit(principal, action, resource) when { context.arguments.a.b == 1 && context.arguments has c };').needs.context;

  test('keeps needed keys, drops the rest', () => {
    expect(project({ arguments: { a: { b: 1, z: 2 }, c: { big: [1, 2, 3] }, d: 4 }, time: 'x' }, need)).toEqual({ arguments: { a: { b: 1 }, c: {} } });
  });

  test('non-records stay whole so that type errors are unchanged', () => {
    const dec = { __extn: { fn: 'decimal', arg: '1.5' } };
    expect(project({ arguments: { a: dec } }, need)).toEqual({ arguments: { a: dec } });
    expect(project({ arguments: { a: [1, 2] } }, need)).toEqual({ arguments: { a: [1, 2] } });
    expect(project({ arguments: 'text' }, need)).toEqual({ arguments: 'text' });
  });
});

describe('projection changes no decision (differential, real Cedar)', () => {
  // Guards (`has`) keep most cases error-free; unguarded paths give the error cases.
  const text = `
    @id("small") @approve("finance")
    permit(principal, action, resource) when { context.arguments has amount && context.arguments.amount < 1000 };
    @id("fee") forbid(principal, action, resource) when { context.arguments has fee && context.arguments.fee.greaterThan(decimal("25.0")) };
    @id("rm") forbid(principal, action, resource) when { context has arguments.options.recursive && context.arguments.options.recursive };
    @id("to") forbid(principal, action, resource) when { context.arguments has to && context.arguments.to.iban like "RU*" };
    @id("tags") permit(principal, action, resource) when { context.arguments has tags && context.arguments.tags.containsAny(["ok"]) };
    @id("night") forbid(principal, action, resource) when { context.time.toTime() > duration("22h") };
    @id("whole") permit(principal, action, resource) when { context.method == "prompts/get" && context.arguments has to && context.arguments.to == {iban: "DE00"} };
    @id("team") permit(principal, action, resource) when { principal.hasTag("team") && principal.getTag("team") == "ml" };
    @id("pod") forbid(principal, action, resource) when { principal.pod like "debug-*" };
    @id("tool") permit(principal, action, resource) when { context.arguments has amount && resource.name == "refund" };
    @id("force") forbid(principal, action, resource) when { context.arguments has force };
    @id("env") forbid(principal, action, resource) when { principal.hasTag("env") && context.method == "prompts/get" };
  `;
  // The second set reads entity data through a literal uid, which needs all of it. Forced onto
  // wasm: the projected request is what the wasm path sends (the direct path reads no request).
  const sets = [
    compile(text, { engine: 'wasm' }),
    compile(
      `${text}\n@id("named") permit(principal, action, resource) when { context.arguments has via && ThoughtGate::Workload::"prod/a".serviceAccount == context.arguments.via };`,
      { engine: 'wasm' },
    ),
  ];
  const identities: Identity[] = [
    { namespace: 'prod', serviceAccount: 'a', pod: 'p', labels: {} },
    { namespace: 'prod', serviceAccount: 'a', pod: 'debug-1', labels: { team: 'ml', env: 'x' } },
  ];
  const argSets: unknown[] = [
    {},
    { amount: 5 },
    { amount: 5000 },
    { amount: 999.5 },
    { amount: '5' },
    { amount: 5, fee: 30.5 },
    { amount: 5, fee: 3 },
    { amount: 5, options: { recursive: true } },
    { amount: 5, options: { recursive: 'yes' } },
    { amount: 5, options: null, to: { iban: 'RU00' } },
    { amount: 5, to: { iban: 'DE00', extra: { deep: [1, 2.5, null] } } },
    { amount: 5, to: 'DE00' },
    { tags: ['ok', 'x'], amount: 5, junk: { a: { b: { c: 1.25 } } } },
    { tags: 'ok' },
    { amount: 5, to: { iban: 'DE00' }, options: [1], __entity: { type: 'X', id: 'y' } },
    { via: 'a' },
    { via: 'b' },
    { amount: 5, force: false },
  ];
  const inputs: CedarInput[] = [];
  for (const args of argSets) {
    for (const [method, hour, tool] of [
      ['tools/call', '10', 't'],
      ['tools/call', '23', 'refund'],
      ['prompts/get', '10', 't'],
    ] as const) {
      for (const identity of identities) {
        inputs.push({
          identity,
          method,
          source: 's',
          target: { kind: 'tool', name: tool },
          arguments: args,
          now: new Date(`2026-11-21T${hour}:00:00Z`),
        });
      }
    }
  }

  test('the first set sends less than everything', () => {
    expect(sets[0]!.needs.principal).toEqual({ attrs: new Set(['pod']), tags: new Set(['team', 'env']) });
    expect(sets[1]!.needs.principal).toEqual({ attrs: 'all', tags: 'all' });
  });

  test.each([0, 1])(`set %i: projected and full requests decide alike in all ${inputs.length} cases`, (i) => {
    const policies = sets[i]!;
    const full = inputs.map((input) => {
      const r = buildRequest(input);
      if (!r.ok) throw new Error(r.reason);
      return interpret(policies, cedar.statefulIsAuthorized({ ...r.request, preparsedPolicySetId: policies.setFor(input.method, input.source).id }), input);
    });
    expect(inputs.map((input) => evaluate(policies, input))).toEqual(full);
  });

  test('the cases cover allow, deny and error', () => {
    for (const policies of sets) {
      const seen = new Set(inputs.map((i) => evaluate(policies, i).decision));
      expect([...seen].sort()).toEqual(['allow', 'deny', 'error']);
    }
  });
});

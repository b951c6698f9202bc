// The direct evaluator against cedar-wasm, the oracle: generated policies of every modelled
// shape and generated calls must get the same decision, determining policies and approval channel.
import fc from 'fast-check';
import { compilePolicies, type CompiledPolicies } from '../policies.js';
import { evaluate, type CedarDecision, type CedarInput } from '../evaluate.js';
import { callInput, policyText } from './generate.js';

function both(text: string): { direct: CompiledPolicies; wasm: CompiledPolicies } | null {
  const direct = compilePolicies(text);
  const wasm = compilePolicies(text, { engine: 'wasm' });
  expect(direct.ok).toBe(wasm.ok);
  if (!direct.ok || !wasm.ok) return null;
  return { direct: direct.policies, wasm: wasm.policies };
}

const outcome = (d: CedarDecision) => ({ decision: d.decision, policies: d.policies, approveChannel: d.approveChannel });

const base: CedarInput = {
  identity: { namespace: 'prod', serviceAccount: 'agent', pod: 'agent-1', labels: { team: 'payments' } },
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool', name: 'transfer_funds' },
  arguments: { amount: 500, currency: 'EUR', fee: 1.25, to: { iban: 'x', tags: ['eu', 1] }, options: { recursive: true } },
  now: new Date('2026-11-21T10:00:00Z'),
};

/** Decides `inputs` both ways; returns the direct outcomes. */
function compare(text: string, inputs: readonly CedarInput[], { mustBeDirect = true, mayNotCompile = false } = {}): CedarDecision[] {
  const c = both(text);
  if (!c && mayNotCompile) return [];
  if (!c) throw new Error(`does not compile: ${text}`);
  try {
    if (mustBeDirect) expect(c.direct.needsWasmToEvaluate).toBe(false);
    expect(c.wasm.needsWasmToEvaluate).toBe(true);
    return inputs.map((input) => {
      const direct = evaluate(c.direct, input);
      expect({ text, input, ...outcome(direct) }).toEqual({ text, input, ...outcome(evaluate(c.wasm, input)) });
      return direct;
    });
  } finally {
    c.direct.dispose();
    c.wasm.dispose();
  }
}

describe('direct evaluation decides as cedar-wasm does', () => {
  test('generated policies and calls (property)', () => {
    const seen = { allow: 0, deny: 0, error: 0 };
    fc.assert(
      // Generated text Cedar refuses (e.g. `-!x`) is refused by both compiles alike and skipped.
      fc.property(policyText, fc.array(callInput, { minLength: 1, maxLength: 8 }), (text, inputs) => {
        for (const d of compare(text, inputs, { mayNotCompile: true })) seen[d.decision]++;
      }),
      { numRuns: Number(process.env["CEDAR_DIFF_RUNS"] ?? 300) },
    );
    // The generators reach every outcome, so the comparison above is not vacuous.
    expect(seen.allow).toBeGreaterThan(50);
    expect(seen.deny).toBeGreaterThan(50);
    expect(seen.error).toBeGreaterThan(50);
  });

  const cases: [string, Partial<CedarInput>[]][] = [
    // Short-circuit: the right side's error is never reached.
    ['false && context.arguments.missing', [{}]],
    ['true || context.arguments.missing', [{}]],
    ['context.arguments.missing || true', [{}]],
    ['1 && true', [{}]],
    ['true && 1', [{}]],
    // 64-bit longs.
    ['9007199254740991 * 1024 > 0', [{}]],
    ['9007199254740991 * 1024 * 1024 > 0', [{}]],
    ['-9007199254740991 * 1024 * 1024 < 0', [{}]],
    ['context.arguments.amount * 9007199254740991 > 0', [{ arguments: { amount: 1025 } }, { arguments: { amount: 1024 } }, { arguments: { amount: -1025 } }]],
    ['-(context.arguments.amount) < 0', [{ arguments: { amount: 2 ** 53 - 1 } }, { arguments: { amount: -5 } }, { arguments: { amount: 2 ** 60 } }]],
    // Longs, decimals and strings do not compare.
    ['context.arguments.amount < 1000', [{ arguments: { amount: 999.5 } }, { arguments: { amount: 1e30 } }, { arguments: { amount: '5' } }, { arguments: {} }, { arguments: null }]],
    ['context.arguments.fee.lessThan(decimal("1.2501"))', [{ arguments: { fee: 1.25 } }, { arguments: { fee: 1 } }, { arguments: { fee: 1.26 } }]],
    ['context.arguments.fee == decimal("1.2500")', [{ arguments: { fee: 1.25 } }, { arguments: { fee: 1.2500001 } }]],
    // like: * is the wildcard, \* a star.
    ['resource.name like "a\\*b"', [{ target: { kind: 'tool', name: 'a*b' } }, { target: { kind: 'tool', name: 'axb' } }]],
    ['resource.name like "a*b*c"', [{ target: { kind: 'tool', name: 'abc' } }, { target: { kind: 'tool', name: 'aXbYc' } }, { target: { kind: 'tool', name: 'acb' } }]],
    ['resource.name like "**"', [{ target: { kind: 'tool', name: '' } }]],
    ['context.arguments.to like "*@example.com"', [{ arguments: { to: 'a@example.com' } }, { arguments: { to: 'a@example.com.evil' } }, { arguments: { to: 5 } }]],
    // has, nested has, and what `has` may not look into.
    ['context has arguments.options.recursive', [{}, { arguments: { options: 5 } }, { arguments: { options: {} } }, { arguments: {} }]],
    ['principal has namespace.x', [{}]],
    ['ThoughtGate::Namespace::"prod" has x', [{}]],
    ['ThoughtGate::Namespace::"prod".x == 1', [{}]],
    ['action.x == 1', [{}]],
    ['ThoughtGate::Workload::"prod/agent".pod == "agent-1"', [{}]],
    // Tags.
    ['principal.getTag("team") == "payments"', [{}, { identity: { ...base.identity, labels: {} } }]],
    ['resource.hasTag("team")', [{}]],
    ['resource.getTag("team") == "x"', [{}]],
    ['ThoughtGate::Source::"bank".hasTag("x")', [{}]],
    // in over the two-level hierarchy.
    ['principal in ThoughtGate::Namespace::"prod"', [{}, { identity: { ...base.identity, namespace: 'staging' } }]],
    ['resource in [ThoughtGate::Source::"bank", 1]', [{}]],
    ['ThoughtGate::Source::"bank" in resource', [{}]],
    ['ThoughtGate::Namespace::"prod" in ThoughtGate::Namespace::"prod"', [{}]],
    ['action in ThoughtGate::Action::"tools/call"', [{}]],
    ['context.arguments.x in principal', [{ arguments: { x: 1 } }]],
    // Sets are sets.
    ['context.arguments.tags == [1, "a"]', [{ arguments: { tags: ['a', 1, 1, null] } }, { arguments: { tags: ['a'] } }]],
    ['context.arguments.tags.containsAll([1, 1])', [{ arguments: { tags: [1] } }, { arguments: { tags: [] } }]],
    ['context.arguments.tags.containsAny([])', [{ arguments: { tags: [1] } }]],
    ['context.arguments.tags.isEmpty()', [{ arguments: { tags: [null] } }, { arguments: { tags: 'x' } }]],
    ['[{a: 1}, {a: 1}] == [{a: 1}]', [{}]],
    ['context.arguments == {}', [{ arguments: {} }, { arguments: null }, { arguments: { a: null } }, { arguments: [] }]],
    // Arguments Cedar's JSON treats specially.
    ['context.arguments["___entity"].id == "ops/ops-agent"', [{ arguments: { __entity: { type: 'ThoughtGate::Workload', id: 'ops/ops-agent' } } }]],
    ['context.arguments has __entity', [{ arguments: { __entity: 1 } }]],
    // Time.
    ['context.time.toTime() < duration("6h")', [{ now: new Date('2026-11-21T05:59:59.999Z') }, { now: new Date('2026-11-21T06:00:00Z') }]],
    ['context.time.toDate() == datetime("1969-12-31")', [{ now: new Date('1969-12-31T10:00:00Z') }]],
    ['context.time > datetime("2026-11-21T11:30:00.500+0130")', [{ now: new Date('2026-11-21T10:00:00.501Z') }, { now: new Date('2026-11-21T10:00:00.500Z') }]],
    ['context.time.durationSince(datetime("2026-11-21")).toHours() == 10', [{}]],
    ['duration("-1d1h").toDays() == -1 && duration("-1d1h").toHours() == -25', [{}]],
    ['context.time < 5', [{}]],
    ['5 < context.time', [{}]],
    // if-then-else.
    ['if context.arguments has amount then context.arguments.amount > 1 else false', [{}, { arguments: {} }]],
    ['if context.arguments.amount then true else true', [{}]],
  ];

  test.each(cases)('%s', (condition, overrides) => {
    compare(
      `@id("p") permit(principal, action, resource) when { ${condition} };`,
      overrides.map((o) => ({ ...base, ...o })),
    );
  });

  test('an error in a forbid and in a permit: both listed, in text order', () => {
    const [d] = compare(
      `@id("b") forbid(principal, action, resource) when { context.arguments.y };
       @id("a") permit(principal, action, resource) when { context.arguments.x };
       @id("ok") permit(principal, action, resource);`,
      [{ ...base, arguments: {} }],
    );
    expect(d).toMatchObject({ decision: 'error', policies: ['b', 'a'] });
  });

  test('the first @approve of the determining permits, in text order', () => {
    const [d] = compare(
      `@id("x") permit(principal, action, resource);
       @id("y") @approve("second") permit(principal, action, resource);
       @id("z") @approve("third") permit(principal, action, resource);`,
      [base],
    );
    expect(d).toMatchObject({ decision: 'allow', policies: ['x', 'y', 'z'], approveChannel: 'second' });
  });
});

describe('what stays on wasm', () => {
  test.each([
    ['an ip address', 'ip("10.0.0.1").isLoopback()'],
    ['a long the JSON form cannot carry exactly', 'context.arguments.amount < 9007199254740993'],
    ['an extension constructor of a computed string', 'decimal(context.arguments.x).lessThan(decimal("1.0"))'],
  ])('%s: the set that holds it is decided by wasm, alike', (_what, condition) => {
    const text = `@id("p") permit(principal, action, resource) when { ${condition} };
      @id("q") permit(principal, action, resource in ThoughtGate::Source::"github");`;
    const c = both(text)!;
    try {
      expect(c.direct.needsWasmToEvaluate).toBe(true);
      expect(c.direct.sets.map((s) => s.direct !== null)).toContain(false);
    } finally {
      c.direct.dispose();
      c.wasm.dispose();
    }
    compare(text, [base, { ...base, arguments: { amount: 9007199254740992, x: '0.5' } }, { ...base, source: 'github' }], { mustBeDirect: false });
  });

  test('a request the direct model cannot represent exactly is decided by wasm', () => {
    const text = '@id("p") permit(principal, action, resource) when { resource.name like "a*" && context.time > datetime("2026-01-01") };';
    compare(text, [
      { ...base, target: { kind: 'tool', name: 'a\ud800' } },
      { ...base, now: new Date('+010000-01-01T00:00:00Z') },
      { ...base, now: new Date(NaN) },
    ]);
  });
});

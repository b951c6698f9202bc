// The direct evaluator against cedar-wasm, the oracle: generated policies of every modelled
// shape and generated calls must get the same decision, determining policies, approval channel and
// reason (error messages included).
import { jest } from '@jest/globals';
import fc from 'fast-check';
import { cedarEngine } from '../engine.js';
import { normaliseArguments, type CedarJson } from '../normalise.js';
import { compilePolicies, compilePoliciesFromJson, type CompiledPolicies } from '../policies.js';
import { evaluate, type CedarDecision, type CedarInput } from '../evaluate.js';
import { directRequest } from './decide.js';

// ---- generators: Cedar text of the modelled shapes, calls with hostile arguments ----

const KEYS = ['amount', 'currency', 'to', 'options', 'recursive', 'tags', 'fee', 'a b', 'x*y', '___entity'];
const NAMES = ['transfer_funds', 'get_issue', 'delete_all', 'a*b', '\\*', '', 'x"y', 'file:///docs/a.md', 'ünï', "a\u0001\n'b"];
const STRINGS = ['EUR', 'USD', 'staging', 'payments', 'ml', 'a*b', '*', '\\', 'transfer_funds', '', 'prod', 'x"y', 'ünï'];

/** A Cedar string literal (printable text: JSON's escapes are Cedar's). */
const str = (s: string) => JSON.stringify(s);

/** `like` patterns: `*` wildcards and escaped `\*` literals. */
const pattern = fc
  .array(fc.oneof(fc.constant('*'), fc.constant('\\*'), fc.constantFrom('a', 'b', '_', 'x', '"', '\\\\', 'transfer', 'ü')), { maxLength: 5 })
  .map((parts) => `"${parts.map((p) => (p === '"' ? '\\"' : p)).join('')}"`);

const attr = (k: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `[${str(k)}]`);
const hasPath = fc.array(fc.constantFrom('amount', 'options', 'recursive', 'to', 'x'), { minLength: 1, maxLength: 3 }).map((p) => p.join('.'));

const longLiteral = fc.oneof(fc.integer({ min: -5, max: 2000 }), fc.constantFrom(0, 1, -1, 1000, 100000, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 52));

const entityLiteral = fc.constantFrom(
  'ThoughtGate::Namespace::"prod"',
  'ThoughtGate::Source::"bank"',
  'ThoughtGate::Workload::"prod/agent"',
  'ThoughtGate::Tool::"bank/transfer_funds"',
  'ThoughtGate::Action::"tools/call"',
  'ThoughtGate::Agent::"bank"',
);

/** Leaves: request parts and literals of every type. */
const leaf: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('context.arguments', 'context', 'principal', 'resource', 'action', 'context.source', 'context.method', 'context.time'),
  // A2A calls' context (issue 13).
  fc.constantFrom(
    'context.skill',
    'context.metadata',
    'context.partKinds',
    'context.totalBytes',
    'context.text',
    'context.protocol',
    'context.parts',
    'context.urlHosts',
  ),
  fc.constantFrom(...KEYS).map((k) => `context.metadata${attr(k)}`),
  fc.constantFrom(...KEYS).map((k) => `context.arguments${attr(k)}`),
  fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(...KEYS)).map(([a, b]) => `context.arguments${attr(a)}${attr(b)}`),
  fc.constantFrom(
    'resource.name',
    'resource.source',
    'principal.namespace',
    'principal.serviceAccount',
    'principal.pod',
    'principal.getTag("team")',
    'principal.getTag("env")',
  ),
  longLiteral.map(String),
  fc.constantFrom(...STRINGS).map(str),
  fc.boolean().map(String),
  entityLiteral,
  fc.constantFrom('decimal("1.5")', 'decimal("-0.0001")', 'decimal("25.00")', 'duration("6h")', 'duration("-1d2h")', 'duration("90m")'),
  fc.constantFrom('datetime("2026-11-21")', 'datetime("2026-11-21T10:00:00Z")', 'datetime("2026-11-21T11:30:00.500+0130")', 'datetime("1969-12-31")'),
);

/** Any expression; mostly well typed where it matters (a bool at the top), often not below. */
const { expr } = fc.letrec<{ expr: string; bool: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    tie('bool'),
    fc.tuple(tie('expr'), fc.constantFrom('+', '-', '*'), tie('expr')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie('expr').map((a) => `(-${a})`),
    fc.array(tie('expr'), { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
    fc.tuple(tie('expr'), tie('expr')).map(([a, b]) => `{a: ${a}, "b c": ${b}}`),
    fc.tuple(tie('expr'), fc.constantFrom('a', 'amount', 'b c')).map(([r, k]) => `${r}${attr(k)}`),
    fc.tuple(tie('bool'), tie('expr'), tie('expr')).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
    fc.tuple(tie('expr'), fc.constantFrom('toTime', 'toDate', 'toDays', 'toHours', 'toMinutes', 'toSeconds', 'toMilliseconds')).map(([a, m]) => `${a}.${m}()`),
    fc.tuple(tie('expr'), fc.constantFrom('offset', 'durationSince'), tie('expr')).map(([a, m, b]) => `${a}.${m}(${b})`),
  ),
  bool: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean().map(String),
    fc.tuple(tie('expr'), fc.constantFrom('==', '!=', '<', '<=', '>', '>='), tie('expr')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(tie('bool'), fc.constantFrom('&&', '||'), tie('bool')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie('expr').map((a) => `!(${a})`),
    fc.tuple(tie('expr'), hasPath).map(([a, p]) => `(${a} has ${p})`),
    fc.tuple(tie('expr'), fc.constantFrom(...KEYS)).map(([a, k]) => `(${a} has ${str(k)})`),
    fc.tuple(tie('expr'), pattern).map(([a, p]) => `(${a} like ${p})`),
    fc.tuple(tie('expr'), fc.constantFrom('contains', 'containsAll', 'containsAny'), tie('expr')).map(([a, m, b]) => `${a}.${m}(${b})`),
    tie('expr').map((a) => `${a}.isEmpty()`),
    fc
      .tuple(fc.constantFrom('principal', 'resource', 'context.arguments'), fc.constantFrom('team', 'env', 'app.kubernetes.io/name'))
      .map(([e, t]) => `${e}.hasTag(${str(t)})`),
    fc
      .tuple(
        tie('expr'),
        fc.oneof(
          entityLiteral,
          tie('expr'),
          fc.array(entityLiteral, { maxLength: 2 }).map((xs) => `[${xs.join(', ')}]`),
        ),
      )
      .map(([a, b]) => `(${a} in ${b})`),
    fc
      .tuple(tie('expr'), fc.constantFrom('ThoughtGate::Tool', 'ThoughtGate::Workload', 'ThoughtGate::Source'), fc.option(entityLiteral, { nil: undefined }))
      .map(([a, t, i]) => `(${a} is ${t}${i ? ` in ${i}` : ''})`),
    fc
      .tuple(tie('expr'), fc.constantFrom('lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'), tie('expr'))
      .map(([a, m, b]) => `${a}.${m}(${b})`),
  ),
}));

/** Realistic conditions too, so that many calls are allowed or denied rather than errors. */
const typical = fc.oneof(
  fc.tuple(fc.constantFrom('<', '<=', '>', '>=', '=='), longLiteral).map(([op, n]) => `context.arguments has amount && context.arguments.amount ${op} ${n}`),
  pattern.map((p) => `resource.name like ${p}`),
  fc.constantFrom(...STRINGS).map((s) => `principal.hasTag("team") && principal.getTag("team") == ${str(s)}`),
  fc
    .constantFrom(...STRINGS)
    .map((s) => `context.arguments has currency && ["EUR", "USD"].contains(context.arguments.currency) || context.source == ${str(s)}`),
  fc.constant('context.arguments has fee && context.arguments.fee.greaterThan(decimal("1.00"))'),
  fc.constant('context.time.toTime() < duration("6h") || context.time.toTime() > duration("22h")'),
  fc.constant('context has arguments.options.recursive && context.arguments.options.recursive'),
  fc.constant('context.arguments has tags && context.arguments.tags.containsAny(["eu", 1, true])'),
  fc.constantFrom(...STRINGS).map((s) => `context has skill && context.skill == ${str(s)}`),
  fc
    .tuple(fc.constantFrom('<', '>='), longLiteral)
    .map(([op, n]) => `context has metadata && context.metadata has amount && context.metadata.amount ${op} ${n}`),
  fc.constant('context has partKinds && context.partKinds.contains("url")'),
  pattern.map((p) => `context.text like ${p}`),
  fc.constant('context has totalBytes && context.totalBytes > 10'),
);

const scopePrincipal = fc.constantFrom(
  'principal',
  'principal',
  'principal',
  'principal in ThoughtGate::Namespace::"prod"',
  'principal == ThoughtGate::Workload::"prod/agent"',
  'principal is ThoughtGate::Workload',
  'principal is ThoughtGate::Workload in ThoughtGate::Namespace::"staging"',
);
const scopeAction = fc.constantFrom(
  'action',
  'action',
  'action',
  'action == ThoughtGate::Action::"tools/call"',
  'action in [ThoughtGate::Action::"tools/call", ThoughtGate::Action::"resources/read"]',
  'action in ThoughtGate::Action::"prompts/get"',
  'action == ThoughtGate::Action::"SendMessage"',
);
const scopeResource = fc.constantFrom(
  'resource',
  'resource',
  'resource',
  'resource in ThoughtGate::Source::"bank"',
  'resource == ThoughtGate::Tool::"bank/transfer_funds"',
  'resource is ThoughtGate::Tool',
  'resource is ThoughtGate::Tool in ThoughtGate::Source::"github"',
  'resource in ThoughtGate::Tool::"bank/transfer_funds"',
  'resource == ThoughtGate::Agent::"bank"',
  'resource is ThoughtGate::Agent',
);

const policy = fc
  .record({
    effect: fc.constantFrom('permit', 'permit', 'forbid'),
    approve: fc.boolean(),
    principal: scopePrincipal,
    action: scopeAction,
    resource: scopeResource,
    conditions: fc.array(
      fc.tuple(fc.constantFrom('when', 'unless'), fc.oneof({ arbitrary: typical, weight: 3 }, { arbitrary: expr.filter((e) => e.length < 400), weight: 2 })),
      {
        maxLength: 2,
      },
    ),
  })
  .map((p) => ({ ...p, approve: p.approve && p.effect === 'permit' }));

/** A policy set's text: 1–5 policies, ids p0…, some permits with @approve. */
const policyText = fc
  .array(policy, { minLength: 1, maxLength: 5 })
  .map((ps) =>
    ps
      .map(
        (p, i) =>
          `@id("p${i}")${p.approve ? ` @approve("ch${i}")` : ''}\n${p.effect}(${p.principal}, ${p.action}, ${p.resource})${p.conditions
            .map(([k, c]) => `\n  ${k} { ${c} }`)
            .join('')};`,
      )
      .join('\n'),
  );

/** Argument values: every JSON type, numbers Cedar cannot hold, keys Cedar treats specially, nulls. */
const argValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.integer({ min: -10, max: 200_000 }),
    fc.constantFrom(0, -0, 999, 1000, 100_000, 2 ** 53 - 1, 2 ** 53, 2 ** 63, -(2 ** 64), 1e21, 1.5, 25.0001, 0.1, 1e-7, 1.23456, 999.5, NaN, Infinity),
    fc.double({ noNaN: false }),
    fc.constantFrom(...STRINGS, ...NAMES, 'eu', 'supplier'),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...KEYS, '__entity', '__extn', 'a', 'b c'), tie('v'), { maxKeys: 4 }),
  ),
})).v;

const mcpInput: fc.Arbitrary<CedarInput> = fc.record({
  identity: fc.record({
    namespace: fc.constantFrom('prod', 'staging'),
    serviceAccount: fc.constantFrom('agent', 'ops-agent'),
    pod: fc.constantFrom('agent-1', 'p'),
    labels: fc.dictionary(fc.constantFrom('team', 'env', 'app.kubernetes.io/name'), fc.constantFrom(...STRINGS), { maxKeys: 3 }),
  }),
  method: fc.constantFrom('tools/call', 'resources/read', 'prompts/get', 'completion/complete'),
  source: fc.constantFrom('bank', 'github', 'fs'),
  target: fc.record({ kind: fc.constantFrom('tool', 'resource', 'prompt', 'method'), name: fc.constantFrom(...NAMES) }),
  arguments: fc.oneof(fc.dictionary(fc.constantFrom(...KEYS, '__entity', 'a'), argValue, { maxKeys: 6 }), fc.constant(undefined), fc.constant(null), argValue),
  now: fc.oneof(
    fc.constantFrom(new Date('2026-11-21T10:00:00Z'), new Date('2026-11-21T05:59:59.999Z'), new Date('2026-11-21T23:00:00Z')),
    fc.date({ min: new Date('1960-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
  ),
});

/** A2A calls: the agent as resource, metadata as arguments, the facts describeA2a gives (text sometimes). */
const a2aInput: fc.Arbitrary<CedarInput> = fc
  .record({
    base: mcpInput,
    method: fc.constantFrom('SendMessage', 'GetTask', 'CancelTask'),
    skill: fc.constantFrom(...STRINGS, ...NAMES),
    parts: fc.array(
      fc.record({
        kind: fc.constantFrom('text', 'url', 'raw', 'data'),
        mediaType: fc.constantFrom('', 'application/pdf'),
        bytes: fc.nat(5000),
        host: fc.constantFrom('', 'a.example', '169.254.169.254'),
      }),
      { maxLength: 3 },
    ),
    text: fc.option(fc.constantFrom(...STRINGS, ...NAMES, 'please refund'), { nil: undefined }),
  })
  .map(({ base, method, skill, parts, text }) => ({
    ...base,
    method,
    target: { kind: 'agent' as const, name: base.source },
    a2a: {
      version: '1.0',
      binding: 'jsonrpc',
      skill,
      parts,
      partKinds: [...new Set(parts.map((p) => p.kind))],
      urlHosts: parts.flatMap((p) => (p.host ? [p.host] : [])),
      partCount: parts.length,
      totalBytes: parts.reduce((n, p) => n + p.bytes, 0),
      taskId: '',
      contextId: 'c',
      referenceTaskIds: [],
      pushUrl: '',
      pushAuth: false,
      tenant: '',
      ...(text !== undefined ? { text } : {}),
    },
  }));

const callInput: fc.Arbitrary<CedarInput> = fc.oneof({ arbitrary: mcpInput, weight: 3 }, { arbitrary: a2aInput, weight: 1 });

// ---- comparison ----

function both(text: string): { direct: CompiledPolicies; wasm: CompiledPolicies } | null {
  const direct = compilePolicies(text);
  const wasm = compilePolicies(text, { engine: 'wasm' });
  expect(direct.ok).toBe(wasm.ok);
  if (!direct.ok || !wasm.ok) return null;
  return { direct: direct.policies, wasm: wasm.policies };
}

const base: CedarInput = {
  identity: { namespace: 'prod', serviceAccount: 'agent', pod: 'agent-1', labels: { team: 'payments' } },
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool', name: 'transfer_funds' },
  arguments: { amount: 500, currency: 'EUR', fee: 1.25, to: { iban: 'x', tags: ['eu', 1] }, options: { recursive: true } },
  now: new Date('2026-11-21T10:00:00Z'),
};

/**
 * How many calls into wasm a direct set may make for `input`: none for every request the direct
 * model represents, and none for calls refused before any engine runs; one for the rest (text that
 * is not valid Unicode, …), which the direct path hands to wasm.
 */
function wasmCallsAllowed(input: CedarInput): number {
  const args = normaliseArguments(input.arguments);
  const a2a = input.a2a === undefined ? null : normaliseArguments(input.a2a);
  if (!args.ok || (a2a && !a2a.ok) || Number.isNaN(input.now.getTime()) || input.source === '' || input.source.includes('/')) return 0;
  const facts = a2a?.ok ? (a2a.value as { [key: string]: CedarJson }) : null;
  return directRequest(input, args.value, input.now.toISOString(), facts) === null ? 1 : 0;
}

/** Decides `inputs` both ways; returns the direct outcomes. */
function compare(text: string, inputs: readonly CedarInput[], { mustBeDirect = true, mayNotCompile = false } = {}): CedarDecision[] {
  const c = both(text);
  if (!c && mayNotCompile) return [];
  if (!c) throw new Error(`does not compile: ${text}`);
  // Counts the direct compile's calls into wasm: a direct set that handed every request to wasm
  // would otherwise compare wasm with wasm.
  const wasmCalls = jest.spyOn(cedarEngine(), 'statefulIsAuthorized');
  try {
    if (mustBeDirect) expect(c.direct.needsWasmToEvaluate).toBe(false);
    expect(c.wasm.needsWasmToEvaluate).toBe(true);
    return inputs.map((input) => {
      wasmCalls.mockClear();
      const direct = evaluate(c.direct, input);
      if (mustBeDirect) expect({ text, input, wasmCalls: wasmCalls.mock.calls.length }).toEqual({ text, input, wasmCalls: wasmCallsAllowed(input) });
      // The reason too: error messages are worded as Cedar words them.
      expect({ text, input, ...direct }).toEqual({ text, input, ...evaluate(c.wasm, input) });
      return direct;
    });
  } finally {
    wasmCalls.mockRestore();
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
      { numRuns: Number(process.env['CEDAR_DIFF_RUNS'] ?? 300) },
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
    [
      'context.arguments.amount < 1000',
      [{ arguments: { amount: 999.5 } }, { arguments: { amount: 1e30 } }, { arguments: { amount: '5' } }, { arguments: {} }, { arguments: null }],
    ],
    ['context.arguments.fee.lessThan(decimal("1.2501"))', [{ arguments: { fee: 1.25 } }, { arguments: { fee: 1 } }, { arguments: { fee: 1.26 } }]],
    ['context.arguments.fee == decimal("1.2500")', [{ arguments: { fee: 1.25 } }, { arguments: { fee: 1.2500001 } }]],
    // like: * is the wildcard, \* a star.
    ['resource.name like "a\\*b"', [{ target: { kind: 'tool', name: 'a*b' } }, { target: { kind: 'tool', name: 'axb' } }]],
    [
      'resource.name like "a*b*c"',
      [{ target: { kind: 'tool', name: 'abc' } }, { target: { kind: 'tool', name: 'aXbYc' } }, { target: { kind: 'tool', name: 'acb' } }],
    ],
    ['resource.name like "**"', [{ target: { kind: 'tool', name: '' } }]],
    [
      'context.arguments.to like "*@example.com"',
      [{ arguments: { to: 'a@example.com' } }, { arguments: { to: 'a@example.com.evil' } }, { arguments: { to: 5 } }],
    ],
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
    // An entity id in a message is escaped as Rust's escape_debug escapes it.
    [
      'resource.getTag("x") == 1',
      ['a\u0001b', 'a\nb\t\r\0', `it's "q" \\`, 'x\u007f\u0085y', 'nb\u00a0sp', 'zw\u200bsp', 'pua\ue000', 'mid\u0301', 'ünï'].map((name) => ({
        target: { kind: 'tool' as const, name },
      })),
    ],
    ['principal.getTag("x") == 1', [{ identity: { ...base.identity, namespace: '\u0301lead' } }, { identity: { ...base.identity, namespace: ' \u0301' } }]],
    // in over the two-level hierarchy.
    ['principal in ThoughtGate::Namespace::"prod"', [{}, { identity: { ...base.identity, namespace: 'staging' } }]],
    ['resource in [ThoughtGate::Source::"bank", 1]', [{}]],
    // The element reported is the first non-entity of Cedar's sorted set, not of the text.
    ['principal in ["a", 1]', [{}]],
    ['principal in [1, true]', [{}]],
    ['principal in [{a: 1}, [1], ThoughtGate::Source::"bank"]', [{}]],
    ['principal in [duration("1h"), decimal("1.0"), {a: 1}]', [{}]],
    ['principal in [duration("1h"), datetime("2026-01-01"), decimal("1.0")]', [{}]],
    ['principal in context.arguments.tags', [{ arguments: { tags: [{ a: 1 }, 'x', 2] } }, { arguments: { tags: [[1], { a: 1 }] } }]],
    ['principal is ThoughtGate::Workload in ["a", 1]', [{}]],
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
    // Record fields are evaluated in key order (UTF-8 bytes), not in text order.
    ['{b: 1 + true, a: context.arguments.missing} == {}', [{}]],
    ['{"2": 1 + true, "10": context.arguments.missing} == {}', [{}]],
    ['{"\uFB01": 1 + true, "\u{1F600}": context.arguments.missing, z: -true} == {}', [{}]],
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

  test('an entity id with a character this runtime does not know: wasm words the message', () => {
    compare(
      '@id("p") permit(principal, action, resource) when { resource.getTag("x") == 1 };',
      [{ ...base, target: { kind: 'tool', name: 'un\u0378assigned' } }],
      {
        mustBeDirect: false,
      },
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

describe("built from the operator's parsed form, as built from the text", () => {
  /** Requests the direct model cannot represent: a JSON-built compile compiles its text in wasm for them. */
  const fallback = (input: CedarInput): CedarInput[] => [
    { ...input, target: { ...input.target, name: `${input.target.name}\ud800` } },
    { ...input, now: new Date('+010000-01-01T00:00:00Z') },
  ];

  test('generated policies and calls, fallback requests included (property)', () => {
    let fromJson = 0;
    fc.assert(
      fc.property(policyText, fc.array(callInput, { minLength: 1, maxLength: 6 }), (text, inputs) => {
        const rendered = compilePolicies(text, { keepParsed: true });
        if (!rendered.ok) return;
        rendered.policies.dispose();
        const json = compilePoliciesFromJson(text, rendered.policies.parsed);
        const wasm = compilePolicies(text);
        if (!json.ok || !wasm.ok) throw new Error(`compiles one way only: ${text}`);
        try {
          expect(json.policies.from).toBe(wasm.policies.needsWasmToEvaluate ? 'wasm' : 'json');
          if (json.policies.from === 'json') fromJson++;
          expect(json.policies.policies).toEqual(wasm.policies.policies);
          for (const input of inputs.flatMap((i) => [i, ...fallback(i)])) {
            expect({ text, input, ...evaluate(json.policies, input) }).toEqual({ text, input, ...evaluate(wasm.policies, input) });
          }
        } finally {
          json.policies.dispose();
          wasm.policies.dispose();
        }
      }),
      { numRuns: Number(process.env['CEDAR_DIFF_RUNS'] ?? 150) },
    );
    // Most generated sets are of modelled shapes: the JSON path is what is compared.
    expect(fromJson).toBeGreaterThan(50);
  });
});

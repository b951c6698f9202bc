/**
 * Generators for the differential tests: Cedar policy text of the shapes the direct evaluator
 * models, and calls with hostile arguments. Test-only (imported by *.test.ts files).
 */
import fc from 'fast-check';
import type { CedarInput } from '../evaluate.js';

const KEYS = ['amount', 'currency', 'to', 'options', 'recursive', 'tags', 'fee', 'a b', 'x*y', '___entity'];
const NAMES = ['transfer_funds', 'get_issue', 'delete_all', 'a*b', '\\*', '', 'x"y', 'file:///docs/a.md', 'ünï'];
const STRINGS = ['EUR', 'USD', 'staging', 'payments', 'ml', 'a*b', '*', '\\', 'transfer_funds', '', 'prod', 'x"y', 'ünï'];

/** A Cedar string literal (printable text: JSON's escapes are Cedar's). */
const str = (s: string) => JSON.stringify(s);

/** `like` patterns: `*` wildcards and escaped `\*` literals. */
const pattern = fc
  .array(fc.oneof(fc.constant('*'), fc.constant('\\*'), fc.constantFrom('a', 'b', '_', 'x', '"', '\\\\', 'transfer', 'ü')), { maxLength: 5 })
  .map((parts) => `"${parts.map((p) => (p === '"' ? '\\"' : p)).join('')}"`);

const attr = (k: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `[${str(k)}]`);
const hasPath = fc.array(fc.constantFrom('amount', 'options', 'recursive', 'to', 'x'), { minLength: 1, maxLength: 3 }).map((p) => p.join('.'));

const longLiteral = fc.oneof(
  fc.integer({ min: -5, max: 2000 }),
  fc.constantFrom(0, 1, -1, 1000, 100000, 2 ** 53 - 1, -(2 ** 53 - 1), 4611686018427387904 / 2 ** 10),
);

const entityLiteral = fc.constantFrom(
  'ThoughtGate::Namespace::"prod"',
  'ThoughtGate::Source::"bank"',
  'ThoughtGate::Workload::"prod/agent"',
  'ThoughtGate::Tool::"bank/transfer_funds"',
  'ThoughtGate::Action::"tools/call"',
);

/** Leaves: request parts and literals of every type. */
const leaf: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('context.arguments', 'context', 'principal', 'resource', 'action', 'context.source', 'context.method', 'context.time'),
  fc.constantFrom(...KEYS).map((k) => `context.arguments${attr(k)}`),
  fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(...KEYS)).map(([a, b]) => `context.arguments${attr(a)}${attr(b)}`),
  fc.constantFrom('resource.name', 'resource.source', 'principal.namespace', 'principal.serviceAccount', 'principal.pod', 'principal.getTag("team")', 'principal.getTag("env")'),
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
    fc.tuple(fc.constantFrom('principal', 'resource', 'context.arguments'), fc.constantFrom('team', 'env', 'app.kubernetes.io/name')).map(([e, t]) => `${e}.hasTag(${str(t)})`),
    fc.tuple(tie('expr'), fc.oneof(entityLiteral, tie('expr'), fc.array(entityLiteral, { maxLength: 2 }).map((xs) => `[${xs.join(', ')}]`))).map(([a, b]) => `(${a} in ${b})`),
    fc.tuple(tie('expr'), fc.constantFrom('ThoughtGate::Tool', 'ThoughtGate::Workload', 'ThoughtGate::Source'), fc.option(entityLiteral, { nil: undefined })).map(
      ([a, t, i]) => `(${a} is ${t}${i ? ` in ${i}` : ''})`,
    ),
    fc.tuple(tie('expr'), fc.constantFrom('lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'), tie('expr')).map(([a, m, b]) => `${a}.${m}(${b})`),
  ),
}));

/** Realistic conditions too, so that many calls are allowed or denied rather than errors. */
const typical = fc.oneof(
  fc.tuple(fc.constantFrom('<', '<=', '>', '>=', '=='), longLiteral).map(([op, n]) => `context.arguments has amount && context.arguments.amount ${op} ${n}`),
  pattern.map((p) => `resource.name like ${p}`),
  fc.constantFrom(...STRINGS).map((s) => `principal.hasTag("team") && principal.getTag("team") == ${str(s)}`),
  fc.constantFrom(...STRINGS).map((s) => `context.arguments has currency && ["EUR", "USD"].contains(context.arguments.currency) || context.source == ${str(s)}`),
  fc.constant('context.arguments has fee && context.arguments.fee.greaterThan(decimal("1.00"))'),
  fc.constant('context.time.toTime() < duration("6h") || context.time.toTime() > duration("22h")'),
  fc.constant('context has arguments.options.recursive && context.arguments.options.recursive'),
  fc.constant('context.arguments has tags && context.arguments.tags.containsAny(["eu", 1, true])'),
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
);

const policy = fc
  .record({
    effect: fc.constantFrom('permit', 'permit', 'forbid'),
    approve: fc.boolean(),
    principal: scopePrincipal,
    action: scopeAction,
    resource: scopeResource,
    conditions: fc.array(fc.tuple(fc.constantFrom('when', 'unless'), fc.oneof({ arbitrary: typical, weight: 3 }, { arbitrary: expr.filter((e) => e.length < 400), weight: 2 })), {
      maxLength: 2,
    }),
  })
  .map((p) => ({ ...p, approve: p.approve && p.effect === 'permit' }));

/** A policy set's text: 1–5 policies, ids p0…, some permits with @approve. */
export const policyText = fc.array(policy, { minLength: 1, maxLength: 5 }).map((ps) =>
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

export const callInput: fc.Arbitrary<CedarInput> = fc.record({
  identity: fc.record({
    namespace: fc.constantFrom('prod', 'staging'),
    serviceAccount: fc.constantFrom('agent', 'ops-agent'),
    pod: fc.constantFrom('agent-1', 'p'),
    labels: fc.dictionary(fc.constantFrom('team', 'env', 'app.kubernetes.io/name'), fc.constantFrom(...STRINGS), { maxKeys: 3 }),
  }),
  method: fc.constantFrom('tools/call', 'resources/read', 'prompts/get', 'completion/complete'),
  source: fc.constantFrom('bank', 'github', 'fs'),
  target: fc.record({ kind: fc.constantFrom('tool', 'resource', 'prompt', 'method'), name: fc.constantFrom(...NAMES) }),
  arguments: fc.oneof(
    fc.dictionary(fc.constantFrom(...KEYS, '__entity', 'a'), argValue, { maxKeys: 6 }),
    fc.constant(undefined),
    fc.constant(null),
    argValue,
  ),
  now: fc.oneof(
    fc.constantFrom(new Date('2026-11-21T10:00:00Z'), new Date('2026-11-21T05:59:59.999Z'), new Date('2026-11-21T23:00:00Z')),
    fc.date({ min: new Date('1960-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
  ),
});

// compilePoliciesFromJson: the operator's parsed form (api/crds.ts RenderedCedar) in, closures out,
// without loading cedar-wasm; the text compiled in wasm only when a request needs it.
// The first test must run before anything in this file loads cedar-wasm (jest gives each file its
// own module registry, and runs a file's tests in order).
import { createHash } from 'node:crypto';
import type { RenderedCedar } from '../../api/crds.js';
import { cedarLoaded } from './engine.js';
import { evaluate, type CedarInput } from './evaluate.js';
import { compilePolicies, compilePoliciesFromJson, policyStarts, type CompiledPolicies } from './policies.js';

const TEXT = `@id("small") permit(principal, action == ThoughtGate::Action::"tools/call", resource) when { context.arguments.amount < 1000 };
@id("gh") @approve("ops") permit(principal, action, resource in ThoughtGate::Source::"github") when { resource.name like "get_*" };`;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** What the operator renders for TEXT (checked against cedar-wasm below, once it may be loaded). */
const PARSED: RenderedCedar = {
  textSha256: sha256(TEXT),
  policies: [
    {
      id: 'small',
      effect: 'permit',
      index: 0,
      line: 1,
      column: 1,
      json: {
        effect: 'permit',
        principal: { op: 'All' },
        action: { op: '==', entity: { type: 'ThoughtGate::Action', id: 'tools/call' } },
        resource: { op: 'All' },
        conditions: [
          {
            kind: 'when',
            body: { '<': { left: { '.': { left: { '.': { left: { Var: 'context' }, attr: 'arguments' } }, attr: 'amount' } }, right: { Value: 1000 } } },
          },
        ],
        annotations: { id: 'small' },
      },
    },
    {
      id: 'gh',
      effect: 'permit',
      approveChannel: 'ops',
      index: 1,
      line: 2,
      column: 1,
      json: {
        effect: 'permit',
        principal: { op: 'All' },
        action: { op: 'All' },
        resource: { op: 'in', entity: { type: 'ThoughtGate::Source', id: 'github' } },
        conditions: [
          {
            kind: 'when',
            body: {
              like: {
                left: { '.': { left: { Var: 'resource' }, attr: 'name' } },
                pattern: [{ Literal: 'g' }, { Literal: 'e' }, { Literal: 't' }, { Literal: '_' }, 'Wildcard'],
              },
            },
          },
        ],
        annotations: { approve: 'ops', id: 'gh' },
      },
    },
  ],
};

const base: CedarInput = {
  identity: { namespace: 'prod', serviceAccount: 'agent', pod: 'agent-1', labels: {} },
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool', name: 'transfer_funds' },
  arguments: { amount: 500 },
  now: new Date('2026-11-21T10:00:00Z'),
};
const calls: CedarInput[] = [
  base,
  { ...base, arguments: { amount: 5000 } },
  { ...base, arguments: {} },
  { ...base, source: 'github', target: { kind: 'tool', name: 'get_issue' }, arguments: { amount: 5000 } },
  { ...base, method: 'resources/read', source: 'github', target: { kind: 'resource', name: 'get_x' } },
];
/** Requests the closures cannot represent exactly: wasm decides them. */
const fallbackCalls: CedarInput[] = [
  { ...base, target: { kind: 'tool', name: 'get_\ud800' } },
  { ...base, source: 'github', target: { kind: 'tool', name: 'get_\ud800' } },
  { ...base, now: new Date('+010000-01-01T00:00:00Z') },
];

function ok(r: ReturnType<typeof compilePolicies>): CompiledPolicies {
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.policies;
}

const fromJson: CompiledPolicies = ok(compilePoliciesFromJson(TEXT, PARSED));

test('builds and decides from the parsed form without loading cedar-wasm', () => {
  expect(fromJson.from).toBe('json');
  expect(fromJson.needsWasmToEvaluate).toBe(false);
  expect(fromJson.policies.map((p) => [p.id, p.approveChannel])).toEqual([
    ['small', undefined],
    ['gh', 'ops'],
  ]);
  expect(calls.map((c) => evaluate(fromJson, c).decision)).toEqual(['allow', 'deny', 'error', 'allow', 'allow']);
  expect(evaluate(fromJson, calls[3]!)).toMatchObject({ policies: ['gh'], approveChannel: 'ops' });
  expect(cedarLoaded()).toBe(false);
});

test('a request the closures cannot represent compiles the text in wasm, and decides as a wasm compile does', () => {
  const wasm = ok(compilePolicies(TEXT, { engine: 'wasm' }));
  try {
    for (const c of [...fallbackCalls, ...calls]) expect(evaluate(fromJson, c)).toEqual(evaluate(wasm, c));
    expect(cedarLoaded()).toBe(true);
  } finally {
    wasm.dispose();
  }
  fromJson.dispose();
  expect(evaluate(fromJson, fallbackCalls[0]!).decision).toBe('error');
});

test('the fixture is what the operator renders (keepParsed)', () => {
  const c = ok(compilePolicies(TEXT, { keepParsed: true }));
  expect(c.parsed).toEqual(PARSED);
  c.dispose();
});

describe('the parsed form: its consistency checked, its conditions against the text when compiled', () => {
  const withPolicy = (i: number, change: (p: RenderedCedar['policies'][number]) => object): RenderedCedar => ({
    ...PARSED,
    policies: PARSED.policies.map((p, j) => (j === i ? ({ ...p, ...change(p) } as RenderedCedar['policies'][number]) : p)),
  });
  test.each<[string, RenderedCedar, RegExp]>([
    ['an id its JSON does not give', withPolicy(0, () => ({ id: 'other' })), /policies\[0\] "other": its JSON names it "small"/],
    ['a duplicate id', withPolicy(1, (p) => ({ id: 'small', json: { ...p.json, annotations: { id: 'small', approve: 'ops' } } })), /duplicate id/],
    ['an index out of order', withPolicy(1, () => ({ index: 5 })), /index 5, expected 1/],
    ['an effect its JSON does not give', withPolicy(0, () => ({ effect: 'forbid' })), /effect forbid, its JSON says "permit"/],
    ['an @approve left out', withPolicy(1, () => ({ approveChannel: undefined })), /approval channel undefined, its JSON says "ops"/],
    ['an @approve added', withPolicy(0, () => ({ approveChannel: 'ops' })), /approval channel "ops", its JSON says undefined/],
  ])('refused: %s', (_what, parsed, message) => {
    const r = compilePoliciesFromJson(TEXT, parsed);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([expect.stringMatching(/^cedar\.policies: the operator's parsed form of these policies is inconsistent \(/)]);
    if (!r.ok) expect(r.errors[0]).toMatch(message);
  });

  test('a form for other text (e.g. after this pod substituted a ${VAR}) is not used: the text is compiled', () => {
    const text = TEXT.replace('1000', '2000');
    const c = ok(compilePoliciesFromJson(text, PARSED));
    expect(c.from).toBe('wasm');
    expect(evaluate(c, { ...base, arguments: { amount: 1500 } }).decision).toBe('allow');
    c.dispose();
  });

  test('a form whose text holds other policies: the fallback fails closed, naming why', () => {
    // Policies where the form says they are, but not the form's policies.
    const text = '@id("small") forbid(principal, action, resource);\n@id("gh") permit(principal, action, resource);';
    const c = ok(compilePoliciesFromJson(text, { ...PARSED, textSha256: sha256(text) }));
    expect(c.from).toBe('json');
    expect(evaluate(c, fallbackCalls[0]!)).toEqual({
      decision: 'error',
      policies: [],
      reason: 'Cedar evaluation failed: cedar.policies: cannot evaluate in cedar-wasm: the text does not hold the policies of its parsed form',
    });
    c.dispose();
  });

  test("a form whose condition is not the text's: the fallback fails closed, naming the policy", () => {
    // Same ids, effects, channels and places; the form's "small" permits up to 100000, the text's up to 1000.
    const form = withPolicy(0, (p) => ({ json: JSON.parse(JSON.stringify(p.json).replace('{"Value":1000}', '{"Value":100000}')) as object }));
    expect(form).not.toEqual(PARSED);
    const c = ok(compilePoliciesFromJson(TEXT, form));
    expect(c.from).toBe('json');
    // The closures follow the form (the operator's, trusted like the rest of the ConfigMap) …
    expect(evaluate(c, { ...base, arguments: { amount: 5000 } }).decision).toBe('allow');
    // … until the text is compiled, which refuses a form that is not its own.
    expect(evaluate(c, { ...fallbackCalls[0]!, arguments: { amount: 5000 } })).toEqual({
      decision: 'error',
      policies: [],
      reason:
        'Cedar evaluation failed: cedar.policies: cannot evaluate in cedar-wasm: policy "small" of the text is not the one of its parsed form (its scope or conditions differ)',
    });
    c.dispose();
  });

  test('a form that leaves out a policy of the text (indices renumbered): the text is compiled', () => {
    const text = `${TEXT}\n@id("deny-all") forbid(principal, action, resource);`;
    const c = ok(compilePoliciesFromJson(text, { ...PARSED, textSha256: sha256(text) }));
    expect(c.from).toBe('wasm');
    expect(c.policies.map((p) => p.id)).toEqual(['small', 'gh', 'deny-all']);
    expect(evaluate(c, base).decision).toBe('deny');
    c.dispose();
  });

  test('where policies start, as cedar-wasm says: ";" in strings and comments, multi-line strings, no trailing text', () => {
    const text = `// a; comment "
  @id("a;b") permit(principal, action, resource) when { context.arguments.x == "x;\\";\n//" }; // c;
@id("é") forbid(principal, action, resource)
  when { "é;" like "*" }   ;permit(principal, action, resource);`;
    const parsed = ok(compilePolicies(text, { keepParsed: true }));
    parsed.dispose();
    expect(policyStarts(text)).toEqual(parsed.parsed!.policies.map((p) => ({ line: p.line, column: p.column })));
    expect(policyStarts(text)).toHaveLength(3);
    expect(policyStarts(`${text} permit(principal, action, resource)`)).toBeNull();
    expect(policyStarts('permit(principal, action, resource) when { "x }')).toBeNull();
    expect(policyStarts('')).toEqual([]);
  });

  test('a policy only wasm evaluates: the text is compiled in wasm, as without the form', () => {
    const text = `${TEXT}\n@id("ip") forbid(principal, action, resource) when { ip("10.0.0.1").isLoopback() };`;
    const parsed = ok(compilePolicies(text, { keepParsed: true }));
    parsed.dispose();
    const c = ok(compilePoliciesFromJson(text, parsed.parsed));
    expect(c.from).toBe('wasm');
    expect(c.needsWasmToEvaluate).toBe(true);
    expect(evaluate(c, base).decision).toBe('allow');
    c.dispose();
  });
});

test('policies are numbered and placed in text order beyond ten (cedar-wasm lists them as policy0, policy1, policy10, …)', () => {
  const text = Array.from({ length: 12 }, (_, i) => `permit(principal, action, resource) when { context.arguments.n == ${i} };`).join('\n');
  const c = ok(compilePolicies(text, { keepParsed: true }));
  c.dispose();
  expect(c.policies.map((p) => [p.id, p.index, p.line])).toEqual(Array.from({ length: 12 }, (_, i) => [`policy${i}`, i, i + 1]));
  expect(c.parsed!.policies.map((p) => (p.json['conditions'] as { body: { '==': { right: { Value: number } } } }[])[0]!.body['=='].right.Value)).toEqual(
    Array.from({ length: 12 }, (_, i) => i),
  );
  const fromJson = ok(compilePoliciesFromJson(text, c.parsed));
  expect(fromJson.from).toBe('json');
  expect(evaluate(fromJson, { ...base, arguments: { n: 11 } })).toMatchObject({ decision: 'allow', policies: ['policy11'] });
  fromJson.dispose();
});

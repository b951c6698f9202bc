import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { escapeKey, MAX_DEPTH, MAX_NODES, normaliseArguments } from './normalise.js';
import { compilePolicies } from './policies.js';
import { evaluate, type CedarDecision } from './evaluate.js';

const identity = { namespace: 'prod', serviceAccount: 'agent', pod: 'agent-1', labels: {} };

/** Evaluates one `when` condition over `context.arguments` with real Cedar. */
function when(condition: string, args: unknown): CedarDecision {
  const c = compilePolicies(`@id("p") permit(principal, action, resource) when { ${condition} };`);
  if (!c.ok) throw new Error(c.errors.join('\n'));
  return evaluate(c.policies, {
    identity,
    method: 'tools/call',
    source: 'bank',
    target: { kind: 'tool', name: 'transfer' },
    arguments: args,
    now: new Date('2026-11-21T10:00:00Z'),
  });
}

function value(args: unknown) {
  const r = normaliseArguments(args);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe('integers', () => {
  test('safe integers are Longs', () => {
    expect(value({ amount: 999 })).toEqual({ amount: 999 });
    expect(when('context.arguments.amount < 1000', { amount: 999 }).decision).toBe('allow');
    expect(when('context.arguments.amount < 1000', { amount: 1000 }).decision).toBe('deny');
    expect(when('context.arguments.n == -9007199254740991', { n: -Number.MAX_SAFE_INTEGER }).decision).toBe('allow');
  });

  test('-0 is 0', () => {
    expect(Object.is((value({ x: -0 }) as { x: number }).x, 0)).toBe(true);
  });

  test('integers beyond ±(2^53−1) become their decimal text, which a Long comparison rejects (fail closed)', () => {
    expect(value({ a: 2 ** 53, b: -(2 ** 60), c: 1e30, d: Number('12345678901234567890') })).toEqual({
      a: '9007199254740992',
      b: '-1152921504606847000', // shortest text of the double, as String() prints it
      c: '1000000000000000000000000000000',
      d: '12345678901234567000',
    });
    const d = when('context.arguments.amount < 1000', { amount: 1e30 });
    expect(d.decision).toBe('error');
    expect(d.reason).toContain('policy p failed');
    expect(d.reason).toContain('expected long, got string');
    expect(when('context.arguments.id == "9007199254740992"', { id: 2 ** 53 }).decision).toBe('allow');
  });

  test('bigints (not from JSON, but total) follow the same rule', () => {
    expect(value({ a: 5n, b: 2n ** 70n })).toEqual({ a: 5, b: '1180591620717411303424' });
  });
});

describe('fractions', () => {
  test('at most 4 fractional digits become decimals', () => {
    expect(value({ r: 1.25 })).toEqual({ r: { __extn: { fn: 'decimal', arg: '1.25' } } });
    expect(when('context.arguments.r.lessThan(decimal("1.5"))', { r: 1.25 }).decision).toBe('allow');
    expect(when('context.arguments.r.lessThan(decimal("1.5"))', { r: 1.5 }).decision).toBe('deny');
    expect(when('context.arguments.r == decimal("-0.0001")', { r: -0.0001 }).decision).toBe('allow');
    expect(when('context.arguments.r.greaterThanOrEqual(decimal("0.1"))', { r: 0.1 }).decision).toBe('allow');
  });

  test('a decimal does not compare with a Long: error, denied', () => {
    const d = when('context.arguments.amount < 1000', { amount: 999.5 });
    expect(d.decision).toBe('error');
    expect(d.reason).toContain('got decimal');
  });

  test('more digits, exponents or out of decimal range become the JS number text', () => {
    expect(value({ a: 1.23456, b: 1e-7, c: 1e15 + 0.5, d: 922337203685477.5 })).toEqual({
      a: '1.23456',
      b: '1e-7',
      c: '1000000000000000.5',
      d: { __extn: { fn: 'decimal', arg: '922337203685477.5' } },
    });
    expect(when('context.arguments.a == "1.23456"', { a: 1.23456 }).decision).toBe('allow');
    // The biggest in-range value is accepted by Cedar as a decimal.
    expect(when('context.arguments.d.greaterThan(decimal("922337203685477.0"))', { d: 922337203685477.5 }).decision).toBe('allow');
  });

  test('non-finite numbers (not from JSON, but total) become text', () => {
    expect(value({ a: NaN, b: -Infinity })).toEqual({ a: 'NaN', b: '-Infinity' });
  });
});

describe('null', () => {
  test('a null key is absent', () => {
    expect(value({ a: null, b: 1 })).toEqual({ b: 1 });
    expect(when('context.arguments has a', { a: null }).decision).toBe('deny');
    expect(when('!(context.arguments has a)', { a: null }).decision).toBe('allow');
    expect(when('context.arguments has a', { a: 0 }).decision).toBe('allow');
  });

  test('null elements are dropped from arrays', () => {
    expect(value({ xs: [1, null, 2] })).toEqual({ xs: [1, 2] });
    expect(when('context.arguments.xs == [1, 2]', { xs: [null, 1, null, 2] }).decision).toBe('allow');
  });

  test('null or absent arguments are the empty record', () => {
    expect(value(null)).toEqual({});
    expect(value(undefined)).toEqual({});
    expect(when('context.arguments == {}', undefined).decision).toBe('allow');
    expect(when('context.arguments has x', null).decision).toBe('deny');
  });
});

describe('keys starting with __', () => {
  test('are escaped with one more _, injectively', () => {
    expect(escapeKey('__entity')).toBe('___entity');
    expect(escapeKey('___x')).toBe('____x');
    expect(escapeKey('_x')).toBe('_x');
    expect(escapeKey('x__')).toBe('x__');
    expect(value({ __entity: 1, ___entity: 2, _entity: 3 })).toEqual({ ___entity: 1, ____entity: 2, _entity: 3 });
  });

  test('a smuggled __entity is not an entity reference', () => {
    const args = { x: { __entity: { type: 'ThoughtGate::Workload', id: 'admin' } } };
    // Unescaped, Cedar would read an entity reference: this is the hole being closed.
    const raw = cedar.isAuthorized({
      principal: { type: 'A', id: 'a' },
      action: { type: 'A', id: 'a' },
      resource: { type: 'A', id: 'a' },
      context: { arguments: args },
      policies: { staticPolicies: 'permit(principal, action, resource) when { context.arguments.x == ThoughtGate::Workload::"admin" };' },
      entities: [],
    });
    expect(raw.type === 'success' && raw.response.decision).toBe('allow');

    expect(when('context.arguments.x == ThoughtGate::Workload::"admin"', args).decision).toBe('deny');
    expect(when('context.arguments.x has ___entity', args).decision).toBe('allow');
    expect(when('context.arguments.x["___entity"].id == "admin"', args).decision).toBe('allow');
  });

  test('a smuggled __extn is not an extension value', () => {
    const args = { ip: { __extn: { fn: 'ip', arg: '127.0.0.1' } } };
    const d = when('context.arguments.ip.isLoopback()', args);
    expect(d.decision).toBe('error'); // a record has no isLoopback(): error, denied
    expect(when('context.arguments.ip has ___extn', args).decision).toBe('allow');
  });

  test('escaping holds at every depth, inside arrays too', () => {
    const deep = { a: [{ b: { __entity: { type: 'X', id: 'y' }, __extn: 1, __expr: '1' } }] };
    expect(value(deep)).toEqual({ a: [{ b: { ___entity: { type: 'X', id: 'y' }, ___extn: 1, ___expr: '1' } }] });
    expect(when('context.arguments.a.contains({b: {___entity: {type: "X", id: "y"}, ___extn: 1, ___expr: "1"}})', deep).decision).toBe('allow');
  });

  test('__proto__ is an ordinary (escaped) key, not a prototype', () => {
    const args = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown;
    const v = value(args) as Record<string, unknown>;
    expect(Object.keys(v).sort()).toEqual(['___proto__', 'a']);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(when('context.arguments.___proto__.polluted', args).decision).toBe('allow');
  });
});

describe('arrays are sets', () => {
  test('unordered and deduplicated; heterogeneous allowed', () => {
    expect(when('context.arguments.xs == [2, 1]', { xs: [1, 1, 2] }).decision).toBe('allow');
    expect(when('context.arguments.xs.contains("a") && context.arguments.xs.contains({b: true})', { xs: [1, 'a', { b: true }] }).decision).toBe('allow');
    expect(when('context.arguments.tags.containsAny(["admin", "root"])', { tags: ['user', 'root'] }).decision).toBe('allow');
  });
});

describe('limits', () => {
  const nest = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = { a: v };
    return v;
  };

  test(`${MAX_DEPTH} nested containers pass, one more is refused`, () => {
    expect(normaliseArguments(nest(MAX_DEPTH)).ok).toBe(true);
    const r = normaliseArguments(nest(MAX_DEPTH + 1));
    expect(r).toEqual({ ok: false, reason: `arguments are nested deeper than ${MAX_DEPTH} levels` });
    let arrays: unknown = [];
    for (let i = 0; i < MAX_DEPTH; i++) arrays = [arrays];
    expect(normaliseArguments(arrays).ok).toBe(false);
  });

  test('32 levels deep is still evaluated by Cedar', () => {
    expect(when('context.arguments has a', nest(MAX_DEPTH)).decision).toBe('allow');
  });

  test(`more than ${MAX_NODES} values are refused, and evaluate fails closed`, () => {
    expect(normaliseArguments({ xs: Array.from({ length: MAX_NODES - 2 }, (_, i) => i) }).ok).toBe(true);
    expect(normaliseArguments({ xs: Array.from({ length: MAX_NODES - 1 }, (_, i) => i) }).ok).toBe(false);
    // nulls count too: they cost time even though they are dropped
    expect(normaliseArguments({ xs: new Array(MAX_NODES).fill(null) }).ok).toBe(false);
    const d = when('true', { xs: new Array(MAX_NODES + 1).fill(1) });
    expect(d.decision).toBe('error');
    expect(d.reason).toContain('more than 10000 values');
  });

  test('cycles are refused, not looped over', () => {
    const a: Record<string, unknown> = {};
    a['self'] = a;
    expect(normaliseArguments(a).ok).toBe(false);
  });

  test('lone surrogates are refused (Cedar would throw on them)', () => {
    expect(normaliseArguments({ s: 'ok \ud83d\ude00' }).ok).toBe(true);
    expect(normaliseArguments({ s: 'bad \ud800' })).toEqual({ ok: false, reason: 'arguments contain text that is not valid Unicode' });
    expect(normaliseArguments({ ['\udc00']: 1 }).ok).toBe(false);
    expect(when('true', { s: '\ud800' }).decision).toBe('error');
  });

  test('values JSON cannot carry are refused; throwing getters too', () => {
    expect(normaliseArguments({ f: () => 1 }).ok).toBe(false);
    expect(normaliseArguments({ s: Symbol('x') }).ok).toBe(false);
    const hostile = Object.defineProperty({}, 'x', {
      enumerable: true,
      get: () => {
        throw new Error('boom');
      },
    });
    expect(normaliseArguments(hostile)).toEqual({ ok: false, reason: 'arguments could not be read' });
  });

  test('undefined behaves like null', () => {
    expect(value({ a: undefined, b: [undefined, 1] })).toEqual({ b: [1] });
  });
});

describe('mixed numbers', () => {
  test('a decimal comparison errors on a whole number: denied, never allowed', () => {
    expect(when('context.arguments.r.lessThan(decimal("1000.0"))', { r: 999 }).decision).toBe('error');
  });
});

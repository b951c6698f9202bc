import { cedarEngine } from './engine.js';
import { compilePolicies, type CompiledPolicies } from './policies.js';
import { evaluate } from './evaluate.js';

const identity = { namespace: 'prod', serviceAccount: 'agent', pod: 'agent-1', labels: {} };
const call = {
  identity,
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool' as const, name: 'transfer' },
  arguments: { amount: 5 },
  now: new Date('2026-11-21T10:00:00Z'),
};
function ok(text: string): CompiledPolicies {
  const c = compilePolicies(text);
  if (!c.ok) throw new Error(c.errors.join('\n'));
  return c.policies;
}

function errors(text: string): string[] {
  const c = compilePolicies(text);
  if (c.ok) throw new Error('expected compile errors');
  return c.errors;
}

describe('ids', () => {
  test('@id names a policy; otherwise policy<N> in text order', () => {
    const c = ok(`
      permit(principal, action, resource) when { false };
      @id("small-transfers") @approve("finance")
      permit(principal, action == ThoughtGate::Action::"tools/call", resource);
      forbid(principal, action, resource) when { context.arguments.amount > 10 };
    `);
    expect(c.policies.map((p) => [p.id, p.effect, p.approveChannel, p.index, p.line])).toEqual([
      ['policy0', 'permit', undefined, 0, 2],
      ['small-transfers', 'permit', 'finance', 1, 3],
      ['policy2', 'forbid', undefined, 2, 5],
    ]);
    // Cedar reports our ids, not its own policy<N>.
    expect(evaluate(c, call)).toMatchObject({ decision: 'allow', policies: ['small-transfers'] });
  });

  test('duplicate ids are an error, also against a generated id', () => {
    expect(errors('@id("a") permit(principal, action, resource);\n@id("a") forbid(principal, action, resource);')).toEqual([
      'cedar.policies:2:1: duplicate policy id "a" (first used at line 1)',
    ]);
    expect(errors('permit(principal, action, resource);\n@id("policy0") forbid(principal, action, resource);')[0]).toContain('duplicate policy id "policy0"');
  });

  test('@id needs a non-empty value', () => {
    expect(errors('@id permit(principal, action, resource);')[0]).toMatch(/^cedar\.policies:1:1: @id needs a name/);
    expect(errors('@id("") permit(principal, action, resource);')[0]).toMatch(/@id needs a name/);
  });

  test('ids may hold any text', () => {
    const c = ok('@id("no deletes in prod — ever") forbid(principal, action, resource);\npermit(principal, action, resource);');
    expect(evaluate(c, call)).toMatchObject({ decision: 'deny', reason: 'forbidden by no deletes in prod — ever' });
  });
});

describe('@approve', () => {
  test('on forbid is an error', () => {
    expect(errors('\n  @id("x") @approve("finance")\n  forbid(principal, action, resource);')).toEqual([
      'cedar.policies:2:3: policy "x": @approve only applies to permit policies',
    ]);
  });

  test('needs a channel name', () => {
    expect(errors('@approve permit(principal, action, resource);')[0]).toMatch(/@approve needs an approval channel/);
    expect(errors('@approve("Finance Team") permit(principal, action, resource);')[0]).toMatch(/not a valid channel name/);
  });
});

describe('errors say where', () => {
  test('a parse error carries line:column of the offending token', () => {
    const e = errors('@id("a")\npermit(principal, action, resource);\npermit(principal, action, resource) when { ) };');
    expect(e[0]).toMatch(/^cedar\.policies:3:44: unexpected token `\)`/);
  });

  test('columns count characters, not UTF-8 bytes', () => {
    const e = errors('// héllo 😀\npermit(principal, action, resource) when { context.x == "ü" && ) };');
    expect(e[0]).toMatch(/^cedar\.policies:2:64: unexpected token `\)`/);
  });

  test('every error is reported, in order', () => {
    const e = errors('permit(principal, action, resource) when { x };\npermit(principal, action, resource) when { y };');
    expect(e).toHaveLength(2);
    expect(e[0]).toMatch(/^cedar\.policies:1:44: invalid variable: x/);
    expect(e[1]).toMatch(/^cedar\.policies:2:44: invalid variable: y/);
  });

  test('the file name is the caller’s choice', () => {
    const c = compilePolicies('permit(', { file: 'GovernancePolicy prod/payments' });
    expect(!c.ok && c.errors[0]).toMatch(/^GovernancePolicy prod\/payments:1:8: unexpected end of input/);
  });

  test('templates are not supported', () => {
    expect(errors('permit(principal, action, resource);\n\npermit(principal == ?principal, action, resource);')).toEqual([
      'cedar.policies:3:1: policy templates are not supported (a policy uses ?principal or ?resource)',
    ]);
    expect(errors('permit(principal, action, resource) when { principal in ?resource };')[0]).toMatch(/^cedar\.policies:1:57: found template slot/);
  });

  test('malformed extension literals are found at compile time, not on every request', () => {
    const e = errors(
      '@id("d")\npermit(principal, action, resource)\n  when { context.arguments.r.lessThan(decimal("1.23456")) };\n@id("t") permit(principal, action, resource) when { context.time < datetime("tomorrow") };',
    );
    expect(e).toHaveLength(2);
    expect(e[0]).toMatch(/^cedar\.policies:3:47: policy "d": decimal\("1\.23456"\): too many digits after the decimal/);
    expect(e[1]).toMatch(/^cedar\.policies:4:77: policy "t": datetime\("tomorrow"\): invalid date pattern/);
    expect(errors('permit(principal, action, resource) when { ip("10.0.0.300").isLoopback() };')[0]).toMatch(/invalid IP address/);
    expect(errors('permit(principal, action, resource) when { duration("5 minutes") == duration("5m") };')[0]).toMatch(/invalid duration pattern/);
  });
});

describe('one engine per compile', () => {
  test('empty text is a valid set that permits nothing', () => {
    for (const text of ['', '  \n// only a comment\n']) {
      const c = ok(text);
      expect(c.policies).toEqual([]);
      expect(evaluate(c, call)).toEqual({ decision: 'deny', policies: [], reason: 'no policy permits tools/call on bank/transfer' });
    }
  });

  test('a failed compile leaves the live set untouched', () => {
    const live = ok('permit(principal, action, resource);');
    expect(compilePolicies('permit(principal, action, resource').ok).toBe(false);
    expect(compilePolicies('@approve("x") forbid(principal, action, resource);').ok).toBe(false);
    expect(live.disposed).toBe(false);
    expect(evaluate(live, call).decision).toBe('allow');
  });

  test('each compile evaluates with its own policies until it is disposed; then it fails closed', () => {
    const a = ok('permit(principal, action, resource);');
    const b = ok('forbid(principal, action, resource);\npermit(principal, action, resource);');
    const c = ok('@id("other") permit(principal, action, resource);');
    expect(evaluate(a, call).decision).toBe('allow');
    expect(evaluate(b, call).decision).toBe('deny');
    expect(evaluate(c, call)).toMatchObject({ decision: 'allow', policies: ['other'] });
    a.dispose();
    a.dispose(); // idempotent: its ids are freed once
    expect(a.disposed).toBe(true);
    expect(evaluate(a, call)).toMatchObject({ decision: 'error', reason: expect.stringContaining('replaced') });
    // The others are not disturbed, and a later compile reuses a's emptied ids, not new ones.
    const d = ok('@id("d") permit(principal, action, resource);');
    expect(d.sets.map((s) => s.id)).toEqual(a.sets.map((s) => s.id));
    expect(evaluate(b, call).decision).toBe('deny');
    expect(evaluate(c, call)).toMatchObject({ decision: 'allow', policies: ['other'] });
    expect(evaluate(d, call)).toMatchObject({ decision: 'allow', policies: ['d'] });
    for (const x of [b, c, d]) x.dispose();
  });

  test('dispose empties the preparsed sets in Cedar', () => {
    const a = ok('permit(principal, action, resource);');
    const id = a.sets[0]!.id;
    const ask = () =>
      cedarEngine().statefulIsAuthorized({
        principal: { type: 'ThoughtGate::Workload', id: 'x' },
        action: { type: 'ThoughtGate::Action', id: 'tools/call' },
        resource: { type: 'ThoughtGate::Tool', id: 'bank/transfer' },
        context: {},
        entities: [],
        preparsedPolicySetId: id,
      });
    const before = ask();
    expect(before.type === 'success' && before.response.decision).toBe('allow');
    a.dispose();
    const after = ask();
    expect(after.type === 'success' && after.response.decision).toBe('deny');
  });
});

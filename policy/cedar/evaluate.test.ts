import { compilePolicies, type CompiledPolicies } from './policies.js';
import { buildRequest, evaluate, type CedarInput } from './evaluate.js';

const identity = {
  namespace: 'prod',
  serviceAccount: 'payments-agent',
  pod: 'payments-agent-7d9f',
  labels: { team: 'payments', 'app.kubernetes.io/name': 'agent' },
};
const base: CedarInput = {
  identity,
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool', name: 'transfer_funds' },
  arguments: { amount: 500, currency: 'EUR' },
  now: new Date('2026-11-21T10:00:00Z'),
};

function compile(text: string): CompiledPolicies {
  const c = compilePolicies(text);
  if (!c.ok) throw new Error(c.errors.join('\n'));
  return c.policies;
}

/** Decision of `permit … when { condition }` for the base call with overrides. */
function when(condition: string, input: Partial<CedarInput> = {}) {
  return evaluate(compile(`@id("p") permit(principal, action, resource) when { ${condition} };`), { ...base, ...input }).decision;
}

describe('entity model', () => {
  test('principal: Workload "<namespace>/<serviceAccount>" with attributes', () => {
    expect(when('principal == ThoughtGate::Workload::"prod/payments-agent"')).toBe('allow');
    expect(when('principal.namespace == "prod" && principal.serviceAccount == "payments-agent" && principal.pod == "payments-agent-7d9f"')).toBe('allow');
  });

  test('pod labels are tags', () => {
    expect(when('principal.hasTag("team") && principal.getTag("team") == "payments"')).toBe('allow');
    expect(when('principal.getTag("app.kubernetes.io/name") == "agent"')).toBe('allow');
    expect(when('principal.hasTag("env")')).toBe('deny');
    expect(when('principal.getTag("env") == "prod"')).toBe('error'); // a missing tag is an error: denied
    expect(when('principal.hasTag("team")', { identity: { ...identity, labels: {} } })).toBe('deny');
  });

  test('the principal is in its Namespace', () => {
    const c = compile('permit(principal in ThoughtGate::Namespace::"prod", action, resource);');
    expect(evaluate(c, base).decision).toBe('allow');
    expect(evaluate(c, { ...base, identity: { ...identity, namespace: 'staging' } }).decision).toBe('deny');
  });

  test('action is the MCP method', () => {
    const c = compile('permit(principal, action in [ThoughtGate::Action::"tools/call", ThoughtGate::Action::"prompts/get"], resource);');
    expect(evaluate(c, base).decision).toBe('allow');
    expect(evaluate(c, { ...base, method: 'resources/read', target: { kind: 'resource', name: 'file:///etc/passwd' } }).decision).toBe('deny');
  });

  test('resource type follows the target kind; name, source and Source membership', () => {
    const cases: [CedarInput['target'], string, string][] = [
      [{ kind: 'tool', name: 'transfer_funds' }, 'tools/call', 'ThoughtGate::Tool::"bank/transfer_funds"'],
      [{ kind: 'resource', name: 'file:///a/b.txt' }, 'resources/read', 'ThoughtGate::Resource::"bank/file:///a/b.txt"'],
      [{ kind: 'prompt', name: 'summarise' }, 'prompts/get', 'ThoughtGate::Prompt::"bank/summarise"'],
      [{ kind: 'method', name: 'completion/complete' }, 'completion/complete', 'ThoughtGate::Method::"bank/completion/complete"'],
    ];
    for (const [target, method, uid] of cases) {
      const input = { target, method, arguments: undefined };
      expect(when(`resource == ${uid}`, input)).toBe('allow');
      expect(when(`resource.name == ${JSON.stringify(target.name)} && resource.source == "bank"`, input)).toBe('allow');
      expect(when('resource in ThoughtGate::Source::"bank"', input)).toBe('allow');
      expect(when('resource in ThoughtGate::Source::"github"', input)).toBe('deny');
    }
    expect(when('resource is ThoughtGate::Tool && resource.name like "transfer_*"')).toBe('allow');
  });

  test('context carries source and method', () => {
    expect(when('context.source == "bank" && context.method == "tools/call"')).toBe('allow');
  });

  test('buildRequest is pure and minimal: the principal and the resource only', () => {
    const r = buildRequest(base);
    expect(r.ok && r.request).toEqual({
      principal: { type: 'ThoughtGate::Workload', id: 'prod/payments-agent' },
      action: { type: 'ThoughtGate::Action', id: 'tools/call' },
      resource: { type: 'ThoughtGate::Tool', id: 'bank/transfer_funds' },
      context: {
        arguments: { amount: 500, currency: 'EUR' },
        source: 'bank',
        method: 'tools/call',
        time: { __extn: { fn: 'datetime', arg: '2026-11-21T10:00:00.000Z' } },
      },
      entities: [
        {
          uid: { type: 'ThoughtGate::Workload', id: 'prod/payments-agent' },
          attrs: { namespace: 'prod', serviceAccount: 'payments-agent', pod: 'payments-agent-7d9f' },
          parents: [{ type: 'ThoughtGate::Namespace', id: 'prod' }],
          tags: identity.labels,
        },
        {
          uid: { type: 'ThoughtGate::Tool', id: 'bank/transfer_funds' },
          attrs: { name: 'transfer_funds', source: 'bank' },
          parents: [{ type: 'ThoughtGate::Source', id: 'bank' }],
        },
      ],
    });
  });
});

describe('time is a Cedar datetime', () => {
  test('compares with datetime literals', () => {
    expect(when('context.time < datetime("2026-11-21T10:00:00.001Z")')).toBe('allow');
    expect(when('context.time > datetime("2026-11-21T10:00:00Z")')).toBe('deny');
    expect(when('context.time >= datetime("2026-11-21")')).toBe('allow');
  });

  test('toTime, toDate, offset, durationSince', () => {
    expect(when('context.time.toTime() >= duration("9h") && context.time.toTime() < duration("17h")')).toBe('allow');
    expect(when('context.time.toDate() == datetime("2026-11-21")')).toBe('allow');
    expect(when('context.time.offset(duration("1h")) == datetime("2026-11-21T11:00:00Z")')).toBe('allow');
    expect(when('context.time.durationSince(datetime("2026-11-21T09:30:00Z")) == duration("30m")')).toBe('allow');
    expect(when('context.time.toTime() < duration("9h")', { now: new Date('2026-11-21T08:59:59Z') })).toBe('allow');
  });

  test('an invalid Date fails closed', () => {
    const d = evaluate(compile('permit(principal, action, resource);'), { ...base, now: new Date(NaN) });
    expect(d.decision).toBe('error');
    expect(d.reason).toMatch(/^Cedar evaluation failed: /);
    expect(d.reason).not.toContain('    at ');
  });
});

describe('decisions', () => {
  const text = `
    @id("small-transfers") @approve("finance")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name like "transfer_*" && context.arguments.amount < 1000 };

    @id("read-anything")
    permit(principal, action == ThoughtGate::Action::"resources/read", resource);

    @id("no-prod-deletes")
    forbid(principal in ThoughtGate::Namespace::"prod", action, resource)
      when { resource.name like "delete_*" };

    @id("payments-may-delete")
    permit(principal, action, resource) when { principal.getTag("team") == "payments" && resource.name like "delete_*" };
  `;
  const c = compile(text);

  test('allow with @approve yields the channel', () => {
    expect(evaluate(c, base)).toEqual({
      decision: 'allow',
      policies: ['small-transfers'],
      approveChannel: 'finance',
      reason: 'permitted by small-transfers, subject to approval in finance',
    });
  });

  test('allow without @approve', () => {
    expect(evaluate(c, { ...base, method: 'resources/read', target: { kind: 'resource', name: 'file:///x' } })).toEqual({
      decision: 'allow',
      policies: ['read-anything'],
      reason: 'permitted by read-anything',
    });
  });

  test('nothing permits', () => {
    expect(evaluate(c, { ...base, arguments: { amount: 5000 } })).toEqual({
      decision: 'deny',
      policies: [],
      reason: 'no policy permits tools/call on bank/transfer_funds',
    });
  });

  test('nothing permits a method without a named target', () => {
    expect(evaluate(c, { ...base, method: 'completion/complete', target: { kind: 'method', name: 'completion/complete' } }).reason).toBe(
      'no policy permits completion/complete on bank',
    );
  });

  test('forbid beats permit', () => {
    const input = { ...base, target: { kind: 'tool' as const, name: 'delete_account' } };
    expect(evaluate(c, input)).toEqual({ decision: 'deny', policies: ['no-prod-deletes'], reason: 'forbidden by no-prod-deletes' });
    expect(evaluate(c, { ...input, identity: { ...identity, namespace: 'staging' } })).toMatchObject({ decision: 'allow', policies: ['payments-may-delete'] });
  });

  test('the first @approve channel in text order wins; any approving permit requires approval', () => {
    const m = compile(`
      permit(principal, action, resource);
      @id("z-second") @approve("second") permit(principal, action, resource);
      @id("a-first") @approve("first") permit(principal, action, resource);
    `);
    expect(evaluate(m, base)).toMatchObject({ decision: 'allow', policies: ['policy0', 'z-second', 'a-first'], approveChannel: 'second' });
  });
});

describe('errors fail closed', () => {
  test('a forbid whose condition errors does not let a permit through', () => {
    const c = compile(`
      @id("allow-all") permit(principal, action, resource);
      @id("no-recursive") forbid(principal, action, resource) when { context.arguments.recursive };
    `);
    expect(evaluate(c, { ...base, arguments: { recursive: true } })).toMatchObject({ decision: 'deny', policies: ['no-recursive'] });
    // Without the attribute Cedar skips the erroring forbid and would allow; we must not.
    expect(evaluate(c, { ...base, arguments: {} })).toEqual({
      decision: 'error',
      policies: ['no-recursive'],
      reason: 'policy no-recursive failed: record does not have the attribute `recursive`',
    });
  });

  test('a permit that errors is an error, not a quiet deny', () => {
    const c = compile('@id("p") permit(principal, action, resource) when { context.arguments.amount < 10 };');
    expect(evaluate(c, { ...base, arguments: { amount: 'ten' } })).toMatchObject({ decision: 'error', policies: ['p'] });
  });

  test('several failing policies are all listed', () => {
    const c = compile(
      '@id("a") permit(principal, action, resource) when { context.arguments.x };\n@id("b") forbid(principal, action, resource) when { context.arguments.y };',
    );
    const d = evaluate(c, { ...base, arguments: {} });
    expect(d.decision).toBe('error');
    expect(d.policies).toEqual(['a', 'b']);
    expect(d.reason).toMatch(/^policy a failed: record does not have the attribute `x` \(and 1 more\)$/);
  });

  test('a source name with "/" is an error (resource ids would be ambiguous)', () => {
    const c = compile('permit(principal, action, resource);');
    expect(evaluate(c, { ...base, source: 'a/b' })).toEqual({ decision: 'error', policies: [], reason: 'invalid source name "a/b"' });
    expect(evaluate(c, { ...base, source: '' }).decision).toBe('error');
  });

  test('arguments that cannot be normalised are an error', () => {
    const c = compile('permit(principal, action, resource);');
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 40; i++) {
      const next: Record<string, unknown> = {};
      at['a'] = next;
      at = next;
    }
    expect(evaluate(c, { ...base, arguments: deep })).toEqual({
      decision: 'error',
      policies: [],
      reason: 'tool arguments refused: arguments are nested deeper than 32 levels',
    });
  });

  test('arguments are untrusted: floats and nulls no longer break every request', () => {
    const c = compile('permit(principal, action, resource) when { context.arguments.currency == "EUR" };');
    expect(evaluate(c, { ...base, arguments: { currency: 'EUR', rate: 1.0825, memo: null, huge: 2 ** 64 } }).decision).toBe('allow');
  });
});

// The trace: what decide() records gate by gate (and that recording changes nothing), and the text
// `thoughtgate explain` and failing tests print from it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentitySchema, PolicyDocumentSchema } from '../../api/config.js';
import { decide, type DecisionTrace } from '../../policy/gates/decide.js';
import { describe as describeOp } from '../../policy/gates/operation.js';
import { compileSnapshot } from '../../sidecar/snapshot.js';
import { explainCall, exposedBy, messageOf } from './explain.js';
import { formatExplanation } from './report.js';
import { loadConfigTarget } from './target.js';

const DOC = {
  sources: [{ name: 'bank', url: 'http://127.0.0.1:1/mcp', expose: { mode: 'blocklist', tools: ['admin_*'] } }],
  rules: [
    { name: 'pay-by-policy', match: { tool: 'pay' }, action: 'policy' },
    { name: 'big-needs-a-human', match: { tool: 'wire' }, action: 'approve', approval: { channel: 'finance', timeout: '5m' } },
  ],
  defaultAction: 'deny',
  cedar: {
    policies: `@id("small-payments")
permit(principal, action, resource) when { context.arguments has amount && context.arguments.amount < 100 };
@id("refunds-by-human")
@approve("finance")
permit(principal, action, resource) when { context.arguments has kind && context.arguments.kind == "refund" };
`,
  },
};

describe('decide() with a trace', () => {
  const r = compileSnapshot(PolicyDocumentSchema.parse(DOC), IdentitySchema.parse({ namespace: 'shop', serviceAccount: 'agent' }), {
    hash: 'h',
    generation: 1,
  });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const gates = { ...r.snapshot.gates, visibility: r.snapshot.sources.get('bank')!.visibility };
  const now = new Date('2026-12-06T00:00:00Z');

  test.each([
    ['tools/call', { name: 'pay', arguments: { amount: 5 } }],
    ['tools/call', { name: 'pay', arguments: { amount: 5.5, __entity: { type: 'x', id: 'y' } } }],
    ['tools/call', { name: 'pay', arguments: { kind: 'refund' } }],
    ['tools/call', { name: 'admin_reset' }],
    ['tools/call', { name: 'wire' }],
    ['tools/call', { name: 'other' }],
    ['tools/list', {}],
  ])('%s %j: the same decision with or without a trace', (method, params) => {
    const d = describeOp('bank', method, params);
    if (!d.ok) throw new Error(d.reason);
    const trace: DecisionTrace = {};
    expect(decide(gates, d.op, now, trace)).toEqual(decide(gates, d.op, now));
  });

  test('each gate that ran is recorded; Cedar with the arguments as normalised for it', () => {
    const d = describeOp('bank', 'tools/call', { name: 'pay', arguments: { amount: 5.5, __entity: { type: 'x' }, gone: null } });
    if (!d.ok) throw new Error(d.reason);
    const trace: DecisionTrace = {};
    decide(gates, d.op, now, trace);
    expect(trace).toEqual({
      visibility: { kind: 'tool', name: 'pay', exposed: true },
      rules: { rule: 'pay-by-policy', index: 0, action: 'policy' },
      cedar: {
        decision: 'error',
        policies: ['small-payments'],
        reason: expect.stringContaining('policy small-payments failed'),
        arguments: { amount: { __extn: { fn: 'decimal', arg: '5.5' } }, ___entity: { type: 'x' } },
      },
    });
    const hidden: DecisionTrace = {};
    const h = describeOp('bank', 'tools/call', { name: 'admin_reset' });
    if (!h.ok) throw new Error(h.reason);
    decide(gates, h.op, now, hidden);
    expect(hidden).toEqual({ visibility: { kind: 'tool', name: 'admin_reset', exposed: false } });
    const plumbing: DecisionTrace = {};
    const p = describeOp('bank', 'tools/list', {});
    if (!p.ok) throw new Error(p.reason);
    decide(gates, p.op, now, plumbing);
    expect(plumbing).toEqual({ rules: { rule: null, action: 'deny', plumbing: true } });
  });
});

describe('the explanation', () => {
  const d = mkdtempSync(join(tmpdir(), 'tg-explain-'));
  writeFileSync(join(d, 'c.json'), JSON.stringify({ ...DOC, identity: { namespace: 'shop', serviceAccount: 'agent' } }));
  const now = new Date('2026-12-06T00:00:00Z');
  const explain = async (spec: Parameters<typeof messageOf>[0]) => {
    const t = await loadConfigTarget(join(d, 'c.json'), {});
    try {
      return explainCall(t, { identity: t.defaultIdentity, ...messageOf(spec), now });
    } finally {
      t.close();
    }
  };

  test('gate by gate: visibility and its pattern, the rule and its match, Cedar, gate 4', async () => {
    const e = await explain({ tool: 'pay', arguments: { kind: 'refund' } });
    expect(e.outcome).toEqual({
      decision: 'approve',
      gate: 'cedar',
      reason: 'permitted by refunds-by-human, subject to approval in finance',
      rule: 'pay-by-policy',
      cedarPolicies: ['refunds-by-human'],
      channel: 'finance',
      timeoutMs: 600_000,
      timeoutFrom: 'approvals.defaultTimeout',
      approvalUnavailable: 'this config has no approvalChannels: the sidecar answers -32006 APPROVAL_UNAVAILABLE',
    });
    const text = formatExplanation(e);
    expect(text).toBe(
      [
        'call               tools/call tool pay on source bank',
        'workload           shop/agent (pod standalone)',
        `config             config ${join(d, 'c.json')} (hash ${e.config.match(/hash (\w+)/)![1]})`,
        'gate 1 visibility  exposed (no entry of the blocklist expose.tools matches)',
        'gate 2 rules       rule pay-by-policy (rules[0]) matched {"tool":"pay"} → policy',
        'gate 3 cedar       allow, determined by refunds-by-human: permitted by refunds-by-human, subject to approval in finance',
        '                   @approve("finance")',
        '                   context.arguments (normalised) {"kind":"refund"}',
        'enforcement        enforce',
        'gate 4 approval    channel finance, timeout 10m (approvals.defaultTimeout)',
        '                   but this config has no approvalChannels: the sidecar answers -32006 APPROVAL_UNAVAILABLE',
        'decision           approve at gate cedar (rule pay-by-policy, Cedar refunds-by-human): permitted by refunds-by-human, subject to approval in finance',
      ].join('\n'),
    );
  });

  test('a denial names its error; the defaultAction and the rule timeout are shown', async () => {
    const denied = await explain({ tool: 'other' });
    expect(formatExplanation(denied)).toContain('gate 2 rules       no rule matched → defaultAction deny');
    expect(formatExplanation(denied)).toContain('decision           deny -32003 DENIED_BY_RULE at gate rules (rule defaultAction): denied by defaultAction');
    const wire = await explain({ tool: 'wire' });
    expect(formatExplanation(wire)).toContain('gate 4 approval    channel finance, timeout 5m (rule big-needs-a-human)');
    const hidden = await explain({ tool: 'admin_reset' });
    expect(formatExplanation(hidden)).toContain('gate 1 visibility  hidden (blocklist entry expose.tools "admin_*")');
    expect(hidden.gates.rules).toBeUndefined();
  });

  test('arguments Cedar refuses: the trace says so, and the call is denied as policy error', async () => {
    const deep = { a: {} as Record<string, unknown> };
    let at = deep.a;
    for (let i = 0; i < 40; i++) at = at['x'] = {};
    const e = await explain({ tool: 'pay', arguments: deep });
    expect(e.outcome).toMatchObject({ decision: 'deny', error: { code: -32005, name: 'POLICY_ERROR' } });
    expect(formatExplanation(e)).toContain('context.arguments: refused (see the reason)');
  });

  test("audit: the gates' decision stands in the trace, and the sidecar forwards (a rule's own enforcement over the document's)", async () => {
    const audited = {
      ...DOC,
      enforcement: 'audit',
      rules: [{ ...DOC.rules[0], enforcement: 'enforce' }, DOC.rules[1]],
      identity: { namespace: 'shop', serviceAccount: 'agent' },
    };
    writeFileSync(join(d, 'audit.json'), JSON.stringify(audited));
    const t = await loadConfigTarget(join(d, 'audit.json'), {});
    try {
      const call = (spec: Parameters<typeof messageOf>[0]) => explainCall(t, { identity: t.defaultIdentity, ...messageOf(spec), now });
      const other = call({ tool: 'other' });
      expect(other.outcome).toMatchObject({ decision: 'deny', enforced: 'forward', rule: 'defaultAction' });
      expect(other.gates.enforcement).toEqual({ mode: 'audit', note: 'the sidecar forwards the call and records that enforce would deny it' });
      expect(formatExplanation(other)).toContain('the sidecar does   forward (audit)');
      const hidden = call({ tool: 'admin_reset' });
      expect(hidden.outcome).toMatchObject({ decision: 'hidden', enforced: 'forward' });
      // pay-by-policy enforces on its own: Cedar's denial stands.
      const pay = call({ tool: 'pay', arguments: { amount: 500 } });
      expect(pay.outcome.decision).toBe('deny');
      expect(pay.outcome.enforced).toBeUndefined();
      expect(pay.gates.enforcement).toEqual({ mode: 'enforce' });
    } finally {
      t.close();
    }
  });

  test('which expose entry decided', () => {
    const allow = { mode: 'allowlist' as const, tools: ['get_*', 'list_*'] };
    expect(exposedBy(allow, 'tool', 'list_x', true)).toBe('allowlist entry expose.tools "list_*"');
    expect(exposedBy(allow, 'tool', 'put_x', false)).toBe('no entry of the allowlist expose.tools matches');
    expect(exposedBy({ mode: 'allowlist' }, 'prompt', 'p', false)).toBe('allowlist without expose.prompts: no prompt is exposed');
    expect(exposedBy({ mode: 'all' }, 'tool', 'x', true)).toBe('expose.mode all');
  });
});

describe('explain an A2A call', () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const A2A = {
    sources: [
      {
        name: 'billing',
        protocol: 'a2a',
        url: 'http://127.0.0.1:1',
        a2a: { jsonrpc: '/rpc', skillFrom: 'metadata.skill' },
        expose: { mode: 'allowlist', skills: ['refund', 'status'] },
      },
    ],
    rules: [
      { name: 'no-old-cancel', match: { method: 'tasks/cancel' }, action: 'deny' },
      { name: 'refunds-by-policy', match: { skill: 'refund' }, action: 'policy' },
    ],
    defaultAction: 'forward',
    cedar: {
      policies:
        '@id("small") permit(principal, action == ThoughtGate::Action::"SendMessage", resource == ThoughtGate::Agent::"billing") when { context.metadata.amount < 100 && !(context.text like "*everything*") };',
    },
  };

  test('either generation, decided on the canonical method, skill and metadata; refusals with A2A codes', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tg-explain-a2a-'));
    writeFileSync(join(d, 'a2a.json'), JSON.stringify(A2A));
    const t = await loadConfigTarget(join(d, 'a2a.json'), {});
    const call = (method: string, params: unknown) => explainCall(t, { identity: t.defaultIdentity, method, params, now });
    const send = (amount: number, text = 'refund please', skill = 'refund') => ({ message: { parts: [{ kind: 'text', text }], metadata: { skill, amount } } });
    expect(call('message/send', send(5)).outcome).toMatchObject({ decision: 'forward', gate: 'cedar', cedarPolicies: ['small'] });
    expect(call('message/send', send(500)).outcome).toMatchObject({ decision: 'deny', gate: 'cedar', error: { code: -32054, name: 'DENIED_BY_POLICY' } });
    // context.text is collected because a policy reads it.
    expect(call('message/send', send(5, 'refund everything')).outcome).toMatchObject({ decision: 'deny', gate: 'cedar' });
    const v10 = call('SendMessage', { message: { parts: [{ text: 'x' }], metadata: { skill: 'refund', amount: 1 } } });
    expect(v10).toMatchObject({ method: 'SendMessage', target: { kind: 'skill', decided: 'refund' }, outcome: { decision: 'forward' } });
    expect(call('message/send', send(1, 'x', 'admin'))).toMatchObject({
      outcome: { decision: 'hidden' },
      exposedBy: 'no entry of the allowlist expose.skills matches',
    });
    expect(call('CancelTask', { id: 't' }).outcome).toMatchObject({ decision: 'deny', rule: 'no-old-cancel', error: { code: -32053 } });
    expect(call('sendMessage', {}).outcome).toMatchObject({ decision: 'deny', gate: 'transport', error: { code: -32601 } });
    expect(call('message/send', { message: { parts: [], metadata: { skill: ['refund'] } } }).outcome).toMatchObject({
      decision: 'deny',
      error: { code: -32602 },
    });
    t.close();
  });
});

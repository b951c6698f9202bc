import { stringify } from 'yaml';
import type { ConfigMap, Custom, Namespace, Read } from './model.js';
import { decisionPolicyObjects } from '../api/approval-decision.js';
import { checkCapture, checkChannels, checkDecisionPolicy, checkNamespaces, checkPolicies, checkPolicy, checkRequests, duration } from './resource-checks.js';

const ok = <T>(value: T): Read<T> => ({ ok: true, value });
const now = new Date('2026-12-06T08:00:00Z');
const settings = { certWarnMs: 0, approvalWarnMs: 30 * 60_000 };
const ns = (name: string, labels: Record<string, string> = { 'thoughtgate.io/inject': 'enabled' }): Namespace => ({ metadata: { name, labels } });

const policy = (
  namespace: string,
  name: string,
  o: { generation?: number; observed?: number; valid?: string; ready?: string; hash?: string; validMessage?: string } = {},
): Custom => ({
  metadata: { name, namespace, generation: o.generation ?? 2 },
  spec: {},
  status: {
    observedGeneration: o.observed ?? o.generation ?? 2,
    configMap: 'thoughtgate-config',
    renderedHash: o.hash ?? 'h2',
    conditions: [
      { type: 'Valid', status: o.valid ?? 'True', reason: o.valid === 'False' ? 'Invalid' : 'Valid', message: o.validMessage ?? 'the policy is valid' },
      { type: 'Ready', status: o.ready ?? 'True', reason: 'Rendered' },
    ],
  },
});
const cm = (namespace: string, policies: Array<{ name: string; generation: number; hash: string }>): ConfigMap => ({
  metadata: { name: 'thoughtgate-config', namespace },
  data: {
    'config.yaml': `# Rendered\n${stringify({ apiVersion: 'thoughtgate.io/v1alpha1', kind: 'SidecarConfig', policies: policies.map((p) => ({ ...p, priority: 0, spec: {} })) })}`,
  },
});

describe('namespaces', () => {
  test('lists labelled namespaces and warns for those without a policy', () => {
    const r = checkNamespaces(ok([ns('b'), ns('a')]), ok([policy('a', 'p')]));
    expect(r[0]).toMatchObject({ status: 'ok', items: ['a', 'b'] });
    expect(r[1]).toMatchObject({ status: 'warn', items: ['b'] });
    expect(checkNamespaces(ok([ns('a')]), ok([policy('a', 'p')]))[1]!.status).toBe('ok');
    expect(checkNamespaces(ok([]), ok([]))[0]!.status).toBe('warn');
  });
});

describe('policies', () => {
  const cms = [cm('a', [{ name: 'p', generation: 2, hash: 'h2' }])];
  test('Valid, reconciled, Ready and rendered at its generation and hash', () => {
    expect(checkPolicy(policy('a', 'p'), cms)).toMatchObject({ id: 'policies/a/p', status: 'ok' });
  });
  test("in force with config warnings (the operator's Warnings condition): a warning naming them", () => {
    const p = policy('a', 'p');
    p.status!.conditions = [
      ...p.status!.conditions!,
      { type: 'Warnings', status: 'True', reason: 'ConfigWarnings', message: 'refunds: match.method covers SendMessage but not SendStreamingMessage' },
    ];
    expect(checkPolicy(p, cms)).toMatchObject({
      status: 'warn',
      message: 'GovernancePolicy a/p is in force with warnings: refunds: match.method covers SendMessage but not SendStreamingMessage',
    });
  });
  test('each way a policy is not in force fails with its reason', () => {
    const cases: Array<[Custom, ConfigMap[], string]> = [
      [policy('a', 'p', { valid: 'False', validMessage: 'cedar: parse error at 1:5' }), cms, 'is invalid: cedar: parse error at 1:5'],
      [policy('a', 'p', { generation: 3, observed: 2 }), cms, 'not reconciled (generation 3, observed 2)'],
      [policy('a', 'p', { ready: 'False' }), cms, 'not Ready'],
      [policy('a', 'p'), [], 'ConfigMap a/thoughtgate-config is missing'],
      [policy('a', 'p'), [cm('a', [{ name: 'q', generation: 2, hash: 'h2' }])], 'does not hold GovernancePolicy p'],
      [policy('a', 'p'), [cm('a', [{ name: 'p', generation: 1, hash: 'h1' }])], 'holds p at generation 1 hash h1'],
      [policy('a', 'p', { hash: 'h3' }), cms, 'hash h3'],
    ];
    for (const [p, c, text] of cases) {
      const r = checkPolicy(p, c);
      expect(r.status).toBe('fail');
      expect(r.message).toContain(text);
      expect(r.hint).toBeTruthy();
    }
  });
  test('none is a skip; a refused read fails; an unserved CRD skips', () => {
    expect(checkPolicies(ok([]), ok([]))[0]!.status).toBe('skip');
    const refused = checkPolicies({ ok: false, error: 'x', category: 'forbidden' }, ok([]))[0]!;
    expect(refused).toMatchObject({ status: 'fail', hint: expect.stringContaining('your credentials may not read GovernancePolicies') });
    expect(checkPolicies({ ok: false, error: 'x', category: 'server' }, ok([]))[0]!.hint).toContain('did not answer');
    expect(checkPolicies({ ok: false, error: 'x', category: 'not-found' }, ok([]))[0]!.status).toBe('skip');
  });
});

describe('approval channels and requests', () => {
  const channel = (name: string, ready?: { status: string; reason: string; message: string }): Custom => ({
    metadata: { name, namespace: 'a' },
    status: ready ? { conditions: [{ type: 'Ready', ...ready }] } : {},
  });
  test('Ready passes; not Ready or not checked yet fail', () => {
    const r = checkChannels(
      ok([
        channel('ok', { status: 'True', reason: 'ChannelReady', message: '' }),
        channel('bad', { status: 'False', reason: 'TokenSecretNotFound', message: 'secret slack not found' }),
        channel('new'),
      ]),
    );
    expect(r.map((x) => [x.id, x.status])).toEqual([
      ['approval-channels/a/bad', 'fail'],
      ['approval-channels/a/new', 'fail'],
      ['approval-channels/a/ok', 'ok'],
    ]);
    expect(r[0]!.message).toContain('TokenSecretNotFound');
  });
  const request = (name: string, ageMs: number, phase?: string): Custom => ({
    metadata: { name, namespace: 'a', creationTimestamp: new Date(now.getTime() - ageMs).toISOString() },
    spec: { tool: 'delete_file', channel: 'ops' },
    status: phase ? { phase } : {},
  });
  test('pending requests and their age; old ones warn, ended ones do not count', () => {
    expect(checkRequests(ok([]), now, settings).message).toBe('no pending ApprovalRequest');
    const young = checkRequests(ok([request('r1', 60_000, 'Posted'), request('r2', 5 * 3600_000, 'Approved')]), now, settings);
    expect(young).toMatchObject({ status: 'ok', message: '1 pending ApprovalRequest(s), the oldest 60s' });
    const old = checkRequests(ok([request('r1', 60_000), request('r3', 45 * 60_000, 'Pending')]), now, settings);
    expect(old).toMatchObject({ status: 'warn', items: ['a/r3: 45m, Pending, tool delete_file, channel ops'] });
  });
  test('durations', () => {
    expect([duration(5_000), duration(300_000), duration(3 * 3600_000), duration(3 * 86400_000)]).toEqual(['5s', '5m', '3h', '3d']);
  });
});

describe('capture report', () => {
  const withCapture = (namespace: string, c: Record<string, unknown>): Custom => ({
    ...policy(namespace, 'p'),
    status: { ...policy(namespace, 'p').status, capture: c },
  });
  test('uncaptured pods fail only where capture is required; bypassable ones warn', () => {
    const required = ns('r', { 'thoughtgate.io/inject': 'enabled', 'thoughtgate.io/capture': 'required' });
    const report = { notCapturedPods: ['app-1'], bypassablePods: [] };
    expect(checkCapture(ok([withCapture('r', report)]), ok([required]))).toMatchObject({ status: 'fail', items: ['r/app-1'] });
    expect(checkCapture(ok([withCapture('a', report)]), ok([ns('a')])).status).toBe('ok');
    expect(checkCapture(ok([withCapture('a', { notCapturedPods: [], bypassablePods: ['root-pod'] })]), ok([ns('a')]))).toMatchObject({
      status: 'warn',
      items: ['a/root-pod'],
    });
    expect(checkCapture(ok([policy('a', 'p')]), ok([ns('a')])).status).toBe('skip');
  });
});

describe('the ApprovalDecision identity policy', () => {
  const [policy, binding] = decisionPolicyObjects();
  test('installed as shipped passes; missing or weakened warns with a hint; unreadable says so', () => {
    expect(checkDecisionPolicy(ok({ policy, binding }))).toMatchObject({ id: 'approvals/decision-policy', status: 'ok' });
    const missing = checkDecisionPolicy(ok({ policy, binding: null }));
    expect(missing).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('ValidatingAdmissionPolicyBinding thoughtgate-approval-decisions is not installed'),
    });
    expect(missing.hint).toContain('deploy/thoughtgate.yaml');
    const weak = structuredClone(policy) as { spec: { validations: unknown[] } };
    weak.spec.validations = [];
    expect(checkDecisionPolicy(ok({ policy: weak, binding })).status).toBe('warn');
    expect(checkDecisionPolicy({ ok: false, error: 'forbidden', category: 'forbidden' }).status).toBe('fail');
  });
});

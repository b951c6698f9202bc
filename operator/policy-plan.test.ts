// The GovernancePolicy controller's decisions: what it writes for a namespace's policies and the
// ConfigMap in force. The writes themselves run against a real API server in e2e/operator.test.ts.
import type * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import type { KubeObject } from './kube-object.js';
import { planPolicies, type PolicyAction } from './policy-plan.js';

const now = new Date('2030-01-01T00:00:00Z');
const spec = { sources: [{ name: 'gh', url: 'https://gh.example/mcp' }], defaultAction: 'forward' };
const gp = (name: string, over: Partial<KubeObject> & { spec?: unknown } = {}): KubeObject => ({
  apiVersion: 'thoughtgate.io/v1alpha1',
  kind: 'GovernancePolicy',
  metadata: { name, namespace: 'team-a', generation: 1, uid: `uid-${name}` },
  spec,
  ...over,
});
const plan = (policies: KubeObject[], configMap?: k8s.V1ConfigMap, channels: string[] = []) =>
  planPolicies({ namespace: 'team-a', policies, channels: new Set(channels), configMap, now });
const kinds = (actions: PolicyAction[]) =>
  actions.map((a) => (a.do === 'event' ? `event ${a.reason}` : a.do === 'write-status' ? `status ${a.policy.metadata.name}` : a.do));

/** The ConfigMap as the API server would return it after the plan's apply. */
function applied(actions: PolicyAction[]): k8s.V1ConfigMap {
  const a = actions.find((x) => x.do === 'apply-configmap');
  if (a?.do !== 'apply-configmap') throw new Error('no apply');
  return a.body;
}
/** A policy whose status is what the plan wrote. */
function written(p: KubeObject, actions: PolicyAction[]): KubeObject {
  const w = actions.find((x) => x.do === 'write-status' && x.policy.metadata.name === p.metadata.name);
  if (w?.do !== 'write-status') throw new Error('no status');
  return { ...p, status: JSON.parse(JSON.stringify(w.status)) };
}

describe('planPolicies', () => {
  test('a new policy: apply the ConfigMap (owned by the policy, our labels only), write Ready status, one Rendered event', () => {
    const p = plan([
      gp('base', { metadata: { name: 'base', namespace: 'team-a', generation: 1, uid: 'u1', labels: { 'app.kubernetes.io/instance': 'argo' } } }),
    ]);
    expect(kinds(p.actions)).toEqual(['apply-configmap', 'status base', 'event Rendered']);
    const cm = applied(p.actions);
    expect(cm.metadata).toMatchObject({
      name: 'thoughtgate-config',
      labels: { 'app.kubernetes.io/managed-by': 'thoughtgate-operator', 'app.kubernetes.io/component': 'sidecar-config' },
      annotations: { 'thoughtgate.io/config-hash': p.hash },
      ownerReferences: [{ kind: 'GovernancePolicy', name: 'base', uid: 'u1', controller: false, blockOwnerDeletion: false }],
    });
    const status = p.actions.find((a) => a.do === 'write-status');
    expect(status).toMatchObject({
      status: {
        observedGeneration: 1,
        configMap: 'thoughtgate-config',
        conditions: [
          { type: 'Valid', status: 'True' },
          { type: 'Ready', status: 'True' },
        ],
      },
    });
  });

  test('nothing changed since: no write at all', () => {
    const p0 = gp('base');
    const first = plan([p0]);
    expect(plan([written(p0, first.actions)], applied(first.actions)).actions).toEqual([]);
  });

  test('someone edited the ConfigMap or its owners: applied again, statuses untouched', () => {
    const p0 = gp('base');
    const first = plan([p0]);
    const cm = applied(first.actions);
    const edited = { ...cm, data: { 'config.yaml': 'policies: []\n' } };
    expect(kinds(plan([written(p0, first.actions)], edited).actions)).toEqual(['apply-configmap']);
    const orphaned = { ...cm, metadata: { ...cm.metadata, ownerReferences: [] } };
    expect(kinds(plan([written(p0, first.actions)], orphaned).actions)).toEqual(['apply-configmap']);
  });

  test('an invalid change keeps the last good rendering: no apply, a Warning once, Ready False naming the serving generation', () => {
    const p0 = gp('base');
    const first = plan([p0]);
    const cm = applied(first.actions);
    const bad = { ...written(p0, first.actions), metadata: { ...p0.metadata, generation: 2 }, spec: { ...spec, defaultAction: 'maybe' } };
    const second = plan([bad], cm);
    expect(kinds(second.actions)).toEqual(['status base', 'event InvalidPolicy']);
    expect(second.actions[0]).toMatchObject({
      status: {
        observedGeneration: 2,
        renderedHash: written(p0, first.actions).status!.renderedHash,
        conditions: [
          { type: 'Valid', status: 'False' },
          { type: 'Ready', status: 'False', message: 'generation 2 is invalid; generation 1, the last valid one, keeps serving' },
        ],
      },
    });
    // Planned again on what it wrote: nothing more (no second Warning).
    expect(plan([written(bad, second.actions)], cm).actions).toEqual([]);
  });

  test('a missing ApprovalChannel makes a policy invalid; creating the channel renders it', () => {
    const p0 = gp('base', { spec: { ...spec, rules: [{ match: { tool: 'x' }, action: 'approve', approval: { channel: 'ops' } }] } });
    expect(kinds(plan([p0]).actions)).toEqual(['status base', 'event InvalidPolicy']);
    expect(kinds(plan([p0], undefined, ['ops']).actions)).toEqual(['apply-configmap', 'status base', 'event Rendered']);
  });

  test('the last policy gone (or being deleted): the ConfigMap is deleted; nothing to delete, nothing done', () => {
    const first = plan([gp('base')]);
    const cm = applied(first.actions);
    expect(plan([], cm).actions).toEqual([{ do: 'delete-configmap' }]);
    expect(plan([gp('base', { metadata: { name: 'base', namespace: 'team-a', deletionTimestamp: now } })], cm).actions).toEqual([{ do: 'delete-configmap' }]);
    expect(plan([]).actions).toEqual([]);
    expect(plan([]).hash).toBeNull();
  });
});

describe('credentials (custody)', () => {
  const secretHeader = { valueFrom: { secretKeyRef: { name: 'gh-token', key: 'token' } }, prefix: 'Bearer ' };

  test('a secretKeyRef header is rendered as the reference: the ConfigMap, status and Event hold no value', () => {
    const p = plan([gp('base', { spec: { ...spec, sources: [{ name: 'gh', url: 'https://gh.example/mcp', headers: { Authorization: secretHeader } }] } })]);
    expect(kinds(p.actions)).toEqual(['apply-configmap', 'status base', 'event Rendered']);
    const text = applied(p.actions).data!['config.yaml']!;
    expect(text).toContain('secretKeyRef');
    expect(text).toContain('gh-token');
    // The reference exactly as written: the operator never reads the Secret, so there is no value to leak.
    expect(parseYaml(text).policies[0].spec.sources[0].headers).toEqual({ Authorization: secretHeader });
  });

  test.each([
    ['file', { valueFrom: { file: '/var/run/secrets/kubernetes.io/serviceaccount/token' } }],
    ['env', { valueFrom: { env: 'AWS_SECRET_ACCESS_KEY' } }],
  ])('a %s header is refused with a status naming it, and nothing is rendered', (kind, value) => {
    const p = plan([gp('base', { spec: { ...spec, sources: [{ name: 'gh', url: 'https://gh.example/mcp', headers: { Authorization: value } }] } })]);
    expect(kinds(p.actions)).toEqual(['status base', 'event InvalidPolicy']);
    const status = p.actions.find((a) => a.do === 'write-status');
    if (status?.do !== 'write-status') throw new Error('no status');
    expect(status.status.conditions.find((c) => c.type === 'Valid')).toMatchObject({
      status: 'False',
      message: `spec.sources[0].headers.Authorization.valueFrom.${kind}: valueFrom.${kind} is only allowed in a standalone thoughtgate.yaml; a GovernancePolicy names credentials with valueFrom.secretKeyRef (it must not make the sidecar send its own ${kind === 'file' ? 'files' : 'environment'} upstream)`,
    });
  });
});

describe('enforcement (audit mode) changes', () => {
  test('audit → enforce (Normal) and a rule going to audit (Warning: enforcement turned off) are Events on the policy; a new policy or an unrelated change is not', () => {
    const audit = gp('rollout', { spec: { ...spec, enforcement: 'audit' } });
    const first = plan([audit]);
    expect(kinds(first.actions)).not.toContain('event EnforcementChanged');
    const cm = applied(first.actions);
    const enforce = { ...written(audit, first.actions), metadata: { ...audit.metadata, generation: 2 }, spec };
    const second = plan([enforce], cm);
    const ev = second.actions.find((a) => a.do === 'event' && a.reason === 'EnforcementChanged');
    expect(ev).toMatchObject({ type: 'Normal', message: 'enforcement changed from audit to enforce (generation 2)' });
    const oneRule = {
      ...enforce,
      metadata: { ...audit.metadata, generation: 3 },
      spec: {
        ...spec,
        rules: [
          { name: 'new-deny', match: { tool: 'x' }, action: 'deny', enforcement: 'audit' },
          { match: { tool: 'y' }, action: 'deny', enforcement: 'enforce' },
        ],
      },
    };
    const third = plan([oneRule], applied(second.actions));
    expect(third.actions.find((a) => a.do === 'event' && a.reason === 'EnforcementChanged')).toMatchObject({
      type: 'Warning',
      message: 'enforcement changed from enforce to enforce (audit: rules new-deny) (generation 3)',
    });
    const backToAudit = { ...oneRule, metadata: { ...audit.metadata, generation: 5 }, spec: { ...oneRule.spec, enforcement: 'audit' } };
    expect(plan([backToAudit], applied(third.actions)).actions.find((a) => a.do === 'event' && a.reason === 'EnforcementChanged')).toMatchObject({
      type: 'Warning',
      message: 'enforcement changed from enforce (audit: rules new-deny) to audit (enforce: rules rules[1]) (generation 5)',
    });
    const unrelated = { ...oneRule, metadata: { ...audit.metadata, generation: 4 }, spec: { ...oneRule.spec, defaultAction: 'deny' } };
    expect(kinds(plan([unrelated], applied(third.actions)).actions)).not.toContain('event EnforcementChanged');
  });
});

describe('cedar.json', () => {
  const withCedar = gp('c', { spec: { ...spec, cedar: { policies: '@id("a") permit(principal, action, resource);' } } });

  test('applied with config.yaml when a policy has Cedar; no key without', () => {
    const cm = applied(plan([withCedar]).actions);
    expect(JSON.parse(cm.data!['cedar.json']!)).toMatchObject({ version: 1, policies: { c: { policies: [{ id: 'a', effect: 'permit' }] } } });
    expect(Object.keys(applied(plan([gp('base')]).actions).data!)).toEqual(['config.yaml']);
  });

  test('a ConfigMap whose cedar.json differs (or lacks it) is applied again; the same is left alone', () => {
    const cm = applied(plan([withCedar]).actions);
    const p = written(withCedar, plan([withCedar]).actions);
    expect(kinds(plan([p], cm).actions)).toEqual([]);
    const { 'cedar.json': _gone, ...rest } = cm.data!;
    expect(kinds(plan([p], { ...cm, data: rest }).actions)).toEqual(['apply-configmap']);
    expect(kinds(plan([p], { ...cm, data: { ...cm.data, 'cedar.json': '{}' } }).actions)).toEqual(['apply-configmap']);
  });

  test('an invalid change keeps the last good parsed form', () => {
    const cm = applied(plan([withCedar]).actions);
    const bad = { ...written(withCedar, plan([withCedar]).actions), spec: { ...spec, cedar: { policies: 'permit(' } } };
    const next = plan([{ ...bad, metadata: { ...bad.metadata, generation: 2 } }], cm);
    expect(next.actions.some((a) => a.do === 'apply-configmap')).toBe(false);
  });

  test('config warnings: a Warnings condition and one Warning event while they change; gone with them, nothing written when steady', () => {
    const warned = {
      sources: [{ name: 'billing', protocol: 'a2a', url: 'https://billing.example', a2a: { jsonrpc: '/rpc' } }],
      rules: [{ name: 'refunds', match: { method: 'SendMessage' }, action: 'deny' }],
      defaultAction: 'forward',
    };
    const first = gp('a2a', { spec: warned });
    const p1 = plan([first]);
    expect(kinds(p1.actions)).toEqual(['apply-configmap', 'status a2a', 'event ConfigWarnings', 'event Rendered']);
    const w1 = written(first, p1.actions);
    expect(w1.status!.conditions!.find((c) => c.type === 'Warnings')).toMatchObject({
      status: 'True',
      reason: 'ConfigWarnings',
      message: expect.stringMatching(/^refunds: match.method covers SendMessage but not SendStreamingMessage/),
    });
    const ev = p1.actions.find((a) => a.do === 'event' && a.reason === 'ConfigWarnings');
    expect(ev).toMatchObject({ type: 'Warning', message: expect.stringMatching(/^generation 1: refunds: /) });
    // Reconciled again unchanged: nothing to write, no second event.
    expect(plan([w1], applied(p1.actions)).actions).toEqual([]);
    // Fixed: the condition goes, no warning event.
    const fixed = { ...w1, metadata: { ...w1.metadata, generation: 2 }, spec: { ...warned, rules: [{ match: { method: 'Send*' }, action: 'deny' }] } };
    const p2 = plan([fixed], applied(p1.actions));
    expect(kinds(p2.actions)).toEqual(['apply-configmap', 'status a2a', 'event Rendered']);
    expect(written(fixed, p2.actions).status!.conditions!.map((c) => c.type)).toEqual(['Valid', 'Ready']);
  });
});

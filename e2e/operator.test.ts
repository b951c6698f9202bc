// The operator against a real kube-apiserver: GovernancePolicy → ConfigMap → status and Events,
// invalid changes never replace the last good config, sidecar RBAC in injected namespaces, drift
// repaired, and restarts (operator and API server) and two replicas lose nothing.
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { cluster, e2eCluster, getJson, kubectl, kubectlResult, until } from './support/k8s.js';
import { createLogger } from '../lib/log.js';
import { startOperator, type Operator } from '../operator/operator.js';

const e2e = e2eCluster('operator');
const NS = e2e.ns('team-a');
const OPNS = e2e.ns('system');
const lines: string[] = [];

function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster().kubeconfig);
  return kc;
}

function operator(identity: string): Promise<Operator> {
  return startOperator({
    kc: kubeConfig(),
    namespace: OPNS,
    identity,
    log: createLogger('debug', (l) => lines.push(l)),
    metricsPort: 0,
    metricsBind: '127.0.0.1',
    leaseDurationSec: 3,
    resyncMs: 60_000,
  });
}

const policy = (name: string, extra = '', cedar = 'permit(principal, action, resource);') => `
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata:
  name: ${name}
  labels:
    app.kubernetes.io/instance: argo-app      # Argo CD's tracking label: must not be copied
spec:
  sources:
    - name: everything
      url: http://everything.mcp.svc:3001/mcp
  rules:
    - match: { tool: "delete_*" }
      action: deny
    - match: { tool: "get-sum" }
      action: policy
  defaultAction: forward
  cedar:
    policies: |
      ${cedar}
${extra}`;

const configMap = () => getJson(['get', 'configmap', 'thoughtgate-config', '-n', NS]);
const rendered = async () => {
  const cm = await configMap();
  return cm ? parseYaml(cm.data['config.yaml']) : null;
};
const condition = (obj: any, type: string) => obj?.status?.conditions?.find((c: any) => c.type === type);

beforeAll(async () => {
  await e2e.namespace('system');
  await e2e.namespace('team-a');
}, 60_000);

describe('the operator', () => {
  let op: Operator;
  beforeAll(async () => {
    op = await operator('op-1');
  });
  afterAll(async () => {
    await op?.close();
  });

  test('a policy is rendered into thoughtgate-config with owner references, a hash, Ready and Valid', async () => {
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('base'));
    const cfg = await until('the ConfigMap', rendered);
    expect(cfg).toMatchObject({ apiVersion: 'thoughtgate.io/v1alpha1', kind: 'SidecarConfig', policies: [{ name: 'base', priority: 0, generation: 1 }] });
    expect(cfg.policies[0].spec.defaultAction).toBe('forward');
    const cm = await configMap();
    expect(cm.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'thoughtgate-operator', 'app.kubernetes.io/component': 'sidecar-config' });
    expect(cm.metadata.annotations['thoughtgate.io/config-hash']).toMatch(/^[0-9a-f]{16}$/);
    const gp = await getJson(['get', 'gp', 'base', '-n', NS]);
    expect(cm.metadata.ownerReferences).toEqual([
      { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'GovernancePolicy', name: 'base', uid: gp.metadata.uid, blockOwnerDeletion: false, controller: false },
    ]);
    const ready = await until('Ready', async () => {
      const g = await getJson(['get', 'gp', 'base', '-n', NS]);
      return condition(g, 'Ready')?.status === 'True' ? g : null;
    });
    expect(condition(ready, 'Valid')).toMatchObject({ status: 'True', observedGeneration: 1 });
    expect(ready.status).toMatchObject({ observedGeneration: 1, configMap: 'thoughtgate-config', renderedHash: cfg.policies[0].hash });
    const table = await kubectl(['get', 'gp', '-n', NS]);
    expect(table).toMatch(/base\s+0\s+True\s+[0-9a-f]{16}/);
  });

  test('an invalid change keeps the last good config, with the exact error in status and an Event', async () => {
    const before = await configMap();
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('base', '', 'permit(principal, action, resource'));
    const gp = await until('Valid=False', async () => {
      const g = await getJson(['get', 'gp', 'base', '-n', NS]);
      return condition(g, 'Valid')?.status === 'False' ? g : null;
    });
    expect(condition(gp, 'Valid').message).toMatch(/^spec\.cedar\.policies:1:\d+: /);
    expect(condition(gp, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidPolicy',
      message: 'generation 2 is invalid; generation 1, the last valid one, keeps serving',
    });
    expect((await configMap()).data).toEqual(before.data);
    const events = await until('the Event', async () => {
      const e = await getJson(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=base,reason=InvalidPolicy']);
      return e?.items.length ? e.items : null;
    });
    expect(events[0]).toMatchObject({ type: 'Warning', source: { component: 'thoughtgate-operator' } });
    expect(events[0].message).toContain('spec.cedar.policies:1:');
    // Fixing it renders generation 3.
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('base', '', 'forbid(principal, action, resource) when { context.arguments has x };'));
    await until('generation 3 rendered', async () => (await rendered())?.policies[0].generation === 3);
  });

  test('a reference to an ApprovalChannel that does not exist is invalid until it exists', async () => {
    await kubectl(
      ['apply', '-n', NS, '-f', '-'],
      policy(
        'approvals',
        `  priority: 5
  podSelector: { matchLabels: { app: payments } }
`,
        '@approve("finance") permit(principal, action, resource);',
      ),
    );
    const gp = await until('Valid=False', async () => {
      const g = await getJson(['get', 'gp', 'approvals', '-n', NS]);
      return condition(g, 'Valid')?.status === 'False' ? g : null;
    });
    expect(condition(gp, 'Valid').message).toBe(`approval channel "finance" is referenced but no ApprovalChannel "finance" exists in namespace ${NS}`);
    expect(condition(gp, 'Ready').message).toBe('generation 1 is invalid and no earlier generation was valid; nothing of this policy is served');
    expect((await rendered()).policies.map((p: any) => p.name)).toEqual(['base']);
    await kubectl(
      ['apply', '-n', NS, '-f', '-'],
      `
apiVersion: thoughtgate.io/v1alpha1
kind: ApprovalChannel
metadata: { name: finance }
spec:
  slack: { channel: C0123ABCD, tokenSecretRef: { name: slack-bot } }
  approvers: { users: [U0123ABCD] }
`,
    );
    const cfg = await until('both policies rendered', async () => {
      const r = await rendered();
      return r?.policies.length === 2 ? r : null;
    });
    // Selection order: priority first.
    expect(cfg.policies.map((p: any) => [p.name, p.priority, p.podSelector])).toEqual([
      ['approvals', 5, { matchLabels: { app: 'payments' } }],
      ['base', 0, undefined],
    ]);
  });

  test('edits to the ConfigMap by anyone else are repaired', async () => {
    const good = await configMap();
    await kubectl(['patch', 'configmap', 'thoughtgate-config', '-n', NS, '--type=merge', '-p', '{"data":{"config.yaml":"policies: []\\n"}}']);
    await until('the repair', async () => (await configMap())?.data['config.yaml'] === good.data['config.yaml']);
    await kubectl(['delete', 'configmap', 'thoughtgate-config', '-n', NS]);
    await until('the re-creation', async () => (await configMap())?.data['config.yaml'] === good.data['config.yaml']);
  });

  test('injected namespaces get a sidecar Role that reads thoughtgate-config and nothing else', async () => {
    await kubectl(['label', 'namespace', NS, 'thoughtgate.io/inject=enabled']);
    const role = await until('the Role', () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS]));
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['thoughtgate-config'], verbs: ['get', 'list', 'watch'] },
      // Cluster approvals (e2e/approvals.test.ts checks what the sidecar token can do with them).
      { apiGroups: ['thoughtgate.io'], resources: ['approvalrequests'], verbs: ['create', 'get', 'list', 'watch', 'patch'] },
      // Audit mode's Events (e2e/audit.test.ts checks what the sidecar token can do with them).
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'get', 'patch'] },
    ]);
    const rb = await until('the RoleBinding', () => getJson(['get', 'rolebinding', 'thoughtgate-sidecar', '-n', NS]));
    expect(rb.subjects).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${NS}` }]);
    await kubectl(['create', 'serviceaccount', 'agent', '-n', NS]);
    const can = (verb: string, what: string) =>
      kubectlResult(['auth', 'can-i', verb, what, '-n', NS, `--as=system:serviceaccount:${NS}:agent`]).then((r) => r.stdout.trim());
    expect(await can('get', 'configmap/thoughtgate-config')).toBe('yes');
    expect(await can('get', 'configmap/other')).toBe('no');
    expect(await can('get', 'secrets')).toBe('no');
    expect(await can('list', 'pods')).toBe('no');
    await kubectl(['label', 'namespace', NS, 'thoughtgate.io/inject-']);
    await until('the Role removed', async () => (await getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS])) === null);
    await kubectl(['label', 'namespace', NS, 'thoughtgate.io/inject=enabled']);
    await until('the Role back', () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS]));
  });

  test('deleting a policy updates the ConfigMap; deleting the last one removes it', async () => {
    await kubectl(['delete', 'gp', 'approvals', '-n', NS]);
    await until('one policy left', async () => (await rendered())?.policies.length === 1);
    await kubectl(['delete', 'gp', 'base', '-n', NS]);
    await until('the ConfigMap gone', async () => (await configMap()) === null);
  });

  test('reconciles, admissions and leadership are on /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${op.metricsPort}/metrics`)).text();
    expect(text).toMatch(/thoughtgate_operator_reconciles_total\{kind="ns",result="success"\} [1-9]/);
    expect(text).toMatch(/^thoughtgate_operator_leader 1$/m);
    expect(text).toContain('thoughtgate_operator_reconcile_duration_seconds_bucket');
    expect((await fetch(`http://127.0.0.1:${op.metricsPort}/readyz`)).status).toBe(200);
  });
});

describe('restarts and replicas', () => {
  test('changes made while the operator is down are rendered when it comes back', async () => {
    let op = await operator('op-1');
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('restart'));
    await until('rendered', async () => (await rendered())?.policies[0]?.name === 'restart');
    await op.close();
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('restart', '  priority: 7\n'));
    op = await operator('op-1');
    await until('the change rendered', async () => (await rendered())?.policies[0]?.priority === 7);
    await op.close();
  });

  test('an API server restart loses nothing: a later change is still rendered', async () => {
    const op = await operator('op-1');
    try {
      await until('ready', async () => op.isLeader());
      await cluster().restartApiServer();
      await kubectl(['apply', '-n', NS, '-f', '-'], policy('restart', '  priority: 9\n'));
      await until('rendered after the restart', async () => (await rendered())?.policies[0]?.priority === 9, 60_000);
    } finally {
      await op.close();
    }
  });

  test('two operators elect one leader; when it stops the other takes over', async () => {
    const a = await operator('op-a');
    await until('a leader', async () => a.isLeader());
    const b = await operator('op-b');
    await new Promise((r) => setTimeout(r, 2000));
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
    const lease = await getJson(['get', 'lease', 'thoughtgate-operator', '-n', OPNS]);
    expect(lease.spec.holderIdentity).toBe('op-a');
    await a.close();
    await until('b takes over', async () => b.isLeader(), 15_000);
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('restart', '  priority: 11\n'));
    await until('b renders', async () => (await rendered())?.policies[0]?.priority === 11);
    expect((await getJson(['get', 'lease', 'thoughtgate-operator', '-n', OPNS])).spec.holderIdentity).toBe('op-b');
    await b.close();
  });
});

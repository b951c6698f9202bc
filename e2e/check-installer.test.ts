// `thoughtgate check --pre` asks the API server whether the installer may create what the chart
// renders and grant what its roles grant. That list (check/pre-checks.ts) is kept by hand; this
// test pins it to the chart as the real helm renders it, so a role or an object added to the chart
// without its question fails here instead of failing the install.
import { installerQuestions, optionalInstallerQuestions } from '../check/pre-checks.js';
import type { AccessQuestion } from '../check/model.js';
import { installHelm, type K8sObject, renderChart } from './support/helm.js';

const NS = 'tg-system';
let helmBin: string;

beforeAll(async () => {
  helmBin = await installHelm();
}, 15 * 60_000);

/** Kind → API group and resource, for what the chart renders (a new kind must be added here and to the check). */
const RESOURCES: Record<string, { group: string; resource: string; namespaced: boolean }> = {
  ServiceAccount: { group: '', resource: 'serviceaccounts', namespaced: true },
  Service: { group: '', resource: 'services', namespaced: true },
  Secret: { group: '', resource: 'secrets', namespaced: true },
  ConfigMap: { group: '', resource: 'configmaps', namespaced: true },
  Deployment: { group: 'apps', resource: 'deployments', namespaced: true },
  PodDisruptionBudget: { group: 'policy', resource: 'poddisruptionbudgets', namespaced: true },
  Role: { group: 'rbac.authorization.k8s.io', resource: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io', resource: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', namespaced: false },
  MutatingWebhookConfiguration: { group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', namespaced: false },
  ValidatingAdmissionPolicy: { group: 'admissionregistration.k8s.io', resource: 'validatingadmissionpolicies', namespaced: false },
  ValidatingAdmissionPolicyBinding: { group: 'admissionregistration.k8s.io', resource: 'validatingadmissionpolicybindings', namespaced: false },
  // Only with values that are off by default (--pre names them without asking).
  PrometheusRule: { group: 'monitoring.coreos.com', resource: 'prometheusrules', namespaced: true },
  ServiceMonitor: { group: 'monitoring.coreos.com', resource: 'servicemonitors', namespaced: true },
  Certificate: { group: 'cert-manager.io', resource: 'certificates', namespaced: true },
  Issuer: { group: 'cert-manager.io', resource: 'issuers', namespaced: true },
};

/** Does some question ask for verb on group/resource where `namespace` (undefined: cluster-wide) needs it? */
function asked(qs: AccessQuestion[], verb: string, group: string, resource: string, namespace: string | undefined): boolean {
  return qs.some(
    (q) =>
      q.verb === verb && q.group === group && q.resource === resource && (q.namespace === undefined || (namespace !== undefined && q.namespace === namespace)),
  );
}

/** What an installer who passes `qs` could not create, patch or delete among `objects`. */
function notCovered(objects: K8sObject[], qs: AccessQuestion[]): string[] {
  const missing: string[] = [];
  for (const o of objects) {
    const r = RESOURCES[o.kind];
    if (!r) {
      missing.push(`${o.kind} ${o.metadata.name}: a kind check/pre-checks.ts does not ask about`);
      continue;
    }
    const namespace = r.namespaced ? (o.metadata.namespace ?? NS) : undefined;
    for (const verb of ['get', 'create', 'patch', 'delete'])
      if (!asked(qs, verb, r.group, r.resource, namespace)) missing.push(`${verb} ${r.resource} (${o.kind} ${o.metadata.name})`);
  }
  return missing;
}

test('every object the chart renders (defaults) can be created, patched and deleted by an installer who passes --pre', async () => {
  const objects = await renderChart(helmBin, [], 'tg', NS);
  expect(notCovered(objects, installerQuestions(NS, false))).toEqual([]);
  expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['ClusterRole', 'Role', 'Deployment', 'MutatingWebhookConfiguration']));
});

test('with the optional values on, what they add is asked or named in the --pre note (the dashboard in another namespace too)', async () => {
  const on = ['prometheusRule.enabled', 'metrics.serviceMonitor.enabled', 'grafanaDashboard.enabled', 'webhook.certManager.enabled'];
  const objects = await renderChart(helmBin, [...on.flatMap((v) => ['--set', `${v}=true`]), '--set', 'grafanaDashboard.namespace=monitoring'], 'tg', NS);
  const optional = optionalInstallerQuestions(NS);
  expect(notCovered(objects, installerQuestions(NS, true))).toEqual(
    expect.arrayContaining([expect.stringMatching(/PrometheusRule/), expect.stringMatching(/ServiceMonitor/), expect.stringMatching(/Certificate/)]),
  );
  expect(notCovered(objects, [...installerQuestions(NS, true), ...optional.flatMap((o) => o.questions)])).toEqual([]);
  expect(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.namespace === 'monitoring')).toBeDefined();
  expect(optional.map((o) => o.values)).toEqual(on.filter((v) => v !== 'grafanaDashboard.enabled'));
});

test("every permission the chart's roles grant is one --pre checks the installer holds (RBAC grants only what one holds)", async () => {
  const objects: K8sObject[] = await renderChart(helmBin, [], 'tg', NS);
  const qs = installerQuestions(NS, true);
  const missing: string[] = [];
  let rules = 0;
  for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
    const namespace = o.kind === 'Role' ? NS : undefined;
    for (const rule of o.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
      rules++;
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs)
            if (!asked(qs, verb, group, resource, namespace))
              missing.push(`${o.kind} ${o.metadata.name}: ${verb} ${group ? `${resource}.${group}` : resource}`);
    }
  }
  expect(missing).toEqual([]);
  expect(rules).toBeGreaterThan(5);
});

// Pre-install: can this cluster and this user take the chart? The API server's version, the
// installer's permissions for what the chart creates and grants, no ThoughtGate webhook already
// registered, and no CRD of ours at an incompatible version.
import type { AccessAnswer, AccessQuestion, CheckResult, PreSnapshot, Read, WebhookConfiguration } from './model.js';
import { checkCrdsPre, checkVersion } from './cluster-checks.js';
import { WEBHOOK_NAMES } from './installation.js';
import { readFailure } from './read.js';

const INSTALL = ['get', 'create', 'patch', 'delete'];
const q = (group: string, resource: string, verbs: string[], why: string, namespace?: string): AccessQuestion[] =>
  verbs.map((verb) => ({ verb, group, resource, why, ...(namespace !== undefined ? { namespace } : {}) }));

/**
 * The SelfSubjectAccessReviews an installer must pass: create and manage what the chart renders
 * (charts/thoughtgate/templates, crds/), Helm's release Secrets, and hold every permission the
 * chart's ClusterRole and Role grant the operator (RBAC refuses to grant what one does not hold,
 * unless one may `escalate`).
 */
export function installerQuestions(namespace: string, namespaceExists: boolean): AccessQuestion[] {
  const chart = 'the chart creates it';
  const grant = 'the chart grants it to the operator (RBAC: one may only grant what one holds)';
  const all: AccessQuestion[] = [
    ...(namespaceExists ? [] : q('', 'namespaces', ['create'], `the namespace ${namespace} does not exist yet (helm --create-namespace)`)),
    ...q('apiextensions.k8s.io', 'customresourcedefinitions', INSTALL, 'the chart installs the CRDs (crds/)'),
    ...q('admissionregistration.k8s.io', 'mutatingwebhookconfigurations', INSTALL, chart),
    // The ApprovalDecision identity policy (templates/approvaldecision-policy.yaml); the operator reads it.
    ...q('admissionregistration.k8s.io', 'validatingadmissionpolicies', INSTALL, `${chart}; ${grant}`),
    ...q('admissionregistration.k8s.io', 'validatingadmissionpolicybindings', INSTALL, `${chart}; ${grant}`),
    ...q('rbac.authorization.k8s.io', 'clusterroles', INSTALL, chart),
    ...q('rbac.authorization.k8s.io', 'clusterrolebindings', INSTALL, chart),
    // Cluster-wide: the chart's Role and RoleBinding are in the namespace, and its ClusterRole grants
    // the operator the sidecar's Role and RoleBinding in every namespace.
    ...q('rbac.authorization.k8s.io', 'roles', INSTALL, `${chart}; ${grant}`),
    ...q('rbac.authorization.k8s.io', 'rolebindings', INSTALL, `${chart}; ${grant}`),
    ...q('apps', 'deployments', INSTALL, chart, namespace),
    ...q('', 'services', INSTALL, chart, namespace),
    ...q('', 'serviceaccounts', INSTALL, chart, namespace),
    ...q('policy', 'poddisruptionbudgets', INSTALL, chart, namespace),
    ...q(
      '',
      'secrets',
      ['get', 'list', 'create', 'update', 'delete'],
      'Helm keeps its release in Secrets of the namespace; the chart grants the operator its webhook Secret',
      namespace,
    ),
    ...q('coordination.k8s.io', 'leases', ['get', 'create', 'update'], grant, namespace),
    ...q('thoughtgate.io', 'governancepolicies', ['list', 'watch'], grant),
    ...q('thoughtgate.io', 'approvalchannels', ['list', 'watch'], grant),
    ...q('thoughtgate.io', 'approvalrequests', ['get', 'list', 'watch', 'create', 'patch', 'delete'], grant),
    ...q('thoughtgate.io', 'governancepolicies/status', ['patch'], grant),
    ...q('thoughtgate.io', 'approvalchannels/status', ['patch'], grant),
    ...q('thoughtgate.io', 'approvalrequests/status', ['patch'], grant),
    ...q('thoughtgate.io', 'approvaldecisions', ['list', 'watch', 'create'], grant),
    ...q('thoughtgate.io', 'approvaldecisions/status', ['patch'], grant),
    ...q('', 'configmaps', ['get', 'list', 'watch', 'create', 'patch', 'delete'], grant),
    ...q('', 'events', ['create', 'get', 'patch', 'list', 'watch'], grant),
    ...q('', 'secrets', ['get'], "the chart grants the operator reading ApprovalChannels' Slack token Secrets (ClusterRole slack-token-reader)"),
    ...q('', 'namespaces', ['list', 'watch'], grant),
    ...q('', 'pods', ['list', 'watch'], grant),
  ];
  const seen = new Set<string>();
  return all.filter((x) => {
    const k = `${x.verb} ${x.group}/${x.resource} ${x.namespace ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * What chart values that are off by default add, with the permissions --pre does not ask for
 * (they need CRDs of other projects, which not every cluster has). The dashboard ConfigMap
 * (grafanaDashboard.enabled, in grafanaDashboard.namespace) needs none: the cluster-wide
 * configmaps questions above cover every namespace.
 */
export function optionalInstallerQuestions(namespace: string): Array<{ values: string; questions: AccessQuestion[] }> {
  const why = (v: string) => `the chart creates it with ${v}`;
  return [
    { values: 'prometheusRule.enabled', questions: q('monitoring.coreos.com', 'prometheusrules', INSTALL, why('prometheusRule.enabled'), namespace) },
    {
      values: 'metrics.serviceMonitor.enabled',
      questions: q('monitoring.coreos.com', 'servicemonitors', INSTALL, why('metrics.serviceMonitor.enabled'), namespace),
    },
    {
      values: 'webhook.certManager.enabled',
      questions: ['certificates', 'issuers'].flatMap((r) => q('cert-manager.io', r, INSTALL, why('webhook.certManager.enabled'), namespace)),
    },
  ];
}

/** A note in --pre output: what optional values need that was not asked (kubectl auth can-i answers it). */
export function optionalAccessNote(namespace: string): CheckResult {
  return {
    id: 'pre/rbac-optional',
    group: 'installer-rbac',
    status: 'skip',
    message: 'not asked: what chart values that are off by default also create (check with kubectl auth can-i if you enable them)',
    items: optionalInstallerQuestions(namespace).map(({ values, questions }) => {
      const resources = [...new Set(questions.map((x) => accessText({ ...x, verb: '' }).trim()))];
      return `${values}: ${INSTALL.join(', ')} ${resources.join(', ')}`;
    }),
  };
}

export const accessText = (a: AccessQuestion) =>
  `${a.verb} ${a.group ? `${a.resource}.${a.group}` : a.resource}${a.namespace !== undefined ? ` in ${a.namespace}` : ' (cluster-wide)'}`;

export function checkAccess(answers: AccessAnswer[]): CheckResult {
  const id = 'pre/rbac';
  const group = 'installer-rbac';
  const denied = answers.filter((a) => !a.allowed);
  if (!denied.length) return { id, group, status: 'ok', message: `you may create and grant everything the chart installs (${answers.length} access reviews)` };
  return {
    id,
    group,
    status: 'fail',
    message: `${denied.length} of ${answers.length} permissions the installation needs are missing`,
    items: denied.map((a) => `${accessText(a)}: ${a.why}${a.reason ? ` (${a.reason})` : ''}`),
    hint: 'install as a cluster administrator (cluster-admin), or have one grant these (kubectl auth can-i <verb> <resource> shows each)',
  };
}

/** Configurations that register one of ThoughtGate's webhook names. */
export function ourWebhookConfigs(configs: WebhookConfiguration[]): Array<{ config: string; webhooks: string[] }> {
  const names: readonly string[] = WEBHOOK_NAMES;
  return configs
    .map((c) => ({ config: c.metadata.name, webhooks: (c.webhooks ?? []).map((w) => w.name).filter((n) => names.includes(n)) }))
    .filter((x) => x.webhooks.length > 0);
}

export function checkNoWebhookYet(configs: Read<WebhookConfiguration[]>): CheckResult {
  const id = 'pre/webhook-conflict';
  const group = 'webhook';
  if (!configs.ok) return readFailure(id, group, 'MutatingWebhookConfigurations', configs);
  const found = ourWebhookConfigs(configs.value);
  if (!found.length) return { id, group, status: 'ok', message: 'no MutatingWebhookConfiguration registers a ThoughtGate webhook' };
  return {
    id,
    group,
    status: 'fail',
    message: `ThoughtGate's webhook is already registered: ${found.map((f) => `${f.config} (${f.webhooks.join(', ')})`).join('; ')}`,
    items: found.map((f) => f.config),
    hint: 'ThoughtGate is already installed (run "thoughtgate check" without --pre), or a previous installation left it: kubectl delete mutatingwebhookconfiguration <name>. Two installations would both inject every pod.',
  };
}

export function preChecks(s: PreSnapshot): CheckResult[] {
  const version = checkVersion(s.version);
  const out: CheckResult[] = [{ id: 'kubernetes/reachable', group: 'kubernetes-api', status: 'ok', message: 'the API server answers' }, version];
  out.push(checkAccess(s.access), optionalAccessNote(s.namespace));
  out.push(checkNoWebhookYet(s.webhookConfigs));
  out.push(...checkCrdsPre(s.crds));
  return out;
}

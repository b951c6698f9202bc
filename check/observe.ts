// The I/O of `thoughtgate check`: one read of everything the checks look at, through kube/'s
// client. Every read is caught into a Read (value or why not), so one refused or failed read
// fails its own checks and never the run.
import { APPROVAL_CHANNELS, APPROVAL_REQUESTS, GOVERNANCE_POLICIES, CONFIG_MAPS, NAMESPACES } from '../kube/resources.js';
import { errorFromResponse, KubeError, type ResourceType } from '../kube/protocol.js';
import { resourceClient } from '../kube/resource.js';
import type { Transport } from '../kube/transport.js';
import { CONFIGMAP_NAME, INJECT_ENABLED, LABELS } from '../api/wellknown.js';
import { DECISION_POLICY_NAME } from '../api/approval-decision.js';
import type {
  AccessAnswer,
  AccessQuestion,
  ConfigMap,
  Crd,
  Custom,
  DecisionProbe,
  Deployment,
  Lease,
  Namespace,
  PostSnapshot,
  PreSnapshot,
  Read,
  Secret,
  VersionInfo,
  WebhookConfiguration,
} from './model.js';
import { EXPECTED_CRDS } from './cluster-checks.js';
import { installationFrom, OPERATOR_SELECTOR } from './installation.js';
import { installerQuestions } from './pre-checks.js';
import { decisionProbe, probeAnswer } from './decision-enforcement.js';

const CRDS: ResourceType = { apiVersion: 'apiextensions.k8s.io/v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false };
const DEPLOYMENTS: ResourceType = { apiVersion: 'apps/v1', plural: 'deployments', kind: 'Deployment', namespaced: true };
const LEASES: ResourceType = { apiVersion: 'coordination.k8s.io/v1', plural: 'leases', kind: 'Lease', namespaced: true };
const SECRETS: ResourceType = { apiVersion: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true };
const MUTATING: ResourceType = {
  apiVersion: 'admissionregistration.k8s.io/v1',
  plural: 'mutatingwebhookconfigurations',
  kind: 'MutatingWebhookConfiguration',
  namespaced: false,
};

async function read<T>(fn: () => Promise<T>): Promise<Read<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    return { ok: false, error: err.message, category: err.category };
  }
}

/** Creates decisionProbe() as a dry run. */
async function probeDecision(t: Transport, namespace: string): Promise<DecisionProbe> {
  const { path, body, what } = decisionProbe(namespace);
  const r = await t.request({ method: 'POST', path, body: JSON.stringify(body), contentType: 'application/json', what });
  return probeAnswer(r.status, r.body, what);
}

/** GET a path as JSON; null on 404. */
async function getJson<T>(t: Transport, path: string, what: string): Promise<T | null> {
  const r = await t.request({ path, what });
  if (r.status === 404) return null;
  if (r.status !== 200) throw errorFromResponse(r.status, r.body, what, 'get');
  try {
    return JSON.parse(r.body) as T;
  } catch (err) {
    throw new KubeError('protocol', `${what}: the answer is not JSON`, undefined, undefined, { cause: err });
  }
}

export const readVersion = (t: Transport): Promise<Read<VersionInfo>> =>
  read(async () => {
    const v = await getJson<VersionInfo>(t, '/version', 'get the server version');
    if (!v) throw new KubeError('http', 'get the server version: HTTP 404', 404);
    return v;
  });

const get = <T>(t: Transport, type: ResourceType, name: string, namespace?: string) =>
  read(async () => (await resourceClient(t, type).get(name, namespace)) as unknown as T | null);
const list = <T>(t: Transport, type: ResourceType, sel: Parameters<ReturnType<typeof resourceClient>['list']>[0] = {}) =>
  read(async () => (await resourceClient(t, type).list(sel)).items as unknown as T[]);

/** Our CRDs, read by name (a cluster may have hundreds of others). */
const readCrds = (t: Transport): Promise<Read<Crd[]>> =>
  read(async () => {
    const found = await Promise.all(EXPECTED_CRDS.map((e) => resourceClient(t, CRDS).get(e.name)));
    return found.filter((c) => c !== null) as unknown as Crd[];
  });

async function review(t: Transport, a: AccessQuestion): Promise<AccessAnswer> {
  const [resource, subresource] = a.resource.split('/');
  const body = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: {
      resourceAttributes: {
        verb: a.verb,
        group: a.group,
        resource,
        ...(subresource ? { subresource } : {}),
        ...(a.namespace ? { namespace: a.namespace } : {}),
      },
    },
  };
  const what = `review ${a.verb} ${a.resource}`;
  try {
    const r = await t.request({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      body: JSON.stringify(body),
      contentType: 'application/json',
      what,
    });
    if (r.status !== 201 && r.status !== 200) throw errorFromResponse(r.status, r.body, what, 'create selfsubjectaccessreviews');
    const status = (JSON.parse(r.body) as { status?: { allowed?: boolean; reason?: string; evaluationError?: string } }).status ?? {};
    return { ...a, allowed: status.allowed === true, ...(status.reason || status.evaluationError ? { reason: status.reason || status.evaluationError } : {}) };
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    return { ...a, allowed: false, reason: err.message };
  }
}

/** Runs `fn` over `items`, at most `n` at a time, results in order. */
async function pool<A, B>(items: A[], n: number, fn: (a: A) => Promise<B>): Promise<B[]> {
  const out: B[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

export async function observePre(t: Transport, namespace: string, version: Read<VersionInfo>, now: () => Date): Promise<PreSnapshot> {
  const [crds, webhookConfigs, ns] = await Promise.all([readCrds(t), list<WebhookConfiguration>(t, MUTATING), get<Namespace>(t, NAMESPACES, namespace)]);
  const namespaceExists: Read<boolean> = ns.ok ? { ok: true, value: ns.value !== null } : ns;
  const access = await pool(installerQuestions(namespace, namespaceExists.ok && namespaceExists.value), 8, (a) => review(t, a));
  return { now: now(), namespace, version, crds, webhookConfigs, namespaceExists, access };
}

export async function observePost(t: Transport, namespace: string, version: Read<VersionInfo>, now: () => Date): Promise<PostSnapshot> {
  const deployments = await list<Deployment>(t, DEPLOYMENTS, { namespace, labelSelector: OPERATOR_SELECTOR });
  const deployment: Read<Deployment | null> = deployments.ok ? { ok: true, value: deployments.value[0] ?? null } : deployments;
  const installation = installationFrom(deployment.ok ? deployment.value : null, namespace);
  const [crds, lease, webhookConfigs, secret, namespaces, policies, configMaps, channels, requests] = await Promise.all([
    readCrds(t),
    installation.leaderElection ? get<Lease>(t, LEASES, installation.leaseName, namespace) : Promise.resolve(null),
    list<WebhookConfiguration>(t, MUTATING),
    installation.webhook && installation.secretName ? get<Secret>(t, SECRETS, installation.secretName, namespace) : Promise.resolve(null),
    list<Namespace>(t, NAMESPACES, { labelSelector: { [LABELS.inject]: INJECT_ENABLED } }),
    list<Custom>(t, GOVERNANCE_POLICIES),
    list<ConfigMap>(t, CONFIG_MAPS, { fieldSelector: `metadata.name=${CONFIGMAP_NAME}` }),
    list<Custom>(t, APPROVAL_CHANNELS),
    list<Custom>(t, APPROVAL_REQUESTS),
  ]);
  const admission = '/apis/admissionregistration.k8s.io/v1';
  const [decisionPolicy, decisionProbe] = await Promise.all([
    read(async () => {
      const [policy, binding] = await Promise.all([
        getJson<unknown>(t, `${admission}/validatingadmissionpolicies/${DECISION_POLICY_NAME}`, `get ValidatingAdmissionPolicy ${DECISION_POLICY_NAME}`),
        getJson<unknown>(
          t,
          `${admission}/validatingadmissionpolicybindings/${DECISION_POLICY_NAME}`,
          `get ValidatingAdmissionPolicyBinding ${DECISION_POLICY_NAME}`,
        ),
      ]);
      return { policy, binding };
    }),
    read(() => probeDecision(t, namespace)),
  ]);
  return {
    now: now(),
    namespace,
    version,
    crds,
    deployment,
    installation,
    lease,
    webhookConfigs,
    secret,
    namespaces,
    policies,
    configMaps,
    channels,
    requests,
    decisionPolicy,
    decisionProbe,
  };
}

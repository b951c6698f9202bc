// The MutatingWebhookConfiguration that routes pod CREATEs to the webhook. The chart renders the
// same shape; the e2e test applies this one to a real apiserver.
//
// failurePolicy defaults to Fail. A governance product should not let agents start ungoverned
// because its webhook was briefly unreachable (with Ignore they would, silently). The blast radius of
// an outage stays small because the apiserver filters before calling: only namespaces labelled
// thoughtgate.io/inject=enabled are affected, never the system namespaces nor the operator's own
// namespace and pods (so the operator can always restart to bring the webhook back), and opted-out
// pods skip the call entirely (except in namespaces labelled thoughtgate.io/capture=required,
// whose every pod CREATE is sent, to a second webhook). Everything else in the cluster keeps
// creating pods.
//
// timeoutSeconds defaults to 5. The handler takes well under a millisecond; 5 s still covers a TLS
// handshake to a cold or GC-pausing operator, while halving (vs the default 10 s) how long each
// pod create stalls when the webhook is unreachable before failurePolicy applies.
import type { LabelSelector } from '../api/k8s.js';
import { ANNOTATIONS, INJECT_DISABLED, INJECT_ENABLED, LABELS, MANAGED_BY } from '../api/wellknown.js';
import { CAPTURE_ANNOTATIONS } from '../api/capture.js';
import { CAPTURE_REQUIRED } from './capture.js';
import { DEFAULT_EXCLUDED_NAMESPACES } from './mutate.js';
import { MUTATE_PATH } from './server.js';

export const DEFAULT_WEBHOOK_NAME = 'pods.thoughtgate.io';
export const DEFAULT_FAILURE_POLICY = 'Fail';
export const DEFAULT_TIMEOUT_SECONDS = 5;
/** The second webhook's name: the first's, prefixed (namespaces that require capture). */
export const REQUIRED_WEBHOOK_PREFIX = 'capture-required.';

export interface WebhookConfigOptions {
  /** metadata.name of the MutatingWebhookConfiguration. */
  name: string;
  webhookName?: string;
  /** A Service in the cluster (production), or a URL (tests, out-of-cluster operators). */
  target: { service: { name: string; namespace: string; port?: number } } | { url: string };
  operatorNamespace: string;
  excludedNamespaces?: readonly string[];
  failurePolicy?: 'Fail' | 'Ignore';
  timeoutSeconds?: number;
  /** base64 PEM; usually left out and patched in by the operator's certificate manager. */
  caBundle?: string;
  labels?: Record<string, string>;
}

interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export function buildWebhookConfiguration(o: WebhookConfigOptions): Record<string, unknown> {
  const clientConfig: Record<string, unknown> =
    'url' in o.target
      ? { url: o.target.url.replace(/\/+$/, '') + MUTATE_PATH }
      : { service: { name: o.target.service.name, namespace: o.target.service.namespace, port: o.target.service.port ?? 443, path: MUTATE_PATH } };
  if (o.caBundle) clientConfig.caBundle = o.caBundle;
  const namesOut: Requirement = {
    key: 'kubernetes.io/metadata.name',
    operator: 'NotIn',
    values: [...new Set([...(o.excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES), o.operatorNamespace])],
  };
  const captureKey = CAPTURE_ANNOTATIONS.capture;
  const namespaceSelector: LabelSelector & { matchExpressions: Requirement[] } = {
    matchLabels: { [LABELS.inject]: INJECT_ENABLED },
    // The operator's namespace too: its pods must start even when the webhook is down. Namespaces
    // that require capture go to the second webhook, which lets nothing through unseen.
    matchExpressions: [namesOut, { key: captureKey, operator: 'NotIn', values: [CAPTURE_REQUIRED] }],
  };
  // Same rules as mutatePod, evaluated by the apiserver: such pods are admitted even while the
  // webhook is down, and cost no call.
  const objectSelector = {
    matchExpressions: [
      { key: LABELS.inject, operator: 'NotIn', values: [INJECT_DISABLED] },
      { key: LABELS.managedBy, operator: 'NotIn', values: [MANAGED_BY] },
      { key: 'app.kubernetes.io/name', operator: 'NotIn', values: ['thoughtgate'] },
    ] satisfies Requirement[],
  };
  // Annotations are out of a selector's reach; CEL match conditions (GA in 1.30, ignored as an
  // unknown field by older apiservers, where mutatePod still decides) cover them.
  const annotations = 'object.metadata.annotations';
  const matchConditions = [
    {
      name: 'not-opted-out',
      expression: `!has(${annotations}) || !('${ANNOTATIONS.inject}' in ${annotations}) || ${annotations}['${ANNOTATIONS.inject}'] != '${INJECT_DISABLED}'`,
    },
    { name: 'not-injected-yet', expression: `!has(${annotations}) || !('${ANNOTATIONS.injected}' in ${annotations})` },
  ];
  const common = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: o.failurePolicy ?? DEFAULT_FAILURE_POLICY,
    timeoutSeconds: o.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    matchPolicy: 'Equivalent',
    // Never: a re-run would find the injected annotation and do nothing anyway.
    reinvocationPolicy: 'Never',
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
    clientConfig,
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: o.name, labels: { [LABELS.managedBy]: MANAGED_BY, ...o.labels } },
    webhooks: [
      { name: o.webhookName ?? DEFAULT_WEBHOOK_NAME, ...common, namespaceSelector, objectSelector, matchConditions },
      // Namespaces labelled thoughtgate.io/capture=required: every pod CREATE reaches the webhook,
      // opted out or not (no objectSelector, no matchConditions), so that mutatePod can deny the
      // pods that would run uncaptured. The apiserver cannot see namespace labels in a CEL match
      // condition, hence a second webhook rather than a condition on the first.
      {
        name: REQUIRED_WEBHOOK_PREFIX + (o.webhookName ?? DEFAULT_WEBHOOK_NAME),
        ...common,
        namespaceSelector: { matchLabels: { [LABELS.inject]: INJECT_ENABLED, [captureKey]: CAPTURE_REQUIRED }, matchExpressions: [namesOut] },
      },
    ],
  };
}

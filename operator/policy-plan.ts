// The GovernancePolicy controller's decisions (pure): a namespace's policies, its ApprovalChannels
// and the ConfigMap in force in; what to write out — the ConfigMap (apply or delete), each policy's
// status when it changed, and an Event on each transition. operator/policy-controller.ts carries it
// out; operator/render.ts renders the config itself.
import type * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { setCondition, type Condition } from '../api/k8s.js';
import { ANNOTATIONS, API_VERSION, CONFIGMAP_CEDAR_KEY, CONFIGMAP_KEY, CONFIGMAP_NAME, LABELS, MANAGED_BY } from '../api/wellknown.js';
import type { EventType } from './events.js';
import type { KubeObject } from './kube-object.js';
import { enforcementChange } from './enforcement-change.js';
import { truncate } from './kube-writes.js';
import { parseRendered, parseRenderedCedarText, renderNamespace, type PolicyObject, type Validity } from './render.js';

export interface PolicyPlanInput {
  namespace: string;
  /** The namespace's GovernancePolicies (those being deleted are left out here). */
  policies: readonly KubeObject[];
  /** Names of the namespace's ApprovalChannels. */
  channels: ReadonlySet<string>;
  configMap: k8s.V1ConfigMap | undefined;
  now: Date;
}

export interface PolicyStatus {
  observedGeneration: number;
  conditions: Condition[];
  configMap?: string;
  renderedHash?: string;
}

export type PolicyAction =
  | { do: 'delete-configmap' }
  | { do: 'apply-configmap'; body: k8s.V1ConfigMap; hash: string; policies: string[] }
  | { do: 'write-status'; policy: KubeObject; status: PolicyStatus }
  | { do: 'event'; policy: KubeObject; type: EventType; reason: string; message: string };

export interface PolicyPlan {
  actions: PolicyAction[];
  /** The rendered config's hash; null when the namespace has nothing to serve. */
  hash: string | null;
}

export function planPolicies(i: PolicyPlanInput): PolicyPlan {
  const policies = i.policies.filter((p) => !p.metadata.deletionTimestamp);
  const cm = i.configMap;
  const r = renderNamespace(
    policies as unknown as PolicyObject[],
    i.channels,
    parseRendered(cm?.data?.[CONFIGMAP_KEY]),
    parseRenderedCedarText(cm?.data?.[CONFIGMAP_CEDAR_KEY]),
  );
  const actions: PolicyAction[] = [];
  if (r.text === null) {
    if (cm) actions.push({ do: 'delete-configmap' });
  } else if (
    cm?.data?.[CONFIGMAP_KEY] !== r.text ||
    cm?.data?.[CONFIGMAP_CEDAR_KEY] !== (r.cedarText ?? undefined) ||
    cm?.metadata?.annotations?.[ANNOTATIONS.configHash] !== r.hash ||
    !sameOwners(cm, policies)
  ) {
    actions.push({
      do: 'apply-configmap',
      body: configMapBody(i.namespace, r.text, r.cedarText, r.hash!, policies),
      hash: r.hash!,
      policies: r.config!.policies.map((p) => p.name),
    });
  }
  for (const p of policies) actions.push(...planPolicyStatus(p, r.byPolicy.get(p.metadata.name)!, r.text === null ? undefined : CONFIGMAP_NAME, i.now));
  // Only with the write that changes what sidecars enforce: a later reconcile compares with it.
  if (actions.some((a) => a.do === 'apply-configmap')) actions.push(...enforcementEvents(policies, r.byPolicy, parseRendered(cm?.data?.[CONFIGMAP_KEY])));
  return { actions, hash: r.hash };
}

/** An Event on each policy whose enforcement (audit mode) changed from the rendering in force. */
function enforcementEvents(policies: readonly KubeObject[], byPolicy: Map<string, Validity>, current: ReturnType<typeof parseRendered>): PolicyAction[] {
  const out: PolicyAction[] = [];
  for (const p of policies) {
    const v = byPolicy.get(p.metadata.name);
    if (!v?.valid) continue;
    const change = enforcementChange(
      current?.policies.find((e) => e.name === p.metadata.name),
      v.rendered,
    );
    if (change) out.push({ do: 'event', policy: p, type: change.type, reason: 'EnforcementChanged', message: change.message });
  }
  return out;
}

function configMapBody(namespace: string, text: string, cedarText: string | null, hash: string, policies: readonly KubeObject[]): k8s.V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: CONFIGMAP_NAME,
      namespace,
      // Our own labels only: copying the policies' labels would copy Argo CD's tracking label, and
      // Argo CD would then claim (and prune) this generated object.
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.component]: 'sidecar-config' },
      annotations: { [ANNOTATIONS.configHash]: hash },
      ownerReferences: policies.map((p) => ({
        apiVersion: API_VERSION,
        kind: KINDS.GovernancePolicy.kind,
        name: p.metadata.name,
        uid: p.metadata.uid!,
        blockOwnerDeletion: false,
        controller: false,
      })),
    },
    data: { [CONFIGMAP_KEY]: text, ...(cedarText !== null ? { [CONFIGMAP_CEDAR_KEY]: cedarText } : {}) },
  };
}

/** One policy's status, written only when it changed, and an Event when validity or the rendering changed. */
export function planPolicyStatus(p: KubeObject, v: Validity & { servingGeneration?: number }, configMap: string | undefined, now: Date): PolicyAction[] {
  const generation = p.metadata.generation ?? 0;
  const prev = p.status ?? {};
  let conditions = prev.conditions ?? [];
  const errorText = v.valid ? '' : v.errors.join('; ');
  conditions = setCondition(
    conditions,
    v.valid
      ? { type: 'Valid', status: 'True', reason: 'Valid', message: 'the policy is valid', observedGeneration: generation }
      : { type: 'Valid', status: 'False', reason: 'Invalid', message: truncate(errorText), observedGeneration: generation },
    now,
  );
  conditions = setCondition(
    conditions,
    v.valid
      ? {
          type: 'Ready',
          status: 'True',
          reason: 'Rendered',
          message: `rendered into ConfigMap ${CONFIGMAP_NAME}; sidecars selected by this policy enforce generation ${generation}`,
          observedGeneration: generation,
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'InvalidPolicy',
          message:
            v.servingGeneration !== undefined
              ? `generation ${generation} is invalid; generation ${v.servingGeneration}, the last valid one, keeps serving`
              : `generation ${generation} is invalid and no earlier generation was valid; nothing of this policy is served`,
          observedGeneration: generation,
        },
    now,
  );
  // Warnings only while there are some: a policy without any keeps the status it had.
  const warningText = v.valid && v.warnings ? v.warnings.join('; ') : '';
  if (warningText)
    conditions = setCondition(
      conditions,
      { type: 'Warnings', status: 'True', reason: 'ConfigWarnings', message: truncate(warningText), observedGeneration: generation },
      now,
    );
  else if (v.valid) conditions = conditions.filter((c) => c.type !== 'Warnings');
  const status: PolicyStatus = {
    observedGeneration: generation,
    conditions,
    ...(configMap ? { configMap } : {}),
    ...(v.valid ? { renderedHash: v.rendered.hash } : prev.renderedHash ? { renderedHash: prev.renderedHash } : {}),
  };
  const before = {
    observedGeneration: prev.observedGeneration,
    conditions: prev.conditions,
    ...(prev.configMap ? { configMap: prev.configMap } : {}),
    ...(prev.renderedHash ? { renderedHash: prev.renderedHash } : {}),
  };
  if (JSON.stringify(status) === JSON.stringify(before)) return [];
  const actions: PolicyAction[] = [{ do: 'write-status', policy: p, status }];
  const prevValid = prev.conditions?.find((c) => c.type === 'Valid');
  const prevWarnings = prev.conditions?.find((c) => c.type === 'Warnings');
  if (warningText && prevWarnings?.message !== truncate(warningText))
    actions.push({ do: 'event', policy: p, type: 'Warning', reason: 'ConfigWarnings', message: truncate(`generation ${generation}: ${warningText}`) });
  if (!v.valid && (prevValid?.status !== 'False' || prevValid.message !== truncate(errorText))) {
    actions.push({
      do: 'event',
      policy: p,
      type: 'Warning',
      reason: 'InvalidPolicy',
      message: truncate(`generation ${generation} not rendered: ${errorText}`),
    });
  } else if (v.valid && prev.renderedHash !== v.rendered.hash) {
    actions.push({
      do: 'event',
      policy: p,
      type: 'Normal',
      reason: 'Rendered',
      message: `generation ${generation} rendered into ConfigMap ${CONFIGMAP_NAME} (hash ${v.rendered.hash})`,
    });
  }
  return actions;
}

function sameOwners(cm: k8s.V1ConfigMap, policies: readonly KubeObject[]): boolean {
  const have = new Set((cm.metadata?.ownerReferences ?? []).map((o) => o.uid));
  return have.size === policies.length && policies.every((p) => have.has(p.metadata.uid!));
}

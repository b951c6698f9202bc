// The reconcilers' I/O: render a namespace's GovernancePolicies into its ConfigMap (server-side
// apply), write each policy's status and Events, and keep the sidecar RBAC of injected namespaces.
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { setCondition, type Condition } from '../api/k8s.js';
import { ANNOTATIONS, API_VERSION, CONFIGMAP_KEY, CONFIGMAP_NAME, GROUP, LABELS, MANAGED_BY, VERSION } from '../api/wellknown.js';
import type { Logger } from '../lib/log.js';
import { parseRendered, renderNamespace, type PolicyObject, type Validity } from './render.js';

export const FIELD_MANAGER = 'thoughtgate-operator';
export const SIDECAR_ROLE = 'thoughtgate-sidecar';

export interface KubeObject extends k8s.KubernetesObject {
  metadata: k8s.V1ObjectMeta & { name: string; namespace?: string };
  spec?: unknown;
  status?: { conditions?: Condition[]; renderedHash?: string; observedGeneration?: number; configMap?: string };
}

export interface ReconcileDeps {
  kc: k8s.KubeConfig;
  log: Logger;
  /** Identifies this replica in Events. */
  instance: string;
  policies: (namespace: string) => ReadonlyArray<KubeObject>;
  channels: (namespace: string) => ReadonlyArray<KubeObject>;
  configMap: (namespace: string) => k8s.V1ConfigMap | undefined;
  now?: () => Date;
}

const ssa = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
const merge = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const code = (err: unknown) => (err as { code?: number }).code;

export class Reconciler {
  private core: k8s.CoreV1Api;
  private custom: k8s.CustomObjectsApi;
  private rbac: k8s.RbacAuthorizationV1Api;

  constructor(private d: ReconcileDeps) {
    this.core = d.kc.makeApiClient(k8s.CoreV1Api);
    this.custom = d.kc.makeApiClient(k8s.CustomObjectsApi);
    this.rbac = d.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  }

  /** Renders a namespace's policies into thoughtgate-config and updates every policy's status. */
  async reconcileNamespace(namespace: string): Promise<{ changed: boolean; hash: string | null }> {
    const now = this.d.now?.() ?? new Date();
    const policies = this.d.policies(namespace).filter((p) => !p.metadata.deletionTimestamp);
    const channels = new Set(this.d.channels(namespace).map((c) => c.metadata.name));
    const cm = this.d.configMap(namespace);
    const current = parseRendered(cm?.data?.[CONFIGMAP_KEY]);
    const r = renderNamespace(policies as PolicyObject[], channels, current);

    let changed = false;
    if (r.text === null) {
      if (cm) {
        await this.core.deleteNamespacedConfigMap({ name: CONFIGMAP_NAME, namespace }).catch((err) => { if (code(err) !== 404) throw err; });
        this.d.log.info('config withdrawn: no valid policy in namespace', { namespace });
        changed = true;
      }
    } else if (cm?.data?.[CONFIGMAP_KEY] !== r.text || cm?.metadata?.annotations?.[ANNOTATIONS.configHash] !== r.hash || !sameOwners(cm, policies)) {
      await this.core.patchNamespacedConfigMap(
        {
          name: CONFIGMAP_NAME,
          namespace,
          fieldManager: FIELD_MANAGER,
          force: true,
          body: {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: CONFIGMAP_NAME,
              namespace,
              // Our own labels only: copying the policies' labels would copy Argo CD's tracking
              // label, and Argo CD would then claim (and prune) this generated object.
              labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.component]: 'sidecar-config' },
              annotations: { [ANNOTATIONS.configHash]: r.hash! },
              ownerReferences: policies.map((p) => ({ apiVersion: API_VERSION, kind: KINDS.GovernancePolicy.kind, name: p.metadata.name, uid: p.metadata.uid!, blockOwnerDeletion: false, controller: false })),
            },
            data: { [CONFIGMAP_KEY]: r.text },
          },
        },
        ssa(),
      );
      changed = true;
      this.d.log.info('config rendered', { namespace, hash: r.hash, policies: r.config!.policies.map((p) => p.name) });
    }

    for (const p of policies) {
      const v = r.byPolicy.get(p.metadata.name)!;
      await this.writePolicyStatus(p, v, r.text === null ? undefined : CONFIGMAP_NAME, now);
    }
    return { changed, hash: r.hash };
  }

  private async writePolicyStatus(p: KubeObject, v: Validity & { servingGeneration?: number }, configMap: string | undefined, now: Date): Promise<void> {
    const generation = p.metadata.generation ?? 0;
    const prev = p.status ?? {};
    let conditions = prev.conditions ?? [];
    const errorText = v.valid ? '' : v.errors.join('; ');
    conditions = setCondition(conditions, v.valid
      ? { type: 'Valid', status: 'True', reason: 'Valid', message: 'the policy is valid', observedGeneration: generation }
      : { type: 'Valid', status: 'False', reason: 'Invalid', message: truncate(errorText), observedGeneration: generation }, now);
    conditions = setCondition(conditions, v.valid
      ? { type: 'Ready', status: 'True', reason: 'Rendered', message: `rendered into ConfigMap ${CONFIGMAP_NAME}; sidecars selected by this policy enforce generation ${generation}`, observedGeneration: generation }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'InvalidPolicy',
          message: v.servingGeneration !== undefined ? `generation ${generation} is invalid; generation ${v.servingGeneration}, the last valid one, keeps serving` : `generation ${generation} is invalid and no earlier generation was valid; nothing of this policy is served`,
          observedGeneration: generation,
        }, now);
    const status = {
      observedGeneration: generation,
      conditions,
      ...(configMap ? { configMap } : {}),
      ...(v.valid ? { renderedHash: v.rendered.hash } : prev.renderedHash ? { renderedHash: prev.renderedHash } : {}),
    };
    if (JSON.stringify(status) === JSON.stringify({ observedGeneration: prev.observedGeneration, conditions: prev.conditions, ...(prev.configMap ? { configMap: prev.configMap } : {}), ...(prev.renderedHash ? { renderedHash: prev.renderedHash } : {}) })) return;
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace: p.metadata.namespace!, plural: KINDS.GovernancePolicy.plural, name: p.metadata.name, body: { status } },
      merge(),
    ).catch((err) => { if (code(err) !== 404) throw err; });

    const prevValid = prev.conditions?.find((c) => c.type === 'Valid');
    if (!v.valid && (prevValid?.status !== 'False' || prevValid.message !== truncate(errorText))) {
      await this.event(p, 'Warning', 'InvalidPolicy', truncate(`generation ${generation} not rendered: ${errorText}`));
    } else if (v.valid && prev.renderedHash !== v.rendered.hash) {
      await this.event(p, 'Normal', 'Rendered', `generation ${generation} rendered into ConfigMap ${CONFIGMAP_NAME} (hash ${v.rendered.hash})`);
    }
  }

  async event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = this.d.now?.() ?? new Date();
    const ns = obj.metadata.namespace ?? 'default';
    await this.core.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { generateName: `${obj.metadata.name}.`, namespace: ns },
        involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: ns, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
        type,
        reason,
        message,
        source: { component: FIELD_MANAGER },
        reportingComponent: `${GROUP}/operator`,
        reportingInstance: this.d.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    }).catch((err) => this.d.log.warn('could not record an event', { reason, object: obj.metadata.name, error: (err as Error).message }));
  }

  /**
   * In a namespace labelled for injection, the sidecars' service accounts may read their one
   * ConfigMap and create and follow ApprovalRequests (sidecarRole); elsewhere the Role and
   * RoleBinding are removed.
   */
  async reconcileSidecarRbac(namespace: string, injected: boolean): Promise<void> {
    if (!injected) {
      for (const del of [
        () => this.rbac.deleteNamespacedRoleBinding({ name: SIDECAR_ROLE, namespace }),
        () => this.rbac.deleteNamespacedRole({ name: SIDECAR_ROLE, namespace }),
      ]) await del().catch((err) => { if (code(err) !== 404) throw err; });
      return;
    }
    const labels = { [LABELS.managedBy]: MANAGED_BY };
    await this.rbac.patchNamespacedRole({ name: SIDECAR_ROLE, namespace, fieldManager: FIELD_MANAGER, force: true, body: sidecarRole(namespace, labels) }, ssa());
    await this.rbac.patchNamespacedRoleBinding({ name: SIDECAR_ROLE, namespace, fieldManager: FIELD_MANAGER, force: true, body: sidecarRoleBinding(namespace, labels) }, ssa());
  }
}

/**
 * Pure: the Role sidecars of a namespace get. ApprovalRequests: create them, follow their own
 * (list/watch by label), and patch them to cancel, to mark execution and to record the result;
 * never approvalrequests/status, so only the operator can write a decision. RBAC cannot tell
 * which pod created a request, so every sidecar of the namespace can read and patch every
 * request of the namespace (arguments included); the CRD's transition rules keep what was asked
 * and what was decided immutable (docs/approvals.md, "In a cluster").
 */
export function sidecarRole(namespace: string, labels: Record<string, string>): k8s.V1Role {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: SIDECAR_ROLE, namespace, labels },
    rules: [
      { apiGroups: [''], resources: ['configmaps'], resourceNames: [CONFIGMAP_NAME], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [GROUP], resources: [KINDS.ApprovalRequest.plural], verbs: ['create', 'get', 'list', 'watch', 'patch'] },
    ],
  };
}

export function sidecarRoleBinding(namespace: string, labels: Record<string, string>): k8s.V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: SIDECAR_ROLE, namespace, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: SIDECAR_ROLE },
    // Every service account of the namespace: any of its pods may be injected.
    subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${namespace}` }],
  };
}

function sameOwners(cm: k8s.V1ConfigMap, policies: ReadonlyArray<KubeObject>): boolean {
  const have = new Set((cm.metadata?.ownerReferences ?? []).map((o) => o.uid));
  return have.size === policies.length && policies.every((p) => have.has(p.metadata.uid!));
}

/** Condition messages and events stay readable: kubectl shows them whole. */
function truncate(s: string): string {
  return s.length > 1024 ? `${s.slice(0, 1021)}...` : s;
}

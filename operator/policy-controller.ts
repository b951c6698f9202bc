// The GovernancePolicy controller: one key per namespace, whose policies are rendered into its
// thoughtgate-config ConfigMap (server-side apply), with each policy's status and Events. It
// watches the policies, the ApprovalChannels they reference and its own ConfigMaps (an edit or a
// deletion by anyone else is repaired). The decisions are operator/policy-plan.ts.
//
// A policy's update is a key only when something the render reads changed: its generation (the
// spec), its uid or its deletionTimestamp. Status-only updates are not: the capture report
// (operator/capture-report-controller.ts) patches status.capture on every policy of a namespace
// as pods come and go, and this controller's own status writes come back as updates too. Status
// someone else edited is repaired by the periodic resync, which always enqueues.
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { CONFIGMAP_NAME, GROUP, VERSION } from '../api/wellknown.js';
import { namespaceId, type NamespaceKey } from './keys.js';
import { FIELD_MANAGER, ignoreNotFound, mergePatch, serverSideApply } from './kube-writes.js';
import { watch, type ControllerDefinition, type ControllerContext, type Reconciler, type WatchEvent } from './manager.js';
import { planPolicies, type PolicyAction } from './policy-plan.js';
import { APPROVAL_CHANNELS, GOVERNANCE_POLICIES, OWN_CONFIGMAPS } from './sources.js';

const byNamespace = (obj: k8s.KubernetesObject): NamespaceKey[] => (obj.metadata?.namespace ? [{ namespace: obj.metadata.namespace }] : []);

/** What of a policy's metadata the render reads (the spec is behind the generation). */
const renderInput = (obj: k8s.KubernetesObject): string =>
  JSON.stringify([obj.metadata?.uid, obj.metadata?.generation, obj.metadata?.deletionTimestamp ?? null]);

/** Maps policy events to keys, dropping updates that changed nothing the render reads. */
export function policyEventFilter(): (event: WatchEvent, obj: k8s.KubernetesObject) => NamespaceKey[] {
  const seen = new Map<string, string>(); // namespace/name → renderInput at the last event
  return (event, obj) => {
    const id = `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    if (event === 'delete') {
      seen.delete(id);
      return byNamespace(obj);
    }
    const input = renderInput(obj);
    const before = seen.get(id);
    seen.set(id, input);
    return event === 'update' && before === input ? [] : byNamespace(obj);
  };
}

export const policyController: ControllerDefinition<NamespaceKey> = {
  // "ns": the metrics' kind label since before controllers were split (docs/operations.md).
  kind: 'ns',
  id: namespaceId,
  setup: (ctx) => new PolicyController(ctx),
};

class PolicyController implements Reconciler<NamespaceKey> {
  readonly watches = [
    watch(GOVERNANCE_POLICIES, policyEventFilter()),
    watch(APPROVAL_CHANNELS, (_e, obj) => byNamespace(obj)),
    watch(OWN_CONFIGMAPS, (_e, obj) => byNamespace(obj)),
  ];
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;

  constructor(private readonly ctx: ControllerContext<NamespaceKey>) {
    this.core = ctx.kc.makeApiClient(k8s.CoreV1Api);
    this.custom = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async reconcile({ namespace }: NamespaceKey): Promise<void> {
    const plan = planPolicies({
      namespace,
      policies: this.ctx.cache(GOVERNANCE_POLICIES).list(namespace),
      channels: new Set(
        this.ctx
          .cache(APPROVAL_CHANNELS)
          .list(namespace)
          .map((c) => c.metadata.name),
      ),
      configMap: this.ctx.cache(OWN_CONFIGMAPS).get(CONFIGMAP_NAME, namespace),
      now: new Date(),
    });
    for (const a of plan.actions) await this.act(namespace, a);
  }

  private async act(namespace: string, a: PolicyAction): Promise<void> {
    switch (a.do) {
      case 'delete-configmap':
        await this.core.deleteNamespacedConfigMap({ name: CONFIGMAP_NAME, namespace }).catch(ignoreNotFound);
        this.ctx.log.info('config withdrawn: no valid policy in namespace', { namespace });
        return;
      case 'apply-configmap':
        await this.core.patchNamespacedConfigMap(
          { name: CONFIGMAP_NAME, namespace, fieldManager: FIELD_MANAGER, force: true, body: a.body },
          serverSideApply(),
        );
        this.ctx.log.info('config rendered', { namespace, hash: a.hash, policies: a.policies });
        return;
      case 'write-status':
        await this.custom
          .patchNamespacedCustomObjectStatus(
            { group: GROUP, version: VERSION, namespace, plural: KINDS.GovernancePolicy.plural, name: a.policy.metadata.name, body: { status: a.status } },
            mergePatch(),
          )
          .catch(ignoreNotFound);
        return;
      case 'event':
        await this.ctx.events.event(a.policy, a.type, a.reason, a.message);
        return;
    }
  }
}

// The namespace RBAC controller: one key per namespace; the sidecar Role and RoleBinding exist
// exactly in the namespaces labelled for injection (operator/rbac-plan.ts decides).
import * as k8s from '@kubernetes/client-node';
import { namespaceId, type NamespaceKey } from './keys.js';
import { FIELD_MANAGER, ignoreNotFound, serverSideApply } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import { planSidecarRbac, SIDECAR_ROLE, type RbacAction } from './rbac-plan.js';
import { INJECTED_NAMESPACES } from './sources.js';

export const rbacController: ControllerDefinition<NamespaceKey> = {
  kind: 'rbac',
  id: namespaceId,
  setup: (ctx) => new RbacController(ctx),
};

class RbacController implements Reconciler<NamespaceKey> {
  // A namespace losing its label is an update the labelled watch sees as a delete: removed then.
  readonly watches = [watch(INJECTED_NAMESPACES, (_e, ns) => [{ namespace: ns.metadata!.name! }])];
  private readonly rbac: k8s.RbacAuthorizationV1Api;

  constructor(private readonly ctx: ControllerContext<NamespaceKey>) {
    this.rbac = ctx.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  }

  async reconcile({ namespace }: NamespaceKey): Promise<void> {
    const injected = this.ctx.cache(INJECTED_NAMESPACES).get(namespace) !== undefined;
    for (const a of planSidecarRbac(namespace, injected)) await this.act(namespace, a);
  }

  private async act(namespace: string, a: RbacAction): Promise<void> {
    const name = SIDECAR_ROLE;
    switch (a.do) {
      case 'apply-role':
        await this.rbac.patchNamespacedRole({ name, namespace, fieldManager: FIELD_MANAGER, force: true, body: a.body }, serverSideApply());
        return;
      case 'apply-rolebinding':
        await this.rbac.patchNamespacedRoleBinding({ name, namespace, fieldManager: FIELD_MANAGER, force: true, body: a.body }, serverSideApply());
        return;
      case 'delete-rolebinding':
        await this.rbac.deleteNamespacedRoleBinding({ name, namespace }).catch(ignoreNotFound);
        return;
      case 'delete-role':
        await this.rbac.deleteNamespacedRole({ name, namespace }).catch(ignoreNotFound);
        return;
    }
  }
}

// The namespace RBAC controller's decisions (pure): in a namespace labelled for injection the
// sidecars' service accounts may read their one ConfigMap and create and follow ApprovalRequests;
// elsewhere the Role and RoleBinding are removed.
import type * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { CONFIGMAP_NAME, GROUP, LABELS, MANAGED_BY } from '../api/wellknown.js';

export const SIDECAR_ROLE = 'thoughtgate-sidecar';

export type RbacAction =
  | { do: 'apply-role'; body: k8s.V1Role }
  | { do: 'apply-rolebinding'; body: k8s.V1RoleBinding }
  | { do: 'delete-rolebinding' }
  | { do: 'delete-role' };

export function planSidecarRbac(namespace: string, injected: boolean): RbacAction[] {
  // Applying, the Role comes first; deleting, the binding: no binding names a Role that is not there.
  if (!injected) return [{ do: 'delete-rolebinding' }, { do: 'delete-role' }];
  const labels = { [LABELS.managedBy]: MANAGED_BY };
  return [
    { do: 'apply-role', body: sidecarRole(namespace, labels) },
    { do: 'apply-rolebinding', body: sidecarRoleBinding(namespace, labels) },
  ];
}

/**
 * The Role sidecars of a namespace get. ApprovalRequests: create them, follow their own
 * (list/watch by label), and patch them to cancel, to mark execution and to record the result;
 * never approvalrequests/status, so only the operator can write a decision. RBAC cannot tell
 * which pod created a request, so every sidecar of the namespace can read and patch every
 * request of the namespace (arguments included); the CRD's transition rules keep what was asked
 * and what was decided immutable (docs/approvals.md, "In a cluster"). Events: audit mode's counts
 * (sidecar/audit/events.ts: create, then patch the count; get after a restart finds its own
 * Event again), in this namespace only; never list or watch, so a sidecar reads no other Event.
 */
export function sidecarRole(namespace: string, labels: Record<string, string>): k8s.V1Role {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: SIDECAR_ROLE, namespace, labels },
    rules: [
      { apiGroups: [''], resources: ['configmaps'], resourceNames: [CONFIGMAP_NAME], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [GROUP], resources: [KINDS.ApprovalRequest.plural], verbs: ['create', 'get', 'list', 'watch', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'get', 'patch'] },
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

// The namespace RBAC controller's decisions; applied on a real API server in e2e/operator.test.ts.
import { planSidecarRbac } from './rbac-plan.js';

describe('planSidecarRbac', () => {
  test('an injected namespace: the Role, then its binding to every service account of the namespace', () => {
    const [role, binding, ...rest] = planSidecarRbac('team-a', true);
    expect(rest).toEqual([]);
    expect(role).toMatchObject({
      do: 'apply-role',
      body: {
        kind: 'Role',
        metadata: { name: 'thoughtgate-sidecar', namespace: 'team-a', labels: { 'app.kubernetes.io/managed-by': 'thoughtgate-operator' } },
      },
    });
    expect(binding).toMatchObject({
      do: 'apply-rolebinding',
      body: { roleRef: { kind: 'Role', name: 'thoughtgate-sidecar' }, subjects: [{ kind: 'Group', name: 'system:serviceaccounts:team-a' }] },
    });
  });

  test('the Role reads only the one ConfigMap, never writes approvalrequests/status, and only writes (never lists) events', () => {
    const [role] = planSidecarRbac('team-a', true);
    if (role?.do !== 'apply-role') throw new Error('expected the Role first');
    expect(role.body.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['thoughtgate-config'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['thoughtgate.io'], resources: ['approvalrequests'], verbs: ['create', 'get', 'list', 'watch', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'get', 'patch'] },
    ]);
  });

  test('a namespace not (or no longer) labelled: the binding is removed first, then the Role', () => {
    expect(planSidecarRbac('team-a', false)).toEqual([{ do: 'delete-rolebinding' }, { do: 'delete-role' }]);
  });
});

// The policy controller's watch on GovernancePolicies: status-only updates (the capture report's
// status.capture, its own status writes) are not keys; what the render reads is.
import * as k8s from '@kubernetes/client-node';
import type { NamespaceKey } from './keys.js';
import type { ControllerContext } from './manager.js';
import { policyController } from './policy-controller.js';
import { GOVERNANCE_POLICIES } from './sources.js';

const policy = (over: { generation?: number; uid?: string; deletionTimestamp?: string; status?: unknown } = {}): k8s.KubernetesObject =>
  ({
    apiVersion: 'thoughtgate.io/v1alpha1',
    kind: 'GovernancePolicy',
    metadata: { name: 'p', namespace: 'agents', uid: over.uid ?? 'u1', generation: over.generation ?? 1, deletionTimestamp: over.deletionTimestamp },
    status: over.status ?? {},
  }) as k8s.KubernetesObject;

/** The controller's own map of policy events to keys, as the manager registers it. */
function policyWatch() {
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'none', server: 'http://127.0.0.1:9', skipTLSVerify: true }, { name: 'nobody' });
  const r = policyController.setup({ kc } as unknown as ControllerContext<NamespaceKey>);
  return r.watches.find((w) => w.source === (GOVERNANCE_POLICIES as unknown))!.map;
}

test('status-only updates do not re-render; generation, uid, deletion, add, delete and resync do', () => {
  const map = policyWatch();
  const key = [{ namespace: 'agents' }];
  expect(map('add', policy())).toEqual(key);
  // The capture report's patches and the controller's own status write: no key.
  expect(map('update', policy({ status: { capture: { summary: '1/2' } } }))).toEqual([]);
  expect(map('update', policy({ status: { capture: { summary: '2/2' }, observedGeneration: 1 } }))).toEqual([]);
  // A spec edit bumps the generation.
  expect(map('update', policy({ generation: 2 }))).toEqual(key);
  expect(map('update', policy({ generation: 2, status: { capture: null } }))).toEqual([]);
  // Deletion begins (finalizers): the render drops the policy.
  expect(map('update', policy({ generation: 2, deletionTimestamp: '2026-12-06T00:00:00Z' }))).toEqual(key);
  // The periodic resync always enqueues (it repairs status someone else edited).
  expect(map('resync', policy({ generation: 2, deletionTimestamp: '2026-12-06T00:00:00Z' }))).toEqual(key);
  expect(map('delete', policy({ generation: 2 }))).toEqual(key);
  // Re-created under the same name: a new uid, generation 1 again.
  expect(map('update', policy({ uid: 'u2' }))).toEqual(key);
  // An update of a policy never seen (no add yet) is a key.
  expect(map('update', { ...policy(), metadata: { ...policy().metadata, name: 'other' } })).toEqual(key);
});

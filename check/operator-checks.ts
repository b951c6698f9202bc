// The operator: its Deployment available, and a replica holding a fresh leader Lease (only the
// Lease holder reconciles policies, channels and approvals; operator/leader.ts).
import type { CheckResult, Deployment, Installation, Lease, Read } from './model.js';
import { OPERATOR_SELECTOR } from './installation.js';
import { readFailure, skipped } from './read.js';

const GROUP = 'operator';

export function checkDeployment(d: Read<Deployment | null>, namespace: string): CheckResult {
  const id = 'operator/deployment';
  if (!d.ok) return readFailure(id, GROUP, `Deployments in ${namespace}`, d);
  if (!d.value)
    return {
      id,
      group: GROUP,
      status: 'fail',
      message: `no operator Deployment (labels ${OPERATOR_SELECTOR}) in ${namespace}`,
      hint: `install the chart (helm install thoughtgate charts/thoughtgate -n ${namespace} --create-namespace), or pass --namespace <the namespace it is installed in>`,
    };
  const dep = d.value;
  const name = `${namespace}/${dep.metadata.name}`;
  const want = dep.spec?.replicas ?? 1;
  const st = dep.status ?? {};
  const available = st.availableReplicas ?? 0;
  const describe = `kubectl -n ${namespace} describe deployment ${dep.metadata.name}; kubectl -n ${namespace} logs deployment/${dep.metadata.name}`;
  if (want === 0)
    return {
      id,
      group: GROUP,
      status: 'fail',
      message: `Deployment ${name} is scaled to 0`,
      hint: `kubectl -n ${namespace} scale deployment ${dep.metadata.name} --replicas=2 (or helm upgrade)`,
    };
  const availableCond = st.conditions?.find((c) => c.type === 'Available');
  if (available < 1 || availableCond?.status === 'False')
    return {
      id,
      group: GROUP,
      status: 'fail',
      message: `Deployment ${name} has no available replica (${available}/${want}${availableCond?.message ? `: ${availableCond.message}` : ''})`,
      hint: `the webhook refuses pods in labelled namespaces while no replica serves it; ${describe}`,
    };
  const current = st.observedGeneration === undefined || dep.metadata.generation === undefined || st.observedGeneration >= dep.metadata.generation;
  if (available < want || !current)
    return {
      id,
      group: GROUP,
      status: 'warn',
      message: `Deployment ${name}: ${available}/${want} replicas available${current ? '' : ', rollout in progress'}`,
      hint: describe,
    };
  return { id, group: GROUP, status: 'ok', message: `Deployment ${name}: ${available}/${want} replicas available` };
}

export function checkLease(lease: Read<Lease | null> | null, inst: Installation, now: Date): CheckResult {
  const id = 'operator/leader';
  if (lease === null) return skipped(id, GROUP, 'leader election is off (--no-leader-election): the single replica reconciles');
  if (!lease.ok) return readFailure(id, GROUP, `Lease ${inst.namespace}/${inst.leaseName}`, lease);
  const name = `${inst.namespace}/${inst.leaseName}`;
  const logs = `kubectl -n ${inst.namespace} logs -l ${OPERATOR_SELECTOR} (look for "leader")`;
  if (!lease.value)
    return {
      id,
      group: GROUP,
      status: 'fail',
      message: `no leader Lease ${name}: no replica has ever led`,
      hint: `no policy is rendered without a leader; ${logs}`,
    };
  const s = lease.value.spec ?? {};
  const holder = s.holderIdentity ?? '';
  const duration = s.leaseDurationSeconds ?? 15;
  const renew = s.renewTime ? Date.parse(s.renewTime) : Number.NaN;
  if (!holder) return { id, group: GROUP, status: 'fail', message: `Lease ${name} has no holder (released)`, hint: logs };
  if (!Number.isFinite(renew)) return { id, group: GROUP, status: 'fail', message: `Lease ${name} held by ${holder} was never renewed`, hint: logs };
  const age = Math.max(0, now.getTime() - renew);
  if (age > duration * 1000)
    return {
      id,
      group: GROUP,
      status: 'fail',
      message: `Lease ${name} is stale: ${holder} last renewed it ${Math.round(age / 1000)}s ago (lease duration ${duration}s)`,
      hint: `no replica leads, so policies, channels and approvals are not reconciled; is the operator running? ${logs}`,
    };
  return { id, group: GROUP, status: 'ok', message: `${holder} leads (renewed ${Math.round(age / 1000)}s ago, lease duration ${duration}s)` };
}

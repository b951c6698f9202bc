// Whether the API server enforces the ApprovalDecision identity policy, not only whether the
// policy is installed: the policy and binding can be there as shipped while the API server's
// ValidatingAdmissionPolicy admission plugin is off, and then a decision can carry anyone's name
// (the operator makes the same dry run before counting one, and then counts none). observe.ts asks
// the API server to create, as a dry run (stored nowhere, no watch event), the decision below in a
// name nobody authenticates as; this file builds it and reads the answer.
import {
  APPROVAL_DECISION_KIND,
  DECISION_POLICY_NAME,
  DECISION_PROBE_USERNAME,
  decisionProbeObject,
  refusedByDecisionPolicy,
} from '../api/approval-decision.js';
import { API_VERSION } from '../api/wellknown.js';
import { errorFromResponse } from '../kube/protocol.js';
import type { CheckResult, DecisionProbe, Read } from './model.js';
import { readFailure } from './read.js';

/** The dry-run create of the probe decision (api/approval-decision.ts) in `namespace`. */
export function decisionProbe(namespace: string): { path: string; body: Record<string, unknown>; what: string } {
  return {
    what: 'create a dry-run ApprovalDecision',
    path: `/apis/${API_VERSION}/namespaces/${encodeURIComponent(namespace)}/${APPROVAL_DECISION_KIND.plural}?dryRun=All`,
    body: decisionProbeObject(namespace, 'check'),
  };
}

/** The API server's HTTP answer as a DecisionProbe (a refusal worded by kube/: HTTP status, Status reason and message). */
export function probeAnswer(status: number, body: string, what: string): DecisionProbe {
  if (status === 200 || status === 201) return { accepted: true };
  return { accepted: false, status, message: errorFromResponse(status, body, what, 'create on approvaldecisions').message };
}

export function checkDecisionEnforced(r: Read<DecisionProbe>, namespace: string): CheckResult {
  const id = 'approvals/decision-enforced';
  const group = 'approval-channels';
  if (!r.ok) return readFailure(id, group, 'the answer to a dry-run ApprovalDecision', r);
  const p = r.value;
  if (p.accepted)
    return {
      id,
      group,
      status: 'fail',
      message: `ValidatingAdmissionPolicy not enforced: anyone can decide as anyone (a dry-run ApprovalDecision in the name ${DECISION_PROBE_USERNAME} was accepted in ${namespace})`,
      hint:
        `the API server's ValidatingAdmissionPolicy admission plugin is disabled (kube-apiserver --disable-admission-plugins, or an --enable-admission-plugins list without it), ` +
        `or the policy or binding ${DECISION_POLICY_NAME} is missing or does not deny (see approvals/decision-policy). ` +
        'The operator ignores decisions from kubectl meanwhile (it makes the same dry run before counting one); take away create on approvaldecisions until this passes',
    };
  if ((p.status === 403 || p.status === 422) && refusedByDecisionPolicy(p.message))
    return {
      id,
      group,
      status: 'ok',
      message: `ValidatingAdmissionPolicy ${DECISION_POLICY_NAME} enforced: a dry-run ApprovalDecision in another user's name was refused (HTTP ${p.status})`,
    };
  if (p.status === 403)
    return {
      id,
      group,
      status: 'warn',
      message: `could not prove: no RBAC to create approvaldecisions (dry run) in ${namespace}`,
      hint: `run the check as a user who may create approvaldecisions.thoughtgate.io in ${namespace} (kubectl auth can-i create approvaldecisions.thoughtgate.io -n ${namespace}); a dry run stores nothing`,
    };
  if (p.status === 404)
    return {
      id,
      group,
      status: 'skip',
      message: `cannot try a dry-run ApprovalDecision in ${namespace} (see the CRD and operator checks): ${p.message}`,
    };
  return {
    id,
    group,
    status: 'warn',
    message: `could not prove: a dry-run ApprovalDecision in ${namespace} was refused by something other than ${DECISION_POLICY_NAME}: ${p.message}`,
    hint: 'a mutating webhook or another policy on approvaldecisions refused it first, or the API server is unwell: look at what the message names, and retry',
  };
}

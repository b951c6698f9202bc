// What an ApprovalDecision does to its ApprovalRequest: a pure function of the decision, the
// request, its ApprovalChannel, whether the identity policy is in force, and the clock.
// operator/approval-decision-controller.ts reads those and carries the plan out.
//
// Fail closed: the decision's spec.user is only who the API server authenticated because the
// ValidatingAdmissionPolicy of api/approval-decision.ts said so at admission. Without that policy
// (or with a weakened one) anyone allowed to create ApprovalDecisions could type in an approver's
// name, so decisionPolicyProblems() compares the cluster's policy and binding with ours and, on
// any difference, every decision is Ignored.
import {
  DECISION_POLICY_NAME,
  DECISION_POLICY_RULE,
  DECISION_POLICY_VALIDATIONS,
  DECISION_REASONS,
  KUBERNETES_VOTER_PREFIX,
  type ApprovalDecisionSpec,
  type ApprovalDecisionStatus,
} from '../api/approval-decision.js';
import { tallyVotes, withVote, type ApprovalPhase, type ApprovalRequestSpec, type ApprovalRequestStatus, type Vote } from '../api/approval-request.js';
import type { ApprovalChannelSpec } from '../api/crds.js';
import { requiredApprovals as requiredCount } from '../slack/decision.js';
import { isTerminal } from './approval-request-plan.js';

/** The identity policy as read from the cluster: in force since `since`, or why not. */
export type PolicyState = { ok: true; since: Date } | { ok: false; message: string };

export interface DecisionPlanInput {
  decision: {
    name: string;
    spec: ApprovalDecisionSpec | null;
    specError?: string;
    status: ApprovalDecisionStatus;
    created: Date;
  };
  policy: PolicyState;
  /** The ApprovalRequest spec.approvalRequest names (same namespace), or null when there is none. */
  request: { spec: ApprovalRequestSpec | null; status: ApprovalRequestStatus } | null;
  /** The request's ApprovalChannel, parsed; null when it does not exist or is invalid (channelError). */
  channel: ApprovalChannelSpec | null;
  channelError?: string;
  now: Date;
}

/** What the ApprovalRequest's status becomes when a vote is counted. */
export interface RequestUpdate {
  votes: Vote[];
  approvals: string;
  /** Set when this vote decides the request. */
  end?: { phase: Extract<ApprovalPhase, 'Approved' | 'Rejected'>; reason: string; message: string; decidedBy: { id: string; name: string }[] };
}

export type DecisionPlan =
  | { do: 'nothing' }
  | { do: 'ignore'; reason: string; message: string; warn: boolean }
  /** Write `request` (conditional on what was read), then mark the decision Counted. */
  | { do: 'count'; request: RequestUpdate; message: string }
  /** The vote is in the request already (counted before a crash, or the same vote again): mark it. */
  | { do: 'mark-counted'; reason: string; message: string };

/** approvers.required of a channel (the two-person rule): distinct approvers, Slack and Kubernetes together. */
export function requiredApprovals(channel: ApprovalChannelSpec): number {
  // The one reading of N (slack/decision.ts): an invalid N throws rather than falling back to 1.
  return requiredCount(channel.approvers.required);
}

/** Whether this user is one of the channel's Kubernetes approvers (by name, or by a group). */
export function isKubernetesApprover(channel: ApprovalChannelSpec, user: { username: string; groups: readonly string[] }): boolean {
  const k = channel.approvers.kubernetes;
  if (!k) return false;
  return k.users.includes(user.username) || user.groups.some((g) => k.groups.includes(g));
}

const voterId = (username: string) => `${KUBERNETES_VOTER_PREFIX}${username}`;
const voterName = (v: Vote) => (v.via === 'kubernetes' ? `${v.name ?? v.by} (kubectl)` : (v.name ?? v.by));

export function planDecision(i: DecisionPlanInput): DecisionPlan {
  const d = i.decision;
  if (d.status.phase) return { do: 'nothing' };
  if (!d.spec) return { do: 'ignore', reason: DECISION_REASONS.invalidDecision, message: `the decision is not valid: ${d.specError ?? 'no spec'}`, warn: true };
  const spec = d.spec;
  if (!i.policy.ok) {
    return {
      do: 'ignore',
      reason: DECISION_REASONS.identityUnverified,
      message: `not counted: who made it cannot be verified (${i.policy.message}); reinstall the ValidatingAdmissionPolicy and binding ${DECISION_POLICY_NAME} shipped with ThoughtGate`,
      warn: true,
    };
  }
  if (d.created.getTime() < i.policy.since.getTime()) {
    return {
      do: 'ignore',
      reason: DECISION_REASONS.identityUnverified,
      message: `not counted: it was created before the identity policy ${DECISION_POLICY_NAME} was installed, so who made it cannot be verified; create it again`,
      warn: true,
    };
  }
  if (!i.request)
    return {
      do: 'ignore',
      reason: DECISION_REASONS.requestNotFound,
      message: `there is no ApprovalRequest "${spec.approvalRequest}" in this namespace`,
      warn: false,
    };
  const rs = i.request.status;
  const votes = rs.votes ?? [];
  const by = voterId(spec.user.username);
  // Same voter, same object name and the same side: a decision deleted and created again under its
  // name with the other side is a new vote, not the one already written.
  const mine = votes.find((v) => v.by === by && v.ref === d.name && v.decision === (spec.decision === 'Approve' ? 'approve' : 'reject'));
  if (mine) {
    // Written into the request before a crash or a lost answer: only this decision's status is missing.
    return { do: 'mark-counted', reason: DECISION_REASONS.counted, message: countedMessage(rs.phase, rs.approvals) };
  }
  if (isTerminal(rs.phase)) {
    const who = rs.decidedBy?.map((b) => b.name ?? b.id).join(', ');
    return {
      do: 'ignore',
      reason: DECISION_REASONS.alreadyDecided,
      message: `the request is already ${rs.phase}${who ? ` (by ${who})` : ''}${rs.message ? `: ${rs.message}` : ''}`,
      warn: false,
    };
  }
  if (!i.request.spec) return { do: 'ignore', reason: DECISION_REASONS.invalidDecision, message: 'the ApprovalRequest is not valid', warn: true };
  const expiresAt = Date.parse(i.request.spec.expiresAt);
  if (!(expiresAt > i.now.getTime())) {
    return { do: 'ignore', reason: DECISION_REASONS.expired, message: `the request expired at ${i.request.spec.expiresAt}; the call is rejected`, warn: false };
  }
  if (i.request.spec.cancelRequested) return { do: 'ignore', reason: DECISION_REASONS.alreadyDecided, message: 'the agent cancelled the request', warn: false };
  if (!i.channel) {
    return {
      do: 'ignore',
      reason: DECISION_REASONS.channelInvalid,
      message: `the request's ApprovalChannel "${i.request.spec.channel}" ${i.channelError ?? 'does not exist'}`,
      warn: true,
    };
  }
  if (!isKubernetesApprover(i.channel, spec.user)) {
    return {
      do: 'ignore',
      reason: DECISION_REASONS.notAnApprover,
      message: `${spec.user.username} is not a Kubernetes approver of ApprovalChannel "${i.request.spec.channel}" (approvers.kubernetes lists neither the user nor any of their groups)`,
      warn: true,
    };
  }
  const earlier = votes.find((v) => v.by === by);
  const decision = spec.decision === 'Approve' ? 'approve' : 'reject';
  if (earlier && earlier.decision === decision) {
    return {
      do: 'mark-counted',
      reason: DECISION_REASONS.alreadyCounted,
      message: `${spec.user.username} already voted ${decision}; ${countedMessage(rs.phase, rs.approvals)}`,
    };
  }
  const vote: Vote = { by, name: spec.user.username, via: 'kubernetes', decision, at: i.now.toISOString(), ref: d.name };
  const next = withVote(votes, vote);
  const required = requiredApprovals(i.channel);
  const t = tallyVotes(next, required);
  const update: RequestUpdate = { votes: next, approvals: t.summary };
  const why = spec.reason ? `: ${spec.reason}` : '';
  if (t.outcome === 'rejected') {
    const r = t.rejectedBy!;
    const via = r.via === 'kubernetes' ? 'with kubectl' : 'in Slack';
    update.end = {
      phase: 'Rejected',
      reason: 'Rejected',
      message: `rejected ${via} by ${r.name ?? r.by}${r.by === by ? why : ''}`,
      decidedBy: [{ id: r.by, name: voterName(r) }],
    };
  } else if (t.outcome === 'approved') {
    update.end = {
      phase: 'Approved',
      reason: 'Approved',
      message: `approved by ${t.approvers.map(voterName).join(', ')}${why}`,
      decidedBy: t.approvers.map((v) => ({ id: v.by, name: voterName(v) })),
    };
  }
  return { do: 'count', request: update, message: countedMessage(update.end?.phase ?? rs.phase, t.summary) };
}

function countedMessage(phase: string | undefined, approvals: string | undefined): string {
  return `counted; the request is ${phase ?? 'Pending'}${approvals ? ` (approvals ${approvals})` : ''}`;
}

// ---------- the identity policy ----------

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** A label selector that selects everything (absent, or empty as the API server defaults it). */
function selectsAll(sel: unknown): boolean {
  const s = obj(sel);
  return list(s.matchExpressions).length === 0 && Object.keys(obj(s.matchLabels)).length === 0;
}

/**
 * Why the cluster's policy and binding are not the ones shipped (empty: they are). Anything that
 * could let a decision through that ours refuses counts: other or fewer validations, a narrower
 * match (selectors, match conditions, excluded resources), failurePolicy Ignore, a binding that
 * only warns or audits.
 */
export function decisionPolicyProblems(policy: unknown, binding: unknown): string[] {
  const problems: string[] = [];
  const p = obj(obj(policy).spec);
  const b = obj(obj(binding).spec);
  if (p.failurePolicy !== undefined && p.failurePolicy !== 'Fail') problems.push(`the policy's failurePolicy is ${String(p.failurePolicy)}, not Fail`);
  const want = DECISION_POLICY_VALIDATIONS.map((v) => v.expression);
  const have = list(p.validations).map((v) => obj(v).expression);
  if (JSON.stringify(have) !== JSON.stringify(want)) problems.push('the policy does not have the validations shipped with ThoughtGate');
  if (list(p.matchConditions).length > 0) problems.push('the policy has matchConditions (it may skip some requests)');
  if (p.paramKind !== undefined) problems.push('the policy has a paramKind');
  const m = obj(p.matchConstraints);
  if (!selectsAll(m.namespaceSelector) || !selectsAll(m.objectSelector)) problems.push("the policy's match has a namespace or object selector");
  if (list(m.excludeResourceRules).length > 0) problems.push("the policy's match excludes resources");
  const covers = list(m.resourceRules).some((r) => {
    const rr = obj(r);
    const has = (k: string, v: string) => list(rr[k]).includes(v) || list(rr[k]).includes('*');
    return (
      DECISION_POLICY_RULE.apiGroups.every((g) => has('apiGroups', g)) &&
      has('apiVersions', '*') &&
      DECISION_POLICY_RULE.operations.every((o) => has('operations', o)) &&
      DECISION_POLICY_RULE.resources.every((r2) => has('resources', r2)) &&
      (rr.scope === undefined || rr.scope === '*' || rr.scope === 'Namespaced')
    );
  });
  if (!covers) problems.push('the policy does not match creates and updates of approvaldecisions');
  if (b.policyName !== DECISION_POLICY_NAME) problems.push(`the binding names policy ${JSON.stringify(b.policyName)}, not ${DECISION_POLICY_NAME}`);
  if (!list(b.validationActions).includes('Deny')) problems.push('the binding does not deny (validationActions lacks Deny)');
  if (b.paramRef !== undefined) problems.push('the binding has a paramRef');
  if (b.matchResources !== undefined) {
    const mr = obj(b.matchResources);
    if (!selectsAll(mr.namespaceSelector) || !selectsAll(mr.objectSelector) || list(mr.resourceRules).length > 0 || list(mr.excludeResourceRules).length > 0)
      problems.push('the binding narrows what it matches (matchResources)');
  }
  return problems;
}

/** The policy state from what was read: both objects as shipped, in force since the later one was created. */
export function policyState(policy: unknown | null, binding: unknown | null): PolicyState {
  if (!policy) return { ok: false, message: `the ValidatingAdmissionPolicy ${DECISION_POLICY_NAME} is not installed` };
  if (!binding) return { ok: false, message: `the ValidatingAdmissionPolicyBinding ${DECISION_POLICY_NAME} is not installed` };
  const problems = decisionPolicyProblems(policy, binding);
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  const created = (o: unknown) => Date.parse(String(obj(obj(o).metadata).creationTimestamp ?? ''));
  const since = Math.max(created(policy), created(binding));
  return { ok: true, since: new Date(Number.isNaN(since) ? 0 : since) };
}

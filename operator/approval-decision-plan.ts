// What an ApprovalDecision does to its ApprovalRequest: a pure function of the decision, the
// request, its ApprovalChannel, whether the identity policy is in force, and the clock.
// operator/approval-decision-controller.ts reads those and carries the plan out.
//
// Fail closed: the decision's spec.user is only who the API server authenticated because the
// ValidatingAdmissionPolicy of api/approval-decision.ts said so at admission. Without that policy
// (or with a weakened one) anyone allowed to create ApprovalDecisions could type in an approver's
// name, so decisionPolicyProblems() compares the cluster's policy and binding with ours (the whole
// spec, up to the API server's defaults) and, on any difference, every decision is Ignored; and a
// decision counts only when made at least POLICY_SETTLE_MS after either object last changed.
import {
  DECISION_POLICY_NAME,
  DECISION_REASONS,
  decisionPolicyObjects,
  KUBERNETES_VOTER_PREFIX,
  type ApprovalDecisionSpec,
  type ApprovalDecisionStatus,
} from '../api/approval-decision.js';
import {
  standingVotes,
  tallyVotes,
  withVote,
  type ApprovalPhase,
  type ApprovalRequestSpec,
  type ApprovalRequestStatus,
  type Vote,
} from '../api/approval-request.js';
import type { ApprovalChannelSpec } from '../api/crds.js';
import { requiredApprovals as requiredCount } from '../slack/decision.js';
import { isTerminal } from './approval-request-plan.js';

/**
 * The identity policy as read from the cluster: as shipped and unchanged since `since` (its last
 * write; null when that cannot be told: managedFields cleared), or why not.
 */
export type PolicyState = { ok: true; since: Date | null } | { ok: false; message: string };

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
  /**
   * Whether a Slack user is an approver of the channel now (undefined: cannot be told now), so the
   * Slack votes recorded on the request count only while their voters still are (standingVotes).
   */
  slackApprover: (userId: string) => boolean | undefined;
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
  if (!i.policy.since) {
    // Cleared managedFields hide an edit in place (weakened, then restored): fail closed until the next write records one.
    return {
      do: 'ignore',
      reason: DECISION_REASONS.identityUnverified,
      message: `not counted: the metadata.managedFields of the identity policy ${DECISION_POLICY_NAME} or its binding were cleared, so when they last changed cannot be told; apply them again, then create the decision again`,
      warn: true,
    };
  }
  // Made before the policy or binding last changed, or too soon after to be sure the policy in
  // force checked it: who made it cannot be verified.
  // Both times are whole seconds (truncated): one more second keeps the real gap at least the margin.
  if (d.created.getTime() < i.policy.since.getTime() + TIMESTAMP_GRAIN_MS + POLICY_SETTLE_MS) {
    const before = d.created.getTime() < i.policy.since.getTime();
    return {
      do: 'ignore',
      reason: DECISION_REASONS.identityUnverified,
      message: `not counted: it was created ${before ? 'before' : `within ${(TIMESTAMP_GRAIN_MS + POLICY_SETTLE_MS) / 1000} s after`} the identity policy ${DECISION_POLICY_NAME} or its binding was last installed or changed (${i.policy.since.toISOString()}), so who made it cannot be verified; create it again`,
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
  const current = { slack: i.slackApprover, kubernetes: i.channel.approvers.kubernetes };
  // The same vote already recorded and still standing; one that no longer stands (it counted
  // through a group the channel no longer lists) is replaced by this one, with today's groups.
  if (earlier && earlier.decision === decision && standingVotes([earlier], current).length > 0) {
    return {
      do: 'mark-counted',
      reason: DECISION_REASONS.alreadyCounted,
      message: `${spec.user.username} already voted ${decision}; ${countedMessage(rs.phase, rs.approvals)}`,
    };
  }
  // The groups it may count through later: the API server's word at decision time, narrowed to
  // those the channel lists now (a vote never grows through a group added later; the status stays
  // small however many groups a person has).
  const groups = spec.user.groups.filter((g) => i.channel!.approvers.kubernetes?.groups.includes(g));
  const vote: Vote = {
    by,
    name: spec.user.username,
    via: 'kubernetes',
    decision,
    at: i.now.toISOString(),
    ref: d.name,
    ...(groups.length > 0 ? { groups } : {}),
  };
  const next = withVote(votes, vote);
  const required = requiredApprovals(i.channel);
  // Only votes of people who are approvers now count (one removed from the channel since no longer does).
  const t = tallyVotes(standingVotes(next, current), required);
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

/**
 * How long after the last change of the policy or binding a decision still does not count. The
 * times compared are whole seconds (creationTimestamp, managedFields), and the API server starts
 * enforcing a changed policy a moment after storing it: a decision made in that window may not
 * have been checked by the policy now in place.
 */
export const POLICY_SETTLE_MS = 2000;
/** creationTimestamp and managedFields times are whole seconds. */
const TIMESTAMP_GRAIN_MS = 1000;

/**
 * A spec in a canonical form: the defaults the API server adds filled in or removed, empty
 * values (undefined, null, [], {}) dropped, the sets of a resource rule and the binding's
 * validationActions sorted. Two specs with the same canonical form match the same requests and act
 * the same way.
 */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) {
    const items = v.map(canonical).filter((x) => x !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const k of Object.keys(v as Json).sort()) {
      const c = canonical((v as Json)[k]);
      if (c !== undefined) out[k] = c;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return v === null ? undefined : v;
}

const sorted = (v: unknown) => (Array.isArray(v) ? [...v].map(String).sort() : v);

/** matchConstraints / matchResources with the API server's defaults applied. */
function withMatchDefaults(m: unknown): Json | undefined {
  if (m === undefined || m === null) return undefined;
  const out: Json = { ...obj(m) };
  if (out.matchPolicy === undefined) out.matchPolicy = 'Equivalent';
  const rule = (r: unknown): Json => {
    const rr: Json = { ...obj(r) };
    for (const k of ['apiGroups', 'apiVersions', 'operations', 'resources', 'resourceNames']) rr[k] = sorted(rr[k]);
    // ApprovalDecisions are namespaced: "Namespaced" matches them as "*" (the default) does.
    if (rr.scope === undefined || rr.scope === 'Namespaced') rr.scope = '*';
    return rr;
  };
  for (const k of ['resourceRules', 'excludeResourceRules']) if (Array.isArray(out[k])) out[k] = (out[k] as unknown[]).map(rule);
  return out;
}

function canonicalPolicySpec(spec: unknown): unknown {
  const s: Json = { ...obj(spec) };
  if (s.failurePolicy === undefined) s.failurePolicy = 'Fail';
  s.matchConstraints = withMatchDefaults(s.matchConstraints);
  return canonical(s);
}

function canonicalBindingSpec(spec: unknown): unknown {
  const s: Json = { ...obj(spec) };
  s.validationActions = sorted(s.validationActions);
  const m = withMatchDefaults(s.matchResources);
  // matchResources that is only the defaults narrows nothing: the same as none.
  s.matchResources = m && JSON.stringify(canonical(m)) === JSON.stringify({ matchPolicy: 'Equivalent' }) ? undefined : m;
  return canonical(s);
}

/** The paths where `have` differs from `want` (both canonical), each with the two values, down to the leaves. */
function differences(have: unknown, want: unknown, path: string, out: string[]): void {
  if (JSON.stringify(have) === JSON.stringify(want)) return;
  const isObj = (x: unknown) => !!x && typeof x === 'object' && !Array.isArray(x);
  if ((isObj(have) || have === undefined) && (isObj(want) || want === undefined)) {
    for (const k of [...new Set([...Object.keys(obj(have)), ...Object.keys(obj(want))])].sort()) differences(obj(have)[k], obj(want)[k], `${path}.${k}`, out);
    return;
  }
  const isRecords = (x: unknown) => x === undefined || (Array.isArray(x) && x.some(isObj));
  if ((Array.isArray(have) || Array.isArray(want)) && isRecords(have) && isRecords(want)) {
    const h = list(have);
    const w = list(want);
    for (let i = 0; i < Math.max(h.length, w.length); i++) differences(h[i], w[i], `${path}[${i}]`, out);
    return;
  }
  const show = (x: unknown) => (x === undefined ? 'absent' : truncate(JSON.stringify(x), 120));
  out.push(`${path} is ${show(have)}, shipped: ${show(want)}`);
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * Why the cluster's policy and binding are not the ones shipped (empty: they are). The whole spec
 * of each is compared with ours, up to the defaults the API server adds: anything else, even what
 * looks harmless, fails closed, because a narrower match (resourceNames, selectors, excluded
 * resources, match conditions), a binding that only warns or audits, failurePolicy Ignore or a
 * paramRef could let through a decision ours refuses.
 */
export function decisionPolicyProblems(policy: unknown, binding: unknown): string[] {
  const [shippedPolicy, shippedBinding] = decisionPolicyObjects();
  const problems: string[] = [];
  const p: string[] = [];
  differences(canonicalPolicySpec(obj(policy).spec), canonicalPolicySpec(shippedPolicy.spec), 'spec', p);
  if (p.length > 0) problems.push(`the ValidatingAdmissionPolicy is not as shipped: ${p.join('; ')}`);
  const b: string[] = [];
  differences(canonicalBindingSpec(obj(binding).spec), canonicalBindingSpec(shippedBinding.spec), 'spec', b);
  if (b.length > 0) problems.push(`the ValidatingAdmissionPolicyBinding is not as shipped: ${b.join('; ')}`);
  return problems;
}

/**
 * When an object last changed, as far as the API server says: the newest of its creationTimestamp
 * and its managedFields times (every write records one; an edit in place leaves creationTimestamp
 * alone). null when managedFields were cleared: then nobody can tell.
 */
export function lastChanged(o: unknown): Date | null {
  const m = obj(obj(o).metadata);
  const fields = list(m.managedFields);
  if (fields.length === 0) return null;
  const times = [m.creationTimestamp, ...fields.map((f) => obj(f).time)].map((t) => Date.parse(String(t ?? '')));
  const valid = times.filter((t) => !Number.isNaN(t));
  return valid.length > 0 ? new Date(Math.max(...valid)) : null;
}

/** The policy state from what was read: both objects as shipped, unchanged since `since` (the later last change). */
export function policyState(policy: unknown | null, binding: unknown | null): PolicyState {
  if (!policy) return { ok: false, message: `the ValidatingAdmissionPolicy ${DECISION_POLICY_NAME} is not installed` };
  if (!binding) return { ok: false, message: `the ValidatingAdmissionPolicyBinding ${DECISION_POLICY_NAME} is not installed` };
  const problems = decisionPolicyProblems(policy, binding);
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  const p = lastChanged(policy);
  const b = lastChanged(binding);
  return { ok: true, since: p && b ? new Date(Math.max(p.getTime(), b.getTime())) : null };
}

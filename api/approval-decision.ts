// ApprovalDecision (thoughtgate.io/v1alpha1, namespaced): one person's Approve or Reject of an
// ApprovalRequest, made with kubectl or `thoughtgate approve|reject` instead of Slack (break-glass
// when Slack is down, or teams without it). Who decided is what the API server authenticated: the
// ValidatingAdmissionPolicy below refuses a create whose spec.user is not the request's userInfo,
// and any later change of the spec. The operator counts a decision only while that policy and its
// binding are installed as shipped (operator/approval-decision-plan.ts), so a cluster without them
// fails closed instead of believing a typed-in username.
import { z } from 'zod';
import { KINDS } from './kinds.js';
import { API_VERSION, GROUP } from './wellknown.js';

export const APPROVAL_DECISION_KIND = KINDS.ApprovalDecision;

export const DECISIONS = ['Approve', 'Reject'] as const;
export type DecisionVerb = (typeof DECISIONS)[number];

/** Who made the decision: exactly the API server's userInfo of the create (the policy checks it). */
export const DecisionUserSchema = z.strictObject({
  username: z.string().min(1).max(512),
  groups: z.array(z.string().min(1).max(512)).max(256).default([]),
  uid: z.string().max(256).optional(),
});
export type DecisionUser = z.infer<typeof DecisionUserSchema>;

export const ApprovalDecisionSpecSchema = z.strictObject({
  /** The ApprovalRequest (same namespace) decided on. */
  approvalRequest: z.string().min(1).max(253),
  decision: z.enum(DECISIONS),
  /** Why (shown in the request's status and the Slack message). */
  reason: z.string().max(1024).optional(),
  user: DecisionUserSchema,
});
export type ApprovalDecisionSpec = z.infer<typeof ApprovalDecisionSpecSchema>;

export const DECISION_PHASES = ['Counted', 'Ignored'] as const;
export type DecisionPhase = (typeof DECISION_PHASES)[number];

/** status.reason values of an ApprovalDecision. */
export const DECISION_REASONS = {
  counted: 'Counted',
  alreadyCounted: 'AlreadyCounted',
  notAnApprover: 'NotAnApprover',
  requestNotFound: 'RequestNotFound',
  alreadyDecided: 'AlreadyDecided',
  expired: 'Expired',
  channelInvalid: 'ChannelInvalid',
  invalidDecision: 'InvalidDecision',
  /** The identity policy or its binding is missing or not as shipped: nobody's identity can be trusted. */
  identityUnverified: 'IdentityUnverified',
} as const;

export const ApprovalDecisionStatusSchema = z.object({
  /** Counted: the vote is in the ApprovalRequest's status. Ignored: it is not (message says why). */
  phase: z.enum(DECISION_PHASES).optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  /** The ApprovalRequest's phase and approvals right after this decision was counted. */
  requestPhase: z.string().optional(),
  approvals: z.string().optional(),
});
export type ApprovalDecisionStatus = z.infer<typeof ApprovalDecisionStatusSchema>;

/** The name of the ValidatingAdmissionPolicy and of its binding. */
export const DECISION_POLICY_NAME = 'thoughtgate-approval-decisions';

/** What the policy checks, in order (the operator compares a cluster's policy with these). */
export const DECISION_POLICY_VALIDATIONS = [
  {
    expression: "request.operation != 'CREATE' || object.spec.user.username == request.userInfo.username",
    message: 'spec.user.username must be your own username as the API server authenticated you (thoughtgate approve fills it in)',
    reason: 'Forbidden',
  },
  {
    expression:
      "request.operation != 'CREATE' || (has(request.userInfo.groups) ? (has(object.spec.user.groups) && object.spec.user.groups == request.userInfo.groups) : (!has(object.spec.user.groups) || size(object.spec.user.groups) == 0))",
    message: 'spec.user.groups must be exactly your groups as the API server authenticated you (thoughtgate approve fills them in)',
    reason: 'Forbidden',
  },
  {
    expression:
      "request.operation != 'CREATE' || (has(request.userInfo.uid) && request.userInfo.uid != '' ? (has(object.spec.user.uid) && object.spec.user.uid == request.userInfo.uid) : (!has(object.spec.user.uid) || object.spec.user.uid == ''))",
    message: 'spec.user.uid must be your uid as the API server authenticated you (thoughtgate approve fills it in)',
    reason: 'Forbidden',
  },
  {
    expression: "request.operation != 'UPDATE' || object.spec == oldObject.spec",
    message: 'an ApprovalDecision cannot be changed; create a new one',
    reason: 'Forbidden',
  },
] as const;

/** The resource rule the policy matches: creates and updates of ApprovalDecisions (not their status). */
export const DECISION_POLICY_RULE = {
  apiGroups: [GROUP],
  apiVersions: ['*'],
  operations: ['CREATE', 'UPDATE'],
  resources: [APPROVAL_DECISION_KIND.plural],
} as const;

/**
 * The ValidatingAdmissionPolicy and its binding (admissionregistration.k8s.io/v1, GA since
 * Kubernetes 1.30): CEL run by the API server itself, no webhook. The chart ships them
 * (scripts/gen-crds.ts writes the template from this).
 */
export function decisionPolicyObjects(): [Record<string, unknown>, Record<string, unknown>] {
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: DECISION_POLICY_NAME },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [structuredClone(DECISION_POLICY_RULE) as unknown as Record<string, unknown>] },
        validations: DECISION_POLICY_VALIDATIONS.map((v) => ({ ...v })),
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: DECISION_POLICY_NAME },
      spec: { policyName: DECISION_POLICY_NAME, validationActions: ['Deny'] },
    },
  ];
}

/**
 * A username nobody has (`system:` names belong to Kubernetes' own components), for the dry-run
 * ApprovalDecision that proves the API server enforces the policy: the policy and binding can be
 * installed as shipped while the ValidatingAdmissionPolicy admission plugin is off, and then a
 * decision can carry anyone's name. The groups are empty, which no authenticated user's are
 * (system:authenticated at least), so the probe is never its creator's identity.
 */
export const DECISION_PROBE_USERNAME = 'system:thoughtgate:check:nobody';

/**
 * The probe: an ApprovalDecision in DECISION_PROBE_USERNAME's name, to be created with
 * `dryRun=All` (stored nowhere, no watch event; generateName: never a name conflict).
 * `by` says who asks, in its reason and name prefix (`check`, `operator`).
 */
export function decisionProbeObject(namespace: string, by: string): Record<string, unknown> {
  const spec: ApprovalDecisionSpec = {
    approvalRequest: 'thoughtgate-probe',
    decision: 'Reject',
    reason: `thoughtgate ${by}: a dry run in a name nobody has, which the identity policy must refuse`,
    user: { username: DECISION_PROBE_USERNAME, groups: [] },
  };
  return { apiVersion: API_VERSION, kind: APPROVAL_DECISION_KIND.kind, metadata: { generateName: `thoughtgate-${by}-`, namespace }, spec };
}

/** Whether a refusal's message is our policy's: "ValidatingAdmissionPolicy 'NAME' with binding 'NAME' denied request: …". */
export const refusedByDecisionPolicy = (message: string): boolean => message.includes(`ValidatingAdmissionPolicy '${DECISION_POLICY_NAME}'`);

/** The prefix of an ApprovalRequest vote's `by` for a Kubernetes user (defined with the votes). */
export { KUBERNETES_VOTER_PREFIX } from './approval-request.js';

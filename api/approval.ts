// Where a human decides: the ApprovalChannel (cluster) or approvalChannels[] (thoughtgate.yaml).
import { z } from 'zod';
import { Duration, Glob, Name } from './primitives.js';

export const DEFAULT_SLACK_API_URL = 'https://slack.com/api/';

/** The most approvals a channel can require: beyond this a rule would rather be a deny. */
export const MAX_REQUIRED_APPROVALS = 10;

export const ApproversSchema = z
  .strictObject({
    /** Slack user ids (U…/W…). */
    users: z.array(z.string().regex(/^[UW][A-Z0-9]+$/, 'a Slack user id looks like U0123ABCD')).default([]),
    /** Slack user-group ids (S…); members are resolved through usergroups.users.list. */
    userGroups: z.array(z.string().regex(/^S[A-Z0-9]+$/, 'a Slack user-group id looks like S0123ABCD')).default([]),
    /** Distinct listed approvers who must approve (the two-person rule: 2); any one reject still rejects. */
    required: z.number().int().min(1).max(MAX_REQUIRED_APPROVALS).default(1),
  })
  .superRefine((a, ctx) => {
    // Groups may grow; explicit users alone cannot: N of fewer than N could never be approved.
    if (a.userGroups.length === 0 && new Set(a.users).size < a.required) {
      ctx.addIssue({
        code: 'custom',
        path: ['required'],
        message: `${a.required} approvals are required but only ${new Set(a.users).size} approvers are listed`,
      });
    }
  });

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

/**
 * Why a Kubernetes user or group cannot be an approver, or undefined when it can. Names starting
 * with `system:` belong to Kubernetes itself: groups such as system:authenticated or
 * system:serviceaccounts hold every workload (system:masters every admin certificate), and users
 * such as system:serviceaccount:<ns>:<name> are workloads. An agent's ServiceAccount allowed to
 * approve would approve its own calls; humans decide.
 */
export function systemApproverProblem(kind: 'user' | 'group', name: string): string | undefined {
  if (!name.startsWith('system:')) return undefined;
  if (kind === 'group')
    return `"${name}" is a Kubernetes system group (it holds workloads or every authenticated user, not chosen people); list the people's own group instead`;
  return name.startsWith('system:serviceaccount:')
    ? `"${name}" is a ServiceAccount: a workload could approve its own calls (self-approval); list the people who decide instead`
    : `"${name}" is a Kubernetes system user, not a person; list the people who decide instead`;
}

/**
 * Kubernetes users and groups (as the API server authenticates them) whose ApprovalDecisions count:
 * decisions made with kubectl or `thoughtgate approve|reject`. Cluster only (ApprovalChannel).
 * No `system:` names (systemApproverProblem): approving is for people.
 */
export const KubernetesApproversSchema = z
  .strictObject({
    users: z.array(z.string().min(1).max(512)).max(256).default([]),
    groups: z.array(z.string().min(1).max(512)).max(256).default([]),
  })
  .superRefine((k, ctx) => {
    for (const kind of ['users', 'groups'] as const)
      k[kind].forEach((name, i) => {
        const problem = systemApproverProblem(kind === 'users' ? 'user' : 'group', name);
        if (problem) ctx.addIssue({ code: 'custom', path: [kind, i], message: problem });
      });
  });
export type KubernetesApprovers = z.infer<typeof KubernetesApproversSchema>;

/**
 * An ApprovalChannel's approvers: the Slack ones and, in a cluster, Kubernetes users and groups.
 * `required` counts distinct approvers of both kinds; explicit users alone (Slack and Kubernetes,
 * no group of either) must be at least `required`.
 */
export const ClusterApproversSchema = z.strictObject({ ...ApproversSchema.shape, kubernetes: KubernetesApproversSchema.optional() }).superRefine((a, ctx) => {
  const k = a.kubernetes;
  const groups = a.userGroups.length + (k?.groups.length ?? 0);
  const users = new Set(a.users).size + new Set(k?.users ?? []).size;
  if (groups === 0 && users < a.required) {
    ctx.addIssue({ code: 'custom', path: ['required'], message: `${a.required} approvals are required but only ${users} approvers are listed` });
  }
});

export const ReactionsSchema = z.strictObject({
  approve: z.array(z.string().min(1)).min(1).default(['white_check_mark']),
  reject: z.array(z.string().min(1)).min(1).default(['x']),
});

/** The parts of a channel that do not depend on where the token comes from. */
export const approvalChannelFields = {
  approvers: ApproversSchema,
  reactions: ReactionsSchema.default({ approve: ['white_check_mark'], reject: ['x'] }),
  timeout: Duration.default('10m'),
  /** What a timeout means. "reject" fails closed; there is deliberately no "approve". */
  onTimeout: z.enum(['reject']).default('reject'),
  /** Argument keys (globs, any depth) whose values are shown as "[redacted]" in Slack. */
  redact: z.array(Glob).default([]),
};

/**
 * Where the ApprovalChannel's Secret holds the app-level token (xapp-…), a key of the same Secret
 * as the bot token. Absent: reactions, polled (see appTokenEnv).
 */
export const SlackAppTokenKeyField = {
  appTokenKey: z.string().min(1).optional(),
};

export const SlackTargetFields = {
  /** Channel id (C…/G…); conversations.info checks it. */
  channel: z.string().regex(/^[CGD][A-Z0-9]+$/, 'a Slack channel id looks like C0123ABCD'),
  /** Slack Web API base URL, with the trailing slash (GovSlack: https://slack-gov.com/api/). */
  apiUrl: z.string().url().default(DEFAULT_SLACK_API_URL),
};

/** approvalChannels[] in thoughtgate.yaml: the bot token comes from an environment variable. */
export const FileApprovalChannelSchema = z
  .strictObject({
    name: Name,
    slack: z.strictObject({
      ...SlackTargetFields,
      tokenEnv: EnvName,
      /**
       * The variable holding the Slack app-level token (xapp-…, scope connections:write). With it
       * the message carries Approve/Reject buttons and clicks arrive over Socket Mode; without it
       * approvers react with emoji and the reactions are polled.
       */
      appTokenEnv: EnvName.optional(),
    }),
    ...approvalChannelFields,
  })
  .superRefine((c, ctx) => {
    if (c.approvers.users.length + c.approvers.userGroups.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'list at least one approver user or user group' });
    }
  });
export type FileApprovalChannel = z.infer<typeof FileApprovalChannelSchema>;

// ApprovalRequest (thoughtgate.io/v1alpha1, namespaced): one pending human decision. A sidecar
// creates it; the operator relays it to Slack and writes the decision into its status. It is what
// lets approvals survive sidecar and operator restarts, shares one Slack rate limit per token across
// pods, keeps Slack tokens out of pods, and lets people list and decide approvals with kubectl.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { lazy } from '../lib/lazy.js';
import { Name } from './config.js';
import { ConditionSchema } from './k8s.js';

export const APPROVAL_PHASES = ['Pending', 'Posted', 'Approved', 'Rejected', 'Expired', 'Cancelled', 'Failed'] as const;
export type ApprovalPhase = (typeof APPROVAL_PHASES)[number];
/** Phases after which nothing changes any more. */
export const TERMINAL_PHASES: ReadonlySet<ApprovalPhase> = new Set(['Approved', 'Rejected', 'Expired', 'Cancelled', 'Failed']);

export const ApprovalRequestSpecSchema = lazy(() =>
  z.strictObject({
    /** The ApprovalChannel (same namespace) where a human decides. */
    channel: Name,
    /** Who asks: the workload whose agent made the call. */
    workload: z.strictObject({ namespace: z.string(), serviceAccount: z.string(), pod: z.string() }),
    /** The call awaiting approval, exactly as it will be executed once approved. */
    source: z.string(),
    /** tools/call, or the canonical A2A method (SendMessage, SendStreamingMessage). */
    method: z.string(),
    /** The protocol of the call: absent = mcp; a2a: `tool` is the skill named (or ""), `arguments` the call's params. */
    protocol: z.enum(['mcp', 'a2a']).optional(),
    /**
     * With protocol a2a: where the message goes besides its source, part of what requestHash binds
     * and shown to the approver: the tenant (absent: none), the A2A version and the binding.
     */
    a2a: z
      .strictObject({
        tenant: z.string().min(1).optional(),
        version: z.enum(['0.3', '1.0']),
        binding: z.enum(['jsonrpc', 'rest']),
      })
      .optional(),
    tool: z.string(),
    /**
     * The tool arguments (A2A: the parsed params: message, configuration, metadata), whole. Stored because the sidecar must be able to execute exactly the
     * approved call after a restart of its own; the Slack message shows them redacted and truncated.
     * Readable by whoever may read ApprovalRequests in this namespace (docs/approvals.md).
     */
    arguments: z.record(z.string(), z.unknown()).default({}),
    /** sha256 of the canonical {source, tool, arguments} (A2A: {source, protocol, method, params, target: {tenant, version, binding}}): what the approval is bound to. */
    requestHash: z.string().regex(/^[0-9a-f]{64}$/),
    /** The sidecar's task id (MCP task or held call) answering to this approval. */
    taskId: z.string(),
    /** Why approval is needed: the rule or Cedar policy that asked for it. */
    reason: z.string().max(1024),
    /** The MCP session the call belongs to, so an approved call runs in it after a sidecar restart. */
    mcpSessionId: z.string().optional(),
    /**
     * Which client the task belongs to, as the sidecar keys it: `session:<MCP session id>`,
     * `auth:<first 32 hex of sha256(Authorization)>` or `anonymous`. After a restart the task answers
     * to that client only. Never the Authorization header itself.
     */
    owner: z
      .string()
      .regex(/^(session:.+|auth:[0-9a-f]{32}|anonymous)$/)
      .optional(),
    /** RFC 3339. After this the request is Expired (the channel's onTimeout). */
    expiresAt: z.string(),
    /** Set by the sidecar when the agent cancels; the operator then ends the request as Cancelled. */
    cancelRequested: z.boolean().default(false),
    /**
     * Set by the sidecar (RFC 3339) right before it executes the approved call: at most once. A
     * sidecar that restarts and finds this set does not run the call again.
     */
    executionStartedAt: z.string().optional(),
  }),
);
export type ApprovalRequestSpec = z.infer<ReturnType<typeof ApprovalRequestSpecSchema>>;

/** The prefix of a vote's `by` for a Kubernetes user (Slack votes carry Slack user ids). */
export const KUBERNETES_VOTER_PREFIX = 'k8s:';

/**
 * One approver's vote, from Slack or from an ApprovalDecision (kubectl). `by` identifies the voter:
 * a Slack user id, or `k8s:<username>` for a Kubernetes user; one vote per `by` counts.
 */
export const VoteSchema = lazy(() =>
  z.strictObject({
    by: z.string(),
    /** For people: a display name, or the Kubernetes username. */
    name: z.string().optional(),
    via: z.enum(['slack', 'kubernetes']),
    decision: z.enum(['approve', 'reject']),
    /** RFC 3339. */
    at: z.string(),
    /** The ApprovalDecision that carried it (kubernetes votes). */
    ref: z.string().optional(),
    /**
     * Kubernetes votes: the voter's groups as the API server authenticated them when the decision
     * was made (system: groups left out: they are never approvers), so a vote counting through a
     * group stops counting when the channel no longer lists that group.
     */
    groups: z.array(z.string().min(1).max(512)).max(256).optional(),
  }),
);
export type Vote = z.infer<ReturnType<typeof VoteSchema>>;

export const ApprovalRequestStatusSchema = lazy(() =>
  z.object({
    phase: z.enum(APPROVAL_PHASES).optional(),
    /** For Failed (and other ends): a CamelCase cause a program can match on (APPROVAL_REASONS). */
    reason: z.string().optional(),
    /** Who decided (Slack user ids and display names), when, and a sentence for people. */
    decidedBy: z.array(z.strictObject({ id: z.string(), name: z.string().optional() })).optional(),
    decidedAt: z.string().optional(),
    message: z.string().optional(),
    /** Approvers' votes so far (approvers.required distinct approvals decide; any reject wins). */
    votes: z.array(VoteSchema()).optional(),
    /** "<approvals>/<required>", e.g. "1/2": what `kubectl get approvalrequests` shows. */
    approvals: z.string().optional(),
    /** Where the request was posted. postingStartedAt without ts means a post may be in flight. */
    slack: z
      .strictObject({
        channel: z.string().optional(),
        ts: z.string().optional(),
        postingStartedAt: z.string().optional(),
        /** The operator replica that set postingStartedAt (another replica waits before it looks for the message). */
        postingBy: z.string().optional(),
        /** What the Slack message shows now (messageState()); the operator rewrites it until this matches. */
        messageState: z.string().optional(),
      })
      .optional(),
    observedGeneration: z.number().int().optional(),
    conditions: z.array(ConditionSchema()).optional(),
  }),
);
export type ApprovalRequestStatus = z.infer<ReturnType<typeof ApprovalRequestStatusSchema>>;

/** Labels a sidecar puts on its ApprovalRequests, so it can find (re-adopt) its own after a restart. */
export const APPROVAL_LABELS = {
  pod: 'thoughtgate.io/pod',
  source: 'thoughtgate.io/source',
} as const;

export const APPROVAL_REQUEST_KIND = {
  kind: 'ApprovalRequest',
  plural: 'approvalrequests',
  singular: 'approvalrequest',
  shortNames: ['ar', 'approval'],
} as const;

export const APPROVAL_ANNOTATIONS = {
  /**
   * Written by the sidecar after it executed an approved call: "succeeded: <summary>" or
   * "failed: <summary>". The operator shows it in the Slack message; adopt() skips requests that
   * carry it (they are finished).
   */
  result: 'thoughtgate.io/result',
  /**
   * Written by the sidecar when tracing is on: the W3C traceparent of the held call's approval
   * wait span. The operator's decision span is its child, so the decision shows in the call's trace.
   */
  traceparent: 'thoughtgate.io/traceparent',
} as const;

/** status.reason values. A sidecar maps TooManyPending to APPROVAL_LIMIT (-32010). */
export const APPROVAL_REASONS = {
  approved: 'Approved',
  rejected: 'Rejected',
  expired: 'Expired',
  cancelled: 'Cancelled',
  tooManyPending: 'TooManyPending',
  invalidRequest: 'InvalidRequest',
  channelNotFound: 'ChannelNotFound',
  channelInvalid: 'ChannelInvalid',
  secretNotFound: 'SecretNotFound',
  apiUrlNotAllowed: 'SlackApiUrlNotAllowed',
  slackRefused: 'SlackRefused',
  deleted: 'Deleted',
} as const;

/** The first words of a Failed message for the cluster-wide cap: stable, sidecars may match on it. */
export const TOO_MANY_PENDING = 'too many pending approvals';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The ApprovalRequest name for a sidecar task id: the id itself when it is a DNS label (a UUID
 * is), else a readable part of it plus a hash. Deterministic, so a retried create after a lost
 * answer finds the same object (409) instead of making a second one. Task ids must be unique in
 * the namespace (the task engine uses UUIDs).
 */
export function approvalRequestName(taskId: string): string {
  if (taskId.length <= 63 && DNS_LABEL.test(taskId)) return taskId;
  const readable = taskId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return `${readable || 'task'}-${sha256(taskId).slice(0, 16)}`;
}

/**
 * A label value standing for `v` (a pod or source name): `v` itself when it is a valid label
 * value (≤ 63 characters), else a hash. Pod names may be 253 characters; readers must still
 * compare spec.workload.pod, since a label only narrows the list.
 */
export function approvalLabelValue(v: string): string {
  return v.length <= 63 && LABEL_VALUE.test(v) ? v : `h-${sha256(v).slice(0, 40)}`;
}

/** The result annotation's value for finished(): bounded, one line. */
export function resultAnnotation(result: { ok: boolean; summary: string }): string {
  const summary = result.summary.replace(/\s+/g, ' ').trim();
  const text = `${result.ok ? 'succeeded' : 'failed'}${summary ? `: ${summary}` : ''}`;
  return text.length > 256 ? `${text.slice(0, 255)}…` : text;
}

/** What the Slack message of a request should show: the phase, and the execution result once known. */
export function messageState(phase: ApprovalPhase | undefined, result: string | undefined): string {
  const p = phase ?? 'Pending';
  return p === 'Approved' && result ? `${p}; ${result}` : p;
}

/** Where the votes stand: approved once `required` distinct voters approve; any reject rejects. */
export interface Tally {
  outcome: 'approved' | 'rejected' | null;
  /** Distinct approving voters, in the order they voted. */
  approvers: Vote[];
  /** The first rejecting vote. */
  rejectedBy?: Vote;
  /** "<approvals>/<required>". */
  summary: string;
}

export function tallyVotes(votes: readonly Vote[], required: number): Tally {
  const need = Math.max(1, Math.floor(required));
  const rejectedBy = votes.find((v) => v.decision === 'reject');
  const seen = new Set<string>();
  const approvers: Vote[] = [];
  for (const v of votes) {
    if (v.decision !== 'approve' || seen.has(v.by)) continue;
    seen.add(v.by);
    approvers.push(v);
  }
  const summary = `${Math.min(approvers.length, need)}/${need}`;
  if (rejectedBy) return { outcome: 'rejected', approvers, rejectedBy, summary };
  return { outcome: approvers.length >= need ? 'approved' : null, approvers, summary };
}

/**
 * Who may decide a request now, for standingVotes(): the channel's approvers as they are at tally
 * time. `slack`: whether a Slack user id is an approver (a listed user, or a member of a listed
 * user group), undefined when that cannot be told now (the user groups could not be read).
 */
export interface CurrentApprovers {
  slack: (userId: string) => boolean | undefined;
  kubernetes?: { users: readonly string[]; groups: readonly string[] } | undefined;
}

/**
 * The recorded votes that count now: each voter must still be an approver through the kind of
 * vote they cast (Slack users and user groups for via: slack, Kubernetes users and groups for
 * via: kubernetes). A vote stays recorded when its voter is removed, but stops counting, approve
 * and reject alike. A Kubernetes vote counts through its username or the groups it recorded (the
 * groups the API server authenticated at decision time: the operator cannot ask again later).
 * A Slack voter whose membership cannot be told now: a reject counts, an approve does not (fail
 * closed both ways).
 */
export function standingVotes(votes: readonly Vote[], approvers: CurrentApprovers): Vote[] {
  return votes.filter((v) => {
    if (v.via === 'kubernetes') {
      const k = approvers.kubernetes;
      const username = v.by.startsWith(KUBERNETES_VOTER_PREFIX) ? v.by.slice(KUBERNETES_VOTER_PREFIX.length) : undefined;
      return !!k && username !== undefined && (k.users.includes(username) || (v.groups ?? []).some((g) => k.groups.includes(g)));
    }
    const now = approvers.slack(v.by);
    return now === true || (now === undefined && v.decision === 'reject');
  });
}

/**
 * The votes with `vote` added: a voter's later vote replaces their earlier one (the same person
 * voting twice counts once; changing an approve into a reject is a reject).
 */
export function withVote(votes: readonly Vote[], vote: Vote): Vote[] {
  return [...votes.filter((v) => v.by !== vote.by), vote];
}

// What the operator does next for one ApprovalRequest: a pure function of the request, the
// clock and what this replica knows in memory (a poll result waiting to be written, whether the
// request is being polled). operator/approval-request-controller.ts carries the plan out and re-plans after each
// write, so every step is small and every decision comes from the stored record.
//
// The double-post protocol lives here as the post / recover / wait steps:
//   post     nothing recorded yet: write status.slack.postingStartedAt (conditional on the
//            resourceVersion, so one writer wins), then chat.postMessage, then write ts;
//   recover  postingStartedAt without ts (a crash or a failed call after it was written): look
//            for the message in the channel's history, adopt it if found, post only if not;
//   wait     another replica started posting moments ago and may still be at it.
import {
  APPROVAL_REASONS,
  messageState,
  TERMINAL_PHASES,
  TOO_MANY_PENDING,
  type ApprovalPhase,
  type ApprovalRequestSpec,
  type ApprovalRequestStatus,
} from '../api/approval-request.js';

/** What the poller reported for a request, kept until it is written into status. */
export type PollOutcome =
  | { status: 'approved' | 'rejected'; by: string[]; at: number }
  | { status: 'expired'; at: number }
  | { status: 'failed'; message: string; at: number };

export interface PlanInput {
  /** The object's namespace (spec.workload.namespace must say the same). */
  namespace: string;
  /** The parsed spec, or null with specError. */
  spec: ApprovalRequestSpec | null;
  specError?: string;
  status: ApprovalRequestStatus;
  /** The sidecar's thoughtgate.io/result annotation. */
  result?: string;
  created: Date;
  now: Date;
  /** A poll result this replica has not written yet. */
  pollResult?: PollOutcome;
  /** This replica is polling the request's reactions. */
  polling: boolean;
  /** This replica's identity (status.slack.postingBy). */
  me: string;
  /** How long a post another replica started may still be in flight. */
  postGraceMs: number;
  /** Ended requests are deleted this long after their decision. */
  retentionMs: number;
  /** Requests admitted cluster-wide and still open, not counting this one; and the cap. */
  pending: number;
  maxPending: number;
}

export type Plan =
  | { do: 'nothing' }
  | { do: 'fail'; reason: string; message: string }
  | { do: 'cancel' }
  | { do: 'expire'; message: string }
  | { do: 'post' }
  | { do: 'recover' }
  | { do: 'wait'; ms: number; why: string }
  | { do: 'poll' }
  | { do: 'decide'; outcome: PollOutcome }
  | { do: 'update-message'; state: string }
  | { do: 'delete' }
  /** Nothing now; look again in `ms` (retention). */
  | { do: 'later'; ms: number };

export function isTerminal(phase: string | undefined): phase is ApprovalPhase {
  return phase !== undefined && TERMINAL_PHASES.has(phase as ApprovalPhase);
}

export function planApproval(i: PlanInput): Plan {
  const s = i.status;
  const slack = s.slack ?? {};
  const now = i.now.getTime();

  if (isTerminal(s.phase)) {
    const want = messageState(s.phase, i.result);
    if (slack.ts && slack.messageState !== want) return { do: 'update-message', state: want };
    const decided = s.decidedAt ? Date.parse(s.decidedAt) : NaN;
    const end = (Number.isNaN(decided) ? i.created.getTime() : decided) + i.retentionMs;
    return end <= now ? { do: 'delete' } : { do: 'later', ms: end - now };
  }

  if (!i.spec) return { do: 'fail', reason: APPROVAL_REASONS.invalidRequest, message: `the request is not valid: ${i.specError ?? 'no spec'}` };
  if (i.spec.workload.namespace !== i.namespace) {
    return {
      do: 'fail',
      reason: APPROVAL_REASONS.invalidRequest,
      message: `spec.workload.namespace "${i.spec.workload.namespace}" is not the request's namespace "${i.namespace}"`,
    };
  }
  if (i.spec.cancelRequested) return { do: 'cancel' };
  if (i.pollResult) return { do: 'decide', outcome: i.pollResult };
  if (s.phase === undefined && i.pending >= i.maxPending) {
    return {
      do: 'fail',
      reason: APPROVAL_REASONS.tooManyPending,
      message: `${TOO_MANY_PENDING}: ${i.pending} are open cluster-wide (the operator's limit is ${i.maxPending})`,
    };
  }
  const expiresAt = Date.parse(i.spec.expiresAt);
  if (!slack.ts && !(expiresAt > now)) {
    return { do: 'expire', message: `expired before it could be posted to Slack${s.message ? ` (${s.message})` : ''}; the call is rejected` };
  }
  if (!slack.postingStartedAt) return { do: 'post' };
  if (!slack.ts) {
    const started = Date.parse(slack.postingStartedAt);
    const age = Number.isNaN(started) ? Infinity : now - started;
    if (slack.postingBy && slack.postingBy !== i.me && age < i.postGraceMs) {
      return { do: 'wait', ms: i.postGraceMs - age, why: `replica ${slack.postingBy} started posting ${Math.round(age / 1000)}s ago` };
    }
    return { do: 'recover' };
  }
  return i.polling ? { do: 'nothing' } : { do: 'poll' };
}

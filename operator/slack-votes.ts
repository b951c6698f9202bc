// A Slack click, or the reactions a poll read, on an ApprovalRequest → what to write into its status. Pure.
//
// The click is one vote in status.votes (via: slack, by: the Slack user id), next to the votes
// from kubectl (ApprovalDecisions); one vote per person (withVote). The decision follows the one
// tally rule of the code base (api/approval-request.ts tallyVotes: `required` distinct approvals
// decide, any reject wins) over the recorded votes plus the message's reactions (read by the
// caller, already filtered by the channel's allowlist; counted, not recorded here: the reaction
// poll records them, planReactionVotes below). The caller writes the result conditionally on the resourceVersion it read.
import { APPROVAL_REASONS, tallyVotes, withVote, type ApprovalRequestStatus, type Vote } from '../api/approval-request.js';
import { isTerminal } from './approval-request-plan.js';

export interface SlackVoteUpdate {
  votes: Vote[];
  /** "<approvals>/<required>". */
  approvals: string;
  /** Decided by this vote (with the others and the reactions). */
  end?: { phase: 'Approved' | 'Rejected'; reason: string; message: string; decidedBy: { id: string; name?: string }[] };
  /** Still pending: the approvers so far (the message's progress line). */
  approvedBy: { id: string; name?: string }[];
}

export type SlackVotePlan =
  /** The request ended already (decided elsewhere, expired…): nothing to write. */
  | { do: 'ended' }
  /** The same vote is recorded and decides nothing more: nothing to write. */
  | { do: 'repeat' }
  | { do: 'write'; update: SlackVoteUpdate };

const person = (v: Vote): { id: string; name?: string } => (v.name !== undefined ? { id: v.by, name: v.name } : { id: v.by });

export function planSlackVote(status: ApprovalRequestStatus, vote: Vote, required: number, reactions: readonly Vote[] = [], reason?: string): SlackVotePlan {
  if (isTerminal(status.phase)) return { do: 'ended' };
  const votes = status.votes ?? [];
  const same = votes.some((v) => v.by === vote.by && v.decision === vote.decision);
  const next = same ? [...votes] : withVote(votes, vote);
  // A reaction counts for a person without a recorded vote (a recorded one is their latest word).
  const voted = new Set(next.map((v) => v.by));
  const update = tallied(next, [...next, ...reactions.filter((r) => !voted.has(r.by))], required, (r) =>
    r.by === vote.by && vote.decision === 'reject' && reason ? `: ${reason}` : '',
  );
  if (same && !update.end) return { do: 'repeat' };
  return { do: 'write', update };
}

/**
 * The message's reactions (allowlisted, as Slack votes) → what to write into status.votes. Pure.
 *
 * A reaction not yet recorded becomes a recorded vote, so it adds up with clicks and kubectl
 * approvals in the one tally (tallyVotes over status.votes). A person's recorded vote is their
 * latest word: an approve reaction of someone who voted adds nothing; a reject reaction is always
 * recorded (fail closed). A reaction removed later leaves its recorded vote standing, as a click
 * does. Nothing new → nothing to write, so a poll writes only when the set of votes changed.
 */
export function planReactionVotes(status: ApprovalRequestStatus, reactions: readonly Vote[], required: number): SlackVotePlan {
  if (isTerminal(status.phase)) return { do: 'ended' };
  let next: Vote[] = [...(status.votes ?? [])];
  for (const r of reactions) {
    const mine = next.find((v) => v.by === r.by);
    if (mine && (mine.decision === r.decision || r.decision === 'approve')) continue;
    next = withVote(next, r);
  }
  if (next.length === (status.votes ?? []).length && next.every((v, i) => v === status.votes![i])) return { do: 'repeat' };
  return { do: 'write', update: tallied(next, next, required, () => '') };
}

/** The status update for recorded votes `votes`, decided by the tally over `counted`. */
function tallied(votes: Vote[], counted: readonly Vote[], required: number, why: (rejectedBy: Vote) => string): SlackVoteUpdate {
  const t = tallyVotes(counted, required);
  const update: SlackVoteUpdate = { votes, approvals: t.summary, approvedBy: t.approvers.map(person) };
  if (t.outcome === 'rejected') {
    const r = t.rejectedBy!;
    const via = r.via === 'kubernetes' ? 'with kubectl' : 'in Slack';
    update.end = { phase: 'Rejected', reason: APPROVAL_REASONS.rejected, message: `rejected ${via} by ${r.name ?? r.by}${why(r)}`, decidedBy: [person(r)] };
  } else if (t.outcome === 'approved') {
    const where = t.approvers.every((v) => v.via === 'slack') ? ' in Slack' : '';
    update.end = {
      phase: 'Approved',
      reason: APPROVAL_REASONS.approved,
      message: `approved${where} by ${t.approvers.map((v) => v.name ?? v.by).join(', ')}`,
      decidedBy: t.approvers.map(person),
    };
  }
  return update;
}

/**
 * Why a click on a request is not written, whatever it says: cancelled by the agent, or past its
 * expiry (`now` after expiresAt). Its request ends Cancelled or Expired (the kubectl path refuses
 * both too); undefined when the click may count. Pure.
 */
export function clickTooLate(spec: { cancelRequested?: boolean; expiresAt: string }, now: Date): 'cancelled' | 'expired' | undefined {
  if (spec.cancelRequested) return 'cancelled';
  return now.getTime() > Date.parse(spec.expiresAt) ? 'expired' : undefined;
}

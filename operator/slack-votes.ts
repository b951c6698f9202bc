// A Slack click, or the reactions a poll read, on an ApprovalRequest → what to write into its status. Pure.
//
// The click is one vote in status.votes (via: slack, by: the Slack user id), next to the votes
// from kubectl (ApprovalDecisions); one vote per person (withVote). The decision follows the one
// tally rule of the code base (api/approval-request.ts tallyVotes: `required` distinct approvals
// decide, any reject wins) over the recorded votes plus the message's reactions (read by the
// caller, already filtered by the channel's allowlist; counted, not recorded here: the reaction
// poll records them, planReactionVotes below). The caller writes the result conditionally on the resourceVersion it read.
// Only votes of people who are approvers now count (standingVotes): one removed from the channel
// since voting no longer does, whichever way they voted.
import {
  APPROVAL_REASONS,
  standingVotes,
  tallyVotes,
  withVote,
  type ApprovalRequestStatus,
  type CurrentApprovers,
  type Vote,
} from '../api/approval-request.js';
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

export function planSlackVote(
  status: ApprovalRequestStatus,
  vote: Vote,
  required: number,
  approvers: CurrentApprovers,
  reactions: readonly Vote[] = [],
  reason?: string,
): SlackVotePlan {
  if (isTerminal(status.phase)) return { do: 'ended' };
  const votes = status.votes ?? [];
  const same = votes.some((v) => v.by === vote.by && v.decision === vote.decision);
  const next = same ? [...votes] : withVote(votes, vote);
  // A reaction counts for a person without a recorded vote (a recorded one is their latest word).
  const voted = new Set(next.map((v) => v.by));
  const update = tallied(next, [...next, ...reactions.filter((r) => !voted.has(r.by))], required, approvers, (r) =>
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
export function planReactionVotes(status: ApprovalRequestStatus, reactions: readonly Vote[], required: number, approvers: CurrentApprovers): SlackVotePlan {
  if (isTerminal(status.phase)) return { do: 'ended' };
  let next: Vote[] = [...(status.votes ?? [])];
  for (const r of reactions) {
    const mine = next.find((v) => v.by === r.by);
    if (mine && (mine.decision === r.decision || r.decision === 'approve')) continue;
    next = withVote(next, r);
  }
  if (next.length === (status.votes ?? []).length && next.every((v, i) => v === status.votes![i])) return { do: 'repeat' };
  return { do: 'write', update: tallied(next, next, required, approvers, () => '') };
}

/** The status update for recorded votes `votes`, decided by the tally over those of `counted` whose voters are approvers now. */
function tallied(votes: Vote[], counted: readonly Vote[], required: number, approvers: CurrentApprovers, why: (rejectedBy: Vote) => string): SlackVoteUpdate {
  const t = tallyVotes(standingVotes(counted, approvers), required);
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
 * Whether a Slack user is an approver of a channel now, for standingVotes(): listed users (and
 * `known`, just checked against the allowlist: a click's voter, a poll's allowlisted reactions) at
 * once; the members of the channel's user groups are read (`readGroups`, the directory's cached
 * allowlist) only when a Slack voter of `votes` is neither. A failed read leaves those voters
 * undefined (standingVotes: their rejects count, their approvals do not).
 */
export async function slackApprovers(
  approvers: { users: readonly string[]; userGroups: readonly string[] },
  votes: readonly Vote[],
  readGroups: () => Promise<ReadonlySet<string>>,
  known: readonly string[] = [],
): Promise<(userId: string) => boolean | undefined> {
  const listed = new Set([...approvers.users, ...known]);
  if (approvers.userGroups.length === 0 || votes.every((v) => v.via !== 'slack' || listed.has(v.by))) return (id) => listed.has(id);
  try {
    const members = await readGroups();
    return (id) => listed.has(id) || members.has(id);
  } catch {
    return (id) => (listed.has(id) ? true : undefined);
  }
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

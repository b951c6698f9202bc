// From the votes on an approval message (reactions, button clicks, kubectl) to a decision. Pure.
import { tallyVotes, type Vote } from '../api/approval-request.js';
//
// Rules (the two-person rule, `approvers.required: N`, default 1):
//  - Only votes from allowlisted approvers count; anyone else's are ignored.
//  - Votes are per person: one approver clicking twice, or reacting and clicking, counts once.
//  - The bot's own reactions never count, even if its user id were (mis)listed as an approver.
//  - Reaction names are compared without skin-tone suffixes ("+1::skin-tone-3" counts as "+1").
//  - When approvers' approve *and* reject reactions are both present in one read, reject wins.
//    reactions.get does not say which came first, so we fail closed instead of guessing.
//    Any one approver's reject wins, whatever N is and however many approved.
//  - Approved once N distinct approvers approved; until then pending, "k of N".

export interface SlackReaction {
  name: string;
  users?: readonly string[];
  count?: number;
}

export interface ReactionRule {
  approve: readonly string[];
  reject: readonly string[];
}

export interface Decision {
  outcome: 'approved' | 'rejected';
  /** The approvers whose reactions decided it (sorted). */
  by: string[];
}

/** "thumbsup::skin-tone-2" → "thumbsup". */
export function normalizeReactionName(name: string): string {
  const i = name.indexOf('::');
  return i >= 0 ? name.slice(0, i) : name;
}

export interface Votes {
  approve: Set<string>;
  reject: Set<string>;
}

/** Users who reacted with an approve or reject reaction, before the allowlist is applied. */
export function collectVotes(reactions: readonly SlackReaction[] | undefined, rule: ReactionRule, botUserId?: string): Votes {
  const approveNames = new Set(rule.approve.map(normalizeReactionName));
  const rejectNames = new Set(rule.reject.map(normalizeReactionName));
  const votes: Votes = { approve: new Set(), reject: new Set() };
  for (const r of reactions ?? []) {
    if (!r || typeof r.name !== 'string') continue;
    const name = normalizeReactionName(r.name);
    // A name listed under both counts as reject (fail closed on a misconfiguration).
    const target = rejectNames.has(name) ? votes.reject : approveNames.has(name) ? votes.approve : undefined;
    if (!target) continue;
    for (const u of r.users ?? []) if (typeof u === 'string' && u !== botUserId) target.add(u);
  }
  return votes;
}

/** Where an approval stands: pending with k of N approvals so far, or decided. */
export type Tally =
  | { state: 'pending'; approvedBy: string[]; approvals: number; required: number }
  | { state: 'approved'; by: string[]; approvals: number; required: number }
  | { state: 'rejected'; by: string[]; approvals: number; required: number };

/**
 * `approvers.required` checked: undefined is 1; an integer ≥ 1 is itself; anything else (2.5, NaN,
 * 0, negative) throws. Turning a bad N into 1 would fail open on the two-person rule; a throw
 * makes every read of the approval fail, so it is never approved (fail closed).
 */
export function requiredApprovals(n: number | undefined): number {
  if (n === undefined) return 1;
  if (Number.isInteger(n) && n >= 1) return n;
  throw new RangeError(`approvers.required must be an integer of at least 1, not ${n}`);
}

/**
 * The two-person rule over the votes of distinct people: the allowlist in front (users and
 * resolved user-group members; the bot never counts), then the code base's one tally rule,
 * api/approval-request.ts `tallyVotes` (kubectl votes and the operator's Slack votes go through
 * it too). `approvals` counts allowlisted approvers; a reject's `by` lists every allowlisted rejecter.
 */
export function tally(votes: Votes, allowed: ReadonlySet<string>, required = 1, botUserId?: string): Tally {
  const n = requiredApprovals(required);
  const counted = (s: ReadonlySet<string>) => [...s].filter((u) => allowed.has(u) && u !== botUserId).sort();
  const approvers = counted(votes.approve);
  const rejecters = counted(votes.reject);
  const as = (ids: readonly string[], decision: 'approve' | 'reject'): Vote[] => ids.map((by) => ({ by, via: 'slack', decision, at: '' }));
  const t = tallyVotes([...as(approvers, 'approve'), ...as(rejecters, 'reject')], n);
  const base = { approvals: approvers.length, required: n };
  if (t.outcome === 'rejected') return { state: 'rejected', by: rejecters, ...base };
  if (t.outcome === 'approved') return { state: 'approved', by: approvers, ...base };
  return { state: 'pending', approvedBy: approvers, ...base };
}

/** Decides from the votes of allowlisted users; null while pending (fewer than `required` approvals, no reject). */
export function decideFromVotes(votes: Votes, allowed: ReadonlySet<string>, botUserId?: string, required = 1): Decision | null {
  const t = tally(votes, allowed, required, botUserId);
  return t.state === 'pending' ? null : { outcome: t.state, by: t.by };
}

/** Votes from several places (reactions, clicks, kubectl) as one set per person and side. */
export function mergeVotes(...all: readonly Votes[]): Votes {
  const out: Votes = { approve: new Set(), reject: new Set() };
  for (const v of all) {
    for (const u of v.approve) out.approve.add(u);
    for (const u of v.reject) out.reject.add(u);
  }
  return out;
}

/** Convenience: reactions → decision in one step. */
export function decide(
  reactions: readonly SlackReaction[] | undefined,
  rule: ReactionRule,
  allowed: ReadonlySet<string>,
  botUserId?: string,
  required = 1,
): Decision | null {
  return decideFromVotes(collectVotes(reactions, rule, botUserId), allowed, botUserId, required);
}

/** A stable summary of all reactions (anyone's), so a poller can tell whether something changed. */
export function reactionFingerprint(reactions: readonly SlackReaction[] | undefined): string {
  return (reactions ?? [])
    .filter((r) => r && typeof r.name === 'string')
    .map((r) => `${r.name}:${[...(r.users ?? [])].sort().join(',')}`)
    .sort()
    .join('|');
}

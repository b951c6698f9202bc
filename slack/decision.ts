// From the reactions on an approval message to a decision. Pure.
//
// Rules:
//  - Only reactions from allowlisted approvers count; anyone else's are ignored.
//  - The bot's own reactions never count, even if its user id were (mis)listed as an approver.
//  - Reaction names are compared without skin-tone suffixes ("+1::skin-tone-3" counts as "+1").
//  - When approvers' approve *and* reject reactions are both present in one read, reject wins.
//    reactions.get does not say which came first, so we fail closed instead of guessing.
//  - One approver is enough (the first valid decision wins; there is no quorum).

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

/** Decides from the votes of allowlisted users; null while nobody allowed has decided. */
export function decideFromVotes(votes: Votes, allowed: ReadonlySet<string>, botUserId?: string): Decision | null {
  const counted = (s: Set<string>) => [...s].filter((u) => allowed.has(u) && u !== botUserId).sort();
  const rejecters = counted(votes.reject);
  if (rejecters.length > 0) return { outcome: 'rejected', by: rejecters };
  const approvers = counted(votes.approve);
  if (approvers.length > 0) return { outcome: 'approved', by: approvers };
  return null;
}

/** Convenience: reactions → decision in one step. */
export function decide(reactions: readonly SlackReaction[] | undefined, rule: ReactionRule, allowed: ReadonlySet<string>, botUserId?: string): Decision | null {
  return decideFromVotes(collectVotes(reactions, rule, botUserId), allowed, botUserId);
}

/** A stable summary of all reactions (anyone's), so a poller can tell whether something changed. */
export function reactionFingerprint(reactions: readonly SlackReaction[] | undefined): string {
  return (reactions ?? [])
    .filter((r) => r && typeof r.name === 'string')
    .map((r) => `${r.name}:${[...(r.users ?? [])].sort().join(',')}`)
    .sort()
    .join('|');
}

import fc from 'fast-check';
import { collectVotes, decide, mergeVotes, normalizeReactionName, reactionFingerprint, requiredApprovals, tally, type SlackReaction } from './decision.js';

const rule = { approve: ['white_check_mark', '+1'], reject: ['x'] };
const allowed = new Set(['U1', 'U2']);
const BOT = 'UBOT';

describe('decide', () => {
  test('no reactions, or none from approvers → no decision', () => {
    expect(decide(undefined, rule, allowed, BOT)).toBeNull();
    expect(decide([], rule, allowed, BOT)).toBeNull();
    expect(decide([{ name: 'white_check_mark', users: ['U9'], count: 1 }], rule, allowed, BOT)).toBeNull();
    expect(decide([{ name: 'eyes', users: ['U1'], count: 1 }], rule, allowed, BOT)).toBeNull();
  });

  test('an approver approves', () => {
    const r: SlackReaction[] = [{ name: 'white_check_mark', users: ['U9', 'U2', 'U1'], count: 3 }];
    expect(decide(r, rule, allowed, BOT)).toEqual({ outcome: 'approved', by: ['U1', 'U2'] });
  });

  test('an approver rejects', () => {
    expect(decide([{ name: 'x', users: ['U2'] }], rule, allowed, BOT)).toEqual({ outcome: 'rejected', by: ['U2'] });
  });

  test('both approve and reject from approvers → reject wins, by the rejecters', () => {
    const r: SlackReaction[] = [
      { name: 'white_check_mark', users: ['U1'] },
      { name: 'x', users: ['U2'] },
    ];
    expect(decide(r, rule, allowed, BOT)).toEqual({ outcome: 'rejected', by: ['U2'] });
  });

  test("a non-approver's reject does not block an approver's approve", () => {
    const r: SlackReaction[] = [
      { name: 'white_check_mark', users: ['U1'] },
      { name: 'x', users: ['U9'] },
    ];
    expect(decide(r, rule, allowed, BOT)).toEqual({ outcome: 'approved', by: ['U1'] });
  });

  test("the bot's own reactions never count, even if it is listed", () => {
    const withBot = new Set([...allowed, BOT]);
    expect(decide([{ name: 'white_check_mark', users: [BOT] }], rule, withBot, BOT)).toBeNull();
    expect(
      decide(
        [
          { name: 'x', users: [BOT] },
          { name: '+1', users: ['U1'] },
        ],
        rule,
        withBot,
        BOT,
      ),
    ).toEqual({ outcome: 'approved', by: ['U1'] });
  });

  test('skin tones are ignored; any configured approve name counts', () => {
    expect(decide([{ name: '+1::skin-tone-4', users: ['U1'] }], rule, allowed, BOT)).toEqual({ outcome: 'approved', by: ['U1'] });
    expect(normalizeReactionName('x::skin-tone-2')).toBe('x');
  });

  test('a name configured as both approve and reject counts as reject', () => {
    const odd = { approve: ['ok'], reject: ['ok'] };
    expect(decide([{ name: 'ok', users: ['U1'] }], odd, allowed, BOT)?.outcome).toBe('rejected');
  });

  test('malformed entries are skipped', () => {
    const r = [{ name: 'white_check_mark' }, null, { name: 5 }, { name: 'x', users: [7, 'U9'] }] as unknown as SlackReaction[];
    expect(decide(r, rule, allowed, BOT)).toBeNull();
    expect(collectVotes(r, rule, BOT).reject).toEqual(new Set(['U9']));
  });
});

test('reactionFingerprint changes with anyone’s reactions and ignores order', () => {
  const a = reactionFingerprint([
    { name: 'eyes', users: ['U9', 'U1'] },
    { name: 'x', users: [] },
  ]);
  const b = reactionFingerprint([
    { name: 'x', users: [] },
    { name: 'eyes', users: ['U1', 'U9'] },
  ]);
  expect(a).toBe(b);
  expect(reactionFingerprint([{ name: 'eyes', users: ['U1'] }])).not.toBe(a);
  expect(reactionFingerprint(undefined)).toBe('');
});

describe('the two-person rule (tally)', () => {
  const people = ['U1', 'U2', 'U3', 'U4', 'U5', 'U6', BOT];
  const allowlisted = new Set(['U1', 'U2', 'U3', 'U4', BOT]);
  const vote = fc.record({ user: fc.constantFrom(...people), side: fc.constantFrom<'approve' | 'reject'>('approve', 'reject') });
  const votesOf = (list: readonly { user: string; side: 'approve' | 'reject' }[]) => {
    const v = { approve: new Set<string>(), reject: new Set<string>() };
    for (const x of list) v[x.side].add(x.user);
    return v;
  };

  test('pending (k of N) | approved | rejected, as the rule says, for any votes and N', () => {
    fc.assert(
      fc.property(fc.array(vote, { maxLength: 20 }), fc.integer({ min: 1, max: 5 }), (list, n) => {
        const t = tally(votesOf(list), allowlisted, n, BOT);
        const counts = (side: 'approve' | 'reject') =>
          new Set(list.filter((x) => x.side === side && allowlisted.has(x.user) && x.user !== BOT).map((x) => x.user));
        const rejecters = counts('reject');
        const approvers = counts('approve');
        expect(t.required).toBe(n);
        expect(t.approvals).toBe(approvers.size);
        if (rejecters.size > 0) expect(t).toMatchObject({ state: 'rejected', by: [...rejecters].sort() });
        else if (approvers.size >= n) expect(t).toMatchObject({ state: 'approved', by: [...approvers].sort() });
        else expect(t).toMatchObject({ state: 'pending', approvedBy: [...approvers].sort() });
      }),
    );
  });

  test('order and repetition of votes do not matter; more approvals never un-approve; one reject always wins', () => {
    fc.assert(
      fc.property(fc.array(vote, { maxLength: 20 }), fc.integer({ min: 1, max: 5 }), fc.constantFrom('U1', 'U2', 'U3', 'U4'), (list, n, extra) => {
        const t = tally(votesOf(list), allowlisted, n, BOT);
        expect(tally(votesOf([...list].reverse().concat(list)), allowlisted, n, BOT)).toEqual(t);
        const more = tally(votesOf([...list, { user: extra, side: 'approve' }]), allowlisted, n, BOT);
        if (t.state === 'approved') expect(more.state).toBe('approved');
        if (t.state === 'rejected') expect(more.state).toBe('rejected');
        expect(tally(votesOf([...list, { user: extra, side: 'reject' }]), allowlisted, n, BOT).state).toBe('rejected');
      }),
    );
  });

  test('N distinct approvers are needed: one person clicking and reacting counts once', () => {
    const clicks = { approve: new Set(['U1']), reject: new Set<string>() };
    const reactions = { approve: new Set(['U1', 'U9']), reject: new Set<string>() };
    expect(tally(mergeVotes(clicks, reactions), allowed, 2, BOT)).toEqual({ state: 'pending', approvedBy: ['U1'], approvals: 1, required: 2 });
    expect(tally(mergeVotes(clicks, { approve: new Set(['U2']), reject: new Set() }), allowed, 2, BOT)).toMatchObject({ state: 'approved', by: ['U1', 'U2'] });
    expect(decide([{ name: 'white_check_mark', users: ['U1'] }], rule, allowed, BOT, 2)).toBeNull();
    expect(decide([{ name: 'white_check_mark', users: ['U1', 'U2'] }], rule, allowed, BOT, 2)).toEqual({ outcome: 'approved', by: ['U1', 'U2'] });
  });

  test('requiredApprovals: undefined is 1, an integer ≥ 1 is itself, anything else throws (never approvable)', () => {
    expect([undefined, 1, 3].map(requiredApprovals)).toEqual([1, 1, 3]);
    for (const bad of [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => requiredApprovals(bad)).toThrow(RangeError);
      // A bad N never decides "approved", however many approve.
      expect(() => tally({ approve: new Set(['U1', 'U2']), reject: new Set() }, allowed, bad, BOT)).toThrow(RangeError);
    }
  });
});

test('standalone: clicks recorded before a restart count only for people still on the allowlist, a reject included', () => {
  // U3 clicked approve and U4 reject, then both left the channel's approvers (the sidecar restarted with the new list).
  const clicks = { approve: new Set(['U3']), reject: new Set(['U4']) };
  const votes = mergeVotes(collectVotes([{ name: 'white_check_mark', users: ['U1'] }], rule, BOT), clicks);
  expect(tally(votes, allowed, 2, BOT)).toEqual({ state: 'pending', approvedBy: ['U1'], approvals: 1, required: 2 });
  expect(tally(votes, new Set([...allowed, 'U4']), 2, BOT)).toMatchObject({ state: 'rejected', by: ['U4'] });
});

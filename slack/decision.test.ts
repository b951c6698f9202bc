import { collectVotes, decide, normalizeReactionName, reactionFingerprint, type SlackReaction } from './decision.js';

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

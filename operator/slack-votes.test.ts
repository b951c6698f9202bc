// planSlackVote: a Slack click → what the operator writes into the ApprovalRequest's status.
import type { CurrentApprovers, Vote } from '../api/approval-request.js';
import { clickTooLate, planReactionVotes, planSlackVote, slackApprovers } from './slack-votes.js';

const at = '2026-12-06T15:00:00.000Z';
const slack = (by: string, decision: 'approve' | 'reject' = 'approve', name?: string): Vote => ({ by, via: 'slack', decision, at, ...(name ? { name } : {}) });
/** Everyone voting here is an approver now (Slack users, and carol in Kubernetes). */
const all: CurrentApprovers = { slack: () => true, kubernetes: { users: ['carol'], groups: [] } };
const kube = (by: string, decision: 'approve' | 'reject' = 'approve'): Vote => ({ by: `k8s:${by}`, name: by, via: 'kubernetes', decision, at, ref: 'd1' });

test('one of one: the click is written with the decision and who', () => {
  const p = planSlackVote({ phase: 'Posted' }, slack('U1', 'approve', 'Alice'), 1, all);
  expect(p).toEqual({
    do: 'write',
    update: {
      votes: [slack('U1', 'approve', 'Alice')],
      approvals: '1/1',
      approvedBy: [{ id: 'U1', name: 'Alice' }],
      end: { phase: 'Approved', reason: 'Approved', message: 'approved in Slack by Alice', decidedBy: [{ id: 'U1', name: 'Alice' }] },
    },
  });
});

test('two of two: the first click is progress; the same click again writes nothing; a second person decides', () => {
  const first = planSlackVote({ phase: 'Posted' }, slack('U1'), 2, all);
  expect(first).toMatchObject({ do: 'write', update: { approvals: '1/2', approvedBy: [{ id: 'U1' }] } });
  expect((first as { update: { end?: unknown } }).update.end).toBeUndefined();
  const status = { phase: 'Posted' as const, votes: [slack('U1')] };
  expect(planSlackVote(status, slack('U1'), 2, all)).toEqual({ do: 'repeat' });
  expect(planSlackVote(status, slack('U2'), 2, all)).toMatchObject({ do: 'write', update: { approvals: '2/2', end: { phase: 'Approved' } } });
});

test('a kubectl vote and a click count together; a reaction counts for a person without a recorded vote', () => {
  expect(planSlackVote({ phase: 'Posted', votes: [kube('carol')] }, slack('U1'), 2, all)).toMatchObject({
    do: 'write',
    update: { end: { phase: 'Approved', message: 'approved by carol, U1' } },
  });
  expect(planSlackVote({ phase: 'Posted' }, slack('U1'), 2, all, [slack('U2')])).toMatchObject({ do: 'write', update: { end: { phase: 'Approved' } } });
  // The reaction of someone whose click is recorded is not a second vote.
  expect(planSlackVote({ phase: 'Posted' }, slack('U1'), 2, all, [slack('U1')])).toMatchObject({ update: { approvals: '1/2' } });
  // A repeat click with a reaction that now completes the count is written (with the decision).
  expect(planSlackVote({ phase: 'Posted', votes: [slack('U1')] }, slack('U1'), 2, all, [slack('U2')])).toMatchObject({
    do: 'write',
    update: { end: { phase: 'Approved' } },
  });
});

test('any reject wins, with the reason; an ended request writes nothing', () => {
  expect(planSlackVote({ phase: 'Posted', votes: [slack('U1')] }, slack('U2', 'reject', 'Bob'), 2, all, [], 'not now')).toMatchObject({
    do: 'write',
    update: { end: { phase: 'Rejected', message: 'rejected in Slack by Bob: not now', decidedBy: [{ id: 'U2', name: 'Bob' }] } },
  });
  expect(planSlackVote({ phase: 'Posted' }, slack('U1'), 1, all, [slack('U2', 'reject')])).toMatchObject({ update: { end: { phase: 'Rejected' } } });
  for (const phase of ['Approved', 'Rejected', 'Expired', 'Cancelled', 'Failed'] as const)
    expect(planSlackVote({ phase }, slack('U1'), 1, all)).toEqual({ do: 'ended' });
});

// planReactionVotes: a reaction poll's allowlisted votes → what the operator records in status.votes.

test('a reaction is recorded as a vote and adds up with a kubectl approval: approved 2/2', () => {
  expect(planReactionVotes({ phase: 'Posted', votes: [kube('carol')] }, [slack('U1', 'approve', 'Alice')], 2, all)).toEqual({
    do: 'write',
    update: {
      votes: [kube('carol'), slack('U1', 'approve', 'Alice')],
      approvals: '2/2',
      approvedBy: [
        { id: 'k8s:carol', name: 'carol' },
        { id: 'U1', name: 'Alice' },
      ],
      end: {
        phase: 'Approved',
        reason: 'Approved',
        message: 'approved by carol, Alice',
        decidedBy: [
          { id: 'k8s:carol', name: 'carol' },
          { id: 'U1', name: 'Alice' },
        ],
      },
    },
  });
});

test('one reaction of two needed is recorded as progress; read again, nothing is written', () => {
  const first = planReactionVotes({ phase: 'Posted' }, [slack('U1')], 2, all);
  expect(first).toEqual({ do: 'write', update: { votes: [slack('U1')], approvals: '1/2', approvedBy: [{ id: 'U1' }] } });
  // The next poll reads the same reaction (with a later `at`): the set of votes did not change.
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [{ ...slack('U1'), at: '2026-12-06T15:05:00.000Z' }], 2, all)).toEqual({ do: 'repeat' });
  // A reaction removed later: no reaction read, the recorded vote stands (nothing to write).
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [], 2, all)).toEqual({ do: 'repeat' });
});

test('a recorded vote is the latest word for an approve reaction; a reject reaction is always recorded and wins', () => {
  // U1 clicked Approve and also reacted: not a second vote, nothing to write.
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [slack('U1')], 2, all)).toEqual({ do: 'repeat' });
  expect(planReactionVotes({ phase: 'Posted', votes: [kube('carol')] }, [slack('U2', 'reject', 'Bob')], 2, all)).toMatchObject({
    do: 'write',
    update: {
      votes: [kube('carol'), slack('U2', 'reject', 'Bob')],
      end: { phase: 'Rejected', message: 'rejected in Slack by Bob', decidedBy: [{ id: 'U2' }] },
    },
  });
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [slack('U1', 'reject')], 2, all)).toMatchObject({
    update: { votes: [slack('U1', 'reject')], end: { phase: 'Rejected' } },
  });
});

test('an ended request records nothing', () => {
  expect(planReactionVotes({ phase: 'Approved', votes: [kube('carol')] }, [slack('U1')], 2, all)).toEqual({ do: 'ended' });
  expect(planReactionVotes({ phase: 'Expired' }, [slack('U1', 'reject')], 1, all)).toEqual({ do: 'ended' });
});

// Approvers removed from the channel: their recorded votes stay, but no longer count.
test('a click does not add up with the recorded vote of someone who is no longer an approver', () => {
  // dave approved with kubectl, then left approvers.kubernetes; U2 approved in Slack, then left the Slack approvers.
  const now: CurrentApprovers = { slack: (id) => id === 'U1', kubernetes: { users: ['carol'], groups: [] } };
  const p = planSlackVote({ phase: 'Posted', votes: [kube('dave'), slack('U2')] }, slack('U1'), 2, now);
  expect(p).toMatchObject({ do: 'write', update: { approvals: '1/2', approvedBy: [{ id: 'U1' }] } });
  expect((p as { update: { end?: unknown; votes: Vote[] } }).update.end).toBeUndefined();
  expect((p as { update: { votes: Vote[] } }).update.votes.map((v) => v.by)).toEqual(['k8s:dave', 'U2', 'U1']);
  // Their reject no longer counts either.
  expect(planSlackVote({ phase: 'Posted', votes: [kube('dave', 'reject')] }, slack('U1'), 1, now)).toMatchObject({
    update: { end: { phase: 'Approved' } },
  });
});

test('a kubernetes vote counts through a group it recorded while the channel lists that group', () => {
  const viaGroup: Vote = { ...kube('erin'), groups: ['oncall'] };
  const listed: CurrentApprovers = { slack: () => true, kubernetes: { users: [], groups: ['oncall'] } };
  const dropped: CurrentApprovers = { slack: () => true, kubernetes: { users: [], groups: ['sre'] } };
  expect(planSlackVote({ phase: 'Posted', votes: [viaGroup] }, slack('U1'), 2, listed)).toMatchObject({ update: { end: { phase: 'Approved' } } });
  expect(planSlackVote({ phase: 'Posted', votes: [viaGroup] }, slack('U1'), 2, dropped)).toMatchObject({ update: { approvals: '1/2' } });
});

test('a Slack voter whose membership cannot be told now: a reject still counts, an approval does not', () => {
  const unknown: CurrentApprovers = { slack: (id) => (id === 'U1' ? true : undefined), kubernetes: undefined };
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U9')] }, [slack('U1')], 2, unknown)).toMatchObject({ update: { approvals: '1/2' } });
  expect(planSlackVote({ phase: 'Posted', votes: [slack('U9', 'reject')] }, slack('U1'), 1, unknown)).toMatchObject({
    update: { end: { phase: 'Rejected', decidedBy: [{ id: 'U9' }] } },
  });
});

test('planReactionVotes: a reaction adds up only with the votes of current approvers', () => {
  const now: CurrentApprovers = { slack: (id) => id !== 'U2', kubernetes: { users: ['carol'], groups: [] } };
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U2')] }, [slack('U1')], 2, now)).toMatchObject({ do: 'write', update: { approvals: '1/2' } });
  expect(planReactionVotes({ phase: 'Posted', votes: [kube('carol')] }, [slack('U1')], 2, now)).toMatchObject({ update: { end: { phase: 'Approved' } } });
});

describe('slackApprovers', () => {
  const approvers = { users: ['U1'], userGroups: ['S1'] };
  test('listed and just-checked users at once; user groups read only for another Slack voter', async () => {
    let reads = 0;
    const read = async () => {
      reads++;
      return new Set(['U3']);
    };
    const listedOnly = await slackApprovers(approvers, [slack('U1'), kube('carol')], read, ['U2']);
    expect([listedOnly('U1'), listedOnly('U2'), listedOnly('U3')]).toEqual([true, true, false]);
    expect(reads).toBe(0);
    const withGroups = await slackApprovers(approvers, [slack('U3')], read);
    expect([withGroups('U1'), withGroups('U3'), withGroups('U4')]).toEqual([true, true, false]);
    expect(reads).toBe(1);
    // No user groups: nobody else can be an approver, nothing to read.
    expect((await slackApprovers({ users: ['U1'], userGroups: [] }, [slack('U3')], read))('U3')).toBe(false);
    expect(reads).toBe(1);
  });

  test('user groups that cannot be read: others are undefined (cannot be told)', async () => {
    const is = await slackApprovers(approvers, [slack('U3')], () => Promise.reject(new Error('slack down')));
    expect([is('U1'), is('U3')]).toEqual([true, undefined]);
  });
});

describe('clickTooLate: a click after the request was cancelled or expired is not written', () => {
  const expiresAt = '2026-12-06T15:10:00.000Z';
  const ms = (iso: string, d: number) => new Date(Date.parse(iso) + d);

  test('before the expiry it counts; at the expiry too; a millisecond after it is expired', () => {
    expect(clickTooLate({ expiresAt }, ms(expiresAt, -60_000))).toBeUndefined();
    expect(clickTooLate({ expiresAt }, ms(expiresAt, 0))).toBeUndefined();
    expect(clickTooLate({ expiresAt }, ms(expiresAt, 1))).toBe('expired');
  });

  test('cancelled by the agent: not written, even before its expiry', () => {
    expect(clickTooLate({ expiresAt, cancelRequested: true }, ms(expiresAt, -60_000))).toBe('cancelled');
    expect(clickTooLate({ expiresAt, cancelRequested: true }, ms(expiresAt, 60_000))).toBe('cancelled');
    expect(clickTooLate({ expiresAt, cancelRequested: false }, ms(expiresAt, -1))).toBeUndefined();
  });
});

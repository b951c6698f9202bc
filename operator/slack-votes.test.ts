// planSlackVote: a Slack click → what the operator writes into the ApprovalRequest's status.
import type { Vote } from '../api/approval-request.js';
import { clickTooLate, planReactionVotes, planSlackVote } from './slack-votes.js';

const at = '2026-12-06T15:00:00.000Z';
const slack = (by: string, decision: 'approve' | 'reject' = 'approve', name?: string): Vote => ({ by, via: 'slack', decision, at, ...(name ? { name } : {}) });
const kube = (by: string, decision: 'approve' | 'reject' = 'approve'): Vote => ({ by: `k8s:${by}`, name: by, via: 'kubernetes', decision, at, ref: 'd1' });

test('one of one: the click is written with the decision and who', () => {
  const p = planSlackVote({ phase: 'Posted' }, slack('U1', 'approve', 'Alice'), 1);
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
  const first = planSlackVote({ phase: 'Posted' }, slack('U1'), 2);
  expect(first).toMatchObject({ do: 'write', update: { approvals: '1/2', approvedBy: [{ id: 'U1' }] } });
  expect((first as { update: { end?: unknown } }).update.end).toBeUndefined();
  const status = { phase: 'Posted' as const, votes: [slack('U1')] };
  expect(planSlackVote(status, slack('U1'), 2)).toEqual({ do: 'repeat' });
  expect(planSlackVote(status, slack('U2'), 2)).toMatchObject({ do: 'write', update: { approvals: '2/2', end: { phase: 'Approved' } } });
});

test('a kubectl vote and a click count together; a reaction counts for a person without a recorded vote', () => {
  expect(planSlackVote({ phase: 'Posted', votes: [kube('carol')] }, slack('U1'), 2)).toMatchObject({
    do: 'write',
    update: { end: { phase: 'Approved', message: 'approved by carol, U1' } },
  });
  expect(planSlackVote({ phase: 'Posted' }, slack('U1'), 2, [slack('U2')])).toMatchObject({ do: 'write', update: { end: { phase: 'Approved' } } });
  // The reaction of someone whose click is recorded is not a second vote.
  expect(planSlackVote({ phase: 'Posted' }, slack('U1'), 2, [slack('U1')])).toMatchObject({ update: { approvals: '1/2' } });
  // A repeat click with a reaction that now completes the count is written (with the decision).
  expect(planSlackVote({ phase: 'Posted', votes: [slack('U1')] }, slack('U1'), 2, [slack('U2')])).toMatchObject({
    do: 'write',
    update: { end: { phase: 'Approved' } },
  });
});

test('any reject wins, with the reason; an ended request writes nothing', () => {
  expect(planSlackVote({ phase: 'Posted', votes: [slack('U1')] }, slack('U2', 'reject', 'Bob'), 2, [], 'not now')).toMatchObject({
    do: 'write',
    update: { end: { phase: 'Rejected', message: 'rejected in Slack by Bob: not now', decidedBy: [{ id: 'U2', name: 'Bob' }] } },
  });
  expect(planSlackVote({ phase: 'Posted' }, slack('U1'), 1, [slack('U2', 'reject')])).toMatchObject({ update: { end: { phase: 'Rejected' } } });
  for (const phase of ['Approved', 'Rejected', 'Expired', 'Cancelled', 'Failed'] as const)
    expect(planSlackVote({ phase }, slack('U1'), 1)).toEqual({ do: 'ended' });
});

// planReactionVotes: a reaction poll's allowlisted votes → what the operator records in status.votes.

test('a reaction is recorded as a vote and adds up with a kubectl approval: approved 2/2', () => {
  expect(planReactionVotes({ phase: 'Posted', votes: [kube('carol')] }, [slack('U1', 'approve', 'Alice')], 2)).toEqual({
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
  const first = planReactionVotes({ phase: 'Posted' }, [slack('U1')], 2);
  expect(first).toEqual({ do: 'write', update: { votes: [slack('U1')], approvals: '1/2', approvedBy: [{ id: 'U1' }] } });
  // The next poll reads the same reaction (with a later `at`): the set of votes did not change.
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [{ ...slack('U1'), at: '2026-12-06T15:05:00.000Z' }], 2)).toEqual({ do: 'repeat' });
  // A reaction removed later: no reaction read, the recorded vote stands (nothing to write).
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [], 2)).toEqual({ do: 'repeat' });
});

test('a recorded vote is the latest word for an approve reaction; a reject reaction is always recorded and wins', () => {
  // U1 clicked Approve and also reacted: not a second vote, nothing to write.
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [slack('U1')], 2)).toEqual({ do: 'repeat' });
  expect(planReactionVotes({ phase: 'Posted', votes: [kube('carol')] }, [slack('U2', 'reject', 'Bob')], 2)).toMatchObject({
    do: 'write',
    update: {
      votes: [kube('carol'), slack('U2', 'reject', 'Bob')],
      end: { phase: 'Rejected', message: 'rejected in Slack by Bob', decidedBy: [{ id: 'U2' }] },
    },
  });
  expect(planReactionVotes({ phase: 'Posted', votes: [slack('U1')] }, [slack('U1', 'reject')], 2)).toMatchObject({
    update: { votes: [slack('U1', 'reject')], end: { phase: 'Rejected' } },
  });
});

test('an ended request records nothing', () => {
  expect(planReactionVotes({ phase: 'Approved', votes: [kube('carol')] }, [slack('U1')], 2)).toEqual({ do: 'ended' });
  expect(planReactionVotes({ phase: 'Expired' }, [slack('U1', 'reject')], 1)).toEqual({ do: 'ended' });
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

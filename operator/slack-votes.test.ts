// planSlackVote: a Slack click → what the operator writes into the ApprovalRequest's status.
import type { Vote } from '../api/approval-request.js';
import { planSlackVote } from './slack-votes.js';

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

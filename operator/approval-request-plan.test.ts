// The ApprovalRequest relay's decisions, without I/O. The shell (operator/approval-request-controller.ts) is tested
// against a real API server and the fake Slack in e2e/approvals.test.ts.
import type { ApprovalRequestSpec, ApprovalRequestStatus } from '../api/approval-request.js';
import { planApproval, type PlanInput } from './approval-request-plan.js';

const now = new Date('2030-01-01T12:00:00Z');
const spec: ApprovalRequestSpec = {
  channel: 'approvals',
  workload: { namespace: 'team-a', serviceAccount: 'agent', pod: 'agent-0' },
  source: 'github',
  method: 'tools/call',
  tool: 'delete_repo',
  arguments: {},
  requestHash: 'a'.repeat(64),
  taskId: 't1',
  reason: 'rule',
  expiresAt: '2030-01-01T12:10:00Z',
  cancelRequested: false,
};

function plan(status: ApprovalRequestStatus = {}, over: Partial<PlanInput> = {}) {
  return planApproval({
    namespace: 'team-a',
    spec,
    status,
    created: new Date('2030-01-01T11:59:00Z'),
    now,
    polling: false,
    me: 'op-1',
    postGraceMs: 120_000,
    retentionMs: 24 * 3600_000,
    pending: 0,
    maxPending: 1000,
    ...over,
  });
}

const at = (ms: number) => new Date(now.getTime() + ms).toISOString();

describe('planApproval: a new request', () => {
  test('is posted: postingStartedAt first (post), then ts', () => {
    expect(plan()).toEqual({ do: 'post' });
  });

  test('is failed when the spec is invalid or claims another namespace', () => {
    expect(plan({}, { spec: null, specError: 'tool: Required' })).toEqual({
      do: 'fail',
      reason: 'InvalidRequest',
      message: 'the request is not valid: tool: Required',
    });
    expect(plan({}, { spec: { ...spec, workload: { ...spec.workload, namespace: 'team-b' } } })).toMatchObject({
      do: 'fail',
      reason: 'InvalidRequest',
      message: expect.stringContaining('"team-b" is not the request\'s namespace "team-a"'),
    });
  });

  test('beyond the cap fails with "too many pending approvals"; admitted requests are not counted again', () => {
    expect(plan({}, { pending: 1000 })).toEqual({
      do: 'fail',
      reason: 'TooManyPending',
      message: "too many pending approvals: 1000 are open cluster-wide (the operator's limit is 1000)",
    });
    expect(plan({}, { pending: 999 })).toEqual({ do: 'post' });
    expect(plan({ phase: 'Pending', slack: { postingStartedAt: at(-1000) } }, { pending: 5000 })).toEqual({ do: 'recover' });
  });

  test('expired before it could be posted (Slack down): Expired, with the last error', () => {
    expect(plan({ message: 'Slack unavailable: HTTP 500' }, { now: new Date('2030-01-01T12:10:00Z') })).toEqual({
      do: 'expire',
      message: 'expired before it could be posted to Slack (Slack unavailable: HTTP 500); the call is rejected',
    });
  });

  test('cancel wins over everything else that is open, including a poll result not yet written', () => {
    expect(
      plan({ phase: 'Posted', slack: { ts: '1.2' } }, { spec: { ...spec, cancelRequested: true }, pollResult: { status: 'approved', by: ['U1'], at: 1 } }),
    ).toEqual({ do: 'cancel' });
    expect(plan({}, { spec: { ...spec, cancelRequested: true }, pending: 5000 })).toEqual({ do: 'cancel' });
  });
});

describe('planApproval: the double-post protocol', () => {
  test('postingStartedAt without ts: recover (find the message before posting again)', () => {
    expect(plan({ phase: 'Pending', slack: { postingStartedAt: at(-1000), postingBy: 'op-1' } })).toEqual({ do: 'recover' });
    expect(plan({ phase: 'Pending', slack: { postingStartedAt: at(-1000) } })).toEqual({ do: 'recover' });
  });

  test('another replica started posting moments ago: wait out the grace, then recover', () => {
    expect(plan({ phase: 'Pending', slack: { postingStartedAt: at(-20_000), postingBy: 'op-2' } })).toEqual({
      do: 'wait',
      ms: 100_000,
      why: 'replica op-2 started posting 20s ago',
    });
    expect(plan({ phase: 'Pending', slack: { postingStartedAt: at(-120_000), postingBy: 'op-2' } })).toEqual({ do: 'recover' });
  });

  test('ts recorded: poll (once), then write what the poller reported', () => {
    const posted: ApprovalRequestStatus = { phase: 'Posted', slack: { postingStartedAt: at(-5000), ts: '1.2', messageState: 'Posted' } };
    expect(plan(posted)).toEqual({ do: 'poll' });
    expect(plan(posted, { polling: true })).toEqual({ do: 'nothing' });
    expect(plan(posted, { pollResult: { status: 'rejected', by: ['U1'], at: 5 } })).toEqual({
      do: 'decide',
      outcome: { status: 'rejected', by: ['U1'], at: 5 },
    });
    // Past expiry with a ts: the poller decides (final poll, then grace), not the plan.
    expect(plan(posted, { now: new Date('2030-01-01T13:00:00Z') })).toEqual({ do: 'poll' });
  });
});

describe('planApproval: ended requests', () => {
  const ended = (s: Partial<ApprovalRequestStatus> = {}): ApprovalRequestStatus => ({
    phase: 'Approved',
    decidedAt: at(-1000),
    slack: { ts: '1.2', messageState: 'Posted' },
    ...s,
  });

  test('the Slack message is rewritten until it shows the outcome (and the execution result)', () => {
    expect(plan(ended())).toEqual({ do: 'update-message', state: 'Approved' });
    expect(plan(ended({ slack: { ts: '1.2', messageState: 'Approved' } }), { result: 'succeeded: done' })).toEqual({
      do: 'update-message',
      state: 'Approved; succeeded: done',
    });
    expect(plan(ended({ phase: 'Rejected', slack: { ts: '1.2', messageState: 'Rejected' } }), { result: 'ignored' })).toEqual({
      do: 'later',
      ms: 24 * 3600_000 - 1000,
    });
  });

  test('without a message nothing is rewritten; after the retention the request is deleted', () => {
    expect(plan(ended({ phase: 'Failed', slack: {} }))).toEqual({ do: 'later', ms: 24 * 3600_000 - 1000 });
    expect(plan(ended({ slack: { ts: '1.2', messageState: 'Approved' } }), { now: new Date(now.getTime() + 24 * 3600_000) })).toEqual({ do: 'delete' });
    // No decidedAt (written by hand): the creation time counts.
    expect(plan({ phase: 'Expired' }, { now: new Date('2030-01-02T12:00:00Z') })).toEqual({ do: 'delete' });
  });

  test('an ended request is never re-opened: cancel and poll results do not apply', () => {
    expect(
      plan(ended({ slack: { ts: '1.2', messageState: 'Approved' } }), { spec: { ...spec, cancelRequested: true }, pollResult: { status: 'expired', at: 1 } }),
    ).toEqual({ do: 'later', ms: 24 * 3600_000 - 1000 });
  });
});

import { decisionPolicyObjects, type ApprovalDecisionSpec } from '../api/approval-decision.js';
import { tallyVotes, withVote, type ApprovalRequestSpec, type ApprovalRequestStatus, type Vote } from '../api/approval-request.js';
import { ApprovalChannelSpecSchema, type ApprovalChannelSpec } from '../api/crds.js';
import { decisionPolicyProblems, planDecision, POLICY_SETTLE_MS, policyState, requiredApprovals, type DecisionPlanInput } from './approval-decision-plan.js';

const now = new Date('2026-12-06T12:00:00Z');
const channel = (approvers: Record<string, unknown>, required?: number): ApprovalChannelSpec =>
  ApprovalChannelSpecSchema.parse({
    slack: { channel: 'C0123', tokenSecretRef: { name: 't' } },
    approvers: { ...approvers, ...(required ? { required } : {}) },
  });
const k8sChannel = (required?: number) => channel({ kubernetes: { users: ['alice', 'bob'], groups: ['oncall'] } }, required);
const requestSpec: ApprovalRequestSpec = {
  channel: 'oncall',
  workload: { namespace: 'team', serviceAccount: 'agent', pod: 'agent-1' },
  source: 'github',
  method: 'tools/call',
  tool: 'deploy',
  arguments: {},
  requestHash: 'a'.repeat(64),
  taskId: 't1',
  reason: 'deploys need approval',
  expiresAt: '2026-12-06T12:10:00Z',
  cancelRequested: false,
};
const spec = (
  user: string,
  decision: 'Approve' | 'Reject' = 'Approve',
  groups: string[] = ['system:authenticated'],
  reason?: string,
): ApprovalDecisionSpec => ({
  approvalRequest: 't1',
  decision,
  user: { username: user, groups },
  ...(reason ? { reason } : {}),
});

function input(
  over: Partial<DecisionPlanInput> & { spec?: ApprovalDecisionSpec; requestStatus?: ApprovalRequestStatus; name?: string } = {},
): DecisionPlanInput {
  const { spec: s, requestStatus, name, ...rest } = over;
  return {
    decision: { name: name ?? 'd1', spec: s ?? spec('alice'), status: {}, created: new Date('2026-12-06T11:59:00Z') },
    policy: { ok: true, since: new Date('2026-12-01T00:00:00Z') },
    request: { spec: requestSpec, status: requestStatus ?? { phase: 'Posted' } },
    channel: k8sChannel(),
    slackApprover: () => true,
    now,
    ...rest,
  };
}

const vote = (by: string, decision: 'approve' | 'reject', via: Vote['via'] = 'kubernetes'): Vote => ({
  by,
  name: by.replace(/^k8s:/, ''),
  via,
  decision,
  at: now.toISOString(),
});

describe('planDecision', () => {
  test("an approver's approve decides a request that needs one approval", () => {
    const p = planDecision(input({ spec: spec('alice', 'Approve', ['system:authenticated'], 'hotfix') }));
    expect(p).toEqual({
      do: 'count',
      request: {
        votes: [{ by: 'k8s:alice', name: 'alice', via: 'kubernetes', decision: 'approve', at: now.toISOString(), ref: 'd1' }],
        approvals: '1/1',
        end: {
          phase: 'Approved',
          reason: 'Approved',
          message: 'approved by alice (kubectl): hotfix',
          decidedBy: [{ id: 'k8s:alice', name: 'alice (kubectl)' }],
        },
      },
      message: 'counted; the request is Approved (approvals 1/1)',
    });
  });

  test('a member of an approver group counts; a Pending (not yet posted: Slack down) request can be decided', () => {
    const p = planDecision(input({ spec: spec('carol', 'Approve', ['oncall']), requestStatus: { phase: 'Pending' } }));
    expect(p).toMatchObject({ do: 'count', request: { end: { phase: 'Approved' } } });
  });

  test('someone who is not an approver is ignored, with a warning', () => {
    const p = planDecision(input({ spec: spec('mallory', 'Approve', ['system:authenticated', 'devs']) }));
    expect(p).toMatchObject({ do: 'ignore', reason: 'NotAnApprover', warn: true });
    expect((p as { message: string }).message).toContain('mallory is not a Kubernetes approver of ApprovalChannel "oncall"');
  });

  test('a channel without Kubernetes approvers counts nobody from kubectl', () => {
    expect(planDecision(input({ channel: channel({ users: ['U0123'] }) }))).toMatchObject({ do: 'ignore', reason: 'NotAnApprover' });
  });

  test('two-person rule: the first approval is a vote, the second distinct approver decides', () => {
    const first = planDecision(input({ channel: k8sChannel(2) }));
    expect(first).toMatchObject({ do: 'count', request: { approvals: '1/2' }, message: 'counted; the request is Posted (approvals 1/2)' });
    expect((first as { request: { end?: unknown } }).request.end).toBeUndefined();
    const votes = (first as { request: { votes: Vote[] } }).request.votes;
    const second = planDecision(input({ channel: k8sChannel(2), name: 'd2', spec: spec('bob'), requestStatus: { phase: 'Posted', votes, approvals: '1/2' } }));
    expect(second).toMatchObject({
      do: 'count',
      request: { approvals: '2/2', end: { phase: 'Approved', message: 'approved by alice (kubectl), bob (kubectl)' } },
    });
  });

  test('two-person rule across Slack and kubectl: a Slack approval and a kubectl approval decide', () => {
    const p = planDecision(
      input({ channel: k8sChannel(2), requestStatus: { phase: 'Posted', votes: [{ ...vote('U0123', 'approve', 'slack'), name: 'Dana' }] } }),
    );
    expect(p).toMatchObject({
      do: 'count',
      request: {
        approvals: '2/2',
        end: { phase: 'Approved', message: 'approved by Dana, alice (kubectl)', decidedBy: [{ id: 'U0123' }, { id: 'k8s:alice' }] },
      },
    });
  });

  test('the same person approving twice counts once', () => {
    const votes = [{ ...vote('k8s:alice', 'approve'), ref: 'd1' }];
    const again = planDecision(input({ channel: k8sChannel(2), name: 'd2', requestStatus: { phase: 'Posted', votes, approvals: '1/2' } }));
    expect(again).toEqual({
      do: 'mark-counted',
      reason: 'AlreadyCounted',
      message: 'alice already voted approve; counted; the request is Posted (approvals 1/2)',
    });
  });

  test('any reject wins, even after approvals', () => {
    const p = planDecision(
      input({ channel: k8sChannel(2), spec: spec('bob', 'Reject', [], 'not now'), requestStatus: { phase: 'Posted', votes: [vote('k8s:alice', 'approve')] } }),
    );
    expect(p).toMatchObject({
      do: 'count',
      request: { end: { phase: 'Rejected', message: 'rejected with kubectl by bob: not now', decidedBy: [{ id: 'k8s:bob', name: 'bob (kubectl)' }] } },
    });
  });

  test('a decision already in the request (written before a crash) is only marked counted', () => {
    const p = planDecision(input({ requestStatus: { phase: 'Approved', votes: [{ ...vote('k8s:alice', 'approve'), ref: 'd1' }], approvals: '1/1' } }));
    expect(p).toEqual({ do: 'mark-counted', reason: 'Counted', message: 'counted; the request is Approved (approvals 1/1)' });
  });

  test('a decision deleted and created again under its name as a Reject is a reject, not the approve already written', () => {
    const votes = [{ ...vote('k8s:alice', 'approve'), ref: 'd1' }];
    const p = planDecision(
      input({
        channel: k8sChannel(2),
        name: 'd1',
        spec: spec('alice', 'Reject', [], 'changed my mind'),
        requestStatus: { phase: 'Posted', votes, approvals: '1/2' },
      }),
    );
    expect(p).toMatchObject({ do: 'count', request: { end: { phase: 'Rejected' } } });
  });

  test('an ended request, an expired one, a cancelled one or a missing one is not decided again', () => {
    expect(
      planDecision(input({ requestStatus: { phase: 'Rejected', decidedBy: [{ id: 'U1', name: 'Erin' }], message: 'rejected in Slack by Erin' } })),
    ).toEqual({
      do: 'ignore',
      reason: 'AlreadyDecided',
      message: 'the request is already Rejected (by Erin): rejected in Slack by Erin',
      warn: false,
    });
    expect(planDecision(input({ now: new Date('2026-12-06T12:10:00Z') }))).toMatchObject({ do: 'ignore', reason: 'Expired' });
    expect(planDecision(input({ request: { spec: { ...requestSpec, cancelRequested: true }, status: { phase: 'Posted' } } }))).toMatchObject({
      do: 'ignore',
      reason: 'AlreadyDecided',
    });
    expect(planDecision(input({ request: null }))).toMatchObject({
      do: 'ignore',
      reason: 'RequestNotFound',
      message: 'there is no ApprovalRequest "t1" in this namespace',
    });
  });

  test('fails closed without the identity policy, and for a decision older than the policy', () => {
    const p = planDecision(input({ policy: { ok: false, message: 'the ValidatingAdmissionPolicy thoughtgate-approval-decisions is not installed' } }));
    expect(p).toMatchObject({ do: 'ignore', reason: 'IdentityUnverified', warn: true });
    expect((p as { message: string }).message).toContain(
      'who made it cannot be verified (the ValidatingAdmissionPolicy thoughtgate-approval-decisions is not installed)',
    );
    expect(planDecision(input({ policy: { ok: true, since: new Date('2026-12-06T11:59:30Z') } }))).toMatchObject({
      do: 'ignore',
      reason: 'IdentityUnverified',
    });
  });

  test('a decision that already has a phase is left alone; an invalid one is ignored', () => {
    expect(planDecision(input({ decision: { name: 'd1', spec: spec('alice'), status: { phase: 'Counted' }, created: now } }))).toEqual({ do: 'nothing' });
    expect(planDecision(input({ decision: { name: 'd1', spec: null, specError: 'spec.decision: invalid', status: {}, created: now } }))).toMatchObject({
      do: 'ignore',
      reason: 'InvalidDecision',
    });
  });

  test('a missing ApprovalChannel is said', () => {
    expect(planDecision(input({ channel: null }))).toMatchObject({
      do: 'ignore',
      reason: 'ChannelInvalid',
      message: 'the request\'s ApprovalChannel "oncall" does not exist',
    });
  });
});

describe('votes of approvers removed from the channel', () => {
  const k8sOnly = (users: string[], groups: string[], required = 2) => channel({ kubernetes: { users, groups } }, required);

  test("a kubectl vote does not add up with a recorded vote whose voter left the channel's approvers", () => {
    // bob approved, then was removed from approvers.kubernetes.users: alice's approval is 1 of 2.
    const p = planDecision(input({ channel: k8sOnly(['alice'], ['sre']), requestStatus: { phase: 'Posted', votes: [vote('k8s:bob', 'approve')] } }));
    expect(p).toMatchObject({ do: 'count', request: { approvals: '1/2' } });
    expect((p as { request: { end?: unknown } }).request.end).toBeUndefined();
    // A removed approver's reject no longer counts either.
    const r = planDecision(input({ channel: k8sOnly(['alice'], ['sre'], 1), requestStatus: { phase: 'Posted', votes: [vote('k8s:bob', 'reject')] } }));
    expect(r).toMatchObject({ do: 'count', request: { end: { phase: 'Approved' } } });
  });

  test('a Slack vote counts only while its voter is a Slack approver now; unknown: its reject counts, its approval does not', () => {
    const dana = { ...vote('U0123', 'approve', 'slack'), name: 'Dana' };
    const base = { channel: k8sChannel(2), requestStatus: { phase: 'Posted' as const, votes: [dana] } };
    expect(planDecision(input({ ...base, slackApprover: () => false }))).toMatchObject({ request: { approvals: '1/2' } });
    expect(planDecision(input({ ...base, slackApprover: () => undefined }))).toMatchObject({ request: { approvals: '1/2' } });
    const rejected = { channel: k8sChannel(1), requestStatus: { phase: 'Posted' as const, votes: [vote('U0456', 'reject', 'slack')] } };
    expect(planDecision(input({ ...rejected, slackApprover: () => false }))).toMatchObject({ request: { end: { phase: 'Approved' } } });
    expect(planDecision(input({ ...rejected, slackApprover: () => undefined }))).toMatchObject({ request: { end: { phase: 'Rejected' } } });
  });

  test('a vote records the groups it was made with (not system: ones) and counts through them while the channel lists them', () => {
    const first = planDecision(input({ channel: k8sOnly([], ['oncall']), spec: spec('carol', 'Approve', ['oncall', 'system:authenticated']) }));
    expect(first).toMatchObject({ do: 'count', request: { approvals: '1/2' } });
    const recorded = (first as { request: { votes: Vote[] } }).request.votes;
    expect(recorded).toEqual([expect.objectContaining({ by: 'k8s:carol', groups: ['oncall'] })]);
    // dave approves through the same group: 2 of 2 while oncall is listed …
    const dave = spec('dave', 'Approve', ['oncall']);
    expect(planDecision(input({ channel: k8sOnly([], ['oncall']), spec: dave, requestStatus: { phase: 'Posted', votes: recorded } }))).toMatchObject({
      request: { end: { phase: 'Approved' } },
    });
    // … and carol's vote no longer counts once the channel lists another group that dave is also in.
    const moved = planDecision(
      input({ channel: k8sOnly([], ['sre']), spec: spec('dave', 'Approve', ['sre']), requestStatus: { phase: 'Posted', votes: recorded } }),
    );
    expect(moved).toMatchObject({ request: { approvals: '1/2' } });
  });

  test('only the groups the channel lists are recorded (a vote never grows through a group added later; the status stays small)', () => {
    const many = ['oncall', ...Array.from({ length: 200 }, (_, n) => `team-${n}`)];
    const p = planDecision(input({ channel: k8sOnly([], ['oncall', 'sre']), spec: spec('carol', 'Approve', many) }));
    expect((p as { request: { votes: Vote[] } }).request.votes).toEqual([expect.objectContaining({ by: 'k8s:carol', groups: ['oncall'] })]);
    // Listed by user only: no groups recorded at all.
    const byName = planDecision(input({ channel: k8sOnly(['carol'], ['sre']), spec: spec('carol', 'Approve', ['oncall']) }));
    expect((byName as { request: { votes: Vote[] } }).request.votes[0]!.groups).toBeUndefined();
  });

  test('the same vote again counts anew when the recorded one no longer stands (it counted through a group the channel dropped)', () => {
    // carol approved through oncall; the channel now lists sre, which she is in: her new approve is
    // not "already counted" at 0 approvals, it replaces the old vote with today's groups.
    const old: Vote = { ...vote('k8s:carol', 'approve'), groups: ['oncall'] };
    const p = planDecision(
      input({ channel: k8sOnly([], ['sre'], 1), spec: spec('carol', 'Approve', ['sre']), requestStatus: { phase: 'Posted', votes: [old] } }),
    );
    expect(p).toMatchObject({ do: 'count', request: { approvals: '1/1', end: { phase: 'Approved' } } });
    expect((p as { request: { votes: Vote[] } }).request.votes).toEqual([expect.objectContaining({ by: 'k8s:carol', groups: ['sre'] })]);
    // Still standing: already counted, nothing written.
    const same = planDecision(
      input({ channel: k8sOnly([], ['oncall'], 2), spec: spec('carol', 'Approve', ['oncall']), requestStatus: { phase: 'Posted', votes: [old] } }),
    );
    expect(same).toMatchObject({ do: 'mark-counted', reason: 'AlreadyCounted' });
  });
});

describe('tallyVotes and withVote', () => {
  test('distinct approvers count up to required; a later vote of the same person replaces the earlier', () => {
    const v = withVote(withVote([vote('k8s:a', 'approve')], vote('U1', 'approve', 'slack')), vote('k8s:a', 'approve'));
    expect(v.map((x) => x.by)).toEqual(['U1', 'k8s:a']);
    expect(tallyVotes(v, 3)).toMatchObject({ outcome: null, summary: '2/3' });
    expect(tallyVotes(v, 2)).toMatchObject({ outcome: 'approved', summary: '2/2' });
    expect(tallyVotes(withVote(v, vote('k8s:a', 'reject')), 1)).toMatchObject({ outcome: 'rejected', rejectedBy: { by: 'k8s:a' } });
    expect(tallyVotes([], 0).summary).toBe('0/1');
  });

  test('requiredApprovals reads approvers.required, 1 when absent', () => {
    expect(requiredApprovals(k8sChannel())).toBe(1);
    expect(requiredApprovals(k8sChannel(3))).toBe(3);
  });

  test('approvers.required counts Kubernetes approvers too: explicit users of both kinds must be enough', () => {
    const parse = (approvers: Record<string, unknown>) =>
      ApprovalChannelSpecSchema.safeParse({ slack: { channel: 'C0123', tokenSecretRef: { name: 't' } }, approvers });
    expect(parse({ users: ['U0123'], kubernetes: { users: ['alice'] }, required: 2 }).success).toBe(true);
    expect(parse({ kubernetes: { users: ['alice', 'bob'] }, required: 2 }).success).toBe(true);
    expect(parse({ kubernetes: { groups: ['oncall'] }, required: 3 }).success).toBe(true);
    const short = parse({ kubernetes: { users: ['alice'] }, required: 2 });
    expect(short.success).toBe(false);
    expect(JSON.stringify(short.error?.issues)).toContain('2 approvals are required but only 1 approvers are listed');
    expect(parse({ kubernetes: {} }).success).toBe(false);
  });
});

describe('the identity policy check', () => {
  const [policy, binding] = decisionPolicyObjects();
  const fields = (time: string) => [{ manager: 'helm', operation: 'Update', apiVersion: 'admissionregistration.k8s.io/v1', time, fieldsType: 'FieldsV1' }];
  // What the API server returns: our objects with its defaults and metadata.
  const served = () => {
    const p = structuredClone(policy) as any;
    p.metadata.creationTimestamp = '2026-12-01T00:00:00Z';
    p.metadata.managedFields = fields('2026-12-01T00:00:00Z');
    p.spec.matchConstraints.matchPolicy = 'Equivalent';
    p.spec.matchConstraints.namespaceSelector = {};
    p.spec.matchConstraints.objectSelector = {};
    p.spec.matchConstraints.resourceRules[0].scope = '*';
    const b = structuredClone(binding) as any;
    b.metadata.creationTimestamp = '2026-12-01T00:00:05Z';
    b.metadata.managedFields = fields('2026-12-01T00:00:05Z');
    return { p, b };
  };

  test('the shipped objects as served pass, in force since the later change', () => {
    const { p, b } = served();
    expect(decisionPolicyProblems(p, b)).toEqual([]);
    expect(policyState(p, b)).toEqual({ ok: true, since: new Date('2026-12-01T00:00:05Z') });
  });

  test('defaults and equivalent spellings pass: a binding matchResources of defaults only, scope Namespaced, rule sets in another order', () => {
    const { p, b } = served();
    b.spec.matchResources = { namespaceSelector: {}, objectSelector: {}, matchPolicy: 'Equivalent' };
    p.spec.matchConstraints.resourceRules[0].scope = 'Namespaced';
    p.spec.matchConstraints.resourceRules[0].operations = ['UPDATE', 'CREATE'];
    p.spec.matchConstraints.resourceRules[0].resourceNames = [];
    p.spec.matchConditions = [];
    expect(decisionPolicyProblems(p, b)).toEqual([]);
  });

  test('an edit in place counts as a change: since is the newest managedFields time, not the creation', () => {
    const { p, b } = served();
    p.metadata.managedFields.push({ manager: 'kubectl-edit', operation: 'Update', time: '2026-12-06T11:59:10Z' });
    expect(policyState(p, b)).toEqual({ ok: true, since: new Date('2026-12-06T11:59:10Z') });
    // A decision made before the edit (the policy may have been weakened, then restored) does not count.
    const before = planDecision(input({ policy: policyState(p, b) }));
    expect(before).toMatchObject({ do: 'ignore', reason: 'IdentityUnverified' });
    expect((before as { message: string }).message).toContain(
      'created before the identity policy thoughtgate-approval-decisions or its binding was last installed or changed',
    );
  });

  test('a decision made within the settling margin after a change does not count, the times being whole seconds; one after it does', () => {
    const since = new Date('2026-12-06T11:58:59Z');
    const at = (ms: number) =>
      input({ policy: { ok: true, since }, decision: { name: 'd1', spec: spec('alice'), status: {}, created: new Date(since.getTime() + ms) } });
    // Recorded 2 s apart, the real gap may be 1.001 s (a change at :59.999, a decision at :01.000).
    for (const ms of [0, 1000, POLICY_SETTLE_MS, POLICY_SETTLE_MS + 999]) {
      const p = planDecision(at(ms));
      expect(p).toMatchObject({ do: 'ignore', reason: 'IdentityUnverified' });
      expect((p as { message: string }).message).toContain(`within ${POLICY_SETTLE_MS / 1000 + 1} s after the identity policy`);
    }
    expect(planDecision(at(POLICY_SETTLE_MS + 1000))).toMatchObject({ do: 'count' });
  });

  test('cleared managedFields fail closed: when the object last changed cannot be told', () => {
    const { p, b } = served();
    delete b.metadata.managedFields;
    const state = policyState(p, b);
    expect(state).toEqual({ ok: true, since: null });
    const plan = planDecision(input({ policy: state }));
    expect(plan).toMatchObject({ do: 'ignore', reason: 'IdentityUnverified', message: expect.stringContaining('managedFields') });
  });

  test('missing objects fail closed', () => {
    const { p, b } = served();
    expect(policyState(null, b)).toEqual({ ok: false, message: 'the ValidatingAdmissionPolicy thoughtgate-approval-decisions is not installed' });
    expect(policyState(p, null)).toMatchObject({ ok: false });
  });

  const rule = { apiGroups: ['thoughtgate.io'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['approvaldecisions'] };
  test.each<[string, (p: any, b: any) => void, string]>([
    ['a validation removed', (p) => p.spec.validations.splice(0, 1), 'spec.validations'],
    ['a validation changed to true', (p) => (p.spec.validations[1].expression = 'true'), 'spec.validations[1].expression is "true"'],
    ['failurePolicy Ignore', (p) => (p.spec.failurePolicy = 'Ignore'), 'spec.failurePolicy is "Ignore", shipped: "Fail"'],
    ['a match condition', (p) => (p.spec.matchConditions = [{ name: 'x', expression: "request.userInfo.username != 'mallory'" }]), 'spec.matchConditions'],
    ['a namespace selector', (p) => (p.spec.matchConstraints.namespaceSelector = { matchLabels: { x: 'y' } }), 'spec.matchConstraints.namespaceSelector'],
    ['an object selector', (p) => (p.spec.matchConstraints.objectSelector = { matchLabels: { x: 'y' } }), 'spec.matchConstraints.objectSelector'],
    [
      'resourceNames on the policy',
      (p) => (p.spec.matchConstraints.resourceRules[0].resourceNames = ['only-this-one']),
      'resourceRules[0].resourceNames is ["only-this-one"]',
    ],
    ['matchPolicy Exact', (p) => (p.spec.matchConstraints.matchPolicy = 'Exact'), 'spec.matchConstraints.matchPolicy is "Exact"'],
    ['scope Cluster', (p) => (p.spec.matchConstraints.resourceRules[0].scope = 'Cluster'), 'resourceRules[0].scope is "Cluster"'],
    ['CREATE not matched', (p) => (p.spec.matchConstraints.resourceRules[0].operations = ['UPDATE']), 'operations'],
    ['other resources', (p) => (p.spec.matchConstraints.resourceRules[0].resources = ['approvalrequests']), 'resources'],
    ['excluded resources', (p) => (p.spec.matchConstraints.excludeResourceRules = [{ resources: ['approvaldecisions'] }]), 'excludeResourceRules'],
    ['a paramKind', (p) => (p.spec.paramKind = { apiVersion: 'v1', kind: 'ConfigMap' }), 'spec.paramKind'],
    ['variables', (p) => (p.spec.variables = [{ name: 'x', expression: 'true' }]), 'spec.variables'],
    ['a binding that only warns', (_p, b) => (b.spec.validationActions = ['Warn']), 'spec.validationActions'],
    ['a binding that only audits', (_p, b) => (b.spec.validationActions = ['Audit']), 'spec.validationActions'],
    ['a binding that denies and audits', (_p, b) => (b.spec.validationActions = ['Deny', 'Audit']), 'spec.validationActions'],
    ['a binding of another policy', (_p, b) => (b.spec.policyName = 'other'), 'spec.policyName'],
    ['a binding with a paramRef', (_p, b) => (b.spec.paramRef = { name: 'p', parameterNotFoundAction: 'Allow' }), 'spec.paramRef'],
    [
      'a binding narrowed to some namespaces',
      (_p, b) => (b.spec.matchResources = { namespaceSelector: { matchLabels: { only: 'here' } } }),
      'spec.matchResources.namespaceSelector.matchLabels.only is "here"',
    ],
    ['a binding narrowed to some objects', (_p, b) => (b.spec.matchResources = { objectSelector: { matchLabels: { only: 'these' } } }), 'matchResources'],
    [
      'a binding narrowed with resourceNames',
      (_p, b) => (b.spec.matchResources = { resourceRules: [{ ...rule, resourceNames: ['only-this-one'] }] }),
      'spec.matchResources.resourceRules[0].resourceNames is ["only-this-one"], shipped: absent',
    ],
    ['a binding that excludes resources', (_p, b) => (b.spec.matchResources = { excludeResourceRules: [{ ...rule }] }), 'matchResources'],
  ])('%s is not the policy shipped', (_what, change, says) => {
    const { p, b } = served();
    change(p, b);
    const problems = decisionPolicyProblems(p, b);
    expect(problems).not.toEqual([]);
    expect(problems.join('; ')).toContain(says);
    expect(policyState(p, b).ok).toBe(false);
  });
});

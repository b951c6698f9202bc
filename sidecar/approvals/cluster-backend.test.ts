// The pure half of the cluster approval backend: the ApprovalRequest a pending approval becomes,
// and what a stored request means (pending approval, decision, finished). The watching shell runs
// against a real kube-apiserver and the operator in e2e/approvals.test.ts.
import { ApprovalRequestSpecSchema, approvalLabelValue, approvalRequestName, messageState, resultAnnotation } from '../../api/approval-request.js';
import type { ApprovalRequestObject } from '../../kube/resources.js';
import type { PendingApproval } from './backend.js';
import { approvalRequestFor, decisionFromRequest, isFinished, pendingFromRequest } from './cluster-backend.js';

const p: PendingApproval = {
  id: '3f2c7a1e-0b7d-4c55-9d0e-2a1b3c4d5e6f',
  channel: 'approvals',
  workload: { namespace: 'team-a', serviceAccount: 'agent', pod: 'agent-0' },
  source: 'github',
  method: 'tools/call',
  tool: 'delete_repo',
  arguments: { repo: 'acme/site', opts: { force: true } },
  requestHash: 'b'.repeat(64),
  reason: 'rule deletes-need-approval',
  mcpSessionId: 'sess-1',
  client: 'auth:0123456789abcdef0123456789abcdef',
  createdAt: new Date('2030-01-01T00:00:00Z'),
  expiresAt: new Date('2030-01-01T00:10:00Z'),
};
const now = new Date('2030-01-01T00:05:00Z');

describe('approvalRequestFor / pendingFromRequest', () => {
  test('the request carries the pending approval whole, labelled for its pod and source', () => {
    const obj = approvalRequestFor(p);
    expect(obj.metadata).toEqual({ name: p.id, namespace: 'team-a', labels: { 'thoughtgate.io/pod': 'agent-0', 'thoughtgate.io/source': 'github' } });
    expect(obj).toMatchObject({ apiVersion: 'thoughtgate.io/v1alpha1', kind: 'ApprovalRequest' });
    expect(ApprovalRequestSpecSchema().parse(obj.spec)).toEqual({
      channel: 'approvals',
      workload: p.workload,
      source: 'github',
      method: 'tools/call',
      tool: 'delete_repo',
      arguments: p.arguments,
      requestHash: p.requestHash,
      taskId: p.id,
      reason: p.reason,
      mcpSessionId: 'sess-1',
      owner: p.client,
      expiresAt: '2030-01-01T00:10:00.000Z',
      cancelRequested: false,
    });
  });

  test('round trip: what a restarted sidecar reads back is what it submitted', () => {
    const obj = { ...approvalRequestFor(p), metadata: { ...approvalRequestFor(p).metadata, creationTimestamp: '2030-01-01T00:00:00Z' } };
    expect(pendingFromRequest(obj)).toEqual({ pending: p, executionStarted: false });
    const started = { ...obj, spec: { ...obj.spec, executionStartedAt: '2030-01-01T00:06:00Z' } };
    expect(pendingFromRequest(started)).toMatchObject({ executionStarted: true });
  });

  test('an A2A approval records its protocol and canonical method, and reads back the same', () => {
    const a2a: PendingApproval = {
      ...p,
      id: 'tgh-0123456789abcdef0123456789abcdef',
      source: 'billing-agent',
      method: 'SendMessage',
      protocol: 'a2a',
      tool: 'refund',
      arguments: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'refund 42' }], metadata: { skill: 'refund' } } },
    };
    delete a2a.mcpSessionId;
    const obj = { ...approvalRequestFor(a2a), metadata: { ...approvalRequestFor(a2a).metadata, creationTimestamp: '2030-01-01T00:00:00Z' } };
    expect(ApprovalRequestSpecSchema().parse(obj.spec)).toMatchObject({ method: 'SendMessage', protocol: 'a2a', tool: 'refund', arguments: a2a.arguments });
    expect(pendingFromRequest(obj)).toEqual({ pending: a2a, executionStarted: false });
    expect(approvalRequestFor(p).spec).not.toHaveProperty('protocol');
  });

  test("an A2A approval's tenant, version and binding are in spec.a2a (no tenant: none written) and read back the same", () => {
    const base: PendingApproval = {
      ...p,
      id: 'tgh-00112233445566778899aabbccddeeff',
      source: 'billing-agent',
      method: 'SendMessage',
      protocol: 'a2a',
      tool: '',
    };
    delete base.mcpSessionId;
    for (const [target, a2a] of [
      [
        { tenant: 'acme-eu', version: '1.0', binding: 'rest' },
        { tenant: 'acme-eu', version: '1.0', binding: 'rest' },
      ],
      [
        { tenant: '', version: '0.3', binding: 'jsonrpc' },
        { version: '0.3', binding: 'jsonrpc' },
      ],
    ] as const) {
      const pending: PendingApproval = { ...base, target: { ...target } };
      const obj = { ...approvalRequestFor(pending), metadata: { ...approvalRequestFor(pending).metadata, creationTimestamp: '2030-01-01T00:00:00Z' } };
      expect(obj.spec!['a2a']).toEqual(a2a);
      expect(ApprovalRequestSpecSchema().parse(obj.spec)).toMatchObject({ protocol: 'a2a', a2a });
      expect(pendingFromRequest(obj)).toEqual({ pending, executionStarted: false });
    }
    expect(approvalRequestFor(p).spec).not.toHaveProperty('a2a');
  });

  test('the owner key is stored (a hash, never the Authorization header) and a raw header is refused', () => {
    const obj = approvalRequestFor(p);
    expect(obj.spec!['owner']).toBe('auth:0123456789abcdef0123456789abcdef');
    expect(pendingFromRequest(obj)).toMatchObject({ pending: { client: p.client } });
    expect(pendingFromRequest({ ...obj, spec: { ...obj.spec, owner: 'Bearer ghp_secret' } })).toEqual({
      error: expect.stringMatching(/^spec is not valid: owner/),
    });
    // Stored before the key was: no owner, and none is made up.
    const { owner: _o, ...legacy } = obj.spec!;
    const read = pendingFromRequest({ ...obj, spec: legacy });
    expect('pending' in read && read.pending.client).toBeUndefined();
  });

  test('a spec this sidecar cannot use is reported, not guessed at', () => {
    expect(pendingFromRequest({ metadata: { name: 'x' }, spec: { tool: 'x' } })).toEqual({ error: expect.stringMatching(/^spec is not valid: /) });
    const bad = approvalRequestFor(p);
    expect(pendingFromRequest({ ...bad, spec: { ...bad.spec, expiresAt: 'soon' } })).toEqual({ error: 'spec.expiresAt is not a time: soon' });
  });

  test('a long reason is cut to what the CRD allows', () => {
    expect((approvalRequestFor({ ...p, reason: 'r'.repeat(2000) }).spec!.reason as string).length).toBe(1024);
  });
});

describe('decisionFromRequest', () => {
  const withStatus = (status: Record<string, unknown>): ApprovalRequestObject => ({ ...approvalRequestFor(p), status });

  test('open phases have no decision', () => {
    for (const phase of [undefined, 'Pending', 'Posted']) expect(decisionFromRequest(withStatus(phase ? { phase } : {}), now)).toBeNull();
  });

  test('each terminal phase is one outcome, with who, when and why', () => {
    expect(
      decisionFromRequest(
        withStatus({
          phase: 'Approved',
          decidedBy: [{ id: 'U1', name: 'Alice' }, { id: 'U2' }],
          decidedAt: '2030-01-01T00:04:00Z',
          message: 'approved in Slack by Alice, U2',
        }),
        now,
      ),
    ).toEqual({
      id: p.id,
      outcome: 'approved',
      by: [{ id: 'U1', name: 'Alice' }, { id: 'U2' }],
      at: new Date('2030-01-01T00:04:00Z'),
      message: 'approved in Slack by Alice, U2',
    });
    expect(decisionFromRequest(withStatus({ phase: 'Rejected', decidedBy: [{ id: 'U1' }] }), now)).toEqual({
      id: p.id,
      outcome: 'rejected',
      by: [{ id: 'U1' }],
      at: now,
      message: 'rejected by U1',
    });
    expect(decisionFromRequest(withStatus({ phase: 'Expired' }), now)).toMatchObject({
      outcome: 'expired',
      message: 'no decision before the approval timed out',
    });
    expect(decisionFromRequest(withStatus({ phase: 'Cancelled' }), now)).toMatchObject({ outcome: 'cancelled' });
    expect(
      decisionFromRequest(
        withStatus({ phase: 'Failed', reason: 'TooManyPending', message: "too many pending approvals: 3 are open cluster-wide (the operator's limit is 3)" }),
        now,
      ),
    ).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/^too many pending approvals/) });
  });

  test('the decision answers to the task id, not the object name', () => {
    const long = { ...p, id: 'Task_With.Dots/and/slashes' };
    const obj: ApprovalRequestObject = { ...approvalRequestFor(long), status: { phase: 'Cancelled' } };
    expect(obj.metadata.name).not.toBe(long.id);
    expect(decisionFromRequest(obj, now)!.id).toBe(long.id);
  });
});

describe('names, labels and annotations', () => {
  test('approvalRequestName: a DNS-label task id as is; anything else readable plus a hash, deterministic', () => {
    expect(approvalRequestName(p.id)).toBe(p.id);
    const n = approvalRequestName('Task_With.Dots/and/slashes');
    expect(n).toMatch(/^task-with-dots-and-slashes-[0-9a-f]{16}$/);
    expect(approvalRequestName('Task_With.Dots/and/slashes')).toBe(n);
    expect(approvalRequestName('Task_With.Dots/and/slashes!')).not.toBe(n);
    expect(approvalRequestName('x'.repeat(100))).toMatch(/^x{40}-[0-9a-f]{16}$/);
    expect(approvalRequestName('___')).toMatch(/^task-[0-9a-f]{16}$/);
    for (const id of ['a', 'UPPER', '-lead', 'x'.repeat(64), 'ünï']) expect(approvalRequestName(id)).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  test('approvalLabelValue: valid label values as they are, longer names hashed', () => {
    expect(approvalLabelValue('agent-0')).toBe('agent-0');
    expect(approvalLabelValue('web.v2-7d9f')).toBe('web.v2-7d9f');
    const long = approvalLabelValue('p'.repeat(100));
    expect(long).toMatch(/^h-[0-9a-f]{40}$/);
    expect(long.length).toBeLessThanOrEqual(63);
  });

  test('the result annotation is bounded and one line; isFinished reads it', () => {
    expect(resultAnnotation({ ok: true, summary: 'deleted\nacme/site' })).toBe('succeeded: deleted acme/site');
    expect(resultAnnotation({ ok: false, summary: '' })).toBe('failed');
    expect(resultAnnotation({ ok: false, summary: 'e'.repeat(1000) })).toHaveLength(256);
    const obj = approvalRequestFor(p);
    expect(isFinished(obj)).toBe(false);
    expect(isFinished({ ...obj, metadata: { ...obj.metadata, annotations: { 'thoughtgate.io/result': 'failed' } } })).toBe(true);
  });

  test('messageState: the phase, and for an approved call its result', () => {
    expect(messageState(undefined, undefined)).toBe('Pending');
    expect(messageState('Approved', 'succeeded: ok')).toBe('Approved; succeeded: ok');
    expect(messageState('Rejected', 'succeeded: ok')).toBe('Rejected');
  });
});

describe('tracing: the wait span travels on the ApprovalRequest', () => {
  const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  test('tracing on: the request is annotated with the wait span, and its decision is traced by the operator', () => {
    const obj = approvalRequestFor({ ...p, traceparent: TP });
    expect(obj.metadata.annotations).toEqual({ 'thoughtgate.io/traceparent': TP });
    const decided = { ...obj, status: { phase: 'Approved', decidedAt: now.toISOString() } } as ApprovalRequestObject;
    expect(decisionFromRequest(decided, now)).toMatchObject({ outcome: 'approved', tracedElsewhere: true });
  });

  test('an annotation rewritten into garbage: the operator ignores it, so the sidecar records the decision itself', () => {
    const obj = approvalRequestFor({ ...p, traceparent: TP });
    obj.metadata.annotations = { 'thoughtgate.io/traceparent': TP.toUpperCase() };
    const decided = { ...obj, status: { phase: 'Approved', decidedAt: now.toISOString() } } as ApprovalRequestObject;
    expect(decisionFromRequest(decided, now)?.tracedElsewhere).toBeUndefined();
  });

  test('tracing off: no annotation, and the sidecar records the decision itself', () => {
    const obj = approvalRequestFor(p);
    expect(obj.metadata.annotations).toBeUndefined();
    const decided = { ...obj, status: { phase: 'Approved', decidedAt: now.toISOString() } } as ApprovalRequestObject;
    expect(decisionFromRequest(decided, now)?.tracedElsewhere).toBeUndefined();
  });
});

// The audit Event table: bounded, one write per Event per flush, counts continued across a
// restart (409) and restarted after expiry (404).
import type { AuditEventKey } from '../../api/audit.js';
import { AUDIT_IDLE_EVICT_MS, AuditEventTable, auditEventName } from './events-plan.js';

const w = { namespace: 'team-a', pod: 'agent-7d9f-x' };
const key = (rule: string, would: AuditEventKey['would'] = 'deny'): AuditEventKey => ({ would, what: 'call', gate: 'rules', rule, source: 'github' });

test('occurrences between flushes become one create, then one patch of the running count', () => {
  const t = new AuditEventTable(w);
  for (let i = 0; i < 5; i++) t.add('strict', key('no-delete'), 1, 1000 + i);
  const [create, ...rest] = t.plan();
  expect(rest).toEqual([]);
  expect(create).toMatchObject({
    kind: 'create',
    sent: 5,
    event: {
      metadata: {
        name: auditEventName(w, 'strict', key('no-delete')),
        namespace: 'team-a',
        annotations: { 'thoughtgate.io/audit': JSON.stringify(key('no-delete')) },
      },
      involvedObject: { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'GovernancePolicy', name: 'strict', namespace: 'team-a' },
      reason: 'AuditWouldDeny',
      type: 'Normal',
      source: { component: 'thoughtgate-audit' },
      reportingInstance: 'agent-7d9f-x',
      count: 5,
      firstTimestamp: new Date(1000).toISOString(),
      lastTimestamp: new Date(1004).toISOString(),
    },
  });
  // A new occurrence while the write is in flight stays pending for the next flush.
  t.add('strict', key('no-delete'), 1, 2000);
  t.settle(create!, { kind: 'ok' }, 2001);
  expect(t.plan()).toEqual([
    expect.objectContaining({ kind: 'patch', sent: 1, patch: expect.objectContaining({ count: 6, lastTimestamp: new Date(2000).toISOString() }) }),
  ]);
  const [patch] = t.plan();
  t.settle(patch!, { kind: 'ok' }, 2002);
  expect(t.plan()).toEqual([]); // nothing new: no write
});

test('a failed write is retried whole at the next flush', () => {
  const t = new AuditEventTable(w);
  t.add('p', key('r'), 3, 0);
  const [c] = t.plan();
  t.settle(c!, { kind: 'failed' }, 1);
  expect(t.plan()).toEqual([expect.objectContaining({ kind: 'create', sent: 3 })]);
});

test("an Event of this pod's earlier run (409) is continued; an expired one (404) is created again from here", () => {
  const t = new AuditEventTable(w);
  t.add('p', key('r'), 2, 0);
  const [c] = t.plan();
  t.settle(c!, { kind: 'exists', count: 40, first: -5000 }, 10);
  const [p] = t.plan();
  expect(p).toMatchObject({ kind: 'patch', sent: 2, patch: { count: 42 } });
  t.settle(p!, { kind: 'ok' }, 11);
  t.add('p', key('r'), 1, 4_000_000);
  const [p2] = t.plan();
  t.settle(p2!, { kind: 'gone' }, 4_000_001);
  expect(t.plan()).toEqual([
    expect.objectContaining({ kind: 'create', sent: 1, event: expect.objectContaining({ count: 1, firstTimestamp: new Date(4_000_001).toISOString() }) }),
  ]);
});

test('at most maxEvents distinct Events; a new key beyond them is refused (counted as dropped by the caller)', () => {
  const t = new AuditEventTable(w, 3);
  for (const r of ['a', 'b', 'c']) expect(t.add('p', key(r), 1, 0)).toBe(true);
  expect(t.add('p', key('d'), 1, 0)).toBe(false);
  expect(t.add('p', key('a'), 1, 0)).toBe(true); // a known key still counts
  expect(t.size()).toBe(3);
  expect(t.plan()).toHaveLength(3);
});

test('names are DNS subdomains, distinct per pod and key, stable across runs', () => {
  const a = auditEventName(w, 'strict', key('no-delete'));
  expect(a).toMatch(/^strict\.audit-[0-9a-f]{16}$/);
  expect(auditEventName(w, 'strict', key('no-delete'))).toBe(a);
  expect(auditEventName({ ...w, pod: 'other' }, 'strict', key('no-delete'))).not.toBe(a);
  expect(auditEventName(w, 'strict', key('no-delete', 'approve'))).not.toBe(a);
  expect(auditEventName(w, 'x'.repeat(253), key('r')).length).toBeLessThanOrEqual(253);
});

test('names stay valid DNS subdomains when the cut policy name would end in - or .', () => {
  const subdomain = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  // 253 characters, with a '-' and a '.' right where the name is cut (200).
  for (const policy of [
    `${'a'.repeat(199)}-${'b'.repeat(53)}`,
    `${'a'.repeat(198)}--${'b'.repeat(53)}`,
    `${'a'.repeat(199)}.${'b'.repeat(53)}`,
    'x'.repeat(253),
  ]) {
    expect(policy).toHaveLength(253);
    expect(policy).toMatch(subdomain);
    expect(auditEventName(w, policy, key('r'))).toMatch(subdomain);
  }
});

test('when full, an entry idle past the event TTL with nothing pending makes room; a busy one never does', () => {
  const t = new AuditEventTable(w, 2);
  t.add('p', key('a'), 1, 0);
  t.add('p', key('b'), 1, 0);
  for (const write of t.plan()) t.settle(write, { kind: 'ok' }, 1);
  t.add('p', key('b'), 1, AUDIT_IDLE_EVICT_MS); // b is busy again
  expect(t.add('p', key('c'), 1, AUDIT_IDLE_EVICT_MS - 1)).toBe(false); // a is not idle long enough yet
  expect(t.add('p', key('c'), 1, AUDIT_IDLE_EVICT_MS)).toBe(true); // a goes
  expect(t.add('p', key('d'), 1, 2 * AUDIT_IDLE_EVICT_MS)).toBe(false); // b and c have pending occurrences
  expect(
    t
      .plan()
      .map((x) => x.name)
      .sort(),
  ).toEqual([auditEventName(w, 'p', key('b')), auditEventName(w, 'p', key('c'))].sort());
});

// status.audit from a namespace's audit Events: totals by would, rows per rule, the window the
// Events cover, bounded; only policies whose status differs are written.
import { AUDIT_STATUS_MAX_RULES, type AuditEventKey } from '../api/audit.js';
import { auditReport, planAuditReport, type AuditEventObject } from './audit-report-plan.js';
import type { KubeObject } from './kube-object.js';

let n = 0;
function ev(policy: string, key: AuditEventKey, count: number, first: string, last: string, pod = 'agent-0'): AuditEventObject {
  return {
    metadata: { name: `e${n++}`, namespace: 'team-a', annotations: { 'thoughtgate.io/audit': JSON.stringify(key) } },
    involvedObject: { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'GovernancePolicy', name: policy },
    count,
    firstTimestamp: first,
    lastTimestamp: last,
    reportingInstance: pod,
  };
}
const deny = (rule: string): AuditEventKey => ({ would: 'deny', what: 'call', gate: 'rules', rule, source: 'github' });

test('sums the Events of a policy across pods, by would and per rule, over the window they cover', () => {
  const events = [
    ev('strict', deny('no-delete'), 5, '2026-12-06T08:00:00Z', '2026-12-06T08:10:00Z', 'a'),
    ev('strict', deny('no-delete'), 2, '2026-12-06T08:05:00Z', '2026-12-06T08:20:00Z', 'b'),
    ev('strict', { would: 'approve', what: 'call', gate: 'cedar', rule: 'pay', source: 'github' }, 1, '2026-12-06T08:01:00Z', '2026-12-06T08:01:00Z', 'a'),
    ev('strict', { would: 'hide', what: 'call', gate: 'visibility', rule: 'expose', source: 'github' }, 1, '2026-12-06T08:02:00Z', '2026-12-06T08:02:00Z', 'a'),
    ev(
      'strict',
      { would: 'hide', what: 'listItem', gate: 'visibility', rule: 'expose', source: 'github' },
      9,
      '2026-12-06T08:02:00Z',
      '2026-12-06T08:03:00Z',
      'a',
    ),
    ev('other', deny('x'), 100, '2026-12-06T07:00:00Z', '2026-12-06T09:00:00Z'),
  ];
  expect(auditReport('strict', events)).toEqual({
    from: '2026-12-06T08:00:00.000Z',
    to: '2026-12-06T08:20:00.000Z',
    pods: 2,
    total: { deny: 7, hide: 1, approve: 1, listItems: 9 },
    rules: [
      { would: 'hide', gate: 'visibility', rule: 'expose', source: 'github', calls: 1, listItems: 9 },
      { would: 'deny', gate: 'rules', rule: 'no-delete', source: 'github', calls: 7, listItems: 0 },
      { would: 'approve', gate: 'cedar', rule: 'pay', source: 'github', calls: 1, listItems: 0 },
    ],
  });
  expect(auditReport('none', events)).toBeNull();
});

test('Events that are not well-formed audit Events are not counted', () => {
  const good = ev('p', deny('r'), 1, '2026-12-06T08:00:00Z', '2026-12-06T08:00:00Z');
  const bad: AuditEventObject[] = [
    { ...good, metadata: { ...good.metadata, annotations: {} } },
    { ...good, metadata: { ...good.metadata, annotations: { 'thoughtgate.io/audit': '{not json' } } },
    { ...good, metadata: { ...good.metadata, annotations: { 'thoughtgate.io/audit': JSON.stringify({ ...deny('r'), would: 'allow' }) } } },
    { ...good, involvedObject: { apiVersion: 'v1', kind: 'GovernancePolicy', name: 'p' } },
    { ...good, firstTimestamp: 'yesterday', lastTimestamp: undefined },
  ];
  expect(auditReport('p', bad)).toBeNull();
  expect(auditReport('p', [...bad, { ...good, count: -3 }])?.total.deny).toBe(1);
});

test('rows are bounded: the most counted first, the rest counted in truncated', () => {
  const events = Array.from({ length: AUDIT_STATUS_MAX_RULES + 7 }, (_, i) => ev('p', deny(`r${i}`), i + 1, '2026-12-06T08:00:00Z', '2026-12-06T08:00:00Z'));
  const r = auditReport('p', events)!;
  expect(r.rules).toHaveLength(AUDIT_STATUS_MAX_RULES);
  expect(r.rules[0]!.rule).toBe(`r${AUDIT_STATUS_MAX_RULES + 6}`);
  expect(r.truncated).toBe(7);
});

test('writes only policies whose status.audit differs (compared canonically), and removes it when no Event is left', () => {
  const events = [ev('a', deny('r'), 3, '2026-12-06T08:00:00Z', '2026-12-06T08:01:00Z')];
  const report = auditReport('a', events)!;
  // As the API server returns it: keys sorted.
  const sorted = JSON.parse(
    JSON.stringify(report, Object.keys(report).sort().concat(['deny', 'hide', 'approve', 'listItems', 'would', 'gate', 'rule', 'source', 'calls']).sort()),
  );
  const policy = (name: string, audit?: unknown) => ({ metadata: { name, namespace: 'team-a' }, status: audit ? { audit } : {} }) as unknown as KubeObject;
  expect(planAuditReport([policy('a', sorted), policy('b'), policy('c', report)], events)).toEqual([{ policy: 'c', audit: null }]);
  expect(planAuditReport([policy('a')], events)).toEqual([{ policy: 'a', audit: report }]);
});

test('Events naming no policy of the namespace are not counted; incomplete says the operator left some out', () => {
  const events = [
    ev('a', deny('r'), 3, '2026-12-06T08:00:00Z', '2026-12-06T08:01:00Z'),
    ev('ghost', deny('r'), 9, '2026-12-06T08:00:00Z', '2026-12-06T08:01:00Z'),
  ];
  const policy = { metadata: { name: 'a', namespace: 'team-a' }, status: {} } as unknown as KubeObject;
  const [w] = planAuditReport([policy], events, true);
  expect(w).toEqual({ policy: 'a', audit: { ...auditReport('a', events)!, incomplete: true } });
  expect(w!.audit!.total.deny).toBe(3);
  expect(planAuditReport([], events)).toEqual([]);
});

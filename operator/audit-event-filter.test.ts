// What the operator keeps of an audit Event: the fields the report reads, of Events shaped as a
// sidecar writes them (sidecar/audit/events-plan.ts); forged or oversized ones are left out.
import { AUDIT_EVENT_ANNOTATION } from '../api/audit.js';
import { AUDIT_ANNOTATION_MAX_CHARS, AUDIT_EVENT_FIELD_SELECTOR, keepAuditEvent } from './audit-event-filter.js';
import { auditReport } from './audit-report-plan.js';

const KEY = { would: 'deny', what: 'call', gate: 'rules', rule: 'no-sum', source: 'everything' } as const;

/** An Event as the sidecar creates it (sidecar/audit/events-plan.ts), with what the API server adds. */
function sidecarEvent() {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: 'rollout.audit-0123456789abcdef',
      namespace: 'team-a',
      annotations: { [AUDIT_EVENT_ANNOTATION]: JSON.stringify(KEY) } as Record<string, string>,
      resourceVersion: '42',
      uid: 'u',
      creationTimestamp: '2026-12-06T08:00:00Z',
      managedFields: [{ manager: 'x' }],
    },
    involvedObject: { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'GovernancePolicy', name: 'rollout', namespace: 'team-a' },
    reason: 'AuditWouldDeny',
    message: 'enforcement audit: 3 calls ...',
    type: 'Normal',
    action: 'call',
    source: { component: 'thoughtgate-audit' },
    reportingComponent: 'thoughtgate.io/sidecar',
    reportingInstance: 'agent-0',
    firstTimestamp: '2026-12-06T08:00:00.000Z',
    lastTimestamp: '2026-12-06T08:00:00.000Z',
    count: 3,
  };
}

test('keeps only the fields the report reads, and counts the same as the whole Event', () => {
  const e = sidecarEvent();
  const kept = keepAuditEvent(e)!;
  expect(kept).toEqual({
    metadata: { name: e.metadata.name, namespace: 'team-a', resourceVersion: '42', annotations: { [AUDIT_EVENT_ANNOTATION]: JSON.stringify(KEY) } },
    involvedObject: { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'GovernancePolicy', name: 'rollout' },
    count: 3,
    firstTimestamp: '2026-12-06T08:00:00.000Z',
    lastTimestamp: '2026-12-06T08:00:00.000Z',
    reportingInstance: 'agent-0',
  });
  // Idempotent: the reflector may apply it twice (per list page, then to the list).
  expect(keepAuditEvent(kept)).toEqual(kept);
  expect(auditReport('rollout', [kept])).toEqual(auditReport('rollout', [e as never]));
});

test('leaves out what a sidecar never writes: another involved object, an oversized, missing or malformed annotation', () => {
  const e = sidecarEvent();
  const withAnnotation = (v: string) => ({ ...e, metadata: { ...e.metadata, annotations: { [AUDIT_EVENT_ANNOTATION]: v } } });
  const padded = JSON.stringify(KEY).replace('{', `{${' '.repeat(AUDIT_ANNOTATION_MAX_CHARS)}`);
  expect(JSON.parse(padded)).toEqual(KEY);
  for (const forged of [
    { ...e, involvedObject: { ...e.involvedObject, kind: 'Pod' } },
    { ...e, involvedObject: { ...e.involvedObject, apiVersion: 'evil.io/v1alpha1' } },
    { ...e, involvedObject: { ...e.involvedObject, name: '' } },
    withAnnotation(padded),
    withAnnotation('x'.repeat(250 * 1024)),
    withAnnotation('{not json'),
    withAnnotation(JSON.stringify({ ...KEY, would: 'allow' })),
    { ...e, metadata: { ...e.metadata, annotations: {} } },
    { ...e, metadata: { ...e.metadata, namespace: undefined } },
    null,
  ])
    expect(keepAuditEvent(forged)).toBeNull();
  // Other annotations (up to 256 KiB of them) are not kept.
  const big = { ...e, metadata: { ...e.metadata, annotations: { ...e.metadata.annotations, pad: 'x'.repeat(250 * 1024) } } };
  expect(JSON.stringify(keepAuditEvent(big)).length).toBeLessThan(1024);
});

test('the field selector names the source, the reporting component and the involved kind', () => {
  expect(AUDIT_EVENT_FIELD_SELECTOR).toBe(
    'source=thoughtgate-audit,reportingComponent=thoughtgate.io/sidecar,involvedObject.kind=GovernancePolicy,involvedObject.apiVersion=thoughtgate.io/v1alpha1',
  );
});

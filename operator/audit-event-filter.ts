// What the operator keeps of the audit Events it watches, and how many. Anyone who may create
// Events can write one the field selector passes (every agent's ServiceAccount may, in its
// namespace: the sidecar Role), with up to 256 KiB of annotations: kept whole and without bound,
// a few thousand such Events would exhaust the operator's memory, and with it the webhook. So the
// informer keeps only the fields operator/audit-report-plan.ts reads, of Events shaped as a sidecar
// writes them, and at most AUDIT_EVENT_LIMITS of them. Pure.
import { AUDIT_EVENT_ANNOTATION, AUDIT_EVENT_SOURCE, AUDIT_REPORTING_COMPONENT, AuditEventKeySchema } from '../api/audit.js';
import { API_VERSION } from '../api/wellknown.js';
import type { StoreLimits } from '../kube/reflector-plan.js';
import type { AuditEventObject } from './audit-report-plan.js';

/**
 * The API server's side of the filter (core/v1 Events support these field selectors): a sidecar's
 * Events regarding a GovernancePolicy, never the cluster's other Events.
 */
export const AUDIT_EVENT_FIELD_SELECTOR = [
  `source=${AUDIT_EVENT_SOURCE}`,
  `reportingComponent=${AUDIT_REPORTING_COMPONENT}`,
  'involvedObject.kind=GovernancePolicy',
  `involvedObject.apiVersion=${API_VERSION}`,
].join(',');

/**
 * The longest audit annotation kept: a key's JSON (api/audit.ts AuditEventKeySchema: a rule and a
 * source of at most 160 characters, a gate of 32) is under 500 bytes; anything longer is forged.
 */
export const AUDIT_ANNOTATION_MAX_CHARS = 1024;

/**
 * Audit Events the operator holds. Per namespace: a sidecar keeps at most 64 Events
 * (sidecar/audit/events-plan.ts AUDIT_MAX_EVENTS), and few of them in practice (rules × sources
 * × would); 1024 is 16 pods with a full table each, and stops one namespace's agents (who can
 * forge Events there) from taking the whole budget. In all: a kept Event is under 2 KiB of heap,
 * so 16384 of them stay under 32 MiB of the operator's 512 MiB; 16 namespaces would have to flood
 * at once to reach it. Past either bound new Events are left out (counted) and the namespace's
 * status.audit says `incomplete`.
 */
export const AUDIT_EVENT_LIMITS: StoreLimits = { total: 16_384, perNamespace: 1_024 };

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const stamp = (v: unknown): string | undefined => (v instanceof Date ? v.toISOString() : typeof v === 'string' && v.length <= 64 ? v : undefined);

/**
 * The fields the report reads of an audit Event (and resourceVersion, which the informer compares
 * on a relist); null when it is not one as a sidecar writes it: another kind of involved object,
 * an audit annotation missing, oversized or not a key. Idempotent.
 */
export function keepAuditEvent(e: unknown): AuditEventObject | null {
  const ev = e as {
    metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown; annotations?: Record<string, unknown> };
    involvedObject?: { apiVersion?: unknown; kind?: unknown; name?: unknown };
    count?: unknown;
    firstTimestamp?: unknown;
    lastTimestamp?: unknown;
    reportingInstance?: unknown;
  };
  const m = ev?.metadata;
  const io = ev?.involvedObject;
  if (!m || !str(m.name, 253) || !str(m.namespace, 63)) return null;
  if (io?.kind !== 'GovernancePolicy' || io.apiVersion !== API_VERSION || !str(io.name, 253)) return null;
  const raw = m.annotations?.[AUDIT_EVENT_ANNOTATION];
  if (!str(raw, AUDIT_ANNOTATION_MAX_CHARS)) return null;
  try {
    if (!AuditEventKeySchema().safeParse(JSON.parse(raw)).success) return null;
  } catch {
    return null;
  }
  const first = stamp(ev.firstTimestamp);
  const last = stamp(ev.lastTimestamp);
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      ...(typeof m.resourceVersion === 'string' ? { resourceVersion: m.resourceVersion.slice(0, 64) } : {}),
      annotations: { [AUDIT_EVENT_ANNOTATION]: raw },
    },
    involvedObject: { apiVersion: io.apiVersion, kind: io.kind, name: io.name },
    ...(typeof ev.count === 'number' ? { count: ev.count } : {}),
    ...(first !== undefined ? { firstTimestamp: first } : {}),
    ...(last !== undefined ? { lastTimestamp: last } : {}),
    ...(typeof ev.reportingInstance === 'string' ? { reportingInstance: ev.reportingInstance.slice(0, 128) } : {}),
  };
}

// Pure core of the audit report: a namespace's audit Events (written by its sidecars,
// sidecar/audit/events-plan.ts) in, each GovernancePolicy's status.audit out, and which policies
// need it written. The counts are those of the Events that exist now: each Event covers its
// firstTimestamp..lastTimestamp, and the API server deletes an Event not updated for its event
// TTL (--event-ttl, default 1 h), so counts of audit that stopped leave the totals after that.
import { AUDIT_EVENT_ANNOTATION, AUDIT_STATUS_MAX_RULES, AuditEventKeySchema, type AuditStatus } from '../api/audit.js';
import { canonicalJson } from '../api/canonical.js';
import { GROUP } from '../api/wellknown.js';
import type { KubeObject } from './kube-object.js';

/** What the operator reads of a core/v1 Event. */
export interface AuditEventObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string> };
  involvedObject?: { apiVersion?: string; kind?: string; name?: string };
  count?: number;
  firstTimestamp?: string | Date;
  lastTimestamp?: string | Date;
  reportingInstance?: string;
}

/** A count read from an Event; anyone with create on events in the namespace can write one, so it is bounded. */
const MAX_COUNT = 1_000_000_000;

const time = (v: string | Date | undefined): number | null => {
  if (v === undefined) return null;
  const t = v instanceof Date ? v.getTime() : Date.parse(v);
  return Number.isFinite(t) ? t : null;
};

function keyOf(e: AuditEventObject) {
  const raw = e.metadata.annotations?.[AUDIT_EVENT_ANNOTATION];
  if (raw === undefined) return null;
  try {
    const k = AuditEventKeySchema().safeParse(JSON.parse(raw));
    return k.success ? k.data : null;
  } catch {
    return null;
  }
}

/** Whether the Event is about the GovernancePolicy `name` (of our group). */
function regards(e: AuditEventObject, name: string): boolean {
  const o = e.involvedObject;
  return o?.kind === 'GovernancePolicy' && o.name === name && (o.apiVersion ?? '').startsWith(`${GROUP}/`);
}

/**
 * status.audit of one policy from the namespace's audit Events; null when none regards it.
 * `incomplete`: the operator left some of the namespace's audit Events out (its bounds).
 */
export function auditReport(policy: string, events: readonly AuditEventObject[], incomplete = false): AuditStatus | null {
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  const pods = new Set<string>();
  const total = { deny: 0, hide: 0, approve: 0, listItems: 0 };
  const rows = new Map<string, AuditStatus['rules'][number]>();
  for (const e of events) {
    if (!regards(e, policy)) continue;
    const key = keyOf(e);
    const first = time(e.firstTimestamp);
    const last = time(e.lastTimestamp) ?? first;
    if (!key || first === null || last === null) continue;
    const n = Number.isInteger(e.count) && e.count! > 0 ? Math.min(e.count!, MAX_COUNT) : 1;
    from = Math.min(from, first);
    to = Math.max(to, last);
    if (e.reportingInstance) pods.add(e.reportingInstance);
    const id = JSON.stringify([key.would, key.gate, key.rule, key.source]);
    const row = rows.get(id) ?? { would: key.would, gate: key.gate, rule: key.rule, source: key.source, calls: 0, listItems: 0 };
    if (key.what === 'call') {
      row.calls += n;
      total[key.would] += n;
    } else {
      row.listItems += n;
      total.listItems += n;
    }
    rows.set(id, row);
  }
  if (rows.size === 0) return null;
  const sorted = [...rows.values()].sort(
    (a, b) =>
      b.calls + b.listItems - (a.calls + a.listItems) ||
      (a.would < b.would ? -1 : a.would > b.would ? 1 : 0) ||
      (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0) ||
      (a.source < b.source ? -1 : a.source > b.source ? 1 : 0) ||
      (a.gate < b.gate ? -1 : a.gate > b.gate ? 1 : 0),
  );
  const truncated = Math.max(0, sorted.length - AUDIT_STATUS_MAX_RULES);
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    pods: pods.size,
    total,
    rules: sorted.slice(0, AUDIT_STATUS_MAX_RULES),
    ...(truncated > 0 ? { truncated } : {}),
    ...(incomplete ? { incomplete: true } : {}),
  };
}

export interface AuditWrite {
  policy: string;
  /** null: no audit Event regards the policy any more; status.audit is removed (merge patch null). */
  audit: AuditStatus | null;
}

/**
 * The policies of a namespace whose status.audit differs from what its Events say. The Events are
 * grouped by the policy they name first: each is looked at once, and one naming no policy of the
 * namespace (forged, or of a deleted policy) costs a map lookup.
 */
export function planAuditReport(policies: readonly KubeObject[], events: readonly AuditEventObject[], incomplete = false): AuditWrite[] {
  const byPolicy = new Map<string, AuditEventObject[]>(policies.map((p) => [p.metadata.name, []]));
  for (const e of events) {
    const name = e.involvedObject?.name;
    if (name !== undefined) byPolicy.get(name)?.push(e);
  }
  const out: AuditWrite[] = [];
  for (const p of policies) {
    const audit = auditReport(p.metadata.name, byPolicy.get(p.metadata.name) ?? [], incomplete);
    const current = (p.status as { audit?: unknown } | undefined)?.audit;
    // Compared canonically: the API server returns a custom resource's keys sorted.
    if ((current === undefined ? null : canonicalJson(current)) !== (audit === null ? null : canonicalJson(audit)))
      out.push({ policy: p.metadata.name, audit });
  }
  return out;
}

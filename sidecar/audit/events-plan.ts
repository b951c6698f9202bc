// The Events a sidecar keeps about audit mode (cluster only), pure: occurrences are added to a
// bounded table, one entry per (policy, source, gate, rule, would, what); each flush plans one
// write per entry with something new (create the Event, or patch its count), and the shell
// (events.ts) reports each write's result back. So the API server sees at most one write per
// Event per flush interval, and a pod keeps at most `maxEvents` Event objects.
import { createHash } from 'node:crypto';
import { AUDIT_EVENT_ANNOTATION, AUDIT_EVENT_SOURCE, AUDIT_REASONS, AUDIT_REPORTING_COMPONENT, type AuditEventKey } from '../../api/audit.js';
import { API_VERSION } from '../../api/wellknown.js';

/** Distinct Events one sidecar keeps; occurrences of a key beyond them are only counted as dropped. */
export const AUDIT_MAX_EVENTS = 64;
/** How often a sidecar writes its audit Events (each at most once per interval). */
export const AUDIT_FLUSH_INTERVAL_MS = 30_000;
/**
 * An entry with nothing pending and no occurrence for this long makes room for a new key when the
 * table is full: its Event has expired by then (the API server's default event TTL is 1 h).
 */
export const AUDIT_IDLE_EVICT_MS = 60 * 60_000;

export interface Workload {
  namespace: string;
  pod: string;
}

export interface AuditEventEntry {
  policy: string;
  key: AuditEventKey;
  name: string;
  /** The count the Event holds on the server (0: not created yet, or gone). */
  written: number;
  /** Occurrences since the last successful write. */
  pending: number;
  /** First occurrence the Event counts (ms), and the latest. */
  first: number;
  last: number;
  exists: boolean;
}

export interface CoreEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string; annotations: Record<string, string>; resourceVersion?: string };
  involvedObject: { apiVersion: string; kind: string; name: string; namespace: string };
  reason: string;
  message: string;
  type: 'Normal';
  action: string;
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

export type AuditEventWrite =
  | { kind: 'create'; name: string; sent: number; event: CoreEvent }
  /** A JSON merge patch of count, lastTimestamp and message. */
  | { kind: 'patch'; name: string; sent: number; patch: Pick<CoreEvent, 'count' | 'lastTimestamp' | 'message'> };

/** The result of a write, as the shell saw it. `count`: on `exists`, the count the Event already has (another process of this pod wrote it). */
export type WriteResult = { kind: 'ok' } | { kind: 'exists'; count: number; first?: number } | { kind: 'gone' } | { kind: 'failed' };

/** The Event's name: stable per pod and key (so a restarted sidecar finds its Event again), a DNS subdomain. */
export function auditEventName(w: Workload, policy: string, key: AuditEventKey): string {
  const h = createHash('sha256')
    .update(JSON.stringify([w.pod, policy, key.would, key.what, key.gate, key.rule, key.source]))
    .digest('hex');
  // A policy name is a DNS subdomain, but its first 200 characters may end in '-' or '.', which
  // cannot stand before the '.' that follows; a label always ends alphanumeric.
  const prefix = policy.slice(0, 200).replace(/[-.]+$/, '');
  return `${prefix || 'policy'}.audit-${h.slice(0, 16)}`;
}

function message(key: AuditEventKey, count: number): string {
  const what = key.what === 'call' ? `${count} call${count === 1 ? '' : 's'}` : `${count} list entr${count === 1 ? 'y' : 'ies'}`;
  const by = key.gate === 'visibility' ? `source "${key.source}" expose` : `rule "${key.rule}" (gate ${key.gate})`;
  return `enforcement audit: ${what} on source "${key.source}" forwarded that enforce would ${key.would === 'hide' ? 'hide' : key.would} (${by})`;
}

export class AuditEventTable {
  private readonly entries = new Map<string, AuditEventEntry>();

  constructor(
    private readonly workload: Workload,
    private readonly maxEvents = AUDIT_MAX_EVENTS,
  ) {}

  /** Counts `n` occurrences; false when the key is new and the table is full (the caller counts a drop). */
  add(policy: string, key: AuditEventKey, n: number, now: number): boolean {
    const name = auditEventName(this.workload, policy, key);
    let e = this.entries.get(name);
    if (!e) {
      if (this.entries.size >= this.maxEvents && !this.evictIdle(now)) return false;
      e = { policy, key, name, written: 0, pending: 0, first: now, last: now, exists: false };
      this.entries.set(name, e);
    }
    e.pending += n;
    e.last = now;
    return true;
  }

  /** Drops the longest idle entry that has nothing pending and has been idle for AUDIT_IDLE_EVICT_MS; false when none has. */
  private evictIdle(now: number): boolean {
    let oldest: AuditEventEntry | null = null;
    for (const e of this.entries.values()) if (e.pending === 0 && now - e.last >= AUDIT_IDLE_EVICT_MS && (!oldest || e.last < oldest.last)) oldest = e;
    if (oldest) this.entries.delete(oldest.name);
    return oldest !== null;
  }

  size(): number {
    return this.entries.size;
  }

  /** One write per entry with pending occurrences. */
  plan(): AuditEventWrite[] {
    const out: AuditEventWrite[] = [];
    for (const e of this.entries.values()) {
      if (e.pending === 0) continue;
      const count = e.written + e.pending;
      const lastTimestamp = new Date(e.last).toISOString();
      if (e.exists) {
        out.push({ kind: 'patch', name: e.name, sent: e.pending, patch: { count, lastTimestamp, message: message(e.key, count) } });
        continue;
      }
      const { namespace, pod } = this.workload;
      out.push({
        kind: 'create',
        name: e.name,
        sent: e.pending,
        event: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: e.name, namespace, annotations: { [AUDIT_EVENT_ANNOTATION]: JSON.stringify(e.key) } },
          involvedObject: { apiVersion: API_VERSION, kind: 'GovernancePolicy', name: e.policy, namespace },
          reason: AUDIT_REASONS[e.key.would],
          message: message(e.key, count),
          type: 'Normal',
          action: e.key.what,
          source: { component: AUDIT_EVENT_SOURCE },
          reportingComponent: AUDIT_REPORTING_COMPONENT,
          reportingInstance: pod.slice(0, 128),
          firstTimestamp: new Date(e.first).toISOString(),
          lastTimestamp,
          count,
        },
      });
    }
    return out;
  }

  /** Applies a write's result: what was sent is now on the server, or stays pending for the next flush. */
  settle(w: AuditEventWrite, r: WriteResult, now: number): void {
    const e = this.entries.get(w.name);
    if (!e) return;
    switch (r.kind) {
      case 'ok':
        e.written += w.sent;
        e.pending -= w.sent;
        e.exists = true;
        return;
      case 'exists':
        // Written by an earlier run of this pod's sidecar: continue its count with a patch.
        e.written = r.count;
        if (r.first !== undefined) e.first = r.first;
        e.exists = true;
        return;
      case 'gone':
        // The Event expired (the API server's event TTL) or was deleted: a new one counts from here.
        e.written = 0;
        e.exists = false;
        e.first = now;
        return;
      case 'failed':
        return;
    }
  }
}

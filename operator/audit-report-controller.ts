// The audit report controller: each GovernancePolicy of a namespace carries in status.audit what
// its sidecars forwarded in audit mode that enforce would not have (operator/audit-report-plan.ts),
// summed from their Events. Its Event informer lists only audit Events (a field selector), keeps
// only what the report reads of them, and a bounded number (operator/audit-event-filter.ts); the rest is operator/namespace-report.ts: written only when the
// report changed, at most once per AUDIT_REPORT_INTERVAL_MS per namespace, a merge patch of
// status.audit alone.
import { planAuditReport, type AuditEventObject } from './audit-report-plan.js';
import type { NamespaceKey } from './keys.js';
import type { ControllerDefinition } from './manager.js';
import { namespaceReportController, type ReportOptions } from './namespace-report.js';
import { AUDIT_EVENTS } from './sources.js';

/** The least time between two writes of a namespace's audit report (sidecars write their Events every 30 s). */
export const AUDIT_REPORT_INTERVAL_MS = 30_000;

export const auditReportControllerWith = (o: ReportOptions = {}): ControllerDefinition<NamespaceKey> =>
  namespaceReportController(
    {
      kind: 'audit',
      source: AUDIT_EVENTS,
      field: 'audit',
      plan: (policies, events, incomplete) =>
        planAuditReport(policies, events as unknown as AuditEventObject[], incomplete).map((w) => ({ policy: w.policy, value: w.audit })),
      intervalMs: AUDIT_REPORT_INTERVAL_MS,
    },
    o,
  );

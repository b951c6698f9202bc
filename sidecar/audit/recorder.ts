// What audit mode let through, recorded: the metrics always, and in a cluster the Events the
// operator turns into GovernancePolicy status.audit (events.ts). Called by the POST executor for
// each message the enforcement step forwarded (policy/gates/enforcement.ts), and by the list edit
// for entries enforce would have filtered out.
import type { AuditRecord } from '../../policy/gates/enforcement.js';
import { EXPOSE_RULE } from '../../policy/gates/enforcement.js';
import { methodLabel, type SidecarMetrics } from '../metrics.js';
import type { AuditEvents } from './events.js';

export interface AuditRecorder {
  call(policy: string | null, source: string, a: AuditRecord): void;
  listItems(policy: string | null, source: string, method: string, hidden: number): void;
}

export function createAuditRecorder(metrics: SidecarMetrics, events: AuditEvents | null): AuditRecorder {
  return {
    call(policy, source, a) {
      metrics.auditDecisions.inc({ policy: policy ?? '', source, gate: a.gate, rule: a.rule, would: a.would });
      if (policy !== null) events?.add(policy, { would: a.would, what: 'call', gate: a.gate, rule: a.rule, source }, 1);
    },
    listItems(policy, source, method, hidden) {
      if (hidden <= 0) return;
      metrics.auditListItems.inc({ policy: policy ?? '', source, method: methodLabel(method) }, hidden);
      if (policy !== null) events?.add(policy, { would: 'hide', what: 'listItem', gate: 'visibility', rule: EXPOSE_RULE, source }, hidden);
    },
  };
}

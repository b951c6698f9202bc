// Audit mode's records shared by the sidecar (which writes them) and the operator (which reads
// them into GovernancePolicy status.audit): the Kubernetes Event each sidecar keeps per
// (policy, source, gate, rule, would, what), and the status the operator derives from them.
import { z } from 'zod';
import { lazy } from '../lib/lazy.js';

/** What enforce would have done with a message audit forwarded. */
export const AUDIT_WOULD = ['deny', 'hide', 'approve'] as const;
export type Would = (typeof AUDIT_WOULD)[number];

/** A call (one message), or entries of a list result that enforce would have filtered out. */
export const AUDIT_WHAT = ['call', 'listItem'] as const;
export type AuditWhat = (typeof AUDIT_WHAT)[number];

/** The Event reason per `would`. */
export const AUDIT_REASONS: Record<Would, string> = { deny: 'AuditWouldDeny', hide: 'AuditWouldHide', approve: 'AuditWouldApprove' };

/**
 * source.component of every audit Event: the operator's informer watches only these
 * (fieldSelector `source=thoughtgate-audit`), never the namespace's other Events.
 */
export const AUDIT_EVENT_SOURCE = 'thoughtgate-audit';
export const AUDIT_REPORTING_COMPONENT = 'thoughtgate.io/sidecar';
/** The annotation holding an audit Event's key as JSON (AuditEventKeySchema). */
export const AUDIT_EVENT_ANNOTATION = 'thoughtgate.io/audit';

export const AuditEventKeySchema = lazy(() => {
  /** Bounds of the values an Event carries (they come from the platform's config, never the agent). */
  const label = z.string().min(1).max(160);
  return z.strictObject({
    would: z.enum(AUDIT_WOULD),
    what: z.enum(AUDIT_WHAT),
    gate: z.string().min(1).max(32),
    rule: label,
    source: label,
  });
});
export type AuditEventKey = z.infer<ReturnType<typeof AuditEventKeySchema>>;

/** Rows of status.audit.rules, most counted first. */
export const AUDIT_STATUS_MAX_RULES = 50;

export const AuditStatusSchema = lazy(() => {
  const count = z.number().int().min(0);
  return z.object({
    /** The time the counts cover: from the oldest counted Event's first occurrence to the newest's last. */
    from: z.string(),
    to: z.string(),
    /** Pods whose Events were counted. */
    pods: count,
    /** Calls forwarded by audit that enforce would have denied, hidden or sent for approval; list entries it would have hidden. */
    total: z.object({ deny: count, hide: count, approve: count, listItems: count }),
    /** Per (would, gate, rule, source); at most AUDIT_STATUS_MAX_RULES rows, `truncated` counts the rest. */
    rules: z.array(
      z.object({
        would: z.enum(AUDIT_WOULD),
        gate: z.string(),
        rule: z.string(),
        source: z.string(),
        calls: count,
        listItems: count,
      }),
    ),
    truncated: count.optional(),
    /**
     * Some of the namespace's audit Events were not counted: the operator holds a bounded number of
     * them (operator/audit-event-filter.ts), and more were written within the last hour.
     */
    incomplete: z.boolean().optional(),
  });
});
export type AuditStatus = z.infer<ReturnType<typeof AuditStatusSchema>>;

// Enforcement: what is done with a decision of gates 1–3. Applied to every decision right after
// decide(), by the one caller (sidecar/proxy/plan.ts). Pure.
//
// enforce: the decision stands. audit: a decision to deny, hide or send for approval becomes a
// forward carrying an audit record of what enforce would have done. Only these three verdicts of
// the policy are relaxed: refusals that are not a policy verdict (malformed messages, size and
// rate limits, unknown sources, egress, no config) are never decisions of decide() and never
// reach this step. The enforcement comes from the platform's config alone (the document's
// `enforcement`, a rule's own): nothing in the operation is read to choose it.
import type { Enforcement } from '../../api/config.js';
import type { Would } from '../../api/audit.js';
import type { Gate } from '../../api/errors.js';
import type { Decision } from './decide.js';
import type { Operation } from './operation.js';
import { firstMatch, type CompiledRule } from './rules.js';

export interface EnforcementInputs {
  rules: readonly CompiledRule[];
  /** The document's `enforcement` (unset in the config: enforce). */
  enforcement: Enforcement;
}

/** The rule label gate 1's records carry: the source's `expose` decided, not a rule. */
export const EXPOSE_RULE = 'expose';

export interface AuditRecord {
  would: Would;
  gate: Gate;
  /** The deciding rule's label (or `defaultAction`, or `expose` for gate 1): from the config, so bounded. */
  rule: string;
  /** Cedar policy ids that determined a gate-3 verdict. */
  policies?: string[];
  /** Why enforce would have done it (the decision's reason). */
  reason: string;
}

export interface Enforced {
  decision: Decision;
  /** Set when audit forwarded what enforce would not have. */
  audit: AuditRecord | null;
}

/**
 * Which enforcement applies to a decision: gate 1's is the document's; gates 2–3's is the deciding
 * rule's own, else the document's. The deciding rule is found again with decide()'s own
 * firstMatch over the same rules and operation (deterministic: the same rule), and only when some
 * rule has an enforcement of its own, so decide() stays as it is and the common case costs nothing.
 */
export function enforcementOf(g: EnforcementInputs, op: Operation, d: Decision): Enforcement {
  if (d.action === 'hidden' || !g.rules.some((r) => r.enforcement !== undefined)) return g.enforcement;
  return firstMatch(g.rules, op)?.enforcement ?? g.enforcement;
}

const WOULD: Record<Exclude<Decision['action'], 'forward'>, Would> = { deny: 'deny', hidden: 'hide', approve: 'approve' };

/** The enforcement step: the decision to carry out, and what audit let through. */
export function enforce(g: EnforcementInputs, op: Operation, d: Decision): Enforced {
  if (d.action === 'forward' || enforcementOf(g, op, d) === 'enforce') return { decision: d, audit: null };
  const would = WOULD[d.action];
  const rule = d.action === 'hidden' ? EXPOSE_RULE : (d.rule ?? 'defaultAction');
  const policies = d.action === 'hidden' ? undefined : d.policies;
  const audit: AuditRecord = { would, gate: d.gate, rule, reason: d.reason, ...(policies ? { policies } : {}) };
  return {
    decision: { action: 'forward', gate: d.gate, rule, reason: `audit: would ${would}: ${d.reason}`, ...(policies ? { policies } : {}) },
    audit,
  };
}

/** Whether gate 1 filters lists and hides targets (enforce), or only records (audit). */
export function visibilityEnforced(g: Pick<EnforcementInputs, 'enforcement'>): boolean {
  return g.enforcement === 'enforce';
}

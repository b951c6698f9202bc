// Gates 1–3 composed into one decision per message. Pure: the snapshot and the operation in,
// a decision out. Gate 4 (approval) is what happens to an `approve` decision afterwards.
import type { Action, Enforcement, Identity } from '../../api/config.js';
import type { ErrorName, Gate } from '../../api/errors.js';
import { evaluate, type CedarDecision, type CedarSeen } from '../cedar/evaluate.js';
import type { CedarJson } from '../cedar/normalise.js';
import type { CompiledPolicies } from '../cedar/policies.js';
import type { Operation, TargetKind } from './operation.js';
import { firstMatch, type CompiledRule } from './rules.js';
import { isVisible, type Visibility } from './visibility.js';

export type Decision =
  | { action: 'forward'; gate: Gate; rule?: string; reason: string; policies?: string[] }
  /** Gate 1: the target is hidden; answer as the upstream answers an unknown target. */
  | { action: 'hidden'; gate: 'visibility'; reason: string }
  | { action: 'deny'; gate: Gate; error: ErrorName; rule?: string; reason: string; policies?: string[] }
  | { action: 'approve'; gate: Gate; channel: string; timeoutMs?: number; rule?: string; reason: string; policies?: string[] };

export interface GateInputs {
  visibility: Visibility;
  rules: readonly CompiledRule[];
  defaultAction: Action;
  cedar: CompiledPolicies | null;
  identity: Identity;
}

/**
 * What each gate saw, for `thoughtgate explain` and `thoughtgate test`: filled in by decide() when
 * passed one (the sidecar passes none, and pays nothing for it). A gate that did not run is absent.
 */
export interface DecisionTrace {
  /** Gate 1, for a message with a target. */
  visibility?: { kind: TargetKind; name: string; exposed: boolean };
  /** Gate 2: the first matching rule (its index in `rules`), or none: the defaultAction, or plumbing that flows. */
  rules?: { rule: string; index: number; action: Action } | { rule: null; action: Action; plumbing: boolean };
  /** Gate 3, when Cedar was asked: its answer and the arguments as normalised for it (absent when refused). */
  cedar?: CedarDecision & { arguments?: CedarJson };
  /** The enforcement step after decide() (policy/gates/enforcement.ts): filled by its caller, not by decide(). */
  enforcement?: { mode: Enforcement; note?: string };
}

export function decide(g: GateInputs, op: Operation, now: Date, trace?: DecisionTrace): Decision {
  if (op.target && !isVisible(g.visibility, op.target.kind, op.target.name)) {
    if (trace) trace.visibility = { ...op.target, exposed: false };
    return { action: 'hidden', gate: 'visibility', reason: `${op.target.kind} is not exposed` };
  }
  if (trace && op.target) trace.visibility = { ...op.target, exposed: true };
  const rule = firstMatch(g.rules, op);
  if (trace)
    trace.rules = rule
      ? { rule: rule.label, index: g.rules.indexOf(rule), action: rule.action }
      : { rule: null, action: g.defaultAction, plumbing: !op.governed };
  if (!rule && !op.governed) return { action: 'forward', gate: 'rules', reason: 'protocol message' };
  const action = rule ? rule.action : g.defaultAction;
  const label = rule ? rule.label : 'defaultAction';
  switch (action) {
    case 'forward':
      return { action: 'forward', gate: 'rules', rule: label, reason: `forwarded by ${label}` };
    case 'deny':
      return { action: 'deny', gate: 'rules', error: 'DENIED_BY_RULE', rule: label, reason: rule?.reason ?? `denied by ${label}` };
    case 'approve':
      return {
        action: 'approve',
        gate: 'rules',
        channel: rule!.approval!.channel,
        timeoutMs: rule!.approval!.timeoutMs,
        rule: label,
        reason: rule?.reason ?? `${label} requires approval`,
      };
    case 'policy':
      return decideByCedar(g, op, label, now, trace);
  }
}

function decideByCedar(g: GateInputs, op: Operation, label: string, now: Date, trace?: DecisionTrace): Decision {
  if (!g.cedar) {
    return { action: 'deny', gate: 'cedar', error: 'DENIED_BY_POLICY', rule: label, reason: `${label} asks Cedar, but no cedar.policies are configured` };
  }
  // A2A: the resource is the agent (ThoughtGate::Agent::"<source>"); the skill is in the context.
  const target = op.a2a
    ? { kind: 'agent' as const, name: op.source }
    : op.target
      ? { kind: op.target.kind as Exclude<TargetKind, 'skill'>, name: op.target.name }
      : { kind: 'method' as const, name: op.method };
  const seen: CedarSeen | undefined = trace ? {} : undefined;
  const d = evaluate(g.cedar, { identity: g.identity, method: op.method, source: op.source, target, arguments: op.arguments, now, a2a: op.a2a }, seen);
  if (trace) trace.cedar = { ...d, ...seen };
  if (d.decision === 'error') return { action: 'deny', gate: 'cedar', error: 'POLICY_ERROR', rule: label, reason: d.reason, policies: d.policies };
  if (d.decision === 'deny') return { action: 'deny', gate: 'cedar', error: 'DENIED_BY_POLICY', rule: label, reason: d.reason, policies: d.policies };
  if (d.approveChannel) return { action: 'approve', gate: 'cedar', channel: d.approveChannel, rule: label, reason: d.reason, policies: d.policies };
  return { action: 'forward', gate: 'cedar', rule: label, reason: d.reason, policies: d.policies };
}

// What happens to one A2A call the gates decided: its log outcome, its requests_total labels, and
// the action (forward, a refusal in ThoughtGate's or A2A's terms, gate 4, or a notification
// dropped). Pure; handler.ts carries it out.
import type { A2aErrorName, ErrorName } from '../../api/errors.js';
import type { Decision } from '../../policy/gates/decide.js';
import { type AuditRecord, EXPOSE_RULE } from '../../policy/gates/enforcement.js';
import type { A2aFacts, Operation } from '../../policy/gates/operation.js';
import { methodLabel } from '../metrics.js';
import type { MessageOutcome } from '../proxy/context.js';
import type { RateRefusal } from '../proxy/rate-limit.js';

export type A2aAction =
  | { kind: 'forward' }
  /** A refused notification: no answer (JSON-RPC), only an empty 202. */
  | { kind: 'drop' }
  | { kind: 'refuse'; name: ErrorName; reason: string; rule?: string }
  | { kind: 'a2a-error'; name: A2aErrorName; reason: string }
  | { kind: 'approve'; decision: Decision & { action: 'approve' } };

export interface A2aPlan {
  outcome: MessageOutcome;
  /** requests_total labels (bounded: method is canonical or `other`). */
  count: { source: string; method: string; decision: string; gate: string; rule: string; protocol: 'a2a' };
  action: A2aAction;
}

export interface A2aDecided {
  op: Operation & { a2a: A2aFacts };
  /** After enforce(): audit mode has turned a refusal into forward, with `audit` saying what it would have done. */
  decision: Decision;
  audit: AuditRecord | null;
  /** The rate limit that refused a forwarded call, if any. */
  limited: RateRefusal | null;
  notification: boolean;
}

export function planA2a({ op, decision, audit, limited, notification }: A2aDecided): A2aPlan {
  const rule = limited ? limited.rule : decision.action === 'hidden' ? EXPOSE_RULE : 'rule' in decision ? decision.rule : undefined;
  const outcome: MessageOutcome = {
    method: op.method,
    kind: notification ? 'notification' : 'request',
    ...(op.target ? { target: op.target.name } : {}),
    decision: limited ? 'deny' : decision.action,
    gate: limited ? 'ratelimit' : decision.gate,
    rule,
    reason: limited ? limited.reason : decision.reason,
    a2a: { version: op.a2a.version, binding: op.a2a.binding, skill: op.a2a.skill },
    ...('policies' in decision && decision.policies ? { policies: decision.policies } : {}),
    ...(audit ? { audit: { would: audit.would, gate: audit.gate, rule: audit.rule, ...(audit.policies ? { policies: audit.policies } : {}) } } : {}),
  };
  const count = {
    source: op.source,
    method: methodLabel(op.method),
    decision: outcome.decision,
    gate: outcome.gate ?? 'none',
    rule: rule ?? 'none',
    protocol: 'a2a' as const,
  };
  return { outcome, count, action: actionOf(decision, limited, notification, op.a2a.skill) };
}

function actionOf(decision: Decision, limited: RateRefusal | null, notification: boolean, skill: string): A2aAction {
  if (limited) return notification ? { kind: 'drop' } : { kind: 'refuse', name: 'RATE_LIMITED', reason: limited.reason, rule: limited.rule };
  if (decision.action === 'forward') return { kind: 'forward' };
  // A notification cannot be told why, nor wait for a human.
  if (notification) return { kind: 'drop' };
  switch (decision.action) {
    case 'deny':
      return { kind: 'refuse', name: decision.error, reason: decision.reason, ...(decision.rule !== undefined ? { rule: decision.rule } : {}) };
    case 'hidden':
      // Answered as a skill the agent does not have; nothing is forwarded (an agent routes by
      // content, so a probe would run).
      return { kind: 'a2a-error', name: 'INVALID_PARAMS', reason: `unknown skill ${JSON.stringify(skill)}` };
    default:
      return { kind: 'approve', decision };
  }
}

// Which tools may need a human's approval, for what the sidecar advertises before any call is
// made (tools/list `execution.taskSupport`, so that a client knows it may call them as MCP tasks).
// Pure.
//
// For tools/call the rules are static: they look at method, source and tool name, never at the
// arguments. So the first matching rule (or the defaultAction) for "tools/call of <tool> on
// <source>" is the rule every call of that tool meets. The tool may need approval when that is
// `approve`, or `policy` while some Cedar policy carries @approve (Cedar's answer depends on the
// arguments, so "may" is the most that can be said before the call). A rule in audit never sends
// a call for approval (policy/gates/enforcement.ts), so it makes no tool need one.
import type { Enforcement } from '../../api/config.js';
import type { GateInputs } from './decide.js';
import type { Operation } from './operation.js';
import { firstMatch } from './rules.js';

/** `enforcement`: the document's (unset: enforce). */
type Inputs = Pick<GateInputs, 'rules' | 'defaultAction' | 'cedar'> & { enforcement?: Enforcement };

const audited = (g: Inputs, rule: { enforcement?: Enforcement } | undefined): boolean => (rule?.enforcement ?? g.enforcement) === 'audit';

export function cedarCanApprove(g: Inputs): boolean {
  return g.cedar?.policies.some((p) => p.approveChannel !== undefined) ?? false;
}

/** Whether a tools/call of `tool` on `source` can end in an approval decision. */
export function toolMayNeedApproval(g: Inputs, source: string, tool: string): boolean {
  const op: Operation = { source, method: 'tools/call', target: { kind: 'tool', name: tool }, arguments: undefined, governed: true };
  const rule = firstMatch(g.rules, op);
  if (audited(g, rule)) return false;
  const action = rule ? rule.action : g.defaultAction;
  return action === 'approve' || (action === 'policy' && cedarCanApprove(g));
}

/**
 * Whether some tool of `source` can need approval; when not, its tools/list is not inspected.
 * Conservative (an earlier rule may shadow the one found): a false "true" only costs a parse.
 */
export function sourceMayNeedApproval(g: Inputs, source: string): boolean {
  const cedar = cedarCanApprove(g);
  if (g.defaultAction === 'policy' && cedar && !audited(g, undefined)) return true;
  return g.rules.some((r) => !audited(g, r) && (r.action === 'approve' || (r.action === 'policy' && cedar)) && r.couldMatch('tools/call', source, 'tool'));
}

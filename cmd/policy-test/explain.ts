// One call through the sidecar's own gate code, with the trace of every gate: describeMessage
// (resource URIs canonicalised exactly as the proxy does) → decide() on the compiled snapshot, then
// what gate 4 would be asked. Nothing here decides; it only reads what the gates did.
import { type Expose, type Identity, type PolicyDocument, protocolOf } from '../../api/config.js';
import { a2aCode, ERRORS, type ErrorName } from '../../api/errors.js';
import { cedarReadsText } from '../../policy/cedar/evaluate.js';
import { canonicalA2aMethod } from '../../policy/gates/a2a-methods.js';
import { describeA2a } from '../../policy/gates/a2a-operation.js';
import { compileGlobs } from '../../api/glob.js';
import type { A2aCallSpec, ExpectedDecision } from '../../api/policy-test.js';
import { a2aCallOf } from './a2a-call.js';
import { decide, type DecisionTrace } from '../../policy/gates/decide.js';
import { enforce, enforcementOf } from '../../policy/gates/enforcement.js';
import { describeMessage, type TargetKind } from '../../policy/gates/operation.js';
import { exposeOf, type Target } from './target.js';

/** One call as a test case or `thoughtgate explain` names it. */
export interface CallSpec {
  source?: string;
  method?: string;
  tool?: string;
  resource?: string;
  prompt?: string;
  arguments?: unknown;
  params?: unknown;
  /** An A2A call's version, binding, skill, message… (a2a-call.ts). */
  a2a?: A2aCallSpec;
}

export interface Call {
  identity: Identity;
  /** Unset: the only source of the config. */
  source?: string;
  method: string;
  params: unknown;
  /** Set when the call is described as an A2A call (the source must be an agent). */
  a2a?: A2aCallSpec;
  now: Date;
}

/** The method and params of the message an agent would send for `s`. */
export function messageOf(s: CallSpec): { method: string; params: unknown; a2a?: A2aCallSpec } {
  // An A2A call's params are built for its source's version and binding (a2a-call.ts), unless given.
  if (s.a2a !== undefined) return { method: s.method ?? 'SendMessage', params: s.params, a2a: s.a2a };
  if (s.params !== undefined) return { method: s.method ?? '', params: s.params };
  const args = s.arguments !== undefined ? { arguments: s.arguments } : {};
  if (s.tool !== undefined) return { method: s.method ?? 'tools/call', params: { name: s.tool, ...args } };
  if (s.prompt !== undefined) {
    const method = s.method ?? 'prompts/get';
    if (method === 'completion/complete')
      return { method, params: { ref: { type: 'ref/prompt', name: s.prompt }, ...(s.arguments !== undefined ? { argument: s.arguments } : {}) } };
    return { method, params: { name: s.prompt, ...args } };
  }
  if (s.resource !== undefined) {
    const method = s.method ?? 'resources/read';
    if (method === 'completion/complete')
      return { method, params: { ref: { type: 'ref/resource', uri: s.resource }, ...(s.arguments !== undefined ? { argument: s.arguments } : {}) } };
    return { method, params: { uri: s.resource } };
  }
  return { method: s.method ?? '', params: s.arguments !== undefined ? args : {} };
}

export interface Outcome {
  /** What gates 1–3 decide (what enforce does). */
  decision: ExpectedDecision;
  /** Set when audit makes the sidecar forward what enforce would not: `forward`. */
  enforced?: ExpectedDecision;
  gate: string;
  reason: string;
  rule?: string;
  cedarPolicies?: string[];
  channel?: string;
  timeoutMs?: number;
  /** Where the approval timeout comes from. */
  timeoutFrom?: string;
  /** approve: why gate 4 will answer -32006 instead of asking a human. */
  approvalUnavailable?: string;
  /** deny: the JSON-RPC error the agent gets. */
  error?: { code: number; name?: ErrorName };
}

export interface Explanation {
  config: string;
  governancePolicy?: string;
  identity: Identity;
  source: string;
  method: string;
  /** The target as sent and as the gates saw it (a resource URI in canonical form). */
  target?: { kind: TargetKind; sent?: string; decided: string };
  outcome: Outcome;
  /** What decide() recorded, gate by gate. */
  gates: DecisionTrace;
  /** Gate 1: the expose setting that exposed or hid the target. */
  exposedBy?: string;
  /** Gate 2: the matched rule's `match`, as configured. */
  ruleMatch?: unknown;
  /** Problems before any gate ran (no config for the workload, an invalid config, an unknown source, a malformed message). */
  before?: string[];
}

const errorOf = (name: ErrorName) => ({ code: ERRORS[name].code, name });

/** Which expose entry decided `name` (for the trace only: decide() said whether it is exposed). */
export function exposedBy(expose: Expose | undefined, kind: TargetKind, name: string, exposed: boolean): string {
  if (!expose || expose.mode === 'all') return 'expose.mode all';
  const key = `${kind}s` as 'tools' | 'resources' | 'prompts' | 'skills';
  const globs = expose[key];
  const hit = globs?.find((g) => compileGlobs([g])(name));
  if (expose.mode === 'allowlist') {
    if (exposed) return hit !== undefined ? `allowlist entry expose.${key} "${hit}"` : `allowlist expose.${key}`;
    return globs === undefined ? `allowlist without expose.${key}: no ${kind} is exposed` : `no entry of the allowlist expose.${key} matches`;
  }
  if (!exposed) return hit !== undefined ? `blocklist entry expose.${key} "${hit}"` : `blocklist expose.${key}`;
  return `no entry of the blocklist expose.${key} matches`;
}

function ruleMatchOf(doc: PolicyDocument, trace: DecisionTrace): unknown {
  const r = trace.rules;
  return r && r.rule !== null ? doc.rules[r.index]?.match : undefined;
}

/** The one source a call without one goes to, or why there is none. */
function defaultSource(doc: PolicyDocument): string | undefined {
  return doc.sources.length === 1 ? doc.sources[0]!.name : undefined;
}

export function explainCall(target: Target, call: Call): Explanation {
  const g = target.governing(call.identity);
  const base = { config: target.description, identity: call.identity, method: call.method };
  if (target.namespace !== undefined && call.identity.namespace !== target.namespace) {
    const reason = `the policies are in namespace ${target.namespace}; a workload of namespace ${call.identity.namespace} is governed by its own namespace's`;
    return {
      ...base,
      source: call.source ?? '',
      outcome: { decision: 'deny', gate: 'config', reason, error: errorOf('NOT_CONFIGURED') },
      gates: {},
      before: [reason],
    };
  }
  if (!g.ok) {
    const reasons = g.kind === 'none' ? [g.reason] : g.errors;
    return {
      ...base,
      source: call.source ?? '',
      outcome: { decision: 'deny', gate: 'config', reason: reasons.join('; '), error: errorOf('NOT_CONFIGURED') },
      gates: {},
      before: g.kind === 'none' ? reasons : ['the config selected for this workload is invalid:', ...reasons],
    };
  }
  const sourceName = call.source ?? defaultSource(g.doc);
  const governed = { ...base, ...(g.governancePolicy !== undefined ? { governancePolicy: g.governancePolicy } : {}) };
  const source = sourceName === undefined ? undefined : g.snapshot.sources.get(sourceName);
  if (!source) {
    const known = [...g.snapshot.sources.keys()].join(', ');
    const reason = sourceName === undefined ? `name a source (the config has ${known})` : `no source "${sourceName}" in the config (it has ${known})`;
    return {
      ...governed,
      source: sourceName ?? '',
      outcome: { decision: 'deny', gate: 'transport', reason, error: errorOf('UNKNOWN_SOURCE') },
      gates: {},
      before: [reason],
    };
  }
  const inputs = { ...g.snapshot.gates, visibility: source.visibility };
  const a2aSource = g.doc.sources.find((s) => s.name === source.name && protocolOf(s) === 'a2a');
  const d =
    call.a2a !== undefined && !a2aSource
      ? { ok: false as const, reason: `source "${source.name}" is not an A2A agent (protocol: a2a): an a2a call goes to an agent` }
      : describeCall(source.name, a2aSource, call, inputs.cedar);
  if (!d.ok) {
    // plan.ts answers -32602 Invalid params, gate transport (A2A: -32601 for a method of no version).
    const code = 'error' in d && d.error === 'method' ? -32601 : -32602;
    return {
      ...governed,
      source: source.name,
      outcome: { decision: 'deny', gate: 'transport', reason: d.reason, error: { code } },
      gates: {},
      before: [d.reason],
    };
  }
  const rewrite = 'rewrite' in d ? d.rewrite : undefined;
  const gates: DecisionTrace = {};
  const decision = decide(inputs, d.op, call.now, gates);
  // The sidecar's enforcement step: in audit, what is reported is still the gates' decision, and `enforced` says what the sidecar does.
  const { audit } = enforce(inputs, d.op, decision);
  gates.enforcement = {
    mode: enforcementOf(inputs, d.op, decision),
    ...(audit ? { note: `the sidecar forwards the call and records that enforce would ${audit.would} it` } : {}),
  };
  const sent =
    d.op.target && rewrite
      ? { sent: (call.params as { uri?: string; ref?: { uri?: string } }).uri ?? (call.params as { ref?: { uri?: string } }).ref?.uri }
      : {};
  const explanation: Explanation = {
    ...governed,
    source: source.name,
    ...(d.op.target ? { target: { kind: d.op.target.kind, decided: d.op.target.name, ...sent } } : {}),
    outcome: { decision: decision.action, gate: decision.gate, reason: decision.reason, ...(audit ? { enforced: 'forward' as const } : {}) },
    gates,
  };
  if (gates.visibility) explanation.exposedBy = exposedBy(exposeOf(g.doc, source.name), gates.visibility.kind, gates.visibility.name, gates.visibility.exposed);
  const match = ruleMatchOf(g.doc, gates);
  if (match !== undefined) explanation.ruleMatch = match;
  decorateOutcome(explanation.outcome, decision, g, call, a2aSource !== undefined);
  return explanation;
}

/**
 * The message as the proxy parses it: describeMessage reads the method and params and puts a
 * resource URI in canonical form; an A2A call (JSON-RPC, its version told by the method's spelling)
 * is read by describeA2a as the A2A handler reads it.
 */
function describeCall(
  sourceName: string,
  a2aSource: PolicyDocument['sources'][number] | undefined,
  call: Call,
  cedar: Parameters<typeof cedarReadsText>[0],
): ReturnType<typeof describeA2a> | ReturnType<typeof describeMessage> {
  if (a2aSource) {
    const built = a2aCallOf(call.method, call.params, call.a2a ?? {}, a2aSource);
    if (!built.ok) return { ok: false, error: 'method', reason: built.reason };
    return describeA2a(sourceName, built.call, { skillFrom: a2aSource.a2a?.skillFrom, text: cedarReadsText(cedar) });
  }
  const raw = JSON.stringify({ jsonrpc: '2.0', id: 1, method: call.method, params: call.params });
  return describeMessage(sourceName, { method: call.method, params: call.params, raw });
}

/** What the outcome adds to the gates' decision: the rule and policies, the error as sent, gate 4's timeout and availability. */
function decorateOutcome(
  o: Explanation['outcome'],
  decision: ReturnType<typeof decide>,
  g: Extract<ReturnType<Target['governing']>, { ok: true }>,
  call: Call,
  a2a: boolean,
): void {
  if (decision.action !== 'hidden') {
    if (decision.rule !== undefined) o.rule = decision.rule;
    if (decision.policies !== undefined) o.cedarPolicies = decision.policies;
  }
  if (decision.action === 'deny') o.error = a2a ? { code: a2aCode(decision.error), name: decision.error } : errorOf(decision.error);
  if (decision.action === 'approve') {
    // Gate 4's timeout, as the approval engine picks it: the rule's, else the channel's (standalone), else approvals.defaultTimeout.
    o.channel = decision.channel;
    const channel = g.channelTimeoutsMs.get(decision.channel);
    if (decision.timeoutMs !== undefined) Object.assign(o, { timeoutMs: decision.timeoutMs, timeoutFrom: `rule ${decision.rule}` });
    else if (channel !== undefined) Object.assign(o, { timeoutMs: channel, timeoutFrom: `approvalChannels ${decision.channel}` });
    else Object.assign(o, { timeoutMs: g.snapshot.approvals.defaultTimeoutMs, timeoutFrom: 'approvals.defaultTimeout' });
    // Decided by gate 4 after gates 1–3 (plan.ts, approvals/): said here, not decided.
    if (!g.approvals) o.approvalUnavailable = 'this config has no approvalChannels: the sidecar answers -32006 APPROVAL_UNAVAILABLE';
    else if (a2a ? !/^(SendMessage|SendStreamingMessage)$/.test(canonicalA2aMethod(call.method) ?? '') : call.method !== 'tools/call')
      o.approvalUnavailable = `only ${a2a ? 'SendMessage and SendStreamingMessage' : 'tools/call'} can be approved: the sidecar answers -32006 APPROVAL_UNAVAILABLE`;
  }
}

// Gate 2: YAML rules, first match wins. Pure.
import type { Action, Enforcement, Rule } from '../../api/config.js';
import { parseDuration } from '../../api/duration.js';
import { compileGlobs, type Matcher } from '../../api/glob.js';
import { a2aAliases } from './a2a-methods.js';
import type { Operation, TargetKind } from './operation.js';

export interface CompiledRule {
  /** The rule's name, or `rules[<index>]` so logs and errors can point at it. */
  label: string;
  action: Action;
  approval?: { channel: string; timeoutMs?: number };
  reason?: string;
  /** The rule's own `enforcement`; unset: the document's (policy/gates/enforcement.ts). */
  enforcement?: Enforcement;
  matches: (op: Operation) => boolean;
  /**
   * Whether the rule can match some message of this method, source and target kind, whatever the
   * target's name (a tool glob matches some name by definition: globs are never empty).
   */
  couldMatch: (method: string, source: string, kind: TargetKind | null) => boolean;
}

export function compileRules(rules: readonly Rule[]): CompiledRule[] {
  return rules.map((rule, index) => {
    const m = rule.match;
    const checks: ((op: Operation) => boolean)[] = [];
    const structural: ((method: string, source: string, kind: TargetKind | null) => boolean)[] = [];
    const targeted = (kind: TargetKind, globs: string | string[]) => {
      const g: Matcher = compileGlobs(globs);
      checks.push((op) => op.target?.kind === kind && g(op.target.name));
      structural.push((_m, _s, k) => k === kind);
    };
    if (m.tool !== undefined) targeted('tool', m.tool);
    if (m.resource !== undefined) targeted('resource', m.resource);
    if (m.prompt !== undefined) targeted('prompt', m.prompt);
    if (m.skill !== undefined) targeted('skill', m.skill);
    if (m.method !== undefined) {
      const g = compileGlobs(m.method);
      // A2A methods are canonical (SendMessage); a rule may name them in 0.3's spelling too
      // (message/send, message/*), so one rule covers both generations (a2a-methods.ts).
      const either = (method: string) => g(method) || a2aAliases(method).some(g);
      checks.push((op) => (op.a2a ? either(op.method) : g(op.method)));
      structural.push(either);
    }
    if (m.source !== undefined) {
      const g = compileGlobs(m.source);
      checks.push((op) => g(op.source));
      structural.push((_m, source) => g(source));
    }
    // Plumbing (initialize, lists, notifications…) is only matched by rules that name its method.
    const reachesPlumbing = m.method !== undefined;
    const timeout = rule.approval?.timeout !== undefined ? parseDuration(rule.approval.timeout) : undefined;
    return {
      label: rule.name ?? `rules[${index}]`,
      action: rule.action,
      approval: rule.approval ? { channel: rule.approval.channel, timeoutMs: typeof timeout === 'number' ? timeout : undefined } : undefined,
      reason: rule.reason,
      ...(rule.enforcement !== undefined ? { enforcement: rule.enforcement } : {}),
      matches: (op) => (op.governed || reachesPlumbing) && checks.every((c) => c(op)),
      couldMatch: (method, source, kind) => structural.every((c) => c(method, source, kind)),
    };
  });
}

export function firstMatch(rules: readonly CompiledRule[], op: Operation): CompiledRule | undefined {
  for (const r of rules) if (r.matches(op)) return r;
  return undefined;
}

/**
 * Rules whose `method` covers one of SendMessage and SendStreamingMessage but not the other (in
 * either generation's spelling): the same message sent streaming escapes the rule, e.g. an
 * approval. Warnings for the config loader (the rule may be meant so), one per rule.
 */
export function sendPairWarnings(rules: readonly Rule[]): string[] {
  const out: string[] = [];
  rules.forEach((rule, i) => {
    if (rule.match.method === undefined) return;
    const g = compileGlobs(rule.match.method);
    const covers = (m: string) => g(m) || a2aAliases(m).some(g);
    const send = covers('SendMessage');
    if (send === covers('SendStreamingMessage')) return;
    const [has, lacks] = send ? ['SendMessage', 'SendStreamingMessage'] : ['SendStreamingMessage', 'SendMessage'];
    out.push(
      `${rule.name ?? `rules[${i}]`}: match.method covers ${has} but not ${lacks}: the same message sent ${send ? 'streaming' : 'without streaming'} does not match this rule (name both unless that is meant)`,
    );
  });
  return out;
}

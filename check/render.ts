// Output: grouped ✔/‼/✖ lines with hints for people, or one JSON document (docs/check.md
// documents its fields; `schema` changes when they do). Also the exit status. Both bound what
// they print (agents write some of it): bounded-text.ts.
import { boundResult, boundText, escapeJsonText, MAX_TEXT } from './bounded-text.js';
import type { CheckResult } from './model.js';

export const GROUP_TITLES: Record<string, string> = {
  'kubernetes-api': 'Kubernetes API',
  'installer-rbac': 'installer permissions',
  crds: 'custom resource definitions',
  operator: 'operator',
  webhook: 'injection webhook',
  namespaces: 'injected namespaces',
  policies: 'GovernancePolicies',
  'approval-channels': 'ApprovalChannels',
  'approval-requests': 'ApprovalRequests',
  capture: 'traffic capture',
};

const MARK = { ok: '✔', warn: '‼', fail: '✖', skip: '·' } as const;

export interface Summary {
  ok: number;
  warn: number;
  fail: number;
  skip: number;
}

export function summarize(results: CheckResult[]): Summary {
  const s: Summary = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const r of results) s[r.status]++;
  return s;
}

/** 0: no check failed (warnings allowed); 1: one did. (2, a usage error or no cluster, is decided before any check.) */
export const exitCode = (results: CheckResult[]): 0 | 1 => (results.some((r) => r.status === 'fail') ? 1 : 0);

function groups(results: CheckResult[]): Array<[string, CheckResult[]]> {
  const m = new Map<string, CheckResult[]>();
  for (const r of results) m.set(r.group, [...(m.get(r.group) ?? []), r]);
  return [...m];
}

/** Every string from a result is bounded and its control characters escaped (bounded-text.ts). */
export function renderHuman(results: CheckResult[], header: string): string {
  const lines: string[] = [boundText(header, MAX_TEXT, true), ''];
  for (const [group, rs] of groups(results)) {
    const title = GROUP_TITLES[group] ?? boundText(group, MAX_TEXT, true);
    lines.push(title, '-'.repeat(title.length));
    for (const r of rs.map((x) => boundResult(x, true))) {
      lines.push(`${MARK[r.status]} ${r.message}`);
      for (const i of r.items ?? []) lines.push(`    ${i}`);
      if (r.hint && (r.status === 'fail' || r.status === 'warn')) lines.push(`    hint: ${r.hint}`);
    }
    lines.push('');
  }
  const s = summarize(results);
  const verdict = s.fail
    ? `Status check results are ✖ (${s.fail} failed, ${s.warn} warnings)`
    : `Status check results are ✔${s.warn ? ` (${s.warn} warnings)` : ''}`;
  lines.push(verdict, '');
  return lines.join('\n');
}

export interface JsonReport {
  schema: 'thoughtgate.io/check/v1';
  mode: 'pre' | 'post';
  server: string;
  namespace: string;
  /** RFC 3339: when the snapshot was read. */
  time: string;
  /** pass: no check failed (warnings allowed). */
  result: 'pass' | 'fail';
  summary: Summary;
  checks: CheckResult[];
}

export function renderJson(results: CheckResult[], o: { mode: 'pre' | 'post'; server: string; namespace: string; time: Date }): string {
  const report: JsonReport = {
    schema: 'thoughtgate.io/check/v1',
    mode: o.mode,
    server: o.server,
    namespace: o.namespace,
    time: o.time.toISOString(),
    result: exitCode(results) === 0 ? 'pass' : 'fail',
    summary: summarize(results),
    checks: results.map((r) => boundResult(r, false)),
  };
  return `${escapeJsonText(JSON.stringify(report, null, 2))}\n`;
}

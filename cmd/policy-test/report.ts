// The human text of a trace and of a test run. Pure: results in, text out.
import { formatDuration } from '../../api/duration.js';
import type { Identity } from '../../api/config.js';
import type { Explanation } from './explain.js';
import type { FileResult } from './run.js';

const json = (v: unknown) => JSON.stringify(v);

function workload(id: Identity): string {
  const labels = Object.entries(id.labels).map(([k, v]) => `${k}=${v}`);
  return `${id.namespace}/${id.serviceAccount} (pod ${id.pod}${labels.length ? `, labels ${labels.join(',')}` : ''})`;
}

function rulesLine(e: Explanation): string | null {
  const r = e.gates.rules;
  if (!r) return null;
  if (r.rule !== null) return `rule ${r.rule} (rules[${r.index}]) matched ${json(e.ruleMatch)} → ${r.action}`;
  if (r.plumbing) return 'no rule names this method: protocol messages flow → forward';
  return `no rule matched → defaultAction ${r.action}`;
}

function cedarLines(e: Explanation): string[] {
  const c = e.gates.cedar;
  if (!c) {
    // Asked but not evaluated: no cedar section.
    return e.outcome.gate === 'cedar' ? [`gate 3 cedar       ${e.outcome.reason}`] : [];
  }
  const determined = c.policies.length ? `, determined by ${c.policies.join(', ')}` : '';
  const lines = [`gate 3 cedar       ${c.decision}${determined}: ${c.reason}`];
  if (c.approveChannel) lines.push(`                   @approve("${c.approveChannel}")`);
  lines.push(
    c.arguments !== undefined
      ? `                   context.arguments (normalised) ${json(c.arguments)}`
      : '                   context.arguments: refused (see the reason)',
  );
  return lines;
}

/** The trace of one call, gate by gate, `indent` before every line. */
export function formatExplanation(e: Explanation, indent = ''): string {
  const o = e.outcome;
  const lines: string[] = [];
  const what = e.target ? `${e.target.kind} ${e.target.decided}` : '';
  lines.push(`call               ${e.method}${what ? ` ${what}` : ''} on source ${e.source || '(none)'}`);
  if (e.target?.sent !== undefined) lines.push(`                   (sent as ${e.target.sent}; decided on its canonical form, and forwarded with it)`);
  lines.push(`workload           ${workload(e.identity)}`);
  lines.push(`config             ${e.config}${e.governancePolicy ? `; GovernancePolicy ${e.governancePolicy} selects the workload` : ''}`);
  for (const b of e.before ?? []) lines.push(`before the gates   ${b}`);
  if (e.gates.visibility) lines.push(`gate 1 visibility  ${e.gates.visibility.exposed ? 'exposed' : 'hidden'} (${e.exposedBy})`);
  const rules = rulesLine(e);
  if (rules) lines.push(`gate 2 rules       ${rules}`);
  lines.push(...cedarLines(e));
  if (e.gates.enforcement) lines.push(`enforcement        ${e.gates.enforcement.mode}${e.gates.enforcement.note ? `: ${e.gates.enforcement.note}` : ''}`);
  if (o.decision === 'approve') lines.push(`gate 4 approval    channel ${o.channel}, timeout ${formatDuration(o.timeoutMs ?? 0)} (${o.timeoutFrom})`);
  if (o.approvalUnavailable) lines.push(`                   but ${o.approvalUnavailable}`);
  const err = o.error ? ` ${o.error.code}${o.error.name ? ` ${o.error.name}` : ''}` : '';
  const by = [o.rule !== undefined ? `rule ${o.rule}` : '', o.cedarPolicies?.length ? `Cedar ${o.cedarPolicies.join(', ')}` : ''].filter(Boolean).join(', ');
  lines.push(`decision           ${o.decision}${err} at gate ${o.gate}${by ? ` (${by})` : ''}: ${o.reason}`);
  if (o.enforced !== undefined) lines.push(`the sidecar does   ${o.enforced} (audit)`);
  return lines.map((l) => `${indent}${l}`).join('\n');
}

export interface Totals {
  files: number;
  cases: number;
  passed: number;
  failed: number;
  /** Files whose config or policy is invalid (their cases did not run). */
  invalid: number;
  /** Test files that could not be read or are not valid test files. */
  errors: number;
}

export function totals(results: readonly FileResult[]): Totals {
  const t: Totals = { files: results.length, cases: 0, passed: 0, failed: 0, invalid: 0, errors: 0 };
  for (const r of results) {
    if (r.kind === 'error') t.errors++;
    else if (r.kind === 'invalid-target') t.invalid++;
    else
      for (const c of r.cases) {
        t.cases++;
        if (c.passed) t.passed++;
        else t.failed++;
      }
  }
  return t;
}

/** 0 all passed, 1 a case failed or a config/policy is invalid, 2 a test file could not be used. */
export function exitStatus(t: Totals): number {
  if (t.errors > 0) return 2;
  return t.failed > 0 || t.invalid > 0 ? 1 : 0;
}

/** The run as people read it: one line per case, a failing case with its reasons and trace. */
export function formatRun(results: readonly FileResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    if (r.kind === 'error') {
      out.push(`ERROR ${r.file}`, ...r.errors.map((e) => `  ${e}`));
      continue;
    }
    if (r.kind === 'invalid-target') {
      out.push(`FAIL  ${r.file}: what it tests is invalid`, ...r.errors.map((e) => `  ${e}`));
      continue;
    }
    const failed = r.cases.filter((c) => !c.passed).length;
    out.push(`${failed ? 'FAIL' : 'PASS'}  ${r.file} (${r.cases.length} cases, ${r.target})`);
    out.push(...r.warnings.map((w) => `  ‼ warning: ${w}`));
    for (const c of r.cases) {
      if (c.passed) {
        out.push(`  ✔ ${c.name}`);
        continue;
      }
      out.push(`  ✖ ${c.name} (${c.at})`, ...c.failures.map((f) => `      ${f}`), formatExplanation(c.explanation, '        '));
    }
  }
  const t = totals(results);
  const parts = [`${t.passed} passed`, `${t.failed} failed`];
  if (t.invalid) parts.push(`${t.invalid} invalid config${t.invalid > 1 ? 's' : ''}`);
  if (t.errors) parts.push(`${t.errors} file error${t.errors > 1 ? 's' : ''}`);
  out.push('', `${t.files} file${t.files === 1 ? '' : 's'}, ${t.cases} case${t.cases === 1 ? '' : 's'}: ${parts.join(', ')}`);
  return `${out.join('\n')}\n`;
}

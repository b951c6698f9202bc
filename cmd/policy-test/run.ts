// `thoughtgate test`: a test file read and validated (with file:line:col for every problem), its
// target loaded, each case explained (explain.ts) and compared with what it expects.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { IdentitySchema, type Identity } from '../../api/config.js';
import { formatDuration, parseDuration } from '../../api/duration.js';
import { ERRORS } from '../../api/errors.js';
import { PolicyTestFileSchema, type IdentityOverride, type PolicyTestCase, type PolicyTestFile } from '../../api/policy-test.js';
import { describeFsError, locateIssue, offsetAt, readYaml } from '../../policy/config/load.js';
import { explainCall, messageOf, type Explanation } from './explain.js';
import { loadConfigTarget, loadPolicyTarget, TargetInvalid, TargetUnreadable, type Target } from './target.js';

export interface CaseResult {
  name: string;
  /** file:line:col of the case. */
  at: string;
  passed: boolean;
  /** Why it failed: one line per expectation not met. */
  failures: string[];
  explanation: Explanation;
  durationMs: number;
}

export type FileResult =
  /** `warnings`: the config's (policy/config/warnings.ts); they do not fail the file. */
  | { file: string; kind: 'ran'; target: string; warnings: string[]; cases: CaseResult[]; durationMs: number }
  /** The thing under test is invalid (a config the sidecar would refuse, a policy the operator would mark Invalid): a failure. */
  | { file: string; kind: 'invalid-target'; errors: string[]; durationMs: number }
  /** The test file (or a file it names) cannot be read or is not a valid test file: a file error. */
  | { file: string; kind: 'error'; errors: string[]; durationMs: number };

type Loaded = { ok: true; test: PolicyTestFile; at: (path: (string | number)[]) => string } | { ok: false; errors: string[] };

/** Reads and validates a test file; every problem as `file:line:col: path: message`. */
export async function readTestFile(file: string): Promise<Loaded> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${file}: ${describeFsError(err)}`] };
  }
  const read = readYaml(text, file, 'a mapping with "config" or "policy", and "cases"');
  if (!read.ok) return read;
  const parsed = PolicyTestFileSchema.safeParse(read.yaml.raw);
  if (!parsed.success) {
    const located = parsed.error.issues.map((i) => locateIssue(read.yaml, i, read.yaml.raw)).sort((a, b) => a.offset - b.offset);
    return { ok: false, errors: located.map((l) => `${read.yaml.at(l.offset)}: ${l.text}`) };
  }
  return { ok: true, test: parsed.data, at: (path) => read.yaml.at(offsetAt(read.yaml, path)) };
}

/** Identity: the case's fields over the file's over the target's default. */
export function identityFor(base: Identity, ...overrides: (IdentityOverride | undefined)[]): Identity {
  let id: Identity = base;
  for (const o of overrides) {
    const set = Object.entries(o ?? {}).filter(([, v]) => v !== undefined);
    if (set.length > 0) id = IdentitySchema.parse({ ...id, ...Object.fromEntries(set) });
  }
  return id;
}

/**
 * What the sidecar does after the enforcement step, against `enforced`, which defaults to `expect`
 * and is always compared: otherwise adding `enforcement: audit` to a config would keep every
 * `expect: deny` test green while the sidecar forwards.
 */
function enforcementUnmet(c: PolicyTestCase, o: Explanation['outcome']): string | undefined {
  const enforced = o.enforced ?? o.decision;
  const want = c.enforced ?? c.expect;
  // Without audit and without `enforced`, a difference here is the decision's, reported already.
  if (enforced === want || (c.enforced === undefined && o.enforced === undefined)) return undefined;
  const verb = (d: string) => (d === 'hidden' ? 'hide' : d);
  const audit =
    o.enforced === 'forward' && o.decision !== 'forward'
      ? ` (audit: the config or rule is in audit, so the sidecar would forward the call and only record that enforce would ${verb(o.decision)} it${c.enforced === undefined ? '; set "enforced: forward" if that is intended' : ''})`
      : '';
  return `expected the sidecar to ${verb(want)} the call after the enforcement step, it does ${enforced}${audit}`;
}

/** The expectations of `c` that `o` does not meet, one line each. */
export function unmet(c: PolicyTestCase, e: Explanation, governancePolicy: string | undefined): string[] {
  const o = e.outcome;
  const out: string[] = [];
  if (o.decision !== c.expect) out.push(`expected ${c.expect}, got ${o.decision} (${o.reason})`);
  const enforcement = enforcementUnmet(c, o);
  if (enforcement) out.push(enforcement);
  if (c.rule !== undefined && o.rule !== c.rule) out.push(`expected rule ${c.rule}, decided by ${o.rule === undefined ? 'no rule' : `rule ${o.rule}`}`);
  if (c.cedarPolicies !== undefined) {
    const got = [...(o.cedarPolicies ?? [])].sort();
    const want = [...c.cedarPolicies].sort();
    if (got.join('\n') !== want.join('\n'))
      out.push(`expected Cedar policies [${want.join(', ')}], determined by [${got.join(', ')}]${e.gates.cedar ? '' : ' (Cedar was not asked)'}`);
  }
  if (c.channel !== undefined && o.channel !== c.channel) out.push(`expected approval channel ${c.channel}, got ${o.channel ?? 'none'}`);
  if (c.timeout !== undefined && o.timeoutMs !== parseDuration(c.timeout))
    out.push(`expected approval timeout ${c.timeout}, got ${o.timeoutMs === undefined ? 'none' : formatDuration(o.timeoutMs)}`);
  // By name: an A2A call gets the same error under its A2A code (DENIED_BY_POLICY is -32054 there).
  if (c.error !== undefined && o.error?.name !== c.error && o.error?.code !== ERRORS[c.error].code)
    out.push(`expected error ${c.error} (${ERRORS[c.error].code}), got ${o.error ? `${o.error.name ?? ''} (${o.error.code})`.trim() : 'none'}`);
  if (c.governancePolicy !== undefined && governancePolicy !== c.governancePolicy)
    out.push(`expected GovernancePolicy ${c.governancePolicy}, selected ${governancePolicy ?? 'none'}`);
  // A test that expects a denial must not pass because of a typo in its source or message.
  if (o.gate === 'transport' && c.error === undefined && c.expect === 'deny') out.push(`the call never reached the gates: ${o.reason}`);
  return out;
}

function caseName(c: PolicyTestCase): string {
  if (c.name) return c.name;
  const what = c.tool ?? c.resource ?? c.prompt ?? '';
  return `${c.expect} ${c.method ?? ''} ${what}`.replace(/ +/g, ' ').trim();
}

async function loadTarget(file: string, t: PolicyTestFile): Promise<Target> {
  // Relative to the test file (and shown that way when the test file was named relatively).
  const rel = (p: string) => (isAbsolute(p) ? p : join(dirname(file), p));
  if (t.config !== undefined) return loadConfigTarget(rel(t.config), t.env);
  const paths = (Array.isArray(t.policy) ? t.policy : [t.policy!]).map(rel);
  return loadPolicyTarget(paths, t.env, t.approvalChannels ?? []);
}

/** Runs one test file. Never throws for a problem in the files. */
export async function runTestFile(file: string, now: () => Date = () => new Date()): Promise<FileResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const loaded = await readTestFile(file);
  if (!loaded.ok) return { file, kind: 'error', errors: loaded.errors, durationMs: ms() };
  const t = loaded.test;
  let target: Target;
  try {
    target = await loadTarget(file, t);
  } catch (err) {
    if (err instanceof TargetInvalid) return { file, kind: 'invalid-target', errors: err.errors, durationMs: ms() };
    if (err instanceof TargetUnreadable) return { file, kind: 'error', errors: [err.message], durationMs: ms() };
    throw err;
  }
  try {
    const cases = t.cases.map((c, i): CaseResult => {
      const begun = performance.now();
      const identity = identityFor(target.defaultIdentity, t.identity, c.identity);
      const time = c.time ?? t.time;
      const source = c.source ?? t.source;
      const e = explainCall(target, { identity, ...(source !== undefined ? { source } : {}), ...messageOf(c), now: time ? new Date(time) : now() });
      const failures = unmet(c, e, e.governancePolicy);
      return {
        name: caseName(c),
        at: loaded.at(['cases', i]),
        passed: failures.length === 0,
        failures,
        explanation: e,
        durationMs: performance.now() - begun,
      };
    });
    return { file, kind: 'ran', target: target.description, warnings: target.warnings, cases, durationMs: ms() };
  } finally {
    target.close();
  }
}

// The chart's alerts (charts/thoughtgate/files/alerts.yaml, rendered into a PrometheusRule when
// prometheusRule.enabled) with a real helm and a real promtool (scripts/helm-tools.sh and
// scripts/promtool-tools.sh build them from the Go module proxy into ~/.cache/thoughtgate):
//  - off by default; on, one PrometheusRule with the ruleSelector labels and the thresholds given;
//  - `promtool check rules` accepts the rendered groups, `promtool test rules`
//    (e2e/chart-alerts.rules-test.yaml) fires and silences every alert as expected;
//  - every metric the rules read is one ThoughtGate registers.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { run, type RunResult } from './cluster/cluster.js';
import { CHART, installHelm, type K8sObject, renderChart } from './support/helm.js';
import { builtPromtool } from './support/promtool.js';
import { ROOT } from '../test/support/processes.js';
import { deployableRegistries } from './support/promql.js';

const RULES_TEST = join(ROOT, 'e2e', 'chart-alerts.rules-test.yaml');
const OPNS = 'thoughtgate-system';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

let helmBin: string;
let promtool: string;
let dir: string;

const template = (args: string[]): Promise<K8sObject[]> => renderChart(helmBin, args, 'thoughtgate', OPNS);
const ruleObjects = (objs: K8sObject[]) => objs.filter((o) => o.kind === 'PrometheusRule');

/** The rule groups of the one PrometheusRule rendered with `args`. */
async function renderRules(args: string[]): Promise<RuleFile> {
  const rules = ruleObjects(await template(['--set', 'prometheusRule.enabled=true', ...args]));
  expect(rules).toHaveLength(1);
  return rules[0]!.spec as RuleFile;
}

/** Writes the groups as rules.yaml next to a copy of the rules test; `promtool <command> rules <file>` there. */
function promtoolIn(groups: RuleFile, command: 'check' | 'test', file: 'rules.yaml' | 'rules-test.yaml'): Promise<RunResult> {
  writeFileSync(join(dir, 'rules.yaml'), stringify(groups));
  copyFileSync(RULES_TEST, join(dir, 'rules-test.yaml'));
  return run(promtool, [command, 'rules', join(dir, file)]);
}

beforeAll(async () => {
  promtool = await builtPromtool();
  helmBin = await installHelm();
  dir = mkdtempSync(join(tmpdir(), 'tg-chart-alerts-'));
}, 15 * 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('no PrometheusRule by default; enabled, one with the extra labels and the alerts of the mode', async () => {
  expect(ruleObjects(await template([]))).toEqual([]);
  const lint = await run(helmBin, ['lint', '--strict', CHART, '--set', 'prometheusRule.enabled=true', '--set', 'webhook.certManager.enabled=true']);
  expect({ code: lint.code, out: lint.stdout + lint.stderr }).toMatchObject({ code: 0 });
  const objs = await template(['--set', 'prometheusRule.enabled=true', '--set', 'prometheusRule.labels.release=kube-prometheus-stack']);
  const [rule] = ruleObjects(objs);
  expect(rule!.metadata).toMatchObject({ namespace: OPNS, labels: { release: 'kube-prometheus-stack', 'app.kubernetes.io/part-of': 'thoughtgate' } });
  const names = (rule!.spec as RuleFile).groups.flatMap((g) => g.rules.map((r) => r.alert));
  expect(names).toEqual([
    'ThoughtGateConfigInvalid',
    'ThoughtGateSidecarConfigStale',
    'ThoughtGateDenySpike',
    'ThoughtGateUpstreamErrors',
    'ThoughtGateUpstreamDown',
    'ThoughtGateApprovalsWaitingTooLong',
    'ThoughtGateSlackUnavailable',
    'ThoughtGateWebhookErrors',
    'ThoughtGateWebhookCertificateExpiring',
    'ThoughtGateOperatorNoLeader',
  ]);
  // The operator's own week-long certificates alert with 2 days left; cert-manager's with certificateExpiryDays.
  const expiry = (f: RuleFile) => f.groups[0]!.rules.find((r) => r.alert === 'ThoughtGateWebhookCertificateExpiring')!.expr;
  expect(expiry(rule!.spec as RuleFile)).toMatch(/< 2 \* 86400$/);
  expect(expiry(await renderRules(['--set', 'webhook.certManager.enabled=true']))).toMatch(/< 14 \* 86400$/);
});

test('the thresholds come from values, and the schema refuses nonsense', async () => {
  const { groups } = await renderRules(['--set', 'prometheusRule.thresholds.approvalWaitSeconds=600', '--set', 'prometheusRule.thresholds.configStaleFor=30m']);
  const by = (n: string) => groups[0]!.rules.find((r) => r.alert === n)!;
  expect(by('ThoughtGateApprovalsWaitingTooLong').expr).toContain('> 600');
  expect(by('ThoughtGateSidecarConfigStale').for).toBe('30m');
  const r = await run(helmBin, ['template', 'thoughtgate', CHART, '--set', 'prometheusRule.thresholds.denyRatio=2']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('/prometheusRule/thresholds/denyRatio');
});

test('promtool check rules accepts the rendered groups; promtool test rules passes for every alert', async () => {
  const groups = await renderRules(['--set', 'webhook.certManager.enabled=true']);
  const check = await promtoolIn(groups, 'check', 'rules.yaml');
  expect({ code: check.code, out: check.stdout + check.stderr }).toMatchObject({ code: 0 });
  expect(check.stdout).toContain('SUCCESS: 10 rules found');
  const t = await promtoolIn(groups, 'test', 'rules-test.yaml');
  expect({ code: t.code, out: t.stdout + t.stderr }).toMatchObject({ code: 0 });

  // Every alert is tested firing and quiet.
  const tests = parse(readFileSync(RULES_TEST, 'utf8')) as {
    tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
  };
  const cases = tests.tests.flatMap((x) => x.alert_rule_test);
  for (const { alert } of groups.groups[0]!.rules) {
    const mine = cases.filter((c) => c.alertname === alert);
    expect({ alert, firing: mine.some((c) => c.exp_alerts.length > 0), quiet: mine.some((c) => c.exp_alerts.length === 0) }).toEqual({
      alert,
      firing: true,
      quiet: true,
    });
  }
}, 60_000);

test('the rules test can fail: a higher approval threshold breaks its expectations', async () => {
  const groups = await renderRules(['--set', 'webhook.certManager.enabled=true', '--set', 'prometheusRule.thresholds.approvalWaitSeconds=4000']);
  const t = await promtoolIn(groups, 'test', 'rules-test.yaml');
  expect(t.code).not.toBe(0);
  expect(t.stdout + t.stderr).toContain('ThoughtGateApprovalsWaitingTooLong');
}, 60_000);

test('every metric the rules read is registered by the sidecar or the operator', async () => {
  const registries = deployableRegistries();
  const known = new Set((await Promise.all(registries.map((r) => r.getMetricsAsJSON()))).flat().map((m) => m.name));
  const { groups } = await renderRules(['--set', 'webhook.certManager.enabled=true']);
  const used = new Set(groups[0]!.rules.flatMap((r) => [...r.expr.matchAll(/\bthoughtgate_[a-z_]+\b/g)].map((m) => m[0])));
  const missing = [...used].filter((n) => !known.has(n.replace(/_(bucket|sum|count)$/, '')));
  expect(missing).toEqual([]);
  expect(used.size).toBeGreaterThanOrEqual(11);
});

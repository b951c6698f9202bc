// The chart's Grafana dashboard (charts/thoughtgate/files/dashboard.json, rendered into a ConfigMap
// for the Grafana sidecar when grafanaDashboard.enabled) with a real helm and a real promtool
// (scripts/helm-tools.sh and scripts/promtool-tools.sh build them into ~/.cache/thoughtgate):
//  - off by default; on, one ConfigMap with the sidecar's label, namespace and annotations, whose
//    JSON is the file's;
//  - the dashboard's structure: unique panel ids, panels inside the 24-column grid and not
//    overlapping, every query on the `datasource` variable;
//  - every thoughtgate_* metric and every label it reads is in the real registries of the sidecar
//    and the operator (webhook and approvals included), and every fixed label value it matches is
//    one the code writes;
//  - `promtool check rules` accepts each panel query and variable selector as a recording rule, and
//    `promtool test rules` finds series for each, over input series produced by the real metric
//    objects (so a wrong metric or label name gives an empty panel, and fails);
//  - the rollout and denial panels give the numbers they claim on hand-written series.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge, Histogram } from 'prom-client';
import { stringify } from 'yaml';
import { run, type RunResult } from './cluster/cluster.js';
import { CHART, installHelm, type K8sObject, renderChart } from './support/helm.js';
import { builtPromtool } from './support/promtool.js';
import { deployableRegistries as registries, groupingLabels, metricOf, registeredMetrics, type RegisteredMetric, seriesRefs } from './support/promql.js';
import { ROOT } from '../test/support/processes.js';

const DASHBOARD = join(CHART, 'files', 'dashboard.json');
const OPNS = 'thoughtgate-system';
/** Labels Prometheus adds to every series from the scraped pod (PodMonitor of the agents, the chart's ServiceMonitor). */
const TARGET_LABELS = ['namespace', 'pod'];
/** Grafana's own interval variables, as a 1 h dashboard at 1 m resolution would set them. */
const GRAFANA_VARIABLES: Record<string, string> = { __rate_interval: '5m', __interval: '1m', __range: '1h' };
/** Where the code writes label values: the fixed words the dashboard matches must appear there. */
const CODE_DIRS = ['sidecar', 'operator', 'webhook', 'cmd', 'policy'];

interface Target {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  datasource?: { type?: string; uid?: string };
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}
/** A query of the dashboard, its variables replaced as Grafana would (query variables by a match-anything regex). */
interface Query {
  where: string;
  expr: string;
}

let helmBin: string;
let promtoolBin: string;
let dir: string;

const readDashboard = () => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const allPanels = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

const template = (args: string[]): Promise<K8sObject[]> => renderChart(helmBin, args, 'thoughtgate', OPNS);
const dashboardMaps = (objs: K8sObject[]) => objs.filter((o) => o.kind === 'ConfigMap' && o.data?.['thoughtgate.json'] !== undefined);

/** Replaces $var and ${var}: Grafana's intervals by fixed ones, the dashboard's query variables by `.+` (the series must carry the label). */
function substitute(expr: string, d: Dashboard): string {
  const queryVars = new Set(d.templating.list.filter((v) => v.type === 'query').map((v) => v.name));
  return expr.replace(/\$\{?(\w+)\}?/g, (all, name: string) => {
    if (GRAFANA_VARIABLES[name]) return GRAFANA_VARIABLES[name];
    if (queryVars.has(name)) return '.+';
    throw new Error(`unknown variable ${all} in ${expr}`);
  });
}

/** Every panel target's expression, and the series selector of every label_values() variable. */
function queries(d: Dashboard): Query[] {
  const out: Query[] = [];
  for (const p of allPanels(d)) for (const t of p.targets ?? []) out.push({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: substitute(t.expr, d) });
  for (const v of d.templating.list.filter((x) => x.type === 'query')) {
    const q = typeof v.query === 'string' ? v.query : v.query!.query;
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
    if (!m) throw new Error(`variable ${v.name}: not label_values(selector, label): ${q}`);
    // The selector must find series, and they must carry the label: `group by (label)` of it.
    out.push({ where: `variable ${v.name}`, expr: `group by (${m[2]}) (${substitute(m[1]!, d)})` });
  }
  return out;
}

/** What the registries do not have: unknown metrics, matchers and groupings on labels no series of the query carries. */
function registryProblems(qs: Query[], known: Map<string, RegisteredMetric>): string[] {
  const problems: string[] = [];
  for (const { where, expr } of qs) {
    const refs = seriesRefs(expr);
    if (refs.length === 0) problems.push(`${where}: reads no thoughtgate_* metric`);
    const carried = new Set(TARGET_LABELS);
    for (const ref of refs) {
      const m = metricOf(ref.name, known);
      if (!m) {
        problems.push(`${where}: ${ref.name} is not registered`);
        continue;
      }
      for (const l of m.labels) carried.add(l);
      for (const x of ref.matchers)
        if (!m.labels.includes(x.label) && !TARGET_LABELS.includes(x.label)) problems.push(`${where}: ${ref.name} has no label ${x.label}`);
    }
    for (const l of groupingLabels(expr)) if (!carried.has(l)) problems.push(`${where}: groups on ${l}, which none of its metrics has`);
  }
  return problems;
}

/** Every (metric, label) → the fixed values the queries match it with (= and !=). */
function fixedValues(qs: Query[], known: Map<string, RegisteredMetric>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const { expr } of qs) {
    for (const ref of seriesRefs(expr)) {
      const base = metricOf(ref.name, known)?.base ?? ref.name;
      for (const x of ref.matchers) {
        if (x.op !== '=' && x.op !== '!=') continue;
        const key = `${base} ${x.label}`;
        out.set(key, (out.get(key) ?? new Set()).add(x.value));
      }
    }
  }
  return out;
}

function* combinations(labels: string[], values: (l: string) => string[]): Generator<Record<string, string>> {
  if (labels.length === 0) {
    yield {};
    return;
  }
  const [first, ...rest] = labels;
  for (const v of values(first!)) for (const c of combinations(rest, values)) yield { [first!]: v, ...c };
}

/**
 * Input series for promtool, written by the real metric objects: each metric gets a series for
 * every combination of the values the queries match its labels with (plus `x`), then the
 * registries' exposition text becomes promtool series with a namespace and a pod label, counters
 * and histograms growing each minute, gauges at 1.
 */
async function inputSeries(qs: Query[]): Promise<{ series: string; values: string }[]> {
  const regs = registries();
  const known = await registeredMetrics(regs);
  const fixed = fixedValues(qs, known);
  for (const r of regs) {
    for (const m of await r.getMetricsAsJSON()) {
      const metric = r.getSingleMetric(m.name)!;
      const values = (l: string) => [...new Set([...(fixed.get(`${m.name} ${l}`) ?? []), 'x'])];
      for (const labels of combinations(known.get(m.name)!.labelNames, values)) {
        if (metric instanceof Counter) metric.inc(labels, 3);
        else if (metric instanceof Gauge) metric.set(labels, 1);
        else if (metric instanceof Histogram) metric.observe(labels, 0.5);
      }
    }
  }
  const out: { series: string; values: string }[] = [];
  for (const r of regs) {
    for (const line of (await r.metrics()).split('\n')) {
      const m = /^(thoughtgate_\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) continue;
      const type = metricOf(m[1]!, known) && known.get(metricOf(m[1]!, known)!.base)!.type;
      const labels = ['namespace="ns-a"', 'pod="pod-a"', ...(m[2] ? [m[2]] : [])].join(',');
      out.push({ series: `${m[1]}{${labels}}`, values: type === 'gauge' ? `${m[3]}x30` : `0+${m[3]}x30` });
    }
  }
  return out;
}

/** `promtool check rules` on the queries written as recording rules. */
function promtoolCheck(qs: Query[]): Promise<RunResult> {
  const rules = { groups: [{ name: 'thoughtgate-dashboard', rules: qs.map((q, i) => ({ record: `thoughtgate_dashboard:query_${i}`, expr: q.expr })) }] };
  writeFileSync(join(dir, 'rules.yaml'), stringify(rules));
  return run(promtoolBin, ['check', 'rules', join(dir, 'rules.yaml')]);
}

/** `promtool test rules` with these test groups (input_series and promql_expr_test each), over the queries as recording rules. */
async function promtoolTest(qs: Query[], tests: object[]): Promise<RunResult> {
  await promtoolCheck(qs);
  writeFileSync(join(dir, 'rules-test.yaml'), stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }, { lineWidth: 0 }));
  return run(promtoolBin, ['test', 'rules', join(dir, 'rules-test.yaml')]);
}

/** A test group that expects every query to return series at 20 m, over inputSeries(). */
async function everyQueryReturnsSeries(qs: Query[]): Promise<object> {
  return {
    name: 'every dashboard query returns series',
    interval: '1m',
    input_series: await inputSeries(qs),
    // count(…) > bool 0 is 1 when the query returns anything, nothing when it returns nothing.
    promql_expr_test: qs.map((q) => ({ expr: `count(${q.expr}) > bool 0`, eval_time: '20m', exp_samples: [{ labels: '{}', value: 1 }] })),
  };
}

/** Non-test TypeScript under the directories that write metrics. */
function codeText(): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) files.push(p);
    }
  };
  for (const d of CODE_DIRS) walk(join(ROOT, d));
  return files.map((f) => readFileSync(f, 'utf8')).join('\n');
}

beforeAll(async () => {
  promtoolBin = await builtPromtool();
  helmBin = await installHelm();
  dir = mkdtempSync(join(tmpdir(), 'tg-chart-dashboard-'));
}, 15 * 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('no dashboard by default; enabled, one ConfigMap labelled for the Grafana sidecar that holds the dashboard file', async () => {
  expect(dashboardMaps(await template([]))).toEqual([]);
  const lint = await run(helmBin, ['lint', '--strict', CHART, '--set', 'grafanaDashboard.enabled=true']);
  expect({ code: lint.code, out: lint.stdout + lint.stderr }).toMatchObject({ code: 0 });

  const [byDefault, ...more] = dashboardMaps(await template(['--set', 'grafanaDashboard.enabled=true']));
  expect(more).toEqual([]);
  expect(byDefault!.metadata).toMatchObject({
    name: 'thoughtgate-dashboard',
    namespace: OPNS,
    labels: { grafana_dashboard: '1', 'app.kubernetes.io/part-of': 'thoughtgate' },
  });
  expect(byDefault!.metadata.annotations).toBeUndefined();
  const text = byDefault!.data['thoughtgate.json'] as string;
  expect(JSON.parse(text)).toEqual(readDashboard());
  // Client-side `kubectl apply` of a rendered manifest keeps a copy in an annotation of at most 256 KiB.
  expect(Buffer.byteLength(text)).toBeLessThan(256 * 1024);

  const [custom] = dashboardMaps(
    await template([
      '--set',
      'grafanaDashboard.enabled=true',
      '--set',
      'grafanaDashboard.namespace=monitoring',
      '--set',
      'grafanaDashboard.labelKey=example.com/dashboard',
      '--set',
      'grafanaDashboard.labelValue=1',
      '--set',
      'grafanaDashboard.labels.team=platform',
      '--set',
      'grafanaDashboard.annotations.grafana_folder=ThoughtGate',
    ]),
  );
  expect(custom!.metadata).toMatchObject({
    namespace: 'monitoring',
    labels: { 'example.com/dashboard': '1', team: 'platform' },
    annotations: { grafana_folder: 'ThoughtGate' },
  });
  expect(custom!.metadata.labels!.grafana_dashboard).toBeUndefined();
});

test('the values schema refuses a label key or a namespace Kubernetes would refuse', async () => {
  const bad: [string, string][] = [
    ['labelKey', 'not a key'],
    ['namespace', 'Monitoring'],
  ];
  for (const [key, value] of bad) {
    const r = await run(helmBin, ['template', 'thoughtgate', CHART, '--set', 'grafanaDashboard.enabled=true', '--set', `grafanaDashboard.${key}=${value}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`/grafanaDashboard/${key}`);
  }
});

test('structure: unique panel ids, no overlapping panels, every query on the datasource variable', () => {
  const d = readDashboard();
  expect(d).toMatchObject({ uid: 'thoughtgate', title: 'ThoughtGate' });
  expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
  expect(d.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
  for (const v of d.templating.list.filter((x) => x.type === 'query'))
    expect({ v: v.name, ds: v.datasource }).toEqual({ v: v.name, ds: { type: 'prometheus', uid: '${datasource}' } });

  const panels = allPanels(d);
  const ids = panels.map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  const cells = new Map<string, number>();
  for (const p of panels) {
    const { x, y, w, h } = p.gridPos;
    expect({ id: p.id, inside: x >= 0 && w > 0 && h > 0 && x + w <= 24 }).toEqual({ id: p.id, inside: true });
    for (let i = x; i < x + w; i++)
      for (let j = y; j < y + h; j++) {
        const other = cells.get(`${i},${j}`);
        expect({ id: p.id, overlaps: other }).toEqual({ id: p.id, overlaps: undefined });
        cells.set(`${i},${j}`, p.id);
      }
  }
  for (const p of panels.filter((x) => x.type !== 'row')) {
    expect({ id: p.id, ds: p.datasource, targets: (p.targets ?? []).length > 0 }).toEqual({
      id: p.id,
      ds: { type: 'prometheus', uid: '${datasource}' },
      targets: true,
    });
    for (const t of p.targets!)
      expect({ id: p.id, ds: t.datasource, expr: typeof t.expr }).toEqual({ id: p.id, ds: { type: 'prometheus', uid: '${datasource}' }, expr: 'string' });
  }
});

test('every metric and label the dashboard reads is registered by the sidecar or the operator, with the values the code writes', async () => {
  const qs = queries(readDashboard());
  const known = await registeredMetrics(registries());
  expect(registryProblems(qs, known)).toEqual([]);
  const used = new Set(qs.flatMap((q) => seriesRefs(q.expr).map((r) => metricOf(r.name, known)?.base)));
  expect(used.size).toBeGreaterThanOrEqual(35);

  // A fixed value (decision="deny", result="error") must be one the code writes as that label.
  const code = codeText();
  const unwritten = [...fixedValues(qs, known)].flatMap(([key, values]) => {
    const label = key.split(' ')[1]!;
    return [...values].filter((v) => !code.includes(`${label}: '${v}'`)).map((v) => `${key}="${v}"`);
  });
  expect(unwritten).toEqual([]);
});

test('promtool check rules accepts every query; promtool test rules finds series for each', async () => {
  const qs = queries(readDashboard());
  const check = await promtoolCheck(qs);
  expect({ code: check.code, out: check.stdout + check.stderr }).toMatchObject({ code: 0 });
  expect(check.stdout).toContain(`SUCCESS: ${qs.length} rules found`);
  const t = await promtoolTest(qs, [await everyQueryReturnsSeries(qs)]);
  expect({ code: t.code, out: t.stdout + t.stderr }).toMatchObject({ code: 0 });
}, 60_000);

test('the checks can fail: a label the metric does not have, a metric that does not exist, a syntax error', async () => {
  const qs = queries(readDashboard());
  const known = await registeredMetrics(registries());
  const i = qs.findIndex((q) => q.expr.includes('thoughtgate_sidecar_upstream_errors_total{'));
  const wrongLabel = qs.map((q, j) => (j === i ? { ...q, expr: q.expr.replace('source=~', 'upstream=~') } : q));
  expect(registryProblems(wrongLabel, known)).toEqual([`${qs[i]!.where}: thoughtgate_sidecar_upstream_errors_total has no label upstream`]);
  const t = await promtoolTest(wrongLabel, [await everyQueryReturnsSeries(wrongLabel)]);
  expect(t.code).not.toBe(0);
  expect(t.stdout + t.stderr).toContain('upstream=~');

  const wrongName = [{ where: 'made up', expr: 'sum by (kind) (rate(thoughtgate_sidecar_upstream_failures_total[5m]))' }];
  expect(registryProblems(wrongName, known)).toEqual([
    'made up: thoughtgate_sidecar_upstream_failures_total is not registered',
    'made up: groups on kind, which none of its metrics has',
  ]);

  const check = await promtoolCheck([{ where: 'broken', expr: 'sum by (kind) rate(thoughtgate_sidecar_upstream_errors_total[5m])' }]);
  expect(check.code).not.toBe(0);
}, 60_000);

test("the rollout and denial panels count what they say: sidecars off their policy's common hash, hashes per policy, share denied", async () => {
  const qs = queries(readDashboard());
  const expr = (title: string) => qs.find((q) => q.where.includes(`"${title}" A`))!.expr;
  const info = (ns: string, pod: string, hash: string, policy = 'gp') => ({
    series: `thoughtgate_sidecar_config_info{namespace="${ns}",pod="${pod}",hash="${hash}/${policy}",policy="${policy}"}`,
    values: '1x30',
  });
  const calls = (decision: string, perMinute: number) => ({
    series: `thoughtgate_sidecar_requests_total{namespace="agents",pod="a",source="s",method="tools/call",decision="${decision}",gate="rules"}`,
    values: `0+${perMinute}x30`,
  });
  const t = await promtoolTest(qs, [
    {
      name: 'agents: two sidecars on one hash and one on another; calm: converged; a quarter of the calls denied',
      interval: '1m',
      input_series: [
        info('agents', 'a', 'new'),
        info('agents', 'b', 'new'),
        info('agents', 'c', 'old'),
        info('calm', 'a', 'same'),
        info('calm', 'b', 'same'),
        // two GovernancePolicies select different pods: different hashes by design, each converged
        info('split', 'a', 'x', 'readers'),
        info('split', 'b', 'y', 'writers'),
        calls('deny', 60),
        calls('forward', 180),
      ],
      promql_expr_test: [
        { expr: expr('Sidecars off the common config'), eval_time: '10m', exp_samples: [{ labels: '{}', value: 1 }] },
        {
          expr: expr('Config hashes per GovernancePolicy'),
          eval_time: '10m',
          exp_samples: [
            { labels: '{namespace="agents",policy="gp"}', value: 2 },
            { labels: '{namespace="calm",policy="gp"}', value: 1 },
            { labels: '{namespace="split",policy="readers"}', value: 1 },
            { labels: '{namespace="split",policy="writers"}', value: 1 },
          ],
        },
        {
          expr: expr('Sidecars per config hash'),
          eval_time: '10m',
          exp_samples: [
            { labels: '{namespace="agents",policy="gp",hash="new/gp"}', value: 2 },
            { labels: '{namespace="agents",policy="gp",hash="old/gp"}', value: 1 },
            { labels: '{namespace="calm",policy="gp",hash="same/gp"}', value: 2 },
            { labels: '{namespace="split",policy="readers",hash="x/readers"}', value: 1 },
            { labels: '{namespace="split",policy="writers",hash="y/writers"}', value: 1 },
          ],
        },
        { expr: expr('Denied'), eval_time: '10m', exp_samples: [{ labels: '{}', value: 0.25 }] },
      ],
    },
  ]);
  expect({ code: t.code, out: t.stdout + t.stderr }).toMatchObject({ code: 0 });
}, 60_000);

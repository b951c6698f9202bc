// What a PromQL expression of ours says about metrics, read lexically: the thoughtgate_* series it
// selects with their label matchers, and the labels it groups or joins on. Enough for the chart
// tests to compare an expression with the real registries; promtool does the actual parsing.
import type { Registry } from 'prom-client';
import { approvalMetrics as operatorApprovalMetrics, createOperatorMetrics } from '../../operator/metrics.js';
import { approvalMetrics as sidecarApprovalMetrics } from '../../sidecar/approvals/runtime.js';
import { createSidecarMetrics } from '../../sidecar/metrics.js';

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface SeriesRef {
  /** The name as written (a histogram's _bucket, _sum or _count included). */
  name: string;
  matchers: Matcher[];
}

const SERIES = /\b(thoughtgate_[a-z0-9_]+)\b(?:\s*\{([^}]*)\})?/g;
const MATCHER = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

export function seriesRefs(expr: string): SeriesRef[] {
  return [...expr.matchAll(SERIES)].map((m) => ({
    name: m[1]!,
    matchers: [...(m[2] ?? '').matchAll(MATCHER)].map((x) => ({ label: x[1]!, op: x[2] as Matcher['op'], value: x[3]! })),
  }));
}

/** Labels named in by (…), without (…), on (…), ignoring (…), group_left (…), group_right (…). */
export function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(GROUPING)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean),
  );
}

/** Fresh registries as the deployables fill them: the sidecar's (approvals included) and the operator's (webhook and approvals included). */
export function deployableRegistries(): Registry[] {
  const sidecar = createSidecarMetrics().registry;
  const operator = createOperatorMetrics().registry;
  sidecarApprovalMetrics(sidecar);
  operatorApprovalMetrics(operator);
  return [sidecar, operator];
}

export interface RegisteredMetric {
  type: string;
  labelNames: string[];
}

/** name → type and label names, read from prom-client registries (labelNames is set on every metric, though not typed). */
export async function registeredMetrics(registries: Registry[]): Promise<Map<string, RegisteredMetric>> {
  const out = new Map<string, RegisteredMetric>();
  for (const r of registries) {
    for (const { name, type } of await r.getMetricsAsJSON()) {
      const metric = r.getSingleMetric(name) as unknown as { labelNames?: string[] };
      out.set(name, { type: String(type), labelNames: [...(metric.labelNames ?? [])] });
    }
  }
  return out;
}

/** The registered metric a series name belongs to (a histogram's _bucket/_sum/_count to the histogram), with the labels its series carry. */
export function metricOf(name: string, known: Map<string, RegisteredMetric>): { base: string; labels: string[] } | undefined {
  const direct = known.get(name);
  if (direct) return { base: name, labels: direct.labelNames };
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const h = m ? known.get(m[1]!) : undefined;
  if (!m || h?.type !== 'histogram') return undefined;
  return { base: m[1]!, labels: m[2] === 'bucket' ? [...h.labelNames, 'le'] : h.labelNames };
}

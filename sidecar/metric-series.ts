// A histogram series observed on every request, found once and then updated in place.
// prom-client's observe(labels, v) makes a closure, validates the label names and builds the
// series' hash string on every call: the sidecar's two per-request histograms cost ~3 µs of a
// forwarded request that way (docs/performance.md, CPU per request). The record updated here is
// prom-client's own (its `hashMap` entry), so /metrics reads the same; metric-series.test.ts holds
// this to prom-client's observe, and any series this cannot find is observed by prom-client.
import type { Histogram } from 'prom-client';

interface Series {
  labels: Record<string, string | number>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/** What prom-client 15 keeps of a histogram (lib/histogram.js). */
interface HistogramState {
  hashMap: Record<string, Series>;
  upperBounds: readonly number[];
}

interface Found {
  hash: string;
  series: Series;
}

function sameLabels(a: Record<string, string | number>, b: Record<string, string>): boolean {
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  for (const k of keys) if (String(a[k]) !== b[k]) return false;
  return true;
}

/**
 * observe for one histogram of one or two labels: `a` (and `b`) are the label values in the order
 * of its labelNames. The series is cached by them in nested maps: nothing is built per call.
 */
export function seriesObserver(h: Histogram<string>): (value: number, a: string, b?: string) => void {
  const state = h as unknown as HistogramState & { labelNames: readonly string[] };
  const names = state.labelNames;
  const root = new Map<string, Found | Map<string, Found>>();
  return (value, a, b) => {
    let level = root as Map<string, Found | Map<string, Found>>;
    let key = a;
    if (names.length === 2) {
      let inner = root.get(a) as Map<string, Found> | undefined;
      if (inner === undefined) root.set(a, (inner = new Map()));
      level = inner;
      key = b!;
    }
    const found = level.get(key) as Found | undefined;
    // Stale after a reset (prom-client replaces hashMap), or never found: prom-client's own way.
    if (found === undefined || state.hashMap[found.hash] !== found.series || !Number.isFinite(value)) {
      const labels: Record<string, string> = { [names[0]!]: a };
      if (names.length === 2) labels[names[1]!] = b!;
      h.observe(labels, value);
      for (const hash in state.hashMap) {
        const series = state.hashMap[hash]!;
        if (sameLabels(series.labels, labels)) return void level.set(key, { hash, series });
      }
      return;
    }
    const s = found.series;
    s.sum += value;
    s.count += 1;
    // prom-client's findBound: the first upper bound at or above the value (none: only +Inf counts it).
    const bounds = state.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        s.bucketValues[bounds[i]!]! += 1;
        return;
      }
    }
  };
}

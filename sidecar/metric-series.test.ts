// seriesObserver against prom-client's own observe: the same observations give the same /metrics.
import { Histogram, Registry } from 'prom-client';
import { seriesObserver } from './metric-series.js';

const BUCKETS = [0.0001, 0.00025, 0.001, 0.01, 0.1];

function pair(labelNames: string[]): { ours: Histogram<string>; theirs: Histogram<string>; texts: () => Promise<[string, string]> } {
  const [r1, r2] = [new Registry(), new Registry()];
  const make = (r: Registry) => new Histogram({ name: 'h_seconds', help: 'h', labelNames, buckets: BUCKETS, registers: [r] });
  const ours = make(r1);
  const theirs = make(r2);
  return { ours, theirs, texts: async () => [await r1.metrics(), await r2.metrics()] };
}

/** A deterministic spread: exact bounds, between them, above all, zero and negatives. */
function values(n: number): number[] {
  const out: number[] = [];
  let x = 7;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const pick = x % 5;
    out.push(pick === 0 ? BUCKETS[x % BUCKETS.length]! : pick === 1 ? (x % 1000) / 1e6 : pick === 2 ? (x % 100) / 10 : pick === 3 ? 0 : -(x % 10) / 1e4);
  }
  return out;
}

test('two labels: the same series, buckets, sums and counts as prom-client', async () => {
  const { ours, theirs, texts } = pair(['source', 'decision']);
  const observe = seriesObserver(ours);
  const sources = ['a', 'b', 'unknown'];
  const decisions = ['forward', 'deny'];
  values(3000).forEach((v, i) => {
    const [s, d] = [sources[i % 3]!, decisions[(i >> 1) % 2]!];
    observe(v, s, d);
    theirs.observe({ source: s, decision: d }, v);
  });
  const [a, b] = await texts();
  expect(a).toBe(b);
  expect(a).toContain('h_seconds_count{source="unknown",decision="deny"}');
});

test('one label, a series prom-client made first, and a reset in between', async () => {
  const { ours, theirs, texts } = pair(['source']);
  const observe = seriesObserver(ours);
  ours.observe({ source: 'a' }, 0.5);
  theirs.observe({ source: 'a' }, 0.5);
  for (const v of values(500)) {
    observe(v, 'a');
    theirs.observe({ source: 'a' }, v);
  }
  ours.reset();
  theirs.reset();
  for (const v of values(200)) {
    observe(v, 'a');
    theirs.observe({ source: 'a' }, v);
  }
  const [a, b] = await texts();
  expect(a).toBe(b);
  expect(a).toContain('h_seconds_count{source="a"} 200');
});

test('a value that is not a finite number is refused as prom-client refuses it', () => {
  const { ours } = pair(['source']);
  const observe = seriesObserver(ours);
  observe(0.001, 'a');
  expect(() => observe(Number.NaN, 'a')).toThrow(TypeError);
  expect(() => observe(Number.POSITIVE_INFINITY, 'a')).toThrow(TypeError);
});

// A real trace collector for tests: Jaeger v2 (an OpenTelemetry Collector distribution), built once
// by scripts/jaeger-tools.sh, receiving OTLP/HTTP and answering its query HTTP API, with in-memory
// storage, on free ports.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT, run, type Proc } from './processes.js';

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  /** Epoch microseconds. */
  startTime: number;
  references: { refType: 'CHILD_OF' | 'FOLLOWS_FROM'; traceID: string; spanID: string }[];
  tags: { key: string; type: string; value: unknown }[];
  processID: string;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  /** processID → the process (service) that sent the span. */
  processes: Record<string, { serviceName: string }>;
}

export interface Jaeger {
  /** The OTLP/HTTP base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT). */
  otlp: string;
  /** The spans of a trace stored so far ([] when none). */
  trace(traceId: string): Promise<JaegerSpan[]>;
  /** The traces with a span of `service` (and `operation`, when given) stored so far, as the UI's search finds them. */
  search(q: { service: string; operation?: string; limit?: number }): Promise<JaegerTrace[]>;
  close(): Promise<void>;
}

export async function startJaeger(): Promise<Jaeger> {
  const bin = execFileSync(join(ROOT, 'scripts/jaeger-tools.sh'), ['install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
  const [query, grpc, otlp] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'tg-jaeger-'));
  const config = join(dir, 'jaeger.yaml');
  // No other listener: the collector's own telemetry is off (it would bind a fixed port).
  writeFileSync(
    config,
    `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces: { receivers: [otlp], exporters: [jaeger_storage_exporter] }
  telemetry: { metrics: { level: none }, logs: { level: warn } }
extensions:
  jaeger_query:
    storage: { traces: mem }
    http: { endpoint: "127.0.0.1:${query}" }
    grpc: { endpoint: "127.0.0.1:${grpc}" }
  jaeger_storage:
    backends: { mem: { memory: { max_traces: 10000 } } }
receivers:
  otlp:
    protocols: { http: { endpoint: "127.0.0.1:${otlp}" } }
exporters:
  jaeger_storage_exporter: { trace_storage: mem }
`,
  );
  const proc: Proc = run(bin, ['--config', `file:${config}`]);
  const api = `http://127.0.0.1:${query}`;
  const until = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(`${api}/api/services`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (proc.child.exitCode !== null || Date.now() > until) throw new Error(`jaeger did not start: ${proc.err()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    otlp: `http://127.0.0.1:${otlp}`,
    async trace(traceId) {
      const r = await fetch(`${api}/api/traces/${traceId}`);
      if (r.status === 404) return [];
      const body = (await r.json()) as { data: { spans: JaegerSpan[] }[] | null };
      return body.data?.[0]?.spans ?? [];
    },
    async search(q) {
      const params = new URLSearchParams({ service: q.service, limit: String(q.limit ?? 100), lookback: '1h' });
      if (q.operation) params.set('operation', q.operation);
      const r = await fetch(`${api}/api/traces?${params}`);
      if (!r.ok) throw new Error(`jaeger search: ${r.status} ${await r.text()}`);
      return ((await r.json()) as { data: JaegerTrace[] | null }).data ?? [];
    },
    async close() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

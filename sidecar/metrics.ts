// Prometheus metrics of the sidecar, named thoughtgate_sidecar_<metric>_<unit>.
// A registry per sidecar instance (not prom-client's global one) so tests can run several.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

// Added latency is sub-millisecond when healthy; upstream latency spans ms to minutes.
const ADDED_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];
const UPSTREAM_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createSidecarMetrics() {
  const registry = new Registry();
  const p = 'thoughtgate_sidecar_';
  return {
    registry,
    requests: new Counter({
      name: `${p}requests_total`,
      help: 'JSON-RPC messages and HTTP requests handled, by source, MCP method, decision and deciding gate',
      labelNames: ['source', 'method', 'decision', 'gate'] as const,
      registers: [registry],
    }),
    addedLatency: new Histogram({
      name: `${p}added_latency_seconds`,
      help: 'Time ThoughtGate adds to a request: reading, deciding and dispatching it, plus relaying the response head',
      labelNames: ['source', 'decision'] as const,
      buckets: ADDED_BUCKETS,
      registers: [registry],
    }),
    upstreamLatency: new Histogram({
      name: `${p}upstream_latency_seconds`,
      help: 'Time from dispatching a request upstream to the upstream response head',
      labelNames: ['source'] as const,
      buckets: UPSTREAM_BUCKETS,
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: `${p}upstream_errors_total`,
      help: 'Upstream failures by source and kind (connect, timeout, reset, invalid_response)',
      labelNames: ['source', 'kind'] as const,
      registers: [registry],
    }),
    configReloads: new Counter({
      name: `${p}config_reloads_total`,
      help: 'Configuration loads by result (success, error)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    configInfo: new Gauge({
      name: `${p}config_info`,
      help: 'The loaded configuration: 1 for its content hash and generation',
      labelNames: ['hash'] as const,
      registers: [registry],
    }),
    configLastReload: new Gauge({
      name: `${p}config_last_reload_success_timestamp_seconds`,
      help: 'When the current configuration was loaded',
      registers: [registry],
    }),
    openStreams: new Gauge({
      name: `${p}open_streams`,
      help: 'Responses being streamed to clients right now (SSE and long JSON), by source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    /** Requests refused before routing; labels are fixed sets (listener: proxy|admin, check: host|origin). */
    httpRefused: new Counter({
      name: `${p}http_refused_total`,
      help: 'HTTP requests refused by the listener checks: a Host that is not the sidecar (DNS rebinding), an Origin not allowed',
      labelNames: ['listener', 'check'] as const,
      registers: [registry],
    }),
    upstreamConnections: new Counter({
      name: `${p}upstream_connections_opened_total`,
      help: 'Upstream connections opened for MCP sources; spare="true" when a pre-connected spare served the request (no connect on its path)',
      labelNames: ['spare'] as const,
      registers: [registry],
    }),
    upstreamUp: new Gauge({
      name: `${p}upstream_up`,
      help: 'Whether the last reachability probe of the source succeeded (1) or not (0)',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
  };
}

export type SidecarMetrics = ReturnType<typeof createSidecarMetrics>;

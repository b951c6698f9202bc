// Prometheus metrics of the sidecar, named thoughtgate_sidecar_<metric>_<unit>.
// A registry per sidecar instance (not prom-client's global one) so tests can run several.
import { isA2aMethod } from '../policy/gates/a2a-methods.js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { logLinesDroppedCounter } from '../lib/log-metric.js';

// Added latency is sub-millisecond when healthy; upstream latency spans ms to minutes.
const ADDED_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];
const UPSTREAM_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

// Label values an agent can choose would make a new series each, for the life of the process
// (a flood of made-up methods grew RSS by ~170 MiB). Every label comes from a closed set: the MCP
// methods below (else `other`), configured source names (else `unknown`), and fixed words in code.
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
  'tasks/get',
  'tasks/result',
  'tasks/cancel',
  'tasks/list',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/message',
  'notifications/roots/list_changed',
  'notifications/resources/updated',
  'notifications/resources/list_changed',
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/tasks/status',
  'notifications/elicitation/complete',
]);

/** The `method` label of a JSON-RPC method: itself when MCP defines it (or an A2A canonical method name), else `other`. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) || isA2aMethod(method) ? method : 'other';
}

/** The `source` label before a request is matched to a configured source. */
export const UNKNOWN_SOURCE_LABEL = 'unknown';

/** Where buffered bytes are held (the `what` label of the buffer metrics). */
export type BufferUse = 'request_body' | 'filtered_response' | 'sse_event';

/** The capture listeners (both only in a captured pod). */
export type CaptureListener = 'transparent' | 'tls';

/**
 * Why a capture listener refused, the `reason` label of capture_refused_total. request: no Host,
 * several, a malformed one, absolute-form, CONNECT; bad_request: not HTTP at all; denied: the
 * destination is a source's other path or not in egress.allow (or in egress.deny); unavailable: no
 * config, draining, the name does not resolve; timeout: headers or ClientHello too slow; the TLS
 * reasons are sni.ts's (not_tls, malformed, too_large, no_sni) and ip_literal (SNI names no host).
 */
export const CAPTURE_REFUSALS = [
  'request',
  'bad_request',
  'denied',
  'unavailable',
  'timeout',
  'max_connections',
  'pipelining',
  'not_tls',
  'malformed',
  'too_large',
  'no_sni',
  'ip_literal',
] as const;
export type CaptureRefusal = (typeof CAPTURE_REFUSALS)[number];

export function createSidecarMetrics() {
  const registry = new Registry();
  const p = 'thoughtgate_sidecar_';
  return {
    registry,
    requests: new Counter({
      name: `${p}requests_total`,
      help: 'JSON-RPC messages and HTTP requests handled, by source, method (MCP, or A2A canonical), decision, deciding gate, rule (expose for gate 1, none when no rule decided) and protocol (mcp, a2a)',
      labelNames: ['source', 'method', 'decision', 'gate', 'rule', 'protocol'] as const,
      registers: [registry],
    }),
    addedLatency: new Histogram({
      name: `${p}added_latency_seconds`,
      help: 'Time ThoughtGate adds to a request: reading, deciding and dispatching it, plus relaying the response head',
      labelNames: ['source', 'decision', 'protocol'] as const,
      buckets: ADDED_BUCKETS,
      registers: [registry],
    }),
    upstreamLatency: new Histogram({
      name: `${p}upstream_latency_seconds`,
      help: 'Time from dispatching a request upstream to the upstream response head',
      labelNames: ['source', 'protocol'] as const,
      buckets: UPSTREAM_BUCKETS,
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: `${p}upstream_errors_total`,
      help: 'Upstream failures by source and kind (connect, timeout, reset, invalid_response)',
      labelNames: ['source', 'kind', 'protocol'] as const,
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
      help: 'The loaded configuration: 1 for its content hash, and the GovernancePolicy it comes from (standalone: none)',
      labelNames: ['hash', 'policy'] as const,
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
    dnsLookups: new Counter({
      name: `${p}dns_lookups_total`,
      help: 'Forward-proxy name lookups by result (hit: cached, miss: asked the resolver, error, timeout, busy: too many in flight)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    dnsCacheEntries: new Gauge({
      name: `${p}dns_cache_entries`,
      help: 'Names in the forward-proxy DNS cache (bounded)',
      registers: [registry],
    }),
    egressPools: new Gauge({
      name: `${p}egress_pools`,
      help: 'Connection pools to forward-proxy egress destinations (bounded; the oldest is closed past the bound)',
      registers: [registry],
    }),
    inflightIds: new Gauge({
      name: `${p}inflight_request_ids`,
      help: 'Request id keys held for requests in flight in an MCP session (a reused id is refused while held)',
      registers: [registry],
    }),
    /** Requests refused before routing; labels are fixed sets (listener: proxy|admin|transparent, check: host|origin). */
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
    connections: new Gauge({
      name: `${p}connections`,
      help: 'Client connections open on the proxy port right now (server.maxConnections bounds them)',
      registers: [registry],
    }),
    connectionsRejected: new Counter({
      name: `${p}connections_rejected_total`,
      help: 'Client connections closed by the sidecar: at accept because server.maxConnections were open (max_connections), or for pipelining more than 16 requests at once (pipelining)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    requestTimeouts: new Counter({
      name: `${p}request_timeouts_total`,
      help: 'Requests timed out, by phase: headers (server.headersTimeout) or body (server.requestBodyTimeout) did not arrive (408); response: the client did not read an edited answer within server.slowReaderTimeout (disconnected)',
      labelNames: ['phase'] as const,
      registers: [registry],
    }),
    bufferedBytes: new Gauge({
      name: `${p}buffered_bytes`,
      help: 'Bytes held in memory right now for request bodies, filtered responses and SSE events being edited (limits.maxBufferedBytes bounds their sum)',
      registers: [registry],
    }),
    bufferRejections: new Counter({
      name: `${p}buffer_rejections_total`,
      help: 'Requests and responses refused with -32022 because limits.maxBufferedBytes were in use, by what was being buffered',
      labelNames: ['what'] as const,
      registers: [registry],
    }),
    captureConnections: new Counter({
      name: `${p}capture_connections_total`,
      help: 'Connections accepted by the capture listeners (listener: transparent, tls), which only a captured pod has',
      labelNames: ['listener'] as const,
      registers: [registry],
    }),
    captureOpenConnections: new Gauge({
      name: `${p}capture_open_connections`,
      help: 'Connections open on each capture listener right now (server.maxConnections bounds each)',
      labelNames: ['listener'] as const,
      registers: [registry],
    }),
    captureRefused: new Counter({
      name: `${p}capture_refused_total`,
      help: 'Requests and connections the capture listeners refused, by listener and reason (a fixed set: CAPTURE_REFUSALS in sidecar/metrics.ts)',
      labelNames: ['listener', 'reason'] as const,
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: `${p}rate_limited_total`,
      help: 'Calls refused with -32026 by rateLimits, by source and limit (configured names, or rateLimits[<index>])',
      labelNames: ['source', 'rule'] as const,
      registers: [registry],
    }),
    rateLimitBuckets: new Gauge({
      name: `${p}rate_limit_buckets`,
      help: 'Token buckets the rateLimits keep (one per limit and source; with per: target one per limit, source and name called, at most 10 000)',
      registers: [registry],
    }),
    // Audit mode (sidecar/audit/): every label comes from the config (policy, source, rule names or
    // rules[<i>], defaultAction, expose) or a fixed set (gate, would, method), never from the agent.
    auditDecisions: new Counter({
      name: `${p}audit_decisions_total`,
      help: 'Calls forwarded because enforcement is audit that enforce would have denied, hidden or sent for approval, by policy (GovernancePolicy; empty standalone), source, gate, rule and would (deny, hide, approve)',
      labelNames: ['policy', 'source', 'gate', 'rule', 'would'] as const,
      registers: [registry],
    }),
    auditListItems: new Counter({
      name: `${p}audit_list_items_total`,
      help: 'List entries (tools, resources, templates, prompts) passed unfiltered because enforcement is audit that enforce would have hidden, by policy, source and list method',
      labelNames: ['policy', 'source', 'method'] as const,
      registers: [registry],
    }),
    auditEventWrites: new Counter({
      name: `${p}audit_event_writes_total`,
      help: 'Kubernetes Event writes of audit counts (cluster only), by result: created, patched, failed',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    auditEventsDropped: new Counter({
      name: `${p}audit_events_dropped_total`,
      help: 'Audit occurrences not reported in an Event because the sidecar already keeps its maximum of distinct audit Events (they are still in audit_decisions_total)',
      registers: [registry],
    }),
    batchesRejected: new Counter({
      name: `${p}batches_rejected_total`,
      help: 'JSON-RPC batches refused with -32021 because they held more than limits.maxBatchMessages messages',
      registers: [registry],
    }),
    tracingSpansDropped: new Counter({
      name: `${p}tracing_spans_dropped_total`,
      help: 'Spans dropped because the export queue (OTEL_BSP_MAX_QUEUE_SIZE) was full: the collector is slow or unreachable',
      registers: [registry],
    }),
    logLinesDropped: logLinesDroppedCounter(p, registry),
  };
}

export type SidecarMetrics = ReturnType<typeof createSidecarMetrics>;

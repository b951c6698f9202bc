// Prometheus metrics of the operator, named thoughtgate_operator_<metric>_<unit>.
import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { logLinesDroppedCounter } from '../lib/log-metric.js';
import { socketMetrics, type SocketMetrics } from '../slack/socket-metrics.js';

export function createOperatorMetrics() {
  const registry = new Registry();
  const p = 'thoughtgate_operator_';
  return {
    registry,
    reconciles: new Counter({
      name: `${p}reconciles_total`,
      help: 'Reconciles by kind and result (success, error)',
      labelNames: ['kind', 'result'] as const,
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: `${p}reconcile_duration_seconds`,
      help: 'Reconcile duration by kind',
      labelNames: ['kind'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    admissions: new Counter({
      name: `${p}admission_requests_total`,
      help: 'Pod admission reviews by outcome (injected, skipped, denied, invalid, error)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    admissionDuration: new Histogram({
      name: `${p}admission_duration_seconds`,
      help: 'Time the webhook spends on one admission review',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry],
    }),
    leader: new Gauge({ name: `${p}leader`, help: '1 while this replica holds the leader lease', registers: [registry] }),
    informerRestarts: new Counter({
      name: `${p}informer_restarts_total`,
      help: 'Watches restarted after an error, by resource',
      labelNames: ['resource'] as const,
      registers: [registry],
    }),
    informerDropped: new Counter({
      name: `${p}informer_dropped_total`,
      help: 'Objects an informer left out of its cache, by resource and reason (filtered: not what it keeps; limit: the cache was full)',
      labelNames: ['resource', 'reason'] as const,
      registers: [registry],
    }),
    informerObjects: new Gauge({
      name: `${p}informer_objects`,
      help: "Objects in an informer's cache, by resource (as of its last change)",
      labelNames: ['resource'] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: `${p}queue_depth`, help: 'Keys waiting or being reconciled', registers: [registry] }),
    webhookCertificateExpiry: new Gauge({
      name: `${p}webhook_certificate_expiry_timestamp_seconds`,
      help: "When the TLS certificate this replica's webhook serves expires (its notAfter), in seconds since the epoch",
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

/**
 * Wraps the webhook server's certificate source (polled every few seconds) so that `gauge` holds
 * the notAfter of the certificate it serves; a certificate is parsed once, when it changes. The
 * first certificate of a chain (cert-manager's tls.crt) is the serving one.
 */
export function trackCertificateExpiry<T extends { cert: string | Buffer }>(gauge: Gauge, source: () => T | undefined): () => T | undefined {
  let seen: string | undefined;
  return () => {
    const tls = source();
    const pem = tls?.cert.toString();
    if (pem !== undefined && pem !== seen) {
      seen = pem;
      gauge.set(Date.parse(new X509Certificate(pem).validTo) / 1000);
    }
    return tls;
  };
}
export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;

export interface ApprovalMetrics {
  open: Gauge;
  decisions: Counter<'outcome'>;
  posts: Counter<'result'>;
  /** Requests ready to post that wait for their ApprovalChannel's turn. */
  postsWaiting: Gauge;
  /** The leader's Slack Socket Mode receivers (thoughtgate_operator_slack_socket_*; slack/socket-metrics.ts). */
  sockets: SocketMetrics;
}

/** The ApprovalRequest controller's metrics: registered once per registry (each leadership term reuses them). */
export function approvalMetrics(registry: Registry): ApprovalMetrics {
  const p = 'thoughtgate_operator_approval_';
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    open: get(
      `${p}open_requests`,
      () => new Gauge({ name: `${p}open_requests`, help: 'ApprovalRequests admitted and not yet decided, cluster-wide', registers: [registry] }),
    ),
    decisions: get(
      `${p}decisions_total`,
      () => new Counter({ name: `${p}decisions_total`, help: 'ApprovalRequests ended, by outcome', labelNames: ['outcome'] as const, registers: [registry] }),
    ),
    posts: get(
      `${p}slack_posts_total`,
      () =>
        new Counter({
          name: `${p}slack_posts_total`,
          help: 'Approval messages posted (posted), found again after a restart (adopted), or refused (failed)',
          labelNames: ['result'] as const,
          registers: [registry],
        }),
    ),
    postsWaiting: get(
      `${p}posts_waiting`,
      () =>
        new Gauge({
          name: `${p}posts_waiting`,
          help: 'ApprovalRequests ready to post that wait for their turn (one post per ApprovalChannel at a time, round-robin across owners)',
          registers: [registry],
        }),
    ),
    sockets: socketMetrics(registry, 'thoughtgate_operator_'),
  };
}

// `thoughtgate operator`: settings from flags and environment → the operator, the webhook server
// and its certificate. Every replica serves the webhook; the Lease holder reconciles.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { parseDuration } from '../api/duration.js';
import { LABELS, MANAGED_BY } from '../api/wellknown.js';
import type { Logger } from '../lib/log.js';
import { buildWebhookConfiguration, DEFAULT_FAILURE_POLICY, DEFAULT_TIMEOUT_SECONDS } from '../webhook/config.js';
import { DEFAULT_RESOURCES, type InjectionSettings } from '../webhook/mutate.js';
import { parseCaptureExceptions, parseCapturePorts } from '../api/capture.js';
import { parseDnsMode, unwrapParse, type CaptureSettings } from '../webhook/capture.js';
import { startWebhookServer } from '../webhook/server.js';
import { DEFAULT_SLACK_API_URLS } from '../operator/slack-channels.js';
import { startOperator, type ApprovalOptions, type Operator } from '../operator/operator.js';
import { FIELD_MANAGER } from '../operator/kube-writes.js';
import { startInformer } from '../operator/informer.js';
import type { KubeObject } from '../operator/kube-object.js';
import { GOVERNANCE_POLICIES, INJECTED_NAMESPACES } from '../operator/sources.js';
import { trackCertificateExpiry } from '../operator/metrics.js';
import { CaInjector } from '../webhook/ca-injector.js';
import { MountedCertificate } from '../webhook/cert-files.js';
import { WebhookCertManager, type ServingTls } from '../webhook/cert.js';
import { describeError } from '../lib/describe-error.js';

export interface OperatorSettings {
  kubeconfig?: string;
  namespace: string;
  identity: string;
  metricsPort: number;
  metricsBind: string;
  leaderElection: boolean;
  leaseName?: string;
  leaseDurationSec?: number;
  webhook: null | {
    port: number;
    bind: string;
    service: string;
    secret: string;
    configName: string;
    /** Register the webhook by URL (development, out-of-cluster operators) instead of the Service. */
    url?: string;
    /** Create/update the MutatingWebhookConfiguration; otherwise only its caBundle is patched. */
    manageConfig: boolean;
    failurePolicy: 'Fail' | 'Ignore';
    timeoutSeconds: number;
    extraSans: string[];
    /**
     * cert-manager issues the serving certificate: the directory of its mounted Secret. The
     * operator then manages no certificate and leaves the caBundle to cert-manager's cainjector.
     */
    certDir?: string;
  };
  injection: Omit<InjectionSettings, 'operator' | 'version'>;
  /** ApprovalRequest relay and ApprovalChannel checks; parseApprovalFlags() builds it from flags. */
  approvals?: ApprovalOptions;
  version: string;
}

/** The approval flags of `thoughtgate operator`, as strings (cli.ts parses argv into this). */
export interface ApprovalFlags {
  /** --max-pending-approvals <n> [THOUGHTGATE_MAX_PENDING_APPROVALS]: open ApprovalRequests cluster-wide (default 1000). */
  maxPending?: string;
  /** --approval-retention <dur>: ended ApprovalRequests are deleted this long after the decision (default 24h). */
  retention?: string;
  /** --slack-api-url <url> (repeatable; "*" = any): Slack API base URLs ApprovalChannels may use (default Slack and GovSlack). */
  slackApiUrls?: string[];
  /** --slack-timeout <dur>: per Slack request (default 15s). */
  slackTimeout?: string;
  /** --channel-check-interval <dur>: full ApprovalChannel check at least this often (default 5m). */
  channelCheckInterval?: string;
}

export const APPROVAL_DEFAULTS = {
  maxPending: 1000,
  retention: '24h',
  slackApiUrls: DEFAULT_SLACK_API_URLS,
  slackTimeout: '15s',
  channelCheckInterval: '5m',
} as const;

/** Parses the approval flags; throws an Error naming the flag for a bad value. */
export function parseApprovalFlags(f: ApprovalFlags): ApprovalOptions {
  const dur = (flag: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (typeof ms !== 'number') throw new Error(`--${flag}: ${ms.error}`);
    if (ms < min) throw new Error(`--${flag} must be at least ${min / 1000}s`);
    return ms;
  };
  const out: ApprovalOptions = {};
  if (f.maxPending !== undefined) {
    if (!/^\d+$/.test(f.maxPending.trim()) || Number(f.maxPending) < 1)
      throw new Error(`--max-pending-approvals must be a whole number ≥ 1, got "${f.maxPending}"`);
    out.maxPending = Number(f.maxPending);
  }
  const retention = dur('approval-retention', f.retention, 60_000);
  if (retention !== undefined) out.retentionMs = retention;
  const timeout = dur('slack-timeout', f.slackTimeout, 1000);
  if (timeout !== undefined) out.slackRequestTimeoutMs = timeout;
  const interval = dur('channel-check-interval', f.channelCheckInterval, 10_000);
  if (interval !== undefined) out.channelCheckIntervalMs = interval;
  if (f.slackApiUrls?.length) {
    for (const u of f.slackApiUrls) {
      if (u === '*') continue;
      let url: URL;
      try {
        url = new URL(u);
      } catch {
        throw new Error(`--slack-api-url: not a URL: "${u}"`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`--slack-api-url: not an http(s) URL: "${u}"`);
    }
    out.slackApiUrls = [...f.slackApiUrls];
  }
  return out;
}

export const DEFAULTS = {
  namespace: 'thoughtgate-system',
  metricsPort: 8080,
  webhookPort: 9443,
  service: 'thoughtgate-webhook',
  secret: 'thoughtgate-webhook-tls',
  configName: 'thoughtgate',
  /** The sidecar image (Dockerfile.sidecar); the operator's own image is thoughtgate-operator. */
  image: 'ghcr.io/thoughtgate/thoughtgate-sidecar',
};

export function defaultIdentity(env: NodeJS.ProcessEnv): string {
  return env['POD_NAME'] || `${hostname()}-${randomBytes(3).toString('hex')}`;
}

/** The operator's own pods: never injected (it serves the webhook they would wait for). */
export const OPERATOR_POD_SELECTOR = { matchLabels: { [LABELS.managedBy]: MANAGED_BY } };

export function loadKubeConfig(file?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a pod');
  return kc;
}

export async function runOperator(s: OperatorSettings, log: Logger): Promise<Operator> {
  const kc = loadKubeConfig(s.kubeconfig);
  const settings: InjectionSettings = { ...s.injection, version: s.version, operator: { namespace: s.namespace, podSelector: OPERATOR_POD_SELECTOR } };
  return startOperator({
    kc,
    namespace: s.namespace,
    identity: s.identity,
    log,
    metricsPort: s.metricsPort,
    metricsBind: s.metricsBind,
    leaderElection: s.leaderElection,
    leaseName: s.leaseName,
    leaseDurationSec: s.leaseDurationSec,
    approvals: s.approvals,
    extras: async ({ metrics }) => {
      const w = s.webhook;
      if (!w) return { close: () => undefined };
      // The configuration we would create has no inject-ca-from annotation: nobody would fill its caBundle.
      if (w.certDir && w.manageConfig)
        throw new Error(
          '--manage-webhook-config cannot be combined with --webhook-cert-dir (cert-manager): the chart renders the configuration with the cainjector annotation',
        );
      if (w.manageConfig) {
        const body = buildWebhookConfiguration({
          name: w.configName,
          target: w.url ? { url: w.url } : { service: { name: w.service, namespace: s.namespace } },
          operatorNamespace: s.namespace,
          excludedNamespaces: s.injection.excludedNamespaces,
          failurePolicy: w.failurePolicy,
          timeoutSeconds: w.timeoutSeconds,
          labels: { [LABELS.managedBy]: MANAGED_BY },
        });
        // Server-side apply without caBundle: the certificate manager owns that field.
        await kc
          .makeApiClient(k8s.AdmissionregistrationV1Api)
          .patchMutatingWebhookConfiguration(
            { name: w.configName, fieldManager: FIELD_MANAGER, force: true, body },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
          );
      }
      let server: Awaited<ReturnType<typeof startWebhookServer>> | null = null;
      const caches = webhookCaches(kc, log, () => metrics.informerRestarts);
      const serve = async (getTls: () => ServingTls | undefined) => {
        server = await startWebhookServer({
          port: w.port,
          host: w.bind,
          getTls: trackCertificateExpiry(metrics.webhookCertificateExpiry, getTls),
          settings,
          log,
          namespaceLabels: caches.namespaceLabels,
          policies: caches.policies,
          onAdmission: (r, seconds) => {
            metrics.admissions.inc({ outcome: r.outcome });
            metrics.admissionDuration.observe(seconds);
          },
        });
        log.info('webhook serving', { port: server.port, path: '/mutate-pods', failurePolicy: w.failurePolicy });
        return server;
      };
      if (w.certDir) {
        // cert-manager: the server's 10 s TLS poll re-reads the mounted files.
        const mounted = new MountedCertificate(w.certDir, log);
        if (!mounted.current()) throw new Error(`webhook: no usable tls.crt/tls.key in ${w.certDir}`);
        log.info('webhook certificate from cert-manager', { dir: w.certDir });
        await serve(() => mounted.current());
        return {
          ready: () => mounted.current() !== undefined && caches.synced(),
          async close() {
            await server?.close();
            await caches.stop();
          },
        };
      }
      const injector = new CaInjector({ kubeConfig: kc, webhookConfigName: w.configName, log });
      const certs = new WebhookCertManager({
        kubeConfig: kc,
        namespace: s.namespace,
        secretName: w.secret,
        serviceName: w.service,
        injector,
        extraSans: w.extraSans,
        log,
        onChange: () => server?.reloadTls(),
      });
      const first = await certs.ensure();
      log.info('webhook certificate', {
        ca: first.ca,
        notAfter: first.notAfter.toISOString(),
        renewAt: first.renewAt.toISOString(),
        webhookConfigFound: first.webhookConfigFound,
      });
      await serve(() => certs.current());
      // Every replica, every minute: the CA (one GET of the Secret) and this replica's serving
      // certificate; the injector's own loop puts back a caBundle that drifted.
      const timer = setInterval(() => {
        certs.ensure().catch((err: unknown) => log.warn('webhook certificate check failed; will retry', { error: describeError(err) }));
      }, 60_000);
      timer.unref();
      const injection = injector.start(() => certs.storedBundle());
      return {
        ready: () => certs.current() !== undefined && caches.synced(),
        async close() {
          clearInterval(timer);
          injection.stop();
          await server?.close();
          await caches.stop();
        },
      };
    },
  });
}

/**
 * What the webhook reads on every replica (not only the leader, whose term caches come and go):
 * the GovernancePolicies (Secrets to mount, ports to capture) and the namespaces labelled for
 * injection (their capture label). The replica is not ready until both are filled, so the webhook
 * Service sends reviews to replicas that can answer them; a review that still arrives earlier
 * fails (500) rather than inject without a pod's Secrets.
 */
function webhookCaches(kc: k8s.KubeConfig, log: Logger, restarts: () => { inc(labels: { resource: string }): void }) {
  const inform = (name: string, path: string, labelSelector?: string) =>
    startInformer<KubeObject>({
      kc,
      name: `webhook-${name}`,
      path,
      labelSelector,
      log,
      onChange: () => undefined,
      onRestart: () => restarts().inc({ resource: `webhook-${name}` }),
    });
  const policies = inform(GOVERNANCE_POLICIES.name, GOVERNANCE_POLICIES.path);
  const namespaces = inform(INJECTED_NAMESPACES.name, INJECTED_NAMESPACES.path, INJECTED_NAMESPACES.labelSelector);
  return {
    policies: (namespace: string) => (policies.isSynced() ? policies.list(namespace) : undefined),
    // Absent (not synced, or labelled a moment ago): undefined, and the webhook fails the review (500)
    // rather than guess the namespace's capture label; the informer catches up within moments.
    namespaceLabels: (name: string) => (namespaces.isSynced() ? namespaces.get(name)?.metadata.labels : undefined),
    synced: () => policies.isSynced() && namespaces.isSynced(),
    stop: () => Promise.all([policies.stop(), namespaces.stop()]),
  };
}

/**
 * --sidecar-requests / --sidecar-limits ("cpu=50m,memory=96Mi") → the sidecar's resources; either
 * list replaces the default's requests or limits as a whole. undefined: the defaults.
 */
export function parseResources(requests: string | undefined, limits: string | undefined): InjectionSettings['resources'] {
  if (requests === undefined && limits === undefined) return undefined;
  const list = (flag: string, text: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const part of text
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const m = /^(cpu|memory|ephemeral-storage)=([0-9]+(?:\.[0-9]+)?(?:m|Ki|Mi|Gi|Ti|k|M|G|T)?)$/.exec(part);
      if (!m) throw new Error(`--${flag}: "${part}" is not <cpu|memory|ephemeral-storage>=<quantity>, e.g. cpu=50m,memory=96Mi`);
      out[m[1]!] = m[2]!;
    }
    return out;
  };
  return {
    requests: requests !== undefined ? list('sidecar-requests', requests) : { ...DEFAULT_RESOURCES.requests },
    limits: limits !== undefined ? list('sidecar-limits', limits) : { ...DEFAULT_RESOURCES.limits },
  };
}

/** The capture flags of `thoughtgate operator` (the chart's capture.* values), as strings. */
export interface CaptureFlags {
  /** --capture-by-default: capture injected pods unless the pod or its namespace says "disabled". */
  enabled?: boolean;
  /** --capture-ports <list>: plain-HTTP ports always redirected. */
  ports?: string;
  /** --capture-dns <resolv|any|none>. */
  dns?: string;
  /** --capture-tls-passthrough: outbound 443 goes to the SNI listener instead of being rejected. */
  tlsPassthrough?: boolean;
  /** --capture-allow <CIDR:PORT> (repeatable, or comma-separated). */
  allow?: string[];
  /** --allow-bypassable-pods: admit (with a warning) captured pods that could walk around capture. */
  allowBypassablePods?: boolean;
}

/** Parses the capture flags; throws an Error naming the flag for a bad value. Warnings: accepted but changed (host bits). */
export function parseCaptureFlags(f: CaptureFlags): { capture: CaptureSettings; warnings: string[] } {
  const warnings: string[] = [];
  const named = <T>(flag: string, parse: (w: string[]) => T): T => {
    const own: string[] = [];
    try {
      const v = parse(own);
      warnings.push(...own.map((w) => `--${flag}: ${w}`));
      return v;
    } catch (err) {
      throw new Error(`--${flag}: ${(err as Error).message}`);
    }
  };
  const capture: CaptureSettings = {
    enabled: f.enabled === true,
    ...(f.ports !== undefined ? { ports: named('capture-ports', (w) => unwrapParse(parseCapturePorts(f.ports!), w)) } : {}),
    ...(f.dns !== undefined ? { dns: named('capture-dns', () => parseDnsMode(f.dns!)) } : {}),
    tlsPassthrough: f.tlsPassthrough === true,
    ...(f.allow?.length ? { exceptions: named('capture-allow', (w) => unwrapParse(parseCaptureExceptions(f.allow!), w)) } : {}),
    allowBypassablePods: f.allowBypassablePods === true,
  };
  return { capture, warnings };
}

/** Parses "5s"-style webhook timeouts into whole seconds within what Kubernetes allows (1..30). */
export function webhookTimeoutSeconds(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_SECONDS;
  const ms = parseDuration(text);
  if (typeof ms !== 'number') throw new Error(`--webhook-timeout: ${ms.error}`);
  const s = Math.round(ms / 1000);
  if (s < 1 || s > 30) throw new Error('--webhook-timeout must be between 1s and 30s (the Kubernetes limit)');
  return s;
}

export { DEFAULT_FAILURE_POLICY };
export { parseOtelFlags } from '../webhook/tracing-env.js';

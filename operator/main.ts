// `thoughtgate operator`: settings from flags and environment → the operator, the webhook server
// and its certificate. Every replica serves the webhook; the Lease holder reconciles.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { parseDuration } from '../api/duration.js';
import { LABELS, MANAGED_BY } from '../api/wellknown.js';
import type { Logger } from '../sidecar/log.js';
import { buildWebhookConfiguration, DEFAULT_FAILURE_POLICY, DEFAULT_TIMEOUT_SECONDS } from '../webhook/config.js';
import type { InjectionSettings } from '../webhook/mutate.js';
import { startWebhookServer } from '../webhook/server.js';
import { startOperator, type Operator } from './operator.js';
import { FIELD_MANAGER } from './reconcile.js';
import { WebhookCertManager } from './webhook-cert.js';

export interface OperatorSettings {
  kubeconfig?: string;
  namespace: string;
  identity: string;
  metricsPort: number;
  metricsBind: string;
  leaderElection: boolean;
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
  };
  injection: Omit<InjectionSettings, 'operator' | 'version'>;
  version: string;
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
    leaseDurationSec: s.leaseDurationSec,
    extras: async ({ metrics }) => {
      const w = s.webhook;
      if (!w) return { close: () => undefined };
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
        await kc.makeApiClient(k8s.AdmissionregistrationV1Api).patchMutatingWebhookConfiguration(
          { name: w.configName, fieldManager: FIELD_MANAGER, force: true, body },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
        );
      }
      let server: Awaited<ReturnType<typeof startWebhookServer>> | null = null;
      const certs = new WebhookCertManager({
        kubeConfig: kc,
        namespace: s.namespace,
        secretName: w.secret,
        serviceName: w.service,
        webhookConfigName: w.configName,
        extraSans: w.extraSans,
        log,
        onChange: () => server?.reloadTls(),
      });
      const first = await certs.ensure();
      log.info('webhook certificate', { action: first.action, notAfter: first.notAfter.toISOString(), webhookConfigFound: first.webhookConfigFound });
      server = await startWebhookServer({
        port: w.port,
        host: w.bind,
        getTls: () => certs.current(),
        settings,
        log,
        onAdmission: (r, seconds) => {
          metrics.admissions.inc({ outcome: r.outcome });
          metrics.admissionDuration.observe(seconds);
        },
      });
      log.info('webhook serving', { port: server.port, path: '/mutate-pods', failurePolicy: w.failurePolicy });
      // Renewal and caBundle drift are checked every minute on every replica (two GETs when idle).
      const timer = setInterval(() => {
        certs.ensure().catch((err: unknown) => log.warn('webhook certificate check failed; will retry', { error: (err as Error).message }));
      }, 60_000);
      timer.unref();
      return {
        ready: () => certs.current() !== undefined,
        async close() {
          clearInterval(timer);
          await server?.close();
        },
      };
    },
  });
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

// caBundle injection: every webhook of our MutatingWebhookConfiguration trusts exactly the CA
// bundle of the webhook Secret (its ca.crt). The operator's counterpart of cert-manager's
// cainjector, and not used when cert-manager runs (the chart's inject-ca-from annotation).
//
// Every replica runs it, not only the Lease holder: a replica calls inject() itself before it
// serves a certificate from a CA it has not seen trusted yet (so trust always comes before serving,
// without waiting for another pod), and the loop puts back a caBundle that someone removed. The
// write is a JSON patch of caBundle only, made only when it differs and guarded by the
// resourceVersion read, so replicas that agree on the Secret never fight and a GitOps tool owning
// the rest of the object is not fought with.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../lib/log.js';
import { describeError } from '../lib/describe-error.js';

export interface InjectResult {
  /** False when the MutatingWebhookConfiguration does not exist (yet); the next call retries. */
  webhookConfigFound: boolean;
  /** Names of the webhooks whose caBundle was patched. */
  caBundlePatched: string[];
}

interface WebhookConfigView {
  metadata?: { resourceVersion?: string };
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }>;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8'));

/** The JSON patch that makes every webhook's caBundle `bundle`, or null when all already are. */
export function caBundlePatch(cfg: WebhookConfigView, bundle: string): { ops: object[]; webhooks: string[] } | null {
  const ops: object[] = [{ op: 'test', path: '/metadata/resourceVersion', value: cfg.metadata?.resourceVersion }];
  const webhooks: string[] = [];
  (cfg.webhooks ?? []).forEach((wh, i) => {
    if (unb64(wh.clientConfig?.caBundle) === bundle) return;
    webhooks.push(wh.name);
    // The test pins the index to the webhook we looked at.
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: wh.name });
    ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: b64(bundle) });
  });
  return webhooks.length ? { ops, webhooks } : null;
}

function isStatus(err: unknown, ...codes: number[]): boolean {
  return err instanceof k8s.ApiException && codes.includes(err.code);
}

export interface CaInjectorOptions {
  kubeConfig: k8s.KubeConfig;
  webhookConfigName: string;
  /** Shown in managedFields, so Argo CD's managedFieldsManagers can attribute caBundle to us. */
  fieldManager?: string;
  log?: Logger;
}

export class CaInjector {
  private readonly admission: k8s.AdmissionregistrationV1Api;

  constructor(private readonly o: CaInjectorOptions) {
    this.admission = o.kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  }

  /**
   * Makes every webhook trust exactly `bundle` (PEM), or what the function reads: then it is read
   * again on every attempt, so a bundle that changed under a lost race is never written back.
   */
  async inject(source: string | (() => Promise<string | undefined>)): Promise<InjectResult> {
    const name = this.o.webhookConfigName;
    for (let attempt = 0; ; attempt++) {
      const bundle = typeof source === 'string' ? source : await source();
      if (bundle === undefined) return { webhookConfigFound: false, caBundlePatched: [] };
      let cfg: k8s.V1MutatingWebhookConfiguration;
      try {
        cfg = await this.admission.readMutatingWebhookConfiguration({ name });
      } catch (err) {
        if (isStatus(err, 404)) return { webhookConfigFound: false, caBundlePatched: [] };
        throw err;
      }
      const patch = caBundlePatch(cfg, bundle);
      if (!patch) return { webhookConfigFound: true, caBundlePatched: [] };
      try {
        await this.admission.patchMutatingWebhookConfiguration(
          { name, body: patch.ops, fieldManager: this.o.fieldManager ?? 'thoughtgate-operator' },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
        );
        this.o.log?.info('webhook caBundle patched', { config: name, webhooks: patch.webhooks });
        return { webhookConfigFound: true, caBundlePatched: patch.webhooks };
      } catch (err) {
        // 422: a `test` failed (the object changed since we read it); 409: a conflict. Re-read.
        if (attempt < 4 && isStatus(err, 409, 422)) continue;
        throw err;
      }
    }
  }

  /**
   * The loop: every intervalMs, inject what `read()` returns, read from the Secret at that moment
   * (undefined = none yet, skip). A bundle cached by another replica's last check could take back
   * the trust a rotation has just added; one read right before the patch cannot. Errors are logged
   * and retried on the next tick.
   */
  start(read: () => Promise<string | undefined>, intervalMs = 60_000): { stop(): void } {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.inject(read)
        .catch((err: unknown) => this.o.log?.warn('webhook caBundle check failed; will retry', { error: describeError(err) }))
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
}

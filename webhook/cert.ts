// The webhook's certificates when the operator manages them (the default; with cert-manager see
// webhook/cert-files.ts). The way cert-manager's own webhook does it:
//  - only the CA lives in the Secret (webhook/cert-plan.ts has the layout). It is created when
//    missing: create-only, so of two replicas racing the API server lets one win (409 for the
//    other, which reads the winner's). It is rotated after two thirds of its life, the earlier CA
//    staying in the trust bundle for one serving-certificate lifetime (the overlap);
//  - each replica signs its own serving certificate from that CA, in memory, at start and again
//    after two thirds of its life. No serving key is stored, so replicas never fight over one;
//  - before serving a certificate from a CA it has not seen trusted, a replica has the caBundle
//    injected (webhook/ca-injector.ts): the apiserver trusts a CA before any certificate it signed
//    is served.
// Plans are pure (cert-plan.ts), keys and signatures are ECDSA P-256 (x509.ts); this file reads
// and writes.
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { LABELS, MANAGED_BY } from '../api/wellknown.js';
import type { Logger } from '../lib/log.js';
import { CaInjector, type InjectResult } from './ca-injector.js';
import { planCa, planServing, renewAt, trustBundle, webhookSans, type CaFiles, type Sans } from './cert-plan.js';
import { issueCa, issueServing } from './x509.js';
import { describeError } from '../lib/describe-error.js';

export { splitPemBundle, webhookSans, type CaFiles, type Sans } from './cert-plan.js';

const DAY_MS = 24 * 3600 * 1000;
/** cert-manager's webhook uses the same: a CA for a year, serving certificates for a week. */
export const DEFAULT_CA_VALIDITY_MS = 365 * DAY_MS;
export const DEFAULT_SERVING_VALIDITY_MS = 7 * DAY_MS;

export interface ServingTls {
  cert: string;
  key: string;
  /** The CA bundle the caBundle should hold (PEM). */
  ca: string;
}

export interface WebhookCertOptions {
  kubeConfig: k8s.KubeConfig;
  /** The operator's namespace: the Secret lives here, and the Service's DNS names use it. */
  namespace: string;
  secretName: string;
  serviceName: string;
  /** Who makes the apiserver trust a CA; without it, one for webhookConfigName is made. */
  injector?: Pick<CaInjector, 'inject'>;
  /** MutatingWebhookConfiguration whose webhooks get the caBundle (when no injector is given). */
  webhookConfigName?: string;
  /** More SANs: DNS names, or IP addresses (e.g. 127.0.0.1 for a URL clientConfig). */
  extraSans?: string[];
  caValidityMs?: number;
  servingValidityMs?: number;
  now?: () => Date;
  /** Called whenever this replica's serving certificate changes (after its CA is trusted). */
  onChange?: (tls: ServingTls) => void;
  log?: Logger;
}

export interface EnsureResult {
  /** adopted: another replica wrote the Secret between our read and our write; we use theirs. */
  ca: 'created' | 'kept' | 'rotated' | 'rebundled' | 'adopted';
  caReason: string;
  /** This replica's serving certificate: signed now, or kept. */
  serving: 'issued' | 'kept';
  servingReason: string;
  notAfter: Date;
  /** When the serving certificate is signed again. */
  renewAt: Date;
  webhookConfigFound: boolean;
  caBundlePatched: string[];
}

const TLS_TYPE = 'kubernetes.io/tls';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8'));

function isStatus(err: unknown, ...codes: number[]): boolean {
  return err instanceof k8s.ApiException && codes.includes(err.code);
}

function filesOf(secret: k8s.V1Secret): CaFiles {
  const d = secret.data ?? {};
  return { cert: unb64(d['tls.crt']), key: unb64(d['tls.key']), bundle: unb64(d['ca.crt']) };
}

export class WebhookCertManager {
  private readonly core: k8s.CoreV1Api;
  private readonly injector: Pick<CaInjector, 'inject'> | undefined;
  private readonly sans: Sans;
  private readonly caValidityMs: number;
  private readonly servingValidityMs: number;
  private tls: ServingTls | undefined;
  private ca: CaFiles | undefined;
  /** The last bundle the injector confirmed in the webhook configuration. */
  private trusted: string | undefined;
  private running: Promise<EnsureResult> | undefined;

  constructor(private readonly o: WebhookCertOptions) {
    this.core = o.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.injector =
      o.injector ?? (o.webhookConfigName ? new CaInjector({ kubeConfig: o.kubeConfig, webhookConfigName: o.webhookConfigName, log: o.log }) : undefined);
    this.sans = webhookSans(o.serviceName, o.namespace, o.extraSans);
    this.caValidityMs = o.caValidityMs ?? DEFAULT_CA_VALIDITY_MS;
    this.servingValidityMs = o.servingValidityMs ?? DEFAULT_SERVING_VALIDITY_MS;
  }

  /** This replica's serving certificate; what the webhook server's getTls returns. */
  current(): ServingTls | undefined {
    return this.tls;
  }

  /** The CA bundle last read from (or written to) the Secret. */
  caBundle(): string | undefined {
    return this.ca?.bundle;
  }

  /** The CA bundle the Secret holds now (one GET); undefined while there is no CA. */
  async storedBundle(): Promise<string | undefined> {
    const secret = await this.readSecret();
    return secret ? filesOf(secret).bundle || undefined : undefined;
  }

  /**
   * Makes the Secret hold a usable CA, the webhook configuration trust it, and this replica hold a
   * serving certificate it signed. Call at start (before serving) and periodically (every minute:
   * one GET when nothing changes). Concurrent calls share one run.
   */
  ensure(): Promise<EnsureResult> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async readSecret(): Promise<k8s.V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ name: this.o.secretName, namespace: this.o.namespace });
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** Reads the CA, creating or rotating it when the plan says so. */
  private async ensureCa(now: Date): Promise<{ ca: CaFiles; action: EnsureResult['ca']; reason: string }> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const secret = await this.readSecret();
      const current = secret ? filesOf(secret) : undefined;
      const plan = planCa(current, now, this.servingValidityMs);
      if (plan.action === 'keep') return { ca: current!, action: attempt > 0 ? 'adopted' : 'kept', reason: plan.reason };
      let next: CaFiles;
      if (plan.action === 'rebundle') next = { ...current!, bundle: plan.bundle };
      else {
        const issued = await issueCa({ now, validityMs: this.caValidityMs });
        next = { ...issued, bundle: trustBundle(issued.cert, plan.action === 'rotate' ? plan.keep : '', now, this.servingValidityMs) };
      }
      try {
        await this.writeSecret(secret, next);
      } catch (err) {
        // Another replica created or rotated it first: re-read, and (normally) keep theirs.
        if (isStatus(err, 409)) {
          this.o.log?.info('webhook CA: lost a write race; re-reading', { secret: this.o.secretName });
          continue;
        }
        throw err;
      }
      const action = plan.action === 'create' ? 'created' : plan.action === 'rotate' ? 'rotated' : 'rebundled';
      this.o.log?.info(`webhook CA ${action}`, { reason: plan.reason, notAfter: new Date(new X509Certificate(next.cert).validTo).toISOString() });
      return { ca: next, action, reason: plan.reason };
    }
    throw new Error(`webhook CA: Secret ${this.o.namespace}/${this.o.secretName} kept changing under us`);
  }

  private async run(): Promise<EnsureResult> {
    const now = this.o.now?.() ?? new Date();
    const { ca, action, reason } = await this.ensureCa(now);
    this.ca = ca;
    // Trust first: the apiserver must accept this CA before we serve anything it signed.
    let injected: InjectResult = { webhookConfigFound: this.trusted !== undefined, caBundlePatched: [] };
    if (this.injector && this.trusted !== ca.bundle) {
      injected = await this.injector.inject(ca.bundle);
      // Not found (yet): the next ensure() tries again.
      if (injected.webhookConfigFound) this.trusted = ca.bundle;
    }
    const plan = planServing(this.tls?.cert, ca.cert, this.sans, now);
    let servingReason = 'valid';
    if (plan.action === 'issue') {
      const s = await issueServing({ ca, sans: this.sans, now, validityMs: this.servingValidityMs });
      this.tls = { cert: s.cert, key: s.key, ca: ca.bundle };
      servingReason = plan.reason;
      this.o.log?.info('webhook serving certificate signed', { reason: plan.reason, notAfter: s.notAfter.toISOString() });
      try {
        this.o.onChange?.(this.tls);
      } catch (err) {
        // The certificate is right; a consumer that cannot load it must not undo that.
        this.o.log?.error('webhook certificate: onChange failed', { error: describeError(err) });
      }
    } else if (this.tls && this.tls.ca !== ca.bundle) {
      this.tls = { ...this.tls, ca: ca.bundle };
    }
    const leaf = new X509Certificate(this.tls!.cert);
    return {
      ca: action,
      caReason: reason,
      serving: plan.action === 'issue' ? 'issued' : 'kept',
      servingReason,
      notAfter: new Date(leaf.validTo),
      renewAt: renewAt(leaf),
      ...injected,
    };
  }

  private async writeSecret(existing: k8s.V1Secret | undefined, f: CaFiles): Promise<void> {
    const data = { 'tls.crt': b64(f.cert), 'tls.key': b64(f.key), 'ca.crt': b64(f.bundle) };
    if (!existing) {
      // Create-only: of replicas racing here, the API server lets exactly one win.
      await this.core.createNamespacedSecret({
        namespace: this.o.namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          type: TLS_TYPE,
          data,
          metadata: { name: this.o.secretName, namespace: this.o.namespace, labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.component]: 'webhook' } },
        },
      });
      return;
    }
    if (existing.type !== TLS_TYPE) {
      throw new Error(`Secret ${this.o.namespace}/${this.o.secretName} has type ${existing.type}, not ${TLS_TYPE}; delete it and the operator recreates it`);
    }
    // PUT at the resourceVersion we read: a concurrent writer makes this a 409, never a lost
    // update. The data is replaced whole: keys of an earlier layout (a stored serving key) go.
    await this.core.replaceNamespacedSecret({ name: this.o.secretName, namespace: this.o.namespace, body: { ...existing, data } });
  }
}

/** Hex SHA-256 fingerprint of a PEM certificate; handy to log which cert is served. */
export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

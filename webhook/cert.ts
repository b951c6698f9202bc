// The webhook's serving certificate: a self-signed CA and a serving cert in one Secret
// (kubernetes.io/tls + ca.crt + ca.key), created when missing, renewed near expiry, and the CA
// published as the caBundle of every webhook in our MutatingWebhookConfiguration.
//
// Pure part (planCertificate, webhookSans, issueCertificates) decides and builds; WebhookCertManager
// reads and writes. Every operator replica may call ensure() (the leader or not): writes are
// optimistic (create, or replace at the read resourceVersion), a lost race re-reads and adopts the
// winner's certificate, and every replica's webhook server serves whatever the Secret holds.
//
// Keys: RSA-2048 from Node's native generator (forge's JS keygen takes seconds); forge builds and
// signs the X.509 certificates and can only sign with RSA keys, hence not EC.
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import forge from 'node-forge';
import { LABELS, MANAGED_BY } from '../api/wellknown.js';
import type { Logger } from '../lib/log.js';

const DAY_MS = 24 * 3600 * 1000;
/** Backdated so a peer whose clock is a little behind does not reject a fresh certificate. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface CertFiles {
  /** PEM bundle: the signing CA first, then a previous CA still trusted during a CA rotation. */
  caBundle: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface Sans {
  dnsNames: string[];
  ipAddresses: string[];
}

/** The names the apiserver uses for a Service clientConfig, plus extras (e.g. 127.0.0.1 for URL clientConfig in tests). */
export function webhookSans(service: string, namespace: string, extra: string[] = []): Sans {
  const dnsNames = [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  const ipAddresses: string[] = [];
  for (const n of extra) {
    if (isIP(n)) {
      if (!ipAddresses.includes(n)) ipAddresses.push(n);
    } else if (!dnsNames.includes(n)) dnsNames.push(n);
  }
  return { dnsNames, ipAddresses };
}

export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((p) => `${p}\n`) ?? [];
}

export interface CertPlan {
  action: 'create' | 'keep' | 'renew';
  /** A new CA too (caBundle changes); otherwise the serving cert is re-signed by the same CA. */
  rotateCa: boolean;
  reason: string;
  /** When the current serving cert expires (keep/renew of a parseable cert). */
  notAfter?: Date;
}

function sanSet(cert: X509Certificate): { dns: Set<string>; ip: Set<string> } {
  const dns = new Set<string>();
  const ip = new Set<string>();
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) dns.add(part.slice(4));
    else if (part.startsWith('IP Address:')) ip.add(part.slice(11));
  }
  return { dns, ip };
}

/** Decides what to do with what the Secret holds now. */
export function planCertificate(current: CertFiles | undefined, want: Sans, now: Date, renewBeforeMs: number): CertPlan {
  if (!current) return { action: 'create', rotateCa: true, reason: 'no certificate yet' };
  let ca: X509Certificate, leaf: X509Certificate;
  try {
    const caPem = splitPemBundle(current.caBundle)[0];
    if (!caPem) return { action: 'renew', rotateCa: true, reason: 'ca.crt holds no certificate' };
    ca = new X509Certificate(caPem);
    const caKey = createPrivateKey(current.caKey);
    // forge signs with RSA only.
    if (caKey.asymmetricKeyType !== 'rsa' || !ca.checkPrivateKey(caKey)) {
      return { action: 'renew', rotateCa: true, reason: 'ca.key does not match ca.crt (or is not RSA)' };
    }
  } catch (err) {
    return { action: 'renew', rotateCa: true, reason: `unreadable CA: ${(err as Error).message}` };
  }
  const caNotAfter = new Date(ca.validTo);
  if (caNotAfter.getTime() - now.getTime() <= renewBeforeMs) {
    return { action: 'renew', rotateCa: true, reason: `CA expires ${caNotAfter.toISOString()}` };
  }
  try {
    leaf = new X509Certificate(current.cert);
    if (!leaf.checkPrivateKey(createPrivateKey(current.key))) return { action: 'renew', rotateCa: false, reason: 'tls.key does not match tls.crt' };
  } catch (err) {
    return { action: 'renew', rotateCa: false, reason: `unreadable serving certificate: ${(err as Error).message}` };
  }
  const notAfter = new Date(leaf.validTo);
  if (!leaf.verify(ca.publicKey)) return { action: 'renew', rotateCa: false, reason: 'serving certificate not signed by the CA', notAfter };
  if (notAfter.getTime() - now.getTime() <= renewBeforeMs) return { action: 'renew', rotateCa: false, reason: `expires ${notAfter.toISOString()}`, notAfter };
  const have = sanSet(leaf);
  const missing = [...want.dnsNames.filter((n) => !have.dns.has(n)), ...want.ipAddresses.filter((n) => !have.ip.has(n))];
  if (missing.length) return { action: 'renew', rotateCa: false, reason: `names missing: ${missing.join(', ')}`, notAfter };
  return { action: 'keep', rotateCa: false, reason: `valid until ${notAfter.toISOString()}`, notAfter };
}

function rsaKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

/**
 * forge writes attributes as PrintableString by default, which Go's x509 (the apiserver) rejects
 * for characters such as '@' or '_' ("invalid PrintableString"); UTF8String takes any name.
 */
function commonName(value: string): forge.pki.CertificateField {
  return { name: 'commonName', value, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class };
}

function serial(): string {
  // 16 random bytes, first byte < 0x80 so the DER integer is positive.
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

export interface IssueOptions extends Sans {
  now: Date;
  validityMs: number;
  caValidityMs: number;
  /** Re-sign with this CA (serving-cert renewal); omitted = a new CA. */
  ca?: { bundle: string; key: string };
  /** On CA rotation: the bundle being replaced; its first CA stays trusted while valid. */
  previousCaBundle?: string;
}

export function issueCertificates(o: IssueOptions): CertFiles {
  const notBefore = new Date(o.now.getTime() - BACKDATE_MS);
  let caCert: forge.pki.Certificate;
  let caKey: forge.pki.rsa.PrivateKey;
  let caKeyPem: string;
  let caBundle: string;
  if (o.ca) {
    caCert = forge.pki.certificateFromPem(splitPemBundle(o.ca.bundle)[0]);
    caKey = forge.pki.privateKeyFromPem(o.ca.key);
    caKeyPem = o.ca.key;
    caBundle = o.ca.bundle;
  } else {
    const kp = rsaKeyPair();
    caKeyPem = kp.privatePem;
    caKey = forge.pki.privateKeyFromPem(kp.privatePem);
    caCert = forge.pki.createCertificate();
    caCert.publicKey = forge.pki.publicKeyFromPem(kp.publicPem);
    caCert.serialNumber = serial();
    caCert.validity.notBefore = notBefore;
    caCert.validity.notAfter = new Date(o.now.getTime() + o.caValidityMs);
    const subject = [commonName(`thoughtgate-webhook-ca-${Math.floor(o.now.getTime() / 1000)}`)];
    caCert.setSubject(subject);
    caCert.setIssuer(subject);
    caCert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    caCert.sign(caKey, forge.md.sha256.create());
    const caPem = forge.pki.certificateToPem(caCert).replace(/\r\n/g, '\n');
    // The outgoing CA stays in the bundle until it expires: replicas still serving a cert it signed
    // keep working until they pick up the new one.
    const previous = o.previousCaBundle ? splitPemBundle(o.previousCaBundle)[0] : undefined;
    const keepPrevious = previous !== undefined && (() => {
      try {
        return new Date(new X509Certificate(previous).validTo) > o.now;
      } catch {
        return false;
      }
    })();
    caBundle = caPem + (keepPrevious ? previous : '');
  }

  const kp = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(kp.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = notBefore;
  // Never past the CA: a chain is only as valid as its shortest-lived link.
  cert.validity.notAfter = new Date(Math.min(o.now.getTime() + o.validityMs, caCert.validity.notAfter.getTime()));
  cert.setSubject([commonName(o.dnsNames[0] ?? o.ipAddresses[0] ?? 'thoughtgate-webhook')]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [...o.dnsNames.map((value) => ({ type: 2, value })), ...o.ipAddresses.map((ip) => ({ type: 7, ip }))] },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { caBundle, caKey: caKeyPem, cert: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'), key: kp.privatePem };
}

// ---------------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------------

export interface ServingTls {
  cert: string;
  key: string;
  /** The CA bundle as published in caBundle (PEM). */
  ca: string;
}

export interface WebhookCertOptions {
  kubeConfig: k8s.KubeConfig;
  /** The operator's namespace: the Secret lives here, and the Service's DNS names use it. */
  namespace: string;
  secretName: string;
  serviceName: string;
  /** MutatingWebhookConfiguration whose webhooks get the caBundle. */
  webhookConfigName: string;
  /** More SANs: DNS names, or IP addresses (e.g. 127.0.0.1 for a URL clientConfig). */
  extraSans?: string[];
  validityDays?: number;
  renewBeforeDays?: number;
  caValidityDays?: number;
  now?: () => Date;
  /** Called after the caBundle is in place, whenever the serving cert differs from the last one. */
  onChange?: (tls: ServingTls) => void;
  log?: Logger;
}

export interface EnsureResult {
  /** adopted: another replica wrote the Secret between our read and our write; we use theirs. */
  action: 'created' | 'kept' | 'renewed' | 'adopted';
  reason: string;
  /** An existing CA was replaced (the caBundle gained a CA). */
  rotatedCa: boolean;
  notAfter: Date;
  /** False when the MutatingWebhookConfiguration does not exist (yet); the next ensure() retries. */
  webhookConfigFound: boolean;
  /** Names of the webhooks whose caBundle was patched. */
  caBundlePatched: string[];
}

const TLS_TYPE = 'kubernetes.io/tls';

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}
function unb64(s: string | undefined): string {
  return s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8');
}

function isStatus(err: unknown, ...codes: number[]): boolean {
  return err instanceof k8s.ApiException && codes.includes(err.code);
}

function filesOf(secret: k8s.V1Secret): CertFiles {
  const d = secret.data ?? {};
  return { caBundle: unb64(d['ca.crt']), caKey: unb64(d['ca.key']), cert: unb64(d['tls.crt']), key: unb64(d['tls.key']) };
}

export class WebhookCertManager {
  private readonly core: k8s.CoreV1Api;
  private readonly admission: k8s.AdmissionregistrationV1Api;
  private readonly sans: Sans;
  private readonly validityMs: number;
  private readonly renewBeforeMs: number;
  private readonly caValidityMs: number;
  private tls: ServingTls | undefined;
  private running: Promise<EnsureResult> | undefined;

  constructor(private readonly o: WebhookCertOptions) {
    this.core = o.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.admission = o.kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
    this.sans = webhookSans(o.serviceName, o.namespace, o.extraSans);
    this.validityMs = (o.validityDays ?? 365) * DAY_MS;
    this.renewBeforeMs = (o.renewBeforeDays ?? 30) * DAY_MS;
    this.caValidityMs = (o.caValidityDays ?? 3650) * DAY_MS;
    if (this.renewBeforeMs >= this.validityMs) throw new Error('renewBeforeDays must be shorter than validityDays');
  }

  /** The serving cert last loaded by ensure(); what the webhook server's getTls returns. */
  current(): ServingTls | undefined {
    return this.tls;
  }

  /**
   * Makes the Secret hold a valid certificate for our names and the webhook configuration trust
   * its CA. Call at start (before serving) and periodically (e.g. every minute: two GETs when
   * nothing changes). Concurrent calls on one manager share one run.
   */
  ensure(opts: { forceRenew?: boolean } = {}): Promise<EnsureResult> {
    this.running ??= this.run(opts).finally(() => { this.running = undefined; });
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

  private async run(opts: { forceRenew?: boolean }): Promise<EnsureResult> {
    const now = this.o.now?.() ?? new Date();
    let result: Omit<EnsureResult, 'webhookConfigFound' | 'caBundlePatched'> | undefined;
    let files: CertFiles | undefined;
    for (let attempt = 0; attempt < 4 && !files; attempt++) {
      const secret = await this.readSecret();
      const current = secret ? filesOf(secret) : undefined;
      let plan = planCertificate(current, this.sans, now, this.renewBeforeMs);
      if (opts.forceRenew && plan.action === 'keep' && attempt === 0) plan = { ...plan, action: 'renew', reason: 'renewal forced' };
      if (plan.action === 'keep') {
        files = current!;
        result = { action: attempt > 0 ? 'adopted' : 'kept', reason: plan.reason, rotatedCa: false, notAfter: plan.notAfter! };
        break;
      }
      const next = issueCertificates({
        ...this.sans, now, validityMs: this.validityMs, caValidityMs: this.caValidityMs,
        ca: plan.rotateCa ? undefined : { bundle: current!.caBundle, key: current!.caKey },
        previousCaBundle: current?.caBundle,
      });
      // A new CA is trusted (added, nothing removed) before any replica can serve a cert it signed.
      if (plan.rotateCa && secret) await this.syncCaBundle(next.caBundle, 'add');
      try {
        await this.writeSecret(secret, next);
      } catch (err) {
        // Another replica created or renewed it first: re-read, and (normally) keep theirs.
        if (isStatus(err, 409)) {
          this.o.log?.info('webhook certificate: lost a write race; re-reading', { secret: this.o.secretName });
          continue;
        }
        throw err;
      }
      files = next;
      result = { action: secret ? 'renewed' : 'created', reason: plan.reason, rotatedCa: plan.rotateCa && !!secret, notAfter: new Date(new X509Certificate(next.cert).validTo) };
      this.o.log?.info(`webhook certificate ${result.action}`, { reason: plan.reason, rotatedCa: result.rotatedCa, notAfter: result.notAfter.toISOString() });
    }
    if (!files || !result) throw new Error(`webhook certificate: Secret ${this.o.namespace}/${this.o.secretName} kept changing under us`);
    const sync = await this.syncCaBundle(files.caBundle, 'set');
    const tls = { cert: files.cert, key: files.key, ca: files.caBundle };
    if (!this.tls || this.tls.cert !== tls.cert || this.tls.key !== tls.key || this.tls.ca !== tls.ca) {
      this.tls = tls;
      try {
        this.o.onChange?.(tls);
      } catch (err) {
        // The Secret and caBundle are right; a consumer that cannot load the cert must not undo that.
        this.o.log?.error('webhook certificate: onChange failed', { error: (err as Error).message });
      }
    }
    return { ...result, ...sync };
  }

  private async writeSecret(existing: k8s.V1Secret | undefined, f: CertFiles): Promise<void> {
    const data = { 'ca.crt': b64(f.caBundle), 'ca.key': b64(f.caKey), 'tls.crt': b64(f.cert), 'tls.key': b64(f.key) };
    if (!existing) {
      await this.core.createNamespacedSecret({
        namespace: this.o.namespace,
        body: {
          apiVersion: 'v1', kind: 'Secret', type: TLS_TYPE, data,
          metadata: { name: this.o.secretName, namespace: this.o.namespace, labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.component]: 'webhook' } },
        },
      });
      return;
    }
    if (existing.type !== TLS_TYPE) {
      throw new Error(`Secret ${this.o.namespace}/${this.o.secretName} has type ${existing.type}, not ${TLS_TYPE}; delete it and the operator recreates it`);
    }
    // PUT at the resourceVersion we read: a concurrent writer makes this a 409, never a lost update.
    await this.core.replaceNamespacedSecret({
      name: this.o.secretName,
      namespace: this.o.namespace,
      body: { ...existing, data: { ...existing.data, ...data } },
    });
  }

  /**
   * Puts `bundle` into every webhook's clientConfig.caBundle. 'set' makes it exactly that; 'add'
   * (before a CA rotation) prepends the new CA and keeps what was trusted. A JSON patch guarded by
   * a `test` of resourceVersion, retried on a concurrent change: only caBundle is touched, so a
   * GitOps tool owning the rest of the object is not fought with.
   */
  private async syncCaBundle(bundle: string, mode: 'set' | 'add'): Promise<{ webhookConfigFound: boolean; caBundlePatched: string[] }> {
    const name = this.o.webhookConfigName;
    for (let attempt = 0; ; attempt++) {
      let cfg: k8s.V1MutatingWebhookConfiguration;
      try {
        cfg = await this.admission.readMutatingWebhookConfiguration({ name });
      } catch (err) {
        if (isStatus(err, 404)) return { webhookConfigFound: false, caBundlePatched: [] };
        throw err;
      }
      const ops: object[] = [{ op: 'test', path: '/metadata/resourceVersion', value: cfg.metadata?.resourceVersion }];
      const patched: string[] = [];
      (cfg.webhooks ?? []).forEach((wh, i) => {
        const have = unb64(wh.clientConfig?.caBundle);
        let want = bundle;
        if (mode === 'add') {
          const certs = splitPemBundle(bundle);
          want = [...certs, ...splitPemBundle(have).filter((c) => !certs.includes(c))].join('');
        }
        if (have === want) return;
        patched.push(wh.name);
        ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: wh.name });
        ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: b64(want) });
      });
      if (!patched.length) return { webhookConfigFound: true, caBundlePatched: [] };
      try {
        // Our field manager, so managedFields (and Argo CD's managedFieldsManagers) attribute caBundle to us.
        await this.admission.patchMutatingWebhookConfiguration({ name, body: ops, fieldManager: 'thoughtgate-operator' }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
        this.o.log?.info('webhook caBundle patched', { config: name, webhooks: patched });
        return { webhookConfigFound: true, caBundlePatched: patched };
      } catch (err) {
        // 422: a `test` failed (the object changed since we read it); 409: a conflict. Re-read.
        if (attempt < 4 && isStatus(err, 409, 422)) continue;
        throw err;
      }
    }
  }
}

/** Hex SHA-256 fingerprint of a PEM certificate; handy to log which cert is served. */
export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

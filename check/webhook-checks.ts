// The injection webhook: its MutatingWebhookConfiguration, no second installation's webhook, the
// certificate in the Secret valid and not near expiry, and every caBundle trusting it.
import { X509Certificate } from 'node:crypto';
import { splitPemBundle } from '../webhook/cert-plan.js';
import type { CheckResult, CheckSettings, Installation, Read, Secret, WebhookConfiguration } from './model.js';
import { WEBHOOK_NAMES } from './installation.js';
import { ourWebhookConfigs } from './pre-checks.js';
import { readFailure, skipped } from './read.js';

const GROUP = 'webhook';
const DAY_MS = 24 * 3600 * 1000;

/** The certificates of a PEM bundle, unparseable ones left out. */
export function certificates(pem: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const block of splitPemBundle(pem)) {
    try {
      out.push(new X509Certificate(block));
    } catch {
      // Not a certificate: ignored, the bundle is judged on the rest.
    }
  }
  return out;
}

const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** Does `bundle` hold a CA that issued `cert` (or `cert` itself, a CA)? */
export function trusts(bundle: X509Certificate[], cert: X509Certificate): boolean {
  return bundle.some((ca) => cert.fingerprint256 === ca.fingerprint256 || (cert.checkIssued(ca) && cert.verify(ca.publicKey)));
}

export function checkWebhookConfig(configs: Read<WebhookConfiguration[]>, inst: Installation): CheckResult[] {
  if (!inst.webhook) return [skipped('webhook/configuration', GROUP, 'the operator runs with --no-webhook')];
  if (!configs.ok) return [readFailure('webhook/configuration', GROUP, 'MutatingWebhookConfigurations', configs)];
  const out: CheckResult[] = [];
  const mine = configs.value.find((c) => c.metadata.name === inst.webhookConfigName);
  const names = (mine?.webhooks ?? []).map((w) => w.name);
  const missing = WEBHOOK_NAMES.filter((n) => !names.includes(n));
  if (!mine)
    out.push({
      id: 'webhook/configuration',
      group: GROUP,
      status: 'fail',
      message: `MutatingWebhookConfiguration ${inst.webhookConfigName} is missing: no pod is injected`,
      hint: 'helm upgrade restores it (or the operator with --manage-webhook-config creates it)',
    });
  else if (missing.length)
    out.push({
      id: 'webhook/configuration',
      group: GROUP,
      status: 'fail',
      message: `MutatingWebhookConfiguration ${inst.webhookConfigName} lacks the webhook(s) ${missing.join(', ')}`,
      hint: 'helm upgrade restores it',
    });
  else
    out.push({
      id: 'webhook/configuration',
      group: GROUP,
      status: 'ok',
      message: `MutatingWebhookConfiguration ${inst.webhookConfigName} registers ${names.join(', ')}`,
    });
  const others = ourWebhookConfigs(configs.value).filter((f) => f.config !== inst.webhookConfigName);
  out.push(
    others.length
      ? {
          id: 'webhook/conflict',
          group: GROUP,
          status: 'fail',
          message: `other MutatingWebhookConfigurations register ThoughtGate's webhooks: ${others.map((f) => f.config).join(', ')}`,
          items: others.map((f) => `${f.config}: ${f.webhooks.join(', ')}`),
          hint: 'a second installation (or one left behind) injects the same pods twice: uninstall it, or kubectl delete mutatingwebhookconfiguration <name>',
        }
      : { id: 'webhook/conflict', group: GROUP, status: 'ok', message: 'no other installation registers ThoughtGate webhooks' },
  );
  return out;
}

/** The certificate the webhook's trust hangs on: the CA in tls.crt (operator-managed) or cert-manager's serving certificate. */
export function checkCertificate(secret: Read<Secret | null> | null, inst: Installation, now: Date, s: CheckSettings): CheckResult {
  const id = 'webhook/certificate';
  if (!inst.webhook) return skipped(id, GROUP, 'the operator runs with --no-webhook');
  if (secret === null)
    return {
      id,
      group: GROUP,
      status: 'warn',
      message: 'cert-manager mode, but the Deployment mounts no webhook-tls Secret',
      hint: 'helm upgrade with webhook.certManager.enabled',
    };
  const where = `Secret ${inst.namespace}/${inst.secretName}`;
  if (!secret.ok) return readFailure(id, GROUP, where, secret);
  const fix = inst.certManager
    ? `kubectl -n ${inst.namespace} describe certificate (cert-manager issues it)`
    : `the operator creates and rotates it: kubectl -n ${inst.namespace} logs -l app.kubernetes.io/name=thoughtgate; deleting the Secret makes it issue a new CA`;
  if (!secret.value) return { id, group: GROUP, status: 'fail', message: `${where} is missing`, hint: fix };
  const cert = certificates(unb64(secret.value.data?.['tls.crt']))[0];
  if (!cert) return { id, group: GROUP, status: 'fail', message: `${where} has no certificate in tls.crt`, hint: fix };
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  const what = inst.certManager ? 'the serving certificate' : 'the webhook CA';
  if (now.getTime() < from)
    return { id, group: GROUP, status: 'fail', message: `${what} in ${where} is not valid before ${cert.validFrom}`, hint: `check the clocks; ${fix}` };
  if (now.getTime() >= to) return { id, group: GROUP, status: 'fail', message: `${what} in ${where} expired on ${cert.validTo}`, hint: fix };
  const left = to - now.getTime();
  const days = (left / DAY_MS).toFixed(1);
  if (left < s.certWarnMs)
    return {
      id,
      group: GROUP,
      status: 'warn',
      message: `${what} in ${where} expires in ${days} days (${cert.validTo}), under the ${Math.round(s.certWarnMs / DAY_MS)}-day threshold`,
      hint: `it should have been renewed by now; ${fix}`,
    };
  return { id, group: GROUP, status: 'ok', message: `${what} in ${where} is valid for ${days} more days` };
}

export function checkCaBundle(configs: Read<WebhookConfiguration[]>, secret: Read<Secret | null> | null, inst: Installation): CheckResult {
  const id = 'webhook/ca-bundle';
  if (!inst.webhook) return skipped(id, GROUP, 'the operator runs with --no-webhook');
  const mine = configs.ok ? configs.value.find((c) => c.metadata.name === inst.webhookConfigName) : undefined;
  const cert = secret?.ok && secret.value ? certificates(unb64(secret.value.data?.['tls.crt']))[0] : undefined;
  if (!mine || !cert) return skipped(id, GROUP, 'needs the webhook configuration and the certificate (see above)');
  const injector = inst.certManager
    ? "cert-manager's cainjector (the cert-manager.io/inject-ca-from annotation)"
    : 'the operator (every minute, and before it serves a new certificate)';
  const wrong = (mine.webhooks ?? [])
    .filter((w) => (WEBHOOK_NAMES as readonly string[]).includes(w.name))
    .filter((w) => !trusts(certificates(unb64(w.clientConfig?.caBundle)), cert))
    .map((w) => `${w.name}: ${w.clientConfig?.caBundle ? 'caBundle does not hold the CA' : 'no caBundle'}`);
  if (wrong.length)
    return {
      id,
      group: GROUP,
      status: 'fail',
      message: `the caBundle of ${inst.webhookConfigName} does not trust the certificate in ${inst.secretName}: the API server cannot call the webhook`,
      items: wrong,
      hint: `the caBundle is written by ${injector}; a GitOps tool must not own the field (Argo CD: ignoreDifferences on /webhooks/*/clientConfig/caBundle); a wrong one is put back within a minute while the operator runs`,
    };
  return { id, group: GROUP, status: 'ok', message: `every caBundle of ${inst.webhookConfigName} trusts the certificate in ${inst.secretName}` };
}

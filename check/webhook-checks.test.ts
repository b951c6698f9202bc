import { issueCa, issueServing } from '../webhook/x509.js';
import type { Installation, Read, Secret, WebhookConfiguration } from './model.js';
import { checkCaBundle, checkCertificate, checkWebhookConfig } from './webhook-checks.js';

const ok = <T>(value: T): Read<T> => ({ ok: true, value });
const DAY = 24 * 3600 * 1000;
const now = new Date('2026-12-06T08:00:00Z');
const settings = { certWarnMs: 14 * DAY, approvalWarnMs: 30 * 60_000 };
const inst: Installation = {
  namespace: 'tg',
  leaseName: 'thoughtgate-operator',
  leaderElection: true,
  webhook: true,
  webhookConfigName: 'thoughtgate',
  secretName: 'thoughtgate-webhook-tls',
  certManager: false,
};
const b64 = (s: string) => Buffer.from(s).toString('base64');
const secretOf = (cert: string, bundle = cert): Read<Secret | null> =>
  ok({ metadata: { name: 'thoughtgate-webhook-tls' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(cert), 'ca.crt': b64(bundle) } });
const config = (name: string, caBundle?: string, names = ['pods.thoughtgate.io', 'capture-required.pods.thoughtgate.io']): WebhookConfiguration => ({
  metadata: { name },
  webhooks: names.map((n) => ({ name: n, clientConfig: caBundle ? { caBundle: b64(caBundle) } : {} })),
});

describe('webhook configuration', () => {
  test('ours present with both webhooks, no other installation', () => {
    expect(checkWebhookConfig(ok([config('thoughtgate'), config('unrelated', undefined, ['x.example.com'])]), inst).map((r) => r.status)).toEqual(['ok', 'ok']);
  });
  test('missing, incomplete, or a second installation', () => {
    expect(checkWebhookConfig(ok([]), inst)[0]).toMatchObject({ status: 'fail', message: expect.stringContaining('is missing') });
    expect(checkWebhookConfig(ok([config('thoughtgate', undefined, ['pods.thoughtgate.io'])]), inst)[0]!.message).toContain(
      'capture-required.pods.thoughtgate.io',
    );
    const two = checkWebhookConfig(ok([config('thoughtgate'), config('old-thoughtgate')]), inst);
    expect(two[1]).toMatchObject({
      id: 'webhook/conflict',
      status: 'fail',
      items: ['old-thoughtgate: pods.thoughtgate.io, capture-required.pods.thoughtgate.io'],
    });
  });
  test('--no-webhook skips', () => {
    expect(checkWebhookConfig(ok([]), { ...inst, webhook: false })[0]!.status).toBe('skip');
  });
});

describe('certificate and caBundle', () => {
  test('a valid CA that every caBundle holds passes', async () => {
    const ca = await issueCa({ now, validityMs: 365 * DAY });
    expect(checkCertificate(secretOf(ca.cert), inst, now, settings)).toMatchObject({
      status: 'ok',
      message: expect.stringContaining('valid for 365.0 more days'),
    });
    expect(checkCaBundle(ok([config('thoughtgate', ca.cert)]), secretOf(ca.cert), inst).status).toBe('ok');
  });
  test('expired, not yet valid, near expiry, missing, unreadable', async () => {
    const expired = await issueCa({ now: new Date(now.getTime() - 400 * DAY), validityMs: 365 * DAY });
    expect(checkCertificate(secretOf(expired.cert), inst, now, settings)).toMatchObject({ status: 'fail', message: expect.stringContaining('expired') });
    const future = await issueCa({ now: new Date(now.getTime() + 2 * DAY), validityMs: 365 * DAY });
    expect(checkCertificate(secretOf(future.cert), inst, now, settings).message).toContain('not valid before');
    const soon = await issueCa({ now: new Date(now.getTime() - 360 * DAY), validityMs: 365 * DAY });
    const warn = checkCertificate(secretOf(soon.cert), inst, now, settings);
    expect(warn).toMatchObject({ status: 'warn', message: expect.stringContaining('under the 14-day threshold') });
    expect(warn.hint).toContain('renewed');
    expect(checkCertificate(ok(null), inst, now, settings)).toMatchObject({ status: 'fail', message: 'Secret tg/thoughtgate-webhook-tls is missing' });
    expect(checkCertificate(secretOf('garbage'), inst, now, settings).message).toContain('no certificate in tls.crt');
  });
  test('a caBundle without the CA, or none, fails naming the webhook', async () => {
    const ca = await issueCa({ now, validityMs: 365 * DAY });
    const other = await issueCa({ now, validityMs: 365 * DAY });
    const wrong = checkCaBundle(ok([config('thoughtgate', other.cert)]), secretOf(ca.cert), inst);
    expect(wrong).toMatchObject({
      status: 'fail',
      items: ['pods.thoughtgate.io: caBundle does not hold the CA', 'capture-required.pods.thoughtgate.io: caBundle does not hold the CA'],
    });
    expect(checkCaBundle(ok([config('thoughtgate')]), secretOf(ca.cert), inst).items?.[0]).toBe('pods.thoughtgate.io: no caBundle');
    // During a rotation the bundle holds the new CA and the one it replaced: trusted.
    expect(checkCaBundle(ok([config('thoughtgate', other.cert + ca.cert)]), secretOf(ca.cert), inst).status).toBe('ok');
  });
  test('cert-manager: the serving certificate in tls.crt must chain to a CA of the caBundle', async () => {
    const ca = await issueCa({ now, validityMs: 365 * DAY });
    const serving = await issueServing({ ca, sans: { dnsNames: ['x.tg.svc'], ipAddresses: [] }, now, validityMs: 90 * DAY });
    const cm = { ...inst, certManager: true, secretName: 'thoughtgate-webhook' };
    expect(checkCertificate(secretOf(serving.cert, ca.cert), cm, now, settings).message).toContain('the serving certificate');
    expect(checkCaBundle(ok([config('thoughtgate', ca.cert)]), secretOf(serving.cert, ca.cert), cm).status).toBe('ok');
    const other = await issueCa({ now, validityMs: 365 * DAY });
    const r = checkCaBundle(ok([config('thoughtgate', other.cert)]), secretOf(serving.cert, ca.cert), cm);
    expect(r.status).toBe('fail');
    expect(r.hint).toContain('cainjector');
    expect(checkCertificate(null, cm, now, settings).status).toBe('warn');
  });
  test('skipped without its inputs', () => {
    expect(checkCaBundle(ok([]), ok(null), inst).status).toBe('skip');
  });
});

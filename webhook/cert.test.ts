// The pure half of the webhook certificate manager: names, issuing (checked with Node's own X.509
// parser and a real TLS handshake) and the create / keep / renew decision. The I/O half runs against
// a real apiserver in e2e/webhook.test.ts.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import { issueCertificates, planCertificate, splitPemBundle, webhookSans, type CertFiles } from './cert.js';

const DAY = 24 * 3600 * 1000;
const now = new Date('2026-11-21T10:00:00Z');
const sans = webhookSans('thoughtgate-webhook', 'thoughtgate-system', ['127.0.0.1', 'localhost', '127.0.0.1']);
let fresh: CertFiles;

beforeAll(() => {
  fresh = issueCertificates({ ...sans, now, validityMs: 365 * DAY, caValidityMs: 3650 * DAY });
});

describe('webhookSans', () => {
  it('has the Service names the apiserver dials, plus extras split into DNS and IP', () => {
    expect(sans).toEqual({
      dnsNames: ['thoughtgate-webhook.thoughtgate-system.svc', 'thoughtgate-webhook.thoughtgate-system.svc.cluster.local', 'localhost'],
      ipAddresses: ['127.0.0.1'],
    });
  });
});

describe('issueCertificates', () => {
  it('issues a CA and a serving cert for the names, signed by it, with the requested validity', () => {
    const ca = new X509Certificate(fresh.caBundle);
    const leaf = new X509Certificate(fresh.cert);
    expect(splitPemBundle(fresh.caBundle)).toHaveLength(1);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.subjectAltName).toBe('DNS:thoughtgate-webhook.thoughtgate-system.svc, DNS:thoughtgate-webhook.thoughtgate-system.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1');
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(new Date(leaf.validTo).getTime()).toBe(now.getTime() + 365 * DAY);
    expect(new Date(leaf.validFrom).getTime()).toBe(now.getTime() - 5 * 60 * 1000); // backdated for clock skew
    expect(new Date(ca.validTo).getTime()).toBe(now.getTime() + 3650 * DAY);
  });

  it('writes names as UTF8String: Go (the apiserver) rejects a PrintableString with "@" or "_"', () => {
    for (const pem of [fresh.caBundle, fresh.cert]) {
      const c = forge.pki.certificateFromPem(pem);
      expect(c.subject.getField('CN').valueTagClass).toBe(forge.asn1.Type.UTF8);
      expect(c.issuer.getField('CN').valueTagClass).toBe(forge.asn1.Type.UTF8);
    }
  });

  it('renews with the same CA (caBundle unchanged), never past the CA', () => {
    const later = new Date(now.getTime() + 3500 * DAY);
    const r = issueCertificates({ ...sans, now: later, validityMs: 365 * DAY, caValidityMs: 0, ca: { bundle: fresh.caBundle, key: fresh.caKey } });
    expect(r.caBundle).toBe(fresh.caBundle);
    expect(r.caKey).toBe(fresh.caKey);
    const leaf = new X509Certificate(r.cert);
    expect(leaf.verify(new X509Certificate(fresh.caBundle).publicKey)).toBe(true);
    expect(leaf.validTo).toBe(new X509Certificate(fresh.caBundle).validTo);
  });

  it('on CA rotation keeps the outgoing CA in the bundle while it is valid, and drops an expired one', () => {
    const r = issueCertificates({ ...sans, now: new Date(now.getTime() + 3630 * DAY), validityMs: 365 * DAY, caValidityMs: 3650 * DAY, previousCaBundle: fresh.caBundle });
    const bundle = splitPemBundle(r.caBundle);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]).toBe(splitPemBundle(fresh.caBundle)[0]);
    expect(new X509Certificate(r.cert).verify(new X509Certificate(bundle[0]).publicKey)).toBe(true);
    const late = issueCertificates({ ...sans, now: new Date(now.getTime() + 3700 * DAY), validityMs: 365 * DAY, caValidityMs: 3650 * DAY, previousCaBundle: fresh.caBundle });
    expect(splitPemBundle(late.caBundle)).toHaveLength(1);
  });

  it('works for a real TLS handshake that verifies the name and the CA', async () => {
    const real = issueCertificates({ ...sans, now: new Date(), validityMs: DAY, caValidityMs: 2 * DAY });
    const server = https.createServer({ cert: real.cert, key: real.key }, (_q, s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const get = (host: string, servername?: string) => new Promise<string>((resolve, reject) => {
      https.get({ host, port, ca: real.caBundle, servername, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(String(res.statusCode))); }).on('error', (e) => reject(e));
    });
    try {
      await expect(get('127.0.0.1')).resolves.toBe('200');
      await expect(get('127.0.0.1', 'thoughtgate-webhook.thoughtgate-system.svc')).resolves.toBe('200');
      await expect(get('127.0.0.1', 'other.thoughtgate-system.svc')).rejects.toThrow(/altnames/);
    } finally {
      server.close();
    }
  });
});

describe('planCertificate', () => {
  const renewBefore = 30 * DAY;
  it('creates when there is nothing, keeps a good cert', () => {
    expect(planCertificate(undefined, sans, now, renewBefore)).toMatchObject({ action: 'create', rotateCa: true });
    expect(planCertificate(fresh, sans, now, renewBefore)).toMatchObject({ action: 'keep', rotateCa: false, notAfter: new Date(now.getTime() + 365 * DAY) });
    expect(planCertificate(fresh, sans, new Date(now.getTime() + 334 * DAY), renewBefore).action).toBe('keep');
  });

  it('renews the serving cert (same CA) within the window, after expiry, or when names are missing', () => {
    expect(planCertificate(fresh, sans, new Date(now.getTime() + 336 * DAY), renewBefore)).toMatchObject({ action: 'renew', rotateCa: false, reason: expect.stringMatching(/^expires /) });
    expect(planCertificate(fresh, sans, new Date(now.getTime() + 400 * DAY), renewBefore)).toMatchObject({ action: 'renew', rotateCa: false });
    const moved = webhookSans('thoughtgate-webhook', 'other-ns', ['127.0.0.1']);
    expect(planCertificate(fresh, moved, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: false, reason: 'names missing: thoughtgate-webhook.other-ns.svc, thoughtgate-webhook.other-ns.svc.cluster.local' });
    const fewer = webhookSans('thoughtgate-webhook', 'thoughtgate-system');
    expect(planCertificate(fresh, fewer, now, renewBefore).action).toBe('keep');
  });

  it('renews when the pieces do not fit together', () => {
    const other = issueCertificates({ ...sans, now, validityMs: 365 * DAY, caValidityMs: 3650 * DAY });
    expect(planCertificate({ ...fresh, key: other.key }, sans, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: false, reason: 'tls.key does not match tls.crt' });
    expect(planCertificate({ ...fresh, cert: other.cert, key: other.key }, sans, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: false, reason: 'serving certificate not signed by the CA' });
    expect(planCertificate({ ...fresh, cert: 'garbage' }, sans, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: false });
  });

  it('rotates the CA when it is unreadable, mismatched, not RSA, or near its own expiry', () => {
    const other = issueCertificates({ ...sans, now, validityMs: 365 * DAY, caValidityMs: 3650 * DAY });
    expect(planCertificate({ ...fresh, caBundle: '' }, sans, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: true, reason: 'ca.crt holds no certificate' });
    expect(planCertificate({ ...fresh, caKey: other.caKey }, sans, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: true });
    expect(planCertificate({ ...fresh, caKey: 'nope' }, sans, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: true, reason: expect.stringMatching(/^unreadable CA/) });
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(planCertificate({ ...fresh, caKey: ec }, sans, now, renewBefore)).toMatchObject({ action: 'renew', rotateCa: true });
    expect(planCertificate(fresh, sans, new Date(now.getTime() + 3630 * DAY), renewBefore)).toMatchObject({ action: 'renew', rotateCa: true, reason: expect.stringMatching(/^CA expires/) });
  });
});

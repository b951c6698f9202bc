// ECDSA P-256 issuing, checked with Node's own X.509 parser and a real TLS handshake.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { webhookSans } from './cert-plan.js';
import { BACKDATE_MS, issueCa, issueServing, type IssuedCa } from './x509.js';

const DAY = 24 * 3600 * 1000;
const now = new Date('2026-11-21T10:00:00Z');
const sans = webhookSans('thoughtgate-webhook', 'thoughtgate-system', ['127.0.0.1', 'localhost']);
let ca: IssuedCa;

beforeAll(async () => {
  ca = await issueCa({ now, validityMs: 365 * DAY });
});

describe('issueCa', () => {
  it('is a self-signed ECDSA P-256 CA, valid for the requested time, backdated for clock skew', () => {
    const c = new X509Certificate(ca.cert);
    expect(c.ca).toBe(true);
    expect(c.checkIssued(c)).toBe(true);
    expect(c.verify(c.publicKey)).toBe(true);
    expect(c.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    expect(c.checkPrivateKey(createPrivateKey(ca.key))).toBe(true);
    expect(ca.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(new Date(c.validFrom).getTime()).toBe(now.getTime() - BACKDATE_MS);
    expect(new Date(c.validTo).getTime()).toBe(now.getTime() + 365 * DAY);
    expect(c.subject).toBe(`CN=thoughtgate-webhook-ca-${now.getTime() / 1000}`);
  });

  it('never writes a PrintableString holding "_" or "@" (Go, the apiserver, rejects it): UTF8String then', async () => {
    const tagBefore = (pem: string, text: string, from = 0): number => {
      const der = new X509Certificate(pem).raw;
      const at = der.indexOf(Buffer.from(text), from);
      expect(at).toBeGreaterThan(2);
      return der[at - 2]!; // the tag, then a one-byte length
    };
    expect(tagBefore(ca.cert, 'thoughtgate-webhook-ca-')).toBe(0x13); // PrintableString: all its characters fit
    const s = await issueServing({ ca, sans: webhookSans('under_score', 'ns'), now, validityMs: DAY });
    expect(tagBefore(s.cert, 'thoughtgate-webhook-ca-')).toBe(0x13); // issuer, as the CA wrote it
    expect(tagBefore(s.cert, 'under_score.ns.svc')).toBe(0x0c); // subject
  });
});

describe('issueServing', () => {
  it('signs a serving certificate for the names with a fresh P-256 key, verified against the CA', async () => {
    const s = await issueServing({ ca, sans, now, validityMs: 7 * DAY });
    const leaf = new X509Certificate(s.cert);
    const issuer = new X509Certificate(ca.cert);
    expect(leaf.ca).toBe(false);
    expect(leaf.verify(issuer.publicKey)).toBe(true);
    expect(leaf.checkIssued(issuer)).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(s.key))).toBe(true);
    expect(leaf.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    expect(leaf.subjectAltName).toBe(
      'DNS:thoughtgate-webhook.thoughtgate-system.svc, DNS:thoughtgate-webhook.thoughtgate-system.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1',
    );
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(leaf.subject).toBe('CN=thoughtgate-webhook.thoughtgate-system.svc');
    expect(leaf.issuer).toBe(issuer.subject);
    expect(new Date(leaf.validTo).getTime()).toBe(now.getTime() + 7 * DAY);
    expect(s.notAfter.getTime()).toBe(now.getTime() + 7 * DAY);
    const other = await issueServing({ ca, sans, now, validityMs: 7 * DAY });
    expect(other.key).not.toBe(s.key); // a key per certificate, never shared
  });

  it('never outlives its CA', async () => {
    const s = await issueServing({ ca, sans, now: new Date(now.getTime() + 362 * DAY), validityMs: 7 * DAY });
    expect(new X509Certificate(s.cert).validTo).toBe(new X509Certificate(ca.cert).validTo);
  });

  it('works for a real TLS handshake that verifies the name and the CA', async () => {
    const real = await issueCa({ now: new Date(), validityMs: 2 * DAY });
    const s = await issueServing({ ca: real, sans, now: new Date(), validityMs: DAY });
    const server = https.createServer({ cert: s.cert, key: s.key }, (_q, r) => r.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const get = (servername?: string, trust = real.cert) =>
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, ca: trust, servername, agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.statusCode)));
          })
          .on('error', reject);
      });
    try {
      await expect(get()).resolves.toBe('200');
      await expect(get('thoughtgate-webhook.thoughtgate-system.svc')).resolves.toBe('200');
      await expect(get('other.thoughtgate-system.svc')).rejects.toThrow(/altnames/);
      await expect(get(undefined, ca.cert)).rejects.toThrow(/self[- ]signed|unable to (verify|get)/i);
    } finally {
      server.close();
    }
  });
});

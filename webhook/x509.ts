// ECDSA P-256 certificates for the webhook: a CA, and serving certificates it signs. Built with
// @peculiar/x509 on Node's WebCrypto (node-forge could only sign with RSA; a P-256 key takes
// well under a millisecond to generate, an RSA-2048 one tens of milliseconds).
//
// tsyringe, which @peculiar/x509 uses inside, needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Sans } from './cert-plan.js';

// Node's WebCrypto is the standard one; the casts only bridge Node's and the DOM's type names.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type Key = webcrypto.CryptoKey;

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Backdated so a peer whose clock is a little behind does not reject a fresh certificate. */
export const BACKDATE_MS = 5 * 60 * 1000;

export interface IssuedCa {
  cert: string;
  key: string;
}

export interface IssuedServing {
  cert: string;
  key: string;
  notBefore: Date;
  notAfter: Date;
}

function serialNumber(): string {
  // 16 random bytes, first byte < 0x80 so the DER integer is positive.
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function privatePem(key: Key): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** Any PEM private key Node reads (PKCS#8 or SEC1) → a WebCrypto signing key. */
async function signingKey(pem: string): Promise<Key> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
}

const pemOf = (c: x509.X509Certificate): string => `${c.toString('pem').replace(/\r\n/g, '\n').trimEnd()}\n`;

/** A self-signed CA, valid from now (backdated) for validityMs. */
export async function issueCa(o: { now: Date; validityMs: number }): Promise<IssuedCa> {
  const keys = await newKeys();
  // The issue time in the name keeps successive CAs apart in chain building and in logs.
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=thoughtgate-webhook-ca-${Math.floor(o.now.getTime() / 1000)}`,
    notBefore: new Date(o.now.getTime() - BACKDATE_MS),
    notAfter: new Date(o.now.getTime() + o.validityMs),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: pemOf(cert), key: await privatePem(keys.privateKey) };
}

/** A serving certificate for `sans` with a fresh key, signed by `ca`, never valid past the CA. */
export async function issueServing(o: { ca: IssuedCa; sans: Sans; now: Date; validityMs: number }): Promise<IssuedServing> {
  const caCert = new x509.X509Certificate(o.ca.cert);
  const keys = await newKeys();
  const notBefore = new Date(o.now.getTime() - BACKDATE_MS);
  // A chain is only as valid as its shortest-lived link.
  const notAfter = new Date(Math.min(o.now.getTime() + o.validityMs, caCert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${o.sans.dnsNames[0] ?? o.sans.ipAddresses[0] ?? 'thoughtgate-webhook'}`,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: await signingKey(o.ca.key),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // ECDSA: signatures only (no key encipherment).
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...o.sans.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...o.sans.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: pemOf(cert), key: await privatePem(keys.privateKey), notBefore, notAfter };
}

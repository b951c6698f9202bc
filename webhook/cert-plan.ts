// The pure half of the webhook's certificates: which names, and what to do next with the CA in the
// Secret and with this replica's serving certificate. webhook/cert.ts acts on these plans.
//
// The Secret (kubernetes.io/tls, the layout cert-manager's CA Issuer reads) holds only the CA:
//   tls.crt, tls.key  the signing CA (ECDSA P-256)
//   ca.crt            the trust bundle: the signing CA first, then the CAs it replaced, for an
//                     overlap after the rotation (see trustBundle)
// Each replica signs its own serving certificate from it, in memory.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { describeError } from '../lib/describe-error.js';

export interface Sans {
  dnsNames: string[];
  ipAddresses: string[];
}

/** The CA as the Secret holds it. */
export interface CaFiles {
  /** tls.crt: the signing CA. */
  cert: string;
  /** tls.key: its private key (PKCS#8 PEM). */
  key: string;
  /** ca.crt: the PEM bundle published as the webhook's caBundle. */
  bundle: string;
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

/**
 * When a certificate is renewed: after two thirds of its lifetime (cert-manager's default), so a
 * failing renewal has a third of the lifetime to be noticed and fixed.
 */
export function renewAt(cert: X509Certificate): Date {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  return new Date(from + Math.floor(((to - from) * 2) / 3));
}

function parse(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** The CA certificates of a PEM bundle that are still valid at `now`, each once, in order. */
export function validCas(bundle: string, now: Date): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const pem of splitPemBundle(bundle)) {
    const c = parse(pem);
    if (!c?.ca || new Date(c.validTo) <= now || seen.has(c.fingerprint256)) continue;
    seen.add(c.fingerprint256);
    out.push(pem);
  }
  return out;
}

/**
 * The trust bundle for `signing`: it first, then the valid CAs of `previous` for `overlapMs` after
 * `signing` was issued (its notBefore). The overlap lets replicas keep serving certificates an
 * earlier CA signed until they sign new ones (within a minute; at the latest when theirs expire,
 * so the serving validity is the overlap). After it, a retired CA is no longer trusted, however
 * long it would still be valid: its key is gone from the Secret, but may have been copied.
 */
export function trustBundle(signing: string, previous: string, now: Date, overlapMs: number): string {
  const first = parse(signing);
  if (first && now.getTime() >= new Date(first.validFrom).getTime() + overlapMs) return signing;
  return [signing, ...validCas(previous, now).filter((pem) => parse(pem)?.fingerprint256 !== first?.fingerprint256)].join('');
}

export type CaPlan =
  | { action: 'keep'; reason: string; renewAt: Date }
  | { action: 'create'; reason: string }
  /** A new CA signs from now on; `keep` (earlier CAs still valid) stays in the bundle. */
  | { action: 'rotate'; reason: string; keep: string }
  /** Same CA, but ca.crt is not what it should be (an expired CA to drop, a missing signing CA). */
  | { action: 'rebundle'; reason: string; bundle: string };

/** Why this CA cannot sign, or undefined when it can. */
function unusable(f: CaFiles): string | undefined {
  const ca = parse(f.cert);
  if (!ca) return 'tls.crt holds no certificate';
  if (!ca.ca) return 'tls.crt is not a CA (an earlier layout kept the serving certificate there)';
  try {
    const key = createPrivateKey(f.key);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      return `tls.key is not an ECDSA P-256 key (${key.asymmetricKeyType})`;
    if (!ca.checkPrivateKey(key)) return 'tls.key does not match tls.crt';
  } catch (err) {
    return `unreadable tls.key: ${describeError(err)}`;
  }
  return undefined;
}

/**
 * Decides what to do with the CA the Secret holds now (undefined: no Secret). overlapMs: how long
 * CAs replaced by the signing one stay in the bundle (trustBundle).
 */
export function planCa(current: CaFiles | undefined, now: Date, overlapMs: number): CaPlan {
  if (!current) return { action: 'create', reason: 'no CA yet' };
  const bad = unusable(current);
  // What was trusted stays trusted for the overlap: replicas still serve certificates it signed.
  if (bad) return { action: 'rotate', reason: bad, keep: current.bundle };
  const ca = new X509Certificate(current.cert);
  const due = renewAt(ca);
  if (now >= due) {
    const keep = validCas(current.cert + current.bundle, now).join('');
    return { action: 'rotate', reason: `CA due for renewal since ${due.toISOString()} (expires ${new Date(ca.validTo).toISOString()})`, keep };
  }
  const bundle = trustBundle(current.cert, current.bundle, now, overlapMs);
  if (bundle !== current.bundle) return { action: 'rebundle', reason: 'ca.crt is not the signing CA plus the CAs it replaced, during the overlap', bundle };
  return { action: 'keep', reason: `CA valid until ${new Date(ca.validTo).toISOString()}`, renewAt: due };
}

export type ServingPlan = { action: 'keep'; renewAt: Date } | { action: 'issue'; reason: string };

function sanSet(cert: X509Certificate): { dns: Set<string>; ip: Set<string> } {
  const dns = new Set<string>();
  const ip = new Set<string>();
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) dns.add(part.slice(4));
    else if (part.startsWith('IP Address:')) ip.add(part.slice(11));
  }
  return { dns, ip };
}

/** Decides whether this replica's serving certificate (undefined: none yet) must be signed again. */
export function planServing(current: string | undefined, caCert: string, want: Sans, now: Date): ServingPlan {
  if (!current) return { action: 'issue', reason: 'no serving certificate yet' };
  const leaf = new X509Certificate(current);
  if (!leaf.verify(new X509Certificate(caCert).publicKey)) return { action: 'issue', reason: 'signed by another CA' };
  const have = sanSet(leaf);
  const missing = [...want.dnsNames.filter((n) => !have.dns.has(n)), ...want.ipAddresses.filter((n) => !have.ip.has(n))];
  if (missing.length) return { action: 'issue', reason: `names missing: ${missing.join(', ')}` };
  const due = renewAt(leaf);
  if (now >= due) return { action: 'issue', reason: `due for renewal since ${due.toISOString()}` };
  return { action: 'keep', renewAt: due };
}

// cert-manager mode: the webhook server over real TLS, serving the certificate of a directory laid
// out as the kubelet mounts a Secret (files behind a ..data symlink swapped at once on renewal),
// checked by an HTTPS client that trusts only the CA.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../lib/log.js';
import { MountedCertificate } from './cert-files.js';
import { webhookSans } from './cert-plan.js';
import type { InjectionSettings } from './mutate.js';
import { startWebhookServer, type WebhookServer } from './server.js';
import { issueCa, issueServing, type IssuedCa } from './x509.js';

const DAY = 24 * 3600 * 1000;
const settings: InjectionSettings = { image: 'tg:1', version: '1', operator: { namespace: 'tg-system', podSelector: { matchLabels: { app: 'op' } } } };
const sans = webhookSans('tg', 'tg-system', ['127.0.0.1']);
let dir: string;
let ca: IssuedCa;
let generation = 0;

/** What the kubelet does on a Secret update: a new timestamped directory, then ..data swapped to it. */
function mount(files: Record<string, string>): void {
  const version = `..v${++generation}`;
  mkdirSync(join(dir, version));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, version, name), text);
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of ['tls.crt', 'tls.key', 'ca.crt']) {
    try {
      symlinkSync(join('..data', name), join(dir, name));
    } catch {
      // exists already
    }
  }
}

function servedBy(port: number, trust: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/healthz', ca: trust, agent: false, servername: 'tg.tg-system.svc' }, (res) => {
        const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? fp : `HTTP ${res.statusCode}`));
      })
      .on('error', reject);
  });
}

const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
let server: WebhookServer | undefined;

beforeAll(async () => {
  ca = await issueCa({ now: new Date(), validityMs: 365 * DAY });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tg-cert-files-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('MountedCertificate with the webhook server', () => {
  it('serves the mounted certificate and picks up a renewal by itself, trusted through the CA', async () => {
    const first = await issueServing({ ca, sans, now: new Date(), validityMs: DAY });
    mount({ 'tls.crt': first.cert, 'tls.key': first.key, 'ca.crt': ca.cert });
    const mounted = new MountedCertificate(dir);
    expect(mounted.current()).toEqual({ cert: first.cert, key: first.key, ca: ca.cert });
    server = await startWebhookServer({ port: 0, host: '127.0.0.1', settings, getTls: () => mounted.current(), tlsCheckIntervalMs: 20 });
    expect(await servedBy(server.port, ca.cert)).toBe(fp(first.cert));

    const renewed = await issueServing({ ca, sans, now: new Date(), validityMs: DAY });
    mount({ 'tls.crt': renewed.cert, 'tls.key': renewed.key, 'ca.crt': ca.cert });
    await new Promise((r) => setTimeout(r, 100));
    expect(await servedBy(server.port, ca.cert)).toBe(fp(renewed.cert));
    // A client trusting another CA is refused: the chain really is checked.
    const other = await issueCa({ now: new Date(), validityMs: DAY });
    await expect(servedBy(server.port, other.cert)).rejects.toThrow();
  });

  it('keeps the last good certificate when the files do not fit together or vanish', async () => {
    const good = await issueServing({ ca, sans, now: new Date(), validityMs: DAY });
    const other = await issueServing({ ca, sans, now: new Date(), validityMs: DAY });
    mount({ 'tls.crt': good.cert, 'tls.key': good.key });
    const warnings: string[] = [];
    const log: Logger = {
      level: 'info',
      enabled: () => true,
      debug: () => undefined,
      info: () => undefined,
      error: () => undefined,
      warn: (m, f) => {
        warnings.push(`${m}: ${String(f?.error)}`);
      },
    };
    const mounted = new MountedCertificate(dir, log);
    expect(mounted.current()).toEqual({ cert: good.cert, key: good.key, ca: '' });
    mount({ 'tls.crt': other.cert, 'tls.key': good.key });
    expect(mounted.current()?.cert).toBe(good.cert);
    expect(mounted.current()?.cert).toBe(good.cert);
    expect(warnings).toEqual([expect.stringMatching(/tls\.key does not match tls\.crt$/)]); // once, not per poll
    mount({ 'tls.crt': other.cert, 'tls.key': other.key });
    expect(mounted.current()?.cert).toBe(other.cert);
    rmSync(join(dir, '..data'));
    expect(mounted.current()?.cert).toBe(other.cert);
  });

  it('has nothing to serve when the directory holds no certificate', () => {
    expect(new MountedCertificate(join(dir, 'missing')).current()).toBeUndefined();
  });
});

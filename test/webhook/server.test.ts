// The admission server over real TLS (certificates from the operator's issuer): review handling,
// failure answers, metrics callback, and certificate rotation without a restart.
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { webhookSans } from '../../webhook/cert-plan.js';
import { issueCa, issueServing, type IssuedCa } from '../../webhook/x509.js';
import { applyJsonPatch } from '../../webhook/jsonpatch.js';
import type { InjectionSettings, JsonPatchOp, Pod } from '../../webhook/mutate.js';
import { startWebhookServer, type AdmissionResult, type WebhookServer, type WebhookServerOptions } from '../../webhook/server.js';

const DAY = 24 * 3600 * 1000;
const settings: InjectionSettings = { image: 'tg:1', version: '1', operator: { namespace: 'tg-system', podSelector: { matchLabels: { app: 'op' } } } };
const sans = webhookSans('tg', 'tg-system', ['127.0.0.1']);
let ca: IssuedCa;
let certs: { cert: string; key: string; caBundle: string };
const serving = async () => ({ ...(await issueServing({ ca, sans, now: new Date(), validityMs: 7 * DAY })), caBundle: ca.cert });

beforeAll(async () => {
  ca = await issueCa({ now: new Date(), validityMs: 365 * DAY });
  certs = await serving();
});

interface Reply {
  status: number;
  body: string;
  json?: any;
  fingerprint: string;
}

function call(port: number, method: string, path: string, body?: string | Buffer, ca: string = certs.caBundle): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method, path, ca, agent: false, headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: text, json, fingerprint });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function review(pod: Pod, over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'd7a1d6c8-0000-4000-8000-000000000001',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'agents',
      object: pod,
      ...over,
    },
  });
}

const pod = (): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'agent-' }, spec: { containers: [{ name: 'app', image: 'a' }] } });

let servers: WebhookServer[] = [];
async function start(over: Partial<WebhookServerOptions> = {}): Promise<{ s: WebhookServer; seen: Array<[AdmissionResult, number]> }> {
  const seen: Array<[AdmissionResult, number]> = [];
  const s = await startWebhookServer({
    port: 0,
    host: '127.0.0.1',
    settings,
    getTls: () => certs,
    onAdmission: (r, sec) => seen.push([r, sec]),
    tlsCheckIntervalMs: 0,
    ...over,
  });
  servers.push(s);
  return { s, seen };
}

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

describe('webhook server', () => {
  it('answers a pod CREATE with a base64 JSON patch, echoing the uid', async () => {
    const { s, seen } = await start();
    const r = await call(s.port, 'POST', '/mutate-pods', review(pod()));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'd7a1d6c8-0000-4000-8000-000000000001', allowed: true, patchType: 'JSONPatch' },
    });
    const ops = JSON.parse(Buffer.from(r.json.response.patch, 'base64').toString('utf8')) as JsonPatchOp[];
    const patched = applyJsonPatch(pod(), ops);
    expect(patched.spec?.initContainers?.[0]?.name).toBe('thoughtgate');
    expect(seen).toHaveLength(1);
    const [result, seconds] = seen[0]!;
    expect(result).toMatchObject({ outcome: 'injected', operation: 'CREATE', namespace: 'agents' });
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(1);
  });

  it('allows without a patch what it does not inject, and passes warnings on', async () => {
    const { s, seen } = await start();
    const optedOut = pod();
    optedOut.metadata!.labels = { 'thoughtgate.io/inject': 'disabled' };
    const r = await call(s.port, 'POST', '/mutate-pods', review(optedOut));
    expect(r.json.response).toEqual({ uid: 'd7a1d6c8-0000-4000-8000-000000000001', allowed: true });
    const host = pod();
    host.spec!.hostNetwork = true;
    expect((await call(s.port, 'POST', '/mutate-pods', review(host))).json.response.warnings).toEqual([expect.stringMatching(/hostNetwork/)]);
    const update = await call(s.port, 'POST', '/mutate-pods', review(pod(), { operation: 'UPDATE', oldObject: pod() }));
    expect(update.json.response).toEqual({ uid: expect.any(String), allowed: true });
    const other = await call(s.port, 'POST', '/mutate-pods', review(pod(), { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }));
    expect(other.json.response).toEqual({ uid: expect.any(String), allowed: true });
    const sub = await call(s.port, 'POST', '/mutate-pods', review(pod(), { subResource: 'ephemeralcontainers' }));
    expect(sub.json.response.patch).toBeUndefined();
    expect(seen.map(([r]) => r.outcome)).toEqual(['skipped', 'skipped', 'skipped', 'skipped', 'skipped']);
  });

  it('uses the namespace labels when it has them, and fails (500) a pod CREATE when it does not: the capture label cannot be guessed', async () => {
    const labels: Record<string, Record<string, string>> = {
      agents: { 'thoughtgate.io/inject': 'enabled' },
      plain: {},
      captured: { 'thoughtgate.io/inject': 'enabled', 'thoughtgate.io/capture': 'enabled' },
    };
    const { s, seen } = await start({ namespaceLabels: async (n) => labels[n] });
    expect((await call(s.port, 'POST', '/mutate-pods', review(pod()))).json.response.patch).toBeDefined();
    expect((await call(s.port, 'POST', '/mutate-pods', review(pod(), { namespace: 'plain' }))).json.response.patch).toBeUndefined();
    // The namespace's capture label is read: the default pod could walk around capture, so it is denied.
    expect((await call(s.port, 'POST', '/mutate-pods', review(pod(), { namespace: 'captured' }))).json.response.allowed).toBe(false);
    const unknown = await call(s.port, 'POST', '/mutate-pods', review(pod(), { namespace: 'unknown-yet' }));
    expect(unknown.status).toBe(500);
    expect(unknown.body).toMatch(/namespace unknown-yet's labels are not known yet/);
    // Not a CREATE: nothing is injected anyway, so no need to know.
    const update = await call(s.port, 'POST', '/mutate-pods', review(pod(), { namespace: 'unknown-yet', operation: 'UPDATE', oldObject: pod() }));
    expect(update.json.response).toEqual({ uid: expect.any(String), allowed: true });
    expect(seen.map(([r]) => r.outcome)).toEqual(['injected', 'skipped', 'denied', 'error', 'skipped']);
    labels['unknown-yet'] = { 'thoughtgate.io/inject': 'enabled' };
    expect((await call(s.port, 'POST', '/mutate-pods', review(pod(), { namespace: 'unknown-yet' }))).json.response.patch).toBeDefined();
  });

  it('answers 400 to a malformed review, so failurePolicy decides', async () => {
    const { s, seen } = await start();
    const cases: Array<[string, RegExp]> = [
      ['{not json', /body is not JSON/],
      ['[]', /not a JSON object/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), /expected apiVersion admission.k8s.io\/v1/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request is missing/],
      [review(pod(), { uid: '' }), /uid is missing/],
      [review(pod(), { object: null }), /object is missing/],
    ];
    for (const [body, message] of cases) {
      const r = await call(s.port, 'POST', '/mutate-pods', body);
      expect(r.status).toBe(400);
      expect(r.body).toMatch(message);
    }
    // Invalid UTF-8 is refused, never read with replacement characters (lib/read-body.ts).
    const bad = Buffer.concat([Buffer.from(review(pod()).slice(0, -2)), Buffer.from([0xff]), Buffer.from('}}')]);
    const r = await call(s.port, 'POST', '/mutate-pods', bad);
    expect([r.status, r.body]).toEqual([400, 'malformed AdmissionReview: AdmissionReview is not valid UTF-8']);
    expect(seen.every(([r]) => r.outcome === 'invalid')).toBe(true);
  });

  it('answers 500 (not allowed:true, not allowed:false) to its own errors', async () => {
    const { s, seen } = await start({
      namespaceLabels: () => {
        throw new Error('informer not started');
      },
    });
    const r = await call(s.port, 'POST', '/mutate-pods', review(pod()));
    expect(r.status).toBe(500);
    expect(r.body).toMatch(/internal error: informer not started/);
    expect(seen[0]?.[0]).toMatchObject({ outcome: 'error', reason: 'informer not started' });
  });

  it('denies (allowed:false, 403, the message) a pod that asked for capture it could walk around, and admits it once fixed', async () => {
    const { s, seen } = await start();
    const captured = pod();
    captured.metadata!.annotations = { 'thoughtgate.io/capture': 'enabled' };
    const r = await call(s.port, 'POST', '/mutate-pods', review(captured));
    expect(r.status).toBe(200);
    expect(r.json.response).toEqual({
      uid: 'd7a1d6c8-0000-4000-8000-000000000001',
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: expect.stringMatching(/^thoughtgate: capture is on .*container "app": it has no runAsUser/) },
    });
    captured.spec!.containers![0]!.securityContext = { runAsUser: 1000, allowPrivilegeEscalation: false };
    const ok = await call(s.port, 'POST', '/mutate-pods', review(captured));
    expect(ok.json.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    expect(seen.map(([r]) => r.outcome)).toEqual(['denied', 'injected']);
  });

  it('mounts the Secrets of the namespace’s policies, and fails (500) while the policy cache is not synced', async () => {
    const policies: Record<string, unknown[] | undefined> = {
      agents: [
        { spec: { sources: [{ name: 'a', url: 'https://a/', headers: { Authorization: { valueFrom: { secretKeyRef: { name: 'a-token', key: 't' } } } } }] } },
      ],
    };
    const { s, seen } = await start({ policies: (ns) => policies[ns] });
    const r = await call(s.port, 'POST', '/mutate-pods', review(pod()));
    const patched = applyJsonPatch(pod(), JSON.parse(Buffer.from(r.json.response.patch, 'base64').toString('utf8')) as JsonPatchOp[]);
    expect(patched.spec!.volumes!.map((v) => v.secret?.secretName).filter(Boolean)).toEqual(['a-token']);
    const unsynced = await call(s.port, 'POST', '/mutate-pods', review(pod(), { namespace: 'filling' }));
    expect(unsynced.status).toBe(500);
    expect(unsynced.body).toMatch(/GovernancePolicy cache is not synced/);
    expect(seen.map(([r]) => r.outcome)).toEqual(['injected', 'error']);
  });

  it('bounds the body, and serves /healthz, 404 and 405', async () => {
    const { s } = await start({ maxBodyBytes: 1024 });
    const big = review({ ...pod(), metadata: { name: 'x', annotations: { a: 'x'.repeat(4096) } } });
    expect((await call(s.port, 'POST', '/mutate-pods', big)).status).toBe(413);
    expect(await call(s.port, 'GET', '/healthz')).toMatchObject({ status: 200, body: 'ok' });
    expect((await call(s.port, 'GET', '/mutate-pods')).status).toBe(405);
    expect((await call(s.port, 'POST', '/other', '{}')).status).toBe(404);
  });

  it('keeps serving when the metrics callback throws', async () => {
    const { s } = await start({
      onAdmission: () => {
        throw new Error('boom');
      },
    });
    expect((await call(s.port, 'POST', '/mutate-pods', review(pod()))).status).toBe(200);
  });

  it('serves a renewed certificate to new connections without a restart (reloadTls and polling)', async () => {
    let current = certs;
    const { s } = await start({ getTls: () => current });
    const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
    expect((await call(s.port, 'GET', '/healthz')).fingerprint).toBe(fp(certs.cert));
    expect(s.reloadTls()).toBe(false);
    const renewed = await serving();
    current = renewed;
    expect(s.reloadTls()).toBe(true);
    expect((await call(s.port, 'GET', '/healthz')).fingerprint).toBe(fp(renewed.cert));

    // The poll picks up a change by itself.
    let polled = certs;
    const { s: s2 } = await start({ getTls: () => polled, tlsCheckIntervalMs: 20 });
    polled = renewed;
    await new Promise((r) => setTimeout(r, 100));
    expect((await call(s2.port, 'GET', '/healthz')).fingerprint).toBe(fp(renewed.cert));
  });

  it('refuses to start without a certificate', async () => {
    await expect(startWebhookServer({ port: 0, settings, getTls: () => undefined })).rejects.toThrow(/no TLS certificate/);
  });
});

// Proves the e2e cluster is a real Kubernetes 1.33 control plane: version, namespaces,
// ServiceAccounts and TokenRequest, RBAC on ServiceAccount tokens, and that an apiserver restart
// loses nothing (state lives in etcd).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from './cluster.js';

const BUILD_AND_START_TIMEOUT = 20 * 60_000; // a cold cache builds kube-apiserver & co. first
const STEP_TIMEOUT = 3 * 60_000;

let stateDir: string;
let cluster: Cluster | undefined;

async function mustKubectl(args: string[], input?: string): Promise<string> {
  const r = await cluster!.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function request(
  method: string,
  urlPath: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const ca = await readFile(cluster!.caFile);
  const url = new URL(urlPath, cluster!.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('e2e cluster (real etcd + kube-apiserver + kube-controller-manager)', () => {
  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'thoughtgate-cluster-'));
    cluster = await startCluster(stateDir);
  }, BUILD_AND_START_TIMEOUT);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      if (!process.env.THOUGHTGATE_KEEP_CLUSTER_STATE) await rm(stateDir, { recursive: true, force: true });
    }
  }, STEP_TIMEOUT);

  it('serves Kubernetes 1.33 on loopback', async () => {
    expect(cluster!.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const version = JSON.parse(await mustKubectl(['version', '-o', 'json']));
    expect(version.serverVersion.major).toBe('1');
    expect(version.serverVersion.minor).toBe('33');
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.33\.\d+$/);
  }, STEP_TIMEOUT);

  it('issues ServiceAccount tokens that authenticate and are limited by RBAC', async () => {
    await mustKubectl(['create', 'namespace', 'tg-e2e']);
    await mustKubectl(['create', 'serviceaccount', 'agent', '--namespace', 'tg-e2e']);
    const token = (await mustKubectl(['create', 'token', 'agent', '--namespace', 'tg-e2e', '--duration', '10m'])).trim();
    expect(token.split('.')).toHaveLength(3);

    // The token authenticates as the ServiceAccount...
    const review = await request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', token, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
    });
    expect(review.status).toBe(201);
    expect(JSON.parse(review.body).status.userInfo.username).toBe('system:serviceaccount:tg-e2e:agent');

    // ...and RBAC denies it what it was not granted.
    const secrets = await request('GET', '/api/v1/namespaces/tg-e2e/secrets', token);
    expect(secrets.status).toBe(403);
    expect(JSON.parse(secrets.body).reason).toBe('Forbidden');
  }, STEP_TIMEOUT);

  it('keeps everything across an apiserver restart', async () => {
    const before = JSON.parse(await mustKubectl(['get', 'namespace', 'tg-e2e', '-o', 'json']));
    await cluster!.restartApiServer();
    const after = JSON.parse(await mustKubectl(['get', 'namespace', 'tg-e2e', '-o', 'json']));
    expect(after.metadata.uid).toBe(before.metadata.uid);
    await mustKubectl(['get', 'serviceaccount', 'agent', '--namespace', 'tg-e2e']);
  }, STEP_TIMEOUT);
});

// Proves the e2e cluster is a real Kubernetes 1.33 control plane: version, namespaces,
// ServiceAccounts and TokenRequest, RBAC on ServiceAccount tokens, and that an apiserver restart
// loses nothing (state lives in etcd). It is the run's shared control plane (e2e/support/k8s.ts),
// started by cluster.sh like every other.
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { cluster, e2eCluster, kubectl as mustKubectl } from '../support/k8s.js';

const STEP_TIMEOUT = 3 * 60_000;
const e2e = e2eCluster('cluster');
const NS = e2e.ns('rbac');

async function request(method: string, urlPath: string, token: string, body?: unknown): Promise<{ status: number; body: string }> {
  const ca = await readFile(cluster().caFile);
  const url = new URL(urlPath, cluster().server);
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
  it(
    'serves Kubernetes 1.33 on loopback',
    async () => {
      expect(cluster().server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const version = JSON.parse(await mustKubectl(['version', '-o', 'json']));
      expect(version.serverVersion.major).toBe('1');
      expect(version.serverVersion.minor).toBe('33');
      expect(version.serverVersion.gitVersion).toMatch(/^v1\.33\.\d+$/);
    },
    STEP_TIMEOUT,
  );

  it(
    'issues ServiceAccount tokens that authenticate and are limited by RBAC',
    async () => {
      await e2e.namespace('rbac');
      await mustKubectl(['create', 'serviceaccount', 'agent', '--namespace', NS]);
      const token = (await mustKubectl(['create', 'token', 'agent', '--namespace', NS, '--duration', '10m'])).trim();
      expect(token.split('.')).toHaveLength(3);

      // The token authenticates as the ServiceAccount...
      const review = await request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', token, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
      });
      expect(review.status).toBe(201);
      expect(JSON.parse(review.body).status.userInfo.username).toBe(`system:serviceaccount:${NS}:agent`);

      // ...and RBAC denies it what it was not granted.
      const secrets = await request('GET', `/api/v1/namespaces/${NS}/secrets`, token);
      expect(secrets.status).toBe(403);
      expect(JSON.parse(secrets.body).reason).toBe('Forbidden');
    },
    STEP_TIMEOUT,
  );

  it(
    'keeps everything across an apiserver restart',
    async () => {
      const before = JSON.parse(await mustKubectl(['get', 'namespace', NS, '-o', 'json']));
      await cluster().restartApiServer();
      const after = JSON.parse(await mustKubectl(['get', 'namespace', NS, '-o', 'json']));
      expect(after.metadata.uid).toBe(before.metadata.uid);
      await mustKubectl(['get', 'serviceaccount', 'agent', '--namespace', NS]);
    },
    STEP_TIMEOUT,
  );
});

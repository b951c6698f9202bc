// Admission latency of the injection webhook on a real kube-apiserver (e2e/cluster), printing
// `name value unit` lines like bench/:
//   - webhook handler time (parse review, mutatePod, answer), from the server's onAdmission hook;
//   - pod POST latency at the apiserver with the webhook (labelled namespace) and without it
//     (unlabelled namespace: the namespaceSelector skips the call), sequential, one keep-alive
//     connection, admin client cert. Their difference is what injection costs a pod create.
// Pods are only stored (no scheduler, no kubelet). Loopback only; bounded by BENCH_PODS.
//
// Run by `make bench` (node dist/bench/webhook.js; BENCH_PODS=200 per side by default). The jest e2e
// test (e2e/webhook.test.ts) imports timedPodCreates/summarize for a smaller run.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { WebhookCertManager } from '../webhook/cert.js';
import { buildWebhookConfiguration } from '../webhook/config.js';
import type { InjectionSettings } from '../webhook/mutate.js';
import { answerReview, parseReview, startWebhookServer } from '../webhook/server.js';
import { startCluster, type Cluster } from '../e2e/cluster/cluster.js';
import { readBodyText } from '../lib/read-body.js';

export interface Stats {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1) };
}

export function formatStats(name: string, st: Stats, unit = 'ms'): string {
  return `${['p50', 'p90', 'p99', 'max'].map((k) => `${name}_${k} ${st[k as 'p50'].toFixed(3)} ${unit}`).join('\n')}\n${name}_n ${st.n}`;
}

/** Creates `count` pods one after another through the API; returns each POST's latency in ms. */
export async function timedPodCreates(cluster: Cluster, namespace: string, count: number, prefix = 'bench-'): Promise<number[]> {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    ca: readFileSync(cluster.caFile),
    cert: readFileSync(cluster.env.THOUGHTGATE_K8S_ADMIN_CERT_FILE!),
    key: readFileSync(cluster.env.THOUGHTGATE_K8S_ADMIN_KEY_FILE!),
  });
  const url = new URL(`/api/v1/namespaces/${namespace}/pods`, cluster.server);
  const body = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: prefix, labels: { app: 'bench' } },
    spec: { containers: [{ name: 'app', image: 'registry.example/agent:1' }] },
  });
  const out: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const t = process.hrtime.bigint();
      const [status, text] = await new Promise<[number, string]>((resolve, reject) => {
        const req = https.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json' } }, (res) => {
          readBodyText(res, { limitBytes: 16 * 1024 * 1024 }).then((text) => resolve([res.statusCode ?? 0, text]), reject);
        });
        req.on('error', reject);
        req.end(body);
      });
      out.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (status !== 201) throw new Error(`pod create in ${namespace} answered ${status}: ${text}`);
    }
  } finally {
    agent.destroy();
  }
  return out;
}

export const BENCH_SETTINGS: InjectionSettings = {
  image: 'ghcr.io/thoughtgate/thoughtgate:bench',
  version: 'bench',
  operator: { namespace: 'thoughtgate-system', podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator' } } },
};

/**
 * The handler's own compute (JSON.parse, validation, mutatePod, answer serialisation) in-process on
 * a review shaped like the apiserver's, in µs: separates our CPU cost from socket and scheduling time.
 */
export async function computeMicros(iterations = 5000): Promise<number[]> {
  const mount = { name: 'kube-api-access-x7k2p', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' };
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'bench-', namespace: 'bench-with', labels: { app: 'bench' } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.example/agent:1',
          resources: {},
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
          volumeMounts: [mount],
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      securityContext: {},
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      volumes: [
        {
          name: mount.name,
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
      ],
    },
  };
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'bench-with',
      userInfo: { username: 'admin', groups: ['system:masters', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
  const out: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = process.hrtime.bigint();
    const a = await answerReview(parseReview(JSON.parse(body)), BENCH_SETTINGS);
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: a.response });
    out.push(Number(process.hrtime.bigint() - t) / 1e3);
  }
  return out.slice(Math.floor(iterations / 5)); // after warm-up
}

async function kubectlOk(cluster: Cluster, args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export async function waitForDefaultServiceAccount(cluster: Cluster, namespace: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', namespace, '-o', 'name'])).code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no default ServiceAccount in ${namespace}`);
}

async function main(): Promise<void> {
  const count = Number(process.env.BENCH_PODS || 200);
  const stateDir = await mkdtemp(join(tmpdir(), 'tg-webhook-bench-'));
  const cluster = await startCluster(stateDir);
  const handler: number[] = [];
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const ns = BENCH_SETTINGS.operator.namespace;
    await kubectlOk(cluster, ['create', 'namespace', ns]);
    const certs = new WebhookCertManager({
      kubeConfig: kc,
      namespace: ns,
      secretName: 'thoughtgate-webhook-tls',
      serviceName: 'thoughtgate-webhook',
      webhookConfigName: 'thoughtgate',
      extraSans: ['127.0.0.1'],
    });
    await certs.ensure();
    const server = await startWebhookServer({
      port: 0,
      host: '127.0.0.1',
      settings: BENCH_SETTINGS,
      getTls: () => certs.current(),
      onAdmission: (r, s) => {
        if (r.outcome === 'injected') handler.push(s * 1000);
      },
    });
    const cfg = buildWebhookConfiguration({ name: 'thoughtgate', target: { url: `https://127.0.0.1:${server.port}` }, operatorNamespace: ns });
    await kubectlOk(cluster, ['apply', '-f', '-'], JSON.stringify(cfg));
    await certs.ensure();
    await kubectlOk(cluster, ['create', 'namespace', 'bench-with']);
    await kubectlOk(cluster, ['label', 'namespace', 'bench-with', 'thoughtgate.io/inject=enabled']);
    await kubectlOk(cluster, ['create', 'namespace', 'bench-without']);
    await waitForDefaultServiceAccount(cluster, 'bench-with');
    await waitForDefaultServiceAccount(cluster, 'bench-without');

    // Warm-up (connections, JIT, apiserver caches), then alternate halves so drift hits both sides.
    await timedPodCreates(cluster, 'bench-with', 20, 'warm-');
    await timedPodCreates(cluster, 'bench-without', 20, 'warm-');
    handler.length = 0;
    const withHook: number[] = [];
    const without: number[] = [];
    for (let round = 0; round < 4; round++) {
      withHook.push(...(await timedPodCreates(cluster, 'bench-with', Math.ceil(count / 4))));
      without.push(...(await timedPodCreates(cluster, 'bench-without', Math.ceil(count / 4))));
    }
    const w = summarize(withHook);
    const wo = summarize(without);
    console.log(
      `# thoughtgate webhook admission: node ${process.version}, kube-apiserver ${JSON.parse(await kubectlOk(cluster, ['version', '-o', 'json'])).serverVersion.gitVersion}, ${count} pods per side, sequential`,
    );
    console.log(formatStats('webhook_compute', summarize(await computeMicros()), 'us'));
    console.log(formatStats('webhook_handler', summarize(handler)));
    console.log(formatStats('pod_create_with_webhook', w));
    console.log(formatStats('pod_create_without_webhook', wo));
    console.log(`webhook_added_p50 ${(w.p50 - wo.p50).toFixed(3)} ms`);
    console.log(`webhook_added_p99 ${(w.p99 - wo.p99).toFixed(3)} ms`);
    await server.close();
  } finally {
    await cluster.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

// Run only as a script, not when the e2e test imports it.
if (/bench[/\\]webhook\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

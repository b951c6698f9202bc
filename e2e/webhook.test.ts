// The injection webhook end to end on a real kube-apiserver (e2e/cluster): the operator's
// certificate manager keeps the CA in the Secret, signs this replica's serving cert, rotates the CA
// and has the caBundle injected; the webhook
// server runs in this process behind a URL clientConfig; pods are created with kubectl and the API,
// and their stored specs are checked. No kubelet runs: pods stay Pending, which is all we need.
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { WebhookCertManager, splitPemBundle, type CaFiles, type ServingTls } from '../webhook/cert.js';
import { issueCa } from '../webhook/x509.js';
import { buildWebhookConfiguration } from '../webhook/config.js';
import type { Container, InjectionSettings, Pod } from '../webhook/mutate.js';
import { startWebhookServer, type AdmissionResult, type WebhookServer } from '../webhook/server.js';
import { cluster, e2eCluster, kubectl, kubectlResult, until } from './support/k8s.js';
import { formatStats, summarize, timedPodCreates } from '../bench/webhook.js';
import { at } from '../test/support/at.js';
import { createLogger } from '../lib/log.js';
import { Manager } from '../operator/manager.js';
import { captureReportController } from '../operator/capture-report-controller.js';

const STEP_TIMEOUT = 2 * 60_000;
const DAY = 24 * 3600 * 1000;
const e2e = e2eCluster('webhook');
const OPERATOR_NS = e2e.ns('system');
const AGENTS = e2e.ns('agents');
const PLAIN = e2e.ns('plain');
/** Injection and capture on (namespace labels), Pod Security "privileged": NET_ADMIN/NET_RAW are beyond "baseline". */
const CAPTURED = e2e.ns('captured');
const BASELINE = e2e.ns('baseline');
const REQUIRED = e2e.ns('required');
const SECRET = 'thoughtgate-webhook-tls';
const MWC = e2e.ns('injector');
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

const settings: InjectionSettings = {
  image: 'ghcr.io/thoughtgate/thoughtgate:0.1.0',
  version: '0.1.0',
  operator: { namespace: OPERATOR_NS, podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator' } } },
};

let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let certs: WebhookCertManager;
let server: WebhookServer | undefined;
let port = 0;
const seen: Array<{ result: AdmissionResult; seconds: number }> = [];
const changes: ServingTls[] = [];

async function startServer(): Promise<void> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  server = await startWebhookServer({
    port,
    host: '127.0.0.1',
    settings,
    getTls: () => certs.current(),
    // What the operator would take from its namespace informer; here a direct read.
    namespaceLabels: async (name) => (await core.readNamespace({ name })).metadata?.labels ?? {},
    // What the operator's GovernancePolicy informer holds; here a direct list.
    policies: async (namespace) =>
      (
        (await custom.listNamespacedCustomObject({ group: 'thoughtgate.io', version: 'v1alpha1', namespace, plural: 'governancepolicies' })) as {
          items: unknown[];
        }
      ).items,
    onAdmission: (result, seconds) => seen.push({ result, seconds }),
  });
  port = server.port;
}

/** A container the PodSecurity "restricted" profile admits (the agents namespace enforces it). */
function app(name = 'app', env?: Container['env']): Container {
  return {
    name,
    image: 'registry.example/agent:1',
    ...(env ? { env } : {}),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

function podManifest(
  name: string,
  namespace: string,
  o: { labels?: Record<string, string>; annotations?: Record<string, string>; spec?: Partial<NonNullable<Pod['spec']>> } = {},
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, ...(o.labels ? { labels: o.labels } : {}), ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: { containers: [app()], ...o.spec },
  };
}

async function create(pod: Pod): Promise<Pod> {
  return JSON.parse(await kubectl(['create', '-f', '-', '-o', 'json'], JSON.stringify(pod))) as Pod;
}

async function getPod(name: string, namespace: string): Promise<Pod> {
  return JSON.parse(await kubectl(['get', 'pod', name, '-n', namespace, '-o', 'json'])) as Pod;
}

const sidecars = (p: Pod): Container[] => [...(p.spec!.initContainers ?? []), ...p.spec!.containers!].filter((c) => c.name === 'thoughtgate');
const envOf = (c: Container): Record<string, unknown> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
/** list[i], or a failure naming the index (rather than a TypeError further on). */
const untouched = (p: Pod): void => {
  expect(p.metadata!.annotations?.['thoughtgate.io/injected']).toBeUndefined();
  expect(sidecars(p)).toHaveLength(0);
  expect(p.spec!.containers!.flatMap((c) => c.env ?? []).map((e) => e.name)).not.toContain('THOUGHTGATE_URL');
};

async function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

async function webhookBundles(): Promise<string[]> {
  const cfg = JSON.parse(await kubectl(['get', 'mutatingwebhookconfiguration', MWC, '-o', 'json']));
  return cfg.webhooks.map((w: { clientConfig: { caBundle?: string } }) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
}

async function replaceSecretFiles(files: CaFiles): Promise<void> {
  const s = await core.readNamespacedSecret({ name: SECRET, namespace: OPERATOR_NS });
  const b64 = (x: string) => Buffer.from(x).toString('base64');
  s.data = { 'ca.crt': b64(files.bundle), 'tls.crt': b64(files.cert), 'tls.key': b64(files.key) };
  await core.replaceNamespacedSecret({ name: SECRET, namespace: OPERATOR_NS, body: s });
}

describe('injection webhook on a real kube-apiserver', () => {
  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster().kubeconfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
    await e2e.namespace('system');
    // agents: injection on, and PodSecurity "restricted" enforced, which the sidecar must pass.
    await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled', 'pod-security.kubernetes.io/enforce': 'restricted' });
    await e2e.namespace('plain');
    await e2e.namespace('captured', {
      'thoughtgate.io/inject': 'enabled',
      'thoughtgate.io/capture': 'enabled',
      'pod-security.kubernetes.io/enforce': 'privileged',
    });
    await e2e.namespace('required', {
      'thoughtgate.io/inject': 'enabled',
      'thoughtgate.io/capture': 'required',
      'pod-security.kubernetes.io/enforce': 'privileged',
    });
    await e2e.namespace('baseline', {
      'thoughtgate.io/inject': 'enabled',
      'thoughtgate.io/capture': 'enabled',
      'pod-security.kubernetes.io/enforce': 'baseline',
    });
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'locked', namespace: AGENTS }, automountServiceAccountToken: false }),
    );
    // The webhook lists GovernancePolicies on each review (the operator waits for its informer the
    // same way): a freshly applied CRD answers 429 while its storage initializes.
    await until('the GovernancePolicy API', async () => (await kubectlResult(['get', 'governancepolicies', '-n', AGENTS])).code === 0);
  }, STEP_TIMEOUT);

  afterAll(async () => {
    await server?.close();
  }, STEP_TIMEOUT);

  it(
    'certificate manager: creates the CA Secret (no serving key in it), signs a serving cert in memory, then keeps both',
    async () => {
      certs = new WebhookCertManager({
        kubeConfig: kc,
        namespace: OPERATOR_NS,
        secretName: SECRET,
        serviceName: 'thoughtgate-webhook',
        webhookConfigName: MWC,
        extraSans: ['127.0.0.1'],
        onChange: (t) => {
          changes.push(t);
          server?.reloadTls();
        },
      });
      const first = await certs.ensure();
      expect(first).toMatchObject({ ca: 'created', serving: 'issued', webhookConfigFound: false, caBundlePatched: [] });
      expect(first.notAfter.getTime()).toBeGreaterThan(Date.now() + 6 * DAY);
      const secret = await core.readNamespacedSecret({ name: SECRET, namespace: OPERATOR_NS });
      expect(secret.type).toBe('kubernetes.io/tls');
      expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
      expect(secret.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'thoughtgate-operator' });
      // The three keys are checked just above.
      const ca = new X509Certificate(Buffer.from(secret.data!['tls.crt']!, 'base64'));
      expect(ca.ca).toBe(true);
      expect(ca.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
      expect(Buffer.from(secret.data!['ca.crt']!, 'base64').toString()).toBe(ca.toString());
      const leaf = new X509Certificate(certs.current()!.cert);
      expect(leaf.verify(ca.publicKey)).toBe(true);
      expect(leaf.subjectAltName).toBe(
        `DNS:thoughtgate-webhook.${OPERATOR_NS}.svc, DNS:thoughtgate-webhook.${OPERATOR_NS}.svc.cluster.local, IP Address:127.0.0.1`,
      );

      expect(await certs.ensure()).toMatchObject({ ca: 'kept', serving: 'kept', webhookConfigFound: false });
      expect(changes).toHaveLength(1);
      expect(changes[0]?.cert).toBe(leaf.toString());
    },
    STEP_TIMEOUT,
  );

  it(
    'patches the caBundle of every webhook in the configuration, once',
    async () => {
      await startServer();
      const cfg = buildWebhookConfiguration({ name: MWC, target: { url: `https://127.0.0.1:${port}` }, operatorNamespace: OPERATOR_NS }) as {
        webhooks: Array<Record<string, unknown>>;
      };
      // Two webhooks (the second for namespaces that require capture): every entry gets the bundle.
      await kubectl(['apply', '-f', '-'], JSON.stringify(cfg));
      expect(await webhookBundles()).toEqual(['', '']);

      expect(await certs.ensure()).toMatchObject({
        ca: 'kept',
        webhookConfigFound: true,
        caBundlePatched: ['pods.thoughtgate.io', 'capture-required.pods.thoughtgate.io'],
      });
      expect(await webhookBundles()).toEqual([certs.current()!.ca, certs.current()!.ca]);
      expect(await certs.ensure()).toMatchObject({ ca: 'kept', caBundlePatched: [] });
    },
    STEP_TIMEOUT,
  );

  it(
    'injects a pod created with kubectl in a labelled namespace, and PodSecurity "restricted" admits it',
    async () => {
      const before = seen.length;
      await create(podManifest('agent', AGENTS, { labels: { app: 'agent' } }));
      const pod = await getPod('agent', AGENTS);
      expect(seen.slice(before).map((s) => s.result.outcome)).toEqual(['injected']);
      expect(pod.metadata!.annotations).toMatchObject({ 'thoughtgate.io/injected': '0.1.0' });
      expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(['thoughtgate']);
      const sc = at(pod.spec!.initContainers, 0);
      expect(sc).toMatchObject({
        image: 'ghcr.io/thoughtgate/thoughtgate:0.1.0',
        restartPolicy: 'Always',
        args: ['sidecar'],
        ports: [
          { name: 'tg-proxy', containerPort: 7467, protocol: 'TCP' },
          { name: 'tg-admin', containerPort: 7469, protocol: 'TCP' },
        ],
        startupProbe: { httpGet: { path: '/health', port: 'tg-admin' } },
        readinessProbe: { httpGet: { path: '/ready', port: 'tg-admin' } },
        livenessProbe: { httpGet: { path: '/health', port: 'tg-admin' } },
        resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { cpu: '1', memory: '192Mi' } },
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 7467,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        },
      });
      expect(envOf(sc)).toMatchObject({
        THOUGHTGATE_CONFIGMAP: 'thoughtgate-config',
        THOUGHTGATE_BIND: '127.0.0.1',
        THOUGHTGATE_ADMIN_BIND: '0.0.0.0',
        POD_NAME: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } },
        POD_NAMESPACE: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
        SERVICE_ACCOUNT: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.serviceAccountName' } },
        THOUGHTGATE_LABELS_FILE: '/etc/podinfo/labels',
        NODE_OPTIONS: '--max-semi-space-size=4',
      });
      expect(pod.spec!.volumes!.find((v) => v.name === 'thoughtgate-podinfo')).toBeDefined();
      // The apiserver re-ran the ServiceAccount plugin after our patch: the sidecar got the standard
      // token mount, so no token of our own was needed.
      const mounts = sc.volumeMounts!.map((m) => `${m.name}:${m.mountPath}`);
      expect(mounts).toEqual(['thoughtgate-podinfo:/etc/podinfo', expect.stringMatching(new RegExp(`^kube-api-access-\\w+:${SA_DIR}$`))]);
      expect(pod.spec!.volumes!.map((v) => v.name)).not.toContain('thoughtgate-token');
      expect(envOf(at(pod.spec!.containers, 0))).toEqual({ THOUGHTGATE_URL: 'http://127.0.0.1:7467' });
    },
    STEP_TIMEOUT,
  );

  it(
    'leaves pods alone in an unlabelled namespace, and opted-out pods are not even sent to the webhook',
    async () => {
      const before = seen.length;
      untouched(await create(podManifest('plain-pod', PLAIN)));
      untouched(await create(podManifest('out-label', AGENTS, { labels: { 'thoughtgate.io/inject': 'disabled' } })));
      untouched(await create(podManifest('out-annotation', AGENTS, { annotations: { 'thoughtgate.io/inject': 'disabled' } })));
      // namespaceSelector, objectSelector and matchConditions filtered all three at the apiserver.
      expect(seen.length).toBe(before);
    },
    STEP_TIMEOUT,
  );

  it(
    'never injects twice: the same pod applied twice, or a copy of an injected pod',
    async () => {
      const manifest = JSON.stringify(podManifest('applied', AGENTS));
      await kubectl(['apply', '-f', '-'], manifest);
      await kubectl(['apply', '-f', '-'], manifest); // an UPDATE (patch): not routed to the webhook
      const applied = await getPod('applied', AGENTS);
      expect(sidecars(applied)).toHaveLength(1);
      expect(applied.spec!.volumes!.filter((v) => v.name === 'thoughtgate-podinfo')).toHaveLength(1);

      const copy = structuredClone(await getPod('agent', AGENTS));
      copy.metadata = { name: 'agent-copy', namespace: AGENTS, labels: copy.metadata!.labels, annotations: copy.metadata!.annotations };
      delete copy.status;
      const before = seen.length;
      const created = await create(copy);
      expect(seen.length).toBe(before); // the injected annotation keeps it from even being sent
      expect(sidecars(created)).toHaveLength(1);
      expect(at(created.spec!.containers, 0).env!.filter((e) => e.name === 'THOUGHTGATE_URL')).toHaveLength(1);
    },
    STEP_TIMEOUT,
  );

  it(
    'gives the sidecar its own token when automount is off on the pod, or on its ServiceAccount',
    async () => {
      for (const [name, spec] of [
        ['no-automount', { automountServiceAccountToken: false }],
        ['locked-sa', { serviceAccountName: 'locked' }],
      ] as const) {
        const pod = await create(podManifest(name, AGENTS, { spec }));
        const sc = at(sidecars(pod), 0);
        expect(sc.volumeMounts).toContainEqual({ name: 'thoughtgate-token', mountPath: SA_DIR, readOnly: true });
        expect(at(pod.spec!.containers, 0).volumeMounts).toBeUndefined(); // the app still gets no token
        expect(pod.spec!.volumes!.map((v) => v.name).sort()).toEqual(['thoughtgate-podinfo', 'thoughtgate-token']);
        const token = pod.spec!.volumes!.find((v) => v.name === 'thoughtgate-token')!;
        expect(token.projected!.sources![0]).toEqual({ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } });
      }
    },
    STEP_TIMEOUT,
  );

  it(
    'with the forward-proxy annotation, points the app at the sidecar and merges NO_PROXY',
    async () => {
      const pod = await create(
        podManifest('fwd', AGENTS, {
          annotations: { 'thoughtgate.io/forward-proxy': 'true' },
          spec: { containers: [app('app', [{ name: 'NO_PROXY', value: 'internal.example.com,10.0.0.0/8' }])] },
        }),
      );
      expect(envOf(at(pod.spec!.containers, 0))).toEqual({
        NO_PROXY: 'internal.example.com,10.0.0.0/8,localhost,127.0.0.1,::1',
        no_proxy: 'internal.example.com,10.0.0.0/8,localhost,127.0.0.1,::1',
        THOUGHTGATE_URL: 'http://127.0.0.1:7467',
        HTTP_PROXY: 'http://127.0.0.1:7467',
        http_proxy: 'http://127.0.0.1:7467',
      });
    },
    STEP_TIMEOUT,
  );

  it(
    'captures a pod of a namespace labelled for capture: init container first, state volume and Secrets in the sidecar only',
    async () => {
      const tools = {
        apiVersion: 'thoughtgate.io/v1alpha1',
        kind: 'GovernancePolicy',
        metadata: { name: 'tools', namespace: CAPTURED },
        spec: {
          sources: [
            {
              name: 'tools',
              url: 'http://mcp.tools.svc:8080/mcp',
              headers: { Authorization: { valueFrom: { secretKeyRef: { name: 'tools-token', key: 'token' } }, prefix: 'Bearer ' } },
            },
          ],
        },
      };
      await kubectl(['apply', '-f', '-'], JSON.stringify(tools));
      const before = seen.length;
      const pod = await create(
        podManifest('captured', CAPTURED, {
          annotations: { 'thoughtgate.io/capture-ports': '9000' },
          spec: { initContainers: [app('migrate')], containers: [app()] },
        }),
      );
      expect(seen.slice(before).map((s) => s.result.outcome)).toEqual(['injected']);
      expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(['thoughtgate-capture', 'thoughtgate', 'migrate']);
      const init = at(pod.spec!.initContainers, 0);
      expect(init.args).toEqual([
        'capture-init',
        '--uid',
        '7467',
        '--redirect-ports',
        '8080,9000',
        '--transparent-port',
        '7470',
        '--dns',
        'resolv',
        '--state-file',
        '/var/run/thoughtgate/capture/state.json',
      ]);
      expect(init.securityContext).toMatchObject({
        runAsUser: 0,
        capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
        allowPrivilegeEscalation: false,
      });
      const sc = at(pod.spec!.initContainers, 1);
      expect(envOf(sc)).toMatchObject({ THOUGHTGATE_TRANSPARENT_PORT: '7470', THOUGHTGATE_CAPTURE_STATE: '/var/run/thoughtgate/capture/state.json' });
      const ours = (c: Container) => (c.volumeMounts ?? []).map((m) => m.mountPath).filter((p) => p.startsWith('/var/run/thoughtgate/'));
      expect(ours(sc).sort()).toEqual(['/var/run/thoughtgate/capture', '/var/run/thoughtgate/secrets/tools-token']);
      expect(ours(init)).toEqual(['/var/run/thoughtgate/capture']);
      for (const c of [at(pod.spec!.containers, 0), at(pod.spec!.initContainers, 2)]) expect(ours(c)).toEqual([]);
      const secretVolume = pod.spec!.volumes!.find((v) => v.secret?.secretName === 'tools-token');
      expect(secretVolume?.secret).toEqual({ secretName: 'tools-token', optional: true, defaultMode: 0o444 });
      expect(sc.volumeMounts).toContainEqual({ name: secretVolume!.name, mountPath: '/var/run/thoughtgate/secrets/tools-token', readOnly: true });
      expect(pod.metadata!.labels).toMatchObject({ 'thoughtgate.io/sidecar': 'captured' });
      expect(JSON.parse(pod.metadata!.annotations!['thoughtgate.io/captured']!)).toEqual({ ports: [8080, 9000], tls: 'reject', dns: 'resolv', exceptions: [] });
    },
    STEP_TIMEOUT,
  );

  it(
    'denies a captured pod that could walk around capture, naming the container and the field; "restricted" and "baseline" refuse capture itself',
    async () => {
      const before = seen.length;
      const bypassable = podManifest('bypassable', CAPTURED, { spec: { containers: [{ name: 'shell', image: 'registry.example/agent:1' }] } });
      const r = await kubectlResult(['create', '-f', '-'], JSON.stringify(bypassable));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(
        /admission webhook "pods.thoughtgate.io" denied the request: thoughtgate: capture is on \(namespace label thoughtgate.io\/capture=enabled\)/,
      );
      expect(r.stderr).toMatch(/container "shell": it has no runAsUser, so its image's USER decides the UID .*set securityContext.runAsUser/);
      expect(r.stderr).toMatch(/set securityContext.allowPrivilegeEscalation: false/);
      expect(seen.slice(before).map((s) => s.result.outcome)).toEqual(['denied']);
      expect((await kubectlResult(['get', 'pod', 'bypassable', '-n', CAPTURED])).code).not.toBe(0);

      // The pod's annotation opts it out of capture: admitted and injected, not captured.
      const out = await create({
        ...bypassable,
        metadata: { ...bypassable.metadata, name: 'not-captured', annotations: { 'thoughtgate.io/capture': 'disabled' } },
      });
      expect(out.spec!.initContainers!.map((c) => c.name)).toEqual(['thoughtgate']);
      expect(out.metadata!.labels).toMatchObject({ 'thoughtgate.io/sidecar': 'injected' });

      // Pod Security "restricted" and "baseline" both refuse capture's NET_ADMIN/NET_RAW init container
      // (as they refuse istio-init): a namespace with captured pods needs "privileged".
      for (const [ns, level] of [
        [AGENTS, 'restricted'],
        [BASELINE, 'baseline'],
      ] as const) {
        const pod = podManifest('psa-capture', ns, { annotations: { 'thoughtgate.io/capture': 'enabled' } });
        const r = await kubectlResult(['create', '-f', '-'], JSON.stringify(pod));
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(new RegExp(`violates PodSecurity "${level}:latest".*container "thoughtgate-capture" must not include "NET_ADMIN", "NET_RAW"`));
      }
    },
    STEP_TIMEOUT,
  );

  it(
    'capture=required: a pod opted out by label still reaches the webhook (its own webhook entry) and is denied; a plain pod is captured',
    async () => {
      const before = seen.length;
      const optedOut = podManifest('opted-out', REQUIRED, { labels: { 'thoughtgate.io/inject': 'disabled' } });
      const r = await kubectlResult(['create', '-f', '-'], JSON.stringify(optedOut));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(
        /admission webhook "capture-required.pods.thoughtgate.io" denied the request: thoughtgate: namespace \S+ is labelled thoughtgate.io\/capture=required, and this pod would run uncaptured: opted out \(label thoughtgate.io\/inject=disabled\)/,
      );
      const captured = await create(podManifest('required-captured', REQUIRED));
      expect(captured.spec!.initContainers!.map((c) => c.name)).toEqual(['thoughtgate-capture', 'thoughtgate']);
      expect(seen.slice(before).map((s) => s.result.outcome)).toEqual(['denied', 'injected']);
    },
    STEP_TIMEOUT,
  );

  it(
    "the operator's capture report: every policy of the namespace says which injected pods are captured (status.capture, CAPTURED column)",
    async () => {
      const policy = {
        apiVersion: 'thoughtgate.io/v1alpha1',
        kind: 'GovernancePolicy',
        metadata: { name: 'report', namespace: CAPTURED },
        spec: { sources: [] },
      };
      await kubectl(['apply', '-f', '-'], JSON.stringify(policy));
      // The report controller alone, as the operator's leader runs it (only pods the webhook labelled are listed).
      const manager = new Manager({
        kc,
        namespace: OPERATOR_NS,
        identity: 'report',
        log: createLogger('warn'),
        metricsPort: 0,
        metricsBind: '127.0.0.1',
        leaderElection: false,
      });
      manager.add(captureReportController);
      await manager.start();
      try {
        const report = async () =>
          JSON.parse(await kubectl(['get', 'governancepolicy', 'report', '-n', CAPTURED, '-o', 'json'])).status?.capture as Record<string, unknown> | undefined;
        await until('status.capture 1/2', async () => (await report())?.summary === '1/2');
        expect(await report()).toEqual({
          summary: '1/2',
          captured: 1,
          notCaptured: 1,
          bypassable: 0,
          capturedPods: ['captured'],
          notCapturedPods: ['not-captured'],
          bypassablePods: [],
        });
        expect(await kubectl(['get', 'governancepolicies', '-n', CAPTURED])).toMatch(/^NAME\s+PRIORITY\s+READY\s+HASH\s+CAPTURED\s+AGE\nreport\s+.*\s1\/2\s/m);
        // A pod that goes away leaves the report (no kubelet: an unscheduled pod is deleted at once).
        await kubectl(['delete', 'pod', 'not-captured', '-n', CAPTURED, '--wait=true']);
        await until('status.capture 1/1', async () => (await report())?.summary === '1/1');

        // A burst of pod creations: the report is written at most once per namespace per 5 s (each
        // write one patch per policy: "report" and "tools"), not once per pod, and ends on the last state.
        const policies = (await kubectl(['get', 'governancepolicies', '-n', CAPTURED, '-o', 'name'])).trim().split('\n').length;
        let writes = 0;
        const watching = await new k8s.Watch(kc).watch(
          `/apis/thoughtgate.io/v1alpha1/namespaces/${CAPTURED}/governancepolicies`,
          {},
          (type) => {
            if (type === 'MODIFIED') writes++;
          },
          () => undefined,
        );
        try {
          await new Promise((r) => setTimeout(r, 500)); // the watch's initial ADDED events
          const BURST = 8;
          const started = Date.now();
          const list = {
            apiVersion: 'v1',
            kind: 'List',
            items: Array.from({ length: BURST }, (_, i) => podManifest(`burst-${i}`, CAPTURED, { annotations: { 'thoughtgate.io/capture': 'disabled' } })),
          };
          await kubectl(['create', '-f', '-'], JSON.stringify(list));
          await until(`status.capture 1/${BURST + 1}`, async () => (await report())?.summary === `1/${BURST + 1}`);
          const elapsed = Date.now() - started;
          await new Promise((r) => setTimeout(r, 6_000)); // a write still waiting would land now
          expect((await report())?.notCaptured).toBe(BURST);
          // Writes come in rounds at least 5 s apart: the first at once, then one per 5 s started.
          const rounds = 2 + Math.floor(elapsed / 5_000);
          process.stdout.write(`capture report: ${BURST} pods created, ${policies} policies: ${writes} status writes in ${elapsed} ms\n`);
          expect(writes).toBeGreaterThanOrEqual(policies);
          expect(writes).toBeLessThanOrEqual(rounds * policies);
          expect(writes).toBeLessThan(BURST * policies);
        } finally {
          watching.abort();
        }
      } finally {
        await manager.close();
      }
    },
    STEP_TIMEOUT,
  );

  it(
    'injects the pods a Deployment creates (generateName, created by the controller manager)',
    async () => {
      await kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'deployed', namespace: AGENTS },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'deployed' } },
            template: { metadata: { labels: { app: 'deployed' } }, spec: { containers: [app()] } },
          },
        }),
      );
      const pods = await until("the Deployment's pod", async () => {
        const items: Pod[] = JSON.parse(await kubectl(['get', 'pods', '-n', AGENTS, '-l', 'app=deployed', '-o', 'json'])).items;
        return items.length ? items : null;
      });
      expect(pods).toHaveLength(1);
      const deployed = at(pods, 0);
      expect(deployed.metadata!.name).toMatch(/^deployed-[a-z0-9]+-[a-z0-9]{5}$/);
      expect(sidecars(deployed)).toHaveLength(1);
      expect(at(deployed.spec!.initContainers, 0).restartPolicy).toBe('Always');
    },
    STEP_TIMEOUT,
  );

  it(
    'another replica reads the same CA and signs a serving cert of its own, which the apiserver trusts too',
    async () => {
      const replica = new WebhookCertManager({
        kubeConfig: kc,
        namespace: OPERATOR_NS,
        secretName: SECRET,
        serviceName: 'thoughtgate-webhook',
        webhookConfigName: MWC,
        extraSans: ['127.0.0.1'],
      });
      expect(await replica.ensure()).toMatchObject({ ca: 'kept', serving: 'issued', caBundlePatched: [] });
      expect(replica.current()!.cert).not.toBe(certs.current()!.cert);
      expect(replica.current()!.key).not.toBe(certs.current()!.key);
      const trusted = splitPemBundle(at(await webhookBundles(), 0)).map((p) => new X509Certificate(p));
      expect(trusted.some((c) => new X509Certificate(replica.current()!.cert).checkIssued(c))).toBe(true);
    },
    STEP_TIMEOUT,
  );

  it(
    'rotates a CA due for renewal: new CA trusted (old ones kept) before the server serves a cert it signed',
    async () => {
      const before = certs.current()!;
      // The Secret's CA was issued 300 days ago for a year: past two thirds of its life. The CA the
      // server's cert chains to is still in ca.crt, as after an earlier rotation.
      const dying = await issueCa({ now: new Date(Date.now() - 300 * DAY), validityMs: 365 * DAY });
      await replaceSecretFiles({ ...dying, bundle: dying.cert + before.ca });
      const r = await certs.ensure();
      expect(r).toMatchObject({
        ca: 'rotated',
        serving: 'issued',
        servingReason: 'signed by another CA',
        caBundlePatched: ['pods.thoughtgate.io', 'capture-required.pods.thoughtgate.io'],
      });
      const bundle = splitPemBundle(certs.current()!.ca);
      expect(bundle.slice(1)).toEqual([dying.cert, before.ca]); // the overlap: the CAs it replaced stay for a while
      expect(await webhookBundles()).toEqual([certs.current()!.ca, certs.current()!.ca]);
      const stored = await core.readNamespacedSecret({ name: SECRET, namespace: OPERATOR_NS });
      expect(Buffer.from(stored.data!['tls.crt']!, 'base64').toString()).toBe(bundle[0]);
      expect(new X509Certificate(certs.current()!.cert).verify(new X509Certificate(at(bundle, 0)).publicKey)).toBe(true);
      expect(await servedFingerprint()).toBe(new X509Certificate(certs.current()!.cert).fingerprint256);
      expect(sidecars(await create(podManifest('after-ca-rotation', AGENTS)))).toHaveLength(1);
    },
    STEP_TIMEOUT,
  );

  it(
    'two replicas racing to create the CA: one creates, the other reads the winner; each serves its own cert',
    async () => {
      const replica = () =>
        new WebhookCertManager({
          kubeConfig: kc,
          namespace: OPERATOR_NS,
          secretName: 'race-tls',
          serviceName: 'thoughtgate-webhook',
          webhookConfigName: 'not-there',
          extraSans: ['127.0.0.1'],
        });
      const [a, b] = [replica(), replica()];
      const results = await Promise.all([a.ensure(), b.ensure()]);
      expect(results.map((x) => x.ca).sort()).toEqual(['adopted', 'created']);
      expect(a.current()!.ca).toBe(b.current()!.ca);
      expect(a.current()!.cert).not.toBe(b.current()!.cert);
      const stored = await core.readNamespacedSecret({ name: 'race-tls', namespace: OPERATOR_NS });
      const ca = new X509Certificate(Buffer.from(stored.data!['tls.crt']!, 'base64'));
      for (const r of [a, b]) expect(new X509Certificate(r.current()!.cert).verify(ca.publicKey)).toBe(true);
    },
    STEP_TIMEOUT,
  );

  it(
    'failurePolicy Fail: a down webhook blocks pod creation only where injection is wanted',
    async () => {
      await server!.close();
      server = undefined;
      // Even labelled, the operator's namespace is outside the namespaceSelector: it can always restart.
      await kubectl(['label', 'namespace', OPERATOR_NS, 'thoughtgate.io/inject=enabled']);
      const blocked = await kubectlResult(['create', '-f', '-'], JSON.stringify(podManifest('while-down', AGENTS)));
      expect(blocked.code).not.toBe(0);
      expect(blocked.stderr).toMatch(/failed calling webhook "pods\.thoughtgate\.io"/);
      untouched(await create(podManifest('plain-while-down', PLAIN)));
      untouched(await create(podManifest('out-label-while-down', AGENTS, { labels: { 'thoughtgate.io/inject': 'disabled' } })));
      untouched(await create(podManifest('out-annotation-while-down', AGENTS, { annotations: { 'thoughtgate.io/inject': 'disabled' } })));
      untouched(await create(podManifest('operator-while-down', OPERATOR_NS, { labels: { 'app.kubernetes.io/component': 'operator' } })));
      await kubectl(['label', 'namespace', OPERATOR_NS, 'thoughtgate.io/inject-']);

      await startServer(); // same port: the configuration's URL still points here
      expect(sidecars(await create(podManifest('while-up-again', AGENTS)))).toHaveLength(1);
    },
    STEP_TIMEOUT,
  );

  it(
    'measures admission latency (printed; the budget is checked by the benchmark, not here)',
    async () => {
      const latWith = await e2e.namespace('lat-with', { 'thoughtgate.io/inject': 'enabled' });
      const latWithout = await e2e.namespace('lat-without');
      await timedPodCreates(cluster(), latWith, 10, 'warm-');
      await timedPodCreates(cluster(), latWithout, 10, 'warm-');
      const from = seen.length;
      const withHook = await timedPodCreates(cluster(), latWith, 50);
      const without = await timedPodCreates(cluster(), latWithout, 50);
      const handler = seen.slice(from).map((s) => s.seconds * 1000);
      expect(handler).toHaveLength(50);
      // This server reads the namespace from the API on every review (see startServer); the operator
      // answers from its informer cache, as bench/webhook.ts measures.
      process.stdout.write(
        `\n# webhook admission on kube-apiserver (50 pods each, sequential; handler includes a namespace GET)\n${formatStats('webhook_handler', summarize(handler))}\n${formatStats('pod_create_with_webhook', summarize(withHook))}\n${formatStats('pod_create_without_webhook', summarize(without))}\n`,
      );
    },
    STEP_TIMEOUT,
  );
});

// The Helm chart (charts/thoughtgate) with a real helm (scripts/helm-tools.sh builds it from the Go
// module proxy) and a real kube-apiserver (e2e/cluster):
//  - helm lint passes, helm template renders, values.schema.json refuses bad values clearly;
//  - the chart ships the CRDs of crds/ byte for byte, deploy/thoughtgate.yaml is a fresh render,
//    and the MutatingWebhookConfiguration is the one buildWebhookConfiguration() builds;
//  - the plain-kubectl install applies server-side, and its pods pass Pod Security "restricted";
//  - the operator, run with the args and env of the chart's pod and a token of the chart's
//    ServiceAccount, does everything it does (ConfigMap, status, Events, sidecar RBAC, Lease,
//    webhook Secret and caBundle) without one "forbidden", and `kubectl auth can-i` shows what that
//    ServiceAccount cannot do;
//  - helm install, upgrade and uninstall work against the API server.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubectlPath, run, type RunResult } from './cluster/cluster.js';
import { cluster, e2eCluster, getJson, kubectl, kubectlResult, until as poll } from './support/k8s.js';
import { CHART, HELM_TOOLS, installHelm, renderChart, runChartOperator, type K8sObject } from './support/helm.js';
import type { PodJson } from './support/kubelet.js';
import { ROOT, type Proc } from '../test/support/processes.js';
import { buildWebhookConfiguration } from '../webhook/config.js';
import { sidecarRole } from '../operator/rbac-plan.js';

const OPNS = 'thoughtgate-system';
const SA = 'thoughtgate-operator';
const AS = `system:serviceaccount:${OPNS}:${SA}`;
const NS = 'helm-agents';

let helmBin: string;
let stateDir: string;

const helm = (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> => run(helmBin, args, { env });

const template = (args: string[] = [], release = 'thoughtgate', namespace = OPNS): Promise<K8sObject[]> => renderChart(helmBin, args, release, namespace);
const find = (objs: K8sObject[], kind: string, name?: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind} ${name ?? ''} rendered`);
  return o;
};

beforeAll(async () => {
  // Builds helm once into ~/.cache/thoughtgate (cold: a minute or two); the last stdout line is its path.
  helmBin = await installHelm();
  stateDir = mkdtempSync(join(tmpdir(), 'tg-e2e-helm-'));
}, 15 * 60_000);

afterAll(() => {
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('the chart, rendered', () => {
  test('helm lint --strict passes, with the defaults and with every optional part on', async () => {
    for (const extra of [
      [],
      [
        '--set',
        'metrics.serviceMonitor.enabled=true',
        '--set',
        'replicaCount=1',
        '--set',
        'leaderElection.enabled=false',
        '--set',
        'webhook.failurePolicy=Ignore',
      ],
    ]) {
      const r = await helm(['lint', '--strict', CHART, ...extra]);
      expect(`${r.stdout}${r.stderr}`).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.code).toBe(0);
    }
  });

  test("the chart refuses Kubernetes 1.29 (ValidatingAdmissionPolicy v1 is served from 1.30) and takes 1.30 and providers' versions", async () => {
    const old = await helm(['template', 'tg', CHART, '--kube-version', '1.29.9']);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain('chart requires kubeVersion: >=1.30.0-0');
    for (const v of ['1.30.0', 'v1.30.2-gke.1000']) expect((await helm(['template', 'tg', CHART, '--kube-version', v])).code).toBe(0);
  });

  test('helm template renders every object in the release namespace, with the names the operator is told', async () => {
    const objs = await template();
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/thoughtgate-operator',
      'ClusterRole/thoughtgate-slack-token-reader',
      'ClusterRoleBinding/thoughtgate-operator',
      'Deployment/thoughtgate-operator',
      'MutatingWebhookConfiguration/thoughtgate',
      'PodDisruptionBudget/thoughtgate-operator',
      'Role/thoughtgate-operator',
      'RoleBinding/thoughtgate-operator',
      'Service/thoughtgate-metrics',
      'Service/thoughtgate-webhook',
      'ServiceAccount/thoughtgate-operator',
      'ValidatingAdmissionPolicy/thoughtgate-approval-decisions',
      'ValidatingAdmissionPolicyBinding/thoughtgate-approval-decisions',
    ]);
    const clusterScoped = [
      'ClusterRole',
      'ClusterRoleBinding',
      'MutatingWebhookConfiguration',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ];
    for (const o of objs) {
      if (!clusterScoped.includes(o.kind)) expect(o.metadata.namespace).toBe(OPNS);
    }
    const dep = find(objs, 'Deployment');
    const pod = dep.spec.template;
    const c = pod.spec.containers[0];
    expect(dep.spec.replicas).toBe(2);
    expect(c.image).toBe('ghcr.io/thoughtgate/thoughtgate-operator:0.1.0');
    expect(c.args).toEqual([
      'operator',
      '--metrics-port=8080',
      '--webhook-port=9443',
      '--webhook-service=thoughtgate-webhook',
      '--webhook-secret=thoughtgate-webhook-tls',
      '--webhook-config=thoughtgate',
      '--failure-policy=Fail',
      '--webhook-timeout=5s',
      '--sidecar-image=ghcr.io/thoughtgate/thoughtgate-sidecar:0.1.0',
      '--sidecar-pull-policy=IfNotPresent',
      '--injection-mode=native',
      '--log-level=info',
      '--sidecar-run-as-user=7467',
      '--capture-dns=resolv',
      '--max-pending-approvals=1000',
      '--approval-retention=24h',
    ]);
    expect(c.env.map((e: { name: string }) => e.name)).toEqual(['POD_NAMESPACE', 'POD_NAME']);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    // Helm's convention is managed-by: Helm on the objects; the POD carries the label the webhook excludes.
    expect(dep.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
    expect(pod.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'thoughtgate-operator', 'app.kubernetes.io/name': 'thoughtgate' });
    expect(pod.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(find(objs, 'PodDisruptionBudget').spec.minAvailable).toBe(1);
    expect(find(objs, 'Service', 'thoughtgate-webhook').spec.ports).toEqual([{ name: 'https-webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
  });

  test('sidecar sizing, its uid, excluded namespaces and approval settings reach the operator and the webhook', async () => {
    const objs = await template([
      '--set',
      'sidecar.runAsUser=1000670000',
      '--set',
      'sidecar.resources.requests.cpu=100m',
      '--set',
      'sidecar.resources.requests.memory=128Mi',
      '--set',
      'sidecar.resources.limits.memory=256Mi',
      '--set',
      'webhook.excludedNamespaces={infra,monitoring}',
      '--set',
      'approvals.maxPending=50',
      '--set',
      'approvals.retention=2h',
      '--set',
      'approvals.slackApiUrls={https://slack-gov.com/api/}',
    ]);
    const args: string[] = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].args;
    expect(args).toEqual(
      expect.arrayContaining([
        '--sidecar-run-as-user=1000670000',
        '--sidecar-requests=cpu=100m,memory=128Mi',
        '--sidecar-limits=memory=256Mi',
        '--excluded-namespaces=infra,monitoring',
        '--max-pending-approvals=50',
        '--approval-retention=2h',
        '--slack-api-url=https://slack-gov.com/api/',
      ]),
    );
    const mwc = objs.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    expect(mwc.webhooks[0].namespaceSelector.matchExpressions[0]).toEqual({
      key: 'kubernetes.io/metadata.name',
      operator: 'NotIn',
      values: ['infra', 'monitoring', OPNS],
    });
  });
  test('capture values reach the operator as flags', async () => {
    const objs = await template([
      '--set',
      'capture.enabled=true',
      '--set',
      'capture.ports={8080,9000}',
      '--set',
      'capture.dns=none',
      '--set',
      'capture.tlsPassthrough=true',
      '--set',
      'capture.exceptions={10.0.0.0/8:5432,fd00::/8:*}',
      '--set',
      'capture.allowBypassablePods=true',
    ]);
    const args: string[] = find(objs, 'Deployment').spec.template.spec.containers[0].args;
    expect(args.filter((a) => /capture|bypassable/.test(a))).toEqual([
      '--capture-by-default',
      '--capture-ports=8080,9000',
      '--capture-dns=none',
      '--capture-tls-passthrough',
      '--capture-allow=10.0.0.0/8:5432',
      '--capture-allow=fd00::/8:*',
      '--allow-bypassable-pods',
    ]);
    const bad = await helm(['template', 't', CHART, '--set', 'capture.exceptions={db.internal:5432}']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/capture\/exceptions\/0/);
  });

  test("no Role or ClusterRole the chart (or the operator, for sidecars) binds to workloads' ServiceAccounts grants Secrets", async () => {
    const grantsSecrets = (rules: Array<{ apiGroups?: string[]; resources?: string[] }> = []) =>
      rules.some((r) => (r.apiGroups ?? []).some((g) => g === '' || g === '*') && (r.resources ?? []).some((x) => x === 'secrets' || x === '*'));
    const operatorSa = { kind: 'ServiceAccount', name: SA, namespace: OPNS };
    for (const extra of [[], ['--set', 'approvals.tokenSecretAccess=cluster'], ['--set', 'webhook.certManager.enabled=true']]) {
      const objs = await template(extra);
      const roles = new Map(objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole').map((o) => [`${o.kind}/${o.metadata.name}`, o]));
      const secretRoles = [...roles.values()].filter((o) => grantsSecrets(o.rules));
      expect(secretRoles.length).toBeGreaterThan(0); // the operator's own (webhook CA, Slack tokens): the check sees them
      for (const b of objs.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
        // Groups (system:serviceaccounts:<ns>) and other accounts never appear in the chart's bindings.
        expect(b.subjects).toEqual([operatorSa]);
      }
      // The ClusterRole bound per namespace by hand (README, Approvals) is bound to the operator too.
      expect(grantsSecrets(roles.get('ClusterRole/thoughtgate-slack-token-reader')?.rules)).toBe(true);
    }
    // What every ServiceAccount of an injected namespace gets (operator/rbac-plan.ts).
    expect(grantsSecrets(sidecarRole('agents', {}).rules as Array<{ apiGroups?: string[]; resources?: string[] }>)).toBe(false);
    expect(JSON.stringify(sidecarRole('agents', {}))).not.toMatch(/secret/i);
  });

  test('values reach the operator: images, injection mode, failure policy, timeout, log level, leader election', async () => {
    const objs = await template([
      '--set',
      'image.tag=9.9.9',
      '--set',
      'sidecar.injectionMode=classic',
      '--set',
      'webhook.failurePolicy=Ignore',
      '--set',
      'webhook.timeoutSeconds=12',
      '--set',
      'logLevel=debug',
      '--set',
      'replicaCount=1',
      '--set',
      'leaderElection.enabled=false',
      '--set',
      'podLabels.app\\.kubernetes\\.io/managed-by=someone-else',
      '--set',
      'podLabels.team=agents',
    ]);
    const dep = find(objs, 'Deployment');
    const c = dep.spec.template.spec.containers[0];
    expect(c.image).toBe('ghcr.io/thoughtgate/thoughtgate-operator:9.9.9');
    expect(c.args).toEqual(
      expect.arrayContaining([
        '--sidecar-image=ghcr.io/thoughtgate/thoughtgate-sidecar:9.9.9',
        '--injection-mode=classic',
        '--failure-policy=Ignore',
        '--webhook-timeout=12s',
        '--log-level=debug',
        '--no-leader-election',
      ]),
    );
    // podLabels add, but cannot take away the label that keeps the webhook off the operator's pods.
    expect(dep.spec.template.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'thoughtgate-operator', team: 'agents' });
    const wh = find(objs, 'MutatingWebhookConfiguration').webhooks[0];
    expect([wh.failurePolicy, wh.timeoutSeconds]).toEqual(['Ignore', 12]);
    // One replica: no PodDisruptionBudget (minAvailable 1 would block every drain).
    expect(objs.some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
    expect(objs.some((o) => o.kind === 'ServiceMonitor')).toBe(false);
    // Slack token Secrets: readable cluster-wide only when asked for.
    expect(objs.some((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'thoughtgate-slack-token-reader')).toBe(false);
    expect(find(await template(['--set', 'approvals.tokenSecretAccess=cluster']), 'ClusterRoleBinding', 'thoughtgate-slack-token-reader').roleRef.name).toBe(
      'thoughtgate-slack-token-reader',
    );
    const sm = find(await template(['--set', 'metrics.serviceMonitor.enabled=true']), 'ServiceMonitor');
    expect(sm.spec.endpoints).toEqual([{ port: 'http-metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
  });

  test('the MutatingWebhookConfiguration is the one buildWebhookConfiguration() builds, for any release and namespace', async () => {
    for (const [release, ns, extra, fp, timeout] of [
      ['thoughtgate', OPNS, [], 'Fail', 5],
      ['tg', 'security', ['--set', 'webhook.failurePolicy=Ignore', '--set', 'webhook.timeoutSeconds=10'], 'Ignore', 10],
      ['thoughtgate', 'kube-system', [], 'Fail', 5],
    ] as const) {
      const objs = await template([...extra], release, ns);
      const mwc = find(objs, 'MutatingWebhookConfiguration');
      const svc = find(objs, 'Service', `${release === 'thoughtgate' ? 'thoughtgate' : `${release}-thoughtgate`}-webhook`);
      const want = buildWebhookConfiguration({
        name: mwc.metadata.name,
        target: { service: { name: svc.metadata.name, namespace: ns } },
        operatorNamespace: ns,
        failurePolicy: fp,
        timeoutSeconds: timeout,
      }) as { webhooks: unknown[] };
      expect(mwc.webhooks).toEqual(want.webhooks);
      expect(mwc.webhooks[0].clientConfig.caBundle).toBeUndefined();
      // The operator is told this name: it patches the caBundle of exactly this object.
      expect(find(objs, 'Deployment').spec.template.spec.containers[0].args).toContain(`--webhook-config=${mwc.metadata.name}`);
      expect(find(objs, 'ClusterRole').rules.find((r: { resources: string[] }) => r.resources.includes('mutatingwebhookconfigurations')).resourceNames).toEqual(
        [mwc.metadata.name],
      );
    }
  });

  test.each([
    [['--set', 'replicaCount=-1'], "at '/replicaCount': minimum: got -1, want 1"],
    [['--set', 'webhook.failurePolicy=Maybe'], "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'"],
    [['--set', 'webhook.timeoutSeconds=31'], "at '/webhook/timeoutSeconds': maximum: got 31, want 30"],
    [['--set', 'sidecar.injectionMode=sometimes'], "at '/sidecar/injectionMode': value must be one of 'native', 'classic'"],
    [['--set', 'logLevel=loud'], "at '/logLevel': value must be one of 'debug', 'info', 'warn', 'error'"],
    [['--set', 'replicas=3'], "additional properties 'replicas' not allowed"],
    [['--set', 'image.digest=sha256:abc'], "at '/image/digest'"],
    [['--set', 'leaderElection.enabled=false'], 'leaderElection.enabled=false needs replicaCount: 1'],
  ])('bad values are refused with a clear message: %j', async (args, message) => {
    const r = await helm(['template', 'thoughtgate', CHART, ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  test('the chart ships the CRDs of crds/, byte for byte', () => {
    const names = readdirSync(join(ROOT, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(readdirSync(join(CHART, 'crds')).sort()).toEqual(names);
    for (const f of names) {
      // On failure: cp crds/*.yaml charts/thoughtgate/crds/
      expect({ file: f, text: readFileSync(join(CHART, 'crds', f), 'utf8') }).toEqual({ file: f, text: readFileSync(join(ROOT, 'crds', f), 'utf8') });
    }
  });

  test('the packaged chart holds the same CRDs, schema and templates', async () => {
    const dest = mkdtempSync(join(tmpdir(), 'tg-helm-package-'));
    try {
      const p = await helm(['package', CHART, '--destination', dest]);
      expect(p.code).toBe(0);
      const tgz = join(dest, 'thoughtgate-0.1.0.tgz');
      const crds = readdirSync(join(ROOT, 'crds'))
        .filter((f) => f.endsWith('.yaml'))
        .sort()
        .map((f) => readFileSync(join(ROOT, 'crds', f), 'utf8'));
      const shown = (await helm(['show', 'crds', tgz])).stdout;
      for (const c of crds) expect(shown).toContain(c.trim());
      expect((await helm(['template', 't', tgz, '--set', 'replicaCount=0'])).stderr).toContain("at '/replicaCount': minimum: got 0, want 1");
      expect((await helm(['template', 'thoughtgate', tgz, '--namespace', OPNS])).stdout).toBe(
        (await helm(['template', 'thoughtgate', CHART, '--namespace', OPNS])).stdout,
      );
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });

  test('deploy/thoughtgate.yaml is a fresh render of the chart', async () => {
    const r = await run(HELM_TOOLS, ['deploy-manifest']);
    expect(r.code).toBe(0);
    // On failure: scripts/helm-tools.sh deploy-manifest > deploy/thoughtgate.yaml
    expect(readFileSync(join(ROOT, 'deploy', 'thoughtgate.yaml'), 'utf8')).toBe(r.stdout);
    const kinds = parseAllDocuments(r.stdout)
      .map((d) => (d.toJS() as K8sObject | null)?.kind)
      .filter(Boolean);
    expect(kinds[0]).toBe('Namespace');
  });
});

describe('on a real API server', () => {
  // The chart's namespace (thoughtgate-system) and cluster-scoped objects are fixed by
  // deploy/thoughtgate.yaml; the run's control plane is this file's alone while it runs, and
  // they are deleted when it ends. Its other namespaces start with "helm-".
  const e2e = e2eCluster('helm');
  let operator: Proc | null = null;
  let webhookPort: number;
  let metricsPort: number;

  /** until() with the operator's log on a timeout. */
  const until = <T>(what: string, fn: () => Promise<T | null | undefined | false>, limitMs = 30_000): Promise<T> =>
    poll(what, fn, limitMs, { detail: () => (operator ? `operator log:\n${operator.out()}${operator.err()}` : '') });
  const canI = async (args: string[]): Promise<string> => (await kubectlResult(['auth', 'can-i', ...args, `--as=${AS}`])).stdout.trim();

  e2e.cleanup(async () => {
    await operator?.stop();
  });

  test('the plain-kubectl install applies server-side, and the operator pods pass Pod Security "restricted"', async () => {
    const out = await kubectl(['apply', '--server-side', '-f', join(ROOT, 'crds'), '-f', join(ROOT, 'deploy', 'thoughtgate.yaml')]);
    expect(out).toContain('mutatingwebhookconfiguration.admissionregistration.k8s.io/thoughtgate serverside-applied');
    await kubectl(['wait', '--for=condition=Established', 'crd/governancepolicies.thoughtgate.io', 'crd/approvalchannels.thoughtgate.io', '--timeout=30s']);
    expect((await getJson(['get', 'namespace', OPNS])).metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    // No kubelet, but the controller-manager creates the ReplicaSet's pods, and PodSecurity admission
    // (enforce=restricted on the namespace) would refuse them otherwise.
    const pods = await until('the two operator pods', async () => {
      const l = await getJson(['get', 'pods', '-n', OPNS, '-l', 'app.kubernetes.io/name=thoughtgate,app.kubernetes.io/component=operator']);
      return l?.items.length === 2 ? (l.items as PodJson[]) : null;
    });
    const events = await getJson(['get', 'events', '-n', OPNS, '--field-selector', 'reason=FailedCreate']);
    expect(events.items).toEqual([]);
    expect(pods[0]!.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'thoughtgate-operator' });
  }, 60_000);

  test("the operator, run as the chart's pod with its ServiceAccount token, does all its work without a forbidden", async () => {
    await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled' });

    // Play the kubelet for one of the Deployment's pods: its args and env (POD_NAME, POD_NAMESPACE
    // from the downward API) and a token of its ServiceAccount bound to it, in a kubeconfig.
    const pod = (await getJson(['get', 'pods', '-n', OPNS, '-l', 'app.kubernetes.io/component=operator'])).items[0] as PodJson;
    expect(pod.spec.serviceAccountName).toBe(SA);
    // The pod's own ports become free loopback ports; the webhook's certificate also gets
    // 127.0.0.1. No --manage-webhook-config: like in the pod, the operator only patches the caBundle
    // of the chart's MutatingWebhookConfiguration.
    const started = await runChartOperator(pod, SA, stateDir, (port) => ['--webhook-url', `https://127.0.0.1:${port}`, '--webhook-san', '127.0.0.1']);
    operator = started.proc;
    ({ webhookPort, metricsPort } = started);
    expect((await run(kubectlPath(), ['--kubeconfig', started.kubeconfig, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], {})).stdout).toBe(
      AS,
    );
    await until('the operator ready', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200);

    // Leader election (Lease, Role in the release namespace) and the webhook Secret.
    expect((await getJson(['get', 'lease', 'thoughtgate-operator', '-n', OPNS])).spec.holderIdentity).toBe(pod.metadata.name);
    const secret = await getJson(['get', 'secret', 'thoughtgate-webhook-tls', '-n', OPNS]);
    expect(secret.type).toBe('kubernetes.io/tls');
    // The caBundle of the chart's webhook configuration (get + patch, by name).
    const caBundle = await until(
      'the caBundle',
      async () => (await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate']))?.webhooks?.[0]?.clientConfig?.caBundle as string | undefined,
    );
    expect(caBundle).toBe(secret.data['ca.crt']);
    // ...which the webhook's serving certificate chains to.
    const answer = await new Promise<any>((resolve, reject) => {
      const review = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u-1',
          operation: 'CREATE',
          namespace: NS,
          kind: { group: '', version: 'v1', kind: 'Pod' },
          object: { metadata: { name: 'p', namespace: NS }, spec: { containers: [{ name: 'a', image: 'x' }] } },
        },
      };
      const req = https.request(
        {
          host: '127.0.0.1',
          port: webhookPort,
          path: '/mutate-pods',
          method: 'POST',
          ca: Buffer.from(caBundle, 'base64'),
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve(JSON.parse(body)));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(review));
    });
    expect(answer.response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });

    // Sidecar RBAC in the labelled namespace (server-side apply of Role and RoleBinding).
    await until('the sidecar Role', () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS]));
    await until('the sidecar RoleBinding', () => getJson(['get', 'rolebinding', 'thoughtgate-sidecar', '-n', NS]));

    // A GovernancePolicy: ConfigMap (server-side apply), status (patch), an Event (create).
    await kubectl(['apply', '-n', NS, '-f', join(ROOT, 'examples', 'crds', 'governancepolicy.yaml')]);
    const cm = await until('thoughtgate-config', () => getJson(['get', 'configmap', 'thoughtgate-config', '-n', NS]));
    expect(cm.metadata.labels['app.kubernetes.io/managed-by']).toBe('thoughtgate-operator');
    const ready = await until('Ready=True', async () => {
      const gp = await getJson(['get', 'governancepolicy', 'everything', '-n', NS]);
      return gp?.status?.conditions?.find((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
    });
    expect(ready.reason).toBe('Rendered');
    await until('the Rendered event', async () => (await getJson(['get', 'events', '-n', NS, '--field-selector', 'reason=Rendered']))?.items.length > 0);

    // Withdrawal: the ConfigMap is deleted with the last policy, the sidecar RBAC with the label.
    await kubectl(['delete', 'governancepolicy', 'everything', '-n', NS]);
    await until('thoughtgate-config deleted', async () => (await kubectlResult(['get', 'configmap', 'thoughtgate-config', '-n', NS])).code !== 0);
    await kubectl(['label', 'namespace', NS, 'thoughtgate.io/inject-']);
    await until('the sidecar Role deleted', async () => (await kubectlResult(['get', 'role', 'thoughtgate-sidecar', '-n', NS])).code !== 0);
    await until('the sidecar RoleBinding deleted', async () => (await kubectlResult(['get', 'rolebinding', 'thoughtgate-sidecar', '-n', NS])).code !== 0);
    await kubectl(['label', 'namespace', NS, 'thoughtgate.io/inject=enabled']);
    await until('the sidecar Role again', () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS]));

    const log = operator.out() + operator.err();
    expect(log).toContain('"msg":"config rendered"');
    expect(log).toContain('"msg":"config withdrawn: no valid policy in namespace"');
    expect(log).not.toMatch(/forbidden/i);
    expect(log).not.toMatch(/"code\\?":403|HTTP-Code: 403/);
  }, 120_000);

  test('a GitOps re-apply of the manifests keeps the caBundle the operator patched in', async () => {
    const before = (await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate'])).webhooks[0].clientConfig.caBundle;
    expect(before).toBeTruthy();
    await kubectl(['apply', '--server-side', '-f', join(ROOT, 'deploy', 'thoughtgate.yaml')]);
    expect((await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate'])).webhooks[0].clientConfig.caBundle).toBe(before);
  });

  test('the ServiceAccount can do exactly what the operator needs (kubectl auth can-i)', async () => {
    const yes: string[][] = [
      ['list', 'governancepolicies.thoughtgate.io', '-A'],
      ['watch', 'approvalchannels.thoughtgate.io', '-A'],
      ['patch', 'governancepolicies.thoughtgate.io', '--subresource=status', '-n', NS],
      ['patch', 'approvalchannels.thoughtgate.io', '--subresource=status', '-n', NS],
      ['patch', 'approvalrequests.thoughtgate.io', '--subresource=status', '-n', NS],
      ['watch', 'approvalrequests.thoughtgate.io', '-A'],
      ['get', 'approvalrequests.thoughtgate.io', '-n', NS],
      ['delete', 'approvalrequests.thoughtgate.io', '-n', NS],
      ['watch', 'approvaldecisions.thoughtgate.io', '-A'],
      ['patch', 'approvaldecisions.thoughtgate.io', '--subresource=status', '-n', NS],
      // Only ever as a dry run, to prove the identity policy is enforced (see rbac.yaml).
      ['create', 'approvaldecisions.thoughtgate.io', '-n', NS],
      ['get', 'validatingadmissionpolicies.admissionregistration.k8s.io/thoughtgate-approval-decisions'],
      ['get', 'validatingadmissionpolicybindings.admissionregistration.k8s.io/thoughtgate-approval-decisions'],
      ['list', 'configmaps', '-A'],
      ['watch', 'configmaps', '-A'],
      ['create', 'configmaps/thoughtgate-config', '-n', NS],
      ['patch', 'configmaps/thoughtgate-config', '-n', NS],
      ['delete', 'configmaps/thoughtgate-config', '-n', NS],
      ['get', 'configmaps/thoughtgate-config', '-n', NS],
      ['create', 'events', '-n', NS],
      // The audit report's informer (source=thoughtgate-audit), and what the sidecar Role grants.
      ['list', 'events', '-A'],
      ['watch', 'events', '-A'],
      ['patch', 'events', '-n', NS],
      ['get', 'events', '-n', NS],
      ['list', 'namespaces'],
      ['watch', 'namespaces'],
      ['list', 'pods', '-A'],
      ['watch', 'pods', '-A'],
      ['create', 'roles/thoughtgate-sidecar', '-n', NS],
      ['patch', 'rolebindings/thoughtgate-sidecar', '-n', NS],
      ['delete', 'roles/thoughtgate-sidecar', '-n', NS],
      ['get', 'mutatingwebhookconfigurations/thoughtgate'],
      ['patch', 'mutatingwebhookconfigurations/thoughtgate'],
      ['create', 'leases.coordination.k8s.io', '-n', OPNS],
      ['update', 'leases.coordination.k8s.io/thoughtgate-operator', '-n', OPNS],
      ['create', 'secrets', '-n', OPNS],
      ['get', 'secrets/thoughtgate-webhook-tls', '-n', OPNS],
      ['update', 'secrets/thoughtgate-webhook-tls', '-n', OPNS],
    ];
    const no: string[][] = [
      // Secrets: none outside its own namespace, and in it none but its own.
      ['get', 'secrets', '-n', 'default'],
      ['get', 'secrets/thoughtgate-webhook-tls', '-n', NS],
      ['list', 'secrets', '-A'],
      ['get', 'secrets/slack-bot-token', '-n', NS],
      ['list', 'secrets', '-n', OPNS],
      ['get', 'secrets/other', '-n', OPNS],
      ['create', 'secrets', '-n', NS],
      // Namespaces are only watched.
      ['delete', 'namespaces'],
      ['create', 'namespaces'],
      ['patch', 'namespaces/default'],
      // Only its own webhook configuration, and only get/patch.
      ['patch', 'mutatingwebhookconfigurations/other'],
      ['create', 'mutatingwebhookconfigurations'],
      ['delete', 'mutatingwebhookconfigurations/thoughtgate'],
      ['patch', 'validatingwebhookconfigurations/thoughtgate'],
      // ConfigMaps and RBAC: only the objects it owns, and no escalation.
      ['get', 'configmaps/kube-root-ca.crt', '-n', NS],
      ['patch', 'configmaps/other', '-n', NS],
      ['create', 'configmaps', '-n', NS],
      ['update', 'configmaps/thoughtgate-config', '-n', NS],
      ['create', 'roles', '-n', NS],
      ['patch', 'roles/admin', '-n', NS],
      ['escalate', 'roles', '-n', NS],
      ['bind', 'clusterroles'],
      ['create', 'clusterrolebindings'],
      // Not its business at all.
      ['create', 'pods', '-n', NS],
      ['get', 'pods/exec', '-n', NS],
      ['patch', 'pods', '-n', NS],
      ['create', 'serviceaccounts', '--subresource=token', '-n', OPNS],
      ['impersonate', 'serviceaccounts'],
      ['update', 'governancepolicies.thoughtgate.io', '-n', NS],
      ['delete', 'governancepolicies.thoughtgate.io', '-n', NS],
      ['patch', 'approvalchannels.thoughtgate.io', '-n', NS],
      ['delete', 'approvalchannels.thoughtgate.io', '-n', NS],
      ['update', 'approvalrequests.thoughtgate.io', '--subresource=status', '-n', NS],
      // People decide; the operator only reports whether a decision counted, and reads the identity policy.
      ['patch', 'approvaldecisions.thoughtgate.io', '-n', NS],
      ['patch', 'validatingadmissionpolicies.admissionregistration.k8s.io/thoughtgate-approval-decisions'],
      ['get', 'validatingadmissionpolicies.admissionregistration.k8s.io/other'],
      ['update', 'leases.coordination.k8s.io/kube-controller-manager', '-n', 'kube-system'],
      ['update', 'leases.coordination.k8s.io/other', '-n', OPNS],
    ];
    const got = async (list: string[][]) => Object.fromEntries(await Promise.all(list.map(async (a) => [a.join(' '), await canI(a)])));
    expect(await got(yes)).toEqual(Object.fromEntries(yes.map((a) => [a.join(' '), 'yes'])));
    expect(await got(no)).toEqual(Object.fromEntries(no.map((a) => [a.join(' '), 'no'])));

    // A namespace that uses approvals lets the operator read its Slack token, as the README says;
    // still no list, and nothing in other namespaces.
    await kubectl([
      'create',
      'rolebinding',
      'thoughtgate-slack-token',
      '-n',
      NS,
      '--clusterrole=thoughtgate-slack-token-reader',
      `--serviceaccount=${OPNS}:${SA}`,
    ]);
    expect(
      await got([
        ['get', 'secrets/slack-bot-token', '-n', NS],
        ['list', 'secrets', '-n', NS],
        ['get', 'secrets/slack-bot-token', '-n', 'default'],
      ]),
    ).toEqual({ [`get secrets/slack-bot-token -n ${NS}`]: 'yes', [`list secrets -n ${NS}`]: 'no', ['get secrets/slack-bot-token -n default']: 'no' });
  }, 60_000);

  test("the webhook never holds up the operator's own pods; other pods of a labelled namespace wait for it", async () => {
    // No pod serves the Service behind the chart's webhook here, and failurePolicy is Fail.
    const template = (await getJson(['get', 'deployment', 'thoughtgate-operator', '-n', OPNS])).spec.template;
    // The operator's pod spec in another (labelled) namespace, where its ServiceAccount does not exist.
    const asPod = (name: string, labels: Record<string, string>) =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { ...template.spec, serviceAccountName: 'default' } });
    const own = await kubectlResult(['create', '-n', NS, '-f', '-'], asPod('operator-lookalike', template.metadata.labels));
    expect(own.stderr).toBe('');
    expect(own.code).toBe(0);
    const other = await kubectlResult(['create', '-n', NS, '-f', '-'], asPod('agent', { app: 'agent' }));
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain('failed calling webhook "pods.thoughtgate.io"');
  }, 60_000);

  test('helm refuses bad values before touching the cluster', async () => {
    const r = await helm(['install', 'bad', CHART, '-n', 'helm-bad', '--create-namespace', '--set', 'webhook.failurePolicy=Maybe'], {
      ...process.env,
      KUBECONFIG: cluster().kubeconfig,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'");
    expect((await kubectlResult(['get', 'namespace', 'helm-bad'])).code).not.toBe(0);
  });

  test('helm install, upgrade and uninstall against the API server', async () => {
    const env = { ...process.env, KUBECONFIG: cluster().kubeconfig };
    // The ApprovalDecision identity policy has one name per cluster (like the CRDs: one ThoughtGate
    // per cluster); the plain-kubectl install above made it, and Helm adopts nothing it did not make.
    await kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', 'thoughtgate-approval-decisions']);
    const install = await helm(['install', 'tg', CHART, '-n', 'helm-test', '--create-namespace', '--set', 'webhook.failurePolicy=Ignore'], env);
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    expect(install.stdout).toContain('STATUS: deployed');
    expect(install.stdout).toContain('ThoughtGate 0.1.0 is installed in namespace helm-test.');
    const mwc = await getJson(['get', 'mutatingwebhookconfiguration', 'tg-thoughtgate']);
    expect(mwc.webhooks[0].clientConfig.service).toEqual({ name: 'tg-thoughtgate-webhook', namespace: 'helm-test', port: 443, path: '/mutate-pods' });
    expect(mwc.webhooks[0].namespaceSelector.matchExpressions[0].values).toContain('helm-test');
    expect(await getJson(['get', 'clusterrole', 'tg-thoughtgate-operator'])).not.toBeNull();
    expect(await getJson(['get', 'role', 'tg-thoughtgate-operator', '-n', 'helm-test'])).not.toBeNull();

    const upgrade = await helm(['upgrade', 'tg', CHART, '-n', 'helm-test', '--reuse-values', '--set', 'logLevel=debug', '--set', 'replicaCount=3'], env);
    expect(upgrade.code).toBe(0);
    const dep = await getJson(['get', 'deployment', 'tg-thoughtgate-operator', '-n', 'helm-test']);
    expect(dep.spec.replicas).toBe(3);
    expect(dep.spec.template.spec.containers[0].args).toEqual(
      expect.arrayContaining(['--log-level=debug', '--failure-policy=Ignore', '--webhook-config=tg-thoughtgate']),
    );
    expect((await helm(['status', 'tg', '-n', 'helm-test', '-o', 'json'], env)).stdout).toContain('"version":2');

    const uninstall = await helm(['uninstall', 'tg', '-n', 'helm-test', '--wait'], env);
    expect(uninstall.code).toBe(0);
    for (const what of [
      ['mutatingwebhookconfiguration', 'tg-thoughtgate'],
      ['clusterrole', 'tg-thoughtgate-operator'],
      ['clusterrolebinding', 'tg-thoughtgate-operator'],
      ['deployment', 'tg-thoughtgate-operator', '-n', 'helm-test'],
    ]) {
      expect({ what, code: (await kubectlResult(['get', ...what])).code }).toEqual({ what, code: 1 });
    }
    // Helm never deletes CRDs (that would delete every policy); the README says how.
    expect(await getJson(['get', 'crd', 'governancepolicies.thoughtgate.io'])).not.toBeNull();
  }, 120_000);
});

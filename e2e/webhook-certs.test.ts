// The chart with webhook.certManager.enabled, rendered by the real helm (scripts/helm-tools.sh) and
// applied to a real kube-apiserver (e2e/cluster) that knows cert-manager's own CRDs: the official
// ones of cert-manager's Go module (deploy/crds), fetched through the Go module proxy. No
// cert-manager controller runs: the point is that the API server accepts what the chart renders
// (strict field validation against cert-manager's schemas), and that the operator, run as the
// chart's pod with the chart's ServiceAccount, serves the certificate mounted from cert-manager's
// Secret, re-reads it on renewal, and touches neither Secrets nor the caBundle.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parseAllDocuments } from 'yaml';
import { kubectlPath, run } from './cluster/cluster.js';
import { e2eCluster, getJson, kubectl, kubectlResult, until as poll } from './support/k8s.js';
import { CHART, installHelm, runChartOperator, type K8sObject } from './support/helm.js';
import type { PodJson } from './support/kubelet.js';
import type { Proc } from '../test/support/processes.js';
import { webhookSans } from '../webhook/cert-plan.js';
import { issueCa, issueServing, type IssuedCa } from '../webhook/x509.js';

const CERT_MANAGER = 'github.com/cert-manager/cert-manager@v1.19.2';
// Names in the run's shared control plane: namespaces and release prefixed by this file's tag.
const OPNS = 'certs-system';
const CORP = 'certs-corp';
const SA = 'thoughtgate-operator';
const CM = ['--set', 'webhook.certManager.enabled=true'];
const DAY = 24 * 3600 * 1000;

let helmBin: string;
let stateDir: string;
let crdDir: string;

async function template(args: string[], release = 'thoughtgate', namespace = OPNS): Promise<{ text: string; objs: K8sObject[] }> {
  const r = await run(helmBin, ['template', release, CHART, '--namespace', namespace, ...args]);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')}: ${r.stderr}`);
  return {
    text: r.stdout,
    objs: parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as K8sObject)
      .filter((o) => o),
  };
}
const find = (objs: K8sObject[], kind: string, name?: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind} ${name ?? ''} rendered`);
  return o;
};
const operatorContainer = (objs: K8sObject[]) => find(objs, 'Deployment').spec.template.spec.containers[0];

beforeAll(async () => {
  helmBin = await installHelm();
  stateDir = mkdtempSync(join(tmpdir(), 'tg-e2e-webhook-certs-'));
  // cert-manager's CRDs as it publishes them, from its Go module (module cache: fetched once).
  const dl = await run('go', ['mod', 'download', '-json', CERT_MANAGER], { env: { ...process.env, GOFLAGS: '-mod=mod' } });
  if (dl.code !== 0) throw new Error(`go mod download ${CERT_MANAGER}: ${dl.stderr}${dl.stdout}`);
  crdDir = join((JSON.parse(dl.stdout) as { Dir: string }).Dir, 'deploy', 'crds');
}, 15 * 60_000);

afterAll(() => {
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('the chart with webhook.certManager.enabled, rendered', () => {
  test('default: a self-signed Issuer, a CA Certificate, a CA Issuer and the serving Certificate for the Service names', async () => {
    const { objs } = await template(CM);
    const cm = objs
      .filter((o) => o.apiVersion === 'cert-manager.io/v1')
      .map((o) => `${o.kind}/${o.metadata.name}`)
      .sort();
    expect(cm).toEqual([
      'Certificate/thoughtgate-webhook',
      'Certificate/thoughtgate-webhook-ca',
      'Issuer/thoughtgate-selfsigned',
      'Issuer/thoughtgate-webhook-ca',
    ]);
    const ca = find(objs, 'Certificate', 'thoughtgate-webhook-ca');
    expect(ca.spec).toMatchObject({
      isCA: true,
      secretName: 'thoughtgate-webhook-ca',
      privateKey: { algorithm: 'ECDSA', size: 256 },
      issuerRef: { name: 'thoughtgate-selfsigned', kind: 'Issuer' },
    });
    expect(find(objs, 'Issuer', 'thoughtgate-selfsigned').spec).toEqual({ selfSigned: {} });
    expect(find(objs, 'Issuer', 'thoughtgate-webhook-ca').spec).toEqual({ ca: { secretName: 'thoughtgate-webhook-ca' } });
    const serving = find(objs, 'Certificate', 'thoughtgate-webhook');
    expect(serving.metadata.namespace).toBe(OPNS);
    expect(serving.spec).toMatchObject({
      secretName: 'thoughtgate-webhook-tls',
      dnsNames: [`thoughtgate-webhook.${OPNS}.svc`, `thoughtgate-webhook.${OPNS}.svc.cluster.local`],
      duration: '2160h',
      renewBefore: '720h',
      usages: ['server auth', 'digital signature'],
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      issuerRef: { name: 'thoughtgate-webhook-ca', kind: 'Issuer', group: 'cert-manager.io' },
    });
    // The Service the names are for is the one the webhook configuration calls.
    const mwc = find(objs, 'MutatingWebhookConfiguration');
    expect(mwc.webhooks[0].clientConfig.service).toMatchObject({ name: 'thoughtgate-webhook', namespace: OPNS });
    expect(mwc.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${OPNS}/thoughtgate-webhook` });
    expect(mwc.webhooks[0].clientConfig.caBundle).toBeUndefined();
  });

  test('the operator reads the mounted Secret and manages no certificate: no --webhook-secret, no Secret or caBundle RBAC', async () => {
    const { objs } = await template(CM);
    const c = operatorContainer(objs);
    expect(c.args).toContain('--webhook-cert-dir=/etc/thoughtgate/webhook-tls');
    expect(c.args.some((a: string) => a.startsWith('--webhook-secret'))).toBe(false);
    expect(c.volumeMounts).toContainEqual({ name: 'webhook-tls', mountPath: '/etc/thoughtgate/webhook-tls', readOnly: true });
    expect(find(objs, 'Deployment').spec.template.spec.volumes).toContainEqual({
      name: 'webhook-tls',
      secret: { secretName: find(objs, 'Certificate', 'thoughtgate-webhook').spec.secretName },
    });
    const rules = [...find(objs, 'Role').rules, ...find(objs, 'ClusterRole', 'thoughtgate-operator').rules] as Array<{ resources: string[] }>;
    expect(rules.flatMap((r) => r.resources)).not.toContain('mutatingwebhookconfigurations');
    expect(find(objs, 'Role').rules.flatMap((r: { resources: string[] }) => r.resources)).not.toContain('secrets');

    // Off (the default): none of it, and the operator keeps its CA in the Secret.
    const plain = (await template([])).objs;
    expect(plain.some((o) => o.apiVersion === 'cert-manager.io/v1')).toBe(false);
    expect(find(plain, 'MutatingWebhookConfiguration').metadata.annotations).toBeUndefined();
    expect(operatorContainer(plain).args).toContain('--webhook-secret=thoughtgate-webhook-tls');
    expect(find(plain, 'Role').rules.flatMap((r: { resources: string[] }) => r.resources)).toContain('secrets');
  });

  test('an issuerRef replaces the rendered chain', async () => {
    const { objs } = await template([
      ...CM,
      '--set',
      'webhook.certManager.issuerRef.name=corp-ca',
      '--set',
      'webhook.certManager.issuerRef.kind=ClusterIssuer',
      '--set',
      'webhook.certManager.duration=720h',
      '--set',
      'webhook.certManager.renewBefore=240h',
    ]);
    expect(objs.filter((o) => o.apiVersion === 'cert-manager.io/v1').map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Certificate/thoughtgate-webhook']);
    expect(find(objs, 'Certificate').spec).toMatchObject({
      duration: '720h',
      renewBefore: '240h',
      issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    });
  });

  test.each([
    [['--set', 'webhook.certManager.issuerRef.kind=ClusterIssuer'], "at '/webhook/certManager/issuerRef': properties 'name' required"],
    [
      ['--set', 'webhook.certManager.issuerRef.kind=Vault', '--set', 'webhook.certManager.issuerRef.name=x'],
      "at '/webhook/certManager/issuerRef/kind': value must be one of 'Issuer', 'ClusterIssuer'",
    ],
    [['--set', 'webhook.certManager.duration=90d'], "at '/webhook/certManager/duration'"],
    [['--set', 'webhook.certManager.enable=true'], "additional properties 'enable' not allowed"],
  ])('bad certManager values are refused: %j', async (args, message) => {
    const r = await run(helmBin, ['template', 'thoughtgate', CHART, ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  test('helm lint --strict passes with cert-manager on', async () => {
    const r = await run(helmBin, ['lint', '--strict', CHART, ...CM]);
    expect(r.code).toBe(0);
  });
});

describe('on a real API server with the cert-manager CRDs', () => {
  // The chart's MutatingWebhookConfiguration and ClusterRoles are cluster-scoped with fixed names;
  // the run's control plane is this file's alone while it runs, and they are deleted when it ends.
  const e2e = e2eCluster('certs');
  let operator: Proc | null = null;

  /** until() with the operator's log on a timeout. */
  const until = <T>(what: string, fn: () => Promise<T | null | undefined | false>, limitMs = 30_000): Promise<T> =>
    poll(what, fn, limitMs, { detail: () => (operator ? `operator log:\n${operator.out()}${operator.err()}` : '') });

  beforeAll(async () => {
    // cert-manager's CRDs stay for the rest of the run: nothing else uses them.
    const crds = [
      'cert-manager.io_certificates.yaml',
      'cert-manager.io_issuers.yaml',
      'cert-manager.io_clusterissuers.yaml',
      'cert-manager.io_certificaterequests.yaml',
    ];
    await kubectl(['apply', '--server-side', ...crds.flatMap((f) => ['-f', join(crdDir, f)])]);
    await kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/certificates.cert-manager.io',
      'crd/issuers.cert-manager.io',
      'crd/clusterissuers.cert-manager.io',
    ]);
  }, 120_000);

  e2e.cleanup(async () => {
    await operator?.stop();
    await kubectl(['delete', 'clusterissuer', 'corp-ca', '--ignore-not-found']);
  });

  test('the API server accepts the rendered chart, cert-manager objects included, under strict field validation', async () => {
    await e2e.namespace('system');
    const { text, objs } = await template(CM);
    const out = await kubectl(['apply', '--server-side', '--validate=strict', '-f', '-'], text);
    expect(out).toContain('certificate.cert-manager.io/thoughtgate-webhook serverside-applied');
    expect(out).toContain('issuer.cert-manager.io/thoughtgate-webhook-ca serverside-applied');
    // Stored as rendered: cert-manager's schema pruned nothing.
    for (const [kind, name] of [
      ['certificate', 'thoughtgate-webhook'],
      ['certificate', 'thoughtgate-webhook-ca'],
      ['issuer', 'thoughtgate-selfsigned'],
      ['issuer', 'thoughtgate-webhook-ca'],
    ] as const) {
      const stored = await getJson(['get', kind, name, '-n', OPNS]);
      expect({ kind, name, spec: stored.spec }).toEqual({
        kind,
        name,
        spec: objs.find((o) => o.kind.toLowerCase() === kind && o.metadata.name === name)!.spec,
      });
    }
    const mwc = await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate']);
    expect(mwc.metadata.annotations['cert-manager.io/inject-ca-from']).toBe(`${OPNS}/thoughtgate-webhook`);

    // The schema is really checked: a misspelt field or a bad enum is refused.
    const bad = structuredClone(find(objs, 'Certificate', 'thoughtgate-webhook'));
    bad.metadata.name = 'bad';
    bad.spec.dnsName = bad.spec.dnsNames;
    const refused = await kubectlResult(['apply', '--server-side', '--validate=strict', '--dry-run=server', '-f', '-'], JSON.stringify(bad));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/\.spec\.dnsName: field not declared in schema/);
    bad.spec = { ...find(objs, 'Certificate', 'thoughtgate-webhook').spec, privateKey: { algorithm: 'DSA' } };
    expect((await kubectlResult(['apply', '--server-side', '--dry-run=server', '-f', '-'], JSON.stringify(bad))).stderr).toMatch(
      /spec.privateKey.algorithm: Unsupported value: "DSA"/,
    );
  }, 120_000);

  test('an issuerRef to a ClusterIssuer renders a release the API server accepts too', async () => {
    await e2e.namespace('corp');
    await kubectl(
      ['apply', '--server-side', '--validate=strict', '-f', '-'],
      JSON.stringify({ apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: 'corp-ca' }, spec: { ca: { secretName: 'corp-ca' } } }),
    );
    const { text } = await template(
      [...CM, '--set', 'webhook.certManager.issuerRef.name=corp-ca', '--set', 'webhook.certManager.issuerRef.kind=ClusterIssuer'],
      'corp',
      CORP,
    );
    expect(await kubectl(['apply', '--server-side', '--validate=strict', '-f', '-'], text)).toContain(
      'certificate.cert-manager.io/corp-thoughtgate-webhook serverside-applied',
    );
    expect((await getJson(['get', 'certificate', 'corp-thoughtgate-webhook', '-n', CORP])).spec.issuerRef).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
  }, 60_000);

  test("the operator, run as the chart's pod, serves cert-manager's mounted certificate, picks up a renewal, and manages no certificate", async () => {
    // The controller-manager creates the Deployment's pods (no kubelet runs them).
    const pod = await until(
      'an operator pod',
      async () => (await getJson(['get', 'pods', '-n', OPNS, '-l', 'app.kubernetes.io/component=operator']))?.items?.[0] as PodJson | undefined,
    );
    // Play cert-manager and the kubelet: the Certificate's Secret, mounted as the kubelet does
    // (files behind a ..data symlink that a renewal swaps at once). 127.0.0.1 is added because the
    // test dials the webhook directly.
    const ca: IssuedCa = await issueCa({ now: new Date(), validityMs: 30 * DAY });
    const sans = webhookSans('thoughtgate-webhook', OPNS, ['127.0.0.1']);
    const certDir = join(stateDir, 'webhook-tls');
    mkdirSync(certDir);
    let generation = 0;
    const mount = async (): Promise<string> => {
      const s = await issueServing({ ca, sans, now: new Date(), validityMs: 7 * DAY });
      const version = `..v${++generation}`;
      mkdirSync(join(certDir, version));
      for (const [f, text] of [
        ['tls.crt', s.cert],
        ['tls.key', s.key],
        ['ca.crt', ca.cert],
      ] as const)
        writeFileSync(join(certDir, version, f), text);
      symlinkSync(version, join(certDir, '..data_tmp'));
      renameSync(join(certDir, '..data_tmp'), join(certDir, '..data'));
      if (generation === 1) for (const f of ['tls.crt', 'tls.key', 'ca.crt']) symlinkSync(join('..data', f), join(certDir, f));
      return new X509Certificate(s.cert).fingerprint256;
    };
    const first = await mount();

    const { proc, args, kubeconfig, webhookPort, metricsPort } = await runChartOperator(pod, SA, stateDir, () => ['--webhook-cert-dir', certDir]);
    operator = proc;
    expect(args).toContain('--webhook-cert-dir=/etc/thoughtgate/webhook-tls');
    await until('the operator ready', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200);

    const served = () =>
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: webhookPort, path: '/healthz', ca: ca.cert, servername: `thoughtgate-webhook.${OPNS}.svc`, agent: false }, (res) => {
            const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
            res.resume();
            res.on('end', () => resolve(res.statusCode === 200 ? fp : `HTTP ${res.statusCode}`));
          })
          .on('error', reject);
      });
    expect(await served()).toBe(first);
    const renewed = await mount();
    // The webhook server re-reads the files every 10 s.
    await until('the renewed certificate served', async () => (await served()) === renewed, 30_000);
    // ThoughtGateWebhookCertificateExpiring reads the notAfter of the certificate served now.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const notAfter = Date.parse(new X509Certificate(readFileSync(join(certDir, 'tls.crt'))).validTo) / 1000;
    expect(metrics).toMatch(new RegExp(`^thoughtgate_operator_webhook_certificate_expiry_timestamp_seconds ${notAfter}$`, 'm'));

    // Nothing of the operator's own certificate management ran: no Secret, no caBundle.
    expect((await kubectlResult(['get', 'secret', 'thoughtgate-webhook-tls', '-n', OPNS])).code).not.toBe(0);
    expect((await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate'])).webhooks[0].clientConfig.caBundle).toBeUndefined();
    const log = operator.out() + operator.err();
    expect(log).toContain('"msg":"webhook certificate from cert-manager"');
    expect(log).toContain('"msg":"webhook: serving a new TLS certificate"');
    expect(log).not.toMatch(/forbidden/i);
    expect(
      (await run(kubectlPath(), ['--kubeconfig', kubeconfig, 'auth', 'can-i', 'get', 'secrets/thoughtgate-webhook-tls', '-n', OPNS], {})).stdout.trim(),
    ).toBe('no');
  }, 120_000);
});

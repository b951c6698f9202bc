// `thoughtgate check` on a real kube-apiserver: a healthy installation (CRDs applied, the real
// operator running as the e2e harness runs it, a Valid policy) passes; then, one at a time,
// something is broken and exactly the check about it fails (or warns) with its hint, and is
// repaired before the next. Also --pre: a fresh cluster with an admin passes, a restricted user
// (a ServiceAccount token) fails only the installer-permissions check, and an installed cluster
// fails only the webhook-conflict check.
//
// This control plane has a controller manager but no scheduler nor kubelet: the operator
// Deployment's pod is never run (the operator runs as a process, like in the other e2e files),
// so the test plays the kubelet and writes the pod's Ready status; the Deployment controller then
// computes the Deployment's availability itself.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, run } from './cluster/cluster.js';
import { cluster, e2eCluster, getJson, kubectl, kubectlResult, until } from './support/k8s.js';
import { startOperatorProcess, type OperatorProc } from './support/stack.js';
import { CLI, freePort } from '../test/support/processes.js';
import { check } from '../check/run.js';
import { checkOptions, type CheckFlags } from '../check/options.js';
import type { CheckResult } from '../check/model.js';
import type { JsonReport } from '../check/render.js';
import { buildWebhookConfiguration } from '../webhook/config.js';
import { applyDecisionPolicy } from './support/approval-pod.js';
import { issueCa } from '../webhook/x509.js';

const e2e = e2eCluster('check');
const OPNS = e2e.ns('system');
const NS = e2e.ns('agents');
const DEPLOYMENT = 'thoughtgate-operator';
const SELECTOR = 'app.kubernetes.io/name=thoughtgate,app.kubernetes.io/component=operator';
const DAY = 24 * 3600 * 1000;
const dir = mkdtempSync(join(tmpdir(), 'tg-e2e-check-'));

/** The check in-process, as `thoughtgate check -o json`. */
async function report(flags: CheckFlags = {}, kubeconfig = cluster().kubeconfig): Promise<{ code: number; doc: JsonReport }> {
  let out = '';
  const o = checkOptions({ namespace: OPNS, output: 'json', ...flags });
  const code = await check({
    ...o,
    kubeconfig,
    write: (s) => {
      out += s;
    },
  });
  return { code, doc: JSON.parse(out) as JsonReport };
}
const notOk = (doc: JsonReport) => doc.checks.filter((c) => c.status === 'fail' || c.status === 'warn').map((c) => `${c.status} ${c.id}`);
const byId = (doc: JsonReport, id: string) => doc.checks.find((c) => c.id === id) as CheckResult;

/** Runs the check and expects exactly `expected` ("fail <id>" / "warn <id>") not to pass, each with a hint. */
async function expectOnly(expected: string[], flags: CheckFlags = {}): Promise<JsonReport> {
  const { code, doc } = await report(flags);
  expect(notOk(doc)).toEqual(expected);
  for (const c of doc.checks.filter((x) => x.status === 'fail' || x.status === 'warn')) expect(c.hint).toBeTruthy();
  expect(code).toBe(expected.some((e) => e.startsWith('fail')) ? 1 : 0);
  return doc;
}

/** The API server starts (and stops) enforcing a policy moments after its binding is created (deleted). */
const enforcement = (status: 'ok' | 'fail') =>
  until(`approvals/decision-enforced ${status}`, async () => byId((await report()).doc, 'approvals/decision-enforced').status === status);

const cli = (args: string[]) => run(process.execPath, [CLI, 'check', '--kubeconfig', cluster().kubeconfig, '--namespace', OPNS, ...args]);

function kubeconfigWithToken(token: string): string {
  const file = join(dir, 'restricted.kubeconfig');
  const c = cluster();
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: c.server, 'certificate-authority': c.caFile } }],
      users: [{ name: 'installer', user: { token } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'installer' } }],
      'current-context': 'e2e',
    }),
  );
  return file;
}

const deploymentYaml = JSON.stringify({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: DEPLOYMENT, namespace: OPNS, labels: { 'app.kubernetes.io/name': 'thoughtgate', 'app.kubernetes.io/component': 'operator' } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { 'app.kubernetes.io/name': 'thoughtgate', 'app.kubernetes.io/component': 'operator' } },
    template: {
      metadata: { labels: { 'app.kubernetes.io/name': 'thoughtgate', 'app.kubernetes.io/component': 'operator' } },
      spec: {
        containers: [
          {
            name: 'operator',
            image: 'ghcr.io/thoughtgate/thoughtgate-operator:e2e',
            // As the chart renders them (charts/thoughtgate/templates/deployment.yaml).
            args: ['operator', '--webhook-service=thoughtgate-webhook', '--webhook-secret=thoughtgate-webhook-tls', '--webhook-config=thoughtgate'],
          },
        ],
      },
    },
  },
});

/** Plays the kubelet: the Deployment's pods are Running and Ready, then the Deployment is available. */
async function podsReady(): Promise<void> {
  const pods = await until('the operator pod', async () => {
    const l = await getJson(['get', 'pods', '-n', OPNS, '-l', SELECTOR]);
    const live = (l?.items ?? []).filter((p: { metadata: { deletionTimestamp?: string } }) => !p.metadata.deletionTimestamp);
    return live.length ? (live as Array<{ metadata: { name: string } }>) : null;
  });
  const status = {
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] },
  };
  for (const p of pods) await kubectl(['patch', 'pod', p.metadata.name, '-n', OPNS, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
  await until('the Deployment available', async () => (await getJson(['get', 'deployment', DEPLOYMENT, '-n', OPNS]))?.status?.availableReplicas === 1, 60_000);
}

/** The documented example policy ("everything"); `broken` gets a Cedar syntax error, which only the operator sees. */
const EXAMPLE = readFileSync(join(repoRoot(), 'examples', 'crds', 'governancepolicy.yaml'), 'utf8');
const broken = EXAMPLE.replace('name: everything\n', 'name: broken\n').replace('@id("small-sums")', '@id("small-sums") permit(principal action resource);');
const apply = (obj: object) => kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(obj));
const condition = (obj: any, type: string) => obj?.status?.conditions?.find((c: { type: string }) => c.type === type);

beforeAll(async () => {
  await e2e.namespace('system');
  await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled' });
}, 60_000);

describe('before installing (--pre)', () => {
  test('a fresh cluster and an admin: every check passes, exit 0, the human output has ✔ and no ✖', async () => {
    const r = await cli(['--pre']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('✔ you may create and grant everything the chart installs');
    expect(r.stdout).toContain('serves ValidatingAdmissionPolicy v1 (the ApprovalDecision identity check) and native sidecars');
    expect(r.stdout).not.toContain('✖');
    expect(r.stdout).toContain('Status check results are ✔');
  }, 60_000);

  test('a user without the permissions (a ServiceAccount token) fails the installer-permissions check alone, listing what is missing', async () => {
    // It may read what the pre-install checks read, and nothing else.
    await kubectl(['create', 'serviceaccount', 'installer', '-n', OPNS]);
    await kubectl([
      'create',
      'clusterrole',
      'check-e2e-reader',
      '--verb=get,list',
      '--resource=customresourcedefinitions,mutatingwebhookconfigurations,namespaces',
    ]);
    e2e.cleanup(() => kubectlResult(['delete', 'clusterrole,clusterrolebinding', 'check-e2e-reader']));
    await kubectl(['create', 'clusterrolebinding', 'check-e2e-reader', '--clusterrole=check-e2e-reader', `--serviceaccount=${OPNS}:installer`]);
    const token = (await kubectl(['create', 'token', 'installer', '-n', OPNS])).trim();
    const { code, doc } = await report({ pre: true }, kubeconfigWithToken(token));
    expect(notOk(doc)).toEqual(['fail pre/rbac']);
    expect(code).toBe(1);
    const rbac = byId(doc, 'pre/rbac');
    expect(rbac.items).toContain('create customresourcedefinitions.apiextensions.k8s.io (cluster-wide): the chart installs the CRDs (crds/)');
    expect(rbac.items).toContain(`create deployments.apps in ${OPNS}: the chart creates it`);
    expect(rbac.items).not.toContainEqual(expect.stringMatching(/^get customresourcedefinitions/));
    expect(rbac.hint).toContain('cluster administrator');
  }, 60_000);

  test('an API server that cannot be reached: exit 2 and a message', async () => {
    const port = await freePort();
    const file = join(dir, 'unreachable.kubeconfig');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'x', cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'x', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'x', user: 'x' } }],
        'current-context': 'x',
      }),
    );
    const r = await run(process.execPath, [CLI, 'check', '--kubeconfig', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('thoughtgate check: cannot reach the Kubernetes API server');
    expect((await run(process.execPath, [CLI, 'check', '--output', 'yaml'])).code).toBe(2);
  }, 30_000);
});

describe('an installation', () => {
  let op: OperatorProc | undefined;
  beforeAll(async () => {
    await kubectl(['apply', '-f', '-'], deploymentYaml);
    // The chart's ApprovalDecision identity policy (labelled as the chart does: the harness deletes it).
    await applyDecisionPolicy();
    await enforcement('ok');
    await podsReady();
    op = await startOperatorProcess(cluster(), { identity: 'op-1', namespace: OPNS, webhookPort: await freePort(), webhookConfig: 'thoughtgate' });
    await kubectl(['apply', '-n', NS, '-f', '-'], EXAMPLE);
    await until('the policy Ready', async () => condition(await getJson(['get', 'governancepolicy', 'everything', '-n', NS]), 'Ready')?.status === 'True');
    await until('the caBundle', async () => (await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate']))?.webhooks?.[0]?.clientConfig?.caBundle);
  }, 120_000);
  afterAll(async () => {
    await op?.proc.stop();
  });

  test('healthy: every check passes (exit 0), in human and JSON output', async () => {
    const human = await cli([]);
    expect(human.code).toBe(0);
    expect(human.stdout).not.toMatch(/[✖‼]/);
    expect(human.stdout).toContain('✔ op-1 leads');
    expect(human.stdout).toContain(`✔ ${NS}/everything Valid and rendered`);
    const { doc } = await report();
    expect(notOk(doc)).toEqual([]);
    expect(doc).toMatchObject({ schema: 'thoughtgate.io/check/v1', mode: 'post', namespace: OPNS, result: 'pass' });
    for (const id of [
      'kubernetes/version',
      'crds/governancepolicies.thoughtgate.io',
      'operator/deployment',
      'operator/leader',
      'webhook/configuration',
      'webhook/certificate',
      'webhook/ca-bundle',
      'namespaces/labelled',
      `policies/${NS}/everything`,
      'approvals/decision-policy',
      'approvals/decision-enforced',
    ])
      expect(byId(doc, id).status).toBe('ok');
    // Refused by the policy itself (the first validation: the username), not by RBAC or the schema.
    expect(human.stdout).toContain('✔ ValidatingAdmissionPolicy thoughtgate-approval-decisions enforced');
    expect(byId(doc, 'namespaces/labelled').items).toContain(NS);
  }, 60_000);

  test('--pre on an installed cluster fails the webhook-conflict check alone', async () => {
    const { doc } = await report({ pre: true });
    expect(notOk(doc)).toEqual(['fail pre/webhook-conflict']);
    expect(byId(doc, 'pre/webhook-conflict').hint).toContain('already installed');
  }, 60_000);

  test('a CRD version not served fails that CRD alone (its objects are skipped, not failed)', async () => {
    const crd = 'approvalchannels.thoughtgate.io';
    const served = (v: boolean) =>
      kubectl(['patch', 'crd', crd, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/versions/0/served', value: v }])]);
    await served(false);
    try {
      await until('approvalchannels no longer served', async () => (await kubectlResult(['get', 'approvalchannels', '-A'])).code !== 0);
      const doc = await expectOnly([`fail crds/${crd}`]);
      expect(byId(doc, `crds/${crd}`).message).toContain('is not served');
      expect(byId(doc, 'approval-channels').status).toBe('skip');
    } finally {
      await served(true);
      await until('approvalchannels served again', async () => (await kubectlResult(['get', 'approvalchannels', '-A'])).code === 0);
    }
  }, 60_000);

  test('the operator Deployment scaled to 0 fails the Deployment check alone', async () => {
    await kubectl(['scale', 'deployment', DEPLOYMENT, '-n', OPNS, '--replicas=0']);
    try {
      const doc = await expectOnly(['fail operator/deployment']);
      expect(byId(doc, 'operator/deployment').message).toContain('scaled to 0');
    } finally {
      await kubectl(['scale', 'deployment', DEPLOYMENT, '-n', OPNS, '--replicas=1']);
      await podsReady();
    }
  }, 90_000);

  test("a caBundle that does not hold the Secret's CA fails the caBundle check alone", async () => {
    const before = await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate']);
    const other = await issueCa({ now: new Date(), validityMs: 30 * DAY });
    const patch = (bundle: string) =>
      kubectl([
        'patch',
        'mutatingwebhookconfiguration',
        'thoughtgate',
        '--type=json',
        '-p',
        JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: bundle }]),
      ]);
    await patch(Buffer.from(other.cert).toString('base64'));
    try {
      const doc = await expectOnly(['fail webhook/ca-bundle']);
      expect(byId(doc, 'webhook/ca-bundle').items).toEqual(['pods.thoughtgate.io: caBundle does not hold the CA']);
    } finally {
      await patch(before.webhooks[0].clientConfig.caBundle);
    }
  }, 60_000);

  test("a second installation's webhook fails the conflict check alone", async () => {
    const second = buildWebhookConfiguration({
      name: 'old-thoughtgate',
      target: { url: 'https://127.0.0.1:1' },
      operatorNamespace: OPNS,
      failurePolicy: 'Ignore',
    });
    await kubectl(['apply', '-f', '-'], JSON.stringify(second));
    try {
      const doc = await expectOnly(['fail webhook/conflict']);
      expect(byId(doc, 'webhook/conflict').message).toContain('old-thoughtgate');
    } finally {
      await kubectl(['delete', 'mutatingwebhookconfiguration', 'old-thoughtgate']);
    }
  }, 60_000);

  test('an expired CA in the webhook Secret fails the certificate check alone; one near expiry warns', async () => {
    const secret = await getJson(['get', 'secret', 'thoughtgate-webhook-tls', '-n', OPNS]);
    const config = await getJson(['get', 'mutatingwebhookconfiguration', 'thoughtgate']);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    // The Secret and every caBundle agree on the replaced CA, so only its dates are wrong.
    const put = async (data: Record<string, string>) => {
      await kubectl(['patch', 'secret', 'thoughtgate-webhook-tls', '-n', OPNS, '--type=merge', '-p', JSON.stringify({ data })]);
      const ops = config.webhooks.map((_: unknown, i: number) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/caBundle`, value: data['ca.crt'] }));
      await kubectl(['patch', 'mutatingwebhookconfiguration', 'thoughtgate', '--type=json', '-p', JSON.stringify(ops)]);
    };
    const replace = async (ca: { cert: string; key: string }) => put({ 'tls.crt': b64(ca.cert), 'tls.key': b64(ca.key), 'ca.crt': b64(ca.cert) });
    try {
      await replace(await issueCa({ now: new Date(Date.now() - 400 * DAY), validityMs: 365 * DAY }));
      const doc = await expectOnly(['fail webhook/certificate']);
      expect(byId(doc, 'webhook/certificate').message).toMatch(/the webhook CA in Secret .* expired on/);
      await replace(await issueCa({ now: new Date(Date.now() - 360 * DAY), validityMs: 365 * DAY }));
      await expectOnly(['warn webhook/certificate']);
    } finally {
      await put(secret.data);
    }
  }, 60_000);

  test('an invalid GovernancePolicy fails its own check alone (exit 1, the hint in the human output)', async () => {
    await kubectl(['apply', '-n', NS, '-f', '-'], broken);
    try {
      await until('broken Valid=False', async () => condition(await getJson(['get', 'governancepolicy', 'broken', '-n', NS]), 'Valid')?.status === 'False');
      const doc = await expectOnly([`fail policies/${NS}/broken`]);
      expect(byId(doc, `policies/${NS}/broken`).message).toContain('is invalid');
      const human = await cli([]);
      expect(human.code).toBe(1);
      expect(human.stdout).toContain(`✖ GovernancePolicy ${NS}/broken is invalid`);
      expect(human.stdout).toContain('hint: fix the policy and apply it again');
    } finally {
      await kubectl(['delete', 'governancepolicy', 'broken', '-n', NS]);
    }
  }, 60_000);

  test('an ApprovalChannel that is not Ready fails its own check alone', async () => {
    await apply({
      apiVersion: 'thoughtgate.io/v1alpha1',
      kind: 'ApprovalChannel',
      metadata: { name: 'ops' },
      spec: { slack: { channel: 'C0123ABCDEF', tokenSecretRef: { name: 'no-such-secret' } }, approvers: { users: ['U0123ABCD'] } },
    });
    try {
      await until('ops Ready=False', async () => condition(await getJson(['get', 'approvalchannel', 'ops', '-n', NS]), 'Ready')?.status === 'False');
      const doc = await expectOnly([`fail approval-channels/${NS}/ops`]);
      expect(byId(doc, `approval-channels/${NS}/ops`).message).toContain('is not Ready');
    } finally {
      await kubectl(['delete', 'approvalchannel', 'ops', '-n', NS]);
    }
  }, 60_000);

  test('without the ApprovalDecision policy binding, the decision-policy check warns (decisions from kubectl would not count) and the enforcement check fails: a dry run in another name is accepted', async () => {
    await kubectl(['delete', 'validatingadmissionpolicybinding', 'thoughtgate-approval-decisions']);
    try {
      await enforcement('fail');
      const doc = await expectOnly(['warn approvals/decision-policy', 'fail approvals/decision-enforced']);
      expect(byId(doc, 'approvals/decision-policy').message).toContain('ValidatingAdmissionPolicyBinding thoughtgate-approval-decisions is not installed');
      expect(byId(doc, 'approvals/decision-enforced').message).toContain('ValidatingAdmissionPolicy not enforced: anyone can decide as anyone');
      expect(byId(doc, 'approvals/decision-enforced').hint).toContain('admission plugin');
      // A dry run: nothing was stored.
      expect((await getJson(['get', 'approvaldecisions', '-n', OPNS]))?.items).toEqual([]);
    } finally {
      await applyDecisionPolicy('binding');
      await enforcement('ok');
    }
  }, 90_000);

  test('a labelled namespace without a GovernancePolicy warns (exit 0)', async () => {
    const bare = await e2e.namespace('bare', { 'thoughtgate.io/inject': 'enabled' });
    const doc = await expectOnly(['warn namespaces/policies']);
    expect(byId(doc, 'namespaces/policies').items).toEqual([bare]);
    await kubectl(['label', 'namespace', bare, 'thoughtgate.io/inject-']);
  }, 60_000);

  test('with the operator stopped, a stale Lease fails the leader check alone; an old pending ApprovalRequest then warns', async () => {
    await op!.proc.stop();
    op = undefined;
    // A MicroTime: six digits of fraction.
    const hourAgo = new Date(Date.now() - 3600_000).toISOString().replace(/Z$/, '000Z');
    await kubectl([
      'patch',
      'lease',
      'thoughtgate-operator',
      '-n',
      OPNS,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { holderIdentity: 'op-1', renewTime: hourAgo } }),
    ]);
    const doc = await expectOnly(['fail operator/leader']);
    expect(byId(doc, 'operator/leader').message).toMatch(/is stale: op-1 last renewed it \d+s ago/);

    // No operator: the request stays Pending, as when approvers do not react.
    await apply({
      apiVersion: 'thoughtgate.io/v1alpha1',
      kind: 'ApprovalRequest',
      metadata: { name: 'waiting' },
      spec: {
        channel: 'ops',
        workload: { namespace: NS, serviceAccount: 'agent', pod: 'agent-1' },
        source: 'github',
        method: 'tools/call',
        tool: 'delete_repository',
        arguments: {},
        requestHash: 'a'.repeat(64),
        taskId: 'waiting',
        reason: 'rule r1',
        expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      },
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const later = await expectOnly(['fail operator/leader', 'warn approval-requests/pending'], { 'approval-age-warning': '1s' });
    expect(byId(later, 'approval-requests/pending').items?.[0]).toMatch(new RegExp(`^${NS}/waiting: \\d+s, Pending, tool delete_repository, channel ops$`));
  }, 60_000);
});

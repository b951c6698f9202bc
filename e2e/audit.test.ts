// Audit mode on a real kube-apiserver: a GovernancePolicy with `enforcement: audit` is rendered by
// the operator; a sidecar (in-process, ConfigMap provider, a TokenRequest token of the pod's
// ServiceAccount and the Role the operator wrote) forwards a would-deny and a would-hide call to
// server-everything and writes Events regarding the policy; the operator sums them into
// status.audit. Then `kubectl apply` of `enforcement: enforce` reaches the sidecar as a reload
// and the same call is denied. In between, the agent's own token floods the namespace with forged
// audit Events (oversized, and well-formed beyond the operator's bound): the operator's cache stays
// bounded and status.audit stays right, marked incomplete.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { AUDIT_EVENT_ANNOTATION } from '../api/audit.js';
import { resourceClient } from '../kube/resource.js';
import { createTransport } from '../kube/transport.js';
import { createLogger } from '../lib/log.js';
import { AUDIT_EVENT_FIELD_SELECTOR, AUDIT_EVENT_LIMITS } from '../operator/audit-event-filter.js';
import { startInformer } from '../operator/informer.js';
import { AUDIT_EVENTS } from '../operator/sources.js';
import { startOperator, type Operator } from '../operator/operator.js';
import { configMapProvider } from '../sidecar/providers/configmap.js';
import { startSidecar, type Sidecar } from '../sidecar/sidecar.js';
import { startEverything, type Proc } from '../test/support/processes.js';
import { connectClient } from '../test/support/sidecar.js';
import { cluster, e2eCluster, getJson, kubectl, kubectlResult, until } from './support/k8s.js';

const e2e = e2eCluster('audit');
const NS = e2e.ns('agents');
const OPNS = e2e.ns('system');
const logs: string[] = [];
let tmp: string;
let everything: { url: string; proc: Proc };
let op: Operator;
let sidecar: Sidecar;
let client: Client;
let clientOptions: { server: string; caFile: string; tokenFile: string };

const policy = (enforcement: 'audit' | 'enforce') => `
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: rollout }
spec:
  enforcement: ${enforcement}
  sources:
    - name: everything
      url: ${everything.url}
      expose: { mode: blocklist, tools: [get-env] }
  rules:
    - { name: no-sum, match: { tool: get-sum }, action: deny }
  defaultAction: forward
`;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'thoughtgate-audit-'));
  everything = await startEverything();
  await e2e.namespace('system');
  await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled' });
  await kubectl(['create', 'serviceaccount', 'agent', '-n', NS]);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster().kubeconfig);
  const log = createLogger('debug', (l) => logs.push(l));
  op = await startOperator({
    kc,
    namespace: OPNS,
    identity: 'op-audit',
    log,
    metricsPort: 0,
    metricsBind: '127.0.0.1',
    leaseDurationSec: 3,
    resyncMs: 60_000,
    auditReportIntervalMs: 500,
  });
  await until('the sidecar Role', () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS]));
  await kubectl(['apply', '-n', NS, '-f', '-'], policy('audit'));
  await until('the ConfigMap', () => getJson(['get', 'configmap', 'thoughtgate-config', '-n', NS]));
  const tokenFile = path.join(tmp, 'token');
  await writeFile(tokenFile, await kubectl(['create', 'token', 'agent', '-n', NS, '--duration', '1h']));
  clientOptions = { server: cluster().server, caFile: cluster().caFile, tokenFile };
  const identity = { namespace: NS, serviceAccount: 'agent', pod: 'agent-0', labels: { app: 'agent' } };
  sidecar = await startSidecar({
    port: 0,
    adminPort: 0,
    bind: '127.0.0.1',
    log,
    provider: configMapProvider({ namespace: NS, identity, log, clientOptions }),
    auditEvents: { namespace: NS, pod: 'agent-0', clientOptions, intervalMs: 200 },
  });
  await until('the audit config in the sidecar', () => sidecar.snapshot()?.gates.enforcement === 'audit');
  ({ client } = await connectClient(`http://127.0.0.1:${sidecar.port}/mcp/everything`));
}, 120_000);

e2e.cleanup(async () => {
  await client?.close();
  await sidecar?.close();
  await op?.close();
  await everything?.proc.stop();
  await rm(tmp, { recursive: true, force: true });
});

const failure = (p: Promise<unknown>) =>
  p.then(
    (r) => ({ result: r }),
    (e: McpError) => ({ code: e.code, data: e.data }),
  );

test('audit forwards, the sidecar reports Events regarding the policy, and the operator sums them into status.audit', async () => {
  expect(sidecar.snapshot()?.policy).toBe('rollout');
  for (let i = 0; i < 3; i++) expect(JSON.stringify((await client.callTool({ name: 'get-sum', arguments: { a: 2, b: i } })).content)).toContain(`${2 + i}`);
  expect((await client.callTool({ name: 'get-env', arguments: {} })).isError).not.toBe(true);
  expect((await client.listTools()).tools.map((t) => t.name)).toContain('get-env');

  const gp = await until(
    'status.audit with the counts',
    async () => {
      const g = await getJson(['get', 'gp', 'rollout', '-n', NS]);
      const a = g?.status?.audit;
      return a?.total?.deny === 3 && a.total.hide === 1 && a.total.listItems === 1 ? g : null;
    },
    30_000,
    { detail: () => logs.slice(-5).join('\n') },
  );
  expect(gp.status.audit).toMatchObject({
    pods: 1,
    total: { deny: 3, hide: 1, approve: 0, listItems: 1 },
    rules: expect.arrayContaining([
      { would: 'deny', gate: 'rules', rule: 'no-sum', source: 'everything', calls: 3, listItems: 0 },
      { would: 'hide', gate: 'visibility', rule: 'expose', source: 'everything', calls: 1, listItems: 1 },
    ]),
  });
  expect(Date.parse(gp.status.audit.from)).toBeLessThanOrEqual(Date.parse(gp.status.audit.to));
  // The policy controller's own status is left as it was.
  expect(gp.status.conditions.find((c: { type: string }) => c.type === 'Ready')?.status).toBe('True');

  // One Event per (policy, rule, would, what) for this pod, found by the operator's field selector.
  const events = JSON.parse(await kubectl(['get', 'events', '-n', NS, '--field-selector', AUDIT_EVENT_FIELD_SELECTOR, '-o', 'json'])).items;
  expect(events.map((e: { reason: string; count: number }) => `${e.reason}:${e.count}`).sort()).toEqual([
    'AuditWouldDeny:3',
    'AuditWouldHide:1',
    'AuditWouldHide:1',
  ]);
  expect(events[0]).toMatchObject({ involvedObject: { kind: 'GovernancePolicy', name: 'rollout' }, reportingInstance: 'agent-0', type: 'Normal' });

  // The sidecar's token writes Events but cannot read the namespace's others.
  const can = async (verb: string) =>
    (await kubectlResult(['auth', 'can-i', verb, 'events', '-n', NS, `--as=system:serviceaccount:${NS}:agent`])).stdout.trim();
  expect([await can('create'), await can('patch'), await can('list'), await can('watch'), await can('delete')]).toEqual(['yes', 'yes', 'no', 'no', 'no']);
});

test('more calls patch the same Events (no new objects) and the status follows', async () => {
  await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } });
  await until('deny 4 in status.audit', async () => (await getJson(['get', 'gp', 'rollout', '-n', NS]))?.status?.audit?.total?.deny === 4, 30_000);
  const events = JSON.parse(await kubectl(['get', 'events', '-n', NS, '--field-selector', AUDIT_EVENT_FIELD_SELECTOR, '-o', 'json'])).items;
  expect(events).toHaveLength(3);
});

test("a flood of forged audit Events from the agent's token: the operator's cache stays bounded, status.audit stays right and says it is incomplete", async () => {
  const transport = createTransport(clientOptions);
  const events = resourceClient(transport, { apiVersion: 'v1', plural: 'events', kind: 'Event', namespaced: true });
  const forged = (name: string, policy: string, annotation: string, kind = 'GovernancePolicy') => ({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: NS, annotations: { [AUDIT_EVENT_ANNOTATION]: annotation } },
    involvedObject: { apiVersion: 'thoughtgate.io/v1alpha1', kind, name: policy, namespace: NS },
    reason: 'AuditWouldDeny',
    message: 'forged',
    type: 'Normal',
    action: 'call',
    source: { component: 'thoughtgate-audit' },
    reportingComponent: 'thoughtgate.io/sidecar',
    reportingInstance: 'forger',
    firstTimestamp: new Date().toISOString(),
    lastTimestamp: new Date().toISOString(),
    count: 1_000,
  });
  const key = JSON.stringify({ would: 'deny', what: 'call', gate: 'rules', rule: 'no-sum', source: 'everything' });
  const big = 'x'.repeat(200 * 1024);
  // Oversized annotations (200 KiB each), another involved kind, and more well-formed Events (naming
  // no policy) than the operator keeps for one namespace.
  const toCreate = [
    ...Array.from({ length: 60 }, (_, i) => forged(`big-${i}`, 'rollout', big)),
    ...Array.from({ length: 5 }, (_, i) => forged(`pod-${i}`, 'rollout', key, 'Pod')),
    ...Array.from({ length: AUDIT_EVENT_LIMITS.perNamespace! + 50 }, (_, i) => forged(`ghost-${i}`, 'ghost', key)),
  ];
  try {
    for (let i = 0; i < toCreate.length; i += 32) await Promise.all(toCreate.slice(i, i + 32).map((e) => events.create(e as never, { namespace: NS })));
  } finally {
    await transport.close();
  }
  const metric = async (name: string, labels: Record<string, string>) =>
    ((await op.metrics.registry.getSingleMetric(name)?.get())?.values ?? []).find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ??
    0;
  await until(
    'the drops counted',
    async () =>
      (await metric('thoughtgate_operator_informer_dropped_total', { resource: 'events', reason: 'filtered' })) >= 60 &&
      (await metric('thoughtgate_operator_informer_dropped_total', { resource: 'events', reason: 'limit' })) >= 50,
    60_000,
  );
  // The Pod-kind ones never reach the operator (the field selector); the cache holds at most the bound.
  // At least 60: the counter adds every list the operator makes, and a relist under load lists them again.
  expect(await metric('thoughtgate_operator_informer_dropped_total', { resource: 'events', reason: 'filtered' })).toBeGreaterThanOrEqual(60);
  expect(await metric('thoughtgate_operator_informer_objects', { resource: 'events' })).toBe(AUDIT_EVENT_LIMITS.perNamespace);

  // status.audit: the real counts (ghost names no policy, the big ones were left out), marked incomplete.
  const gp = await until('status.audit marked incomplete', async () => {
    const g = await getJson(['get', 'gp', 'rollout', '-n', NS]);
    return g?.status?.audit?.incomplete === true ? g : null;
  });
  expect(gp.status.audit.total).toEqual({ deny: 4, hide: 1, approve: 0, listItems: 1 });
  // A list after the flood (a restarted operator, a 410): the big ones are left out page by page,
  // the cache holds the bound.
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster().kubeconfig);
  const drops: string[] = [];
  const informer = startInformer({
    kc,
    name: 'events-relist',
    path: AUDIT_EVENTS.path,
    fieldSelector: AUDIT_EVENTS.fieldSelector!,
    transform: AUDIT_EVENTS.transform,
    limits: AUDIT_EVENTS.limits,
    onDrop: (reason) => drops.push(reason),
    onChange: () => undefined,
    log: createLogger('error'),
  });
  try {
    await informer.synced();
    expect(informer.size(NS)).toBe(AUDIT_EVENT_LIMITS.perNamespace);
    expect(informer.truncated(NS)).toBe(true);
    expect(drops.filter((d) => d === 'filtered')).toHaveLength(60);
    expect(drops.filter((d) => d === 'limit').length).toBeGreaterThanOrEqual(50);
    // What it keeps of an Event is small: no annotation but the audit key.
    expect(JSON.stringify(informer.list(NS)[0]).length).toBeLessThan(1024);
  } finally {
    await informer.stop();
  }
  // A real audit Event (already held) still counts.
  await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
  await until('deny 5 in status.audit', async () => (await getJson(['get', 'gp', 'rollout', '-n', NS]))?.status?.audit?.total?.deny === 5, 30_000);
}, 180_000);

test('kubectl apply of enforcement: enforce reaches the sidecar as a reload: the forwarded call is denied', async () => {
  await kubectl(['apply', '-n', NS, '-f', '-'], policy('enforce'));
  await until('the enforce config in the sidecar', () => sidecar.snapshot()?.gates.enforcement === 'enforce', 30_000);
  expect(await failure(client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }))).toMatchObject({ code: -32003, data: { rule: 'no-sum' } });
  expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('get-env');
  // The operator records the switch on the policy.
  const changed = await until('an EnforcementChanged Event', async () => {
    const items = JSON.parse(await kubectl(['get', 'events', '-n', NS, '--field-selector', 'reason=EnforcementChanged', '-o', 'json'])).items;
    return items.length ? items : null;
  });
  expect(changed[0]).toMatchObject({
    // Enforcement turned on: Normal (turning it off is a Warning).
    type: 'Normal',
    involvedObject: { kind: 'GovernancePolicy', name: 'rollout' },
    message: 'enforcement changed from audit to enforce (generation 2)',
  });
  // status.audit keeps what the Events still say (they expire after the API server's event TTL).
  expect((await getJson(['get', 'gp', 'rollout', '-n', NS])).status.audit.total.deny).toBe(5);
});

// The cluster half of tracing on a real kube-apiserver, exported to a real Jaeger v2: the operator
// (in-process) and a sidecar (in-process, ConfigMap provider and cluster approval backend with a
// TokenRequest token of the pod's ServiceAccount, as a pod runs it) start their tracing as a user
// configures it, from OTEL_* in the environment, with their default service names. Checked through
// Jaeger's query API:
// - the operator's reconcile spans (a GovernancePolicy applied: `reconcile ns` for its namespace);
// - a held call approved in (fake) Slack: the sidecar's `approval wait` span, the ApprovalRequest's
//   thoughtgate.io/traceparent naming it, and the operator's `approval decision` as its child,
//   linked both ways with the `reconcile ar` span that decided; no argument value or token in any span;
// - ApprovalRequests written with the sidecar's own token carrying a malformed or oversized
//   traceparent: still decided, the operator's spans start their own traces, nothing of the
//   annotation is exported.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { approvalRequestName } from '../api/approval-request.js';
import { createLogger } from '../lib/log.js';
import { startOperator, type Operator } from '../operator/operator.js';
import type { Decision, PendingApproval } from '../sidecar/approvals/backend.js';
import { createClusterBackend, type ClusterApprovalBackend } from '../sidecar/approvals/cluster-backend.js';
import { configMapProvider } from '../sidecar/providers/configmap.js';
import { startSidecar, type Sidecar } from '../sidecar/sidecar.js';
import { ALICE, CHANNEL, plainClient, startApprovalUpstream, TOKEN, type ApprovalUpstream } from '../test/approvals-harness.js';
import { startFakeSlack, type FakeSlack } from '../test/fakes/slack-server.js';
import { startJaeger, type Jaeger, type JaegerSpan, type JaegerTrace } from '../test/support/jaeger.js';
import { cluster, e2eCluster, getJson, kubectl, until as poll } from './support/k8s.js';
import { approvalsPolicy } from './support/approval-pod.js';

const e2e = e2eCluster('tracing');
const NS = e2e.ns('agents');
const OPNS = e2e.ns('system');
const TRACE = '0af7651916cd43dd8448eb211c80319c';
const AGENT_SPAN = 'b7ad6b7169203331';
const SECRET = 'secret-arg-value';
const OPERATOR = 'thoughtgate-operator';
const SIDECAR = 'thoughtgate-sidecar';

const lines: string[] = [];
const log = createLogger('debug', (l) => lines.push(l));
let tmp: string;
let saToken: string;
let jaeger: Jaeger;
let fake: FakeSlack;
let upstream: ApprovalUpstream;
let op: Operator;
let sidecar: Sidecar;
let direct: ClusterApprovalBackend;
let policyAppliedAt: number;

const until = <T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, limitMs = 30_000): Promise<T> =>
  poll(what, fn, limitMs, { detail: () => lines.slice(-20).join('') });

/**
 * Runs `start` with OTEL_* set as a user sets them (the operator and the sidecar read the environment
 * once, when they start), then puts the environment back. A short batch delay so that spans reach
 * Jaeger within the test's polling.
 */
async function withTracingEnv<T>(start: () => Promise<T>): Promise<T> {
  const env: Record<string, string> = { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlp, OTEL_BSP_SCHEDULE_DELAY: '50' };
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await start();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Spans the operator and the sidecar dropped (their export queue full): none expected. */
async function dropped(): Promise<number> {
  const sum = async (c: { get(): Promise<{ values: { value: number }[] }> }) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
  return (await sum(op.metrics.tracingSpansDropped)) + (await sum(sidecar.metrics.tracingSpansDropped));
}

const tag = (s: JaegerSpan, key: string): unknown => s.tags.find((t) => t.key === key)?.value;
const parentOf = (s: JaegerSpan) => s.references.find((r) => r.refType === 'CHILD_OF');
const linksOf = (s: JaegerSpan) => s.references.filter((r) => r.refType === 'FOLLOWS_FROM');
const serviceOf = (t: JaegerTrace, s: JaegerSpan) => t.processes[s.processID]?.serviceName;

/** Every span Jaeger holds for `service` (and `operation`), each with its trace. */
async function spansOf(service: string, operation?: string): Promise<{ trace: JaegerTrace; span: JaegerSpan }[]> {
  const traces = await jaeger.search({ service, ...(operation ? { operation } : {}), limit: 1000 });
  return traces.flatMap((trace) =>
    trace.spans.filter((s) => serviceOf(trace, s) === service && (!operation || s.operationName === operation)).map((span) => ({ trace, span })),
  );
}

const channel = `
apiVersion: thoughtgate.io/v1alpha1
kind: ApprovalChannel
metadata: { name: approvals }
spec:
  slack: { channel: ${CHANNEL}, apiUrl: "URL", tokenSecretRef: { name: slack-bot } }
  approvers: { users: [${ALICE}] }
  timeout: 5m
`;

/** The Slack message of an ApprovalRequest (its key in the message metadata), once posted. */
const messageOf = (key: string) =>
  until(`the Slack message of ${key}`, () =>
    fake.messages(CHANNEL).find((m) => (m.metadata as { event_payload?: { request_id?: string } } | undefined)?.event_payload?.request_id === key),
  );
const phaseOf = async (name: string) => (await getJson(['get', 'approvalrequest', name, '-n', NS]))?.status?.phase as string | undefined;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tg-e2e-tracing-'));
  jaeger = await startJaeger();
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [{ id: ALICE, name: 'alice', realName: 'Alice Approver' }],
  });
  upstream = await startApprovalUpstream();
  await e2e.namespace('system');
  await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled' });
  await kubectl(['create', 'serviceaccount', 'agent', '-n', NS]);
  await kubectl(['create', 'secret', 'generic', 'slack-bot', '-n', NS, `--from-literal=token=${TOKEN}`]);

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster().kubeconfig);
  op = await withTracingEnv(() =>
    startOperator({
      kc,
      namespace: OPNS,
      identity: 'op-tracing',
      log,
      metricsPort: 0,
      metricsBind: '127.0.0.1',
      leaseDurationSec: 3,
      resyncMs: 60_000,
      approvals: { slackApiUrls: [fake.url], postGraceMs: 3000, expiryGraceMs: 1000, secretPollMs: 1000, pollBackoff: { initialMs: 200, maxMs: 1000 } },
    }),
  );
  expect(lines.some((l) => l.includes('"tracing on"') && l.includes(OPERATOR))).toBe(true);
  await until('leader', () => op.isLeader());
  await until('the sidecar Role', () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS]));
  await kubectl(['apply', '-n', NS, '-f', '-'], channel.replace('URL', fake.url));
  policyAppliedAt = Date.now();
  await kubectl(['apply', '-n', NS, '-f', '-'], approvalsPolicy(upstream.url));
  await until('the ConfigMap', () => getJson(['get', 'configmap', 'thoughtgate-config', '-n', NS]));

  saToken = (await kubectl(['create', 'token', 'agent', '-n', NS, '--duration', '1h'])).trim();
  const tokenFile = path.join(tmp, 'token');
  await writeFile(tokenFile, saToken);
  const clientOptions = { server: cluster().server, caFile: cluster().caFile, tokenFile };
  const identity = { namespace: NS, serviceAccount: 'agent', pod: 'agent-0', labels: { app: 'agent' } };
  const workload = { namespace: NS, serviceAccount: 'agent', pod: 'agent-0' };
  sidecar = await withTracingEnv(() =>
    startSidecar({
      port: 0,
      adminPort: 0,
      bind: '127.0.0.1',
      log,
      provider: configMapProvider({ namespace: NS, identity, log, clientOptions }),
      approvals: createClusterBackend({ workload, log, clientOptions, backoffBaseMs: 100, backoffMaxMs: 2000 }),
    }),
  );
  expect(lines.some((l) => l.includes('"tracing on"') && l.includes(SIDECAR))).toBe(true);
  await until('the policy in the sidecar', () => sidecar.snapshot()?.policy === 'agents');
  // The same token, used directly: what a compromised agent pod holding it could write.
  direct = createClusterBackend({ workload: { ...workload, pod: 'agent-1' }, log, clientOptions, backoffBaseMs: 100, backoffMaxMs: 2000 });
}, 180_000);

e2e.cleanup(async () => {
  if (process.env.TG_E2E_LOG) await writeFile(process.env.TG_E2E_LOG, lines.join(''));
  await direct?.close();
  await sidecar?.close(); // shuts its tracer down (flushed)
  await op?.close(); // likewise
  await upstream?.close();
  await fake?.close();
  await jaeger?.close();
  await rm(tmp, { recursive: true, force: true });
});

test('the operator reconciles a GovernancePolicy under a `reconcile ns` span of the operator service', async () => {
  const found = await until('a reconcile ns span for the policy namespace', async () => {
    const spans = await spansOf(OPERATOR, 'reconcile ns');
    // The namespace is reconciled when it is labelled too: this one ran for the policy.
    return spans.find(
      ({ span }) => tag(span, 'thoughtgate.key') === NS && tag(span, 'thoughtgate.outcome') === 'success' && span.startTime >= policyAppliedAt * 1000,
    );
  });
  expect(tag(found.span, 'thoughtgate.controller')).toBe('ns');
  expect(found.span.references).toEqual([]); // a reconcile is a trace of its own
  // The other controllers that ran for this namespace are traced too, under the same service.
  const rbac = await until('a reconcile rbac span', async () =>
    (await spansOf(OPERATOR, 'reconcile rbac')).find(({ span }) => tag(span, 'thoughtgate.key') === NS),
  );
  expect(tag(rbac.span, 'thoughtgate.outcome')).toBe('success');
}, 60_000);

test("an approval through the cluster: the operator's decision is a child of the sidecar's wait span, linked with its reconcile", async () => {
  const { client } = await plainClient(`http://127.0.0.1:${sidecar.port}/mcp/up`, { traceparent: `00-${TRACE}-${AGENT_SPAN}-01` });
  const call = client.callTool({ name: 'deploy', arguments: { service: SECRET, version: '1' } });
  const ar = await until('the ApprovalRequest', async () => {
    const items = JSON.parse(await kubectl(['get', 'approvalrequests', '-n', NS, '-l', 'thoughtgate.io/pod=agent-0', '-o', 'json'])).items;
    return items[0];
  });
  const annotation: string = ar.metadata.annotations?.['thoughtgate.io/traceparent'];
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(annotation ?? '');
  expect(m?.[1]).toBe(TRACE);
  const waitSpanId = m![2]!;

  const key = `${NS}/${ar.metadata.name}`;
  const message = await messageOf(key);
  fake.addReaction(CHANNEL, message.ts, 'white_check_mark', ALICE);
  const result = await call;
  expect(result.isError).toBeFalsy();
  await client.close();
  expect(upstream.calls.filter((c) => c.tool === 'deploy')).toHaveLength(1);

  let spans: JaegerSpan[] = [];
  let trace: JaegerTrace | undefined;
  await until('the wait and the decision in the agent trace', async () => {
    trace = (await jaeger.search({ service: SIDECAR, limit: 1000 })).find((t) => t.traceID === TRACE);
    spans = trace?.spans ?? [];
    return spans.some((s) => s.operationName === 'approval decision') && spans.some((s) => s.operationName === 'approval wait');
  });
  const wait = spans.find((s) => s.operationName === 'approval wait')!;
  expect(wait.spanID).toBe(waitSpanId); // the annotation names the wait span
  expect(serviceOf(trace!, wait)).toBe(SIDECAR);
  const request = spans.find((s) => s.spanID === parentOf(wait)?.spanID)!;
  expect(request.operationName).toBe('mcp tools/call');
  expect(parentOf(request)?.spanID).toBe(AGENT_SPAN);
  expect(tag(wait, 'thoughtgate.approval.outcome')).toBe('approved');
  expect(tag(wait, 'thoughtgate.approval.decided_in')).toBe('operator');

  // Exactly one decision span, the operator's, a child of the wait span in the agent's trace.
  const decisions = spans.filter((s) => s.operationName === 'approval decision');
  expect(decisions).toHaveLength(1);
  const decision = decisions[0]!;
  expect(serviceOf(trace!, decision)).toBe(OPERATOR);
  expect(parentOf(decision)).toMatchObject({ traceID: TRACE, spanID: waitSpanId });
  expect(tag(decision, 'thoughtgate.approval.outcome')).toBe('approved');
  expect(tag(decision, 'thoughtgate.approval.approvers')).toBe(1);
  expect(tag(decision, 'thoughtgate.approval.decided_in')).toBe('operator');

  // Linked both ways with the reconcile of this request that decided (a trace of its own).
  const [link] = linksOf(decision);
  expect(link).toBeDefined();
  expect(link!.traceID).not.toBe(TRACE);
  const reconcileTrace = await until('the reconcile trace', async () => {
    const t = (await jaeger.search({ service: OPERATOR, operation: 'reconcile ar', limit: 1000 })).find((x) => x.traceID === link!.traceID);
    return t?.spans.some((s) => s.spanID === link!.spanID) ? t : null;
  });
  const reconcile = reconcileTrace.spans.find((s) => s.spanID === link!.spanID)!;
  expect(reconcile.operationName).toBe('reconcile ar');
  expect([tag(reconcile, 'thoughtgate.key'), tag(reconcile, 'thoughtgate.outcome'), tag(reconcile, 'thoughtgate.controller')]).toEqual([key, 'success', 'ar']);
  expect(parentOf(reconcile)).toBeUndefined();
  expect(linksOf(reconcile)).toEqual([expect.objectContaining({ traceID: TRACE, spanID: decision.spanID })]);

  // No argument value, Slack token, ServiceAccount token or approver identity in any span.
  const everything = JSON.stringify([trace, ...(await jaeger.search({ service: OPERATOR, limit: 1000 }))]);
  for (const secret of [SECRET, TOKEN, saToken, ALICE, 'alice']) expect(everything).not.toContain(secret);
  expect(await dropped()).toBe(0);
}, 120_000);

test('a malformed or oversized traceparent annotation: the request is still decided, and nothing of it is exported', async () => {
  const hostile = {
    malformed: `00-${TRACE.toUpperCase()}-${AGENT_SPAN}-01`,
    // A later version may append fields; past 256 characters it is refused whole.
    oversized: `01-${'1'.repeat(32)}-${'2'.repeat(16)}-01-${'x'.repeat(300)}`,
  };
  const decisions: Decision[] = [];
  direct.onDecision((d) => decisions.push(d));
  const submitted: { kind: string; p: PendingApproval; key: string }[] = [];
  for (const [kind, traceparent] of Object.entries(hostile)) {
    const p: PendingApproval = {
      id: randomUUID(),
      channel: 'approvals',
      workload: { namespace: NS, serviceAccount: 'agent', pod: 'agent-1' },
      source: 'up',
      method: 'tools/call',
      tool: 'deploy',
      arguments: { service: SECRET },
      requestHash: 'a'.repeat(64),
      reason: 'rule deploys-need-approval',
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 5 * 60_000),
      traceparent,
    };
    await direct.submit(p);
    submitted.push({ kind, p, key: `${NS}/${approvalRequestName(p.id)}` });
  }
  for (const { p, key } of submitted) {
    const obj = await getJson(['get', 'approvalrequest', approvalRequestName(p.id), '-n', NS]);
    expect(obj.metadata.annotations['thoughtgate.io/traceparent']).toBe(p.traceparent); // the API server stored it as written
    fake.addReaction(CHANNEL, (await messageOf(key)).ts, 'white_check_mark', ALICE);
  }
  for (const { p } of submitted) {
    await until(`Approved: ${p.id}`, async () => (await phaseOf(approvalRequestName(p.id))) === 'Approved');
    await until(`the decision on ${p.id} at the sidecar`, () => decisions.find((d) => d.id === p.id && d.outcome === 'approved'));
  }

  // The reconciles that decided them are exported, each a trace of its own with no parent and no link.
  for (const { key } of submitted) {
    const reconciles = await until(`the reconcile spans of ${key}`, async () => {
      const r = (await spansOf(OPERATOR, 'reconcile ar')).filter(({ span }) => tag(span, 'thoughtgate.key') === key);
      return r.length > 0 ? r : null;
    });
    for (const { span } of reconciles) {
      expect(span.references).toEqual([]);
      expect(tag(span, 'thoughtgate.outcome')).toBe('success');
    }
  }
  // Only the first test's decision span exists (none for these), and nothing of the annotations
  // (their ids, the padding) reached Jaeger.
  expect(await spansOf(OPERATOR, 'approval decision')).toHaveLength(1);
  const everything = JSON.stringify(await jaeger.search({ service: OPERATOR, limit: 1000 }));
  for (const v of ['1'.repeat(32), '2'.repeat(16), 'x'.repeat(50), TRACE.toUpperCase(), SECRET]) expect(everything).not.toContain(v);
  expect(await jaeger.trace('1'.repeat(32))).toEqual([]);
  // The operator carries on: it is still the leader and its reconciles still succeed.
  expect(op.isLeader()).toBe(true);
  expect(await dropped()).toBe(0);
}, 120_000);

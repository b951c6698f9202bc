// Gate 4 through the whole cluster path: an SDK client talks to the sidecar of an injected pod
// (the real binary, run as the kubelet would); the call needs approval, so the sidecar writes an
// ApprovalRequest; the operator (the real binary) posts it to Slack (the fake Slack Web API, through
// the real @slack/web-api); an approver reacts; the decision comes back through the request's status
// and the sidecar executes the call. Also: a rejection on a held call, and a sidecar restart while
// an approval is pending.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { startCluster, type Cluster } from './cluster/cluster.js';
import type { PodJson } from './support/kubelet.js';
import { startInjectedSidecar, until } from './support/stack.js';
import { ALICE, CHANNEL, startApprovalUpstream, TOKEN, type ApprovalUpstream } from '../test/approvals-harness.js';
import { startFakeSlack, type FakeSlack } from '../test/fakes/slack-server.js';
import { CLI, freePort, ROOT, run, type Proc } from '../test/support/processes.js';

const NS = 'agents';
const OPNS = 'thoughtgate-system';
let cluster: Cluster;
let stateDir: string;
let fake: FakeSlack;
let upstream: ApprovalUpstream;
let operator: Proc;
let sidecar: Proc;
let pod: PodJson;
const URL_ = 'http://127.0.0.1:7467/mcp/up';

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const requests = async (): Promise<any[]> => JSON.parse(await kubectl(['get', 'approvalrequests', '-n', NS, '-o', 'json'])).items;
const newMessage = (before: number) => until('the Slack message', async () => fake.messages(CHANNEL)[before]?.ts, 30_000);

async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'agent', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(URL_));
  await client.connect(transport);
  return { client, transport };
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'tg-e2e-approvals-flow-'));
  cluster = await startCluster(stateDir);
  fake = await startFakeSlack({ tokens: { [TOKEN]: { userId: 'UBOT' } }, channels: [{ id: CHANNEL, name: 'approvals' }], users: [{ id: ALICE, name: 'alice', realName: 'Alice Approver' }] });
  upstream = await startApprovalUpstream();
  await kubectl(['apply', '-f', join(ROOT, 'crds')]);
  await kubectl(['wait', '--for=condition=Established', 'crd/approvalrequests.thoughtgate.io', 'crd/governancepolicies.thoughtgate.io', '--timeout=30s']);
  await kubectl(['create', 'namespace', OPNS]);
  await kubectl(['create', 'namespace', NS]);
  await kubectl(['label', 'namespace', NS, 'thoughtgate.io/inject=enabled']);
  await kubectl(['create', 'serviceaccount', 'agent', '-n', NS]);
  await kubectl(['create', 'secret', 'generic', 'slack-bot', '-n', NS, `--from-literal=token=${TOKEN}`]);

  const webhookPort = await freePort();
  const metricsPort = await freePort();
  operator = run(process.execPath, [
    CLI, 'operator', '--kubeconfig', cluster.kubeconfig, '--namespace', OPNS, '--identity', 'op-1',
    '--metrics-port', String(metricsPort), '--metrics-bind', '127.0.0.1',
    '--webhook-port', String(webhookPort), '--webhook-bind', '127.0.0.1', '--webhook-url', `https://127.0.0.1:${webhookPort}`, '--webhook-san', '127.0.0.1', '--manage-webhook-config',
    '--slack-api-url', fake.url, '--sidecar-image', 'ghcr.io/thoughtgate/thoughtgate-sidecar:e2e',
  ], { KUBECONFIG: undefined });
  await until('the operator', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200);

  await kubectl(['apply', '-n', NS, '-f', '-'], `
apiVersion: thoughtgate.io/v1alpha1
kind: ApprovalChannel
metadata: { name: approvals }
spec:
  slack: { channel: ${CHANNEL}, apiUrl: "${fake.url}", tokenSecretRef: { name: slack-bot } }
  approvers: { users: [${ALICE}] }
  timeout: 5m
---
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: agents }
spec:
  sources: [{ name: up, url: "${upstream.url}" }]
  rules:
    - name: deploys-need-approval
      match: { tool: deploy }
      action: approve
      approval: { channel: approvals, timeout: 5m }
  defaultAction: forward
`);
  await until('the channel Ready', async () => JSON.parse(await kubectl(['get', 'approvalchannel', 'approvals', '-n', NS, '-o', 'json'])).status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True');
  await until('the ConfigMap', async () => (await cluster.kubectl(['get', 'configmap', 'thoughtgate-config', '-n', NS])).code === 0);
  await until('the caBundle', async () => (await kubectl(['get', 'mutatingwebhookconfiguration', 'thoughtgate', '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).length > 0);
  await kubectl(['run', 'agent', '-n', NS, '--image=registry.example/agent:1', '--labels=app=agent', '--restart=Never', '--overrides={"spec":{"serviceAccountName":"agent"}}']);
  pod = JSON.parse(await kubectl(['get', 'pod', 'agent', '-n', NS, '-o', 'json']));
  sidecar = await startInjectedSidecar(cluster, pod);
}, 15 * 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await operator?.stop();
  await upstream?.close();
  await fake?.close();
  await cluster?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

test('an MCP task: CreateTaskResult at once, an ApprovalRequest, Slack, approval, then the call runs once', async () => {
  const { client } = await connect();
  const before = fake.messages(CHANNEL).length;
  const stream = client.experimental.tasks.callToolStream({ name: 'deploy', arguments: { service: 'api', version: '2.0.0' } }, CallToolResultSchema, { task: { ttl: 600_000 } });
  const first = await stream.next();
  expect(first.value).toMatchObject({ type: 'taskCreated', task: { status: 'working' } });
  const taskId = (first.value as { task: { taskId: string } }).task.taskId;
  expect(taskId).toMatch(/^tg-/);

  const ar = await until('the ApprovalRequest', async () => (await requests()).find((r) => r.spec.taskId === taskId));
  expect(ar.spec).toMatchObject({ channel: 'approvals', tool: 'deploy', arguments: { service: 'api', version: '2.0.0' }, workload: { namespace: NS, serviceAccount: 'agent', pod: 'agent' } });
  const ts = await newMessage(before);
  expect(upstream.calls).toHaveLength(0);
  fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);

  let result: unknown;
  for await (const ev of stream) if (ev.type === 'result') result = ev.result;
  expect(JSON.stringify(result)).toContain('api');
  expect(upstream.calls.map((c) => c.args)).toEqual([{ service: 'api', version: '2.0.0' }]);
  const decided = (await requests()).find((r) => r.spec.taskId === taskId);
  expect(decided.status).toMatchObject({ phase: 'Approved', decidedBy: [{ id: ALICE }] });
  expect(decided.spec.executionStartedAt).toBeDefined();
  await client.close();
});

test('a held call rejected in Slack ends with -32007 and never reaches the upstream', async () => {
  const { client } = await connect();
  const before = fake.messages(CHANNEL).length;
  const calls = upstream.calls.length;
  const call = client.callTool({ name: 'deploy', arguments: { service: 'db', version: '9' } }, undefined, { timeout: 60_000 }).catch((e: McpError) => e);
  const ts = await newMessage(before);
  fake.addReaction(CHANNEL, ts, 'x', ALICE);
  const err = await call;
  expect((err as McpError).code).toBe(-32007);
  expect(upstream.calls.length).toBe(calls);
  await client.close();
});

test('a sidecar restart while an approval is pending: the task is adopted and still answerable', async () => {
  const { client, transport } = await connect();
  const before = fake.messages(CHANNEL).length;
  const created = await client.experimental.tasks.callToolStream({ name: 'deploy', arguments: { service: 'web', version: '3' } }, CallToolResultSchema, { task: { ttl: 600_000 } }).next();
  const taskId = (created.value as { task: { taskId: string } }).task.taskId;
  const ts = await newMessage(before);

  await sidecar.stop();
  sidecar = await startInjectedSidecar(cluster, pod);
  fake.addReaction(CHANNEL, ts, 'white_check_mark', ALICE);

  // Same client, same MCP session: the adopted task answers to it.
  expect(transport.sessionId).toBeDefined();
  const result = await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
  expect(JSON.stringify(result)).toContain('web');
  expect(upstream.calls.filter((c) => c.args['service'] === 'web')).toHaveLength(1);
  await client.close();
});

test('kubectl shows every approval across pods with its phase and who decided', async () => {
  const table = await kubectl(['get', 'approvalrequests', '-A']);
  expect(table).toMatch(/Approved/);
  expect(table).toMatch(/Rejected/);
  expect(table).toContain('deploy');
});

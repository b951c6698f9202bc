// Gate 4 through the whole cluster path: an SDK client talks to the sidecar of an injected pod
// (the real binary, run as the kubelet would); the call needs approval, so the sidecar writes an
// ApprovalRequest; the operator (the real binary) posts it to Slack (the fake Slack Web API, through
// the real @slack/web-api); an approver reacts; the decision comes back through the request's status
// and the sidecar executes the call. Also: a rejection on a held call, and a sidecar restart while
// an approval is pending.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, type McpError } from '@modelcontextprotocol/sdk/types.js';
import type { PodJson, PodSandbox } from './support/kubelet.js';
import { approvalChannel, approvalsPolicy, startAgentPod, startApprovalsBase, startApprovalsOperator, type ApprovalsBase } from './support/approval-pod.js';
import { cluster, e2eCluster, kubectl, until } from './support/k8s.js';
import { startInjectedSidecar } from './support/stack.js';
import { ALICE, CHANNEL, type ApprovalUpstream } from '../test/approvals-harness.js';
import type { FakeSlack } from '../test/fakes/slack-server.js';
import type { Proc } from '../test/support/processes.js';

const e2e = e2eCluster('apflow');
const NS = e2e.ns('agents');
const OPNS = e2e.ns('system');
const MWC = e2e.ns('injector');
let base: ApprovalsBase;
let fake: FakeSlack;
let upstream: ApprovalUpstream;
let operator: Proc;
let sidecar: Proc;
let sandbox: PodSandbox;
let pod: PodJson;
let URL_: string;

const requests = async (): Promise<any[]> => JSON.parse(await kubectl(['get', 'approvalrequests', '-n', NS, '-o', 'json'])).items;
const newMessage = (before: number) => until('the Slack message', async () => fake.messages(CHANNEL)[before]?.ts, 30_000);

async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'agent', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(URL_));
  await client.connect(transport);
  return { client, transport };
}

beforeAll(async () => {
  base = await startApprovalsBase(e2e);
  ({ fake, upstream } = base);

  operator = await startApprovalsOperator(OPNS, MWC, fake);

  await kubectl(['apply', '-n', NS, '-f', '-'], approvalChannel('approvals', fake.url, { users: [ALICE] }));
  await kubectl(['apply', '-n', NS, '-f', '-'], approvalsPolicy(upstream.url));
  await until(
    'the channel Ready',
    async () =>
      JSON.parse(await kubectl(['get', 'approvalchannel', 'approvals', '-n', NS, '-o', 'json'])).status?.conditions?.find((c: any) => c.type === 'Ready')
        ?.status === 'True',
  );
  ({ pod, sandbox, sidecar, url: URL_ } = await startAgentPod(NS, MWC, upstream.url));
}, 120_000);

e2e.cleanup(async () => {
  await sidecar?.stop();
  await sandbox?.stop();
  await operator?.stop();
  await base?.close();
});

test('an MCP task: CreateTaskResult at once, an ApprovalRequest, Slack, approval, then the call runs once', async () => {
  const { client } = await connect();
  const before = fake.messages(CHANNEL).length;
  const stream = client.experimental.tasks.callToolStream({ name: 'deploy', arguments: { service: 'api', version: '2.0.0' } }, CallToolResultSchema, {
    task: { ttl: 600_000 },
  });
  const first = await stream.next();
  expect(first.value).toMatchObject({ type: 'taskCreated', task: { status: 'working' } });
  const taskId = (first.value as { task: { taskId: string } }).task.taskId;
  expect(taskId).toMatch(/^tg-/);

  const ar = await until('the ApprovalRequest', async () => (await requests()).find((r) => r.spec.taskId === taskId));
  expect(ar.spec).toMatchObject({
    channel: 'approvals',
    tool: 'deploy',
    arguments: { service: 'api', version: '2.0.0' },
    workload: { namespace: NS, serviceAccount: 'agent', pod: 'agent' },
  });
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
  const created = await client.experimental.tasks
    .callToolStream({ name: 'deploy', arguments: { service: 'web', version: '3' } }, CallToolResultSchema, { task: { ttl: 600_000 } })
    .next();
  const taskId = (created.value as { task: { taskId: string } }).task.taskId;
  const ts = await newMessage(before);

  await sidecar.stop();
  sidecar = await startInjectedSidecar(cluster(), pod, 'thoughtgate', sandbox);
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

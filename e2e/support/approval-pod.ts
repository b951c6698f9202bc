// The cluster approval path of the e2e files: the GovernancePolicy that sends `deploy` to the
// ApprovalChannel "approvals", and an injected agent pod whose sidecar (the real binary, run as the
// kubelet would, in the pod's network) an SDK client reaches through a port-forward.
import { decisionPolicyObjects } from '../../api/approval-decision.js';
import { POLICY_SETTLE_MS } from '../../operator/approval-decision-plan.js';
import { ALICE, CHANNEL, startApprovalUpstream, TOKEN, type ApprovalUpstream } from '../../test/approvals-harness.js';
import { startFakeSlack, type FakeSlack } from '../../test/fakes/slack-server.js';
import { freePort, type Proc } from '../../test/support/processes.js';
import { startPodSandbox, type PodJson, type PodSandbox } from './kubelet.js';
import { cluster, kubectl, kubectlResult, until, type E2E } from './k8s.js';
import { startInjectedSidecar, startOperatorProcess } from './stack.js';

/** The fake Slack of these files: bot token TOKEN, channel CHANNEL, approver ALICE. */
export const startApprovalsSlack = (): Promise<FakeSlack> =>
  startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [{ id: ALICE, name: 'alice', realName: 'Alice Approver' }],
  });

/** What startApprovalsBase started. */
export interface ApprovalsBase {
  fake: FakeSlack;
  upstream: ApprovalUpstream;
  /** Closes the fake Slack and the upstream (after the file stopped its operator and pod). */
  close(): Promise<void>;
}

/**
 * What the approval files start from: the fake Slack, the upstream, the namespaces `system` and
 * `agents` (injection on) with ServiceAccount agent and the bot token Secret (slack-bot) in agents.
 */
export async function startApprovalsBase(e2e: E2E): Promise<ApprovalsBase> {
  const fake = await startApprovalsSlack();
  const upstream = await startApprovalUpstream();
  await e2e.namespace('system');
  const ns = await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled' });
  await kubectl(['create', 'serviceaccount', 'agent', '-n', ns]);
  await kubectl(['create', 'secret', 'generic', 'slack-bot', '-n', ns, `--from-literal=token=${TOKEN}`]);
  return {
    fake,
    upstream,
    async close() {
      await upstream.close();
      await fake.close();
    },
  };
}

/** The operator (op-1, its Lease in `opns`, webhook `mwc` by URL), allowed to call the fake Slack. */
export async function startApprovalsOperator(opns: string, mwc: string, fake: FakeSlack): Promise<Proc> {
  return (
    await startOperatorProcess(cluster(), {
      identity: 'op-1',
      namespace: opns,
      webhookPort: await freePort(),
      webhookConfig: mwc,
      extraArgs: ['--slack-api-url', fake.url, '--sidecar-image', 'ghcr.io/thoughtgate/thoughtgate-sidecar:e2e'],
    })
  ).proc;
}

/**
 * An ApprovalChannel `name` of the fake Slack at `fakeUrl` (channel CHANNEL, bot token Secret
 * slack-bot), timeout 5m, with these `approvers` (written as JSON, which YAML reads).
 */
export const approvalChannel = (name: string, fakeUrl: string, approvers: Record<string, unknown>) => `
apiVersion: thoughtgate.io/v1alpha1
kind: ApprovalChannel
metadata: { name: ${name} }
spec:
  slack: { channel: ${CHANNEL}, apiUrl: "${fakeUrl}", tokenSecretRef: { name: slack-bot } }
  approvers: ${JSON.stringify(approvers)}
  timeout: 5m
`;

/** A GovernancePolicy: source `up` at `url`, `deploy` needs approval in channel `approvals`. */
export const approvalsPolicy = (url: string) => `
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: agents }
spec:
  sources: [{ name: up, url: "${url}" }]
  rules:
    - name: deploys-need-approval
      match: { tool: deploy }
      action: approve
      approval: { channel: approvals, timeout: 5m }
  defaultAction: forward
`;

export interface AgentPod {
  pod: PodJson;
  sandbox: PodSandbox;
  sidecar: Proc;
  /** The MCP URL of source `up` through the sidecar. */
  url: string;
}

/**
 * Once the namespace's ConfigMap is rendered and the webhook `mwc` has its caBundle: the pod
 * `agent` (ServiceAccount agent) created and injected, its sandbox (reaching the upstream at
 * `upstreamUrl`) and its sidecar started.
 */
export async function startAgentPod(ns: string, mwc: string, upstreamUrl: string): Promise<AgentPod> {
  await until('the ConfigMap', async () => (await kubectlResult(['get', 'configmap', 'thoughtgate-config', '-n', ns])).code === 0);
  await until(
    'the caBundle',
    async () => (await kubectl(['get', 'mutatingwebhookconfiguration', mwc, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).length > 0,
  );
  await kubectl([
    'run',
    'agent',
    '-n',
    ns,
    '--image=registry.example/agent:1',
    '--labels=app=agent',
    '--restart=Never',
    '--overrides={"spec":{"serviceAccountName":"agent"}}',
  ]);
  const pod = JSON.parse(await kubectl(['get', 'pod', 'agent', '-n', ns, '-o', 'json'])) as PodJson;
  // The pod's network: the sidecar reaches the API server and the upstream through it; the
  // agent (the test) reaches the proxy port on the pod's loopback through a port-forward.
  const sandbox = await startPodSandbox(cluster(), { hostPorts: [Number(new URL(upstreamUrl).port)], podPorts: [7467] });
  const url = `${sandbox.portForward(7467)}/mcp/up`;
  const sidecar = await startInjectedSidecar(cluster(), pod, 'thoughtgate', sandbox);
  return { pod, sandbox, sidecar, url };
}

/**
 * The chart's ApprovalDecision identity policy and binding (or the binding only), labelled as the
 * chart labels them, so the harness deletes them after the file (e2e/support/k8s.ts reset).
 */
export async function applyDecisionPolicy(only?: 'binding'): Promise<void> {
  const [policy, binding] = decisionPolicyObjects();
  for (const o of only === 'binding' ? [binding] : [policy, binding]) {
    (o.metadata as { labels?: Record<string, string> }).labels = { 'app.kubernetes.io/part-of': 'thoughtgate' };
    await kubectl(['apply', '-f', '-'], JSON.stringify(o));
  }
}

/**
 * Waits until the API server enforces the identity policy (it loads policies asynchronously: a
 * forged decision in namespace `ns` is refused), then past the operator's settling margin after
 * the last change, so a decision made next counts.
 */
export async function decisionPolicyEnforced(ns: string): Promise<void> {
  const forged = JSON.stringify({
    apiVersion: 'thoughtgate.io/v1alpha1',
    kind: 'ApprovalDecision',
    metadata: { generateName: 'forged-' },
    spec: { approvalRequest: 'x', decision: 'Approve', user: { username: 'someone-else', groups: [] } },
  });
  await until(
    'the admission policy enforced',
    async () => {
      const r = await kubectlResult(['create', '--dry-run=server', '-n', ns, '-f', '-'], forged);
      return r.code !== 0 && r.stderr.includes('spec.user.username must be your own username');
    },
    30_000,
  );
  await new Promise((r) => setTimeout(r, POLICY_SETTLE_MS + 1000));
}

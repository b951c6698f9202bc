// The cluster approval path of the e2e files: the GovernancePolicy that sends `deploy` to the
// ApprovalChannel "approvals", and an injected agent pod whose sidecar (the real binary, run as the
// kubelet would, in the pod's network) an SDK client reaches through a port-forward.
import type { Proc } from '../../test/support/processes.js';
import { startPodSandbox, type PodJson, type PodSandbox } from './kubelet.js';
import { cluster, kubectl, kubectlResult, until } from './k8s.js';
import { startInjectedSidecar } from './stack.js';

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

// The whole cluster path on a real kube-apiserver, with the real `thoughtgate` binary as operator
// and as sidecar: kubectl apply a GovernancePolicy → the operator renders thoughtgate-config → a
// pod created with kubectl is injected → the sidecar, started with exactly the env and args of the
// injected container and a TokenRequest token for the pod's service account, enforces the policy
// against server-everything → a kubectl apply change takes effect without a restart, and survives
// an operator restart, an API server restart and a second operator replica.
import https from 'node:https';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { containerProcess, findContainer, startPodSandbox, type PodJson, type PodSandbox } from './support/kubelet.js';
import { cluster, e2eCluster, getJson, kubectl, until } from './support/k8s.js';
import { startInjectedSidecar, startOperatorProcess as startOperator, type OperatorProc } from './support/stack.js';
import { connectClient } from '../test/support/sidecar.js';
import { freePort, startEverything, type Proc } from '../test/support/processes.js';

const e2e = e2eCluster('flow');
const NS = e2e.ns('agents');
const OPNS = e2e.ns('system');
const PLAIN = e2e.ns('plain');
const MWC = e2e.ns('injector');
let everything: { url: string; proc: Proc };
const operators: Proc[] = [];

async function startOperatorProcess(identity: string, webhookPort: number): Promise<OperatorProc> {
  const op = await startOperator(cluster(), { identity, namespace: OPNS, webhookPort, webhookConfig: MWC });
  operators.push(op.proc);
  return op;
}

const policy = (limit: number) => `
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: agents-policy }
spec:
  podSelector: { matchLabels: { app: agent } }
  sources:
    - name: everything
      url: ${everything.url}
      expose: { mode: allowlist, tools: [echo, get-sum] }
  rules:
    - match: { tool: get-sum }
      action: policy
  defaultAction: forward
  cedar:
    policies: |
      @id("small-sums")
      permit(principal, action == ThoughtGate::Action::"tools/call", resource)
        when { resource.name == "get-sum" && context.arguments.a < ${limit} && principal.getTag("app") == "agent" };
`;

const pod = (name: string, extra = '') => `
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: { app: agent }
${extra}spec:
  serviceAccountName: agent
  containers:
    - name: agent
      image: registry.example/agent:1
`;

beforeAll(async () => {
  everything = await startEverything();
  await e2e.namespace('system');
  await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled' });
  await e2e.namespace('plain');
  await kubectl(['create', 'serviceaccount', 'agent', '-n', NS]);
}, 60_000);

e2e.cleanup(async () => {
  for (const p of operators) await p.stop();
  await everything?.proc.stop();
});

describe('kubectl apply → operator → injected pod → sidecar enforcing', () => {
  let webhookPort: number;
  let op: OperatorProc;
  let sidecar: Proc | null = null;
  let sandbox: PodSandbox | undefined;
  let injected: PodJson;

  afterAll(async () => {
    await sidecar?.stop();
    await sandbox?.stop();
  });

  test('the operator renders the policy and the webhook injects a kubectl-created pod', async () => {
    webhookPort = await freePort();
    op = await startOperatorProcess('op-1', webhookPort);
    await kubectl(['apply', '-n', NS, '-f', '-'], policy(1000));
    await until('the ConfigMap', () => getJson(['get', 'configmap', 'thoughtgate-config', '-n', NS]));
    // The webhook configuration exists with the operator's CA in it before pods are created.
    await until('caBundle', async () => (await getJson(['get', 'mutatingwebhookconfiguration', MWC]))?.webhooks?.[0]?.clientConfig?.caBundle);

    await kubectl(['apply', '-n', NS, '-f', '-'], pod('agent-0'));
    injected = await getJson(['get', 'pod', 'agent-0', '-n', NS]);
    const c = findContainer(injected, 'thoughtgate');
    expect(injected.spec.initContainers![0]!.name).toBe('thoughtgate');
    expect((c as { restartPolicy?: string }).restartPolicy).toBe('Always');
    expect(c.args).toEqual(['sidecar']);
    expect(injected.metadata.annotations!['thoughtgate.io/injected']).toBe('0.1.0');
    const app = findContainer(injected, 'agent');
    expect(app.env).toContainEqual({ name: 'THOUGHTGATE_URL', value: 'http://127.0.0.1:7467' });

    // Not in an unlabelled namespace; not twice (the same pod applied again is unchanged).
    await kubectl(['apply', '-n', PLAIN, '-f', '-'], pod('agent-0').replace('serviceAccountName: agent\n', ''));
    expect((await getJson(['get', 'pod', 'agent-0', '-n', PLAIN])).spec.initContainers).toBeUndefined();
    await kubectl(['apply', '-n', NS, '-f', '-'], pod('agent-0'));
    expect((await getJson(['get', 'pod', 'agent-0', '-n', NS])).spec.initContainers.filter((x: { name: string }) => x.name === 'thoughtgate')).toHaveLength(1);
    // Opted out.
    await kubectl(['apply', '-n', NS, '-f', '-'], pod('opted-out', '  annotations: { thoughtgate.io/inject: disabled }\n'));
    expect((await getJson(['get', 'pod', 'opted-out', '-n', NS])).spec.initContainers).toBeUndefined();
  });

  test('the sidecar, run as the injected container with the pod token, enforces the policy', async () => {
    // The pod's network: the sidecar reaches the API server and server-everything through it; the
    // test reaches the proxy port (bound to the pod's loopback) through a port-forward.
    sandbox = await startPodSandbox(cluster(), { hostPorts: [Number(new URL(everything.url).port)], podPorts: [7467] });
    sidecar = await startInjectedSidecar(cluster(), injected, 'thoughtgate', sandbox);
    const ready = (await (await fetch(`${sandbox.url(7469)}/ready`)).json()) as { config: { from: string } };
    expect(ready.config.from).toBe(`ConfigMap ${NS}/thoughtgate-config`);
    // The operator rendered the Cedar policy's parsed form: the sidecar built its closures from it.
    expect(sidecar.out()).toMatch(/"msg":"config loaded".*"cedarBuiltFrom":"json"/);

    const { client } = await connectClient(`${sandbox.portForward(7467)}/mcp/everything`);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'get-sum']);
    expect(JSON.stringify((await client.callTool({ name: 'get-sum', arguments: { a: 5, b: 3 } })).content)).toContain('8');
    const denied = await client.callTool({ name: 'get-sum', arguments: { a: 5000, b: 3 } }).catch((e: McpError) => e);
    expect((denied as McpError).code).toBe(-32004);
    await client.close();
  });

  test('the pod token reads thoughtgate-config and cannot read Secrets', async () => {
    const { tokenFile, caFile } = await containerProcess(cluster(), injected, 'thoughtgate');
    const token = (await import('node:fs')).readFileSync(tokenFile, 'utf8');
    const as = (args: string[]) =>
      cluster().kubectl([`--token=${token}`, `--server=${cluster().server}`, `--certificate-authority=${caFile}`, '--kubeconfig=/dev/null', ...args]);
    expect((await as(['get', 'configmap', 'thoughtgate-config', '-n', NS])).code).toBe(0);
    const secrets = await as(['get', 'secrets', '-n', NS]);
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain('Forbidden');
  });

  const sumAllowed = async (a: number): Promise<boolean> => {
    const { client } = await connectClient(`${sandbox!.portForward(7467)}/mcp/everything`);
    try {
      return await client.callTool({ name: 'get-sum', arguments: { a, b: 1 } }).then(
        () => true,
        () => false,
      );
    } finally {
      await client.close();
    }
  };

  test('a kubectl apply change takes effect without a restart', async () => {
    const pid = sidecar!.child.pid;
    expect(await sumAllowed(5000)).toBe(false);
    await kubectl(['apply', '-n', NS, '-f', '-'], policy(10_000));
    await until('the new limit enforced', () => sumAllowed(5000), 10_000);
    expect(sidecar!.child.pid).toBe(pid);
    expect(sidecar!.child.exitCode).toBeNull();
  });

  test('an operator restart loses nothing', async () => {
    await op.proc.stop();
    await kubectl(['apply', '-n', NS, '-f', '-'], policy(20_000));
    op = await startOperatorProcess('op-1', webhookPort);
    await until('the change made while the operator was down', () => sumAllowed(15_000), 20_000);
  });

  test('an API server restart loses nothing', async () => {
    await cluster().restartApiServer();
    await kubectl(['apply', '-n', NS, '-f', '-'], policy(30_000));
    await until('the change made after the restart', () => sumAllowed(25_000), 60_000);
    // The sidecar kept serving throughout, on the same process.
    expect(sidecar!.child.exitCode).toBeNull();
  });

  test('two operators elect one leader, and the follower serves the webhook too', async () => {
    const followerPort = await freePort();
    const second = await startOperatorProcess('op-2', followerPort);
    await new Promise((r) => setTimeout(r, 3000));
    const leader = async (m: string) => /^thoughtgate_operator_leader 1$/m.test(await (await fetch(`${m}/metrics`)).text());
    expect([await leader(op.metrics), await leader(second.metrics)]).toEqual([true, false]);
    expect((await getJson(['get', 'lease', 'thoughtgate-operator', '-n', OPNS])).spec.holderIdentity).toBe('op-1');
    // The follower answers admission reviews with its own serving certificate, signed by the shared CA.
    const ca = Buffer.from((await getJson(['get', 'secret', 'thoughtgate-webhook-tls', '-n', OPNS])).data['ca.crt'], 'base64').toString();
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
    const answer = await new Promise<any>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: followerPort, path: '/mutate-pods', method: 'POST', ca, headers: { 'content-type': 'application/json' } },
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
    await second.proc.stop();
  });
});

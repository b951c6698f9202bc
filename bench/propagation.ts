// `kubectl apply` → sidecar enforcing, on a real kube-apiserver: the operator (real binary) renders
// the policy, the sidecar (real binary, started as the injected container) picks up the ConfigMap
// change. Each round flips a Cedar limit with kubectl apply and measures until a call through the
// sidecar shows the new decision. Prints `name value unit` lines. Loopback only; BENCH_ROUNDS
// (default 20) bounds it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from '../e2e/cluster/cluster.js';
import type { PodJson } from '../e2e/support/kubelet.js';
import { startInjectedSidecar, startOperatorProcess, until } from '../e2e/support/stack.js';
import { freePort, ROOT, startEverything } from '../test/support/processes.js';
import { pct } from './support/processes.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] || 20);
const NS = 'bench';

const policy = (everything: string, limit: number) => `
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: bench }
spec:
  sources: [{ name: everything, url: "${everything}" }]
  rules: [{ match: { tool: get-sum }, action: policy }]
  defaultAction: forward
  cedar:
    policies: |
      permit(principal, action, resource) when { context.arguments.a < ${limit} };
`;

/** One raw call through the sidecar: was get-sum(a=500) allowed? */
async function allowed(): Promise<boolean> {
  const r = await fetch('http://127.0.0.1:7467/mcp/everything', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'bench' },
    body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":500,"b":1}}}',
  });
  const text = await r.text();
  // A denial is ThoughtGate's -32004; anything else means the call reached the upstream.
  return !text.includes('"code":-32004');
}

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tg-bench-propagation-'));
  const cluster = await startCluster(stateDir);
  const everything = await startEverything();
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const k = async (args: string[], input?: string) => {
      const r = await cluster.kubectl(args, input);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await k(['apply', '-f', join(ROOT, 'crds')]);
    await k(['wait', '--for=condition=Established', 'crd/governancepolicies.thoughtgate.io', '--timeout=30s']);
    await k(['create', 'namespace', 'thoughtgate-system']);
    await k(['create', 'namespace', NS]);
    await k(['label', 'namespace', NS, 'thoughtgate.io/inject=enabled']);
    const op = await startOperatorProcess(cluster, { identity: 'bench', namespace: 'thoughtgate-system', webhookPort: await freePort() });
    stops.push(() => op.proc.stop());
    await k(['apply', '-n', NS, '-f', '-'], policy(everything.url, 1000));
    await until('the ConfigMap', async () => (await cluster.kubectl(['get', 'configmap', 'thoughtgate-config', '-n', NS])).code === 0);
    await until(
      'the caBundle',
      async () => (await k(['get', 'mutatingwebhookconfiguration', 'thoughtgate', '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).length > 0,
    );
    await k(['run', 'agent', '-n', NS, '--image=registry.example/agent:1', '--labels=app=agent', '--restart=Never']);
    const pod = JSON.parse(await k(['get', 'pod', 'agent', '-n', NS, '-o', 'json'])) as PodJson;
    const sidecar = await startInjectedSidecar(cluster, pod);
    stops.push(() => sidecar.stop());

    const samples: number[] = [];
    let limit = 1000;
    for (let i = 0; i < ROUNDS; i++) {
      limit = limit === 1000 ? 100 : 1000; // flips get-sum(a=500) between allowed and denied
      const want = limit === 1000;
      const t0 = process.hrtime.bigint();
      await k(['apply', '-n', NS, '-f', '-'], policy(everything.url, limit));
      await until('the new decision', async () => (await allowed()) === want, 30_000, { everyMs: 5 });
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    samples.sort((a, b) => a - b);
    console.log(`# kubectl apply (process start included) → the sidecar decides by the new policy, ${ROUNDS} rounds`);
    console.log(`propagation.kubectl_apply_to_enforcing.p50 ${pct(samples, 50).toFixed(1)} ms`);
    console.log(`propagation.kubectl_apply_to_enforcing.p99 ${pct(samples, 99).toFixed(1)} ms`);
    console.log(`propagation.kubectl_apply_to_enforcing.max ${samples.at(-1)!.toFixed(1)} ms`);
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await everything.proc.stop();
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

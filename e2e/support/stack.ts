// The cluster stack as processes, shared by the e2e tests and the propagation benchmark: the
// real `thoughtgate operator` (webhook registered by URL), and the sidecar started from an injected
// pod's container spec exactly as the kubelet would (see kubelet.ts), in the pod's network.
import { spawn } from 'node:child_process';
import type { Cluster } from '../cluster/cluster.js';
import { CLI, freePort, run, type Proc } from '../../test/support/processes.js';
import { containerProcess, type PodJson, type PodSandbox } from './kubelet.js';
import { until } from './k8s.js';

export { until };

export interface OperatorProc {
  proc: Proc;
  metrics: string;
}

export async function startOperatorProcess(
  cluster: Cluster,
  o: { identity: string; namespace: string; webhookPort: number; webhookConfig?: string; extraArgs?: string[] },
): Promise<OperatorProc> {
  const metricsPort = await freePort();
  const proc = run(
    process.execPath,
    [
      CLI,
      'operator',
      '--kubeconfig',
      cluster.kubeconfig,
      '--namespace',
      o.namespace,
      '--identity',
      o.identity,
      '--metrics-port',
      String(metricsPort),
      '--metrics-bind',
      '127.0.0.1',
      '--webhook-port',
      String(o.webhookPort),
      '--webhook-bind',
      '127.0.0.1',
      '--webhook-url',
      `https://127.0.0.1:${o.webhookPort}`,
      '--webhook-san',
      '127.0.0.1',
      '--manage-webhook-config',
      ...(o.webhookConfig ? ['--webhook-config', o.webhookConfig] : []),
      '--sidecar-image',
      'ghcr.io/thoughtgate/thoughtgate:e2e',
      ...(o.extraArgs ?? []),
    ],
    { KUBECONFIG: undefined },
  );
  const metrics = `http://127.0.0.1:${metricsPort}`;
  await until(`operator ${o.identity} ready`, async () => (await fetch(`${metrics}/readyz`)).status === 200);
  return { proc, metrics };
}

/**
 * The injected sidecar of `pod`, as a process with exactly its container's env and args, in the
 * pod's network (`sandbox`); without one (the benchmark) on the host's, with its fixed ports.
 */
export async function startInjectedSidecar(cluster: Cluster, pod: PodJson, container = 'thoughtgate', sandbox?: PodSandbox): Promise<Proc> {
  const { args, env } = await containerProcess(cluster, pod, container);
  const [cmd, argv] = sandbox ? sandbox.wrap(process.execPath, [CLI, ...args]) : [process.execPath, [CLI, ...args]];
  // Only the container's env, plus PATH: nothing of the test runner's environment leaks in.
  const child = spawn(cmd, argv, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const proc: Proc = {
    child,
    out: () => out,
    err: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  const adminPort = Number(env['THOUGHTGATE_ADMIN_PORT'] ?? '7469');
  const admin = sandbox ? sandbox.url(adminPort) : `http://127.0.0.1:${adminPort}`;
  await until(
    'the sidecar ready',
    async () => {
      if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}`);
      return (await fetch(`${admin}/ready`)).status === 200;
    },
    30_000,
    { detail: () => `sidecar output:\n${out}` },
  );
  return proc;
}

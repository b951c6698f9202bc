// The cluster stack as processes, shared by the e2e flow test and the propagation benchmark: the
// real `thoughtgate operator` (webhook registered by URL), and the sidecar started from an injected
// pod's container spec exactly as the kubelet would (see kubelet.ts).
import { spawn } from 'node:child_process';
import type { Cluster } from '../cluster/cluster.js';
import { CLI, freePort, run, type Proc } from '../../test/support/processes.js';
import { containerProcess, type PodJson } from './kubelet.js';

export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, limitMs = 30_000, everyMs = 100): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface OperatorProc {
  proc: Proc;
  metrics: string;
}

export async function startOperatorProcess(cluster: Cluster, o: { identity: string; namespace: string; webhookPort: number }): Promise<OperatorProc> {
  const metricsPort = await freePort();
  const proc = run(process.execPath, [
    CLI, 'operator',
    '--kubeconfig', cluster.kubeconfig,
    '--namespace', o.namespace,
    '--identity', o.identity,
    '--metrics-port', String(metricsPort), '--metrics-bind', '127.0.0.1',
    '--webhook-port', String(o.webhookPort), '--webhook-bind', '127.0.0.1',
    '--webhook-url', `https://127.0.0.1:${o.webhookPort}`, '--webhook-san', '127.0.0.1', '--manage-webhook-config',
    '--sidecar-image', 'ghcr.io/thoughtgate/thoughtgate:e2e',
  ], { KUBECONFIG: undefined });
  const metrics = `http://127.0.0.1:${metricsPort}`;
  await until(`operator ${o.identity} ready`, async () => (await fetch(`${metrics}/readyz`)).status === 200);
  return { proc, metrics };
}

/** The injected sidecar of `pod`, as a process with exactly its container's env and args. */
export async function startInjectedSidecar(cluster: Cluster, pod: PodJson, container = 'thoughtgate'): Promise<Proc> {
  const { args, env } = await containerProcess(cluster, pod, container);
  // Only the container's env, plus PATH: nothing of the test runner's environment leaks in.
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
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
  const admin = `http://127.0.0.1:${env['THOUGHTGATE_ADMIN_PORT'] ?? '7469'}`;
  await until(`the sidecar ready (${out})`, async () => (await fetch(`${admin}/ready`)).status === 200);
  return proc;
}

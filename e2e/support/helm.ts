// The chart tests' shared pieces: the helm binary (built once from the Go module proxy into the
// tool cache) and the shape of a rendered object.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { run } from '../cluster/cluster.js';
import { CLI, freePort, ROOT, run as runProcess, type Proc } from '../../test/support/processes.js';
import { cluster } from './k8s.js';
import { containerProcess, type PodJson } from './kubelet.js';

export const HELM_TOOLS = join(ROOT, 'scripts', 'helm-tools.sh');
export const CHART = join(ROOT, 'charts', 'thoughtgate');

/** An object rendered by the chart. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
}

/** Builds helm into the tool cache unless it is there (cold: a minute or two); its path. */
export async function installHelm(): Promise<string> {
  const r = await run(HELM_TOOLS, ['install'], { streamStderr: true });
  if (r.code !== 0) throw new Error(`helm-tools.sh install: ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

/** `helm template` of the chart as `release` in `namespace` with `args`, parsed into objects; throws with helm's message when it refuses. */
export async function renderChart(helmBin: string, args: string[], release = 'thoughtgate', namespace = 'thoughtgate-system'): Promise<K8sObject[]> {
  const r = await run(helmBin, ['template', release, CHART, '--namespace', namespace, ...args]);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject)
    .filter((o) => o);
}

export interface ChartOperator {
  proc: Proc;
  /** The container's own args, as the chart renders them. */
  args: string[];
  /** Its ServiceAccount's token, in a kubeconfig. */
  kubeconfig: string;
  webhookPort: number;
  metricsPort: number;
}

/**
 * Plays the kubelet for one of the chart's operator pods: its container's args and env (downward
 * API included), a token of its ServiceAccount in a kubeconfig, and the pod's ports moved to free
 * loopback ports (later flags win). `extraArgs` gets the webhook port.
 */
export async function runChartOperator(
  pod: PodJson,
  serviceAccount: string,
  stateDir: string,
  extraArgs: (webhookPort: number) => string[],
): Promise<ChartOperator> {
  const { args, env, tokenFile, caFile } = await containerProcess(cluster(), pod, 'operator');
  const kubeconfig = join(stateDir, 'operator-sa.kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'sa',
      clusters: [{ name: 'e2e', cluster: { server: cluster().server, 'certificate-authority': caFile } }],
      users: [{ name: serviceAccount, user: { token: readFileSync(tokenFile, 'utf8').trim() } }],
      contexts: [{ name: 'sa', context: { cluster: 'e2e', user: serviceAccount } }],
    }),
  );
  const webhookPort = await freePort();
  const metricsPort = await freePort();
  const loopback = ['--metrics-port', String(metricsPort), '--metrics-bind', '127.0.0.1', '--webhook-port', String(webhookPort), '--webhook-bind', '127.0.0.1'];
  const proc = runProcess(process.execPath, [CLI, ...args, '--kubeconfig', kubeconfig, ...loopback, ...extraArgs(webhookPort)], {
    ...env,
    KUBECONFIG: undefined,
  });
  return { proc, args, kubeconfig, webhookPort, metricsPort };
}

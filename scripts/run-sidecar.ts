// Development: runs the ThoughtGate sidecar injected into a pod of the dev cluster, as the kubelet
// would run it (its container env and args, a TokenRequest token bound to the pod, its labels).
// No kubelet runs in `make dev-cluster`, so this is how a developer sees a pod's sidecar enforce.
//   node dist/scripts/run-sidecar.js <namespace> <pod>     (KUBECONFIG=.dev/kubeconfig)
import { spawn } from 'node:child_process';
import path from 'node:path';
import { openCluster, repoRoot } from '../e2e/cluster/cluster.js';
import { containerProcess, type PodJson } from '../e2e/support/kubelet.js';
import { describeError } from '../lib/describe-error.js';

async function main(): Promise<number> {
  const [namespace, pod] = process.argv.slice(2);
  if (!namespace || !pod) {
    process.stderr.write('usage: node dist/scripts/run-sidecar.js <namespace> <pod>\n');
    return 2;
  }
  const root = repoRoot();
  const cluster = await openCluster(path.join(root, '.dev', 'cluster'));
  const kubectl = cluster.kubectl;
  const got = await kubectl(['get', 'pod', pod, '-n', namespace, '-o', 'json']);
  if (got.code !== 0) {
    process.stderr.write(got.stderr);
    return 1;
  }
  const { args, env: containerEnv } = await containerProcess(cluster, JSON.parse(got.stdout) as PodJson, 'thoughtgate');
  const child = spawn(process.execPath, [path.join(root, 'dist', 'cli.js'), ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...containerEnv },
    stdio: 'inherit',
  });
  process.on('SIGINT', () => child.kill('SIGTERM'));
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  return new Promise((r) => child.on('exit', (code) => r(code ?? 0)));
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${describeError(err)}\n`);
    process.exit(1);
  },
);

// Jest-side wrapper around e2e/cluster/cluster.sh: a real etcd + kube-apiserver +
// kube-controller-manager on 127.0.0.1, built from the pinned e2e/cluster/go.mod by
// scripts/k8s-tools.sh (the first build takes minutes; give the caller's hook a long timeout).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root: the nearest directory above this module whose package.json is ours. Found by
 * walking up rather than by a fixed "../.." so the same code works bundled (dist/bench/*.js).
 */
export function repoRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      if (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'thoughtgate') return dir;
    } catch {
      /* keep walking */
    }
    if (path.dirname(dir) === dir) throw new Error(`no thoughtgate package.json above ${from}`);
  }
}
const root = repoRoot();
export const clusterScript = path.join(root, 'e2e', 'cluster', 'cluster.sh');
export const k8sToolsScript = path.join(root, 'scripts', 'k8s-tools.sh');

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Cluster {
  /** Admin kubeconfig (x509 client cert in group system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** PEM file of the CA that signed the serving cert (and client certs). */
  caFile: string;
  stateDir: string;
  /** Everything cluster.sh wrote to stateDir/env (ports, key files, bin dir...). */
  env: Record<string, string>;
  /** Runs kubectl 1.33 as admin against this cluster; never rejects on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<RunResult>;
  /** Restarts kube-apiserver (same flags and port), then the controller manager; resolves when the API server is ready. */
  restartApiServer(): Promise<void>;
  /** Stops all processes of the cluster; idempotent. Logs stay in stateDir/logs. */
  stop(): Promise<void>;
}

export function kubectlPath(): string {
  if (process.env.KUBECTL) return process.env.KUBECTL;
  const pinned = '/usr/lib/google-cloud-sdk/bin/kubectl.1.33';
  return existsSync(pinned) ? pinned : 'kubectl';
}

export function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; streamStderr?: boolean } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err.push(b);
      if (options.streamStderr) process.stderr.write(b);
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code: code ?? (signal ? 128 : 1),
      }),
    );
    child.stdin.on('error', () => {}); // the child may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

async function runOrThrow(command: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.code !== 0) {
    throw new Error(`${path.basename(command)} ${args.join(' ')} exited with ${r.code}\n${r.stderr}${r.stdout}`);
  }
  return r;
}

/** Parses the `export KEY='value'` lines cluster.sh writes. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)='([^']*)'$/.exec(line.trim());
    // Both groups are unconditional, so a match has both.
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/** Builds the binaries if needed (prints the bin dir). */
export async function installK8sTools(): Promise<string> {
  // Build chatter (only on a cold cache) goes straight to the test's stderr.
  const r = await runOrThrow(k8sToolsScript, ['install'], { streamStderr: true });
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1]!; // split always returns at least one element
}

/** A cluster already running in stateDir (make dev-cluster): kubectl and paths; it is not stopped. */
export async function openCluster(stateDir: string): Promise<Omit<Cluster, 'restartApiServer' | 'stop'>> {
  const stateAbs = path.resolve(stateDir);
  const env = parseEnvFile(await readFile(path.join(stateAbs, 'env'), 'utf8'));
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`${stateAbs}/env has no ${k}`);
    return v;
  };
  const kubeconfig = need('KUBECONFIG');
  const server = need('THOUGHTGATE_K8S_SERVER');
  const caFile = need('THOUGHTGATE_K8S_CA_FILE');
  const kubectl = kubectlPath();
  return {
    kubeconfig,
    server,
    caFile,
    stateDir: stateAbs,
    env,
    kubectl: (args, input) =>
      run(kubectl, [`--kubeconfig=${kubeconfig}`, ...args], {
        input,
        env: { ...process.env, KUBECONFIG: kubeconfig },
      }),
  };
}

/**
 * Starts the cluster of stateDir, or finds it running (cluster.sh start is idempotent). The caller
 * owns it: nothing stops it when this process exits (the e2e run's global teardown does).
 */
export async function ensureCluster(stateDir: string): Promise<Cluster> {
  const binDir = await installK8sTools();
  const shellEnv = { ...process.env, THOUGHTGATE_K8S_BIN_DIR: binDir };
  const stateAbs = path.resolve(stateDir);
  await runOrThrow(clusterScript, ['start', stateAbs], { env: shellEnv });
  const cluster = await openCluster(stateAbs);
  return {
    ...cluster,
    restartApiServer: async () => {
      await runOrThrow(clusterScript, ['restart-apiserver', stateAbs], { env: shellEnv });
    },
    stop: async () => {
      await runOrThrow(clusterScript, ['stop', stateAbs], { env: shellEnv });
    },
  };
}

/** A cluster of this process: stopped when the process exits, even without a call to stop(). */
export async function startCluster(stateDir: string): Promise<Cluster> {
  const stateAbs = path.resolve(stateDir);
  let stopped = false;
  const stopSync = (): void => {
    if (stopped) return;
    stopped = true;
    spawnSync(clusterScript, ['stop', stateAbs], { stdio: 'ignore' });
  };
  process.once('exit', stopSync);
  let cluster: Cluster;
  try {
    cluster = await ensureCluster(stateAbs);
  } catch (e) {
    stopSync();
    process.removeListener('exit', stopSync);
    throw e;
  }
  return {
    ...cluster,
    stop: async () => {
      await cluster.stop();
      stopped = true;
      process.removeListener('exit', stopSync);
    },
  };
}

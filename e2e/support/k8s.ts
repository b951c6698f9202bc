// The one helper module of the e2e tier: the shared control plane of this jest run, kubectl,
// polling with a deadline, and the namespaces of a test file.
//
// One control plane per jest run (test/global-setup.js reserves the run directory; the first
// file that calls e2eCluster() starts it; test/global-teardown.js stops it). Files take it in
// turn: the operator is a cluster-wide controller (it watches every namespace, and every
// injection webhook selects namespaces by the same label), so two files' operators on one API
// server would reconcile each other's objects. Each file gets it to itself and leaves it as it
// found it: its namespaces and webhook configurations are deleted when it ends, and it waits until
// they are gone (and the same before it starts, in case the previous holder was killed).
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCluster, repoRoot, type Cluster, type RunResult } from '../cluster/cluster.js';

const ROOT = repoRoot();
/** Namespaces every cluster has; all others belong to some test file. */
const SYSTEM_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);

/**
 * Polls `fn` until it returns a truthy value and returns it. A throw counts as "not yet". At the
 * deadline it fails naming what was awaited, with the last value or error (and `detail()`).
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  limitMs = 30_000,
  opts: { everyMs?: number; detail?: () => string } = {},
): Promise<T> {
  const end = Date.now() + limitMs;
  let last = 'no attempt finished';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = `last value: ${JSON.stringify(v)}`;
    } catch (e) {
      last = `last error: ${(e as Error).message}`;
    }
    if (Date.now() > end) {
      const detail = opts.detail?.();
      throw new Error(`timed out after ${limitMs} ms waiting for ${what}; ${last}${detail ? `\n${detail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 100));
  }
}

let current: Cluster | undefined;

/** The cluster of this test file (set by e2eCluster's beforeAll). */
export function cluster(): Cluster {
  if (!current) throw new Error('no e2e cluster: call e2eCluster() at the top of the test file');
  return current;
}

/** kubectl as admin; throws with its stderr on a non-zero exit. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cluster().kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** kubectl as admin, exit code and all: for tests that expect a refusal. */
export function kubectlResult(args: string[], input?: string): Promise<RunResult> {
  return cluster().kubectl(args, input);
}

/** `kubectl <args> -o json`, parsed; null when kubectl fails (e.g. NotFound). */
export async function getJson(args: string[]): Promise<any> {
  const r = await cluster().kubectl([...args, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : null;
}

/** Holds a flock(1) on `file` until the returned function is called (or this process dies). */
async function holdLock(file: string): Promise<() => Promise<void>> {
  const child = spawn('flock', ['-x', file, 'sh', '-c', 'echo held; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock ${file} exited with ${code}`)));
  });
  return async () => {
    child.stdin!.end();
    await exited;
  };
}

/**
 * Deletes what test files leave in the cluster: their namespaces and webhook configurations. It
 * waits until the namespaces are gone: the next file's operator would otherwise still see them,
 * Terminating, and fail to reconcile them.
 */
async function reset(c: Cluster): Promise<void> {
  const ns = await c.kubectl(['get', 'namespaces', '-o', 'jsonpath={.items[*].metadata.name}']);
  const ours = ns.stdout.split(/\s+/).filter((n) => n && !SYSTEM_NAMESPACES.has(n));
  const steps = [
    ['delete', 'mutatingwebhookconfigurations,validatingwebhookconfigurations', '--all', '--wait=false'],
    // The chart's cluster-scoped objects (helm.test.ts installs it).
    ['delete', 'clusterroles,clusterrolebindings', '-l', 'app.kubernetes.io/name=thoughtgate', '--wait=false'],
    // The chart's ApprovalDecision admission policy (and e2e/approvals-kubectl.test.ts's copy).
    ['delete', 'validatingadmissionpolicies,validatingadmissionpolicybindings', '-l', 'app.kubernetes.io/part-of=thoughtgate', '--wait=false'],
    ...(ours.length ? [['delete', 'namespaces', ...ours, '--timeout=120s']] : []),
  ];
  for (const args of steps) {
    const r = await c.kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  }
}

/** Applies crds/ once per control plane and waits until every CRD is Established. */
async function applyCrdsOnce(c: Cluster, marker: string): Promise<void> {
  if (existsSync(marker)) return;
  for (const args of [
    ['apply', '-f', join(ROOT, 'crds')],
    ['wait', '--for=condition=Established', '--timeout=60s', '-f', join(ROOT, 'crds')],
  ]) {
    const r = await c.kubectl(args);
    if (r.code !== 0 || r.stderr) throw new Error(`kubectl ${args.join(' ')} (${r.code}): ${r.stderr}`);
  }
  writeFileSync(marker, '');
}

export interface E2E {
  /** This file's name for a namespace: `<tag>-<name>`, unique in the run. */
  ns(name: string): string;
  /** Creates `ns(name)` with these labels and waits for its default ServiceAccount. */
  namespace(name: string, labels?: Record<string, string>): Promise<string>;
  /** Runs at the end of the file, last registered first, before its namespaces are deleted. */
  cleanup(fn: () => unknown): void;
}

/**
 * Gives this test file the run's control plane for its whole duration (see the top of this module)
 * with the CRDs installed. Call once, at the top of the file; `tag` prefixes its namespaces.
 */
export function e2eCluster(tag: string): E2E {
  const cleanups: Array<() => unknown> = [];
  let release: (() => Promise<void>) | undefined;
  const ns = (name: string) => `${tag}-${name}`;

  beforeAll(async () => {
    const run = process.env['THOUGHTGATE_E2E_RUN'];
    if (!run) throw new Error('THOUGHTGATE_E2E_RUN is not set: run e2e tests through jest (test/global-setup.js sets it)');
    release = await holdLock(join(run, 'cluster.lock'));
    // The first file builds the binaries (a cold cache takes minutes) and starts the cluster.
    current = await ensureCluster(join(run, 'cluster'));
    await applyCrdsOnce(current, join(run, 'crds-applied'));
    await reset(current);
  }, 20 * 60_000);

  afterAll(async () => {
    try {
      for (const fn of cleanups.reverse()) await fn();
      if (current) await reset(current);
    } finally {
      await release?.();
    }
  }, 3 * 60_000);

  return {
    ns,
    async namespace(name, labels = {}) {
      const n = ns(name);
      await kubectl(['create', 'namespace', n]);
      const l = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
      if (l.length) await kubectl(['label', 'namespace', n, ...l]);
      await until(`the default ServiceAccount of ${n}`, async () => (await kubectlResult(['get', 'serviceaccount', 'default', '-n', n])).code === 0);
      return n;
    },
    cleanup(fn) {
      cleanups.push(fn);
    },
  };
}

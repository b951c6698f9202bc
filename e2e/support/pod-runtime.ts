// The test kubelet's container runtime, for pods whose containers must be told apart from each
// other (captured pods, e2e/capture.test.ts): every container runs in the pod's network namespace
// (startPodSandbox) as the user its securityContext names, and the ones that mount volumes get a
// mount namespace of their own.
//
// The mount namespace plays the container runtime's: in a cluster, a volume mounted into one
// container exists in that container's filesystem only; another container of the same pod, even
// with a shell, cannot open it. Here every process shares the machine's filesystem, so a Secret
// written to a temp dir would be readable by the agent, and the test would prove nothing. So a
// container with volumes gets a holder process (`unshare --mount --propagation private`, then
// `sleep infinity`, like the pod's pause container holds its namespaces) with a tmpfs over /run
// (where the kubelet's paths live: /var/run/secrets/…, /var/run/thoughtgate/…), and its volumes
// mounted at their mountPaths inside: emptyDir, downward-API and token volumes as binds of host
// dirs, Secret volumes as a tmpfs written from inside (nsenter, secret-volume.mjs: the kubelet's
// `..data` symlink layout), so the Secret's bytes exist nowhere else. The container's process is
// started in that namespace (nsenter -t <holder> -m -n, then setpriv as its UID), its root
// read-only there when its securityContext says readOnlyRootFilesystem. The agent runs
// outside it, as the app container's UID (startAgent). Mount paths outside /run (the sidecar's
// /etc/podinfo) are not mounted: the env naming them is rewritten to the host dir, as
// containerProcess does.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { V1Volume } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/cluster.js';
import { CLI, type Proc } from '../../test/support/processes.js';
import { fieldRef, findContainer, podToken, type ContainerSpec, type PodJson, type PodSandbox } from './kubelet.js';
import { until } from './k8s.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SECRET_WRITER = join(HERE, 'secret-volume.mjs');
const AGENT_SCRIPT = join(HERE, 'pod-agent.mjs');

/** Mounted for real in the container's namespace (a tmpfs over /run makes room for them). */
const underRun = (p: string) => /^\/(var\/)?run\//.test(p);

// The holder: a mount namespace of its own with /run private to it, the volumes mounted, then it
// waits. Arguments: "ro" or "rw" (readOnlyRootFilesystem), then triples "bind|bind-ro|tmpfs
// <source> <mountPath>", parents first. Read-only: / and the /run tmpfs (which stands for the
// image's /run) lose write access in this namespace only; the volumes keep theirs.
const HOLDER_SH = `
root="$1"; shift
mount -t tmpfs -o mode=0755 tg-run /run
while [ $# -gt 0 ]; do
  mkdir -p "$3"
  case "$1" in
    bind) mount --bind "$2" "$3" ;;
    bind-ro) mount --bind "$2" "$3"; mount -o remount,bind,ro "$3" ;;
    tmpfs) mount -t tmpfs -o mode=0755 "$2" "$3" ;;
  esac
  shift 3
done
if [ "$root" = ro ]; then mount -o remount,bind,ro /run; mount -o remount,bind,ro /; fi
echo ready
exec sleep infinity
`;

function output(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  return () => out;
}

function asProc(child: ChildProcess, out: () => string): Proc {
  const exited = new Promise<number | null>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
    else child.once('exit', (code) => r(code));
  });
  return {
    child,
    out,
    err: out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** What setpriv must do to run as the container's securityContext says (user, group, privileges, capabilities). */
export function setprivArgs(pod: PodJson, c: ContainerSpec): { uid: number; args: string[] } {
  const sc = c.securityContext ?? {};
  const psc = pod.spec.securityContext ?? {};
  const uid = sc.runAsUser ?? psc.runAsUser ?? 0;
  const gid = sc.runAsGroup ?? psc.runAsGroup ?? 0;
  if (uid === 0 && (sc.runAsNonRoot ?? psc.runAsNonRoot)) throw new Error(`container ${c.name}: runAsNonRoot with runAsUser 0: the kubelet would not start it`);
  const args = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups'];
  if (sc.allowPrivilegeEscalation === false) args.push('--no-new-privs');
  const drop = (sc.capabilities?.drop ?? []).map((x) => x.toLowerCase());
  const add = (sc.capabilities?.add ?? []).map((x) => `+${x.toLowerCase()}`);
  // Root's capabilities are its bounding set (file capabilities count as full for root).
  if (drop.includes('all')) args.push(`--bounding-set=${['-all', ...add].join(',')}`);
  else if (drop.length) args.push(`--bounding-set=${drop.map((x) => `-${x}`).join(',')}`);
  return { uid, args: [...args, '--'] };
}

export interface ContainerProc extends Proc {
  /** The holder of the container's mount namespace (nsenter -t … -m: see what the container sees). */
  holderPid: number;
}

export interface Agent {
  proc: Proc;
  /** One request to pod-agent.mjs (its header lists the ops); resolves with its answer. */
  ask(op: string, args?: Record<string, unknown>): Promise<any>;
}

export interface PodRuntime {
  /** Runs an init container to completion; rejects unless it exits 0 (the pod would not start). */
  runInit(name: string, limitMs?: number): Promise<{ out: string; ms: number }>;
  /** Starts a (sidecar) container; resolves once started. `ready`: also wait until this holds. */
  start(name: string, ready?: () => Promise<boolean>): Promise<ContainerProc>;
  /**
   * The app container `name` as an agent the test drives (pod-agent.mjs), with its env, as its UID
   * (or as container `as`'s: e.g. the sidecar's, to show what capture lets that UID do).
   */
  startAgent(name: string, as?: string): Promise<Agent>;
  /** The kubelet's volume sync: re-materialise every Secret volume whose Secret changed. */
  syncSecrets(): Promise<void>;
  stop(): Promise<void>;
}

type HostVolume = { kind: 'dir'; path: string } | { kind: 'secret'; volume: NonNullable<V1Volume['secret']> };

/** Runs a pod's containers in `sandbox` (see the top of this module). */
export async function runPod(cluster: Pick<Cluster, 'kubectl' | 'server' | 'caFile'>, pod: PodJson, sandbox: PodSandbox): Promise<PodRuntime> {
  const root = mkdtempSync(join(tmpdir(), `tg-pod-${pod.metadata.name}-`));
  // Traversable by every container's UID; each volume sets its own mode.
  chmodSync(root, 0o711);
  const procs: Proc[] = [];
  const secretMounts: Array<{ holderPid: number; mountPath: string; volume: NonNullable<V1Volume['secret']>; last?: string }> = [];

  /** The host side of the pod's volumes (emptyDir, downward API, projected token), once per pod. */
  const hostVolumes = new Map<string, HostVolume>();
  for (const v of pod.spec.volumes ?? []) {
    if (v.secret) {
      hostVolumes.set(v.name, { kind: 'secret', volume: v.secret });
      continue;
    }
    const dir = join(root, v.name);
    mkdirSync(dir);
    if (v.emptyDir) chmodSync(dir, 0o777);
    else if (v.downwardAPI) {
      for (const item of v.downwardAPI.items ?? []) if (item.fieldRef) writeFileSync(join(dir, item.path), fieldRef(pod, item.fieldRef.fieldPath));
    } else if (v.projected) {
      for (const s of v.projected.sources ?? []) {
        if (s.serviceAccountToken) writeFileSync(join(dir, s.serviceAccountToken.path), await podToken(cluster, pod));
        for (const item of s.configMap?.items ?? [])
          if (s.configMap?.name === 'kube-root-ca.crt') writeFileSync(join(dir, item.path), readFileSync(cluster.caFile));
        for (const item of s.downwardAPI?.items ?? []) if (item.fieldRef) writeFileSync(join(dir, item.path), fieldRef(pod, item.fieldRef.fieldPath));
      }
    } else continue;
    hostVolumes.set(v.name, { kind: 'dir', path: dir });
  }

  const secretFiles = async (s: NonNullable<V1Volume['secret']>): Promise<Record<string, string>> => {
    const r = await cluster.kubectl(['get', 'secret', s.secretName!, '-n', pod.metadata.namespace, '-o', 'json']);
    if (r.code !== 0) {
      // An optional Secret that does not exist is an empty volume; a required one holds the container.
      if (s.optional) return {};
      throw new Error(`Secret ${s.secretName} is not there and the volume is not optional: ${r.stderr}`);
    }
    const data: Record<string, string> = JSON.parse(r.stdout).data ?? {};
    if (!s.items) return data;
    return Object.fromEntries(s.items.filter((i) => i.key in data).map((i) => [i.path, data[i.key]!]));
  };

  const writeSecret = async (m: (typeof secretMounts)[number]): Promise<void> => {
    const files = await secretFiles(m.volume);
    const input = JSON.stringify({ dir: m.mountPath, files, mode: m.volume.defaultMode ?? 0o644 });
    if (input === m.last) return;
    // The payload goes through stdin, never argv: /proc/<pid>/cmdline is readable by every UID.
    const child = spawn('nsenter', ['-t', String(m.holderPid), '-m', '--', process.execPath, SECRET_WRITER], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = output(child);
    child.stdin!.end(input);
    const code = await new Promise((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`writing the Secret volume ${m.mountPath} failed: ${out()}`);
    m.last = input;
  };

  /** The holder of container `c`'s mount namespace, its volumes mounted. */
  const startHolder = async (c: ContainerSpec): Promise<{ pid: number; proc: Proc }> => {
    const triples: string[][] = [];
    for (const m of [...(c.volumeMounts ?? [])].sort((a, b) => a.mountPath.length - b.mountPath.length)) {
      if (!underRun(m.mountPath)) continue;
      const v = hostVolumes.get(m.name);
      if (!v) throw new Error(`container ${c.name} mounts ${m.name}, a volume the test kubelet does not make`);
      if (v.kind === 'secret') triples.push(['tmpfs', `tg-secret-${m.name}`, m.mountPath]);
      else triples.push([m.readOnly ? 'bind-ro' : 'bind', v.path, m.mountPath]);
    }
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        sandbox.netns,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-ec',
        HOLDER_SH,
        'holder',
        c.securityContext?.readOnlyRootFilesystem ? 'ro' : 'rw',
        ...triples.flat(),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const out = output(child);
    const proc = asProc(child, out);
    procs.push(proc);
    await until(`the mount namespace of ${c.name}`, () => {
      if (child.exitCode !== null) throw new Error(`the holder exited with ${child.exitCode}: ${out()}`);
      return out().includes('ready');
    });
    for (const m of c.volumeMounts ?? []) {
      const v = hostVolumes.get(m.name);
      if (v?.kind !== 'secret' || !underRun(m.mountPath)) continue;
      const sm = { holderPid: child.pid!, mountPath: m.mountPath, volume: v.volume };
      secretMounts.push(sm);
      await writeSecret(sm);
    }
    return { pid: child.pid!, proc };
  };

  /** The container's env as the kubelet resolves it; mount paths outside /run map to host dirs. */
  const envOf = (c: ContainerSpec): Record<string, string> => {
    const rewrite: Array<[string, string]> = [];
    for (const m of c.volumeMounts ?? []) {
      const v = hostVolumes.get(m.name);
      if (v?.kind === 'dir' && !underRun(m.mountPath)) rewrite.push([m.mountPath, v.path]);
    }
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
    for (const e of c.env ?? []) {
      let v = e.value ?? (e.valueFrom?.fieldRef ? fieldRef(pod, e.valueFrom.fieldRef.fieldPath) : undefined);
      if (v === undefined) throw new Error(`the test kubelet cannot resolve env ${e.name} of ${c.name}`);
      for (const [mountPath, dir] of rewrite) if (v.startsWith(`${mountPath}/`)) v = dir + v.slice(mountPath.length);
      env[e.name] = v;
    }
    const server = new URL(cluster.server);
    env['KUBERNETES_SERVICE_HOST'] = server.hostname;
    env['KUBERNETES_SERVICE_PORT'] = server.port;
    return env;
  };

  /** The container's command in its mount namespace and as its user; the image's entrypoint is `thoughtgate`. */
  const exec = (c: ContainerSpec, holderPid: number): ChildProcess => {
    const { args } = setprivArgs(pod, c);
    const command = c.command ?? [process.execPath, CLI];
    return spawn('nsenter', ['-t', String(holderPid), '-m', '-n', '--', ...args, ...command, ...(c.args ?? [])], {
      env: envOf(c),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  };

  return {
    async runInit(name, limitMs = 60_000) {
      const c = findContainer(pod, name);
      const holder = await startHolder(c);
      const started = Date.now();
      const child = exec(c, holder.pid);
      const proc = asProc(child, output(child));
      const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
      const code = await proc.exited;
      clearTimeout(timer);
      const ms = Date.now() - started;
      await holder.proc.stop('SIGKILL');
      if (code !== 0) throw new Error(`init container ${name} exited with ${code}:\n${proc.out()}`);
      return { out: proc.out(), ms };
    },

    async start(name, ready) {
      const c = findContainer(pod, name);
      const holder = await startHolder(c);
      const child = exec(c, holder.pid);
      const proc = asProc(child, output(child));
      procs.push(proc);
      const container: ContainerProc = { ...proc, holderPid: holder.pid };
      if (ready) {
        await until(
          `container ${name} ready`,
          async () => {
            if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
            return ready();
          },
          30_000,
          { detail: () => `${name} output:\n${proc.out()}` },
        );
      }
      return container;
    },

    async startAgent(name, as = name) {
      const c = findContainer(pod, name);
      const { args } = setprivArgs(pod, findContainer(pod, as));
      const child = spawn('ip', ['netns', 'exec', sandbox.netns, ...args, process.execPath, AGENT_SCRIPT], { env: envOf(c), stdio: ['pipe', 'pipe', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d) => {
        err += d;
      });
      const proc = asProc(child, () => err);
      procs.push(proc);
      const waiting = new Map<number, (v: unknown) => void>();
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        const answer = JSON.parse(line) as { id: number };
        waiting.get(answer.id)?.(answer);
        waiting.delete(answer.id);
      });
      child.once('exit', (code) => {
        for (const [, resolve] of waiting) resolve({ error: `the agent exited with ${code}: ${err}` });
      });
      let n = 0;
      return {
        proc,
        ask(op, a = {}) {
          const id = ++n;
          return new Promise((resolve) => {
            waiting.set(id, resolve);
            child.stdin!.write(`${JSON.stringify({ ...a, id, op })}\n`);
          });
        },
      };
    },

    async syncSecrets() {
      for (const m of secretMounts) await writeSecret(m);
    },

    async stop() {
      for (const p of procs.reverse()) await p.stop('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    },
  };
}

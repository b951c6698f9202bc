// No kubelet runs in the e2e cluster, so the tests play its part for one container: resolve the
// container's env (values and downward-API fieldRefs), "mount" its volumes as temp directories
// (downward-API labels, the service-account token from a TokenRequest bound to the pod, the CA),
// and start the process with the container's args in the pod's own network namespace
// (startPodSandbox). Nothing else about the container changes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Container, V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/cluster.js';

export type ContainerSpec = V1Container;

/** A pod as the API server returns it after admission: name, namespace and spec are set. */
export type PodJson = V1Pod & { metadata: V1ObjectMeta & { name: string; namespace: string }; spec: V1PodSpec };

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Go-quoted like the kubelet's downward-API labels file. */
function quote(v: string): string {
  return JSON.stringify(v);
}

/** The downward-API labels file, as the kubelet writes it. */
export function labelsText(pod: PodJson): string {
  return Object.entries(pod.metadata.labels ?? {})
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join('\n');
}

/** A downward-API fieldRef's value (env or volume item). */
export function fieldRef(pod: PodJson, path: string): string {
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace;
    case 'metadata.labels':
      return labelsText(pod);
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? 'default';
    default:
      throw new Error(`the test kubelet does not resolve fieldRef ${path}`);
  }
}

/** A token for the pod's service account, bound to the pod, as the kubelet requests it (TokenRequest). */
export async function podToken(cluster: Pick<Cluster, 'kubectl'>, pod: PodJson): Promise<string> {
  const sa = pod.spec.serviceAccountName ?? 'default';
  const r = await cluster.kubectl([
    'create',
    'token',
    sa,
    '-n',
    pod.metadata.namespace,
    '--bound-object-kind',
    'Pod',
    '--bound-object-name',
    pod.metadata.name,
    '--duration',
    '1h',
  ]);
  if (r.code !== 0) throw new Error(`TokenRequest failed: ${r.stderr}`);
  return r.stdout.trim();
}

export function findContainer(pod: PodJson, name: string): ContainerSpec {
  const c = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((x) => x.name === name);
  if (!c) throw new Error(`pod ${pod.metadata.name} has no container ${name}`);
  return c;
}

/** The env (and args) the kubelet would give the container, with mounts mapped to temp dirs. */
export async function containerProcess(
  cluster: Pick<Cluster, 'kubectl' | 'server' | 'caFile'>,
  pod: PodJson,
  name: string,
): Promise<{ args: string[]; env: Record<string, string>; tokenFile: string; caFile: string }> {
  const c = findContainer(pod, name);
  const root = mkdtempSync(join(tmpdir(), `tg-kubelet-${name}-`));
  const mounts = new Map<string, string>();
  for (const m of c.volumeMounts ?? []) {
    const dir = join(root, m.name);
    mkdirSync(dir, { recursive: true });
    mounts.set(m.mountPath, dir);
    const volume = pod.spec.volumes?.find((v) => v.name === m.name);
    if (volume?.downwardAPI) writeFileSync(join(dir, 'labels'), labelsText(pod));
  }
  // The service-account volume: a token for the pod's service account, bound to the pod, as the
  // kubelet requests it; the cluster CA as kube-root-ca.crt carries it.
  const saDir = mounts.get(SA_DIR) ?? join(root, 'serviceaccount');
  mkdirSync(saDir, { recursive: true });
  writeFileSync(join(saDir, 'token'), await podToken(cluster, pod));
  writeFileSync(join(saDir, 'ca.crt'), (await import('node:fs')).readFileSync(cluster.caFile));
  writeFileSync(join(saDir, 'namespace'), pod.metadata.namespace);

  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    let v = e.value ?? (e.valueFrom?.fieldRef ? fieldRef(pod, e.valueFrom.fieldRef.fieldPath) : undefined);
    if (v === undefined) throw new Error(`the test kubelet cannot resolve env ${e.name}`);
    for (const [mountPath, dir] of mounts) if (v.startsWith(`${mountPath}/`)) v = dir + v.slice(mountPath.length);
    env[e.name] = v;
  }
  // What the kubelet adds to every container: the API server's service address.
  const server = new URL(cluster.server);
  env['KUBERNETES_SERVICE_HOST'] = server.hostname;
  env['KUBERNETES_SERVICE_PORT'] = server.port;
  env['THOUGHTGATE_SERVICEACCOUNT_DIR'] = saDir;
  return { args: c.args ?? [], env, tokenFile: join(saDir, 'token'), caFile: join(saDir, 'ca.crt') };
}

/**
 * A pod's network: its own network namespace with a veth pair to the host (e2e-run.sh pod-add), so
 * the fixed ports a container binds (the sidecar's 7467 and 7469) are the pod's, as in a cluster.
 * The pod reaches the API server and `hostPorts` (services of the test on the host's loopback) at
 * the same 127.0.0.1 addresses it would be given, through forwards; the test reaches `podPorts`
 * (bound to the pod's loopback) on a host loopback port, as `kubectl port-forward` does.
 */
/** The world outside a captured pod (e2e-run.sh pod-add … upstream): its own network namespace. */
export interface UpstreamNet {
  netns: string;
  /** The upstream's addresses: where its servers listen and the pod's default routes point. */
  ipv4: string;
  ipv6: string;
  /** The pod's addresses on the link to the upstream. */
  podIpv4: string;
  podIpv6: string;
  /** Second addresses of the upstream (its loopback): another host, as far as the pod can tell. */
  altIpv4: string;
  altIpv6: string;
}

export interface PodSandbox {
  netns: string;
  /** Set when the sandbox was made with `upstream: true`. */
  upstream?: UpstreamNet;
  /** The pod's IP (its end of the veth). */
  ip: string;
  /** http://<pod IP>:<port>, for ports the pod binds on all its addresses. */
  url(port: number): string;
  /** http://127.0.0.1:<local port> forwarded to the pod's 127.0.0.1:<port> (one of `podPorts`). */
  portForward(port: number): string;
  /** The command with `ip netns exec`: run in the pod's network. */
  wrap(command: string, args: string[]): [string, string[]];
  /** Stops the forwards and deletes the namespace and its veth. */
  stop(): Promise<void>;
}

const RUN_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'e2e-run.sh');
const FORWARD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'pod-forward.mjs');

/** `[::0:1]` → `::1`: the spelling Node reports addresses in. */
const canonicalIpv6 = (a: string) => new URL(`http://[${a}]/`).hostname.slice(1, -1);

/**
 * `upstream`: also an upstream namespace (UpstreamNet) holding the pod's default routes and DNS.
 * `forwardAs`: the UID the in-pod forwards run as. The forwards play the cluster network (the API
 * server's Service), not a container: in a captured pod they must run as the sidecar's UID, whose
 * connections capture lets through, as the sidecar's own connections to the API server pass.
 */
export async function startPodSandbox(
  cluster: Pick<Cluster, 'server'>,
  o: { hostPorts?: number[]; podPorts?: number[]; upstream?: boolean; forwardAs?: number } = {},
): Promise<PodSandbox> {
  const run = process.env['THOUGHTGATE_E2E_RUN'];
  if (!run) throw new Error('THOUGHTGATE_E2E_RUN is not set: run e2e tests through jest (test/global-setup.js sets it)');
  const added = execFileSync(RUN_SCRIPT, ['pod-add', run, ...(o.upstream ? ['upstream'] : [])], { encoding: 'utf8' })
    .trim()
    .split(' ');
  const [netns, hostIp, ip, upNetns, up4, up6, pod4, pod6, alt4, alt6] = added as [string, string, string, ...(string | undefined)[]];
  const upstream: UpstreamNet | undefined =
    upNetns && up4 && up6 && pod4 && pod6 && alt4 && alt6
      ? { netns: upNetns, ipv4: up4, ipv6: canonicalIpv6(up6), podIpv4: pod4, podIpv6: canonicalIpv6(pod6), altIpv4: alt4, altIpv6: canonicalIpv6(alt6) }
      : undefined;
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const local = new Map<number, number>();
  let forwarder: ChildProcess | undefined;
  /** A host listener on `host`:0 piping each connection to `to`; resolves with its port. */
  const forward = async (host: string, to: { host: string; port: number }): Promise<number> => {
    const s = net.createServer((a) => {
      const b = net.connect(to.port, to.host);
      for (const x of [a, b]) {
        sockets.add(x);
        x.once('close', () => sockets.delete(x));
      }
      a.pipe(b).pipe(a);
      a.on('error', () => b.destroy());
      b.on('error', () => a.destroy());
    });
    servers.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, host, resolve);
    });
    return (s.address() as net.AddressInfo).port;
  };
  const stop = async () => {
    if (forwarder && forwarder.exitCode === null) {
      const exited = new Promise((r) => forwarder!.once('exit', r));
      forwarder.kill();
      await exited;
    }
    for (const x of sockets) x.destroy();
    for (const s of servers) await new Promise((r) => s.close(r));
    execFileSync(RUN_SCRIPT, ['pod-del', netns]);
  };
  try {
    // Host side: one listener on the host end of the veth per host loopback port.
    const forwards: string[] = [];
    for (const port of [Number(new URL(cluster.server).port), ...(o.hostPorts ?? [])]) {
      forwards.push(`127.0.0.1:${port}=${hostIp}:${await forward(hostIp, { host: '127.0.0.1', port })}`);
    }
    // The pod's loopback ports: on the pod's IP inside, and on a host loopback port outside.
    for (const port of o.podPorts ?? []) {
      forwards.push(`${ip}:${port}=127.0.0.1:${port}`);
      local.set(port, await forward('127.0.0.1', { host: ip, port }));
    }
    const as = o.forwardAs === undefined ? [] : ['setpriv', `--reuid=${o.forwardAs}`, `--regid=${o.forwardAs}`, '--clear-groups'];
    const child = spawn('ip', ['netns', 'exec', netns, ...as, process.execPath, FORWARD_SCRIPT, ...forwards], { stdio: ['ignore', 'pipe', 'pipe'] });
    forwarder = child;
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the forwards of ${netns} exited with ${code}: ${err}`)));
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    netns,
    ...(upstream ? { upstream } : {}),
    ip,
    url: (port) => `http://${ip}:${port}`,
    portForward: (port) => {
      const p = local.get(port);
      if (p === undefined) throw new Error(`port ${port} of ${netns} is not forwarded (podPorts)`);
      return `http://127.0.0.1:${p}`;
    },
    wrap: (command, args) => ['ip', ['netns', 'exec', netns, command, ...args]],
    stop,
  };
}

// No kubelet runs in the e2e cluster, so the tests play its part for one container: resolve the
// container's env (values and downward-API fieldRefs), "mount" its volumes as temp directories
// (downward-API labels, the service-account token from a TokenRequest bound to the pod, the CA),
// and start the process with the container's args. Nothing else about the container changes.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from '../cluster/cluster.js';

export interface ContainerSpec {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
}

export interface PodJson {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { serviceAccountName?: string; initContainers?: ContainerSpec[]; containers: ContainerSpec[]; volumes?: { name: string; downwardAPI?: unknown; projected?: unknown }[] };
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Go-quoted like the kubelet's downward-API labels file. */
function quote(v: string): string {
  return JSON.stringify(v);
}

function fieldRef(pod: PodJson, path: string): string {
  switch (path) {
    case 'metadata.name': return pod.metadata.name;
    case 'metadata.namespace': return pod.metadata.namespace;
    case 'spec.serviceAccountName': return pod.spec.serviceAccountName ?? 'default';
    default: throw new Error(`the test kubelet does not resolve fieldRef ${path}`);
  }
}

export function findContainer(pod: PodJson, name: string): ContainerSpec {
  const c = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((x) => x.name === name);
  if (!c) throw new Error(`pod ${pod.metadata.name} has no container ${name}`);
  return c;
}

/** The env (and args) the kubelet would give the container, with mounts mapped to temp dirs. */
export async function containerProcess(cluster: Pick<Cluster, 'kubectl' | 'server' | 'caFile'>, pod: PodJson, name: string): Promise<{ args: string[]; env: Record<string, string>; tokenFile: string; caFile: string }> {
  const c = findContainer(pod, name);
  const root = mkdtempSync(join(tmpdir(), `tg-kubelet-${name}-`));
  const mounts = new Map<string, string>();
  for (const m of c.volumeMounts ?? []) {
    const dir = join(root, m.name);
    mkdirSync(dir, { recursive: true });
    mounts.set(m.mountPath, dir);
    const volume = pod.spec.volumes?.find((v) => v.name === m.name);
    if (volume?.downwardAPI) {
      writeFileSync(join(dir, 'labels'), Object.entries(pod.metadata.labels ?? {}).map(([k, v]) => `${k}=${quote(v)}`).join('\n'));
    }
  }
  // The service-account volume: a token for the pod's service account, bound to the pod, as the
  // kubelet requests it; the cluster CA as kube-root-ca.crt carries it.
  const saDir = mounts.get(SA_DIR) ?? join(root, 'serviceaccount');
  mkdirSync(saDir, { recursive: true });
  const sa = pod.spec.serviceAccountName ?? 'default';
  const token = await cluster.kubectl(['create', 'token', sa, '-n', pod.metadata.namespace, '--bound-object-kind', 'Pod', '--bound-object-name', pod.metadata.name, '--duration', '1h']);
  if (token.code !== 0) throw new Error(`TokenRequest failed: ${token.stderr}`);
  writeFileSync(join(saDir, 'token'), token.stdout.trim());
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

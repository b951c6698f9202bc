// The operator's informers: kube/'s reflector (list, watch with bookmarks, 410 relist, watchdog,
// backoff with jitter) over a collection path, with the store and events client-node's informers
// gave the operator. Objects are the API server's JSON (timestamps are strings).
import type * as k8s from '@kubernetes/client-node';
import { resourceTypeFromPath, type KubeObject } from '../kube/protocol.js';
import { startReflector } from '../kube/reflector.js';
import type { StoreLimits } from '../kube/reflector-plan.js';
import { resourceClient } from '../kube/resource.js';
import type { Transport } from '../kube/transport.js';
import { describeError } from '../lib/describe-error.js';
import type { Logger } from '../lib/log.js';
import { transportFromKubeConfig } from './kube-transport.js';

export interface ResilientInformer<T extends k8s.KubernetesObject> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): ReadonlyArray<T>;
  /** Resolves once the first list has been received. */
  synced(): Promise<void>;
  isSynced(): boolean;
  /** Watches restarted after an error or a silent connection. */
  restarts(): number;
  /** Objects in the cache (of one namespace when given). */
  size(namespace?: string): number;
  /**
   * Whether the cache left out an object of `namespace` for its `limits` within `truncatedForMs`:
   * what is read from it there is incomplete.
   */
  truncated(namespace: string): boolean;
  stop(): Promise<void>;
}

export interface InformerOptions<T extends k8s.KubernetesObject> {
  kc: k8s.KubeConfig;
  /** Connections to share between informers; else one is made from `kc` (and closed by stop()). */
  transport?: Transport;
  name: string;
  /** The collection: "/api/v1/configmaps", "/apis/thoughtgate.io/v1alpha1/governancepolicies". */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Every change: the first list's objects as adds, then watch events and what a relist found. */
  onChange: (event: 'add' | 'update' | 'delete', obj: T) => void;
  log: Logger;
  /** The server ends each watch after this long (resumed from its resourceVersion). Default 5–10 min. */
  rewatchMs?: number;
  /** Restart a watch silent this long (the server bookmarks about every minute). Default 3 min. */
  watchdogMs?: number;
  onRestart?: () => void;
  /** What the cache keeps of each object, or null to leave it out (kube/reflector.ts `transform`). */
  transform?: ((obj: T) => T | null) | undefined;
  /** Bounds of the cache: a new object beyond is left out until there is room. */
  limits?: StoreLimits | undefined;
  /** An object was left out (filtered by `transform`, or over `limits`); `obj` is what the transform kept of it. */
  onDrop?: (reason: 'filtered' | 'limit', obj: T) => void;
  /** How long a namespace counts as truncated after an object of it was left out for the limits. Default 1 h (the API server's event TTL). */
  truncatedForMs?: number;
  now?: () => number;
}

export function startInformer<T extends k8s.KubernetesObject>(o: InformerOptions<T>): ResilientInformer<T> {
  const ownTransport = !o.transport;
  const transport = o.transport ?? transportFromKubeConfig(o.kc);
  const { type, namespace } = resourceTypeFromPath(o.path);
  const source = resourceClient(transport, { ...type, kind: o.name }).listWatch({
    ...(namespace !== undefined ? { namespace } : {}),
    ...(o.labelSelector ? { labelSelector: o.labelSelector } : {}),
    ...(o.fieldSelector ? { fieldSelector: o.fieldSelector } : {}),
  });
  let restarts = 0;
  const now = o.now ?? Date.now;
  const truncatedForMs = o.truncatedForMs ?? 3_600_000;
  /** namespace → when an object of it was last left out for the limits (bounded by the cluster's namespaces). */
  const overLimitAt = new Map<string, number>();
  const restarted = () => {
    restarts++;
    o.onRestart?.();
  };
  const r = startReflector<KubeObject>({
    source,
    addsOnFirstList: true,
    transform: o.transform as ((obj: KubeObject) => KubeObject | null) | undefined,
    limits: o.limits,
    onDrop: (obj, reason) => {
      if (reason === 'limit') overLimitAt.set(obj.metadata.namespace ?? '', now());
      o.onDrop?.(reason, obj as unknown as T);
    },
    onChange: (c) => o.onChange(c.type, c.object as unknown as T),
    onChangeError: (err, c) =>
      o.log.error('informer event handler failed; the event is in the cache and the next resync maps it again', {
        informer: o.name,
        object: c.object.metadata.name,
        error: describeError(err),
      }),
    onFailure: (err, delayMs) => {
      restarted();
      o.log.warn('informer stopped; restarting', { informer: o.name, inMs: delayMs, error: describeError(err) });
    },
    onWatchdog: (silentMs) => {
      restarted();
      o.log.warn('informer watch went silent; restarting it', { informer: o.name, silentMs });
    },
    onGone: (resourceVersion) => o.log.info('informer watch expired (410); listing again', { informer: o.name, resourceVersion }),
    onRead: (afterError) => {
      if (afterError) o.log.info('informer watching again', { informer: o.name });
    },
    ...(o.rewatchMs !== undefined ? { watchTimeoutSeconds: Math.max(1, Math.round(o.rewatchMs / 1000)) } : {}),
    ...(o.watchdogMs !== undefined ? { watchdogMs: o.watchdogMs } : {}),
  });

  return {
    get: (name, ns) => r.get(name, ns) as unknown as T | undefined,
    list: (ns) => r.list(ns) as unknown as T[],
    synced: () => r.synced(),
    isSynced: () => r.isSynced(),
    restarts: () => restarts,
    size: (ns) => r.size(ns),
    truncated: (ns) => {
      const at = overLimitAt.get(ns);
      if (at === undefined) return false;
      if (now() - at < truncatedForMs) return true;
      overLimitAt.delete(ns);
      return false;
    },
    async stop() {
      await r.stop('informer stopped');
      if (ownTransport) await transport.close();
    },
  };
}

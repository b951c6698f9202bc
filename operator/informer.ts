// A client-node 1.4 informer that keeps going. 1.4's informers stop for good on any error other
// than 410 (list failure, non-200 watch) and have no watch timeout; this wrapper restarts them with
// exponential backoff and re-watches periodically so a silently dead connection cannot last.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../lib/log.js';

export interface ResilientInformer<T extends k8s.KubernetesObject> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): ReadonlyArray<T>;
  /** Resolves once the first list has been received. */
  synced(): Promise<void>;
  isSynced(): boolean;
  restarts(): number;
  stop(): Promise<void>;
}

export interface InformerOptions<T extends k8s.KubernetesObject> {
  kc: k8s.KubeConfig;
  name: string;
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  labelSelector?: string;
  onChange: (event: 'add' | 'update' | 'delete', obj: T) => void;
  log: Logger;
  /** Re-watch (from the last resourceVersion, no relist) at this interval. Default 5 min. */
  rewatchMs?: number;
  onRestart?: () => void;
}

export function startInformer<T extends k8s.KubernetesObject>(o: InformerOptions<T>): ResilientInformer<T> {
  // ListWatch directly (what makeInformer builds): it also exposes the resourceVersion.
  const inf = new k8s.ListWatch<T>(o.path, new k8s.Watch(o.kc), o.list, false, o.labelSelector);
  let stopped = false;
  let synced = false;
  let restarts = 0;
  let delay = 1000;
  let retryTimer: NodeJS.Timeout | null = null;
  let resolveSynced!: () => void;
  const syncedPromise = new Promise<void>((r) => { resolveSynced = r; });

  const markSynced = () => {
    delay = 1000;
    if (!synced) { synced = true; resolveSynced(); }
  };
  // The first list fills the cache and fires add for every object; connect fires after it.
  inf.on('add', (obj) => o.onChange('add', obj));
  inf.on('update', (obj) => o.onChange('update', obj));
  inf.on('delete', (obj) => o.onChange('delete', obj));
  inf.on('connect', () => {
    // "connect" precedes the list; the list's resourceVersion is known once a watch is running.
    setImmediate(() => { if (inf.latestResourceVersion()) markSynced(); });
  });
  const restart = (err: unknown) => {
    if (stopped || retryTimer) return;
    restarts++;
    o.onRestart?.();
    const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
    o.log.warn('informer stopped; restarting', { informer: o.name, inMs: wait, error: describe(err) });
    delay = Math.min(delay * 2, 30_000);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void run();
    }, wait);
  };
  inf.on('error', restart);
  const run = async () => {
    if (stopped) return;
    try {
      await inf.start();
      if (inf.latestResourceVersion()) markSynced();
    } catch (err) {
      restart(err);
    }
  };
  void run();
  const rewatch = setInterval(() => {
    if (stopped || retryTimer) return;
    void inf.stop().then(run);
  }, o.rewatchMs ?? 5 * 60_000);
  rewatch.unref();

  return {
    get: (name, namespace) => inf.get(name, namespace),
    list: (namespace) => inf.list(namespace),
    synced: () => syncedPromise,
    isSynced: () => synced,
    restarts: () => restarts,
    async stop() {
      stopped = true;
      clearInterval(rewatch);
      if (retryTimer) clearTimeout(retryTimer);
      await inf.stop();
    },
  };
}

function describe(err: unknown): string {
  if (!err) return 'connection closed';
  const e = err as { statusCode?: number; code?: number | string; message?: string };
  return [e.statusCode ?? e.code, e.message].filter((x) => x !== undefined).join(' ') || String(err);
}

// The one reflector: client-go's list-then-watch loop with a store, behind every watch in
// ThoughtGate (the sidecar's ConfigMap and ApprovalRequests, every operator informer).
// - list, then watch from the list's resourceVersion with bookmarks;
// - the server ends every watch after timeoutSeconds: resume at once from the last resourceVersion;
// - 410 Gone (history compacted, a restarted API server): list again and report what changed;
// - failures back off exponentially with jitter (Retry-After honoured); a healthy watch resets it;
// - a watchdog restarts a watch silent (no event, no bookmark) for watchdogMs: the API server
//   sends a bookmark about every minute, so silence means a dead connection TCP has not noticed.
// - optionally, a `transform` keeps only what the owner reads of each object (or leaves it out),
//   and `limits` bound the store: a watch open to writers the owner does not trust (Events anyone
//   may create) must not grow memory with what they write.
// The decisions are kube/reflector-plan.ts; this file is the I/O and the store.
import { describeError } from '../lib/describe-error.js';
import { KubeError, objectKey, type KubeObject, type WatchEvent } from './protocol.js';
import { keyOf, listAdmission, nextStep, relistChanges, withinLimits, type AttemptEnd, type Change, type Memory, type StoreLimits } from './reflector-plan.js';
import type { ListResult, ListWatcher } from './resource.js';

export type ReflectorPhase = 'listing' | 'connecting' | 'watching' | 'backoff' | 'closed';

export interface ReflectorCounters {
  lists: number;
  watches: number;
  /** Watch events, bookmarks included. */
  events: number;
  bookmarks: number;
  /** Lists and watches that failed (connection refused or reset, timeouts, 401/403, ...). */
  failures: number;
  /** Lists forced by 410 Gone. */
  relists: number;
  watchdogRestarts: number;
  /** Changes whose onChange threw (reported through onChangeError; the stream went on). */
  handlerErrors: number;
}

/** What a reflector with a `transform` or `limits` left out of its store. */
export interface ReflectorDrops {
  /** Objects `transform` left out (list items and watch events). */
  filtered: number;
  /** New objects left out because the store was at one of its `limits`. */
  overLimit: number;
}

export interface ReflectorState {
  phase: ReflectorPhase;
  /** Where the next watch resumes. */
  resourceVersion: string;
  /** The last failure, cleared once the server answers again. */
  lastError: string | null;
  counters: ReflectorCounters;
  dropped: ReflectorDrops;
}

/** Hooks for the owner's logs and metrics; each is optional and must not throw. */
export interface ReflectorHooks<T extends KubeObject> {
  /** A list replaced the store (the first, or after 410). Called after its changes were reported. */
  onList?(items: readonly T[], resourceVersion: string): void;
  /** A successful read (a list, or an opened watch); `afterError` when it ends a run of failures. */
  onRead?(afterError: boolean): void;
  /** A failed list or watch; state().lastError is set. `delayMs` is the coming backoff. */
  onFailure?(err: unknown, delayMs: number): void;
  onWatchdog?(silentMs: number): void;
  /** 410: `resourceVersion` was too old; a list follows. */
  onGone?(resourceVersion: string): void;
  /** onChange threw: the store already holds the change, so it is reported here and the stream goes on. */
  onChangeError?(err: unknown, change: Change<T>): void;
  /** An object was left out of the store: `transform` returned null, or the store was at its limits. */
  onDrop?(object: T, reason: 'filtered' | 'limit'): void;
}

export interface ReflectorOptions<T extends KubeObject> extends ReflectorHooks<T>, ReflectorTuning {
  source: ListWatcher<T>;
  /**
   * Every change to the store, in order: from watch events, and from a relist (adds, updates and
   * deletes against what the store held; `relist` true). Not called for the first list, whose
   * objects are all adds, unless `addsOnFirstList` (an informer's handlers want them).
   */
  onChange?(change: Change<T>, relist: boolean): void;
  addsOnFirstList?: boolean;
  /**
   * What the store keeps of each object, applied as list pages arrive and to every watch event:
   * the object reduced to what the owner reads, or null to leave it out (dropped.filtered). Must
   * be idempotent. An update that no longer passes removes the object (a delete is reported).
   */
  transform?: ((obj: T) => T | null) | undefined;
  /** At most this many objects in the store; a new one beyond is left out (dropped.overLimit) until there is room. */
  limits?: StoreLimits | undefined;
}

/** How a reflector watches; owners (the ConfigMap provider, the approval backend) pass these through. Undefined takes the default. */
export interface ReflectorTuning {
  /** Server-side watch timeout; default 5–10 min at random (client-go's spread). */
  watchTimeoutSeconds?: number | undefined;
  /**
   * Restart a watch that has delivered nothing, not even a bookmark, for this long. The API
   * server sends a bookmark about every minute, so silence means a dead connection that TCP has
   * not noticed (a vanished node, a NAT that dropped the flow). Default 3 minutes.
   */
  watchdogMs?: number | undefined;
  /** Default 250 ms doubling to 30 s, with jitter. */
  backoffBaseMs?: number | undefined;
  backoffMaxMs?: number | undefined;
}

export interface Reflector<T extends KubeObject> {
  get(name: string, namespace?: string): T | undefined;
  /** The store's objects (of one namespace when given). */
  list(namespace?: string): T[];
  /** How many objects the store holds (of one namespace when given). */
  size(namespace?: string): number;
  /** Resolves once the first list is in the store. */
  synced(): Promise<void>;
  isSynced(): boolean;
  state(): ReflectorState;
  /** Stops the loop (the watch is aborted); resolves when it has. Idempotent. */
  stop(reason?: string): Promise<void>;
}

class WatchdogFired extends Error {
  override readonly name = 'WatchdogFired';
}

export function startReflector<T extends KubeObject>(o: ReflectorOptions<T>): Reflector<T> {
  const watchdogMs = o.watchdogMs ?? 180_000;
  const policy = { baseMs: o.backoffBaseMs ?? 250, maxMs: o.backoffMaxMs ?? 30_000 };
  const store = new Map<string, T>();
  /** Objects per namespace ('' for cluster-scoped), kept with the store for `limits` and size(). */
  const perNamespace = new Map<string, number>();
  const st: ReflectorState = {
    phase: 'listing',
    resourceVersion: '',
    lastError: null,
    counters: {
      lists: 0,
      watches: 0,
      events: 0,
      bookmarks: 0,
      failures: 0,
      relists: 0,
      watchdogRestarts: 0,
      handlerErrors: 0,
    },
    dropped: { filtered: 0, overLimit: 0 },
  };
  const nsOf = (obj: KubeObject): string => obj.metadata.namespace ?? '';
  const put = (k: string, obj: T): void => {
    if (!store.has(k)) perNamespace.set(nsOf(obj), (perNamespace.get(nsOf(obj)) ?? 0) + 1);
    store.set(k, obj);
  };
  const remove = (k: string): void => {
    const old = store.get(k);
    if (!old) return;
    store.delete(k);
    const n = (perNamespace.get(nsOf(old)) ?? 1) - 1;
    if (n > 0) perNamespace.set(nsOf(old), n);
    else perNamespace.delete(nsOf(old));
  };
  const dropped = (obj: T, reason: 'filtered' | 'limit'): void => {
    st.dropped[reason === 'filtered' ? 'filtered' : 'overLimit']++;
    try {
      o.onDrop?.(obj, reason);
    } catch {
      // a hook that throws must not end the watch
    }
  };
  /** The transform, counted; the identity when there is none. */
  const keep = (obj: T): T | null => {
    if (!o.transform) return obj;
    let kept: T | null;
    try {
      kept = o.transform(obj);
    } catch {
      // An object the owner's transform cannot read is one it does not keep; the watch goes on.
      kept = null;
    }
    if (!kept) dropped(obj, 'filtered');
    return kept;
  };
  /**
   * What a list keeps of each item as its pages arrive: the transform, then (with `limits`) the
   * admission that bounds what the list holds to the store plus the limits. applyList still
   * applies the limits exactly, held objects first.
   */
  const listKeep = (): ((obj: T) => T | null) | undefined => {
    if (!o.limits) return o.transform ? keep : undefined;
    const admit = listAdmission(o.limits, (k) => store.has(k));
    return (obj) => {
      const kept = keep(obj);
      if (!kept) return null;
      if (admit(keyOf(kept), nsOf(kept))) return kept;
      dropped(kept, 'limit');
      return null;
    };
  };
  let stopped = false;
  let current: AbortController | null = null;
  let wake: (() => void) | null = null;
  let synced = false;
  let resolveSynced!: () => void;
  const syncedPromise = new Promise<void>((r) => {
    resolveSynced = r;
  });

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        wake = null;
        resolve();
      };
    });

  const recovered = (): void => {
    const afterError = st.lastError !== null;
    st.lastError = null;
    o.onRead?.(afterError);
  };

  // The store and the resourceVersion move before a change is delivered, so a handler that throws
  // must not end the watch: the change would never be delivered again (until a resync).
  const deliver = (c: Change<T>, relist: boolean): void => {
    if (!o.onChange) return;
    try {
      o.onChange(c, relist);
    } catch (err) {
      st.counters.handlerErrors++;
      o.onChangeError?.(err, c);
    }
  };

  const applyList = (r: ListResult<T>): void => {
    const first = !synced;
    // The source applied `keep` (and the list's admission) per page already; again here for sources
    // that do not (the transform is idempotent; the limits below are exact).
    let items = o.transform ? r.items.map(keep).filter((x): x is T => x !== null) : r.items;
    if (o.limits) {
      const limits = o.limits;
      // What the store held first: a relist (410) must not swap them for newcomers that sort first.
      items = [...items.filter((x) => store.has(keyOf(x))), ...items.filter((x) => !store.has(keyOf(x)))];
      const counts = new Map<string, number>();
      let total = 0;
      items = items.filter((obj) => {
        const n = counts.get(nsOf(obj)) ?? 0;
        if (!withinLimits(limits, total, n)) {
          dropped(obj, 'limit');
          return false;
        }
        counts.set(nsOf(obj), n + 1);
        total++;
        return true;
      });
    }
    const changes = relistChanges(store, items);
    store.clear();
    perNamespace.clear();
    for (const obj of items) put(keyOf(obj), obj);
    st.resourceVersion = r.resourceVersion;
    if (!first || o.addsOnFirstList) for (const c of changes) deliver(c, !first);
    if (first) {
      synced = true;
      resolveSynced();
    }
    o.onList?.(items, r.resourceVersion);
  };

  const applyEvent = (e: WatchEvent<T>): void => {
    st.counters.events++;
    if (e.type === 'BOOKMARK') {
      st.counters.bookmarks++;
      st.resourceVersion = e.resourceVersion;
      return;
    }
    st.resourceVersion = e.object.metadata.resourceVersion ?? st.resourceVersion;
    const k = keyOf(e.object);
    const old = store.get(k);
    const bounded = o.transform !== undefined || o.limits !== undefined;
    if (e.type === 'DELETED') {
      remove(k);
      // An object the store left out was never reported: neither is its deletion.
      if (old || !bounded) deliver({ type: 'delete', object: old ?? e.object }, false);
      return;
    }
    const obj = keep(e.object);
    if (!obj) {
      // It no longer passes: what the store held of it goes.
      if (old) {
        remove(k);
        deliver({ type: 'delete', object: old }, false);
      }
      return;
    }
    if (!old && o.limits && !withinLimits(o.limits, store.size, perNamespace.get(nsOf(obj)) ?? 0)) {
      dropped(obj, 'limit');
      return;
    }
    put(k, obj);
    deliver(old ? { type: 'update', object: obj, old } : { type: 'add', object: obj }, false);
  };

  /** The classification of an attempt that threw (stop() aside). */
  const endOf = (err: unknown, ac: AbortController, delivered: number, openedAt: number): AttemptEnd => {
    if (ac.signal.reason instanceof WatchdogFired) return { kind: 'watchdog' };
    if (err instanceof KubeError && err.kind === 'gone') return { kind: 'gone' };
    const retryAfter = err instanceof KubeError && err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {};
    return { kind: 'failed', delivered, openMs: openedAt ? Date.now() - openedAt : 0, ...retryAfter };
  };

  /** One list (when needed) and one watch, to its end; never throws. `failure`: what a failed one threw. */
  const attempt = async (needList: boolean, onDelivered: () => void): Promise<{ end: AttemptEnd; failure: unknown; listed: boolean }> => {
    const ac = new AbortController();
    current = ac;
    let watchdog: NodeJS.Timeout | null = null;
    let openedAt = 0;
    let delivered = 0;
    let listed = false;
    const pet = (): void => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => ac.abort(new WatchdogFired(`no watch event or bookmark for ${watchdogMs} ms`)), watchdogMs);
    };
    try {
      if (needList) {
        st.phase = 'listing';
        const r = await o.source.list(ac.signal, listKeep());
        st.counters.lists++;
        listed = true;
        recovered();
        applyList(r);
      }
      st.phase = 'connecting';
      st.counters.watches++;
      const startedAt = Date.now();
      pet();
      const onEvent = (e: WatchEvent<T>): void => {
        pet();
        delivered++;
        onDelivered();
        applyEvent(e);
      };
      const onOpen = (): void => {
        pet();
        openedAt = Date.now();
        st.phase = 'watching';
        recovered();
      };
      const w = await o.source.watch(st.resourceVersion, onEvent, ac.signal, { timeoutSeconds: o.watchTimeoutSeconds, onOpen });
      st.resourceVersion = w.resourceVersion;
      return { end: { kind: 'ended', ranMs: Date.now() - startedAt, events: w.events }, failure: null, listed };
    } catch (err) {
      const end = endOf(err, ac, delivered, openedAt);
      return { end, failure: end.kind === 'failed' ? err : null, listed };
    } finally {
      if (watchdog) clearTimeout(watchdog);
      if (current === ac) current = null;
    }
  };

  /** Hooks log and count; one that throws must not end the loop. */
  const report = (end: AttemptEnd, failure: unknown, delayMs: number): void => {
    try {
      if (end.kind === 'watchdog') o.onWatchdog?.(watchdogMs);
      if (end.kind === 'gone') o.onGone?.(st.resourceVersion);
      if (end.kind === 'failed') {
        st.lastError = describeError(failure);
        o.onFailure?.(failure, delayMs);
      }
    } catch {
      // nothing to do: the hook's owner has a bug, the loop goes on
    }
  };

  const run = async (): Promise<void> => {
    let needList = true;
    let memory: Memory = { attempt: 0, gones: 0 };
    while (!stopped) {
      const { end, failure, listed } = await attempt(needList, () => {
        memory = { ...memory, gones: 0 };
      });
      if (stopped) break;
      if (listed) needList = false;
      const step = nextStep(memory, end, policy);
      memory = step.memory;
      if (step.count) st.counters[step.count]++;
      if (step.relist) needList = true;
      report(end, failure, step.delayMs);
      if (step.delayMs > 0 && !stopped) {
        st.phase = 'backoff';
        await sleep(step.delayMs);
      }
    }
    st.phase = 'closed';
  };

  const done = run().catch((err: unknown) => {
    // Unreachable unless a bug: say so in the state rather than leave an unhandled rejection.
    st.phase = 'closed';
    st.lastError = `the watch loop stopped: ${describeError(err)}`;
  });

  return {
    get: (name, namespace) => store.get(objectKey(name, namespace)),
    list: (namespace) => {
      const all = [...store.values()];
      return namespace === undefined ? all : all.filter((x) => x.metadata.namespace === namespace);
    },
    size: (namespace) => (namespace === undefined ? store.size : (perNamespace.get(namespace) ?? 0)),
    synced: () => syncedPromise,
    isSynced: () => synced,
    state: () => structuredClone(st),
    async stop(reason = 'reflector stopped') {
      if (!stopped) {
        stopped = true;
        current?.abort(new Error(reason));
        wake?.();
        st.phase = 'closed';
      }
      await done;
    },
  };
}

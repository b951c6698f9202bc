// A keyed work queue: adding a key that is already waiting does nothing, one key is never worked on
// twice at once, and a failed key comes back with backoff (lib/backoff.ts: 500 ms doubling up to a
// minute, equal jitter). Keys are typed (a namespace, an object); `id` names a key for coalescing.
// The reconcile of a key reads the current state, so coalescing events loses nothing.
import { backoffDelay, type BackoffPolicy } from '../lib/backoff.js';
import { systemClock, type Clock } from '../lib/clock.js';

const RETRY: BackoffPolicy = { baseMs: 500, maxMs: 60_000 };

export interface WorkQueue<K> {
  add(key: K, delayMs?: number): void;
  size(): number;
  close(): Promise<void>;
  /** Resolves when nothing is queued, running or waiting for a retry (for tests). */
  idle(): Promise<void>;
}

export interface QueueOptions<K> {
  /** A key's identity: keys with the same id are one. */
  id: (key: K) => string;
  concurrency?: number;
  onError?: (key: K, err: unknown, retryInMs: number) => void;
  /** The delays' and retries' timers (a manual clock in tests). */
  clock?: Clock;
}

export function startQueue<K>(work: (key: K) => Promise<void>, opts: QueueOptions<K>): WorkQueue<K> {
  const keys = new Map<string, K>(); // id → key, while queued, running, dirty or waiting on a timer
  const queued = new Set<string>();
  const order: string[] = [];
  const running = new Set<string>();
  const dirty = new Set<string>(); // re-added while running: run again after
  const failures = new Map<string, number>();
  const timers = new Map<string, unknown>();
  const clock = opts.clock ?? systemClock;
  const concurrency = opts.concurrency ?? 2;
  let closed = false;
  let idleWaiters: (() => void)[] = [];

  const checkIdle = () => {
    if (queued.size === 0 && running.size === 0 && timers.size === 0) {
      const w = idleWaiters;
      idleWaiters = [];
      for (const f of w) f();
    }
  };
  const settle = (id: string) => {
    if (!queued.has(id) && !running.has(id) && !timers.has(id)) keys.delete(id);
  };
  const pump = () => {
    while (!closed && running.size < concurrency) {
      const i = order.findIndex((k) => !running.has(k));
      if (i < 0) break;
      const id = order.splice(i, 1)[0]!;
      const key = keys.get(id)!;
      queued.delete(id);
      running.add(id);
      work(key)
        .then(
          () => {
            failures.delete(id);
          },
          (err: unknown) => {
            const n = failures.get(id) ?? 0;
            failures.set(id, n + 1);
            const wait = backoffDelay(n, RETRY);
            opts.onError?.(key, err, wait);
            add(key, wait);
          },
        )
        .finally(() => {
          running.delete(id);
          if (dirty.delete(id)) add(key);
          settle(id);
          pump();
          checkIdle();
        });
    }
  };
  const add = (key: K, delayMs = 0) => {
    if (closed) return;
    const id = opts.id(key);
    if (!keys.has(id)) keys.set(id, key);
    if (delayMs > 0) {
      if (timers.has(id)) return;
      timers.set(
        id,
        clock.setTimeout(() => {
          timers.delete(id);
          add(key);
        }, delayMs),
      );
      return;
    }
    if (running.has(id)) {
      dirty.add(id);
      return;
    }
    if (queued.has(id)) return;
    queued.add(id);
    order.push(id);
    pump();
  };
  return {
    add,
    size: () => queued.size + running.size,
    idle: () =>
      new Promise<void>((r) => {
        idleWaiters.push(r);
        checkIdle();
      }),
    async close() {
      closed = true;
      for (const t of timers.values()) clock.clearTimeout(t);
      timers.clear();
      while (running.size > 0) await new Promise((r) => setTimeout(r, 10));
    },
  };
}

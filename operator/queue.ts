// A keyed work queue: adding a key that is already waiting does nothing, one key is never worked on
// twice at once, and a failed key comes back with exponential backoff. Keys are namespaces or
// objects; the reconcile of a key reads the current state, so coalescing events loses nothing.

export interface WorkQueue {
  add(key: string, delayMs?: number): void;
  size(): number;
  close(): Promise<void>;
  /** Resolves when nothing is queued, running or waiting for a retry (for tests). */
  idle(): Promise<void>;
}

export function startQueue(work: (key: string) => Promise<void>, opts: { concurrency?: number; onError?: (key: string, err: unknown, retryInMs: number) => void } = {}): WorkQueue {
  const queued = new Set<string>();
  const order: string[] = [];
  const running = new Set<string>();
  const dirty = new Set<string>(); // re-added while running: run again after
  const failures = new Map<string, number>();
  const timers = new Map<string, NodeJS.Timeout>();
  const concurrency = opts.concurrency ?? 2;
  let closed = false;
  let idleWaiters: (() => void)[] = [];

  const checkIdle = () => {
    if (queued.size === 0 && running.size === 0 && timers.size === 0) {
      const w = idleWaiters;
      idleWaiters = [];
      w.forEach((f) => f());
    }
  };
  const pump = () => {
    while (!closed && running.size < concurrency) {
      const i = order.findIndex((k) => !running.has(k));
      if (i < 0) break;
      const key = order.splice(i, 1)[0]!;
      queued.delete(key);
      running.add(key);
      work(key).then(
        () => { failures.delete(key); },
        (err: unknown) => {
          const n = (failures.get(key) ?? 0) + 1;
          failures.set(key, n);
          const wait = Math.min(500 * 2 ** (n - 1), 60_000);
          opts.onError?.(key, err, wait);
          add(key, wait);
        },
      ).finally(() => {
        running.delete(key);
        if (dirty.delete(key)) add(key);
        pump();
        checkIdle();
      });
    }
  };
  const add = (key: string, delayMs = 0) => {
    if (closed) return;
    if (delayMs > 0) {
      if (timers.has(key)) return;
      timers.set(key, setTimeout(() => { timers.delete(key); add(key); }, delayMs));
      return;
    }
    if (running.has(key)) { dirty.add(key); return; }
    if (queued.has(key)) return;
    queued.add(key);
    order.push(key);
    pump();
  };
  return {
    add,
    size: () => queued.size + running.size,
    idle: () => new Promise<void>((r) => { idleWaiters.push(r); checkIdle(); }),
    async close() {
      closed = true;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      while (running.size > 0) await new Promise((r) => setTimeout(r, 10));
    },
  };
}

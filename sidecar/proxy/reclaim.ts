// Memory of relayed streams handed back while they flow. Every socket read allocates a fresh
// buffer (up to 64 KiB) outside V8's heap; V8 frees them only at a garbage collection, which a
// relay's few small objects per chunk rarely cause: a 100 MB SSE answer grew the sidecar's RSS by
// ~50 MiB of read buffers already written and dropped (the Node floor relay shows the same).
// A young-generation collection after every RECLAIM_BYTES relayed frees them: the buffers of
// chunks written out are dead by then, and the young generation is small (~0.15 ms a collection).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Upstream bytes relayed between two collections (all streams together). What is read between two
 * is dead buffers malloc must hold at once: a fresh process's RSS grew by ~14 MiB over a 100 MB
 * stream at 4 MiB, ~10 at 1 MiB, ~8 at 512 KiB (bench/sse-memory.ts), for ~0.2 ms a collection.
 */
export const RECLAIM_BYTES = 512 * 1024;
/**
 * Smaller reads are not counted: a small answer's JS work per chunk (parsing, objects) fills the
 * young generation and so brings V8's own collections soon enough; only large reads outrun it.
 */
export const RECLAIM_MIN_CHUNK = 16 * 1024;

export type Collect = (o: { type: 'minor' | 'major'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

let gc: Collect | null | undefined;

/**
 * V8's gc(), got once and only when first needed: exposed to a fresh context, so the process's own
 * global (made before) stays without it; contexts made later would have it too (the sidecar makes
 * none). Null where V8 refuses (the buffers then wait for V8's own collections).
 */
export function exposedGc(): Collect | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as Collect;
    } catch {
      gc = null;
    }
  }
  return gc;
}

/** A byte counter that calls `collect` each time another `every` bytes of reads of at least `min` have been counted. */
export function reclaimEvery(every: number, min: number, collect: () => void): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    if (bytes < min) return;
    since += bytes;
    if (since < every) return;
    since = 0;
    collect();
  };
}

/** Counts upstream bytes a relay has passed on; past RECLAIM_BYTES, the young generation is collected. */
export const relayed = reclaimEvery(RECLAIM_BYTES, RECLAIM_MIN_CHUNK, () => exposedGc()?.({ type: 'minor' }));

// ---------- when idle ----------
// A sidecar that has started or served and then gone quiet keeps the heap its work grew: the young
// generation at its full two semi-spaces (8 MiB with the image's --max-semi-space-size=4, ~1 MiB of
// it live) and old-space pages with room in them. V8's memory-reducing collection (the
// "last-resort" flavour of gc(): full collections with compaction, then the young generation shrunk
// to its initial size) hands ~9 MiB back. It costs ~60 ms of CPU and blocks the event loop for
// 70–140 ms, so it runs only once the process has been quiet for a while after work, and never more
// often than a small share of the work done since the last one.

/** How often the CPU used is looked at. */
export const IDLE_WINDOW_MS = 1000;
/** A window with less CPU than this (all threads) is quiet: an idle sidecar with its watches uses ~0. */
export const QUIET_CPU_MS = 5;
/** A collection needs this many times its previous cost in CPU spent since: at most ~5 % of the work. */
export const WORK_PER_COLLECTION = 20;

export interface IdleState {
  /** CPU ms spent since the last collection (start counts as owing one). */
  workMs: number;
  /** CPU ms the last collection took (0 before the first). */
  lastCostMs: number;
}

/** Start: the work of starting is owed a collection once the process is first quiet. */
export const IDLE_START: IdleState = { workMs: Number.POSITIVE_INFINITY, lastCostMs: 0 };

/** Whether to collect after a window in which `cpuMs` of CPU was used. */
export function idlePlan(s: IdleState, cpuMs: number): { collect: boolean; state: IdleState } {
  if (cpuMs >= QUIET_CPU_MS) return { collect: false, state: { ...s, workMs: s.workMs + cpuMs } };
  return { collect: s.workMs >= WORK_PER_COLLECTION * s.lastCostMs && s.workMs > 0, state: s };
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Looks at the CPU used every IDLE_WINDOW_MS (an unref'd timer: it keeps nothing alive) and makes a
 * memory-reducing collection when idlePlan says. Returns the stop function. A no-op where V8
 * refuses gc(). `cpu` and `windowMs` are for tests.
 */
export function reclaimWhenIdle(o: { collect?: Collect | null; cpu?: () => number; windowMs?: number } = {}): () => void {
  const collect = o.collect === undefined ? exposedGc() : o.collect;
  const cpu = o.cpu ?? cpuMs;
  if (!collect) return () => undefined;
  let state = IDLE_START;
  let last = cpu();
  const timer = setInterval(() => {
    const now = cpu();
    const plan = idlePlan(state, now - last);
    state = plan.state;
    last = now;
    if (!plan.collect) return;
    collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    last = cpu();
    state = { workMs: 0, lastCostMs: last - now };
  }, o.windowMs ?? IDLE_WINDOW_MS);
  timer.unref();
  return () => clearInterval(timer);
}

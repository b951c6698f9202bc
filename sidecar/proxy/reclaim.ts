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

/**
 * A byte counter that calls `collect` each time another `every` bytes of reads of at least `min`
 * have been counted, and not sooner than `minGapMs` after the last call (streams beside a busy
 * request load would otherwise force a collection hundreds of times a second, promoting the
 * in-flight requests' young objects early).
 */
export function reclaimEvery(
  every: number,
  min: number,
  collect: () => void,
  minGapMs = 0,
  now: () => number = performance.now.bind(performance),
): (bytes: number) => void {
  let since = 0;
  let lastAt = Number.NEGATIVE_INFINITY;
  return (bytes) => {
    if (bytes < min) return;
    since += bytes;
    if (since < every) return;
    const t = now();
    if (t - lastAt < minGapMs) return;
    since = 0;
    lastAt = t;
    collect();
  };
}

/** At most one forced young collection per this many ms, whatever the byte rate. */
export const RECLAIM_MIN_GAP_MS = 10;

export const relayed = reclaimEvery(RECLAIM_BYTES, RECLAIM_MIN_CHUNK, () => exposedGc()?.({ type: 'minor' }), RECLAIM_MIN_GAP_MS);

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
/** A window with less CPU than this (all threads) and no request started is quiet: an idle sidecar with its watches uses ~0. */
export const QUIET_CPU_MS = 5;
/** Quiet windows in a row before a collection: an agent between two calls of a burst is not idle yet. */
export const QUIET_WINDOWS = 2;
/** A collection needs this many times its previous cost in CPU spent since: at most ~5 % of the work. */
export const WORK_PER_COLLECTION = 20;

export interface IdleState {
  /** CPU ms spent since the last collection (start, or a new config, counts as owing one). */
  workMs: number;
  /** CPU ms the last collection took (0 before the first). */
  lastCostMs: number;
  /** Quiet windows in a row so far. */
  quiet: number;
}

/** Start: the work of starting is owed a collection once the process is first quiet. */
export const IDLE_START: IdleState = { workMs: Number.POSITIVE_INFINITY, lastCostMs: 0, quiet: 0 };

/** Whether to collect after a window in which `cpuMs` of CPU was used and `requests` requests started. */
export function idlePlan(s: IdleState, cpuMs: number, requests = 0): { collect: boolean; state: IdleState } {
  if (cpuMs >= QUIET_CPU_MS || requests > 0) return { collect: false, state: { ...s, workMs: s.workMs + cpuMs, quiet: 0 } };
  const state = { ...s, quiet: s.quiet + 1 };
  return { collect: state.quiet >= QUIET_WINDOWS && s.workMs >= WORK_PER_COLLECTION * s.lastCostMs && s.workMs > 0, state };
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export interface IdleReclaim {
  stop(): void;
  /** Work was done that grew the heap without much CPU in a window (e.g. a new config): owe a collection. */
  owe(): void;
}

/**
 * Looks at the CPU used and the requests started every IDLE_WINDOW_MS (an unref'd timer: it keeps
 * nothing alive) and makes a memory-reducing collection when idlePlan says. A no-op where V8
 * refuses gc(). `cpu`, `windowMs` and `collect` are for tests; `requests` counts requests started.
 */
export function reclaimWhenIdle(o: { collect?: Collect | null; cpu?: () => number; requests?: () => number; windowMs?: number } = {}): IdleReclaim {
  const collect = o.collect === undefined ? exposedGc() : o.collect;
  const cpu = o.cpu ?? cpuMs;
  const requests = o.requests ?? (() => 0);
  if (!collect) return { stop: () => undefined, owe: () => undefined };
  let state = IDLE_START;
  let last = cpu();
  let lastRequests = requests();
  const timer = setInterval(() => {
    const now = cpu();
    const seen = requests();
    const plan = idlePlan(state, now - last, seen - lastRequests);
    state = plan.state;
    last = now;
    lastRequests = seen;
    if (!plan.collect) return;
    try {
      collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    } catch {
      // V8 refused at run time: the memory waits for V8's own collections, as without gc().
    }
    last = cpu();
    state = { workMs: 0, lastCostMs: last - now, quiet: 0 };
  }, o.windowMs ?? IDLE_WINDOW_MS);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    owe: () => {
      state = { ...state, workMs: Number.POSITIVE_INFINITY };
    },
  };
}

// Memory of relayed streams handed back while they flow. Every socket read allocates a fresh
// buffer (up to 64 KiB) outside V8's heap; V8 frees them only at a garbage collection, which a
// relay's few small objects per chunk rarely cause: a 100 MB SSE answer grew the sidecar's RSS by
// ~50 MiB of read buffers already written and dropped (the Node floor relay shows the same).
// A young-generation collection after every RECLAIM_BYTES relayed frees them: the buffers of
// chunks written out are dead by then, and the young generation is small (~0.15 ms a collection).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Upstream bytes relayed between two collections (all streams together). */
export const RECLAIM_BYTES = 4 * 1024 * 1024;
/**
 * Smaller reads are not counted: a small answer's JS work per chunk (parsing, objects) fills the
 * young generation and so brings V8's own collections soon enough; only large reads outrun it.
 */
export const RECLAIM_MIN_CHUNK = 16 * 1024;

export type Collect = (o: { type: 'minor' | 'major' }) => void;

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

// Memory of relayed streams handed back while they flow. Every socket read allocates a fresh
// buffer (up to 64 KiB) outside V8's heap; V8 frees them only at a garbage collection, which a
// relay's few small objects per chunk rarely cause: a 100 MB SSE answer grew the sidecar's RSS by
// ~50 MiB of read buffers already written and dropped (the Node floor relay shows the same).
// A young-generation collection after every RECLAIM_BYTES relayed frees them: the buffers of
// chunks written out are dead by then, and the young generation is small, so it costs ~0.1 ms.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Upstream bytes relayed between two collections (all streams together). */
export const RECLAIM_BYTES = 4 * 1024 * 1024;

type Gc = (o: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | null | undefined;
let since = 0;

/** V8's gc(), got once: exposed to a fresh context (the process's own global stays without it). */
function collector(): Gc | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as Gc;
    } catch {
      gc = null; // no gc: the buffers wait for V8's own collections, as before
    }
  }
  return gc;
}

/** Counts upstream bytes a relay has passed on; past RECLAIM_BYTES, the young generation is collected. */
export function relayed(bytes: number): void {
  since += bytes;
  if (since < RECLAIM_BYTES) return;
  since = 0;
  collector()?.({ type: 'minor' });
}

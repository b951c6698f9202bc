// List, then watch from the list's resourceVersion, for as long as it is not stopped: the one
// resilient loop behind the sidecar's ConfigMap provider and its ApprovalRequest watch.
// - the server ends every watch after timeoutSeconds: resume at once from the last resourceVersion;
// - 410 Gone (history compacted, a restarted API server): list again; twice in a row backs off;
// - failures back off exponentially with jitter; a watch that worked for a while resets that;
// - a watch that ends as soon as it starts (a misbehaving proxy) counts as a failure, not a resume;
// - a watchdog restarts a watch silent (no event, no bookmark) for watchdogMs: the API server sends
//   a bookmark about every minute, so silence means a dead connection TCP has not noticed.
import { backoffDelay, KubeError } from './protocol.js';

export type LoopPhase = 'listing' | 'connecting' | 'watching' | 'backoff' | 'closed';

/** The loop's view, shared with its owner (who shows it in state() and fills counters of its own). */
export interface LoopState {
  phase: LoopPhase;
  resourceVersion: string;
  lastError: string | null;
  counters: { lists: number; watches: number; failures: number; relists: number; watchdogRestarts: number };
}

export interface WatchOpen {
  timeoutSeconds?: number;
  onOpen?: () => void;
}

export interface WatchLoopOptions<L extends { resourceVersion: string }, E> {
  state: LoopState;
  list(signal: AbortSignal): Promise<L>;
  watch(resourceVersion: string, onEvent: (e: E) => void, signal: AbortSignal, opts: WatchOpen): Promise<{ resourceVersion: string; events: number }>;
  /** A list arrived (the first, or after a 410). */
  onList(result: L): void;
  onEvent(e: E): void;
  /** A successful read (a list, or an opened watch); `afterError` when it ends a run of failures. */
  onRead?(afterError: boolean): void;
  /** A failure; the loop has counted it and set state.lastError. `delayMs` is the coming backoff. */
  onFailure(err: unknown, delayMs: number): void;
  onWatchdog?(silentMs: number): void;
  onGone?(resourceVersion: string): void;
  watchdogMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  watchTimeoutSeconds?: number;
}

export interface WatchLoop {
  /** Resolves when the loop has stopped (after stop()). */
  done: Promise<void>;
  stop(reason: string): void;
}

class WatchdogFired extends Error {
  override readonly name = 'WatchdogFired';
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function startWatchLoop<L extends { resourceVersion: string }, E>(o: WatchLoopOptions<L, E>): WatchLoop {
  const st = o.state;
  let stopped = false;
  let current: AbortController | null = null;
  let wake: (() => void) | null = null;

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

  const run = async (): Promise<void> => {
    let needList = true;
    let attempt = 0;
    let gones = 0;
    const backoff = async (): Promise<void> => {
      st.phase = 'backoff';
      await sleep(backoffDelay(attempt++, o.backoffBaseMs, o.backoffMaxMs));
    };
    while (!stopped) {
      const ac = new AbortController();
      current = ac;
      let watchdog: NodeJS.Timeout | null = null;
      let openedAt = 0;
      let delivered = 0;
      const pet = (): void => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = setTimeout(() => ac.abort(new WatchdogFired(`no watch event or bookmark for ${o.watchdogMs} ms`)), o.watchdogMs);
      };
      try {
        if (needList) {
          st.phase = 'listing';
          const r = await o.list(ac.signal);
          st.counters.lists++;
          st.resourceVersion = r.resourceVersion;
          needList = false;
          recovered();
          o.onList(r);
        }
        st.phase = 'connecting';
        st.counters.watches++;
        const startedAt = Date.now();
        pet();
        const end = await o.watch(st.resourceVersion, (e) => {
          pet();
          delivered++;
          gones = 0;
          o.onEvent(e);
        }, ac.signal, {
          timeoutSeconds: o.watchTimeoutSeconds,
          onOpen: () => {
            pet();
            openedAt = Date.now();
            st.phase = 'watching';
            recovered();
          },
        });
        st.resourceVersion = end.resourceVersion;
        if (Date.now() - startedAt >= 1000 || end.events > 0) {
          attempt = 0;
          gones = 0;
        } else {
          await backoff();
        }
      } catch (err) {
        if (stopped) break;
        if (ac.signal.reason instanceof WatchdogFired) {
          st.counters.watchdogRestarts++;
          o.onWatchdog?.(o.watchdogMs);
          continue;
        }
        if (err instanceof KubeError && err.kind === 'gone') {
          st.counters.relists++;
          needList = true;
          o.onGone?.(st.resourceVersion);
          if (gones++ > 0) await backoff();
          continue;
        }
        st.counters.failures++;
        // A watch that worked for a while before it broke starts the backoff over: the sequence
        // is for an API server that keeps failing, not for one failure a day.
        if (delivered > 0 || (openedAt > 0 && Date.now() - openedAt >= 10_000)) attempt = 0;
        const delay = backoffDelay(attempt++, o.backoffBaseMs, o.backoffMaxMs);
        st.lastError = describeError(err);
        o.onFailure(err, delay);
        st.phase = 'backoff';
        await sleep(delay);
      } finally {
        if (watchdog) clearTimeout(watchdog);
        if (current === ac) current = null;
      }
    }
    st.phase = 'closed';
  };

  return {
    done: run(),
    stop(reason) {
      if (stopped) return;
      stopped = true;
      current?.abort(new Error(reason));
      wake?.();
      st.phase = 'closed';
    },
  };
}

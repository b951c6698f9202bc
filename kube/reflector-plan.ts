// The reflector's decisions, apart from its I/O: what to do after each list or watch attempt,
// and what a relist changes in the store. Pure, so each rule has a unit test.
import { backoffDelay, type BackoffPolicy as Policy } from '../lib/backoff.js';
import { objectKey, type KubeObject } from './protocol.js';

/** How one attempt (a list, then a watch) ended. */
export type AttemptEnd =
  /** The server ended the watch (timeoutSeconds): `ranMs` after it was sent, having delivered `events`. */
  | { kind: 'ended'; ranMs: number; events: number }
  /** 410 Gone: the resourceVersion is too old (compacted, a restarted API server). */
  | { kind: 'gone' }
  /** The watchdog cut a watch that was silent (no event, no bookmark) too long. */
  | { kind: 'watchdog' }
  /**
   * Anything else: a failed list or watch. `delivered`: events the watch delivered before it broke;
   * `openMs`: how long it had been open (0: never opened); `retryAfterMs`: the server asked.
   */
  | { kind: 'failed'; delivered: number; openMs: number; retryAfterMs?: number };

/** What the loop remembers between attempts. */
export interface Memory {
  /** Failed attempts in a row: the backoff exponent. */
  attempt: number;
  /** 410s in a row without an event between them. */
  gones: number;
}

/** lib/backoff's policy (the one jitter policy), with the random source tests pin. */
export type BackoffPolicy = Policy & { random?: () => number };

export interface Step {
  memory: Memory;
  /** List before the next watch. Only 410 forces it; a failed list stays needed by itself. */
  relist: boolean;
  /** Wait this long first (0: at once). */
  delayMs: number;
  /** The counter this outcome adds to. */
  count: 'relists' | 'failures' | 'watchdogRestarts' | null;
}

/** A watch shorter than this that delivered nothing counts as a failure (a misbehaving proxy). */
export const SHORT_WATCH_MS = 1000;
/** A watch open this long before it broke was healthy: the backoff starts over. */
export const HEALTHY_WATCH_MS = 10_000;

export function nextStep(m: Memory, end: AttemptEnd, p: BackoffPolicy): Step {
  const delay = (attempt: number) => backoffDelay(attempt, p, p.random);
  switch (end.kind) {
    case 'ended':
      // The normal end of every watch: resume at once from the last resourceVersion.
      if (end.ranMs >= SHORT_WATCH_MS || end.events > 0) return { memory: { attempt: 0, gones: 0 }, relist: false, delayMs: 0, count: null };
      return { memory: { ...m, attempt: m.attempt + 1 }, relist: false, delayMs: delay(m.attempt), count: null };
    case 'watchdog':
      // A dead connection TCP has not noticed: the server is likely fine, re-watch at once.
      return { memory: m, relist: false, delayMs: 0, count: 'watchdogRestarts' };
    case 'gone':
      // List again at once; a second 410 in a row (a list that is itself too old?) backs off.
      if (m.gones === 0) return { memory: { ...m, gones: 1 }, relist: true, delayMs: 0, count: 'relists' };
      return { memory: { attempt: m.attempt + 1, gones: m.gones + 1 }, relist: true, delayMs: delay(m.attempt), count: 'relists' };
    case 'failed': {
      // A watch that worked for a while before it broke starts the backoff over: the sequence is
      // for an API server that keeps failing, not for one failure a day.
      const attempt = end.delivered > 0 || end.openMs >= HEALTHY_WATCH_MS ? 0 : m.attempt;
      const backoff = delay(attempt);
      // The server's Retry-After (429, 503) wins when longer, bounded by the backoff ceiling.
      const delayMs = end.retryAfterMs !== undefined ? Math.max(backoff, Math.min(end.retryAfterMs, p.maxMs)) : backoff;
      return { memory: { attempt: attempt + 1, gones: m.gones }, relist: false, delayMs, count: 'failures' };
    }
  }
}

/** Bounds of a reflector's store: objects in all, and per namespace. */
export interface StoreLimits {
  total: number;
  perNamespace?: number | undefined;
}

/** Whether a new object fits a store holding `total` objects, `inNamespace` of them in its namespace. */
export function withinLimits(l: StoreLimits, total: number, inNamespace: number): boolean {
  return total < l.total && (l.perNamespace === undefined || inNamespace < l.perNamespace);
}

/**
 * What a list may hold while its pages arrive, so that a list of any length (forged Events by the
 * hundred thousand) holds at most the store plus `limits` before applyList cuts it: an object the
 * store holds is always admitted (newcomers never evict it); a new one only while the objects
 * admitted so far, in all and in its namespace, are within the limits. Objects the store held count
 * too, so the list rarely admits newcomers that applyList (held ones first) then drops again.
 * Returns the per-item decision, with its running counts.
 */
export function listAdmission(l: StoreLimits, held: (key: string) => boolean): (key: string, namespace: string) => boolean {
  const perNamespace = new Map<string, number>();
  let total = 0;
  return (key, namespace) => {
    const n = perNamespace.get(namespace) ?? 0;
    if (!held(key) && !withinLimits(l, total, n)) return false;
    perNamespace.set(namespace, n + 1);
    total++;
    return true;
  };
}

export type Change<T> = { type: 'add'; object: T } | { type: 'update'; object: T; old: T } | { type: 'delete'; object: T };

export const keyOf = (o: KubeObject): string => objectKey(o.metadata.name, o.metadata.namespace);

/**
 * What replacing the store's contents with a fresh list changes: adds for new objects, updates for
 * objects whose resourceVersion moved, deletes for objects the list no longer has (deleted while
 * the watch was down). Unchanged objects are not reported.
 */
export function relistChanges<T extends KubeObject>(store: ReadonlyMap<string, T>, items: readonly T[]): Change<T>[] {
  const out: Change<T>[] = [];
  const seen = new Set<string>();
  for (const obj of items) {
    const k = keyOf(obj);
    seen.add(k);
    const old = store.get(k);
    if (!old) out.push({ type: 'add', object: obj });
    else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) out.push({ type: 'update', object: obj, old });
  }
  for (const [k, old] of store) if (!seen.has(k)) out.push({ type: 'delete', object: old });
  return out;
}

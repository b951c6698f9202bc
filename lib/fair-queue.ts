// A queue that takes items round-robin across keys (owners), first-in first-out within a key:
// the next item is the oldest of the waiting key served least recently (never served first;
// ties: the key that started waiting first). A key with a thousand items waiting gets one turn,
// then every other key, newcomers included, gets one; a key cannot reset its place by letting
// its lane run empty, since when it was last served is remembered (for the last MEMORY keys).
// O(keys waiting) per shift; those are bounded by the pending-approval limits. Pure. Shared by the
// standalone backend (sidecar/approvals/standalone.ts) and the operator's relay (operator/post-turns.ts).
const MEMORY = 10_000;
const IDLE_CHILDREN = 1000;

export class FairQueue<T> {
  private readonly lanes = new Map<string, T[]>();
  /** Key → sequence number of its last turn; oldest first (re-inserted on every turn). */
  private readonly served = new Map<string, number>();
  private seq = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(key: string, item: T): void {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = [];
      this.lanes.set(key, lane);
    }
    lane.push(item);
    this.count++;
  }

  /** Takes the next item: the oldest of the key whose turn it is. */
  shift(): T | undefined {
    let key: string | undefined;
    let last = Infinity;
    for (const k of this.lanes.keys()) {
      const s = this.served.get(k) ?? -1;
      if (s < last) {
        key = k;
        last = s;
      }
    }
    if (key === undefined) return undefined;
    const lane = this.lanes.get(key)!;
    const item = lane.shift()!;
    this.count--;
    if (lane.length === 0) this.lanes.delete(key);
    this.served.delete(key);
    this.served.set(key, ++this.seq);
    if (this.served.size > MEMORY) this.served.delete(this.served.keys().next().value as string);
    return item;
  }

  /** Removes an item that is still waiting; false when it is not (any more) in the queue. */
  remove(key: string, item: T): boolean {
    const lane = this.lanes.get(key);
    const i = lane ? lane.indexOf(item) : -1;
    if (!lane || i < 0) return false;
    lane.splice(i, 1);
    this.count--;
    if (lane.length === 0) this.lanes.delete(key);
    return true;
  }
}

/**
 * FairQueue over a path of keys (e.g. service account, pod, session): round-robin at every level,
 * so a key's share is split among its children, never multiplied by them (a pod opening many
 * sessions still gets its pod's one turn in its service account's). FIFO at the leaves. An inner
 * level holds one entry per waiting item, named by the child key, so its FairQueue decides whose
 * turn it is. A child that runs empty is kept (the last IDLE_CHILDREN of them), so it still
 * remembers whose turn was last: a pod whose one request was just posted, and whose next ones wait,
 * comes after the other pods of its service account. Every path has `depth` keys. Pure.
 */
export class NestedFairQueue<T> {
  /** depth 1: the items. */
  private readonly leaf = new FairQueue<T>();
  /** depth > 1: one entry per waiting item, named by its child key; and the children. */
  private readonly order = new FairQueue<string>();
  private readonly children = new Map<string, NestedFairQueue<T>>();
  /** Children with nothing waiting, least recently emptied first. */
  private readonly idle = new Set<string>();

  constructor(readonly depth: number) {
    if (!(depth >= 1) || !Number.isInteger(depth)) throw new Error(`NestedFairQueue depth must be a whole number ≥ 1, got ${depth}`);
  }

  get size(): number {
    return this.depth === 1 ? this.leaf.size : this.order.size;
  }

  push(path: readonly string[], item: T): void {
    if (path.length !== this.depth) throw new Error(`NestedFairQueue: a path of ${path.length} keys, expected ${this.depth}`);
    const [key, ...rest] = path as [string, ...string[]];
    if (this.depth === 1) {
      this.leaf.push(key, item);
      return;
    }
    let child = this.children.get(key);
    if (!child) {
      child = new NestedFairQueue<T>(this.depth - 1);
      this.children.set(key, child);
    }
    this.idle.delete(key);
    child.push(rest, item);
    this.order.push(key, key);
  }

  shift(): T | undefined {
    if (this.depth === 1) return this.leaf.shift();
    const key = this.order.shift();
    if (key === undefined) return undefined;
    const child = this.children.get(key)!;
    const item = child.shift();
    if (child.size === 0) this.rest(key);
    return item;
  }

  /** Removes an item that is still waiting; false when it is not (any more) in the queue. */
  remove(path: readonly string[], item: T): boolean {
    if (path.length !== this.depth) return false;
    const [key, ...rest] = path as [string, ...string[]];
    if (this.depth === 1) return this.leaf.remove(key, item);
    const child = this.children.get(key);
    if (!child?.remove(rest, item)) return false;
    if (child.size === 0) this.rest(key);
    // Any one entry of the key: they are all alike.
    return this.order.remove(key, key);
  }

  private rest(key: string): void {
    this.idle.add(key);
    if (this.idle.size <= IDLE_CHILDREN) return;
    const oldest = this.idle.values().next().value as string;
    this.idle.delete(oldest);
    this.children.delete(oldest);
  }
}

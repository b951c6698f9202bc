// A queue that takes items round-robin across keys (owners), first-in first-out within a key:
// the next item is the oldest of the waiting key served least recently (never served first;
// ties: the key that started waiting first). A key with a thousand items waiting gets one turn,
// then every other key, newcomers included, gets one; a key cannot reset its place by letting
// its lane run empty, since when it was last served is remembered (for the last MEMORY keys).
// O(keys waiting) per shift; those are bounded by the pending-approval limits. Pure.
const MEMORY = 10_000;

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

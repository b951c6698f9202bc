// A queue that takes items round-robin across keys (owners), first-in first-out within a key:
// a key with a thousand items waiting gets one turn, then every other key gets one. Pure.
export class FairQueue<T> {
  /** Per key, its items oldest first; Map order is the turn order (a key served goes last). */
  private readonly byKey = new Map<string, T[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(key: string, item: T): void {
    let q = this.byKey.get(key);
    if (!q) {
      q = [];
      this.byKey.set(key, q);
    }
    q.push(item);
    this.count++;
  }

  /** Takes the next item: the oldest of the key whose turn it is. */
  shift(): T | undefined {
    const first = this.byKey.entries().next();
    if (first.done) return undefined;
    const [key, q] = first.value;
    const item = q.shift()!;
    this.count--;
    this.byKey.delete(key);
    if (q.length > 0) this.byKey.set(key, q);
    return item;
  }

  /** Removes an item that is still waiting; false when it is not (any more) in the queue. */
  remove(key: string, item: T): boolean {
    const q = this.byKey.get(key);
    const i = q ? q.indexOf(item) : -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    this.count--;
    if (q.length === 0) this.byKey.delete(key);
    return true;
  }
}

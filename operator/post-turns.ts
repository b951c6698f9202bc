// Whose turn it is to post an approval, per lane (an ApprovalChannel: one namespace, one Slack
// channel): one post at a time per lane, and the next taken round-robin across owners (service
// account, then pod, then MCP session, as the ApprovalRequest records them), so one workload
// flooding requests cannot keep another's from being posted. A request waiting for its turn holds
// no worker and no place in the token's rate limiter: with one post per lane in flight, the
// limiter's queue holds at most one post per lane, so lanes sharing a Slack channel alternate too.
// A request ended (cancelled, expired, deleted) while waiting is dropped, never posted. Pure: the
// relay (operator/approval-request-controller.ts) calls take() when a request is ready to post, done() after the
// post step, drop() when it ends, and requeues the key these return.
import { NestedFairQueue } from '../lib/fair-queue.js';

export type Turn = 'go' | 'wait' | 'full';

/** The levels of fairness within a lane; every owner path has this many keys. */
export const OWNER_DEPTH = 3;

interface Lane {
  holder?: string;
  waiting: NestedFairQueue<string>;
}

export class PostTurns {
  private readonly lanes = new Map<string, Lane>();
  /** Waiting keys: their lane and owner path. */
  private readonly waitingAt = new Map<string, { lane: string; owner: readonly string[] }>();
  /** Keys holding their lane's turn → lane. */
  private readonly holding = new Map<string, string>();

  /** `max`: keys waiting at once, all lanes (the relay passes its open-request cap). */
  constructor(private readonly max: number) {}

  get waiting(): number {
    return this.waitingAt.size;
  }

  /**
   * `key` is ready to post in `lane`: 'go' (it holds the lane's turn; call done() after), 'wait'
   * (queued, or still queued; take() or done()/drop() of another key will name it), or 'full'
   * (`max` keys wait already).
   */
  take(lane: string, owner: readonly string[], key: string): Turn {
    if (owner.length !== OWNER_DEPTH) throw new Error(`PostTurns: an owner of ${owner.length} keys, expected ${OWNER_DEPTH}`);
    const held = this.holding.get(key);
    if (held === lane) return 'go';
    if (held !== undefined) this.done(key); // its lane changed (cannot happen with an immutable spec)
    const w = this.waitingAt.get(key);
    if (w?.lane === lane) return 'wait';
    if (w) this.drop(key);
    let l = this.lanes.get(lane);
    if (!l) {
      l = { waiting: new NestedFairQueue<string>(OWNER_DEPTH) };
      this.lanes.set(lane, l);
    }
    if (l.holder === undefined && l.waiting.size === 0) {
      // Through the queue, so that it remembers this owner was served.
      l.waiting.push(owner, key);
      l.waiting.shift();
      l.holder = key;
      this.holding.set(key, lane);
      return 'go';
    }
    if (this.waitingAt.size >= this.max) {
      if (l.holder === undefined && l.waiting.size === 0) this.lanes.delete(lane);
      return 'full';
    }
    l.waiting.push(owner, key);
    this.waitingAt.set(key, { lane, owner });
    return 'wait';
  }

  /** `key`'s post step is over: the next key of its lane holds the turn now (returned, to be requeued). */
  done(key: string): string | undefined {
    const lane = this.holding.get(key);
    if (lane === undefined) return undefined;
    this.holding.delete(key);
    const l = this.lanes.get(lane)!;
    l.holder = undefined;
    const next = l.waiting.shift();
    if (next === undefined) {
      this.lanes.delete(lane);
      return undefined;
    }
    this.waitingAt.delete(next);
    l.holder = next;
    this.holding.set(next, lane);
    return next;
  }

  /** `key` ended or is gone: it stops waiting, or gives up its turn (the next key is returned). */
  drop(key: string): string | undefined {
    const w = this.waitingAt.get(key);
    if (!w) return this.done(key);
    this.waitingAt.delete(key);
    this.lanes.get(w.lane)!.waiting.remove(w.owner, key);
    return undefined;
  }

  /** Whether `key` holds a turn (for the relay: release it when a step other than posting runs). */
  holds(key: string): boolean {
    return this.holding.has(key);
  }

  clear(): void {
    this.lanes.clear();
    this.waitingAt.clear();
    this.holding.clear();
  }
}

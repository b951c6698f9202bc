// One byte budget for everything the sidecar holds in memory on a client's behalf: request bodies
// being read, upstream answers buffered whole to be filtered, SSE events buffered to be edited.
// Each is already bounded alone (maxBodyBytes, maxFilteredResponseBytes); this bounds their sum
// across all concurrent requests (limits.maxBufferedBytes). What cannot get budget is refused at
// once (-32022) rather than queued: a queue would only move the memory somewhere else.
import type { BufferUse, SidecarMetrics } from '../metrics.js';

export class ByteBudget {
  private used = 0;

  constructor(
    /** The bound; changed on a config reload (holds already granted stay granted). */
    public capacity: number,
    private readonly metrics?: Pick<SidecarMetrics, 'bufferedBytes' | 'bufferRejections'>,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /** A hold that grows with what one request buffers; release() gives all of it back. */
  hold(what: BufferUse): BudgetHold {
    return new BudgetHold(this, what);
  }

  /** @internal */
  take(n: number, what: BufferUse): boolean {
    if (this.used + n > this.capacity) {
      this.metrics?.bufferRejections.inc({ what });
      return false;
    }
    this.used += n;
    this.metrics?.bufferedBytes.set(this.used);
    return true;
  }

  /** @internal */
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
    this.metrics?.bufferedBytes.set(this.used);
  }
}

export class BudgetHold {
  private held = 0;

  constructor(private readonly budget: ByteBudget, private readonly what: BufferUse) {}

  get bytes(): number {
    return this.held;
  }

  /** Adds n bytes; false (and nothing taken) when the budget cannot cover them. */
  grow(n: number): boolean {
    if (n <= 0) return true;
    if (!this.budget.take(n, this.what)) return false;
    this.held += n;
    return true;
  }

  /** Makes the hold exactly n bytes (an SSE event buffer grows and empties); false when it cannot grow. */
  resize(n: number): boolean {
    if (n < this.held) {
      this.budget.give(this.held - n);
      this.held = n;
      return true;
    }
    return this.grow(n - this.held);
  }

  release(): void {
    if (this.held === 0) return;
    this.budget.give(this.held);
    this.held = 0;
  }
}

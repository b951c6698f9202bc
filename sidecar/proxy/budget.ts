// One byte budget for everything the sidecar holds in memory on a client's behalf: request bodies
// being read, upstream answers buffered whole to be filtered, SSE events buffered to be edited.
// Each is already bounded alone (maxBodyBytes, maxFilteredResponseBytes); this bounds their sum
// across all concurrent requests (limits.maxBufferedBytes). What cannot get budget is refused at
// once (-32022) rather than queued: a queue would only move the memory somewhere else, and holds
// that wait for each other mid-stream can deadlock.
import type { BufferUse, SidecarMetrics } from '../metrics.js';

/**
 * What one byte of an answer being edited costs: its bytes, its decoded text, and, while it is
 * filtered, its parsed form and the output. Measured: one 13 MB tools/list filtered raised the
 * sidecar's RSS by ~105 MiB (bench/attacks.ts); 4 is the live part of that, the rest is garbage the
 * collector has not taken yet. Request bodies are charged 1: they are held only while they arrive.
 */
export const EDIT_CHARGE = 4;

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

  /** A hold that grows with what one request buffers, `charge` budget bytes per byte; release() gives all of it back. */
  hold(what: BufferUse, charge = 1): BudgetHold {
    return new BudgetHold(this, what, charge);
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

  constructor(
    private readonly budget: ByteBudget,
    private readonly what: BufferUse,
    private readonly charge: number,
  ) {}

  /** Budget bytes held (bytes buffered times the charge). */
  get bytes(): number {
    return this.held;
  }

  /** Adds n buffered bytes; false (and nothing taken) when the budget cannot cover them. */
  grow(n: number): boolean {
    return this.take(n * this.charge);
  }

  /** Makes the hold cover exactly n buffered bytes (an SSE event buffer grows and empties); false when it cannot grow. */
  resize(n: number): boolean {
    const want = n * this.charge;
    if (want < this.held) {
      this.budget.give(this.held - want);
      this.held = want;
      return true;
    }
    return this.take(want - this.held);
  }

  private take(n: number): boolean {
    if (n <= 0) return true;
    if (!this.budget.take(n, this.what)) return false;
    this.held += n;
    return true;
  }

  /** Shrinks the hold to exactly `budgetBytes` (not scaled by the charge): what is left once an edit is done. */
  settle(budgetBytes: number): void {
    if (budgetBytes < this.held) {
      this.budget.give(this.held - budgetBytes);
      this.held = budgetBytes;
    }
  }

  release(): void {
    if (this.held === 0) return;
    this.budget.give(this.held);
    this.held = 0;
  }
}

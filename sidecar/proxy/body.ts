// Reads a request body with a size bound, a deadline and a share of the sidecar's byte budget
// (lib/read-body.ts, the one bounded reader). Over any of them, reading stops at once: the request
// is refused and nothing of it is forwarded. The deadline is per request and covers only the body:
// responses (SSE streams, held calls) are not bounded by it, unlike a socket idle timeout would be.
import type { IncomingMessage } from 'node:http';
import { BodyError, readBodyBytes } from '../../lib/read-body.js';
import type { BudgetHold } from './budget.js';

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' | 'timeout' | 'overloaded' };

export interface BodyLimits {
  /** Milliseconds from now until the whole body must have arrived (0: no deadline). */
  timeoutMs?: number;
  /** Budget for the bytes read; the caller releases it once the body is no longer needed. */
  hold?: BudgetHold;
}

export async function readBody(req: IncomingMessage, limit: number, o: BodyLimits = {}): Promise<BodyResult> {
  const hold = o.hold;
  try {
    // 'pause': the caller answers (and closes the connection), so the rest of the body is never read.
    const body = await readBodyBytes(req, {
      limitBytes: limit,
      onStop: 'pause',
      ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
      ...(hold ? { grow: (n) => hold.grow(n) } : {}),
    });
    return { ok: true, body };
  } catch (err) {
    hold?.release();
    const reason = err instanceof BodyError ? err.reason : 'aborted';
    return { ok: false, reason: reason === 'over-budget' ? 'overloaded' : reason === 'too-large' || reason === 'timeout' ? reason : 'aborted' };
  }
}

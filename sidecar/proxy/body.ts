// Reads a request body with a size bound, a deadline and a share of the sidecar's byte budget.
// Over any of them, reading stops at once: the request is refused and nothing of it is forwarded.
// The deadline is per request and covers only the body: responses (SSE streams, held calls) are
// not bounded by it, unlike a socket idle timeout would be.
import type { IncomingMessage } from 'node:http';
import type { BudgetHold } from './budget.js';

export type BodyResult =
  | { ok: true; body: Buffer }
  | { ok: false; reason: 'too-large' | 'aborted' | 'timeout' | 'overloaded' };

export interface BodyLimits {
  /** Milliseconds from now until the whole body must have arrived (0: no deadline). */
  timeoutMs?: number;
  /** Budget for the bytes read; the caller releases it once the body is no longer needed. */
  hold?: BudgetHold;
}

export function readBody(req: IncomingMessage, limit: number, o: BodyLimits = {}): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ ok: false, reason: 'too-large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer = o.timeoutMs ? setTimeout(() => stop({ ok: false, reason: 'timeout' }), o.timeoutMs) : null;
    const finish = (r: BodyResult) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
      if (!r.ok) o.hold?.release();
      resolve(r);
    };
    // Stop buffering; the caller answers and closes the connection, so what is left of the body is never read.
    const stop = (r: BodyResult) => {
      req.pause();
      chunks.length = 0;
      finish(r);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) return stop({ ok: false, reason: 'too-large' });
      if (o.hold && !o.hold.grow(c.length)) return stop({ ok: false, reason: 'overloaded' });
      chunks.push(c);
    };
    const onEnd = () => finish({ ok: true, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    const onError = () => finish({ ok: false, reason: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}

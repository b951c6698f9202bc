// Streams a body to the client. Not stream.pipeline: that creates and aborts an AbortController
// (and a DOMException) per call, measured at ~7% of the sidecar's CPU per forwarded request.
// Backpressure comes from .pipe(); errors on either side tear both down.
import type { ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';

/** Resolves when the response has been fully written; rejects when either side fails first. */
export function pipeTo(body: Readable, res: ServerResponse, through?: Transform | null): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      body.destroy();
      through?.destroy();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    res.once('finish', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    res.once('close', () => {
      if (!res.writableFinished) fail(Object.assign(new Error('client closed'), { code: 'CLIENT_CLOSED' }));
    });
    body.once('error', fail);
    if (through) {
      through.once('error', fail);
      body.pipe(through).pipe(res);
    } else {
      body.pipe(res);
    }
  });
}

/**
 * Sends a streamed response's head now. Node otherwise holds it until the first body byte, so an
 * idle SSE stream (a GET, a resumption, a silent POST stream) would leave the client without a
 * response. A body of known length goes out with its head in one write, as before.
 */
export function flushHead(res: ServerResponse, upstream: Record<string, string | string[] | undefined>): void {
  const type = upstream['content-type'];
  const sse = (Array.isArray(type) ? type[0] : type)?.startsWith('text/event-stream') ?? false;
  if (sse || upstream['content-length'] === undefined) res.flushHeaders();
}

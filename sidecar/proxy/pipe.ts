// Streams a body to the client. Not stream.pipeline: that creates and aborts an AbortController
// (and a DOMException) per call, measured at ~7% of the sidecar's CPU per forwarded request; and
// not .pipe() either: its half-dozen listeners per side cost more than the three a relay needs.
// Backpressure: a write the destination cannot take at once pauses the source until 'drain'.
// Errors on either side tear both down.
import type { ServerResponse } from 'node:http';
import type { Readable, Transform, Writable } from 'node:stream';
import { relayed } from './reclaim.js';

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
      forward(body, through, true);
      forward(through, res, false);
    } else {
      forward(body, res, true);
    }
  });
}

/** src's chunks into dst with backpressure, and dst ended with src; the upstream's bytes counted. */
function forward(src: Readable, dst: Writable, upstream: boolean): void {
  src.on('data', (chunk: Buffer | string) => {
    if (upstream) relayed(chunk.length);
    if (!dst.write(chunk)) src.pause();
  });
  dst.on('drain', () => src.resume());
  src.once('end', () => dst.end());
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

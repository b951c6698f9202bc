// Reading a whole body into memory with a bound, for every body ThoughtGate reads: a request to
// one of its servers (IncomingMessage), an upstream or API server answer (undici), a fetch body.
//
// One rule for bytes: past `limitBytes` reading stops at once and nothing read is returned; a
// declared Content-Length over the limit fails before anything is read. One rule for text: the
// bytes must be valid UTF-8 (fatal decoding, as lib/jsonrpc.ts decodes): a replacement character
// would make a JSON document that the sender did not send. Every failure is a BodyError whose
// `reason` says which limit was hit.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { decodeUtf8Strict } from './jsonrpc.js';

export type BodyErrorReason =
  /** Over `limitBytes` (read, or declared by Content-Length). */
  | 'too-large'
  /** `timeoutMs` passed before the body ended. */
  | 'timeout'
  /** The `grow` budget refused more bytes. */
  | 'over-budget'
  /** The stream failed or was closed early, or `signal` aborted. */
  | 'aborted'
  /** The bytes are not UTF-8 (readBodyText only). */
  | 'invalid-utf8';

export class BodyError extends Error {
  override readonly name = 'BodyError';
  constructor(
    readonly reason: BodyErrorReason,
    message: string,
    /** The byte limit in force, for 'too-large'. */
    readonly limitBytes?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ReadBodyOptions {
  limitBytes: number;
  /** The limit's name where a user sets it (e.g. "limits.maxBodyBytes"), for the message. */
  limitName?: string;
  /** What is read (e.g. `upstream "github"`), for the message. */
  what?: string;
  /** A Content-Length to check before reading; taken from an IncomingMessage's headers when not given. */
  declaredLength?: number | string;
  /** Milliseconds from now until the whole body must have arrived (0 or absent: no deadline). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Asked before each chunk is kept (a shared memory budget); false stops with 'over-budget'. */
  grow?: (bytes: number) => boolean;
  /**
   * What a failure does to the stream. 'destroy' (default) frees the connection of a response.
   * 'pause' suits a request to our own server: the socket stays open so the caller can still answer
   * (413 with `connection: close`); the unread rest of the body is never read.
   */
  onStop?: 'destroy' | 'pause';
}

export type BodySource = Readable | AsyncIterable<Uint8Array>;

/** The whole body as bytes, or a BodyError. */
export async function readBodyBytes(source: BodySource, o: ReadBodyOptions): Promise<Buffer> {
  const declared = declaredLength(source, o.declaredLength);
  if (declared !== undefined && declared > o.limitBytes) {
    stop(source, o);
    throw tooLarge(o, `declares ${declared} bytes`);
  }
  return source instanceof Readable ? readStream(source, o) : readIterable(source, o);
}

/** The whole body as text: bytes as readBodyBytes, then fatal UTF-8 decoding. */
export async function readBodyText(source: BodySource, o: ReadBodyOptions): Promise<string> {
  return decodeUtf8(await readBodyBytes(source, o), o.what);
}

/** Fatal UTF-8 decoding (a BOM is kept): the one rule every body reader here applies. */
export function decodeUtf8(bytes: Uint8Array, what = 'body'): string {
  const text = decodeUtf8Strict(bytes);
  if (text === null) throw new BodyError('invalid-utf8', `${what} is not valid UTF-8`);
  return text;
}

function declaredLength(source: BodySource, given: number | string | undefined): number | undefined {
  const raw = given ?? (source as Partial<IncomingMessage>).headers?.['content-length'];
  if (raw === undefined) return undefined;
  const n = typeof raw === 'number' ? raw : /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function tooLarge(o: ReadBodyOptions, detail: string): BodyError {
  const limit = o.limitName ? `${o.limitName} (${o.limitBytes} bytes)` : `${o.limitBytes} bytes`;
  return new BodyError('too-large', `${o.what ?? 'body'} ${detail}, over the limit of ${limit}`, o.limitBytes);
}

function timedOut(o: ReadBodyOptions): BodyError {
  return new BodyError('timeout', `${o.what ?? 'body'} did not arrive within ${o.timeoutMs} ms`);
}

function aborted(o: ReadBodyOptions): BodyError {
  return new BodyError('aborted', `${o.what ?? 'body'}: reading was aborted`, undefined, { cause: o.signal?.reason });
}

function stop(source: BodySource, o: ReadBodyOptions): void {
  const s = source as { pause?: () => unknown; destroy?: () => unknown; on?: (e: string, f: () => void) => unknown };
  if (o.onStop === 'pause') return void s.pause?.();
  // A destroyed undici body emits an abort error that nobody is left to hear; it is expected.
  s.on?.('error', () => {});
  s.destroy?.();
}

/** Node streams by events, so that 'pause' can leave the stream (and its socket) alive. */
function readStream(source: Readable, o: ReadBodyOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer = o.timeoutMs ? setTimeout(() => fail(timedOut(o)), o.timeoutMs) : null;
    const cleanup = () => {
      done = true;
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      for (const [event, f] of handlers) source.off(event, f);
    };
    const fail = (err: BodyError) => {
      if (done) return;
      cleanup();
      chunks.length = 0;
      stop(source, o);
      reject(err);
    };
    const onData = (c?: Buffer | string) => {
      const b = typeof c === 'string' ? Buffer.from(c) : (c ?? Buffer.alloc(0));
      size += b.length;
      if (size > o.limitBytes) return fail(tooLarge(o, `is over ${o.limitBytes} bytes`));
      if (o.grow && !o.grow(b.length)) return fail(new BodyError('over-budget', `${o.what ?? 'body'}: no memory budget left to read it`));
      chunks.push(b);
    };
    const onEnd = () => {
      if (done) return;
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err?: unknown) => fail(new BodyError('aborted', `${o.what ?? 'body'}: the stream failed before its end`, undefined, { cause: err }));
    // 'close' before 'end': the peer went away mid-body.
    const onClose = () => {
      if (!source.readableEnded) onError();
    };
    const onAbort = () => fail(aborted(o));
    const handlers: [string, (arg?: Buffer & Error) => void][] = [
      ['data', onData],
      ['end', onEnd],
      ['error', onError],
      ['close', onClose],
      ['aborted', onError],
    ];
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort);
    for (const [event, f] of handlers) source.on(event, f);
    if (source.isPaused()) source.resume();
  });
}

/** Any other async iterable (a web ReadableStream from fetch). */
async function readIterable(source: AsyncIterable<Uint8Array>, o: ReadBodyOptions): Promise<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | null = null;
  let onAbort: (() => void) | null = null;
  // The deadline and the signal race each read; losing ends the iterator (which cancels the body).
  const interrupted = new Promise<never>((_, reject) => {
    if (o.timeoutMs) timer = setTimeout(() => reject(timedOut(o)), o.timeoutMs);
    onAbort = () => reject(aborted(o));
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort);
  });
  interrupted.catch(() => {});
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await Promise.race([it.next(), interrupted]);
      } catch (err) {
        if (err instanceof BodyError) throw err;
        throw new BodyError('aborted', `${o.what ?? 'body'}: the stream failed before its end`, undefined, { cause: err });
      }
      if (r.done) break;
      const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      size += b.length;
      if (size > o.limitBytes) throw tooLarge(o, `is over ${o.limitBytes} bytes`);
      if (o.grow && !o.grow(b.length)) throw new BodyError('over-budget', `${o.what ?? 'body'}: no memory budget left to read it`);
      chunks.push(b);
    }
    return Buffer.concat(chunks, size);
  } catch (err) {
    // Not awaited: a web stream's return() waits for a pending read, which a stalled peer never ends.
    it.return?.().catch(() => {});
    stop(source, o);
    throw err;
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) o.signal?.removeEventListener('abort', onAbort);
  }
}

// Incremental Server-Sent Events parsing and rewriting (WHATWG HTML "event stream interpretation").
//
// The proxy streams upstream SSE to the client as it arrives. Every event keeps its exact source text
// (`raw`), so events the proxy does not rewrite pass through byte-for-byte; only the event that carries
// a response the proxy must filter (tools/list etc.) is replaced.

import { Buffer } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';

export interface SseEvent {
  /** Exact source text of the event, including the blank line that ended it. */
  raw: string;
  /** `data` lines joined with "\n"; null when the event had no `data` field (e.g. a comment-only keep-alive). */
  data: string | null;
  /** This event's own `event` / `id` / `retry` fields (an EventSource would carry the last id forward). */
  event: string | null;
  id: string | null;
  retry: number | null;
}

const LF = 10,
  SPACE = 32,
  COLON = 58,
  D0 = 48,
  D9 = 57,
  BOM = 0xfeff;

/**
 * Splits a stream of text into events. Every blank line ends an event, so the concatenated `raw` of all
 * events returned by push() and end() is exactly the input.
 *
 * A CR that ends a chunk may be the first half of a CRLF. The event ends at the CR without waiting for
 * the next chunk (waiting could hold an event indefinitely); a following LF is then consumed as part
 * of that line break and becomes the first character of the next event's raw.
 */
export class SseParser {
  private rawParts: string[] = []; // raw text of the current event from earlier chunks
  private rawBytes = 0; // UTF-8 length of rawParts
  private lineParts: string[] = []; // the current line's text from earlier chunks
  private skipLF = false; // the previous chunk ended with CR
  private started = false; // the first character (possibly a BOM) has been seen
  private dataLines: string[] = [];
  private hasData = false;
  private event: string | null = null;
  private id: string | null = null;
  private retry: number | null = null;

  /** UTF-8 bytes held for the event in progress (the bound the rewriter enforces). */
  get buffered(): number {
    return this.rawBytes;
  }

  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    const n = chunk.length;
    if (n === 0) return out;
    let pos = 0;
    if (this.skipLF) {
      this.skipLF = false;
      if (chunk.charCodeAt(0) === LF) pos = 1;
    }
    if (!this.started) {
      this.started = true;
      // A leading BOM is not part of the first line (WHATWG), but stays in raw.
      if (chunk.charCodeAt(0) === BOM) pos = 1;
    }
    let eventStart = 0; // the current event's raw in this chunk starts here
    let lineStart = pos;
    // Next CR / LF at or after pos; searched with indexOf (native and fast) and only refreshed once passed.
    let cr = chunk.indexOf('\r', pos);
    let lf = chunk.indexOf('\n', pos);
    for (;;) {
      if (cr !== -1 && cr < pos) cr = chunk.indexOf('\r', pos);
      if (lf !== -1 && lf < pos) lf = chunk.indexOf('\n', pos);
      let eol: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        eol = cr;
        if (cr + 1 < n) {
          next = lf === cr + 1 ? cr + 2 : cr + 1;
        } else {
          next = n;
          this.skipLF = true;
        }
      } else if (lf !== -1) {
        eol = lf;
        next = lf + 1;
      } else {
        break;
      }
      if (this.lineParts.length !== 0) {
        this.lineParts.push(chunk.slice(lineStart, eol));
        const line = this.lineParts.join('');
        this.lineParts.length = 0;
        this.processLine(line, 0, line.length);
      } else if (eol === lineStart) {
        // Blank line: the event ends here.
        let raw = chunk.slice(eventStart, next);
        if (this.rawParts.length !== 0) {
          this.rawParts.push(raw);
          raw = this.rawParts.join('');
          this.rawParts.length = 0;
        }
        this.rawBytes = 0;
        out.push(this.take(raw));
        eventStart = next;
      } else {
        this.processLine(chunk, lineStart, eol);
      }
      pos = lineStart = next;
    }
    if (lineStart < n) this.lineParts.push(chunk.slice(lineStart));
    if (eventStart < n) {
      const tail = eventStart === 0 ? chunk : chunk.slice(eventStart);
      this.rawParts.push(tail);
      this.rawBytes += Buffer.byteLength(tail, 'utf8');
    }
    return out;
  }

  /**
   * The text after the last complete event, or null if there is none. Its fields are read as if the
   * event had been terminated, so a caller can still inspect it; per WHATWG an unterminated event is
   * not dispatched, which a caller should bear in mind.
   */
  end(): SseEvent | null {
    this.skipLF = false;
    if (this.lineParts.length !== 0) {
      const line = this.lineParts.join('');
      this.lineParts.length = 0;
      this.processLine(line, 0, line.length);
    }
    if (this.rawParts.length === 0) return null;
    const raw = this.rawParts.join('');
    this.rawParts.length = 0;
    this.rawBytes = 0;
    return this.take(raw);
  }

  /** Interprets one non-blank line s[start, end). */
  private processLine(s: string, start: number, end: number): void {
    if (s.charCodeAt(start) === COLON) return; // comment
    let colon = start;
    while (colon < end && s.charCodeAt(colon) !== COLON) colon++;
    let vs = colon + 1;
    if (vs < end && s.charCodeAt(vs) === SPACE) vs++;
    const nameLen = colon - start;
    const value = colon >= end ? '' : s.slice(vs, end);
    if (nameLen === 4 && s.startsWith('data', start)) {
      this.dataLines.push(value);
      this.hasData = true;
    } else if (nameLen === 5 && s.startsWith('event', start)) {
      this.event = value;
    } else if (nameLen === 2 && s.startsWith('id', start)) {
      if (value.indexOf('\0') === -1) this.id = value;
    } else if (nameLen === 5 && s.startsWith('retry', start)) {
      let digits = value.length !== 0;
      for (let i = 0; i < value.length && digits; i++) {
        const c = value.charCodeAt(i);
        digits = c >= D0 && c <= D9;
      }
      if (digits) this.retry = Number(value);
    }
    // Other fields are ignored.
  }

  private take(raw: string): SseEvent {
    const lines = this.dataLines;
    const data = !this.hasData ? null : lines.length === 1 ? lines[0]! : lines.join('\n');
    const e: SseEvent = { raw, data, event: this.event, id: this.id, retry: this.retry };
    if (this.hasData) {
      this.dataLines = [];
      this.hasData = false;
    }
    this.event = null;
    this.id = null;
    this.retry = null;
    return e;
  }
}

function assertSingleLine(name: string, v: string): void {
  if (v.indexOf('\n') !== -1 || v.indexOf('\r') !== -1) throw new TypeError(`SSE ${name} must not contain a line break`);
}

/** Serialises one event, ending with its blank line. Multi-line data becomes several `data:` lines. */
export function formatSseEvent(e: { data: string; event?: string; id?: string; retry?: number }): string {
  let out = '';
  if (e.event !== undefined) {
    assertSingleLine('event', e.event);
    out += `event: ${e.event}\n`;
  }
  if (e.id !== undefined) {
    assertSingleLine('id', e.id);
    out += `id: ${e.id}\n`;
  }
  if (e.retry !== undefined) {
    if (!Number.isSafeInteger(e.retry) || e.retry < 0) throw new RangeError('SSE retry must be a non-negative integer');
    out += `retry: ${e.retry}\n`;
  }
  const d = e.data;
  if (d.indexOf('\n') === -1 && d.indexOf('\r') === -1) return `${out}data: ${d}\n\n`;
  for (const line of d.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

export class SseEventTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`SSE event exceeds ${limit} bytes`);
    this.name = 'SseEventTooLargeError';
  }
}

/** The sidecar's shared byte budget could not cover an event being buffered (limits.maxBufferedBytes). */
export class SseBudgetExceededError extends Error {
  constructor() {
    super('SSE event buffer exceeds the shared byte budget');
    this.name = 'SseBudgetExceededError';
  }
}

/**
 * A Transform from upstream SSE bytes to client SSE bytes. Each event is emitted as soon as it is
 * complete: its raw text, or the replacement the callback returns (null = pass through unchanged).
 * The callback also sees the unterminated trailing text at the end of the stream, so a response the
 * proxy must filter cannot slip through by omitting its final blank line.
 *
 * Invalid UTF-8 is decoded with U+FFFD replacement, as an EventSource client would; the text forwarded
 * is then what the client would have read.
 */
export function createSseRewriter(opts: {
  rewrite: (e: SseEvent) => string | null;
  maxEventBytes: number;
  onOversize?: () => void;
  /** A share of a shared byte budget, sized to the event in progress; released when the stream ends. */
  hold?: { resize(bytes: number): boolean; release(): void };
}): Transform {
  const { rewrite, maxEventBytes, onOversize, hold } = opts;
  // ignoreBOM keeps a leading BOM in the text so passthrough stays byte-exact; the parser skips it.
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const parser = new SseParser();

  // An event that arrived complete inside one large chunk was never "buffered", but it is still too
  // large to hand to a rewrite callback (which may JSON.parse it). chars <= bytes <= 3 * chars.
  const tooLarge = (raw: string): boolean => raw.length > maxEventBytes || (raw.length * 3 > maxEventBytes && Buffer.byteLength(raw, 'utf8') > maxEventBytes);

  /** Output for the events, or null when one is too large (output before it is in done). */
  let done = '';
  const render = (events: SseEvent[]): boolean => {
    let out = '';
    for (const e of events) {
      if (tooLarge(e.raw)) {
        done = out;
        return false;
      }
      out += rewrite(e) ?? e.raw;
    }
    done = out;
    return true;
  };

  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      let ok: boolean;
      try {
        ok = render(parser.push(decoder.decode(chunk, { stream: true })));
      } catch (err) {
        cb(err as Error);
        return;
      }
      if (done.length !== 0) this.push(done);
      done = '';
      if (!ok || parser.buffered > maxEventBytes) {
        onOversize?.();
        cb(new SseEventTooLargeError(maxEventBytes));
        return;
      }
      if (hold && !hold.resize(parser.buffered)) {
        cb(new SseBudgetExceededError());
        return;
      }
      cb();
    },
    destroy(err: Error | null, cb: (error: Error | null) => void) {
      hold?.release();
      cb(err);
    },
    flush(cb: TransformCallback) {
      hold?.release();
      let ok: boolean;
      try {
        const events = parser.push(decoder.decode());
        const last = parser.end();
        if (last !== null) events.push(last);
        ok = render(events);
      } catch (err) {
        cb(err as Error);
        return;
      }
      if (done.length !== 0) this.push(done);
      done = '';
      if (!ok) {
        onOversize?.();
        cb(new SseEventTooLargeError(maxEventBytes));
        return;
      }
      cb();
    },
  });
}

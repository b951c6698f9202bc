// Log lines to stdout without costing the proxy: lines logged during one event-loop turn leave in
// one write, a slow reader never blocks the event loop, and it costs dropped lines, never memory.
//
// What Node does with stdout (measured on Node 24, Linux): a pipe or socket is a non-blocking
// libuv stream whose write queue grows without bound when the reader stalls (~900 MB in 1.5 s of
// logging into a pipe nobody read); a file is written with a blocking write(2) per call; a TTY is
// set blocking. So: pipes and sockets go through process.stdout (its libuv queue, at most one
// batch in it at a time); files, /dev/null and TTYs get one synchronous write per turn.
import { fstatSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

/** Where batches go: one write at a time, `done` when it completed (or failed). */
export interface Sink {
  write(batch: Buffer, done: (err?: Error | null) => void): void;
  /** Bytes of the batch in flight not yet written (a stream's queue); undefined: unknown. */
  unwritten?(): number | undefined;
  /** A synchronous write at exit; returns bytes written, throws EAGAIN when the reader is full. */
  writeSync(chunk: Buffer): number;
}

export interface LineWriterOptions {
  /** Lines queued or in flight, in bytes (characters), beyond which lines are dropped. */
  maxQueuedBytes?: number;
  /** The line written once the writer accepts lines again after dropping `n`. */
  dropNotice?: (n: number) => string;
  /** How long flushSync may retry a full pipe. */
  exitBudgetMs?: number;
}

export interface LineWriter {
  write(line: string): void;
  /** Lines dropped since the writer was made. */
  dropped(): number;
  /** Characters queued or in flight. */
  queued(): number;
  /** At exit: writes what is queued synchronously, best effort, for at most the exit budget. */
  flushSync(): void;
}

export const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;

export function createLineWriter(sink: Sink, o: LineWriterOptions = {}): LineWriter {
  const max = o.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
  const notice = o.dropNotice ?? ((n: number) => `${n} log lines dropped\n`);
  const budgetMs = o.exitBudgetMs ?? 200;
  let pending: string[] = [];
  let pendingChars = 0;
  let inFlight: Buffer | undefined;
  let scheduled = false;
  let droppedTotal = 0;
  // Lines dropped in the current episode: once dropping starts it goes on until the queue is
  // back to half the bound, so a reader just keeping up yields one notice, not one per line.
  let dropping = 0;

  const queued = () => pendingChars + (inFlight?.length ?? 0);
  const enqueue = (line: string) => {
    pending.push(line);
    pendingChars += line.length;
    if (!scheduled && !inFlight) {
      scheduled = true;
      // After the loop's I/O callbacks, not after the current job (queueMicrotask): measured under
      // load, ~21 request lines a write, where a microtask wrote each line to a pipe on its own.
      setImmediate(flush);
    }
  };
  const recover = () => {
    if (dropping === 0 || queued() > max / 2) return false;
    const n = dropping;
    dropping = 0;
    enqueue(notice(n));
    return true;
  };
  const flush = () => {
    scheduled = false;
    if (inFlight || pending.length === 0) return;
    const batch = Buffer.from(pending.length === 1 ? pending[0]! : pending.join(''));
    pending = [];
    pendingChars = 0;
    inFlight = batch;
    sink.write(batch, written);
  };
  const written = () => {
    // A failed write is not retried (the sink reports its own errors): its lines are gone.
    inFlight = undefined;
    recover();
    if (pending.length) flush();
  };

  return {
    write(line) {
      if (dropping > 0 && !recover()) {
        dropping++;
        droppedTotal++;
        return;
      }
      if (queued() + line.length > max) {
        dropping = 1;
        droppedTotal++;
        return;
      }
      enqueue(line);
    },
    dropped: () => droppedTotal,
    queued,
    flushSync() {
      // The unwritten tail of the batch in flight first (the process ends before its queue does),
      // then what is pending; order is kept, and a full pipe is retried for a bounded time.
      const parts: Buffer[] = [];
      if (inFlight) {
        const left = sink.unwritten?.();
        if (left !== undefined && left > 0) parts.push(inFlight.subarray(Math.max(0, inFlight.length - left)));
      }
      if (pending.length) parts.push(Buffer.from(pending.join('')));
      if (dropping > 0) parts.push(Buffer.from(notice(dropping)));
      pending = [];
      pendingChars = 0;
      dropping = 0;
      let rest = Buffer.concat(parts);
      const deadline = Date.now() + budgetMs;
      while (rest.length > 0) {
        try {
          rest = rest.subarray(sink.writeSync(rest));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() >= deadline) return;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        }
      }
    },
  };
}

/** A stream sink: process.stdout when it is a pipe or a socket (a non-blocking libuv stream). */
export function streamSink(stream: Writable & { _handle?: { writeQueueSize?: number } }, fd: number): Sink {
  return {
    write: (batch, done) => {
      stream.write(batch, done);
    },
    unwritten: () => stream._handle?.writeQueueSize,
    writeSync: (chunk) => writeSync(fd, chunk),
  };
}

/**
 * An fd sink for files, character devices (/dev/null) and TTYs: one synchronous write(2) per batch,
 * as Node writes them, but per turn instead of per line. A file has no reader to wait for; a write
 * on the thread pool was tried and dropped: at exit it could still be running and lines written
 * synchronously then overtook it.
 */
export function fdSink(fd: number): Sink {
  // Bytes known unwritten while waiting to retry a non-blocking fd (a TTY someone set so).
  let waiting: number | undefined;
  const write = (batch: Buffer, done: (err?: Error | null) => void): void => {
    waiting = undefined;
    let rest = batch;
    try {
      while (rest.length > 0) rest = rest.subarray(writeSync(fd, rest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return done(err as Error);
      waiting = rest.length;
      setTimeout(() => write(rest, done), 10).unref();
      return;
    }
    done();
  };
  return { write, unwritten: () => waiting, writeSync: (chunk) => writeSync(fd, chunk) };
}

/** The sink for fd 1 by what it is: a pipe or socket, or anything else. */
export function stdoutSink(): Sink {
  let kind: 'stream' | 'fd' = 'fd';
  try {
    const st = fstatSync(1);
    if (st.isFIFO() || st.isSocket()) kind = 'stream';
  } catch {
    // A closed stdout: fd writes fail and their lines are lost, as they were before.
  }
  return kind === 'stream' ? streamSink(process.stdout, 1) : fdSink(1);
}

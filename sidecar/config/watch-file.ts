// Hot reload source for the standalone sidecar: calls back with the file's text whenever its
// content changes.
//
// fs.watch watches the containing directory, not the file: editors and `kubectl`-mounted
// ConfigMaps replace the file (rename over it, or swap the `..data` symlink the file points
// through), and a watch on the old inode would go silent. Any event in the directory schedules a
// debounced re-read; a low-frequency poll re-reads anyway, because fs.watch can miss events
// (network file systems, some container overlays, the directory itself being replaced).
// The content hash, not the event, decides whether anything changed.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, statSync, watch } from 'node:fs';
import type { FSWatcher, Stats } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface WatchFileOptions {
  /** Poll interval in ms; the fallback for events fs.watch misses. Default 2000. */
  pollMs?: number;
  /** Quiet time in ms after the last directory event before re-reading. Default 100. */
  debounceMs?: number;
  /**
   * The text the caller already loaded. The first check compares against it, so a change made
   * between the caller's load and the start of the watch is not lost. Without it, the content at
   * the first read is the baseline and is not reported. null: the caller found no file, so the
   * first text read is reported.
   */
  initialText?: string | null;
  /** Files larger than this are a read failure (code EFBIG), not text. Default: no limit. */
  maxBytes?: number;
  /**
   * After a failed read, report the next text read even if it is the text seen before the
   * failure: for a caller that treats a missing file as a state of its own (a credential that
   * is deleted and restored with the same value).
   */
  redeliverAfterError?: boolean;
  /**
   * Read failures (missing file, permissions) and exceptions thrown by onText, once per distinct
   * failure, for logging. A missing file is not a change: the last good text stays in force.
   */
  onError?: (err: Error) => void;
}

export interface FileWatch {
  /** Re-reads now (after any read in progress); resolves when done. For SIGHUP and tests. */
  check(): Promise<void>;
  /** Stops watching; leaves no timers or handles. Idempotent. */
  close(): void;
}

function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * A FIFO or a device at the path would block the open or the read (the event loop, for the sync
 * read; a thread of libuv's small pool, shared with DNS lookups, for the async one) or never end:
 * only a regular file is read. The target is checked before the open (opening a device can act on
 * it) and the open file again after (non-blocking: a FIFO swapped in between opens at once).
 */
function regularOnly(st: Stats): void {
  if (st.isFile()) return;
  const kind = st.isFIFO()
    ? 'a FIFO'
    : st.isCharacterDevice()
      ? 'a character device'
      : st.isBlockDevice()
        ? 'a block device'
        : st.isSocket()
          ? 'a socket'
          : st.isDirectory()
            ? 'a directory'
            : 'an unknown kind of file';
  throw Object.assign(new Error(`not a regular file (${kind})`), { code: 'ENOTREG', kind });
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0);

/** The file's text, or an EFBIG error when it has more than `max` bytes (never reads more than max + 1); ENOTREG for anything but a regular file. */
export async function readBounded(path: string, max: number): Promise<string> {
  regularOnly(await stat(path));
  const fh = await open(path, OPEN_FLAGS);
  try {
    regularOnly(await fh.stat());
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > max) throw tooLarge(max);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** readBounded, synchronously. */
export function readBoundedSync(path: string, max: number): string {
  regularOnly(statSync(path));
  const fd = openSync(path, OPEN_FLAGS);
  try {
    regularOnly(fstatSync(fd));
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      n += r;
      if (r === 0 || n >= buf.length) break;
    }
    if (n > max) throw tooLarge(max);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function tooLarge(max: number): Error {
  return Object.assign(new Error(`larger than ${max} bytes`), { code: 'EFBIG' });
}

export function watchFile(path: string, onText: (text: string) => void, opts: WatchFileOptions = {}): FileWatch {
  const pollMs = opts.pollMs ?? 2000;
  const debounceMs = opts.debounceMs ?? 100;
  const dir = dirname(path);

  let closed = false;
  let lastHash: string | undefined = opts.initialText == null ? undefined : hashText(opts.initialText);
  // Until the first read, there is no baseline; a file missing at that read has "no content" as
  // its baseline, so its later appearance is reported.
  let baselined = opts.initialText !== undefined;
  let lastErrorCode: string | undefined;
  let watcher: FSWatcher | null = null;
  let debounce: NodeJS.Timeout | null = null;
  let inflight: Promise<void> | null = null;
  let queued: Promise<void> | null = null;

  const report = (err: Error): void => {
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    if (code === lastErrorCode) return;
    lastErrorCode = code;
    try {
      opts.onError?.(err);
    } catch {
      // A logging callback must not break the watch.
    }
  };

  let settleTimer: NodeJS.Timeout | null = null;
  let settleWake: (() => void) | null = null;
  const settle = (): Promise<void> =>
    new Promise((resolve) => {
      settleWake = resolve;
      settleTimer = setTimeout(resolve, debounceMs);
      settleTimer.unref();
    });

  const read = async (): Promise<string | null> => {
    try {
      const text = opts.maxBytes === undefined ? await readFile(path, 'utf8') : await readBounded(path, opts.maxBytes);
      lastErrorCode = undefined;
      return text;
    } catch (err) {
      report(err as Error);
      if (opts.redeliverAfterError) lastHash = undefined;
      return null;
    }
  };

  const readOnce = async (): Promise<void> => {
    if (closed) return;
    let text = await read();
    if (text === null) {
      baselined = true;
      return;
    }
    if (closed) return;
    let h = hashText(text);
    if (!baselined) {
      baselined = true;
      lastHash = h;
      return;
    }
    if (h === lastHash) return;
    // An in-place write truncates, then writes: a read in between sees a partial file, which may
    // even be valid YAML (a rule list cut short). Deliver only content that reads the same twice,
    // one debounce apart; give up waiting after a few rounds of a file that keeps changing.
    for (let round = 0; round < 10; round++) {
      await settle();
      if (closed) return;
      const again = await read();
      if (again === null || closed) return; // gone again: not a change; a later event or poll retries
      const h2 = hashText(again);
      if (h2 === h) break;
      text = again;
      h = h2;
    }
    if (h === lastHash) return;
    lastHash = h;
    try {
      onText(text);
    } catch (err) {
      report(err as Error);
    }
  };

  // Reads never overlap (an older read must not deliver after a newer one), and a burst of
  // requests while one read runs collapses into one more read.
  const check = (): Promise<void> => {
    if (closed) return Promise.resolve();
    if (queued !== null) return queued;
    if (!inflight) {
      inflight = readOnce().finally(() => {
        inflight = null;
      });
      return inflight;
    }
    queued = inflight.then(() => {
      queued = null;
      return check();
    });
    return queued;
  };

  const schedule = (): void => {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      void check();
    }, debounceMs);
    debounce.unref();
  };

  const startWatcher = (): void => {
    if (closed || watcher) return;
    try {
      // persistent: false — the watch alone must not keep the process alive.
      const w = watch(dir, { persistent: false }, () => schedule());
      w.on('error', (err) => {
        // e.g. the directory was removed; the poll re-creates the watcher when it is back.
        report(err);
        w.close();
        if (watcher === w) watcher = null;
        schedule();
      });
      watcher = w;
    } catch (err) {
      report(err as Error); // the directory does not exist yet; the poll retries
    }
  };

  startWatcher();
  const poll = setInterval(() => {
    startWatcher();
    void check();
  }, pollMs);
  poll.unref();
  void check();

  return {
    check,
    close(): void {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      if (debounce) clearTimeout(debounce);
      debounce = null;
      if (settleTimer) clearTimeout(settleTimer);
      settleWake?.();
      watcher?.close();
      watcher = null;
    },
  };
}

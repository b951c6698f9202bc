// An append-only journal of JSON records in one private file, durable before it answers: append()
// resolves only once its record is written and fsync'd (records appended meanwhile share one write
// and one fsync: group commit), so a caller that awaits it before acting knows the record survives
// a crash (kill -9, power loss) whatever the action did.
//
// Framing (format 2): a first line `tg-journal 2`, then records, one per line, `<crc32 of the
// JSON as 8 hex digits> <JSON>\n` (JSON.stringify never writes a raw newline), in batches: each
// group commit is followed, in the same write, by a commit line `#<record count> <crc32 of the
// batch's bytes> <crc32 of the line so far>`. Only a batch whose commit line matches it counts.
// Reading (open): damage anywhere in the LAST batch (a line cut short, a page the disk did not
// persist before the crash, a commit line missing or not matching) is a torn write, a crash in
// the middle of a group commit that was therefore never acknowledged: it is cut off with a
// warning. Damage before a valid commit is corruption (those batches were acknowledged): open()
// refuses with JournalCorruptError rather than silently drop what it held. A file without the
// format line (the unreleased format 1) is refused with a message saying so.
// Compaction: rewrite(records) writes them to `<file>.tmp`, fsyncs it, renames it over the file
// and fsyncs the directory; `compact` lets the owner ask for one after a group of appends when no
// other append is queued (so the owner's live set is what is on disk), before that group resolves;
// an owner of idempotent records may ask for one with appends queued too (compactWhileQueued).
// A failed append is cut off again (truncate to the last good length) so later records never follow
// half a record; if even that fails, the journal refuses every later write (fail closed).
// Files are created 0600 in a directory of mode 0700 that this process owns (others could
// otherwise replace the file).
import { constants as fsc, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

/** The file operations the journal needs; tests inject their own (fsync order, failures). */
export interface JournalIo {
  /** Creates the directory (0700) when missing; returns its owner uid and mode, and whether it was created. */
  mkdir(dir: string): Promise<{ uid: number; mode: number; created: boolean }>;
  /** The file's bytes, or null when it does not exist. */
  read(file: string): Promise<Buffer | null>;
  /** Opens for appending, creating it 0600. */
  openAppend(file: string): Promise<AppendFile>;
  /** Creates or truncates `file` (0600), writes `data` and fsyncs it. */
  writeSynced(file: string, data: Buffer): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** fsync of a directory: makes a create or a rename in it durable. */
  syncDir(dir: string): Promise<void>;
  /** Owner uid and mode of an existing file; chmod when `mode` is given. */
  stat(file: string): Promise<{ uid: number; mode: number } | null>;
  chmod(file: string, mode: number): Promise<void>;
  /** Removes a file; missing is fine. */
  remove(file: string): Promise<void>;
}

export interface AppendFile {
  write(data: Buffer): Promise<void>;
  /** fdatasync: the data and the file's size. */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export const nodeJournalIo: JournalIo = {
  async mkdir(dir) {
    const made = await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await fsp.lstat(dir);
    if (!s.isDirectory()) throw new Error(`${dir} is not a directory`);
    return { uid: s.uid, mode: s.mode & 0o7777, created: made !== undefined };
  },
  async read(file) {
    try {
      // O_NOFOLLOW: a symbolic link planted in place of the journal is refused, not followed.
      const fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      try {
        if (!(await fh.stat()).isFile()) throw new Error(`${file} is not a regular file`);
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  },
  async openAppend(file) {
    const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    if (!(await fh.stat()).isFile()) {
      await fh.close();
      throw new Error(`${file} is not a regular file`);
    }
    return {
      async write(data) {
        for (let off = 0; off < data.length; ) off += (await fh.write(data, off, data.length - off)).bytesWritten;
      },
      sync: () => fh.datasync(),
      truncate: (n) => fh.truncate(n),
      close: () => fh.close(),
    };
  },
  async writeSynced(file, data) {
    const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  async syncDir(dir) {
    const fh = await fsp.open(dir, fsc.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  async stat(file) {
    try {
      const s = await fsp.lstat(file);
      if (!s.isFile()) throw new Error(`${file} is not a regular file`);
      return { uid: s.uid, mode: s.mode & 0o777 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  },
  chmod: (file, mode) => fsp.chmod(file, mode),
  remove: (file) => fsp.rm(file, { force: true }),
};

/**
 * Creates `dir` (0700, its parent fsync'd) when missing; refuses one of another owner, and sets
 * one of another mode back to 0700 with a warning. Journal.open does it; an owner that puts other
 * files there first (a lock) calls it before.
 */
export async function preparePrivateDir(dir: string, io: JournalIo = nodeJournalIo, warn?: (message: string) => void): Promise<void> {
  const d = await io.mkdir(dir);
  // A new directory's name must survive a crash too, like the file's.
  if (d.created) await io.syncDir(dirname(dir));
  const me = process.getuid?.();
  if (me !== undefined && d.uid !== me)
    throw new Error(`${dir} belongs to uid ${d.uid}, not to this process (uid ${me}); give the process a directory of its own`);
  if (d.mode !== 0o700) {
    // This process owns it, so it may set it back: a volume's fsGroup (Kubernetes) makes it g+rw
    // and setgid whenever the pod moves, which must not keep the sidecar from starting.
    warn?.(`${dir} had mode ${d.mode.toString(8)}; set back to 700 (only this process may read or write it)`);
    await io.chmod(dir, 0o700);
  }
}

/** The journal holds a bad record before good ones: nothing is dropped silently, so it is not opened. */
export class JournalCorruptError extends Error {
  override readonly name = 'JournalCorruptError';
}

/** The first line of a journal of this format. */
export const JOURNAL_MAGIC = Buffer.from('tg-journal 2\n');

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** One record as it is written (within a batch). */
export function encodeRecord(record: unknown): Buffer {
  const json = JSON.stringify(record);
  return Buffer.from(`${hex8(crc32(json))} ${json}\n`, 'utf8');
}

/** The commit line that follows a batch of `count` encoded records. */
function commitLine(batch: Buffer, count: number): Buffer {
  const body = `#${count} ${hex8(crc32(batch))}`;
  return Buffer.from(`${body} ${hex8(crc32(body))}\n`);
}

/** Encoded records followed by their commit line: one batch as it is written. */
export function encodeBatch(encoded: readonly Buffer[]): Buffer {
  const batch = Buffer.concat(encoded);
  return Buffer.concat([batch, commitLine(batch, encoded.length)]);
}

/** A commit line whose own checksum holds: its batch's record count and checksum; else null. */
function decodeCommit(line: string): { count: number; crc: string } | null {
  const m = /^(#(\d+) ([0-9a-f]{8})) ([0-9a-f]{8})$/.exec(line);
  if (!m || hex8(crc32(m[1]!)) !== m[4]) return null;
  return { count: Number(m[2]), crc: m[3]! };
}

/** Decodes one line (without its newline), or null when it is not a whole, intact record. */
function decodeLine(line: string): { ok: true; value: unknown } | { ok: false; why: string } {
  const m = /^([0-9a-f]{8}) (.*)$/s.exec(line);
  if (!m) return { ok: false, why: 'not a journal record' };
  if (crc32(m[2]!).toString(16).padStart(8, '0') !== m[1]) return { ok: false, why: 'checksum mismatch' };
  try {
    return { ok: true, value: JSON.parse(m[2]!) };
  } catch {
    return { ok: false, why: 'not JSON' };
  }
}

export interface ParsedJournal {
  records: unknown[];
  /** Bytes of intact records; beyond it, the torn tail (if any). */
  goodLength: number;
  torn?: { offset: number; bytes: number; why: string };
}

/** Pure: the records of a journal's bytes, the torn tail apart; throws JournalCorruptError on corruption. */
export function parseJournal(data: Buffer, file: string): ParsedJournal {
  if (data.length === 0) return { records: [], goodLength: 0 };
  if (!data.subarray(0, JOURNAL_MAGIC.length).equals(JOURNAL_MAGIC)) {
    // Cut short while the file was being created: nothing was ever acknowledged in it.
    if (data.length < JOURNAL_MAGIC.length && JOURNAL_MAGIC.subarray(0, data.length).equals(data))
      return { records: [], goodLength: 0, torn: { offset: 0, bytes: data.length, why: 'incomplete (no newline)' } };
    throw new JournalCorruptError(
      `${file}: not a journal of this format (its first line is not "${JOURNAL_MAGIC.toString().trim()}"; a file of the unreleased format 1 is not read: remove it)`,
    );
  }
  const records: unknown[] = [];
  let goodLength = JOURNAL_MAGIC.length;
  let batchStart = goodLength;
  let pending: unknown[] = [];
  let lineBad: string | null = null;
  let bad: { offset: number; why: string } | null = null;
  let offset = goodLength;
  while (offset < data.length) {
    const nl = data.indexOf(0x0a, offset);
    if (nl === -1) break; // a line cut short: the tail
    const line = data.subarray(offset, nl).toString('utf8');
    const commit = line.startsWith('#') ? decodeCommit(line) : null;
    if (!commit) {
      const r = decodeLine(line);
      if (r.ok) pending.push(r.value);
      else lineBad ??= r.why;
      offset = nl + 1;
      continue;
    }
    const batch = data.subarray(batchStart, offset);
    const why = lineBad ?? (hex8(crc32(batch)) !== commit.crc || pending.length !== commit.count ? 'the batch does not match its commit record' : null);
    if (why === null) {
      if (bad)
        throw new JournalCorruptError(
          `${file}: the batch at byte ${bad.offset} is damaged (${bad.why}) and valid batches follow it; not opening it, so that nothing in it is dropped silently`,
        );
      records.push(...pending);
      goodLength = nl + 1;
    } else bad ??= { offset: batchStart, why };
    pending = [];
    lineBad = null;
    offset = nl + 1;
    batchStart = offset;
  }
  if (goodLength === data.length) return { records, goodLength };
  const why = bad?.why ?? lineBad ?? (data[data.length - 1] !== 0x0a ? 'incomplete (no newline)' : 'no commit record');
  return { records, goodLength, torn: { offset: goodLength, bytes: data.length - goodLength, why } };
}

export interface JournalOptions {
  io?: JournalIo;
  /** A torn last record was cut off. */
  onTornTail?: (t: { file: string; offset: number; bytes: number; why: string }) => void;
  /**
   * Asked after each group of appends with the file's size and how many appends are queued behind
   * it (0 unless compactWhileQueued): the records to compact to, or null.
   */
  compact?: (fileBytes: number, queued: number) => unknown[] | null;
  /**
   * Compact even while appends are queued. Only for an owner whose snapshot (built synchronously by
   * `compact`) already holds the effects of every record it has issued: the appends queued at that
   * moment are settled by the rewrite and never written after it; later ones follow it. Without it, a
   * steady stream of appends (one queued during every fsync) never lets a compaction run.
   */
  compactWhileQueued?: boolean;
  /** Something set right at open (a mode), or a compaction that failed (the old file stays valid). */
  onWarning?: (message: string) => void;
}

/** After a failed compaction, none is tried before the file has grown by this share of its size again (at least COMPACT_RETRY_MIN_BYTES). */
const COMPACT_RETRY_MIN_BYTES = 1024 * 1024;

type Op =
  | { kind: 'append'; data: Buffer; resolve: () => void; reject: (e: Error) => void }
  | { kind: 'rewrite'; records: () => unknown[]; resolve: () => void; reject: (e: Error) => void };

export class Journal {
  private readonly ops: Op[] = [];
  private running = false;
  private broken: Error | null = null;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | null = null;

  private constructor(
    readonly file: string,
    private readonly io: JournalIo,
    private handle: AppendFile,
    private bytes: number,
    private readonly compact: JournalOptions['compact'],
    private readonly warn: JournalOptions['onWarning'],
    private readonly compactWhileQueued = false,
  ) {}

  /** A compaction failed: the next is not tried before the file reaches this size. */
  private compactAfter = 0;

  /**
   * Opens (creating the directory and the file when missing) and reads the journal. A torn tail is
   * cut off (and fsync'd) before anything is appended after it.
   */
  static async open(file: string, o: JournalOptions = {}): Promise<{ journal: Journal; records: unknown[] }> {
    const io = o.io ?? nodeJournalIo;
    const dir = dirname(file);
    await preparePrivateDir(dir, io, o.onWarning);
    const me = process.getuid?.();
    const st = await io.stat(file);
    if (st && me !== undefined && st.uid !== me) throw new Error(`${file} belongs to uid ${st.uid}, not to this process (uid ${me})`);
    if (st && st.mode & 0o077) {
      o.onWarning?.(`${file} had mode ${st.mode.toString(8)}; set back to 600`);
      await io.chmod(file, 0o600);
    }
    // A compaction cut short by a crash: its temporary file is never read, and goes.
    await io.remove(`${file}.tmp`);
    const data = (await io.read(file)) ?? Buffer.alloc(0);
    const parsed = parseJournal(data, file);
    if (parsed.torn) o.onTornTail?.({ file, ...parsed.torn });
    // A new (or empty) file starts with the format line, durable before any batch follows it.
    const fresh = parsed.goodLength === 0;
    if (fresh) await io.writeSynced(file, JOURNAL_MAGIC);
    const handle = await io.openAppend(file);
    if (!st) await io.syncDir(dir); // the file was just created: its name must survive too
    if (parsed.torn && !fresh) {
      await handle.truncate(parsed.goodLength);
      await handle.sync();
    }
    const size = fresh ? JOURNAL_MAGIC.length : parsed.goodLength;
    return { journal: new Journal(file, io, handle, size, o.compact, o.onWarning, o.compactWhileQueued), records: parsed.records };
  }

  /** Why the journal refuses every write (it could not be repaired or made durable), or null. */
  get failure(): Error | null {
    return this.broken;
  }

  /** The file's size as written so far. */
  get size(): number {
    return this.bytes;
  }

  /** Resolves once the record is written and fsync'd; rejects when it may not be. */
  append(record: unknown): Promise<void> {
    return this.enqueue((resolve, reject) => ({ kind: 'append', data: encodeRecord(record), resolve, reject }));
  }

  /** Replaces the whole journal by `records` (read when the rewrite runs), durably. */
  rewrite(records: () => unknown[]): Promise<void> {
    return this.enqueue((resolve, reject) => ({ kind: 'rewrite', records, resolve, reject }));
  }

  /** Waits for every write queued so far, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.idle;
    await this.handle.close().catch(() => undefined);
  }

  private enqueue(make: (resolve: () => void, reject: (e: Error) => void) => Op): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.file}: the journal is closed`));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<void>((resolve, reject) => {
      this.ops.push(make(resolve, reject));
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    this.idle = new Promise((r) => (this.idleResolve = r));
    try {
      while (this.ops.length > 0) {
        const first = this.ops[0]!;
        if (first.kind === 'rewrite') {
          this.ops.shift();
          await this.settle([first], () => this.doRewrite(first.records()));
          continue;
        }
        // Group commit: every append queued so far goes in one write and one fsync.
        let n = 0;
        while (n < this.ops.length && this.ops[n]!.kind === 'append') n++;
        const batch = this.ops.splice(0, n) as Extract<Op, { kind: 'append' }>[];
        await this.settle(batch, async () => {
          await this.doAppend(encodeBatch(batch.map((b) => b.data)));
          // Compacted before the batch's callers resume, and (unless compactWhileQueued) only when
          // nothing else is queued: then everything the owner has issued is written, so its live
          // records are exactly the durable ones. After a failed one (a full disk, say), not at every
          // batch: each costs up to the whole file in writes on the callers' path.
          const queued = this.ops.length;
          const may = queued === 0 || (this.compactWhileQueued && this.ops.every((o) => o.kind === 'append'));
          const live = may && this.compact && this.bytes >= this.compactAfter ? this.compact(this.bytes, queued) : null;
          if (!live) return;
          // The appends queued now are in the snapshot (their effects): written by it and never again
          // after it, since a record replayed on top of a state that already holds it need not give
          // that state again (an owner's bounds may evict another entry). Appends queued from here on
          // follow the rewrite.
          const covered = this.ops.splice(0, queued);
          try {
            await this.doRewrite(live);
            for (const o of covered) o.resolve();
          } catch (err) {
            // The old file is still valid (unless the journal is now broken, which refuses what follows):
            // the covered appends go to it as they were.
            this.ops.unshift(...covered);
            this.compactAfter = this.bytes + Math.max(this.bytes, COMPACT_RETRY_MIN_BYTES);
            this.warn?.(`${this.file}: compaction failed (${(err as Error).message}); the journal grows until ${this.compactAfter} bytes before the next try`);
          }
        });
      }
    } finally {
      this.running = false;
      this.idleResolve?.();
    }
  }

  private async settle(ops: Op[], work: () => Promise<void>): Promise<void> {
    if (this.broken) {
      for (const o of ops) o.reject(this.broken);
      return;
    }
    try {
      await work();
      for (const o of ops) o.resolve();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const o of ops) o.reject(new Error(`${this.file}: cannot write the journal: ${e.message}`, { cause: e }));
    }
  }

  private async doAppend(data: Buffer): Promise<void> {
    try {
      await this.handle.write(data);
      await this.handle.sync();
      this.bytes += data.length;
    } catch (err) {
      // Part of it may be on disk: cut it off, so that a later record never follows half a record.
      try {
        await this.handle.truncate(this.bytes);
        await this.handle.sync();
      } catch (again) {
        this.broken = new Error(`${this.file}: the journal could not be written nor repaired (${(again as Error).message}); refusing further writes`);
      }
      throw err;
    }
  }

  private async doRewrite(records: unknown[]): Promise<void> {
    const data = records.length > 0 ? Buffer.concat([JOURNAL_MAGIC, encodeBatch(records.map(encodeRecord))]) : JOURNAL_MAGIC;
    const tmp = `${this.file}.tmp`;
    await this.io.writeSynced(tmp, data);
    await this.io.rename(tmp, this.file);
    // From here on the name is the new file: appends must go to it, and only once the rename is
    // durable (else a crash could bring back the old file without them). Failing that, nothing
    // more can be made durable: every later write is refused.
    try {
      await this.io.syncDir(dirname(this.file));
      const old = this.handle;
      this.handle = await this.io.openAppend(this.file);
      this.bytes = data.length;
      this.compactAfter = 0;
      await old.close().catch(() => undefined);
    } catch (err) {
      this.broken = new Error(`${this.file}: the journal could not be made durable after compaction (${(err as Error).message}); refusing further writes`);
      throw err;
    }
  }
}

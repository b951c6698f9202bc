// The journal on the real file system (torn tails, corruption, compaction, modes), and with an
// injected JournalIo where a crash cannot be staged for real: the order of write, fsync and the
// caller's action, one fsync per group of appends, a write that fails half way.
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeBatch,
  encodeRecord,
  Journal,
  JOURNAL_MAGIC,
  JournalCorruptError,
  nodeJournalIo,
  parseJournal,
  type AppendFile,
  type JournalIo,
} from './journal.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'tg-journal-')), 'state');
  file = join(dir, 'j.journal');
});
afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

test('appended records come back on open, in order; the directory is 0700 and the file 0600', async () => {
  const { journal, records } = await Journal.open(file);
  expect(records).toEqual([]);
  await journal.append({ a: 1 });
  await Promise.all([journal.append({ b: 'two\nlines' }), journal.append({ c: [3] })]);
  await journal.close();
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const again = await Journal.open(file);
  expect(again.records).toEqual([{ a: 1 }, { b: 'two\nlines' }, { c: [3] }]);
  await again.journal.close();
});

test('a torn last record (a crash mid-write) is cut off with a warning, and appends after it stay readable', async () => {
  const { journal } = await Journal.open(file);
  await journal.append({ n: 1 });
  await journal.append({ n: 2 });
  await journal.close();
  const whole = readFileSync(file);
  const third = encodeRecord({ n: 3 });
  appendFileSync(file, third.subarray(0, third.length - 5)); // half a record, no newline
  const warnings: unknown[] = [];
  const a = await Journal.open(file, { onTornTail: (t) => warnings.push(t) });
  expect(a.records).toEqual([{ n: 1 }, { n: 2 }]);
  expect(warnings).toEqual([{ file, offset: whole.length, bytes: third.length - 5, why: 'incomplete (no newline)' }]);
  expect(readFileSync(file)).toEqual(whole); // cut off before anything follows it
  await a.journal.append({ n: 4 });
  await a.journal.close();
  const b = await Journal.open(file, { onTornTail: () => warnings.push('again') });
  expect(b.records).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
  expect(warnings).toHaveLength(1);
  await b.journal.close();
});

const batch = (...records: unknown[]) => encodeBatch(records.map(encodeRecord));
const flipped = (r: unknown) =>
  Buffer.from(
    encodeRecord(r)
      .toString()
      .replace(/\d/, (d) => String((Number(d) + 1) % 10)),
  );

test('damage anywhere in the last batch is a torn tail (never acknowledged): a flipped byte, a missing commit, a page not persisted', () => {
  const first = Buffer.concat([JOURNAL_MAGIC, batch({ n: 1 })]);
  const cases: [Buffer, string][] = [
    [encodeBatch([encodeRecord({ n: 2 }), flipped({ n: 3 })]), 'checksum mismatch'],
    [Buffer.concat([encodeRecord({ n: 2 }), encodeRecord({ n: 3 })]), 'no commit record'],
    // The commit line's page reached the disk, its records' page did not (zeros).
    [
      Buffer.concat([Buffer.alloc(encodeRecord({ n: 2 }).length - 1), Buffer.from('\n'), batch({ n: 3 }).subarray(encodeRecord({ n: 3 }).length)]),
      'not a journal record',
    ],
  ];
  for (const [last, why] of cases) {
    const p = parseJournal(Buffer.concat([first, last]), 'f');
    expect(p.records).toEqual([{ n: 1 }]);
    expect(p.torn).toEqual({ offset: first.length, bytes: last.length, why });
  }
});

test('a damaged batch followed by a valid one is corruption: open refuses, the file is left as it is', async () => {
  const { journal } = await Journal.open(file);
  await journal.close();
  const bad = encodeBatch([flipped({ n: 2 })]);
  const data = Buffer.concat([JOURNAL_MAGIC, batch({ n: 1 }), bad, batch({ n: 3 })]);
  writeFileSync(file, data);
  await expect(Journal.open(file)).rejects.toThrow(JournalCorruptError);
  await expect(Journal.open(file)).rejects.toThrow(/the batch at byte \d+ is damaged \(checksum mismatch\) and valid batches follow it/);
  expect(readFileSync(file)).toEqual(data);
  // Garbage that is not a record at all, in the middle, too.
  writeFileSync(file, Buffer.concat([JOURNAL_MAGIC, batch({ n: 1 }), Buffer.from('not a record\n'), batch({ n: 3 }), batch({ n: 4 })]));
  await expect(Journal.open(file)).rejects.toThrow(/batch at byte \d+ is damaged \(not a journal record\)/);
  // A batch whose records were changed wholesale (each line's own checksum recomputed) does not match its commit.
  const forged = Buffer.concat([encodeRecord({ n: 9 }), commitOf(batch({ n: 2 }))]);
  writeFileSync(file, Buffer.concat([JOURNAL_MAGIC, batch({ n: 1 }), forged, batch({ n: 3 })]));
  await expect(Journal.open(file)).rejects.toThrow(/does not match its commit record/);
});

/** The commit line of an encoded batch. */
function commitOf(b: Buffer): Buffer {
  return b.subarray(b.lastIndexOf(0x0a, b.length - 2) + 1);
}

test('a file of the unreleased format 1 (no format line) is refused with a message saying so', async () => {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, encodeRecord({ n: 1 }));
  await expect(Journal.open(file)).rejects.toThrow(/not a journal of this format .*format 1 is not read: remove it/);
});

test('compaction replaces the file by the live records when the owner asks; later appends follow them', async () => {
  let live: unknown[] = [];
  const { journal } = await Journal.open(file, { compact: (bytes) => (bytes > 400 ? live : null) });
  for (let i = 0; i < 20; i++) {
    live = [{ header: true }, { i }];
    await journal.append({ i, pad: 'x'.repeat(20) });
  }
  expect(journal.size).toBeLessThan(400);
  expect(journal.size).toBe(readFileSync(file).length);
  await journal.append({ after: true });
  await journal.close();
  const again = await Journal.open(file);
  expect(again.records.at(-1)).toEqual({ after: true });
  expect(again.records[0]).toEqual({ header: true });
  expect(again.records.length).toBeLessThan(10);
  await again.journal.close();
});

test('a group-readable file is made 0600, a group-writable setgid directory (a volume fsGroup) 0700, with warnings', async () => {
  const { journal } = await Journal.open(file);
  await journal.close();
  chmodSync(file, 0o644);
  const warnings: string[] = [];
  const a = await Journal.open(file, { onWarning: (m) => warnings.push(m) });
  await a.journal.close();
  expect(statSync(file).mode & 0o777).toBe(0o600);
  chmodSync(dir, 0o2770);
  const b = await Journal.open(file, { onWarning: (m) => warnings.push(m) });
  await b.journal.close();
  expect(statSync(dir).mode & 0o7777).toBe(0o700);
  expect(warnings).toEqual([expect.stringMatching(/had mode 644; set back to 600/), expect.stringMatching(/had mode 2770; set back to 700/)]);
});

test('a directory of another owner is still refused', async () => {
  const io: JournalIo = { ...nodeJournalIo, mkdir: async () => ({ uid: (process.getuid?.() ?? 0) + 1, mode: 0o700, created: false }) };
  await expect(Journal.open(file, { io })).rejects.toThrow(/belongs to uid \d+, not to this process/);
});

test('a symbolic link in place of the journal is refused, not followed', async () => {
  const { journal } = await Journal.open(file);
  await journal.close();
  const target = join(dir, 'elsewhere');
  writeFileSync(target, Buffer.concat([JOURNAL_MAGIC, batch({ planted: true })]));
  rmSync(file);
  symlinkSync(target, file);
  await expect(Journal.open(file)).rejects.toThrow(/not a regular file|ELOOP/);
});

test('a compaction cut short by a crash leaves a .tmp file: removed at open, never read', async () => {
  const { journal } = await Journal.open(file);
  await journal.append({ n: 1 });
  await journal.close();
  writeFileSync(`${file}.tmp`, Buffer.concat([JOURNAL_MAGIC, batch({ half: 'a compaction' })]));
  const again = await Journal.open(file);
  expect(again.records).toEqual([{ n: 1 }]);
  expect(existsSync(`${file}.tmp`)).toBe(false);
  await again.journal.close();
});

test('after a failed compaction the next one waits until the file has grown again, instead of costing every batch a rewrite', async () => {
  let rewrites = 0;
  const io: JournalIo = {
    ...nodeJournalIo,
    async writeSynced(f, data) {
      if (!f.endsWith('.tmp')) return nodeJournalIo.writeSynced(f, data);
      rewrites++;
      throw new Error('ENOSPC: no space left on device');
    },
  };
  const warnings: string[] = [];
  const { journal } = await Journal.open(file, { io, compact: () => [{ live: true }], onWarning: (m) => warnings.push(m) });
  for (let i = 0; i < 50; i++) await journal.append({ i });
  expect(rewrites).toBe(1);
  expect(warnings).toEqual([expect.stringMatching(/compaction failed \(ENOSPC.*grows until \d+ bytes before the next try/)]);
  // Still a working journal: every record is there.
  await journal.close();
  const again = await Journal.open(file);
  expect(again.records).toHaveLength(50);
  await again.journal.close();
});

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; !pred(); i++) {
    if (i > 1000) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The real file system, with every operation logged and fsyncs that wait for the test's go. */
function tracedIo(events: string[], gate?: { wait: () => Promise<void> }, failWrite?: () => boolean): JournalIo {
  return {
    ...nodeJournalIo,
    async openAppend(f) {
      const h = await nodeJournalIo.openAppend(f);
      const traced: AppendFile = {
        async write(data) {
          if (failWrite?.()) {
            await h.write(data.subarray(0, Math.floor(data.length / 2)));
            events.push('write failed half way');
            throw new Error('ENOSPC: no space left on device');
          }
          // Records in the write (its commit line apart).
          events.push(
            `write ${
              data
                .toString()
                .trim()
                .split('\n')
                .filter((l) => !l.startsWith('#')).length
            }`,
          );
          await h.write(data);
        },
        async sync() {
          events.push('fsync starts');
          await gate?.wait();
          await h.sync();
          events.push('fsync done');
        },
        truncate: async (n) => {
          events.push(`truncate ${n}`);
          await h.truncate(n);
        },
        close: () => h.close(),
      };
      return traced;
    },
    async syncDir(d) {
      events.push('fsync dir');
      await nodeJournalIo.syncDir(d);
    },
    async rename(a, b) {
      events.push('rename');
      await nodeJournalIo.rename(a, b);
    },
  };
}

test('append resolves only after its fsync; appends made meanwhile share the next write and fsync', async () => {
  const events: string[] = [];
  // fsyncs wait for open(): one permit each.
  let permits = 0;
  const waiting: (() => void)[] = [];
  const open = () => (waiting.length ? waiting.shift()!() : permits++);
  const gate = {
    wait: () => {
      if (permits === 0) return new Promise<void>((r) => waiting.push(r));
      permits--;
      return Promise.resolve();
    },
  };
  const { journal } = await Journal.open(file, { io: tracedIo(events, gate) });
  expect(events).toEqual(['fsync dir', 'fsync dir']); // the new directory's name, then the new file's, are durable
  events.length = 0;
  let acted = false;
  const first = journal.append({ n: 1 }).then(() => {
    acted = true;
    events.push('action 1');
  });
  await until(() => events.includes('fsync starts'));
  const later = [journal.append({ n: 2 }), journal.append({ n: 3 })];
  await new Promise((r) => setTimeout(r, 30));
  expect(acted).toBe(false); // its fsync has not finished: the caller has not acted
  expect(events).toEqual(['write 1', 'fsync starts']);
  open();
  await first;
  await until(() => events.filter((e) => e === 'fsync starts').length === 2);
  open();
  await Promise.all(later);
  expect(events).toEqual(['write 1', 'fsync starts', 'fsync done', 'action 1', 'write 2', 'fsync starts', 'fsync done']);
  await journal.close();
});

test('a write that fails half way is cut off and rejected; the journal goes on and reads back clean', async () => {
  const events: string[] = [];
  let fail = false;
  const { journal } = await Journal.open(file, { io: tracedIo(events, undefined, () => fail) });
  await journal.append({ n: 1 });
  const size = journal.size;
  fail = true;
  await expect(journal.append({ n: 2, pad: 'y'.repeat(100) })).rejects.toThrow(/cannot write the journal: ENOSPC/);
  expect(events.slice(-4)).toEqual(['write failed half way', `truncate ${size}`, 'fsync starts', 'fsync done']);
  fail = false;
  await journal.append({ n: 3 });
  await journal.close();
  const again = await Journal.open(file);
  expect(again.records).toEqual([{ n: 1 }, { n: 3 }]);
  await again.journal.close();
});

test('compaction writes and fsyncs the new file, renames it, and fsyncs the directory before the next append', async () => {
  const events: string[] = [];
  const { journal } = await Journal.open(file, { io: tracedIo(events) });
  await journal.append({ n: 1 });
  events.length = 0;
  const rewritten = journal.rewrite(() => [{ only: true }]);
  const next = journal.append({ n: 2 });
  await Promise.all([rewritten, next]);
  expect(events).toEqual(['rename', 'fsync dir', 'write 1', 'fsync starts', 'fsync done']);
  await journal.close();
  const again = await Journal.open(file);
  expect(again.records).toEqual([{ only: true }, { n: 2 }]);
  await again.journal.close();
});

describe('compaction under a steady stream of appends (an append queued during every fsync)', () => {
  /** Appends 200 records, each issued while the previous batch's fsync runs (a slow disk under steady traffic). */
  async function steady(compactWhileQueued: boolean) {
    let rewrites = 0;
    const queuedSeen: number[] = [];
    let journal: Journal | null = null;
    let left = 200;
    const pending: Promise<void>[] = [];
    const io: JournalIo = {
      ...nodeJournalIo,
      async openAppend(f) {
        const h = await nodeJournalIo.openAppend(f);
        return {
          ...h,
          async sync() {
            await h.sync();
            if (journal && left > 0) pending.push(journal.append({ n: left-- }));
          },
        };
      },
      async writeSynced(f, d) {
        if (f.endsWith('.tmp')) rewrites++;
        return nodeJournalIo.writeSynced(f, d);
      },
    };
    const opened = await Journal.open(file, {
      io,
      compactWhileQueued,
      compact: (bytes, queued) => {
        if (bytes < 2000) return null;
        queuedSeen.push(queued);
        return [{ live: 1 }];
      },
    });
    journal = opened.journal;
    await journal.append({ n: 'first' });
    while (left > 0 || pending.length > 0) {
      // An append a compaction settled issues no fsync of its own: the stream goes on from here.
      if (pending.length === 0) pending.push(journal.append({ n: left-- }));
      await Promise.all(pending.splice(0));
    }
    await journal.close();
    const again = await Journal.open(file);
    await again.journal.close();
    return { rewrites, queuedSeen, records: again.records, size: statSync(file).size };
  }

  test('compactWhileQueued: compacted all the same', async () => {
    const r = await steady(true);
    expect(r.rewrites).toBeGreaterThanOrEqual(3);
    expect(r.queuedSeen.every((q) => q === 1)).toBe(true);
    expect(r.size).toBeLessThan(4000);
    expect(r.records[0]).toEqual({ live: 1 });
  });

  /**
   * One compaction with an append queued when it starts (issued during the batch's fsync) and one
   * issued during its rewrite, which `failRewrite` makes fail (a full disk): what `compact` was
   * told, the warnings, and the records a reopen reads.
   */
  async function compactionRace(failRewrite: boolean) {
    let journal: Journal | null = null;
    let queuedDuringSync: Promise<void> | null = null;
    let appendedDuringRewrite: Promise<void> | null = null;
    const io: JournalIo = {
      ...nodeJournalIo,
      async openAppend(f) {
        const h = await nodeJournalIo.openAppend(f);
        return {
          ...h,
          async sync() {
            await h.sync();
            if (journal && !queuedDuringSync) queuedDuringSync = journal.append({ queued: 'at compaction' });
          },
        };
      },
      async writeSynced(f, d) {
        if (f.endsWith('.tmp')) {
          if (journal && !appendedDuringRewrite) appendedDuringRewrite = journal.append({ during: 'the rewrite' });
          if (failRewrite) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        }
        return nodeJournalIo.writeSynced(f, d);
      },
    };
    const seen: number[] = [];
    const warnings: string[] = [];
    const opened = await Journal.open(file, {
      io,
      compactWhileQueued: true,
      onWarning: (m) => warnings.push(m),
      compact: (_bytes, queued) => {
        if (seen.length > 0) return null;
        seen.push(queued);
        return [{ snapshot: 'holds the queued record' }];
      },
    });
    journal = opened.journal;
    await journal.append({ first: 1 });
    await queuedDuringSync;
    await appendedDuringRewrite;
    await journal.close();
    const again = await Journal.open(file);
    await again.journal.close();
    return { seen, warnings, records: again.records };
  }

  test('compactWhileQueued: the appends queued when it starts are settled by the snapshot (which holds their effects), never written after it; later ones follow it', async () => {
    // Written again after a snapshot that already holds them, records need not give the same state
    // (the A2A owner table's bounds evict by order): the file must be exactly snapshot + later appends.
    const r = await compactionRace(false);
    expect(r.seen).toEqual([1]);
    expect(r.records).toEqual([{ snapshot: 'holds the queued record' }, { during: 'the rewrite' }]);
  });

  test('compactWhileQueued: a compaction that fails puts the appends it covered back, in order, before those issued during it', async () => {
    const r = await compactionRace(true);
    expect(r.warnings.some((w) => /compaction failed/.test(w))).toBe(true);
    expect(r.records).toEqual([{ first: 1 }, { queued: 'at compaction' }, { during: 'the rewrite' }]);
  });

  test('without it (the approvals): never compacted while an append is queued, only once the stream stops', async () => {
    const r = await steady(false);
    expect(r.queuedSeen).toEqual([0]);
    expect(r.rewrites).toBe(1);
    expect(r.records).toEqual([{ live: 1 }]);
  });
});

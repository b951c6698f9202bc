// The A2A task owner table across restarts (--state-dir, standalone): its changes (tasks.ts
// OwnerRecord: an id's owner and expiry, an evicted id, a context tombstone) appended to
// `<dir>/a2a-tasks.journal` (lib/journal.ts, the approvals' journal format), replayed at start, and
// compacted to the live table (at start, and once the file holds twice as many records as the
// table plus COMPACT_SLACK_RECORDS): the file stays bounded by the table's own bounds.
// Records are appended without waiting for their fsync: the table answers from memory. An id lost
// to a crash before its write is unknown after the restart, so refused for everyone (fail closed);
// only a context id lost that way could be started again by another client.
// One process per directory: a2a-tasks.lock (lib/dir-lock.ts), as the approvals' own.
import { join } from 'node:path';
import { z } from 'zod';
import { type DirLock, lockDir } from '../../lib/dir-lock.js';
import { Journal, JournalCorruptError, preparePrivateDir } from '../../lib/journal.js';
import type { Logger } from '../../lib/log.js';
import type { OwnerRecord, TaskOwners } from './tasks.js';

export const TASK_STORE_FILE = 'a2a-tasks.journal';
export const TASK_LOCK_FILE = 'a2a-tasks.lock';
/** Stale records tolerated beyond as many as live ones before a compaction. */
const COMPACT_SLACK_RECORDS = 4096;

const Kind = z.enum(['task', 'context']);
const RecordSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('set'), s: z.string(), o: z.string(), k: Kind, id: z.string(), e: z.number() }),
  z.strictObject({ op: z.literal('drop'), s: z.string(), k: Kind, id: z.string() }),
  z.strictObject({ op: z.literal('tomb'), s: z.string(), id: z.string(), until: z.number(), o: z.string().optional() }),
]);

export interface TaskOwnerStore {
  readonly file: string;
  /** Replays the journal into `table` and compacts it to the table's live records; then records every change. */
  attach(table: TaskOwners): Promise<void>;
  /** Appends one change (tasks.ts TaskOwnersOptions.record). */
  write(r: OwnerRecord): void;
  close(): Promise<void>;
}

/** The records of a journal, checked: one this version does not understand stops the start (nothing dropped silently). */
export function readOwnerRecords(raw: readonly unknown[], file: string): OwnerRecord[] {
  return raw.map((r, i) => {
    const p = RecordSchema.safeParse(r);
    if (!p.success) throw new JournalCorruptError(`${file}: record ${i + 1} is not an A2A task owner record this version understands`);
    return p.data as OwnerRecord;
  });
}

export async function openTaskOwnerStore(dir: string, o: { log: Logger }): Promise<TaskOwnerStore> {
  const file = join(dir, TASK_STORE_FILE);
  const warn = (message: string) => o.log.warn('a2a task owner store', { message });
  await preparePrivateDir(dir, undefined, warn);
  const lock: DirLock = await lockDir(join(dir, TASK_LOCK_FILE), warn);
  let table: TaskOwners | null = null;
  /** Records in the file since it was last compacted. */
  let inFile = 0;
  let opened: Awaited<ReturnType<typeof Journal.open>>;
  try {
    opened = await Journal.open(file, {
      onWarning: warn,
      onTornTail: (t) =>
        warn(`the last records were cut short by a crash while they were written, and are ignored (${t.bytes} bytes at ${t.offset}: ${t.why})`),
      // Under steady traffic an append is queued during every fsync: compacted all the same. The
      // snapshot already holds the queued records' effects, so the journal settles them with it
      // instead of writing them after it (replayed on top of it, a set could evict another id).
      compactWhileQueued: true,
      compact: () => {
        if (!table) return null;
        const live = table.size + table.tombstones;
        if (inFile <= 2 * live + COMPACT_SLACK_RECORDS) return null;
        const records = table.records();
        inFile = records.length;
        return records;
      },
    });
  } catch (err) {
    await lock.release();
    throw err;
  }
  const { journal } = opened;
  let records: OwnerRecord[];
  try {
    records = readOwnerRecords(opened.records, file);
  } catch (err) {
    await journal.close();
    await lock.release();
    throw err;
  }
  let failed = false;
  return {
    file,
    async attach(t) {
      t.restore(records);
      records = [];
      const live = t.records();
      await journal.rewrite(() => live);
      inFile = live.length;
      table = t;
      o.log.info('A2A task owners survive a restart', { file, ids: t.size, tombstones: t.tombstones });
    },
    write(r) {
      inFile++;
      journal.append(r).catch((err: unknown) => {
        // The table goes on in memory; what was not written is unknown after a restart (refused).
        if (!failed) o.log.warn('a2a task owner store: a write failed; ids recorded meanwhile are lost at a restart', { error: (err as Error).message });
        failed = true;
      });
    },
    async close() {
      await journal.close();
      await lock.release();
    },
  };
}

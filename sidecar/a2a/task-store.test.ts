// The owner table's journal (--state-dir): a reopened store gives the next table the same owners,
// the file stays bounded by compaction, a record it does not understand stops the start, and one
// process holds the directory. The restart of the built sidecar: test/adversarial/a2a-isolation-restart.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirLockedError } from '../../lib/dir-lock.js';
import { encodeBatch, encodeRecord, JOURNAL_MAGIC, JournalCorruptError } from '../../lib/journal.js';
import { createLogger } from '../../lib/log.js';
import { openTaskOwnerStore, TASK_STORE_FILE, type TaskOwnerStore } from './task-store.js';
import { TaskOwners, type TaskOwnersOptions } from './tasks.js';

const S = 'agent';
let dir: string;
const lines: string[] = [];
const log = () => createLogger('debug', (l) => lines.push(l));
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tg-task-store-'));
  lines.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function open(o: TaskOwnersOptions = {}): Promise<{ store: TaskOwnerStore; table: TaskOwners }> {
  const store = await openTaskOwnerStore(dir, { log: log() });
  const table = new TaskOwners({ ...o, record: store.write });
  await store.attach(table);
  return { store, table };
}

test('a reopened store gives the next table the same owners, tombstones and expiries', async () => {
  const a = await open({ maxPerOwner: 2 });
  a.table.learn(S, 'alice', 'task', 't1');
  a.table.learn(S, 'alice', 'context', 'c1');
  a.table.learn(S, 'alice', 'context', 'c2'); // alice's bound: t1 evicted
  a.table.learn(S, 'bob', 'task', 'tb');
  await a.store.close();
  const b = await open({ maxPerOwner: 2 });
  expect(b.table.ownerOf(S, 'task', 't1')).toBeUndefined();
  expect(b.table.ownerOf(S, 'context', 'c1')).toBe('alice');
  expect(b.table.ownerOf(S, 'context', 'c2')).toBe('alice');
  expect(b.table.ownerOf(S, 'task', 'tb')).toBe('bob');
  b.table.learn(S, 'alice', 'context', 'c3'); // c1 evicted: a tombstone, journaled
  await b.store.close();
  const c = await open({ maxPerOwner: 2 });
  expect(c.table.closed(S, 'c1')).toBe(true);
  expect(c.table.size).toBe(3);
  await c.store.close();
  expect(lines.join('\n')).toMatch(/A2A task owners survive a restart.*"ids":3,"tombstones":1/);
});

test('the file stays bounded: it is compacted to the live table', async () => {
  const a = await open({ maxPerOwner: 10, ttlMs: 1000 });
  for (let i = 0; i < 20_000; i++) {
    a.table.learn(S, 'mallory', 'task', `m${i}`);
    if (i % 500 === 0) await new Promise((r) => setImmediate(r)); // let the group commits run
  }
  await a.store.close();
  const records = readFileSync(join(dir, TASK_STORE_FILE), 'utf8')
    .split('\n')
    .filter((l) => /^[0-9a-f]{8} /.test(l));
  // Live: 10 ids; dead records kept at most twice the live ones plus the slack (4096), and a last batch.
  expect(records.length).toBeLessThan(10_000);
  const b = await open({ maxPerOwner: 10 });
  expect(b.table.size).toBe(10);
  expect(b.table.ownerOf(S, 'task', 'm19999')).toBe('mallory');
  await b.store.close();
});

test('a record this version does not understand stops the start (nothing dropped silently)', async () => {
  writeFileSync(join(dir, TASK_STORE_FILE), Buffer.concat([JOURNAL_MAGIC, encodeBatch([encodeRecord({ op: 'own', s: S, id: 'x' })])]), { mode: 0o600 });
  await expect(openTaskOwnerStore(dir, { log: log() })).rejects.toBeInstanceOf(JournalCorruptError);
  // Its lock was released: a fixed file opens.
  writeFileSync(join(dir, TASK_STORE_FILE), JOURNAL_MAGIC, { mode: 0o600 });
  await (await openTaskOwnerStore(dir, { log: log() })).close();
});

test('one process per directory', async () => {
  const a = await open();
  await expect(openTaskOwnerStore(dir, { log: log() })).rejects.toBeInstanceOf(DirLockedError);
  await a.store.close();
});

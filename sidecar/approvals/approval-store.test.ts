// The approval store on a real directory: what a reopen finds after each step of an approval's
// life, compaction of ended approvals, the bounds, and records it refuses to guess about.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { buildSync } from 'esbuild';
import { encodeBatch, encodeRecord, JOURNAL_MAGIC, JournalCorruptError, nodeJournalIo, type JournalIo } from '../../lib/journal.js';
import { createLogger } from '../../lib/log.js';
import type { PendingApproval } from './backend.js';
import { requestHash } from './hash.js';
import { ApprovalStoreFullError, foldRecords, openApprovalStore, STORE_FILE, toRecord } from './approval-store.js';

let dir: string;
let lines: string[];
const log = () => createLogger('debug', (l) => lines.push(l));
beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'tg-store-')), 'state');
  lines = [];
});
afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

function pending(id: string, extra: Partial<PendingApproval> = {}): PendingApproval {
  return {
    id,
    channel: 'oncall',
    workload: { namespace: 'default', serviceAccount: 'default', pod: 'standalone' },
    source: 'up',
    method: 'tools/call',
    tool: 'deploy',
    arguments: { service: 'api', nested: { n: 1, list: [1, 'two', null] } },
    requestHash: 'ab'.repeat(32),
    reason: 'deploys need a human',
    mcpSessionId: 'sess-1',
    owner: 'up\u0000session:sess-1',
    client: 'session:sess-1',
    createdAt: new Date('2026-12-06T10:00:00.000Z'),
    expiresAt: new Date('2026-12-06T10:10:00.000Z'),
    ...extra,
  };
}

test('every step of a live approval is found again on reopen; ended ones are gone from the file', async () => {
  const s = await openApprovalStore(dir, { log: log() });
  await s.put(pending('tg-a'), 'C0APPROVE');
  await s.put(pending('tg-b'), 'C0APPROVE');
  await s.put(pending('tg-c', { client: 'auth:0123', mcpSessionId: undefined, owner: undefined }), 'C0APPROVE');
  await s.posting('tg-a', new Date('2026-12-06T10:00:01Z'));
  await s.posted('tg-a', '1700000000.000100');
  await s.posting('tg-b', new Date('2026-12-06T10:00:02Z'));
  await s.decided('tg-a', {
    id: 'tg-a',
    outcome: 'approved',
    by: [{ id: 'U0ALICE', name: 'Alice' }],
    at: new Date('2026-12-06T10:01:00Z'),
    message: 'approved in Slack by Alice',
  });
  await s.executing('tg-a', new Date('2026-12-06T10:01:01Z'));
  await s.end('tg-c');
  await s.close();

  const again = await openApprovalStore(dir, { log: log() });
  const byId = new Map(again.takeLoaded().map((a) => [a.pending.id, a]));
  expect([...byId.keys()]).toEqual(['tg-a', 'tg-b']);
  const a = byId.get('tg-a')!;
  expect(a.pending).toEqual(pending('tg-a'));
  expect(a).toMatchObject({
    slackChannel: 'C0APPROVE',
    ts: '1700000000.000100',
    executionStarted: true,
    decision: { outcome: 'approved', by: [{ id: 'U0ALICE', name: 'Alice' }] },
  });
  const b = byId.get('tg-b')!;
  expect(b.postingAt).toEqual(new Date('2026-12-06T10:00:02Z'));
  expect(b.ts).toBeUndefined();
  expect(b.executionStarted).toBe(false);
  // Compacted at open: the ended approval is not in the file any more.
  expect(readFileSync(join(dir, STORE_FILE), 'utf8')).not.toContain('tg-c');
  expect(again.stats().approvals).toBe(2);
  await again.close();
});

test('a store whose approvals all ended is compacted to its header as it goes', async () => {
  const s = await openApprovalStore(dir, { log: log() });
  for (let i = 0; i < 400; i++) {
    await s.put(pending(`tg-${i}`, { arguments: { blob: 'x'.repeat(500) } }), 'C0APPROVE');
    await s.end(`tg-${i}`);
  }
  // Without compaction this would be ~250 KB; dead bytes are cut once they pass 64 KiB.
  expect(s.stats().fileBytes).toBeLessThan(80 * 1024);
  await s.close();
  const again = await openApprovalStore(dir, { log: log() });
  expect(again.takeLoaded()).toEqual([]);
  expect(
    readFileSync(join(dir, STORE_FILE), 'utf8')
      .trim()
      .split('\n')
      .filter((l) => /^[0-9a-f]{8} /.test(l)),
  ).toHaveLength(1);
  await again.close();
});

test('beyond maxApprovals or maxBytes a new approval is refused with a clear error; an ended one makes room', async () => {
  const s = await openApprovalStore(dir, { log: log(), maxApprovals: 2, maxBytes: 4096 });
  await s.put(pending('tg-1'), 'C0APPROVE');
  await s.put(pending('tg-2'), 'C0APPROVE');
  await expect(s.put(pending('tg-3'), 'C0APPROVE')).rejects.toThrow(ApprovalStoreFullError);
  await expect(s.put(pending('tg-3'), 'C0APPROVE')).rejects.toThrow(/already holds 2 approvals, the most it keeps \(2\)/);
  await s.end('tg-1');
  await s.put(pending('tg-3'), 'C0APPROVE');
  await s.end('tg-2');
  await expect(s.put(pending('tg-4', { arguments: { big: 'y'.repeat(5000) } }), 'C0APPROVE')).rejects.toThrow(/would pass its bound of 4096/);
  await s.close();
  const again = await openApprovalStore(dir, { log: log() });
  expect(again.found).toBe(1);
  expect(again.takeLoaded().map((a) => a.pending.id)).toEqual(['tg-3']);
  expect(again.takeLoaded()).toEqual([]); // handed out once
  await again.close();
});

test('the execution mark is refused for an approval the store does not hold (the call then does not run)', async () => {
  const s = await openApprovalStore(dir, { log: log() });
  await expect(s.executing('tg-unknown', new Date())).rejects.toThrow(/not recorded, so its execution cannot be marked/);
  await s.close();
});

test('a torn last record is ignored with a warning; a record of the wrong shape refuses to open', async () => {
  const s = await openApprovalStore(dir, { log: log() });
  await s.put(pending('tg-a'), 'C0APPROVE');
  await s.close();
  const file = join(dir, STORE_FILE);
  const half = encodeRecord({ op: 'executing', id: 'tg-a', at: new Date().toISOString() });
  appendFileSync(file, half.subarray(0, 20));
  const again = await openApprovalStore(dir, { log: log() });
  expect(again.takeLoaded()[0]!.executionStarted).toBe(false); // never acknowledged: the call never ran
  expect(lines.map((l) => JSON.parse(l) as { msg: string }).some((l) => l.msg.startsWith('approval store: the last record was cut short'))).toBe(true);
  await again.close();

  const good = readFileSync(file);
  writeFileSync(
    file,
    Buffer.concat([good, encodeBatch([encodeRecord({ op: 'put', approval: { id: 'tg-x' } })]), encodeBatch([encodeRecord({ op: 'end', id: 'tg-a' })])]),
  );
  await expect(openApprovalStore(dir, { log: log() })).rejects.toThrow(JournalCorruptError);
  await expect(openApprovalStore(dir, { log: log() })).rejects.toThrow(/record 3 is not an approval record: approval\.\w+/);
  writeFileSync(file, Buffer.concat([JOURNAL_MAGIC, encodeBatch([encodeRecord({ op: 'header', v: 99 })])]));
  await expect(openApprovalStore(dir, { log: log() })).rejects.toThrow(/another version of the approval store \(format 99/);
});

test('replaying records is harmless: a record about an approval that is not live changes nothing', () => {
  const put = toRecord(pending('tg-a'), 'C0APPROVE');
  const live = foldRecords([
    { op: 'header', v: 1 },
    put,
    { op: 'posted', id: 'tg-a', ts: '1.1' },
    put,
    { op: 'end', id: 'tg-a' },
    { op: 'executing', id: 'tg-a', at: '2026-12-06T10:00:00Z' },
    { op: 'posted', id: 'tg-zz', ts: '2.2' },
  ]);
  expect(live.size).toBe(0);
  const again = foldRecords([put, { op: 'posted', id: 'tg-a', ts: '1.1' }, put]);
  expect(again.get('tg-a')!.ts).toBe('1.1');
});

test('votes (button clicks) are found again on reopen, one per person and side, and kept by compaction', async () => {
  const s = await openApprovalStore(dir, { log: log() });
  await s.put(pending('tg-v'), 'C0APPROVE');
  await s.posted('tg-v', '1700000000.000200');
  await s.vote('tg-v', { user: 'U0ALICE', action: 'approve', at: '2026-12-06T10:02:00.000Z' });
  // A redelivered click recorded twice is still one vote.
  await s.vote('tg-v', { user: 'U0ALICE', action: 'approve', at: '2026-12-06T10:02:01.000Z' });
  await s.vote('tg-v', { user: 'U0BOB', action: 'reject', reason: 'not now', at: '2026-12-06T10:03:00.000Z' });
  await expect(s.vote('tg-unknown', { user: 'U0ALICE', action: 'approve', at: '2026-12-06T10:02:00.000Z' })).rejects.toThrow(/not recorded/);
  await s.close();

  const expected = [
    { user: 'U0ALICE', action: 'approve', at: '2026-12-06T10:02:00.000Z' },
    { user: 'U0BOB', action: 'reject', reason: 'not now', at: '2026-12-06T10:03:00.000Z' },
  ];
  const again = await openApprovalStore(dir, { log: log() });
  expect(again.takeLoaded()[0]!.votes).toEqual(expected);
  await again.close();
  // The reopen compacted the file (rewritten from the live state): the votes are still there.
  const third = await openApprovalStore(dir, { log: log() });
  expect(third.takeLoaded()[0]).toMatchObject({ ts: '1700000000.000200', votes: expected });
  await third.close();
});

test('an argument named __proto__ comes back as it was recorded (the approver saw it; the hash covers it)', async () => {
  const args = JSON.parse('{"__proto__": {"admin": true}, "service": "api"}') as Record<string, unknown>;
  const s = await openApprovalStore(dir, { log: log() });
  await s.put(pending('tg-p', { arguments: args }), 'C0APPROVE');
  await s.close();
  const again = await openApprovalStore(dir, { log: log() });
  const got = again.takeLoaded()[0]!.pending.arguments;
  expect(Object.keys(got)).toEqual(['__proto__', 'service']);
  expect(JSON.stringify(got)).toBe(JSON.stringify(args));
  expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  // The check before the call runs: the restored arguments still match the hash of what was asked.
  expect(requestHash('up', 'deploy', got)).toBe(requestHash('up', 'deploy', args));
  expect(requestHash('up', 'deploy', got)).not.toBe(requestHash('up', 'deploy', { service: 'api' }));
  await again.close();
});

/** Real files; appends whose records match `fail` fail (a full disk), before anything is written. */
function failingIo(fail: (data: string) => boolean, rewrites?: () => boolean): JournalIo {
  return {
    ...nodeJournalIo,
    async openAppend(f) {
      const h = await nodeJournalIo.openAppend(f);
      return {
        async write(data) {
          if (fail(data.toString())) throw new Error('EIO: i/o error');
          await h.write(data);
        },
        sync: () => h.sync(),
        truncate: (n) => h.truncate(n),
        close: () => h.close(),
      };
    },
    async writeSynced(f, data) {
      if (f.endsWith('.tmp') && rewrites?.()) throw new Error('ENOSPC: no space left on device');
      await nodeJournalIo.writeSynced(f, data);
    },
  };
}

test('an end that could not be written keeps the approval (a tombstone) until it is: a crash never brings a finished approval back', async () => {
  let failEnd = true;
  const s = await openApprovalStore(dir, { log: log(), io: failingIo((d) => failEnd && d.includes('"op":"end"')) });
  await s.put(pending('tg-a'), 'C0APPROVE');
  await s.executing('tg-a', new Date());
  await expect(s.end('tg-a')).rejects.toThrow(/EIO/);
  expect(s.has('tg-a')).toBe(false); // over, for the backend
  expect(s.stats().approvals).toBe(0);
  failEnd = false;
  // The next write carries the end that failed.
  await s.put(pending('tg-b'), 'C0APPROVE');
  await new Promise((r) => setTimeout(r, 20));
  await s.close(); // as a crash would leave it: no compaction at close
  const again = await openApprovalStore(dir, { log: log() });
  expect(again.takeLoaded().map((a) => a.pending.id)).toEqual(['tg-b']);
  await again.close();
});

test('a compaction that fails at open (a full disk) is a warning: the store opens on the old file, which was valid', async () => {
  const s = await openApprovalStore(dir, { log: log() });
  await s.put(pending('tg-a'), 'C0APPROVE');
  await s.close();
  const again = await openApprovalStore(dir, {
    log: log(),
    io: failingIo(
      () => false,
      () => true,
    ),
  });
  expect(again.found).toBe(1);
  expect(again.failure()).toBeNull();
  expect(lines.some((l) => l.includes('compaction at start failed') && l.includes('ENOSPC'))).toBe(true);
  await again.put(pending('tg-b'), 'C0APPROVE');
  await again.close();
  const third = await openApprovalStore(dir, { log: log() });
  expect(third.takeLoaded().map((a) => a.pending.id)).toEqual(['tg-a', 'tg-b']);
  await third.close();
});

test('a second process cannot open a store another one holds; once that one is killed, the lock is taken over with a warning', async () => {
  // The store, bundled for a plain node child process: two real processes on one directory.
  const bundle = join(dir, '..', 'store.mjs');
  buildSync({
    entryPoints: [fileURLToPath(new URL('./approval-store.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: bundle,
    logLevel: 'silent',
  });
  const script = `import { openApprovalStore } from ${JSON.stringify(bundle)};
const log = { warn: () => {}, info: () => {}, debug: () => {}, error: () => {} };
await openApprovalStore(${JSON.stringify(dir)}, { log });
process.stdout.write('open\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => b.toString().includes('open') && resolve());
      child.once('exit', (code) => reject(new Error(`the child exited (${code})`)));
    });
    await expect(openApprovalStore(dir, { log: log() })).rejects.toThrow(
      new RegExp(`approvals\\.lock is held by process ${child.pid} .*another sidecar uses this state directory`),
    );
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  const s = await openApprovalStore(dir, { log: log() });
  expect(lines.some((l) => l.includes('taking over a stale lock') && l.includes(`process ${child.pid} is not running`))).toBe(true);
  // Released at close: the next open takes it without a warning.
  await s.close();
  lines = [];
  const again = await openApprovalStore(dir, { log: log() });
  expect(lines.some((l) => l.includes('stale lock'))).toBe(false);
  await again.close();
});

test('a new state directory is made durable (its parent fsync-ed) before the lock and the journal go in it', async () => {
  const synced: string[] = [];
  const io: JournalIo = {
    ...nodeJournalIo,
    async syncDir(d) {
      synced.push(d);
      await nodeJournalIo.syncDir(d);
    },
  };
  const s = await openApprovalStore(dir, { log: log(), io });
  expect(synced[0]).toBe(join(dir, '..'));
  await s.close();
});

test('an A2A approval (held: cancelled on restart, never run) is recorded with its protocol and target and read back the same', async () => {
  const a2a = pending('tgh-a2a', {
    method: 'SendMessage',
    protocol: 'a2a',
    // Read back for the Slack outcome message, which names the tenant, version and binding again.
    target: { tenant: 'acme-eu', version: '1.0', binding: 'rest' },
    tool: 'refund',
    arguments: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'refund 42' }] } },
    mcpSessionId: undefined,
  });
  delete a2a.mcpSessionId;
  const s = await openApprovalStore(dir, { log: log() });
  await s.put(a2a, 'C0APPROVE');
  await s.close();
  const again = await openApprovalStore(dir, { log: log() });
  expect(again.takeLoaded().map((x) => x.pending)).toEqual([a2a]);
  await again.close();
});

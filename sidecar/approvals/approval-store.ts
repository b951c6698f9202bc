// The standalone backend's durable record of its approvals (docs/approvals.md, "Standalone
// approvals survive a restart"): a journal (lib/journal.ts) of small facts about each approval,
// each written and fsync'd before the action it protects:
//   put       the pending approval, whole (call, arguments, hash, client, task id, expiry, channel)
//             before it is queued for Slack;
//   posting   before chat.postMessage (a restart that finds it without `posted` looks for the
//             message before posting again: never a second message without knowing);
//   posted    the message's ts;
//   vote      one approver's click (Slack buttons), before its Socket Mode envelope is acked: the
//             first vote of a two-person approval survives a restart;
//   decided   an approval (the decision is final; other outcomes end the approval);
//   executing before the approved call runs: the at-most-once mark;
//   end       the approval is over (finished, rejected, expired, cancelled, failed).
// The live set is folded from them (pure: foldRecords); ended approvals are compacted away, at
// every start and when the file holds more dead bytes than live ones.
// Bounded: at most maxApprovals live approvals and maxBytes of their records; beyond, put() refuses.
// One process per directory: approvals.lock (lib/dir-lock.ts) is taken before the journal is read.
// An `end` is kept as a tombstone (the approval's records stay) until it is durable. Nothing here
// is trusted to run a call on its own: standalone.ts reads an adopted approval again from Slack.
import { join } from 'node:path';
import { z } from 'zod';
import { lockDir, type DirLock } from '../../lib/dir-lock.js';
import { Journal, JournalCorruptError, encodeRecord, preparePrivateDir, type JournalIo } from '../../lib/journal.js';
import type { Logger } from '../../lib/log.js';
import { storeError, type ApprovalStoreStatus, type Decision, type PendingApproval, type StoreFailure } from './backend.js';

export const STORE_FILE = 'approvals.journal';
/** Held while a sidecar uses the directory (lib/dir-lock.ts). */
export const LOCK_FILE = 'approvals.lock';
export const STORE_VERSION = 1;
export const DEFAULT_MAX_APPROVALS = 10_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Dead bytes tolerated before a compaction (besides as many as live ones). */
const COMPACT_SLACK_BYTES = 64 * 1024;

const IsoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO date');

const StoredApprovalSchema = z.strictObject({
  id: z.string().min(1),
  channel: z.string(),
  /** The Slack channel id it is (or will be) posted to, to tell when the configuration moved it. */
  slackChannel: z.string(),
  workload: z.strictObject({ namespace: z.string(), serviceAccount: z.string(), pod: z.string() }),
  source: z.string(),
  method: z.string(),
  protocol: z.literal('a2a').optional(),
  target: z.strictObject({ tenant: z.string(), version: z.enum(['0.3', '1.0']), binding: z.enum(['jsonrpc', 'rest']) }).optional(),
  tool: z.string(),
  // Checked, never rebuilt: z.record would copy it and drop an argument named `__proto__` (the
  // approver saw it; the hash check would then refuse the call).
  arguments: z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'an object'),
  requestHash: z.string(),
  reason: z.string(),
  mcpSessionId: z.string().optional(),
  client: z.string().optional(),
  createdAt: IsoDate,
  expiresAt: IsoDate,
  traceparent: z.string().optional(),
});

const DecisionSchema = z.strictObject({
  outcome: z.literal('approved'),
  by: z.array(z.strictObject({ id: z.string(), name: z.string().optional() })).optional(),
  at: IsoDate,
  message: z.string(),
});

const VoteSchema = z.strictObject({
  /** Slack user id. */
  user: z.string().min(1),
  action: z.enum(['approve', 'reject']),
  reason: z.string().optional(),
  at: IsoDate,
});
export type StoredVote = z.infer<typeof VoteSchema>;

const RecordSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('header'), v: z.number() }),
  z.strictObject({ op: z.literal('put'), approval: StoredApprovalSchema }),
  z.strictObject({ op: z.literal('posting'), id: z.string(), at: IsoDate }),
  z.strictObject({ op: z.literal('posted'), id: z.string(), ts: z.string() }),
  z.strictObject({ op: z.literal('vote'), id: z.string(), vote: VoteSchema }),
  z.strictObject({ op: z.literal('decided'), id: z.string(), decision: DecisionSchema }),
  z.strictObject({ op: z.literal('executing'), id: z.string(), at: IsoDate }),
  z.strictObject({ op: z.literal('end'), id: z.string() }),
]);
export type StoreRecord = z.infer<typeof RecordSchema>;

/** What the store knows of one live approval. */
export interface StoredApproval {
  pending: PendingApproval;
  slackChannel: string;
  /** chat.postMessage was (or was about to be) called at this time. */
  postingAt?: Date;
  /** The message's ts, once posted. */
  ts?: string;
  /** Approvers' clicks so far, one per (user, action), in the order recorded. */
  votes: StoredVote[];
  /** Approved (the only decision kept: the others end the approval). */
  decision?: Decision;
  /** The at-most-once mark: the call may have run; never run it again. */
  executionStarted: boolean;
}

interface Live {
  /** The record that restores it, rewritten on every change (what compaction writes). */
  records: StoreRecord[];
  bytes: number;
}

// ---------- pure ----------

export function toRecord(p: PendingApproval, slackChannel: string): StoreRecord {
  // `owner` (the fairness key) is not stored: it is derived from source and client again.
  const { owner: _owner, workload, createdAt, expiresAt, ...rest } = p;
  return {
    op: 'put',
    approval: {
      ...rest,
      slackChannel,
      workload: { namespace: workload.namespace, serviceAccount: workload.serviceAccount, pod: workload.pod },
      createdAt: createdAt.toISOString(),
      expiresAt: expiresAt.toISOString(),
    },
  };
}

function fromStored(a: Extract<StoreRecord, { op: 'put' }>['approval']): PendingApproval {
  const { slackChannel: _slackChannel, workload, createdAt, expiresAt, ...rest } = a;
  const p: PendingApproval = { ...rest, workload: { ...workload }, createdAt: new Date(createdAt), expiresAt: new Date(expiresAt) };
  if (a.client !== undefined) p.owner = `${a.source}\u0000${a.client}`;
  return p;
}

/**
 * The live approvals the records leave, in order of their `put`. Records about an approval that
 * is not live (ended, or never put) change nothing: replaying a record twice is harmless.
 */
export function foldRecords(records: readonly StoreRecord[]): Map<string, StoredApproval> {
  const live = new Map<string, StoredApproval>();
  for (const r of records) {
    if (r.op === 'header') continue;
    if (r.op === 'put') {
      if (!live.has(r.approval.id))
        live.set(r.approval.id, { pending: fromStored(r.approval), slackChannel: r.approval.slackChannel, votes: [], executionStarted: false });
      continue;
    }
    const a = live.get(r.id);
    if (!a) continue;
    switch (r.op) {
      case 'posting':
        a.postingAt = new Date(r.at);
        break;
      case 'posted':
        a.ts = r.ts;
        break;
      case 'vote':
        // A repeat (a redelivered click recorded twice) changes nothing.
        if (!a.votes.some((v) => v.user === r.vote.user && v.action === r.vote.action)) a.votes.push(r.vote);
        break;
      case 'decided': {
        const d: Decision = { id: r.id, outcome: 'approved', at: new Date(r.decision.at), message: r.decision.message };
        if (r.decision.by) d.by = r.decision.by.map((b) => (b.name !== undefined ? { id: b.id, name: b.name } : { id: b.id }));
        a.decision = d;
        break;
      }
      case 'executing':
        a.executionStarted = true;
        break;
      case 'end':
        live.delete(r.id);
        break;
    }
  }
  return live;
}

/** The records of a journal as read, validated; throws on anything this version does not understand. */
export function readRecords(raw: readonly unknown[], file: string): StoreRecord[] {
  const out: StoreRecord[] = [];
  raw.forEach((v, i) => {
    const r = RecordSchema.safeParse(v);
    if (!r.success)
      throw new JournalCorruptError(
        `${file}: record ${i + 1} is not an approval record: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`,
      );
    if (r.data.op === 'header' && r.data.v !== STORE_VERSION)
      throw new JournalCorruptError(`${file}: written by another version of the approval store (format ${r.data.v}; this one reads ${STORE_VERSION})`);
    out.push(r.data);
  });
  if (out.length > 0 && out[0]!.op !== 'header') throw new JournalCorruptError(`${file}: does not start with the approval store's header record`);
  return out;
}

// ---------- the shell ----------

export interface ApprovalStore {
  readonly file: string;
  /** How many live approvals the store found when it was opened. */
  readonly found: number;
  /** The live approvals found when the store was opened (for adopt()); handed out once, then not kept. */
  takeLoaded(): StoredApproval[];
  has(id: string): boolean;
  /** Live approvals and the bytes of their records, with their bounds. */
  stats(): { approvals: number; bytes: number; fileBytes: number; maxApprovals: number; maxBytes: number };
  /** Why the store refuses every write (its journal can no longer be written durably), or null. */
  failure(): Error | null;
  /** stats(), failure() and the writes refused so far, by why (for metrics and /ready). */
  status(): ApprovalStoreStatus;
  /** Records a new pending approval; refuses (rejects) beyond the bounds or when it cannot be written. */
  put(p: PendingApproval, slackChannel: string): Promise<void>;
  posting(id: string, at: Date): Promise<void>;
  posted(id: string, ts: string): Promise<void>;
  /** An approver's click; resolves once durable (then the click may be acknowledged to Slack). */
  vote(id: string, v: StoredVote): Promise<void>;
  decided(id: string, d: Decision): Promise<void>;
  /** The at-most-once mark: resolves once durable; rejects for an approval the store does not hold. */
  executing(id: string, at: Date): Promise<void>;
  end(id: string): Promise<void>;
  close(): Promise<void>;
}

export interface ApprovalStoreOptions {
  log: Logger;
  io?: JournalIo;
  maxApprovals?: number;
  maxBytes?: number;
  /** Tests: no directory lock (several stores in one process on purpose). */
  noLock?: boolean;
}

/** The store's error for a full store (a clear refusal of the new approval). */
export class ApprovalStoreFullError extends Error {
  override readonly name = 'ApprovalStoreFullError';
  readonly storeFailure = 'full' as const;
}

/**
 * Opens (or creates) `<dir>/approvals.journal`. A torn last record is dropped with a warning; any
 * other damage rejects with JournalCorruptError (the sidecar then refuses to start). The file is
 * compacted at once: only live approvals are kept.
 */
export async function openApprovalStore(dir: string, o: ApprovalStoreOptions): Promise<ApprovalStore> {
  const file = join(dir, STORE_FILE);
  const maxApprovals = o.maxApprovals ?? DEFAULT_MAX_APPROVALS;
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
  const live = new Map<string, Live>();
  let liveBytes = 0;
  const snapshot = (): StoreRecord[] => [{ op: 'header', v: STORE_VERSION }, ...[...live.values()].flatMap((l) => l.records)];

  // Before anything is read: a second sidecar on the same directory would run calls the first one
  // runs, and each would compact the other's records away.
  let lock: DirLock | undefined;
  if (!o.noLock) {
    await preparePrivateDir(dir, o.io, (message) => o.log.warn('approval store', { message }));
    lock = await lockDir(join(dir, LOCK_FILE), (message) => o.log.warn('approval store', { message }));
  }
  let opened: Awaited<ReturnType<typeof Journal.open>>;
  try {
    opened = await Journal.open(file, {
      ...(o.io ? { io: o.io } : {}),
      onWarning: (message) => o.log.warn('approval store', { message }),
      onTornTail: (t) =>
        o.log.warn('approval store: the last record was cut short by a crash while it was written, and is ignored (it was never acknowledged)', {
          file: t.file,
          offset: t.offset,
          bytes: t.bytes,
          why: t.why,
        }),
      compact: (fileBytes) => (fileBytes - liveBytes > Math.max(liveBytes, COMPACT_SLACK_BYTES) ? snapshot() : null),
    });
  } catch (err) {
    await lock?.release();
    throw err;
  }
  const { journal, records: raw } = opened;
  let folded: Map<string, StoredApproval>;
  try {
    folded = foldRecords(readRecords(raw, file));
  } catch (err) {
    await journal.close();
    await lock?.release();
    throw err;
  }

  const track = (id: string, r: StoreRecord): void => {
    const l = live.get(id);
    if (!l) return;
    const bytes = encodeRecord(r).length;
    l.records.push(r);
    l.bytes += bytes;
    liveBytes += bytes;
  };
  for (const [id, a] of folded) {
    const p = a.pending;
    live.set(id, { records: [], bytes: 0 });
    track(id, toRecord(p, a.slackChannel));
    if (a.postingAt) track(id, { op: 'posting', id, at: a.postingAt.toISOString() });
    if (a.ts !== undefined) track(id, { op: 'posted', id, ts: a.ts });
    for (const v of a.votes) track(id, { op: 'vote', id, vote: v });
    if (a.decision) track(id, { op: 'decided', id, decision: decisionRecord(a.decision) });
    if (a.executionStarted) track(id, { op: 'executing', id, at: new Date().toISOString() });
  }
  // Ended approvals and the torn tail go now; the file then starts with this version's header.
  // A compaction that fails (a full disk) leaves the old file, still valid: a warning, not a
  // refusal to start (which would repeat at every restart). Only a journal left unwritable is.
  await journal.rewrite(snapshot).catch(async (err: unknown) => {
    if (journal.failure) {
      await journal.close();
      await lock?.release();
      throw err;
    }
    o.log.warn('approval store: compaction at start failed; the file is kept as it is', { file, error: (err as Error).message });
  });
  /** Ended, their `end` record not yet durable: kept (and their records with them) until it is. */
  const tombstones = new Set<string>();
  const flushTombstones = (): void => {
    for (const id of tombstones) void endDurably(id).catch(() => undefined);
  };
  const endDurably = async (id: string): Promise<void> => {
    tombstones.add(id);
    await append({ op: 'end', id } satisfies StoreRecord);
    if (tombstones.delete(id)) forget(id);
  };

  const failures: Record<StoreFailure, number> = { full: 0, broken: 0, io: 0 };
  /** Every write goes through here: a failure is counted by why. */
  const append = (r: StoreRecord): Promise<void> =>
    journal.append(r).catch((err: unknown) => {
      const why = journal.failure ? 'broken' : 'io';
      failures[why]++;
      throw storeError(err instanceof Error ? err : new Error(String(err)), why);
    });
  const write = (id: string, r: StoreRecord): Promise<void> => {
    track(id, r);
    // An `end` that could not be written before is tried again with this record.
    if (tombstones.size > 0) flushTombstones();
    return append(r);
  };

  return {
    file,
    found: folded.size,
    takeLoaded() {
      const out = [...folded.values()];
      folded.clear();
      return out;
    },
    has: (id) => live.has(id) && !tombstones.has(id),
    stats: () => ({ approvals: live.size - tombstones.size, bytes: liveBytes, fileBytes: journal.size, maxApprovals, maxBytes }),
    failure: () => journal.failure,
    status: () => ({
      approvals: live.size - tombstones.size,
      maxApprovals,
      bytes: liveBytes,
      maxBytes,
      fileBytes: journal.size,
      failure: journal.failure?.message ?? null,
      writeFailures: { ...failures },
    }),

    async put(p, slackChannel) {
      if (live.has(p.id)) throw new Error(`approval store ${file}: approval ${p.id} is already recorded`);
      const r = toRecord(p, slackChannel);
      const bytes = encodeRecord(r).length;
      if (live.size >= maxApprovals || liveBytes + bytes > maxBytes) failures.full++;
      if (live.size >= maxApprovals)
        throw new ApprovalStoreFullError(
          `the approval store ${file} already holds ${live.size} approvals, the most it keeps (${maxApprovals}); retry after some are decided`,
        );
      if (liveBytes + bytes > maxBytes)
        throw new ApprovalStoreFullError(
          `the approval store ${file} already holds ${liveBytes} bytes of approvals; this one (${bytes} bytes) would pass its bound of ${maxBytes}; retry after some are decided`,
        );
      live.set(p.id, { records: [], bytes: 0 });
      try {
        await write(p.id, r);
      } catch (err) {
        forget(p.id);
        throw err;
      }
    },
    posting: (id, at) => write(id, { op: 'posting', id, at: at.toISOString() }),
    posted: (id, ts) => write(id, { op: 'posted', id, ts }),
    async vote(id, v) {
      if (!live.has(id)) throw new Error(`approval store ${file}: approval ${id} is not recorded, so a vote on it cannot be`);
      await write(id, { op: 'vote', id, vote: v });
    },
    decided: (id, d) => write(id, { op: 'decided', id, decision: decisionRecord(d) }),
    async executing(id, at) {
      if (!live.has(id)) throw new Error(`approval store ${file}: approval ${id} is not recorded, so its execution cannot be marked`);
      await write(id, { op: 'executing', id, at: at.toISOString() });
    },
    async end(id) {
      // Forgotten only once the record is durable: until then a compaction keeps the approval's
      // records (a crash must not find it without its end, nor the end without it matter).
      if (!live.has(id) || tombstones.has(id)) return;
      await endDurably(id);
    },
    async close() {
      await journal.close();
      await lock?.release();
    },
  };

  function forget(id: string): void {
    const l = live.get(id);
    if (!l) return;
    liveBytes -= l.bytes;
    live.delete(id);
  }
}

function decisionRecord(d: Decision): Extract<StoreRecord, { op: 'decided' }>['decision'] {
  return {
    outcome: 'approved',
    ...(d.by ? { by: d.by.map((b) => (b.name !== undefined ? { id: b.id, name: b.name } : { id: b.id })) } : {}),
    at: d.at.toISOString(),
    message: d.message,
  };
}

// Cross-client task isolation for A2A sources (issue 13, DESIGN §1.8, §2.10).
//
// An A2A agent scopes tasks by its own users, and behind the sidecar every client is the one user
// the source's configured credential makes: without this, any client could read, cancel, subscribe
// to, add a webhook to, continue or list another client's task (captures/isolation-sdk-server-*).
// So the sidecar keeps who created each task and context it saw created, and answers a call naming
// a task of someone else exactly as the agent answers an unknown task (-32001 / 404 "Task not
// found: <id>"). An id the table does not hold (never seen, expired, the sidecar restarted) gets
// the same answer: fail closed, and nothing to tell "someone else's" from "no such task" apart.
//
// The handler (sidecar/a2a/handler.ts) calls, per request:
//   owner = a2aOwner(source, req.headers)             — the client's own headers, before the source's are added
//   ownerCheck(table, source, owner, facts)           — null, or the refusal to answer locally
//   admit(table, source, owner, facts)                — before forwarding a Send*: null, or a refusal (rate, too many clients)
//   scanAnswer(table, source, owner, {binding, sse})  — a Transform for the answer of a Send* (learns its ids)
//   filterTaskList(table, source, owner, answer)      — ListTasks: the answer with only the caller's tasks
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { A2aBinding } from '../../policy/gates/a2a-methods.js';
import { A2A_MAX_ID_BYTES } from '../../policy/gates/a2a-operation.js';
import type { A2aFacts } from '../../policy/gates/operation.js';
import { ownerOf } from '../approvals/runtime.js';
import { type A2aRestError, type A2aVersionName, a2aJsonRpcError, a2aRestError } from '../../api/a2a-errors.js';
import type { JsonRpcError } from '../../lib/jsonrpc-reply.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import { SseParser } from '../sse.js';
import { TASK_OWNER_DEFAULTS, type TaskOwnerBounds } from './task-bounds.js';
import { type IdKind, IdTooLongError, idsOf, JsonIdScanner } from './task-ids.js';

/**
 * Who a client is on an A2A source: the approvals' owner key (runtime.ts ownerOf: a hash of the
 * client's Authorization, else "anonymous"), from the client's own headers. Only Authorization is
 * read: A2A has no session header, and an `Mcp-Session-Id` a client chooses itself must not make
 * it the owner of another client's tasks.
 */
export function a2aOwner(source: string, headers: IncomingHttpHeaders): string {
  const auth = headers['authorization'];
  return ownerOf(source, auth === undefined ? {} : { authorization: auth }).client;
}

export { TASK_OWNER_DEFAULTS, type TaskOwnerBounds, taskOwnerBounds } from './task-bounds.js';

export type TaskOwnerRefusal = 'not_owner' | 'rate' | 'owners';
export type TaskOwnerEviction = 'owner_bound' | 'table_full';

export interface TaskOwnerMetrics {
  /** A call refused: it named a task or context the caller does not own (or unknown); too many new tasks; no room for another client. */
  refused(source: string, reason: TaskOwnerRefusal): void;
  /** An id dropped before its ttl: its owner's own bound, or the whole table full (taken from the client holding most). */
  evicted(source: string, reason: TaskOwnerEviction): void;
  entries(n: number): void;
}

/**
 * What the table tells a journal (sidecar/a2a/task-store.ts) to replay it after a restart:
 * `set` an id's owner and expiry (created or used again), `drop` an id (evicted), `tomb` a context
 * id refused for everyone until `until`. Times are wall-clock milliseconds.
 */
export type OwnerRecord =
  | { op: 'set'; s: string; o: string; k: IdKind; id: string; e: number }
  | { op: 'drop'; s: string; k: IdKind; id: string }
  | { op: 'tomb'; s: string; id: string; until: number; o?: string };

export interface TaskOwnersOptions extends Partial<TaskOwnerBounds> {
  now?: () => number;
  metrics?: TaskOwnerMetrics;
  /** Told every change, in order (--state-dir: the journal). */
  record?: (r: OwnerRecord) => void;
}

/**
 * One id. Linked twice, oldest first: in the table's list (expiry order: the sweep reads its front)
 * and in its owner's (eviction order). Intrusive lists rather than Map/Set order: removing from the
 * front of a Map leaves holes its next iteration walks again (V8 compacts only on resize), which
 * made each eviction under a flood cost tens of microseconds.
 */
interface Entry {
  /** source NUL kind NUL id (the id is read back from it: a second string per id would cost ~60 bytes). */
  key: string;
  group: OwnerGroup;
  kind: IdKind;
  expires: number;
  prev: Entry | null;
  next: Entry | null;
  gprev: Entry | null;
  gnext: Entry | null;
}

interface OwnerGroup {
  source: string;
  owner: string;
  /** Its ids, oldest (least recently used) first. */
  head: Entry | null;
  tail: Entry | null;
  count: number;
  bucket: TokenBucket;
  /** Last admit or learn: an empty group idle for a while gives its place to another client. */
  touched: number;
}

/** A context id refused for everyone until `until`; listed oldest first, in the table's list and its former owner's. */
interface Tomb {
  key: string;
  until: number;
  holder: TombHolder;
  prev: Tomb | null;
  next: Tomb | null;
  hprev: Tomb | null;
  hnext: Tomb | null;
}

/** The tombstones of one former owner (per source), oldest first: when too many, the one holding most loses its oldest. */
interface TombHolder {
  key: string;
  owner: string;
  count: number;
  head: Tomb | null;
  tail: Tomb | null;
}

export type Learned = 'recorded' | 'known' | 'foreign' | 'full';

/** Thrown into the answer's stream when an id cannot be recorded: its bytes must not reach the client. */
export class TaskTableFullError extends Error {
  constructor(readonly source: string) {
    super(`the A2A task owner table has no room for another client (source ${source}): the answer naming a new task was cut`);
  }
}

/** An empty owner group younger than this keeps its place (a Send admitted, its answer not read yet). */
const EMPTY_GROUP_GRACE_MS = 60_000;

/**
 * id → owner, per source and kind, bounded and expiring. A new id never refuses for room: a client
 * at its own bound loses its own oldest id; when the table is full the client holding the most ids
 * loses its oldest, so a flood (one client, or many it makes up) evicts only itself, never a client
 * of modest use. What bounds the number of clients is a refusal of a new client's Send (admit).
 * Ids used again move to the back (list order is expiry order while the ttl is unchanged).
 * A context id that expires or is evicted becomes a tombstone (refused for everyone, bounded):
 * an unknown context is one a client may start, so a forgotten one must not be taken over.
 */
export class TaskOwners {
  private readonly map = new Map<string, Entry>();
  private head: Entry | null = null;
  private tail: Entry | null = null;
  private readonly groups = new Map<string, OwnerGroup>();
  /** Owner groups per source (maxOwners bounds each source's). */
  private readonly ownersPerSource = new Map<string, number>();
  private readonly tombs = new Map<string, Tomb>();
  private tombHead: Tomb | null = null;
  private tombTail: Tomb | null = null;
  private readonly tombHolders = new Map<string, TombHolder>();
  /** Holders by their count of tombstones (the fullest found at once, whatever their number). */
  private readonly holdersByCount = new Map<number, Set<TombHolder>>();
  private maxHeld = 0;
  private b: TaskOwnerBounds;
  private readonly now: () => number;
  readonly metrics: TaskOwnerMetrics | undefined;
  private readonly record: ((r: OwnerRecord) => void) | undefined;

  constructor(o: TaskOwnersOptions = {}) {
    const { now, metrics, record, ...bounds } = o;
    this.b = { ...TASK_OWNER_DEFAULTS, ...bounds };
    this.now = now ?? Date.now;
    this.metrics = metrics;
    this.record = record;
  }

  get bounds(): Readonly<TaskOwnerBounds> {
    return this.b;
  }

  /** New bounds (a configuration reload); a lower bound evicts down to it at once. */
  configure(bounds: Partial<TaskOwnerBounds>): void {
    const rateChanged = bounds.rate && (bounds.rate.perMinute !== this.b.rate.perMinute || bounds.rate.burst !== this.b.rate.burst);
    this.b = { ...this.b, ...bounds };
    const now = this.now();
    // A new rate keeps what each client has left (capped at the new burst): a reload must not refill a flooder's bucket.
    if (rateChanged) for (const g of this.groups.values()) g.bucket = new TokenBucket(this.b.rate, now, g.bucket.available(now));
    // Expired ids go first (as expiries, tombstones included), so a lower bound evicts only live ones it must.
    this.sweep();
    for (const g of this.groups.values()) while (g.count > this.b.maxPerOwner) this.evictOldest(g, 'owner_bound');
    while (this.map.size > this.b.maxEntries) this.evictOldest(this.largest()!, 'table_full');
    while (this.tombs.size > this.b.maxTombstones) this.dropTomb(this.fullestHolder().head!);
  }

  get size(): number {
    return this.map.size;
  }

  get owners(): number {
    return this.groups.size;
  }

  get tombstones(): number {
    return this.tombs.size;
  }

  /** The owner of an id, or undefined when unknown or expired. */
  ownerOf(source: string, kind: IdKind, id: string): string | undefined {
    const e = this.map.get(key(source, kind, id));
    return e && e.expires > this.now() ? e.group.owner : undefined;
  }

  /** A context id nobody may name: it expired or was evicted (a tombstone), or is expired and not yet swept. */
  closed(source: string, id: string): boolean {
    const k = key(source, 'context', id);
    const now = this.now();
    const e = this.map.get(k);
    if (e) return e.expires <= now;
    const t = this.tombs.get(k);
    return t !== undefined && t.until > now;
  }

  /** The owner used an id it owns: it stays reachable for another ttl. */
  touch(source: string, owner: string, kind: IdKind, id: string): void {
    const e = this.map.get(key(source, kind, id));
    if (e && e.group.owner === owner && e.expires > this.now()) this.refresh(e);
  }

  /**
   * Before a Send that may create a task: `owner` gets a place in the table (or 'owners': none is
   * free) and one token of its rate (or 'rate', with the time to wait).
   */
  admit(source: string, owner: string): { refused: 'owners' } | { refused: 'rate'; retryAfterMs: number } | null {
    const now = this.now();
    const g = this.group(source, owner, now);
    if (!g) return { refused: 'owners' };
    g.touched = now;
    if (g.bucket.tryTake(now)) return null;
    return { refused: 'rate', retryAfterMs: Math.max(1, g.bucket.readyAt(now) - now) };
  }

  /** Records `owner` for an id the agent named in its answer to that owner. The first owner stays. */
  learn(source: string, owner: string, kind: IdKind, id: string): Learned {
    const k = key(source, kind, id);
    const now = this.now();
    const e = this.map.get(k);
    if (e && e.expires > now) {
      if (e.group.owner !== owner) return 'foreign';
      this.refresh(e);
      return 'known';
    }
    this.sweep();
    if (kind === 'context' && this.closed(source, id)) return 'foreign';
    // Expired but not swept yet (behind a live id after a lower ttl): gone before the key is reused.
    const stale = this.map.get(k);
    if (stale) this.drop(stale);
    const g = this.group(source, owner, now);
    if (!g) return 'full';
    g.touched = now;
    this.insert(k, g, kind, id, now + this.b.ttlMs);
    return 'recorded';
  }

  /** Replays a journal's records (a restart): expired ids and tombstones are left out, bounds apply. */
  restore(records: Iterable<OwnerRecord>): void {
    const now = this.now();
    for (const r of records) {
      const k = key(r.s, r.op === 'tomb' ? 'context' : r.k, r.id);
      const e = this.map.get(k);
      if (r.op !== 'set' || r.e <= now) {
        this.replayGone(k, e, r);
        continue;
      }
      if (e && e.group.owner !== r.o) continue; // the first owner stays, as when it was learnt
      const g = e?.group ?? this.group(r.s, r.o, now) ?? (this.dropEmptyGroups() ? this.group(r.s, r.o, now) : null);
      if (!g) {
        // No place for its owner (a lower maxOwners): a context nobody owns must not be open to anyone.
        if (r.k === 'context') this.tomb(k, r.e + this.b.contextTombstoneMs, r.s, r.o, false);
        continue;
      }
      if (e) this.drop(e);
      this.insert(k, g, r.k, r.id, r.e, false);
    }
    // Owners whose ids were all dropped in the replay hold no place (nobody is waiting for an answer yet).
    this.dropEmptyGroups();
  }

  /** A replayed record saying an id is gone (dropped, a tombstone, expired): an expired context is a tombstone, as the sweep makes it. */
  private replayGone(k: string, e: Entry | undefined, r: OwnerRecord): void {
    if (e) this.drop(e);
    if (r.op === 'tomb') this.tomb(k, r.until, r.s, r.o ?? '', false);
    else if (r.op === 'set' && r.k === 'context') this.tomb(k, r.e + this.b.contextTombstoneMs, r.s, r.o, false);
  }

  /** Forgets every owner group holding no id; whether any was. */
  private dropEmptyGroups(): boolean {
    const before = this.groups.size;
    for (const g of this.groups.values()) if (g.count === 0) this.forgetGroup(g);
    return this.groups.size < before;
  }

  /**
   * The live state as records (compaction): the tombstones, then every id oldest first. A tombstone
   * already expired (waiting behind a longer one) is left out: replayed after an id of the same
   * context, it would drop that id.
   */
  records(): OwnerRecord[] {
    const out: OwnerRecord[] = [];
    const now = this.now();
    for (let t = this.tombHead; t; t = t.next)
      if (t.until > now && !this.map.has(t.key)) out.push({ op: 'tomb', ...contextOfKey(t.key), until: t.until, o: t.holder.owner });
    for (let e = this.head; e; e = e.next) out.push({ op: 'set', s: e.group.source, o: e.group.owner, k: e.kind, id: idOfKey(e), e: e.expires });
    return out;
  }

  private insert(k: string, g: OwnerGroup, kind: IdKind, id: string, expires: number, record = true): void {
    while (g.count >= this.b.maxPerOwner) this.evictOldest(g, 'owner_bound');
    while (this.map.size >= this.b.maxEntries) this.evictOldest(this.largest()!, 'table_full');
    // A tombstone of this context is an expired one (learn checks closed(); a replay reads a later set): gone, not left stale.
    const t = kind === 'context' ? this.tombs.get(k) : undefined;
    if (t) this.dropTomb(t);
    const e: Entry = { key: k, group: g, kind, expires, prev: null, next: null, gprev: null, gnext: null };
    this.map.set(k, e);
    this.link(e);
    if (record) this.record?.({ op: 'set', s: g.source, o: g.owner, k: kind, id, e: expires });
    this.metrics?.entries(this.map.size);
  }

  /** Moves a used id to the back of both lists with a new expiry (the sweep reads expiry order). */
  private refresh(e: Entry): void {
    const expires = this.now() + this.b.ttlMs;
    // A journal write per use would be a write per poll: only once a tenth of the ttl has passed.
    const worth = expires - e.expires >= this.b.ttlMs / 10;
    e.expires = expires;
    this.unlink(e);
    this.link(e);
    if (worth) this.record?.({ op: 'set', s: e.group.source, o: e.group.owner, k: e.kind, id: idOfKey(e), e: expires });
  }

  private link(e: Entry): void {
    e.prev = this.tail;
    e.next = null;
    if (this.tail) this.tail.next = e;
    else this.head = e;
    this.tail = e;
    const g = e.group;
    e.gprev = g.tail;
    e.gnext = null;
    if (g.tail) g.tail.gnext = e;
    else g.head = e;
    g.tail = e;
    g.count++;
  }

  private unlink(e: Entry): void {
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    const g = e.group;
    if (e.gprev) e.gprev.gnext = e.gnext;
    else g.head = e.gnext;
    if (e.gnext) e.gnext.gprev = e.gprev;
    else g.tail = e.gprev;
    g.count--;
    e.prev = e.next = e.gprev = e.gnext = null;
  }

  /** The owner group, made when missing if there is a place for it (an idle empty one gives its place). */
  private group(source: string, owner: string, now: number): OwnerGroup | null {
    const gk = ownerKey(source, owner);
    const found = this.groups.get(gk);
    if (found) return found;
    // maxOwners is per source: a flood of made-up clients on one source never takes another's places.
    const full = () => (this.ownersPerSource.get(source) ?? 0) >= this.b.maxOwners;
    if (full()) {
      this.sweep();
      for (const g of this.groups.values()) {
        if (!full()) break;
        if (g.source === source && g.count === 0 && now - g.touched >= EMPTY_GROUP_GRACE_MS) this.forgetGroup(g);
      }
      if (full()) return null;
    }
    const g: OwnerGroup = { source, owner, head: null, tail: null, count: 0, bucket: new TokenBucket(this.b.rate, now), touched: now };
    this.groups.set(gk, g);
    this.ownersPerSource.set(source, (this.ownersPerSource.get(source) ?? 0) + 1);
    return g;
  }

  private forgetGroup(g: OwnerGroup): void {
    this.groups.delete(ownerKey(g.source, g.owner));
    const n = (this.ownersPerSource.get(g.source) ?? 1) - 1;
    if (n === 0) this.ownersPerSource.delete(g.source);
    else this.ownersPerSource.set(g.source, n);
  }

  /** The group holding the most ids (ties: the first made). At most maxOwners groups to compare. */
  private largest(): OwnerGroup | undefined {
    let best: OwnerGroup | undefined;
    for (const g of this.groups.values()) if (!best || g.count > best.count) best = g;
    return best;
  }

  private evictOldest(g: OwnerGroup, reason: TaskOwnerEviction): void {
    const e = g.head!;
    this.drop(e);
    this.metrics?.evicted(g.source, reason);
    if (e.kind === 'context') this.tomb(e.key, this.now() + this.b.contextTombstoneMs, g.source, g.owner);
    else this.record?.({ op: 'drop', s: g.source, k: e.kind, id: idOfKey(e) });
  }

  /**
   * Drops expired ids, oldest first (list order is expiry order: one ttl for all; after a reload
   * lowers it, younger ids may expire first and wait behind older ones: unreachable all the same,
   * and within maxEntries). Expired contexts become tombstones.
   */
  private sweep(): void {
    const now = this.now();
    while (this.head && this.head.expires <= now) {
      const e = this.head;
      this.drop(e);
      // Not journaled: a replay drops it by its expiry, and makes the tombstone from it.
      if (e.kind === 'context') this.tomb(e.key, e.expires + this.b.contextTombstoneMs, e.group.source, e.group.owner, false);
    }
    while (this.tombHead && this.tombHead.until <= now) this.dropTomb(this.tombHead);
  }

  /**
   * Refuses context `k` for everyone until `until`, kept under its former `owner`. Beyond
   * maxTombstones the owner holding the most loses its oldest: a flood of its own evicted contexts
   * pushes out only its own, never another client's few.
   */
  private tomb(k: string, until: number, source: string, owner: string, record = true): void {
    const old = this.tombs.get(k);
    if (old) this.dropTomb(old);
    if (until <= this.now()) return; // a context that expired long before the sweep reached it: no tombstone already over
    const hk = ownerKey(source, owner);
    let h = this.tombHolders.get(hk);
    if (!h) {
      h = { key: hk, owner, count: 0, head: null, tail: null };
      this.tombHolders.set(hk, h);
    }
    const t: Tomb = { key: k, until, holder: h, prev: this.tombTail, next: null, hprev: h.tail, hnext: null };
    if (this.tombTail) this.tombTail.next = t;
    else this.tombHead = t;
    this.tombTail = t;
    if (h.tail) h.tail.hnext = t;
    else h.head = t;
    h.tail = t;
    this.recount(h, h.count + 1);
    this.tombs.set(k, t);
    while (this.tombs.size > this.b.maxTombstones) this.dropTomb(this.fullestHolder().head!);
    if (record) this.record?.({ op: 'tomb', ...contextOfKey(k), until, o: owner });
  }

  private dropTomb(t: Tomb): void {
    this.tombs.delete(t.key);
    if (t.prev) t.prev.next = t.next;
    else this.tombHead = t.next;
    if (t.next) t.next.prev = t.prev;
    else this.tombTail = t.prev;
    const h = t.holder;
    if (t.hprev) t.hprev.hnext = t.hnext;
    else h.head = t.hnext;
    if (t.hnext) t.hnext.hprev = t.hprev;
    else h.tail = t.hprev;
    this.recount(h, h.count - 1);
    if (h.count === 0) this.tombHolders.delete(h.key);
  }

  /** Moves a holder to its new count's set (counts move by one, so the highest is found by stepping down). */
  private recount(h: TombHolder, to: number): void {
    const from = this.holdersByCount.get(h.count);
    let set = to === 0 ? undefined : this.holdersByCount.get(to);
    if (from?.size === 1) {
      this.holdersByCount.delete(h.count);
      // Alone at its count (a flood's holder, at every tombstone): its set moves along, no new one made.
      if (to !== 0 && !set) {
        this.holdersByCount.set(to, from);
        set = from;
      } else from.clear();
    } else from?.delete(h);
    h.count = to;
    if (to === 0) return;
    if (!set) {
      set = new Set();
      this.holdersByCount.set(to, set);
    }
    set.add(h);
    if (to > this.maxHeld) this.maxHeld = to;
  }

  /** The holder of the most tombstones (ties: the first to reach that count). Only called with tombstones held. */
  private fullestHolder(): TombHolder {
    while (!this.holdersByCount.has(this.maxHeld)) this.maxHeld--;
    return this.holdersByCount.get(this.maxHeld)!.values().next().value!;
  }

  private drop(e: Entry): void {
    this.map.delete(e.key);
    this.unlink(e);
    this.metrics?.entries(this.map.size);
  }
}

/** Joined, so one flat string: a template literal keeps a tree of concatenated parts per key (measured: 723 bytes per id in all, 219 joined). */
const key = (source: string, kind: IdKind, id: string) => [source, kind, id].join('\u0000');
const ownerKey = (source: string, owner: string) => `${source}\u0000${owner}`;
/** A context key's source and id (a source name holds no NUL; an id may). */
function contextOfKey(k: string): { s: string; id: string } {
  const at = k.indexOf('\u0000');
  return { s: k.slice(0, at), id: k.slice(at + '\u0000context\u0000'.length) };
}

/** An entry's id, from its key (source NUL kind NUL id). */
function idOfKey(e: Entry): string {
  return e.key.slice(e.group.source.length + e.kind.length + 2);
}

/** A call answered locally as the agent answers an unknown task. `message` is the agent's wording. */
export interface TaskNotFound {
  error: 'TASK_NOT_FOUND';
  /** The id named, which the answer repeats (as the agent's does). */
  id: string;
  message: string;
}

const notFound = (id: string): TaskNotFound => ({ error: 'TASK_NOT_FOUND', id, message: `Task not found: ${id}` });

/**
 * Whether `owner` may make this call: every task it names (the call's task id, a continued
 * message's taskId, each referenceTaskIds entry) must be one the table recorded for this owner on
 * this source, and a contextId must not be another owner's (an unknown one is a new context the
 * client starts, and becomes its own from the answer). Pure but for the table read and the metric.
 */
export function ownerCheck(table: TaskOwners, source: string, owner: string, facts: A2aFacts): TaskNotFound | null {
  const named = facts.taskId !== '' ? [facts.taskId, ...facts.referenceTaskIds] : facts.referenceTaskIds;
  for (const id of named) {
    if (table.ownerOf(source, 'task', id) !== owner) return refused(table, source, notFound(id));
  }
  if (facts.contextId !== '') {
    const o = table.ownerOf(source, 'context', facts.contextId);
    // An expired or evicted context is nobody's to start again (a tombstone), its owner's included.
    if (o === undefined ? table.closed(source, facts.contextId) : o !== owner) return refused(table, source, notFound(facts.contextId));
  }
  // In use: the ids stay reachable for another ttl.
  for (const id of named) table.touch(source, owner, 'task', id);
  if (facts.contextId !== '') table.touch(source, owner, 'context', facts.contextId);
  return null;
}

/**
 * The agent's own answer to an unknown task, for the client's binding and version (api/a2a-errors.ts).
 * `sse`: a 0.3 JSON-RPC stream method (tasks/resubscribe, message/stream) — the SDK agents answer
 * those with HTTP 200, `text/event-stream` and one `event: error` event carrying the JSON-RPC error
 * (both SDKs for tasks/resubscribe; the 0.3.14 agent for message/stream), and the 0.3.14 client
 * accepts nothing else on a stream (a JSON body is "Invalid response Content-Type for SSE stream").
 */
export function taskNotFoundAnswer(
  r: TaskNotFound,
  version: A2aVersionName,
  binding: A2aBinding,
  stream = false,
): { binding: 'jsonrpc'; error: JsonRpcError; sse: boolean } | { binding: 'rest'; error: A2aRestError } {
  return binding === 'jsonrpc'
    ? { binding, error: a2aJsonRpcError(version, 'TASK_NOT_FOUND', r.message), sse: stream && version === '0.3' }
    : { binding, error: a2aRestError(version, 'TASK_NOT_FOUND', r.message) };
}

function refused(table: TaskOwners, source: string, r: TaskNotFound): TaskNotFound {
  table.metrics?.refused(source, 'not_owner');
  return r;
}

/**
 * Before forwarding a Send*: whether the client may start a task now. Continuing one of its own
 * tasks (`facts.taskId`, checked by ownerCheck first) is never refused: it adds no id. Otherwise
 * the client needs a place in the table (bounded clients) and a token of its rate; the answer's ids
 * never lack room (the table evicts: TaskOwners).
 */
export function admit(table: TaskOwners, source: string, owner: string, facts?: A2aFacts): { reason: TaskOwnerRefusal; message: string } | null {
  if (facts && facts.taskId !== '' && table.ownerOf(source, 'task', facts.taskId) === owner) return null;
  const r = table.admit(source, owner);
  if (!r) return null;
  table.metrics?.refused(source, r.refused);
  const b = table.bounds;
  return r.refused === 'rate'
    ? {
        reason: 'rate',
        message: `this client starts A2A tasks faster than a2a.tasks.rate allows (${b.rate.burst} at once, then ${b.rate.perMinute} per minute); retry in ${Math.ceil(r.retryAfterMs / 1000)} s (continuing one of its tasks is not limited)`,
      }
    : {
        reason: 'owners',
        message: `too many clients hold A2A tasks on this source (a2a.tasks.maxOwners: ${b.maxOwners}); retry later`,
      };
}

export interface AnswerShape {
  binding: A2aBinding;
  /** The answer is an SSE stream (SendStreamingMessage), else one JSON body. */
  sse: boolean;
  /** Bound on one SSE event held while it is read (limits.maxFilteredResponseBytes). */
  maxEventBytes?: number;
}

/**
 * A Transform for the answer of a SendMessage / SendStreamingMessage to `owner`: every task and
 * context id the answer names is recorded for `owner` before the bytes naming it are passed on. A
 * JSON answer is scanned as it streams (at most one id held back); an SSE answer is read event by
 * event (each bounded by maxEventBytes) until an event names a task, then passed through. An id
 * that cannot be recorded (table full, or it is another client's) cuts the answer with an error:
 * the caller destroys the client's response, and the client never learns the id.
 */
export function scanAnswer(table: TaskOwners, source: string, owner: string, shape: AnswerShape): Transform {
  const root = shape.binding === 'jsonrpc' ? ['result'] : [];
  let sawTask = false;
  const learn = (kind: IdKind, id: string) => {
    // A client chooses its own contextId and the agent echoes it: a longer one is not kept (the request bound, a2a-operation.ts).
    if (id.length > A2A_MAX_ID_BYTES / 3 && Buffer.byteLength(id, 'utf8') > A2A_MAX_ID_BYTES) throw new IdTooLongError(A2A_MAX_ID_BYTES);
    const r = table.learn(source, owner, kind, id);
    if (r === 'full') {
      table.metrics?.refused(source, 'owners');
      throw new TaskTableFullError(source);
    }
    if (r === 'foreign') throw new Error(`the agent's answer names ${kind} ${id} of another client`);
    if (kind === 'task') sawTask = true;
  };
  return shape.sse ? sseScanner(root, learn, () => sawTask, shape.maxEventBytes ?? 1 << 20) : jsonScanner(root, learn);
}

/**
 * Scanning stops once a task id and a context id are recorded (the SDKs write both first), so a
 * large answer is passed through after its first bytes. An id named again later (a duplicate key,
 * which a parser reads last) is then not recorded: unknown, so refused for everyone, never given away.
 */
function jsonScanner(root: readonly string[], learn: (kind: IdKind, id: string) => void): Transform {
  const seen = new Set<IdKind>();
  const scanner = new JsonIdScanner(root, (kind, id) => {
    learn(kind, id);
    seen.add(kind);
    if (seen.size === 2) scanner.done = true; // read no further, even in this chunk
  });
  let held: Buffer[] = [];
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (scanner.done && held.length === 0) return done(null, chunk);
      try {
        const { holdFrom } = scanner.feed(chunk);
        if (holdFrom < 0) {
          for (const h of held) this.push(h);
          held = [];
          this.push(chunk);
        } else if (scanner.holding && holdFrom === 0 && held.length > 0) {
          held.push(chunk); // the same id goes on
        } else {
          for (const h of held) this.push(h);
          if (holdFrom > 0) this.push(chunk.subarray(0, holdFrom));
          held = [chunk.subarray(holdFrom)];
        }
        done();
      } catch (e) {
        done(e as Error);
      }
    },
    flush(done: TransformCallback) {
      // An answer that ends inside an id: the client cannot parse it; the held bytes go with it.
      for (const h of held) this.push(h);
      done();
    },
  });
}

function sseScanner(root: readonly string[], learn: (kind: IdKind, id: string) => void, sawTask: () => boolean, maxEventBytes: number): Transform {
  // latin1 keeps bytes and characters one to one: each event's raw text goes out as the bytes it came in.
  const parser = new SseParser();
  let through = false;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (through) return done(null, chunk);
      try {
        for (const ev of parser.push(chunk.toString('latin1'))) {
          if (!through && ev.data !== null) {
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.from(ev.data, 'latin1').toString('utf8'));
            } catch {
              parsed = undefined; // no client reads an id from it either
            }
            for (const { kind, id } of idsOf(root, parsed)) learn(kind, id);
            if (sawTask()) through = true;
          }
          this.push(Buffer.from(ev.raw, 'latin1'));
        }
        if (through) {
          const rest = parser.end();
          if (rest) this.push(Buffer.from(rest.raw, 'latin1'));
        } else if (parser.buffered > maxEventBytes) throw new Error(`an SSE event of the agent's answer is larger than ${maxEventBytes} bytes`);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
    flush(done: TransformCallback) {
      if (through) return done();
      const rest = parser.end();
      try {
        // An unterminated last event is not dispatched by a client, but its bytes are still read: learn first.
        if (rest?.data) for (const { kind, id } of idsOf(root, safeParse(Buffer.from(rest.data, 'latin1').toString('utf8')))) learn(kind, id);
        if (rest) this.push(Buffer.from(rest.raw, 'latin1'));
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A ListTasks answer (parsed, bounded by the caller) with only the caller's tasks: JSON-RPC
 * `{result: {tasks}}` or HTTP+JSON `{tasks}`. `totalSize` becomes the number kept (the agent's
 * count would tell how many tasks other clients have). Anything else is returned unchanged (an
 * error answer names no task). Pure but for the table read.
 */
export function filterTaskList(table: TaskOwners, source: string, owner: string, binding: A2aBinding, answer: unknown): unknown {
  if (!isObject(answer)) return answer;
  const list = binding === 'jsonrpc' ? answer['result'] : answer;
  if (!isObject(list) || !Array.isArray(list['tasks'])) return answer;
  const tasks = (list['tasks'] as unknown[]).filter((t) => isObject(t) && typeof t['id'] === 'string' && table.ownerOf(source, 'task', t['id']) === owner);
  const filtered = { ...list, tasks, ...(Object.hasOwn(list, 'totalSize') ? { totalSize: tasks.length } : {}) };
  return binding === 'jsonrpc' ? { ...answer, result: filtered } : filtered;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The owner table's metrics: thoughtgate_sidecar_a2a_task_owner_{refusals,evictions}_total{source,reason}, …_entries. */
export function taskOwnerMetrics(registry: Registry, prefix = 'thoughtgate_sidecar_'): TaskOwnerMetrics {
  const refusals = new Counter({
    name: `${prefix}a2a_task_owner_refusals_total`,
    help: 'A2A calls refused by task isolation, by source and reason (not_owner: a task or context of another client, unknown or expired; rate: a client starting tasks faster than a2a.tasks.rate; owners: no room for another client, a2a.tasks.maxOwners)',
    labelNames: ['source', 'reason'] as const,
    registers: [registry],
  });
  const evictions = new Counter({
    name: `${prefix}a2a_task_owner_evictions_total`,
    help: "A2A task and context ids forgotten before their ttl, by source and reason (owner_bound: the client's own oldest, at a2a.tasks.maxPerOwner; table_full: the oldest of the client holding most ids, at a2a.tasks.maxEntries)",
    labelNames: ['source', 'reason'] as const,
    registers: [registry],
  });
  const entries = new Gauge({ name: `${prefix}a2a_task_owner_entries`, help: 'Task and context ids in the A2A owner table', registers: [registry] });
  return {
    refused: (source, reason) => refusals.inc({ source, reason }),
    evicted: (source, reason) => evictions.inc({ source, reason }),
    entries: (n) => entries.set(n),
  };
}

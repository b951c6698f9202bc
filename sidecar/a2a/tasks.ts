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
//   admit(table, source, owner)                       — before forwarding a Send*: null, or a refusal (table full)
//   scanAnswer(table, source, owner, {binding, sse})  — a Transform for the answer of a Send* (learns its ids)
//   filterTaskList(table, source, owner, answer)      — ListTasks: the answer with only the caller's tasks
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { A2aBinding } from '../../policy/gates/a2a-methods.js';
import type { A2aFacts } from '../../policy/gates/operation.js';
import { ownerOf } from '../approvals/runtime.js';
import { type A2aRestError, type A2aVersionName, a2aJsonRpcError, a2aRestError } from '../../api/a2a-errors.js';
import type { JsonRpcError } from '../../lib/jsonrpc-reply.js';
import { SseParser } from '../sse.js';
import { type IdKind, idsOf, JsonIdScanner } from './task-ids.js';

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

export const TASK_OWNER_DEFAULTS = {
  /** Ids (tasks and contexts) kept per sidecar; each Send can add two. About 250 bytes each: ~12 MB at the bound. */
  maxEntries: 50_000,
  /** Ids kept per client of a source: one client cannot fill the table for the others. */
  maxPerOwner: 5_000,
  /** How long an id stays reachable after it was created (then: unknown, i.e. refused). */
  ttlMs: 24 * 60 * 60 * 1000,
} as const;

export interface TaskOwnerMetrics {
  /** A call refused because it named a task or context the caller does not own (or unknown). */
  refused(source: string, reason: 'not_owner' | 'full'): void;
  entries(n: number): void;
}

export interface TaskOwnersOptions {
  maxEntries?: number;
  maxPerOwner?: number;
  ttlMs?: number;
  now?: () => number;
  metrics?: TaskOwnerMetrics;
}

/** `group` is shared by every id of one owner on one source (memory: one small object per id). */
interface Entry {
  group: OwnerGroup;
  expires: number;
}

interface OwnerGroup {
  source: string;
  owner: string;
  count: number;
}

export type Learned = 'recorded' | 'known' | 'foreign' | 'full';

/** Thrown into the answer's stream when an id cannot be recorded: its bytes must not reach the client. */
export class TaskTableFullError extends Error {
  constructor(readonly source: string) {
    super(`the A2A task owner table is full (source ${source}): the answer naming a new task was cut`);
  }
}

/**
 * id → owner, per source and kind, bounded and expiring. When full (after dropping expired ids) it
 * refuses new ids rather than evicting live ones: evicting would make other clients' running tasks
 * unreachable on one client's flood. A client at its own bound is refused the same way.
 */
export class TaskOwners {
  private readonly map = new Map<string, Entry>();
  private readonly groups = new Map<string, OwnerGroup>();
  readonly maxEntries: number;
  readonly maxPerOwner: number;
  readonly ttlMs: number;
  private readonly now: () => number;
  readonly metrics: TaskOwnerMetrics | undefined;

  constructor(o: TaskOwnersOptions = {}) {
    this.maxEntries = o.maxEntries ?? TASK_OWNER_DEFAULTS.maxEntries;
    this.maxPerOwner = o.maxPerOwner ?? TASK_OWNER_DEFAULTS.maxPerOwner;
    this.ttlMs = o.ttlMs ?? TASK_OWNER_DEFAULTS.ttlMs;
    this.now = o.now ?? Date.now;
    this.metrics = o.metrics;
  }

  get size(): number {
    return this.map.size;
  }

  /** The owner of an id, or undefined when unknown or expired. */
  ownerOf(source: string, kind: IdKind, id: string): string | undefined {
    const e = this.map.get(key(source, kind, id));
    return e && e.expires > this.now() ? e.group.owner : undefined;
  }

  /** Whether `owner` may add `n` ids now. */
  hasRoom(source: string, owner: string, n = 1): boolean {
    this.sweep();
    return this.map.size + n <= this.maxEntries && (this.groups.get(ownerKey(source, owner))?.count ?? 0) + n <= this.maxPerOwner;
  }

  /** Records `owner` for an id the agent named in its answer to that owner. The first owner stays. */
  learn(source: string, owner: string, kind: IdKind, id: string): Learned {
    const k = key(source, kind, id);
    const e = this.map.get(k);
    if (e && e.expires > this.now()) return e.group.owner === owner ? 'known' : 'foreign';
    if (e) this.drop(k, e);
    if (!this.hasRoom(source, owner)) return 'full';
    const gk = ownerKey(source, owner);
    let group = this.groups.get(gk);
    if (!group) {
      group = { source, owner, count: 0 };
      this.groups.set(gk, group);
    }
    group.count++;
    this.map.set(k, { group, expires: this.now() + this.ttlMs });
    this.metrics?.entries(this.map.size);
    return 'recorded';
  }

  /** Drops expired ids, oldest first (insertion order is expiry order: one ttl for all). */
  private sweep(): void {
    const now = this.now();
    for (const [k, e] of this.map) {
      if (e.expires > now) break;
      this.drop(k, e);
    }
  }

  private drop(k: string, e: Entry): void {
    this.map.delete(k);
    if (--e.group.count === 0) this.groups.delete(ownerKey(e.group.source, e.group.owner));
    this.metrics?.entries(this.map.size);
  }
}

const key = (source: string, kind: IdKind, id: string) => `${source}\u0000${kind}\u0000${id}`;
const ownerKey = (source: string, owner: string) => `${source}\u0000${owner}`;

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
    if (o !== undefined && o !== owner) return refused(table, source, notFound(facts.contextId));
  }
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

/** Before forwarding a Send*: whether its answer's ids (a task and a context) can be recorded. */
export function admit(table: TaskOwners, source: string, owner: string): { reason: string } | null {
  if (table.hasRoom(source, owner, 2)) return null;
  table.metrics?.refused(source, 'full');
  return {
    reason: `too many A2A tasks are remembered for this client or this sidecar (at most ${table.maxPerOwner} per client, ${table.maxEntries} in all); retry later`,
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
    const r = table.learn(source, owner, kind, id);
    if (r === 'full') {
      table.metrics?.refused(source, 'full');
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

/** The owner table's metrics: thoughtgate_sidecar_a2a_task_owner_refusals_total{source,reason}, …_entries. */
export function taskOwnerMetrics(registry: Registry, prefix = 'thoughtgate_sidecar_'): TaskOwnerMetrics {
  const refusals = new Counter({
    name: `${prefix}a2a_task_owner_refusals_total`,
    help: 'A2A calls refused by task isolation, by source and reason (not_owner: a task or context of another client or unknown; full: the owner table is full)',
    labelNames: ['source', 'reason'] as const,
    registers: [registry],
  });
  const entries = new Gauge({ name: `${prefix}a2a_task_owner_entries`, help: 'Task and context ids in the A2A owner table', registers: [registry] });
  return {
    refused: (source, reason) => refusals.inc({ source, reason }),
    entries: (n) => entries.set(n),
  };
}

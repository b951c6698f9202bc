// The A2A task owner table's bounds (`a2a.tasks`, docs/configuration.md): the document's settings
// with defaults filled in. Apart from tasks.ts so the snapshot compiles them without loading the table.
import { A2A_TASKS_DEFAULTS, type A2aTasks } from '../../api/config.js';
import { parseDuration } from '../../api/duration.js';
import type { BucketBudget } from '../../lib/token-bucket.js';

/**
 * The owner table's bounds (`a2a.tasks` in the configuration: api/config.ts, docs/configuration.md).
 * A client holding fewer than maxEntries / (maxOwners × A2A sources) ids (50 by default, one source) never loses one to
 * another client's traffic, however many identities that traffic makes up.
 */
export interface TaskOwnerBounds {
  /** Ids (tasks and contexts) kept per sidecar; each Send can add two. About 220 bytes each (UUID ids): ~11 MB at the default. */
  maxEntries: number;
  /** Ids kept per client of a source: beyond it the client's own oldest go. */
  maxPerOwner: number;
  /** Clients (per source) the table holds ids or a rate for: beyond it a new client's Send is refused. */
  maxOwners: number;
  /** How long an id stays reachable after it was created or last used (then: unknown, i.e. refused). */
  ttlMs: number;
  /** How long a context id that expired or was evicted stays refused for everyone (nobody can take it over). */
  contextTombstoneMs: number;
  /** Such context ids kept; beyond it the former owner holding the most loses its oldest (which could be started anew by anyone). */
  maxTombstones: number;
  /** New tasks a client may start (Sends not continuing one of its tasks): `burst` at once, then `perMinute`. */
  rate: BucketBudget;
}

/** `a2a.tasks` of the document as the table's bounds, defaults filled in (A2A_TASKS_DEFAULTS). */
export function taskOwnerBounds(t: A2aTasks | undefined): TaskOwnerBounds {
  const d = A2A_TASKS_DEFAULTS;
  return {
    maxEntries: t?.maxEntries ?? d.maxEntries,
    maxPerOwner: t?.maxPerOwner ?? d.maxPerOwner,
    maxOwners: t?.maxOwners ?? d.maxOwners,
    ttlMs: ms(t?.ttl ?? d.ttl),
    contextTombstoneMs: ms(t?.contextTombstone ?? d.contextTombstone),
    maxTombstones: t?.maxTombstones ?? d.maxTombstones,
    rate: { ...(t?.rate ?? d.rate) },
  };
}

function ms(d: string): number {
  const v = parseDuration(d);
  if (typeof v !== 'number') throw new Error(v.error); // unreachable: the schema validated it
  return v;
}

export const TASK_OWNER_DEFAULTS: TaskOwnerBounds = taskOwnerBounds(undefined);

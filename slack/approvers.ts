// Who may decide: the allowlist (user ids + members of user groups) and display names for the
// final message. Lookups go through the token's rate limiter and a bounded LRU cache with TTL:
//   - at most 1000 entries per cache (users and groups separately), least recently used evicted;
//   - entries live 10 minutes, so removing someone from a user group takes effect within 10 min
//     (and a new member can decide within 10 min) without polling Slack's Tier 2 method often.
//     The Socket Mode receiver re-reads a group (groupMembers(g, maxAgeMs), 5 s by default) before
//     counting a button approve that counts only through it, so there a removal takes effect
//     within seconds.
// Concurrent lookups of the same key share one Slack call.
import { systemClock, type Clock } from '../lib/clock.js';
import { SlackApprovalError } from './errors.js';
import type { RunOptions } from './rate-limiter.js';

export const APPROVER_CACHE_MAX_ENTRIES = 1000;
export const APPROVER_CACHE_TTL_MS = 10 * 60_000;

/** A Map-backed LRU: insertion order is recency order. */
export class LruTtlCache<K, V> {
  private readonly map = new Map<K, { value: V; expiresAt: number }>();
  private readonly clock: Clock;
  readonly maxEntries: number;
  readonly ttlMs: number;

  constructor(opts: { maxEntries?: number; ttlMs?: number; clock?: Clock } = {}) {
    this.maxEntries = opts.maxEntries ?? APPROVER_CACHE_MAX_ENTRIES;
    this.ttlMs = opts.ttlMs ?? APPROVER_CACHE_TTL_MS;
    this.clock = opts.clock ?? systemClock;
    if (!(this.maxEntries >= 1)) throw new Error('maxEntries must be at least 1');
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.clock.now()) {
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: this.clock.now() + this.ttlMs });
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

/** One Slack call through the token's limiter; resolves to Slack's JSON answer. */
export type SlackCall = (method: string, args: Record<string, unknown>, opts?: RunOptions) => Promise<Record<string, unknown>>;

export interface Approvers {
  users: readonly string[];
  userGroups: readonly string[];
  /** Distinct approvers who must approve (the two-person rule); default 1. */
  required?: number;
}

export interface ApproverDirectoryOptions {
  maxEntries?: number;
  ttlMs?: number;
  clock?: Clock;
}

export class ApproverDirectory {
  readonly names: LruTtlCache<string, string>;
  readonly groups: LruTtlCache<string, readonly string[]>;
  /** When each cached group was read (wall clock). */
  private readonly groupsReadAt: LruTtlCache<string, number>;
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(
    private readonly call: SlackCall,
    opts: ApproverDirectoryOptions = {},
  ) {
    this.names = new LruTtlCache(opts);
    this.groups = new LruTtlCache(opts);
    this.groupsReadAt = new LruTtlCache(opts);
  }

  private once<T>(key: string, load: () => Promise<T>): Promise<T> {
    const running = this.pending.get(key);
    if (running !== undefined) return running as Promise<T>;
    const p = load().finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  /**
   * Members of a user group (usergroups.users.list); errors propagate (callers fail closed).
   * `maxAgeMs`: a cached read older than this is not used (Slack is read again, and that cached;
   * a read already running is shared).
   */
  groupMembers(groupId: string, maxAgeMs?: number): Promise<readonly string[]> {
    const at = this.groupsReadAt.get(groupId);
    const young = maxAgeMs === undefined || (at !== undefined && Date.now() - at <= maxAgeMs);
    const hit = young ? this.groups.get(groupId) : undefined;
    if (hit) return Promise.resolve(hit);
    return this.once(`g:${groupId}`, async () => {
      const res = await this.call('usergroups.users.list', { usergroup: groupId }, { priority: 'normal' });
      if (!Array.isArray(res.users))
        throw new SlackApprovalError('retryable', 'bad_response', 'usergroups.users.list', 'Slack usergroups.users.list: answer without users');
      const members = res.users.filter((u): u is string => typeof u === 'string');
      this.groups.set(groupId, members);
      this.groupsReadAt.set(groupId, Date.now());
      return members;
    });
  }

  /**
   * The allowlisted user ids. Groups are resolved only when `withGroups` (the decision code asks
   * only when someone outside the explicit users reacted, which saves Tier 2 calls).
   */
  async allowlist(approvers: Approvers, withGroups = true): Promise<Set<string>> {
    const allowed = new Set(approvers.users);
    if (withGroups) {
      const lists = await Promise.all(approvers.userGroups.map((g) => this.groupMembers(g)));
      for (const l of lists) for (const u of l) allowed.add(u);
    }
    return allowed;
  }

  /** A person's display name (users.info); falls back to the id, never throws. */
  displayName(userId: string): Promise<string> {
    const hit = this.names.get(userId);
    if (hit !== undefined) return Promise.resolve(hit);
    return this.once(`u:${userId}`, async () => {
      try {
        const res = await this.call('users.info', { user: userId }, { priority: 'normal' });
        const u = (res.user ?? {}) as { name?: unknown; real_name?: unknown; profile?: { display_name?: unknown; real_name?: unknown } };
        const pick = [u.profile?.display_name, u.real_name, u.profile?.real_name, u.name].find((x): x is string => typeof x === 'string' && x.trim() !== '');
        const name = pick ?? userId;
        this.names.set(userId, name);
        return name;
      } catch (e) {
        // An unknown user will stay unknown: remember that; other failures are retried next time.
        if (e instanceof SlackApprovalError && e.code === 'user_not_found') this.names.set(userId, userId);
        return userId;
      }
    });
  }
}

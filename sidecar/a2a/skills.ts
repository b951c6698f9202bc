// The skills an agent's cards name (public and extended, every version), per source: a message
// that names a skill the agent does not advertise is answered like one expose.skills hides (DESIGN
// §2.3: hidden ≡ nonexistent, the same answer from the same code path, and no probe: an agent
// routes by content, so a probe message would run). Filled from every card the sidecar serves and
// from the public card, read again when the list is older than REFRESH_MS.
//
// Every call that names a skill takes the same route whatever the skill (known, hidden, unknown):
// it waits for a refresh only when the list is due, never because the skill is missing, so the
// time an answer takes does not tell a hidden skill from an unknown one. At most one refresh per
// source is in flight and every caller awaits that one. The refresh is the sidecar's own (the
// handler reads the card with its own timeout, not the client's connection): a client hanging up
// or refused cannot end it early and empty the list for everyone. A refresh that fails (the agent
// errs or times out) keeps the list it had and is tried again after RETRY_MS; one that could not
// run (the byte budget was full) does not count. Bounded: MAX_SKILLS ids per source. Kept per
// compiled source (a WeakMap): a reload, which may point a name at another agent, starts afresh,
// and a removed source's entry goes with it.
export const REFRESH_MS = 60_000;
/** After a failed refresh: soon enough that an agent back from an outage is not judged by an old list for a minute. */
export const RETRY_MS = 5_000;
/** After a read the byte budget refused: soon, but not at every call (a full budget, which another client can cause, would make each skill-naming call cost one card read). */
export const BUSY_RETRY_MS = 1_000;
export const MAX_SKILLS = 1024;

/**
 * The public card's skill ids; 'failed' when the agent did not give a card (error, timeout,
 * not a card); 'busy' when the sidecar could not read it now (its byte budget was full).
 */
export type SkillFetch = () => Promise<readonly string[] | 'failed' | 'busy'>;

interface Entry {
  ids: Set<string>;
  /** When the next refresh is due. */
  dueAt: number;
  inflight: Promise<void> | null;
}

export class CardSkills {
  private readonly bySource = new WeakMap<object, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  private entry(source: object): Entry {
    let e = this.bySource.get(source);
    if (!e) {
      e = { ids: new Set(), dueAt: Number.NEGATIVE_INFINITY, inflight: null };
      this.bySource.set(source, e);
    }
    return e;
  }

  /** Records the skill ids of a card of `source` (before any filtering: visibility is decided apart). */
  seen(source: object, ids: readonly string[]): void {
    const e = this.entry(source);
    for (const id of ids) if (e.ids.size < MAX_SKILLS) e.ids.add(id);
  }

  has(source: object, id: string): boolean {
    return this.bySource.get(source)?.ids.has(id) === true;
  }

  /**
   * Whether `id` is a skill of `source`'s cards. When the list is due it is read again first by
   * `fetch` (one in flight per source, awaited by every caller; `fetch` must not depend on the
   * caller that happens to start it). A fetch that fails or throws keeps the list and is retried
   * after RETRY_MS; 'busy' keeps the list and is retried after BUSY_RETRY_MS.
   */
  async known(source: object, id: string, fetch: SkillFetch): Promise<boolean> {
    const e = this.entry(source);
    if (this.now() >= e.dueAt) {
      e.inflight ??= this.refresh(e, fetch);
      await e.inflight;
    }
    return e.ids.has(id);
  }

  private async refresh(e: Entry, fetch: SkillFetch): Promise<void> {
    try {
      const ids = await fetch();
      if (ids === 'busy') {
        e.dueAt = this.now() + BUSY_RETRY_MS;
        return;
      }
      if (ids === 'failed') {
        e.dueAt = this.now() + RETRY_MS;
        return;
      }
      for (const id of ids) if (e.ids.size < MAX_SKILLS) e.ids.add(id);
      e.dueAt = this.now() + REFRESH_MS;
    } catch {
      e.dueAt = this.now() + RETRY_MS;
    } finally {
      e.inflight = null;
    }
  }
}

/** The skill ids a parsed card names (strings only); [] for anything that is not a card. */
export function skillIdsOf(card: unknown): string[] {
  const skills = card !== null && typeof card === 'object' ? (card as Record<string, unknown>)['skills'] : undefined;
  if (!Array.isArray(skills)) return [];
  return skills.flatMap((s) => {
    const id = s !== null && typeof s === 'object' ? (s as Record<string, unknown>)['id'] : undefined;
    return typeof id === 'string' ? [id] : [];
  });
}

// The skills an agent's cards name (public and extended, every version), per source: a message
// that names a skill the agent does not advertise is answered like one expose.skills hides (DESIGN
// §2.3: hidden ≡ nonexistent, the same answer from the same code path, and no probe: an agent
// routes by content, so a probe message would run). Filled from every card the sidecar serves and
// from the public card, read again when the list is older than REFRESH_MS.
//
// Every call that names a skill takes the same route whatever the skill (known, hidden, unknown):
// it waits for a refresh only when the list is stale, never because the skill is missing, so the
// time an answer takes does not tell a hidden skill from an unknown one. At most one refresh per
// source is in flight (concurrent callers await the same one) and at most one completes per
// REFRESH_MS. Bounded: MAX_SKILLS ids per source. Kept per compiled source (a WeakMap): a reload,
// which may point a name at another agent, starts afresh, and a removed source's entry goes with it.
export const REFRESH_MS = 60_000;
export const MAX_SKILLS = 1024;
/** Attempts one caller makes when refreshes it waited for were abandoned (their own caller went away). */
const MAX_ATTEMPTS = 2;

/** The public card's skill ids, or 'abandoned' when the read was cut short by the client that started it going away. */
export type SkillFetch = () => Promise<readonly string[] | 'abandoned'>;

interface Entry {
  ids: Set<string>;
  refreshedAt: number;
  inflight: Promise<void> | null;
}

export class CardSkills {
  private readonly bySource = new WeakMap<object, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  private entry(source: object): Entry {
    let e = this.bySource.get(source);
    if (!e) {
      e = { ids: new Set(), refreshedAt: Number.NEGATIVE_INFINITY, inflight: null };
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
   * Whether `id` is a skill of `source`'s cards. A list older than REFRESH_MS is read again first
   * by `fetch` (one in flight per source, shared); a fetch that fails counts as a refresh (the next
   * one waits REFRESH_MS), one abandoned by its caller does not and the waiters try once more.
   */
  async known(source: object, id: string, fetch: SkillFetch): Promise<boolean> {
    const e = this.entry(source);
    for (let i = 0; i < MAX_ATTEMPTS && this.now() - e.refreshedAt >= REFRESH_MS; i++) {
      e.inflight ??= this.refresh(e, fetch);
      await e.inflight;
    }
    return e.ids.has(id);
  }

  private async refresh(e: Entry, fetch: SkillFetch): Promise<void> {
    try {
      const ids = await fetch();
      if (ids === 'abandoned') return;
      for (const id of ids) if (e.ids.size < MAX_SKILLS) e.ids.add(id);
      e.refreshedAt = this.now();
    } catch {
      e.refreshedAt = this.now();
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

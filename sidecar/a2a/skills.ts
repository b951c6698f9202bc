// The skills an agent's cards name (public and extended, every version), per source: a message
// that names a skill the agent does not advertise is answered like one expose.skills hides (DESIGN
// §2.3: hidden ≡ nonexistent, the same answer from the same code path, and no probe: an agent
// routes by content, so a probe message would run). Filled from every card the sidecar serves and
// refreshed from the public card at most once per REFRESH_MS per source when a call names a skill
// not seen yet. Bounded: MAX_SKILLS ids per source. Kept per compiled source (a WeakMap): a reload,
// which may point a name at another agent, starts afresh, and a removed source's entry goes with it.
export const REFRESH_MS = 60_000;
export const MAX_SKILLS = 1024;

export class CardSkills {
  private readonly bySource = new WeakMap<object, { ids: Set<string>; refreshedAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records the skill ids of a card of `source` (before any filtering: visibility is decided apart). */
  seen(source: object, ids: readonly string[], refreshed = false): void {
    let e = this.bySource.get(source);
    if (!e) {
      e = { ids: new Set(), refreshedAt: Number.NEGATIVE_INFINITY };
      this.bySource.set(source, e);
    }
    for (const id of ids) if (e.ids.size < MAX_SKILLS) e.ids.add(id);
    if (refreshed) e.refreshedAt = this.now();
  }

  has(source: object, id: string): boolean {
    return this.bySource.get(source)?.ids.has(id) === true;
  }

  /** Whether the public card may be fetched again for `source` (never within REFRESH_MS of the last time). */
  mayRefresh(source: object): boolean {
    const e = this.bySource.get(source);
    return !e || this.now() - e.refreshedAt >= REFRESH_MS;
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

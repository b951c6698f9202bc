// Whether a policy's enforcement (audit mode) changed between the config in force and the new
// rendering, for an Event on the policy: `kubectl describe gp` then shows when it went from audit
// to enforce and back. Pure.
import type { RenderedPolicy } from '../api/crds.js';

/** "enforce" or "audit", with the rules whose own enforcement differs, e.g. `enforce (audit: rules new-deny, rules[3])`. */
export function enforcementSummary(spec: Record<string, unknown>): string {
  const doc = spec['enforcement'] === 'audit' ? 'audit' : 'enforce';
  const rules = Array.isArray(spec['rules']) ? (spec['rules'] as unknown[]) : [];
  const other: string[] = [];
  rules.forEach((r, i) => {
    const rule = r !== null && typeof r === 'object' ? (r as Record<string, unknown>) : {};
    const own = rule['enforcement'];
    if ((own === 'audit' || own === 'enforce') && own !== doc) other.push(typeof rule['name'] === 'string' ? rule['name'] : `rules[${i}]`);
  });
  if (other.length === 0) return doc;
  const shown = other.length > 10 ? [...other.slice(0, 10), `${other.length - 10} more`] : other;
  return `${doc} (${doc === 'audit' ? 'enforce' : 'audit'}: rules ${shown.join(', ')})`;
}

/** The Event message when the policy's enforcement differs from the one in force; null when it does not, or when it was not served before. */
export function enforcementChange(before: RenderedPolicy | undefined, after: RenderedPolicy): string | null {
  if (!before) return null;
  const was = enforcementSummary(before.spec);
  const now = enforcementSummary(after.spec);
  return was === now ? null : `enforcement changed from ${was} to ${now} (generation ${after.generation})`;
}

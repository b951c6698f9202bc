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

/** The rules a spec leaves in audit (by name, else `rules[i]`), and '' for the document when it is in audit. */
function audited(spec: Record<string, unknown>): Set<string> {
  const doc = spec['enforcement'] === 'audit' ? 'audit' : 'enforce';
  const out = new Set<string>(doc === 'audit' ? [''] : []);
  const rules = Array.isArray(spec['rules']) ? (spec['rules'] as unknown[]) : [];
  rules.forEach((r, i) => {
    const rule = r !== null && typeof r === 'object' ? (r as Record<string, unknown>) : {};
    const own = rule['enforcement'] === 'audit' || rule['enforcement'] === 'enforce' ? rule['enforcement'] : doc;
    if (own === 'audit') out.add(typeof rule['name'] === 'string' ? rule['name'] : `rules[${i}]`);
  });
  return out;
}

export interface EnforcementChange {
  message: string;
  /** Warning when enforcement was turned off somewhere (the document or a rule went to audit): it lets through what was stopped. */
  type: 'Normal' | 'Warning';
}

/** The Event when the policy's enforcement differs from the one in force; null when it does not, or when it was not served before. */
export function enforcementChange(before: RenderedPolicy | undefined, after: RenderedPolicy): EnforcementChange | null {
  if (!before) return null;
  const was = enforcementSummary(before.spec);
  const now = enforcementSummary(after.spec);
  if (was === now) return null;
  const wasAudited = audited(before.spec);
  const turnedOff = [...audited(after.spec)].some((r) => !wasAudited.has(r));
  return { message: `enforcement changed from ${was} to ${now} (generation ${after.generation})`, type: turnedOff ? 'Warning' : 'Normal' };
}

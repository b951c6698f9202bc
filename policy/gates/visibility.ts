// Gate 1: what an agent may see. Lists are filtered; a call to a hidden target is made to look
// exactly like a call to a target that does not exist (see proxy/probe.ts). Pure.
import type { Expose } from '../../api/config.js';
import { compileGlobs, type Matcher } from '../../api/glob.js';
import type { TargetKind } from './operation.js';
import { canonicalUri, canonicalUriTemplate } from '../../api/resource-uri.js';

export interface Visibility {
  /** null: everything of that kind is visible, no filtering needed. */
  tool: Matcher | null;
  resource: Matcher | null;
  prompt: Matcher | null;
  /** A2A: the card's skills (expose.skills). */
  skill: Matcher | null;
}

export function compileVisibility(expose: Expose): Visibility {
  if (expose.mode === 'all') return { tool: null, resource: null, prompt: null, skill: null };
  // allowlist: an omitted list exposes nothing of that kind (fail closed);
  // blocklist: an omitted list hides nothing of that kind.
  const one = (globs: string[] | undefined): Matcher | null => {
    if (expose.mode === 'allowlist') return compileGlobs(globs ?? []);
    if (!globs || globs.length === 0) return null;
    const hidden = compileGlobs(globs);
    return (v) => !hidden(v);
  };
  return { tool: one(expose.tools), resource: one(expose.resources), prompt: one(expose.prompts), skill: one(expose.skills) };
}

export function isVisible(v: Visibility, kind: TargetKind, name: string): boolean {
  const m = v[kind];
  return m === null || m(name);
}

/** The list methods gate 1 filters, with the result array and the field that names each entry. */
export const LIST_METHODS: Record<string, { kind: TargetKind; array: string; key: string }> = {
  'tools/list': { kind: 'tool', array: 'tools', key: 'name' },
  'prompts/list': { kind: 'prompt', array: 'prompts', key: 'name' },
  'resources/list': { kind: 'resource', array: 'resources', key: 'uri' },
  // Templates are matched on their template text, e.g. "file:///{path}".
  'resources/templates/list': { kind: 'resource', array: 'resourceTemplates', key: 'uriTemplate' },
};

export function needsListFilter(v: Visibility, method: string): boolean {
  const spec = LIST_METHODS[method];
  return spec !== undefined && v[spec.kind] !== null;
}

/**
 * Filters a list result in place of a copy. Everything but the array (nextCursor, _meta…) is kept.
 * Returns null when the result does not have the expected shape: the caller then fails closed
 * rather than pass an unfiltered list through.
 */
export function filterListResult(v: Visibility, method: string, result: unknown): Record<string, unknown> | null {
  const spec = LIST_METHODS[method];
  if (!spec) return null;
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return null;
  const r = result as Record<string, unknown>;
  const items = r[spec.array];
  if (!Array.isArray(items)) return null;
  const kept = items.filter((it) => {
    const name = it !== null && typeof it === 'object' ? (it as Record<string, unknown>)[spec.key] : undefined;
    if (typeof name !== 'string') return false;
    if (spec.kind !== 'resource') return isVisible(v, spec.kind, name);
    // Decided on the canonical form, as a read of it would be; an entry without one cannot be
    // read through the sidecar, so it is not shown.
    const c = spec.key === 'uriTemplate' ? canonicalUriTemplate(name) : canonicalUri(name);
    return c.ok && isVisible(v, spec.kind, c.uri);
  });
  return { ...r, [spec.array]: kept };
}

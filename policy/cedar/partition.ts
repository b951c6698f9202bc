/**
 * Splits a policy set by scope so that each call runs only the policies that can apply to it.
 *
 * Why: Cedar checks every policy of a set on every call (~2 µs each in wasm even when the scope
 * does not match), so 20 policies about five sources cost every call the price of all 20.
 *
 * Why it is exact: a policy whose scope does not match the request is not applicable — Cedar
 * evaluates the scope before the conditions, so the policy can neither determine the decision nor
 * raise an error. Two scope forms are used, both decidable from (method, source) alone:
 * - `action == ThoughtGate::Action::"m"`, `action in ThoughtGate::Action::"m"` and
 *   `action in [ … ]`: no action hierarchy is sent, so `in` is equality;
 * - `resource in ThoughtGate::Source::"s"` (also after `is T`): the resource's only parent is the
 *   Source of the call;
 * - `resource == ThoughtGate::Tool::"s/…"` (also `in`, and Resource, Prompt, Method): resource ids
 *   are `<source>/<name>` and evaluate refuses sources containing "/", so the id's first segment
 *   is the source; `resource == ThoughtGate::Agent::"s"` (also `in`): an agent's id is its source.
 * Every other scope (other entity types, slots) counts as "any".
 */
import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';

export interface Scope {
  actions: ReadonlySet<string> | 'any';
  sources: ReadonlySet<string> | 'any';
}

export interface Plan {
  /** Policy ids of each preparsed subset, in text order. */
  subsets: string[][];
  /** The subset for a call. */
  pick(method: string, source: string): number;
}

function uid(e: unknown): { type: string; id: string } | null {
  if (e === null || typeof e !== 'object') return null;
  const o = ('__entity' in e ? (e as { __entity: unknown }).__entity : e) as { type?: unknown; id?: unknown } | null;
  return o && typeof o.type === 'string' && typeof o.id === 'string' ? { type: o.type, id: o.id } : null;
}

export function scopeOf(policy: cedar.PolicyJson): Scope {
  return { actions: actionsOf(policy.action), sources: sourcesOf(policy.resource) };
}

function actionsOf(c: cedar.ActionConstraint): Scope['actions'] {
  const list = c.op === 'All' ? null : 'entities' in c ? c.entities : 'entity' in c ? [c.entity] : null;
  if (!list) return 'any';
  const ids = new Set<string>();
  for (const e of list) {
    const u = uid(e);
    if (u?.type !== 'ThoughtGate::Action') return 'any';
    ids.add(u.id);
  }
  return ids;
}

const TARGET_TYPES = new Set(['ThoughtGate::Tool', 'ThoughtGate::Resource', 'ThoughtGate::Prompt', 'ThoughtGate::Method']);

function sourcesOf(c: cedar.ResourceConstraint): Scope['sources'] {
  const inner = c.op === 'in' || c.op === '==' ? c : c.op === 'is' ? c.in : undefined;
  const u = inner && 'entity' in inner ? uid(inner.entity) : null;
  if (u?.type === 'ThoughtGate::Source' && c.op !== '==') return new Set([u.id]);
  // An agent's id is its source (A2A: one resource per agent).
  if (u?.type === 'ThoughtGate::Agent') return new Set([u.id]);
  const slash = u && TARGET_TYPES.has(u.type) ? u.id.indexOf('/') : -1;
  return slash > 0 ? new Set([u!.id.slice(0, slash)]) : 'any';
}

/**
 * Groups policies by (method, source), identical groups shared. When that needs more than
 * `maxSubsets` sets it splits by method only, and failing that keeps one set.
 */
export function partition(policies: readonly { id: string; scope: Scope }[], maxSubsets = 32): Plan {
  const actions = new Set<string>();
  const sources = new Set<string>();
  for (const { scope } of policies) {
    if (scope.actions !== 'any') for (const a of scope.actions) actions.add(a);
    if (scope.sources !== 'any') for (const s of scope.sources) sources.add(s);
  }
  return (
    tryPlan(policies, [...actions], [...sources], maxSubsets) ??
    tryPlan(policies, [...actions], null, maxSubsets) ?? { subsets: [policies.map((p) => p.id)], pick: () => 0 }
  );
}

/** `sources` null: do not split by source. A null key stands for "any other" method or source. */
function tryPlan(policies: readonly { id: string; scope: Scope }[], actions: string[], sources: string[] | null, max: number): Plan | null {
  const subsets: string[][] = [];
  const bySignature = new Map<string, number>();
  const subsetFor = (action: string | null, source: string | null): number => {
    const ids = policies
      .filter(
        ({ scope }) =>
          (scope.actions === 'any' || (action !== null && scope.actions.has(action))) &&
          (sources === null || scope.sources === 'any' || (source !== null && scope.sources.has(source))),
      )
      .map((p) => p.id);
    const signature = ids.join('\u0000');
    let i = bySignature.get(signature);
    if (i === undefined) {
      i = subsets.push(ids) - 1;
      bySignature.set(signature, i);
    }
    return i;
  };
  type Row = { bySource: Map<string, number>; other: number };
  const row = (action: string | null): Row => ({
    bySource: new Map((sources ?? []).map((s) => [s, subsetFor(action, s)])),
    other: subsetFor(action, null),
  });
  const byAction = new Map(actions.map((a) => [a, row(a)]));
  const otherRow = row(null);
  if (subsets.length > max) return null;
  return {
    subsets,
    pick(method, source) {
      const r = byAction.get(method) ?? otherRow;
      return r.bySource.get(source) ?? r.other;
    },
  };
}

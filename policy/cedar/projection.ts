/**
 * Sends Cedar only the part of the context, and of the principal's and resource's attributes and
 * tags, that the policies can observe.
 *
 * Why: Cedar converts every value of a request inside wasm on every call; records cost ~5 µs and
 * extension values (decimal, datetime) ~13 µs each, and tool arguments can hold dozens.
 *
 * Why it is exact: a Cedar policy can only look into a record through `.attr` / `["attr"]` and
 * `has attr` (also `has a.b.c`) with literal attribute names — there is no dynamic attribute access
 * and no way to list keys. So from the policies' JSON form we collect every context path they
 * reach. A path used in any other way (compared, passed to a method, put in a set, `if` branch,
 * `context` on its own…) is kept whole. Values that are not records (sets, strings, decimals) are
 * always kept whole, so type errors stay the same. Decisions, determining policies and error
 * messages are unchanged; only Cedar's "available attributes" help text can list fewer names.
 *
 * Entities: attributes are read by `principal.attr` / `has`, tags by `getTag` / `hasTag` with a
 * literal name; a computed tag name needs all tags, and entity data read through anything other
 * than `principal` / `resource` themselves (a literal uid, an `if`) needs all of both entities.
 * Parents are always sent.
 *
 * The walk is deliberately conservative: any `{"Var":"context"}` it does not recognise as the
 * start of such a path marks the whole context as needed.
 */
import type { CedarJson } from './normalise.js';

export interface Need {
  /** The value at this path is observed as a whole. */
  whole: boolean;
  /** Attributes reached from here by `.` or `has`. */
  children: Map<string, Need>;
}

/** Attributes and tags of the principal or resource entity that some policy reads. */
export interface EntityNeed {
  attrs: Set<string> | 'all';
  tags: Set<string> | 'all';
}

export interface Needs {
  context: Need;
  principal: EntityNeed;
  resource: EntityNeed;
}

export const newNeed = (): Need => ({ whole: false, children: new Map() });
export const newNeeds = (): Needs => ({
  context: newNeed(),
  principal: { attrs: new Set(), tags: new Set() },
  resource: { attrs: new Set(), tags: new Set() },
});

/**
 * Adds what one policy observes, from its JSON form (`policyToJson(…).json`). Entity parents are
 * always sent, so scopes (`principal in …`, `resource is … in …`) need nothing here.
 */
export function addNeeds(needs: Needs, policyJson: unknown): void {
  visit(policyJson, needs);
}

function add(set: Set<string> | 'all', key: string): void {
  if (set !== 'all') set.add(key);
}

/** Entity data read through anything but `principal` / `resource` themselves (e.g. a literal uid). */
function allEntityData(needs: Needs): void {
  needs.principal = { attrs: 'all', tags: 'all' };
  needs.resource = { attrs: 'all', tags: 'all' };
}

function entityVar(node: unknown): 'principal' | 'resource' | null {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return null;
  const v = (node as Record<string, unknown>)['Var'];
  return Object.keys(node).length === 1 && (v === 'principal' || v === 'resource') ? v : null;
}

function hasAttrs(attr: unknown): string[] | null {
  if (typeof attr === 'string') return [attr];
  return Array.isArray(attr) && attr.length > 0 && attr.every((a) => typeof a === 'string') ? (attr as string[]) : null;
}

function visit(node: unknown, needs: Needs): void {
  if (Array.isArray(node)) {
    for (const n of node) visit(n, needs);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const path = contextPath(node);
  if (path) {
    mark(needs.context, path).whole = true;
    return;
  }
  const keys = Object.keys(node);
  const op = keys.length === 1 ? keys[0]! : '';
  const inner = (node as Record<string, unknown>)[op] as Record<string, unknown> | null | undefined;
  if ((op === '.' || op === 'has' || op === 'getTag' || op === 'hasTag') && inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
    const left = inner['left'];
    const ev = entityVar(left);
    if (op === 'has') {
      const attrs = hasAttrs(inner['attr']);
      const base = contextPath(left);
      // `has` observes presence only; creating the nodes keeps the keys.
      if (base && attrs) return void mark(needs.context, [...base, ...attrs]);
      // Entity attributes are strings: only the first step of `has a.b` reads the entity.
      if (ev && attrs) return add(needs[ev].attrs, attrs[0]!);
    } else if (op === '.') {
      if (ev && typeof inner['attr'] === 'string') return add(needs[ev].attrs, inner['attr']);
    } else if (ev) {
      const right = inner['right'] as Record<string, unknown> | null | undefined;
      const key = right !== null && typeof right === 'object' && Object.keys(right).length === 1 ? right['Value'] : undefined;
      if (typeof key === 'string') return add(needs[ev].tags, key);
      needs[ev].tags = 'all';
      return visit(right, needs);
    }
    if (!contextPath(left)) allEntityData(needs);
  }
  for (const v of Object.values(node)) visit(v, needs);
}

/** `context`, `context.a`, `context.a.b`… as a path, else null. */
function contextPath(node: unknown): string[] | null {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return null;
  const o = node as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== 1) return null;
  if (keys[0] === 'Var') return o['Var'] === 'context' ? [] : null;
  if (keys[0] === '.') {
    const { left, attr } = (o['.'] ?? {}) as { left?: unknown; attr?: unknown };
    if (typeof attr !== 'string') return null;
    const base = contextPath(left);
    return base ? [...base, attr] : null;
  }
  return null;
}

function mark(need: Need, path: readonly string[]): Need {
  let at = need;
  for (const key of path) {
    let next = at.children.get(key);
    if (!next) {
      next = newNeed();
      at.children.set(key, next);
    }
    at = next;
  }
  return at;
}

/** The value with only the needed parts; shares unchanged subtrees with the input. */
export function project(value: CedarJson, need: Need): CedarJson {
  if (need.whole || !isRecord(value)) return value;
  const out: { [key: string]: CedarJson } = {};
  for (const [key, child] of need.children) {
    if (Object.hasOwn(value, key)) out[key] = project(value[key]!, child);
  }
  return out;
}

/** A Cedar record: not a set, and not an extension value (normalised keys never start with `__`). */
function isRecord(v: CedarJson): v is { [key: string]: CedarJson } {
  return typeof v === 'object' && !Array.isArray(v) && !Object.hasOwn(v, '__extn');
}

/** Only the needed keys of an entity's attributes or tags. */
export function pick<T>(record: Readonly<Record<string, T>>, keys: Set<string> | 'all'): Record<string, T> {
  if (keys === 'all') return record as Record<string, T>;
  const out: Record<string, T> = {};
  for (const k of keys) if (Object.hasOwn(record, k)) out[k] = record[k]!;
  return out;
}

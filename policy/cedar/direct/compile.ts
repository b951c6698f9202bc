/**
 * Compiles Cedar policies, from their JSON form (`policyToJson`, the EST), into JavaScript closures
 * that decide a call without cedar-wasm.
 *
 * Why: a wasm decision costs ~50–150 µs (converting the request into Rust values dominates);
 * the policies people write — scopes, `like`, `has`, comparisons of arguments, tags — take a few
 * µs as closures over the request.
 *
 * Exactness: the semantics copied are Cedar 4's — scope first, then `when`/`unless` in order with
 * `&&`/`||` short-circuit, type errors (a condition that is not a bool, `<` on strings, `.` of a
 * missing attribute…) skip the policy and report it, longs are 64-bit with overflow errors,
 * `==` across types is false, sets are compared as sets, `like` treats `*` as the only wildcard,
 * `in` follows the request's two-level hierarchy (principal ∈ Namespace, resource ∈ Source; any
 * other entity, e.g. a literal one, has no parents and no attributes: reading one is an error).
 * Anything else — `ip(…)`, slots, long literals beyond 2^53 (the JSON form has already rounded
 * them), extension calls on computed strings, unfamiliar datetime forms, an operator this file
 * does not know — throws Unsupported, and the caller keeps the whole policy set on wasm.
 * Error messages are Cedar's words, and operands are evaluated before their types are checked, as
 * Cedar does, so that a policy with two faults reports the same one.
 * The differential and property tests in this folder compare every decision, reason included,
 * with cedar-wasm.
 */
import { DAY_MS, parseDatetime, parseDuration } from './datetime.js';
import {
  CedarRecord,
  CedarSet,
  Datetime,
  Decimal,
  Duration,
  EntityUid,
  CedarError,
  I64_MAX,
  I64_MIN,
  equals,
  keyOf,
  parseDecimal,
  typeName,
  type Value,
} from './values.js';

/** What a decision reads: the request's four variables and its two entities. */
export interface DirectRequest {
  principal: EntityUid;
  action: EntityUid;
  resource: EntityUid;
  context: CedarRecord;
  entities: readonly DirectEntity[];
}

export interface DirectEntity {
  uid: EntityUid;
  attrs: Readonly<Record<string, string>>;
  tags: Readonly<Record<string, string>>;
  parent: EntityUid;
}

type Expr = (r: DirectRequest) => Value;

export class Unsupported extends Error {}

export interface DirectPolicy {
  id: string;
  effect: 'permit' | 'forbid';
  /** Scope and conditions; true when the policy is satisfied. Throws CedarError. */
  applies: (r: DirectRequest) => boolean;
}

/** Throws Unsupported for a policy outside the modelled subset. */
export function compilePolicy(id: string, json: unknown): DirectPolicy {
  const p = json as { effect?: unknown; principal?: unknown; action?: unknown; resource?: unknown; conditions?: unknown };
  if (p.effect !== 'permit' && p.effect !== 'forbid') throw new Unsupported('effect');
  const scope = [scopeOf('principal', p.principal), scopeOf('action', p.action), scopeOf('resource', p.resource)].filter(
    (s): s is (r: DirectRequest) => boolean => s !== null,
  );
  if (!Array.isArray(p.conditions)) throw new Unsupported('conditions');
  const conditions = p.conditions.map((c: { kind?: unknown; body?: unknown }) => {
    if (c.kind !== 'when' && c.kind !== 'unless') throw new Unsupported('condition kind');
    const body = expr(c.body);
    const unless = c.kind === 'unless';
    return (r: DirectRequest) => asBool(body(r)) !== unless;
  });
  const checks = [...scope, ...conditions];
  return {
    id,
    effect: p.effect,
    applies: (r) => {
      for (const check of checks) if (!check(r)) return false;
      return true;
    },
  };
}

// ---- scope ----

function scopeOf(variable: 'principal' | 'action' | 'resource', c: unknown): ((r: DirectRequest) => boolean) | null {
  const s = c as { op?: unknown; entity?: unknown; entities?: unknown; entity_type?: unknown; in?: { entity?: unknown } };
  switch (s.op) {
    case 'All':
      return null;
    case '==': {
      const e = entityLiteral(s.entity);
      return (r) => equals(r[variable], e);
    }
    case 'in': {
      const targets = s.entities !== undefined ? arrayOf(s.entities).map(entityLiteral) : [entityLiteral(s.entity)];
      return (r) => targets.some((t) => inEntity(r, r[variable], t));
    }
    case 'is': {
      if (typeof s.entity_type !== 'string') throw new Unsupported('is');
      const type = s.entity_type;
      const within = s.in === undefined ? null : entityLiteral(s.in.entity);
      return (r) => r[variable].type === type && (within === null || inEntity(r, r[variable], within));
    }
  }
  throw new Unsupported(`scope ${String(s.op)}`);
}

function arrayOf(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Unsupported('expected a list');
  return v;
}

/** `{"type", "id"}` or `{"__entity": {…}}`; a slot or anything else is unsupported. */
function entityLiteral(e: unknown): EntityUid {
  const o = (e !== null && typeof e === 'object' && '__entity' in e ? (e as { __entity: unknown }).__entity : e) as { type?: unknown; id?: unknown } | null;
  if (o === null || typeof o !== 'object' || typeof o.type !== 'string' || typeof o.id !== 'string') throw new Unsupported('entity');
  return new EntityUid(o.type, o.id);
}

function entityOf(r: DirectRequest, uid: EntityUid): DirectEntity | undefined {
  for (const e of r.entities) if (e.uid.type === uid.type && e.uid.id === uid.id) return e;
  return undefined;
}

/** `a in b` for entities: equal, or b is a's parent (the hierarchy is two levels deep). */
function inEntity(r: DirectRequest, a: EntityUid, b: EntityUid): boolean {
  if (a.type === b.type && a.id === b.id) return true;
  const data = entityOf(r, a);
  return data !== undefined && data.parent.type === b.type && data.parent.id === b.id;
}

// ---- expressions ----

function fail(message: string): never {
  throw new CedarError(message);
}

function typeError(expected: string, v: Value): never {
  return fail(`type error: expected ${expected}, got ${typeName(v)}`);
}

function asBool(v: Value): boolean {
  return typeof v === 'boolean' ? v : typeError('bool', v);
}

function asLong(v: Value): bigint {
  return typeof v === 'bigint' ? v : typeError('long', v);
}

function asString(v: Value): string {
  return typeof v === 'string' ? v : typeError('string', v);
}

function asEntity(v: Value): EntityUid {
  return v instanceof EntityUid ? v : typeError('(entity of type `any_entity_type`)', v);
}

/**
 * The entities of `x in [ … ]`. Every element must be an entity, even after a match: Cedar checks
 * them all first, walking its sorted set, so the element reported is the first non-entity in
 * Cedar's value order (bool < long < string < entity < set < record < extension, extensions by
 * type name).
 */
function entitiesOf(set: CedarSet): EntityUid[] {
  const values = set.values();
  let first: Value | undefined;
  for (const v of values) if (!(v instanceof EntityUid) && (first === undefined || cedarRank(v) < cedarRank(first))) first = v;
  return first === undefined ? (values as EntityUid[]) : typeError('(entity of type `any_entity_type`)', first);
}

const RANK: Record<string, number> = { boolean: 0, bigint: 1, string: 2, entity: 3, set: 4, record: 5, datetime: 6, decimal: 7, duration: 8 };

/** Where a value's type falls in Cedar's order of values (only the type: errors name only that). */
function cedarRank(v: Value): number {
  return RANK[typeof v === 'object' ? v.kind : typeof v]!;
}

function asSet(v: Value): CedarSet {
  return v instanceof CedarSet ? v : typeError('set', v);
}

function asDecimal(v: Value): Decimal {
  return v instanceof Decimal ? v : typeError('decimal', v);
}

function asDatetime(v: Value): Datetime {
  return v instanceof Datetime ? v : typeError('datetime', v);
}

function asDuration(v: Value): Duration {
  return v instanceof Duration ? v : typeError('duration', v);
}

function checked(v: bigint, what: string): bigint {
  return v < I64_MIN || v > I64_MAX ? fail(`integer overflow while attempting to ${what}`) : v;
}

/** One key, one operand object: `{"==": {"left", "right"}}`. */
function node(n: unknown): [string, Record<string, unknown>] {
  if (n === null || typeof n !== 'object' || Array.isArray(n)) throw new Unsupported('node');
  const keys = Object.keys(n);
  if (keys.length !== 1) throw new Unsupported('node');
  return [keys[0]!, (n as Record<string, Record<string, unknown>>)[keys[0]!]!];
}

function expr(n: unknown): Expr {
  const [op, a] = node(n);
  if (a === null || typeof a !== 'object') {
    if (op === 'Value') return constant(literal(a));
    if (op === 'Var') return variable(a);
    throw new Unsupported(op);
  }
  switch (op) {
    case 'Value':
      return constant(literal(a));
    case '!': {
      const arg = expr(a['arg']);
      return (r) => !asBool(arg(r));
    }
    case 'neg': {
      const arg = expr(a['arg']);
      return (r) => {
        const v = asLong(arg(r));
        return checked(-v, `negate the value \`${v}\``);
      };
    }
    case '&&':
    case '||': {
      const left = expr(a['left']);
      const right = expr(a['right']);
      return op === '&&' ? (r) => asBool(left(r)) && asBool(right(r)) : (r) => asBool(left(r)) || asBool(right(r));
    }
    case '==':
      return operands(a, equals);
    case '!=':
      return operands(a, (x, y) => !equals(x, y));
    case '<':
    case '<=':
    case '>':
    case '>=':
      return operands(a, comparison(op));
    case '+':
    case '-':
    case '*':
      return operands(a, arithmetic(op));
    case 'in':
      return operands(a, (x, target, r) => {
        const e = asEntity(x);
        if (target instanceof EntityUid) return inEntity(r, e, target);
        if (!(target instanceof CedarSet)) return typeError('one of [set, (entity of type `any_entity_type`)]', target);
        return entitiesOf(target).some((t) => inEntity(r, e, t));
      });
    case 'contains':
      return operands(a, (set, item) => asSet(set).keys().has(keyOf(item)));
    case 'containsAll':
    case 'containsAny': {
      const all = op === 'containsAll';
      return operands(a, (left, right) => {
        const x = asSet(left).keys();
        const y = asSet(right).keys();
        for (const k of y) if (x.has(k) !== all) return !all;
        return all;
      });
    }
    case 'isEmpty': {
      const arg = expr(a['arg']);
      return (r) => asSet(arg(r)).keys().size === 0;
    }
    case 'hasTag':
    case 'getTag': {
      const get = op === 'getTag';
      return operands(a, (e, t, r) => {
        const uid = asEntity(e);
        const tag = asString(t);
        const data = entityOf(r, uid);
        if (!data) return get ? fail(`entity \`${uid}\` does not exist`) : false;
        const has = Object.hasOwn(data.tags, tag);
        if (!get) return has;
        return has ? data.tags[tag]! : fail(`\`${uid}\` does not have the tag \`${tag}\``);
      });
    }
    case '.': {
      const left = expr(a['left']);
      const attr = a['attr'];
      if (typeof attr !== 'string') throw new Unsupported('.');
      return (r) => getAttr(r, left(r), attr);
    }
    case 'has': {
      const left = expr(a['left']);
      const path = typeof a['attr'] === 'string' ? [a['attr']] : arrayOf(a['attr']);
      if (path.length === 0 || !path.every((p): p is string => typeof p === 'string')) throw new Unsupported('has');
      // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`.
      return (r) => {
        let at = left(r);
        for (let i = 0; i < path.length; i++) {
          if (!hasAttr(r, at, path[i]!)) return false;
          if (i < path.length - 1) at = getAttr(r, at, path[i]!);
        }
        return true;
      };
    }
    case 'like': {
      const left = expr(a['left']);
      const match = likePattern(a['pattern']);
      return (r) => match(asString(left(r)));
    }
    case 'is': {
      const left = expr(a['left']);
      const type = a['entity_type'];
      if (typeof type !== 'string') throw new Unsupported('is');
      const within = a['in'] === undefined ? null : expr(a['in']);
      return (r) => {
        const e = asEntity(left(r));
        if (e.type !== type) return false;
        if (within === null) return true;
        const target = within(r);
        if (target instanceof EntityUid) return inEntity(r, e, target);
        if (!(target instanceof CedarSet)) return typeError('one of [set, (entity of type `any_entity_type`)]', target);
        return entitiesOf(target).some((t) => inEntity(r, e, t));
      };
    }
    case 'if-then-else': {
      const cond = expr(a['if']);
      const then = expr(a['then']);
      const otherwise = expr(a['else']);
      return (r) => (asBool(cond(r)) ? then(r) : otherwise(r));
    }
    case 'Set': {
      const items = arrayOf(a).map(expr);
      return (r) => new CedarSet(items.map((item) => item(r)));
    }
    case 'Record': {
      if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Unsupported('Record');
      // Cedar evaluates the fields in its map's order, keys by UTF-8 bytes (which decides the error
      // reported when two fail); a JS object lists integer-like keys first, whatever the JSON's order.
      const fields = Object.entries(a)
        .sort(([x], [y]) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
        .map(([k, v]) => [k, expr(v)] as const);
      return (r) => new CedarRecord(new Map(fields.map(([k, f]) => [k, f(r)])));
    }
  }
  return extensionCall(op, arrayOf(a));
}

function variable(name: unknown): Expr {
  switch (name) {
    case 'principal':
      return (r) => r.principal;
    case 'action':
      return (r) => r.action;
    case 'resource':
      return (r) => r.resource;
    case 'context':
      return (r) => r.context;
  }
  throw new Unsupported('Var');
}

/**
 * A binary operator: both operands are evaluated, left first, before either's type is checked —
 * Cedar's order, which decides which error a policy with two faults reports.
 */
function operands(a: Record<string, unknown>, f: (x: Value, y: Value, r: DirectRequest) => Value): Expr {
  const left = expr(a['left']);
  const right = expr(a['right']);
  return (r) => f(left(r), right(r), r);
}

function constant(v: Value): Expr {
  return () => v;
}

/** `{"Value": …}`: booleans, strings, longs the JSON form carries exactly, entity uids. */
function literal(v: unknown): Value {
  switch (typeof v) {
    case 'boolean':
    case 'string':
      return v;
    case 'number':
      // Beyond 2^53 the JSON form has already rounded Cedar's i64; only wasm knows the value.
      if (!Number.isSafeInteger(v)) throw new Unsupported('long literal');
      return BigInt(v);
  }
  return entityLiteral(v);
}

function comparison(op: '<' | '<=' | '>' | '>='): (x: Value, y: Value) => boolean {
  const test =
    op === '<'
      ? (x: bigint, y: bigint) => x < y
      : op === '<='
        ? (x: bigint, y: bigint) => x <= y
        : op === '>'
          ? (x: bigint, y: bigint) => x > y
          : (x: bigint, y: bigint) => x >= y;
  return (x, y) => {
    if (typeof x === 'bigint' && typeof y === 'bigint') return test(x, y);
    // Which type Cedar names in the error: long first, then the left operand's.
    if (typeof x === 'bigint') return typeError('long', y);
    if (typeof y === 'bigint') return typeError('long', x);
    if (x instanceof Datetime) return test(x.ms, asDatetime(y).ms);
    if (x instanceof Duration) return test(x.ms, asDuration(y).ms);
    if (y instanceof Datetime) return typeError('datetime', x);
    if (y instanceof Duration) return typeError('duration', x);
    return typeError('one of [long, datetime, duration]', x);
  };
}

function arithmetic(op: '+' | '-' | '*'): (l: Value, r: Value) => bigint {
  const verb = op === '+' ? 'add' : op === '-' ? 'subtract' : 'multiply';
  return (l, r) => {
    const x = asLong(l);
    const y = asLong(r);
    const v = op === '+' ? x + y : op === '-' ? x - y : x * y;
    return checked(v, `${verb} the values \`${x}\` and \`${y}\``);
  };
}

function hasAttr(r: DirectRequest, v: Value, attr: string): boolean {
  if (v instanceof CedarRecord) return v.has(attr);
  if (v instanceof EntityUid) {
    const data = entityOf(r, v);
    return data !== undefined && Object.hasOwn(data.attrs, attr);
  }
  return typeError('one of [record, (entity of type `any_entity_type`)]', v);
}

function getAttr(r: DirectRequest, v: Value, attr: string): Value {
  if (v instanceof CedarRecord) {
    const got = v.get(attr);
    return got !== undefined ? got : fail(`record does not have the attribute \`${attr}\``);
  }
  if (v instanceof EntityUid) {
    const data = entityOf(r, v);
    if (!data) return fail(`entity \`${v}\` does not exist`);
    return Object.hasOwn(data.attrs, attr) ? data.attrs[attr]! : fail(`\`${v}\` does not have the attribute \`${attr}\``);
  }
  return typeError('one of [record, (entity of type `any_entity_type`)]', v);
}

/**
 * Cedar `like`: `*` matches any run of characters, everything else (including an escaped `\*`,
 * which the JSON form gives as a literal) matches itself. Greedy matching that backtracks only to
 * the last `*`: linear-ish in the text, whatever an agent sends (no regex backtracking blow-up).
 */
function likePattern(p: unknown): (s: string) => boolean {
  // Code units: a literal never holds half a surrogate pair, so units and code points agree.
  const units: (string | null)[] = []; // null = wildcard
  for (const el of arrayOf(p)) {
    if (el === 'Wildcard') units.push(null);
    else if (el !== null && typeof el === 'object' && typeof (el as { Literal?: unknown }).Literal === 'string') {
      for (const ch of (el as { Literal: string }).Literal.split('')) units.push(ch);
    } else throw new Unsupported('like');
  }
  return (s) => {
    let i = 0;
    let j = 0;
    let star = -1;
    let mark = 0;
    while (i < s.length) {
      if (j < units.length && units[j] !== null && units[j] === s[i]) {
        i++;
        j++;
      } else if (j < units.length && units[j] === null) {
        star = j++;
        mark = i;
      } else if (star >= 0) {
        j = star + 1;
        i = ++mark;
      } else return false;
    }
    while (j < units.length && units[j] === null) j++;
    return j === units.length;
  };
}

/** Extension functions and methods: decimal, datetime and duration; `ip` is left to wasm. */
function extensionCall(fn: string, argNodes: unknown[]): Expr {
  if (fn === 'decimal' || fn === 'datetime' || fn === 'duration') {
    const [op, text] = argNodes.length === 1 ? node(argNodes[0]) : ['', null];
    if (op !== 'Value' || typeof text !== 'string') throw new Unsupported(`${fn} of a computed string`);
    const v = fn === 'decimal' ? parseDecimal(text) : fn === 'datetime' ? parseDatetime(text) : parseDuration(text);
    if (!v) throw new Unsupported(`${fn}("${text}")`);
    return constant(v);
  }
  const args = argNodes.map(expr);
  const unary = (f: (v: Value) => Value): Expr => {
    if (args.length !== 1) throw new Unsupported(fn);
    const [x] = args as [Expr];
    return (r) => f(x(r));
  };
  const binaryFn = (f: (x: Value, y: Value) => Value): Expr => {
    if (args.length !== 2) throw new Unsupported(fn);
    const [x, y] = args as [Expr, Expr];
    return (r) => f(x(r), y(r));
  };
  switch (fn) {
    case 'lessThan':
      return binaryFn((x, y) => asDecimal(x).v < asDecimal(y).v);
    case 'lessThanOrEqual':
      return binaryFn((x, y) => asDecimal(x).v <= asDecimal(y).v);
    case 'greaterThan':
      return binaryFn((x, y) => asDecimal(x).v > asDecimal(y).v);
    case 'greaterThanOrEqual':
      return binaryFn((x, y) => asDecimal(x).v >= asDecimal(y).v);
    case 'offset':
      return binaryFn((x, y) => {
        const d = asDatetime(x).ms;
        const by = asDuration(y).ms;
        return new Datetime(checked(d + by, 'offset a datetime'));
      });
    case 'durationSince':
      return binaryFn((x, y) => {
        const d = asDatetime(x).ms;
        const since = asDatetime(y).ms;
        return new Duration(checked(d - since, 'compute a duration'));
      });
    case 'toDate':
      return unary((x) => {
        const ms = asDatetime(x).ms;
        return new Datetime(checked(ms - euclidMod(ms, DAY_MS), 'take the date of a datetime'));
      });
    case 'toTime':
      return unary((x) => new Duration(euclidMod(asDatetime(x).ms, DAY_MS)));
    case 'toDays':
      return unary((x) => asDuration(x).ms / DAY_MS);
    case 'toHours':
      return unary((x) => asDuration(x).ms / 3_600_000n);
    case 'toMinutes':
      return unary((x) => asDuration(x).ms / 60_000n);
    case 'toSeconds':
      return unary((x) => asDuration(x).ms / 1000n);
    case 'toMilliseconds':
      return unary((x) => asDuration(x).ms);
  }
  throw new Unsupported(`function ${fn}`);
}

function euclidMod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

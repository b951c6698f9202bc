/**
 * Cedar values for the direct evaluator (direct/compile.ts), and the rules Cedar applies to them:
 * equality across types, 64-bit longs, sets compared as sets.
 *
 * Representation: bool → boolean, Long → bigint (always in i64 range), String → string, and
 * classes for the rest. Records and sets that come from the request's normalised arguments stay
 * in their JSON form and are converted only where a policy reads them (most calls read a few
 * arguments out of many).
 */
import type { CedarJson } from '../normalise.js';

export type Value = boolean | bigint | string | EntityUid | CedarSet | CedarRecord | Decimal | Datetime | Duration;

/** A Cedar evaluation error: the policy is skipped and reported, as Cedar does. */
export class CedarError extends Error {}

export class EntityUid {
  readonly kind = 'entity';
  constructor(
    readonly type: string,
    readonly id: string,
  ) {}
  /** As Cedar writes an entity in its messages: the id escaped as Rust's `escape_debug` does. */
  toString(): string {
    return `${this.type}::"${escapeDebug(this.id)}"`;
  }
}

const SIMPLE_ESCAPES: Record<string, string> = { '\0': '\\0', '\t': '\\t', '\r': '\\r', '\n': '\\n', '\\': '\\\\', "'": "\\'", '"': '\\"' };
/** Rust's non-printable characters: categories C and Z, but the space. */
const NON_PRINTABLE = /[\p{C}\p{Z}]/u;
const UNASSIGNED = /\p{Cn}/u;
const GRAPHEME_EXTEND = /\p{Grapheme_Extend}/u;

/**
 * Rust's `str::escape_debug`: `\t \r \n \0 \\ \' \"`, `\u{hex}` for non-printable characters and for
 * a combining character at the start. A character unassigned in this runtime's Unicode tables may
 * be assigned in Cedar's (or not): the request goes to wasm rather than risk another message.
 */
export function escapeDebug(text: string): string {
  let out = '';
  let first = true;
  for (const c of text) {
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) out += simple;
    else if (c !== ' ' && (NON_PRINTABLE.test(c) || (first && GRAPHEME_EXTEND.test(c)))) {
      if (UNASSIGNED.test(c)) throw new Unrepresentable();
      out += `\\u{${c.codePointAt(0)!.toString(16)}}`;
    } else out += c;
    first = false;
  }
  return out;
}

export class Decimal {
  readonly kind = 'decimal';
  /** Scaled by 10^4, as Cedar stores it. */
  constructor(readonly v: bigint) {}
}

export class Datetime {
  readonly kind = 'datetime';
  /** Milliseconds since the epoch. */
  constructor(readonly ms: bigint) {}
}

export class Duration {
  readonly kind = 'duration';
  constructor(readonly ms: bigint) {}
}

export class CedarSet {
  readonly kind = 'set';
  private keyed: Set<string> | undefined;
  private converted: Value[] | undefined;
  /** Either converted items or the JSON array of the arguments they come from. */
  constructor(
    private readonly items: Value[] | null,
    private readonly json: readonly CedarJson[] | null = null,
  ) {}
  values(): Value[] {
    this.converted ??= this.items ?? this.json!.map(fromJson);
    return this.converted;
  }
  /** Canonical keys of the distinct elements: membership and set equality without quadratic compares. */
  keys(): Set<string> {
    if (!this.keyed) {
      this.keyed = new Set();
      for (const v of this.values()) this.keyed.add(keyOf(v));
    }
    return this.keyed;
  }
}

export class CedarRecord {
  readonly kind = 'record';
  /** Either fields already converted or a JSON record (normalised arguments). */
  constructor(
    private readonly fields: Map<string, Value> | null,
    private readonly json: { readonly [key: string]: CedarJson } | null = null,
  ) {}
  has(attr: string): boolean {
    return this.fields ? this.fields.has(attr) : Object.hasOwn(this.json!, attr);
  }
  get(attr: string): Value | undefined {
    if (this.fields) return this.fields.get(attr);
    return Object.hasOwn(this.json!, attr) ? fromJson(this.json![attr]!) : undefined;
  }
  attrs(): string[] {
    return this.fields ? [...this.fields.keys()] : Object.keys(this.json!);
  }
}

export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;

/** A value of the normalised request (normalise.ts): numbers are safe integers, `__extn` only decimal or datetime. */
export function fromJson(j: CedarJson): Value {
  switch (typeof j) {
    case 'number':
      return BigInt(j);
    case 'string':
    case 'boolean':
      return j;
  }
  if (Array.isArray(j)) return new CedarSet(null, j);
  const extn = Object.hasOwn(j, '__extn') ? (j['__extn'] as { fn?: unknown; arg?: unknown }) : undefined;
  if (extn && extn.fn === 'decimal' && typeof extn.arg === 'string') {
    const d = parseDecimal(extn.arg);
    if (d) return d;
  }
  // normalise.ts never produces any other `__extn`; refuse rather than guess.
  if (extn) throw new Unrepresentable();
  return new CedarRecord(null, j);
}

/** A request value the direct evaluator does not model: the call goes to wasm. */
export class Unrepresentable extends Error {}

const DECIMAL = /^(-?)(\d+)\.(\d{1,4})$/;

/** Cedar's `decimal("…")`: at most 4 fractional digits, i64 range once scaled. */
export function parseDecimal(text: string): Decimal | null {
  const m = DECIMAL.exec(text);
  if (!m) return null;
  const magnitude = BigInt(m[2]!) * 10_000n + BigInt(m[3]!.padEnd(4, '0'));
  const v = m[1] ? -magnitude : magnitude;
  return v < I64_MIN || v > I64_MAX ? null : new Decimal(v);
}

export function typeName(v: Value): string {
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'bigint':
      return 'long';
    case 'string':
      return 'string';
  }
  return v instanceof EntityUid ? `(entity of type \`${v.type}\`)` : v.kind;
}

/** Cedar's `==`: never an error; values of different types are unequal. */
export function equals(a: Value, b: Value): boolean {
  if (typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'entity':
      return a.type === (b as EntityUid).type && a.id === (b as EntityUid).id;
    case 'decimal':
      return a.v === (b as Decimal).v;
    case 'datetime':
    case 'duration':
      return a.ms === (b as Datetime).ms;
    case 'set': {
      const x = a.keys();
      const y = (b as CedarSet).keys();
      if (x.size !== y.size) return false;
      for (const k of x) if (!y.has(k)) return false;
      return true;
    }
    case 'record': {
      const r = b as CedarRecord;
      const ka = a.attrs();
      if (ka.length !== r.attrs().length) return false;
      return ka.every((k) => r.has(k) && equals(a.get(k)!, r.get(k)!));
    }
  }
}

/**
 * An injective text for a value, equal exactly when `equals` says so: strings and names are
 * JSON-quoted, sets and records sorted.
 */
export function keyOf(v: Value): string {
  switch (typeof v) {
    case 'boolean':
      return v ? 't' : 'f';
    case 'bigint':
      return `l${v}`;
    case 'string':
      return `s${JSON.stringify(v)}`;
  }
  switch (v.kind) {
    case 'entity':
      return `e${JSON.stringify(v.type)}${JSON.stringify(v.id)}`;
    case 'decimal':
      return `d${v.v}`;
    case 'datetime':
      return `T${v.ms}`;
    case 'duration':
      return `D${v.ms}`;
    case 'set':
      return `[${[...v.keys()].sort().join(',')}]`;
    case 'record':
      return `{${v
        .attrs()
        .sort()
        .map((k) => `${JSON.stringify(k)}:${keyOf(v.get(k)!)}`)
        .join(',')}}`;
  }
}

/**
 * Tool arguments → Cedar context JSON.
 *
 * MCP tool arguments are arbitrary JSON chosen by an untrusted agent. Cedar's JSON value format
 * rejects some JSON outright (floats, `null`, integers ≥ 2^63) and gives a special meaning to
 * some records (`{"__entity": …}` becomes an entity reference, `{"__extn": …}` an extension value
 * such as an IP address), so an agent could otherwise break every request or forge values a
 * policy trusts. `context.arguments` is therefore built by these rules, applied at every depth:
 *
 * | argument value                         | in Cedar                                               |
 * |----------------------------------------|--------------------------------------------------------|
 * | string, boolean                        | unchanged                                              |
 * | integer within ±(2^53−1)               | Long: `context.arguments.amount < 1000`                |
 * | integer beyond ±(2^53−1)               | String of its decimal digits: `"12345678901234567000"` |
 * | number with a fraction, at most 4      | `decimal`: `context.arguments.ratio.lessThan(decimal("1.5"))` |
 * |   fractional digits, in Cedar's decimal range (about ±9.2e14) |                                  |
 * | any other number (`1e-7`, `1.23456`)   | String of the JS number text: `"1e-7"`, `"1.23456"`    |
 * | `null`                                 | left out: in a record the key is absent (`has` is false), in an array the element is dropped |
 * | array                                  | Set (see below)                                        |
 * | object                                 | Record; keys starting with `__` get one more `_`       |
 *
 * - Keys: `__entity` arrives as `___entity`, `___x` as `____x`; all other keys are unchanged. The
 *   mapping is one-to-one, so no two argument keys collide, and no record can be read as an entity
 *   reference or extension value. Write `context.arguments["___entity"]` to read such a key.
 * - Arrays become Cedar *sets*: order and duplicates are lost (`[1, 1, 2]` equals `[2, 1]`) and
 *   there is no indexing. Test them with `.contains(x)`, `.containsAll([…])`, `.containsAny([…])`,
 *   `.isEmpty()`. Elements may have different types.
 * - Types matter: a Long and a decimal do not compare. `context.arguments.amount < 1000` is an
 *   evaluation *error* when the agent sends `999.5` (a decimal) or `1e30` (a string), and an error
 *   denies the call; `.lessThan(decimal("1000.0"))` likewise errors on `999`. Cedar cannot test a
 *   value's type, so a number that arrives sometimes whole and sometimes fractional cannot be
 *   compared by one policy without such calls being denied.
 * - Precision: JSON numbers were already parsed into JavaScript doubles before Cedar sees them, so
 *   an integer above 2^53 arrives as the shortest text of that double, not as the agent wrote it.
 * - Limits: arguments nested deeper than 32 containers, or with more than 10 000 values in all,
 *   or containing text that is not valid Unicode (a lone UTF-16 surrogate) are refused as a whole
 *   and the call is denied.
 * - `arguments` absent or `null` is the empty record, so `context.arguments has x` is false.
 */

/** A value in Cedar's JSON format, as produced here. */
export type CedarJson = string | number | boolean | CedarJson[] | { [key: string]: CedarJson };

export type Normalised = { ok: true; value: CedarJson } | { ok: false; reason: string };

export const MAX_DEPTH = 32;
export const MAX_NODES = 10_000;

/** Cedar decimal: i64 scaled by 10^4. */
const DECIMAL_MIN = -(2n ** 63n);
const DECIMAL_MAX = 2n ** 63n - 1n;
const DECIMAL_TEXT = /^-?\d+\.\d{1,4}$/;

class Refused extends Error {}

/** Normalises `params.arguments` of an MCP request; total (never throws). */
export function normaliseArguments(args: unknown): Normalised {
  if (args === null || args === undefined) return { ok: true, value: {} };
  const budget = { nodes: 0 };
  try {
    const value = walk(args, 1, budget);
    return value === undefined ? { ok: true, value: {} } : { ok: true, value };
  } catch (e) {
    // Refused carries our own reason; anything else (a hostile getter, a stack overflow) is
    // reported without internals.
    return { ok: false, reason: e instanceof Refused ? e.message : 'arguments could not be read' };
  }
}

/** Returns undefined for values that are left out (null, undefined). */
function walk(v: unknown, depth: number, budget: { nodes: number }): CedarJson | undefined {
  if (++budget.nodes > MAX_NODES) throw new Refused(`arguments have more than ${MAX_NODES} values`);
  switch (typeof v) {
    case 'string':
      return wellFormed(v);
    case 'boolean':
      return v;
    case 'number':
      return number(v);
    case 'bigint':
      return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v.toString();
    case 'undefined':
      return undefined;
    case 'object': {
      if (v === null) return undefined;
      if (depth > MAX_DEPTH) throw new Refused(`arguments are nested deeper than ${MAX_DEPTH} levels`);
      if (Array.isArray(v)) {
        const out: CedarJson[] = [];
        for (const item of v) {
          const n = walk(item, depth + 1, budget);
          if (n !== undefined) out.push(n);
        }
        return out;
      }
      const out: { [key: string]: CedarJson } = {};
      for (const key of Object.keys(v)) {
        const n = walk((v as Record<string, unknown>)[key], depth + 1, budget);
        // Escaping also turns "__proto__" into "___proto__", so plain assignment is safe here.
        if (n !== undefined) out[escapeKey(wellFormed(key))] = n;
      }
      return out;
    }
    default:
      throw new Refused(`arguments contain a ${typeof v}, which JSON cannot carry`);
  }
}

/**
 * `__x` → `___x`. One-to-one (escaped keys start with `___`, unescaped ones never with `__`), and
 * no result equals Cedar's escapes `__entity`, `__extn` or `__expr`.
 */
export function escapeKey(key: string): string {
  return key.startsWith('__') ? `_${key}` : key;
}

function wellFormed(s: string): string {
  // Cedar's JSON reader rejects lone surrogates by throwing; refuse them with a clear reason.
  if (!isWellFormed(s)) throw new Refused('arguments contain text that is not valid Unicode');
  return s;
}

/** Whether `s` is a string of valid Unicode (no lone surrogates), as Cedar's strings must be. */
export function isWellFormed(s: unknown): boolean {
  return typeof s === 'string' && (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function number(n: number): CedarJson {
  if (Number.isSafeInteger(n)) return n === 0 ? 0 : n; // -0 → 0
  if (Number.isInteger(n)) return integerText(n);
  const text = String(n); // shortest text that reads back as n; also NaN/Infinity
  // Below 9e14 the scaled value is well inside i64: skip the exact (BigInt) range check.
  return DECIMAL_TEXT.test(text) && (Math.abs(n) < 9e14 || decimalInRange(text)) ? { __extn: { fn: 'decimal', arg: text } } : text;
}

/** Decimal digits of a large integral double, without the exponent form String() uses from 1e21. */
function integerText(n: number): string {
  const text = String(n);
  const m = /^(-?)(\d)(?:\.(\d+))?e\+(\d+)$/.exec(text);
  if (!m) return text;
  const digits = m[2] + (m[3] ?? '');
  return m[1] + digits + '0'.repeat(Number(m[4]) - (digits.length - 1));
}

function decimalInRange(text: string): boolean {
  const [int, frac] = text.split('.') as [string, string];
  const scaled = BigInt(int) * 10_000n + (text.startsWith('-') ? -1n : 1n) * BigInt(frac.padEnd(4, '0'));
  return scaled >= DECIMAL_MIN && scaled <= DECIMAL_MAX;
}

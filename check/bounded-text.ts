// What `thoughtgate check` prints comes partly from the cluster, and some of it from agents (an
// ApprovalRequest's tool and channel are written by an agent's ServiceAccount). Printed raw, an
// escape sequence could move the cursor over a ✖ line, write the admin's clipboard (OSC 52) or
// reverse the text (U+202E); a megabyte-long value would bury the report. So every string is
// bounded in length; for a terminal, lists are bounded in count and every control character is
// shown as an escape. Pure.
import type { CheckResult } from './model.js';

/** One item (a namespace, a pod, an ApprovalRequest line). */
export const MAX_ITEM = 200;
/** A message or a hint (ours, with values from the cluster in it). */
export const MAX_TEXT = 1000;
/** Items shown in a terminal; the rest are counted. */
export const MAX_ITEMS = 20;

// C0 and C1 controls and DEL (Cc), format characters (Cf: the bidirectional controls U+202A–202E,
// U+2066–2069, U+200E/200F, U+061C, zero-width characters, tags), line and paragraph separators,
// lone surrogates. No flag: tested one code point at a time.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

const escapeOne = (c: string): string => {
  const cp = c.codePointAt(0)!;
  return cp > 0xffff ? `\\u{${cp.toString(16).toUpperCase()}}` : `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
};

/**
 * `s` cut to at most `max` characters (then `… (+N)`: N more UTF-16 units not shown); with
 * `terminal`, every unsafe character shown as `\uXXXX` (counted as shown). Reads only what it keeps.
 */
export function boundText(s: string, max: number, terminal: boolean): string {
  let out = '';
  let used = 0;
  for (const ch of s) {
    const piece = terminal && UNSAFE.test(ch) ? escapeOne(ch) : ch;
    if (out.length + piece.length > max) return `${out}… (+${s.length - used})`;
    out += piece;
    used += ch.length;
  }
  return out;
}

/**
 * Each item bounded; for a terminal, the list cut to its first MAX_ITEMS, then `… and N more`
 * (JSON keeps every item: a program reading it may need the whole list, e.g. every permission
 * --pre found missing).
 */
export function boundItems(items: readonly string[], terminal: boolean): string[] {
  const kept = terminal ? items.slice(0, MAX_ITEMS) : items;
  const shown = kept.map((i) => boundText(i, MAX_ITEM, terminal));
  return kept.length < items.length ? [...shown, `… and ${items.length - kept.length} more (-o json lists every one)`] : shown;
}

/** A result with every string it carries bounded (and for a terminal escaped, its items counted). */
export function boundResult(r: CheckResult, terminal: boolean): CheckResult {
  return {
    ...r,
    id: boundText(r.id, MAX_TEXT, terminal),
    message: boundText(r.message, MAX_TEXT, terminal),
    ...(r.hint !== undefined ? { hint: boundText(r.hint, MAX_TEXT, terminal) } : {}),
    ...(r.items !== undefined ? { items: boundItems(r.items, terminal) } : {}),
  };
}

/**
 * JSON text with what JSON.stringify leaves raw but a terminal acts on (DEL, C1 controls, format
 * characters such as U+202E, U+2028/2029) written as `\uXXXX` escapes: the same document, parsed.
 * Only string contents can hold them, so the escapes are always inside a string.
 */
export function escapeJsonText(json: string): string {
  return json.replace(/[\x7f-\x9f\p{Cf}\u2028\u2029]/gu, (c) =>
    Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

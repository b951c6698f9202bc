// Redaction of tool arguments before they are shown in Slack. Pure.
// A key matching any of the channel's `redact` globs, at any depth (inside objects and arrays),
// has its whole value replaced by "[redacted]" — objects and arrays included, so a secret nested
// under e.g. `credentials` disappears with it. Globs: `*` any run of characters, `?` one
// character, `\` escapes; matched against the whole key, case-insensitively ("*token*" hides
// "accessToken" and "TOKEN").

import { compileGlobs } from '../api/glob.js';

export const REDACTED = '[redacted]';
/** Deeper structures are cut off (bounded work; arguments come from an untrusted agent). */
export const MAX_DEPTH = 32;

/** One case-insensitive matcher for a list of key globs; an empty list matches nothing. */
export function compileKeyMatcher(globs: readonly string[]): (key: string) => boolean {
  return compileGlobs(globs, { caseInsensitive: true });
}

export interface RedactResult {
  value: unknown;
  /** How many values were hidden. */
  redacted: number;
}

/** Returns a copy of `value` with matching keys' values replaced; never mutates the input. */
export function redactArguments(value: unknown, globs: readonly string[]): RedactResult {
  const matches = compileKeyMatcher(globs);
  let redacted = 0;
  const walk = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (depth >= MAX_DEPTH) return '[too deep]';
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    // A null-prototype object keeps a "__proto__" key as an ordinary key.
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (matches(k)) {
        out[k] = REDACTED;
        redacted++;
      } else out[k] = walk(x, depth + 1);
    }
    return out;
  };
  return { value: walk(value, 0), redacted };
}

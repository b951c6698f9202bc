// Durations are written as in Kubernetes and Go: "500ms", "30s", "10m", "1h30m".
// A bare number is refused on purpose: "30" could mean seconds or milliseconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Parses a duration string to milliseconds, or returns an error message. */
export function parseDuration(text: string): number | { error: string } {
  const s = text.trim();
  if (s === '') return { error: 'empty duration' };
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const start = PART.lastIndex;
    const m = PART.exec(s);
    if (!m) {
      return { error: `invalid duration "${text}" at "${s.slice(start)}": use a number with a unit (ms, s, m, h, d), e.g. "30s" or "1h30m"` };
    }
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  if (!Number.isFinite(total)) return { error: `duration "${text}" is too large` };
  return Math.round(total);
}

/** Formats milliseconds as the shortest exact duration string ("90s" → "1m30s"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}

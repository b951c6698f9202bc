// Replaces one string value inside a JSON text, leaving every other byte as it was (ids, numbers
// beyond double precision, escapes): for the request forwarded with a canonical resource URI.
// The text has already been parsed by lib/jsonrpc.ts (valid JSON, no duplicate keys). Pure.

const WS = new Set([' ', '\t', '\n', '\r']);

function skipWs(s: string, i: number): number {
  while (i < s.length && WS.has(s[i]!)) i++;
  return i;
}

/** i at an opening quote: the index after the closing one, or -1. */
function endOfString(s: string, i: number): number {
  for (i++; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '"') return i + 1;
  }
  return -1;
}

/** i at the start of any value: the index after it, or -1. Iterative, so depth costs no stack. */
function endOfValue(s: string, i: number): number {
  const c = s[i];
  if (c === '"') return endOfString(s, i);
  if (c !== '{' && c !== '[') {
    while (i < s.length && !WS.has(s[i]!) && s[i] !== ',' && s[i] !== '}' && s[i] !== ']') i++;
    return i;
  }
  let depth = 0;
  for (; i < s.length; i++) {
    const d = s[i];
    if (d === '"') {
      i = endOfString(s, i) - 1;
      if (i < 0) return -1;
    } else if (d === '{' || d === '[') depth++;
    else if ((d === '}' || d === ']') && --depth === 0) return i + 1;
  }
  return -1;
}

/**
 * The JSON text with the string at `path` (object keys from the top) replaced by `value`; null
 * when there is no string there.
 */
export function replaceJsonString(text: string, path: readonly string[], value: string): string | null {
  let i = 0;
  for (const key of path) {
    i = skipWs(text, i);
    if (text[i] !== '{') return null;
    i++;
    for (;;) {
      i = skipWs(text, i);
      if (text[i] !== '"') return null;
      const end = endOfString(text, i);
      if (end < 0) return null;
      const k = JSON.parse(text.slice(i, end)) as string;
      i = skipWs(text, end);
      if (text[i] !== ':') return null;
      i = skipWs(text, i + 1);
      if (k === key) break;
      i = endOfValue(text, i);
      if (i < 0) return null;
      i = skipWs(text, i);
      if (text[i] !== ',') return null;
      i++;
    }
  }
  if (text[i] !== '"') return null;
  const end = endOfString(text, i);
  if (end < 0) return null;
  return `${text.slice(0, i)}${JSON.stringify(value)}${text.slice(end)}`;
}

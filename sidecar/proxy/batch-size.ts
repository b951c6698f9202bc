// Whether a body is a JSON array of more than `max` elements, found by scanning only as far as the
// (max+1)th element: a batch over limits.maxBatchMessages is refused before the full parse, which
// for a 4 MiB batch of tiny messages blocked the event loop for hundreds of milliseconds. Pure.
// For valid JSON the count is exact; for invalid JSON a refusal is all that is at stake either way.

const QUOTE = 34,
  BACKSLASH = 92,
  COMMA = 44,
  OPEN_SQ = 91,
  CLOSE_SQ = 93,
  OPEN_CURLY = 123,
  CLOSE_CURLY = 125;

export function batchExceeds(text: string, max: number): boolean {
  let i = 0;
  const n = text.length;
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  if (i >= n || text.charCodeAt(i) !== OPEN_SQ) return false;
  i++;
  let depth = 1;
  let elements = 0;
  let sawValue = false;
  let inString = false;
  for (; i < n && depth > 0; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_SQ || c === OPEN_CURLY) depth++;
    else if (c === CLOSE_SQ || c === CLOSE_CURLY) depth--;
    else if (c === COMMA && depth === 1) {
      if (++elements >= max) return true; // a comma after the max-th element starts one more
      continue;
    }
    if (depth >= 1 && !isSpace(c)) sawValue = true;
  }
  return sawValue && elements + 1 > max;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

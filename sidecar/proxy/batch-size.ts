// Whether a body is a JSON array of more than `max` elements, found by scanning only as far as the
// (max+1)th element: a batch over limits.maxBatchMessages is refused before the full parse, which
// for a 4 MiB batch of tiny messages blocked the event loop for hundreds of milliseconds. Pure.
// For valid JSON the count is exact; for invalid JSON a refusal is all that is at stake either way.

import { BACKSLASH, COMMA, LBRACE, LBRACKET, QUOTE, RBRACE, RBRACKET } from '../../lib/char-codes.js';

export function batchExceeds(text: string, max: number): boolean {
  let i = 0;
  const n = text.length;
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  if (i >= n || text.charCodeAt(i) !== LBRACKET) return false;
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
    else if (c === LBRACKET || c === LBRACE) depth++;
    else if (c === RBRACKET || c === RBRACE) depth--;
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

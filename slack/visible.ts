// Agent-controlled text shown to a human approver must show what it is. Every character that
// does not print, or that changes how the text around it reads, is replaced by a visible escape
// (`\u202E`, `\u{E0041}` beyond the BMP). Pure.
//
// Escaped, as classes rather than lists:
//   - Cc (C0 and C1 controls, DEL), Cf (format: bidirectional controls U+202A–202E and
//     U+2066–2069, U+200E/200F, zero-width U+200B–200D, U+2060, U+FEFF, tags U+E0000–E007F, …),
//     Zl and Zp (line and paragraph separators), Cs (lone surrogates), Co (private use) and Cn
//     (unassigned: a later Unicode may make them anything);
//   - Default_Ignorable_Code_Point (variation selectors, Hangul fillers, U+034F, …) and U+2800
//     (braille blank), which print as nothing;
//   - spaces other than U+0020 (Zs: no-break, em, ideographic…), which look like one;
//   - combining marks except on a letter or digit of a non-ASCII script (overlays such as U+0338
//     that strike or disguise identifiers, paths and JSON; `e` + U+0301 shows as `e\u0301`).
// `\n` survives only where the caller says it is layout (pretty-printed JSON, whose strings
// never hold a raw newline).
const HIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u2800]|(?! )\p{Zs}|(?<!(?![\x00-\x7f])[\p{L}\p{N}]\p{M}*)\p{M}/gu;

function escapeOne(c: string): string {
  const cp = c.codePointAt(0)!;
  return cp > 0xffff ? `\\u{${cp.toString(16).toUpperCase()}}` : `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Escapes what does not show. `keepNewlines`: `\n` is layout here (pretty JSON). */
export function escapeInvisible(s: string, keepNewlines = false): string {
  return s.replace(HIDDEN, (c) => (keepNewlines && c === '\n' ? c : escapeOne(c)));
}

/**
 * A single-line agent value as text: backslashes doubled first, so an agent typing `\u202E`
 * literally shows `\\u202E` and cannot pass for an escaped control character.
 */
export function visibleText(s: string): string {
  return escapeInvisible(s.replace(/\\/g, '\\\\'));
}

// Globs, as the config documents them: on tool names, resource URIs, prompt names, methods,
// sources, egress hosts and redacted argument keys.
// `*` matches any run of characters (including "/"), `?` exactly one, `\` escapes the next
// character. Compiled once per config snapshot into one anchored RegExp per list.

export type Matcher = (value: string) => boolean;

const REGEX_SPECIAL = /[.+^${}()|[\]\\/]/;

function globToRegexSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) {
      const next = glob[++i]!;
      out += REGEX_SPECIAL.test(next) || next === '*' || next === '?' ? `\\${next}` : next;
    } else if (c === '*') {
      out += '[\\s\\S]*';
    } else if (c === '?') {
      out += '[\\s\\S]';
    } else {
      out += REGEX_SPECIAL.test(c) ? `\\${c}` : c;
    }
  }
  return out;
}

const ALWAYS: Matcher = () => true;
const NEVER: Matcher = () => false;

/** One matcher for a list of globs: true when any glob matches the whole value. */
export function compileGlobs(globs: string | readonly string[] | undefined, options: { caseInsensitive?: boolean } = {}): Matcher {
  if (globs === undefined) return ALWAYS;
  const list = typeof globs === 'string' ? [globs] : globs;
  if (list.length === 0) return NEVER;
  if (list.includes('*')) return ALWAYS;
  // Plain names are the common case; a Set lookup beats a RegExp there.
  const literals = list.every((g) => !/[*?\\]/.test(g));
  if (literals && !options.caseInsensitive) {
    const set = new Set(list);
    return (v) => set.has(v);
  }
  const re = new RegExp(`^(?:${list.map(globToRegexSource).join('|')})$`, options.caseInsensitive ? 'i' : '');
  return (v) => re.test(v);
}

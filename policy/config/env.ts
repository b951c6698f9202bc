// ${VAR} substitution in a parsed configuration document.
//
// It runs on the parsed value, never on the raw YAML text, and only on string scalars: whatever
// a variable holds (newlines, ": ", "- evil: true") stays inside the one string it was written in
// and cannot change the document's structure. Keys are never substituted.
//
// Syntax:
//   ${NAME}           the variable's value; an error if it is unset
//   ${NAME:-default}  the default when the variable is unset or empty (as in POSIX sh); the
//                     default is literal text up to the first "}" and is not itself expanded
//   $${               a literal "${" (scanning left to right)
//   $                 any other "$" is literal, so "pa$$word" and "cost: $5" are left alone
// NAME is [A-Za-z_][A-Za-z0-9_]*.

export type Env = Record<string, string | undefined>;
export type DocPath = (string | number)[];
export interface PathError {
  path: DocPath;
  message: string;
}
export interface SubstituteResult {
  value: unknown;
  errors: PathError[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One `${...}` reference; `fallback` is the text after ":-" when present. */
type Resolve = (name: string, fallback: string | undefined) => string | { error: string };

/** Expands the references in one string; errors are messages without a path. */
export function expandString(s: string, resolve: Resolve): { value: string; errors: string[] } {
  const errors: string[] = [];
  let out = '';
  let i = 0;
  while (i < s.length) {
    const d = s.indexOf('$', i);
    if (d < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, d);
    if (s.startsWith('$${', d)) {
      out += '${';
      i = d + 3;
      continue;
    }
    if (s[d + 1] !== '{') {
      out += '$';
      i = d + 1;
      continue;
    }
    const close = s.indexOf('}', d + 2);
    if (close < 0) {
      errors.push(`unterminated variable reference "${s.slice(d)}" (missing "}"); write $\${ for a literal "\${"`);
      out += s.slice(d);
      break;
    }
    const ref = s.slice(d, close + 1);
    const body = s.slice(d + 2, close);
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    const fallback = sep < 0 ? undefined : body.slice(sep + 2);
    i = close + 1;
    if (!NAME.test(name)) {
      errors.push(
        `invalid variable reference "${ref}": use \${NAME} or \${NAME:-default}, NAME being letters, digits and "_" not starting with a digit; write $\${ for a literal "\${"`,
      );
      out += ref;
      continue;
    }
    const r = resolve(name, fallback);
    if (typeof r === 'string') out += r;
    else {
      errors.push(r.error);
      out += ref;
    }
  }
  return { value: out, errors };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Applies `expand` to every string scalar at any depth; returns a new value (the input is not changed). */
function mapStrings(doc: unknown, expand: (s: string) => { value: string; errors: string[] }): SubstituteResult {
  const errors: PathError[] = [];
  const walk = (v: unknown, path: DocPath): unknown => {
    if (typeof v === 'string') {
      const r = expand(v);
      for (const message of r.errors) errors.push({ path: [...path], message });
      return r.value;
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...path, k]);
      return out;
    }
    return v;
  };
  return { value: walk(doc, []), errors };
}

/** Substitutes `${VAR}` references from `env` in every string scalar of `doc`. */
export function substituteEnv(doc: unknown, env: Env): SubstituteResult {
  const resolve: Resolve = (name, fallback) => {
    // Own properties only: a variable named "constructor" must not resolve to Object.prototype's.
    const v = Object.hasOwn(env, name) ? env[name] : undefined;
    if (fallback !== undefined) return v === undefined || v === '' ? fallback : v;
    if (v === undefined) return { error: `environment variable ${name} is not set` };
    return v;
  };
  return mapStrings(doc, (s) => expandString(s, resolve));
}

/**
 * The value a reference without a default takes when its real value is unknown: "1" is a valid
 * host, port, path segment and name, so https://${HOST}:${PORT}/mcp stays a URL (https://1:1/mcp).
 */
export const VALIDATION_PLACEHOLDER = '1';

/**
 * For validating a document whose variables are only known where it runs (the operator checks a
 * GovernancePolicy whose values come from the pod's environment): each reference becomes its
 * default, or VALIDATION_PLACEHOLDER, which keeps `https://${HOST}:${PORT}/mcp` a valid URL. Only syntax errors are reported.
 */
export function substituteForValidation(doc: unknown): SubstituteResult {
  return mapStrings(doc, (s) => expandString(s, (_name, fallback) => fallback ?? VALIDATION_PLACEHOLDER));
}

// thoughtgate.yaml: read → parse YAML → substitute ${VAR} → validate, with every problem reported
// as one line `file:line:col: path: message` that points at the offending spot in the file.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { ConfigFileSchema } from '../../api/config.js';
import type { ConfigFile } from '../../api/config.js';
import { formatPath } from '../../api/issues.js';
import { substituteEnv } from './env.js';
import type { DocPath, Env } from './env.js';
import { canonicalJson } from '../../api/canonical.js';
import { describeError } from '../../lib/describe-error.js';

export type { Env };
export type ParseResult = { ok: true; config: ConfigFile; hash: string } | { ok: false; errors: string[] };

/**
 * Content hash of a configuration: the first 16 hex digits (64 bits) of the SHA-256 of its
 * canonical JSON. It tells "did the config change", not a security boundary, so 64 bits is plenty
 * and keeps it short in logs, metrics labels and annotations.
 */
export function configHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}

interface Located {
  offset: number;
  text: string;
}

/** The node at `path`, or the nearest existing parent; aliases are followed. */
function nodeAt(doc: Document, path: DocPath): YamlNode | null {
  let node: unknown = doc.contents;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc) ?? node;
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      next = pair?.value ?? undefined;
      // `key:` with nothing after it may have no value node at all: point at the key.
      if (pair && next === undefined) return isScalar(pair.key) ? pair.key : (node as YamlNode);
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (next === undefined || next === null) return node as YamlNode | null;
    node = next;
  }
  return node as YamlNode | null;
}

/** The key node of `key` in the mapping at `path` (for "unknown key" errors). */
function keyNodeAt(doc: Document, path: DocPath, key: string): YamlNode | null {
  let node = nodeAt(doc, path);
  if (isAlias(node)) node = node.resolve(doc) ?? node;
  if (!isMap(node)) return null;
  const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  return pair && isScalar(pair.key) ? pair.key : null;
}

function offsetOf(node: YamlNode | null): number {
  return node?.range?.[0] ?? 0;
}

function issueLocation(doc: Document, issue: z.core.$ZodIssue): number {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
    const key = keyNodeAt(doc, path, issue.keys[0]!);
    if (key) return offsetOf(key);
  }
  return offsetOf(nodeAt(doc, path));
}

/** True when the last key of `path` is absent from an object that exists (a key left out, not a null value). */
function isMissingKey(root: unknown, path: ReadonlyArray<PropertyKey>): boolean {
  if (path.length === 0) return false;
  let v = root;
  for (const seg of path.slice(0, -1)) {
    if (typeof v !== 'object' || v === null) return false;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Object.hasOwn(v, path[path.length - 1]!);
}

/** zod says "expected string, received undefined" for a key left out; say "required" instead. */
function issueMessage(issue: z.core.$ZodIssue, root: unknown): string {
  if (issue.code === 'custom' || !isMissingKey(root, issue.path)) return issue.message;
  const m = /^Invalid input: (expected [^,]+), received undefined$/.exec(issue.message);
  return `required (${m ? m[1] : issue.message})`;
}

function isPrefix(prefix: DocPath, path: ReadonlyArray<PropertyKey>): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => p === path[i]);
}

/** yaml's messages end in " at line L, column C:\n\n<snippet>"; we print the position ourselves. */
function yamlMessage(message: string): string {
  return message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
}

/** A YAML document read for validation: its value, and where each path of it is in the file. */
export interface ReadYaml {
  doc: Document;
  raw: unknown;
  /** `file:line:col` of an offset in the text. */
  at: (offset: number) => string;
}

/**
 * Parses one YAML document for validation (duplicate keys refused, aliases bounded); every problem
 * as `file:line:col: message`. `what` completes "is empty; expected …".
 */
export function readYaml(text: string, file: string, what: string): { ok: true; yaml: ReadYaml } | { ok: false; errors: string[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };

  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ? `${file}:${e.linePos[0].line}:${e.linePos[0].col}` : at(e.pos[0]);
        if (e.code === 'MULTIPLE_DOCS')
          return `${pos}: only one YAML document is allowed; remove this "---" and what follows, or merge it into the first document`;
        return `${pos}: ${yamlMessage(e.message)}`;
      }),
    };
  }
  if (doc.contents === null) {
    return { ok: false, errors: [`${file}: is empty; expected ${what}`] };
  }

  // An alias to a missing anchor is not a parse error in yaml, but toJS() throws on it.
  const unresolved: string[] = [];
  visit(doc, {
    Alias(_key, node) {
      if (!node.resolve(doc)) unresolved.push(`${at(offsetOf(node))}: unknown alias "*${node.source}" (no anchor "&${node.source}" before it)`);
    },
  });
  if (unresolved.length > 0) return { ok: false, errors: unresolved };

  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    return { ok: true, yaml: { doc, raw: doc.toJS({ maxAliasCount: 100 }), at } };
  } catch (err) {
    return { ok: false, errors: [`${file}: ${describeError(err)}`] };
  }
}

/** Where a schema issue points in the file, and its message (`path: message`), for `readYaml` documents. */
export function locateIssue(y: ReadYaml, issue: z.core.$ZodIssue, value: unknown): { offset: number; text: string } {
  return { offset: issueLocation(y.doc, issue), text: `${formatPath(issue.path)}: ${issueMessage(issue, value)}` };
}

/** The offset of the node at `path` (or its nearest existing parent) in a `readYaml` document. */
export function offsetAt(y: ReadYaml, path: DocPath): number {
  return offsetOf(nodeAt(y.doc, path));
}

/** Parses and validates the text of a thoughtgate.yaml; `file` is only used in messages. */
export function parseConfigText(text: string, file: string, env: Env): ParseResult {
  const read = readYaml(text, file, 'a mapping with "sources", "rules" and "defaultAction"');
  if (!read.ok) return read;
  const { doc, raw, at } = read.yaml;

  const located: Located[] = [];
  const sub = substituteEnv(raw, env);
  for (const e of sub.errors) located.push({ offset: offsetOf(nodeAt(doc, e.path)), text: `${formatPath(e.path)}: ${e.message}` });

  const parsed = ConfigFileSchema.safeParse(sub.value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // A value whose variable was missing is already reported; its schema error would be noise.
      if (sub.errors.some((e) => isPrefix(e.path, issue.path))) continue;
      located.push(locateIssue(read.yaml, issue, sub.value));
    }
  }
  // (A failed parse always leaves something in `located`: issues are only skipped for env errors.)
  if (located.length > 0 || !parsed.success) {
    // Stable sort: file order, and schema order for problems at the same spot.
    located.sort((a, b) => a.offset - b.offset);
    return { ok: false, errors: located.map((l) => `${at(l.offset)}: ${l.text}`) };
  }
  // Hashed as written, before ${VAR} substitution: the hash is published (metrics, /ready, status)
  // and must not be derived from secret values such as header tokens.
  return { ok: true, config: parsed.data, hash: configHash(raw) };
}

/** Reads and validates a config file; a missing or unreadable file is one error naming the path. */
export async function loadConfigFile(path: string, env: Env = process.env): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${path}: cannot read config file: ${describeFsError(err)}`] };
  }
  return parseConfigText(text, path, env);
}

export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return describeError(err);
  }
}

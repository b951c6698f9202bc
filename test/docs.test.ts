// Keeps the reference docs in step with the code they describe:
// - docs/errors.md: its error table has exactly one row per entry of ERRORS (api/errors.ts), with
//   the same code, name, HTTP status, gate and message;
// - docs/configuration.md: every key of the config schema (ConfigFileSchema), every enum value and
//   every scalar default is mentioned in backticks; every key its tables list exists; and its
//   complete example and Cedar examples are valid.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigFileSchema } from '../api/config.js';
import { GovernancePolicySpecSchema } from '../api/crds.js';
import { ERRORS } from '../api/errors.js';
import { compilePolicies } from '../policy/cedar/policies.js';
import { parseConfigText } from '../policy/config/load.js';
import { standaloneIdentity } from '../sidecar/config/podinfo.js';
import { compileSnapshot } from '../sidecar/snapshot.js';

const read = (rel: string): string => readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8');
const ERRORS_MD = 'docs/errors.md';
const CONFIG_MD = 'docs/configuration.md';
const errorsDoc = read('../docs/errors.md');
const configDoc = read('../docs/configuration.md');

/** Cells of a Markdown table row, trimmed; `\|` inside a cell is not a separator. */
function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** Body rows of the tables between two HTML comment markers (header and separator rows dropped). */
function markedTableRows(doc: string, name: string): string[][] {
  const start = doc.indexOf(`<!-- ${name}:start -->`);
  const end = doc.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`${ERRORS_MD}: the markers <!-- ${name}:start --> and <!-- ${name}:end --> around the error table are missing`);
  const lines = doc
    .slice(start, end)
    .split('\n')
    .filter((l) => l.trim().startsWith('|'));
  return lines.slice(2).map(cells);
}

const unticked = (cell: string): string => cell.replace(/^`|`$/g, '');

describe(`${ERRORS_MD} is the ERRORS table of api/errors.ts`, () => {
  const rows = markedTableRows(errorsDoc, 'errors-table');
  const byCode = new Map<number, string[][]>();
  for (const r of rows) {
    const code = Number(unticked(r[0] ?? ''));
    byCode.set(code, [...(byCode.get(code) ?? []), r]);
  }

  test('the table has the columns code | name | HTTP | gate | message | …', () => {
    const header = errorsDoc
      .slice(errorsDoc.indexOf('<!-- errors-table:start -->'))
      .split('\n')
      .find((l) => l.trim().startsWith('|'))!;
    expect(cells(header).slice(0, 5)).toEqual(['code', 'name', 'HTTP', 'gate', 'message']);
  });

  test('every ERRORS entry has one row with its code, name, HTTP status, gate and message', () => {
    const problems: string[] = [];
    for (const [name, e] of Object.entries(ERRORS)) {
      const found = byCode.get(e.code) ?? [];
      if (found.length === 0) {
        problems.push(`${name} (${e.code}): no row with code \`${e.code}\``);
        continue;
      }
      if (found.length > 1) problems.push(`${name} (${e.code}): ${found.length} rows with this code`);
      const [, nameCell = '', http = '', gate = '', message = ''] = found[0]!;
      if (unticked(nameCell) !== name) problems.push(`${name} (${e.code}): name column says ${JSON.stringify(nameCell)}, expected \`${name}\``);
      if (!new RegExp(`^${e.http}\\b`).test(http)) problems.push(`${name} (${e.code}): HTTP column says ${JSON.stringify(http)}, expected ${e.http}`);
      if (unticked(gate) !== e.gate) problems.push(`${name} (${e.code}): gate column says ${JSON.stringify(gate)}, expected \`${e.gate}\``);
      if (unticked(message) !== e.message) problems.push(`${name} (${e.code}): message column says ${JSON.stringify(message)}, expected \`${e.message}\``);
    }
    expect(problems).toEqual([]);
  });

  test('the table has no codes that ERRORS lacks', () => {
    const known = new Set<number>(Object.values(ERRORS).map((e) => e.code));
    const extra = rows.filter((r) => !known.has(Number(unticked(r[0] ?? '')))).map((r) => `row ${JSON.stringify(r[0])} (${r[1]}) is not in ERRORS`);
    expect(extra).toEqual([]);
  });
});

// ---------- configuration.md ----------

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema | JsonSchema[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  enum?: unknown[];
  default?: unknown;
};

interface SchemaFacts {
  /** Each key with the path it was found at, e.g. ["connect", "sources[].timeouts.connect"]. */
  keys: [string, string][];
  enums: [string, string][];
  defaults: [string, string][];
}

/** Walks a JSON Schema (as z.toJSONSchema writes it) and collects keys, enum values and scalar defaults. */
function schemaFacts(root: JsonSchema): SchemaFacts {
  const facts: SchemaFacts = { keys: [], enums: [], defaults: [] };
  const seen = new Set<JsonSchema>();
  const walk = (node: JsonSchema | boolean | undefined, path: string): void => {
    if (!node || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (node.$ref) {
      const m = /^#\/\$defs\/(.+)$/.exec(node.$ref);
      walk(m ? root.$defs?.[m[1]!] : undefined, path);
    }
    for (const v of node.enum ?? []) facts.enums.push([String(v), path]);
    if (node.default !== undefined && (typeof node.default !== 'object' || node.default === null)) facts.defaults.push([String(node.default), path]);
    for (const [k, v] of Object.entries(node.properties ?? {})) {
      const p = path ? `${path}.${k}` : k;
      facts.keys.push([k, p]);
      walk(v, p);
    }
    for (const item of Array.isArray(node.items) ? node.items : node.items ? [node.items] : []) walk(item, `${path}[]`);
    for (const alt of [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])]) walk(alt, path);
    if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, `${path}.*`);
  };
  walk(root, '');
  return facts;
}

const inputSchema = (s: z.ZodType): JsonSchema => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
const configFacts = schemaFacts(inputSchema(ConfigFileSchema));
const ticked = (word: string): boolean => configDoc.includes(`\`${word}\``);

describe(`${CONFIG_MD} covers the config schema`, () => {
  test('the schema walk finds the keys (sanity check of the walk itself)', () => {
    const paths = configFacts.keys.map(([, p]) => p);
    expect(paths).toEqual(expect.arrayContaining(['sources', 'sources[].timeouts.response', 'rules[].match.tool', 'limits.maxBodyBytes', 'identity.labels']));
  });

  test('every key of ConfigFileSchema is mentioned as `key`', () => {
    const missing = configFacts.keys.filter(([k]) => !ticked(k)).map(([k, p]) => `\`${k}\` (at ${p}) is not mentioned in ${CONFIG_MD}`);
    expect(missing).toEqual([]);
  });

  test('every allowed value of an enum is mentioned as `value`', () => {
    const missing = configFacts.enums.filter(([v]) => !ticked(v)).map(([v, p]) => `\`${v}\` (allowed at ${p}) is not mentioned in ${CONFIG_MD}`);
    expect(missing).toEqual([]);
  });

  test('every scalar default is mentioned as `value`', () => {
    const missing = configFacts.defaults.filter(([v]) => !ticked(v)).map(([v, p]) => `default \`${v}\` of ${p} is not mentioned in ${CONFIG_MD}`);
    expect(missing).toEqual([]);
  });

  test('every key listed in a "key" table exists in the schema (or in GovernancePolicy.spec)', () => {
    const known = new Set([...configFacts.keys.map(([k]) => k), ...schemaFacts(inputSchema(GovernancePolicySpecSchema)).keys.map(([k]) => k)]);
    const listed: string[] = [];
    let inKeyTable = false;
    for (const line of configDoc.split('\n')) {
      if (!line.trim().startsWith('|')) {
        inKeyTable = false;
        continue;
      }
      const first = cells(line)[0] ?? '';
      if (first === 'key') {
        inKeyTable = true;
        continue;
      }
      if (inKeyTable && !/^-+$/.test(first)) listed.push(unticked(first));
    }
    expect(listed.length).toBeGreaterThan(20);
    expect(listed.filter((k) => !known.has(k)).map((k) => `\`${k}\` is documented in a key table but is not a key of the schema`)).toEqual([]);
  });

  test('the complete example is a valid thoughtgate.yaml, Cedar included', () => {
    const blocks = [...configDoc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const example = blocks.find((b) => b.startsWith('# thoughtgate.yaml (complete example)'));
    if (!example) throw new Error(`${CONFIG_MD}: no \`\`\`yaml block starting with "# thoughtgate.yaml (complete example)"`);
    const r = parseConfigText(example, `${CONFIG_MD} (complete example)`, { GITHUB_TOKEN: 'example-token' });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    // It shows every top-level key.
    expect(Object.keys(r.config).sort()).toEqual(
      configFacts.keys
        .filter(([, p]) => !p.includes('.') && !p.includes('['))
        .map(([k]) => k)
        .sort(),
    );
    const { identity: _identity, ...doc } = r.config;
    const c = compileSnapshot(doc, standaloneIdentity(r.config), { hash: r.hash, generation: 1 });
    if (!c.ok) throw new Error(c.errors.join('\n'));
  });

  test('its Cedar examples compile', () => {
    const blocks = [...configDoc.matchAll(/```cedar\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    blocks.forEach((text, i) => {
      const c = compilePolicies(text, { file: `${CONFIG_MD} cedar block ${i + 1}` });
      if (!c.ok) throw new Error(c.errors.join('\n'));
    });
  });
});

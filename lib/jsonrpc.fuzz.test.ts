// Property fuzzing of parseJsonRpc against JSON.parse and an independent duplicate-key/depth oracle,
// with fast-check: its generator is the only source of randomness, a failure is shrunk (the text by
// deleting ever smaller chunks, the random bytes as an array) and reported with the seed and path
// that replay it. Deterministic by default (a fixed seed, as in CI); explore with another seed, or
// replay a reported failure exactly:
//   FUZZ_SEED=<n> npm test -- lib/jsonrpc.fuzz
//   FUZZ_SEED=<seed> FUZZ_PATH=<path> npm test -- lib/jsonrpc.fuzz -t '<test name>'
import { isDeepStrictEqual } from 'node:util';
import fc, { Arbitrary, Stream, Value, type Random } from 'fast-check';
import { MAX_DEPTH, batchBody, decodeUtf8Strict, parseJsonRpc, type Message } from './jsonrpc.js';
import { errorResponse } from './jsonrpc-reply.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number.parseInt(process.env.FUZZ_SEED, 10) | 0 : 0x7467;
const PATH = process.env.FUZZ_PATH || undefined;

/** The generators' view of fast-check's Random: uniform draws, no state of our own. */
class Draw {
  constructor(private readonly mrng: Random) {}
  /** 0 ≤ result < n. */
  int(n: number): number {
    return this.mrng.nextInt(0, n - 1);
  }
  chance(p: number): boolean {
    return this.mrng.nextInt(0, 0xffffffff) < p * 4294967296;
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(xs.length)]!;
  }
}

/**
 * JSON text from a generator below. fast-check's combinators build values, not text; these
 * generators vary the text itself (whitespace, escapes, number spellings, key order, corruption),
 * so they draw from fast-check's Random directly. A failing text shrinks by deleting chunks
 * (halves first, down to single characters; long texts only in coarse chunks), which is how a
 * parser's counterexample gets small.
 */
class JsonTextArbitrary extends Arbitrary<string> {
  constructor(private readonly gen: (r: Draw) => string) {
    super();
  }
  generate(mrng: Random): Value<string> {
    return new Value(this.gen(new Draw(mrng)), undefined);
  }
  canShrinkWithoutContext(value: unknown): value is string {
    return typeof value === 'string';
  }
  shrink(value: string): Stream<Value<string>> {
    return new Stream(withoutChunks(value));
  }
}
function* withoutChunks(s: string): IterableIterator<Value<string>> {
  for (let size = Math.max(1, s.length >> 1); size >= 1; size >>= 1) {
    if (s.length / size > 256) break;
    for (let at = 0; at < s.length; at += size) yield new Value(s.slice(0, at) + s.slice(at + size), undefined);
  }
}
const jsonText = (gen: (r: Draw) => string): Arbitrary<string> => new JsonTextArbitrary(gen);

// ---------------------------------------------------------------------------------------------------
// Generators of JSON text (text, not values, so that whitespace, escapes and number spellings vary).

const WS = [' ', '\t', '\r', '\n'];
function ws(r: Draw): string {
  if (!r.chance(0.15)) return '';
  let s = '';
  for (let i = r.int(3) + 1; i > 0; i--) s += r.pick(WS);
  return s;
}

const NUMBERS = [
  '0',
  '-0',
  '1',
  '-1',
  '7',
  '42',
  '1.5',
  '-0.0',
  '0.1',
  '1e3',
  '1E3',
  '1e+3',
  '1e-3',
  '1E-7',
  '2.5e10',
  '-2.5E-10',
  '12345678901234567890',
  '-9007199254740993',
  '9007199254740992',
  '1e400',
  '-1e400',
  '1e-400',
  '0.000001',
  '123456789.123456789',
  '1.0',
  '100',
  '4294967296',
  '0e0',
  '0E-0',
  '-0e+0',
];
function genNumber(r: Draw): string {
  if (r.chance(0.6)) return r.pick(NUMBERS);
  let s = r.chance(0.3) ? '-' : '';
  s += r.chance(0.2) ? '0' : String(r.int(9) + 1) + digits(r, r.int(25));
  if (r.chance(0.3)) s += `.${digits(r, r.int(20) + 1)}`;
  if (r.chance(0.2)) s += r.pick(['e', 'E']) + r.pick(['', '+', '-']) + digits(r, r.int(4) + 1);
  return s;
}
function digits(r: Draw, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(48 + r.int(10));
  return s;
}

const STRING_PIECES = [
  '\\"',
  '\\\\',
  '\\/',
  '\\b',
  '\\f',
  '\\n',
  '\\r',
  '\\t',
  '\\u0000',
  '\\u001f',
  '\\u00e9',
  '\\u4E2D',
  '\\ud83d\\ude00',
  '\\ud800',
  '\\udfff',
  '\\uDC00\\uD800',
  '\\u2028',
  '\\u0022',
  '\\u005c',
  'é',
  '中',
  '😀',
  '\u2028',
  '\u2029',
  '\ud800',
  '\udfff',
  '\u007f',
  '\u0080',
  '\uffff',
  '\ufeff',
  ' ',
  "'",
  '__proto__',
  'constructor',
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
];
function genStringText(r: Draw, maxLen = 12): string {
  let s = '"';
  for (let i = r.int(maxLen + 1); i > 0; i--) {
    s += r.chance(0.7) ? String.fromCharCode(97 + r.int(26)) : r.pick(STRING_PIECES);
  }
  return `${s}"`;
}

const KEY_POOL = ['a', 'b', 'id', 'method', 'params', 'jsonrpc', 'result', 'error', 'name', '__proto__', 'constructor', 'x y', 'é', ''];
/** A key's JSON text, sometimes spelled with escapes; returns [text, decoded]. */
function genKey(r: Draw, used: Set<string>): [string, string] {
  let key: string;
  if (r.chance(0.5)) key = r.pick(KEY_POOL);
  else key = JSON.parse(genStringText(r, 6)) as string;
  // Mostly unique keys, sometimes an intentional duplicate.
  for (let tries = 0; used.has(key) && !r.chance(0.05) && tries < 5; tries++) key += String.fromCharCode(97 + r.int(26));
  used.add(key);
  return [spellKey(r, key), key];
}
function spellKey(r: Draw, key: string): string {
  if (!r.chance(0.15)) return JSON.stringify(key);
  let s = '"';
  for (const ch of key) {
    for (let i = 0; i < ch.length; i++) s += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
  }
  return `${s}"`;
}

interface GenOpts {
  maxDepth: number;
  wide: boolean;
  /** Containers and members left to generate; bounds the size of one input. */
  budget?: number;
}
function genValue(r: Draw, depth: number, o: GenOpts): string {
  o.budget ??= 600;
  const k = depth >= o.maxDepth || o.budget <= 0 ? r.int(4) : r.int(7);
  switch (k) {
    case 0:
      return genNumber(r);
    case 1:
      return genStringText(r);
    case 2:
      return r.pick(['true', 'false', 'null']);
    case 3:
      return r.chance(0.5) ? genNumber(r) : genStringText(r, 40);
    case 4:
    case 5: {
      const used = new Set<string>();
      const n = Math.min(o.budget, o.wide && r.chance(0.1) ? r.int(300) : r.int(5));
      o.budget -= n + 1;
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(`${ws(r) + genKey(r, used)[0] + ws(r)}:${ws(r)}${genValue(r, depth + 1, o)}${ws(r)}`);
      return `{${parts.length ? parts.join(',') : ws(r)}}`;
    }
    default: {
      const n = Math.min(o.budget, o.wide && r.chance(0.1) ? r.int(300) : r.int(5));
      o.budget -= n + 1;
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(ws(r) + genValue(r, depth + 1, o) + ws(r));
      return `[${parts.length ? parts.join(',') : ws(r)}]`;
    }
  }
}

/** A JSON-RPC-shaped object, mostly well-formed, sometimes subtly not. */
function genMessage(r: Draw): string {
  const members: string[] = [];
  const add = (key: string, value: string) => members.push(`${ws(r) + spellKey(r, key) + ws(r)}:${ws(r)}${value}${ws(r)}`);
  if (!r.chance(0.05)) add('jsonrpc', r.chance(0.95) ? '"2.0"' : r.pick(['"1.0"', '2.0', 'null', '"2.0 "']));
  const shape = r.int(4); // request, notification, result, error
  const id = () => {
    if (r.chance(0.85)) return r.chance(0.5) ? genNumber(r) : genStringText(r);
    return r.pick(['null', 'true', '{}', '[1]', '{"a":1}']);
  };
  if (shape !== 1 || r.chance(0.05)) add('id', id());
  if (shape <= 1 || r.chance(0.03))
    add(
      'method',
      r.chance(0.95) ? r.pick(['"tools/call"', '"tools/list"', '"ping"', '"notifications/progress"']) : genValue(r, 3, { maxDepth: 4, wide: false }),
    );
  if (shape <= 1 && r.chance(0.8)) {
    add(
      'params',
      r.chance(0.9) ? `{"name":${genStringText(r)},"arguments":${genValue(r, 1, { maxDepth: 5, wide: true })}}` : genValue(r, 2, { maxDepth: 4, wide: false }),
    );
  }
  if (shape === 2 || r.chance(0.03)) add('result', genValue(r, 1, { maxDepth: 5, wide: true }));
  if (shape === 3 || r.chance(0.03)) {
    add(
      'error',
      r.chance(0.85)
        ? `{"code":${r.pick(['-32600', '-32000', '1', '1.5', '"x"'])},"message":${genStringText(r)}}`
        : genValue(r, 2, { maxDepth: 4, wide: false }),
    );
  }
  if (r.chance(0.1)) add(r.pick(['__proto__', 'extra', 'id', 'method', 'params']), genValue(r, 2, { maxDepth: 3, wide: false }));
  // Shuffle member order.
  for (let i = members.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [members[i], members[j]] = [members[j]!, members[i]!]; // 0 ≤ j ≤ i < members.length
  }
  return `{${members.join(',')}}`;
}

function genBody(r: Draw): string {
  if (r.chance(0.3)) {
    const n = r.int(6);
    const els: string[] = [];
    for (let i = 0; i < n; i++) els.push(ws(r) + (r.chance(0.9) ? genMessage(r) : genValue(r, 1, { maxDepth: 3, wide: false })) + ws(r));
    return `${ws(r)}[${els.join(',')}]${ws(r)}`;
  }
  return ws(r) + genMessage(r) + ws(r);
}

const HOSTILE = [
  '"__proto__":{"method":"x","id":1},',
  ',"__proto__":null',
  '{"__proto__":[]}',
  '"constructor":{"prototype":{}}',
  '1e999999',
  '-1e-999999',
  '123456789012345678901234567890123456789',
  `0.${'0'.repeat(400)}1`,
  '"\\ud800"',
  '"\\u0000"',
  ',"id":null',
  ',"id":2',
  ',"method":"other"',
  ',"jsonrpc":"2.0"',
  '\ufeff',
  '\u0000',
  '\\',
  '"',
  '[',
  '{',
  ']',
  '}',
  ',',
  ':',
  '"a":1,"a":2',
  '/*x*/',
  'NaN',
  '-Infinity',
  '\u00a0',
  '\u2028',
];
function mutate(r: Draw, s: string): string {
  const rounds = r.chance(0.15) ? 0 : r.int(3) + 1; // some stay intact, as a baseline
  for (let k = 0; k < rounds; k++) {
    const at = r.int(s.length + 1);
    switch (r.int(8)) {
      case 0: {
        // flip one character's low bits
        if (s.length === 0) break;
        const i = Math.min(at, s.length - 1);
        s = s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 << r.int(7))) + s.slice(i + 1);
        break;
      }
      case 1:
        s = s.slice(0, at);
        break; // truncate
      case 2:
        s = s.slice(0, at) + s.slice(Math.min(s.length, at + r.int(4) + 1));
        break; // delete
      case 3:
      case 4:
        s = s.slice(0, at) + r.pick(HOSTILE) + s.slice(at);
        break;
      case 5: {
        // replace a value-ish position with something deep
        const d = r.chance(0.2) ? 10_000 : r.int(MAX_DEPTH + 40) + 1;
        const open = r.chance(0.5) ? '[' : '{"k":';
        const close = open === '[' ? ']' : '}';
        s = s.slice(0, at) + open.repeat(d) + close.repeat(d) + s.slice(at);
        break;
      }
      case 6:
        s = s.slice(0, at) + ws(r) + s.slice(at);
        break;
      default:
        s = s.slice(0, at) + genValue(r, 3, { maxDepth: 5, wide: false }) + s.slice(at);
        break;
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------
// Oracle.

const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"|[{}[\]:,]/g;
interface Structure {
  maxDepth: number;
  /** For a single-object body: whether it has a duplicate key anywhere; for an array body: per element. */
  dup: boolean[];
}
/** Duplicate keys and depth of text JSON.parse accepted, computed independently of the parser. */
function structure(text: string): Structure {
  const sets: (Set<string> | null)[] = [];
  const dup: boolean[] = [false];
  let rootIsArray = false;
  let element = 0;
  let maxDepth = 0;
  let lastString: string | null = null;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    const t = m[0];
    switch (t) {
      case '{':
      case '[':
        if (sets.length === 0 && t === '[') rootIsArray = true;
        sets.push(t === '{' ? new Set() : null);
        maxDepth = Math.max(maxDepth, sets.length);
        break;
      case '}':
      case ']':
        sets.pop();
        break;
      case ',':
        if (rootIsArray && sets.length === 1) {
          element++;
          dup[element] = false;
        }
        break;
      case ':': {
        const set = sets[sets.length - 1] as Set<string>;
        const key = JSON.parse(lastString as string) as string;
        if (set.has(key)) dup[rootIsArray ? element : 0] = true;
        set.add(key);
        break;
      }
      default:
        lastString = t;
    }
  }
  return { maxDepth, dup };
}

const own = (o: object, k: string) => Object.hasOwn(o, k);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIdValue = (v: unknown) => typeof v === 'string' || typeof v === 'number';

/** The kind the rules give a message value, written independently of the parser's key bitmask. */
function expectedKind(v: unknown, dup: boolean): Message['kind'] {
  if (!isObj(v) || dup || v.jsonrpc !== '2.0' || !own(v, 'jsonrpc')) return 'invalid';
  if (own(v, 'method')) {
    if (typeof v.method !== 'string' || own(v, 'result') || own(v, 'error')) return 'invalid';
    if (own(v, 'params') && (typeof v.params !== 'object' || v.params === null)) return 'invalid';
    if (!own(v, 'id')) return 'notification';
    return isIdValue(v.id) ? 'request' : 'invalid';
  }
  const hasR = own(v, 'result');
  const hasE = own(v, 'error');
  if (hasR === hasE) return 'invalid';
  if (own(v, 'id') ? !(isIdValue(v.id) || v.id === null) : hasR) return 'invalid';
  if (hasE) {
    const e = v.error;
    if (!isObj(e) || !Number.isInteger(e.code) || typeof e.message !== 'string') return 'invalid';
  }
  return 'response';
}

// ---------------------------------------------------------------------------------------------------
// Property check.

const stats = { cases: 0, json: 0, messages: 0, kinds: {} as Record<string, number> };

function show(s: string): string {
  return s.length > 300 ? `${JSON.stringify(s.slice(0, 300))}…(${s.length} chars)` : JSON.stringify(s);
}

/** The property: every problem with what the parser makes of `input` goes to `bad`. */
function check(input: string, bad: (problem: string) => void): void {
  stats.cases++;
  let p: ReturnType<typeof parseJsonRpc>;
  try {
    p = parseJsonRpc(input);
  } catch (err) {
    bad(`threw ${String(err)}`);
    return;
  }
  let root: unknown;
  try {
    root = JSON.parse(input);
  } catch {
    if (p.ok || p.code !== -32700) bad(`JSON.parse rejects but parser said ${JSON.stringify(p).slice(0, 200)}`);
    // The scanner itself must reject it; JSON.parse is only the parser's fail-closed backstop.
    else if (!/at offset \d+$|^empty body$/.test(p.reason)) bad(`only the JSON.parse backstop rejected it: ${p.reason}`);
    return;
  }
  stats.json++;
  const st = structure(input);
  if (st.maxDepth > MAX_DEPTH) {
    if (p.ok || p.code !== -32700 || !/nesting/.test(p.reason)) bad(`depth ${st.maxDepth} not rejected: ${JSON.stringify(p).slice(0, 200)}`);
    return;
  }
  if (!p.ok) {
    const want = Array.isArray(root) ? (root.length === 0 ? -32600 : null) : isObj(root) ? null : -32600;
    if (want !== p.code) bad(`JSON.parse accepts but parser failed: ${p.code} ${p.reason}`);
    return;
  }
  let values: unknown[];
  let messages: Message[];
  if (p.batch) {
    if (!Array.isArray(root)) return bad('batch for a non-array');
    values = root;
    messages = p.messages;
    if (messages.length !== values.length) return bad(`batch length ${messages.length} != ${values.length}`);
    const rebuilt = batchBody(messages.map((m) => m.raw));
    if (!isDeepStrictEqual(JSON.parse(rebuilt), root)) bad('batchBody of raws differs from the body');
  } else {
    if (!isObj(root)) return bad('single message for a non-object');
    values = [root];
    messages = [p.message];
  }
  for (const [i, m] of messages.entries()) {
    const v = values[i];
    const dup = st.dup[i] === true;
    stats.messages++;
    stats.kinds[m.kind] = (stats.kinds[m.kind] ?? 0) + 1;
    // raw re-parses to the same value
    let rv: unknown;
    try {
      rv = JSON.parse(m.raw);
    } catch {
      bad(`raw of message ${i} does not parse: ${show(m.raw)}`);
      continue;
    }
    if (!isDeepStrictEqual(rv, v)) bad(`raw of message ${i} re-parses to a different value`);
    const want = expectedKind(v, dup);
    if (m.kind !== want) bad(`message ${i}: kind ${m.kind}${m.kind === 'invalid' ? ` (${m.reason})` : ''}, expected ${want}`);
    // (an element that is not an object at all is reported as that instead)
    if (dup && isObj(v) && !(m.kind === 'invalid' && m.reason.startsWith('duplicate key'))) bad(`message ${i}: duplicate key not reported`);
    if (m.kind === 'request' || m.kind === 'notification') {
      const o = v as Record<string, unknown>;
      if (m.method !== o.method) bad(`message ${i}: method differs`);
      if (!isDeepStrictEqual(m.params, o.params)) bad(`message ${i}: params differ`);
    }
    if (m.kind === 'response' && !isDeepStrictEqual(m.isError ? m.error : m.result, (v as Record<string, unknown>)[m.isError ? 'error' : 'result'])) {
      bad(`message ${i}: result/error differs`);
    }
    // ids: present exactly when readable, exact token text, and carried verbatim into error replies
    const id = m.kind === 'notification' ? null : m.id;
    if (!dup && m.kind !== 'notification') {
      const readable = isObj(v) && own(v, 'id') && isIdValue(v.id);
      if ((id !== null) !== readable) bad(`message ${i}: id ${id ? 'present' : 'missing'}, readable=${readable}`);
    }
    if (id !== null) {
      const o = v as Record<string, unknown>;
      if (!Object.is(JSON.parse(id.raw), o.id) || !Object.is(id.value, o.id)) bad(`message ${i}: id ${id.raw} differs from ${String(o.id)}`);
      if (!/^(?:"|-|[0-9])/.test(id.raw)) bad(`message ${i}: id raw ${id.raw} is not a string or number token`);
    }
    const reply = errorResponse(id, -32600, 'Invalid Request', m.kind === 'invalid' ? m.reason : undefined);
    try {
      const rep = JSON.parse(reply) as { id: unknown };
      if (!Object.is(rep.id, id === null ? null : JSON.parse(id.raw))) bad(`message ${i}: reply id differs`);
      if (!reply.startsWith(`{"jsonrpc":"2.0","id":${id === null ? 'null' : id.raw},"error":`)) bad(`message ${i}: reply id text differs`);
    } catch {
      bad(`message ${i}: errorResponse output does not parse: ${show(reply)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------

/** Fails (fast-check then shrinks `input` and reports it with its seed and path) on any problem. */
function holdsFor(input: string): void {
  const problems: string[] = [];
  check(input, (p) => problems.push(p));
  if (problems.length) throw new Error(problems.join('\n'));
}

const params = (numRuns: number): fc.Parameters<[unknown]> => ({ seed: SEED, numRuns, path: PATH, endOnFailure: PATH !== undefined });
const started = Date.now();

beforeAll(() => {
  console.log(`jsonrpc fuzz: FUZZ_SEED=${SEED}`);
});

afterAll(() => {
  console.log(
    `jsonrpc fuzz: seed ${SEED}, ${stats.cases} cases (${stats.json} valid JSON, ${stats.messages} messages ` +
      `${JSON.stringify(stats.kinds)}) in ${Date.now() - started} ms`,
  );
});

// Random bytes: 70 % mostly from JSON's own alphabet, 30 % anything; 10 % up to 399 bytes long,
// the rest up to 39. Plain fast-check arrays, so a failure shrinks byte by byte.
const ALPHABET = [...Buffer.from('{}[]":,0123456789-+.eE \t\r\nabcdefghijklmnopqrstuvwxyz\\u')];
const anyByte = fc.integer({ min: 0, max: 255 });
const byteArrays = (byte: Arbitrary<number>) =>
  fc.oneof({ weight: 9, arbitrary: fc.array(byte, { maxLength: 39, size: 'max' }) }, { weight: 1, arbitrary: fc.array(byte, { maxLength: 399, size: 'max' }) });
const randomBytes = fc
  .oneof(
    { weight: 7, arbitrary: byteArrays(fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...ALPHABET) }, { weight: 1, arbitrary: anyByte })) },
    { weight: 3, arbitrary: byteArrays(anyByte) },
  )
  .map((xs) => Uint8Array.from(xs));

const randomValues = jsonText((r) => {
  if (r.chance(0.02)) {
    // Straddle the depth limit.
    const d = MAX_DEPTH - 2 + r.int(5);
    return `{"jsonrpc":"2.0","method":"m","params":${'['.repeat(d - 1)}${genValue(r, 9, { maxDepth: 9, wide: false })}${']'.repeat(d - 1)}}`;
  }
  if (r.chance(0.5)) return ws(r) + genValue(r, 0, { maxDepth: r.int(8) + 1, wide: true }) + ws(r);
  return genBody(r);
});

const mutatedMessages = jsonText((r) => {
  if (r.chance(0.004)) {
    // A 1 MB string somewhere a value goes.
    const big = `"${'x'.repeat(1 << 20)}${r.chance(0.5) ? '\\n"' : '"'}`;
    const text = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"blob":${big}}}}`;
    return r.chance(0.5) ? text.slice(0, text.length - r.int(5)) : text;
  }
  return mutate(r, genBody(r));
});

describe(`parseJsonRpc fuzz (FUZZ_SEED=${SEED})`, () => {
  test('random bytes', () => {
    fc.assert(
      fc.property(randomBytes, (bytes) => {
        const problems: string[] = [];
        let text: string | null;
        try {
          text = decodeUtf8Strict(bytes);
        } catch (err) {
          throw new Error(`decodeUtf8Strict threw ${String(err)}`);
        }
        // Valid UTF-8 must decode exactly as a fatal TextDecoder (with the BOM kept) does.
        let reference: string | null;
        try {
          reference = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
        } catch {
          reference = null;
        }
        if (text !== reference) problems.push('decodeUtf8Strict disagrees with TextDecoder');
        if (text !== null) check(text, (p) => problems.push(`as UTF-8: ${p}`));
        check(Buffer.from(bytes).toString('latin1'), (p) => problems.push(`as latin1: ${p}`));
        if (problems.length) throw new Error(problems.join('\n'));
      }),
      params(6000),
    );
  }, 120_000);

  test('random JSON values (deep, wide, unicode, all number shapes)', () => {
    fc.assert(
      fc.property(randomValues, (text) => holdsFor(text)),
      params(6000),
    );
  }, 120_000);

  test('valid messages, mutated', () => {
    fc.assert(
      fc.property(mutatedMessages, (text) => holdsFor(text)),
      params(7000),
    );
  }, 120_000);
});

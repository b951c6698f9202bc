// What one A2A call asks for, in the terms the gates speak (describe() in operation.ts is MCP's).
// Pure: the call in, an Operation (canonical method, skill target, facts for Cedar) out, or why
// the call is refused before any gate (method not found, params the gates cannot read).
//
// Only what the gates read is interpreted; the call is forwarded as its original bytes. So where
// the gates and the agent could read a body differently, the body is refused instead: a part with
// no kind or two, a 1.0-shaped message on a 0.3 REST path (the 1.3.0 server runs it with empty
// text), a skill that is not a string.
import { canonicalJson } from '../../api/canonical.js';
import { parseHost } from '../../lib/destination.js';
import type { A2aVersion } from '../../api/config.js';
import { type KeyDialect, type KeyLevel, keyDialect, unknownKey } from './a2a-keys.js';
import { type A2aBinding, type A2aRow, jsonRpcMethod, type JsonPath, restRoute, valueAt } from './a2a-methods.js';
import type { A2aFacts, A2aPart, Operation } from './operation.js';

/** One A2A call as the data path read it. */
export interface A2aCall {
  version: A2aVersion;
  binding: A2aBinding;
  /** JSON-RPC: the method as sent. REST: `<HTTP method> <path below the rest base>`, e.g. `POST /message:send`. */
  method: string;
  /** JSON-RPC: `params`; REST: the parsed body (undefined without one). */
  params: unknown;
  /** The extensions the request's headers ask for, as decided (a2a-extensions.ts); none when absent. */
  extensions?: readonly string[];
}

/** Where the agent's configuration says a skill is named (a2a.skillFrom), and whether to collect the message text. */
export interface A2aDescribeOptions {
  /** a2a.skillFrom, e.g. "metadata.skill"; unset: calls name no skill. */
  skillFrom?: string | undefined;
  /** Collect the text parts into facts.text (only when a Cedar policy reads context.text: cedarReadsText). */
  text?: boolean;
}

export type A2aDescribed =
  | {
      ok: true;
      op: Operation & { a2a: A2aFacts };
      row: A2aRow;
      /** REST: what the path named (also in facts: taskId, tenant). */
      configId?: string;
    }
  /** `method`: no such method in this version (answer -32601 / 404). `params`: the gates cannot read it (-32602 / 400). */
  | { ok: false; error: 'method' | 'params'; reason: string };

function record(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

class Refusal extends Error {}
const refuse = (reason: string): never => {
  throw new Refusal(reason);
};

/** A string member or "" when absent; anything else is refused. */
function optString(v: unknown, what: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') refuse(`${what} must be a string`);
  return v as string;
}

/** The proto field name of a JSON name (`taskId` → `task_id`). */
const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * A member the gates read, under every spelling an SDK server takes for it: the JSON name
 * (camelCase), the proto field name (snake_case: the JS 1.3.0 server's fromJSON falls back to it
 * when the JSON name is unset, Python's json_format and pydantic take either, and the Python 0.3
 * HTTP+JSON client sends it), and `also` (0.3 HTTP+JSON: `request` for `message`). So the gates
 * read what the agent runs. Two spellings at once are refused: the servers would not agree which
 * one counts (JS takes the first set, Python refuses).
 */
function member(obj: Record<string, unknown>, key: string, what: string, also: readonly string[] = []): unknown {
  const names = [...new Set([key, snake(key), ...also])];
  const present = names.filter((n) => Object.hasOwn(obj, n));
  if (present.length > 1) refuse(`${what} is given twice (${present.join(' and ')}): send one`);
  return present.length === 1 ? obj[present[0]!] : undefined;
}

/** Only members this dialect's level knows (a2a-keys.ts). */
function knownKeys(obj: Record<string, unknown>, dialect: KeyDialect, level: KeyLevel, what: string): void {
  const k = unknownKey(obj, dialect, level);
  if (k !== undefined) refuse(`${what}.${k} is not a member A2A ${dialect} knows: the agent could read it in a way the gates do not`);
}

/** valueAt, each step through member(). */
function readAt(root: unknown, path: JsonPath, what = path.join('.')): unknown {
  let at = root;
  for (const k of path) {
    const r = record(at);
    if (!r) return undefined;
    at = member(r, k, what);
  }
  return at;
}

/** No `__proto__` key anywhere in metadata: a consumer that copies it with `obj[key] = …` would set a prototype instead. */
function noProtoKeys(v: unknown, what: string, depth = 0): void {
  if (v === null || typeof v !== 'object') return;
  // Deeper than this is refused rather than left unchecked (Cedar's own bound is 32).
  if (depth > 64) refuse(`${what} is nested deeper than 64 levels`);
  if (Array.isArray(v)) {
    for (const x of v) noProtoKeys(x, what, depth + 1);
    return;
  }
  for (const [k, x] of Object.entries(v)) {
    if (k === '__proto__') refuse(`${what} must not hold a "__proto__" key`);
    noProtoKeys(x, what, depth + 1);
  }
}

/**
 * The tenant of a 1.0 call from where servers take it: the REST path's first segment, the query
 * parameter `tenant`, and the body's (REST) or params' (JSON-RPC) `tenant`. "" or absent is none;
 * those given must agree (the JS 1.3.0 server keeps the path's and warns, on JSON-RPC it takes
 * params.tenant, Python reads the request's), else the call is refused. The data path calls this
 * with the query parameter; describeA2a with the path and body.
 */
export function tenantOf(
  pathTenant: string | undefined,
  queryTenant: unknown,
  bodyTenant: unknown,
): { ok: true; tenant: string } | { ok: false; reason: string } {
  const named: [string, string][] = [];
  for (const [where, v] of [
    ['path', pathTenant],
    ['query parameter', queryTenant],
    ['body', bodyTenant],
  ] as const) {
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string') return { ok: false, reason: `the tenant (${where}) must be a string` };
    named.push([where, v]);
  }
  const first = named[0];
  const other = named.find(([, t]) => t !== first?.[1]);
  if (first && other) return { ok: false, reason: `the tenant differs between the ${first[0]} ("${first[1]}") and the ${other[0]} ("${other[1]}")` };
  return { ok: true, tenant: first?.[1] ?? '' };
}

/** Reads an A2A call. Never throws. */
export function describeA2a(source: string, call: A2aCall, options: A2aDescribeOptions = {}): A2aDescribed {
  let row: A2aRow | undefined;
  let fromPath: { taskId?: string; configId?: string; tenant?: string } = {};
  if (call.binding === 'jsonrpc') row = jsonRpcMethod(call.version, call.method);
  else {
    const space = call.method.indexOf(' ');
    const m = space > 0 ? restRoute(call.version, call.method.slice(0, space), call.method.slice(space + 1)) : undefined;
    if (m) {
      row = m.row;
      fromPath = m;
    }
  }
  if (!row)
    return { ok: false, error: 'method', reason: `no A2A ${call.version} ${call.binding === 'jsonrpc' ? 'method' : 'route'} ${JSON.stringify(call.method)}` };
  try {
    const d = describeRow(source, row, call, fromPath, options);
    boundIds(d.op.a2a);
    return { ok: true, ...d };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, error: 'params', reason: e.message };
    // A hostile getter or a stack overflow: reported without internals.
    return { ok: false, error: 'params', reason: 'the call could not be read' };
  }
}

/**
 * The longest task or context id a call may name, in UTF-8 bytes (SDK ids are 36-byte UUIDs). The
 * task owner table keeps every id it sees for a day and journals it (sidecar/a2a/tasks.ts): a
 * client's own `message.contextId`, echoed by the agent, must not make it hold megabytes.
 */
export const A2A_MAX_ID_BYTES = 1024;

function boundIds(f: A2aFacts): void {
  const named: [string, string][] = [
    ['taskId', f.taskId],
    ['contextId', f.contextId],
    ...f.referenceTaskIds.map((id): [string, string] => ['referenceTaskIds', id]),
  ];
  for (const [what, id] of named)
    if (id.length > A2A_MAX_ID_BYTES / 3 && Buffer.byteLength(id, 'utf8') > A2A_MAX_ID_BYTES) refuse(`${what} is longer than ${A2A_MAX_ID_BYTES} bytes`);
}

/** The facts of a call that carries nothing: every string "", every list [], no text. */
export function noFacts(version: A2aVersion, binding: A2aBinding): A2aFacts {
  return {
    version,
    binding,
    skill: '',
    parts: [],
    partKinds: [],
    mediaTypes: [],
    urlHosts: [],
    urlSchemes: [],
    partCount: 0,
    totalBytes: 0,
    taskId: '',
    contextId: '',
    referenceTaskIds: [],
    pushUrl: '',
    pushAuth: false,
    tenant: '',
    requestMetadata: {},
    extensions: [],
  };
}

function describeRow(
  source: string,
  row: A2aRow,
  call: A2aCall,
  fromPath: { taskId?: string; configId?: string; tenant?: string },
  options: A2aDescribeOptions,
): { op: Operation & { a2a: A2aFacts }; row: A2aRow; configId?: string } {
  const params = call.params === undefined ? {} : record(call.params);
  if (!params) refuse(call.binding === 'jsonrpc' ? 'params must be an object' : 'the body must be a JSON object');
  const p = params as Record<string, unknown>;
  const dialect = keyDialect(call.version, call.binding);
  if (row.partsKey) {
    knownKeys(p, dialect, 'send', 'params');
    const configuration = record(member(p, 'configuration', 'configuration'));
    if (configuration) knownKeys(configuration, dialect, 'configuration', 'configuration');
  }
  if (row.canonical === 'CreateTaskPushNotificationConfig') knownKeys(p, dialect, 'create', 'params');
  const at = (where: JsonPath | 'path' | null, fromUrl: string | undefined, what: string): string =>
    where === 'path' ? (fromUrl ?? '') : where === null ? '' : optString(readAt(p, where), what);

  const push = pushConfig(row, p, dialect);
  const facts: A2aFacts = {
    ...noFacts(call.version, call.binding),
    taskId: at(row.taskIdAt, fromPath.taskId, 'the task id'),
    pushUrl: push.url,
    pushAuth: push.auth,
    tenant: fromPath.tenant ?? '',
    extensions: [...(call.extensions ?? [])],
  };
  if (row.taskIdAt === 'path') sameTask(p, row, fromPath.taskId ?? '');
  if (call.version === '1.0') {
    const t = tenantOf(fromPath.tenant, undefined, p['tenant']);
    if (!t.ok) refuse(t.reason);
    else facts.tenant = t.tenant;
  }
  const requestMetadata = p['metadata'];
  if (requestMetadata !== undefined && requestMetadata !== null) {
    if (!record(requestMetadata)) refuse('metadata must be an object');
    noProtoKeys(requestMetadata, 'metadata');
    facts.requestMetadata = requestMetadata as Record<string, unknown>;
  }
  const configId = push.configIdAt
    ? optString(readAt(p, push.configIdAt), 'the push notification config id')
    : at(row.configIdAt, fromPath.configId, 'the push notification config id');
  let metadata: unknown;
  let message: Record<string, unknown> | null = null;
  if (row.partsKey) {
    // 0.3 HTTP+JSON: the proto field is `request`, its JSON name `message`; servers take either.
    message = record(
      call.version === '0.3' && call.binding === 'rest' ? member(p, 'message', 'the message', ['request']) : member(p, 'message', 'the message'),
    );
    if (!message) refuse('a message (an object) is required');
    metadata = readMessage(message!, row.partsKey, facts, options);
  }
  let target: Operation['target'] = null;
  if (row.partsKey && options.skillFrom) {
    const named = skillNamed(options.skillFrom, message!, p);
    if (named !== undefined) {
      if (typeof named !== 'string' || named === '') refuse(`${options.skillFrom} must name a skill (a non-empty string)`);
      facts.skill = named as string;
      target = { kind: 'skill', name: named as string };
    }
  }
  const op = { source, method: row.canonical, target, arguments: metadata, governed: row.governed, a2a: facts };
  return configId ? { op, row, configId } : { op, row };
}

/** The prefix of a2a.skillFrom that reads the request's metadata (params.metadata) instead of the message's. */
export const REQUEST_METADATA_PREFIX = 'params.';

/**
 * The skill a call names at skillFrom: `metadata.<key>…` reads the message's metadata,
 * `params.metadata.<key>…` the request's. The same key in the other metadata is refused: an agent
 * may read either (Python's RequestContext.metadata is the request's), so which skill runs would
 * be a guess.
 */
function skillNamed(skillFrom: string, message: Record<string, unknown>, p: Record<string, unknown>): unknown {
  const fromRequest = skillFrom.startsWith(REQUEST_METADATA_PREFIX);
  const path = (fromRequest ? skillFrom.slice(REQUEST_METADATA_PREFIX.length) : skillFrom).split('.');
  const [read, other, otherName] = fromRequest ? [p, message, 'the message metadata'] : [message, p, 'the request metadata (params.metadata)'];
  if (valueAt(other, path) !== undefined) refuse(`${otherName} also holds ${path.join('.')}: name the skill in one place (${skillFrom})`);
  return valueAt(read, path);
}

/**
 * A push config's URL, whether it hands over credentials, and where its id is. 0.3 HTTP+JSON
 * create has three body shapes, one per server: `pushNotificationConfig` (JS 1.3.0 compat) and
 * `config.pushNotificationConfig` (JS 0.3.14, Python 0.3); a body with URLs in two is refused,
 * and a create without one too.
 */
function pushConfig(row: A2aRow, p: Record<string, unknown>, dialect: KeyDialect): { url: string; auth: boolean; configIdAt?: JsonPath } {
  if (!row.pushUrlAt) return { url: '', auth: false };
  const own = row.pushUrlAt.slice(0, -1);
  const places = row.version === '0.3' && row.binding === 'rest' && row.canonical === 'CreateTaskPushNotificationConfig' ? [own, ['config', ...own]] : [own];
  const found = places.flatMap((place) => {
    const cfg = record(readAt(p, place));
    return cfg && member(cfg, 'url', [...place, 'url'].join('.')) !== undefined ? [{ place, cfg }] : [];
  });
  if (found.length > 1) refuse(`the push notification config is given twice (${found.map((f) => f.place.join('.')).join(' and ')}): send one`);
  if (found.length === 0) {
    if (row.canonical === 'CreateTaskPushNotificationConfig') refuse('the push notification config needs a url');
    return { url: '', auth: false };
  }
  const { place, cfg } = found[0]!;
  knownKeys(cfg, dialect, 'push', place.join('.') || 'params');
  const outer = place !== own ? record(member(p, 'config', 'config')) : null;
  if (outer) knownKeys(outer, dialect, 'createConfig', 'config');
  const url = optString(member(cfg, 'url', 'url'), [...place, 'url'].join('.'));
  const auth = readAt(cfg, ['authentication', 'credentials']) !== undefined;
  const idAt = row.configIdAt && row.configIdAt !== 'path' && place !== own ? ['config', ...row.configIdAt] : undefined;
  return idAt ? { url, auth, configIdAt: idAt } : { url, auth };
}

/** `tasks/<id>` or `tasks/<id>/…` (a proto resource name) → <id>; anything else is refused. */
function taskOfName(name: unknown, what: string): string {
  const m = typeof name === 'string' ? /^tasks\/([^/]+)(?:\/|$)/.exec(name) : null;
  if (!m) return refuse(`${what} must be a task resource name (tasks/<id>…)`);
  return m[1]!;
}

/**
 * REST: a body that names a task too must name the path's. Servers differ in which they run (JS
 * 1.3.0's 0.3 create takes `name`, JS 0.3.14 `parent`, Python and 1.0 the path), so any
 * disagreement is refused.
 */
function sameTask(p: Record<string, unknown>, row: A2aRow, pathTask: string): void {
  const named: [string, string][] = [];
  for (const key of ['name', 'parent'] as const) {
    const v = member(p, key, key);
    if (v !== undefined) named.push([key, taskOfName(v, key)]);
  }
  const inner = readAt(p, ['config', 'name'], 'config.name');
  if (inner !== undefined) named.push(['config.name', taskOfName(inner, 'config.name')]);
  const taskId = member(p, 'taskId', 'taskId');
  if (taskId !== undefined) named.push(['taskId', optString(taskId, 'taskId')]);
  // Get/Cancel/Subscribe requests carry the task as `id`; a push config's `id` is the config's.
  if (!row.pushUrlAt && row.configIdAt === null && Object.hasOwn(p, 'id')) named.push(['id', optString(p['id'], 'id')]);
  for (const [key, task] of named) if (task !== pathTask) refuse(`the body's ${key} names task "${task}", the path "${pathTask}"`);
}

/** Fills parts, sizes, ids and (when asked) text from a message; returns its metadata. */
function readMessage(message: Record<string, unknown>, partsKey: 'parts' | 'content', facts: A2aFacts, options: A2aDescribeOptions): unknown {
  const other = partsKey === 'parts' ? 'content' : 'parts';
  if (Object.hasOwn(message, other))
    refuse(
      `message.${other} is not A2A ${facts.version} ${facts.binding === 'rest' ? 'HTTP+JSON' : 'JSON-RPC'} (its parts are message.${partsKey}): the agent would not read it`,
    );
  knownKeys(message, keyDialect(facts.version, facts.binding), 'message', 'message');
  const parts = message[partsKey];
  if (!Array.isArray(parts)) refuse(`message.${partsKey} must be a list`);
  const texts: string[] = [];
  const schemes: string[] = [];
  const read = facts.version === '0.3' && facts.binding === 'jsonrpc' ? part03 : facts.version === '0.3' ? part03Rest : part10;
  (parts as unknown[]).forEach((raw, i) => {
    const part = record(raw);
    if (!part) refuse(`message.${partsKey}[${i}] must be an object`);
    knownKeys(part!, keyDialect(facts.version, facts.binding), 'part', `message.${partsKey}[${i}]`);
    const r = read(part!, `message.${partsKey}[${i}]`);
    facts.parts.push({ kind: r.kind, mediaType: r.mediaType, bytes: r.bytes, host: r.host });
    facts.totalBytes += r.bytes;
    if (r.scheme !== undefined) schemes.push(r.scheme);
    if (options.text) texts.push(...textOf(r));
  });
  facts.partCount = facts.parts.length;
  const distinct = (xs: string[]) => [...new Set(xs)];
  facts.partKinds = distinct(facts.parts.map((p) => p.kind));
  facts.mediaTypes = distinct(facts.parts.flatMap((p) => (p.mediaType ? [p.mediaType] : [])));
  facts.urlHosts = distinct(facts.parts.flatMap((p) => (p.kind === 'url' && p.host ? [p.host] : [])));
  facts.urlSchemes = distinct(schemes);
  if (options.text) facts.text = texts.join('\n');
  facts.contextId = optString(member(message, 'contextId', 'message.contextId'), 'message.contextId');
  // Continuing a task names it here (task isolation reads facts.taskId).
  if (!facts.taskId) facts.taskId = optString(member(message, 'taskId', 'message.taskId'), 'message.taskId');
  const refs = member(message, 'referenceTaskIds', 'message.referenceTaskIds');
  if (refs !== undefined) {
    if (!Array.isArray(refs) || !refs.every((r) => typeof r === 'string')) refuse('message.referenceTaskIds must be a list of strings');
    facts.referenceTaskIds = [...(refs as string[])];
  }
  const metadata = message['metadata'];
  if (metadata !== undefined && metadata !== null && !record(metadata)) refuse('message.metadata must be an object');
  noProtoKeys(metadata, 'message.metadata');
  return metadata ?? undefined;
}

type ReadPart = A2aPart & { text?: string; scheme?: string; data?: unknown; base64?: string };

/** A raw part (or 0.3 file bytes): its decoded size; the text is decoded later, only if asked for. */
function rawPart(b64: unknown, mediaType: string, what: string): ReadPart {
  return { kind: 'raw', mediaType, bytes: base64Bytes(b64, what), host: '', base64: b64 as string };
}

function dataPart(data: unknown, mediaType: string): ReadPart {
  return { kind: 'data', mediaType, bytes: dataBytes(data), host: '', data };
}

/** The bounds of a data part's walk for text: those of Cedar arguments (policy/cedar/normalise.ts). */
const TEXT_MAX_DEPTH = 32;
const TEXT_MAX_NODES = 10_000;

/**
 * What a part adds to context.text: a text part's text, a data part's string leaves (values, not
 * keys, in document order), a raw part of a text/* media type decoded as UTF-8. So a policy on the
 * text is not dodged by sending it as data or bytes. Other raw and url parts add nothing.
 */
function textOf(part: ReadPart): string[] {
  if (part.text !== undefined) return [part.text];
  if (part.base64 !== undefined && /^text\//i.test(part.mediaType)) return [Buffer.from(part.base64, 'base64').toString('utf8')];
  if (part.kind !== 'data') return [];
  const out: string[] = [];
  let nodes = 0;
  const walk = (v: unknown, depth: number): void => {
    if (++nodes > TEXT_MAX_NODES) refuse(`a data part has more than ${TEXT_MAX_NODES} values`);
    if (depth > TEXT_MAX_DEPTH) refuse(`a data part is nested deeper than ${TEXT_MAX_DEPTH} levels`);
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v) walk(x, depth + 1);
    else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) walk(x, depth + 1);
  };
  walk(part.data, 0);
  return out;
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Decoded length of base64 (standard or URL-safe alphabet, padding optional), or a refusal. */
function base64Bytes(s: unknown, what: string): number {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return refuse(`${what} must be base64 text`);
  const body = s.replace(/=+$/, '').length;
  if (body % 4 === 1) return refuse(`${what} must be base64 text`);
  return Math.floor((body * 3) / 4);
}

/**
 * A url part: its bytes are the URL's own (a `data:` URL carries its content inline), its host in
 * the canonical form the egress lists use (lib/destination.ts: no port, IPv4-mapped IPv6 as IPv4,
 * lower case, no trailing dot), its scheme. A URL that does not parse, or whose host is no host,
 * is refused rather than passed undecided.
 */
function urlPart(url: unknown, mediaType: string, what: string): ReadPart {
  if (typeof url !== 'string') return refuse(`${what} must be a string`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return refuse(`${what} must be an absolute URL`);
  }
  let host = '';
  if (u.hostname !== '') {
    const h = parseHost(u.hostname);
    if (h.kind === 'invalid') return refuse(`${what}: the host ${JSON.stringify(u.hostname)} is ${h.reason}`);
    host = h.kind === 'address' ? h.address : h.name;
  }
  return { kind: 'url', mediaType, bytes: utf8Bytes(url), host, scheme: u.protocol.slice(0, -1) };
}

/** Exactly one of `members` is present (under either spelling, member()); which. */
function oneOf(part: Record<string, unknown>, members: readonly string[], what: string): string {
  const present = members.filter((m) => member(part, m, `${what}.${m}`) !== undefined || Object.hasOwn(part, m));
  if (present.length !== 1) refuse(`${what} must have exactly one of ${members.join(', ')}${present.length ? ` (it has ${present.join(' and ')})` : ''}`);
  return present[0]!;
}

const dataBytes = (d: unknown): number => utf8Bytes(canonicalJson(d));

/** A text part's text. */
function textPart(text: unknown, mediaType: string, what: string): ReadPart {
  if (typeof text !== 'string') return refuse(`${what}.text must be a string`);
  return { kind: 'text', mediaType, bytes: utf8Bytes(text), host: '', text };
}

/** A 0.3 `file` member: a URI or base64 bytes (named `uri`/`bytes` in JSON-RPC, `fileWithUri`/`fileWithBytes` in HTTP+JSON). */
function filePart(raw: unknown, uriKey: string, bytesKey: string, what: string): ReadPart {
  const file = record(raw);
  if (!file) return refuse(`${what}.file must be an object`);
  knownKeys(file, uriKey === 'uri' ? '0.3 jsonrpc' : '0.3 rest', 'file', `${what}.file`);
  const mediaType = optString(member(file, 'mimeType', `${what}.file.mimeType`), `${what}.file.mimeType`);
  return oneOf(file, [uriKey, bytesKey], `${what}.file`) === uriKey
    ? urlPart(member(file, uriKey, `${what}.file.${uriKey}`), mediaType, `${what}.file.${uriKey}`)
    : rawPart(member(file, bytesKey, `${what}.file.${bytesKey}`), mediaType, `${what}.file.${bytesKey}`);
}

/** 0.3 JSON-RPC: `{kind: text|file|data, …}`. */
function part03(part: Record<string, unknown>, what: string): ReadPart {
  switch (part['kind']) {
    case 'text':
      return textPart(part['text'], '', what);
    case 'file':
      return filePart(part['file'], 'uri', 'bytes', what);
    case 'data':
      if (!Object.hasOwn(part, 'data')) return refuse(`${what}.data is missing`);
      return dataPart(part['data'], '');
    default:
      return refuse(`${what}.kind must be text, file or data`);
  }
}

/** 0.3 HTTP+JSON (protobuf JSON of the 0.3 proto): `{text}` | `{file: {fileWithUri|fileWithBytes, mimeType}}` | `{data: {data}}`. */
function part03Rest(part: Record<string, unknown>, what: string): ReadPart {
  switch (oneOf(part, ['text', 'file', 'data'], what)) {
    case 'text':
      return textPart(part['text'], '', what);
    case 'file':
      return filePart(part['file'], 'fileWithUri', 'fileWithBytes', what);
    default: {
      const data = record(part['data']);
      return dataPart(data && Object.hasOwn(data, 'data') ? data['data'] : part['data'], '');
    }
  }
}

/** 1.0: the member present says the kind: `{text}` | `{url}` | `{raw}` | `{data}`, with `mediaType`. */
function part10(part: Record<string, unknown>, what: string): ReadPart {
  const kind = oneOf(part, ['text', 'url', 'raw', 'data'], what) as A2aPart['kind'];
  const mediaType = optString(member(part, 'mediaType', `${what}.mediaType`), `${what}.mediaType`);
  switch (kind) {
    case 'text':
      return textPart(part['text'], mediaType, what);
    case 'url':
      return urlPart(part['url'], mediaType, `${what}.url`);
    case 'raw':
      return rawPart(part['raw'], mediaType, `${what}.raw`);
    default:
      return dataPart(part['data'], mediaType);
  }
}

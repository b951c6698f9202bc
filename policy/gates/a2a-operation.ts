// What one A2A call asks for, in the terms the gates speak (describe() in operation.ts is MCP's).
// Pure: the call in, an Operation (canonical method, skill target, facts for Cedar) out, or why
// the call is refused before any gate (method not found, params the gates cannot read).
//
// Only what the gates read is interpreted; the call is forwarded as its original bytes. So where
// the gates and the agent could read a body differently, the body is refused instead: a part with
// no kind or two, a 1.0-shaped message on a 0.3 REST path (the 1.3.0 server runs it with empty
// text), a skill that is not a string.
import { canonicalJson } from '../../api/canonical.js';
import type { A2aVersion } from '../../api/config.js';
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
    return { ok: true, ...describeRow(source, row, call, fromPath, options) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, error: 'params', reason: e.message };
    // A hostile getter or a stack overflow: reported without internals.
    return { ok: false, error: 'params', reason: 'the call could not be read' };
  }
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
    partCount: 0,
    totalBytes: 0,
    taskId: '',
    contextId: '',
    referenceTaskIds: [],
    pushUrl: '',
    pushAuth: false,
    tenant: '',
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
  const at = (where: JsonPath | 'path' | null, fromUrl: string | undefined, what: string): string =>
    where === 'path' ? (fromUrl ?? '') : where === null ? '' : optString(valueAt(p, where), what);

  const facts: A2aFacts = {
    ...noFacts(call.version, call.binding),
    taskId: at(row.taskIdAt, fromPath.taskId, 'the task id'),
    pushUrl: row.pushUrlAt ? optString(valueAt(p, row.pushUrlAt), row.pushUrlAt.join('.')) : '',
    pushAuth: row.pushUrlAt ? valueAt(p, [...row.pushUrlAt.slice(0, -1), 'authentication', 'credentials']) !== undefined : false,
    tenant: fromPath.tenant ?? '',
  };
  const configId = at(row.configIdAt, fromPath.configId, 'the push notification config id');
  let metadata: unknown;
  if (row.partsKey) {
    const message = record(p['message']);
    if (!message) refuse('a message (an object) is required');
    metadata = readMessage(message!, row.partsKey, facts, options);
  }
  let target: Operation['target'] = null;
  if (row.partsKey && options.skillFrom) {
    // The skill is read from the message alone (skillFrom is a path into message.metadata).
    const named = valueAt(p['message'], options.skillFrom.split('.'));
    if (named !== undefined) {
      if (typeof named !== 'string' || named === '') refuse(`${options.skillFrom} must name a skill (a non-empty string)`);
      facts.skill = named as string;
      target = { kind: 'skill', name: named as string };
    }
  }
  const op = { source, method: row.canonical, target, arguments: metadata, governed: row.governed, a2a: facts };
  return configId ? { op, row, configId } : { op, row };
}

/** Fills parts, sizes, ids and (when asked) text from a message; returns its metadata. */
function readMessage(message: Record<string, unknown>, partsKey: 'parts' | 'content', facts: A2aFacts, options: A2aDescribeOptions): unknown {
  const other = partsKey === 'parts' ? 'content' : 'parts';
  if (Object.hasOwn(message, other))
    refuse(
      `message.${other} is not A2A ${facts.version} ${facts.binding === 'rest' ? 'HTTP+JSON' : 'JSON-RPC'} (its parts are message.${partsKey}): the agent would not read it`,
    );
  const parts = message[partsKey];
  if (!Array.isArray(parts)) refuse(`message.${partsKey} must be a list`);
  const texts: string[] = [];
  const read = facts.version === '0.3' && facts.binding === 'jsonrpc' ? part03 : facts.version === '0.3' ? part03Rest : part10;
  (parts as unknown[]).forEach((raw, i) => {
    const part = record(raw);
    if (!part) refuse(`message.${partsKey}[${i}] must be an object`);
    const { kind, mediaType, bytes, host, text } = read(part!, `message.${partsKey}[${i}]`);
    facts.parts.push({ kind, mediaType, bytes, host });
    facts.totalBytes += bytes;
    if (text !== undefined) texts.push(text);
  });
  facts.partCount = facts.parts.length;
  const distinct = (xs: string[]) => [...new Set(xs)];
  facts.partKinds = distinct(facts.parts.map((p) => p.kind));
  facts.mediaTypes = distinct(facts.parts.flatMap((p) => (p.mediaType ? [p.mediaType] : [])));
  facts.urlHosts = distinct(facts.parts.flatMap((p) => (p.kind === 'url' && p.host ? [p.host] : [])));
  if (options.text) facts.text = texts.join('\n');
  facts.contextId = optString(message['contextId'], 'message.contextId');
  // Continuing a task names it here (task isolation reads facts.taskId).
  if (!facts.taskId) facts.taskId = optString(message['taskId'], 'message.taskId');
  const refs = message['referenceTaskIds'];
  if (refs !== undefined) {
    if (!Array.isArray(refs) || !refs.every((r) => typeof r === 'string')) refuse('message.referenceTaskIds must be a list of strings');
    facts.referenceTaskIds = [...(refs as string[])];
  }
  const metadata = message['metadata'];
  if (metadata !== undefined && metadata !== null && !record(metadata)) refuse('message.metadata must be an object');
  return metadata ?? undefined;
}

type ReadPart = A2aPart & { text?: string };

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Decoded length of base64 (standard or URL-safe alphabet, padding optional), or a refusal. */
function base64Bytes(s: unknown, what: string): number {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return refuse(`${what} must be base64 text`);
  const body = s.replace(/=+$/, '').length;
  if (body % 4 === 1) return refuse(`${what} must be base64 text`);
  return Math.floor((body * 3) / 4);
}

/** A url part's host as WHATWG canonicalises it (`0x7f000001` is `127.0.0.1`); a URL it cannot parse is refused, not passed undecided. */
function hostOf(url: unknown, what: string): string {
  if (typeof url !== 'string') return refuse(`${what} must be a string`);
  try {
    return new URL(url).host;
  } catch {
    return refuse(`${what} must be an absolute URL`);
  }
}

/** Exactly one of `members` is present; which. */
function oneOf(part: Record<string, unknown>, members: readonly string[], what: string): string {
  const present = members.filter((m) => Object.hasOwn(part, m));
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
  const mediaType = optString(file['mimeType'], `${what}.file.mimeType`);
  return oneOf(file, [uriKey, bytesKey], `${what}.file`) === uriKey
    ? { kind: 'url', mediaType, bytes: 0, host: hostOf(file[uriKey], `${what}.file.${uriKey}`) }
    : { kind: 'raw', mediaType, bytes: base64Bytes(file[bytesKey], `${what}.file.${bytesKey}`), host: '' };
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
      return { kind: 'data', mediaType: '', bytes: dataBytes(part['data']), host: '' };
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
      return { kind: 'data', mediaType: '', bytes: dataBytes(data && Object.hasOwn(data, 'data') ? data['data'] : part['data']), host: '' };
    }
  }
}

/** 1.0: the member present says the kind: `{text}` | `{url}` | `{raw}` | `{data}`, with `mediaType`. */
function part10(part: Record<string, unknown>, what: string): ReadPart {
  const kind = oneOf(part, ['text', 'url', 'raw', 'data'], what) as A2aPart['kind'];
  const mediaType = optString(part['mediaType'], `${what}.mediaType`);
  switch (kind) {
    case 'text':
      return textPart(part['text'], mediaType, what);
    case 'url':
      return { kind, mediaType, bytes: 0, host: hostOf(part['url'], `${what}.url`) };
    case 'raw':
      return { kind, mediaType, bytes: base64Bytes(part['raw'], `${what}.raw`), host: '' };
    default:
      return { kind, mediaType, bytes: dataBytes(part['data']), host: '' };
  }
}

// A2A's methods in both generations and both HTTP bindings: the one alias table (issue 13, DESIGN
// §2.8). Pure.
//
// Rules and Cedar speak the canonical 1.0 names (SendMessage, GetTask…), so one rule covers a 0.3
// client's `message/send` too. A call is looked up *exactly* in the rows of its own version: a 1.0
// name sent as 0.3 (or the reverse), another spelling (`Message/Send`, `sendMessage`) or another
// REST path is not found, and the caller answers it locally (method not found / 404). That matters
// because the 0.3.14 SDK server ignores A2A-Version and runs `message/send` whatever it says, and
// the 1.3.0 server matches REST paths case-insensitively: nothing the table does not name reaches
// an agent. Wire facts: /work/a2a/captures (the SDKs' real requests).
import type { A2aVersion } from '../../api/config.js';
import { A2A_VERSIONS } from '../../api/config.js';

export type { A2aVersion };
export type A2aBinding = 'jsonrpc' | 'rest';

/** Canonical (1.0) method names; GetAgentCard is the public card (GET /.well-known/agent-card.json). */
export const A2A_METHODS = [
  'SendMessage',
  'SendStreamingMessage',
  'GetTask',
  'ListTasks',
  'CancelTask',
  'SubscribeToTask',
  'CreateTaskPushNotificationConfig',
  'GetTaskPushNotificationConfig',
  'ListTaskPushNotificationConfigs',
  'DeleteTaskPushNotificationConfig',
  'GetExtendedAgentCard',
  'GetAgentCard',
] as const;
export type A2aMethod = (typeof A2A_METHODS)[number];

/** The public card, on the source's origin (both versions; the card is negotiated by A2A-Version). */
export const AGENT_CARD_PATH = '/.well-known/agent-card.json';

/** A path of keys into a JSON-RPC request's `params` or a REST request's body. */
export type JsonPath = readonly string[];

export interface A2aRow {
  canonical: A2aMethod;
  version: A2aVersion;
  binding: A2aBinding;
  /** JSON-RPC: the method as sent; REST: `<HTTP method> <path pattern>` (relative to the rest base). */
  wire: string;
  /** REST only. */
  httpMethod?: 'GET' | 'POST' | 'DELETE';
  /** REST only: the pattern below the rest base, `{id}` and `{configId}` one segment each (no "/" or ":"). */
  path?: string;
  /** Acts on the world (rules without `method` and the defaultAction apply); else plumbing. */
  governed: boolean;
  /** Answered as an SSE stream. */
  stream: boolean;
  /** Where the task id is: a path into params/body, `path` (REST: the {id} segment), or null (none, or only message.taskId). */
  taskIdAt: JsonPath | 'path' | null;
  /** Where a push notification config's id is (Get/Delete). */
  configIdAt: JsonPath | 'path' | null;
  /** Where a client-given webhook URL is (egress, DESIGN §2.11). */
  pushUrlAt: JsonPath | null;
  /** Send*: the message's parts member (0.3 REST: `content`). */
  partsKey: 'parts' | 'content' | null;
}

type Facts = Pick<A2aRow, 'governed' | 'stream'>;
const FACTS: Record<A2aMethod, Facts> = {
  SendMessage: { governed: true, stream: false },
  SendStreamingMessage: { governed: true, stream: true },
  GetTask: { governed: false, stream: false },
  ListTasks: { governed: false, stream: false },
  CancelTask: { governed: true, stream: false },
  SubscribeToTask: { governed: false, stream: true },
  CreateTaskPushNotificationConfig: { governed: true, stream: false },
  GetTaskPushNotificationConfig: { governed: false, stream: false },
  ListTaskPushNotificationConfigs: { governed: false, stream: false },
  DeleteTaskPushNotificationConfig: { governed: true, stream: false },
  GetExtendedAgentCard: { governed: false, stream: false },
  GetAgentCard: { governed: false, stream: false },
};

type Where = Pick<A2aRow, 'taskIdAt' | 'configIdAt' | 'pushUrlAt' | 'partsKey'>;
const NONE: Where = { taskIdAt: null, configIdAt: null, pushUrlAt: null, partsKey: null };

function rpc(version: A2aVersion, wire: string, canonical: A2aMethod, where: Partial<Where> = {}): A2aRow {
  return { canonical, version, binding: 'jsonrpc', wire, ...FACTS[canonical], ...NONE, ...where };
}
function rest(version: A2aVersion, httpMethod: 'GET' | 'POST' | 'DELETE', path: string, canonical: A2aMethod, where: Partial<Where> = {}): A2aRow {
  return { canonical, version, binding: 'rest', wire: `${httpMethod} ${path}`, httpMethod, path, ...FACTS[canonical], ...NONE, ...where };
}

const P = 'path' as const;

/** Every row: JSON-RPC 0.3 (10), JSON-RPC 1.0 (11), REST 0.3 (`/v1/`, 11), REST 1.0 (12). */
export const A2A_ROWS: readonly A2aRow[] = [
  // JSON-RPC 0.3
  rpc('0.3', 'message/send', 'SendMessage', { pushUrlAt: ['configuration', 'pushNotificationConfig', 'url'], partsKey: 'parts' }),
  rpc('0.3', 'message/stream', 'SendStreamingMessage', { pushUrlAt: ['configuration', 'pushNotificationConfig', 'url'], partsKey: 'parts' }),
  rpc('0.3', 'tasks/get', 'GetTask', { taskIdAt: ['id'] }),
  rpc('0.3', 'tasks/cancel', 'CancelTask', { taskIdAt: ['id'] }),
  rpc('0.3', 'tasks/resubscribe', 'SubscribeToTask', { taskIdAt: ['id'] }),
  rpc('0.3', 'tasks/pushNotificationConfig/set', 'CreateTaskPushNotificationConfig', {
    taskIdAt: ['taskId'],
    configIdAt: ['pushNotificationConfig', 'id'],
    pushUrlAt: ['pushNotificationConfig', 'url'],
  }),
  rpc('0.3', 'tasks/pushNotificationConfig/get', 'GetTaskPushNotificationConfig', { taskIdAt: ['id'], configIdAt: ['pushNotificationConfigId'] }),
  rpc('0.3', 'tasks/pushNotificationConfig/list', 'ListTaskPushNotificationConfigs', { taskIdAt: ['id'] }),
  rpc('0.3', 'tasks/pushNotificationConfig/delete', 'DeleteTaskPushNotificationConfig', { taskIdAt: ['id'], configIdAt: ['pushNotificationConfigId'] }),
  rpc('0.3', 'agent/getAuthenticatedExtendedCard', 'GetExtendedAgentCard'),
  // JSON-RPC 1.0
  rpc('1.0', 'SendMessage', 'SendMessage', { pushUrlAt: ['configuration', 'taskPushNotificationConfig', 'url'], partsKey: 'parts' }),
  rpc('1.0', 'SendStreamingMessage', 'SendStreamingMessage', { pushUrlAt: ['configuration', 'taskPushNotificationConfig', 'url'], partsKey: 'parts' }),
  rpc('1.0', 'GetTask', 'GetTask', { taskIdAt: ['id'] }),
  rpc('1.0', 'ListTasks', 'ListTasks'),
  rpc('1.0', 'CancelTask', 'CancelTask', { taskIdAt: ['id'] }),
  rpc('1.0', 'SubscribeToTask', 'SubscribeToTask', { taskIdAt: ['id'] }),
  rpc('1.0', 'CreateTaskPushNotificationConfig', 'CreateTaskPushNotificationConfig', { taskIdAt: ['taskId'], configIdAt: ['id'], pushUrlAt: ['url'] }),
  rpc('1.0', 'GetTaskPushNotificationConfig', 'GetTaskPushNotificationConfig', { taskIdAt: ['taskId'], configIdAt: ['id'] }),
  rpc('1.0', 'ListTaskPushNotificationConfigs', 'ListTaskPushNotificationConfigs', { taskIdAt: ['taskId'] }),
  rpc('1.0', 'DeleteTaskPushNotificationConfig', 'DeleteTaskPushNotificationConfig', { taskIdAt: ['taskId'], configIdAt: ['id'] }),
  rpc('1.0', 'GetExtendedAgentCard', 'GetExtendedAgentCard'),
  // REST 0.3 (protobuf JSON of the 0.3 proto: the message's parts are `content`)
  rest('0.3', 'POST', '/v1/message:send', 'SendMessage', { pushUrlAt: ['configuration', 'pushNotification', 'url'], partsKey: 'content' }),
  rest('0.3', 'POST', '/v1/message:stream', 'SendStreamingMessage', { pushUrlAt: ['configuration', 'pushNotification', 'url'], partsKey: 'content' }),
  rest('0.3', 'GET', '/v1/tasks/{id}', 'GetTask', { taskIdAt: P }),
  rest('0.3', 'POST', '/v1/tasks/{id}:cancel', 'CancelTask', { taskIdAt: P }),
  // The 0.3.14 client subscribes with POST, the 1.3.0 compat client with GET; the server takes both.
  rest('0.3', 'POST', '/v1/tasks/{id}:subscribe', 'SubscribeToTask', { taskIdAt: P }),
  rest('0.3', 'GET', '/v1/tasks/{id}:subscribe', 'SubscribeToTask', { taskIdAt: P }),
  rest('0.3', 'POST', '/v1/tasks/{id}/pushNotificationConfigs', 'CreateTaskPushNotificationConfig', {
    taskIdAt: P,
    configIdAt: ['pushNotificationConfig', 'id'],
    pushUrlAt: ['pushNotificationConfig', 'url'],
  }),
  rest('0.3', 'GET', '/v1/tasks/{id}/pushNotificationConfigs/{configId}', 'GetTaskPushNotificationConfig', { taskIdAt: P, configIdAt: P }),
  rest('0.3', 'GET', '/v1/tasks/{id}/pushNotificationConfigs', 'ListTaskPushNotificationConfigs', { taskIdAt: P }),
  rest('0.3', 'DELETE', '/v1/tasks/{id}/pushNotificationConfigs/{configId}', 'DeleteTaskPushNotificationConfig', { taskIdAt: P, configIdAt: P }),
  rest('0.3', 'GET', '/v1/card', 'GetExtendedAgentCard'),
  // REST 1.0 (each path may start with one tenant segment, restRoute)
  rest('1.0', 'POST', '/message:send', 'SendMessage', { pushUrlAt: ['configuration', 'taskPushNotificationConfig', 'url'], partsKey: 'parts' }),
  rest('1.0', 'POST', '/message:stream', 'SendStreamingMessage', { pushUrlAt: ['configuration', 'taskPushNotificationConfig', 'url'], partsKey: 'parts' }),
  rest('1.0', 'GET', '/tasks/{id}', 'GetTask', { taskIdAt: P }),
  rest('1.0', 'GET', '/tasks', 'ListTasks'),
  rest('1.0', 'POST', '/tasks/{id}:cancel', 'CancelTask', { taskIdAt: P }),
  rest('1.0', 'POST', '/tasks/{id}:subscribe', 'SubscribeToTask', { taskIdAt: P }),
  rest('1.0', 'GET', '/tasks/{id}:subscribe', 'SubscribeToTask', { taskIdAt: P }),
  rest('1.0', 'POST', '/tasks/{id}/pushNotificationConfigs', 'CreateTaskPushNotificationConfig', { taskIdAt: P, configIdAt: ['id'], pushUrlAt: ['url'] }),
  rest('1.0', 'GET', '/tasks/{id}/pushNotificationConfigs/{configId}', 'GetTaskPushNotificationConfig', { taskIdAt: P, configIdAt: P }),
  rest('1.0', 'GET', '/tasks/{id}/pushNotificationConfigs', 'ListTaskPushNotificationConfigs', { taskIdAt: P }),
  rest('1.0', 'DELETE', '/tasks/{id}/pushNotificationConfigs/{configId}', 'DeleteTaskPushNotificationConfig', { taskIdAt: P, configIdAt: P }),
  rest('1.0', 'GET', '/extendedAgentCard', 'GetExtendedAgentCard'),
];

// A Map, not an object: a method named "__proto__" or "constructor" must find nothing.
const BY_WIRE = new Map<string, A2aRow>();
for (const r of A2A_ROWS) if (r.binding === 'jsonrpc') BY_WIRE.set(`${r.version} ${r.wire}`, r);

/** The JSON-RPC row for exactly this method name in this version, else undefined (answer -32601 locally). */
export function jsonRpcMethod(version: A2aVersion, method: string): A2aRow | undefined {
  return BY_WIRE.get(`${version} ${method}`);
}

const CANONICAL = new Set<string>(A2A_METHODS);
const ALIASES = new Map<string, string[]>();
const TO_CANONICAL = new Map<string, A2aMethod>();
for (const m of A2A_METHODS) TO_CANONICAL.set(m, m);
for (const r of A2A_ROWS)
  if (r.binding === 'jsonrpc' && r.wire !== r.canonical) {
    TO_CANONICAL.set(r.wire, r.canonical);
    ALIASES.set(r.canonical, [...(ALIASES.get(r.canonical) ?? []), r.wire]);
  }

/** True for a canonical A2A method name. */
export function isA2aMethod(name: string): name is A2aMethod {
  return CANONICAL.has(name);
}

/** The canonical name of a method spelt in either generation (`message/send` → SendMessage), else undefined. */
export function canonicalA2aMethod(name: string): A2aMethod | undefined {
  return TO_CANONICAL.get(name);
}

/** The other generation's JSON-RPC names of a canonical method (SendMessage → ['message/send']); [] for anything else. */
export function a2aAliases(canonical: string): readonly string[] {
  return ALIASES.get(canonical) ?? [];
}

/** A REST request that matched a row: the row and what its path named. */
export interface RestMatch {
  row: A2aRow;
  taskId?: string;
  configId?: string;
  /** 1.0 only: the optional leading tenant segment. */
  tenant?: string;
}

/** A path segment value ({id}, {configId}, tenant): no "/" and no ":" (so `{id}:cancel` has one reading). */
const SEGMENT = '([^/:]+)';
const REST_PATTERNS = A2A_ROWS.filter((r) => r.binding === 'rest').map((row) => {
  const names: string[] = [];
  const body = row
    .path!.split(/(\{id\}|\{configId\})/)
    .map((part) => {
      if (part === '{id}' || part === '{configId}') {
        names.push(part.slice(1, -1));
        return SEGMENT;
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  // 1.0 paths may carry one tenant segment first (`/tenant-x/message:send`); 0.3 paths never.
  return { row, names, plain: new RegExp(`^${body}$`), tenanted: row.version === '1.0' ? new RegExp(`^/${SEGMENT}${body}$`) : null };
});

/**
 * The REST row for (HTTP method, path below the rest base) in this version, else undefined (404
 * locally). `path` must already be canonical (the caller refuses %-encoding, "//" and dot
 * segments); matching is case-sensitive. `/v1/` paths are 0.3 only, and a 1.0 tenant named `v1`
 * is refused, so a path has one generation. A path with two readings (`GET /tasks/tasks`: a task
 * named "tasks", or tenant "tasks" listing) is refused rather than guessed.
 */
export function restRoute(version: A2aVersion, httpMethod: string, path: string): RestMatch | undefined {
  const found: RestMatch[] = [];
  for (const p of REST_PATTERNS) {
    if (p.row.version !== version || p.row.httpMethod !== httpMethod) continue;
    const plain = p.plain.exec(path);
    if (plain) found.push(matchOf(p.row, p.names, plain.slice(1)));
    const t = p.tenanted?.exec(path);
    if (t && t[1] !== 'v1') found.push({ ...matchOf(p.row, p.names, t.slice(2)), tenant: t[1]! });
  }
  return found.length === 1 ? found[0] : undefined;
}

function matchOf(row: A2aRow, names: readonly string[], values: readonly string[]): RestMatch {
  const m: RestMatch = { row };
  names.forEach((n, i) => {
    if (n === 'id') m.taskId = values[i]!;
    else m.configId = values[i]!;
  });
  return m;
}

/** The query parameter a client may send instead of the header (A2A spec §3.6). */
export const A2A_VERSION_PARAM = 'A2A-Version';

export type VersionResult = { ok: true; version: A2aVersion } | { ok: false; reason: string };

/**
 * The A2A version of a request from its `A2A-Version` header and query parameter (each as Node
 * gives it: a string, a list when repeated, or undefined). Exactly "0.3" or "1.0"; absent or empty
 * is 0.3 (the spec's rule for 0.3 clients, which send none). Anything else, a repeated or
 * comma-joined value, or header and query disagreeing is unsupported: the caller answers -32009
 * (VersionNotSupported) and forwards nothing. `allowed` is the source's a2a.versions.
 */
export function a2aVersionOf(
  header: string | readonly string[] | undefined,
  query: string | readonly string[] | undefined,
  allowed: readonly A2aVersion[] = A2A_VERSIONS,
): VersionResult {
  const h = one(header, 'header');
  if (!h.ok) return h;
  const q = one(query, 'query parameter');
  if (!q.ok) return q;
  if (h.value !== undefined && q.value !== undefined && h.value !== q.value)
    return { ok: false, reason: `A2A-Version header "${h.value}" and query parameter "${q.value}" disagree` };
  const v = h.value ?? q.value ?? '0.3';
  if (v !== '0.3' && v !== '1.0') return { ok: false, reason: `A2A-Version "${v}" is not supported (exactly ${A2A_VERSIONS.join(' or ')})` };
  if (!allowed.includes(v)) return { ok: false, reason: `A2A-Version ${v} is not enabled for this agent (a2a.versions: ${allowed.join(', ')})` };
  return { ok: true, version: v };
}

function one(v: string | readonly string[] | undefined, what: string): { ok: true; value: string | undefined } | { ok: false; reason: string } {
  if (v === undefined) return { ok: true, value: undefined };
  if (typeof v !== 'string') {
    if (v.length > 1) return { ok: false, reason: `A2A-Version ${what} given ${v.length} times` };
    return one(v[0], what);
  }
  if (v.includes(',')) return { ok: false, reason: `A2A-Version ${what} lists several versions ("${v}")` };
  return { ok: true, value: v === '' ? undefined : v };
}

/** The value at a path into a parsed JSON value, or undefined. Own keys only. */
export function valueAt(root: unknown, path: JsonPath): unknown {
  let at = root;
  for (const k of path) {
    if (at === null || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, k)) return undefined;
    at = (at as Record<string, unknown>)[k];
  }
  return at;
}

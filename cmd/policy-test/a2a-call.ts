// An A2A call as a policy test case (or `explain --a2a`) describes it, turned into the call the
// A2A handler would read: the method in the version and binding's spelling (a REST route with its
// task id), and the params built in that version's wire shape — the message with its parts and
// metadata, the skill where the source's a2a.skillFrom reads it, the tenant, the task id. Pure.
import type { A2aVersion, Source } from '../../api/config.js';
import type { A2aCallSpec } from '../../api/policy-test.js';
import { a2aExtensionsOf } from '../../policy/gates/a2a-extensions.js';
import { A2A_ROWS, type A2aRow, canonicalA2aMethod, isA2aMethod } from '../../policy/gates/a2a-methods.js';
import { type A2aCall, REQUEST_METADATA_PREFIX } from '../../policy/gates/a2a-operation.js';

const MESSAGE_ID = 'thoughtgate-test';

type Json = Record<string, unknown>;

/** Sets `value` at `path` below `root`, making the objects on the way. */
function setAt(root: Json, path: readonly string[], value: unknown): void {
  let at = root;
  for (const k of path.slice(0, -1)) {
    const next = at[k];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) at[k] = {};
    at = at[k] as Json;
  }
  at[path[path.length - 1]!] = value;
}

/** The message of a send, in the shape of `row`'s version and binding. */
function messageFor(row: A2aRow, a: A2aCallSpec): Json {
  const v03rpc = row.version === '0.3' && row.binding === 'jsonrpc';
  const text = a.text === undefined ? [] : [v03rpc ? { kind: 'text', text: a.text } : { text: a.text }];
  return {
    ...(v03rpc ? { kind: 'message' } : {}),
    messageId: MESSAGE_ID,
    role: v03rpc ? 'user' : 'ROLE_USER',
    [row.partsKey!]: a.parts ?? text,
    ...(a.metadata !== undefined ? { metadata: structuredClone(a.metadata) } : {}),
    ...(a.taskId !== undefined ? { taskId: a.taskId } : {}),
  };
}

type Refused = { ok: false; reason: string };

/** The row and wire method of the call: its version (told by the spelling), binding (the source's), REST path with the task id. */
function routeOf(method: string, a: A2aCallSpec, source: Pick<Source, 'name' | 'a2a'>): { ok: true; row: A2aRow; wire: string } | Refused {
  const canonical = canonicalA2aMethod(method);
  if (canonical === undefined) return { ok: false, reason: `no A2A method ${JSON.stringify(method)}` };
  const version: A2aVersion = a.version ?? (isA2aMethod(method) ? '1.0' : '0.3');
  // The binding the source has (JSON-RPC first); one it does not have would be refused by the sidecar.
  const binding = a.binding ?? (source.a2a?.jsonrpc === undefined && source.a2a?.rest !== undefined ? 'rest' : 'jsonrpc');
  if (source.a2a?.[binding] === undefined)
    return { ok: false, reason: `source "${source.name}" has no ${binding === 'rest' ? 'HTTP+JSON (a2a.rest)' : 'JSON-RPC (a2a.jsonrpc)'} interface` };
  const row = A2A_ROWS.find((r) => r.canonical === canonical && r.version === version && r.binding === binding);
  if (!row) return { ok: false, reason: `A2A ${version} has no ${canonical} in the ${binding === 'rest' ? 'HTTP+JSON' : 'JSON-RPC'} binding` };
  if (row.binding !== 'rest') return { ok: true, row, wire: row.wire };
  if (row.path!.includes('{configId}'))
    return { ok: false, reason: `${canonical} over HTTP+JSON names a config in its path: give "params" and use the JSON-RPC binding` };
  if (row.taskIdAt !== 'path') return { ok: true, row, wire: row.wire };
  if (a.taskId === undefined) return { ok: false, reason: `${canonical} names a task: set a2a.taskId` };
  return { ok: true, row, wire: `${row.httpMethod} ${row.path!.replace('{id}', encodeURIComponent(a.taskId))}` };
}

/** The params of the call `a` describes, in `row`'s shape. */
function paramsOf(row: A2aRow, a: A2aCallSpec, source: Pick<Source, 'name' | 'a2a'>): { ok: true; params: Json } | Refused {
  const p: Json = {};
  if (row.partsKey) {
    const message = messageFor(row, a);
    p['message'] = message;
    if (a.skill !== undefined) {
      const from = source.a2a?.skillFrom;
      if (from === undefined) return { ok: false, reason: `source "${source.name}" names no a2a.skillFrom, so no call can name a skill` };
      if (from.startsWith(REQUEST_METADATA_PREFIX)) setAt(p, from.slice(REQUEST_METADATA_PREFIX.length).split('.'), a.skill);
      else setAt(message, from.split('.'), a.skill);
    }
  } else if (a.skill !== undefined || a.text !== undefined || a.parts !== undefined || a.metadata !== undefined) {
    return { ok: false, reason: `${row.canonical} carries no message: skill, text, parts and metadata go with SendMessage or SendStreamingMessage` };
  }
  if (a.requestMetadata !== undefined) {
    const at = p['metadata'];
    p['metadata'] = { ...(at !== null && typeof at === 'object' ? at : {}), ...structuredClone(a.requestMetadata) };
  }
  if (a.tenant !== undefined) p['tenant'] = a.tenant;
  if (a.taskId !== undefined && !row.partsKey && Array.isArray(row.taskIdAt)) setAt(p, row.taskIdAt, a.taskId);
  return { ok: true, params: p };
}

/**
 * The A2A call for `method` (either spelling) and `a` on `source`; `params` as given replaces the
 * built ones. Or why it cannot be built (what the sidecar would refuse, or a case that says too little).
 */
export function a2aCallOf(method: string, params: unknown, a: A2aCallSpec, source: Pick<Source, 'name' | 'a2a'>): { ok: true; call: A2aCall } | Refused {
  const route = routeOf(method, a, source);
  if (!route.ok) return route;
  const { row, wire } = route;
  const ext = a2aExtensionsOf({ 'a2a-extensions': (a.extensions ?? []).join(',') }, row.version);
  if (!ext.ok) return ext;
  if (a.tenant !== undefined && row.version !== '1.0') return { ok: false, reason: 'a tenant is A2A 1.0 only' };
  const built = params !== undefined ? { ok: true as const, params } : paramsOf(row, a, source);
  if (!built.ok) return built;
  return { ok: true, call: { version: row.version, binding: row.binding, method: wire, params: built.params, extensions: ext.extensions } };
}

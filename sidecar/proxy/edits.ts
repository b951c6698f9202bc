// Edits to upstream responses, matched to the request they answer by its JSON-RPC id (EditTable):
// - filter: gate 1 removes hidden entries from a list result (keeping nextCursor and the rest);
// - probe: a call to a hidden target was sent upstream under a name that cannot exist, so the
//   answer is exactly the upstream's answer for an unknown target; the probe name is put back.
// - filter may also mark tools that can need approval as task-capable (gate 4, see
//   approvals/tasks.ts markTaskSupport), and initialize results get ThoughtGate's task
//   capabilities merged in, when the sidecar has an approval backend.
// Everything else in a response passes through byte for byte; what cannot be read or matched
// becomes a -32015 error. Pure apart from the table's record of answered requests.
import { randomBytes } from 'node:crypto';
import { idKeys, parseJsonRpc, type Message, type RawId } from '../../lib/jsonrpc.js';
import { errorResponse, resultResponse } from '../../lib/jsonrpc-reply.js';
import { ERRORS } from '../../api/errors.js';
import { filterListResult, LIST_METHODS, type Visibility } from '../../policy/gates/visibility.js';
import { markTaskSupport, mergeInitializeResult, type TaskSupport } from '../approvals/tasks.js';

export interface TaskMarking {
  mayNeedApproval: (tool: string) => boolean;
  /** Learns the upstream's own taskSupport of each listed tool. */
  seen: (tool: string, upstream: TaskSupport) => void;
}

export type ResponseEdit =
  /** `audit`: gate 1 in audit mode: nothing is removed; told how many entries enforce would have. */
  | { kind: 'filter'; method: string; visibility: Visibility; tasks?: TaskMarking; audit?: (hidden: number) => void }
  | { kind: 'probe'; probe: string; original: string }
  /** initialize: merge our tasks capability; `seen` gets the upstream's own initialize result. */
  | { kind: 'initialize'; seen: (result: unknown) => void };

export function idKey(id: RawId): string {
  return typeof id.value === 'string' ? `s:${id.value}` : `n:${id.value}`;
}

export function newProbeName(): string {
  return `thoughtgate-probe-${randomBytes(12).toString('hex')}`;
}

/**
 * The request as sent upstream for a hidden target: same id and method, the probe in place of the
 * name, no arguments. Of the agent's `_meta` only the keys 2026-07-28 requires on every request are
 * kept (io.modelcontextprotocol/ protocolVersion, clientCapabilities, clientInfo): they describe
 * the client, not the call, and without them the upstream's answer would differ
 * from its answer for an unknown name.
 */
const PROBE_META = new Set(['io.modelcontextprotocol/protocolVersion', 'io.modelcontextprotocol/clientCapabilities', 'io.modelcontextprotocol/clientInfo']);

export function probeRequest(id: RawId, method: string, kind: 'tool' | 'resource' | 'prompt', probe: string, agentParams?: unknown): string {
  let params: Record<string, unknown>;
  if (method === 'completion/complete') {
    params = { ref: kind === 'resource' ? { type: 'ref/resource', uri: probe } : { type: 'ref/prompt', name: probe }, argument: { name: 'x', value: '' } };
  } else if (kind === 'resource') {
    params = { uri: probe };
  } else if (kind === 'prompt') {
    params = { name: probe };
  } else {
    params = { name: probe, arguments: {} };
  }
  const meta = (agentParams as { _meta?: unknown } | undefined)?._meta;
  if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
    const kept = Object.entries(meta).filter(([k]) => PROBE_META.has(k));
    if (kept.length > 0) params['_meta'] = Object.fromEntries(kept);
  }
  return `{"jsonrpc":"2.0","id":${id.raw},"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`;
}

/**
 * The requests of one forwarded POST and their edits. A request is filed under every key of its id
 * (idKeys), so a response is matched the way any peer might match it ("1", 1 and 1.0 alike), and
 * never by a key the agent can make ambiguous: a response that matches no forwarded request, or more
 * than one, is not passed through (handlePost refuses batches with colliding ids, so a legitimate
 * response always matches exactly one). It also tracks which requests have been answered, so a
 * stream that cannot be read further can answer the rest with errors.
 */
export class EditTable {
  private readonly byKey = new Map<string, number[]>();
  private readonly requests: { id: RawId; edit: ResponseEdit | null; answered: boolean }[] = [];
  /** How many requests have an edit. */
  edits = 0;

  add(id: RawId, edit: ResponseEdit | null): void {
    const i = this.requests.push({ id, edit, answered: false }) - 1;
    if (edit) this.edits++;
    for (const k of idKeys(id)) {
      const list = this.byKey.get(k);
      if (list) list.push(i);
      else this.byKey.set(k, [i]);
    }
  }

  /** The request a response answers: 'unknown' when none, 'ambiguous' when its id could name several. */
  match(id: RawId): { kind: 'one'; edit: ResponseEdit | null } | { kind: 'unknown' } | { kind: 'ambiguous' } {
    const found = new Set<number>();
    for (const k of idKeys(id)) for (const i of this.byKey.get(k) ?? []) found.add(i);
    if (found.size === 0) return { kind: 'unknown' };
    if (found.size > 1) return { kind: 'ambiguous' };
    const r = this.requests[[...found][0]!]!;
    r.answered = true;
    return { kind: 'one', edit: r.edit };
  }

  /** Ids of forwarded requests no response has matched yet. */
  pending(): RawId[] {
    return this.requests.filter((r) => !r.answered).map((r) => r.id);
  }
}

export interface EditContext {
  edits: EditTable;
  correlationId: string;
}

/** A message ThoughtGate would not pass through becomes this error (-32015), keeping its id. */
export function notGoverned(id: RawId | null, reason: string, correlationId: string, gate: 'upstream' | 'visibility' = 'upstream'): string {
  const e = ERRORS.UPSTREAM_RESPONSE_INVALID;
  return errorResponse(id, e.code, e.message, { gate, reason, correlationId });
}

function editOne(m: Message, ctx: EditContext): string {
  // Requests and notifications from the server to the client carry no answer of ours.
  if (m.kind === 'request' || m.kind === 'notification') return m.raw;
  if (m.kind === 'invalid') {
    // Not JSON-RPC as we read it (duplicate keys, no jsonrpc, ...): a client may still read it another way.
    if (m.id !== null) ctx.edits.match(m.id);
    return notGoverned(m.id, `upstream sent a message that is not valid JSON-RPC (${m.reason}); not passed through`, ctx.correlationId);
  }
  if (m.id === null) {
    return m.isError ? m.raw : notGoverned(null, 'upstream sent a result without an id; not passed through', ctx.correlationId);
  }
  const found = ctx.edits.match(m.id);
  if (found.kind === 'unknown') return notGoverned(m.id, 'upstream answered an id that was not asked in this request; not passed through', ctx.correlationId);
  if (found.kind === 'ambiguous')
    return notGoverned(m.id, 'upstream answer matches more than one request of this batch; not passed through', ctx.correlationId);
  const edit = found.edit;
  if (!edit) return m.raw;
  if (edit.kind === 'probe') {
    // The probe is plain ASCII; the original goes back JSON-escaped wherever the upstream echoed it.
    const replacement = JSON.stringify(edit.original).slice(1, -1);
    return m.raw.split(edit.probe).join(replacement);
  }
  if (m.isError) return m.raw;
  if (edit.kind === 'initialize') {
    edit.seen(m.result);
    const merged = mergeInitializeResult(m.result);
    return merged === null ? m.raw : resultResponse(m.id, merged);
  }
  let filtered = filterListResult(edit.visibility, edit.method, m.result);
  if (filtered === null) {
    return notGoverned(m.id, `upstream ${edit.method} result is not a valid list; not passed through unfiltered`, ctx.correlationId, 'visibility');
  }
  if (edit.audit) {
    edit.audit(hiddenCount(edit.method, m.result, filtered));
    if (!edit.tasks) return m.raw;
    filtered = m.result as Record<string, unknown>;
  }
  if (edit.tasks) filtered = markTaskSupport(filtered, edit.tasks.mayNeedApproval, edit.tasks.seen);
  return resultResponse(m.id, filtered);
}

/** Entries a filter removed: the list's length before and after (both have the shape: filterListResult checked it). */
function hiddenCount(method: string, before: unknown, after: Record<string, unknown>): number {
  const array = LIST_METHODS[method]!.array;
  return ((before as Record<string, unknown[]>)[array]?.length ?? 0) - ((after[array] as unknown[] | undefined)?.length ?? 0);
}

/**
 * Applies the edits to one JSON payload (a single message or a batch). Every message is read;
 * one that cannot be governed (not JSON-RPC, an id we did not ask, a list that is not a list)
 * becomes a -32015 error. Returns null when the payload is not JSON-RPC at all: the caller fails
 * closed.
 */
export function editPayload(text: string, ctx: EditContext): { text: string; changed: boolean } | null {
  const p = parseJsonRpc(text);
  if (!p.ok) return null;
  if (!p.batch) {
    const out = editOne(p.message, ctx);
    return { text: out, changed: out !== p.message.raw };
  }
  let changed = false;
  const parts = p.messages.map((m) => {
    const out = editOne(m, ctx);
    if (out !== m.raw) changed = true;
    return out;
  });
  return { text: changed ? `[${parts.join(',')}]` : text, changed };
}

/**
 * For streams whose request ids we do not know (GET streams, which may replay POST streams after
 * Last-Event-ID): filter any response that has the shape of a list result.
 */
export function filterByShape(text: string, visibility: Visibility, correlationId: string): string | null {
  const p = parseJsonRpc(text);
  if (!p.ok) return null;
  const msgs = p.batch ? p.messages : [p.message];
  const edits = new EditTable();
  for (const m of msgs) {
    if (m.kind !== 'response' || m.id === null) continue;
    let edit: ResponseEdit | null = null;
    const r = m.result as Record<string, unknown> | undefined;
    if (!m.isError && r && typeof r === 'object') {
      for (const [method, spec] of Object.entries(LIST_METHODS)) {
        if (Array.isArray(r[spec.array]) && visibility[spec.kind] !== null) {
          edit = { kind: 'filter', method, visibility };
          break;
        }
      }
    }
    // Every response is filed, so two responses with colliding ids in one payload fail closed.
    edits.add(m.id, edit);
  }
  // Nothing list-shaped and nothing unreadable (which a client might read as a list): as it came.
  if (edits.edits === 0 && !msgs.some((m) => m.kind === 'invalid')) return text;
  return editPayload(text, { edits, correlationId })?.text ?? null;
}

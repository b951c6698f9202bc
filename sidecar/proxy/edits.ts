// Edits to upstream responses, keyed by the JSON-RPC id of the request they answer:
// - filter: gate 1 removes hidden entries from a list result (keeping nextCursor and the rest);
// - probe: a call to a hidden target was sent upstream under a name that cannot exist, so the
//   answer is exactly the upstream's answer for an unknown target; the probe name is put back.
// - filter may also mark tools that can need approval as task-capable (gate 4, see
//   approvals/tasks.ts markTaskSupport), and initialize results get ThoughtGate's task
//   capabilities merged in, when the sidecar has an approval backend.
// Everything else in a response passes through byte for byte. Pure.
import { randomBytes } from 'node:crypto';
import { errorResponse, parseJsonRpc, resultResponse, type Message, type RawId } from '../jsonrpc.js';
import { ERRORS } from '../../api/errors.js';
import { filterListResult, LIST_METHODS, type Visibility } from '../gates/visibility.js';
import { markTaskSupport, mergeInitializeResult, type TaskSupport } from '../approvals/tasks.js';

export interface TaskMarking {
  mayNeedApproval: (tool: string) => boolean;
  /** Learns the upstream's own taskSupport of each listed tool. */
  seen: (tool: string, upstream: TaskSupport) => void;
}

export type ResponseEdit =
  | { kind: 'filter'; method: string; visibility: Visibility; tasks?: TaskMarking }
  | { kind: 'probe'; probe: string; original: string }
  /** initialize: merge our tasks capability; `seen` gets the upstream's own initialize result. */
  | { kind: 'initialize'; seen: (result: unknown) => void };

export function idKey(id: RawId): string {
  return typeof id.value === 'string' ? `s:${id.value}` : `n:${id.value}`;
}

export function newProbeName(): string {
  return `thoughtgate-probe-${randomBytes(12).toString('hex')}`;
}

/** The request as sent upstream for a hidden target: same id and method, the probe in place of the name. */
export function probeRequest(id: RawId, method: string, kind: 'tool' | 'resource' | 'prompt', probe: string): string {
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
  return `{"jsonrpc":"2.0","id":${id.raw},"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`;
}

export interface EditContext {
  edits: ReadonlyMap<string, ResponseEdit>;
  correlationId: string;
}

function editOne(m: Message, ctx: EditContext): string {
  if (m.kind !== 'response' || m.id === null) return m.raw;
  const edit = ctx.edits.get(idKey(m.id));
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
  if (filtered !== null && edit.tasks) filtered = markTaskSupport(filtered, edit.tasks.mayNeedApproval, edit.tasks.seen);
  if (filtered === null) {
    const e = ERRORS.UPSTREAM_RESPONSE_INVALID;
    return errorResponse(m.id, e.code, e.message, {
      gate: 'visibility',
      reason: `upstream ${edit.method} result is not a valid list; not passed through unfiltered`,
      correlationId: ctx.correlationId,
    });
  }
  return resultResponse(m.id, filtered);
}

/**
 * Applies the edits to one JSON payload (a single message or a batch). Returns null when the
 * payload is not JSON-RPC at all: the caller fails closed if it had edits to make.
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
  const edits = new Map<string, ResponseEdit>();
  for (const m of msgs) {
    if (m.kind !== 'response' || m.id === null || m.isError) continue;
    const r = m.result as Record<string, unknown> | undefined;
    if (!r || typeof r !== 'object') continue;
    for (const [method, spec] of Object.entries(LIST_METHODS)) {
      if (Array.isArray(r[spec.array]) && visibility[spec.kind] !== null) {
        edits.set(idKey(m.id), { kind: 'filter', method, visibility });
        break;
      }
    }
  }
  if (edits.size === 0) return text;
  return editPayload(text, { edits, correlationId })?.text ?? null;
}

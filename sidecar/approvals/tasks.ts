// The pure core of the approval task engine: what a task looks like on the wire (MCP 2025-11-25
// tasks), how long it lives, which JSON-RPC error each decision means, the tasks/list cursors,
// and the edits to initialize and tools/list results that advertise tasks. No I/O, no clock.
import { randomBytes } from 'node:crypto';
import type { ErrorName } from '../../api/errors.js';
import type { Decision, DecisionOutcome } from './backend.js';
import { TOO_MANY_PENDING } from '../../api/approval-request.js';

export type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

/** Where a task is in its life; `status` is what MCP sees of it. */
export type Phase = 'submitting' | 'pending' | 'executing' | 'done';

/** Who created a task: only the same client on the same source can see it (docs/approvals.md). */
export interface Owner {
  source: string;
  client: string;
}

/** What a finished call answers: its result, or its JSON-RPC error object. */
export type CallOutcome =
  | { kind: 'result'; result: Record<string, unknown> /** Its size on the wire, when the reader knows it. */; bytes?: number }
  | {
      kind: 'error';
      error: JsonRpcErrorObject /** ThoughtGate did not keep the result: which bound (never sent). */;
      refusedBy?: 'result_size' | 'result_bytes_total';
    };

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** The MCP Task object (tasks/get, tasks/list, tasks/cancel, CreateTaskResult.task). */
export interface TaskView {
  taskId: string;
  status: TaskStatus;
  statusMessage?: string;
  createdAt: string;
  lastUpdatedAt: string;
  ttl: number | null;
  pollInterval?: number;
}

export const RELATED_TASK_META = 'io.modelcontextprotocol/related-task';
export const IMMEDIATE_RESPONSE_META = 'io.modelcontextprotocol/model-immediate-response';

// ---------- ids ----------

/** Task ids: "tg-" and 128 random bits in hex. Held calls use "tgh-": they are never MCP tasks. */
const TASK_ID = /^tg-[0-9a-f]{32}$/;

export function newTaskId(mode: 'task' | 'held'): string {
  return `${mode === 'task' ? 'tg-' : 'tgh-'}${randomBytes(16).toString('hex')}`;
}

/** Whether a task id is one ThoughtGate made (anything else belongs to the upstream and passes through). */
export function isOurTaskId(id: unknown): id is string {
  return typeof id === 'string' && TASK_ID.test(id);
}

// ---------- time ----------

/** Retention after the approval deadline, so a decision taken at the last second can still be fetched. */
export const RESULT_GRACE_MS = 60_000;

export interface TtlSettings {
  taskTtlMs: number;
  maxTaskTtlMs: number;
}

/**
 * The ttl a task gets: what the client asked for (or the default), at most the configured
 * maximum, and never shorter than the approval timeout plus a minute: a task that expired while
 * its approval was still pending would lose the human's decision.
 */
export function taskTtl(requested: number | undefined, s: TtlSettings, approvalTimeoutMs: number): number {
  const floor = approvalTimeoutMs + RESULT_GRACE_MS;
  const asked = requested !== undefined && Number.isFinite(requested) && requested > 0 ? requested : s.taskTtlMs;
  return Math.max(floor, Math.min(asked, Math.max(s.maxTaskTtlMs, floor)));
}

/** When a terminal task is dropped: at its ttl, but never sooner than a minute after it ended. */
export function cleanupAt(createdAt: number, ttlMs: number, terminalAt: number): number {
  return Math.max(createdAt + ttlMs, terminalAt + RESULT_GRACE_MS);
}

// ---------- decisions ----------

/** The JSON-RPC error a decision other than approval ends the call with, and the task status. */
export function decisionError(outcome: Exclude<DecisionOutcome, 'approved'>, message = ''): { name: ErrorName; status: TaskStatus } {
  // The operator fails requests beyond its cluster-wide cap with this message: that is a limit,
  // which the agent can retry later, not an unavailable approval.
  if (outcome === 'failed' && message.startsWith(TOO_MANY_PENDING)) return { name: 'APPROVAL_LIMIT', status: 'failed' };
  switch (outcome) {
    case 'rejected':
      return { name: 'APPROVAL_REJECTED', status: 'failed' };
    case 'expired':
      return { name: 'APPROVAL_TIMEOUT', status: 'failed' };
    case 'cancelled':
      return { name: 'APPROVAL_CANCELLED', status: 'cancelled' };
    case 'failed':
      return { name: 'APPROVAL_UNAVAILABLE', status: 'failed' };
  }
}

function deciders(d: Decision): string {
  const by = (d.by ?? []).map((b) => b.name ?? b.id);
  return by.length > 0 ? ` by ${by.join(', ')}` : '';
}

/** The task's statusMessage after a decision (never secrets: who decided, and the backend's sentence). */
export function decisionMessage(d: Decision): string {
  switch (d.outcome) {
    case 'approved':
      return `Approved${deciders(d)}; executing`;
    case 'rejected':
      return `Rejected${deciders(d)}${d.message ? `: ${d.message}` : ''}`;
    case 'expired':
      return `No decision in time; not executed${d.message ? ` (${d.message})` : ''}`;
    case 'cancelled':
      return `Cancelled${d.message ? `: ${d.message}` : ''}`;
    case 'failed':
      return `Approval failed; not executed${d.message ? `: ${d.message}` : ''}`;
  }
}

/** Status after the approved call ran: `failed` for a JSON-RPC error or an `isError` result (spec). */
export function executionStatus(o: CallOutcome): { status: 'completed' | 'failed'; ok: boolean; summary: string } {
  if (o.kind === 'error') {
    return { status: 'failed', ok: false, summary: `Tool execution failed: ${truncate(o.error.message, 200)} (JSON-RPC error ${o.error.code})` };
  }
  if (o.result['isError'] === true) {
    return { status: 'failed', ok: false, summary: `Tool execution failed: the tool returned an error result${firstText(o.result)}` };
  }
  return { status: 'completed', ok: true, summary: 'Executed; the tool returned a result' };
}

function firstText(result: Record<string, unknown>): string {
  const content = result['content'];
  if (!Array.isArray(content)) return '';
  const t = content.find((c) => c && typeof c === 'object' && (c as { type?: unknown }).type === 'text') as { text?: unknown } | undefined;
  return typeof t?.text === 'string' ? ` (${truncate(t.text, 200)})` : '';
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

// ---------- wire shapes ----------

export interface TaskState {
  id: string;
  status: TaskStatus;
  statusMessage: string;
  createdAt: number;
  lastUpdatedAt: number;
  ttlMs: number;
  pollIntervalMs: number;
}

export function taskView(t: TaskState): TaskView {
  return {
    taskId: t.id,
    status: t.status,
    statusMessage: t.statusMessage,
    createdAt: new Date(t.createdAt).toISOString(),
    lastUpdatedAt: new Date(t.lastUpdatedAt).toISOString(),
    ttl: t.ttlMs,
    pollInterval: t.pollIntervalMs,
  };
}

/** tasks/result's result: the call's result with the related-task `_meta` added (spec: MUST). */
export function withRelatedTask(result: Record<string, unknown>, taskId: string): Record<string, unknown> {
  const meta =
    result['_meta'] !== null && typeof result['_meta'] === 'object' && !Array.isArray(result['_meta']) ? (result['_meta'] as Record<string, unknown>) : {};
  return { ...result, _meta: { ...meta, [RELATED_TASK_META]: { taskId } } };
}

// ---------- tasks/list cursors ----------
//
// One list serves two paginations: ThoughtGate's own tasks of the client first, then the
// upstream's (when it declared tasks.list). A cursor says which one it continues:
//   "tg1.<base64url(JSON [createdAt, taskId])>"  ours, after the task with that position;
//   "up1.<base64url(upstream cursor)>"           the upstream's, with its own cursor inside.
// Clients treat cursors as opaque (spec); anything else is an invalid cursor (-32602).

export type ListCursor = { kind: 'ours'; after: [number, string] } | { kind: 'upstream'; cursor: string };

export function encodeCursor(c: ListCursor): string {
  if (c.kind === 'ours') return `tg1.${Buffer.from(JSON.stringify(c.after)).toString('base64url')}`;
  return `up1.${Buffer.from(c.cursor, 'utf8').toString('base64url')}`;
}

export function decodeCursor(s: unknown): ListCursor | null {
  if (typeof s !== 'string' || s.length > 4096) return null;
  const body = s.slice(4);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) return null;
  if (s.startsWith('up1.')) return { kind: 'upstream', cursor: Buffer.from(body, 'base64url').toString('utf8') };
  if (!s.startsWith('tg1.')) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && Number.isFinite(v[0]) && typeof v[1] === 'string')
      return { kind: 'ours', after: [v[0], v[1]] };
  } catch {
    // not ours
  }
  return null;
}

/** Orders tasks by creation, then id: stable across pages even as tasks come and go. */
export function comparePosition(a: [number, string], b: [number, string]): number {
  return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
}

// ---------- capabilities and tools ----------

/** What ThoughtGate adds to `capabilities.tasks` in the initialize result. */
export const OUR_TASK_CAPABILITIES = { list: {}, cancel: {}, requests: { tools: { call: {} } } } as const;

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** Deep merge in which the upstream's values win where both have one (we only add, never hide). */
function mergeKeep(ours: Record<string, unknown>, theirs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...ours };
  for (const [k, v] of Object.entries(theirs)) {
    const a = obj(out[k]);
    const b = obj(v);
    out[k] = a && b ? mergeKeep(a, b) : v;
  }
  return out;
}

export interface UpstreamTaskSupport {
  list: boolean;
  cancel: boolean;
  toolsCall: boolean;
}

/** Reads what the upstream declared in `capabilities.tasks`. */
export function upstreamTaskSupport(initializeResult: unknown): UpstreamTaskSupport {
  const tasks = obj(obj(obj(initializeResult)?.['capabilities'])?.['tasks']);
  return {
    list: obj(tasks?.['list']) !== null,
    cancel: obj(tasks?.['cancel']) !== null,
    toolsCall: obj(obj(obj(tasks?.['requests'])?.['tools'])?.['call']) !== null,
  };
}

/** The initialize result with our task capabilities merged in; null when it has no capabilities object. */
export function mergeInitializeResult(result: unknown): Record<string, unknown> | null {
  const r = obj(result);
  const caps = obj(r?.['capabilities']);
  if (!r || !caps) return null;
  const theirs = obj(caps['tasks']) ?? {};
  return { ...r, capabilities: { ...caps, tasks: mergeKeep(OUR_TASK_CAPABILITIES as unknown as Record<string, unknown>, theirs) } };
}

export type TaskSupport = 'forbidden' | 'optional' | 'required';

/**
 * A tools/list result in which every tool that may need approval is marked
 * `execution.taskSupport: "optional"` unless the upstream said "optional" or "required" itself.
 * `seen` learns what the upstream said of each tool (absent counts as "forbidden").
 */
export function markTaskSupport(
  result: Record<string, unknown>,
  mayNeedApproval: (tool: string) => boolean,
  seen: (tool: string, upstream: TaskSupport) => void,
): Record<string, unknown> {
  const tools = result['tools'];
  if (!Array.isArray(tools)) return result;
  let changed = false;
  const out = tools.map((t) => {
    const tool = obj(t);
    const name = tool?.['name'];
    if (!tool || typeof name !== 'string') return t;
    const execution = obj(tool['execution']);
    const declared = execution?.['taskSupport'];
    const upstream: TaskSupport = declared === 'optional' || declared === 'required' ? declared : 'forbidden';
    seen(name, upstream);
    if (upstream !== 'forbidden' || !mayNeedApproval(name)) return t;
    changed = true;
    return { ...tool, execution: { ...(execution ?? {}), taskSupport: 'optional' } };
  });
  return changed ? { ...result, tools: out } : result;
}

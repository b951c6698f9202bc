// The plan of one POST: for every message of the (already parsed and checked) body, what happens
// to it: forwarded (maybe rewritten, its answer edited), answered here, a held call cancelled, or
// the whole request taken over by gate 4. Pure: no socket, no metric, no effect on gate 4 (its
// view is only read; the edits' callbacks run later, when the answer arrives). post.ts executes it.
import type { IncomingHttpHeaders } from 'node:http';
import { gateError, type ErrorData, type ErrorName } from '../../api/errors.js';
import { probeUriFor } from '../../api/resource-uri.js';
import { ambiguousIds, type parseJsonRpc, type Message, type RawId } from '../../lib/jsonrpc.js';
import { errorResponse } from '../../lib/jsonrpc-reply.js';
import { errorText } from '../../lib/jsonrpc-reply.js';
import { summariseArguments } from '../../lib/log.js';
import { toolMayNeedApproval } from '../../policy/gates/approval-tools.js';
import { decide, type Decision } from '../../policy/gates/decide.js';
import { enforce, EXPOSE_RULE, visibilityEnforced, type AuditRecord } from '../../policy/gates/enforcement.js';
import { describeMessage, type Operation, type TargetKind } from '../../policy/gates/operation.js';
import { needsListFilter } from '../../policy/gates/visibility.js';
import { isOurTaskId } from '../approvals/tasks.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import type { MessageOutcome } from './context.js';
import { EditTable, newProbeName, probeRequest, type ResponseEdit } from './edits.js';
import { decodeMcpHeader, headerValue } from './headers.js';
import type { ApprovalView, Takeover } from './gate4.js';
import { targetKey, type RateRefusal } from './rate-limit.js';

/**
 * The requests_total `rule` label: the deciding rule (its name, rules[i] or defaultAction), `expose`
 * for gate 1, `none` when no rule decided (protocol messages). From the config, never the agent.
 */
function ruleLabel(d: Decision): string {
  if (d.action === 'hidden') return EXPOSE_RULE;
  return d.rule ?? 'none';
}

export interface PlanInput {
  messages: readonly Message[];
  batch: boolean;
  snap: Pick<Snapshot, 'gates'>;
  source: CompiledSource;
  /** The request's headers: gate 4 finds a client's held calls by them. */
  headers: IncomingHttpHeaders;
  /** null: no approval backend (approval decisions answer -32006). */
  approvals: ApprovalView | null;
  now: Date;
  correlationId: string;
  /** Whether outcomes carry an argument summary (only when request lines are logged). */
  logging: boolean;
  /**
   * Rate limits (rate-limit.ts): asked for each tools/call, resources/read and prompts/get that
   * gates 1–3 forward; it takes the call's tokens, the one state planning changes. Unset: no limits.
   */
  /** nameBlindOnly: for a hidden target, only the limits whose answer does not depend on the name. */
  rateLimit?: (op: Operation, nameBlindOnly?: boolean) => RateRefusal | null;
  /** Probe names for hidden targets (random in production; fixed in tests). */
  probeName?: () => string;
  /** Audit mode: told, when a list's answer arrives, how many entries enforce would have hidden. */
  onListAudit?: (method: string, hidden: number) => void;
}

export interface PostPlan {
  /** Bodies of the messages that go upstream, in order. */
  forward: string[];
  /** Ids of the forwarded requests: each gets an error if the upstream cannot be reached. */
  forwardedIds: RawId[];
  /** JSON-RPC answers given here, joined with the upstream's. */
  local: string[];
  edits: EditTable;
  /** One per message, for the request's log lines. */
  outcomes: MessageOutcome[];
  /** One per decided message: the executor counts them in requests_total. */
  counts: { method: string; decision: Decision['action']; gate: string; rule: string }[];
  /** The rate limits that refused a message, one entry per refused message. */
  rateLimited: string[];
  /** What audit forwarded that enforce would have denied, hidden or sent for approval, one per message. */
  audits: AuditRecord[];
  /** Held calls whose client cancelled them (task ids). */
  cancelHeld: string[];
  /** A single request gate 4 answers itself: nothing else of the plan applies. */
  takeover: Takeover | null;
  /** The upstream session an initialize answer opens, once its headers are in (set by the executor). */
  init: { session: string | undefined };
}

/** A JSON-RPC error reply of ThoughtGate's, with the gate and correlation id in its data. */
export function errorFor(ctx: { correlationId: string }, id: RawId | null, name: ErrorName, reason: string, rule?: string): string {
  return errorText(id, gateError(name, { reason, correlationId: ctx.correlationId, ...(rule !== undefined ? { rule } : {}) }));
}

/** Why a parsed body is refused whole before any message of it is decided. */
export type Refusal =
  | { kind: 'batch-too-large' }
  /** One JSON-RPC error without an id, at the error's own HTTP status. */
  | { kind: 'refused'; name: ErrorName; reason: string }
  /** HTTP 400 with one JSON-RPC error for the single message the refusal is about. */
  | { kind: 'bad-message'; id: RawId | null; name: 'HEADER_MISMATCH' | 'INVALID_REQUEST'; reason: string };

/** The checks on a body as a whole, in order; null when its messages may be planned. */
export function checkPost(parsed: ParsedBody, headers: IncomingHttpHeaders, maxBatchMessages: number): Refusal | null {
  if (parsed.batch && parsed.messages.length > maxBatchMessages) return { kind: 'batch-too-large' }; // the byte scan before parsing counts exactly for valid JSON: not reached
  const messages = parsed.batch ? parsed.messages : [parsed.message];
  // Answers are matched to requests by id: a batch whose ids a peer could confuse is refused whole.
  const ambiguous = parsed.batch ? ambiguousIds(parsed.messages) : null;
  if (ambiguous !== null) return { kind: 'refused', name: 'INVALID_REQUEST', reason: ambiguous };
  // ThoughtGate's own upstream requests in the client's session (approved tasks, tasks/list pages)
  // use ids "thoughtgate-…" the client can know; a client request under one could take its answer.
  if (messages.some((m) => m.kind === 'request' && typeof m.id.value === 'string' && m.id.value.trim().toLowerCase().startsWith('thoughtgate-'))) {
    return { kind: 'refused', name: 'INVALID_REQUEST', reason: 'request ids starting with "thoughtgate-" are reserved for requests ThoughtGate sends itself' };
  }
  const mismatch = checkRoutingHeaders(headers, parsed.batch ? null : parsed.message);
  if (mismatch)
    return {
      kind: 'bad-message',
      id: !parsed.batch && parsed.message.kind === 'request' ? parsed.message.id : null,
      name: 'HEADER_MISMATCH',
      reason: mismatch,
    };
  // A single invalid message is an HTTP-level error, like the MCP SDK answers it.
  if (!parsed.batch && parsed.message.kind === 'invalid')
    return { kind: 'bad-message', id: parsed.message.id, name: 'INVALID_REQUEST', reason: parsed.message.reason };
  return null;
}

type ParsedBody = Extract<ReturnType<typeof parseJsonRpc>, { ok: true }>;

/** Mcp-Method / Mcp-Name (2026-07-28) must agree with the body the gates decide on. */
function checkRoutingHeaders(headers: IncomingHttpHeaders, single: Message | null): string | null {
  const method = headerValue(headers['mcp-method']);
  const name = headerValue(headers['mcp-name']);
  if (method === undefined && name === undefined) return null;
  if (single === null) return 'Mcp-Method/Mcp-Name headers cannot describe a batch';
  if (single.kind !== 'request' && single.kind !== 'notification') return 'Mcp-Method/Mcp-Name headers on a message that is not a request or notification';
  if (method !== undefined && method.trim() !== single.method) return `Mcp-Method header "${method}" does not match the body's method "${single.method}"`;
  if (name !== undefined) {
    const p = (single.params ?? {}) as Record<string, unknown>;
    const bodyName = p['name'] ?? p['uri'] ?? p['taskId'];
    if (decodeMcpHeader(name) !== bodyName) return `Mcp-Name header does not match the body's name`;
  }
  return null;
}

const TASK_METHODS = new Set(['tasks/get', 'tasks/result', 'tasks/cancel']);

/** What planning one message needs besides the message: the request's inputs and the plan so far. */
interface PlanCtx {
  i: PlanInput;
  plan: PostPlan;
  single: boolean;
  view: ApprovalView | null;
  source: CompiledSource;
  mayNeedApproval: (tool: string) => boolean;
  err: (id: RawId | null, name: ErrorName, reason: string, rule?: string) => void;
}

export function planPost(i: PlanInput): PostPlan {
  const { source, approvals: view, correlationId: cid } = i;
  const gates = { ...i.snap.gates, visibility: source.visibility };
  const plan: PostPlan = {
    forward: [],
    forwardedIds: [],
    local: [],
    edits: new EditTable(),
    outcomes: [],
    counts: [],
    rateLimited: [],
    audits: [],
    cancelHeld: [],
    takeover: null,
    init: { session: undefined },
  };
  const c: PlanCtx = {
    i,
    plan,
    single: !i.batch,
    view,
    source,
    mayNeedApproval: (tool) => toolMayNeedApproval(gates, source.name, tool),
    err: (id, name, reason, rule) => plan.local.push(errorFor({ correlationId: cid }, id, name, reason, rule)),
  };

  for (const m of i.messages) {
    if (m.kind === 'response') {
      plan.forward.push(m.raw);
      plan.outcomes.push({ method: '', kind: 'response', decision: 'response' });
      continue;
    }
    if (m.kind === 'invalid') {
      c.err(m.id, 'INVALID_REQUEST', m.reason);
      plan.outcomes.push({ method: '', kind: 'invalid', decision: 'invalid', reason: m.reason });
      continue;
    }
    const d = describeMessage(source.name, m);
    if (!d.ok) {
      if (m.kind === 'request')
        plan.local.push(errorResponse(m.id, -32602, 'Invalid params', { gate: 'transport', reason: d.reason, correlationId: cid } satisfies ErrorData));
      plan.outcomes.push({ method: m.method, kind: m.kind, decision: 'invalid', reason: d.reason });
      continue;
    }
    // The one enforcement step: in audit, a deny, hide or approve becomes a forward with a record.
    const { decision, audit } = enforce(gates, d.op, decide(gates, d.op, i.now));
    // After gates 1–3, before anything else: a denied call never reaches a bucket, and a hidden one
    // only the name-blind ones, so a rate-limit error never tells that a hidden tool exists.
    const limited = rateRefusal(i, decision.action, m.kind, d.op);
    if (limited) {
      plan.outcomes.push({ ...outcomeOf(m, d.op, decision, i.logging), decision: 'deny', gate: 'ratelimit', rule: limited.rule, reason: limited.reason });
      plan.counts.push({ method: m.method, decision: 'deny', gate: 'ratelimit', rule: limited.rule });
      plan.rateLimited.push(limited.rule);
      // A notification cannot be told to wait: dropped.
      if (m.kind === 'request')
        plan.local.push(
          errorText(m.id, gateError('RATE_LIMITED', { reason: limited.reason, correlationId: cid, rule: limited.rule, retryAfterMs: limited.retryAfterMs })),
        );
      continue;
    }
    plan.outcomes.push(audit ? { ...outcomeOf(m, d.op, decision, i.logging), audit: auditField(audit) } : outcomeOf(m, d.op, decision, i.logging));
    if (audit) plan.audits.push(audit);
    plan.counts.push({ method: m.method, decision: decision.action, gate: decision.gate, rule: ruleLabel(decision) });
    switch (decision.action) {
      case 'forward':
        planForwarded(c, m, d.op, d.raw);
        break;
      case 'hidden':
        if (m.kind === 'request' && d.op.target) {
          const probeName = i.probeName ?? newProbeName;
          const probe = d.op.target.kind === 'resource' ? probeUriFor(d.op.target.name, probeName()) : probeName();
          plan.forward.push(probeRequest(m.id, m.method, d.op.target.kind, probe, m.params));
          plan.forwardedIds.push(m.id);
          plan.edits.add(m.id, { kind: 'probe', probe, original: d.op.target.name });
        }
        break;
      case 'deny':
        if (m.kind === 'request') c.err(m.id, decision.error, decision.reason, decision.rule);
        break;
      case 'approve':
        if (m.kind === 'request') planApproval(c, m, d.op, decision); // a notification cannot wait for anyone: dropped
        break;
    }
  }
  return plan;
}

/** A message gates 1–3 let through: forwarded, unless it is gate 4's (a held call's cancel, our tasks). */
function planForwarded(c: PlanCtx, m: Message & { kind: 'request' | 'notification' }, op: Operation, canonicalRaw: string | undefined): void {
  const { plan, view, source } = c;
  if (view && m.kind === 'notification' && m.method === 'notifications/cancelled') {
    // A held call still waiting for a human is ours to cancel; the upstream never saw it.
    const held = view.heldCall(source.name, c.i.headers, m.params);
    if (held !== null) {
      plan.cancelHeld.push(held);
      return;
    }
  }
  if (view && m.kind === 'request') {
    const taskId = (m.params as Record<string, unknown> | undefined)?.['taskId'];
    const ours = TASK_METHODS.has(m.method) && isOurTaskId(taskId);
    const ownTask = !ours && view.ownsTaskCall(source, m, c.mayNeedApproval);
    if (ours || ownTask) {
      if (c.single) plan.takeover = ours ? { kind: 'task-method', message: m } : { kind: 'own-task', message: m, op };
      else
        c.err(
          m.id,
          'INVALID_REQUEST',
          ours
            ? "ThoughtGate's tasks are read with single requests, not inside a JSON-RPC batch"
            : 'a task-augmented tools/call must be sent as a single request, not inside a JSON-RPC batch',
        );
      return;
    }
    if (m.method === 'tasks/list' && c.single) {
      plan.takeover = { kind: 'tasks-list', message: m };
      return;
    }
  }
  plan.forward.push(canonicalRaw ?? m.raw); // a resource URI goes upstream in the canonical form decided on
  if (m.kind === 'request') {
    plan.forwardedIds.push(m.id);
    plan.edits.add(m.id, forwardEdit(m.method, source, view, c.mayNeedApproval, plan.init, visibilityEnforced(c.i.snap.gates) ? undefined : listAudit(c)));
  }
}

/** A request gate 2 or 3 sends for approval: gate 4 takes it over, or it is refused saying why. */
function planApproval(c: PlanCtx, m: Message & { kind: 'request' }, op: Operation, decision: Decision & { action: 'approve' }): void {
  if (!c.view) {
    c.err(
      m.id,
      'APPROVAL_UNAVAILABLE',
      `${decision.reason}; this sidecar has no approval channels configured (approvalChannels in thoughtgate.yaml, or ApprovalChannels in a cluster), so the call is not forwarded`,
      decision.rule,
    );
  } else if (!c.single) {
    c.err(
      m.id,
      'APPROVAL_UNAVAILABLE',
      `${decision.reason}; approvals are not available inside JSON-RPC batches, so the call is not forwarded: send it as a request of its own`,
      decision.rule,
    );
  } else {
    c.plan.takeover = { kind: 'approval', message: m, op, decision };
  }
}

/** The edit a forwarded request's answer gets: list filtering, task marking, initialize capabilities. */
function forwardEdit(
  method: string,
  source: CompiledSource,
  view: ApprovalView | null,
  mayNeedApproval: (tool: string) => boolean,
  init: PostPlan['init'],
  audit: ((method: string, hidden: number) => void) | undefined,
): ResponseEdit | null {
  const record = audit && needsListFilter(source.visibility, method) ? { audit: (hidden: number) => audit(method, hidden) } : {};
  if (view && method === 'tools/list' && source.mayNeedApproval) {
    return {
      kind: 'filter',
      method,
      visibility: source.visibility,
      tasks: { mayNeedApproval, seen: (tool, support) => view.toolSupportSeen(source.name, tool, support) },
      ...record,
    };
  }
  if (needsListFilter(source.visibility, method)) return { kind: 'filter', method, visibility: source.visibility, ...record };
  if (view && method === 'initialize') return { kind: 'initialize', seen: (result) => view.initializeSeen(source.name, init.session, result) };
  return null;
}

/** Gate 1 in audit: where a list's would-be-hidden entries are counted (the list itself is passed unfiltered). */
function listAudit(c: PlanCtx): (method: string, hidden: number) => void {
  return c.i.onListAudit ?? (() => undefined);
}

/** The decision log line's `audit` field. */
function auditField(a: AuditRecord): NonNullable<MessageOutcome['audit']> {
  return { would: a.would, gate: a.gate, rule: a.rule, ...(a.policies ? { policies: a.policies } : {}) };
}

/** The rate limit that refuses a message gates 1–3 let go upstream, if any. */
function rateRefusal(i: PlanInput, action: Decision['action'], kind: 'request' | 'notification', op: Operation): RateRefusal | null {
  if (!i.rateLimit) return null;
  if (action === 'forward') return i.rateLimit(op);
  // A hidden target's probe goes upstream too: it takes from the limits that match any name (a
  // source-wide budget), whose refusal is the same for every name, so it tells nothing either.
  if (action === 'hidden' && kind === 'request' && op.target !== undefined) return i.rateLimit(op, true);
  return null;
}

/**
 * The target as logs and spans show it: a resource URI without its query, which an agent controls
 * and which can carry credentials (presigned URLs): the rate limiter's per-target key, marked as cut.
 * Names as they are. (A fragment never gets here: resource-uri.ts refuses it.)
 */
export function loggedTarget(kind: TargetKind, name: string): string {
  const key = targetKey(kind, name);
  return key === name ? name : `${key}?…`;
}

function outcomeOf(m: Message & { kind: 'request' | 'notification' }, op: Operation, d: Decision, logging: boolean): MessageOutcome {
  return {
    method: m.method,
    kind: m.kind,
    target: op.target ? loggedTarget(op.target.kind, op.target.name) : undefined,
    decision: d.action,
    gate: d.gate,
    rule: 'rule' in d ? d.rule : undefined,
    reason: d.reason,
    arguments: logging ? summariseArguments(op.arguments) : undefined,
    policies: 'policies' in d ? d.policies : undefined,
  };
}

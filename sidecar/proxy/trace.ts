// What a request's trace says of its gates: after planning, one child span per decided message
// (gate, rule, decision, Cedar policy ids), and the request span named for the MCP method. Only
// names ThoughtGate bounds go in (a known method or "other", configured rule and policy ids, the
// target cut to LOG_NAME_CHARS); never arguments, reasons or credentials.
import type { Message } from '../../lib/jsonrpc.js';
import type { Attributes } from '../../lib/tracing-api.js';
import { methodLabel } from '../metrics.js';
import { LOG_MESSAGES_PER_REQUEST, LOG_NAME_CHARS, type RequestContext, type MessageOutcome } from './context.js';

/** Epoch milliseconds with sub-millisecond precision, for spans recorded after the fact. */
export function traceClock(): number {
  return performance.timeOrigin + performance.now();
}

function idKind(m: Message): string {
  if (m.kind !== 'request') return 'none';
  return typeof m.id.value === 'number' ? 'number' : 'string';
}

/** Records the gate decisions of a planned POST, made between `startMs` and now. */
export function traceDecisions(ctx: RequestContext, messages: readonly Message[], outcomes: readonly MessageOutcome[], batch: boolean, startMs: number): void {
  const parent = ctx.span.ref;
  if (parent === null) return;
  const first = messages[0];
  const single = !batch && first !== undefined && (first.kind === 'request' || first.kind === 'notification');
  const method = single ? methodLabel(first.method) : undefined;
  ctx.span.rename(batch ? 'mcp batch' : `mcp ${method ?? first?.kind ?? 'message'}`);
  ctx.span.set({
    'mcp.method.name': method,
    'jsonrpc.request.id.kind': !batch && first ? idKind(first) : undefined,
    'thoughtgate.messages': messages.length,
  });
  // Bounded like the log lines: a batch of many messages gets spans for its first ones.
  for (const o of outcomes.slice(0, LOG_MESSAGES_PER_REQUEST)) {
    traceGate(ctx, o, startMs, {
      'mcp.method.name': methodLabel(o.method),
      'thoughtgate.target': o.target === undefined ? undefined : o.target.slice(0, LOG_NAME_CHARS),
    });
  }
}

/** One decided message's gate as a child span of the request's (responses and invalid messages have none). */
export function traceGate(ctx: RequestContext, o: MessageOutcome, startMs: number, more: Attributes): void {
  const parent = ctx.span.ref;
  if (parent === null || o.gate === undefined) return;
  const s = ctx.tracer.start(`gate ${o.gate}`, {
    parent,
    startTime: startMs,
    attributes: {
      'thoughtgate.gate': o.gate,
      'thoughtgate.decision': o.decision,
      'thoughtgate.rule': o.rule,
      'thoughtgate.cedar.policy_ids': o.policies,
      ...more,
    },
  });
  s.end();
}

// What an A2A request's trace says (DESIGN §2.12): the request span named `a2a <canonical method>`
// with rpc.system=a2a, the version, binding and source, and one child span for the deciding gate.
// Only bounded names go in (a canonical method or "other", configured rule and policy ids); never
// the message, its metadata or a reason quoting the caller.
import { methodLabel } from '../metrics.js';
import type { MessageOutcome, RequestContext } from '../proxy/context.js';
import { traceGate } from '../proxy/trace.js';

export function traceA2aRequest(ctx: RequestContext, method: string, version: string, binding: string): void {
  if (ctx.span.ref === null) return;
  const name = methodLabel(method);
  ctx.span.rename(`a2a ${name}`);
  ctx.span.set({ 'rpc.system': 'a2a', 'rpc.method': name, 'a2a.version': version, 'a2a.binding': binding, 'thoughtgate.source': ctx.sourceLabel });
}

/** The decision of one call, as a child span of the request's, made between `startMs` and now. */
export function traceA2aDecision(ctx: RequestContext, o: MessageOutcome, startMs: number): void {
  traceGate(ctx, o, startMs, { 'rpc.method': methodLabel(o.method) });
}

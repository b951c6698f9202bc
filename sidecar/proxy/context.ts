// Per-request bookkeeping: correlation id, the upstream call, timings, and the single log line per
// JSON-RPC message written when the response is done.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';
import type { Logger } from '../../lib/log.js';
import { UNKNOWN_SOURCE_LABEL, type SidecarMetrics } from '../metrics.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import type { ByteBudget } from './budget.js';
import type { ApprovalView, Takeover } from './gate4.js';
import { upstreamRequestHeaders } from './headers.js';
import { InflightIds } from './inflight.js';
import { RateLimiter } from './rate-limit.js';
import { createAuditRecorder, type AuditRecorder } from '../audit/recorder.js';
import { upstreamTarget } from './query.js';
import { classifyUpstreamError, poolRequest, type UpstreamErrorKind, type UpstreamPools, type UpstreamResult } from './upstream.js';
import type { SourceTokens } from '../oauth/client-credentials.js';
import { sendWithToken } from '../oauth/send-with-token.js';
import { usesClientCredentials } from '../oauth/client-credentials.js';
import { parseHeaders } from 'undici/lib/core/util.js';
import { describeError } from '../../lib/describe-error.js';
import { incomingSpan, propagationHeaders } from '../../lib/trace-context.js';
import { NO_SPAN, NO_TRACING, type Span, type Tracer } from '../../lib/tracing.js';

export interface MessageOutcome {
  method: string;
  kind: string;
  target?: string;
  decision: string;
  gate?: string;
  rule?: string;
  reason?: string;
  arguments?: { keys: string[]; bytes: number };
  /** Audit mode forwarded this message: what enforce would have done (policy/gates/enforcement.ts). */
  audit?: { would: string; gate: string; rule: string; policies?: string[] };
  /** Cedar policy ids that decided it (gate 3). */
  policies?: string[];
  /** An A2A call (sidecar/a2a/): its generation, binding and the skill it named ("" none); never its text. */
  a2a?: { version: string; binding: string; skill: string };
}

export interface FinishInfo {
  status: number;
  decision?: string;
  gate?: string;
  reason?: string;
  messages?: MessageOutcome[];
}

/** The request a takeover answers; `ctx.sendUpstream` is its upstream client (the client's own headers). */
export interface TakeoverRequest {
  ctx: RequestContext;
  req: IncomingMessage;
  res: ServerResponse;
  snap: Snapshot;
  source: CompiledSource;
}

/** Gate 4 plugged into the proxy (sidecar/approvals/interceptor.ts); see gate4.ts. */
export interface ApprovalInterceptor extends ApprovalView {
  /** Cancels a held call found by heldCall (its client sent notifications/cancelled). */
  cancelHeld(taskId: string): void;
  takeover(t: Takeover, r: TakeoverRequest): Promise<void>;
}

export interface RequestContext {
  correlationId: string;
  /** The source name from the request, as logged (cut to LOG_NAME_CHARS). */
  source: string;
  /** The `source` metric label: a configured source's name once the request is matched to it. */
  sourceLabel: string;
  metrics: SidecarMetrics;
  /** The sidecar's shared byte budget (limits.maxBufferedBytes). */
  budget: ByteBudget;
  messages: MessageOutcome[];
  /** Whether request lines are logged at all (work for them is skipped when not). */
  logging: boolean;
  /** Gate 4: null when no approval backend is configured (approval decisions then answer -32006). */
  approvals: ApprovalInterceptor | null;
  /** Request ids in flight per MCP session, shared by every request of this sidecar. */
  inflight: InflightIds;
  /** The `rateLimits` buckets, shared by every request of this sidecar (they outlive reloads). */
  rateLimiter: RateLimiter;
  /** Audit mode's records: metrics, and Events in a cluster. */
  audit: AuditRecorder;
  /** The sidecar's tracer, and this request's server span (NO_SPAN when tracing is off); finish ends it. */
  tracer: Tracer;
  span: Span;
  /**
   * The path and query sent upstream when it is not the source's MCP endpoint (an A2A agent's card,
   * JSON-RPC or REST path, chosen by sidecar/a2a/classify.ts); null: the source's path.
   */
  upstreamPath: string | null;
  /** The `protocol` metric label: mcp unless the A2A handler took the request. */
  protocol: 'mcp' | 'a2a';
  /** `describe`: the body is not the agent's; the headers describing it (headers.ts describingHeaders). */
  sendUpstream(
    source: CompiledSource,
    req: IncomingMessage,
    method: string,
    body: string | undefined,
    inspect: boolean,
    describe?: Record<string, string>,
    /** Aborts the call too, as the client hanging up does (an approved call the approval engine stops). */
    signal?: AbortSignal,
    /** The sidecar's own call (an A2A skill list refresh): only `signal` aborts it, never this client going away. */
    detached?: boolean,
  ): Promise<UpstreamResult>;
  /**
   * sendUpstream for a POST whose answer goes back as is, by undici's dispatch with `sink` as the
   * handler (no Readable body, no promise per step: relayDispatched in forward.ts). False, and nothing sent,
   * when this request needs sendUpstream's path: a custody token (retried after a 401), tracing,
   * or headers or a target sendUpstream refuses.
   */
  dispatchUpstream(source: CompiledSource, incoming: IncomingMessage, body: string, describe: Record<string, string> | undefined, sink: UpstreamSink): boolean;
  markResponseStart(): void;
  finish(info: FinishInfo): void;
  /** A debug log line tagged with this request's correlation id. */
  debug(msg: string, fields: Record<string, unknown>): void;
}

/** What dispatchUpstream hands an upstream answer to, in order: onHead, onData…, then onEnd or onError. */
export interface UpstreamSink {
  /** The final head (1xx are skipped); `resume` restarts an upstream paused by onData. */
  onHead(status: number, headers: Record<string, string | string[] | undefined>, resume: () => void): void;
  /** A chunk of the body; false pauses the upstream until `resume`. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  /**
   * The upstream call failed. Before the head it is counted and logged as sendUpstream does;
   * `agentGone`: the agent hung up first (which aborted the call).
   */
  onError(err: unknown, beforeHead: boolean, agentGone: boolean): void;
}

/** The error undici's request() gives for a call aborted by its signal (classified 'aborted'). */
function abortedError(): Error {
  return Object.assign(new Error('Request aborted'), { name: 'AbortError', code: 'UND_ERR_ABORTED' });
}

export interface ContextDeps {
  pools: UpstreamPools;
  metrics: SidecarMetrics;
  budget: ByteBudget;
  log: Logger;
  approvals?: ApprovalInterceptor | null;
  /** Created on first use and kept on the deps, which every request of a sidecar shares. */
  inflight?: InflightIds;
  rateLimiter?: RateLimiter;
  /** OAuth tokens the sidecar holds for sources in auth mode clientCredentials. */
  tokens?: SourceTokens;
  /** Created on first use (metrics only) unless the sidecar gives one with Events. */
  audit?: AuditRecorder;
  /** Tracing (lib/tracing.ts); default off. */
  tracer?: Tracer;
}

const NS_PER_S = 1e9;

export const CORRELATION_HEADER = 'x-thoughtgate-correlation-id';

/**
 * The proxy listeners' response (http.createServer's ServerResponse option): it adds its request's
 * correlation id to the head in writeHead, which every answer passes through (res.end, write and
 * flushHeaders call it when nobody did). Setting the id with setHeader beforehand, as a plain
 * response needs, makes writeHead(status, headers) take Node's slow path: every upstream header
 * stored again one setHeader at a time, on every relayed answer (docs/performance.md).
 */
export class CorrelatedResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  correlationId: string | undefined = undefined;

  override writeHead(
    statusCode: number,
    reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    const id = this.correlationId;
    const given = typeof reason === 'string' ? headers : reason;
    if (id === undefined || this.headersSent) return super.writeHead(statusCode, reason as string, headers);
    if (given === undefined || Array.isArray(given)) this.setHeader(CORRELATION_HEADER, id);
    // First, as setHeader before writeHead put it; a header of the same name among `given` wins, as it did then.
    else if (typeof reason === 'string') return super.writeHead(statusCode, reason, { [CORRELATION_HEADER]: id, ...given });
    else return super.writeHead(statusCode, { [CORRELATION_HEADER]: id, ...given });
    return super.writeHead(statusCode, reason as string, headers);
  }
}

/** A name from the request path is logged up to this many characters (it is the agent's text). */
export const LOG_NAME_CHARS = 128;
/**
 * Log lines per request: one per message up to this many, then one summary line with counts by
 * decision. A batch is bounded by limits.maxBatchMessages; this bounds what one request can write.
 */
export const LOG_MESSAGES_PER_REQUEST = 20;

function boundedName(name: string): string {
  return name.length <= LOG_NAME_CHARS ? name : `${name.slice(0, LOG_NAME_CHARS)}…`;
}

/** Texts of a log line that can carry the agent's words (method, tool, reasons quoting them): cut. */
const LOG_TEXT_CHARS = 512;
function cut<T extends string | undefined>(text: T): T {
  return (text === undefined || text.length <= LOG_TEXT_CHARS ? text : `${text.slice(0, LOG_TEXT_CHARS)}…`) as T;
}

/** An A2A call's log fields: version, binding and skill (never the message text); `protocol` is on every line. */
function a2aLogFields(m: MessageOutcome): Record<string, string | undefined> {
  return m.a2a ? { a2aVersion: m.a2a.version, binding: m.a2a.binding, skill: cut(m.a2a.skill || undefined) } : {};
}

/** The request span's last attributes: outcome only, names we bound (never arguments or reasons quoting the agent). */
function endRequestSpan(span: Span, ctx: RequestContext, info: FinishInfo, decision: string): void {
  span.set({
    'http.response.status_code': info.status,
    'thoughtgate.source': ctx.sourceLabel,
    'thoughtgate.decision': decision,
    'thoughtgate.gate': info.gate,
  });
  if (info.status >= 500) span.fail(`HTTP ${info.status}`);
  span.end();
}

export function createRequestContext(deps: ContextDeps, req: IncomingMessage, res: ServerResponse, rawSourceName: string): RequestContext {
  const sourceName = boundedName(rawSourceName);
  const t0 = process.hrtime.bigint();
  let tSent: bigint | null = null;
  let tHeaders: bigint | null = null;
  let tStart: bigint | null = null;
  let finished = false;
  const correlationId = randomUUID();
  // The agent hanging up cancels the upstream call (2026-07-28 treats a closed stream as cancel).
  // undici takes an EventEmitter as its signal; an AbortController per request costs measurably more.
  // Made when sendUpstream first needs it: dispatchUpstream (the common forward) listens to `res` itself.
  let abort: EventEmitter | null = null;
  const abortSignal = (): EventEmitter => {
    if (abort === null) {
      const signal = new EventEmitter();
      res.once('close', () => {
        if (!res.writableFinished) signal.emit('abort');
      });
      abort = signal;
    }
    return abort;
  };
  if (res instanceof CorrelatedResponse) res.correlationId = correlationId;
  else res.setHeader(CORRELATION_HEADER, correlationId);
  const tracer = deps.tracer ?? NO_TRACING;
  // The agent's trace continues when its traceparent is valid; anything else starts a new trace.
  const span = tracer.on
    ? tracer.start('mcp', {
        kind: 'server',
        parent: incomingSpan(req.headers),
        attributes: { 'http.request.method': req.method, 'thoughtgate.correlation_id': correlationId },
      })
    : NO_SPAN;

  deps.inflight ??= new InflightIds((n) => deps.metrics.inflightIds.set(n));
  deps.rateLimiter ??= new RateLimiter({ onBuckets: (n) => deps.metrics.rateLimitBuckets.set(n) });
  deps.audit ??= createAuditRecorder(deps.metrics, null);
  /** An upstream call that failed before its head: counted (unless aborted by the agent) and logged. */
  const failedBeforeHead = (source: CompiledSource, err: unknown): UpstreamErrorKind => {
    tHeaders = process.hrtime.bigint();
    const kind = classifyUpstreamError(err);
    if (kind !== 'aborted') deps.metrics.upstreamErrors.inc({ source: source.name, kind, protocol: source.protocol });
    deps.log.debug('upstream request failed', { correlationId, source: source.name, kind, code: (err as { code?: string }).code, error: describeError(err) });
    return kind;
  };
  const ctx: RequestContext = {
    correlationId,
    source: sourceName,
    sourceLabel: UNKNOWN_SOURCE_LABEL,
    metrics: deps.metrics,
    budget: deps.budget,
    messages: [],
    logging: deps.log.enabled('info'),
    approvals: deps.approvals ?? null,
    inflight: deps.inflight,
    rateLimiter: deps.rateLimiter,
    audit: deps.audit,
    tracer,
    span,
    upstreamPath: null,
    protocol: 'mcp',
    async sendUpstream(source, incoming, method, body, inspect, describe, signal, detached) {
      if (signal?.aborted) return { ok: false, kind: 'aborted' };
      // Resolved per call: a Secret rotated since the request began is the one sent.
      const configured = source.headers();
      if (!configured.ok) return { ok: false, kind: 'credential' };
      // handleMcp refused a conflicting query already; this is the same decision, kept next to its use.
      const target = ctx.upstreamPath !== null ? { ok: true as const, path: ctx.upstreamPath } : upstreamTarget(source.path, incoming.url);
      if (!target.ok) return { ok: false, kind: 'other' };
      const path = target.path;
      tSent = process.hrtime.bigint();
      const client = tracer.on
        ? tracer.start(method, {
            kind: 'client',
            parent: span.ref,
            attributes: {
              'http.request.method': method,
              'server.address': source.origin.replace(/^[a-z]+:\/\//, ''),
              'thoughtgate.source': source.name,
              'url.path': path.split('?')[0],
            },
          })
        : NO_SPAN;
      const trace = client.ref ? propagationHeaders(client.ref) : undefined;
      // The caller's signal aborts the call, its answer's body included, as the client hanging up does.
      const aborted = signal && !detached && (() => abortSignal().emit('abort'));
      if (aborted) signal.addEventListener('abort', aborted, { once: true });
      let answered = false;
      try {
        // Custody (auth mode clientCredentials): the sidecar's token, retried once after a 401.
        const sent = await sendWithToken(deps.tokens, source, configured.headers, (extra) => {
          // An abort during the token fetch (or before the 401 retry) was emitted before undici listened: it is lost there.
          if (signal?.aborted) throw abortedError();
          tSent = process.hrtime.bigint();
          return poolRequest(deps.pools.forSource(source), {
            path,
            method: method as 'GET',
            headers: upstreamRequestHeaders(incoming.headers, { extra, identityEncoding: inspect, describe, trace }),
            body,
            signal: detached ? signal : abortSignal(),
            headersTimeout: source.responseTimeoutMs,
            bodyTimeout: 0,
          });
        });
        tHeaders = process.hrtime.bigint();
        if (!sent.ok) {
          deps.metrics.upstreamErrors.inc({ source: source.name, kind: sent.kind, protocol: source.protocol });
          client.fail(sent.kind);
          client.end();
          return sent;
        }
        client.set({ 'http.response.status_code': sent.response.statusCode });
        if (sent.response.statusCode >= 400) client.fail(`HTTP ${sent.response.statusCode}`);
        client.end();
        deps.metrics.upstreamLatency.observe({ source: source.name, protocol: source.protocol }, Number(tHeaders - tSent) / NS_PER_S);
        answered = true;
        return { ok: true, response: sent.response };
      } catch (err) {
        const kind = failedBeforeHead(source, err);
        client.set({ 'error.type': kind });
        client.fail(kind);
        client.end();
        return { ok: false, kind };
      } finally {
        // With an answer, the signal still aborts its body; without one it has nothing left to abort.
        if (aborted && !answered) signal.removeEventListener('abort', aborted);
      }
    },
    dispatchUpstream(source, incoming, body, describe, sink) {
      if (tracer.on || (deps.tokens !== undefined && usesClientCredentials(source))) return false;
      const configured = source.headers();
      if (!configured.ok) return false;
      const target = ctx.upstreamPath !== null ? { ok: true as const, path: ctx.upstreamPath } : upstreamTarget(source.path, incoming.url);
      if (!target.ok) return false;
      // The agent hanging up aborts the call, as the signal does for sendUpstream.
      let abortCall: ((err: Error) => void) | null = null;
      let agentGone = false;
      let head = false;
      const onClose = () => {
        if (res.writableFinished) return;
        agentGone = true;
        abortCall?.(abortedError());
      };
      res.once('close', onClose);
      tSent = process.hrtime.bigint();
      deps.pools.forSource(source).dispatch(
        {
          path: target.path,
          method: 'POST',
          headers: upstreamRequestHeaders(incoming.headers, { extra: configured.headers, identityEncoding: false, describe }),
          body,
          headersTimeout: source.responseTimeoutMs,
          bodyTimeout: 0,
        },
        {
          onConnect(a) {
            if (agentGone) a(abortedError());
            else abortCall = a;
          },
          onHeaders(status, raw, resume) {
            if (status < 200) return true;
            head = true;
            tHeaders = process.hrtime.bigint();
            deps.metrics.upstreamLatency.observe({ source: source.name, protocol: source.protocol }, Number(tHeaders - tSent!) / NS_PER_S);
            sink.onHead(status, parseHeaders(raw as Buffer[]), resume);
            return true;
          },
          onData(chunk) {
            return sink.onData(chunk);
          },
          onComplete() {
            res.off('close', onClose);
            sink.onEnd();
          },
          onError(err) {
            res.off('close', onClose);
            if (!head) failedBeforeHead(source, err);
            sink.onError(err, !head, agentGone);
          },
        },
      );
      return true;
    },
    markResponseStart() {
      tStart ??= process.hrtime.bigint();
    },
    debug(msg, fields) {
      deps.log.debug(msg, { correlationId, source: sourceName, ...fields });
    },
    finish(info) {
      if (finished) return;
      finished = true;
      const end = process.hrtime.bigint();
      const start = tStart ?? end;
      // Added latency: our time before dispatch plus our time relaying the response head.
      const added = tSent !== null && tHeaders !== null ? Number(tSent - t0) + Number(start - tHeaders) : Number(start - t0);
      const decision = info.decision ?? (ctx.messages.some((m) => m.decision === 'deny') ? 'deny' : 'forward');
      deps.metrics.addedLatency.observe({ source: ctx.sourceLabel, decision, protocol: ctx.protocol }, Math.max(0, added) / NS_PER_S);
      if (span.ref) endRequestSpan(span, ctx, info, decision);
      if (!ctx.logging) return;
      const base = {
        correlationId,
        source: sourceName,
        http: req.method,
        status: info.status,
        latencyMs: Number(end - t0) / 1e6,
        addedMs: Math.max(0, added) / 1e6,
        protocol: ctx.protocol,
      };
      const msgs = info.messages ?? ctx.messages;
      if (msgs.length === 0) {
        deps.log.info('request', { ...base, decision, gate: info.gate, reason: cut(info.reason) });
      } else {
        for (const m of msgs.length > LOG_MESSAGES_PER_REQUEST ? msgs.slice(0, LOG_MESSAGES_PER_REQUEST) : msgs) {
          deps.log.info('request', {
            ...base,
            method: cut(m.method || undefined),
            tool: cut(m.target),
            decision: m.decision,
            gate: m.gate,
            rule: m.rule,
            reason: cut(info.reason ?? m.reason),
            arguments: m.arguments && { keys: m.arguments.keys.map((k) => boundedName(k)), bytes: m.arguments.bytes },
            ...(m.audit ? { audit: m.audit } : {}),
            ...a2aLogFields(m),
          });
        }
        if (msgs.length > LOG_MESSAGES_PER_REQUEST) {
          const decisions: Record<string, number> = {};
          for (const m of msgs.slice(LOG_MESSAGES_PER_REQUEST)) decisions[m.decision] = (decisions[m.decision] ?? 0) + 1;
          deps.log.info('request', { ...base, messages: msgs.length, unlogged: msgs.length - LOG_MESSAGES_PER_REQUEST, decisions, reason: cut(info.reason) });
        }
      }
    },
  };
  return ctx;
}

// The OpenTelemetry SDK behind lib/tracing.ts: loaded (dynamic import) only when tracing is on.
// Spans are batched (a bounded queue: a full queue drops new spans and counts them) and sent as
// OTLP/HTTP JSON with a timeout per export.
import { createHmac, randomBytes } from 'node:crypto';
import { createTraceState, ROOT_CONTEXT, SpanKind as OtelKind, SpanStatusCode, TraceFlags, trace, type Link } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  SamplingDecision,
  TracerProvider,
  type SamplingResult,
  type ReadableSpan,
  type Sampler,
  type Span as SdkSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { Attributes, Span, SpanKind, StartOptions, Tracer, TracingConfig } from './tracing-api.js';
import type { SpanRef } from './trace-context.js';

const KINDS: Record<SpanKind, OtelKind> = {
  internal: OtelKind.INTERNAL,
  server: OtelKind.SERVER,
  client: OtelKind.CLIENT,
  producer: OtelKind.PRODUCER,
  consumer: OtelKind.CONSUMER,
};

/**
 * A ratio decided on the trace id through a key only this process knows (HMAC-SHA-256): the same
 * decision for every root span of a trace in this process, as with the SDK's TraceIdRatioBased, but
 * the trace id of a continued trace is the agent's, and without the key it cannot pick ids that are
 * always (or never) sampled.
 */
class KeyedRatioSampler implements Sampler {
  private readonly key = randomBytes(32);
  constructor(private readonly ratio: number) {}
  shouldSample(_context: unknown, traceId: string): SamplingResult {
    // The first 48 bits of the MAC as a fraction of 2^48.
    const x = createHmac('sha256', this.key).update(traceId).digest().readUIntBE(0, 6) / 2 ** 48;
    return { decision: x < this.ratio ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }
  toString(): string {
    return `KeyedRatioSampler{${this.ratio}}`;
  }
}

/**
 * The agent is not trusted with our sampling: a remote parent's sampled flag (the agent's
 * traceparent, or an ApprovalRequest's annotation, which the agent's token can write) is ignored,
 * and the root sampler decides; local parents (our own spans) are followed, so a request's spans
 * are kept or dropped together. Otherwise `-00` would hide an agent's calls from traces and `-01`
 * would force every call of it onto a shared collector.
 */
function parentBased(root: Sampler): Sampler {
  return new ParentBasedSampler({ root, remoteParentSampled: root, remoteParentNotSampled: root });
}

function samplerOf(c: TracingConfig['sampler']): Sampler {
  switch (c.kind) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new KeyedRatioSampler(c.ratio);
    case 'parentbased_always_on':
      return parentBased(new AlwaysOnSampler());
    case 'parentbased_always_off':
      return parentBased(new AlwaysOffSampler());
    case 'parentbased_traceidratio':
      return parentBased(new KeyedRatioSampler(c.ratio));
  }
}

/**
 * The batch processor with the queue bound of our own: the SDK's drops silently, this one counts.
 * A span is queued when it ends (if sampled) and leaves the queue when handed to the exporter.
 */
class CountingBatchProcessor implements SpanProcessor {
  private queued = 0;
  private readonly inner: BatchSpanProcessor;
  constructor(
    exporter: SpanExporter,
    private readonly c: TracingConfig,
    private readonly onDropped: (n: number) => void,
  ) {
    const counted: SpanExporter = {
      export: (spans, done) => {
        this.queued = Math.max(0, this.queued - spans.length);
        exporter.export(spans, done);
      },
      shutdown: () => exporter.shutdown(),
      ...(exporter.forceFlush ? { forceFlush: () => exporter.forceFlush!() } : {}),
    };
    // The inner queue is one larger than ours, so ours decides (and counts) every drop.
    this.inner = new BatchSpanProcessor({
      exporter: counted,
      maxQueueSize: c.maxQueueSize + 1,
      maxExportBatchSize: c.maxExportBatchSize,
      scheduledDelayMillis: c.scheduleDelayMs,
      exportTimeoutMillis: c.exportTimeoutMs,
    });
  }
  onStart(span: SdkSpan, parent: Parameters<SpanProcessor['onStart']>[1]): void {
    this.inner.onStart(span, parent);
  }
  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.queued >= this.c.maxQueueSize) return this.onDropped(1);
    this.queued++;
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

function refOf(s: { spanContext(): { traceId: string; spanId: string; traceFlags: number; traceState?: { serialize(): string } } }): SpanRef {
  const sc = s.spanContext();
  const state = sc.traceState?.serialize();
  return { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & TraceFlags.SAMPLED) !== 0, ...(state ? { traceState: state } : {}) };
}

function otelContext(ref: SpanRef) {
  return {
    traceId: ref.traceId,
    spanId: ref.spanId,
    traceFlags: ref.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: ref.remote === true,
    ...(ref.traceState ? { traceState: createTraceState(ref.traceState) } : {}),
  };
}

function clean(a: Attributes | undefined): Record<string, string | number | boolean | string[]> | undefined {
  if (!a) return undefined;
  const out: Record<string, string | number | boolean | string[]> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = typeof v === 'object' ? [...v] : v;
  return out;
}

export async function sdkTracer(c: TracingConfig, onDropped: (n: number) => void): Promise<Tracer> {
  const exporter = new OTLPTraceExporter({ url: c.url, timeoutMillis: c.exportTimeoutMs });
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ ...c.resourceAttributes, 'service.name': c.serviceName })),
    sampler: samplerOf(c.sampler),
    // Bounded spans whatever a caller sets: short attribute values, few links.
    spanLimits: { attributeValueLengthLimit: 256, attributeCountLimit: 64, linkCountLimit: 16, eventCountLimit: 16 },
    spanProcessors: [new CountingBatchProcessor(exporter, c, onDropped)],
  });
  const tracer = provider.getTracer('thoughtgate');
  let stopped: Promise<void> | null = null;
  return {
    on: true,
    start(name: string, o: StartOptions = {}): Span {
      const parent = o.parent ? trace.setSpanContext(ROOT_CONTEXT, otelContext(o.parent)) : ROOT_CONTEXT;
      const links: Link[] | undefined = o.links?.map((l) => ({ context: otelContext(l) }));
      const span = tracer.startSpan(
        name,
        {
          kind: KINDS[o.kind ?? 'internal'],
          ...(o.attributes ? { attributes: clean(o.attributes)! } : {}),
          ...(links ? { links } : {}),
          ...(o.startTime !== undefined ? { startTime: o.startTime } : {}),
          root: !o.parent,
        },
        parent,
      );
      const ref = refOf(span);
      return {
        ref,
        set: (a) => void span.setAttributes(clean(a)!),
        rename: (n) => void span.updateName(n),
        fail: (message) => void span.setStatus({ code: SpanStatusCode.ERROR, message }),
        link: (to, a) => void span.addLink({ context: otelContext(to), ...(a ? { attributes: clean(a)! } : {}) }),
        end: () => span.end(),
      };
    },
    shutdown(timeoutMs: number): Promise<void> {
      stopped ??= Promise.race([provider.shutdown().catch(() => undefined), new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
      return stopped;
    },
  };
}

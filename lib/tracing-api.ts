// The tracing API the deployables use (lib/tracing.ts starts it): spans with explicit parents,
// and the no-op tracer that tracing off is. Apart from tracing.ts so that the SDK side
// (tracing-sdk.ts) shares these types without an import cycle.
import type { SpanRef } from './trace-context.js';

export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
export type AttributeValue = string | number | boolean | readonly string[];
export type Attributes = Record<string, AttributeValue | undefined>;

export interface Span {
  /** This span's identity (for children, links and outgoing headers); null when tracing is off. */
  readonly ref: SpanRef | null;
  set(attributes: Attributes): void;
  /** A name known only once the work is understood (a low-cardinality name: never the caller's text). */
  rename(name: string): void;
  /** Marks the span failed, with a short message of ours (never the agent's text). */
  fail(message: string): void;
  link(to: SpanRef, attributes?: Attributes): void;
  end(): void;
}

export interface StartOptions {
  parent?: SpanRef | null;
  kind?: SpanKind;
  attributes?: Attributes;
  links?: readonly SpanRef[];
  /** Epoch milliseconds, for a span recorded after the fact. */
  startTime?: number;
}

export interface Tracer {
  readonly on: boolean;
  start(name: string, options?: StartOptions): Span;
  /** Exports what is queued, within `timeoutMs`, then stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

export const NO_SPAN: Span = Object.freeze({
  ref: null,
  set() {},
  rename() {},
  fail() {},
  link() {},
  end() {},
});

export const NO_TRACING: Tracer = Object.freeze({
  on: false,
  start: () => NO_SPAN,
  shutdown: async () => {},
});

export type SamplerConfig =
  | { kind: 'always_on' | 'always_off' | 'parentbased_always_on' | 'parentbased_always_off' }
  | { kind: 'traceidratio' | 'parentbased_traceidratio'; ratio: number };

export interface TracingConfig {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  url: string;
  serviceName: string;
  resourceAttributes: Record<string, string>;
  sampler: SamplerConfig;
  /** Spans waiting for export; past it new spans are dropped (and counted). */
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduleDelayMs: number;
  exportTimeoutMs: number;
}

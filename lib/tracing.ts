// Tracing, configured the standard OpenTelemetry way (environment variables) and off by default.
// Off, every span is one shared no-op object and no OpenTelemetry module is loaded; on, the SDK
// and the OTLP/HTTP exporter are imported (tracing-sdk.ts) and spans are batched to the collector.
// Deployables pass parents explicitly (a SpanRef): there is no ambient context to leak between
// requests.
import { NO_TRACING, type SamplerConfig, type Tracer, type TracingConfig } from './tracing-api.js';

export type { SpanRef } from './trace-context.js';
export * from './tracing-api.js';

export type Env = Readonly<Record<string, string | undefined>>;

const SAMPLERS = new Set(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']);

function positiveInt(v: string | undefined, fallback: number, max: number): number {
  if (v === undefined || !/^\d+$/.test(v.trim())) return fallback;
  const n = Number(v.trim());
  return n > 0 ? Math.min(n, max) : fallback;
}

/** OTEL_RESOURCE_ATTRIBUTES: `key=value,key=value`, values percent-encoded; a malformed member is skipped. */
export function parseResourceAttributes(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const member of (v ?? '').split(',')) {
    const eq = member.indexOf('=');
    if (eq <= 0) continue;
    const key = member.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(member.slice(eq + 1).trim());
    } catch {
      // not percent-encoding: skipped, as the SDKs do
    }
  }
  return out;
}

function samplerOf(env: Env): SamplerConfig | string {
  const name = (env['OTEL_TRACES_SAMPLER'] ?? 'parentbased_always_on').trim().toLowerCase() || 'parentbased_always_on';
  if (!SAMPLERS.has(name)) return `OTEL_TRACES_SAMPLER "${name.slice(0, 64)}" is not one of ${[...SAMPLERS].join(', ')}`;
  if (name !== 'traceidratio' && name !== 'parentbased_traceidratio') return { kind: name as 'always_on' };
  const arg = env['OTEL_TRACES_SAMPLER_ARG']?.trim();
  const ratio = arg === undefined || arg === '' ? 1 : Number(arg);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) return `OTEL_TRACES_SAMPLER_ARG "${arg?.slice(0, 64)}" is not a ratio between 0 and 1`;
  return { kind: name, ratio };
}

/**
 * The tracing configuration in `env`, or `{ off }` saying why there is none. On only when an OTLP
 * endpoint is set, OTEL_TRACES_EXPORTER is not `none` (only `otlp` is supported) and the SDK is not
 * disabled. A configuration error is `{ error }`: the caller says so and runs without tracing.
 */
export function tracingConfig(env: Env, defaultServiceName: string): TracingConfig | { off: string } | { error: string } {
  if ((env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase() === 'true') return { off: 'OTEL_SDK_DISABLED=true' };
  const exporter = (env['OTEL_TRACES_EXPORTER'] ?? 'otlp').trim().toLowerCase() || 'otlp';
  if (exporter === 'none') return { off: 'OTEL_TRACES_EXPORTER=none' };
  const traces = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim();
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim();
  if (!traces && !base) return { off: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' };
  if (exporter !== 'otlp') return { error: `OTEL_TRACES_EXPORTER "${exporter.slice(0, 64)}" is not supported (otlp or none)` };
  const protocol = (env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'] ?? '').trim();
  if (protocol === 'grpc') return { error: 'OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: ThoughtGate exports OTLP over HTTP' };
  // The signal-specific endpoint is used as is; the base one gets the signal's path (OTLP spec).
  const url = traces || `${base!.replace(/\/+$/, '')}/v1/traces`;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    return { error: 'the OTLP traces endpoint is not an http(s) URL' };
  }
  const sampler = samplerOf(env);
  if (typeof sampler === 'string') return { error: sampler };
  const resourceAttributes = parseResourceAttributes(env['OTEL_RESOURCE_ATTRIBUTES']);
  const serviceName = env['OTEL_SERVICE_NAME']?.trim() || resourceAttributes['service.name'] || defaultServiceName;
  const maxQueueSize = positiveInt(env['OTEL_BSP_MAX_QUEUE_SIZE'], 2048, 65_536);
  const exportTimeoutMs = positiveInt(env['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'] ?? env['OTEL_EXPORTER_OTLP_TIMEOUT'], 10_000, 60_000);
  return {
    url,
    serviceName,
    resourceAttributes,
    sampler,
    maxQueueSize,
    maxExportBatchSize: Math.min(positiveInt(env['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'], 512, 65_536), maxQueueSize),
    scheduleDelayMs: positiveInt(env['OTEL_BSP_SCHEDULE_DELAY'], 5000, 60_000),
    exportTimeoutMs: Math.min(positiveInt(env['OTEL_BSP_EXPORT_TIMEOUT'], exportTimeoutMs, 60_000), exportTimeoutMs),
  };
}

export interface TracingOptions {
  defaultServiceName: string;
  /** Spans dropped because the export queue was full (a counter's inc). */
  onDropped?: (n: number) => void;
  /** Why tracing is off or could not start, once at start. */
  onNote?: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
}

/** The deployable's tracer: NO_TRACING unless `env` turns tracing on (then the SDK is loaded). */
export async function startTracing(env: Env, opts: TracingOptions): Promise<Tracer> {
  const config = tracingConfig(env, opts.defaultServiceName);
  if ('off' in config) return NO_TRACING;
  if ('error' in config) {
    opts.onNote?.('warn', 'tracing is off: its configuration is invalid', { reason: config.error });
    return NO_TRACING;
  }
  const { sdkTracer } = await import('./tracing-sdk.js');
  const tracer = await sdkTracer(config, opts.onDropped ?? (() => {}));
  opts.onNote?.('info', 'tracing on', { url: redactUrl(config.url), service: config.serviceName, sampler: config.sampler.kind });
  return tracer;
}

/** An endpoint as logged: no credentials or query. */
function redactUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

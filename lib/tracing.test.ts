import { describe, expect, test } from '@jest/globals';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { incomingSpan, MAX_TRACESTATE_CHARS, parseTraceparent, propagationHeaders, tracestateOf } from './trace-context.js';
import { NO_TRACING, parseResourceAttributes, startTracing, tracingConfig } from './tracing.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceparent', () => {
  test('a valid one is read; flags give sampled', () => {
    expect(parseTraceparent(TP)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true, remote: true });
    expect(parseTraceparent(TP.replace(/01$/, '00'))?.sampled).toBe(false);
    // A later version may append fields after a dash.
    expect(parseTraceparent(`01-${TP.slice(3)}-extra`)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  test.each([
    ['absent', undefined],
    ['repeated header', [TP, TP]],
    ['upper-case hex', TP.toUpperCase()],
    ['version ff', `ff${TP.slice(2)}`],
    ['zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['zero span id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['version 00 with more fields', `${TP}-x`],
    ['short trace id', '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01'],
    ['header injection', `${TP}\r\nx-evil: 1`],
    ['oversized', `01-${TP.slice(3)}-${'a'.repeat(300)}`],
    ['control characters in a later version', `01-${TP.slice(3)}-\u0000`],
  ])('%s is refused', (_what, v) => {
    expect(parseTraceparent(v as string | string[] | undefined)).toBeNull();
  });
});

describe('tracestate', () => {
  test('valid lists are normalised; repeated fields join; empty members ignored', () => {
    expect(tracestateOf('rojo=00f067aa0ba902b7, congo=t61rcWkgMzE')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(tracestateOf(['a=1', 'b=2'])).toBe('a=1,b=2');
    expect(tracestateOf('a=1,,b=2')).toBe('a=1,b=2');
    expect(tracestateOf('tenant@vendor=x')).toBe('tenant@vendor=x');
  });

  test.each([
    ['duplicate key', 'a=1,a=2'],
    ['upper-case key', 'A=1'],
    ['value with =', 'a=b=c'],
    ['value with a tab', 'a=x\ty'],
    ['no value', 'a='],
    ['header injection', 'a=1\r\nx-evil: 1'],
    ['33 members', Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')],
    ['oversized', `a=${'x'.repeat(200)},b=${'x'.repeat(200)},c=${'x'.repeat(200)}`],
    ['only commas', ',,'],
  ])('%s drops it whole', (_what, v) => {
    expect(tracestateOf(v)).toBeUndefined();
  });

  test('the bound is the W3C minimum vendors must carry', () => {
    expect(MAX_TRACESTATE_CHARS).toBe(512);
    const atBound = `a=${'x'.repeat(250)},b=${'x'.repeat(250)},c=${'x'.repeat(4)}`;
    expect(atBound.length).toBe(512);
    expect(tracestateOf(atBound)).toBe(atBound);
    expect(tracestateOf(`${atBound}x`)).toBeUndefined();
  });

  test('incomingSpan: tracestate only with a valid traceparent; propagationHeaders writes both', () => {
    expect(incomingSpan({ tracestate: 'a=1' })).toBeNull();
    const ref = incomingSpan({ traceparent: TP, tracestate: 'a=1' })!;
    expect(ref.traceState).toBe('a=1');
    expect(propagationHeaders(ref)).toEqual({ traceparent: TP, tracestate: 'a=1' });
    expect(incomingSpan({ traceparent: TP, tracestate: 'A=1' })!.traceState).toBeUndefined();
  });
});

describe('tracingConfig', () => {
  test('off without an endpoint, with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none', () => {
    expect(tracingConfig({}, 'svc')).toEqual({ off: expect.stringContaining('OTEL_EXPORTER_OTLP_ENDPOINT') });
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }, 'svc')).toEqual({ off: 'OTEL_SDK_DISABLED=true' });
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }, 'svc')).toEqual({ off: 'OTEL_TRACES_EXPORTER=none' });
  });

  test('the base endpoint gets /v1/traces; the traces endpoint is used as is; defaults', () => {
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }, 'svc')).toEqual({
      url: 'http://c:4318/v1/traces',
      serviceName: 'svc',
      resourceAttributes: {},
      sampler: { kind: 'parentbased_always_on' },
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduleDelayMs: 5000,
      exportTimeoutMs: 10_000,
    });
    const c = tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t/x' }, 'svc');
    expect('url' in c && c.url).toBe('https://t/x');
  });

  test('service name, resource attributes, sampler, bounds', () => {
    const c = tracingConfig(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_SERVICE_NAME: 'gate',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,k8s.namespace.name=team%20a,broken',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_BSP_MAX_QUEUE_SIZE: '100',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500',
        OTEL_EXPORTER_OTLP_TIMEOUT: '999999',
      },
      'svc',
    );
    expect(c).toMatchObject({
      serviceName: 'gate',
      resourceAttributes: { 'deployment.environment': 'prod', 'k8s.namespace.name': 'team a' },
      sampler: { kind: 'parentbased_traceidratio', ratio: 0.25 },
      maxQueueSize: 100,
      maxExportBatchSize: 100,
      exportTimeoutMs: 60_000,
    });
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs' }, 'svc')).toMatchObject({
      serviceName: 'from-attrs',
    });
    expect(parseResourceAttributes('a=%E0%A4%A,b=1')).toEqual({ b: '1' });
  });

  test('configuration errors say what is wrong', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(tracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'sometimes' }, 's')).toEqual({ error: expect.stringContaining('OTEL_TRACES_SAMPLER') });
    expect(tracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, 's')).toEqual({
      error: expect.stringContaining('ratio'),
    });
    expect(tracingConfig({ ...on, OTEL_TRACES_EXPORTER: 'zipkin' }, 's')).toEqual({ error: expect.stringContaining('zipkin') });
    expect(tracingConfig({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 's')).toEqual({ error: expect.stringContaining('grpc') });
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://c' }, 's')).toEqual({ error: expect.stringContaining('http') });
  });
});

describe('startTracing', () => {
  test('off: the shared no-op tracer, nothing loaded', async () => {
    expect(await startTracing({}, { defaultServiceName: 's' })).toBe(NO_TRACING);
    const notes: string[] = [];
    expect(await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'nope' }, { defaultServiceName: 's', onNote: (_l, m) => notes.push(m) })).toBe(NO_TRACING);
    expect(notes).toEqual(['tracing is off: its configuration is invalid']);
  });

  test("the agent's sampled flag decides nothing: our root sampler does (local parents are followed)", async () => {
    const sampledWith = async (env: Record<string, string>, flags: '00' | '01') => {
      const t = await startTracing(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_SCHEDULE_DELAY: '60000', ...env },
        { defaultServiceName: 's' },
      );
      try {
        const request = t.start('request', { parent: parseTraceparent(TP.replace(/01$/, flags))!, kind: 'server' });
        const child = t.start('gate', { parent: request.ref });
        const r = { request: request.ref?.sampled, child: child.ref?.sampled, trace: request.ref?.traceId };
        child.end();
        request.end();
        return r;
      } finally {
        await t.shutdown(100);
      }
    };
    const traceId = parseTraceparent(TP)!.traceId;
    // -00 cannot hide the agent's calls; its trace is still continued.
    expect(await sampledWith({}, '00')).toEqual({ request: true, child: true, trace: traceId });
    // -01 cannot force sampling past the configured ratio or sampler.
    expect(await sampledWith({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }, '01')).toMatchObject({
      request: false,
      child: false,
    });
    expect(await sampledWith({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, '01')).toMatchObject({ request: false, child: false });
    expect(await sampledWith({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1' }, '00')).toMatchObject({ request: true, child: true });
  });

  test("with a ratio, a request's spans are kept or dropped together, and one trace gets one decision", async () => {
    for (const sampler of ['parentbased_traceidratio', 'traceidratio']) {
      const t = await startTracing(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_SCHEDULE_DELAY: '60000', OTEL_TRACES_SAMPLER: sampler, OTEL_TRACES_SAMPLER_ARG: '0.5' },
        { defaultServiceName: 's' },
      );
      try {
        let sampled = 0;
        const split: string[] = [];
        for (let i = 0; i < 200; i++) {
          // Half with the agent's parent (a trace id it chose), half new traces.
          const parent = i % 2 ? parseTraceparent(`00-${i.toString(16).padStart(32, '0')}-00f067aa0ba902b7-01`)! : undefined;
          const request = t.start('request', { parent, kind: 'server' });
          const gate = t.start('gate', { parent: request.ref });
          const upstream = t.start('upstream', { parent: request.ref, kind: 'client' });
          if (gate.ref?.sampled !== request.ref?.sampled || upstream.ref?.sampled !== request.ref?.sampled) split.push(`${sampler} #${i}`);
          if (request.ref?.sampled) sampled++;
          for (const s of [upstream, gate, request]) s.end();
          // The same trace again (another request of it): the same decision.
          if (parent) {
            const again = t.start('request', { parent, kind: 'server' });
            if (again.ref?.sampled !== request.ref?.sampled) split.push(`${sampler} #${i} again`);
            again.end();
          }
        }
        expect(split).toEqual([]);
        expect(sampled).toBeGreaterThan(60);
        expect(sampled).toBeLessThan(140);
      } finally {
        await t.shutdown(100);
      }
    }
  });

  test('on: spans continue the parent, are exported as OTLP/HTTP on shutdown, and a full queue drops and counts', async () => {
    const bodies: unknown[] = [];
    // The collector answers only once released: an export stays in flight meanwhile.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const collector = createServer((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        bodies.push({ path: req.url, body: JSON.parse(b) });
        void released.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
      });
    }).listen(0, '127.0.0.1');
    await once(collector, 'listening');
    const port = (collector.address() as { port: number }).port;
    let dropped = 0;
    const t = await startTracing(
      { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_SERVICE_NAME: 'unit', OTEL_BSP_MAX_QUEUE_SIZE: '2', OTEL_BSP_SCHEDULE_DELAY: '60000' },
      { defaultServiceName: 's', onDropped: (n) => (dropped += n) },
    );
    expect(t.on).toBe(true);
    const parent = parseTraceparent(TP)!;
    const a = t.start('a', { parent, kind: 'server', attributes: { x: 1, skipped: undefined } });
    expect(a.ref).toMatchObject({ traceId: parent.traceId, sampled: true });
    expect(a.ref!.spanId).not.toBe(parent.spanId);
    const b = t.start('b', { parent: a.ref });
    b.end();
    a.end(); // a full batch (2): exported at once, and in flight until released
    t.start('c').end();
    t.start('d').end();
    t.start('e').end(); // the queue (2) is full while the first export is in flight
    expect(dropped).toBe(1);
    release();
    await t.shutdown(5000);
    collector.closeAllConnections();
    collector.close();
    expect(bodies).toHaveLength(2);
    const sent = bodies[0] as {
      path: string;
      body: {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] };
          scopeSpans: { spans: { name: string; parentSpanId?: string; traceId: string }[] }[];
        }[];
      };
    };
    expect(sent.path).toBe('/v1/traces');
    const rs = sent.body.resourceSpans[0]!;
    expect(rs.resource.attributes.find((x) => x.key === 'service.name')?.value.stringValue).toBe('unit');
    const spans = rs.scopeSpans[0]!.spans;
    expect(spans.map((s) => s.name)).toEqual(['b', 'a']);
    expect(spans[1]!.parentSpanId).toBe(parent.spanId);
    expect(spans[0]!.parentSpanId).toBe(a.ref!.spanId);
  });
});

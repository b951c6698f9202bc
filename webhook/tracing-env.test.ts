import { describe, expect, test } from '@jest/globals';
import { parseOtelFlags, sidecarTracingEnv } from './tracing-env.js';

describe('sidecar tracing env', () => {
  test('none given: nothing added (tracing stays off in the sidecar)', () => {
    expect(sidecarTracingEnv(undefined)).toEqual([]);
    expect(sidecarTracingEnv([])).toEqual([]);
  });

  test("the flags' variables, with the pod's identity joining the resource attributes", () => {
    const p = parseOtelFlags(['OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318', 'OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod']);
    expect(p.ok && sidecarTracingEnv(p.env)).toEqual([
      { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector:4318' },
      { name: 'OTEL_RESOURCE_ATTRIBUTES', value: 'deployment.environment=prod,k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)' },
    ]);
  });

  test('only OTEL_* names', () => {
    expect(parseOtelFlags(['NODE_OPTIONS=--inspect'])).toEqual({ ok: false, error: '--sidecar-otel takes OTEL_*=value, got "NODE_OPTIONS"' });
    expect(parseOtelFlags(['OTEL_SERVICE_NAME'])).toMatchObject({ ok: false });
    expect(parseOtelFlags(['otel_x=1'])).toMatchObject({ ok: false });
  });
});

// The injected sidecar's tracing: the OTEL_* variables the operator was given for sidecars
// (chart values tracing.sidecar, `--sidecar-otel KEY=VALUE`), plus the pod's identity as resource
// attributes so traces say which workload's sidecar they came from. None given: tracing stays off
// in the sidecar (nothing is added).
import { ENV } from '../api/wellknown.js';
import type { EnvVar } from './pod.js';

/** Only the OpenTelemetry SDK's variables: the flag must not become a way to set anything else in the sidecar. */
export const OTEL_NAME = /^OTEL_[A-Z0-9_]{1,100}$/;

/** Parses `KEY=VALUE` flags; a key that is not OTEL_* is an error naming it. */
export function parseOtelFlags(flags: readonly string[]): { ok: true; env: EnvVar[] } | { ok: false; error: string } {
  const env: EnvVar[] = [];
  for (const f of flags) {
    const eq = f.indexOf('=');
    const name = eq < 0 ? f : f.slice(0, eq);
    if (eq < 0 || !OTEL_NAME.test(name)) return { ok: false, error: `--sidecar-otel takes OTEL_*=value, got "${name.slice(0, 100)}"` };
    env.push({ name, value: f.slice(eq + 1) });
  }
  return { ok: true, env };
}

/**
 * The sidecar's OTEL_* env. Listed after POD_NAME and POD_NAMESPACE: Kubernetes expands $(VAR)
 * only from variables defined earlier in the list.
 */
export function sidecarTracingEnv(otel: readonly EnvVar[] | undefined): EnvVar[] {
  if (!otel || otel.length === 0) return [];
  const pod = `k8s.pod.name=$(${ENV.podName}),k8s.namespace.name=$(${ENV.podNamespace})`;
  const given = otel.find((e) => e.name === 'OTEL_RESOURCE_ATTRIBUTES')?.value;
  return [...otel.filter((e) => e.name !== 'OTEL_RESOURCE_ATTRIBUTES'), { name: 'OTEL_RESOURCE_ATTRIBUTES', value: given ? `${given},${pod}` : pod }];
}

// Pure core of the capture report: a namespace's injected pods (the webhook labels them
// thoughtgate.io/sidecar=injected|captured) in, the report every GovernancePolicy of the namespace
// carries in status.capture out, and which policies need it written. Bounded: full counts, at most
// CAPTURE_REPORT_MAX_NAMES names of each kind.
import { CAPTURE_ANNOTATIONS, CAPTURE_REPORT_MAX_NAMES, INIT_CONTAINER_NAME, SIDECAR_LABEL, SIDECAR_LABEL_VALUES } from '../api/capture.js';
import type { CaptureReport } from '../api/capture-state.js';
import type { KubeObject } from './kube-object.js';

export interface ReportPod {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { initContainers?: readonly { name: string; args?: readonly string[] }[] };
  status?: { phase?: string };
}

/**
 * Whether the pod runs capture-init first. The label alone is not proof: a pod the webhook never
 * saw (opted out by label, so the API server does not send it) may carry any label.
 */
function runsCaptureInit(pod: ReportPod): boolean {
  const first = pod.spec?.initContainers?.[0];
  return first?.name === INIT_CONTAINER_NAME && first.args?.[0] === 'capture-init';
}

/** Whether the captured annotation says the pod was admitted with a container that could walk around capture. */
function bypassable(pod: ReportPod): boolean {
  try {
    const a = JSON.parse(pod.metadata.annotations?.[CAPTURE_ANNOTATIONS.captured] ?? '{}') as { bypassable?: unknown };
    return Array.isArray(a.bypassable) && a.bypassable.length > 0;
  } catch {
    return false;
  }
}

export function captureReport(pods: readonly ReportPod[]): CaptureReport {
  const captured: string[] = [];
  const notCaptured: string[] = [];
  const weak: string[] = [];
  // Pods that ended hold no traffic; listing them would keep Jobs' pods in the report forever.
  for (const p of pods) {
    if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
    const v = p.metadata.labels?.[SIDECAR_LABEL];
    if (v === SIDECAR_LABEL_VALUES.captured && runsCaptureInit(p)) {
      captured.push(p.metadata.name);
      if (bypassable(p)) weak.push(p.metadata.name);
    } else if (v === SIDECAR_LABEL_VALUES.injected || v === SIDECAR_LABEL_VALUES.captured) notCaptured.push(p.metadata.name);
  }
  const first = (names: string[]) => names.sort().slice(0, CAPTURE_REPORT_MAX_NAMES);
  return {
    summary: `${captured.length}/${captured.length + notCaptured.length}`,
    captured: captured.length,
    notCaptured: notCaptured.length,
    bypassable: weak.length,
    capturedPods: first(captured),
    notCapturedPods: first(notCaptured),
    bypassablePods: first(weak),
  };
}

export interface ReportWrite {
  policy: string;
  /** null: the namespace has no injected pod left; status.capture is removed (merge patch null). */
  report: CaptureReport | null;
}

/**
 * The policies whose status.capture differs from the namespace's report. A namespace without
 * injected pods gets no report at all, so policies of namespaces that never use the webhook are
 * never written.
 */
export function planCaptureReport(policies: readonly KubeObject[], pods: readonly ReportPod[]): ReportWrite[] {
  const live = pods.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
  const report = live.length ? captureReport(live) : null;
  const text = JSON.stringify(report ?? undefined);
  return policies
    .filter((p) => JSON.stringify((p.status as { capture?: unknown } | undefined)?.capture) !== text)
    .map((p) => ({ policy: p.metadata.name, report }));
}

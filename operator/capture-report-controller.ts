// The capture report controller: each GovernancePolicy of a namespace carries in status.capture
// which of its injected pods are captured (operator/capture-report-plan.ts). Its pod informer lists
// only pods the webhook labelled (thoughtgate.io/sidecar); the rest is operator/namespace-report.ts:
// a status is written only when the report changed, and a namespace at most once per
// CAPTURE_REPORT_INTERVAL_MS (a rolling update costs one patch per policy per interval, not per pod
// event), a JSON merge patch of status.capture alone.
import { planCaptureReport, type ReportPod } from './capture-report-plan.js';
import type { NamespaceKey } from './keys.js';
import type { ControllerDefinition } from './manager.js';
import { namespaceReportController, type ReportOptions } from './namespace-report.js';
import { INJECTED_PODS } from './sources.js';

/** The least time between two writes of a namespace's report (docs/operations.md: how fresh it is). */
export const CAPTURE_REPORT_INTERVAL_MS = 5_000;

export const captureReportControllerWith = (o: ReportOptions = {}): ControllerDefinition<NamespaceKey> =>
  namespaceReportController(
    {
      kind: 'capture',
      source: INJECTED_PODS,
      field: 'capture',
      plan: (policies, pods) => planCaptureReport(policies, pods as unknown as ReportPod[]).map((w) => ({ policy: w.policy, value: w.report })),
      intervalMs: CAPTURE_REPORT_INTERVAL_MS,
    },
    o,
  );

export const captureReportController = captureReportControllerWith();

// The capture report controller: one key per namespace; each GovernancePolicy of the namespace
// carries in status.capture which of its injected pods are captured (operator/capture-report-plan.ts).
// Cheap: its pod informer lists only pods the webhook labelled (thoughtgate.io/sidecar), a status
// is written only when the report changed, and a namespace is written at most once per
// CAPTURE_REPORT_INTERVAL_MS (a burst of pod events waits on the queue's delay, then writes the
// state of then: one patch per policy per interval, not per pod event). A JSON merge patch of status.capture alone: the
// policy controller's own status fields are left as they are, and it leaves this one alone.
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { captureWriteDelay, planCaptureReport, type ReportPod } from './capture-report-plan.js';
import { namespaceId, type NamespaceKey } from './keys.js';
import { ignoreNotFound, mergePatch } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import { GOVERNANCE_POLICIES, INJECTED_PODS } from './sources.js';

const byNamespace = (obj: k8s.KubernetesObject) => (obj.metadata?.namespace ? [{ namespace: obj.metadata.namespace }] : []);

/** The least time between two writes of a namespace's report (docs/operations.md: how fresh it is). */
export const CAPTURE_REPORT_INTERVAL_MS = 5_000;

export interface CaptureReportOptions {
  minIntervalMs?: number;
  clock?: Clock;
}

export function captureReportControllerWith(o: CaptureReportOptions = {}): ControllerDefinition<NamespaceKey> {
  return {
    kind: 'capture',
    id: namespaceId,
    setup: (ctx) => new CaptureReportController(ctx, o.minIntervalMs ?? CAPTURE_REPORT_INTERVAL_MS, o.clock ?? systemClock),
  };
}

export const captureReportController = captureReportControllerWith();

class CaptureReportController implements Reconciler<NamespaceKey> {
  readonly watches = [watch(INJECTED_PODS, (_e, obj) => byNamespace(obj)), watch(GOVERNANCE_POLICIES, (_e, obj) => byNamespace(obj))];
  private readonly custom: k8s.CustomObjectsApi;
  /** namespace → when its report was last written; dropped at its next reconcile after the interval. */
  private readonly lastWrite = new Map<string, number>();

  constructor(
    private readonly ctx: ControllerContext<NamespaceKey>,
    private readonly minIntervalMs: number,
    private readonly clock: Clock,
  ) {
    this.custom = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async reconcile(key: NamespaceKey): Promise<void> {
    const { namespace } = key;
    const wait = captureWriteDelay(this.lastWrite.get(namespace), this.clock.now(), this.minIntervalMs);
    if (wait > 0) {
      // The queue keeps one timer per key: the events of a burst share it.
      this.ctx.enqueue(key, wait);
      return;
    }
    this.lastWrite.delete(namespace);
    const pods = this.ctx.cache(INJECTED_PODS).list(namespace) as unknown as ReportPod[];
    const writes = planCaptureReport(this.ctx.cache(GOVERNANCE_POLICIES).list(namespace), pods);
    if (writes.length) this.lastWrite.set(namespace, this.clock.now());
    for (const w of writes) {
      await this.custom
        .patchNamespacedCustomObjectStatus(
          { group: GROUP, version: VERSION, namespace, plural: KINDS.GovernancePolicy.plural, name: w.policy, body: { status: { capture: w.report } } },
          mergePatch(),
        )
        .catch(ignoreNotFound);
    }
  }
}

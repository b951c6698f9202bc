// The capture report controller: one key per namespace; each GovernancePolicy of the namespace
// carries in status.capture which of its injected pods are captured (operator/capture-report-plan.ts).
// Cheap: its pod informer lists only pods the webhook labelled (thoughtgate.io/sidecar), and a
// status is written only when the report changed. A JSON merge patch of status.capture alone: the
// policy controller's own status fields are left as they are, and it leaves this one alone.
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import { planCaptureReport, type ReportPod } from './capture-report-plan.js';
import { namespaceId, type NamespaceKey } from './keys.js';
import { ignoreNotFound, mergePatch } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import { GOVERNANCE_POLICIES, INJECTED_PODS } from './sources.js';

const byNamespace = (obj: k8s.KubernetesObject) => (obj.metadata?.namespace ? [{ namespace: obj.metadata.namespace }] : []);

export const captureReportController: ControllerDefinition<NamespaceKey> = {
  kind: 'capture',
  id: namespaceId,
  setup: (ctx) => new CaptureReportController(ctx),
};

class CaptureReportController implements Reconciler<NamespaceKey> {
  readonly watches = [watch(INJECTED_PODS, (_e, obj) => byNamespace(obj)), watch(GOVERNANCE_POLICIES, (_e, obj) => byNamespace(obj))];
  private readonly custom: k8s.CustomObjectsApi;

  constructor(private readonly ctx: ControllerContext<NamespaceKey>) {
    this.custom = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async reconcile({ namespace }: NamespaceKey): Promise<void> {
    const pods = this.ctx.cache(INJECTED_PODS).list(namespace) as unknown as ReportPod[];
    for (const w of planCaptureReport(this.ctx.cache(GOVERNANCE_POLICIES).list(namespace), pods)) {
      await this.custom
        .patchNamespacedCustomObjectStatus(
          { group: GROUP, version: VERSION, namespace, plural: KINDS.GovernancePolicy.plural, name: w.policy, body: { status: { capture: w.report } } },
          mergePatch(),
        )
        .catch(ignoreNotFound);
    }
  }
}

// The audit report controller: one key per namespace; each GovernancePolicy of the namespace
// carries in status.audit what its sidecars forwarded in audit mode that enforce would not have
// (operator/audit-report-plan.ts), summed from their Events. Cheap, like the capture report: its
// Event informer lists only audit Events (fieldSelector source=thoughtgate-audit), a status is
// written only when the report changed, and a namespace at most once per AUDIT_REPORT_INTERVAL_MS
// (a burst of Event updates waits on the queue's delay, then writes the state of then). A JSON
// merge patch of status.audit alone: the policy controller's status fields are left as they are.
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { planAuditReport, type AuditEventObject } from './audit-report-plan.js';
import { captureWriteDelay } from './capture-report-plan.js';
import { namespaceId, type NamespaceKey } from './keys.js';
import { ignoreNotFound, mergePatch } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import { AUDIT_EVENTS, GOVERNANCE_POLICIES } from './sources.js';

const byNamespace = (obj: k8s.KubernetesObject) => (obj.metadata?.namespace ? [{ namespace: obj.metadata.namespace }] : []);

/** The least time between two writes of a namespace's audit report (sidecars write their Events every 30 s). */
export const AUDIT_REPORT_INTERVAL_MS = 30_000;

export interface AuditReportOptions {
  minIntervalMs?: number;
  clock?: Clock;
}

export function auditReportControllerWith(o: AuditReportOptions = {}): ControllerDefinition<NamespaceKey> {
  return {
    kind: 'audit',
    id: namespaceId,
    setup: (ctx) => new AuditReportController(ctx, o.minIntervalMs ?? AUDIT_REPORT_INTERVAL_MS, o.clock ?? systemClock),
  };
}

class AuditReportController implements Reconciler<NamespaceKey> {
  readonly watches = [watch(AUDIT_EVENTS, (_e, obj) => byNamespace(obj)), watch(GOVERNANCE_POLICIES, (_e, obj) => byNamespace(obj))];
  private readonly custom: k8s.CustomObjectsApi;
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
      this.ctx.enqueue(key, wait);
      return;
    }
    this.lastWrite.delete(namespace);
    const events = this.ctx.cache(AUDIT_EVENTS).list(namespace) as unknown as AuditEventObject[];
    const writes = planAuditReport(this.ctx.cache(GOVERNANCE_POLICIES).list(namespace), events);
    if (writes.length) this.lastWrite.set(namespace, this.clock.now());
    for (const w of writes) {
      await this.custom
        .patchNamespacedCustomObjectStatus(
          { group: GROUP, version: VERSION, namespace, plural: KINDS.GovernancePolicy.plural, name: w.policy, body: { status: { audit: w.audit } } },
          mergePatch(),
        )
        .catch(ignoreNotFound);
    }
  }
}

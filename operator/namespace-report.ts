// A controller that writes one field of every GovernancePolicy's status of a namespace from what
// the namespace's objects say (the capture report from its pods, the audit report from its audit
// Events). Cheap: one key per namespace; the plan returns only the policies whose field differs;
// a namespace is written at most once per `minIntervalMs` (a burst of events waits on the queue's
// per-key delay, then writes the state of then, so the last state is always written). A JSON merge
// patch of that field alone: the policy controller's status fields are left as they are, and it
// leaves this one alone.
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { namespaceId, type NamespaceKey } from './keys.js';
import type { KubeObject } from './kube-object.js';
import { ignoreNotFound, mergePatch } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import { GOVERNANCE_POLICIES, type Source } from './sources.js';

const byNamespace = (obj: k8s.KubernetesObject) => (obj.metadata?.namespace ? [{ namespace: obj.metadata.namespace }] : []);

export interface NamespaceReport<T extends k8s.KubernetesObject> {
  /** The controller's `kind` (metrics, logs). */
  kind: string;
  /** What the report is made from (besides the namespace's policies). */
  source: Source<T>;
  /** The status field written. */
  field: string;
  /**
   * The policies whose field must be written, with its value (null: removed). `incomplete`: the
   * source's cache left objects of the namespace out (its limits).
   */
  plan(policies: readonly KubeObject[], objects: readonly T[], incomplete: boolean): { policy: string; value: unknown }[];
  /** The default least time between two writes of a namespace. */
  intervalMs: number;
}

/** What tests and callers may change: the interval, and the clock. */
export interface ReportOptions {
  minIntervalMs?: number | undefined;
  clock?: Clock;
}

export function namespaceReportController<T extends k8s.KubernetesObject>(r: NamespaceReport<T>, o: ReportOptions = {}): ControllerDefinition<NamespaceKey> {
  const timing = { minIntervalMs: o.minIntervalMs ?? r.intervalMs, clock: o.clock ?? systemClock };
  return { kind: r.kind, id: namespaceId, setup: (ctx) => new NamespaceReportController(ctx, r, timing) };
}

class NamespaceReportController<T extends k8s.KubernetesObject> implements Reconciler<NamespaceKey> {
  readonly watches;
  private readonly custom: k8s.CustomObjectsApi;
  /** namespace → when its report was last written; dropped at its next reconcile after the interval. */
  private readonly lastWrite = new Map<string, number>();

  constructor(
    private readonly ctx: ControllerContext<NamespaceKey>,
    private readonly r: NamespaceReport<T>,
    private readonly timing: { minIntervalMs: number; clock: Clock },
  ) {
    this.watches = [watch(r.source, (_e, obj) => byNamespace(obj)), watch(GOVERNANCE_POLICIES, (_e, obj) => byNamespace(obj))];
    this.custom = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async reconcile(key: NamespaceKey): Promise<void> {
    const { namespace } = key;
    const wait = reportWriteDelay(this.lastWrite.get(namespace), this.timing.clock.now(), this.timing.minIntervalMs);
    if (wait > 0) {
      // The queue keeps one timer per key: the events of a burst share it.
      this.ctx.enqueue(key, wait);
      return;
    }
    this.lastWrite.delete(namespace);
    const policies = this.ctx.cache(GOVERNANCE_POLICIES).list(namespace);
    // Only namespaces with a policy have a report: the objects of others (forged audit Events
    // among them) are never read.
    if (policies.length === 0) return;
    const source = this.ctx.cache(this.r.source);
    const writes = this.r.plan(policies, source.list(namespace), source.truncated?.(namespace) ?? false);
    if (writes.length) this.lastWrite.set(namespace, this.timing.clock.now());
    for (const w of writes) {
      await this.custom
        .patchNamespacedCustomObjectStatus(
          {
            group: GROUP,
            version: VERSION,
            namespace,
            plural: KINDS.GovernancePolicy.plural,
            name: w.policy,
            body: { status: { [this.r.field]: w.value } },
          },
          mergePatch(),
        )
        .catch(ignoreNotFound);
    }
  }
}

/**
 * How long a namespace's report must wait before it may be written: 0 now, else the rest of the
 * minimum interval since the namespace's last write. Every event the report watches (a pod, an
 * audit Event) can change it, and each write is one patch per policy of the namespace: a rolling
 * update would write once per pod event. Waiting instead coalesces a burst into one write per interval; the write
 * after the wait reads the state then, so the last state is always written.
 */
export function reportWriteDelay(lastWriteAt: number | undefined, now: number, minIntervalMs: number): number {
  if (lastWriteAt === undefined) return 0;
  return Math.max(0, lastWriteAt + minIntervalMs - now);
}

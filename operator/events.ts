// Kubernetes Events on the objects the controllers reconcile (kubectl describe shows them). An Event
// that cannot be written is logged, never an error of the reconcile.
import * as k8s from '@kubernetes/client-node';
import { GROUP } from '../api/wellknown.js';
import { describeError } from '../lib/describe-error.js';
import type { Logger } from '../lib/log.js';
import type { KubeObject } from './kube-object.js';
import { FIELD_MANAGER } from './kube-writes.js';

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  private readonly core: k8s.CoreV1Api;

  /** `instance`: this replica, as reportingInstance. */
  constructor(
    kc: k8s.KubeConfig,
    private readonly instance: string,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  async event(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const now = this.now();
    const ns = obj.metadata.namespace ?? 'default';
    await this.core
      .createNamespacedEvent({
        namespace: ns,
        body: {
          metadata: { generateName: `${obj.metadata.name}.`, namespace: ns },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: obj.metadata.name,
            namespace: ns,
            uid: obj.metadata.uid,
            resourceVersion: obj.metadata.resourceVersion,
          },
          type,
          reason,
          message,
          source: { component: FIELD_MANAGER },
          reportingComponent: `${GROUP}/operator`,
          reportingInstance: this.instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err) => this.log.warn('could not record an event', { reason, object: obj.metadata.name, error: describeError(err) }));
  }
}

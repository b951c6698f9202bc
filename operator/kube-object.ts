// What the operator reads of any object it watches: name, namespace, spec and a status with
// conditions. Custom resources come back as this shape from the API.
import type * as k8s from '@kubernetes/client-node';
import type { Condition } from '../api/k8s.js';

export interface KubeObject extends k8s.KubernetesObject {
  metadata: k8s.V1ObjectMeta & { name: string; namespace?: string };
  spec?: unknown;
  status?: { conditions?: Condition[]; renderedHash?: string; observedGeneration?: number; configMap?: string };
}

// The typed keys controllers queue. A key names what one reconcile covers; its id is its identity in
// the work queue (two events for the same key coalesce).
import type { KubeObject } from './kube-object.js';

/** A namespace: its rendered ConfigMap, or its sidecar RBAC. */
export interface NamespaceKey {
  readonly namespace: string;
}

/** One namespaced object (an ApprovalRequest, an ApprovalChannel). */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

export const namespaceId = (k: NamespaceKey): string => k.namespace;

/** `<namespace>/<name>`: also the approval's id in Slack messages and in the post turns. */
export const objectId = (k: ObjectKey): string => `${k.namespace}/${k.name}`;

export const objectKey = (obj: KubeObject): ObjectKey => ({ namespace: obj.metadata.namespace!, name: obj.metadata.name });

/** The key back from an objectId (a namespace never contains "/"). */
export function objectKeyFromId(id: string): ObjectKey {
  const i = id.indexOf('/');
  return { namespace: id.slice(0, i), name: id.slice(i + 1) };
}

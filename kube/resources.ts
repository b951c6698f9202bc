// The resource types ThoughtGate reads and writes through kube/resource.ts, with the object
// shapes: client-node's types where they exist (type-only: the sidecar never loads client-node).
import type { V1ConfigMap, V1Namespace } from '@kubernetes/client-node';
import { APPROVAL_REQUEST_KIND } from '../api/approval-request.js';
import { KINDS } from '../api/kinds.js';
import { API_VERSION } from '../api/wellknown.js';
import { hasName, type KubeObject, type ResourceType } from './protocol.js';

export type ConfigMap = Omit<V1ConfigMap, 'metadata'> & KubeObject;
export type Namespace = Omit<V1Namespace, 'metadata'> & KubeObject;

/** An object of one of our CRDs: spec and status are checked by their users (zod schemas in api/). */
export type CustomObject = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };
export type ApprovalRequestObject = CustomObject;

export const CONFIG_MAPS: ResourceType = { apiVersion: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true };
export const NAMESPACES: ResourceType = { apiVersion: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false };
export const APPROVAL_REQUESTS: ResourceType = {
  apiVersion: API_VERSION,
  plural: APPROVAL_REQUEST_KIND.plural,
  kind: APPROVAL_REQUEST_KIND.kind,
  namespaced: true,
};
export const GOVERNANCE_POLICIES: ResourceType = {
  apiVersion: API_VERSION,
  plural: KINDS.GovernancePolicy.plural,
  kind: KINDS.GovernancePolicy.kind,
  namespaced: true,
};
export const APPROVAL_CHANNELS: ResourceType = {
  apiVersion: API_VERSION,
  plural: KINDS.ApprovalChannel.plural,
  kind: KINDS.ApprovalChannel.kind,
  namespaced: true,
};

const objOrAbsent = (x: unknown) => x === undefined || x === null || (typeof x === 'object' && !Array.isArray(x));

export function isConfigMap(v: unknown): v is ConfigMap {
  return hasName(v) && objOrAbsent((v as { data?: unknown }).data);
}

/** A named object whose spec and status, when present, are objects. */
export function isCustomObject(v: unknown): v is CustomObject {
  if (!hasName(v)) return false;
  const { spec, status } = v as { spec?: unknown; status?: unknown };
  return objOrAbsent(spec) && objOrAbsent(status);
}
export const isApprovalRequest = isCustomObject;

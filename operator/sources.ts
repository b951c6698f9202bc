// The resources the operator watches, one shared informer each (the manager starts them for the
// leader). Controllers name these in their watches; several controllers share one.
import type * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { GROUP, INJECT_ENABLED, LABELS, MANAGED_BY, VERSION } from '../api/wellknown.js';
import { SIDECAR_LABEL } from '../api/capture.js';
import { AUDIT_EVENT_FIELD_SELECTOR } from './audit-event-filter.js';
import type { StoreLimits } from '../kube/reflector-plan.js';
import { AUDIT_EVENT_LIMITS, keepAuditEvent } from './audit-event-filter.js';
import type { KubeObject } from './kube-object.js';

export interface Source<T extends k8s.KubernetesObject> {
  /** The informer's name (logs, `informer_restarts_total{resource}`). */
  name: string;
  /** The collection path the informer lists and watches (kube/'s reflector). */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** What the informer keeps of each object (null: left out, counted); see kube/reflector.ts. */
  transform?: (obj: T) => T | null;
  /** Bounds of the informer's cache. */
  limits?: StoreLimits;
  /** Not waited for by readiness: the operator runs without it (its CRD may not be installed). */
  optional?: boolean;
  /** Never set: carries the object type to watch() and cache(), so a controller reads what it watches. */
  readonly objectType?: T;
}

const custom = (plural: string, optional?: boolean): Source<KubeObject> => ({
  name: plural,
  path: `/apis/${GROUP}/${VERSION}/${plural}`,
  optional,
});

const MANAGED = `${LABELS.managedBy}=${MANAGED_BY}`;
const INJECTED = `${LABELS.inject}=${INJECT_ENABLED}`;

export const GOVERNANCE_POLICIES = custom(KINDS.GovernancePolicy.plural);
export const APPROVAL_CHANNELS = custom(KINDS.ApprovalChannel.plural);
/** A cluster without the ApprovalRequest CRD still renders policies: readiness does not wait for it. */
export const APPROVAL_REQUESTS = custom(KINDS.ApprovalRequest.plural, true);
/** People's decisions from kubectl; optional like ApprovalRequests (a cluster may lack the CRD). */
export const APPROVAL_DECISIONS = custom(KINDS.ApprovalDecision.plural, true);

/** The ConfigMaps the operator renders: an edit or deletion by anyone else is repaired. */
export const OWN_CONFIGMAPS: Source<k8s.V1ConfigMap> = {
  name: 'configmaps',
  path: '/api/v1/configmaps',
  labelSelector: MANAGED,
};

/** Namespaces labelled for injection: their sidecars get RBAC. */
export const INJECTED_NAMESPACES: Source<k8s.V1Namespace> = {
  name: 'namespaces',
  path: '/api/v1/namespaces',
  labelSelector: INJECTED,
};

/** Pods the webhook injected (it labels them): the capture report. Other pods are never listed. */
export const INJECTED_PODS: Source<k8s.V1Pod> = {
  name: 'pods',
  path: '/api/v1/pods',
  labelSelector: SIDECAR_LABEL,
};

/**
 * The sidecars' audit Events only, never the cluster's other Events: status.audit. Anyone who may
 * create Events can write one that passes the field selector (every agent's ServiceAccount can), so
 * the cache keeps only the fields the report reads of well-formed ones, and at most
 * AUDIT_EVENT_LIMITS of them (operator/audit-event-filter.ts).
 */
export const AUDIT_EVENTS: Source<k8s.CoreV1Event> = {
  name: 'events',
  path: '/api/v1/events',
  fieldSelector: AUDIT_EVENT_FIELD_SELECTOR,
  transform: keepAuditEvent as unknown as (obj: k8s.CoreV1Event) => k8s.CoreV1Event | null,
  limits: AUDIT_EVENT_LIMITS,
};

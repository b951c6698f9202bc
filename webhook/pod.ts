// The Pod shape the webhook reads and patches: client-node's types (type-only), as JSON.
import type * as k8s from '@kubernetes/client-node';
import type { ObjectMeta } from '../kube/protocol.js';

export type EnvVar = k8s.V1EnvVar;
export type VolumeMount = k8s.V1VolumeMount;
export type Container = k8s.V1Container;
export type Volume = k8s.V1Volume;
export type ResourceRequirements = k8s.V1ResourceRequirements;
/** An admitted pod as JSON: its timestamps are strings, so metadata is ObjectMeta on the wire. */
export type Pod = Omit<k8s.V1Pod, 'metadata'> & { metadata?: ObjectMeta };

// What `thoughtgate check` works on and what it produces. The checks are pure functions of a
// snapshot of the cluster read once (observe.ts); this file holds the shapes of both, with no I/O.
import type { KubeErrorCategory } from '../kube/protocol.js';

/** ok ✔, warn ‼ (the run still passes), fail ✖, skip (an earlier check failed, or nothing to check). */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable identifier (docs/check.md lists every one); per-object checks add `/<namespace>/<name>`. */
  id: string;
  group: string;
  status: CheckStatus;
  /** One line: what was found. */
  message: string;
  /** What to do about a warn or fail. */
  hint?: string;
  /** Objects the message is about (namespaces, pods, requests), when there are several. */
  items?: string[];
}

/** One read from the API server: its value, or why it could not be read. */
export type Read<T> = { ok: true; value: T } | { ok: false; error: string; category: KubeErrorCategory };

/** Plain shapes of what the checks read (only the fields they use; the API server sends more). */
export interface Meta {
  name: string;
  namespace?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
}
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}
export interface Obj<S = Record<string, unknown>, T = Record<string, unknown>> {
  metadata: Meta;
  spec?: S;
  status?: T;
}

export interface VersionInfo {
  major: string;
  minor: string;
  gitVersion: string;
}

export type Crd = Obj<
  { group: string; names: { plural: string; kind: string }; versions: Array<{ name: string; served: boolean; storage: boolean }> },
  { conditions?: Condition[]; storedVersions?: string[] }
>;

export type Deployment = Obj<
  {
    replicas?: number;
    template?: {
      spec?: {
        containers?: Array<{ name: string; args?: string[] }>;
        volumes?: Array<{ name: string; secret?: { secretName?: string } }>;
      };
    };
  },
  { observedGeneration?: number; replicas?: number; readyReplicas?: number; availableReplicas?: number; updatedReplicas?: number; conditions?: Condition[] }
>;

export type Lease = Obj<{ holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string }>;

export interface Secret {
  metadata: Meta;
  type?: string;
  data?: Record<string, string>;
}

export interface Webhook {
  name: string;
  clientConfig?: { caBundle?: string; service?: { name: string; namespace: string }; url?: string };
}
export interface WebhookConfiguration {
  metadata: Meta;
  webhooks?: Webhook[];
}

export type Namespace = Obj;
export interface ConfigMap {
  metadata: Meta;
  data?: Record<string, string>;
}
export type Custom = Obj<Record<string, unknown>, Record<string, unknown> & { conditions?: Condition[]; observedGeneration?: number }>;

/** One SelfSubjectAccessReview: may the user do `verb` on `resource`? */
export interface AccessQuestion {
  verb: string;
  group: string;
  resource: string;
  /** Only for namespaced resources. */
  namespace?: string;
  /** Why the installer needs it (shown with a refusal). */
  why: string;
}
export interface AccessAnswer extends AccessQuestion {
  allowed: boolean;
  /** The authorizer's reason or the error of the review itself. */
  reason?: string;
}

/** The API server's answer to the dry-run ApprovalDecision (decision-enforcement.ts); a refusal's `message` holds its Status's message. */
export type DecisionProbe = { accepted: true } | { accepted: false; status: number; message: string };

/** The installation's object names, as the operator Deployment's flags set them (operator defaults otherwise). */
export interface Installation {
  namespace: string;
  leaseName: string;
  /** false: --no-leader-election. */
  leaderElection: boolean;
  /** false: --no-webhook. */
  webhook: boolean;
  webhookConfigName: string;
  /** The Secret with the webhook's CA (operator-managed) or cert-manager's Secret (--webhook-cert-dir). */
  secretName: string | null;
  certManager: boolean;
}

/** Everything the pre-install checks read. */
export interface PreSnapshot {
  now: Date;
  namespace: string;
  version: Read<VersionInfo>;
  crds: Read<Crd[]>;
  webhookConfigs: Read<WebhookConfiguration[]>;
  /** Whether the install namespace exists (the chart with --create-namespace creates it). */
  namespaceExists: Read<boolean>;
  access: AccessAnswer[];
}

/** Everything the post-install checks read. */
export interface PostSnapshot {
  now: Date;
  namespace: string;
  version: Read<VersionInfo>;
  crds: Read<Crd[]>;
  deployment: Read<Deployment | null>;
  installation: Installation;
  lease: Read<Lease | null> | null;
  webhookConfigs: Read<WebhookConfiguration[]>;
  secret: Read<Secret | null> | null;
  namespaces: Read<Namespace[]>;
  policies: Read<Custom[]>;
  /** Every thoughtgate-config ConfigMap (all namespaces). */
  configMaps: Read<ConfigMap[]>;
  channels: Read<Custom[]>;
  requests: Read<Custom[]>;
  /** The ApprovalDecision identity policy and its binding (null: not installed). */
  decisionPolicy: Read<{ policy: unknown | null; binding: unknown | null }>;
  /** The answer to a dry-run ApprovalDecision in a name nobody has (decision-enforcement.ts). */
  decisionProbe: Read<DecisionProbe>;
}

/** Thresholds, from flags. */
export interface CheckSettings {
  /** Warn when the webhook certificate has less than this left (ms). */
  certWarnMs: number;
  /** Warn when an ApprovalRequest has been pending longer (ms). */
  approvalWarnMs: number;
}

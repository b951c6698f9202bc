// The custom resources of group thoughtgate.io/v1alpha1 and the ConfigMap the operator renders.
// crds/*.yaml are generated from these schemas (scripts/gen-crds.ts); a test keeps them equal.
import { z } from 'zod';
import { approvalChannelFields, ClusterApproversSchema, SlackAppTokenKeyField, SlackTargetFields } from './approval.js';
import { AuditStatusSchema } from './audit.js';
import { CaptureReportSchema } from './capture-state.js';
import { Name, policyFields } from './config.js';
import { formatIssues } from './issues.js';
import { ConditionSchema, LabelSelectorSchema } from './k8s.js';
import { API_VERSION } from './wellknown.js';

// ---------- GovernancePolicy ----------

/** GovernancePolicy.spec: the policy document plus which pods it governs and how it ranks. */
export const GovernancePolicySpecSchema = z.strictObject({
  /** Pods of this namespace the policy governs; empty or absent: all of them. */
  podSelector: LabelSelectorSchema().optional(),
  /** When several policies select a pod, the highest priority wins, then the name (alphabetical). */
  priority: z.number().int().min(-1000).max(1000).default(0),
  ...policyFields,
});
export type GovernancePolicySpec = z.infer<typeof GovernancePolicySpecSchema>;

export const GovernancePolicyStatusSchema = z.object({
  observedGeneration: z.number().int().optional(),
  conditions: z.array(ConditionSchema()).optional(),
  /** The ConfigMap this policy is rendered into. */
  configMap: z.string().optional(),
  /** Content hash of this policy as rendered (changes whenever what sidecars enforce changes). */
  renderedHash: z.string().optional(),
  /** Which pods of the namespace are captured (the same in every policy of the namespace; operator/capture-report-plan.ts). */
  capture: CaptureReportSchema().optional(),
  /** What audit mode forwarded that enforce would not have, from the sidecars' Events (operator/audit-report-plan.ts). */
  audit: AuditStatusSchema().optional(),
});

// ---------- ApprovalChannel ----------

export const SecretKeyRefSchema = z.strictObject({
  name: Name,
  key: z.string().min(1).default('token'),
});

export const ApprovalChannelSpecSchema = z
  .strictObject({
    slack: z.strictObject({ ...SlackTargetFields, tokenSecretRef: SecretKeyRefSchema, ...SlackAppTokenKeyField }),
    ...approvalChannelFields,
    /** Slack approvers, and in a cluster also Kubernetes users and groups (ApprovalDecisions). */
    approvers: ClusterApproversSchema,
  })
  .superRefine((c, ctx) => {
    const k = c.approvers.kubernetes;
    if (c.approvers.users.length + c.approvers.userGroups.length + (k ? k.users.length + k.groups.length : 0) === 0) {
      ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'list at least one approver: a Slack user or user group, or a Kubernetes user or group' });
    }
  });
export type ApprovalChannelSpec = z.infer<typeof ApprovalChannelSpecSchema>;

export const ApprovalChannelStatusSchema = z.object({
  observedGeneration: z.number().int().optional(),
  conditions: z.array(ConditionSchema()).optional(),
  team: z.string().optional(),
  botUser: z.string().optional(),
  channelName: z.string().optional(),
});

// ---------- The rendered sidecar config (ConfigMap thoughtgate-config, key config.yaml) ----------

/**
 * A policy's Cedar text as cedar-wasm parsed it when the operator validated it: what the sidecar
 * needs to build its closures (policy/cedar/direct/) without loading cedar-wasm. `textSha256` is
 * the SHA-256 (hex) of the text parsed (after the operator's \${VAR} validation substitution): a
 * sidecar whose substituted text differs compiles its own text instead. The text stays the source
 * of truth: requests the closures cannot represent are decided by cedar-wasm from it.
 */
export const RenderedCedarPolicySchema = z.strictObject({
  id: z.string().min(1),
  effect: z.enum(['permit', 'forbid']),
  approveChannel: z.string().min(1).optional(),
  index: z.number().int().nonnegative(),
  line: z.number().int().positive(),
  column: z.number().int().positive(),
  /** Cedar's JSON policy form (policyToJson). */
  json: z.record(z.string(), z.unknown()),
});
export type RenderedCedarPolicy = z.infer<typeof RenderedCedarPolicySchema>;

export const RenderedCedarSchema = z.strictObject({
  textSha256: z.string().regex(/^[0-9a-f]{64}$/),
  policies: z.array(RenderedCedarPolicySchema),
});
export type RenderedCedar = z.infer<typeof RenderedCedarSchema>;

export const RENDERED_CEDAR_VERSION = 1;

/** The ConfigMap's cedar.json (CONFIGMAP_CEDAR_KEY): each rendered policy's parsed Cedar, by policy name. */
export const RenderedCedarDocumentSchema = z.strictObject({
  version: z.literal(RENDERED_CEDAR_VERSION),
  policies: z.record(z.string(), RenderedCedarSchema),
});
export type RenderedCedarDocument = z.infer<typeof RenderedCedarDocumentSchema>;

/**
 * Reads cedar.json. Another version is not an error (null: compile the text, as without the key):
 * an operator newer than its sidecars may write one. Malformed content of this version is.
 */
export function parseRenderedCedar(text: string): { ok: true; doc: RenderedCedarDocument | null } | { ok: false; errors: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, errors: [`not JSON: ${(e as Error).message}`] };
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version !== RENDERED_CEDAR_VERSION) return { ok: true, doc: null };
  const r = RenderedCedarDocumentSchema.safeParse(raw);
  if (!r.success) return { ok: false, errors: formatIssues(r.error) };
  return { ok: true, doc: r.data };
}

export const RenderedPolicySchema = z.strictObject({
  name: z.string(),
  priority: z.number().int(),
  podSelector: LabelSelectorSchema().optional(),
  generation: z.number().int(),
  hash: z.string(),
  /**
   * The policy document exactly as written, \${VAR}s unresolved: each sidecar substitutes its own
   * environment and validates the result (PolicyDocumentSchema). Unvalidated here on purpose: a
   * URL such as https://\${HOST}:\${PORT}/mcp is only a URL once substituted.
   */
  spec: z.record(z.string(), z.unknown()),
});
export type RenderedPolicy = z.infer<typeof RenderedPolicySchema>;

export const RENDERED_KIND = 'SidecarConfig';

export const RenderedConfigSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(RENDERED_KIND),
  /** Valid policies of the namespace, in selection order: priority (high first), then name. */
  policies: z.array(RenderedPolicySchema),
});
export type RenderedConfig = z.infer<typeof RenderedConfigSchema>;

// Apart (api/kinds.ts) so that code needing only the names does not build every schema here.
export { KINDS } from './kinds.js';

export { ApprovalRequestSpecSchema, ApprovalRequestStatusSchema } from './approval-request.js';
export { ApprovalDecisionSpecSchema, ApprovalDecisionStatusSchema } from './approval-decision.js';

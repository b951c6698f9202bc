// The one configuration document. A person writes it in thoughtgate.yaml (standalone), in
// GovernancePolicy.spec (cluster), and the operator renders it into the thoughtgate-config ConfigMap.
// Objects are strict so that a misspelt key is an error instead of a silently ignored setting.
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** A strict object whose unknown-key error lists the keys that are allowed. */
function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} (allowed: ${allowed})` : undefined),
  });
}

export const ACTIONS = ['forward', 'deny', 'approve', 'policy'] as const;
export const Action = z.enum(ACTIONS, { error: `expected one of ${ACTIONS.join(', ')}` });
export type Action = z.infer<typeof Action>;

/** DNS-label style name: used in URLs (/mcp/<source>) and Kubernetes object names. */
export const Name = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lowercase letters, digits and "-", starting and ending with a letter or digit (at most 63)');

/** A duration such as "30s", "10m" or "1h30m"; kept as text so documents round-trip unchanged. */
export const Duration = z.string({ error: 'expected a duration such as "30s", "10m" or "1h30m" (a quoted string with a unit)' }).superRefine((s, ctx) => {
  const r = parseDuration(s);
  if (typeof r !== 'number') ctx.addIssue({ code: 'custom', message: r.error });
});

/** A duration that must not be zero (a zero timeout would mean none at all). */
export const PositiveDuration = Duration.superRefine((s, ctx) => {
  if (parseDuration(s) === 0) ctx.addIssue({ code: 'custom', message: 'must be greater than zero' });
});

/** Glob: `*` matches any run of characters (including "/"), `?` one character, `\` escapes. */
export const Glob = z.string().min(1, 'a glob must not be empty');
export const GlobList = z.union([Glob, z.array(Glob).min(1)], { error: 'expected a glob or a non-empty list of globs' });

export const ExposeSchema = strict({
  mode: z.enum(['all', 'allowlist', 'blocklist']).default('all'),
  tools: z.array(Glob).optional(),
  resources: z.array(Glob).optional(),
  prompts: z.array(Glob).optional(),
});
export type Expose = z.infer<typeof ExposeSchema>;

export const SourceTimeoutsSchema = strict({
  connect: PositiveDuration.default('5s'),
  response: PositiveDuration.default('60s'),
});

export const SourceSchema = strict({
  name: Name,
  url: z.string().superRefine((s, ctx) => {
    let u: URL;
    try { u = new URL(s); } catch { ctx.addIssue({ code: 'custom', message: `not a URL: "${s}"` }); return; }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `must be an http or https URL, got "${u.protocol}"` });
    if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials; use headers with ${VAR} instead' });
    if (u.hash) ctx.addIssue({ code: 'custom', message: 'must not have a #fragment' });
  }),
  expose: ExposeSchema.default({ mode: 'all' }),
  headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not a valid HTTP header name'), z.string()).optional(),
  timeouts: SourceTimeoutsSchema.default({ connect: '5s', response: '60s' }),
});
export type Source = z.infer<typeof SourceSchema>;

export const RuleMatchSchema = strict({
  tool: GlobList.optional(),
  resource: GlobList.optional(),
  prompt: GlobList.optional(),
  method: GlobList.optional(),
  source: GlobList.optional(),
}).superRefine((m, ctx) => {
  const targets = (['tool', 'resource', 'prompt'] as const).filter((k) => m[k] !== undefined);
  if (targets.length > 1) ctx.addIssue({ code: 'custom', message: `a rule matches one kind of target; it names ${targets.join(' and ')}` });
});
export type RuleMatch = z.infer<typeof RuleMatchSchema>;

export const ApprovalRefSchema = strict({
  channel: Name,
  timeout: Duration.optional(),
});

export const RuleSchema = strict({
    name: z.string().min(1).max(128).optional(),
    match: RuleMatchSchema.default({}),
    action: Action,
    approval: ApprovalRefSchema.optional(),
    reason: z.string().max(256).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.action === 'approve' && !r.approval) {
      ctx.addIssue({ code: 'custom', path: ['approval'], message: 'a rule with action "approve" needs approval.channel' });
    }
    if (r.action !== 'approve' && r.approval) {
      ctx.addIssue({ code: 'custom', path: ['approval'], message: 'approval is only used with action "approve"' });
    }
  });
export type Rule = z.infer<typeof RuleSchema>;

export const CedarSchema = strict({
  policies: z.string(),
});

export const IdentitySchema = strict({
  namespace: z.string().min(1).default('default'),
  serviceAccount: z.string().min(1).default('default'),
  pod: z.string().min(1).default('standalone'),
  labels: z.record(z.string(), z.string()).default({}),
});
export type Identity = z.infer<typeof IdentitySchema>;

export const EgressSchema = strict({
  allow: z.array(Glob).default([]),
  deny: z.array(Glob).default([]),
});

export const LimitsSchema = strict({
  maxBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  maxFilteredResponseBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(16 * 1024 * 1024),
});

export const ServerSchema = strict({
  allowedOrigins: z.array(z.string()).default([]),
});

/** The action for what no rule matched. Not `approve`: that needs a channel, which only a rule names. */
export const DefaultAction = z.enum(['forward', 'deny', 'policy'], {
  error: 'expected one of forward, deny, policy (for approval by default, end the rules with `match: {}` and `action: approve`)',
});

/** Fields shared by thoughtgate.yaml and GovernancePolicy.spec. */
export const policyFields = {
  sources: z.array(SourceSchema).default([]),
  rules: z.array(RuleSchema).default([]),
  defaultAction: DefaultAction.default('deny'),
  cedar: CedarSchema.optional(),
  egress: EgressSchema.default({ allow: [], deny: [] }),
  limits: LimitsSchema.default({ maxBodyBytes: 4 * 1024 * 1024, maxFilteredResponseBytes: 16 * 1024 * 1024 }),
  server: ServerSchema.default({ allowedOrigins: [] }),
};

function documentChecks(doc: { sources: { name: string }[]; rules: { action: string }[]; defaultAction: string; cedar?: unknown }, ctx: z.RefinementCtx): void {
  if (!doc.cedar) {
    doc.rules.forEach((r, i) => {
      if (r.action === 'policy') ctx.addIssue({ code: 'custom', path: ['rules', i, 'action'], message: 'action "policy" asks Cedar, but there is no cedar section (add cedar.policies)' });
    });
    if (doc.defaultAction === 'policy') ctx.addIssue({ code: 'custom', path: ['defaultAction'], message: 'defaultAction "policy" asks Cedar, but there is no cedar section (add cedar.policies)' });
  }
  const seen = new Set<string>();
  doc.sources.forEach((s, i) => {
    if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `duplicate source name "${s.name}"` });
    seen.add(s.name);
  });
}

/** The policy document as it governs one sidecar. */
export const PolicyDocumentSchema = strict(policyFields).superRefine(documentChecks);
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;

/** thoughtgate.yaml for the standalone sidecar: the policy document plus the workload identity. */
export const ConfigFileSchema = strict({ ...policyFields, identity: IdentitySchema.optional() }).superRefine(documentChecks);
export type ConfigFile = z.infer<typeof ConfigFileSchema>;
export type ConfigFileInput = z.input<typeof ConfigFileSchema>;

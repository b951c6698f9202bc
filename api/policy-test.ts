// The policy test file `thoughtgate test` reads (docs/policy-testing.md): what to load (a
// thoughtgate.yaml or GovernancePolicy manifests) and cases, each one call with the decision expected.
import { z } from 'zod';
import { ERRORS, type ErrorName } from './errors.js';
import { Duration, Name } from './primitives.js';

export const EXPECTED_DECISIONS = ['forward', 'deny', 'hidden', 'approve'] as const;
export type ExpectedDecision = (typeof EXPECTED_DECISIONS)[number];

const ERROR_NAMES = Object.keys(ERRORS) as ErrorName[];
const BY_CODE = new Map<number, ErrorName>(Object.entries(ERRORS).map(([name, e]) => [e.code, name as ErrorName]));

/** An error by name (`DENIED_BY_RULE`) or JSON-RPC code (`-32003`), read as its name. */
export const ExpectedError = z.union([z.string(), z.number().int()]).transform((v, ctx): ErrorName => {
  const name = typeof v === 'number' ? BY_CODE.get(v) : ERROR_NAMES.find((n) => n === v);
  if (name) return name;
  ctx.addIssue({ code: 'custom', message: `unknown error ${JSON.stringify(v)}: use a name or code of docs/errors.md (e.g. DENIED_BY_RULE or -32003)` });
  return z.NEVER;
});

/** The workload a call comes from, as the sidecar knows it; unset fields come from the file, then the config. */
export const IdentityOverrideSchema = z.strictObject({
  namespace: z.string().min(1).optional(),
  serviceAccount: z.string().min(1).optional(),
  pod: z.string().min(1).optional(),
  /** The pod's labels (they replace, not merge with, labels set further out). */
  labels: z.record(z.string(), z.string()).optional(),
});
export type IdentityOverride = z.infer<typeof IdentityOverrideSchema>;

/**
 * An A2A call as a case describes it (the source must be an A2A agent): the sidecar's own reading
 * (describeA2a) sees the message built from these in the version and binding's wire shape.
 */
export const A2aCallSchema = z.strictObject({
  /** Default: told by the method's spelling (message/send is 0.3), else 1.0. */
  version: z.enum(['0.3', '1.0']).optional(),
  /** Default jsonrpc. */
  binding: z.enum(['jsonrpc', 'rest']).optional(),
  /** Put where the source's a2a.skillFrom reads it. */
  skill: z.string().min(1).optional(),
  /** The message's metadata. */
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** The request's own metadata (params.metadata). */
  requestMetadata: z.record(z.string(), z.unknown()).optional(),
  /** One text part. */
  text: z.string().optional(),
  /** The parts as sent, in the version and binding's shape (instead of text). */
  parts: z.array(z.unknown()).optional(),
  /** 1.0: the tenant. */
  tenant: z.string().min(1).optional(),
  /** The task a task method (GetTask, CancelTask…) or a continued message names. */
  taskId: z.string().min(1).optional(),
  /** The A2A-Extensions header: the extension URIs asked for. */
  extensions: z.array(z.string()).optional(),
});
export type A2aCallSpec = z.infer<typeof A2aCallSchema>;
/** What a2a may say beside `params` (the rest is in params). */
const A2A_WITH_PARAMS = new Set(['version', 'binding', 'extensions']);

const Time = z.iso.datetime({ offset: true, error: 'expected an RFC 3339 time, e.g. 2026-12-24T09:00:00Z' });

export const PolicyTestCaseSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    identity: IdentityOverrideSchema.optional(),
    /** A source of the config; default the file's, or the only source. */
    source: z.string().min(1).optional(),
    /** Default: tools/call for a tool, resources/read for a resource, prompts/get for a prompt. */
    method: z.string().min(1).optional(),
    tool: z.string().optional(),
    /** A resource URI as an agent would send it: it is put in canonical form as the sidecar does. */
    resource: z.string().optional(),
    prompt: z.string().optional(),
    arguments: z.unknown().optional(),
    /** The message's params as sent, instead of tool/resource/prompt/arguments (any method). */
    params: z.unknown().optional(),
    /** An A2A call (default method SendMessage): its version, binding, skill, message… */
    a2a: A2aCallSchema.optional(),
    /** The time Cedar sees (context.time); default the file's, else now. */
    time: Time.optional(),
    expect: z.enum(EXPECTED_DECISIONS, { error: `expected one of ${EXPECTED_DECISIONS.join(', ')}` }),
    /** What the sidecar does after the enforcement step: in audit, `forward` where `expect` is deny, hidden or approve. Default: `expect`. */
    enforced: z.enum(EXPECTED_DECISIONS, { error: `expected one of ${EXPECTED_DECISIONS.join(', ')}` }).optional(),
    /** The rule that decides: its name, `rules[<index>]`, or `defaultAction`. */
    rule: z.string().min(1).optional(),
    /** The Cedar policy ids that determine the decision, in any order. */
    cedarPolicies: z.array(z.string().min(1)).optional(),
    /** approve: the approval channel. */
    channel: z.string().min(1).optional(),
    /** approve: how long the call waits for a human (the rule's timeout, else approvals.defaultTimeout). */
    timeout: Duration.optional(),
    /** deny: the JSON-RPC error the agent gets. */
    error: ExpectedError.optional(),
    /** Cluster: the GovernancePolicy that selects the workload. */
    governancePolicy: z.string().min(1).optional(),
  })
  .superRefine((c, ctx) => {
    const targets = (['tool', 'resource', 'prompt'] as const).filter((k) => c[k] !== undefined);
    if (targets.length > 1)
      ctx.addIssue({ code: 'custom', path: [targets[1]!], message: `name one of tool, resource or prompt, not ${targets.join(' and ')}` });
    if (c.params !== undefined) {
      for (const k of [...targets, ...(c.arguments !== undefined ? ['arguments' as const] : [])])
        ctx.addIssue({ code: 'custom', path: [k], message: `"${k}" and "params" exclude each other: params is the message's params as sent` });
      if (c.method === undefined) ctx.addIssue({ code: 'custom', path: ['params'], message: 'with "params", name the "method"' });
    } else if (targets.length === 0 && c.method === undefined && c.a2a === undefined) {
      ctx.addIssue({ code: 'custom', path: ['expect'], message: 'name a tool, resource or prompt, a method, or an a2a call' });
    }
    if (c.a2a !== undefined) {
      for (const k of [...targets, ...(c.arguments !== undefined ? ['arguments' as const] : [])])
        ctx.addIssue({ code: 'custom', path: [k], message: `"${k}" is MCP's: an a2a call names a skill, metadata and parts` });
      if (c.a2a.text !== undefined && c.a2a.parts !== undefined)
        ctx.addIssue({ code: 'custom', path: ['a2a', 'parts'], message: '"text" and "parts" exclude each other' });
      if (c.params !== undefined)
        for (const k of Object.keys(c.a2a).filter((k) => !A2A_WITH_PARAMS.has(k)))
          ctx.addIssue({
            code: 'custom',
            path: ['a2a', k],
            message: `with "params", a2a may only say ${[...A2A_WITH_PARAMS].join(', ')}: "${k}" is in params`,
          });
    }
    const only = (key: 'channel' | 'timeout' | 'error', decision: ExpectedDecision) => {
      if (c[key] !== undefined && c.expect !== decision) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" applies only to expect: ${decision}` });
    };
    only('channel', 'approve');
    only('timeout', 'approve');
    only('error', 'deny');
    if (c.expect === 'hidden' && (c.rule !== undefined || c.cedarPolicies !== undefined))
      ctx.addIssue({
        code: 'custom',
        path: [c.rule !== undefined ? 'rule' : 'cedarPolicies'],
        message: 'a hidden target is decided by gate 1: no rule or Cedar policy',
      });
  });
export type PolicyTestCase = z.infer<typeof PolicyTestCaseSchema>;

export const PolicyTestFileSchema = z
  .strictObject({
    /** A thoughtgate.yaml, relative to this file. */
    config: z.string().min(1).optional(),
    /** GovernancePolicy manifests (and the namespace's ApprovalChannels), relative to this file. */
    policy: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** ApprovalChannels that exist in the namespace besides those in the manifests (names). */
    approvalChannels: z.array(Name).optional(),
    /** Values for ${VAR} in the config or policy; nothing else of the environment is used. */
    env: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
    /** Defaults for every case. */
    identity: IdentityOverrideSchema.optional(),
    source: z.string().min(1).optional(),
    time: Time.optional(),
    cases: z.array(PolicyTestCaseSchema).min(1, 'list at least one case'),
  })
  .superRefine((f, ctx) => {
    if ((f.config === undefined) === (f.policy === undefined))
      ctx.addIssue({ code: 'custom', path: [], message: 'name either "config" (a thoughtgate.yaml) or "policy" (GovernancePolicy manifests)' });
    if (f.approvalChannels !== undefined && f.policy === undefined)
      ctx.addIssue({ code: 'custom', path: ['approvalChannels'], message: 'approvalChannels go with "policy"; a thoughtgate.yaml lists its own' });
  });
export type PolicyTestFile = z.infer<typeof PolicyTestFileSchema>;

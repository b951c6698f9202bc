// Generates crds/*.yaml (apiextensions.k8s.io/v1 CustomResourceDefinitions) from the zod schemas in
// api/crds.ts, so the API server and the operator validate against one source. api/crds.test.ts
// regenerates in memory and fails when crds/ differs.
//
// Run from the repository root: `make crds` (builds dist/ and runs `node dist/scripts/gen-crds.js`,
// which writes crds/; with `--check` it only compares and exits 1 on drift).
//
// How zod's JSON Schema (io: 'input') becomes a Kubernetes *structural* schema (toStructural):
// - `additionalProperties: false` is dropped (Kubernetes forbids it next to `properties`). Unknown
//   fields are still refused: kubectl's default server-side field validation (Strict) reports them
//   as `unknown field "spec.…"`; without it they are pruned, never stored.
// - Defaults become CRD defaults, which the API server applies on write; fields with a default
//   are not `required`. Enums, patterns, min/max lengths, items and values are kept.
// - A map is `additionalProperties: {type: string}`; a constrained key (propertyNames) becomes a
//   CEL rule on the keys. `T | null` becomes `nullable: true`. A map of anything
//   (`z.record(z.string(), z.unknown())`, ApprovalRequest arguments) is an object with
//   `x-kubernetes-preserve-unknown-fields`: stored as given, and invisible to CEL.
// - `string | string[]` (GlobList) has no structural form: see unionOfStringAndList. Any other
//   union, $ref, or keyword without a structural equivalent throws, so it is mapped deliberately.
// - zod refinements (superRefine) are invisible in JSON Schema; CEL_EXTRAS restates the ones worth
//   catching at `kubectl apply` time, keyed by the zod schema object so every use inherits them.
//
// Known gaps between zod (what the operator and sidecar enforce) and these CRDs:
// - cedar.policies is only parsed by the operator; a syntax error shows in status (Valid=False,
//   with its position), not at apply time.
// - approval.channel naming an ApprovalChannel that does not exist is an operator-side check.
// - "At most one of tool, resource, prompt" is enforced, but with the API server's generic
//   message (see RuleMatchSchema below). GlobList values of the wrong JSON type (number, object,
//   boolean) are refused with terse messages.
// - URLs: zod parses with WHATWG `new URL()`; the CRD checks the text with regular expressions
//   (http(s) scheme and a host, no user:password@, no #fragment). `https://${HOST}/mcp` passes both;
//   spellings WHATWG repairs (e.g. "http:host" without slashes, leading spaces) are refused by the
//   CRD only. Slack apiUrl: zod's .url() vs CEL isURL() (Go's url.ParseRequestURI) plus a
//   scheme; they can differ on unusual characters.
// - ${VAR} is substituted after these checks in both; the operator validates again after it.
// - Durations: the grammar of api/duration.ts; zod trims Unicode whitespace, RE2's \s is ASCII, and
//   a sub-millisecond duration that rounds to 0 is refused by zod only.
// - Size bounds exist only in the CRD (CEL cost estimation needs them, see CEL_EXTRAS): at most 64
//   sources, 1024 rules, 64 headers per source, 2048-character URLs, 64-character durations.
// - The CRD requires ApprovalChannel names to be DNS labels (≤63), because approval.channel (a
//   DNS label) refers to them; zod never sees object names.
// - Source header names are checked by zod only: header values are `string | SecretValue`, an
//   untyped node, and the API server builds no CEL type for a map of those (so no rule on its keys).
//   Header values: an object must be {valueFrom: {secretKeyRef}, prefix}; valueFrom.file and .env
//   are unknown fields in the CRD (cluster policies may not use them), other unknown keys next to
//   valueFrom are kept by the API server and refused by the operator. Secret keys "." and "..*"
//   are refused by zod only.
// - Status is not validated by zod; conditions are a list-map keyed by type (the metav1.Condition
//   convention: server-side apply merges them per type).
import { readFileSync, realpathSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { SlackTargetFields } from '../api/approval.js';
import { A2A_PASSTHROUGH, A2aSourceSchema, Duration, policyFields, PositiveDuration, RuleMatchSchema, RuleSchema, SourceSchema } from '../api/config.js';
import {
  ApprovalChannelSpecSchema,
  ApprovalDecisionSpecSchema,
  ApprovalDecisionStatusSchema,
  ApprovalChannelStatusSchema,
  ApprovalRequestSpecSchema,
  ApprovalRequestStatusSchema,
  GovernancePolicySpecSchema,
  GovernancePolicyStatusSchema,
  KINDS,
} from '../api/crds.js';
import { TERMINAL_PHASES } from '../api/approval-request.js';
import { DECISION_POLICY_NAME, decisionPolicyObjects } from '../api/approval-decision.js';
import { LabelSelectorRequirementSchema } from '../api/k8s.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import { stringify as stringifyYaml } from 'yaml';

// ---------- Kubernetes schema types (the subset we emit) ----------

export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** What a structural schema allows inside not/anyOf: constraints, never types or shapes. */
export interface ValueValidation {
  required?: string[];
  enum?: unknown[];
  anyOf?: ValueValidation[];
}

/** apiextensions.k8s.io/v1 JSONSchemaProps, as far as these CRDs use it. */
export interface K8sSchema {
  description?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  nullable?: boolean;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  exclusiveMinimum?: boolean;
  maximum?: number;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  items?: K8sSchema;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  minProperties?: number;
  maxProperties?: number;
  properties?: Record<string, K8sSchema>;
  required?: string[];
  additionalProperties?: K8sSchema;
  /** Value validation only: structural schemas allow no type, properties or items inside. */
  not?: ValueValidation;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-validations'?: CelRule[];
}

/** Output key order of a schema node: fixed, so the YAML is byte-stable. */
const KEY_ORDER: readonly (keyof K8sSchema)[] = [
  'description',
  'type',
  'format',
  'nullable',
  'enum',
  'default',
  'minimum',
  'exclusiveMinimum',
  'maximum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'items',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'minProperties',
  'maxProperties',
  'properties',
  'required',
  'additionalProperties',
  'not',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-validations',
];

/** Formats the API server knows; others would be ignored there, so we refuse them here. */
const K8S_FORMATS = new Set(['uri', 'email', 'hostname', 'ipv4', 'ipv6', 'uuid', 'date', 'date-time', 'byte', 'int32', 'int64']);

// zod's z.number().int() without bounds emits the safe-integer range; it says nothing useful here.
const SAFE_INT = Number.MAX_SAFE_INTEGER;

type JsonNode = Record<string, unknown>;

// ---------- CEL helpers ----------

/** A CEL string literal for `s`: raw when possible, so regexes read as written. */
export function celString(s: string): string {
  if (!s.includes("'") && !s.includes('\n')) return `r'${s}'`;
  if (!s.includes('"') && !s.includes('\n')) return `r"${s}"`;
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
}

const rule = (r: string, message: string, more: Omit<CelRule, 'rule' | 'message'> = {}): CelRule => ({ rule: r, message, ...more });

// ---------- What zod cannot say: CEL rules and size bounds, by zod schema ----------

/** Regular expressions of the CEL rules; RE2 syntax that JavaScript reads the same way, except
 * the (?i) flag. api/crds.test.ts checks them against the zod schemas they restate. */
export const PATTERNS = {
  duration: '^\\s*([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+\\s*$',
  zeroDuration: '^\\s*(0+(\\.0+)?(ms|s|m|h|d))+\\s*$',
  httpUrl: '^(?i)https?://[^/?#]',
  urlCredentials: '^[^/?#]*//[^/?#]*@',
  urlFragment: '#.',
  dnsLabel: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
} as const;

/**
 * Added to the JSON Schema of these zod schemas (and so to every field that uses them). Bounds
 * are there for CEL cost estimation: the API server refuses a CRD whose rules could cost too
 * much on the largest object the schema allows. Measured on kube-apiserver 1.33, each bound
 * here is needed: without it the estimate exceeds the per-rule budget (Duration maxLength: 20x,
 * url maxLength: 10x, headers maxProperties: 30x, sources maxItems: >100x; sources maxItems 1000
 * still 3.2x for the uniqueness rule); without rules maxItems the nested rules' total exceeds the
 * budget for the whole schema (approval.timeout: 27x).
 */
const CEL_EXTRAS = new Map<z.core.$ZodType, Partial<K8sSchema>>([
  // api/duration.ts, restated: numbers with units, nothing else.
  [
    Duration,
    {
      maxLength: 64,
      'x-kubernetes-validations': [
        rule(`self.matches(${celString(PATTERNS.duration)})`, 'expected a duration such as "30s", "10m" or "1h30m" (a number with a unit: ms, s, m, h, d)'),
      ],
    },
  ],
  // Inherits Duration's rules (extras follow zod's refinement chain, see extrasFor).
  [
    PositiveDuration,
    {
      'x-kubernetes-validations': [rule(`!self.matches(${celString(PATTERNS.zeroDuration)})`, 'must be greater than zero')],
    },
  ],
  [
    SourceSchema.shape.url,
    {
      maxLength: 2048,
      'x-kubernetes-validations': [
        rule(`self.matches(${celString(PATTERNS.httpUrl)})`, 'must be an http or https URL, e.g. https://mcp.example.com/mcp'),
        rule(`!self.matches(${celString(PATTERNS.urlCredentials)})`, 'must not carry credentials; use headers with ${VAR} instead'),
        rule(`!self.matches(${celString(PATTERNS.urlFragment)})`, 'must not have a #fragment'),
      ],
    },
  ],
  [
    SourceSchema.shape.headers,
    {
      maxProperties: 64,
      description:
        'Headers sent upstream on every call to this source (they win over the agent\'s). A value is literal text (${VAR} is substituted from the sidecar\'s environment) or a credential from a Secret: {valueFrom: {secretKeyRef: {name, key}}, prefix: "Bearer "}. The Secret is mounted into the sidecar container only, never the app; the rendered ConfigMap keeps the reference, never the value; rotation is picked up without a restart. valueFrom.file and valueFrom.env are refused here (standalone thoughtgate.yaml only).',
    },
  ],
  [
    SlackTargetFields.apiUrl.unwrap(),
    {
      'x-kubernetes-validations': [rule("isURL(self) && url(self).getScheme() != ''", 'must be an absolute URL such as https://slack.com/api/')],
    },
  ],
  [
    policyFields.sources,
    {
      maxItems: 64,
      // A messageExpression naming the duplicate was refused: "estimated messageExpression cost
      // exceeds budget by factor of more than 100x", even with maxItems 4.
      'x-kubernetes-validations': [rule('self.all(s, self.exists_one(t, t.name == s.name))', 'source names must be unique')],
    },
  ],
  [policyFields.rules, { maxItems: 1024 }],
  [
    RuleSchema,
    {
      'x-kubernetes-validations': [
        rule("self.action != 'approve' || has(self.approval)", 'a rule with action "approve" needs approval.channel', {
          fieldPath: '.approval',
          reason: 'FieldValueRequired',
        }),
        rule("!has(self.approval) || self.action == 'approve'", 'approval is only used with action "approve"', {
          fieldPath: '.approval',
          reason: 'FieldValueForbidden',
        }),
      ],
    },
  ],
  // "At most one of tool, resource, prompt" cannot be CEL: those fields are GlobLists, which have
  // no type in the schema, and the API server gives CEL no access to untyped fields ("undefined
  // field 'tool'"). Plain OpenAPI can say it; its message is only `"spec.rules[0].match" must not
  // validate the schema (not)`, hence the description (kubectl explain).
  [
    RuleMatchSchema,
    {
      description:
        'Which requests a rule applies to; every field given must match. A rule matches one kind of target: name at most one of tool, resource, prompt and skill.',
      not: {
        anyOf: [
          { required: ['tool', 'resource'] },
          { required: ['tool', 'prompt'] },
          { required: ['prompt', 'resource'] },
          { required: ['skill', 'tool'] },
          { required: ['skill', 'resource'] },
          { required: ['skill', 'prompt'] },
        ],
      },
    },
  ],
  // SourceSchema's superRefine (protocol ↔ a2a block ↔ expose kinds), restated.
  [
    SourceSchema,
    {
      'x-kubernetes-validations': [
        rule("!has(self.a2a) || (has(self.protocol) && self.protocol == 'a2a')", 'the a2a block is only used with protocol: a2a', { fieldPath: '.a2a' }),
        rule(
          "!has(self.protocol) || self.protocol != 'a2a' || has(self.a2a)",
          'protocol a2a needs an a2a block naming its interfaces (a2a.jsonrpc and/or a2a.rest)',
          {
            fieldPath: '.a2a',
            reason: 'FieldValueRequired',
          },
        ),
        rule(
          "!has(self.protocol) || self.protocol != 'a2a' || !has(self.expose) || (!has(self.expose.tools) && !has(self.expose.resources) && !has(self.expose.prompts))",
          'expose.tools, expose.resources and expose.prompts are for MCP sources; an a2a source exposes skills (expose.skills)',
          { fieldPath: '.expose' },
        ),
        rule("!has(self.protocol) || self.protocol != 'a2a' || !has(self.auth) || self.auth.mode != 'passthrough'", A2A_PASSTHROUGH, {
          fieldPath: '.auth.mode',
        }),
        rule(
          "(has(self.protocol) && self.protocol == 'a2a') || !has(self.expose) || !has(self.expose.skills)",
          'expose.skills is for A2A sources (protocol: a2a)',
          {
            fieldPath: '.expose.skills',
          },
        ),
      ],
    },
  ],
  [
    A2aSourceSchema,
    {
      'x-kubernetes-validations': [
        rule('has(self.jsonrpc) || has(self.rest)', 'an a2a block needs at least one interface: jsonrpc (the JSON-RPC path) or rest (the HTTP+JSON base path)'),
        rule('!has(self.jsonrpc) || !has(self.rest) || self.jsonrpc != self.rest', 'jsonrpc and rest must be different paths', { fieldPath: '.rest' }),
      ],
    },
  ],
  // A2aPath's refinements (no "." or ".." segment, nothing under /.well-known), restated; the
  // regex (charset, single "/") is in the schema already.
  [
    A2aSourceSchema.shape.jsonrpc.unwrap(),
    {
      'x-kubernetes-validations': [
        rule(`!self.matches(${celString('(^|/)[.][.]?(/|$)')})`, 'no "." or ".." segments'),
        rule("self != '/.well-known' && !self.startsWith('/.well-known/')", 'not under /.well-known/ (the agent card lives there)'),
      ],
    },
  ],
  // versions: zod refuses a repeated version (superRefine); the API server does with a set.
  [A2aSourceSchema.shape.versions.unwrap(), { 'x-kubernetes-list-type': 'set', maxItems: 2 }],
  [
    LabelSelectorRequirementSchema(),
    {
      'x-kubernetes-validations': [
        rule("!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)", 'operators In and NotIn need at least one value', {
          messageExpression: "'operator ' + self.operator + ' needs at least one value'",
          fieldPath: '.values',
          reason: 'FieldValueRequired',
        }),
        rule("self.operator in ['In', 'NotIn'] || !has(self.values) || size(self.values) == 0", 'operators Exists and DoesNotExist take no values', {
          messageExpression: "'operator ' + self.operator + ' takes no values'",
          fieldPath: '.values',
          reason: 'FieldValueForbidden',
        }),
      ],
    },
  ],
  // PolicyDocumentSchema's document checks (the spec schema itself only has the fields).
  [
    GovernancePolicySpecSchema,
    {
      'x-kubernetes-validations': [
        rule(
          "has(self.cedar) || !has(self.rules) || !self.rules.exists(r, r.action == 'policy')",
          'a rule with action "policy" asks Cedar, but there is no cedar section (add cedar.policies)',
          { fieldPath: '.rules' },
        ),
        rule(
          "has(self.cedar) || !has(self.defaultAction) || self.defaultAction != 'policy'",
          'defaultAction "policy" asks Cedar, but there is no cedar section (add cedar.policies)',
          { fieldPath: '.defaultAction' },
        ),
      ],
    },
  ],
  [
    ApprovalChannelSpecSchema,
    {
      'x-kubernetes-validations': [
        rule(
          '(has(self.approvers.users) ? size(self.approvers.users) : 0) + (has(self.approvers.userGroups) ? size(self.approvers.userGroups) : 0) + ' +
            '(has(self.approvers.kubernetes) ? (has(self.approvers.kubernetes.users) ? size(self.approvers.kubernetes.users) : 0) + ' +
            '(has(self.approvers.kubernetes.groups) ? size(self.approvers.kubernetes.groups) : 0) : 0) > 0',
          'list at least one approver: a Slack user or user group, or a Kubernetes user or group',
          { fieldPath: '.approvers', reason: 'FieldValueRequired' },
        ),
      ],
    },
  ],
  // metav1.Condition convention: one entry per type, merged per entry by server-side apply.
  [GovernancePolicyStatusSchema.shape.conditions.unwrap(), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }],
  [ApprovalChannelStatusSchema.shape.conditions.unwrap(), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }],
  [ApprovalRequestStatusSchema().shape.conditions.unwrap(), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }],
  // ApprovalRequest: what a sidecar asked for never changes; the two things a sidecar may do to
  // its request later (cancel, mark executing) only go one way. `arguments` cannot be covered:
  // CEL does not see inside a preserve-unknown-fields object; requestHash (immutable) binds them.
  [
    ApprovalRequestSpecSchema(),
    {
      'x-kubernetes-validations': [
        rule(
          'self.channel == oldSelf.channel && self.workload == oldSelf.workload && self.source == oldSelf.source && self.method == oldSelf.method && ' +
            'self.tool == oldSelf.tool && self.requestHash == oldSelf.requestHash && self.taskId == oldSelf.taskId && self.reason == oldSelf.reason && ' +
            'self.expiresAt == oldSelf.expiresAt && has(self.mcpSessionId) == has(oldSelf.mcpSessionId) && (!has(self.mcpSessionId) || self.mcpSessionId == oldSelf.mcpSessionId) && ' +
            'has(self.owner) == has(oldSelf.owner) && (!has(self.owner) || self.owner == oldSelf.owner) && ' +
            'has(self.protocol) == has(oldSelf.protocol) && (!has(self.protocol) || self.protocol == oldSelf.protocol) && ' +
            'has(self.a2a) == has(oldSelf.a2a) && (!has(self.a2a) || self.a2a == oldSelf.a2a)',
          'spec is immutable, except that cancelRequested may become true and executionStartedAt may be set once',
        ),
        rule(
          '!(has(oldSelf.cancelRequested) && oldSelf.cancelRequested) || (has(self.cancelRequested) && self.cancelRequested)',
          'cancelRequested cannot be taken back',
          { fieldPath: '.cancelRequested', reason: 'FieldValueForbidden' },
        ),
        rule(
          '!has(oldSelf.executionStartedAt) || (has(self.executionStartedAt) && self.executionStartedAt == oldSelf.executionStartedAt)',
          'executionStartedAt is set once and never changes',
          { fieldPath: '.executionStartedAt', reason: 'FieldValueForbidden' },
        ),
      ],
    },
  ],
  [ApprovalRequestSpecSchema().shape.requestHash, { maxLength: 64 }],
  [ApprovalRequestSpecSchema().shape.expiresAt, { format: 'date-time', maxLength: 64 }],
  [ApprovalRequestSpecSchema().shape.executionStartedAt.unwrap(), { format: 'date-time', maxLength: 64 }],
  // Bounds for the cost of the root rules (below) that compare these.
  [ApprovalRequestStatusSchema().shape.decidedAt.unwrap(), { format: 'date-time', maxLength: 64 }],
  [ApprovalRequestStatusSchema().shape.decidedBy.unwrap(), { maxItems: 50 }],
  [ApprovalRequestStatusSchema().shape.votes.unwrap(), { maxItems: 100 }],
  // ApprovalDecision: what was decided, by whom, never changes (the admission policy says so too,
  // but this holds even on a cluster without it).
  [ApprovalDecisionSpecSchema, { 'x-kubernetes-validations': [rule('self == oldSelf', 'an ApprovalDecision cannot be changed; create a new one')] }],
  [ApprovalRequestStatusSchema().shape.decidedBy.unwrap().element.shape.id, { maxLength: 128 }],
  [ApprovalRequestStatusSchema().shape.decidedBy.unwrap().element.shape.name.unwrap(), { maxLength: 256 }],
  [ApprovalRequestStatusSchema().shape.slack.unwrap().shape.ts.unwrap(), { maxLength: 64 }],
  [ApprovalRequestStatusSchema().shape.slack.unwrap().shape.postingStartedAt.unwrap(), { format: 'date-time', maxLength: 64 }],
]);

/**
 * The extras of a zod schema and of the schemas it refines: `PositiveDuration = Duration.superRefine(…)`
 * is a clone whose `_zod.parent` is Duration, and zod's JSON Schema does not carry the parent's
 * override additions over to it.
 */
function extrasFor(schema: z.core.$ZodType): Partial<K8sSchema>[] {
  const chain: z.core.$ZodType[] = [];
  for (let s: z.core.$ZodType | undefined = schema; s; s = s._zod.parent) chain.unshift(s);
  return chain.map((s) => CEL_EXTRAS.get(s)).filter((e): e is Partial<K8sSchema> => e !== undefined);
}

function mergeExtras(json: Record<string, unknown>, extras: Partial<K8sSchema>[]): void {
  for (const extra of extras) {
    for (const [k, v] of Object.entries(structuredClone(extra))) {
      if (k !== 'x-kubernetes-validations') {
        json[k] = v;
        continue;
      }
      const rules = (json[k] as CelRule[] | undefined) ?? [];
      json[k] = [...rules, ...(v as CelRule[]).filter((r) => !rules.some((x) => x.rule === r.rule))];
    }
  }
}

/** zod → JSON Schema, input shape (defaults optional), with CEL_EXTRAS merged in. */
export function zodToJsonSchema(schema: z.core.$ZodType): JsonNode {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, {
    io: 'input',
    // Inline reused schemas: a structural schema has no $ref.
    reused: 'inline',
    cycles: 'throw',
    override: ({ zodSchema, jsonSchema }) => mergeExtras(jsonSchema as Record<string, unknown>, extrasFor(zodSchema)),
  }) as JsonNode;
  return json;
}

// ---------- JSON Schema → structural schema ----------

class SchemaError extends Error {}

function fail(at: string, message: string): never {
  throw new SchemaError(`${at || '.'}: ${message}`);
}

function isRecord(v: unknown): v is JsonNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sorts object keys recursively, so defaults print the same however zod built them. */
function sortedValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedValue);
  if (isRecord(v))
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortedValue(v[k])]),
    );
  return v;
}

function ordered(node: K8sSchema): K8sSchema {
  const unknown = Object.keys(node).filter((k) => !(KEY_ORDER as readonly string[]).includes(k));
  if (unknown.length > 0) throw new SchemaError(`no output position for ${unknown.join(', ')}; add it to KEY_ORDER`);
  const out: Record<string, unknown> = {};
  for (const k of KEY_ORDER) if (node[k] !== undefined) out[k] = node[k];
  return out as K8sSchema;
}

function addRules(node: K8sSchema, rules: CelRule[]): void {
  node['x-kubernetes-validations'] = [...(node['x-kubernetes-validations'] ?? []), ...rules];
}

/** "non-empty string", "string of at most 10 characters"...: for descriptions. */
function describeString(s: JsonNode): string {
  const parts: string[] = [];
  if (typeof s.minLength === 'number' && s.minLength > 0) parts.push(s.minLength === 1 ? 'non-empty' : `at least ${s.minLength}-character`);
  let text = `${parts.length ? `${parts.join(' ')} ` : ''}string`;
  if (typeof s.maxLength === 'number') text += ` of at most ${s.maxLength} characters`;
  return text;
}

function stringPredicate(v: string, s: JsonNode): string[] {
  const out: string[] = [];
  if (typeof s.minLength === 'number' && s.minLength > 0) out.push(`size(${v}) >= ${s.minLength}`);
  if (typeof s.maxLength === 'number') out.push(`size(${v}) <= ${s.maxLength}`);
  if (typeof s.pattern === 'string') out.push(`${v}.matches(${celString(s.pattern)})`);
  return out;
}

const STRING_KEYS = new Set(['type', 'minLength', 'maxLength', 'pattern']);
const LIST_KEYS = new Set(['type', 'items', 'minItems', 'maxItems']);

/**
 * `string | string[]`: no structural form, since `type` may not differ between branches. The node
 * is untyped (x-kubernetes-preserve-unknown-fields) and carries both branches' constraints side by
 * side: each OpenAPI keyword only constrains values of its own JSON type (minLength strings,
 * minItems and items lists), so strings and lists are checked exactly as zod does.
 *
 * Not CEL, as first planned: the API server builds no CEL type for an untyped node and refuses
 * the CRD ("unable to convert structural schema to CEL declarations").
 *
 * Other JSON types are refused with bounds no value of that type can meet (the messages are
 * terse, but the path is right): numbers by minimum 1 > maximum 0, objects by minProperties 1 >
 * maxProperties 0, booleans by not-enum. Any other union is refused by the generator.
 */
function unionOfStringAndList(branches: unknown[], at: string): K8sSchema {
  const str = branches.find((b) => isRecord(b) && b.type === 'string') as JsonNode | undefined;
  const list = branches.find((b) => isRecord(b) && b.type === 'array') as JsonNode | undefined;
  const item = list && isRecord(list.items) ? list.items : undefined;
  const plain = (n: JsonNode | undefined, keys: Set<string>) => n !== undefined && Object.keys(n).every((k) => keys.has(k));
  if (branches.length !== 2 || !plain(str, STRING_KEYS) || !plain(list, LIST_KEYS) || !item || item.type !== 'string' || !plain(item, STRING_KEYS)) {
    fail(at, `unsupported union ${JSON.stringify(branches)}: Kubernetes structural schemas cannot express it; map it in scripts/gen-crds.ts`);
  }
  const listWords = `${typeof list!.minItems === 'number' && list!.minItems > 0 ? 'a non-empty list' : 'a list'} of ${describeString(item!)
    .replace(/string$/, 'strings')
    .replace(/string of/, 'strings of')}`;
  const out: K8sSchema = {
    description: `A ${describeString(str!)} or ${listWords}.`,
    minimum: 1,
    maximum: 0,
    minProperties: 1,
    maxProperties: 0,
    not: { enum: [true, false] },
    items: toStructural(item, `${at}[]`),
    'x-kubernetes-preserve-unknown-fields': true,
  };
  for (const k of ['minLength', 'maxLength', 'pattern'] as const) if (str![k] !== undefined) Object.assign(out, { [k]: str![k] });
  for (const k of ['minItems', 'maxItems'] as const) if (list![k] !== undefined) out[k] = list![k] as number;
  return out;
}

/**
 * A source header's value, `string | SecretValue` (api/config.ts HeaderValueSchema): no structural
 * form either. As for GlobList, the node is untyped and carries each branch's constraints side by
 * side: `properties` and `required` only constrain objects, so a string passes them and an object
 * must be `{valueFrom: {secretKeyRef: {name, key}}, prefix?}`. Only the secretKeyRef branch of
 * valueFrom is kept: a GovernancePolicy may not read the sidecar's files or environment
 * (clusterCredentialIssues), so `file` and `env` are unknown fields here and refused at apply time.
 * Numbers, lists and booleans are refused with the same impossible bounds as unionOfStringAndList.
 * Unknown keys next to valueFrom are kept by the API server (the node preserves unknown fields)
 * and refused by the operator, whose status names them.
 */
function unionOfStringAndSecret(branches: unknown[], at: string): K8sSchema | null {
  const str = branches.find((b) => isRecord(b) && b.type === 'string') as JsonNode | undefined;
  const obj = branches.find((b) => isRecord(b) && b.type === 'object') as JsonNode | undefined;
  const props = obj && isRecord(obj.properties) ? obj.properties : undefined;
  const valueFrom = props && isRecord(props.valueFrom) && Array.isArray(props.valueFrom.anyOf) ? props.valueFrom.anyOf : undefined;
  const secret = valueFrom?.find((b) => isRecord(b) && isRecord(b.properties) && 'secretKeyRef' in b.properties);
  if (branches.length !== 2 || !str || Object.keys(str).length !== 1 || !props || !secret) return null;
  return {
    description: 'Literal text, or {valueFrom: {secretKeyRef: {name, key}}, prefix}: a Secret key only the sidecar container reads.',
    minimum: 1,
    maximum: 0,
    minItems: 1,
    maxItems: 0,
    not: { enum: [true, false] },
    properties: {
      prefix: toStructural(props.prefix, `${at}.prefix`),
      valueFrom: toStructural(secret, `${at}.valueFrom`),
    },
    required: ['valueFrom'],
    'x-kubernetes-preserve-unknown-fields': true,
  };
}

/**
 * A SecretValue's `valueFrom` on its own (a source's auth.clientSecret): `secretKeyRef | file | env`.
 * As in unionOfStringAndSecret, only the secretKeyRef branch is kept: `file` and `env` are unknown
 * fields in a GovernancePolicy (clusterCredentialIssues refuses them too).
 */
function secretKeyRefBranch(branches: unknown[], at: string): K8sSchema | null {
  const keys = branches.map((b) => (isRecord(b) && b.type === 'object' && isRecord(b.properties) ? Object.keys(b.properties) : []));
  if (!keys.every((k) => k.length === 1 && ['secretKeyRef', 'file', 'env'].includes(k[0]!))) return null;
  const secret = branches[keys.findIndex((k) => k[0] === 'secretKeyRef')];
  return secret === undefined ? null : toStructural(secret, at);
}

const VALUE_KEYS = new Set(['required', 'enum', 'anyOf']);

/** A not/anyOf body as structural schemas allow it (constraints only), copied. */
function valueValidation(v: unknown, at: string): ValueValidation {
  if (!isRecord(v) || Object.keys(v).some((k) => !VALUE_KEYS.has(k)))
    fail(at, `only ${[...VALUE_KEYS].join(', ')} may appear inside not/anyOf here, got ${JSON.stringify(v)}`);
  const out: ValueValidation = {};
  if (v.required !== undefined) out.required = [...(v.required as string[])];
  if (v.enum !== undefined) out.enum = [...(v.enum as unknown[])];
  if (v.anyOf !== undefined) out.anyOf = (v.anyOf as unknown[]).map((b, i) => valueValidation(b, `${at}.anyOf[${i}]`));
  return out;
}

const HANDLED = new Set([
  'type',
  'format',
  'description',
  'enum',
  'const',
  'default',
  'anyOf',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'items',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'minProperties',
  'maxProperties',
  'not',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-preserve-unknown-fields',
]);

/**
 * Converts one zod-emitted JSON Schema node into a Kubernetes structural schema node. Throws on
 * anything it cannot map faithfully, naming the path, rather than emitting a looser schema.
 */
// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: one branch per JSON-schema keyword, each refusing what it cannot map; a table of handlers would hide the order they are checked in
export function toStructural(node: unknown, at = ''): K8sSchema {
  if (!isRecord(node)) fail(at, `expected a schema object, got ${JSON.stringify(node)}`);
  for (const k of Object.keys(node)) {
    if (!HANDLED.has(k)) fail(at, `JSON Schema keyword "${k}" has no structural equivalent; map it in scripts/gen-crds.ts`);
  }

  let out: K8sSchema;
  if (node.anyOf !== undefined) {
    if (!Array.isArray(node.anyOf)) fail(at, 'anyOf must be a list');
    const nonNull = node.anyOf.filter((b) => !(isRecord(b) && b.type === 'null'));
    if (nonNull.length === 1 && nonNull.length < node.anyOf.length) {
      const { anyOf: _drop, ...rest } = node;
      out = { ...toStructural({ ...(nonNull[0] as JsonNode), ...rest }, at), nullable: true };
      return ordered(out);
    }
    out = unionOfStringAndSecret(node.anyOf, at) ?? secretKeyRefBranch(node.anyOf, at) ?? unionOfStringAndList(node.anyOf, at);
  } else {
    let type = node.type;
    let nullable = false;
    if (Array.isArray(type)) {
      const t = type.filter((x) => x !== 'null');
      if (t.length !== 1) fail(at, `a value of several types (${type.join(', ')}) is not structural`);
      nullable = t.length < type.length;
      type = t[0];
    }
    if (node.const !== undefined) {
      if (node.enum !== undefined) fail(at, 'both const and enum');
      type ??= typeof node.const === 'number' ? 'number' : typeof node.const;
    }
    if (!['object', 'array', 'string', 'integer', 'number', 'boolean'].includes(type as string)) {
      fail(at, `missing or unsupported type ${JSON.stringify(node.type)}`);
    }
    out = { type: type as K8sSchema['type'] };
    if (nullable) out.nullable = true;
  }

  if (typeof node.description === 'string') out.description = node.description;
  if (typeof node.format === 'string') {
    if (!K8S_FORMATS.has(node.format)) fail(at, `format "${node.format}" is not one Kubernetes validates`);
    out.format = node.format;
  }
  if (node.const !== undefined) out.enum = [node.const];
  if (Array.isArray(node.enum)) out.enum = [...node.enum];
  if (node.default !== undefined) out.default = sortedValue(node.default);

  if (typeof node.minimum === 'number' && node.minimum !== -SAFE_INT) out.minimum = node.minimum;
  if (typeof node.maximum === 'number' && node.maximum !== SAFE_INT) out.maximum = node.maximum;
  // Draft 2020-12 numeric exclusive bounds → OpenAPI v3 boolean flags.
  if (typeof node.exclusiveMinimum === 'number') Object.assign(out, { minimum: node.exclusiveMinimum, exclusiveMinimum: true });
  if (typeof node.exclusiveMaximum === 'number') Object.assign(out, { maximum: node.exclusiveMaximum, exclusiveMaximum: true });
  for (const k of ['minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties'] as const) {
    if (typeof node[k] === 'number') out[k] = node[k] as number;
  }
  if (typeof node.pattern === 'string') out.pattern = node.pattern;

  if (node.items !== undefined) {
    if (out.type !== 'array') fail(at, 'items on a non-array');
    out.items = toStructural(node.items, `${at}[]`);
  }
  if (out.type === 'array' && !out.items) fail(at, 'an array needs items');
  if (node['x-kubernetes-list-type'] !== undefined) out['x-kubernetes-list-type'] = node['x-kubernetes-list-type'] as K8sSchema['x-kubernetes-list-type'];
  if (node['x-kubernetes-list-map-keys'] !== undefined) out['x-kubernetes-list-map-keys'] = [...(node['x-kubernetes-list-map-keys'] as string[])];

  if (isRecord(node.properties)) {
    const props = node.properties;
    out.properties = Object.fromEntries(
      Object.keys(props)
        .sort()
        .map((k) => [k, toStructural(props[k], `${at}.${k}`)]),
    );
  }
  if (Array.isArray(node.required) && node.required.length > 0) out.required = [...(node.required as string[])].sort();
  const ap = node.additionalProperties;
  if (isRecord(ap) && Object.keys(ap).length === 0) {
    // A map of anything (z.unknown() values): keep whatever is stored; there is no schema below.
    if (out.properties) fail(at, 'both properties and additional properties of any type');
    out['x-kubernetes-preserve-unknown-fields'] = true;
  } else if (isRecord(ap)) {
    if (out.properties) fail(at, 'both properties and a schema for additional properties');
    out.additionalProperties = toStructural(ap, `${at}.*`);
  } else if (ap === true) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  // ap === false: dropped on purpose, see the header.
  if (node.propertyNames !== undefined) {
    const pn = node.propertyNames;
    if (!isRecord(pn) || Object.keys(pn).some((k) => !STRING_KEYS.has(k))) fail(at, `unsupported propertyNames ${JSON.stringify(pn)}`);
    const checks = stringPredicate('k', pn);
    // A map whose values are untyped (header values: string or object) has no CEL type at all, and
    // the API server refuses the whole CRD over a rule on it: its keys go unchecked here (gap).
    const untypedValues = out.additionalProperties !== undefined && !out.additionalProperties.type;
    if (checks.length > 0 && !untypedValues) {
      const what = typeof pn.pattern === 'string' ? `match ${pn.pattern}` : `be a ${describeString(pn)}`;
      addRules(out, [
        rule(`self.all(k, ${checks.join(' && ')})`, `every key must ${what}`, {
          messageExpression: `'invalid key "' + self.filter(k, !(${checks.join(' && ')}))[0] + '": keys must ${what.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
        }),
      ]);
    }
  }
  if (node.not !== undefined) out.not = valueValidation(node.not, `${at}(not)`);
  if (node['x-kubernetes-preserve-unknown-fields'] === true) out['x-kubernetes-preserve-unknown-fields'] = true;
  if (Array.isArray(node['x-kubernetes-validations'])) addRules(out, node['x-kubernetes-validations'] as CelRule[]);
  return ordered(out);
}

/** Every problem that would make the API server call this schema non-structural (or that we forbid). */
export function structuralProblems(node: K8sSchema, at = ''): string[] {
  const problems: string[] = [];
  const raw = node as Record<string, unknown>;
  if (!node.type && !node['x-kubernetes-preserve-unknown-fields']) problems.push(`${at || '.'}: no type and no x-kubernetes-preserve-unknown-fields`);
  for (const k of ['$ref', '$schema', 'anyOf', 'oneOf', 'allOf', 'propertyNames', 'const']) if (k in raw) problems.push(`${at || '.'}: ${k}`);
  const inJunctor = (v: unknown): boolean =>
    isRecord(v) && Object.entries(v).some(([k, x]) => !VALUE_KEYS.has(k) || (k === 'anyOf' && (x as unknown[]).some(inJunctor)));
  if (node.not && inJunctor(node.not)) problems.push(`${at || '.'}: not holds more than value validation`);
  // The API server has no CEL type for an untyped node and refuses the whole CRD.
  if (!node.type && node['x-kubernetes-validations']) problems.push(`${at || '.'}: CEL rules on an untyped node`);
  if (node.additionalProperties && !node.additionalProperties.type && node['x-kubernetes-validations'])
    problems.push(`${at || '.'}: CEL rules on a map of untyped values`);
  if (raw.additionalProperties === false) problems.push(`${at || '.'}: additionalProperties: false`);
  if (node.properties && node.additionalProperties) problems.push(`${at || '.'}: properties and additionalProperties`);
  for (const [k, v] of Object.entries(node.properties ?? {})) problems.push(...structuralProblems(v, `${at}.${k}`));
  if (node.items) problems.push(...structuralProblems(node.items, `${at}[]`));
  if (node.additionalProperties) problems.push(...structuralProblems(node.additionalProperties, `${at}.*`));
  return problems;
}

// ---------- YAML ----------

/** Block-style YAML that YAML 1.1 readers (kubectl's) read the same: "yes"/"on" stay strings. */
export function toYaml(v: unknown): string {
  return stringifyYaml(v, { version: '1.1', lineWidth: 0, singleQuote: true });
}

// ---------- The CRDs ----------

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

const READY: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Ready condition status',
};
const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

interface CrdInput {
  names: (typeof KINDS)[keyof typeof KINDS];
  description: string;
  spec: z.core.$ZodType;
  status: z.core.$ZodType;
  columns: PrinterColumn[];
  rootRules?: CelRule[];
}

function crd(input: CrdInput): Record<string, unknown> {
  const spec = toStructural(zodToJsonSchema(input.spec), '.spec');
  const status = toStructural(zodToJsonSchema(input.status), '.status');
  const root: K8sSchema = {
    description: input.description,
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec,
      status,
    },
    required: ['spec'],
    ...(input.rootRules ? { 'x-kubernetes-validations': input.rootRules } : {}),
  };
  const problems = structuralProblems(root);
  if (problems.length > 0) throw new SchemaError(`${input.names.kind} is not structural:\n${problems.join('\n')}`);
  const { kind, plural, singular, shortNames } = input.names;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular, shortNames: [...shortNames], categories: ['thoughtgate'] },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: input.columns.map((c) => ({ ...c })),
          schema: { openAPIV3Schema: ordered(root) },
        },
      ],
    },
  };
}

/**
 * ApprovalRequest rules across spec and status (transition rules: checked on every update, status
 * subresource included). A decision is final, a Slack post is recorded once (the operator's
 * double-post protocol relies on it, also against a replica that lost its lease mid-write), and
 * a sidecar may only mark a request executing once it is Approved. A rule on the status object
 * itself would not run when an update removes status; these rules do.
 */
function approvalRequestRootRules(): CelRule[] {
  const terminal = `[${[...TERMINAL_PHASES].map((p) => `'${p}'`).join(', ')}]`;
  const same = (path: string) =>
    `has(self.status.${path}) == has(oldSelf.status.${path}) && (!has(self.status.${path}) || self.status.${path} == oldSelf.status.${path})`;
  const setOnce = (path: string) =>
    `!has(oldSelf.status) || !has(oldSelf.status.slack) || !has(oldSelf.status.slack.${path}) || ` +
    `(has(self.status) && has(self.status.slack) && has(self.status.slack.${path}) && self.status.slack.${path} == oldSelf.status.slack.${path})`;
  return [
    rule(
      `!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ${terminal}) || ` +
        `(has(self.status) && has(self.status.phase) && self.status.phase == oldSelf.status.phase && ${same('decidedAt')} && ${same('decidedBy')})`,
      'a decision is final: phase, decidedBy and decidedAt do not change once the phase is Approved, Rejected, Expired, Cancelled or Failed',
      { fieldPath: '.status.phase', reason: 'FieldValueForbidden' },
    ),
    rule(setOnce('postingStartedAt'), 'status.slack.postingStartedAt is set once and never changes', {
      fieldPath: '.status.slack',
      reason: 'FieldValueForbidden',
    }),
    rule(setOnce('ts'), 'status.slack.ts is set once and never changes: the request has been posted', {
      fieldPath: '.status.slack',
      reason: 'FieldValueForbidden',
    }),
    rule(
      "!has(self.spec.executionStartedAt) || has(oldSelf.spec.executionStartedAt) || (has(self.status) && has(self.status.phase) && self.status.phase == 'Approved')",
      'executionStartedAt may only be set on an Approved request',
      { fieldPath: '.spec.executionStartedAt', reason: 'FieldValueForbidden' },
    ),
  ];
}

export interface GeneratedFile {
  /** Relative to the output directory (crds/). */
  name: string;
  /** The CustomResourceDefinition. */
  object: Record<string, unknown>;
  /** What is written: HEADER and the object as YAML. */
  text: string;
}

export const HEADER = '# generated by scripts/gen-crds.ts; do not edit. Source: api/crds.ts (zod).\n';

export function generateCrds(): GeneratedFile[] {
  const docs = [
    crd({
      names: KINDS.GovernancePolicy,
      description:
        'GovernancePolicy: which MCP sources the selected pods of this namespace may reach, and the rules, Cedar policies and approvals that govern each request. The operator renders it into the thoughtgate-config ConfigMap.',
      spec: GovernancePolicySpecSchema,
      status: GovernancePolicyStatusSchema,
      columns: [
        { name: 'Priority', type: 'integer', jsonPath: '.spec.priority', description: 'Highest priority wins when several policies select a pod' },
        READY,
        { name: 'Hash', type: 'string', jsonPath: '.status.renderedHash', description: 'Content hash of the policy as rendered' },
        { name: 'Captured', type: 'string', jsonPath: '.status.capture.summary', description: 'Captured pods / injected pods of the namespace' },
        { name: 'Enforcement', type: 'string', jsonPath: '.spec.enforcement', description: 'enforce (unset) or audit', priority: 1 },
        AGE,
      ],
    }),
    crd({
      names: KINDS.ApprovalChannel,
      description: 'ApprovalChannel: a Slack channel where people approve or reject requests that rules send to it (approval.channel names this object).',
      spec: ApprovalChannelSpecSchema,
      status: ApprovalChannelStatusSchema,
      columns: [{ name: 'Channel', type: 'string', jsonPath: '.spec.slack.channel', description: 'Slack channel id' }, READY, AGE],
      rootRules: [
        rule(
          `size(self.metadata.name) <= 63 && self.metadata.name.matches(${celString(PATTERNS.dnsLabel)})`,
          'metadata.name: an ApprovalChannel name must be a DNS label (lowercase letters, digits and "-", at most 63 characters), because rules refer to it in approval.channel',
        ),
      ],
    }),
    crd({
      names: KINDS.ApprovalRequest,
      description:
        "ApprovalRequest: one call awaiting a human decision. A sidecar creates it; the operator posts it to the ApprovalChannel's Slack channel and writes the decision into status. `kubectl get approvalrequests -A` lists what is pending.",
      spec: ApprovalRequestSpecSchema(),
      status: ApprovalRequestStatusSchema(),
      columns: [
        { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Pending, Posted, or the decision' },
        { name: 'Tool', type: 'string', jsonPath: '.spec.tool', description: 'The tool (or target) the call is for' },
        { name: 'Channel', type: 'string', jsonPath: '.spec.channel', description: 'The ApprovalChannel where people decide' },
        { name: 'Pod', type: 'string', jsonPath: '.spec.workload.pod', description: 'The workload pod whose agent made the call' },
        { name: 'DecidedBy', type: 'string', jsonPath: '.status.decidedBy[0].name', description: 'Who decided (the first approver)' },
        { name: 'Approvals', type: 'string', jsonPath: '.status.approvals', description: 'Approvals so far / approvals required' },
        { name: 'Expires', type: 'date', jsonPath: '.spec.expiresAt', priority: 1 },
        { name: 'Reason', type: 'string', jsonPath: '.status.reason', priority: 1 },
        AGE,
      ],
      rootRules: approvalRequestRootRules(),
    }),
    crd({
      names: KINDS.ApprovalDecision,
      description:
        "ApprovalDecision: one person's Approve or Reject of an ApprovalRequest of this namespace, made with kubectl or `thoughtgate approve|reject`. spec.user must be the creator's own identity (the ValidatingAdmissionPolicy " +
        `${DECISION_POLICY_NAME} checks it); the operator counts it when that user is a Kubernetes approver of the request's ApprovalChannel.`,
      spec: ApprovalDecisionSpecSchema,
      status: ApprovalDecisionStatusSchema,
      columns: [
        { name: 'Request', type: 'string', jsonPath: '.spec.approvalRequest', description: 'The ApprovalRequest decided on' },
        { name: 'Decision', type: 'string', jsonPath: '.spec.decision', description: 'Approve or Reject' },
        { name: 'User', type: 'string', jsonPath: '.spec.user.username', description: 'Who decided, as the API server authenticated them' },
        { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Counted, or Ignored (see Message)' },
        { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
        AGE,
      ],
    }),
  ];
  return docs.map((doc) => ({
    name: `${(doc.metadata as { name: string }).name}.yaml`,
    object: doc,
    text: HEADER + toYaml(doc),
  }));
}

// ---------- The ApprovalDecision admission policy (a chart template) ----------

/** Where the chart's copy of the policy goes (a template: Helm installs only CRDs from crds/). */
export const POLICY_TEMPLATE = path.join('charts', 'thoughtgate', 'templates', 'approvaldecision-policy.yaml');

/**
 * The ValidatingAdmissionPolicy and binding of api/approval-decision.ts as a chart template: the
 * objects as YAML, with the chart's labels. The operator compares the cluster's copy with the same
 * objects, so the chart cannot drift from what the operator expects (api/crds.test.ts).
 */
export function generatePolicyTemplate(): string {
  const docs = decisionPolicyObjects().map((o) =>
    toYaml(o).replace(
      /^metadata:\n {2}name: (.*)\n/m,
      (_m, name: string) => `metadata:\n  name: ${name}\n  labels:\n    {{- include "thoughtgate.metaLabels" . | nindent 4 }}\n`,
    ),
  );
  return (
    '# generated by scripts/gen-crds.ts; do not edit. Source: api/approval-decision.ts.\n' +
    '# ApprovalDecisions count only when spec.user is who the API server authenticated (userInfo), and\n' +
    '# never change after they are created. The operator honours ApprovalDecisions only while these two\n' +
    '# objects are installed as shipped (docs/approvals.md, "Deciding from kubectl").\n' +
    docs.join('---\n')
  );
}

// ---------- CLI ----------

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const given = argv.find((a) => !a.startsWith('--'));
  // crds/ for kubectl, and the chart's copy (Helm installs CRDs from its own crds/ directory).
  const outDirs = given ? [given] : ['crds', path.join('charts', 'thoughtgate', 'crds')];
  let drift = 0;
  for (const outDir of outDirs)
    for (const f of generateCrds()) {
      const file = path.join(outDir, f.name);
      if (check) {
        let current = '';
        try {
          current = readFileSync(file, 'utf8');
        } catch {
          /* missing counts as drift */
        }
        if (current !== f.text) {
          console.error(`${file} is out of date; regenerate (see scripts/gen-crds.ts)`);
          drift++;
        }
      } else {
        mkdirSync(outDir, { recursive: true });
        writeFileSync(file, f.text);
        console.log(`wrote ${file}`);
      }
    }
  if (!given) {
    const text = generatePolicyTemplate();
    if (check) {
      let current = '';
      try {
        current = readFileSync(POLICY_TEMPLATE, 'utf8');
      } catch {
        /* missing counts as drift */
      }
      if (current !== text) {
        console.error(`${POLICY_TEMPLATE} is out of date; regenerate (see scripts/gen-crds.ts)`);
        drift++;
      }
    } else {
      writeFileSync(POLICY_TEMPLATE, text);
      console.log(`wrote ${POLICY_TEMPLATE}`);
    }
  }
  return drift > 0 ? 1 : 0;
}

// Run only as this program (bundled or not), never when a test or another bundle imports it.
function realpathOrEmpty(p: string | undefined): string {
  try {
    return p ? realpathSync(p) : '';
  } catch {
    return '';
  }
}
const self = realpathOrEmpty(fileURLToPath(import.meta.url));
if (/^gen-crds\.[cm]?[jt]s$/.test(path.basename(self)) && realpathOrEmpty(process.argv[1]) === self) process.exitCode = main(process.argv.slice(2));

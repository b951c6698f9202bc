// The one configuration document. A person writes it in thoughtgate.yaml (standalone), in
// GovernancePolicy.spec (cluster), and the operator renders it into the thoughtgate-config ConfigMap.
// Objects are strict so that a misspelt key is an error instead of a silently ignored setting.
import { z } from 'zod';
// primitives.js before approval.js: approval.ts reads these through this module's re-exports
// while it initialises (see primitives.ts).
import { Duration, Glob, GlobList, Name, PositiveDuration } from './primitives.js';
import { FileApprovalChannelSchema } from './approval.js';
import { ResourceGlob, ResourceGlobList } from './resource-uri.js';
import { ALLOWED_HOST } from './wellknown.js';

export { Duration, Glob, GlobList, Name, PositiveDuration };

/** A strict object whose unknown-key error lists the keys that are allowed. */
function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} (allowed: ${allowed})`
        : undefined,
  });
}

export const ACTIONS = ['forward', 'deny', 'approve', 'policy'] as const;
export const Action = z.enum(ACTIONS, { error: `expected one of ${ACTIONS.join(', ')}` });
export type Action = z.infer<typeof Action>;

/**
 * enforce: what gates 1–3 decide is done. audit: what they would deny, hide or send for approval is
 * forwarded and recorded instead (docs/configuration.md, `enforcement`). Chosen by the platform's
 * config only; unset means enforce.
 */
export const ENFORCEMENTS = ['enforce', 'audit'] as const;
export const Enforcement = z.enum(ENFORCEMENTS, { error: `expected one of ${ENFORCEMENTS.join(', ')}` });
export type Enforcement = z.infer<typeof Enforcement>;

export const ExposeSchema = strict({
  mode: z.enum(['all', 'allowlist', 'blocklist']).default('all'),
  tools: z.array(Glob).optional(),
  resources: z.array(ResourceGlob).optional(), // canonical form only: api/resource-uri.ts
  prompts: z.array(Glob).optional(),
  /** A2A sources only: the card's skills by id (policy/gates/visibility.ts). */
  skills: z.array(Glob).optional(),
});
export type Expose = z.infer<typeof ExposeSchema>;

export const SourceTimeoutsSchema = strict({
  connect: PositiveDuration.default('5s'),
  response: PositiveDuration.default('60s'),
});

/** A Secret name Kubernetes accepts (a DNS-1123 subdomain): no "/", no "..", so it is safe as a path segment. */
export const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const SECRET_NAME_MAX = 253;

/** A Kubernetes Secret key: a DNS-subdomain name and a key as Secrets allow them. */
const SecretKeyRefSchema = strict({
  name: z.string().max(SECRET_NAME_MAX).regex(SECRET_NAME, 'not a valid Secret name'),
  key: z
    .string()
    .max(253)
    .regex(/^[-._a-zA-Z0-9]+$/, 'not a valid Secret key')
    // As Kubernetes refuses them: "." and ".."-prefixed names are the secret volume's own entries.
    .refine((k) => k !== '.' && !k.startsWith('..'), 'not a valid Secret key ("." and names starting with ".." are reserved)'),
});

/**
 * A credential only the sidecar holds (docs/security.md, custody): a Secret key (cluster: mounted
 * into the sidecar container alone), a file or an environment variable of the sidecar (standalone
 * only: in a GovernancePolicy they would let a namespace's policy authors read the sidecar's own files).
 */
export const SecretValueSchema = strict({
  valueFrom: z.union([
    strict({ secretKeyRef: SecretKeyRefSchema }),
    strict({ file: z.string().min(1) }),
    strict({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name') }),
  ]),
  /** Put before the value, e.g. "Bearer " for a Secret holding the bare token. */
  prefix: z.string().max(64).optional(),
});
export type SecretValue = z.infer<typeof SecretValueSchema>;

/** An absolute http(s) URL without credentials or a fragment; `credentials`: what to say instead. */
function httpUrl(credentials: string) {
  return z.string().superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL: "${s}"` });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `must be an http or https URL, got "${u.protocol}"` });
    if (u.username || u.password) ctx.addIssue({ code: 'custom', message: credentials });
    if (u.hash) ctx.addIssue({ code: 'custom', message: 'must not have a #fragment' });
  });
}
/** Token endpoints, resource indicators. */
const HttpUrl = httpUrl('must not carry credentials');

/**
 * An absolute path on the source's origin, as written in a request line (no query, no dot segments,
 * no %: the forward proxy relays only paths without one, sidecar/proxy/forward-proxy.ts).
 */
const OriginPath = z
  .string()
  .max(1024)
  .regex(/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/, 'an absolute path ("/token"), no query, no %-encoding')
  .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'no "." or ".." segments');

/**
 * OAuth for a source (docs/configuration.md, `auth`). passthrough: the agent does OAuth itself and
 * the forward proxy relays the source's discovery documents (and relayPaths) from its origin.
 * clientCredentials: the sidecar holds the client's credentials, gets the token and sends it; the
 * agent never sees one. One object with a mode (not a union) so that the CRD has a structural schema.
 */
export const AUTH_MODES = ['passthrough', 'clientCredentials'] as const;
const CLIENT_CREDENTIALS_KEYS = ['clientId', 'clientSecret', 'tokenUrl', 'issuer', 'tokenEndpointAuth', 'scope', 'resource'] as const;
export const SourceAuthSchema = strict({
  mode: z.enum(AUTH_MODES, { error: `expected one of ${AUTH_MODES.join(', ')}` }),
  /** passthrough: more paths of the source's origin relayed as they are (a server that is its own authorization server: /authorize, /token, /register; metadata at a custom place). */
  relayPaths: z.array(OriginPath).max(32).optional(),
  /** clientCredentials: the client id (not a secret) and secret. */
  clientId: z.string().min(1).max(1024).optional(),
  clientSecret: SecretValueSchema.optional(),
  /** clientCredentials: the token endpoint; unset: discovered from the source (RFC 9728 protected-resource metadata, then RFC 8414). */
  tokenUrl: HttpUrl.optional(),
  /** clientCredentials: the authorization server trusted for discovery (any scheme, used instead of the one the metadata names); unset: the metadata's, https or the source's origin only. */
  issuer: HttpUrl.optional(),
  /** clientCredentials: how the client authenticates at the token endpoint (RFC 6749 §2.3.1); default client_secret_basic. */
  tokenEndpointAuth: z.enum(['client_secret_basic', 'client_secret_post']).optional(),
  scope: z.string().min(1).max(1024).optional(),
  /** clientCredentials: the resource indicator (RFC 8707); unset: the `resource` of the source's protected-resource metadata, else the source URL. */
  resource: HttpUrl.optional(),
}).superRefine((a, ctx) => {
  if (a.mode === 'passthrough') {
    for (const k of CLIENT_CREDENTIALS_KEYS)
      if (a[k] !== undefined)
        ctx.addIssue({ code: 'custom', path: [k], message: `"${k}" is for mode clientCredentials; in passthrough the agent does OAuth itself` });
    return;
  }
  if (a.relayPaths !== undefined)
    ctx.addIssue({ code: 'custom', path: ['relayPaths'], message: '"relayPaths" is for mode passthrough (in clientCredentials the agent does no OAuth)' });
  if (a.clientId === undefined) ctx.addIssue({ code: 'custom', path: ['clientId'], message: 'mode clientCredentials needs clientId' });
  if (a.clientSecret === undefined)
    ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'mode clientCredentials needs clientSecret (a secretKeyRef, file or env)' });
});
export type SourceAuth = z.infer<typeof SourceAuthSchema>;
/** A source header's value: literal text (with ${VAR} substitution) or a credential only the sidecar reads. */
export const HeaderValueSchema = z.union([z.string(), SecretValueSchema]);
export type HeaderValue = z.infer<typeof HeaderValueSchema>;

/** True for a header value that is a credential reference rather than literal text. */
export function isSecretValue(v: HeaderValue): v is SecretValue {
  return typeof v !== 'string';
}

/**
 * Credential references a GovernancePolicy may not use: with a file or an environment variable,
 * whoever may write policies in a namespace could have the sidecar send its own files (its
 * ServiceAccount token, other mounted Secrets) or environment to an upstream of their choosing.
 * Checked by the operator (policy status) and again by the sidecar reading the ConfigMap.
 */
export function clusterCredentialIssues(doc: {
  sources: readonly { headers?: Record<string, HeaderValue> | undefined; auth?: { clientSecret?: SecretValue | undefined } | undefined }[];
}): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const check = (v: SecretValue, at: (string | number)[]) => {
    if ('secretKeyRef' in v.valueFrom) return;
    const kind = 'file' in v.valueFrom ? 'file' : 'env';
    out.push({
      path: [...at, 'valueFrom', kind],
      message: `valueFrom.${kind} is only allowed in a standalone thoughtgate.yaml; a GovernancePolicy names credentials with valueFrom.secretKeyRef (it must not make the sidecar send its own ${kind === 'file' ? 'files' : 'environment'} upstream)`,
    });
  };
  doc.sources.forEach((s, i) => {
    for (const [name, v] of Object.entries(s.headers ?? {})) if (isSecretValue(v)) check(v, ['sources', i, 'headers', name]);
    // An OAuth client secret goes to the token endpoint, which the policy's author also chooses.
    if (s.auth?.clientSecret) check(s.auth.clientSecret, ['sources', i, 'auth', 'clientSecret']);
  });
  return out;
}

export const PROTOCOLS = ['mcp', 'a2a'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
/** A2A-Version values ThoughtGate understands (exact strings; policy/gates/a2a-methods.ts). */
export const A2A_VERSIONS = ['1.0', '0.3'] as const;
export type A2aVersion = (typeof A2A_VERSIONS)[number];

/**
 * An A2A interface's path on the source's origin, in the one spelling the sidecar's route table
 * compares (sidecar/a2a/classify.ts): absolute, segments of unreserved characters, no empty, "."
 * or ".." segment, no trailing "/" (except "/" itself), no query or %-encoding.
 */
const A2aPath = z
  .string()
  .max(1024)
  .regex(
    /^\/([A-Za-z0-9\-._~]+(\/[A-Za-z0-9\-._~]+)*)?$/,
    'an absolute path such as "/a2a/jsonrpc": letters, digits, "-", ".", "_", "~" between single "/", no trailing "/", no query or %-encoding',
  )
  .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'no "." or ".." segments')
  .refine((p) => p !== '/.well-known' && !p.startsWith('/.well-known/'), 'not under /.well-known/ (the agent card lives there)');

/**
 * Where a caller names a skill in a message: a dotted path into message.metadata (A2A has no skill
 * field; the convention is the deployment's). Only this place is read (docs/configuration.md, A2A).
 */
const SkillFrom = z
  .string()
  .max(256)
  .regex(
    /^(params\.)?metadata(\.[A-Za-z0-9_-]+)+$/,
    'a dotted path into the message metadata such as "metadata.skill", or into the request metadata such as "params.metadata.skill" (letters, digits, "_" and "-" between the dots)',
  )
  // Object plumbing, not metadata keys: a writer that follows the path (thoughtgate test) would reach Object.prototype.
  .refine((p) => !p.split('.').some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype'), {
    message: 'skillFrom must not name __proto__, constructor or prototype',
  });

/** The A2A interfaces of an agent (a source with protocol a2a): DESIGN of issue 13, docs/configuration.md. */
export const A2aSourceSchema = strict({
  /** The JSON-RPC interface's path on the source's origin; unset: none. */
  jsonrpc: A2aPath.optional(),
  /** The HTTP+JSON (REST) interface's base path; unset: none. */
  rest: A2aPath.optional(),
  /** A2A-Version values let through; others are refused (-32009). */
  versions: z
    .array(z.enum(A2A_VERSIONS, { error: `expected one of ${A2A_VERSIONS.join(', ')}` }))
    .min(1, 'list at least one version')
    .default([...A2A_VERSIONS]),
  /** Where a caller names a skill; unset: nowhere (rules and Cedar see no skill). */
  skillFrom: SkillFrom.optional(),
}).superRefine((a, ctx) => {
  if (a.jsonrpc === undefined && a.rest === undefined)
    ctx.addIssue({ code: 'custom', message: 'an a2a block needs at least one interface: jsonrpc (the JSON-RPC path) or rest (the HTTP+JSON base path)' });
  if (a.jsonrpc !== undefined && a.jsonrpc === a.rest)
    ctx.addIssue({ code: 'custom', path: ['rest'], message: `jsonrpc and rest must be different paths (both are "${a.rest}")` });
  const seen = new Set<string>();
  a.versions.forEach((v, i) => {
    if (seen.has(v)) ctx.addIssue({ code: 'custom', path: ['versions', i], message: `duplicate version "${v}"` });
    seen.add(v);
  });
});
export type A2aSource = z.infer<typeof A2aSourceSchema>;

const MCP_EXPOSE_KEYS = ['tools', 'resources', 'prompts'] as const;
export const A2A_PASSTHROUGH =
  'auth.mode passthrough is for MCP sources (it relays OAuth paths of the origin ungoverned); an a2a source takes its credential from headers or auth.mode clientCredentials';

/** Request headers the gates decide per A2A call; a source's `headers` (which win over the client's) must not set them. */
const A2A_DECIDED_HEADERS = ['a2a-version', 'a2a-extensions', 'x-a2a-extensions'] as const;
const A2A_DECIDED_HEADER =
  'an a2a source must not set A2A-Version, A2A-Extensions or X-A2A-Extensions in headers: the gates decide them per call and the agent must read what was decided';

export const SourceSchema = strict({
  name: Name,
  /**
   * What the source speaks. Unset: mcp. No default in the schema, so a document written before the
   * field parses, renders and hashes as it did.
   */
  protocol: z.enum(PROTOCOLS, { error: `expected one of ${PROTOCOLS.join(', ')}` }).optional(),
  /** MCP: the server's endpoint. A2A: the agent's base URL (its card is <url>/.well-known/agent-card.json). */
  url: httpUrl('must not carry credentials; use headers with ${VAR} instead'),
  /** protocol a2a only: the agent's interfaces. */
  a2a: A2aSourceSchema.optional(),
  expose: ExposeSchema.default({ mode: 'all' }),
  headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not a valid HTTP header name'), HeaderValueSchema).optional(),
  timeouts: SourceTimeoutsSchema.default({ connect: '5s', response: '60s' }),
  /** OAuth to the upstream; unset: none (headers may still carry a static token). */
  auth: SourceAuthSchema.optional(),
}).superRefine((s, ctx) => {
  if (s.protocol === 'a2a') {
    if (s.a2a === undefined)
      ctx.addIssue({ code: 'custom', path: ['a2a'], message: 'protocol a2a needs an a2a block naming its interfaces (a2a.jsonrpc and/or a2a.rest)' });
    for (const k of MCP_EXPOSE_KEYS)
      if (s.expose[k] !== undefined)
        ctx.addIssue({ code: 'custom', path: ['expose', k], message: `expose.${k} is for MCP sources; an a2a source exposes skills (expose.skills)` });
    // Passthrough relays OAuth paths on the source's origin ungoverned: on an agent's origin they would sit beside its A2A endpoints.
    if (s.auth?.mode === 'passthrough') ctx.addIssue({ code: 'custom', path: ['auth', 'mode'], message: A2A_PASSTHROUGH });
    for (const name of Object.keys(s.headers ?? {}))
      if ((A2A_DECIDED_HEADERS as readonly string[]).includes(name.toLowerCase()))
        ctx.addIssue({ code: 'custom', path: ['headers', name], message: A2A_DECIDED_HEADER });
    return;
  }
  if (s.a2a !== undefined) ctx.addIssue({ code: 'custom', path: ['a2a'], message: 'the a2a block is only used with protocol: a2a' });
  if (s.expose.skills !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['expose', 'skills'],
      message: 'expose.skills is for A2A sources (protocol: a2a); an MCP source exposes tools, resources and prompts',
    });
});
export type Source = z.infer<typeof SourceSchema>;

/** The protocol a source speaks (unset: mcp). */
export function protocolOf(s: { protocol?: Protocol | undefined }): Protocol {
  return s.protocol ?? 'mcp';
}

/** A match names at most one of tool, resource, prompt, skill. */
function oneTargetKind(what: string) {
  return (m: { tool?: unknown; resource?: unknown; prompt?: unknown; skill?: unknown }, ctx: z.RefinementCtx): void => {
    const targets = (['tool', 'resource', 'prompt', 'skill'] as const).filter((k) => m[k] !== undefined);
    if (targets.length > 1) ctx.addIssue({ code: 'custom', message: `${what} matches one kind of target; it names ${targets.join(' and ')}` });
  };
}

export const RuleMatchSchema = strict({
  tool: GlobList.optional(),
  resource: ResourceGlobList.optional(),
  prompt: GlobList.optional(),
  /** A2A: the skill a message names (a2a.skillFrom); a message naming none does not match. */
  skill: GlobList.optional(),
  /** Methods; an A2A method in either generation's spelling (message/send matches SendMessage). */
  method: GlobList.optional(),
  source: GlobList.optional(),
}).superRefine(oneTargetKind('a rule'));
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
  /** This rule's own enforcement (its deny, approve or Cedar verdict); unset: the document's. */
  enforcement: Enforcement.optional(),
}).superRefine((r, ctx) => {
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

export const LIMITS_DEFAULTS = {
  maxBodyBytes: 4 * 1024 * 1024,
  maxFilteredResponseBytes: 16 * 1024 * 1024,
  /** Messages in one JSON-RPC batch; a larger batch is refused whole (-32021). */
  maxBatchMessages: 100,
};

export const LimitsSchema = strict({
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(LIMITS_DEFAULTS.maxBodyBytes),
  maxFilteredResponseBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(LIMITS_DEFAULTS.maxFilteredResponseBytes),
  /** Bytes buffered at once across all requests; unset: maxBufferedBytesFor(). */
  maxBufferedBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(16 * 1024 * 1024 * 1024)
    .optional(),
  maxBatchMessages: z.number().int().min(1).max(100_000).default(LIMITS_DEFAULTS.maxBatchMessages),
}).superRefine((l, ctx) => {
  const need = minBufferedBytes(l);
  if (l.maxBufferedBytes !== undefined && l.maxBufferedBytes < need) {
    ctx.addIssue({
      code: 'custom',
      path: ['maxBufferedBytes'],
      message: `must be at least maxBodyBytes and 4 × maxFilteredResponseBytes (${need}), or one request could never be served`,
    });
  }
});

/** A Host the sidecar answers to besides its own (sidecar/proxy/hosts.ts). */
const AllowedHost = z.string().regex(ALLOWED_HOST, 'expected host or host:port (IPv6 in brackets), no scheme or path');

/** Answers being edited are charged 4 bytes per byte (sidecar/proxy/budget.ts): one of the largest must fit. */
function minBufferedBytes(l: { maxBodyBytes: number; maxFilteredResponseBytes: number }): number {
  return Math.max(l.maxBodyBytes, 4 * l.maxFilteredResponseBytes);
}

/** limits.maxBufferedBytes in effect: as set, else 64 MiB, raised to what one largest request needs. */
export function maxBufferedBytesFor(l: { maxBodyBytes: number; maxFilteredResponseBytes: number; maxBufferedBytes?: number | undefined }): number {
  return l.maxBufferedBytes ?? Math.max(DEFAULT_MAX_BUFFERED_BYTES, minBufferedBytes(l));
}
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export const SERVER_DEFAULTS = {
  allowedOrigins: [] as string[],
  allowedHosts: [] as string[],
  headersTimeout: '30s',
  requestBodyTimeout: '30s',
  keepAliveTimeout: '65s',
  slowReaderTimeout: '30s',
  maxConnections: 1024,
};

/** The proxy listener. Timeouts and the connection cap apply to connections accepted after a reload. */
export const ServerSchema = strict({
  allowedOrigins: z.array(z.string()).default([]),
  /** Host header values accepted besides loopback and the bind address (DNS-rebinding protection). */
  allowedHosts: z.array(AllowedHost).max(256).default([]),
  /** From a new connection (or a later request's first byte) to the end of the request's headers. */
  headersTimeout: PositiveDuration.default(SERVER_DEFAULTS.headersTimeout),
  /** From the end of the headers to the end of the body of a POST (not the response: streams and held calls may be long). */
  requestBodyTimeout: PositiveDuration.default(SERVER_DEFAULTS.requestBodyTimeout),
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeout: PositiveDuration.default(SERVER_DEFAULTS.keepAliveTimeout),
  /** An edited answer holds its size of limits.maxBufferedBytes until the client has read it: a client that does not within this is disconnected. */
  slowReaderTimeout: PositiveDuration.default(SERVER_DEFAULTS.slowReaderTimeout),
  /** Connections open at once on the proxy port; beyond it new ones are closed at accept. */
  maxConnections: z.number().int().min(1).max(1_000_000).default(SERVER_DEFAULTS.maxConnections),
});

/**
 * The slowest rate limit: one call per 100 minutes, so `retryAfterMs` stays at most 6 000 000 (well
 * within the 2^31 − 1 ms a setTimeout can wait; beyond it timers fire at once). Slower than that
 * is a quota, which in-memory buckets that start full after a restart cannot keep anyway.
 */
export const MIN_RATE_LIMIT_PER_MINUTE = 0.01;

/** A token bucket: `burst` at once, then `perMinute` sustained. */
const RateSchema = strict({
  perMinute: z.number().min(MIN_RATE_LIMIT_PER_MINUTE, `at least ${MIN_RATE_LIMIT_PER_MINUTE} (one call per 100 minutes)`).max(1_000_000),
  burst: z.number().int().min(1).max(1_000_000),
});
const RATE_DEFAULTS = { client: { perMinute: 30, burst: 10 }, workload: { perMinute: 120, burst: 30 } };

/** Gate 4 in the sidecar: limits and timings of calls waiting for a human (docs/approvals.md). */
export const ApprovalsSchema = strict({
  /** Calls waiting for a decision at once: in this sidecar (the workload), and per client. */
  maxPending: strict({
    workload: z.number().int().min(1).max(100_000).default(100),
    client: z.number().int().min(1).max(100_000).default(20),
  }).default({ workload: 100, client: 20 }),
  /** The approval timeout when the rule sets none and the channel's is not known to the sidecar (cluster mode). */
  defaultTimeout: PositiveDuration.default('10m'),
  /** A task's ttl when the client asks for none; raised to outlive the approval timeout. */
  taskTtl: PositiveDuration.default('1h'),
  /** The longest ttl a client may ask for (never below the approval timeout plus a minute). */
  maxTaskTtl: PositiveDuration.default('24h'),
  /** pollInterval suggested to clients in tasks. */
  pollInterval: PositiveDuration.default('5s'),
  /** Keep-alive comment (and progress notification) interval on held calls and blocking tasks/result. */
  heldKeepAlive: PositiveDuration.default('15s'),
  /** Tasks kept (running or finished) across all clients; beyond it the client keeping most (if more than the caller) loses its oldest finished. */
  maxRetainedTasks: z.number().int().min(1).max(1_000_000).default(1000),
  /** Tasks kept per client (owner); beyond it the client's own oldest finished task goes (anonymous clients: refused). */
  maxRetainedTasksPerClient: z.number().int().min(1).max(1_000_000).default(100),
  /** The largest task result ThoughtGate keeps for tasks/result; a larger one becomes -32024. */
  maxTaskResultBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  /** Bytes of task results kept across all clients; beyond it a client's own oldest results go, else -32024. */
  maxRetainedTaskBytes: z
    .number()
    .int()
    .min(1024)
    .max(4 * 1024 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  /** How fast new approval requests may be created: per client, and for the whole workload (token buckets). */
  rate: strict({
    client: RateSchema.default(RATE_DEFAULTS.client),
    workload: RateSchema.default(RATE_DEFAULTS.workload),
  }).default(RATE_DEFAULTS),
});
export type Approvals = z.infer<typeof ApprovalsSchema>;
export const APPROVALS_DEFAULTS: Approvals = {
  maxPending: { workload: 100, client: 20 },
  defaultTimeout: '10m',
  taskTtl: '1h',
  maxTaskTtl: '24h',
  pollInterval: '5s',
  heldKeepAlive: '15s',
  maxRetainedTasks: 1000,
  maxRetainedTasksPerClient: 100,
  maxTaskResultBytes: 4 * 1024 * 1024,
  maxRetainedTaskBytes: 64 * 1024 * 1024,
  rate: RATE_DEFAULTS,
};

/** The A2A task owner table's defaults (sidecar/a2a/tasks.ts); `a2a.tasks` in the document sets them. */
export const A2A_TASKS_DEFAULTS = {
  ttl: '24h',
  maxEntries: 50_000,
  maxPerOwner: 5_000,
  maxOwners: 1_000,
  contextTombstone: '7d',
  maxTombstones: 50_000,
  rate: { perMinute: 600, burst: 120 },
};

/**
 * The A2A task owner table (task isolation, docs/configuration.md "a2a"): one per sidecar, across its
 * A2A sources. Every key optional, no schema defaults (a document without them renders and hashes
 * as before); the sidecar fills in A2A_TASKS_DEFAULTS.
 */
export const A2aTasksSchema = strict({
  /** How long a task or context id stays reachable after it was created or last used. */
  ttl: PositiveDuration.optional(),
  /** Ids (tasks and contexts) kept in all; when full, the client holding most loses its oldest. */
  maxEntries: z.number().int().min(1).max(10_000_000).optional(),
  /** Ids kept per client; beyond it the client's own oldest go. */
  maxPerOwner: z.number().int().min(1).max(10_000_000).optional(),
  /** Clients holding ids (per source); a new one beyond it is refused. */
  maxOwners: z.number().int().min(1).max(1_000_000).optional(),
  /** How long an expired or evicted context id stays refused for everyone. */
  contextTombstone: PositiveDuration.optional(),
  /** Such context ids kept; beyond it the oldest is forgotten. */
  maxTombstones: z.number().int().min(0).max(10_000_000).optional(),
  /** New tasks a client may start: `burst` at once, then `perMinute`. */
  rate: RateSchema.optional(),
}).superRefine((t, ctx) => {
  const entries = t.maxEntries ?? A2A_TASKS_DEFAULTS.maxEntries;
  for (const k of ['maxPerOwner', 'maxOwners'] as const) {
    const v = t[k] ?? A2A_TASKS_DEFAULTS[k];
    if (v > entries)
      ctx.addIssue({
        code: 'custom',
        path: [t[k] !== undefined ? k : 'maxEntries'],
        message: `${k} (${v}) must not exceed maxEntries (${entries})${t[k] === undefined ? ` (${k} is ${v} unless set)` : ''}`,
      });
  }
});
export type A2aTasks = z.infer<typeof A2aTasksSchema>;

/** Sidecar-wide A2A settings (per-source ones are a source's `a2a` block). */
export const A2aSettingsSchema = strict({
  tasks: A2aTasksSchema.optional(),
});

export const RateLimitMatchSchema = strict({
  source: GlobList.optional(),
  tool: GlobList.optional(),
  resource: ResourceGlobList.optional(),
  prompt: GlobList.optional(),
  /** A2A: the skill a message names (a2a.skillFrom); a message naming none does not match. */
  skill: GlobList.optional(),
  /** A2A methods, in either generation's spelling (message/send matches SendMessage), as in rules. */
  method: GlobList.optional(),
})
  .superRefine(oneTargetKind('a rate limit'))
  .superRefine((m, ctx) => {
    // A limit naming a method or a skill counts A2A calls; tool/resource/prompt are MCP's.
    if (m.method !== undefined && (m.tool !== undefined || m.resource !== undefined || m.prompt !== undefined))
      ctx.addIssue({ code: 'custom', message: 'a rate limit with method counts A2A calls: it cannot name a tool, resource or prompt' });
  });
/**
 * A rate limit (docs/configuration.md, `rateLimits`): a token bucket per (limit, source) in this
 * sidecar, or with `per: target` per (limit, source, tool or resource or prompt). Every matching
 * limit applies; a call needs a token from each.
 */
export const RateLimitSchema = strict({
  /** The `rule` of the error and the metric; unset: `rateLimits[<index>]`. */
  name: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit')
    .optional(),
  match: RateLimitMatchSchema.default({}),
  /**
   * Whose calls share a bucket. Unset or `limit`: all the calls it matches (per source), whatever
   * the name. `target`: each tool, resource (URI without query) or prompt its own. No schema default,
   * so a policy written before the field renders (and hashes) as it did.
   */
  per: z.enum(['limit', 'target']).optional(),
  perMinute: z.number().min(MIN_RATE_LIMIT_PER_MINUTE, `at least ${MIN_RATE_LIMIT_PER_MINUTE} (one call per 100 minutes)`).max(1_000_000),
  burst: RateSchema.shape.burst,
});
export type RateLimit = z.infer<typeof RateLimitSchema>;

function rateLimitChecks(doc: { rateLimits: { name?: string | undefined }[] }, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  doc.rateLimits.forEach((r, i) => {
    if (r.name === undefined) return;
    if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['rateLimits', i, 'name'], message: `duplicate rate limit name "${r.name}"` });
    seen.add(r.name);
  });
}

/** The action for what no rule matched. Not `approve`: that needs a channel, which only a rule names. */
export const DefaultAction = z.enum(['forward', 'deny', 'policy'], {
  error: 'expected one of forward, deny, policy (for approval by default, end the rules with `match: {}` and `action: approve`)',
});

/** Fields shared by thoughtgate.yaml and GovernancePolicy.spec. */
export const policyFields = {
  /** Unset: enforce. No default in the schema, so a policy written before the field renders (and hashes) as it did. */
  enforcement: Enforcement.optional(),
  sources: z.array(SourceSchema).default([]),
  rules: z.array(RuleSchema).default([]),
  defaultAction: DefaultAction.default('deny'),
  cedar: CedarSchema.optional(),
  egress: EgressSchema.default({ allow: [], deny: [] }),
  limits: LimitsSchema.default(LIMITS_DEFAULTS),
  server: ServerSchema.default(SERVER_DEFAULTS),
  approvals: ApprovalsSchema.default(APPROVALS_DEFAULTS),
  /** Token buckets for tools/call, resources/read and prompts/get (and A2A calls, by method or skill) that gates 1–3 forward. */
  rateLimits: z.array(RateLimitSchema).max(256).default([]),
  /** Sidecar-wide A2A settings. No default in the schema, so a policy written before the field renders (and hashes) as it did. */
  a2a: A2aSettingsSchema.optional(),
};

function documentChecks(
  doc: { sources: { name: string }[]; rules: { action: string }[]; defaultAction: string; cedar?: unknown; rateLimits: { name?: string | undefined }[] },
  ctx: z.RefinementCtx,
): void {
  rateLimitChecks(doc, ctx);
  if (!doc.cedar) {
    doc.rules.forEach((r, i) => {
      if (r.action === 'policy')
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'action'],
          message: 'action "policy" asks Cedar, but there is no cedar section (add cedar.policies)',
        });
    });
    if (doc.defaultAction === 'policy')
      ctx.addIssue({
        code: 'custom',
        path: ['defaultAction'],
        message: 'defaultAction "policy" asks Cedar, but there is no cedar section (add cedar.policies)',
      });
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

/**
 * Standalone approvals: every approval channel a rule or a Cedar `@approve` names must be listed
 * (Cedar's are checked where the policies compile, sidecar/snapshot.ts). Without the key at all,
 * calls that need approval are refused with -32006.
 */
function approvalChannelChecks(doc: { rules: { approval?: { channel: string } }[]; approvalChannels?: { name: string }[] }, ctx: z.RefinementCtx): void {
  if (!doc.approvalChannels) return;
  const names = new Set<string>();
  doc.approvalChannels.forEach((c, i) => {
    if (names.has(c.name)) ctx.addIssue({ code: 'custom', path: ['approvalChannels', i, 'name'], message: `duplicate approval channel name "${c.name}"` });
    names.add(c.name);
  });
  doc.rules.forEach((r, i) => {
    if (r.approval && !names.has(r.approval.channel)) {
      ctx.addIssue({
        code: 'custom',
        path: ['rules', i, 'approval', 'channel'],
        message: `no approvalChannels entry is named "${r.approval.channel}" (listed: ${[...names].join(', ') || 'none'})`,
      });
    }
  });
}

/** thoughtgate.yaml for the standalone sidecar: the policy document plus the workload identity and its approval channels. */
export const ConfigFileSchema = strict({
  ...policyFields,
  identity: IdentitySchema.optional(),
  /** Standalone only: where humans decide (the sidecar talks to Slack itself). */
  approvalChannels: z.array(FileApprovalChannelSchema).optional(),
}).superRefine((doc, ctx) => {
  documentChecks(doc, ctx);
  approvalChannelChecks(doc, ctx);
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;
export type ConfigFileInput = z.input<typeof ConfigFileSchema>;

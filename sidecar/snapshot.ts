// A config snapshot: the validated document compiled once into everything a request needs.
// Snapshots are immutable; a reload compiles a new one and swaps a single reference, so a request
// that started on the old snapshot finishes on it.
import { maxBufferedBytesFor, type A2aSource, type Enforcement, type Identity, type PolicyDocument, type SecretValue } from '../api/config.js';
import { parseDuration } from '../api/duration.js';
import type { RenderedCedar } from '../api/crds.js';
import { compilePoliciesFromJson, type CompiledPolicies } from '../policy/cedar/policies.js';
import type { GateInputs } from '../policy/gates/decide.js';
import { sourceMayNeedApproval } from '../policy/gates/approval-tools.js';
import type { ApprovalSettings } from './approvals/engine.js';
import { compileEgressList, type EgressRules } from './proxy/egress-rules.js';
import { compileRateLimits, type CompiledRateLimit } from './proxy/rate-limit.js';
import { taskOwnerBounds, type TaskOwnerBounds } from './a2a/task-bounds.js';
import { compileRules } from '../policy/gates/rules.js';
import { compileVisibility, type Visibility } from '../policy/gates/visibility.js';
import { compileAuth, type CompiledAuth } from './oauth/compile.js';
import { credentialRefs, NO_CREDENTIALS, resolveHeaders, type CredentialLookup, type SourceHeaders } from './credentials/headers.js';

export interface CompiledSource {
  name: string;
  url: URL;
  /** scheme://host:port, the key of the upstream connection pool. */
  origin: string;
  /** Path and query sent upstream. */
  path: string;
  visibility: Visibility;
  /**
   * The configured headers as sent upstream now: literal values, and credentials as the store
   * holds them at this moment (a rotation applies to the next call). Not ok while a credential is
   * missing or invalid: calls to the source are then denied (-32025).
   */
  headers(): SourceHeaders;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  /** Some tools/call on this source can need approval (tools/list then advertises tasks for them). */
  mayNeedApproval: boolean;
  /** OAuth to the upstream (sidecar/oauth/); null: none. */
  auth: CompiledAuth | null;
  /** What the source speaks: served under /mcp/<name> or /a2a/<name> (sidecar/a2a/). */
  protocol: 'mcp' | 'a2a';
  /** protocol a2a: its interfaces, versions and skillFrom; null for MCP sources. */
  a2a: A2aSource | null;
}

export interface Snapshot {
  generation: number;
  hash: string;
  loadedAt: Date;
  sources: ReadonlyMap<string, CompiledSource>;
  /** `enforcement`: the document's (policy/gates/enforcement.ts), read by the enforcement step after decide(). */
  gates: Omit<GateInputs, 'visibility'> & { enforcement: Enforcement };
  /** The GovernancePolicy this config is (cluster), null standalone: audit records name it. */
  policy: string | null;
  /** Forward-proxy destinations that are not sources: deny wins over allow; unlisted is denied. */
  egress: EgressRules;
  maxBodyBytes: number;
  maxFilteredResponseBytes: number;
  maxBufferedBytes: number;
  maxBatchMessages: number;
  /** The proxy listener's timeouts (ms) and connection cap. */
  server: { headersTimeoutMs: number; requestBodyTimeoutMs: number; keepAliveTimeoutMs: number; slowReaderTimeoutMs: number; maxConnections: number };
  allowedOrigins: ReadonlySet<string>;
  /** Host header values accepted besides loopback and the bind address (sidecar/proxy/hosts.ts). */
  allowedHosts: readonly string[];
  approvals: ApprovalSettings;
  /** `rateLimits`, compiled (proxy/rate-limit.ts). */
  rateLimits: CompiledRateLimit[];
  /** `a2a.tasks`: the A2A task owner table's bounds (a2a/tasks.ts; the table outlives reloads). */
  a2aTasks: TaskOwnerBounds;
  /** Every credential the snapshot's sources use: what the credential store watches while it serves. */
  credentialRefs: SecretValue[];
}

/** A source's headers, not ok while its OAuth client secret is unreadable (the reason names it, never a value). */
function withClientSecret(h: SourceHeaders, secret: { ok: true } | { ok: false; reason: string }): SourceHeaders {
  if (secret.ok) return h;
  const reason = `auth.clientSecret: ${secret.reason}`;
  return h.ok ? { ok: false, reason } : { ok: false, reason: `${h.reason}; ${reason}` };
}

export type CompileResult = { ok: true; snapshot: Snapshot } | { ok: false; errors: string[] };

function ms(d: string): number {
  const v = parseDuration(d);
  if (typeof v !== 'number') throw new Error(v.error); // unreachable: the schema validated it
  return v;
}

export function compileSnapshot(
  doc: PolicyDocument & { approvalChannels?: readonly { name: string }[] },
  identity: Identity,
  meta: {
    hash: string;
    generation: number;
    policy?: string;
    approvalChannels?: ReadonlySet<string>;
    credentials?: CredentialLookup;
    /** The Cedar text as the operator parsed it (cluster): with it, cedar-wasm is not loaded unless a policy or call needs it. */
    cedar?: RenderedCedar;
  },
): CompileResult {
  const errors: string[] = [];
  let cedar: CompiledPolicies | null = null;
  if (doc.cedar) {
    const c = compilePoliciesFromJson(doc.cedar.policies, meta.cedar);
    if (c.ok) cedar = c.policies;
    else errors.push(...c.errors);
  }
  // Standalone, every channel an @approve names must be an approvalChannels entry (rules are
  // checked by the schema, with their position in the file).
  const channels = doc.approvalChannels ? new Set(doc.approvalChannels.map((c) => c.name)) : meta.approvalChannels;
  if (cedar && channels) {
    for (const p of cedar.policies) {
      if (p.approveChannel !== undefined && !channels.has(p.approveChannel)) {
        errors.push(
          `cedar.policies:${p.line}:${p.column}: policy "${p.id}": @approve("${p.approveChannel}") names no approvalChannels entry (listed: ${[...channels].join(', ') || 'none'})`,
        );
      }
    }
  }
  // Egress entries are compared with canonical addresses and names (proxy/destination.ts).
  const allow = compileEgressList(doc.egress.allow, 'egress.allow');
  const deny = compileEgressList(doc.egress.deny, 'egress.deny');
  errors.push(...allow.errors, ...deny.errors);
  if (errors.length > 0) {
    cedar?.dispose(); // no snapshot will own it
    return { ok: false, errors };
  }

  const sources = new Map<string, CompiledSource>();
  const store = meta.credentials ?? NO_CREDENTIALS;
  for (const s of doc.sources) {
    const url = new URL(s.url);
    const configured = s.headers ?? {};
    const auth = compileAuth(url, s.auth);
    const clientSecret = auth?.mode === 'clientCredentials' ? auth.clientSecret : null;
    sources.set(s.name, {
      name: s.name,
      url,
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      visibility: compileVisibility(s.expose),
      // An OAuth client secret that cannot be read denies calls like a header's credential (-32025, named on /ready).
      headers: clientSecret ? () => withClientSecret(resolveHeaders(configured, store), store.get(clientSecret)) : () => resolveHeaders(configured, store),
      connectTimeoutMs: ms(s.timeouts.connect),
      responseTimeoutMs: ms(s.timeouts.response),
      mayNeedApproval: false,
      auth,
      protocol: s.protocol ?? 'mcp',
      a2a: s.a2a ?? null,
    });
  }
  const rules = compileRules(doc.rules);
  const enforcement = doc.enforcement ?? 'enforce';
  const gateRules = { rules, defaultAction: doc.defaultAction, cedar, enforcement };
  for (const s of sources.values()) s.mayNeedApproval = sourceMayNeedApproval(gateRules, s.name);
  const a = doc.approvals;
  return {
    ok: true,
    snapshot: {
      generation: meta.generation,
      hash: meta.hash,
      loadedAt: new Date(),
      sources,
      gates: { rules, defaultAction: doc.defaultAction, cedar, identity, enforcement },
      policy: meta.policy ?? null,
      egress: { allow: allow.entries, deny: deny.entries },
      maxBodyBytes: doc.limits.maxBodyBytes,
      maxFilteredResponseBytes: doc.limits.maxFilteredResponseBytes,
      maxBufferedBytes: maxBufferedBytesFor(doc.limits),
      maxBatchMessages: doc.limits.maxBatchMessages,
      rateLimits: compileRateLimits(doc.rateLimits),
      a2aTasks: taskOwnerBounds(doc.a2a?.tasks),
      server: {
        headersTimeoutMs: ms(doc.server.headersTimeout),
        requestBodyTimeoutMs: ms(doc.server.requestBodyTimeout),
        keepAliveTimeoutMs: ms(doc.server.keepAliveTimeout),
        slowReaderTimeoutMs: ms(doc.server.slowReaderTimeout),
        maxConnections: doc.server.maxConnections,
      },
      allowedOrigins: new Set(doc.server.allowedOrigins),
      allowedHosts: doc.server.allowedHosts,
      approvals: {
        maxPendingWorkload: a.maxPending.workload,
        maxPendingClient: a.maxPending.client,
        defaultTimeoutMs: ms(a.defaultTimeout),
        taskTtlMs: ms(a.taskTtl),
        maxTaskTtlMs: ms(a.maxTaskTtl),
        pollIntervalMs: ms(a.pollInterval),
        keepAliveMs: ms(a.heldKeepAlive),
        maxRetainedTasks: a.maxRetainedTasks,
        maxRetainedTasksPerClient: a.maxRetainedTasksPerClient,
        maxTaskResultBytes: a.maxTaskResultBytes,
        maxRetainedTaskBytes: a.maxRetainedTaskBytes,
        rate: a.rate,
      },
      // An OAuth client secret (auth.clientSecret) is watched like a header's credential.
      credentialRefs: doc.sources.flatMap((s) => [...credentialRefs(s.headers), ...(s.auth?.clientSecret ? [s.auth.clientSecret] : [])]),
    },
  };
}

/**
 * Gate 3: one Cedar decision per call.
 *
 * Entity model (what policies can refer to):
 * - principal `ThoughtGate::Workload::"<namespace>/<serviceAccount>"`, attributes `namespace`,
 *   `serviceAccount`, `pod`; the pod's labels are entity tags
 *   (`principal.hasTag("team") && principal.getTag("team") == "payments"`); member of
 *   `ThoughtGate::Namespace::"<namespace>"` (`principal in ThoughtGate::Namespace::"prod"`).
 * - action `ThoughtGate::Action::"<mcp method>"`, e.g. `"tools/call"`, `"resources/read"`, `"prompts/get"`.
 * - resource, by what the call names:
 *   `ThoughtGate::Tool::"<source>/<tool>"`, `ThoughtGate::Resource::"<source>/<uri>"`,
 *   `ThoughtGate::Prompt::"<source>/<prompt>"`, or for methods without a named target
 *   `ThoughtGate::Method::"<source>/<method>"`; attributes `name` (tool name, uri, prompt name or
 *   method) and `source`; member of `ThoughtGate::Source::"<source>"`
 *   (`resource in ThoughtGate::Source::"github"`).
 * - context `{ arguments, source, method, time }`: `arguments` as normalise.ts describes,
 *   `time` a Cedar `datetime` of the decision (UTC, millisecond precision):
 *   `context.time < datetime("2026-12-24")`, `context.time.toTime() < duration("18h")`,
 *   `context.time.offset(duration("1h"))`.
 * - A2A calls (issue 13): action `ThoughtGate::Action::"<canonical 1.0 method>"` (SendMessage
 *   whichever generation was sent), resource `ThoughtGate::Agent::"<source>"` (attributes `name`
 *   and `source` = the source, member of its Source), context `{ protocol: "a2a", version,
 *   binding, source, method, skill, metadata, parts: [{kind, mediaType, bytes, host}], partKinds,
 *   mediaTypes, urlHosts, urlSchemes (sets: Cedar cannot quantify over parts), partCount, totalBytes, taskId, contextId,
 *   referenceTaskIds, pushUrl, pushAuth, tenant, requestMetadata (params.metadata), extensions (a set), time }` and `text`
 *   only when the caller collected it (cedarReadsText); `metadata` normalised as arguments are,
 *   absent strings "" (policy/gates/a2a-operation.ts).
 *
 * The source is a configured source name and must not contain "/" (else `error`), so a
 * resource id's first segment is always its source.
 *
 * Two engines, one meaning: a policy set whose policies are all of the shapes direct/compile.ts
 * models is decided by JavaScript closures (a few µs); any other set, and a request the direct
 * model cannot represent exactly, by cedar-wasm. The tests compare the two on generated policies
 * and requests (direct/*.test.ts); `compilePolicies(…, { engine: 'wasm' })` forces wasm.
 *
 * Cost, not meaning, on the wasm path: converting the request inside wasm and running each policy
 * dominate a decision, so (none of this changes a decision — the tests compare against the plain form):
 * - only the principal and the resource are sent as entities: Cedar resolves `in` through their
 *   parents without the parent entities themselves, which carry no attributes;
 * - only the policies whose scope can match the call's method and source run (partition.ts);
 * - the context, attributes and tags sent hold only what those policies can observe
 *   (projection.ts); `time`, for one, is sent only when a policy reads it.
 *
 * Outcome: `allow` when a permit applies and no forbid does; `deny` otherwise; `error` when
 * anything went wrong — a policy that failed to evaluate (even one that would only have
 * forbidden), arguments that could not be normalised, or Cedar refusing the request. The caller
 * denies on `error` (fail closed).
 */
import type * as CedarTypes from '@cedar-policy/cedar-wasm/nodejs';
import { cedarEngine } from './engine.js';
import { normaliseArguments, type CedarJson } from './normalise.js';
import type { CompiledPolicies } from './policies.js';
import { pick, project, type Needs } from './projection.js';
import { describeError } from '../../lib/describe-error.js';
import { contextOf, decideDirect, type DirectInput, directRequest, RESOURCE_TYPE, resourceId } from './direct/decide.js';

export type TargetKind = keyof typeof RESOURCE_TYPE;

/** A call as Cedar decides it: what the direct evaluator reads, and the raw arguments. */
export interface CedarInput extends DirectInput {
  /** MCP: the tool/prompt arguments (context.arguments). A2A: the message metadata (context.metadata). */
  arguments: unknown;
  /**
   * A2A calls only (policy/gates/operation.ts A2aFacts): each member becomes a context attribute
   * (skill, parts, partCount, totalBytes, taskId, contextId, referenceTaskIds, pushUrl, pushAuth, urlSchemes, requestMetadata,
   * tenant, version, binding; text when collected), normalised as arguments are.
   */
  a2a?: object | undefined;
}

/**
 * Whether some policy can read `context.text` (the message text of an A2A call): only then does
 * the caller collect it (describeA2a's `text` option). A policy reading it without it errs (denied).
 */
export function cedarReadsText(compiled: Pick<CompiledPolicies, 'needs'> | null): boolean {
  const c = compiled?.needs.context;
  return c !== undefined && (c.whole || c.children.has('text'));
}

/** The A2A facts as Cedar values, or why they cannot be (the same limits as arguments). */
function a2aFacts(input: CedarInput): { ok: true; value: { [key: string]: CedarJson } | null } | { ok: false; reason: string } {
  if (input.a2a === undefined) return { ok: true, value: null };
  const n = normaliseArguments(input.a2a);
  if (!n.ok) return { ok: false, reason: `A2A call refused: ${n.reason}` };
  return { ok: true, value: n.value as { [key: string]: CedarJson } };
}

export interface CedarDecision {
  decision: 'allow' | 'deny' | 'error';
  /** allow: the determining permits; deny: the determining forbids (none when nothing permits); error: the failing policies. */
  policies: string[];
  /** allow only: a determining permit carries @approve("<channel>"). */
  approveChannel?: string;
  /** One short sentence for the agent and the logs. */
  reason: string;
}

export type CedarRequest = Omit<CedarTypes.StatefulAuthorizationCall, 'preparsedPolicySetId'>;

/**
 * The Cedar request for a call. Pure; fails only when the arguments cannot be normalised.
 * With `needs`, the context and entities hold only what the policies can observe (projection.ts);
 * all of the arguments are normalised and checked against the limits either way.
 */
export function buildRequest(input: CedarInput, needs?: Needs): { ok: true; request: CedarRequest; arguments: CedarJson } | { ok: false; reason: string } {
  const args = normaliseArguments(input.arguments);
  if (!args.ok) return { ok: false, reason: args.reason };
  const a2a = a2aFacts(input);
  if (!a2a.ok) return a2a;
  return { ok: true, arguments: args.value, request: requestFor(input, contextOf(input, args.value, input.now.toISOString(), a2a.value), needs) };
}

function requestFor(input: CedarInput, full: { [key: string]: CedarJson }, needs: Needs | undefined): CedarRequest {
  const { identity, source, target } = input;
  const principal = { type: 'ThoughtGate::Workload', id: `${identity.namespace}/${identity.serviceAccount}` };
  const resource = { type: RESOURCE_TYPE[target.kind], id: resourceId(source, target) };
  const context = needs ? (project(full, needs.context) as { [key: string]: CedarJson }) : full;
  return {
    principal,
    action: { type: 'ThoughtGate::Action', id: input.method },
    resource,
    context,
    entities: [
      {
        uid: principal,
        attrs: pickIf(needs?.principal.attrs, { namespace: identity.namespace, serviceAccount: identity.serviceAccount, pod: identity.pod }),
        parents: [{ type: 'ThoughtGate::Namespace', id: identity.namespace }],
        tags: pickIf(needs?.principal.tags, identity.labels),
      },
      {
        uid: resource,
        attrs: pickIf(needs?.resource.attrs, { name: target.name, source }),
        parents: [{ type: 'ThoughtGate::Source', id: source }],
      },
    ],
  };
}

function pickIf<T>(keys: Set<string> | 'all' | undefined, record: Record<string, T>): Record<string, T> {
  return keys === undefined ? record : pick(record, keys);
}

/** What `thoughtgate explain` shows of a decision: the normalised arguments, or why there are none. */
export interface CedarSeen {
  arguments?: CedarJson;
}

/** One decision. Never throws. `seen`, when given, receives the normalised arguments (for traces). */
export function evaluate(compiled: CompiledPolicies, input: CedarInput, seen?: CedarSeen): CedarDecision {
  try {
    if (compiled.disposed) {
      return { decision: 'error', policies: [], reason: 'the Cedar policy set was replaced by a newer compile and released; denied' };
    }
    // Resource ids are "<source>/<name>"; partition.ts relies on the source having no "/".
    if (input.source === '' || input.source.includes('/')) {
      return { decision: 'error', policies: [], reason: `invalid source name "${input.source}"` };
    }
    const set = compiled.setFor(input.method, input.source);
    // Whole, before projection: what policies may read (projection only drops what none reads).
    const args = normaliseArguments(input.arguments);
    if (!args.ok) return { decision: 'error', policies: [], reason: `${input.a2a ? 'message metadata' : 'tool arguments'} refused: ${args.reason}` };
    const a2a = a2aFacts(input);
    if (!a2a.ok) return { decision: 'error', policies: [], reason: a2a.reason };
    if (seen) seen.arguments = args.value;
    // toISOString throws for an invalid Date on both paths alike.
    const isoNow = input.now.toISOString();
    if (set.direct) {
      const request = directRequest(input, args.value, isoNow, a2a.value);
      const answer = request && decideDirect(set.direct, request);
      if (answer) return interpret(compiled, answer, input);
    }
    // A compile built from JSON compiles its text in wasm now, the first time one is needed.
    const wasmSet = compiled.wasmSetFor(input.method, input.source);
    const answer = cedarEngine().statefulIsAuthorized({
      ...requestFor(input, contextOf(input, args.value, isoNow, a2a.value), wasmSet.needs),
      preparsedPolicySetId: wasmSet.id,
    });
    return interpret(compiled, answer, input);
  } catch (e) {
    // Thrown only for malformed calls (e.g. an invalid Date); the message has no stack.
    return { decision: 'error', policies: [], reason: `Cedar evaluation failed: ${describeError(e)}` };
  }
}

/** Cedar's answer → decision. Pure. */
export function interpret(
  compiled: CompiledPolicies,
  answer: CedarTypes.AuthorizationAnswer,
  input: Pick<CedarInput, 'method' | 'source' | 'target'>,
): CedarDecision {
  if (answer.type === 'failure') {
    return { decision: 'error', policies: [], reason: `Cedar refused the request: ${answer.errors.map((e) => e.message).join('; ')}` };
  }
  const { decision, diagnostics } = answer.response;
  if (diagnostics.errors.length > 0) {
    // Cedar's order is not text order; text order makes the reason stable.
    const ids = inTextOrder(compiled, [...new Set(diagnostics.errors.map((e) => e.policyId))]);
    const first = diagnostics.errors.find((e) => e.policyId === ids[0])!;
    const more = diagnostics.errors.length > 1 ? ` (and ${diagnostics.errors.length - 1} more)` : '';
    return { decision: 'error', policies: ids, reason: `policy ${first.policyId} failed: ${first.error.message}${more}` };
  }
  const ids = inTextOrder(compiled, diagnostics.reason);
  if (decision === 'allow') {
    const approveChannel = ids.map((id) => compiled.byId.get(id)?.approveChannel).find((c) => c !== undefined);
    return approveChannel
      ? { decision: 'allow', policies: ids, approveChannel, reason: `permitted by ${ids.join(', ')}, subject to approval in ${approveChannel}` }
      : { decision: 'allow', policies: ids, reason: `permitted by ${ids.join(', ')}` };
  }
  if (ids.length > 0) return { decision: 'deny', policies: ids, reason: `forbidden by ${ids.join(', ')}` };
  const on = input.target.kind === 'method' || input.target.kind === 'agent' ? input.source : `${input.source}/${input.target.name}`;
  return { decision: 'deny', policies: [], reason: `no policy permits ${input.method} on ${on}` };
}

function inTextOrder(compiled: CompiledPolicies, ids: readonly string[]): string[] {
  const index = (id: string) => compiled.byId.get(id)?.index ?? Number.MAX_SAFE_INTEGER;
  return [...ids].sort((a, b) => index(a) - index(b));
}

/**
 * One decision by the direct evaluator (compile.ts), answered in cedar-wasm's answer shape so that
 * evaluate.ts interprets both paths with the same code: satisfied permits (allow) or satisfied
 * forbids (deny) as the reason, every failing policy as an error. Errors carry Cedar's own wording
 * (compile.ts copies its messages and its operand order) and are not re-run on wasm: calls that
 * make policies fail cost no more than any other, and need no wasm.
 *
 * `null` means "ask wasm": the request holds something the direct model does not represent
 * exactly (text that is not valid Unicode, a time Cedar's datetime cannot hold), or the evaluator
 * met something unexpected. Never a decision of its own.
 */
import type * as CedarTypes from '@cedar-policy/cedar-wasm/nodejs';
import { isWellFormed, type CedarJson } from '../normalise.js';
import type { Identity } from '../../../api/config.js';
import type { DirectPolicy, DirectRequest } from './compile.js';
import { CedarRecord, Datetime, EntityUid, CedarError, fromJson, type Value } from './values.js';

/** The entity type of a call's resource, by what the call names (evaluate.ts's entity model). */
export const RESOURCE_TYPE = {
  tool: 'ThoughtGate::Tool',
  resource: 'ThoughtGate::Resource',
  prompt: 'ThoughtGate::Prompt',
  method: 'ThoughtGate::Method',
  /** A2A: the agent a source names; its id is the source alone (the skill is context.skill). */
  agent: 'ThoughtGate::Agent',
} as const;

/** A resource's id: `<source>/<name>`, or for an agent the source itself. */
export function resourceId(source: string, target: { kind: keyof typeof RESOURCE_TYPE; name: string }): string {
  return target.kind === 'agent' ? source : `${source}/${target.name}`;
}

/** What a call is (evaluate.ts's CedarInput, without the raw arguments). */
export interface DirectInput {
  identity: Identity;
  method: string;
  source: string;
  target: { kind: keyof typeof RESOURCE_TYPE; name: string };
  now: Date;
}

/** ISO text Cedar's datetime reads; years beyond 9999 or before 0 (±YYYYYY) it refuses. */
const PLAIN_ISO = /^\d{4}-/;

/**
 * The context of a call, in Cedar's JSON form. MCP: `{arguments, source, method, time}`. A2A (with
 * its facts, normalised): `{protocol: "a2a", source, method, metadata, time}` and the facts
 * (policy/cedar/evaluate.ts lists them). Both engines read this one function's output.
 */
export function contextOf(
  input: Pick<DirectInput, 'source' | 'method'>,
  args: CedarJson,
  isoNow: string,
  a2a: { readonly [key: string]: CedarJson } | null,
): { [key: string]: CedarJson } {
  const time = { __extn: { fn: 'datetime', arg: isoNow } };
  if (!a2a) return { arguments: args, source: input.source, method: input.method, time };
  return { ...a2a, protocol: 'a2a', source: input.source, method: input.method, metadata: args, time };
}

/** The request as the direct evaluator reads it, or null when only wasm models it exactly. `a2a`: an A2A call's normalised facts. */
export function directRequest(
  input: DirectInput,
  args: CedarJson,
  isoNow: string,
  a2a: { readonly [key: string]: CedarJson } | null = null,
): DirectRequest | null {
  const { identity, source, target, method } = input;
  if (!PLAIN_ISO.test(isoNow)) return null;
  const context = contextOf(input, args, isoNow, a2a);
  if (![identity.namespace, identity.serviceAccount, identity.pod, source, method, target.name].every(isWellFormed)) return null;
  const labels = identity.labels as Record<string, unknown>;
  for (const k in labels) if (!isWellFormed(k) || !isWellFormed(labels[k])) return null;
  const principal = new EntityUid('ThoughtGate::Workload', `${identity.namespace}/${identity.serviceAccount}`);
  const resource = new EntityUid(RESOURCE_TYPE[target.kind], resourceId(source, target));
  const fields = new Map<string, Value>();
  try {
    for (const k in context) fields.set(k, k === 'time' ? new Datetime(BigInt(input.now.getTime())) : fromJson(context[k]!));
  } catch {
    return null;
  }
  return {
    principal,
    action: new EntityUid('ThoughtGate::Action', method),
    resource,
    context: new CedarRecord(fields),
    entities: [
      {
        uid: principal,
        attrs: { namespace: identity.namespace, serviceAccount: identity.serviceAccount, pod: identity.pod },
        tags: identity.labels,
        parent: new EntityUid('ThoughtGate::Namespace', identity.namespace),
      },
      { uid: resource, attrs: { name: target.name, source }, tags: {}, parent: new EntityUid('ThoughtGate::Source', source) },
    ],
  };
}

/** Runs every policy of the set, as Cedar does; null when the evaluator met something it does not model. */
export function decideDirect(policies: readonly DirectPolicy[], request: DirectRequest): CedarTypes.AuthorizationAnswer | null {
  const permits: string[] = [];
  const forbids: string[] = [];
  const errors: { policyId: string; error: { message: string } }[] = [];
  for (const p of policies) {
    try {
      if (p.applies(request)) (p.effect === 'permit' ? permits : forbids).push(p.id);
    } catch (e) {
      if (!(e instanceof CedarError)) return null;
      errors.push({ policyId: p.id, error: { message: e.message } });
    }
  }
  const decision = forbids.length === 0 && permits.length > 0 ? 'allow' : 'deny';
  return {
    type: 'success',
    response: { decision, diagnostics: { reason: decision === 'allow' ? permits : forbids, errors } },
    warnings: [],
  } as unknown as CedarTypes.AuthorizationAnswer;
}

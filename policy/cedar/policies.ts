/**
 * Compiles `cedar.policies` on every config reload.
 *
 * Policy text rules (checked here, reported as `cedar.policies:<line>:<column>: <message>`):
 * - `@id("small-transfers")` names a policy in decisions and logs; without it the policy is
 *   `policy<N>`, N counting policies from 0 in text order. Ids must be unique.
 * - `@approve("<channel>")` on a permit: when that permit allows a call, a human must approve it
 *   through the ApprovalChannel `<channel>`. Not allowed on forbid policies.
 * - Templates (`?principal`, `?resource`) are not supported.
 * - Extension literals (`decimal("…")`, `ip("…")`, `datetime("…")`, `duration("…")`) must be
 *   well formed; Cedar itself would only notice when a request evaluates them, and deny it.
 * - Empty text is a valid policy set that permits nothing.
 *
 * Each compile owns its preparsed sets in Cedar's (thread-local, synchronous) cache: one per
 * scope group (partition.ts), in the record form so that Cedar reports our ids, under ids no other
 * live compile uses. So a failed compile never disturbs the live set, and a snapshot holds an
 * independent CompiledPolicies. Its owner calls dispose() once no request can use it any more:
 * Cedar has no way to drop a preparsed set, so dispose empties them (freeing their memory) and
 * hands their ids to later compiles; a disposed set refuses to evaluate (fail closed).
 *
 * Each set is also compiled to closures (direct/compile.ts) when all its policies are of shapes
 * the direct evaluator models; evaluate.ts then decides without wasm, and the preparsed set serves
 * the requests the direct model cannot represent (and the `engine: 'wasm'` oracle in tests).
 *
 * compilePoliciesFromJson builds the same thing from the parsed form the operator renders into the
 * ConfigMap (api/crds.ts RenderedCedar) without loading cedar-wasm, when every policy compiles to
 * closures; the text is then compiled by wasm only if a request needs it (wasmSetFor).
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type * as CedarTypes from '@cedar-policy/cedar-wasm/nodejs';
import { cedarEngine } from './engine.js';
import { Name } from '../../api/config.js';
import type { RenderedCedar, RenderedCedarPolicy } from '../../api/crds.js';
import { partition, scopeOf, type Plan, type Scope } from './partition.js';
import { addNeeds, newNeeds, type Needs } from './projection.js';
import { compilePolicy, type DirectPolicy } from './direct/compile.js';
import { describeError } from '../../lib/describe-error.js';

export interface CompiledPolicy {
  id: string;
  effect: 'permit' | 'forbid';
  /** Set on permits annotated `@approve("<channel>")`. */
  approveChannel?: string;
  /** Position in text order, from 0. */
  index: number;
  /** Where the policy starts in the source text (1-based). */
  line: number;
  column: number;
}

export interface CompiledPolicies {
  readonly policies: readonly CompiledPolicy[];
  readonly byId: ReadonlyMap<string, CompiledPolicy>;
  /** The parts of the context and entities any policy can observe (see projection.ts). */
  readonly needs: Needs;
  /** The preparsed set holding the policies that can apply to a call (see partition.ts). */
  setFor(method: string, source: string): PreparsedSet;
  /**
   * The set cedar-wasm evaluates for a call the closures cannot decide. Built from JSON, the text
   * is compiled by wasm on the first such call; throws (the caller fails closed) when it cannot be.
   */
  wasmSetFor(method: string, source: string): PreparsedSet;
  /** `wasm`: parsed from the text by cedar-wasm; `json`: built from the operator's parsed form, no wasm loaded. */
  readonly from: 'wasm' | 'json';
  /** With `keepParsed`: the parsed form the operator renders for sidecars. */
  readonly parsed?: RenderedCedar;
  /** All preparsed sets, for diagnostics. */
  readonly sets: readonly PreparsedSet[];
  /**
   * Whether some set is evaluated by cedar-wasm (a policy outside what direct/compile.ts models,
   * or `engine: 'wasm'`). False: decisions never call into wasm — a request the direct model
   * cannot represent exactly (text that is not valid Unicode, a year beyond 9999) still would.
   */
  readonly needsWasmToEvaluate: boolean;
  /** Empties this compile's preparsed sets in Cedar and frees their ids; later evaluations fail closed. Idempotent. */
  dispose(): void;
  readonly disposed: boolean;
}

export interface PreparsedSet {
  /** Id in Cedar's cache, this compile's own until disposed; '' in a compile built from JSON (no Cedar set). */
  id: string;
  policies: readonly string[];
  /** What these policies observe: each call sends only that. */
  needs: Needs;
  /** The same policies as closures (direct/compile.ts), in text order; null when one needs wasm. */
  direct: readonly DirectPolicy[] | null;
}

export type CompileResult = { ok: true; policies: CompiledPolicies } | { ok: false; errors: string[] };

export interface CompileOptions {
  /** Names the text in error messages; default `cedar.policies`. */
  file?: string;
  /** Split the set by scope (partition.ts); default true. */
  partition?: boolean;
  /** `wasm` evaluates every set in cedar-wasm (the oracle the tests compare with); default `auto`. */
  engine?: 'auto' | 'wasm';
  /** Keep each policy's parsed form (CompiledPolicies.parsed), for the operator to render. */
  keepParsed?: boolean;
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Ids of emptied preparsed sets, reused before new ones are made, so reloads do not grow Cedar's cache. */
const freeSetIds: string[] = [];
let setIdCounter = 0;
const takeSetId = (): string => freeSetIds.pop() ?? `thoughtgate-${setIdCounter++}`;
function releaseSetIds(ids: readonly string[]): void {
  for (const id of ids) {
    cedarEngine().preparsePolicySet(id, { staticPolicies: {} });
    freeSetIds.push(id);
  }
}

const EXTENSION_CONSTRUCTORS = new Set(['decimal', 'ip', 'datetime', 'duration']);

/** Never throws: a config reload gets either a set or errors to report. */
export function compilePolicies(text: string, options: CompileOptions = {}): CompileResult {
  try {
    return compile(text, options);
  } catch (e) {
    // Cedar throws only for malformed calls; keep whatever it says, without a stack.
    return { ok: false, errors: [`${options.file ?? 'cedar.policies'}: ${describeError(e)}`] };
  }
}

function compile(text: string, options: CompileOptions): CompileResult {
  const at = locator(text, options.file ?? 'cedar.policies');
  const parts = cedarEngine().policySetTextToParts(text);
  if (parts.type === 'failure') return { ok: false, errors: flatten(parts.errors).map((e) => at.error(e, 0)) };

  const errors: string[] = [];
  let cursor = 0;
  const offsetOf = (part: string): number => {
    // Parts are slices of the source in text order; find each after the previous one.
    const i = text.indexOf(part, cursor);
    if (i < 0) return 0;
    cursor = i + part.length;
    return i;
  };

  for (const t of parts.policy_templates) {
    errors.push(at.charError(text.indexOf(t), 'policy templates are not supported (a policy uses ?principal or ?resource)'));
  }

  const policies: CompiledPolicy[] = [];
  const byId = new Map<string, CompiledPolicy>();
  const texts: Record<string, string> = {};
  const inputs: SetInput[] = [];
  const parsed: RenderedCedarPolicy[] = [];
  textOrder(text, parts.policies).forEach((part, index) => {
    const start = offsetOf(part);
    const json = cedarEngine().policyToJson(part);
    if (json.type === 'failure') {
      // Offsets are relative to the part; shift them to the whole text.
      errors.push(...flatten(json.errors).map((e) => at.error(e, Buffer.byteLength(text.slice(0, start)))));
      return;
    }
    const { line, column } = at.position(start);
    const annotations = json.json.annotations ?? {};
    const effect = json.json.effect;

    let id = `policy${index}`;
    if ('id' in annotations) {
      const v = annotations['id'];
      if (!v) errors.push(at.charError(start, '@id needs a name, e.g. @id("small-transfers")'));
      else id = v;
    }
    const policy: CompiledPolicy = { id, effect, index, line, column };

    if ('approve' in annotations) {
      const channel = annotations['approve'];
      if (effect !== 'permit') errors.push(at.charError(start, `policy "${id}": @approve only applies to permit policies`));
      else if (!channel) errors.push(at.charError(start, `policy "${id}": @approve needs an approval channel, e.g. @approve("finance")`));
      else if (!Name.safeParse(channel).success) {
        errors.push(at.charError(start, `policy "${id}": @approve("${channel}") is not a valid channel name (lowercase letters, digits and "-")`));
      } else policy.approveChannel = channel;
    }

    for (const [fn, arg] of extensionLiterals(json.json)) {
      const problem = checkLiteral(fn, arg);
      if (problem) {
        const lit = text.indexOf(JSON.stringify(arg), start);
        errors.push(at.charError(lit >= start && lit < start + part.length ? lit : start, `policy "${id}": ${fn}(${JSON.stringify(arg)}): ${problem}`));
      }
    }

    const previous = byId.get(id);
    if (previous) {
      errors.push(at.charError(start, `duplicate policy id "${id}" (first used at line ${previous.line})`));
      return;
    }
    byId.set(id, policy);
    policies.push(policy);
    inputs.push({
      id,
      scope: scopeOf(json.json),
      conditions: json.json.conditions,
      direct: options.engine === 'wasm' ? null : directOrNull(id, json.json),
    });
    texts[id] = part;
    if (options.keepParsed) parsed.push({ ...policy, json: json.json as unknown as Record<string, unknown> });
  });
  if (errors.length > 0) return { ok: false, errors };

  const { plan, needs, sets } = planSets(inputs, options, takeSetId);
  const setIds = sets.map((set) => set.id);
  try {
    for (const set of sets) {
      // The record form makes Cedar report our ids in diagnostics; the text form would say policy0….
      const pre = cedarEngine().preparsePolicySet(set.id, { staticPolicies: Object.fromEntries(set.policies.map((id) => [id, texts[id]!])) });
      if (pre.type === 'failure') {
        releaseSetIds(setIds);
        return { ok: false, errors: flatten(pre.errors).map((e) => `${options.file ?? 'cedar.policies'}: ${e.message}`) };
      }
    }
  } catch (e) {
    releaseSetIds(setIds);
    throw e;
  }
  let disposed = false;
  const compiled: CompiledPolicies = {
    policies,
    byId,
    needs,
    sets,
    needsWasmToEvaluate: sets.some((set) => set.direct === null),
    setFor: (method, source) => sets[plan.pick(method, source)]!,
    wasmSetFor: (method, source) => sets[plan.pick(method, source)]!,
    from: 'wasm',
    ...(options.keepParsed ? { parsed: { textSha256: sha256(text), policies: parsed } } : {}),
    dispose() {
      if (disposed) return;
      disposed = true;
      releaseSetIds(setIds);
    },
    get disposed() {
      return disposed;
    },
  };
  return { ok: true, policies: compiled };
}

/**
 * The policies from the parsed form the operator rendered (api/crds.ts RenderedCedar), without
 * loading cedar-wasm, when that form is for this very text and every policy compiles to closures;
 * otherwise compilePolicies(text) as before. The form's conditions are the operator's, trusted like
 * the rest of the ConfigMap: the closures are built from them, not from the text. What is checked
 * here is the form's own consistency (ids, effects and @approve channels as its JSON gives them,
 * indices from 0, positions where the text's policies start; else the compile fails and the sidecar
 * is not ready, naming the error). Whenever the text is compiled (the first request the closures
 * cannot represent), each policy's JSON must be the text's, conditions included; else that and
 * every later wasm decision is an error (fail closed). Never throws.
 */
export function compilePoliciesFromJson(text: string, parsed: RenderedCedar | undefined, options: CompileOptions = {}): CompileResult {
  if (!parsed || options.engine === 'wasm' || options.keepParsed || parsed.textSha256 !== sha256(text)) return compilePolicies(text, options);
  const file = options.file ?? 'cedar.policies';
  const problem = checkParsed(parsed.policies);
  if (problem) return { ok: false, errors: [`${file}: the operator's parsed form of these policies is inconsistent (${problem}); refused`] };
  // Every policy of the text, and only those: the form's positions are where the text's policies
  // start. Else the text decides (and the lazy wasm compile would refuse the form anyway).
  const starts = policyStarts(text);
  if (!starts || starts.length !== parsed.policies.length || parsed.policies.some((p, i) => p.line !== starts[i]!.line || p.column !== starts[i]!.column)) {
    return compilePolicies(text, options);
  }
  const inputs: SetInput[] = [];
  for (const p of parsed.policies) {
    const direct = directOrNull(p.id, p.json);
    if (!direct) return compilePolicies(text, options); // a shape only wasm evaluates
    inputs.push({ id: p.id, scope: scopeOf(p.json as unknown as CedarTypes.PolicyJson), conditions: p.json['conditions'], direct });
  }
  const policies: CompiledPolicy[] = parsed.policies.map(({ json: _json, ...p }) => p);
  const byId = new Map(policies.map((p) => [p.id, p]));
  // No wasm set behind these: wasmSetFor compiles the text when one is needed.
  const { plan, needs, sets } = planSets(inputs, options, () => '');

  let disposed = false;
  let wasm: CompiledPolicies | null = null;
  let wasmError: string | null = null;
  const wasmCompile = (): CompiledPolicies => {
    if (!wasm && !wasmError) {
      const c = compilePolicies(text, { ...options, engine: 'wasm', keepParsed: true });
      if (!c.ok) wasmError = c.errors.join('; ');
      else {
        wasmError = formMismatch(c.policies, policies, parsed.policies);
        if (wasmError) c.policies.dispose();
        else wasm = c.policies;
      }
    }
    if (wasmError) throw new Error(`${file}: cannot evaluate in cedar-wasm: ${wasmError}`);
    return wasm!;
  };
  const compiled: CompiledPolicies = {
    policies,
    byId,
    needs,
    sets,
    needsWasmToEvaluate: false,
    setFor: (method, source) => sets[plan.pick(method, source)]!,
    wasmSetFor: (method, source) => wasmCompile().setFor(method, source),
    from: 'json',
    dispose() {
      if (disposed) return;
      disposed = true;
      wasm?.dispose();
    },
    get disposed() {
      return disposed;
    },
  };
  return { ok: true, policies: compiled };
}

/** What is wrong with a parsed form's claims about its own policies, or null. */
function checkParsed(policies: readonly RenderedCedarPolicy[]): string | null {
  const seen = new Set<string>();
  for (const [i, p] of policies.entries()) {
    const at = `policies[${i}] "${p.id}"`;
    if (p.index !== i) return `${at}: index ${p.index}, expected ${i}`;
    const annotations = (p.json['annotations'] ?? {}) as Record<string, unknown>;
    if (typeof annotations !== 'object' || annotations === null) return `${at}: annotations is not an object`;
    const named = 'id' in annotations ? annotations['id'] : `policy${i}`;
    if (named !== p.id) return `${at}: its JSON names it ${JSON.stringify(named)}`;
    if (seen.has(p.id)) return `${at}: duplicate id`;
    seen.add(p.id);
    if (p.json['effect'] !== p.effect) return `${at}: effect ${p.effect}, its JSON says ${JSON.stringify(p.json['effect'])}`;
    const approve = 'approve' in annotations ? annotations['approve'] : undefined;
    if (approve !== p.approveChannel) return `${at}: approval channel ${JSON.stringify(p.approveChannel)}, its JSON says ${JSON.stringify(approve)}`;
    if (approve !== undefined && (p.effect !== 'permit' || !Name.safeParse(approve).success))
      return `${at}: @approve(${JSON.stringify(approve)}) is not valid here`;
  }
  return null;
}

/**
 * Where each policy of Cedar text starts (1-based line, column in code points), without a parser:
 * a policy ends at the first `;` outside string literals and `//` comments (Cedar's grammar has no
 * other `;`). Null when text follows the last `;` or a string is not closed.
 */
export function policyStarts(text: string): { line: number; column: number }[] | null {
  const out: { line: number; column: number }[] = [];
  let line = 1;
  let lineStart = 0;
  let inPolicy = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\n') {
      line++;
      lineStart = i + 1;
      continue;
    }
    if (ch === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      if (end < 0) break;
      i = end - 1;
      continue;
    }
    if (/\s/.test(ch)) continue;
    if (!inPolicy) {
      out.push({ line, column: [...text.slice(lineStart, i)].length + 1 });
      inPolicy = true;
    }
    if (ch === ';') inPolicy = false;
    else if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\') i++;
        if (text[i] === '\n') {
          line++;
          lineStart = i + 1;
        }
      }
      if (i >= text.length) return null;
    }
  }
  return inPolicy ? null : out;
}

function samePolicies(a: readonly CompiledPolicy[], b: readonly CompiledPolicy[]): boolean {
  const key = (p: CompiledPolicy) => `${p.index}\0${p.id}\0${p.effect}\0${p.approveChannel ?? ''}\0${p.line}\0${p.column}`;
  return a.length === b.length && a.every((p, i) => key(p) === key(b[i]!));
}

/**
 * How the text's own compile (keepParsed) differs from the parsed form, or null. Each policy's JSON
 * (scope, conditions, annotations) too, not only its id and place: the closures decided by the
 * form's conditions, and the text is the source of truth.
 */
function formMismatch(text: CompiledPolicies, policies: readonly CompiledPolicy[], form: readonly RenderedCedarPolicy[]): string | null {
  if (!samePolicies(text.policies, policies)) return 'the text does not hold the policies of its parsed form';
  const differs = form.find((p, i) => !isDeepStrictEqual(p.json, text.parsed!.policies[i]!.json));
  return differs ? `policy "${differs.id}" of the text is not the one of its parsed form (its scope or conditions differ)` : null;
}

/** A policy as the partition and its sets need it: its scope, what it reads, its closures if any. */
interface SetInput {
  id: string;
  scope: Scope;
  conditions: unknown;
  direct: DirectPolicy | null;
}

/**
 * The policies split by the method and source their scope names (partition.ts): each set with what
 * its policies read (projection.ts) and their closures when every one has them; `needs` is what all
 * of them read. Both compiles (from the text, from the operator's parsed form) build their sets here.
 */
function planSets(inputs: readonly SetInput[], options: CompileOptions, idFor: () => string): { plan: Plan; needs: Needs; sets: PreparsedSet[] } {
  const byId = new Map(inputs.map((p) => [p.id, p]));
  const needs = newNeeds();
  for (const p of inputs) addNeeds(needs, p.conditions);
  const plan = partition(inputs, options.partition === false ? 1 : undefined);
  const sets = plan.subsets.map((ids): PreparsedSet => {
    const subsetNeeds = newNeeds();
    for (const id of ids) addNeeds(subsetNeeds, byId.get(id)!.conditions);
    const closures = ids.map((id) => byId.get(id)!.direct);
    return { id: idFor(), policies: ids, needs: subsetNeeds, direct: closures.every((c) => c !== null) ? (closures as DirectPolicy[]) : null };
  });
  return { plan, needs, sets };
}

/** The policy as closures, or null when it uses something only wasm evaluates. */
function directOrNull(id: string, json: unknown): DirectPolicy | null {
  try {
    return compilePolicy(id, json);
  } catch {
    // Unsupported, or a JSON form this compiler misreads: either way wasm decides.
    return null;
  }
}

/**
 * Cedar returns the parts ordered by its own ids as strings (policy0, policy1, policy10, policy11, …,
 * policy2, …), not in text order: put them back, checking that each then follows the previous one
 * in the text (else they are kept as given).
 */
function textOrder(text: string, parts: readonly string[]): readonly string[] {
  const ids = Array.from({ length: parts.length }, (_, i) => `policy${i}`).sort();
  const ordered: string[] = [];
  ids.forEach((id, k) => {
    ordered[Number(id.slice('policy'.length))] = parts[k]!;
  });
  let cursor = 0;
  for (const part of ordered) {
    const i = text.indexOf(part, cursor);
    if (i < 0) return parts;
    cursor = i + part.length;
  }
  return ordered;
}

/** Cedar nests further errors under `related`; a person wants them all, in order. */
function flatten(errors: readonly CedarTypes.DetailedError[]): CedarTypes.DetailedError[] {
  return errors.flatMap((e) => [e, ...flatten(e.related ?? [])]);
}

/** Cedar source locations are UTF-8 byte offsets; people count lines and characters. */
function locator(text: string, file: string) {
  const bytes = Buffer.from(text, 'utf8');
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const position = (charIndex: number) => {
    const at = Math.max(0, Math.min(charIndex, text.length));
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    // Columns count characters (code points), as a person sees them.
    return { line: lo + 1, column: [...text.slice(lineStarts[lo], at)].length + 1 };
  };
  const charError = (charIndex: number, msg: string) => {
    const { line, column } = position(charIndex);
    return `${file}:${line}:${column}: ${msg}`;
  };
  const error = (e: CedarTypes.DetailedError, byteBase: number) => {
    const loc = e.sourceLocations?.[0];
    let msg = e.message;
    if (loc?.label) msg += ` (${loc.label})`;
    if (e.help) msg += `; ${e.help}`;
    if (!loc) return `${file}: ${msg}`;
    const charIndex = bytes.subarray(0, byteBase + loc.start).toString('utf8').length;
    return charError(charIndex, msg);
  };
  return { position, charError, error };
}

/** `decimal("…")`-style calls with a literal argument, anywhere in a policy's JSON form. */
function extensionLiterals(node: unknown, out: [string, string][] = []): [string, string][] {
  if (Array.isArray(node)) {
    for (const n of node) extensionLiterals(n, out);
  } else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (EXTENSION_CONSTRUCTORS.has(k) && Array.isArray(v) && v.length === 1) {
        const arg = (v[0] as { Value?: unknown } | null)?.Value;
        if (typeof arg === 'string') out.push([k, arg]);
      }
      extensionLiterals(v, out);
    }
  }
  return out;
}

/** Asks Cedar itself whether the literal is valid, so the rules are exactly Cedar's. */
function checkLiteral(fn: string, arg: string): string | null {
  const r = cedarEngine().checkParseContext({ context: { v: { __extn: { fn, arg } } } });
  if (r.type === 'success') return null;
  const e = r.errors[0];
  const msg = (e?.message ?? 'invalid').replace(/^error while evaluating `\w+` extension function: /, '');
  return e?.help ? `${msg}; ${e.help}` : msg;
}

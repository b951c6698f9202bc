// Pure core of the GovernancePolicy reconciler: a namespace's policies (and its ApprovalChannels)
// in, the rendered sidecar config and each policy's validity out. An invalid policy never replaces
// its last good rendering: that entry is carried over from the ConfigMap currently in force.
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  GovernancePolicySpecSchema,
  parseRenderedCedar,
  RENDERED_CEDAR_VERSION,
  RENDERED_KIND,
  RenderedConfigSchema,
  type RenderedCedar,
  type RenderedCedarDocument,
  type RenderedConfig,
  type RenderedPolicy,
} from '../api/crds.js';
import { clusterCredentialIssues } from '../api/config.js';
import { formatIssues, formatPath } from '../api/issues.js';
import { API_VERSION } from '../api/wellknown.js';
import { compilePolicies } from '../policy/cedar/policies.js';
import { canonicalJson } from '../api/canonical.js';
import { configHash } from '../policy/config/load.js';
import { substituteForValidation } from '../policy/config/env.js';
import { configWarnings } from '../policy/config/warnings.js';

export interface PolicyObject {
  metadata: { name: string; namespace: string; generation?: number; uid?: string };
  spec?: unknown;
}

/** `cedar`: spec.cedar.policies as parsed, for the ConfigMap's cedar.json. */
/** `warnings`: what loads but probably does not mean what was written (policy/config/warnings.ts); absent when none. */
export type Validity = { valid: true; rendered: RenderedPolicy; cedar?: RenderedCedar; warnings?: string[] } | { valid: false; errors: string[] };

export interface RenderResult {
  /** Null when the namespace has nothing to render: the ConfigMap should not exist. */
  config: RenderedConfig | null;
  /** config.yaml as it goes into the ConfigMap. */
  text: string | null;
  /** cedar.json as it goes into the ConfigMap (CONFIGMAP_CEDAR_KEY); null when no policy has Cedar. */
  cedarText: string | null;
  hash: string | null;
  byPolicy: Map<string, Validity & { servingGeneration?: number }>;
}

/** Validates one policy's spec the way a sidecar will read it, plus what only the operator knows. */
export function validatePolicy(obj: PolicyObject, channels: ReadonlySet<string>): Validity {
  const raw = obj.spec !== null && typeof obj.spec === 'object' && !Array.isArray(obj.spec) ? (obj.spec as Record<string, unknown>) : {};
  const literal = secretRefsWithVariables(raw);
  if (literal.length > 0) return { valid: false, errors: literal };
  // ${VAR} values are only known in the pod: validate with each variable's default or a placeholder.
  const sub = substituteForValidation(raw);
  if (sub.errors.length > 0) return { valid: false, errors: sub.errors.map((e) => `spec.${e.path.join('.')}: ${e.message}`) };
  const parsed = GovernancePolicySpecSchema.safeParse(sub.value);
  if (!parsed.success) return { valid: false, errors: formatIssues(parsed.error).map((e) => `spec.${e}`) };
  const { podSelector, priority, ...doc } = parsed.data;
  // Credentials come from Secrets only (docs/security.md, custody); the document keeps the
  // reference, which is all the ConfigMap ever holds.
  const errors: string[] = clusterCredentialIssues(doc).map((i) => `spec.${formatPath(i.path)}: ${i.message}`);
  const referenced = new Set<string>();
  for (const r of doc.rules) if (r.approval) referenced.add(r.approval.channel);
  let cedar: RenderedCedar | undefined;
  if (doc.cedar) {
    // The set is released at once; its parsed form goes to the sidecars, which then build their
    // closures without loading cedar-wasm (policy/cedar/policies.ts compilePoliciesFromJson).
    const c = compilePolicies(doc.cedar.policies, { file: 'spec.cedar.policies', keepParsed: true });
    if (!c.ok) errors.push(...c.errors);
    else {
      for (const p of c.policies.policies) if (p.approveChannel) referenced.add(p.approveChannel);
      cedar = c.policies.parsed;
      c.policies.dispose();
    }
  }
  for (const ch of [...referenced].sort()) {
    if (!channels.has(ch)) errors.push(`approval channel "${ch}" is referenced but no ApprovalChannel "${ch}" exists in namespace ${obj.metadata.namespace}`);
  }
  if (errors.length > 0) return { valid: false, errors };
  // The document goes to the sidecars as written, ${VAR}s unresolved: each pod substitutes its own.
  const { podSelector: _s, priority: _p, ...spec } = raw;
  const rendered: RenderedPolicy = {
    name: obj.metadata.name,
    priority,
    ...(podSelector ? { podSelector } : {}),
    generation: obj.metadata.generation ?? 0,
    // With the parsed Cedar, which goes to cedar.json: a change of it is a change of the rendering.
    hash: configHash({ priority, podSelector: podSelector ?? null, spec, ...(cedar ? { cedar } : {}) }),
    spec,
  };
  const warnings = configWarnings(doc);
  return { valid: true, rendered, ...(cedar ? { cedar } : {}), ...(warnings.length > 0 ? { warnings } : {}) };
}

/**
 * A secretKeyRef names its Secret and key literally: the webhook mounts the Secret by that name when
 * the pod is created, before any sidecar could substitute a ${VAR} in it.
 */
function secretRefsWithVariables(raw: Record<string, unknown>): string[] {
  const errors: string[] = [];
  for (const { at, value } of rawSecretValues(raw)) {
    const ref = (value as { valueFrom?: { secretKeyRef?: Record<string, unknown> } } | null)?.valueFrom?.secretKeyRef;
    for (const field of ['name', 'key'] as const) {
      const text = ref?.[field];
      if (typeof text === 'string' && text.includes('${'))
        errors.push(
          `spec.${formatPath([...at, 'valueFrom', 'secretKeyRef', field])}: \${VAR} is not substituted in a secretKeyRef: name the Secret and key as they are (the webhook mounts the Secret by this name)`,
        );
    }
  }
  return errors;
}

/** Every place a source of an unparsed spec may hold a SecretValue: its headers' values and auth.clientSecret. */
function rawSecretValues(raw: Record<string, unknown>): { at: (string | number)[]; value: unknown }[] {
  const out: { at: (string | number)[]; value: unknown }[] = [];
  const object = (v: unknown) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null);
  const sources = Array.isArray(raw['sources']) ? (raw['sources'] as unknown[]) : [];
  sources.forEach((s, i) => {
    for (const [name, v] of Object.entries(object(object(s)?.['headers']) ?? {})) out.push({ at: ['sources', i, 'headers', name], value: v });
    const secret = object(object(s)?.['auth'])?.['clientSecret'];
    if (secret !== undefined) out.push({ at: ['sources', i, 'auth', 'clientSecret'], value: secret });
  });
  return out;
}

/** Reads the ConfigMap's cedar.json in force; anything unreadable counts as none. */
export function parseRenderedCedarText(text: string | undefined): RenderedCedarDocument | null {
  if (!text) return null;
  const r = parseRenderedCedar(text);
  return r.ok ? r.doc : null;
}

/** Reads the config currently in force from the ConfigMap's text; anything unreadable counts as none. */
export function parseRendered(text: string | undefined): RenderedConfig | null {
  if (!text) return null;
  try {
    const r = RenderedConfigSchema.safeParse(parseYaml(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export function selectionOrder(a: RenderedPolicy, b: RenderedPolicy): number {
  return b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The most config.yaml and cedar.json may hold together (a ConfigMap holds at most 1 MiB, metadata included). */
export const CEDAR_JSON_BUDGET_BYTES = 900 * 1024;

export function renderNamespace(
  policies: readonly PolicyObject[],
  channels: ReadonlySet<string>,
  current: RenderedConfig | null,
  currentCedar: RenderedCedarDocument | null = null,
): RenderResult {
  const byPolicy: RenderResult['byPolicy'] = new Map();
  const entries: RenderedPolicy[] = [];
  const cedar: Record<string, RenderedCedar> = {};
  for (const p of [...policies].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
    const v = validatePolicy(p, channels);
    if (v.valid) {
      entries.push(v.rendered);
      if (v.cedar) cedar[p.metadata.name] = v.cedar;
      byPolicy.set(p.metadata.name, { ...v, servingGeneration: v.rendered.generation });
      continue;
    }
    const lastGood = current?.policies.find((e) => e.name === p.metadata.name);
    if (lastGood) entries.push(lastGood);
    const lastCedar = lastGood && currentCedar?.policies[p.metadata.name];
    if (lastCedar) cedar[p.metadata.name] = lastCedar;
    byPolicy.set(p.metadata.name, { ...v, servingGeneration: lastGood?.generation });
  }
  if (entries.length === 0) return { config: null, text: null, cedarText: null, hash: null, byPolicy };
  entries.sort(selectionOrder);
  const config: RenderedConfig = { apiVersion: API_VERSION, kind: RENDERED_KIND, policies: entries };
  const text = `# Rendered by thoughtgate-operator from the GovernancePolicies of this namespace; do not edit.\n${stringifyYaml(JSON.parse(canonicalJson(config)), { lineWidth: 0 })}`;
  const cedarDoc: RenderedCedarDocument = { version: RENDERED_CEDAR_VERSION, policies: cedar };
  let cedarText = Object.keys(cedar).length > 0 ? canonicalJson(cedarDoc) : null;
  // cedar.json is ~3× the policy text; left out rather than push the ConfigMap past its 1 MiB
  // (sidecars then compile the text, as without it).
  if (cedarText !== null && Buffer.byteLength(text) + Buffer.byteLength(cedarText) > CEDAR_JSON_BUDGET_BYTES) cedarText = null;
  // The hash is config.yaml's: each entry's hash covers its parsed Cedar.
  return { config, text, cedarText, hash: configHash(config), byPolicy };
}

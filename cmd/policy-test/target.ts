// What a policy test runs against: a thoughtgate.yaml read as the standalone sidecar reads it, or
// GovernancePolicy manifests rendered by the operator's own code and read back as a pod's sidecar
// reads its namespace's ConfigMap. Either way the result is the sidecar's compiled Snapshot.
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import type { Expose, Identity, PolicyDocument } from '../../api/config.js';
import { KINDS } from '../../api/crds.js';
import { API_VERSION, CONFIGMAP_CEDAR_KEY, CONFIGMAP_KEY, CONFIGMAP_NAME } from '../../api/wellknown.js';
import { parseDuration } from '../../api/duration.js';
import type { Env } from '../../policy/config/env.js';
import { describeFsError, parseConfigText } from '../../policy/config/load.js';
import { configWarnings } from '../../policy/config/warnings.js';
import { renderNamespace, type PolicyObject } from '../../operator/render.js';
import { standaloneIdentity } from '../../sidecar/config/podinfo.js';
import { evaluateConfigMap } from '../../sidecar/providers/configmap.js';
import { compileSnapshot, type Snapshot } from '../../sidecar/snapshot.js';

/** The config that governs one workload, as its sidecar would hold it. */
export type Governing =
  | {
      ok: true;
      snapshot: Snapshot;
      doc: PolicyDocument;
      /** Cluster: the GovernancePolicy that selects the workload. */
      governancePolicy?: string;
      /** Standalone: approvalChannels[].timeout by name (gate 4 uses it when the rule sets none). */
      channelTimeoutsMs: ReadonlyMap<string, number>;
      /** Whether gate 4 can take an approval at all (standalone: only with approvalChannels). */
      approvals: boolean;
    }
  /** No config governs it: the sidecar denies governed calls with NOT_CONFIGURED. */
  | { ok: false; kind: 'none'; reason: string }
  /** The config is invalid for it: the sidecar would refuse it. */
  | { ok: false; kind: 'invalid'; errors: string[] };

export interface Target {
  /** What was loaded, for the trace: `config <file> (hash …)` or `GovernancePolicies of namespace …`. */
  description: string;
  /** The identity a call has when the test names none. */
  defaultIdentity: Identity;
  /** Cluster: the only namespace whose workloads these policies govern. */
  namespace?: string;
  /** What loads but probably does not mean what was written (policy/config/warnings.ts), each naming its file or policy. */
  warnings: string[];
  governing(identity: Identity): Governing;
  /** Releases the compiled Cedar policy sets. */
  close(): void;
}

/** A problem with the thing under test (not the test file): the tests fail with these errors. */
export class TargetInvalid extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join('\n'));
  }
}

/** A file that cannot be read: a usage or file error. */
export class TargetUnreadable extends Error {}

async function read(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new TargetUnreadable(`${path}: ${describeFsError(err)}`);
  }
}

function timeouts(doc: PolicyDocument & { approvalChannels?: readonly { name: string; timeout: string }[] }): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of doc.approvalChannels ?? []) {
    const ms = parseDuration(c.timeout);
    if (typeof ms === 'number') out.set(c.name, ms);
  }
  return out;
}

/** A thoughtgate.yaml, read, substituted with `env`, validated and compiled as `thoughtgate sidecar --config` does. */
export async function loadConfigTarget(path: string, env: Env): Promise<Target> {
  const r = parseConfigText(await read(path), path, env);
  if (!r.ok) throw new TargetInvalid(r.errors);
  const { identity: _i, ...doc } = r.config;
  const defaultIdentity = standaloneIdentity(r.config);
  const c = compileSnapshot(doc, defaultIdentity, { hash: r.hash, generation: 1 });
  if (!c.ok) throw new TargetInvalid(c.errors.map((e) => `${path}: ${e}`));
  const snapshot = c.snapshot;
  const channelTimeoutsMs = timeouts(doc);
  return {
    description: `config ${path} (hash ${r.hash})`,
    defaultIdentity,
    warnings: configWarnings(doc).map((w) => `${path}: ${w}`),
    // The identity is data in a snapshot (gates.identity): one compile serves every workload.
    governing: (identity) => ({
      ok: true,
      snapshot: { ...snapshot, gates: { ...snapshot.gates, identity } },
      doc,
      channelTimeoutsMs,
      approvals: channelTimeoutsMs.size > 0,
    }),
    close: () => snapshot.gates.cedar?.dispose(),
  };
}

interface Manifests {
  policies: PolicyObject[];
  channels: Set<string>;
  namespace: string;
}

/** The GovernancePolicies and ApprovalChannels of YAML manifests (several documents per file allowed). */
async function readManifests(paths: readonly string[], extraChannels: readonly string[]): Promise<Manifests> {
  const policies: PolicyObject[] = [];
  const channels = new Set(extraChannels);
  const namespaces = new Set<string>();
  const errors: string[] = [];
  for (const path of paths) {
    const docs = [...parseAllDocuments(await read(path), { uniqueKeys: true })];
    docs.forEach((d, i) => {
      if (d.errors.length > 0) {
        errors.push(
          ...d.errors.map(
            (e) => `${path}${e.linePos ? `:${e.linePos[0].line}:${e.linePos[0].col}` : ''}: ${e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '')}`,
          ),
        );
        return;
      }
      let o: { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
      try {
        o = d.toJS({ maxAliasCount: 100 }) as typeof o;
      } catch (err) {
        errors.push(`${path}: document ${i + 1}: ${(err as Error).message}`);
        return;
      }
      if (o === null) return; // an empty document (a trailing ---)
      const name = o.metadata?.name;
      const ns = typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : 'default';
      const kind = o.kind === KINDS.GovernancePolicy.kind || o.kind === KINDS.ApprovalChannel.kind ? o.kind : null;
      if (o.apiVersion !== API_VERSION || kind === null || typeof name !== 'string') {
        errors.push(`${path}: document ${i + 1}: expected apiVersion ${API_VERSION}, kind GovernancePolicy or ApprovalChannel, and metadata.name`);
        return;
      }
      namespaces.add(ns);
      if (kind === KINDS.ApprovalChannel.kind) channels.add(name);
      else policies.push({ ...(o as PolicyObject), metadata: { ...(o as PolicyObject).metadata, name, namespace: ns } });
    });
  }
  if (errors.length > 0) throw new TargetInvalid(errors);
  if (policies.length === 0) throw new TargetInvalid([`${paths.join(', ')}: no GovernancePolicy found`]);
  if (namespaces.size > 1)
    throw new TargetInvalid([
      `${paths.join(', ')}: objects of several namespaces (${[...namespaces].join(', ')}); a sidecar reads the policies of its own namespace only`,
    ]);
  return { policies, channels, namespace: [...namespaces][0]! };
}

/**
 * GovernancePolicies rendered by the operator's renderNamespace (a policy it would mark Invalid
 * makes the target invalid, with the operator's errors), then, per workload, the sidecar's
 * evaluateConfigMap on the rendered ConfigMap (podSelector, priority, ${VAR} with `env`).
 */
export async function loadPolicyTarget(paths: readonly string[], env: Env, extraChannels: readonly string[] = []): Promise<Target> {
  const m = await readManifests(paths, extraChannels);
  const rendered = renderNamespace(m.policies, m.channels, null);
  const invalid = [...rendered.byPolicy].flatMap(([name, v]) => (v.valid ? [] : v.errors.map((e) => `GovernancePolicy ${m.namespace}/${name}: ${e}`)));
  if (invalid.length > 0) throw new TargetInvalid(invalid);
  const cm = {
    metadata: { name: CONFIGMAP_NAME, namespace: m.namespace },
    data: { [CONFIGMAP_KEY]: rendered.text!, ...(rendered.cedarText !== null ? { [CONFIGMAP_CEDAR_KEY]: rendered.cedarText } : {}) },
  };
  // One compile per policy (and env, which is fixed here): the identity is data in a snapshot.
  const compiled = new Map<string, Governing>();
  const governing = (identity: Identity): Governing => {
    const o = evaluateConfigMap(cm, { namespace: m.namespace, name: CONFIGMAP_NAME, identity, env });
    if (o.kind === 'none') return { ok: false, kind: 'none', reason: o.reason };
    if (o.kind === 'invalid') return { ok: false, kind: 'invalid', errors: o.errors };
    let g = compiled.get(o.policy);
    if (!g) {
      // As the sidecar does: from the operator's parsed Cedar form when it serves.
      const c = compileSnapshot(o.doc, identity, { hash: o.hash, generation: 1, ...(o.cedar ? { cedar: o.cedar } : {}) });
      g = c.ok
        ? { ok: true, snapshot: c.snapshot, doc: o.doc, governancePolicy: o.policy, channelTimeoutsMs: new Map(), approvals: true }
        : { ok: false, kind: 'invalid', errors: c.errors };
      compiled.set(o.policy, g);
    }
    return g.ok ? { ...g, snapshot: { ...g.snapshot, gates: { ...g.snapshot.gates, identity } } } : g;
  };
  return {
    description: `GovernancePolicies ${m.policies.map((p) => p.metadata.name).join(', ')} of namespace ${m.namespace} (rendered hash ${rendered.hash})`,
    defaultIdentity: { namespace: m.namespace, serviceAccount: 'default', pod: 'test', labels: {} },
    namespace: m.namespace,
    warnings: [...rendered.byPolicy].flatMap(([name, v]) => (v.valid ? (v.warnings ?? []).map((w) => `GovernancePolicy ${m.namespace}/${name}: ${w}`) : [])),
    governing,
    close: () => {
      for (const g of compiled.values()) if (g.ok) g.snapshot.gates.cedar?.dispose();
    },
  };
}

/** The expose section of a source, for saying which pattern exposed or hid a target. */
export function exposeOf(doc: PolicyDocument, source: string): Expose | undefined {
  return doc.sources.find((s) => s.name === source)?.expose;
}

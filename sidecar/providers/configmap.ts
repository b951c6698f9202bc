// Cluster config: the namespace's `thoughtgate-config` ConfigMap, rendered by the operator,
// watched through the API server. The pure half (`evaluateConfigMap`) turns a ConfigMap into the
// policy for this pod; the shell lists, watches, reconnects and reports.
//
// The shell is kube/'s reflector over the one ConfigMap (a list by name, so RBAC resourceNames
// can authorize it): list, watch from the list's resourceVersion, resume, list again on 410.
import { isMap, parseDocument } from 'yaml';
import { clusterCredentialIssues, PolicyDocumentSchema, type Identity, type PolicyDocument } from '../../api/config.js';
import { parseRenderedCedar, RenderedConfigSchema, type RenderedCedar } from '../../api/crds.js';
import { formatPath } from '../../api/issues.js';
import { CONFIGMAP_CEDAR_KEY, CONFIGMAP_KEY, CONFIGMAP_NAME } from '../../api/wellknown.js';
import { substituteEnv, type Env } from '../../policy/config/env.js';
import { KubeError } from '../../kube/protocol.js';
import { startReflector, type Reflector, type ReflectorCounters, type ReflectorPhase, type ReflectorTuning } from '../../kube/reflector.js';
import { resourceClient, type ListWatcher } from '../../kube/resource.js';
import { CONFIG_MAPS, isConfigMap, type ConfigMap } from '../../kube/resources.js';
import { createTransport, type Transport, type TransportOptions } from '../../kube/transport.js';
import { describeError } from '../../lib/describe-error.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigProvider, ConfigUpdate } from '../sidecar.js';
import { selectPolicy } from './select.js';

// ---------- pure ----------

export type Outcome =
  /** A policy selects this pod and is valid: enforce it. `cedar`: its Cedar text as the operator parsed it. */
  | { kind: 'config'; policy: string; hash: string; doc: PolicyDocument; cedar?: RenderedCedar }
  /** Nothing governs this pod (no ConfigMap, no key, no policy selecting it): deny governed calls. */
  | { kind: 'none'; reason: string; policies?: string[] }
  /** The ConfigMap cannot be used: keep enforcing the last good config. */
  | { kind: 'invalid'; errors: string[] };

export interface EvaluateContext {
  namespace: string;
  name: string;
  identity: Identity;
  /** Values for ${VAR} references in the selected policy (the sidecar's environment). */
  env: Env;
}

/** The envelope; each spec is validated only for the policy that selects this pod. */
const EnvelopeSchema = RenderedConfigSchema;

/** What a ConfigMap (or its absence) means for this pod. */
export function evaluateConfigMap(cm: ConfigMap | null, ctx: EvaluateContext): Outcome {
  const where = `ConfigMap ${ctx.namespace}/${ctx.name}`;
  if (!cm) return { kind: 'none', reason: `${where} does not exist (no GovernancePolicy in this namespace is rendered)` };
  const text = cm.data?.[CONFIGMAP_KEY];
  if (text === undefined) return { kind: 'none', reason: `${where} has no key "${CONFIGMAP_KEY}"` };
  const at = `${where} ${CONFIGMAP_KEY}`;

  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      kind: 'invalid',
      errors: doc.errors.map(
        (e) => `${at}${e.linePos?.[0] ? `:${e.linePos[0].line}:${e.linePos[0].col}` : ''}: ${e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '')}`,
      ),
    };
  }
  if (!isMap(doc.contents)) return { kind: 'invalid', errors: [`${at}: expected a mapping with apiVersion, kind and policies`] };
  let raw: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { kind: 'invalid', errors: [`${at}: ${describeError(err)}`] };
  }

  // The envelope is checked here, but only the selected policy's spec, after its ${VAR}s are
  // resolved with this pod's values: a raw "https://${HOST}:${PORT}/" is not a URL, and a policy
  // governing other pods must not stop this one (the operator validated each when rendering).
  const envelope = EnvelopeSchema.safeParse(raw);
  if (!envelope.success) return { kind: 'invalid', errors: envelope.error.issues.map((i) => `${at}: ${formatPath(i.path)}: ${i.message}`) };

  const policies = envelope.data.policies.map((p, index) => ({ ...p, index }));
  const chosen = selectPolicy(policies, ctx.identity.labels);
  if (!chosen) {
    // The reason reaches the agent in its denials: it names no policies (those go to the log).
    return {
      kind: 'none',
      reason: `no GovernancePolicy in namespace ${ctx.namespace} selects this pod (labels ${JSON.stringify(ctx.identity.labels)})`,
      policies: policies.map((p) => p.name),
    };
  }

  const rawSpec = chosen.spec;
  const prefix = `${at}: policies[${chosen.index}] (${chosen.name}).spec`;
  const sub = substituteEnv(rawSpec, ctx.env);
  if (sub.errors.length > 0) return { kind: 'invalid', errors: sub.errors.map((e) => `${prefix}.${formatPath(e.path)}: ${e.message}`) };
  const parsed = PolicyDocumentSchema.safeParse(sub.value);
  if (!parsed.success) return { kind: 'invalid', errors: parsed.error.issues.map((i) => `${prefix}.${formatPath(i.path)}: ${i.message}`) };
  // The operator refuses these already; a ConfigMap written by anyone else must not get them in either.
  const refused = clusterCredentialIssues(parsed.data);
  if (refused.length > 0) return { kind: 'invalid', errors: refused.map((i) => `${prefix}.${formatPath(i.path)}: ${i.message}`) };
  // The operator's hash covers priority, podSelector and spec; the name tells apart two policies
  // that render identically, so switching between them is still a reload.
  // The operator's parsed Cedar (cedar.json): checked here, trusted only as far as
  // compilePoliciesFromJson verifies it; absent (an older operator), the text is compiled.
  let cedar: RenderedCedar | undefined;
  const cedarText = cm.data?.[CONFIGMAP_CEDAR_KEY];
  if (cedarText !== undefined && parsed.data.cedar) {
    const r = parseRenderedCedar(cedarText);
    if (!r.ok) return { kind: 'invalid', errors: r.errors.map((e) => `${where} ${CONFIGMAP_CEDAR_KEY}: ${e}`) };
    cedar = r.doc?.policies[chosen.name];
  }
  return { kind: 'config', policy: chosen.name, hash: `${chosen.hash}/${chosen.name}`, doc: parsed.data, ...(cedar ? { cedar } : {}) };
}

// ---------- the watching shell ----------

export type ProviderView =
  | { kind: 'starting' }
  | { kind: 'config'; policy: string; hash: string; doc: PolicyDocument; cedar?: RenderedCedar }
  | { kind: 'none'; reason: string }
  /** `serving`: the config the sidecar keeps enforcing (null when there was none). */
  | { kind: 'invalid'; errors: string[]; serving: { policy: string; hash: string } | null };

export type Phase = ReflectorPhase;

export interface ProviderState {
  view: ProviderView;
  phase: Phase;
  /** Where the next watch resumes. */
  resourceVersion: string;
  /** The last failure talking to the API server, cleared once it answers again. */
  lastError: string | null;
  counters: ReflectorCounters & {
    /** Updates handed to the sidecar. */
    updates: number;
  };
}

export interface ConfigMapProviderOptions extends ReflectorTuning {
  namespace: string;
  /** Default thoughtgate-config. */
  name?: string;
  identity: Identity;
  log: Logger;
  /** For ${VAR} in the selected policy; default process.env. */
  env?: Env;
  /** A transport to use (not closed by the provider); else one is made from clientOptions. */
  transport?: Transport;
  clientOptions?: TransportOptions;
  /**
   * How long start() waits for the first list. It resolves early on the first outcome or the
   * first failure, so an unreachable API server never holds up the sidecar's listeners (it
   * serves denials meanwhile). Default 5000.
   */
  startWaitMs?: number;
}

export interface ConfigMapProvider extends ConfigProvider {
  state(): ProviderState;
}

export function configMapProvider(o: ConfigMapProviderOptions): ConfigMapProvider {
  const namespace = o.namespace;
  const name = o.name ?? CONFIGMAP_NAME;
  const { log } = o;
  const env = o.env ?? process.env;
  const where = `ConfigMap ${namespace}/${name}`;
  const ownTransport = !o.transport;
  let transport: Transport | null = o.transport ?? null;
  // Made at the first list, so a missing in-cluster environment is a failure the loop reports
  // and retries like any other, not an exception out of the sidecar's start.
  let source: ListWatcher<ConfigMap> | null = null;
  const lw = (): ListWatcher<ConfigMap> => {
    transport ??= createTransport({ userAgent: 'thoughtgate-sidecar', ...o.clientOptions });
    source ??= resourceClient<ConfigMap>(transport, CONFIG_MAPS, { is: isConfigMap, rbacHint: 'get, list and watch on this ConfigMap' }).listWatch({
      namespace,
      fieldSelector: `metadata.name=${name}`,
    });
    return source;
  };

  let view: ProviderView = { kind: 'starting' };
  let updates = 0;
  let serving: { policy: string; hash: string } | null = null;
  let lastKey: string | null = null;
  let onUpdate: ((u: ConfigUpdate) => void) | null = null;
  let closed = false;
  let reflector: Reflector<ConfigMap> | null = null;
  let firstSettled: (() => void) | null = null;
  let everRead = false;
  let authFailures = 0;

  const emit = (u: ConfigUpdate): void => {
    updates++;
    try {
      onUpdate?.(u);
    } catch (err) {
      log.error('config update handler failed', { origin: u.origin, error: describeError(err) });
    }
  };

  const apply = (cm: ConfigMap | null): void => {
    let out: Outcome;
    try {
      out = evaluateConfigMap(cm, { namespace, name, identity: o.identity, env });
    } catch (err) {
      out = { kind: 'invalid', errors: [`${where}: ${describeError(err)}`] };
    }
    // The ConfigMap changes for reasons that do not concern this pod (another pod's policy, an
    // annotation, a relist after reconnecting): hand the sidecar only what changes its outcome.
    const key = out.kind === 'config' ? `config:${out.hash}` : out.kind === 'none' ? `none:${out.reason}` : `invalid:${out.errors.join('\n')}`;
    if (key === lastKey) return;
    lastKey = key;
    switch (out.kind) {
      case 'config':
        serving = { policy: out.policy, hash: out.hash };
        view = out;
        emit({
          ok: true,
          doc: out.doc,
          identity: o.identity,
          hash: out.hash,
          origin: `${where} policy ${out.policy}`,
          policy: out.policy,
          ...(out.cedar ? { cedar: out.cedar } : {}),
        });
        return;
      case 'none':
        serving = null;
        view = out;
        // The sidecar logs the withdrawal itself; this adds what only the provider knows.
        log.info('no policy for this pod', { configMap: `${namespace}/${name}`, reason: out.reason, policies: out.policies, labels: o.identity.labels });
        emit({ ok: 'none', reason: out.reason, origin: where });
        return;
      case 'invalid':
        view = { kind: 'invalid', errors: out.errors, serving };
        emit({ ok: false, errors: out.errors, origin: where });
    }
  };

  const current = (): ConfigMap | null => reflector?.get(name, namespace) ?? null;

  const run = (): Reflector<ConfigMap> =>
    startReflector<ConfigMap>({
      source: { description: where, list: (signal) => lw().list(signal), watch: (rv, onE, signal, opts) => lw().watch(rv, onE, signal, opts) },
      // Each change to the one ConfigMap (a delete leaves the store empty: "none").
      onChange: () => apply(current()),
      onChangeError: (err) => o.log.error('config update could not be applied', { error: describeError(err) }),
      onList: () => {
        apply(current());
        firstSettled?.();
      },
      onRead: (afterError) => {
        everRead = true;
        authFailures = 0;
        if (afterError) log.info('reading the config again', { configMap: `${namespace}/${name}`, resourceVersion: reflector?.state().resourceVersion });
      },
      onWatchdog: (silentMs) => log.warn('config watch went silent; restarting it', { configMap: `${namespace}/${name}`, silentMs }),
      onGone: (rv) => log.info('config watch expired (410); listing again', { configMap: `${namespace}/${name}`, resourceVersion: rv }),
      onFailure: (err, delay) => {
        const status = err instanceof KubeError ? err.status : undefined;
        const fields = { configMap: `${namespace}/${name}`, server: transport?.server, error: describeError(err), retryInMs: delay };
        if (status === 401 || status === 403) {
          // A restarted API server answers 403 for a moment while its RBAC cache fills, so one
          // refusal after reading fine is a warning; a refusal that persists is an error.
          const persistent = ++authFailures >= 2 || !everRead;
          log[persistent ? 'error' : 'warn'](
            status === 403
              ? 'the API server refused to show the config: RBAC does not grant this ServiceAccount get/list/watch on the ConfigMap; retrying'
              : 'the API server rejected the ServiceAccount token; retrying',
            fields,
          );
        } else if (err instanceof KubeError && err.kind === 'config') {
          log.error('cannot talk to the API server; retrying', fields);
        } else {
          log.warn('config watch interrupted; retrying', fields);
        }
        firstSettled?.();
      },
      watchdogMs: o.watchdogMs,
      backoffBaseMs: o.backoffBaseMs,
      backoffMaxMs: o.backoffMaxMs,
      watchTimeoutSeconds: o.watchTimeoutSeconds,
    });

  const idle: ReflectorCounters = { lists: 0, watches: 0, events: 0, bookmarks: 0, failures: 0, relists: 0, watchdogRestarts: 0, handlerErrors: 0 };
  return {
    description: where,
    state: () => {
      const r = reflector?.state() ?? { phase: 'listing' as const, resourceVersion: '', lastError: null, counters: idle };
      return structuredClone({
        view,
        phase: closed ? 'closed' : r.phase,
        resourceVersion: r.resourceVersion,
        lastError: r.lastError,
        counters: { ...r.counters, updates },
      });
    },
    start(cb) {
      if (reflector) throw new Error('configMapProvider: already started');
      onUpdate = cb;
      const first = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.startWaitMs ?? 5000);
        firstSettled = () => {
          clearTimeout(t);
          firstSettled = null;
          resolve();
        };
      });
      reflector = run();
      return first;
    },
    async close() {
      if (closed) return;
      closed = true;
      firstSettled?.();
      await reflector?.stop('provider closed');
      if (ownTransport) await transport?.close();
    },
  };
}

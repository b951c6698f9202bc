// The pod mutation as a pure function: AdmissionReview-independent input in, an RFC 6902 JSON patch
// out. No I/O, no clock: the HTTPS shell (server.ts) and the tests call the same code.
//
// The webhook sees the pod after the built-in mutating admission plugins (ServiceAccount among
// them) and, because our patch changes the pod, the apiserver re-runs those built-in plugins after
// us (admission reinvocation). So the ServiceAccount plugin also mounts the standard token into the
// sidecar we add; we only bring our own token when it will not (see needsOwnToken).
import { matchesSelector, type LabelSelector } from '../api/k8s.js';
import { ANNOTATIONS, CONFIGMAP_NAME, ENV, INJECT_DISABLED, INJECT_ENABLED, LABELS, MANAGED_BY, PORTS } from '../api/wellknown.js';
import {
  CAPTURE_ANNOTATIONS,
  CAPTURE_STATE_DIR,
  CAPTURE_STATE_FILE,
  CAPTURE_STATE_VOLUME,
  INIT_CONTAINER_NAME,
  SIDECAR_LABEL,
  SIDECAR_LABEL_VALUES,
  SIDECAR_UID,
  type CaptureSpec,
} from '../api/capture.js';
import { describeError } from '../lib/describe-error.js';
import {
  bypassFindings,
  captureInitContainer,
  captureOptIn,
  captureRequired,
  captureSpec,
  capturedAnnotation,
  describeFindings,
  CAPTURE_DISABLED,
  CAPTURE_ENABLED,
  CAPTURE_REQUIRED,
  type CaptureSettings,
} from './capture.js';
import { SECRET_VOLUME_PREFIX, secretMounts } from './custody.js';
import { policyNeeds } from './policy-needs.js';
import { sidecarTracingEnv } from './tracing-env.js';

import type { Container, EnvVar, Pod, ResourceRequirements, Volume, VolumeMount } from './pod.js';

export type { Container, EnvVar, Pod, ResourceRequirements, Volume, VolumeMount } from './pod.js';

export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'test' | 'move' | 'copy';
  path: string;
  value?: unknown;
  from?: string;
}

// ---------- settings ----------

export interface InjectionSettings {
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Written into the `thoughtgate.io/injected` annotation. */
  version: string;
  /**
   * native (default): an init container with restartPolicy Always (on by default from Kubernetes
   * 1.29, GA in 1.33; ThoughtGate's floor is 1.30): up before the app and other init containers,
   * stopped after them, and it lets Jobs complete. classic: appended to containers, for clusters
   * with the SidecarContainers feature gate off; the app may start before it listens and a Job pod
   * never completes while it runs.
   */
  mode?: 'native' | 'classic';
  containerName?: string;
  /** Never injected, whatever their labels. Default kube-system, kube-public, kube-node-lease. */
  excludedNamespaces?: readonly string[];
  /** The operator's own pods (it serves this webhook): never injected. */
  operator: { namespace: string; podSelector: LabelSelector };
  /** Replaces DEFAULT_RESOURCES as a whole when given. */
  resources?: ResourceRequirements;
  runAsUser?: number;
  configMapName?: string;
  /**
   * Where the admin port (probes, /metrics) listens. The kubelet probes the pod IP, so it cannot be
   * loopback; "::" instead for IPv6-only clusters. The proxy port stays on 127.0.0.1: on the pod IP,
   * any pod in the cluster could send calls that would be governed as this pod's identity.
   */
  adminBind?: string;
  logLevel?: string;
  /** OTEL_* variables for the sidecar (tracing-env.ts); none: tracing off in the sidecar. */
  tracing?: readonly EnvVar[];
  /** Traffic capture (webhook/capture.ts); off unless a pod or namespace opts in. */
  capture?: CaptureSettings;
}

export const DEFAULT_EXCLUDED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];
export const DEFAULT_CONTAINER_NAME = 'thoughtgate';
/** Capture exempts this UID (api/capture.ts): not 65532, which distroless apps run as. */
export const DEFAULT_RUN_AS_USER = SIDECAR_UID;

/**
 * Measured: the sidecar with Cedar loaded runs at ~90-100 MiB RSS under load on Node 24, and
 * cedar-wasm's linear memory only grows (a Cedar benchmark process reached 116-133 MiB,
 * reference/libraries.md). A 64Mi limit would OOM-kill it under load, so: request what it uses
 * under load, limit at twice that for SSE bursts and large policy sets. CPU: Node runs JS on one
 * thread, so 1 CPU is its ceiling anyway; a lower limit would make CFS throttle the proxy and add
 * up to a quota period (100 ms) straight onto the agent's MCP calls.
 */
export const DEFAULT_RESOURCES: ResourceRequirements = {
  requests: { cpu: '50m', memory: '96Mi' },
  limits: { cpu: '1', memory: '192Mi' },
};

/** Also never injected: the operator's pods as the chart labels them, whatever the selector says. */
const OPERATOR_POD_LABELS: Record<string, string> = {
  [LABELS.managedBy]: MANAGED_BY,
  'app.kubernetes.io/name': 'thoughtgate',
};

export const PODINFO_VOLUME = 'thoughtgate-podinfo';
export const PODINFO_DIR = '/etc/podinfo';
export const TOKEN_VOLUME = 'thoughtgate-token';
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const PROXY_PORT_NAME = 'tg-proxy';
export const ADMIN_PORT_NAME = 'tg-admin';
/** Appended to the app's NO_PROXY: traffic to the pod itself never loops through the proxy. */
export const NO_PROXY_LOOPBACK = ['localhost', '127.0.0.1', '::1'] as const;
/** Measured: lower RSS under load, same throughput (the young generation is sized for a proxy). */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4';

export interface MutationInput {
  pod: Pod;
  namespace: { name: string; labels: Record<string, string> };
  operation: 'CREATE' | string;
  settings: InjectionSettings;
  /**
   * The namespace's GovernancePolicies, raw (the operator's cache): those selecting the pod name
   * the Secrets mounted into the sidecar and the ports capture redirects. Absent: none.
   */
  policies?: readonly unknown[];
}

export interface MutationResult {
  patch: JsonPatchOp[];
  reason: string;
  injected: boolean;
  /** Shown to the kubectl user (AdmissionResponse.warnings) when a pod they probably wanted governed is not. */
  warnings: string[];
  /** Set: the pod is refused (allowed:false) with this message; it asked for capture that cannot hold. */
  denied?: string;
}

// ---------- the decision ----------

/**
 * Why a pod is not injected, for what capture makes of it: "not-ours" (not an injection candidate at
 * all: never denied), "opted-out" (the pod chose to go without: denied only where the namespace
 * requires capture), "cannot" (the pod would be injected but cannot be: denied when capture is on
 * for it, since it would run uncaptured).
 */
export type SkipKind = 'not-ours' | 'opted-out' | 'cannot';
/** `fix`: what the pod's author changes to have it injected (said when the pod is denied). */
type Decision = { inject: true } | { inject: false; kind: SkipKind; reason: string; fix?: string; warning?: string };

function allContainers(pod: Pod): Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
}

/** Names the webhook adds to a pod: a pod that already uses one is refused (decide()). */
function ourVolume(name: string): boolean {
  return name === PODINFO_VOLUME || name === TOKEN_VOLUME || name === CAPTURE_STATE_VOLUME || name.startsWith(SECRET_VOLUME_PREFIX);
}

export function decide(input: MutationInput): Decision {
  const { pod, namespace, operation, settings } = input;
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  const name = settings.containerName ?? DEFAULT_CONTAINER_NAME;
  const skip = (kind: SkipKind, reason: string, fix?: string, warning?: string): Decision => ({
    inject: false,
    kind,
    reason,
    ...(fix ? { fix } : {}),
    ...(warning ? { warning } : {}),
  });
  if (operation !== 'CREATE') return skip('not-ours', `operation ${operation} (only CREATE injects)`);
  if ((settings.excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES).includes(namespace.name)) {
    return skip('not-ours', `namespace ${namespace.name} is excluded`);
  }
  if (namespace.labels[LABELS.inject] !== INJECT_ENABLED) {
    return skip('not-ours', `namespace ${namespace.name} is not labelled ${LABELS.inject}=${INJECT_ENABLED}`);
  }
  // The operator serves this webhook: injecting it would make its start depend on itself.
  if (namespace.name === settings.operator.namespace && matchesSelector(settings.operator.podSelector, labels)) {
    return skip('not-ours', "the operator's own pod (operator selector)");
  }
  // Outside the operator's namespace these labels are only a claim any pod can make: an opt-out.
  for (const [k, v] of Object.entries(OPERATOR_POD_LABELS)) {
    if (labels[k] === v) return skip('opted-out', `the operator's own pod (label ${k}=${v})`, `remove label ${k}`);
  }
  if (labels[LABELS.inject] === INJECT_DISABLED)
    return skip('opted-out', `opted out (label ${LABELS.inject}=${INJECT_DISABLED})`, `remove label ${LABELS.inject}`);
  if (annotations[ANNOTATIONS.inject] === INJECT_DISABLED) {
    return skip('opted-out', `opted out (annotation ${ANNOTATIONS.inject}=${INJECT_DISABLED})`, `remove annotation ${ANNOTATIONS.inject}`);
  }
  if (ANNOTATIONS.injected in annotations)
    return skip(
      'cannot',
      `already injected (annotation ${ANNOTATIONS.injected})`,
      `remove annotation ${ANNOTATIONS.injected} and the containers it stands for`,
    );
  if (allContainers(pod).some((c) => c.name === name)) return skip('cannot', `already injected (a container named ${name} exists)`, `rename container ${name}`);
  if (!pod.spec?.containers?.length) return skip('not-ours', 'the pod has no containers');
  // Not supported, and said so to the user rather than silently: the sidecar's ports would be the
  // node's (a second such pod on the node could not start, and the admin port would face the
  // node's network); the image is Linux-only.
  if (pod.spec.hostNetwork) {
    return skip(
      'cannot',
      'hostNetwork pod',
      'set spec.hostNetwork: false',
      'thoughtgate: not injected: pods with hostNetwork: true are not supported; its MCP traffic is not governed',
    );
  }
  if (pod.spec.os?.name && pod.spec.os.name !== 'linux') {
    return skip(
      'cannot',
      `os ${pod.spec.os.name}`,
      'the sidecar is Linux-only',
      `thoughtgate: not injected: the sidecar is Linux-only (spec.os.name: ${pod.spec.os.name})`,
    );
  }
  // Ours by name: a user's container or volume with one would clash with what we add, or pass for it.
  if (allContainers(pod).some((c) => c.name === INIT_CONTAINER_NAME)) {
    return skip(
      'cannot',
      `container ${INIT_CONTAINER_NAME} already exists`,
      `rename container ${INIT_CONTAINER_NAME} (the name of ThoughtGate's capture init container)`,
      `thoughtgate: not injected: the pod already has a container named ${INIT_CONTAINER_NAME} (the name of ThoughtGate's capture init container): rename it`,
    );
  }
  const taken = (pod.spec.volumes ?? []).map((v) => v.name).filter(ourVolume);
  if (taken.length) {
    return skip(
      'cannot',
      `volume ${taken[0]} already exists`,
      `rename volume ${taken[0]}`,
      `thoughtgate: not injected: the pod already has a volume named ${taken[0]} (ThoughtGate names its volumes ${PODINFO_VOLUME}, ${TOKEN_VOLUME}, ${CAPTURE_STATE_VOLUME} and ${SECRET_VOLUME_PREFIX}*): rename it`,
    );
  }
  return { inject: true };
}

/**
 * Whether the sidecar needs its own API token. The ServiceAccount admission plugin runs before the
 * webhook and adds the `kube-api-access-*` projected volume unless automount is off on the pod OR
 * on its ServiceAccount; so "no such volume" is how the SA's setting shows up here. When the volume
 * is there, the plugin's re-run after our patch mounts it into the sidecar too.
 */
export function needsOwnToken(pod: Pod): boolean {
  if (pod.spec?.automountServiceAccountToken === false) return true;
  return !(pod.spec?.volumes ?? []).some((v) => v.name.startsWith('kube-api-access-') || (v.projected?.sources ?? []).some((s) => 'serviceAccountToken' in s));
}

// ---------- the sidecar ----------

function fieldEnv(name: string, fieldPath: string): EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

/** What capture and custody add to the sidecar: env and mounts the app never gets. */
export interface SidecarExtras {
  env?: EnvVar[];
  mounts?: VolumeMount[];
}

export function sidecarContainer(settings: InjectionSettings, ownToken: boolean, extras: SidecarExtras = {}): Container {
  const httpGet = (path: string) => ({ path, port: ADMIN_PORT_NAME, scheme: 'HTTP' });
  const env: EnvVar[] = [
    { name: ENV.configMap, value: settings.configMapName ?? CONFIGMAP_NAME },
    { name: ENV.bind, value: '127.0.0.1' },
    { name: ENV.adminBind, value: settings.adminBind ?? '0.0.0.0' },
    { name: ENV.port, value: String(PORTS.proxy) },
    { name: ENV.adminPort, value: String(PORTS.admin) },
    ...(settings.logLevel ? [{ name: ENV.logLevel, value: settings.logLevel }] : []),
    fieldEnv(ENV.podName, 'metadata.name'),
    fieldEnv(ENV.podNamespace, 'metadata.namespace'),
    fieldEnv(ENV.serviceAccount, 'spec.serviceAccountName'),
    { name: ENV.labelsFile, value: `${PODINFO_DIR}/labels` },
    { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS },
    ...sidecarTracingEnv(settings.tracing),
    ...(extras.env ?? []),
  ];
  const c: Container = {
    name: settings.containerName ?? DEFAULT_CONTAINER_NAME,
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy ?? 'IfNotPresent',
    args: ['sidecar'],
    env,
    ports: [
      { name: PROXY_PORT_NAME, containerPort: PORTS.proxy, protocol: 'TCP' },
      { name: ADMIN_PORT_NAME, containerPort: PORTS.admin, protocol: 'TCP' },
    ],
    // Startup on /health, not /ready: for a native sidecar the kubelet holds the app until the
    // startup probe passes, and kills the sidecar when it fails. /ready also requires every upstream
    // to answer, so one unreachable MCP server would crash-loop the sidecar and keep every agent pod
    // in Init. Once /health answers the proxy listens and fails closed (denies) until its config is
    // loaded, typically within milliseconds. 1 s period (the minimum): the app waits at most ~1 s
    // past the sidecar's start (budget: ready in 300 ms); 30 tries for slow nodes.
    startupProbe: { httpGet: httpGet('/health'), periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 30 },
    // Readiness on /ready (config loaded, upstreams reachable): a pod whose sidecar cannot govern
    // leaves its Services' endpoints within ~10 s.
    readinessProbe: { httpGet: httpGet('/ready'), periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 2, successThreshold: 1 },
    // Liveness only when the process stopped answering for 30 s; a busy event loop under a burst
    // must not get the proxy killed mid-request.
    livenessProbe: { httpGet: httpGet('/health'), periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    resources: structuredClone(settings.resources ?? DEFAULT_RESOURCES),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: settings.runAsUser ?? DEFAULT_RUN_AS_USER,
      runAsGroup: settings.runAsUser ?? DEFAULT_RUN_AS_USER,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: PODINFO_VOLUME, mountPath: PODINFO_DIR, readOnly: true },
      ...(ownToken ? [{ name: TOKEN_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }] : []),
      ...(extras.mounts ?? []),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  if ((settings.mode ?? 'native') === 'native') c.restartPolicy = 'Always';
  return c;
}

export function podinfoVolume(): Volume {
  return {
    name: PODINFO_VOLUME,
    downwardAPI: { defaultMode: 0o444, items: [{ path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } }] },
  };
}

/** What the ServiceAccount plugin would have mounted (kube-api-access-*), for the sidecar only. */
export function tokenVolume(): Volume {
  return {
    name: TOKEN_VOLUME,
    projected: {
      defaultMode: 0o444,
      sources: [
        // No audience: the API server's own, which is what reading the ConfigMap needs.
        { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

// ---------- patch building ----------

/** RFC 6901 reference token escaping. */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

type Wanted = { name: string; value: string; override: boolean };

/** Ops that make `wanted` present in a container's env; never touches other entries. */
function envOps(base: string, env: EnvVar[] | undefined, wanted: Wanted[]): JsonPatchOp[] {
  if (!wanted.length) return [];
  if (!env) return [{ op: 'add', path: `${base}/env`, value: wanted.map(({ name, value }) => ({ name, value })) }];
  const ops: JsonPatchOp[] = [];
  for (const w of wanted) {
    const i = env.findIndex((e) => e.name === w.name);
    const have = env[i];
    if (!have) ops.push({ op: 'add', path: `${base}/env/-`, value: { name: w.name, value: w.value } });
    else if (w.override && (have.value !== w.value || have.valueFrom !== undefined)) {
      ops.push({ op: 'replace', path: `${base}/env/${i}`, value: { name: w.name, value: w.value } });
    }
  }
  return ops;
}

function splitList(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * NO_PROXY for the app: everything it already had (from either spelling), plus loopback. In-cluster
 * names (.svc, .cluster.local) are deliberately NOT added: in-cluster MCP servers are exactly what
 * the forward proxy must govern. The API server is unaffected either way: it is https, and only
 * HTTP_PROXY is set (HTTPS goes direct; HTTPS MCP sources are reached through THOUGHTGATE_URL).
 */
export function mergeNoProxy(...existing: Array<string | undefined>): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const item of [...existing.flatMap(splitList), ...NO_PROXY_LOOPBACK]) {
    const key = item.toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      out.push(item);
    }
  }
  return out.join(',');
}

function appEnv(c: Container, forwardProxy: boolean, warnings: string[]): Wanted[] {
  const proxyUrl = `http://127.0.0.1:${PORTS.proxy}`;
  // An app that already names its ThoughtGate (e.g. a non-default port) keeps it.
  const wanted: Wanted[] = [{ name: ENV.url, value: proxyUrl, override: false }];
  if (!forwardProxy) return wanted;
  // The annotation is an explicit request for governed plain-HTTP traffic, so it wins over an
  // HTTP_PROXY already set (which would otherwise route MCP around the sidecar).
  wanted.push({ name: 'HTTP_PROXY', value: proxyUrl, override: true }, { name: 'http_proxy', value: proxyUrl, override: true });
  const byName = new Map((c.env ?? []).map((e) => [e.name, e]));
  const literal = (n: string) => (byName.get(n)?.valueFrom === undefined ? byName.get(n)?.value : undefined);
  const merged = mergeNoProxy(literal('NO_PROXY'), literal('no_proxy'));
  for (const n of ['NO_PROXY', 'no_proxy']) {
    // A value from a Secret/ConfigMap cannot be read here; replacing it would drop its entries.
    if (byName.get(n)?.valueFrom !== undefined)
      warnings.push(`thoughtgate: container ${c.name}: ${n} comes from valueFrom and was left as is; make sure it contains ${NO_PROXY_LOOPBACK.join(',')}`);
    else wanted.push({ name: n, value: merged, override: true });
  }
  return wanted;
}

/** A pod refused: no patch, and the message the kubectl user sees. */
function deny(reason: string, message: string): MutationResult {
  return { patch: [], reason, injected: false, warnings: [], denied: `thoughtgate: ${message}` };
}

/**
 * Not injected: the decision's reason, and a warning when the pod asked for capture by name. Denied
 * instead when that would leave uncaptured a pod that capture must hold: in a namespace labelled
 * capture=required, any pod that opted out or cannot be injected; elsewhere, a pod with capture on
 * (annotation, namespace label, chart default) that cannot be injected (hostNetwork: unless
 * capture.allowBypassablePods).
 */
function notInjected(input: MutationInput, d: { kind: SkipKind; reason: string; fix?: string; warning?: string }): MutationResult {
  const labels = input.namespace.labels;
  const key = CAPTURE_ANNOTATIONS.capture;
  if (d.kind !== 'not-ours' && captureRequired(labels)) {
    return deny(
      `capture required: ${d.reason}`,
      `namespace ${input.namespace.name} is labelled ${key}=${CAPTURE_REQUIRED}, and this pod would run uncaptured: ${d.reason}. To run it there: ${d.fix ?? 'remove what keeps it from being injected'}`,
    );
  }
  if (d.kind === 'cannot' && !d.reason.startsWith('already injected')) {
    let optIn: ReturnType<typeof captureOptIn> | undefined;
    try {
      optIn = captureOptIn(input.pod, labels, input.settings.capture);
    } catch (err) {
      return deny('invalid capture annotation', `${describeError(err)} (the pod asked for capture that cannot be installed)`);
    }
    const tolerated = d.reason === 'hostNetwork pod' && input.settings.capture?.allowBypassablePods === true;
    if (optIn.on && !tolerated) {
      return deny(
        `capture impossible: ${d.reason}`,
        `capture is on (${optIn.why}) but the pod cannot be captured: ${d.reason}. ${d.fix ? `${d.fix.charAt(0).toUpperCase()}${d.fix.slice(1)}, or opt` : 'Opt'} the pod out with annotation ${key}: ${CAPTURE_DISABLED}`,
      );
    }
  }
  const warnings = d.warning ? [d.warning] : [];
  const asked = input.pod.metadata?.annotations?.[key] === CAPTURE_ENABLED;
  if (input.operation === 'CREATE' && asked && !d.reason.startsWith('already injected'))
    warnings.push(`thoughtgate: ${key}=${CAPTURE_ENABLED} but no sidecar is injected (${d.reason}): the pod's traffic is not captured`);
  return { patch: [], reason: d.reason, injected: false, warnings };
}

interface CapturePlan {
  spec: CaptureSpec;
  init: Container;
  annotation: string;
  why: string;
  warnings: string[];
}

/** Capture for an injected pod: null (not asked for), a plan, or the refusal. */
function planCapture(input: MutationInput, policyPorts: readonly number[], uid: number): CapturePlan | null | { denied: MutationResult } {
  const { pod, settings } = input;
  let optIn: ReturnType<typeof captureOptIn>;
  let cs: CaptureSpec;
  let specWarnings: string[];
  try {
    optIn = captureOptIn(pod, input.namespace.labels, settings.capture);
  } catch (err) {
    return { denied: deny('invalid capture annotation', `${describeError(err)} (the pod asked for capture that cannot be installed)`) };
  }
  const key = CAPTURE_ANNOTATIONS.capture;
  if (captureRequired(input.namespace.labels) && pod.metadata?.annotations?.[key] === CAPTURE_DISABLED)
    return {
      denied: deny(
        'capture required: opted out of capture',
        `namespace ${input.namespace.name} is labelled ${key}=${CAPTURE_REQUIRED}: a pod there cannot opt out with annotation ${key}: ${CAPTURE_DISABLED}; remove the annotation`,
      ),
    };
  if (!optIn.on) return null;
  try {
    ({ spec: cs, warnings: specWarnings } = captureSpec(pod, settings.capture, policyPorts, uid));
  } catch (err) {
    return { denied: deny('invalid capture annotation', `capture is on (${optIn.why}) but ${describeError(err)}`) };
  }
  const findings = bypassFindings(pod, uid);
  if (findings.length && !settings.capture?.allowBypassablePods) {
    const message = `capture is on (${optIn.why}) but the pod could walk around it. ${describeFindings(findings)}. Or opt the pod out with annotation ${CAPTURE_ANNOTATIONS.capture}: disabled.`;
    return { denied: deny('bypassable pod', message) };
  }
  return {
    spec: cs,
    init: captureInitContainer(settings.image, settings.imagePullPolicy ?? 'IfNotPresent', cs),
    annotation: capturedAnnotation(
      cs,
      findings.map((f) => f.container),
    ),
    why: optIn.why,
    warnings: [
      ...specWarnings,
      ...(findings.length ? [`thoughtgate: captured, but the pod could walk around capture (capture.allowBypassablePods): ${describeFindings(findings)}`] : []),
    ],
  };
}

/** Ops that put `first` at the head of initContainers, in order. */
function prependInitContainers(spec: NonNullable<Pod['spec']>, first: Container[]): JsonPatchOp[] {
  if (!first.length) return [];
  if (!spec.initContainers) return [{ op: 'add', path: '/spec/initContainers', value: first }];
  return [...first].reverse().map((c) => ({ op: 'add', path: '/spec/initContainers/0', value: c }));
}

/** The injected annotation (and the captured one), and the label the operator's pod informer selects on. */
function markOps(pod: Pod, version: string, capture: CapturePlan | null): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const marks: Record<string, string> = { [ANNOTATIONS.injected]: version, ...(capture ? { [CAPTURE_ANNOTATIONS.captured]: capture.annotation } : {}) };
  if (pod.metadata?.annotations)
    for (const [k, v] of Object.entries(marks)) ops.push({ op: 'add', path: `/metadata/annotations/${escapePointer(k)}`, value: v });
  else if (pod.metadata) ops.push({ op: 'add', path: '/metadata/annotations', value: marks });
  else ops.push({ op: 'add', path: '/metadata', value: { annotations: marks } });
  // A label, unlike an annotation, lets the operator watch only injected pods (its capture report).
  const label = capture ? SIDECAR_LABEL_VALUES.captured : SIDECAR_LABEL_VALUES.injected;
  if (pod.metadata?.labels) ops.push({ op: 'add', path: `/metadata/labels/${escapePointer(SIDECAR_LABEL)}`, value: label });
  else ops.push({ op: 'add', path: '/metadata/labels', value: { [SIDECAR_LABEL]: label } });
  return ops;
}

export function mutatePod(input: MutationInput): MutationResult {
  const d = decide(input);
  if (!d.inject) return notInjected(input, d);
  const { pod, settings } = input;
  const spec = pod.spec!;
  const mode = settings.mode ?? 'native';
  const ownToken = needsOwnToken(pod);
  const forwardProxy = pod.metadata?.annotations?.[ANNOTATIONS.forwardProxy] === 'true';
  const needs = policyNeeds(input.policies ?? [], pod.metadata?.labels ?? {});

  // Capture: decided (and refused) before anything is patched.
  const capture = planCapture(input, needs.httpPorts, settings.runAsUser ?? DEFAULT_RUN_AS_USER);
  if (capture && 'denied' in capture) return capture.denied;
  // Our volume names cannot clash: decide() refused a pod with one (SECRET_VOLUME_PREFIX included).
  const secrets = secretMounts(needs.secrets);
  const warnings = [...(capture?.warnings ?? []), ...secrets.warnings];
  const patch: JsonPatchOp[] = [];

  // App containers first, while their indices are the original ones.
  for (const [i, c] of spec.containers!.entries()) patch.push(...envOps(`/spec/containers/${i}`, c.env, appEnv(c, forwardProxy, warnings)));

  const sidecar = sidecarContainer(settings, ownToken, {
    env: capture ? captureEnv(capture.spec) : [],
    mounts: [...(capture ? [{ name: CAPTURE_STATE_VOLUME, mountPath: CAPTURE_STATE_DIR, readOnly: true }] : []), ...secrets.mounts],
  });
  // Native: the sidecar first, up before any other init container (which may itself call MCP);
  // capture's init container before it, so nothing of the pod runs before the rules are in.
  patch.push(...prependInitContainers(spec, [...(capture ? [capture.init] : []), ...(mode === 'native' ? [sidecar] : [])]));
  if (mode !== 'native') patch.push({ op: 'add', path: '/spec/containers/-', value: sidecar });

  const volumes = [
    podinfoVolume(),
    ...(ownToken ? [tokenVolume()] : []),
    // Memory-backed: the state file and iptables' lock, a few KiB; nothing to keep on the node's disk.
    ...(capture ? [{ name: CAPTURE_STATE_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] : []),
    ...secrets.volumes,
  ];
  if (spec.volumes) for (const v of volumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  else patch.push({ op: 'add', path: '/spec/volumes', value: volumes });
  patch.push(...markOps(pod, settings.version, capture));

  const parts = [`injected ${mode} sidecar`];
  if (ownToken) parts.push('with its own ServiceAccount token (automount is off)');
  if (forwardProxy) parts.push('forward proxy for the app');
  if (capture) parts.push(`captured (${capture.why})`);
  if (secrets.mounts.length) parts.push(`${secrets.mounts.length} Secret(s) mounted into the sidecar`);
  return { patch, reason: parts.join(', '), injected: true, warnings };
}

/** The sidecar's capture listeners and where capture-init leaves its state. */
function captureEnv(spec: CaptureSpec): EnvVar[] {
  return [
    { name: ENV.transparentPort, value: String(spec.transparentPort) },
    ...(spec.tlsPort !== null ? [{ name: ENV.tlsPort, value: String(spec.tlsPort) }] : []),
    { name: ENV.captureState, value: CAPTURE_STATE_FILE },
  ];
}

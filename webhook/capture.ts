// Traffic capture for an injected pod, as pure decisions: whether the pod is captured (its
// annotation, its namespace's label, the chart default), what the init container installs (ports,
// TLS, DNS, exceptions), the init container itself, and which of the pod's containers could walk
// around the rules (docs/security.md, capture).
import {
  CAPTURE_ANNOTATIONS,
  CAPTURE_PORTS,
  CAPTURE_STATE_DIR,
  CAPTURE_STATE_FILE,
  CAPTURE_STATE_VOLUME,
  DNS_MODES,
  INIT_CONTAINER_NAME,
  parseCaptureExceptions,
  parseCapturePorts,
  type CaptureException,
  type CaptureParse,
  type CaptureSpec,
  type DnsMode,
} from '../api/capture.js';
import { describeError } from '../lib/describe-error.js';
import type { Container, Pod, ResourceRequirements } from './pod.js';

/** The chart's `capture.*` values, as the operator's flags carry them. */
export interface CaptureSettings {
  /** Capture every injected pod unless it (annotation) or its namespace (label) says "disabled". */
  enabled?: boolean;
  /** Plain-HTTP ports always redirected, besides the policies' and the pod's annotation. */
  ports?: readonly number[];
  dns?: DnsMode;
  /** Outbound 443 goes to the SNI listener (else rejected); a pod's annotation overrides it. */
  tlsPassthrough?: boolean;
  /** Egress that passes capture for every captured pod; a pod's annotation adds to them. */
  exceptions?: readonly CaptureException[];
  /** Admit (with a warning) pods with a container that could walk around capture, instead of denying them. */
  allowBypassablePods?: boolean;
}

export const CAPTURE_ENABLED = 'enabled';
export const CAPTURE_DISABLED = 'disabled';
/**
 * Namespace label only: every pod of the namespace is captured, and one that would not be (opted out
 * of capture or injection, hostNetwork, a name clash) is denied instead of admitted uncaptured.
 */
export const CAPTURE_REQUIRED = 'required';

/**
 * Measured for the init container (Node starting the CLI, then iptables-restore twice): it runs
 * once, for well under a second; the request is what it needs to start promptly.
 */
export const CAPTURE_INIT_RESOURCES: ResourceRequirements = {
  requests: { cpu: '10m', memory: '48Mi' },
  limits: { cpu: '500m', memory: '128Mi' },
};

export type CaptureOptIn = { on: boolean; why: string };

/** The namespace is labelled thoughtgate.io/capture=required: capture cannot be opted out of there. */
export function captureRequired(namespaceLabels: Readonly<Record<string, string>>): boolean {
  return namespaceLabels[CAPTURE_ANNOTATIONS.capture] === CAPTURE_REQUIRED;
}

/**
 * Namespace label "required" (the pod cannot opt out: annotation "disabled" is the caller's denial)
 * > pod annotation (either way) > namespace label (either way) > chart default. Throws on an
 * annotation value that is neither.
 */
export function captureOptIn(pod: Pod, namespaceLabels: Readonly<Record<string, string>>, settings: CaptureSettings | undefined): CaptureOptIn {
  const key = CAPTURE_ANNOTATIONS.capture;
  const annotation = pod.metadata?.annotations?.[key];
  if (captureRequired(namespaceLabels)) {
    if (annotation !== undefined && annotation !== CAPTURE_ENABLED && annotation !== CAPTURE_DISABLED)
      throw new Error(`annotation ${key}: "${annotation}" is not ${CAPTURE_ENABLED} or ${CAPTURE_DISABLED}`);
    return { on: true, why: `namespace label ${key}=${CAPTURE_REQUIRED}` };
  }
  if (annotation !== undefined) {
    if (annotation !== CAPTURE_ENABLED && annotation !== CAPTURE_DISABLED)
      throw new Error(`annotation ${key}: "${annotation}" is not ${CAPTURE_ENABLED} or ${CAPTURE_DISABLED}`);
    return { on: annotation === CAPTURE_ENABLED, why: `annotation ${key}=${annotation}` };
  }
  const label = namespaceLabels[key];
  if (label === CAPTURE_ENABLED || label === CAPTURE_DISABLED) return { on: label === CAPTURE_ENABLED, why: `namespace label ${key}=${label}` };
  return { on: settings?.enabled === true, why: `capture.enabled=${settings?.enabled === true}` };
}

/** An exception as capture-init's --allow reads it. */
export function formatCaptureException(e: CaptureException): string {
  return `${e.cidr}:${e.port ?? '*'}`;
}

/** A parse result's value; its warnings appended to `warnings`; its error thrown (the caller names where it came from). */
export function unwrapParse<T>(r: CaptureParse<T>, warnings: string[]): T {
  if (!r.ok) throw new Error(r.error);
  warnings.push(...r.warnings);
  return r.value;
}

export function parseDnsMode(text: string): DnsMode {
  if (!(DNS_MODES as readonly string[]).includes(text)) throw new Error(`"${text}" is not one of ${DNS_MODES.join(', ')}`);
  return text as DnsMode;
}

/**
 * What the init container installs for this pod, and warnings (an exception's host bits cleared).
 * `policyPorts`: the http ports of the sources of the policies selecting it. Throws an Error naming
 * the annotation for a value it cannot use, or for a spec capture-init would refuse.
 */
export function captureSpec(
  pod: Pod,
  settings: CaptureSettings | undefined,
  policyPorts: readonly number[],
  uid: number,
): { spec: CaptureSpec; warnings: string[] } {
  const a = pod.metadata?.annotations ?? {};
  const warnings: string[] = [];
  const read = <T>(key: string, parse: (text: string) => T): T | undefined => {
    const text = a[key];
    if (text === undefined) return undefined;
    try {
      return parse(text.trim());
    } catch (err) {
      throw new Error(`annotation ${key}: ${describeError(err)}`);
    }
  };
  const tls = read(CAPTURE_ANNOTATIONS.tls, (t) => {
    if (t !== 'passthrough' && t !== 'reject') throw new Error(`"${t}" is not passthrough or reject`);
    return t === 'passthrough';
  });
  const annotated = read(CAPTURE_ANNOTATIONS.ports, (t) => unwrapParse(parseCapturePorts(t), warnings)) ?? [];
  const ports = [...new Set([...policyPorts, ...annotated, ...(settings?.ports ?? [])])].sort((x, y) => x - y);
  const exceptions = new Map<string, CaptureException>();
  const own = read(CAPTURE_ANNOTATIONS.allow, (t) => unwrapParse(parseCaptureExceptions([t]), warnings)) ?? [];
  for (const e of [...(settings?.exceptions ?? []), ...own]) exceptions.set(formatCaptureException(e), e);
  const tlsPort = (tls ?? settings?.tlsPassthrough === true) ? CAPTURE_PORTS.tlsPassthrough : null;
  // capture-init refuses this (443 would go to two listeners); refused here, the user sees why at once.
  if (tlsPort !== null && ports.includes(443))
    throw new Error('port 443 is both a plain-HTTP redirect port (a policy source, capture-ports or capture.ports) and TLS passthrough: choose one');
  return {
    spec: {
      uid,
      redirectPorts: ports,
      transparentPort: CAPTURE_PORTS.transparent,
      tlsPort,
      dns: read(CAPTURE_ANNOTATIONS.dns, parseDnsMode) ?? settings?.dns ?? 'resolv',
      exceptions: [...exceptions.values()],
    },
    warnings: warnings.map((w) => `thoughtgate: capture: ${w}`),
  };
}

/**
 * `thoughtgate capture-init` flags for a spec (DESIGN9.md piece 1). --redirect-ports is always
 * given, even empty: left out, capture-init would redirect its default (80).
 */
export function captureInitArgs(spec: CaptureSpec): string[] {
  return [
    'capture-init',
    '--uid',
    String(spec.uid),
    '--redirect-ports',
    spec.redirectPorts.join(','),
    '--transparent-port',
    String(spec.transparentPort),
    ...(spec.tlsPort !== null ? ['--tls-port', String(spec.tlsPort)] : []),
    '--dns',
    spec.dns,
    ...spec.exceptions.flatMap((e) => ['--allow', formatCaptureException(e)]),
    '--state-file',
    CAPTURE_STATE_FILE,
  ];
}

/** The only container with NET_ADMIN/NET_RAW; root because iptables needs it, and nothing else. */
export function captureInitContainer(image: string, imagePullPolicy: Container['imagePullPolicy'], spec: CaptureSpec): Container {
  return {
    name: INIT_CONTAINER_NAME,
    image,
    imagePullPolicy,
    args: captureInitArgs(spec),
    // iptables takes a lock file under /run by default, which a read-only root cannot hold.
    env: [{ name: 'XTABLES_LOCKFILE', value: `${CAPTURE_STATE_DIR}/xtables.lock` }],
    resources: structuredClone(CAPTURE_INIT_RESOURCES),
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: CAPTURE_STATE_VOLUME, mountPath: CAPTURE_STATE_DIR }],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** The `thoughtgate.io/captured` annotation: what was installed, for people and the operator's report. */
export function capturedAnnotation(spec: CaptureSpec, bypassable: readonly string[]): string {
  return JSON.stringify({
    ports: spec.redirectPorts,
    tls: spec.tlsPort !== null ? 'passthrough' : 'reject',
    dns: spec.dns,
    exceptions: spec.exceptions.map(formatCaptureException),
    ...(bypassable.length ? { bypassable } : {}),
  });
}

/**
 * Added capabilities that could walk around capture, compared upper-cased without a CAP_ prefix
 * (the runtime accepts "net_admin" and "CAP_NET_ADMIN" alike). Why each: NET_ADMIN and BPF change
 * or detach the rules (BPF can attach programs to the netns); NET_RAW sends raw packets past the
 * filter table's TCP view; SYS_ADMIN is nearly root (setns, mounts, BPF); SETUID/SETGID switch to the
 * sidecar's UID; SYS_PTRACE, PERFMON read or steer the sidecar's memory (its credentials); DAC_*
 * read the sidecar's files (Secrets, via /proc/<pid>/root) whatever their mode; SYS_MODULE loads
 * kernel code; ALL is all of these.
 */
export const BYPASS_CAPABILITIES: readonly string[] = [
  'ALL',
  'NET_ADMIN',
  'NET_RAW',
  'SYS_ADMIN',
  'SETUID',
  'SETGID',
  'SYS_PTRACE',
  'DAC_READ_SEARCH',
  'DAC_OVERRIDE',
  'SYS_MODULE',
  'BPF',
  'PERFMON',
];

/** A capability as the runtime reads it: upper-case, without CAP_. */
export function normalizeCapability(name: string): string {
  return name.trim().toUpperCase().replace(/^CAP_/, '');
}

/** The name a pod-level finding (hostPID, hostIPC) carries in place of a container's. */
export const POD_FINDING = '(pod)';

export interface BypassFinding {
  /** A container's name, or POD_FINDING for the pod's own settings. */
  container: string;
  problems: string[];
}

/**
 * The pod's containers (init and app) that could walk around capture: run as the sidecar's UID
 * (exempt), or could become it or root (root may flush the rules only with NET_ADMIN, but can
 * switch to the sidecar's UID). Effective settings: the container's, else the pod's. Called on the
 * pod as submitted, before the sidecar and capture-init are added: every container it lists is the
 * user's (a user container named like ours is refused before, in decide()).
 *
 * runAsUser must be explicit: with runAsNonRoot alone the image's USER decides the UID, and an image
 * built `USER 7467` (ThoughtGate's own is) would run exempt. runAsGroup is not checked: the rules
 * match the owner by UID only (`-m owner --uid-owner`, sidecar/capture/rules-plan.ts), so a
 * container sharing the sidecar's GID is captured like any other; the sidecar's files that matter
 * (Secrets, capture state) are mounted into the sidecar only.
 */
export function bypassFindings(pod: Pod, sidecarUid: number): BypassFinding[] {
  const podSc = pod.spec?.securityContext ?? {};
  const out: BypassFinding[] = [];
  // The node's PID/IPC namespaces: the sidecar's processes (and the node's) become reachable by PID
  // (/proc/<pid>/root, signals, shared memory), outside what the pod's own namespaces isolate.
  const podProblems: string[] = [];
  if (pod.spec?.hostPID) podProblems.push("it shares the node's PID namespace: set spec.hostPID: false");
  if (pod.spec?.hostIPC) podProblems.push("it shares the node's IPC namespace: set spec.hostIPC: false");
  if (podProblems.length) out.push({ container: POD_FINDING, problems: podProblems });
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const sc = c.securityContext ?? {};
    const uid = sc.runAsUser ?? podSc.runAsUser;
    const problems: string[] = [];
    if (sc.privileged) problems.push('it is privileged: set securityContext.privileged: false');
    if (uid === sidecarUid) problems.push(`it runs as UID ${uid}, the sidecar's (exempt from capture): set securityContext.runAsUser to another UID`);
    else if (uid === 0) problems.push(`it runs as root: set securityContext.runAsUser to a non-root UID other than ${sidecarUid}`);
    else if (uid === undefined)
      problems.push(
        `it has no runAsUser, so its image's USER decides the UID (it could be root or ${sidecarUid}, the sidecar's): set securityContext.runAsUser (container or pod) to a UID other than 0 and ${sidecarUid}`,
      );
    if (sc.allowPrivilegeEscalation !== false)
      problems.push('a setuid program could make it root or the sidecar: set securityContext.allowPrivilegeEscalation: false');
    const caps = (sc.capabilities?.add ?? []).filter((x) => BYPASS_CAPABILITIES.includes(normalizeCapability(x)));
    if (caps.length) problems.push(`it adds capability ${caps.join(', ')}: remove it from securityContext.capabilities.add`);
    if (problems.length) out.push({ container: c.name, problems });
  }
  return out;
}

export function describeFindings(findings: readonly BypassFinding[]): string {
  return findings.map((f) => `${f.container === POD_FINDING ? 'the pod' : `container "${f.container}"`}: ${f.problems.join('; ')}`).join('. ');
}

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
 * Measured for the init container (Node starting the CLI, then iptables-restore twice): it runs
 * once, for well under a second; the request is what it needs to start promptly.
 */
export const CAPTURE_INIT_RESOURCES: ResourceRequirements = {
  requests: { cpu: '10m', memory: '48Mi' },
  limits: { cpu: '500m', memory: '128Mi' },
};

export type CaptureOptIn = { on: boolean; why: string };

/** Pod annotation (either way) > namespace label (either way) > chart default. Throws on a value that is neither. */
export function captureOptIn(pod: Pod, namespaceLabels: Readonly<Record<string, string>>, settings: CaptureSettings | undefined): CaptureOptIn {
  const key = CAPTURE_ANNOTATIONS.capture;
  const annotation = pod.metadata?.annotations?.[key];
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

/** Capabilities with which a process can undo the rules or change its UID. */
const BYPASS_CAPABILITIES = ['ALL', 'NET_ADMIN', 'SYS_ADMIN', 'SETUID'];

export interface BypassFinding {
  container: string;
  problems: string[];
}

/**
 * The pod's containers (init and app) that could walk around capture: run as the sidecar's UID
 * (exempt), or could become it or root (root may flush the rules only with NET_ADMIN, but can
 * switch to the sidecar's UID). Effective settings: the container's, else the pod's.
 */
export function bypassFindings(pod: Pod, sidecarUid: number): BypassFinding[] {
  const podSc = pod.spec?.securityContext ?? {};
  const out: BypassFinding[] = [];
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const sc = c.securityContext ?? {};
    const uid = sc.runAsUser ?? podSc.runAsUser;
    const nonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
    const problems: string[] = [];
    if (sc.privileged) problems.push('it is privileged: set securityContext.privileged: false');
    if (uid === sidecarUid) problems.push(`it runs as UID ${uid}, the sidecar's (exempt from capture): set securityContext.runAsUser to another UID`);
    else if (uid === 0) problems.push(`it runs as root: set securityContext.runAsUser to a non-root UID other than ${sidecarUid}`);
    else if (uid === undefined && nonRoot !== true)
      problems.push(
        `it may run as root (no runAsUser, runAsNonRoot not true): set securityContext.runAsNonRoot: true or a runAsUser other than 0 and ${sidecarUid}`,
      );
    if (sc.allowPrivilegeEscalation !== false)
      problems.push('a setuid program could make it root or the sidecar: set securityContext.allowPrivilegeEscalation: false');
    const caps = (sc.capabilities?.add ?? []).filter((x) => BYPASS_CAPABILITIES.includes(x.replace(/^CAP_/, '')));
    if (caps.length) problems.push(`it adds capability ${caps.join(', ')}: remove it from securityContext.capabilities.add`);
    if (problems.length) out.push({ container: c.name, problems });
  }
  return out;
}

export function describeFindings(findings: readonly BypassFinding[]): string {
  return findings.map((f) => `container "${f.container}": ${f.problems.join('; ')}`).join('. ');
}

// Traffic capture and credential custody: the names the webhook, the init container
// (`thoughtgate capture-init`), the sidecar and the operator agree on. docs/security.md explains the model.
import { isIP } from 'node:net';
import { z } from 'zod';

/** Sidecar listeners that only exist in a captured pod (both bound to loopback, where REDIRECT delivers). */
export const CAPTURE_PORTS = {
  /** Plain HTTP redirected from the agent: governed by Host, as the forward proxy governs absolute-form requests. */
  transparent: 7470,
  /** TLS redirected from the agent (optional): SNI checked against sources and egress, then tunnelled unopened. */
  tlsPassthrough: 7471,
} as const;

/**
 * The UID the injected sidecar runs as, exempt from capture. Not 65532: distroless "nonroot" images
 * run as 65532, and an app with the sidecar's UID would be exempt too.
 */
export const SIDECAR_UID = 7467;

export const CAPTURE_ANNOTATIONS = {
  /** Pod annotation (or namespace label): "enabled" captures the pod's outbound traffic, "disabled" opts out. */
  capture: 'thoughtgate.io/capture',
  /** Pod annotation: extra plain-HTTP ports to redirect, comma-separated ("8000,8080"). */
  ports: 'thoughtgate.io/capture-ports',
  /** Pod annotation: egress exceptions, comma-separated CIDR:port ("10.0.0.0/8:5432", "fd00::/8:443", port "*" = any). */
  allow: 'thoughtgate.io/capture-allow',
  /** Pod annotation: DNS policy, one of DNS_MODES. */
  dns: 'thoughtgate.io/capture-dns',
  /** Pod annotation: "passthrough" sends outbound 443 to the SNI listener; "reject" (default) rejects it. */
  tls: 'thoughtgate.io/capture-tls',
  /** Set by the webhook on a captured pod: what was installed (JSON of CaptureSpec's public part). */
  captured: 'thoughtgate.io/captured',
} as const;

/** resolv: UDP/TCP 53 to the nameservers of /etc/resolv.conf only; any: to any address; none: DNS rejected. */
export const DNS_MODES = ['resolv', 'any', 'none'] as const;
export type DnsMode = (typeof DNS_MODES)[number];

export const INIT_CONTAINER_NAME = 'thoughtgate-capture';
/** emptyDir shared by the init container (writes) and the sidecar (reads); never mounted into the app. */
export const CAPTURE_STATE_DIR = '/var/run/thoughtgate/capture';
export const CAPTURE_STATE_FILE = `${CAPTURE_STATE_DIR}/state.json`;
export const CAPTURE_STATE_VOLUME = 'thoughtgate-capture';

/** Where the webhook mounts a Secret a GovernancePolicy names (secretKeyRef): `${SECRETS_DIR}/<secret>/<key>`, sidecar only. */
export const SECRETS_DIR = '/var/run/thoughtgate/secrets';

/** An egress exception: TCP to this CIDR and port (null: any port) passes capture. */
export interface CaptureException {
  cidr: string;
  family: 4 | 6;
  port: number | null;
}

/** What the init container installs (its flags, parsed). */
export interface CaptureSpec {
  uid: number;
  redirectPorts: number[];
  transparentPort: number;
  /** null: outbound 443 is rejected like any other uncaptured port. */
  tlsPort: number | null;
  dns: DnsMode;
  exceptions: CaptureException[];
}

/** What the init container leaves in CAPTURE_STATE_FILE for the sidecar's /ready. */
export const CaptureStateSchema = z.object({
  version: z.literal(1),
  backend: z.enum(['nft', 'legacy']),
  families: z.array(z.enum(['ipv4', 'ipv6'])),
  spec: z.object({
    uid: z.number().int(),
    redirectPorts: z.array(z.number().int()),
    transparentPort: z.number().int(),
    tlsPort: z.number().int().nullable(),
    dns: z.enum(DNS_MODES),
    exceptions: z.array(z.object({ cidr: z.string(), family: z.union([z.literal(4), z.literal(6)]), port: z.number().int().nullable() })),
  }),
  /** sha256 of the rules as applied (both families). */
  rulesHash: z.string(),
  installedAt: z.string(),
  durationMs: z.number(),
});
export type CaptureState = z.infer<typeof CaptureStateSchema>;

// ---------- parsing (the webhook's annotations and chart settings, capture-init's flags) ----------
// Each throws an Error whose message names the bad part; callers prefix where it came from.

/** "80,8080" → [80, 8080] (sorted, deduplicated). Empty text → []. */
export function parseCapturePorts(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    if (!/^[0-9]{1,5}$/.test(part) || Number(part) < 1 || Number(part) > 65535) throw new Error(`"${part}" is not a TCP port (1-65535)`);
    out.add(Number(part));
  }
  return [...out].sort((a, b) => a - b);
}

/** "10.0.0.0/8:5432", "fd00::/8:443", "192.0.2.7:*" (a bare address is /32 or /128; port "*" = any). */
export function parseCaptureException(text: string): CaptureException {
  const t = text.trim();
  const colon = t.lastIndexOf(':');
  if (colon < 0) throw new Error(`"${t}" is not CIDR:PORT (e.g. 10.0.0.0/8:5432, fd00::/8:443, 192.0.2.7:*)`);
  const [net, portText] = [t.slice(0, colon), t.slice(colon + 1)];
  let port: number | null = null;
  if (portText !== '*') {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw new Error(`"${t}": port "${portText}" is not 1-65535 or *`);
    port = Number(portText);
  }
  const slash = net.indexOf('/');
  const address = (slash < 0 ? net : net.slice(0, slash)).replace(/^\[(.*)\]$/, '$1');
  const family = isIP(address);
  if (family !== 4 && family !== 6) throw new Error(`"${t}": "${address}" is not an IPv4 or IPv6 address`);
  const max = family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(max) : net.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lenText) || Number(lenText) > max) throw new Error(`"${t}": prefix length "${lenText}" is not 0-${max}`);
  return { cidr: `${address}/${Number(lenText)}`, family, port };
}

/** A comma-separated list of parseCaptureException entries. Empty text → []. */
export function parseCaptureExceptions(text: string): CaptureException[] {
  return text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map(parseCaptureException);
}

/** The exception back in its flag form (capture-init --allow). */
export function formatCaptureException(e: CaptureException): string {
  return `${e.cidr}:${e.port ?? '*'}`;
}

export function parseDnsMode(text: string): DnsMode {
  const t = text.trim();
  if (!(DNS_MODES as readonly string[]).includes(t)) throw new Error(`"${t}" is not one of ${DNS_MODES.join(', ')}`);
  return t as DnsMode;
}

// ---------- the operator's report (GovernancePolicy status.capture) ----------

/** Pod label the webhook sets on every pod it injects: what the operator's pod informer selects on. */
export const SIDECAR_LABEL = 'thoughtgate.io/sidecar';
export const SIDECAR_LABEL_VALUES = { injected: 'injected', captured: 'captured' } as const;
/** Names listed per kind in the report; the counts are always complete. */
export const CAPTURE_REPORT_MAX_NAMES = 10;

/** Per namespace, written into the status of each of its GovernancePolicies. */
export const CaptureReportSchema = z.object({
  /** "captured/injected", the `Captured` column of `kubectl get governancepolicies`. */
  summary: z.string(),
  captured: z.number().int(),
  notCaptured: z.number().int(),
  /** Captured pods admitted with a container that could walk around capture (capture.allowBypassablePods). */
  bypassable: z.number().int(),
  capturedPods: z.array(z.string()),
  notCapturedPods: z.array(z.string()),
  bypassablePods: z.array(z.string()),
});
export type CaptureReport = z.infer<typeof CaptureReportSchema>;

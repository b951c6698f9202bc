// Traffic capture and credential custody: the names the webhook, the init container
// (`thoughtgate capture-init`), the sidecar and the operator agree on. docs/security.md explains the model.

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
/** The sidecar's environment variable that moves SECRETS_DIR (standalone: a directory laid out `<secret>/<key>`). */
export const SECRETS_DIR_ENV = 'THOUGHTGATE_SECRETS_DIR';

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

// ---------------------------------------------------------------- the strings flags and annotations carry
// One parser for capture-init's flags and the webhook's annotations, so both refuse the same text
// with the same message. Pure.

export type CaptureParse<T> = { ok: true; value: T; warnings: string[] } | { ok: false; error: string };

const EXCEPTION_EXAMPLE = 'expected CIDR:PORT, e.g. 10.0.0.0/8:5432, fd00::/8:443 or [fd00::/8]:443 (PORT a number or *)';

function port1(text: string): number | null {
  if (!/^[1-9]\d{0,4}$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

/** "80,8080" → [80, 8080] (sorted, without duplicates); "" → []. Each port 1–65535. */
export function parseCapturePorts(text: string): CaptureParse<number[]> {
  const t = text.trim();
  if (t === '') return { ok: true, value: [], warnings: [] };
  const out = new Set<number>();
  for (const raw of t.split(',')) {
    const p = port1(raw.trim());
    if (p === null) return { ok: false, error: `"${raw.trim()}" is not a port (1-65535) in "${t}"` };
    out.add(p);
  }
  return { ok: true, value: [...out].sort((a, b) => a - b), warnings: [] };
}

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** An address as a number (32 or 128 bits), strict: dotted-decimal IPv4 only, IPv6 without zone. */
function addressValue(text: string): { family: 4 | 6; value: bigint } | null {
  const m = V4.exec(text);
  if (m) return { family: 4, value: m.slice(1).reduce((v, b) => (v << 8n) | BigInt(b), 0n) };
  if (!text.includes(':') || /[[\]/%@]/.test(text)) return null;
  let canonical: string;
  try {
    // The WHATWG URL parser validates IPv6 and writes it in RFC 5952 form, embedded IPv4 as hex.
    canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const [left, right] = canonical.split('::') as [string, string | undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const all = right === undefined ? l : [...l, ...new Array<string>(8 - l.length - r.length).fill('0'), ...r];
  return { family: 6, value: all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

function formatAddress(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const full = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => ((value >> s) & 0xffffn).toString(16)).join(':');
  return new URL(`http://[${full}]/`).hostname.slice(1, -1);
}

/**
 * "10.1.0.0/16" → its canonical form. A prefix is required. Host bits set ("10.1.2.3/16") are
 * cleared, with a warning saying so; IPv4-mapped IPv6 prefixes are refused (such traffic leaves as
 * IPv4: write the IPv4 CIDR).
 */
export function parseCaptureCidr(text: string): CaptureParse<{ cidr: string; family: 4 | 6 }> {
  const t = text.trim();
  const slash = t.lastIndexOf('/');
  if (slash < 0) return { ok: false, error: `"${t}" has no prefix length (write 10.0.0.5/32 for one address)` };
  const addr = addressValue(t.slice(0, slash));
  if (!addr) return { ok: false, error: `"${t.slice(0, slash)}" is not an IPv4 or IPv6 address (in "${t}")` };
  const bits = addr.family === 4 ? 32 : 128;
  const lenText = t.slice(slash + 1);
  const len = /^(0|[1-9]\d{0,2})$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len >= 0 && len <= bits)) return { ok: false, error: `"/${lenText}" is not a prefix length (0-${bits}) in "${t}"` };
  if (addr.family === 6 && addr.value >> 32n === 0xffffn && len >= 96)
    return { ok: false, error: `"${t}" is IPv4-mapped: such connections leave as IPv4, write the IPv4 CIDR` };
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  const net = addr.value & ~hostMask;
  const cidr = `${formatAddress(addr.family, net)}/${len}`;
  const warnings = net !== addr.value ? [`"${t}" has host bits set: using ${cidr}`] : [];
  return { ok: true, value: { cidr, family: addr.family }, warnings };
}

/** One egress exception, "CIDR:PORT": "10.0.0.0/8:5432", "fd00::/8:443", "[fd00::/8]:443", PORT "*" = any. */
export function parseCaptureException(text: string): CaptureParse<CaptureException> {
  const t = text.trim();
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(t);
  const colon = t.lastIndexOf(':');
  const [cidrText, portText] = bracketed ? [bracketed[1]!, bracketed[2]!] : colon < 0 ? [t, ''] : [t.slice(0, colon), t.slice(colon + 1)];
  if (portText === '' || !cidrText.includes('/')) return { ok: false, error: `"${t}": ${EXCEPTION_EXAMPLE}` };
  const port = portText === '*' ? null : port1(portText);
  if (port === null && portText !== '*') return { ok: false, error: `"${t}": "${portText}" is not a port (1-65535 or *)` };
  const c = parseCaptureCidr(cidrText);
  if (!c.ok) return { ok: false, error: `"${t}": ${c.error}` };
  const warnings = [...c.warnings];
  if (c.value.cidr.endsWith('/0') && port === null) warnings.push(`"${t}" lets every TCP connection of this family past capture`);
  return { ok: true, value: { ...c.value, port }, warnings };
}

/** Several exceptions (repeated flags, or the annotation's comma-separated list); duplicates dropped. */
export function parseCaptureExceptions(texts: readonly string[]): CaptureParse<CaptureException[]> {
  const out: CaptureException[] = [];
  const warnings: string[] = [];
  for (const text of texts.flatMap((x) => x.split(',')).map((x) => x.trim())) {
    if (text === '') continue;
    const e = parseCaptureException(text);
    if (!e.ok) return e;
    warnings.push(...e.warnings);
    if (!out.some((o) => o.cidr === e.value.cidr && o.port === e.value.port)) out.push(e.value);
  }
  return { ok: true, value: out, warnings };
}

// ---------- the operator's report (GovernancePolicy status.capture) ----------

/** Pod label the webhook sets on every pod it injects: what the operator's pod informer selects on. */
export const SIDECAR_LABEL = 'thoughtgate.io/sidecar';
export const SIDECAR_LABEL_VALUES = { injected: 'injected', captured: 'captured' } as const;
/** Names listed per kind in the report; the counts are always complete. */
export const CAPTURE_REPORT_MAX_NAMES = 10;

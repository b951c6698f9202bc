// capture-init's flags → what to install, and resolv.conf → the resolvers DNS may reach. Pure.
import {
  CAPTURE_PORTS,
  CAPTURE_STATE_FILE,
  type CaptureParse,
  type CaptureSpec,
  DNS_MODES,
  type DnsMode,
  parseCaptureCidr,
  parseCaptureExceptions,
  parseCapturePorts,
  SIDECAR_UID,
} from '../../api/capture.js';

export const BACKENDS = ['auto', 'nft', 'legacy'] as const;
export const IPV6_MODES = ['auto', 'on', 'off'] as const;
export const DEFAULT_REDIRECT_PORTS = [80];
export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

export interface CaptureInitOptions {
  spec: CaptureSpec;
  resolvConf: string;
  backend: (typeof BACKENDS)[number];
  ipv6: (typeof IPV6_MODES)[number];
  stateFile: string;
  dryRun: boolean;
}

/** The flags as node:util parseArgs returns them (strings, booleans, repeated strings). */
export interface CaptureInitFlags {
  uid?: string;
  'redirect-ports'?: string;
  'transparent-port'?: string;
  'tls-port'?: string;
  dns?: string;
  'resolv-conf'?: string;
  allow?: string[];
  backend?: string;
  ipv6?: string;
  'state-file'?: string;
  'dry-run'?: boolean;
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  const v = value ?? fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${flag} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

function listenerPort(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const p = parseCapturePorts(value);
  if (!p.ok || p.value.length !== 1) throw new Error(`--${flag} must be one port (1-65535), got "${value}"`);
  return p.value[0]!;
}

function unwrap<T>(flag: string, r: CaptureParse<T>, warnings: string[]): T {
  if (!r.ok) throw new Error(`--${flag}: ${r.error}`);
  warnings.push(...r.warnings.map((w) => `--${flag}: ${w}`));
  return r.value;
}

/** Flags → options, or an error naming the flag. Warnings: what was accepted but changed or risky. */
export function captureInitOptions(flags: CaptureInitFlags): CaptureParse<CaptureInitOptions> {
  const warnings: string[] = [];
  try {
    const uidText = flags.uid ?? String(SIDECAR_UID);
    if (!/^(0|[1-9]\d{0,9})$/.test(uidText) || Number(uidText) > 0xfffffffe) throw new Error(`--uid must be a numeric uid, got "${uidText}"`);
    const uid = Number(uidText);
    // Root's traffic would pass uncaptured, and an agent running as root is the case to stop.
    if (uid === 0) throw new Error('--uid 0 would exempt root from capture: run the sidecar as its own uid');
    const redirectPorts =
      flags['redirect-ports'] === undefined ? DEFAULT_REDIRECT_PORTS : unwrap('redirect-ports', parseCapturePorts(flags['redirect-ports']), warnings);
    const transparentPort = listenerPort('transparent-port', flags['transparent-port'], CAPTURE_PORTS.transparent);
    const tlsPort = flags['tls-port'] === undefined ? null : listenerPort('tls-port', flags['tls-port'], CAPTURE_PORTS.tlsPassthrough);
    if (tlsPort !== null && tlsPort === transparentPort) throw new Error(`--tls-port and --transparent-port are both ${tlsPort}: they are two listeners`);
    if (tlsPort !== null && redirectPorts.includes(443)) throw new Error('443 is in --redirect-ports and --tls-port is set: 443 goes to one listener, choose');
    const dns: DnsMode = oneOf('dns', flags.dns, DNS_MODES, 'resolv');
    const exceptions = unwrap('allow', parseCaptureExceptions(flags.allow ?? []), warnings);
    return {
      ok: true,
      value: {
        spec: { uid, redirectPorts, transparentPort, tlsPort, dns, exceptions },
        resolvConf: flags['resolv-conf'] ?? DEFAULT_RESOLV_CONF,
        backend: oneOf('backend', flags.backend, BACKENDS, 'auto'),
        ipv6: oneOf('ipv6', flags.ipv6, IPV6_MODES, 'auto'),
        stateFile: flags['state-file'] ?? CAPTURE_STATE_FILE,
        dryRun: flags['dry-run'] === true,
      },
      warnings,
    };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * The `nameserver` lines of a resolv.conf, canonical (a link-local zone "%eth0" dropped: iptables
 * matches addresses, not zones). A line that is not an address is skipped with a warning, as the
 * resolver itself skips it.
 */
export function parseResolvConf(text: string): { nameservers: string[]; warnings: string[] } {
  const nameservers: string[] = [];
  const warnings: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const addr = m[1]!.replace(/%.*$/, '');
    const c = parseCaptureCidr(`${addr}/${addr.includes(':') ? 128 : 32}`);
    if (!c.ok) {
      warnings.push(`resolv.conf: nameserver "${m[1]}" is not an address: skipped`);
      continue;
    }
    const canonical = c.value.cidr.replace(/\/\d+$/, '');
    if (!nameservers.includes(canonical)) nameservers.push(canonical);
  }
  return { nameservers, warnings };
}

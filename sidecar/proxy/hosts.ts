// Host validation on the sidecar's own listeners (DNS rebinding, MCP transport spec). A page on
// evil.example whose name is rebound to 127.0.0.1 reaches the sidecar with `Host: evil.example`;
// only names and addresses that are the sidecar's own are accepted. The port is not what a
// rebinding page can change (it is in the page's own URL), and `kubectl port-forward 8080:7467` or
// a node port legitimately changes it: loopback names, the bind address and IP literals on a
// wildcard bind are accepted on any port, as the MCP SDKs' own checks do. Pure: the shell passes
// the listener's port and bind address.
import { isIP } from 'node:net';

/** A Host header read as its canonical parts. */
export interface HostName {
  /** Lower case, no trailing dot; IPv4 dotted-decimal; IPv6 in brackets, compressed (WHATWG URL). */
  host: string;
  /** The port the client addressed; 80 when the header has none (the sidecar speaks plain http). */
  port: number;
  ip: boolean;
}

// reg-name restricted to what DNS names and IP literals use: no percent-encoding, no userinfo.
const HOST_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{0,5}))?$/;

/** Reads a Host header (or an allowedHosts entry); null when it is not a plain host[:port]. */
export function readHost(value: string): HostName | null {
  const m = HOST_RE.exec(value);
  if (!m) return null;
  const port = m[2] === undefined || m[2] === '' ? 80 : Number(m[2]);
  if (port < 1 || port > 65535) return null;
  let host: string;
  try {
    // The WHATWG parser is what browsers use to build Host: it folds case, IPv4 spellings
    // (127.1, 0x7f.1, 2130706433) and IPv6 forms to one text.
    host = new URL(`http://${m[1]}/`).hostname;
  } catch {
    return null;
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '' || host.endsWith('.')) return null;
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(host);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16),
      lo = parseInt(mapped[2]!, 16);
    host = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  const ip = host.startsWith('[') || isIP(host) === 4;
  return { host, port, ip };
}

export interface HostPolicy {
  /** host → ports accepted (null: any port). */
  names: ReadonlyMap<string, ReadonlySet<number> | null>;
  /** The listener is bound to every address (0.0.0.0, ::): any IP literal is its own. */
  anyIp: boolean;
  port: number;
  /** Header values accepted as written (the usual `127.0.0.1:7467`): no parsing on the fast path. */
  exact: ReadonlySet<string>;
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];
const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0']);

/**
 * The names one listener answers to: loopback names and its bind address (any port), plus
 * configured names (`name` for any port, `name:port` for that port only).
 */
export function hostPolicy(bind: string, port: number, allowed: readonly string[]): HostPolicy {
  const names = new Map<string, Set<number> | null>();
  const add = (host: string, p: number | null) => {
    const cur = names.get(host);
    if (cur === null) return;
    if (p === null) {
      names.set(host, null);
      return;
    }
    names.set(host, new Set([...(cur ?? []), p]));
  };
  for (const h of LOOPBACK) add(h, null);
  const anyIp = WILDCARD.has(bind);
  if (!anyIp) {
    const b = readHost(isIP(bind) === 6 ? `[${bind}]` : bind);
    if (b) add(b.host, null);
  }
  for (const entry of allowed) {
    const e = readHost(entry.trim());
    if (e) add(e.host, /:[0-9]+$/.test(entry.trim()) ? e.port : null);
  }
  const exact = new Set<string>();
  for (const [h, ps] of names) for (const p of ps ?? [port]) exact.add(`${h}:${p}`);
  return { names, anyIp, port, exact };
}

/** Why a Host header is refused, or null when it names this listener. */
export function checkHost(policy: HostPolicy, header: string | undefined): string | null {
  if (header === undefined || header === '') return 'the request has no Host header';
  if (policy.exact.has(header)) return null;
  const h = readHost(header);
  if (!h) return 'the Host header is not a valid host[:port]';
  const ports = policy.names.get(h.host);
  if (ports === null) return null;
  if (ports !== undefined) return ports.has(h.port) ? null : `Host port ${h.port} is not allowed for this name`;
  if (policy.anyIp && h.ip) return null;
  return 'the Host header does not name this sidecar (server.allowedHosts, --allowed-hosts)';
}

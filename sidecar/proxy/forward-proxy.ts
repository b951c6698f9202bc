// Forward-proxy mode: an agent with HTTP_PROXY=http://127.0.0.1:7467 sends absolute-form
// requests. A request to a source's MCP URL is governed exactly like /mcp/<source>, one to an A2A
// agent's endpoints (its card, JSON-RPC path, REST routes) exactly like /a2a/<source>/; any other
// path on a source's origin is refused (it would reach the upstream unseen by the gates), except,
// for an MCP source whose auth mode is passthrough, its OAuth discovery documents and its
// relayPaths; other destinations and CONNECT tunnels follow egress.allow / egress.deny (unlisted:
// denied). Every decision is taken on addresses (destination.ts), so no spelling of a source's
// address and no DNS name that resolves to it gets around the gates, and no spelling gets around
// egress.deny. Sources configured under different hosts behind one address and port are told
// apart by the host the agent used; a host naming none of them is refused (ambiguous).
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../lib/log.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { aliases, defaultPort, hostForUrl, isLocalAddress, parseHost, type HostSpec } from '../../lib/destination.js';
import { egressVerdict, nameVerdict, type EgressRules } from './egress-rules.js';
import { flushHead } from './pipe.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { ResolveError, type Resolver } from './resolver.js';
import { poolRequest, type UpstreamPools } from './upstream.js';
import { describeError } from '../../lib/describe-error.js';
import { canonicalPath, isRelayablePath } from './request-path.js';
import { a2aOnOrigin } from './a2a-origin.js';
import { layoutOf } from '../a2a/classify.js';

export type Refusal = { kind: 'refused'; status: number; reason: string };

/** A forward-proxy destination, canonical: the host as an address or a name, the port explicit. */
export type Target =
  /** method: the request's; unknown (undefined) counts as neither GET nor HEAD. raw: the path and query as sent. */
  { kind: 'http'; url: URL; raw: string; host: HostSpec; port: number; method?: string } | { kind: 'connect'; host: HostSpec; port: number };

export type Route =
  /** An MCP source's endpoint. */
  | { kind: 'source'; source: CompiledSource }
  /**
   * An A2A agent's endpoint: handled as /a2a/<source><sub>. `base`: the origin the agent addressed
   * (http://host:port, as the URL parser writes it): the card's interface URLs point there, where
   * the agent is captured (or proxied) again.
   */
  | { kind: 'a2a'; source: CompiledSource; sub: string; base: string }
  | Refusal
  /** Plain HTTP relayed to `address` (what was decided on), with Host from the URL; `oauth`: a passthrough source's OAuth path. */
  | { kind: 'egress'; url: URL; address: string; port: number; oauth?: string }
  /** An opaque tunnel to `address`. */
  | { kind: 'tunnel'; address: string; port: number };

/** What the act learned before the plan decides: resolved addresses, all canonical. */
export interface Facts {
  /** The destination's addresses (itself for a literal), in connect order. */
  addresses: readonly string[];
  /** Sources on the destination's port, with their addresses. */
  sources: readonly { source: CompiledSource; addresses: readonly string[] }[];
  /** This host's interface addresses. */
  own: ReadonlySet<string>;
  /** The sidecar's own proxy port: a request to it comes back to the gates. */
  selfPort?: number;
}

function label(t: Target): string {
  return `${t.host.kind === 'name' ? t.host.name : hostForUrl(t.host.address)}:${t.port}`;
}

export function sourcePort(s: CompiledSource): number {
  return s.url.port ? Number(s.url.port) : defaultPort(s.url.protocol);
}

/** An absolute-form request target. Pure. */
export function parseAbsolute(target: string, method?: string): Target | Refusal {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { kind: 'refused', status: 400, reason: 'malformed absolute URL' };
  }
  if (url.protocol !== 'http:') return { kind: 'refused', status: 400, reason: `absolute-form requests must be http://; use CONNECT for ${url.protocol}` };
  const host = parseHost(url.hostname);
  if (host.kind === 'invalid') return { kind: 'refused', status: 400, reason: `invalid host: ${host.reason}` };
  // What follows the authority as sent, before the URL parser resolved dot segments and "\" ("" when the target is not spelt http://authority/...).
  const m = /^http:\/\/[^/?#\\]*(.*)$/is.exec(target);
  const raw = m === null ? '' : m[1] === '' ? '/' : m[1]!.startsWith('?') ? `/${m[1]}` : m[1]!;
  return { kind: 'http', url, raw, host, port: url.port ? Number(url.port) : defaultPort(url.protocol), ...(method !== undefined ? { method } : {}) };
}

/** A CONNECT authority: host:port, the port explicit. Pure. */
export function parseConnect(authority: string): Target | Refusal {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:/?#@%\s[\]]+):(\d{1,5})$/.exec(authority);
  if (!m) return { kind: 'refused', status: 400, reason: 'CONNECT needs host:port' };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return { kind: 'refused', status: 400, reason: 'CONNECT port out of range' };
  // The URL parser gives the host the same reading an absolute-form request gets (IDNA, IPv4 forms).
  let hostname: string;
  try {
    hostname = new URL(`http://${m[1]}/`).hostname;
  } catch {
    return { kind: 'refused', status: 400, reason: 'invalid host' };
  }
  const host = parseHost(hostname);
  if (host.kind === 'invalid') return { kind: 'refused', status: 400, reason: `invalid host: ${host.reason}` };
  return { kind: 'connect', host, port };
}

/**
 * OAuth discovery documents a passthrough client fetches from the MCP server's origin: its
 * protected-resource metadata (RFC 9728: at the root, or with the MCP path appended) and, for a
 * server that is its own authorization server, RFC 8414 and OpenID Connect metadata (path-inserted
 * and path-appended forms). `path` and `mcpPath` canonical (canonicalPath). Pure.
 */
export function isDiscoveryPath(path: string, mcpPath: string): boolean {
  const prm = '/.well-known/oauth-protected-resource';
  if (path === prm || path === `${prm}${mcpPath === '/' ? '' : mcpPath}`) return true;
  if (/^\/\.well-known\/(oauth-authorization-server|openid-configuration)(\/[^?#]*)?$/.test(path)) return true;
  return /^(\/[^/?#]+)+\/\.well-known\/openid-configuration$/.test(path);
}

/**
 * What a passthrough MCP source relays on its origin besides MCP: discovery (GET, HEAD) and its
 * relayPaths (any method); `path` as sent. Never an A2A agent's (the config refuses passthrough
 * there too): a relayed path on its origin would reach its endpoints ungoverned.
 */
function oauthRelay(source: CompiledSource, path: string, method: string | undefined): boolean {
  if (source.protocol !== 'mcp' || source.auth?.mode !== 'passthrough' || source.url.protocol !== 'http:' || !isRelayablePath(path)) return false;
  // `path` has no %: a relayPath that needs one is never relayed.
  for (const p of source.auth.relayPaths) if (canonicalPath(p) === path) return true;
  return (method === 'GET' || method === 'HEAD') && isDiscoveryPath(path, canonicalPath(source.url.pathname));
}

/** Whether `address` reaches `source`: one of its addresses, or both on this host. */
function reaches(address: string, sourceAddresses: readonly string[], own: ReadonlySet<string>): boolean {
  const mine = aliases(address);
  if (sourceAddresses.some((s) => aliases(s).some((a) => mine.includes(a)))) return true;
  // A server bound on 0.0.0.0 (or on loopback) answers at every local address: when in doubt, it is the source.
  return isLocalAddress(address, own) && sourceAddresses.some((s) => isLocalAddress(s, own));
}

type Hit = Facts['sources'][number];

/**
 * An A2A agent's card, JSON-RPC path or REST routes, read as /a2a/<source>/ reads them; else why
 * not. An https:// agent is reached only through /a2a/<source>/, where the sidecar makes the TLS
 * connection (as for MCP).
 */
function agentEndpoint(t: Extract<Target, { kind: 'http' }>, agents: readonly Hit[]): Extract<Route, { kind: 'a2a' }> | string {
  let why: string | undefined;
  for (const s of agents) {
    if (s.source.url.protocol !== 'http:' || s.source.a2a === null) continue;
    const on = a2aOnOrigin(t.raw, layoutOf(s.source.url, s.source.a2a));
    if (on.ok) return { kind: 'a2a', source: s.source, sub: on.sub, base: t.url.origin };
    why ??= on.reason;
  }
  return why ?? 'an https:// agent is reached at http://<sidecar>/a2a/<source>/';
}

/** A source's host as configured, canonical: the key that tells sources behind one address apart. */
function hostKey(s: CompiledSource): string {
  const h = parseHost(s.url.hostname);
  return h.kind === 'name' ? `name:${h.name}` : h.kind === 'address' ? `address:${h.address}` : `invalid:${s.url.hostname}`;
}

/** Whether the target's host is the host `s` is configured under (canonical: case and a trailing dot do not matter). */
function names(t: Target, s: CompiledSource): boolean {
  const h = parseHost(s.url.hostname);
  if (t.host.kind === 'name') return h.kind === 'name' && h.name === t.host.name;
  return h.kind === 'address' && (aliases(t.host.address).includes(h.address) || aliases(h.address).includes(t.host.address));
}

/**
 * The sources the target means among those at its address and port; null when it cannot say.
 * Sources configured under different hosts can share an address and port (a gateway routing on
 * Host): the host the client used decides, never config order, since the wrong pick would govern
 * the call by another source's rules and send it with that source's credentials. A target that
 * names none of those hosts (an address, another DNS name) is ambiguous. Pure.
 */
function meant(t: Target, hits: readonly Hit[]): readonly Hit[] | null {
  const hosts = new Set(hits.map((s) => hostKey(s.source)));
  if (hosts.size <= 1) return hits;
  const named = hits.filter((s) => names(t, s.source));
  return new Set(named.map((s) => hostKey(s.source))).size === 1 ? named : null;
}

/** Where an agent reaches these sources through the sidecar instead. */
function insteadOf(hits: readonly Hit[]): string {
  const agents = hits.filter((s) => s.source.protocol === 'a2a').length;
  return agents === 0 ? '/mcp/<source>' : agents === hits.length ? '/a2a/<source>/' : '/mcp/<source> or /a2a/<source>/';
}

/** A destination that reaches sources at its port: governed or refused (a passthrough source's OAuth paths excepted). Pure. */
function planOnSources(t: Target, reached: readonly Hit[], f: Facts): Route {
  const chosen = meant(t, reached);
  const hits = chosen ?? reached;
  const agents = hits.filter((s) => s.source.protocol === 'a2a');
  // The agent is not told which source it reached, nor its paths: it learns no more than it sent.
  const what = agents.length === 0 ? 'an MCP source' : agents.length === hits.length ? 'an A2A agent' : 'a governed source';
  if (t.kind === 'connect') {
    // A tunnel to a source would carry MCP or A2A traffic the gates cannot see.
    return { kind: 'refused', status: 403, reason: `${label(t)} is ${what}; use http://<sidecar>${insteadOf(hits)} instead of a tunnel` };
  }
  if (chosen === null)
    return {
      kind: 'refused',
      status: 403,
      reason: `${label(t)} reaches more than one governed source, configured under different host names, and names none of them; address the one meant by its own host name, or use http://<sidecar>${insteadOf(hits)}`,
    };
  const path = canonicalPath(t.url.pathname);
  const governed = hits.find((s) => s.source.protocol === 'mcp' && s.source.url.protocol === 'http:' && canonicalPath(s.source.url.pathname) === path);
  if (governed) return { kind: 'source', source: governed.source };
  const agent = agents.length > 0 ? agentEndpoint(t, agents) : undefined;
  if (typeof agent === 'object') return agent;
  // The agent does OAuth itself (passthrough): it must read the server's metadata where the server publishes it.
  const relay = hits.find((s) => oauthRelay(s.source, t.url.pathname, t.method));
  if (relay) {
    const address = f.addresses.find((a) => reaches(a, relay.addresses, f.own))!;
    return { kind: 'egress', url: t.url, address, port: t.port, oauth: relay.source.name };
  }
  if (agent === undefined) return { kind: 'refused', status: 403, reason: `${label(t)} is an MCP source; only its governed MCP endpoint is reachable` };
  return { kind: 'refused', status: 403, reason: `${label(t)} is ${what}; only its governed endpoints are reachable (${agent})` };
}

/**
 * Where a forward-proxy request goes, decided on the addresses the socket will reach. Pure.
 * A destination that reaches a source at its port is governed (absolute-form to its MCP path or to
 * an A2A agent's endpoints) or refused; it is never relayed or tunnelled, whatever egress.allow says
 * (a passthrough source's OAuth paths excepted).
 */
export function planRoute(egress: EgressRules, t: Target, f: Facts): Route {
  const hits = f.sources.filter((s) => sourcePort(s.source) === t.port && f.addresses.some((a) => reaches(a, s.addresses, f.own)));
  if (hits.length > 0) return planOnSources(t, hits, f);
  if (f.addresses.length === 0) return { kind: 'refused', status: 502, reason: `${label(t)} has no address` };
  const local = f.addresses.some((a) => isLocalAddress(a, f.own));
  // The sidecar itself (a client whose NO_PROXY misses it): what arrives there is governed again.
  const self = local && t.port === f.selfPort && f.addresses.every((a) => isLocalAddress(a, f.own));
  const v = self
    ? ({ ok: true } as const)
    : egressVerdict(egress, { ...(t.host.kind === 'name' ? { name: t.host.name } : {}), addresses: f.addresses, port: t.port, local });
  if (!v.ok) {
    const why =
      v.why === 'local'
        ? ' (an address of this host: egress.allow must name it without wildcards)'
        : v.why === 'denied'
          ? ' (egress.deny)'
          : ' (see egress.allow)';
    return { kind: 'refused', status: 403, reason: `egress to ${label(t)} is not allowed${why}` };
  }
  const address = f.addresses[0]!;
  return t.kind === 'http' ? { kind: 'egress', url: t.url, address, port: t.port } : { kind: 'tunnel', address, port: t.port };
}

/**
 * Before any lookup, on the name the agent chose (Host, SNI, CONNECT, absolute URL): whether the
 * name's addresses could matter. Resolving a name is itself a message to whoever serves its zone
 * ("<data>.attacker.example"), so a name is resolved only if it is a source's host on that port,
 * an egress.allow entry could let it through, or it is "localhost" on the sidecar's own port (a
 * client whose NO_PROXY misses the sidecar). Anything else is refused as an unlisted destination
 * is. A DNS alias of a source that egress.allow does not list is refused, not governed: fail
 * closed. Pure.
 */
export function planLookup(snap: Pick<Snapshot, 'egress' | 'sources'>, t: Target, selfPort?: number): Refusal | null {
  if (t.host.kind !== 'name') return null;
  const name = t.host.name;
  for (const s of snap.sources.values()) {
    if (sourcePort(s) !== t.port) continue;
    const h = parseHost(s.url.hostname);
    if (h.kind === 'name' && h.name === name) return null;
  }
  if (name === 'localhost' && t.port === selfPort) return null;
  const v = nameVerdict(snap.egress, name, t.port);
  if (v === 'resolve') return null;
  return { kind: 'refused', status: 403, reason: `egress to ${label(t)} is not allowed${v === 'denied' ? ' (egress.deny)' : ' (see egress.allow)'}` };
}

export interface RouteEnv {
  resolver: Resolver;
  own: () => ReadonlySet<string>;
  selfPort?: () => number;
  log?: Logger;
}

async function addressesOf(resolver: Resolver, h: HostSpec): Promise<string[]> {
  return h.kind === 'address' ? [h.address] : resolver.resolve(h.name);
}

/**
 * Resolves what the plan needs, then plans. The destination's name and the names of the sources on
 * its port are resolved (cached); the route carries the address decided on, which is what gets
 * connected to, so a DNS answer that changes after the check changes nothing.
 */
export async function route(snap: Snapshot, t: Target, env: RouteEnv): Promise<Route> {
  const selfPort = env.selfPort?.();
  const unresolved = planLookup(snap, t, selfPort);
  if (unresolved) return unresolved;
  let addresses: string[];
  try {
    addresses = await addressesOf(env.resolver, t.host);
  } catch (err) {
    const kind = err instanceof ResolveError ? err.kind : 'notfound';
    return { kind: 'refused', status: kind === 'busy' ? 503 : 502, reason: err instanceof ResolveError ? err.message : `${label(t)} does not resolve` };
  }
  const sources: Facts['sources'][number][] = [];
  for (const s of snap.sources.values()) {
    if (sourcePort(s) !== t.port) continue;
    const h = parseHost(s.url.hostname);
    if (h.kind === 'invalid') continue; // unreachable: the URL parser accepted it
    try {
      sources.push({ source: s, addresses: await addressesOf(env.resolver, h) });
    } catch (err) {
      // Without the source's addresses the destination might be the source: refuse.
      env.log?.warn('could not resolve a source to check a forward-proxy destination; refused', { source: s.name, error: describeError(err) });
      return { kind: 'refused', status: 502, reason: `could not verify ${label(t)}; retry shortly` };
    }
  }
  return planRoute(snap.egress, t, { addresses, sources, own: env.own(), ...(selfPort !== undefined ? { selfPort } : {}) });
}

export function refuse(res: ServerResponse, status: number, reason: string): void {
  const body = `ThoughtGate: ${reason}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Plain HTTP to an allowed destination: hop-by-hop headers handled, nothing else touched. */
export async function forwardEgress(
  pools: UpstreamPools,
  req: IncomingMessage,
  res: ServerResponse,
  r: { url: URL; address: string; port: number },
): Promise<number> {
  const { url } = r;
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const headers = upstreamRequestHeaders(req.headers, { extra: {}, identityEncoding: false });
  headers['host'] = url.host;
  try {
    const up = await poolRequest(pools.egress(`http://${hostForUrl(r.address)}:${r.port}`), {
      path: `${url.pathname}${url.search}`,
      method: (req.method ?? 'GET') as 'GET',
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
      signal: abort.signal,
    });
    res.writeHead(up.statusCode, clientResponseHeaders(up.headers, { dropLength: false }));
    flushHead(res, up.headers);
    await pipeline(up.body, res);
    return up.statusCode;
  } catch {
    if (!res.headersSent) refuse(res, 502, `could not reach ${url.host}`);
    else res.destroy();
    return 502;
  }
}

/** How long a tunnel's TCP connect may take (the same bound as an egress pool's). */
export const TUNNEL_CONNECT_TIMEOUT_MS = 10_000;

/** What a CONNECT client is told; a TLS passthrough client (no HTTP) is told nothing: null. */
export interface TunnelReplies {
  established: string;
  failed: string;
}
const CONNECT_REPLIES: TunnelReplies = {
  established: 'HTTP/1.1 200 Connection Established\r\n\r\n',
  failed: 'HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
};

/** A tunnel to the address decided on (never a name: it could resolve elsewhere by now). */
export function openTunnel(
  clientSocket: Duplex,
  head: Buffer,
  address: string,
  port: number,
  onDone: (status: number) => void,
  replies: TunnelReplies | null = CONNECT_REPLIES,
): void {
  if (clientSocket.destroyed) return onDone(499);
  const upstream = net.connect({ host: address, port, timeout: TUNNEL_CONNECT_TIMEOUT_MS });
  // The agent may leave while the connection is being made: nothing may outlive it.
  const end = () => {
    upstream.destroy();
    clientSocket.destroy();
  };
  clientSocket.on('close', end);
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    upstream.destroy();
    if (replies && clientSocket.writable) clientSocket.end(replies.failed);
    else clientSocket.destroy();
    onDone(502);
  };
  upstream.on('error', fail);
  upstream.once('timeout', fail);
  upstream.once('connect', () => {
    upstream.off('error', fail);
    upstream.off('timeout', fail);
    upstream.setTimeout(0); // an open tunnel may be idle; either side closing ends it
    if (replies) clientSocket.write(replies.established);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(clientSocket);
    clientSocket.pipe(upstream);
    upstream.on('error', end);
    clientSocket.on('error', end);
    upstream.on('close', end);
    onDone(200);
  });
}

// Forward-proxy mode: an agent with HTTP_PROXY=http://127.0.0.1:7467 sends absolute-form
// requests. A request to a source's MCP URL is governed exactly like /mcp/<source>; any other path
// on a source's origin is refused (it would reach the upstream unseen by the gates); other
// destinations and CONNECT tunnels follow egress.allow / egress.deny (unlisted: denied).
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { flushHead } from './pipe.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { poolRequest, type UpstreamPools } from './upstream.js';

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

function hostPort(u: URL): { host: string; port: number } {
  return { host: u.hostname.replace(/^\[|\]$/g, '').toLowerCase(), port: u.port ? Number(u.port) : defaultPort(u.protocol) };
}

export type AbsoluteRoute =
  | { kind: 'source'; source: CompiledSource }
  | { kind: 'refused'; status: number; reason: string }
  | { kind: 'egress'; url: URL };

/** Where an absolute-form request goes. Pure. */
export function routeAbsolute(snap: Snapshot, target: string): AbsoluteRoute {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { kind: 'refused', status: 400, reason: 'malformed absolute URL' };
  }
  if (url.protocol !== 'http:') return { kind: 'refused', status: 400, reason: `absolute-form requests must be http://; use CONNECT for ${url.protocol}` };
  const t = hostPort(url);
  for (const s of snap.sources.values()) {
    const sp = hostPort(s.url);
    if (sp.host !== t.host || sp.port !== t.port) continue;
    if (s.url.protocol === 'http:' && s.url.pathname === url.pathname) return { kind: 'source', source: s };
  }
  for (const s of snap.sources.values()) {
    const sp = hostPort(s.url);
    if (sp.host === t.host && sp.port === t.port) {
      return { kind: 'refused', status: 403, reason: `${t.host}:${t.port} is the MCP source "${s.name}"; only its MCP endpoint ${s.url.pathname} is reachable, through the gates` };
    }
  }
  if (!snap.egressAllowed(t.host, t.port)) return { kind: 'refused', status: 403, reason: `egress to ${t.host}:${t.port} is not allowed (see egress.allow)` };
  return { kind: 'egress', url };
}

/** Where a CONNECT tunnel may go. Pure. */
export function routeConnect(snap: Snapshot, authority: string): { ok: true; host: string; port: number } | { ok: false; status: number; reason: string } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(authority);
  if (!m) return { ok: false, status: 400, reason: 'CONNECT needs host:port' };
  const host = m[1]!.replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return { ok: false, status: 400, reason: 'CONNECT port out of range' };
  for (const s of snap.sources.values()) {
    const sp = hostPort(s.url);
    if (sp.host === host && sp.port === port) {
      // A TLS tunnel to a source would carry MCP traffic the gates cannot see.
      return { ok: false, status: 403, reason: `${host}:${port} is the MCP source "${s.name}"; use http://<sidecar>/mcp/${s.name} instead of a tunnel` };
    }
  }
  if (!snap.egressAllowed(host, port)) return { ok: false, status: 403, reason: `egress to ${host}:${port} is not allowed (see egress.allow)` };
  return { ok: true, host, port };
}

export function refuse(res: ServerResponse, status: number, reason: string): void {
  const body = `ThoughtGate: ${reason}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Plain HTTP to an allowed destination: hop-by-hop headers handled, nothing else touched. */
export async function forwardEgress(pools: UpstreamPools, req: IncomingMessage, res: ServerResponse, url: URL): Promise<number> {
  const abort = new AbortController();
  res.on('close', () => { if (!res.writableFinished) abort.abort(); });
  const headers = upstreamRequestHeaders(req.headers, { extra: {}, identityEncoding: false });
  headers['host'] = url.host;
  try {
    const up = await poolRequest(pools.egress(url.origin), {
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

export function openTunnel(clientSocket: Duplex, head: Buffer, host: string, port: number, onDone: (status: number) => void): void {
  const upstream = net.connect({ host, port });
  const fail = () => {
    if (clientSocket.writable) clientSocket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    onDone(502);
  };
  upstream.once('error', fail);
  upstream.once('connect', () => {
    upstream.off('error', fail);
    clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(clientSocket);
    clientSocket.pipe(upstream);
    const end = () => { upstream.destroy(); clientSocket.destroy(); };
    upstream.on('error', end);
    clientSocket.on('error', end);
    upstream.on('close', end);
    clientSocket.on('close', end);
    onDone(200);
  });
}

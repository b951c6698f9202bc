// Header handling between agent and upstream. End-to-end headers pass through (Authorization,
// Mcp-Session-Id, MCP-Protocol-Version, Accept, Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Param-*,
// anything custom); hop-by-hop headers are dropped per RFC 9110 §7.6.1; Host becomes the upstream's.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Message } from '../../lib/jsonrpc.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The hop-by-hop set of one message: the fixed list plus whatever its Connection header names. */
function hopHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Set<string> {
  const conn = headers['connection'];
  // The usual value names nothing new: no splitting per request.
  if (!conn || conn === 'keep-alive') return HOP_BY_HOP;
  const extra = (Array.isArray(conn) ? conn.join(',') : conn)
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  // "Connection: keep-alive" (the usual case) names nothing new: no per-request Set.
  return extra.every((h) => HOP_BY_HOP.has(h)) ? HOP_BY_HOP : new Set([...HOP_BY_HOP, ...extra]);
}

export interface UpstreamHeaderOptions {
  /** Configured per-source headers (e.g. an API key from ${VAR}); they win over the agent's. */
  extra: Record<string, string>;
  /** The response will be inspected: ask for it uncompressed. */
  identityEncoding: boolean;
  /**
   * Set when the body forwarded is not the agent's: the headers that describe the message, rebuilt
   * from the forwarded body (describingHeaders). The agent's own are then all dropped.
   */
  describe?: Record<string, string>;
  /**
   * Tracing on: the sidecar's span context (traceparent, tracestate) replaces whatever the agent
   * sent. Unset (tracing off): the agent's trace headers pass through like any end-to-end header.
   */
  trace?: Record<string, string>;
}

/** Headers that describe the message in the body (MCP 2026-07-28): Mcp-Method, Mcp-Name, Mcp-Param-*. */
export function describesMessage(name: string): boolean {
  const k = name.toLowerCase();
  return k === 'mcp-method' || k === 'mcp-name' || k.startsWith('mcp-param-');
}

/**
 * The describing headers for a body that was rewritten (a probe for a hidden target, a batch with
 * elements removed, a canonicalised URI), so the upstream reads nothing in them the body does not
 * say. Mcp-Method and Mcp-Name are rebuilt from the forwarded message when the agent sent them;
 * Mcp-Param-* mirror arguments and are dropped. A batch (forwarded null) gets none.
 */
export function describingHeaders(incoming: IncomingHttpHeaders, forwarded: Message | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (forwarded === null || (forwarded.kind !== 'request' && forwarded.kind !== 'notification')) return out;
  if (incoming['mcp-method'] !== undefined) out['mcp-method'] = encodeMcpHeader(forwarded.method);
  if (incoming['mcp-name'] !== undefined) {
    const p = (forwarded.params ?? {}) as Record<string, unknown>;
    const name = [p['name'], p['uri'], p['taskId']].find((v) => typeof v === 'string') as string | undefined;
    if (name !== undefined) out['mcp-name'] = encodeMcpHeader(name);
  }
  return out;
}

/** 2026-07-28: a value that is not plain visible ASCII goes as =?base64?<utf-8 base64>?= */
export function encodeMcpHeader(v: string): string {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(v) ? v : `=?base64?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, opts: UpstreamHeaderOptions): Record<string, string | string[]> {
  const hop = hopHeaders(incoming);
  const out: Record<string, string | string[]> = {};
  for (const k of Object.keys(incoming)) {
    const v = incoming[k];
    if (v === undefined || hop.has(k) || k === 'host' || k === 'content-length' || k === 'expect') continue;
    if (opts.describe && describesMessage(k)) continue;
    if (opts.trace && (k === 'traceparent' || k === 'tracestate')) continue;
    out[k] = v;
  }
  if (opts.describe) Object.assign(out, opts.describe);
  if (opts.trace) Object.assign(out, opts.trace);
  for (const k of Object.keys(opts.extra)) out[k.toLowerCase()] = opts.extra[k]!;
  if (opts.identityEncoding) out['accept-encoding'] = 'identity';
  const via = incoming['via'];
  out['via'] = via ? `${via}, 1.1 thoughtgate` : '1.1 thoughtgate';
  return out;
}

/**
 * Upstream response headers as they go to the agent: hop-by-hop dropped, optionally the length,
 * and optionally Access-Control-* (when CORS is the sidecar's to decide).
 */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  opts: { dropLength: boolean; dropCors?: boolean },
): OutgoingHttpHeaders {
  const hop = hopHeaders(upstream);
  const out: OutgoingHttpHeaders = {};
  for (const k of Object.keys(upstream)) {
    const v = upstream[k];
    if (v === undefined || hop.has(k)) continue;
    if (opts.dropLength && k === 'content-length') continue;
    if (opts.dropCors && k.startsWith('access-control-')) continue;
    out[k] = v;
  }
  return out;
}

export function headerValue(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

/** 2026-07-28 encodes header-unsafe Mcp-Name values as =?base64?<utf-8 base64>?= */
export function decodeMcpHeader(v: string): string {
  const m = /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(v.trim());
  return m ? Buffer.from(m[1]!, 'base64').toString('utf8') : v.trim();
}

/** The media type of a Content-Type header, lower case, without parameters ('' when absent). */
export function mediaType(h: string | string[] | undefined): string {
  const v = headerValue(h) ?? '';
  const semi = v.indexOf(';');
  return (semi === -1 ? v : v.slice(0, semi)).trim().toLowerCase();
}

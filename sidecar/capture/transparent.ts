// The transparent listener of a captured pod: the agent's plain-HTTP connections to the redirected
// ports arrive here (REDIRECT keeps the bytes, so requests are origin-form). The destination is the
// one the upstream would read, http://<Host><path>, and it takes the forward proxy's road from there
// (route(): a source's MCP path is governed like /mcp/<source>, allowed egress is relayed to the
// address decided on, the rest refused). The address the agent dialled is never used.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { CaptureRefusal } from '../metrics.js';
import type { RequestContext } from '../proxy/context.js';
import { parseAbsolute, type Refusal, type Target } from '../proxy/forward-proxy.js';

/** host or [IPv6], optionally :port; nothing else (no userinfo, path, query, spaces, %-escapes). */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[^:/?#@%\s[\]\\]+)(?::(\d{1,5}))?$/;

const refused = (reason: string): Refusal => ({ kind: 'refused', status: 400, reason });

/** The destination of a request that reached the transparent listener. Pure. */
export function transparentTarget(req: { method?: string | undefined; url?: string | undefined; rawHeaders: readonly string[] }): Target | Refusal {
  if (req.method === 'CONNECT') return refused('CONNECT is not served on a captured connection');
  const path = req.url ?? '';
  // Absolute-form here means an HTTP_PROXY client whose proxy connection was redirected: its Host and URL may disagree.
  if (!path.startsWith('/')) return refused('a captured connection carries origin-form requests only (use the proxy port for absolute-form)');
  const hosts: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(req.rawHeaders[i + 1]!);
  if (hosts.length === 0) return refused('the request has no Host header: its destination is unknown');
  if (hosts.length > 1) return refused('the request has more than one Host header');
  const m = HOST_HEADER.exec(hosts[0]!);
  if (!m) return refused('the Host header is not host[:port]');
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) return refused('the Host port is out of range');
  const target = parseAbsolute(`http://${hosts[0]}${path}`, req.method);
  // The URL parser must read back the authority that was checked (nothing in the path may extend it).
  if (target.kind === 'http' && target.url.host !== new URL(`http://${hosts[0]}/`).host) return refused('the Host header is not host[:port]');
  return target;
}

export interface TransparentDeps {
  /** The proxy port's admission (pipelining cap, in-flight count for the drain): false when refused. */
  admit(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  context(req: http.IncomingMessage, res: http.ServerResponse): RequestContext;
  /** The forward proxy's routing of an http:// destination; the refusal it answered with, if any. */
  route(ctx: RequestContext, req: http.IncomingMessage, res: http.ServerResponse, target: Target | Refusal): Promise<Refusal | null>;
  run(ctx: RequestContext, res: http.ServerResponse, fn: () => Promise<void>): void;
  refused(reason: CaptureRefusal): void;
}

/** The transparent listener's request and CONNECT handlers (the server and its limits are the proxy port's). */
export function transparentHandlers(d: TransparentDeps): {
  request: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  connect: (req: http.IncomingMessage, socket: Socket) => void;
} {
  return {
    request(req, res) {
      if (!d.admit(req, res)) return;
      const ctx = d.context(req, res);
      const target = transparentTarget(req);
      if (target.kind === 'refused') d.refused('request');
      d.run(ctx, res, async () => {
        const r = await d.route(ctx, req, res, target);
        if (r && target.kind !== 'refused') d.refused(r.status === 403 ? 'denied' : 'unavailable');
      });
    },
    connect(_req, socket) {
      d.refused('request');
      socket.on('error', () => socket.destroy());
      if (socket.writable)
        socket.end(
          'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nThoughtGate: CONNECT is not served on a captured connection\n',
          () => socket.destroy(),
        );
      else socket.destroy();
    },
  };
}

// The TLS passthrough listener of a captured pod: the agent's outbound 443 arrives here. The sidecar
// reads the ClientHello (bounded bytes and time), takes its server name and routes it as a CONNECT
// to <sni>:443 would be routed (route(): a source is refused, since its MCP would pass unseen; egress
// allowed → a tunnel to the address decided on; else refused). Nothing is decrypted: the ClientHello
// bytes are replayed to the upstream, which completes the handshake with the agent itself.
import type { Socket } from 'node:net';
import type { Logger } from '../../lib/log.js';
import type { CaptureRefusal } from '../metrics.js';
import { openTunnel, parseConnect, type Refusal, type Route, type Target } from '../proxy/forward-proxy.js';
import { CLIENT_HELLO_LIMIT, readClientHello } from './sni.js';

/** The only port the capture rules send to this listener: the SNI destination's port. */
export const TLS_PORT = 443;

/** A fatal access_denied alert (TLS 1.2/1.3 record): the agent's TLS stack reports a refusal, not a reset. */
const ACCESS_DENIED = Buffer.from([21, 3, 3, 0, 2, 2, 49]);

/** The CONNECT-like destination of a server name. Pure. An address in SNI (RFC 6066 forbids it) is refused. */
export function sniTarget(sni: string, port: number): Target | (Refusal & { why: CaptureRefusal }) {
  const t = parseConnect(`${sni}:${port}`);
  if (t.kind === 'refused') return { ...t, why: 'malformed' };
  if (t.host.kind === 'address') return { kind: 'refused', status: 400, reason: 'the server name is an IP address', why: 'ip_literal' };
  return t;
}

export interface TlsPassthroughDeps {
  /** route() on the current snapshot, or a refusal when there is none or the sidecar drains. */
  decide(t: Target): Promise<Route>;
  /** How long the ClientHello may take to arrive (the proxy port's server.headersTimeout). */
  helloTimeoutMs(): number;
  /** Where SNI destinations are dialled and checked: TLS_PORT; tests point it at their server. */
  port: number;
  log: Logger;
  refused(reason: CaptureRefusal): void;
  /** Open tunnels, so the drain can end them. */
  tunnels: Set<Socket>;
}

/** Serves one redirected connection. */
export function handleTlsConnection(socket: Socket, d: TlsPassthroughDeps): void {
  socket.on('error', () => socket.destroy());
  let buffered: Buffer = Buffer.alloc(0);
  let need = 0;
  let target = '-';
  const logLine = (status: number, reason?: string) =>
    d.log.info('request', { http: 'TLS', listener: 'tls', target, status, decision: status === 200 ? 'forward' : 'deny', gate: 'egress', reason });
  const refuse = (why: CaptureRefusal, status: number, reason: string, alert: boolean) => {
    d.refused(why);
    logLine(status, reason);
    if (alert && socket.writable) socket.end(ACCESS_DENIED, () => socket.destroy());
    else socket.destroy();
  };
  const timer = setTimeout(() => {
    socket.off('data', onData);
    refuse('timeout', 408, 'the ClientHello did not arrive within server.headersTimeout', false);
  }, d.helloTimeoutMs());
  const onData = (chunk: Buffer) => {
    // Bounded: readClientHello refuses past CLIENT_HELLO_LIMIT, so at most one read beyond it is held.
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (buffered.length < need) return;
    const r = readClientHello(buffered.subarray(0, Math.min(buffered.length, CLIENT_HELLO_LIMIT)));
    if (r.kind === 'incomplete') {
      need = r.need;
      return;
    }
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    if (r.kind === 'error') return refuse(r.reason, 400, r.detail, r.reason === 'no_sni');
    const t = sniTarget(r.host, d.port);
    target = `${r.host}:${d.port}`;
    if (t.kind === 'refused') return refuse(t.why, t.status, t.reason, true);
    d.decide(t).then(
      (route) => {
        if (route.kind === 'tunnel') {
          d.tunnels.add(socket);
          socket.once('close', () => d.tunnels.delete(socket));
          return openTunnel(socket, buffered, route.address, route.port, (status) => logLine(status), null);
        }
        // A source is refused by route() itself (403): a tunnel would carry MCP the gates cannot see.
        const refusal = route.kind === 'refused' ? route : { status: 403, reason: 'not a tunnel destination' };
        refuse(refusal.status === 403 ? 'denied' : 'unavailable', refusal.status, refusal.reason, true);
      },
      (err: unknown) => {
        d.log.error('TLS passthrough failed unexpectedly', { target, error: (err as Error)?.message });
        socket.destroy();
      },
    );
  };
  socket.on('data', onData);
  socket.once('close', () => clearTimeout(timer));
}

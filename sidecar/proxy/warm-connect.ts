// One pre-connected spare socket per upstream pool. A GET stream pins its upstream connection for
// the whole session and is torn down with it, so under real traffic a new session's GET or first
// POST often finds no idle connection and waits for a TCP connect, while the other request of the
// pair reuses one: the two race, and a server's request on the GET stream (sampling, elicitation)
// can come before the stream exists (docs/performance.md, "Jitter"). With a spare, connection
// setup happens off the request path. Bounded: at most one spare per pool, dropped after
// SPARE_MAX_AGE_MS unused (before any server's idle timeout), and made only after a connect.
import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';
import buildConnectorImpl from 'undici/lib/core/connect.js';

export const SPARE_MAX_AGE_MS = 2000;

export interface WarmConnector {
  connect: buildConnector.connector;
  /** Closes the spare (pool closed). */
  dispose(): void;
}

export function warmConnector(connectTimeoutMs: number, onConnect?: (spare: boolean) => void): WarmConnector {
  const base = buildConnectorImpl({ timeout: connectTimeoutMs });
  let spare: { socket: Socket; timer: NodeJS.Timeout; drop: () => void } | null = null;
  // Reading keeps a server's FIN (or unexpected bytes) visible while the spare waits: it is dropped.
  let filling = false;
  let disposed = false;
  const ignore = (): void => undefined;

  const take = (): Socket | null => {
    const s = spare;
    if (!s) return null;
    spare = null;
    clearTimeout(s.timer);
    s.socket.off('error', ignore);
    s.socket.off('close', s.drop);
    s.socket.off('data', s.drop);
    s.socket.off('end', s.drop);
    s.socket.pause();
    // A spare the server has begun to close (FIN received) is not handed out.
    if (s.socket.destroyed || !s.socket.writable || s.socket.readableEnded) {
      s.socket.destroy();
      return null;
    }
    return s.socket;
  };

  const fill = (opts: buildConnector.Options): void => {
    if (spare || filling || disposed) return;
    filling = true;
    base(opts, (err, socket) => {
      filling = false;
      if (err || !socket) return;
      const sock = socket as Socket;
      if (disposed || spare) {
        sock.destroy();
        return;
      }
      // An idle spare may be reset by the server: that must not crash the process.
      sock.on('error', ignore);
      const drop = (): void => {
        if (spare?.socket === sock) {
          clearTimeout(spare.timer);
          spare = null;
        }
        sock.destroy();
      };
      sock.once('close', drop);
      sock.once('end', drop);
      sock.on('data', drop);
      const timer = setTimeout(drop, SPARE_MAX_AGE_MS);
      timer.unref();
      spare = { socket: sock, timer, drop };
    });
  };

  const connect: buildConnector.connector = (opts, callback) => {
    const done = callback as (err: Error | null, socket: Socket | null) => void;
    const s = take();
    if (s) {
      onConnect?.(true);
      // Asynchronously, as a real connect: undici's client is not re-entrant here.
      process.nextTick(done, null, s);
      fill(opts);
      return;
    }
    base(opts, (err, socket) => {
      if (!err) onConnect?.(false);
      done(err, socket as Socket | null);
      if (!err) fill(opts);
    });
  };
  return {
    connect,
    dispose() {
      disposed = true;
      take()?.destroy();
    },
  };
}

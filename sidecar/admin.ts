// The admin port (7469): /health (the process serves), /ready (a valid config is loaded, every
// upstream answered its last reachability probe and, in a captured pod, the capture rules are in
// place), /metrics (Prometheus text).
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { Registry } from 'prom-client';
import { CaptureStateSchema, type CaptureState } from '../api/capture-state.js';

export interface ReadinessReport {
  ready: boolean;
  [key: string]: unknown;
}

export function createAdminServer(deps: {
  registry: Registry;
  readiness: () => ReadinessReport;
  hostRefusal?: (req: http.IncomingMessage) => string | null;
}): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    // DNS rebinding: a web page must not read /ready or /metrics through a rebound name.
    const badHost = deps.hostRefusal?.(req) ?? null;
    if (badHost !== null) {
      json(res, 403, { error: 'host not allowed', reason: badHost });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/health' || path === '/healthz') {
      json(res, 200, { status: 'ok' });
    } else if (path === '/ready' || path === '/readyz') {
      const r = deps.readiness();
      json(res, r.ready ? 200 : 503, r);
    } else if (path === '/metrics') {
      deps.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': deps.registry.contentType });
          res.end(text);
        },
        () => json(res, 500, { error: 'metrics unavailable' }),
      );
    } else {
      json(res, 404, { error: 'not found', paths: ['/health', '/ready', '/metrics'] });
    }
  });
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** What /ready says about capture: the init container's state file, and whether it matches the listeners. */
export interface CaptureReport {
  expected: true;
  /** null while the file is missing, invalid, or its rules redirect to ports nothing listens on. */
  state: CaptureState | null;
  error?: string;
}

/**
 * Reads the capture state file on each /ready (a small file; cached while its mtime and size hold).
 * A captured sidecar is not ready without it: the rules may be missing, and the agent ungoverned.
 */
export function captureReadiness(file: string): (ports: { transparentPort: number; tlsPort: number | null } | null) => CaptureReport {
  let cached: { key: string; parsed: { state: CaptureState } | { error: string } } | null = null;
  const read = (): { state: CaptureState } | { error: string } => {
    let key: string;
    try {
      const st = statSync(file);
      key = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (err) {
      return { error: `capture state ${file} is missing (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}): the capture rules were not installed` };
    }
    if (cached?.key === key) return cached.parsed;
    let parsed: { state: CaptureState } | { error: string };
    try {
      const r = CaptureStateSchema().safeParse(JSON.parse(readFileSync(file, 'utf8')));
      parsed = r.success
        ? { state: r.data }
        : { error: `capture state ${file} is invalid: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
    } catch (err) {
      parsed = { error: `capture state ${file} is unreadable: ${(err as Error).message}` };
    }
    cached = { key, parsed };
    return parsed;
  };
  return (ports) => {
    const r = read();
    if ('error' in r) return { expected: true, state: null, error: r.error };
    const { spec } = r.state;
    // Rules that redirect to ports nothing listens on would drop the agent's traffic: say so.
    if (ports && spec.transparentPort !== ports.transparentPort)
      return {
        expected: true,
        state: null,
        error: `the capture rules redirect to port ${spec.transparentPort}; the transparent listener is on ${ports.transparentPort}`,
      };
    if (ports && spec.tlsPort !== null && spec.tlsPort !== ports.tlsPort)
      return {
        expected: true,
        state: null,
        error: `the capture rules redirect 443 to port ${spec.tlsPort}; the TLS listener is ${ports.tlsPort === null ? 'not running (--tls-port)' : `on ${ports.tlsPort}`}`,
      };
    return { expected: true, state: r.state };
  };
}

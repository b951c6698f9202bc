// The admin port (7469): /health (the process serves), /ready (a valid config is loaded and every
// upstream answered its last reachability probe), /metrics (Prometheus text).
import http from 'node:http';
import type { Registry } from 'prom-client';

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

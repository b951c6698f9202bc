// The audit Events shell against a real HTTP server: close() writes what is pending, and an API
// server that never answers holds it up no longer than its deadline.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../lib/log.js';
import { createSidecarMetrics } from '../metrics.js';
import { jittered, startAuditEvents } from './events.js';

const KEY = { would: 'deny', what: 'call', gate: 'rules', rule: 'r', source: 's' } as const;

async function apiServer(answer: boolean) {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    if (!answer) return; // hangs, like an API server behind a dead connection
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Event', metadata: { name: 'x', namespace: 'ns' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r()) && server.closeAllConnections()) };
}

const credentials = { tls: async () => ({}), authorization: async () => 'Bearer t', describe: 'test token' };

test('close() writes what is pending', async () => {
  const api = await apiServer(true);
  try {
    const ev = startAuditEvents(
      { namespace: 'ns', pod: 'p', clientOptions: { server: api.url, credentials }, intervalMs: 60_000 },
      { metrics: createSidecarMetrics(), log: createLogger('error') },
    );
    ev.add('pol', KEY, 2);
    ev.add('pol', { ...KEY, rule: 'other' }, 1);
    await ev.close();
    expect(api.seen).toEqual(['POST /api/v1/namespaces/ns/events', 'POST /api/v1/namespaces/ns/events']);
  } finally {
    await api.close();
  }
});

test('close() gives up at its deadline when the API server never answers', async () => {
  const api = await apiServer(false);
  try {
    const metrics = createSidecarMetrics();
    const ev = startAuditEvents(
      { namespace: 'ns', pod: 'p', clientOptions: { server: api.url, credentials }, intervalMs: 60_000, closeDeadlineMs: 300 },
      { metrics, log: createLogger('error') },
    );
    for (let i = 0; i < 10; i++) ev.add('pol', { ...KEY, rule: `r${i}` }, 1);
    const t0 = Date.now();
    await ev.close();
    const took = Date.now() - t0;
    // Without the deadline: 10 writes one after another, each up to the 30 s request timeout.
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(api.seen).toHaveLength(1);
  } finally {
    await api.close();
  }
});

test('the flush interval is spread by ±20%', () => {
  expect([jittered(30_000, () => 0), jittered(30_000, () => 0.5), jittered(30_000, () => 0.999999)]).toEqual([24_000, 30_000, 36_000]);
});

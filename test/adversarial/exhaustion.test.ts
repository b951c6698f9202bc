// Class 9 (a–d) of issue 7: one agent cannot exhaust the sidecar. Each resource an agent can make
// the sidecar hold has a bound with a clear error and a metric: metric series, slow connections,
// connections, buffered bytes, batch size. Functional only: no assertion on how long anything took.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ConfigFileSchema, maxBufferedBytesFor } from '../../api/config.js';
import { openSession, post, startGuard, startRecordedEverything, type RecordedEverything } from './harness.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

let up: RecordedEverything;
const guards: TestSidecar[] = [];

beforeAll(async () => {
  up = await startRecordedEverything();
}, 60_000);
afterAll(async () => {
  for (const g of guards) await g.close();
  await up?.close();
});

async function guard(extra: string): Promise<TestSidecar> {
  const g = await startGuard(
    up,
    `
sources:
  - name: e
    url: \${UPSTREAM}
    expose: { mode: blocklist, tools: ["get-env"] }
defaultAction: forward
${extra}
`,
  );
  guards.push(g);
  return g;
}

async function metricsText(g: TestSidecar): Promise<string> {
  return (await fetch(`${g.admin}/metrics`)).text();
}

/** Series (sample lines) in a Prometheus text exposition. */
function series(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

function metricValue(text: string, name: string, labels = ''): number {
  const line = series(text).find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function waitForMetric(g: TestSidecar, what: string, pred: (text: string) => boolean): Promise<void> {
  for (let i = 0; ; i++) {
    const t = await metricsText(g);
    if (pred(t)) return;
    if (i === 500) process.stderr.write(`still waiting for ${what}\n`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A raw connection to the proxy port; collects what it receives until the server closes it. */
function rawConnection(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
    });
    socket.on('error', () => undefined); // a reset is one of the ways a refused connection ends
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

function postHead(path: string, contentLength: number, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ${contentLength}\r\n${extra}\r\n`;
}

/**
 * server-everything's lists are small: a raw upstream whose tools/list answers `count` tools of
 * ~1 KB (one of them hidden by the source's blocklist), as JSON or as one SSE event, and a sidecar
 * in front of it. With `hold`, each answer is sent up to 80 % and finished by `held.get(id)()`.
 */
async function bigListSource(o: {
  count: number;
  sse?: boolean;
  hold?: boolean;
  config: string;
}): Promise<{ g: TestSidecar; hidden: string; held: Map<number, () => void>; close(): Promise<void> }> {
  const hidden = 'secret-tool';
  const tools = Array.from({ length: o.count }, (_, i) => ({
    name: i === o.count / 2 ? hidden : `tool-${i}`,
    description: 'd'.repeat(1000),
    inputSchema: { type: 'object' },
  }));
  const held = new Map<number, () => void>();
  const big = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const id = (JSON.parse(body) as { id: number }).id;
      const json = JSON.stringify({ jsonrpc: '2.0', id, result: { tools } });
      const out = Buffer.from(o.sse ? `event: message\ndata: ${json}\n\n` : json);
      res.writeHead(200, o.sse ? { 'content-type': 'text/event-stream' } : { 'content-type': 'application/json', 'content-length': out.length });
      if (!o.hold) {
        res.end(out);
        return;
      }
      const part = Math.floor(out.length * 0.8);
      res.write(out.subarray(0, part));
      held.set(id, () => res.end(out.subarray(part)));
    });
  });
  await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
  const g = await startTestSidecar(`
sources:
  - name: big
    url: http://127.0.0.1:${(big.address() as AddressInfo).port}/mcp
    expose: { mode: blocklist, tools: ["${hidden}"] }
defaultAction: forward
${o.config}
`);
  guards.push(g);
  return {
    g,
    hidden,
    held,
    close: async () => {
      for (const f of held.values()) f();
      big.closeAllConnections();
      await new Promise<void>((r) => big.close(() => r()));
    },
  };
}

function jsonBodyOf(raw: string): { error?: { code: number; data?: { reason?: string } } } {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error?: { code: number; data?: { reason?: string } } };
}

describe('9a: metric label values come from closed sets', () => {
  test('made-up methods, made-up /mcp/<x> paths and long names add no series and no label values', async () => {
    const g = await guard('');
    const url = g.mcpUrl('e');
    const h = await openSession(url);
    const flood = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await post(url, h, { jsonrpc: '2.0', id: i, method: `madeup/method-${i}`, params: {} });
        await post(url, h, { jsonrpc: '2.0', method: `notifications/madeup-${i}` });
        await post(url, h, [
          { jsonrpc: '2.0', id: `b${i}`, method: `madeup/batched-${i}` },
          { jsonrpc: '2.0', id: `c${i}`, method: 'ping' },
        ]);
        await post(`${g.base}/mcp/madeup-source-${i}`, h, { jsonrpc: '2.0', id: 1, method: 'ping' });
        await post(`${g.base}/mcp/${encodeURIComponent(`madeup ${'x'.repeat(3000)} ${i}`)}`, h, { jsonrpc: '2.0', id: 1, method: 'ping' });
        await post(`${g.base}/madeup-path-${i}`, h, { jsonrpc: '2.0', id: 1, method: 'ping' });
      }
    };
    await flood(0, 10);
    const before = series(await metricsText(g)).length;
    await flood(10, 60);
    const text = await metricsText(g);
    expect(series(text).length).toBe(before);
    expect(text).not.toMatch(/madeup/);
    expect(text.includes('method="other"')).toBe(true);
    expect(text.includes('source="unknown"')).toBe(true);
    // Every source label names a configured source or says unknown.
    const sources = new Set([...text.matchAll(/source="([^"]*)"/g)].map((m) => m[1]));
    expect([...sources].sort()).toEqual(['e', 'unknown']);
    // The name from the path is logged, but cut short.
    const logged = g.logs().filter((l) => typeof l['source'] === 'string' && (l['source'] as string).startsWith('madeup x'));
    expect(logged.length).toBeGreaterThan(0);
    for (const l of logged) {
      expect((l['source'] as string).length).toBeLessThanOrEqual(129);
      expect(JSON.stringify(l).length).toBeLessThan(1000); // the reason quotes the cut name too
    }
  }, 60_000);
});

describe('9b: slow clients and connections are bounded', () => {
  test('a body stalled a byte short is answered 408 with a JSON-RPC error, closed, and never forwarded', async () => {
    const g = await guard('server: { requestBodyTimeout: 300ms }');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'stalled-body' } } });
    up.clear();
    const c = await rawConnection(g.sidecar.port);
    c.socket.write(postHead('/mcp/e', Buffer.byteLength(body)) + body.slice(0, -1));
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(c.received()).toMatch(/connection: close/i);
    const reply = jsonBodyOf(c.received());
    expect(reply.error?.code).toBe(-32600);
    expect(reply.error?.data?.reason).toContain('server.requestBodyTimeout');
    expect(up.everything()).not.toContain('stalled-body');
    expect(metricValue(await metricsText(g), 'thoughtgate_sidecar_request_timeouts_total', 'phase="body"')).toBe(1);
  }, 30_000);

  test('a chunked body that never ends is timed out the same way', async () => {
    const g = await guard('server: { requestBodyTimeout: 300ms }');
    up.clear();
    const c = await rawConnection(g.sidecar.port);
    c.socket.write(
      'POST /mcp/e HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{"jsonrpc":"2.0"\r\n',
    );
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(up.received).toHaveLength(0);
  }, 30_000);

  test('headers that never end are answered 408 and the connection is closed', async () => {
    const g = await guard('server: { headersTimeout: 200ms }');
    const c = await rawConnection(g.sidecar.port);
    c.socket.write('POST /mcp/e HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ');
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(metricValue(await metricsText(g), 'thoughtgate_sidecar_request_timeouts_total', 'phase="headers"')).toBe(1);
  }, 30_000);

  test('the body deadline does not end a long response: a GET stream outlives it', async () => {
    const g = await guard('server: { requestBodyTimeout: 200ms }');
    const url = g.mcpUrl('e');
    const h = await openSession(url);
    const ac = new AbortController();
    const stream = fetch(url, { method: 'GET', headers: { ...h, accept: 'text/event-stream' }, signal: ac.signal }).catch(() => null);
    await waitForMetric(g, 'GET stream open', (t) => metricValue(t, 'thoughtgate_sidecar_open_streams', 'source="e"') === 1);
    // Well past the body deadline, a call on the same session still works and the stream is open.
    await new Promise((res) => setTimeout(res, 600));
    const echo = await post(url, h, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'still-here' } } });
    expect(JSON.stringify(echo.messages)).toContain('still-here');
    expect(metricValue(await metricsText(g), 'thoughtgate_sidecar_open_streams', 'source="e"')).toBe(1);
    ac.abort();
    await stream;
  }, 30_000);

  test('connections beyond server.maxConnections are closed at accept, counted, and the cap frees up', async () => {
    const g = await guard('server: { maxConnections: 3 }');
    const open = await Promise.all([0, 1, 2].map(() => rawConnection(g.sidecar.port)));
    await waitForMetric(g, '3 connections', (t) => metricValue(t, 'thoughtgate_sidecar_connections') === 3);
    const extra = await rawConnection(g.sidecar.port);
    extra.socket.write(`${postHead('/mcp/e', 2)}{}`);
    await extra.closed;
    expect(extra.received()).toBe('');
    expect(metricValue(await metricsText(g), 'thoughtgate_sidecar_connections_rejected_total', 'reason="max_connections"')).toBe(1);
    // The held connections still work, and once one closes a new one is accepted.
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    open[0]!.socket.write(postHead('/mcp/e', ping.length, 'connection: close\r\n') + ping);
    await open[0]!.closed;
    expect(open[0]!.received()).toMatch(/^HTTP\/1\.1 \d{3} [\s\S]*x-thoughtgate-correlation-id/i);
    await waitForMetric(g, '2 connections', (t) => metricValue(t, 'thoughtgate_sidecar_connections') === 2);
    const again = await rawConnection(g.sidecar.port);
    again.socket.write(postHead('/mcp/e', ping.length, 'connection: close\r\n') + ping);
    await again.closed;
    expect(again.received()).toMatch(/^HTTP\/1\.1 \d{3} [\s\S]*x-thoughtgate-correlation-id/i);
    for (const c of open.slice(1)) c.socket.destroy();
  }, 30_000);

  test('one connection cannot pipeline past the cap: it is closed, and the pipelined calls are not all forwarded', async () => {
    // An upstream that never answers keeps every forwarded call in flight.
    const seen: string[] = [];
    const silent = http.createServer((req) => {
      let b = '';
      req.on('data', (c) => {
        b += c;
      });
      req.on('end', () => seen.push(b));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const g = await startTestSidecar(`
sources:
  - name: s
    url: http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp
defaultAction: forward
`);
    guards.push(g);
    try {
      const c = await rawConnection(g.sidecar.port);
      let pipeline = '';
      for (let i = 0; i < 40; i++) {
        const body = JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'echo', arguments: { n: i } } });
        pipeline += postHead('/mcp/s', Buffer.byteLength(body)) + body;
      }
      c.socket.write(pipeline);
      await c.closed;
      expect(metricValue(await metricsText(g), 'thoughtgate_sidecar_connections_rejected_total', 'reason="pipelining"')).toBe(1);
      expect(seen.length).toBeLessThanOrEqual(16);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  }, 30_000);
});

describe('9c: buffered bytes are bounded across requests', () => {
  test('stalled bodies share limits.maxBufferedBytes: the one that does not fit gets -32022 and nothing is forwarded', async () => {
    const g = await guard('limits: { maxBodyBytes: 40000, maxFilteredResponseBytes: 16384, maxBufferedBytes: 65536 }');
    up.clear();
    const a = await rawConnection(g.sidecar.port);
    a.socket.write(postHead('/mcp/e', 40000) + ' '.repeat(39_999));
    await waitForMetric(g, 'first body buffered', (t) => metricValue(t, 'thoughtgate_sidecar_buffered_bytes') >= 39_999);
    const b = await rawConnection(g.sidecar.port);
    b.socket.write(postHead('/mcp/e', 40000) + ' '.repeat(39_999));
    await b.closed;
    expect(b.received()).toMatch(/^HTTP\/1\.1 503 /);
    expect(jsonBodyOf(b.received()).error?.code).toBe(-32022);
    const m = await metricsText(g);
    expect(metricValue(m, 'thoughtgate_sidecar_buffer_rejections_total', 'what="request_body"')).toBe(1);
    a.socket.destroy();
    await a.closed;
    await waitForMetric(g, 'budget released', (t) => metricValue(t, 'thoughtgate_sidecar_buffered_bytes') === 0);
    expect(up.received).toHaveLength(0);
  }, 30_000);

  test('concurrent filtered lists beyond the budget: one gets -32022 (503), the others are filtered, the sidecar stays up', async () => {
    // A 3 MB list, each answer held at 80 % until the test finishes it.
    const { g, hidden, held, close } = await bigListSource({
      count: 3000,
      hold: true,
      config: 'limits: { maxFilteredResponseBytes: 4194304, maxBufferedBytes: 16777216 }',
    });
    try {
      const list = (id: number) =>
        fetch(g.mcpUrl('big'), {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }),
        });
      // The first answer's 80% (~2.5 MB, charged 4 × as an edit) is buffered before the second is sent.
      const first = list(1);
      await waitForMetric(g, 'first list buffered', (t) => metricValue(t, 'thoughtgate_sidecar_buffered_bytes') >= 9_000_000);
      const second = await list(2);
      expect(second.status).toBe(503);
      const err = (await second.json()) as { error: { code: number } };
      expect(err.error.code).toBe(-32022);
      held.get(1)!();
      const ok = await first;
      expect(ok.status).toBe(200);
      const text = await ok.text();
      expect(text.includes('tool-1499')).toBe(true);
      expect(text.includes(hidden)).toBe(false);
      // The budget is free again: the next list is served.
      const third = list(3);
      await waitForMetric(g, 'third list held', () => held.has(3));
      held.get(3)!();
      const t3 = await (await third).text();
      expect(t3.includes('tool-2999')).toBe(true);
      expect(t3.includes(hidden)).toBe(false);
      const m = await metricsText(g);
      expect(metricValue(m, 'thoughtgate_sidecar_buffer_rejections_total', 'what="filtered_response"')).toBe(1);
      expect(metricValue(m, 'thoughtgate_sidecar_buffered_bytes')).toBe(0);
      expect((await fetch(`${g.admin}/health`)).status).toBe(200);
    } finally {
      await close();
    }
  }, 60_000);

  test('a client that never reads its filtered answer is disconnected after server.slowReaderTimeout, and the budget comes back', async () => {
    // An 8 MB list: more than a never-reading client's socket buffers take, so the edited answer
    // stays in the sidecar (and in the budget) until the client reads it or is cut off.
    const { g, hidden, close } = await bigListSource({
      count: 8000,
      config: 'limits: { maxFilteredResponseBytes: 16777216, maxBufferedBytes: 67108864 }\nserver: { slowReaderTimeout: 1s }',
    });
    try {
      const c = await rawConnection(g.sidecar.port);
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      c.socket.pause(); // never reads
      c.socket.write(postHead('/mcp/big', Buffer.byteLength(body)) + body);
      await waitForMetric(g, 'the edited answer held in the budget', (t) => metricValue(t, 'thoughtgate_sidecar_buffered_bytes') > 0);
      await waitForMetric(g, 'the slow reader cut off', (t) => metricValue(t, 'thoughtgate_sidecar_request_timeouts_total', 'phase="response"') === 1);
      await waitForMetric(g, 'the budget returned', (t) => metricValue(t, 'thoughtgate_sidecar_buffered_bytes') === 0);
      c.socket.resume();
      await c.closed;
      // What it did receive before the cut was filtered: the hidden tool never reached it.
      expect(c.received()).not.toContain(hidden);
      // A client that reads is served in full.
      const ok = await fetch(g.mcpUrl('big'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      });
      const text = await ok.text();
      expect(ok.status).toBe(200);
      expect(text.includes('tool-7999')).toBe(true);
      expect(text.includes(hidden)).toBe(false);
    } finally {
      await close();
    }
  }, 60_000);

  test('SSE events being edited share the budget: a stream that cannot buffer its event is cut, never passed unfiltered', async () => {
    const { g, hidden, held, close } = await bigListSource({
      count: 3000,
      sse: true,
      hold: true,
      config: 'limits: { maxFilteredResponseBytes: 4194304, maxBufferedBytes: 16777216 }',
    });
    try {
      const list = async (id: number): Promise<{ status: number; text: string; complete: boolean }> => {
        let r: Response;
        try {
          r = await fetch(g.mcpUrl('big'), {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
            body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }),
          });
        } catch {
          return { status: 0, text: '', complete: false }; // cut before its head was sent
        }
        let text = '';
        let complete = true;
        try {
          for await (const c of r.body!) text += Buffer.from(c).toString('utf8');
        } catch {
          complete = false;
        }
        return { status: r.status, text, complete };
      };
      const first = list(1);
      await waitForMetric(g, 'first event buffered', (t) => metricValue(t, 'thoughtgate_sidecar_buffered_bytes') >= 9_000_000);
      const second = await list(2);
      expect(second.complete).toBe(false);
      expect(second.text.includes(hidden)).toBe(false);
      held.get(1)!();
      const ok = await first;
      expect(ok.complete).toBe(true);
      expect(ok.text.includes('tool-1499')).toBe(true);
      expect(ok.text.includes(hidden)).toBe(false);
      const m = await metricsText(g);
      expect(metricValue(m, 'thoughtgate_sidecar_buffer_rejections_total', 'what="sse_event"')).toBe(1);
      await waitForMetric(g, 'budget released', (t) => metricValue(t, 'thoughtgate_sidecar_buffered_bytes') === 0);
    } finally {
      await close();
    }
  }, 60_000);
});

describe('9d: batch size', () => {
  test('a batch over limits.maxBatchMessages is refused whole with -32021 and nothing reaches the upstream', async () => {
    const g = await guard('limits: { maxBatchMessages: 10 }');
    const url = g.mcpUrl('e');
    const h = await openSession(url);
    const call = (i: number) => ({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'echo', arguments: { message: `batched-${i}` } } });
    for (const batch of [
      Array.from({ length: 11 }, (_, i) => call(i)),
      Array.from({ length: 11 }, (_, i) => ({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: i, progress: i } })),
      [...Array.from({ length: 10 }, (_, i) => call(i)), { jsonrpc: '2.0', id: 99, result: {} }],
      Array.from({ length: 5000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'get-env', arguments: {} } })),
    ]) {
      up.clear();
      const r = await post(url, h, batch);
      expect(r.status).toBe(400);
      expect(r.messages).toHaveLength(1);
      expect((r.messages[0] as { id: unknown; error: { code: number } }).error.code).toBe(-32021);
      expect((r.messages[0] as { id: unknown }).id).toBeNull();
      expect(up.received).toHaveLength(0);
    }
    expect(metricValue(await metricsText(g), 'thoughtgate_sidecar_batches_rejected_total')).toBe(4);
    // At the limit it is served.
    up.clear();
    const ok = await post(
      url,
      h,
      Array.from({ length: 10 }, (_, i) => call(i)),
    );
    expect(ok.status).toBe(200);
    expect(ok.messages).toHaveLength(10);
    expect(up.received).toHaveLength(1);
  }, 30_000);

  test('one request writes a bounded number of log lines, then a summary', async () => {
    const g = await guard('limits: { maxBatchMessages: 100 }');
    const url = g.mcpUrl('e');
    const h = await openSession(url);
    const r = await post(
      url,
      h,
      Array.from({ length: 100 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'get-env', arguments: { n: i } } })),
    );
    expect(r.status).toBe(200);
    const cid = r.headers.get('x-thoughtgate-correlation-id');
    const lines = g.logs().filter((l) => l['correlationId'] === cid && l['msg'] === 'request');
    expect(lines.length).toBeLessThanOrEqual(21);
    const summary = lines.find((l) => l['unlogged'] !== undefined);
    expect(summary).toMatchObject({ messages: 100, unlogged: 80 });
    // Long agent texts (method, tool name, argument keys) are cut in log lines too.
    const long = 'y'.repeat(100_000);
    for (const body of [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: long, arguments: { [long]: 1 } } },
      { jsonrpc: '2.0', id: 2, method: long, params: {} },
    ]) {
      const r2 = await post(url, h, body);
      const cid2 = r2.headers.get('x-thoughtgate-correlation-id');
      const mine = g.logs().filter((l) => l['correlationId'] === cid2);
      expect(mine.length).toBeGreaterThan(0);
      for (const l of mine) expect(JSON.stringify(l).length).toBeLessThan(3000);
    }
  }, 30_000);
});

describe('the bounds are configured, with defaults that can always serve one request', () => {
  test('defaults: 100 messages a batch, 64 MiB buffered (raised to 4 × maxFilteredResponseBytes), 30 s timeouts, 1024 connections', () => {
    const d = ConfigFileSchema.parse({});
    expect(d.limits.maxBatchMessages).toBe(100);
    expect(maxBufferedBytesFor(d.limits)).toBe(64 * 1024 * 1024);
    expect(maxBufferedBytesFor(ConfigFileSchema.parse({ limits: { maxFilteredResponseBytes: 64 * 1024 * 1024 } }).limits)).toBe(256 * 1024 * 1024);
    expect(d.server).toMatchObject({
      headersTimeout: '30s',
      requestBodyTimeout: '30s',
      keepAliveTimeout: '65s',
      slowReaderTimeout: '30s',
      maxConnections: 1024,
    });
  });

  test('a maxBufferedBytes too small for one largest request is refused', () => {
    const r = ConfigFileSchema.safeParse({ limits: { maxFilteredResponseBytes: 1048576, maxBufferedBytes: 2097152 } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('maxBufferedBytes');
    expect(ConfigFileSchema.safeParse({ server: { maxConnections: 0 } }).success).toBe(false);
    expect(ConfigFileSchema.safeParse({ server: { requestBodyTimeout: '0s' } }).success).toBe(false);
  });
});

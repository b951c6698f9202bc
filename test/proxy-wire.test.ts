// What the SDK client never sends but real traffic does: batches, odd ids, broken and oversized
// bodies, lying headers, dead upstreams, auth challenges, session teardown, legacy transports.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { governedConfig } from './support/configs.js';
import { connectClient, messagesOf, rawPost, startTestSidecar, type TestSidecar } from './support/sidecar.js';
import { startUpstream, type TestUpstream } from './support/upstream.js';

const call = (id: string, name: string, args: object = {}) =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":${JSON.stringify(args)}}}`;
const V = { 'mcp-protocol-version': '2025-03-26' };

describe.each([{ json: true }, { json: false }])('batches and ids (stateless upstream, json=$json)', ({ json }) => {
  let upstream: TestUpstream;
  let tg: TestSidecar;
  beforeAll(async () => {
    upstream = await startUpstream({ stateful: false, json });
    tg = await startTestSidecar(governedConfig(upstream.url, 'limits: { maxBodyBytes: 2048 }'));
  });
  afterAll(async () => {
    await tg.close();
    await upstream.close();
  });

  test('a batch is decided per element: allowed ones forwarded together, denied ones answered locally', async () => {
    const before = upstream.requests.length;
    const body = `[${call('1', 'add', { a: 1, b: 2 })},${call('"two"', 'delete_file', { path: '/x' })},{"jsonrpc":"2.0","id":3,"method":"tools/list"}]`;
    const r = await rawPost(tg.mcpUrl('up'), body, V);
    expect(r.status).toBe(200);
    const byId = new Map(messagesOf(r).map((m) => [JSON.stringify(m.id), m]));
    expect(byId.get('1').result.structuredContent).toEqual({ sum: 3 });
    expect(byId.get('"two"').error).toMatchObject({ code: -32003, data: { rule: 'no-deletes' } });
    expect(byId.get('3').result.tools.map((t: { name: string }) => t.name)).not.toContain('get_secret');
    const sent = upstream.requests.slice(before);
    expect(sent).toHaveLength(1);
    expect(JSON.parse(sent[0]!.body).map((m: { id: unknown }) => m.id)).toEqual([1, 3]);
  });

  test('a batch with only denied requests never reaches the upstream', async () => {
    const before = upstream.requests.length;
    const r = await rawPost(tg.mcpUrl('up'), `[${call('7', 'delete_file')},${call('8', 'delete_file')}]`, V);
    expect(messagesOf(r).map((m) => [m.id, m.error.code])).toEqual([
      [7, -32003],
      [8, -32003],
    ]);
    expect(upstream.requests.length).toBe(before);
  });

  test.each([['1'], ['"1"'], ['0'], ['-7'], ['12345678901234567890'], ['"ü-ñ"'], ['1.5']])('id %s keeps its exact text in our answers', async (id) => {
    const r = await rawPost(tg.mcpUrl('up'), call(id, 'delete_file'), V);
    expect(r.status).toBe(200);
    expect(r.text.startsWith(`{"jsonrpc":"2.0","id":${id},"error":`)).toBe(true);
  });

  test('a string id stays a string and a number stays a number through the upstream', async () => {
    const a = messagesOf(await rawPost(tg.mcpUrl('up'), call('"5"', 'echo', { message: 'x' }), V));
    const b = messagesOf(await rawPost(tg.mcpUrl('up'), call('5', 'echo', { message: 'x' }), V));
    expect(a[0].id).toBe('5');
    expect(b[0].id).toBe(5);
  });

  test.each([
    ['not JSON', '{"jsonrpc":"2.0",', -32700],
    ['empty batch', '[]', -32600],
    ['wrong version', '{"jsonrpc":"1.0","id":1,"method":"tools/list"}', -32600],
    ['null id on a request', '{"jsonrpc":"2.0","id":null,"method":"tools/list"}', -32600],
    ['duplicate keys', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_file"}}', -32600],
  ])('%s is refused with a clear error and nothing forwarded', async (_what, body, code) => {
    const before = upstream.requests.length;
    const r = await rawPost(tg.mcpUrl('up'), body, V);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).error.code).toBe(code);
    expect(typeof JSON.parse(r.text).error.data.reason).toBe('string');
    expect(upstream.requests.length).toBe(before);
  });

  test('a body that is not UTF-8 is refused', async () => {
    const before = upstream.requests.length;
    const r = await rawPost(tg.mcpUrl('up'), Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), V);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).error.code).toBe(-32700);
    expect(upstream.requests.length).toBe(before);
  });

  test('an oversized body is refused with 413 and nothing is forwarded, with or without Content-Length', async () => {
    const before = upstream.requests.length;
    const big = call('1', 'echo', { message: 'x'.repeat(5000) });
    const r = await rawPost(tg.mcpUrl('up'), big, V);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text).error.code).toBe(-32012);
    // Chunked: the size is only known while reading.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        tg.mcpUrl('up'),
        { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(big.slice(i * 510, (i + 1) * 510));
      req.end();
    });
    expect(chunked).toBe(413);
    expect(upstream.requests.length).toBe(before);
  });

  test('Mcp-Method and Mcp-Name must agree with the body', async () => {
    const before = upstream.requests.length;
    const bad = await rawPost(tg.mcpUrl('up'), call('1', 'delete_file'), { ...V, 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.code).toBe(-32020);
    const badMethod = await rawPost(tg.mcpUrl('up'), call('1', 'echo'), { ...V, 'mcp-method': 'tools/list' });
    expect(badMethod.status).toBe(400);
    expect(upstream.requests.length).toBe(before);
    const encoded = `=?base64?${Buffer.from('echo').toString('base64')}?=`;
    const good = await rawPost(tg.mcpUrl('up'), call('1', 'echo', { message: 'hi' }), { ...V, 'mcp-method': 'tools/call', 'mcp-name': encoded });
    expect(messagesOf(good)[0].result.content[0].text).toBe('echo: hi');
  });

  test('a browser Origin that is not allowed gets 403', async () => {
    const r = await rawPost(tg.mcpUrl('up'), call('1', 'echo', { message: 'x' }), { ...V, origin: 'http://evil.example' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text).error.code).toBe(-32014);
  });

  test('unknown sources and paths are 404 with a pointer to /mcp/<source>', async () => {
    const r = await rawPost(`${tg.base}/mcp/nope`, call('1', 'echo'), V);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text).error.data.reason).not.toContain('up');
    const p = await rawPost(`${tg.base}/mcp/up/extra/path`, call('1', 'echo'), V);
    expect(p.status).toBe(404);
  });
});

describe('upstream failures and auth', () => {
  test('an unreachable upstream gives -32000 per request and /ready says so', async () => {
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const tg = await startTestSidecar(`sources:\n  - name: down\n    url: http://127.0.0.1:${port}/mcp\ndefaultAction: forward\n`);
    try {
      const r = await rawPost(tg.mcpUrl('down'), `[${call('1', 'echo')},${call('2', 'add')}]`, V);
      expect(r.status).toBe(200);
      const msgs = messagesOf(r);
      expect(msgs.map((m) => [m.id, m.error.code])).toEqual([
        [1, -32000],
        [2, -32000],
      ]);
      expect(msgs[0].error.data.reason).toBe('could not connect to upstream "down"');
      expect(r.text).not.toContain(String(port));
      // Wait for a finished probe, so the answer reflects a real check.
      let ready: Response;
      let report: any;
      do {
        ready = await fetch(`${tg.admin}/ready`);
        report = await ready.json();
      } while (report.upstreams.down.checkedAt === null);
      expect(ready.status).toBe(503);
      expect(report.upstreams.down).toMatchObject({ up: false, error: 'ECONNREFUSED' });
      expect(report.config.loaded).toBe(true);
    } finally {
      await tg.close();
    }
  });

  test('401 and 403 with WWW-Authenticate come back unchanged; Authorization passes through', async () => {
    const upstream = await startUpstream({ stateful: false, json: true, requireToken: 'good' });
    const tg = await startTestSidecar(`sources:\n  - name: up\n    url: ${upstream.url}\ndefaultAction: forward\n`);
    try {
      const none = await rawPost(tg.mcpUrl('up'), call('1', 'echo', { message: 'x' }), V);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource", scope="mcp"');
      expect(none.text).toBe('{"error":"invalid_token"}');
      const ro = await rawPost(tg.mcpUrl('up'), call('1', 'echo', { message: 'x' }), { ...V, authorization: 'Bearer readonly' });
      expect(ro.status).toBe(403);
      expect(ro.headers.get('www-authenticate')).toBe('Bearer error="insufficient_scope", scope="write"');
      const ok = await rawPost(tg.mcpUrl('up'), call('1', 'echo', { message: 'x' }), { ...V, authorization: 'Bearer good' });
      expect(messagesOf(ok)[0].result.content[0].text).toBe('echo: x');
      expect(upstream.requests.at(-1)!.headers['authorization']).toBe('Bearer good');
      // The upstream's Host, not the sidecar's.
      expect(upstream.requests.at(-1)!.headers['host']).toBe(new URL(upstream.url).host);
      expect(JSON.stringify(tg.logs())).not.toContain('Bearer good');
    } finally {
      await tg.close();
      await upstream.close();
    }
  });
});

describe('sessions (stateful upstream)', () => {
  let upstream: TestUpstream;
  let tg: TestSidecar;
  beforeAll(async () => {
    upstream = await startUpstream({ stateful: true });
    tg = await startTestSidecar(governedConfig(upstream.url));
  });
  afterAll(async () => {
    await tg.close();
    await upstream.close();
  });

  test('the session id, the GET stream and DELETE pass through', async () => {
    const { client, transport } = await connectClient(tg.mcpUrl('up'));
    const sid = transport.sessionId;
    expect(sid).toMatch(/^[0-9a-f-]{36}$/);
    await client.listTools();
    // The SDK client opens the standalone GET stream after initialization.
    const until = Date.now() + 5000;
    while (!upstream.requests.some((r) => r.method === 'GET' && r.headers['mcp-session-id'] === sid) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    expect(upstream.requests.some((r) => r.method === 'GET' && r.headers['mcp-session-id'] === sid && r.headers['accept'] === 'text/event-stream')).toBe(true);
    expect(
      upstream.requests
        .filter((r) => r.method === 'POST' && r.headers['mcp-session-id'] === sid)
        .every((r) => r.headers['mcp-protocol-version'] === '2025-11-25'),
    ).toBe(true);
    await transport.terminateSession();
    expect(upstream.requests.some((r) => r.method === 'DELETE' && r.headers['mcp-session-id'] === sid)).toBe(true);
    // The ended session is refused by the upstream, and that answer passes through.
    const after = await rawPost(tg.mcpUrl('up'), '{"jsonrpc":"2.0","id":9,"method":"tools/list"}', {
      'mcp-session-id': sid!,
      'mcp-protocol-version': '2025-11-25',
    });
    expect(after.status).toBe(404);
    await client.close();
  });
});

describe('protocol revisions', () => {
  test('2026-07-28: no initialize, routing headers checked against the body, then forwarded with them', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const raw = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"jsonrpc":"2.0","id":"d1","result":{"resultType":"complete","content":[{"type":"text","text":"ok"}]}}');
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/mcp`;
    const tg = await startTestSidecar(
      `sources:\n  - name: up\n    url: ${url}\nrules:\n  - match: { tool: "delete_*" }\n    action: deny\ndefaultAction: forward\n`,
    );
    try {
      const meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}';
      const headers = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
      const ok = await rawPost(tg.mcpUrl('up'), `{"jsonrpc":"2.0","id":"d1","method":"tools/call","params":{"name":"echo","arguments":{},${meta}}}`, headers);
      expect(messagesOf(ok)[0].result.resultType).toBe('complete');
      expect(seen.at(-1)).toMatchObject({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
      const denied = await rawPost(tg.mcpUrl('up'), `{"jsonrpc":"2.0","id":"d2","method":"tools/call","params":{"name":"delete_all",${meta}}}`, {
        ...headers,
        'mcp-name': 'delete_all',
      });
      expect(messagesOf(denied)[0]).toMatchObject({ id: 'd2', error: { code: -32003 } });
      expect(seen).toHaveLength(1);
    } finally {
      await tg.close();
      raw.closeAllConnections();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });

  test('Last-Event-ID, Accept and the session header reach the upstream on a resumed GET', async () => {
    const upstream = await startUpstream({ stateful: true });
    const tg = await startTestSidecar(`sources:\n  - name: up\n    url: ${upstream.url}\ndefaultAction: forward\n`);
    try {
      const r = await fetch(tg.mcpUrl('up'), {
        headers: { accept: 'text/event-stream', 'mcp-session-id': 'no-such-session', 'last-event-id': 'evt-42', 'mcp-protocol-version': '2025-11-25' },
      });
      expect(r.status).toBe(404); // the upstream's own answer for an unknown session, unchanged
      const got = upstream.requests.at(-1)!;
      expect(got).toMatchObject({ method: 'GET' });
      expect(got.headers).toMatchObject({
        'last-event-id': 'evt-42',
        accept: 'text/event-stream',
        'mcp-session-id': 'no-such-session',
        'mcp-protocol-version': '2025-11-25',
      });
    } finally {
      await tg.close();
      await upstream.close();
    }
  });
});

describe('GET streams', () => {
  test('list results replayed on a GET stream are filtered too', async () => {
    const raw = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        'id: e1\ndata: {"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"get_secret","inputSchema":{"type":"object"}}],"nextCursor":"c2"}}\n\n',
      );
      res.end(': bye\n\n');
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/mcp`;
    const tg = await startTestSidecar(`sources:\n  - name: up\n    url: ${url}\n    expose: { mode: blocklist, tools: ["get_*"] }\ndefaultAction: forward\n`);
    try {
      const r = await fetch(tg.mcpUrl('up'), { headers: { accept: 'text/event-stream', 'mcp-session-id': 's1', 'last-event-id': 'e0' } });
      const text = await r.text();
      expect(text).toContain('id: e1');
      expect(text).toContain('"nextCursor":"c2"');
      expect(text).not.toContain('get_secret');
      expect(text).toContain(': bye');
    } finally {
      await tg.close();
      raw.closeAllConnections();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });

  test('the 2024-11-05 HTTP+SSE transport is refused with a clear error event, and its POST endpoint is never reachable', async () => {
    // A real legacy server from the SDK: GET /sse announces a POST endpoint.
    const transports = new Map<string, SSEServerTransport>();
    const legacy = http.createServer(async (req, res) => {
      if (req.method === 'GET') {
        const t = new SSEServerTransport('/message', res);
        transports.set(t.sessionId, t);
        await new McpServer({ name: 'legacy', version: '1' }).connect(t);
      } else {
        const sid = new URL(req.url ?? '', 'http://x').searchParams.get('sessionId') ?? '';
        await transports.get(sid)?.handlePostMessage(req, res);
      }
    });
    await new Promise<void>((r) => legacy.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(legacy.address() as AddressInfo).port}/sse`;
    const tg = await startTestSidecar(`sources:\n  - name: old\n    url: ${url}\ndefaultAction: forward\n`);
    try {
      // The stream's head is sent at once (streams start when they start); the endpoint event is
      // replaced by the error and the stream ends.
      const r = await fetch(tg.mcpUrl('old'), { headers: { accept: 'text/event-stream' } });
      expect(r.status).toBe(200);
      const text = await r.text();
      expect(text).not.toContain('event: endpoint');
      expect(text).not.toContain('/message?sessionId');
      const body: any = JSON.parse(/^data: (.*)$/m.exec(text)![1]!);
      expect(body.error.code).toBe(-32013);
      expect(body.error.data.reason).toContain('2024-11-05 HTTP+SSE');
      // The SDK's legacy client fails at connect instead of talking to the upstream unseen.
      const client = new Client({ name: 'legacy-client', version: '1' });
      const transport = new SSEClientTransport(new URL(tg.mcpUrl('old')));
      // The stream ends without an endpoint: EventSource would keep reconnecting until closed.
      await expect(client.connect(transport)).rejects.toThrow();
      await transport.close();
    } finally {
      await tg.close();
      legacy.closeAllConnections();
      await new Promise<void>((r) => legacy.close(() => r()));
    }
  });
});

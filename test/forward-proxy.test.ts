// Forward-proxy mode: the agent uses the sidecar as its HTTP proxy. MCP to a configured source is
// governed exactly like /mcp/<source>; other destinations and CONNECT follow the egress lists.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { startTestSidecar, type TestSidecar } from './support/sidecar.js';
import { startUpstream, type TestUpstream } from './support/upstream.js';

/** A plain HTTP server that records what reached it (the "rest of the internet"). */
async function recorder(): Promise<{ server: http.Server; port: number; seen: http.IncomingHttpHeaders[] }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end(`hello from ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** Sends one raw request through the proxy and returns the status line and body. */
function viaProxy(proxyPort: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1', () => s.write(raw));
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, 1500).unref();
  });
}

describe('forward-proxy mode', () => {
  let upstream: TestUpstream;
  let allowed: Awaited<ReturnType<typeof recorder>>;
  let other: Awaited<ReturnType<typeof recorder>>;
  let tg: TestSidecar;
  let proxyPort: number;

  beforeAll(async () => {
    upstream = await startUpstream({ stateful: true });
    allowed = await recorder();
    other = await recorder();
    tg = await startTestSidecar(`
sources:
  - name: up
    url: ${upstream.url}
    expose: { mode: blocklist, tools: ["get_secret"] }
rules:
  - name: no-deletes
    match: { tool: "delete_*" }
    action: deny
defaultAction: forward
egress:
  allow: ["127.0.0.1:${allowed.port}", "localhost"]
`);
    proxyPort = tg.sidecar.port;
  });
  afterAll(async () => {
    await tg.close();
    await upstream.close();
    for (const r of [allowed, other]) {
      r.server.closeAllConnections();
      await new Promise<void>((res) => r.server.close(() => res()));
    }
  });

  test('the SDK client through HTTP_PROXY is governed like /mcp/<source>', async () => {
    // Absolute-form, as curl and most HTTP_PROXY clients send plain http; undici would tunnel by default.
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxyPort}`, proxyTunnel: false });
    const client = new Client({ name: 'proxied', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(upstream.url), {
      fetch: ((url: string | URL, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher: agent })) as typeof fetch,
    });
    await client.connect(transport);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).not.toContain('get_secret');
    const err = await client.callTool({ name: 'delete_file', arguments: { path: '/x' } }).catch((e: McpError) => e);
    expect((err as McpError).code).toBe(-32003);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'p' } })).content).toEqual([{ type: 'text', text: 'echo: p' }]);
    await client.close();
    await agent.close();
  });

  test("any other path on a source's origin is refused: it would reach the upstream unseen", async () => {
    const before = upstream.requests.length;
    const up = new URL(upstream.url);
    const out = await viaProxy(
      proxyPort,
      `POST http://${up.host}/other HTTP/1.1\r\nhost: ${up.host}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`,
    );
    expect(out).toMatch(/^HTTP\/1.1 403/);
    expect(out).toContain('is an MCP source; only its governed MCP endpoint is reachable');
    // The refusal names neither the source nor its path (errors tell the agent no more than it sent).
    expect(out).not.toContain('"up"');
    expect(out).not.toContain(up.pathname);
    expect(upstream.requests.length).toBe(before);
  });

  test('allowed egress passes with hop-by-hop headers removed and end-to-end ones kept', async () => {
    const out = await viaProxy(
      proxyPort,
      `GET http://127.0.0.1:${allowed.port}/page HTTP/1.1\r\nhost: 127.0.0.1:${allowed.port}\r\nconnection: close, x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nproxy-authorization: Basic Zm9vOmJhcg==\r\nte: trailers\r\nx-trace: abc\r\n\r\n`,
    );
    expect(out).toMatch(/^HTTP\/1.1 200/);
    expect(out).toContain('hello from /page');
    const h = allowed.seen.at(-1)!;
    expect(h['x-trace']).toBe('abc');
    for (const hop of ['x-hop', 'keep-alive', 'proxy-authorization', 'te']) expect(h[hop]).toBeUndefined();
    expect(h['via']).toBe('1.1 thoughtgate');
  });

  test('egress to an unlisted destination is refused and never sent', async () => {
    const before = other.seen.length;
    const out = await viaProxy(proxyPort, `GET http://127.0.0.1:${other.port}/x HTTP/1.1\r\nhost: 127.0.0.1:${other.port}\r\nconnection: close\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 403/);
    expect(out).toContain(`egress to 127.0.0.1:${other.port} is not allowed`);
    expect(other.seen.length).toBe(before);
  });

  test('CONNECT tunnels only to allowed hosts, never to a source', async () => {
    const ok = await viaProxy(
      proxyPort,
      `CONNECT 127.0.0.1:${allowed.port} HTTP/1.1\r\nhost: 127.0.0.1:${allowed.port}\r\n\r\nGET /tunnelled HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    );
    expect(ok).toMatch(/^HTTP\/1.1 200 Connection Established/);
    expect(ok).toContain('hello from /tunnelled');

    const denied = await viaProxy(proxyPort, `CONNECT 127.0.0.1:${other.port} HTTP/1.1\r\nhost: 127.0.0.1:${other.port}\r\n\r\n`);
    expect(denied).toMatch(/^HTTP\/1.1 403/);

    const up = new URL(upstream.url);
    const source = await viaProxy(proxyPort, `CONNECT ${up.host} HTTP/1.1\r\nhost: ${up.host}\r\n\r\n`);
    expect(source).toMatch(/^HTTP\/1.1 403/);
    expect(source).toContain('is an MCP source; use http://<sidecar>/mcp/<source> instead of a tunnel');
    expect(source).not.toContain('/mcp/up');
  });
});

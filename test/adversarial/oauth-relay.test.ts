// The forward proxy relays a passthrough source's OAuth discovery documents (and relayPaths) as
// sent. An upstream that decodes %2F or %5C after routing (and then resolves dot segments) would read
// `/.well-known/oauth-authorization-server/..%2F..%2Fmcp` as `/mcp`: an MCP request that no gate
// saw. Against such an upstream, every encoded spelling is refused and nothing reaches it.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { posix } from 'node:path';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

let seen: string[];
let upstream: http.Server;
let port: number;
let tg: TestSidecar;

beforeAll(async () => {
  seen = [];
  // Decodes the whole path, then normalises it: the reading the attack counts on.
  upstream = http.createServer((req, res) => {
    const decoded = posix.normalize(decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/\\/g, '/'));
    seen.push(decoded);
    res.writeHead(200, { 'content-type': 'application/json' }).end(decoded === '/mcp' ? '{"reached":"mcp"}' : '{}');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  port = (upstream.address() as AddressInfo).port;
  tg = await startTestSidecar(`
sources:
  - name: pass
    url: http://127.0.0.1:${port}/mcp
    auth: { mode: passthrough, relayPaths: ["/oauth/token"] }
defaultAction: forward
`);
});
afterAll(async () => {
  await tg?.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

/** One raw absolute-form request through the forward proxy; the status line the agent got. */
function viaProxy(method: string, path: string): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = net.connect(tg.sidecar.port, '127.0.0.1', () =>
      s.write(`${method} http://127.0.0.1:${port}${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`),
    );
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out.split('\r\n')[0]!));
    s.on('error', () => resolve(out.split('\r\n')[0] ?? ''));
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

test('the discovery documents themselves are relayed (the oracle sees them)', async () => {
  seen.length = 0;
  expect(await viaProxy('GET', '/.well-known/oauth-protected-resource/mcp')).toMatch(/^HTTP\/1.1 200/);
  expect(await viaProxy('POST', '/oauth/token')).toMatch(/^HTTP\/1.1 200/);
  expect(seen).toEqual(['/.well-known/oauth-protected-resource/mcp', '/oauth/token']);
});

test.each([
  ['GET', '/.well-known/oauth-authorization-server/..%2F..%2Fmcp'],
  ['GET', '/.well-known/oauth-authorization-server/..%2f..%2fmcp'],
  ['GET', '/.well-known/openid-configuration/..%5C..%5Cmcp'],
  ['GET', '/.well-known/oauth-authorization-server/%2E%2E%2F%2E%2E%2Fmcp'],
  ['GET', '/..%2Fmcp/.well-known/openid-configuration'],
  ['HEAD', '/.well-known/oauth-authorization-server/..%2F..%2Fmcp'],
  ['POST', '/oauth/token%2F..%2F..%2Fmcp'],
])('%s %s: refused, nothing reaches the upstream', async (method, path) => {
  seen.length = 0;
  expect(await viaProxy(method, path)).toMatch(/^HTTP\/1.1 403/);
  expect(seen).toEqual([]);
});

// What custody discovery follows (sidecar/oauth/client-credentials.ts), against real servers: a
// hostile MCP server's metadata must not make the sidecar send the client's secret to a plain-http
// server of its choosing, metadata for another issuer is not used, and a metadata answer without
// Content-Length is read only up to the limit.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { IdentitySchema, PolicyDocumentSchema } from '../../api/config.js';
import { systemClock } from '../../lib/clock.js';
import { createLogger } from '../../lib/log.js';
import { createSourceTokens, discover, MAX_METADATA_BYTES, usesClientCredentials } from '../../sidecar/oauth/client-credentials.js';
import { compileSnapshot, type CompiledSource } from '../../sidecar/snapshot.js';

type Seen = { method: string; url: string; authorization: string | undefined; body: string };
type Server = { origin: string; seen: Seen[]; routes: Map<string, (res: http.ServerResponse) => void>; close(): Promise<void> };

/** A server answering `routes` by path (JSON), 404 otherwise, recording every request. */
async function server(): Promise<Server> {
  const seen: Seen[] = [];
  const routes = new Map<string, (res: http.ServerResponse) => void>();
  const s = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers['authorization'], body });
    const route = routes.get(req.url!.split('?')[0]!);
    if (route) return route(res);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    origin,
    seen,
    routes,
    close: () => {
      s.closeAllConnections();
      return new Promise<void>((r) => s.close(() => r()));
    },
  };
}

const json = (doc: unknown) => (res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));

function source(url: string, more: Record<string, unknown> = {}): CompiledSource {
  const auth = { mode: 'clientCredentials', clientId: 'agent-client', clientSecret: { valueFrom: { env: 'UNUSED' } }, ...more };
  const doc = PolicyDocumentSchema.parse({ sources: [{ name: 'up', url, auth }], defaultAction: 'forward' });
  const r = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.snapshot.sources.get('up')!;
}

async function discoverFor(s: CompiledSource) {
  if (!usesClientCredentials(s)) throw new Error('not custody');
  return discover(s, s.auth, fetch);
}

/** A token request through createSourceTokens, as the sidecar makes it; the secret is "s3cret". */
async function tokenFor(s: CompiledSource) {
  if (!usesClientCredentials(s)) throw new Error('not custody');
  const tokens = createSourceTokens({ secret: () => ({ ok: true, value: 's3cret' }), clock: systemClock, log: createLogger('error', () => {}) });
  return tokens.token(s);
}

let mcp: Server;
let attacker: Server;
beforeEach(async () => {
  mcp = await server();
  attacker = await server();
  attacker.routes.set('/.well-known/oauth-authorization-server', json({ issuer: attacker.origin, token_endpoint: `${attacker.origin}/token` }));
  attacker.routes.set('/token', json({ access_token: 'stolen', token_type: 'Bearer' }));
});
afterEach(async () => {
  await mcp.close();
  await attacker.close();
});

test('an MCP server naming a plain-http authorization server elsewhere: refused, nothing is sent there', async () => {
  mcp.routes.set('/.well-known/oauth-protected-resource/mcp', json({ resource: `${mcp.origin}/mcp`, authorization_servers: [attacker.origin] }));
  const r = await tokenFor(source(`${mcp.origin}/mcp`));
  expect(r).toEqual({ ok: false, reason: expect.stringMatching(/^refused the authorization server http:\/\/127\.0\.0\.1:\d+: not https/) });
  expect(attacker.seen).toEqual([]);
});

test('an MCP server that is its own authorization server naming a token endpoint elsewhere: refused, the secret stays', async () => {
  for (const te of [`${attacker.origin}/token`, 'http://169.254.169.254/latest/token']) {
    mcp.routes.set('/.well-known/oauth-authorization-server', json({ issuer: mcp.origin, token_endpoint: te }));
    expect(await tokenFor(source(`${mcp.origin}/mcp`))).toEqual({
      ok: false,
      reason: expect.stringMatching(/^refused the token endpoint http:\/\/[0-9.:]+: not https/),
    });
  }
  expect(attacker.seen).toEqual([]);
  expect(mcp.seen.some((q) => q.method === 'POST')).toBe(false);
});

test('authorization-server metadata for another issuer is not used (RFC 8414 §3.3)', async () => {
  mcp.routes.set('/.well-known/oauth-authorization-server', json({ issuer: 'https://as.example', token_endpoint: `${mcp.origin}/token` }));
  expect(await discoverFor(source(`${mcp.origin}/mcp`))).toEqual({ error: expect.stringContaining('is not for the issuer') });
  expect(mcp.seen.some((q) => q.method === 'POST')).toBe(false);
});

test('its own authorization server on its own origin: the token endpoint there is used', async () => {
  mcp.routes.set('/.well-known/oauth-authorization-server', json({ issuer: mcp.origin, token_endpoint: `${mcp.origin}/oauth/token` }));
  mcp.routes.set('/oauth/token', json({ access_token: 'tok', token_type: 'Bearer' }));
  expect(await tokenFor(source(`${mcp.origin}/mcp`))).toMatchObject({ ok: true, token: 'tok' });
});

test('auth.issuer: the operator trusts a plain-http authorization server, and only that one', async () => {
  mcp.routes.set('/.well-known/oauth-protected-resource/mcp', json({ resource: `${mcp.origin}/mcp`, authorization_servers: [attacker.origin] }));
  expect(await tokenFor(source(`${mcp.origin}/mcp`, { issuer: attacker.origin }))).toMatchObject({ ok: true, token: 'stolen' });
  expect(attacker.seen.at(-1)).toMatchObject({
    method: 'POST',
    url: '/token',
    authorization: `Basic ${Buffer.from('agent-client:s3cret').toString('base64')}`,
  });
  // Its metadata still may not send the secret to a third origin.
  const third = await server();
  try {
    attacker.routes.set('/.well-known/oauth-authorization-server', json({ issuer: attacker.origin, token_endpoint: `${third.origin}/token` }));
    expect(await discoverFor(source(`${mcp.origin}/mcp`, { issuer: attacker.origin }))).toEqual({
      error: expect.stringContaining('refused the token endpoint'),
    });
    expect(third.seen).toEqual([]);
  } finally {
    await third.close();
  }
});

test('a metadata answer without Content-Length is read only up to the limit', async () => {
  let written = 0;
  let closed = false;
  mcp.routes.set('/.well-known/oauth-protected-resource/mcp', (res) => {
    res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no Content-Length
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    res.on('close', () => (closed = true));
    const more = () => {
      while (!closed && written < 64 * MAX_METADATA_BYTES) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
    };
    more();
  });
  const started = Date.now();
  // Without the bound the whole (endless for the purpose) body is read until the 10 s deadline.
  const r = await discoverFor(source(`${mcp.origin}/mcp`, { tokenUrl: 'https://as.example/token' }));
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(r).toEqual({ tokenUrl: new URL('https://as.example/token'), resource: `${mcp.origin}/mcp` });
  // What was written: the limit plus what the sockets buffered (~4 MiB on loopback), far from all of it.
  expect(written).toBeLessThan(32 * MAX_METADATA_BYTES);
}, 20_000);

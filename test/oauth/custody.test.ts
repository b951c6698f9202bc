// Custody (auth mode clientCredentials) against real peers: an authorization server that issues
// tokens and an MCP upstream that demands one. The agent sends no credential (or its own, which is
// replaced); the sidecar gets the token, reuses it, renews it after a 401, reads a rotated secret,
// and never writes the secret or a token in its logs.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectClient, startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { startUpstream, type TestUpstream } from '../support/upstream.js';

interface TokenRequest {
  authorization: string | undefined;
  form: Record<string, string>;
}

/** A token endpoint issuing tok-1, tok-2, … to client "agent-client" with the current secret (basic or post). */
async function authServer(): Promise<{ url: string; requests: TokenRequest[]; secret: { value: string }; close(): Promise<void> }> {
  const requests: TokenRequest[] = [];
  const secret = { value: 'first-s3cret' };
  let n = 0;
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const form = Object.fromEntries(new URLSearchParams(body));
    requests.push({ authorization: req.headers['authorization'], form });
    const basic = req.headers['authorization'] === `Basic ${Buffer.from(`agent-client:${secret.value}`).toString('base64')}`;
    const post = form['client_id'] === 'agent-client' && form['client_secret'] === secret.value && req.headers['authorization'] === undefined;
    res.setHeader('content-type', 'application/json');
    if (req.url !== '/token' || !(basic || post)) {
      res.writeHead(401).end('{"error":"invalid_client"}');
      return;
    }
    res.end(JSON.stringify({ access_token: `tok-${++n}`, token_type: 'Bearer', expires_in: 3600 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    secret,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let as: Awaited<ReturnType<typeof authServer>>;
let upstream: TestUpstream;
let tg: TestSidecar;
let dir: string;
const secretFile = () => join(dir, 'client-secret');

/** The source with the client's secret in `secret` (a file by default), `scope` (none: null) and more auth keys. */
const config = (scope: string | null, secret = `{ file: ${secretFile()} }`, more = '') => `
sources:
  - name: up
    url: ${upstream.url}
    auth:
      mode: clientCredentials
      clientId: agent-client
      clientSecret: { valueFrom: ${secret} }
      tokenUrl: ${as.url}/token${scope === null ? '' : `\n      scope: "${scope}"`}${more}
defaultAction: forward
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-custody-'));
  writeFileSync(secretFile(), 'first-s3cret\n');
  as = await authServer();
  // The upstream accepts tok-2 only: tok-1 is "revoked", so the first call proves the 401 retry.
  upstream = await startUpstream({ stateful: true, requireToken: 'tok-2' });
  tg = await startTestSidecar(config('mcp:tools'));
});
afterAll(async () => {
  await tg.close();
  await upstream.close();
  await as.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the agent sends no credential; the sidecar gets a token (resource = the source URL), renews it after a 401 and reuses it', async () => {
  const { client, transport } = await connectClient(tg.mcpUrl('up'));
  const tools = await client.listTools();
  expect(tools.tools.map((t) => t.name)).toContain('echo');
  await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
  await transport.close();
  expect(as.requests).toHaveLength(2); // tok-1 (rejected with 401), then tok-2, kept
  for (const r of as.requests) expect(r.form).toEqual({ grant_type: 'client_credentials', resource: upstream.url, scope: 'mcp:tools' });
  // Its protected-resource metadata was looked for (the resource indicator), without a credential.
  expect(upstream.requests.filter((r) => r.url.startsWith('/.well-known/')).every((r) => r.headers['authorization'] === undefined)).toBe(true);
  const seen = upstream.requests.filter((r) => r.url === '/mcp').map((r) => r.headers['authorization']);
  expect(seen[0]).toBe('Bearer tok-1');
  expect(seen.slice(1).every((a) => a === 'Bearer tok-2')).toBe(true);
});

test("the agent's own Authorization header never reaches the upstream", async () => {
  const { client, transport } = await connectClient(tg.mcpUrl('up'), { authorization: 'Bearer agent-made-this-up' });
  await client.listTools();
  await transport.close();
  expect(upstream.requests.some((r) => r.headers['authorization'] === 'Bearer agent-made-this-up')).toBe(false);
  expect(as.requests).toHaveLength(2);
});

const scopeOf = () => (tg.sidecar.snapshot()?.sources.get('up')?.auth as { scope: string | null } | null)?.scope;
const initialize = () =>
  fetch(tg.mcpUrl('up'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    }),
  });

test('a rotated secret is read for the next token (new settings after a reload ask for one)', async () => {
  writeFileSync(secretFile(), 'second-s3cret\n');
  as.secret.value = 'second-s3cret';
  tg.writeConfig(config('mcp:more'));
  await tg.waitFor(() => scopeOf() === 'mcp:more', 'the reload');
  const r = await initialize();
  await r.text();
  // tok-3: the upstream takes tok-2 only, so the retry asked for tok-4, also refused: the agent sees the upstream's 401.
  expect(as.requests.slice(2).map((q) => q.authorization)).toEqual([
    `Basic ${Buffer.from('agent-client:second-s3cret').toString('base64')}`,
    `Basic ${Buffer.from('agent-client:second-s3cret').toString('base64')}`,
  ]);
  expect(as.requests.slice(2).map((q) => q.form['scope'])).toEqual(['mcp:more', 'mcp:more']);
  expect(r.status).toBe(401);
});

test('a token endpoint refusing the client: the call fails with a clear error, the log says why, never the secret or a token', async () => {
  as.secret.value = 'not-what-the-file-says';
  tg.writeConfig(config('mcp:other'));
  await tg.waitFor(() => scopeOf() === 'mcp:other', 'the reload');
  const r = await initialize();
  const body = await r.text();
  // A request with an id is answered in JSON-RPC (UPSTREAM_UNAVAILABLE), as for an unreachable upstream.
  expect(r.status).toBe(200);
  expect(JSON.parse(body)).toMatchObject({ id: 1, error: { data: { reason: expect.stringContaining('could not get an OAuth token for upstream "up"') } } });
  const logs = JSON.stringify(tg.logs());
  expect(logs).toContain('the token endpoint answered 401: invalid_client');
  for (const s of ['first-s3cret', 'second-s3cret', 'tok-1', 'tok-2', 'tok-3']) expect(logs).not.toContain(s);
});

test('client_secret_post: the credentials go in the form, not in Authorization', async () => {
  as.secret.value = 'second-s3cret';
  tg.writeConfig(config('mcp:post', undefined, '\n      tokenEndpointAuth: client_secret_post'));
  await tg.waitFor(() => scopeOf() === 'mcp:post', 'the reload');
  await (await initialize()).text();
  const last = as.requests.at(-1)!;
  expect(last.authorization).toBeUndefined();
  expect(last.form).toMatchObject({ grant_type: 'client_credentials', client_id: 'agent-client', client_secret: 'second-s3cret', scope: 'mcp:post' });
});

test('discovery refuses protected-resource metadata that speaks for another resource', async () => {
  // The upstream's origin serves no metadata; a decoy server does, for another resource.
  const decoy = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ resource: 'https://elsewhere.example/mcp', authorization_servers: [as.url] }));
  });
  await new Promise<void>((r) => decoy.listen(0, '127.0.0.1', r));
  const before = as.requests.length;
  try {
    const url = `http://127.0.0.1:${(decoy.address() as AddressInfo).port}/mcp`;
    tg.writeConfig(config(null).replace(`url: ${upstream.url}`, `url: ${url}`).replace(`\n      tokenUrl: ${as.url}/token`, ''));
    await tg.waitFor(() => tg.sidecar.snapshot()?.sources.get('up')?.url.href === url, 'the reload');
    const r = await initialize();
    expect(JSON.parse(await r.text())).toMatchObject({ error: { code: -32000 } });
    expect(JSON.stringify(tg.logs())).toContain('is for another resource');
    expect(as.requests.length).toBe(before);
  } finally {
    decoy.closeAllConnections();
    await new Promise<void>((r) => decoy.close(() => r()));
  }
});

test('an unreadable client secret denies calls with -32025 naming it, and no token is asked for', async () => {
  const before = as.requests.length;
  tg.writeConfig(config(null, '{ env: TG_OAUTH_TEST_NEVER_SET }'));
  await tg.waitFor(() => JSON.stringify(tg.sidecar.snapshot()?.sources.get('up')?.auth).includes('TG_OAUTH_TEST_NEVER_SET'), 'the reload');
  const r = await initialize();
  expect(JSON.parse(await r.text())).toMatchObject({
    id: 1,
    error: { code: -32025, data: { reason: expect.stringContaining('auth.clientSecret: environment variable TG_OAUTH_TEST_NEVER_SET') } },
  });
  expect(as.requests.length).toBe(before);
});

// Credential custody on real sockets: the built CLI's sidecar (standalone) sends a source's headers
// from a Secret volume laid out as the kubelet does (rotated by swapping `..data`), a file and an
// environment variable; a missing or invalid credential denies calls to the source with -32025
// naming it, /ready lists it, and it works again once restored. No value ever reaches the logs,
// /ready, /metrics, an error message or `thoughtgate validate`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { IdentitySchema, PolicyDocumentSchema } from '../../api/config.js';
import { createLogger } from '../../lib/log.js';
import { createCredentialStore } from '../../sidecar/credentials/store.js';
import { createUpstreamClient, UpstreamPools } from '../../sidecar/proxy/upstream.js';
import { compileSnapshot } from '../../sidecar/snapshot.js';
import { connectClient } from '../support/sidecar.js';
import { CLI, run, startCliSidecar, type Proc } from '../support/processes.js';
import { startUpstream, type TestUpstream } from '../support/upstream.js';
import { emptySecretVolume, writeSecretVolume } from './secret-volume.js';

// Distinct, greppable values: each must reach the upstream and nothing else.
const TOKEN_1 = 'tg-custody-token-one-7f3a91';
const TOKEN_2 = 'tg-custody-token-two-c0d2e8';
const API_KEY = 'tg-custody-apikey-5b6e21';
const TEAM = 'tg-custody-team-9a8d77';
const BAD = 'tg-custody-bad-4e4e4e';
const ALL = [TOKEN_1, TOKEN_2, API_KEY, TEAM, BAD];

let dir: string;
let secrets: string;
let upstream: TestUpstream;
let sidecar: { proc: Proc; base: string; admin: string };
let session: { client: Client; transport: StreamableHTTPClientTransport } | null = null;
const seen: string[] = []; // every /ready and /metrics body and error message read during the test

async function waitFor(cond: () => Promise<boolean> | boolean, what: string, limitMs = 10_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function ready(): Promise<{ status: number; body: any }> {
  const r = await fetch(`${sidecar.admin}/ready`);
  const text = await r.text();
  seen.push(text);
  return { status: r.status, body: JSON.parse(text) };
}

/** The headers of the upstream's latest POST. */
function lastPost() {
  const posts = upstream.requests.filter((r) => r.method === 'POST');
  return posts[posts.length - 1]!.headers;
}

async function echo(message: string): Promise<unknown> {
  session ??= await connectClient(`${sidecar.base}/mcp/up`);
  return session.client.callTool({ name: 'echo', arguments: { message } });
}

async function denial(): Promise<McpError> {
  const before = upstream.requests.length;
  const err = await echo('x').then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  // Nothing reached the upstream: not an anonymous call, not a call with the old value.
  expect(upstream.requests.length).toBe(before);
  seen.push(JSON.stringify(err), String((err as Error).message));
  return err as McpError;
}

const secretDir = () => join(secrets, 'upstream-token');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-custody-'));
  secrets = join(dir, 'secrets');
  writeSecretVolume(secretDir(), { token: TOKEN_1 });
  writeFileSync(join(dir, 'api-key'), `${API_KEY}\n`); // as `echo "$KEY" > api-key` leaves it
  upstream = await startUpstream({ stateful: true });
  writeFileSync(
    join(dir, 'thoughtgate.yaml'),
    `sources:
  - name: up
    url: ${upstream.url}
    headers:
      Authorization:
        valueFrom: { secretKeyRef: { name: upstream-token, key: token } }
        prefix: "Bearer "
      X-Api-Key:
        valueFrom: { file: ${join(dir, 'api-key')} }
      X-Team:
        valueFrom: { env: TEAM_TOKEN }
      X-Literal: "plain-\${LITERAL}"
defaultAction: forward
`,
  );
  sidecar = await startCliSidecar(join(dir, 'thoughtgate.yaml'), { THOUGHTGATE_SECRETS_DIR: secrets, TEAM_TOKEN: TEAM, LITERAL: 'text' });
});

afterAll(async () => {
  await session?.client.close().catch(() => undefined);
  await sidecar?.proc.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('every credential form reaches the upstream on POST and the GET stream', async () => {
  await echo('hello');
  expect(lastPost()).toMatchObject({ authorization: `Bearer ${TOKEN_1}`, 'x-api-key': API_KEY, 'x-team': TEAM, 'x-literal': 'plain-text' });
  // The SDK opens the session's GET stream after initialize; it carries the credentials too.
  await waitFor(() => upstream.requests.some((r) => r.method === 'GET'), 'the GET stream');
  expect(upstream.requests.find((r) => r.method === 'GET')!.headers).toMatchObject({ authorization: `Bearer ${TOKEN_1}`, 'x-api-key': API_KEY });
  const r = await ready();
  expect(r.status).toBe(200);
  expect(r.body.credentials).toEqual([
    { credential: 'Secret "upstream-token" key "token"', ok: true, since: expect.any(String) },
    { credential: `file ${join(dir, 'api-key')}`, ok: true, since: expect.any(String) },
    { credential: 'environment variable TEAM_TOKEN', ok: true, since: expect.any(String) },
  ]);
});

test('a rotated Secret (the kubelet swaps ..data) is sent from the next call, without a restart or a reload', async () => {
  writeSecretVolume(secretDir(), { token: TOKEN_2 });
  await waitFor(async () => {
    await echo('after rotation');
    return lastPost()['authorization'] === `Bearer ${TOKEN_2}`;
  }, 'the rotated token upstream');
  expect(sidecar.proc.out()).toContain('"msg":"credential rotated"');
});

test('a missing Secret denies calls with -32025 naming the Secret and key; /ready says which; restoring it works again', async () => {
  emptySecretVolume(secretDir(), ['token']);
  await waitFor(async () => (await ready()).status === 503, '/ready to report the missing credential');
  const r = await ready();
  expect(r.body.credentials[0]).toEqual({
    credential: 'Secret "upstream-token" key "token"',
    ok: false,
    reason: 'does not exist (not mounted, or the Secret or key is missing)',
    since: expect.any(String),
  });
  const err = await denial();
  expect(err.code).toBe(-32025);
  expect(err.message).toContain('Upstream credential unavailable');
  expect((err.data as { reason: string }).reason).toBe(
    'source "up": header Authorization: Secret "upstream-token" key "token" does not exist (not mounted, or the Secret or key is missing)',
  );

  // Restored with the same value it had before it went missing.
  writeSecretVolume(secretDir(), { token: TOKEN_2 });
  await waitFor(async () => (await ready()).status === 200, '/ready after the restore');
  await echo('restored');
  expect(lastPost()['authorization']).toBe(`Bearer ${TOKEN_2}`);
});

test('a value that cannot be a header (a second line) is refused without quoting it', async () => {
  writeSecretVolume(secretDir(), { token: `${BAD}\n${BAD}\n` });
  await waitFor(async () => (await ready()).status === 503, '/ready to report the invalid credential');
  const err = await denial();
  expect(err.code).toBe(-32025);
  expect((err.data as { reason: string }).reason).toBe(
    `source "up": header Authorization: Secret "upstream-token" key "token" has a line break at position ${BAD.length} (only one trailing newline is allowed)`,
  );
  writeSecretVolume(secretDir(), { token: `${TOKEN_1}\n` });
  await waitFor(async () => (await ready()).status === 200, '/ready after the fix');
  await echo('fixed');
  expect(lastPost()['authorization']).toBe(`Bearer ${TOKEN_1}`);
});

test('DELETE (the end of the session) carries the credentials', async () => {
  await echo('before delete');
  await session!.transport.terminateSession();
  const del = upstream.requests.find((r) => r.method === 'DELETE');
  expect(del?.headers).toMatchObject({ authorization: `Bearer ${TOKEN_1}`, 'x-team': TEAM });
});

test('calls gate 4 makes on its own (createUpstreamClient) take the same headers, and send nothing without them', async () => {
  const lines: string[] = [];
  const store = createCredentialStore({ secretsDir: secrets, env: {}, log: createLogger('debug', (l) => lines.push(l)) });
  const pools = new UpstreamPools();
  try {
    const doc = PolicyDocumentSchema.parse({
      sources: [
        {
          name: 'up',
          url: upstream.url,
          headers: { Authorization: { valueFrom: { secretKeyRef: { name: 'upstream-token', key: 'token' } }, prefix: 'Bearer ' } },
        },
      ],
      defaultAction: 'forward',
    });
    const c = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1, credentials: store });
    if (!c.ok) throw new Error(c.errors.join('\n'));
    store.retain(c.snapshot.credentialRefs);
    const source = c.snapshot.sources.get('up')!;
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const client = createUpstreamClient(pools);
    const sent = await client.post(source, {}, ping);
    expect(sent.ok).toBe(true);
    if (sent.ok) await sent.response.body.dump();
    expect(lastPost()['authorization']).toBe(`Bearer ${TOKEN_1}`);

    emptySecretVolume(secretDir(), ['token']);
    await waitFor(() => !source.headers().ok, 'the store to see the Secret gone');
    const before = upstream.requests.length;
    expect(await client.post(source, {}, ping)).toEqual({ ok: false, kind: 'credential' });
    expect(upstream.requests.length).toBe(before);
    seen.push(...lines);
  } finally {
    writeSecretVolume(secretDir(), { token: `${TOKEN_1}\n` });
    store.close();
    await pools.close();
  }
});

test('no value ever reached the logs, /ready, /metrics, an error, or thoughtgate validate', async () => {
  const metrics = await (await fetch(`${sidecar.admin}/metrics`)).text();
  const v = run(process.execPath, [CLI, 'validate', '--config', join(dir, 'thoughtgate.yaml')], {
    THOUGHTGATE_SECRETS_DIR: secrets,
    TEAM_TOKEN: TEAM,
    LITERAL: 'text',
  });
  expect(await v.exited).toBe(0);
  const out = [sidecar.proc.out(), sidecar.proc.err(), metrics, v.out(), v.err(), ...seen].join('\n');
  // The test itself must have looked at something: every path above ran.
  expect(out).toContain('credential unavailable; calls that need it are denied');
  expect(out).toContain('credential rotated');
  for (const value of ALL) expect([value, out.includes(value)]).toEqual([value, false]);
});

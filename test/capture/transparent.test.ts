// The transparent listener of a captured pod: what REDIRECT delivers (the agent dialled the server,
// the bytes arrive at the sidecar) is governed by Host exactly like /mcp/<source>. The SDK client
// here dials the sidecar's transparent port whatever its URL says, as the capture rules make it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch } from 'undici';
import type { CaptureState } from '../../api/capture-state.js';
import { replyMessages, startRecordedEverything, type RecordedEverything } from '../adversarial/harness.js';
import { CLI, freePort, run, startCliSidecar } from '../support/processes.js';
import { exchange as raw } from '../support/raw-socket.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

/** A plain HTTP server that records what reached it. */
async function recorder(): Promise<{ port: number; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} host=${req.headers.host}`);
    res.end(`hello from ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A dispatcher that dials the transparent listener for every URL: what the REDIRECT rule does. */
function redirected(port: number, host = '127.0.0.1'): Agent {
  return new Agent({
    connect: (_opts, cb) => {
      const s = net.connect(port, host);
      s.once('connect', () => cb(null, s));
      s.once('error', (e) => cb(e, null));
    },
  });
}

/** The SDK client at `url`, its connections redirected to the transparent listener. */
async function capturedClient(url: string, port: number, host?: string): Promise<{ client: Client; close(): Promise<void> }> {
  const agent = redirected(port, host);
  const client = new Client({ name: 'captured-agent', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: ((u: string | URL, init?: RequestInit) => undiciFetch(u, { ...(init as object), dispatcher: agent })) as typeof fetch,
  });
  await client.connect(transport);
  return {
    client,
    close: async () => {
      await client.close();
      await agent.close();
    },
  };
}

/** A POST with exactly this Host header, sent to the transparent listener. */
function postAs(
  port: number,
  host: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; messages: unknown[]; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        agent: false,
        headers: { host, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => {
          let messages: unknown[] = [];
          try {
            messages = replyMessages(text, res.headers['content-type'] ?? null);
          } catch {
            messages = [];
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, messages, text });
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const initialize = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

let up: RecordedEverything;
let allowed: Awaited<ReturnType<typeof recorder>>;
let other: Awaited<ReturnType<typeof recorder>>;
let tg: TestSidecar;
let port: number;
let stateDir: string;
let stateFile: string;
let upPath: string;

beforeAll(async () => {
  up = await startRecordedEverything();
  allowed = await recorder();
  other = await recorder();
  stateDir = mkdtempSync(join(tmpdir(), 'tg-capture-'));
  stateFile = join(stateDir, 'state.json');
  upPath = new URL(up.url).pathname;
  tg = await startTestSidecar(
    `
sources:
  - name: e
    url: \${UPSTREAM}
    expose: { mode: blocklist, tools: ["get-env"] }
rules:
  - name: no-sums
    match: { tool: "get-sum" }
    action: deny
defaultAction: forward
server:
  headersTimeout: 1s
egress:
  allow: ["127.0.0.1:${allowed.port}"]
`,
    { UPSTREAM: up.url },
    { capture: { transparentPort: 0, stateFile } },
  );
  port = tg.sidecar.capture!.transparentPort;
}, 60_000);
afterAll(async () => {
  await tg?.close();
  await up?.close();
  await allowed?.close();
  await other?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

const sentTool = (name: string) =>
  up.bodies().some((b) => (Array.isArray(b) ? b : [b]).some((m) => (m as { params?: { name?: string } })?.params?.name === name));

describe('transparent listener: the SDK client dialling the server is governed', () => {
  test.each(['127.0.0.1', '[::ffff:127.0.0.1]', '127.1'])('URL host %s: hidden stays hidden, denied is denied, allowed works', async (host) => {
    up.clear();
    const url = `http://${host}:${up.port}${upPath}`;
    const { client, close } = await capturedClient(url, port);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('echo');
      expect(names).not.toContain('get-env');
      // A hidden tool is answered as the server answers an unknown one (a probe upstream, never get-env).
      const hidden = await client.callTool({ name: 'get-env', arguments: {} });
      expect(hidden).toMatchObject({ isError: true, content: [{ type: 'text', text: expect.stringContaining('not found') }] });
      const denied = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }).catch((e: McpError) => e);
      expect((denied as McpError).code).toBe(-32003);
      expect((await client.callTool({ name: 'echo', arguments: { message: 'cap' } })).content).toEqual([{ type: 'text', text: 'Echo: cap' }]);
    } finally {
      await close();
    }
    expect(up.everything()).not.toContain('get-env');
    expect(sentTool('get-sum')).toBe(false);
    expect(sentTool('echo')).toBe(true);
  });

  test.each(['localhost', 'LOCALHOST.'])('URL host %s (a DNS alias of the source, not in egress.allow): refused, not governed', async (host) => {
    up.clear();
    // Only a source's own host name or what egress.allow could match is resolved: an alias fails closed.
    const r = await capturedClient(`http://${host}:${up.port}${upPath}`, port).catch((e: Error) => e);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toContain(`egress to localhost:${up.port} is not allowed (see egress.allow)`);
    expect(up.received).toHaveLength(0);
  });

  test('over ::1 too (REDIRECT of IPv6 traffic delivers there)', async () => {
    const { client, close } = await capturedClient(up.url, port, '::1');
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('get-env');
    } finally {
      await close();
    }
  });
});

describe('transparent listener: every spelling of the source in Host is governed', () => {
  const spellings = (p: number) => [
    `127.1:${p}`,
    `0x7f000001:${p}`,
    `0X7F000001:${p}`,
    `2130706433:${p}`,
    `[::ffff:127.0.0.1]:${p}`,
    `[::FFFF:7F00:1]:${p}`,
    `127.0.0.1.:${p}`,
  ];
  // A name for the source that is not its URL's host (nor in egress.allow) is not even resolved.
  const aliases = (p: number) => [`LocalHost:${p}`, `localhost.:${p}`];
  test('each: a session opens, tools/list hides the hidden tool, calling it is refused and never reaches the server', async () => {
    for (const host of spellings(up.port)) {
      up.clear();
      const init = await postAs(port, host, upPath, initialize);
      expect([host, init.status]).toEqual([host, 200]);
      const sid = init.headers['mcp-session-id'] as string;
      const session = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
      await postAs(port, host, upPath, { jsonrpc: '2.0', method: 'notifications/initialized' }, session);
      const list = await postAs(port, host, upPath, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, session);
      const names = ((list.messages[0] as { result: { tools: { name: string }[] } }).result.tools ?? []).map((t) => t.name);
      expect(names).toContain('echo');
      expect([host, names.includes('get-env')]).toEqual([host, false]);
      const call = await postAs(port, host, upPath, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get-env', arguments: {} } }, session);
      expect(JSON.stringify(call.messages[0])).toContain('get-env not found');
      expect([host, up.everything().includes('get-env')]).toEqual([host, false]);
    }
  });

  test("another path on the source's origin is refused, under any spelling: it would reach the server unseen", async () => {
    up.clear();
    for (const host of spellings(up.port)) {
      const r = await postAs(port, host, '/other', initialize);
      expect([host, r.status]).toEqual([host, 403]);
      expect(r.text).toContain('is an MCP source; only its governed MCP endpoint is reachable');
    }
    for (const host of aliases(up.port)) {
      for (const path of [upPath, '/other']) {
        const r = await postAs(port, host, path, initialize);
        expect([host, path, r.status]).toEqual([host, path, 403]);
        expect(r.text).toContain('is not allowed (see egress.allow)');
      }
    }
    expect(up.received).toHaveLength(0);
  });
});

describe('transparent listener: other destinations', () => {
  test('a Host in egress.allow is relayed, to the address the sidecar resolved', async () => {
    const out = await raw(port, `GET /page?q=1 HTTP/1.1\r\nhost: 127.0.0.1:${allowed.port}\r\nx-trace: t\r\nconnection: close\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1.1 200/);
    expect(out).toContain('hello from /page?q=1');
    expect(allowed.seen.at(-1)).toBe(`GET /page?q=1 host=127.0.0.1:${allowed.port}`);
  });

  test('a Host that is neither a source nor allowed is refused, and nothing reaches it', async () => {
    for (const host of [`127.0.0.1:${other.port}`, `localhost:${other.port}`, `0x7f.1:${other.port}`]) {
      const out = await raw(port, `GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
      expect([host, out]).toEqual([host, expect.stringMatching(/^HTTP\/1.1 403/)]);
      expect(out).toContain('is not allowed');
    }
    // An address entry (127.0.0.1:<allowed>) makes every name on its port worth resolving: this one does not resolve.
    const unresolvable = await raw(port, `GET / HTTP/1.1\r\nhost: nowhere.invalid:${allowed.port}\r\nconnection: close\r\n\r\n`);
    expect(unresolvable).toMatch(/^HTTP\/1.1 502/);
    expect(other.seen).toEqual([]);
  });

  test('a name no source and no egress.allow entry could match is refused without a DNS lookup (no covert channel through the resolver)', async () => {
    const lookups = async () => {
      const m = await tg.sidecar.metrics.registry.getSingleMetric('thoughtgate_sidecar_dns_lookups_total')!.get();
      return m.values.reduce((n, v) => n + v.value, 0);
    };
    const before = await lookups();
    for (const host of ['c2VjcmV0.attacker.example', `c2VjcmV0.attacker.example:${other.port}`, 'nowhere.invalid', `localhost:${other.port}`]) {
      const out = await raw(port, `GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
      expect([host, out]).toEqual([host, expect.stringMatching(/^HTTP\/1.1 403/)]);
      expect(out).toContain('is not allowed (see egress.allow)');
    }
    expect(await lookups()).toBe(before);
    // The oracle that the counter counts: a name on the allowed port is looked up.
    await raw(port, `GET / HTTP/1.1\r\nhost: nowhere.invalid:${allowed.port}\r\nconnection: close\r\n\r\n`);
    expect(await lookups()).toBeGreaterThan(before);
  });

  test('missing, duplicate or malformed Host, absolute-form, CONNECT and non-HTTP bytes are refused with 400', async () => {
    const a = allowed.port;
    const before = allowed.seen.length;
    const cases: [string, string][] = [
      ['no Host (HTTP/1.0)', 'GET /page HTTP/1.0\r\n\r\n'],
      ['no Host (HTTP/1.1)', 'GET /page HTTP/1.1\r\nconnection: close\r\n\r\n'],
      ['two Hosts', `GET /page HTTP/1.1\r\nhost: 127.0.0.1:${a}\r\nhost: 127.0.0.1:${a}\r\nconnection: close\r\n\r\n`],
      ['two Hosts that differ', `GET /page HTTP/1.1\r\nhost: 127.0.0.1:${a}\r\nHost: 127.0.0.1:${other.port}\r\nconnection: close\r\n\r\n`],
      ['userinfo', `GET /page HTTP/1.1\r\nhost: user@127.0.0.1:${a}\r\nconnection: close\r\n\r\n`],
      ['path in Host', `GET /page HTTP/1.1\r\nhost: 127.0.0.1:${a}/x\r\nconnection: close\r\n\r\n`],
      ['query in Host', `GET /page HTTP/1.1\r\nhost: 127.0.0.1:${a}?x\r\nconnection: close\r\n\r\n`],
      ['percent in Host', `GET /page HTTP/1.1\r\nhost: 127.0.0.%31:${a}\r\nconnection: close\r\n\r\n`],
      ['port 0', 'GET /page HTTP/1.1\r\nhost: 127.0.0.1:0\r\nconnection: close\r\n\r\n'],
      ['port too big', 'GET /page HTTP/1.1\r\nhost: 127.0.0.1:70000\r\nconnection: close\r\n\r\n'],
      ['empty port', 'GET /page HTTP/1.1\r\nhost: 127.0.0.1:\r\nconnection: close\r\n\r\n'],
      ['absolute-form', `GET http://127.0.0.1:${a}/page HTTP/1.1\r\nhost: 127.0.0.1:${a}\r\nconnection: close\r\n\r\n`],
      ['asterisk-form', `OPTIONS * HTTP/1.1\r\nhost: 127.0.0.1:${a}\r\nconnection: close\r\n\r\n`],
      ['CONNECT', `CONNECT 127.0.0.1:${a} HTTP/1.1\r\nhost: 127.0.0.1:${a}\r\n\r\n`],
      ['not HTTP', 'SSH-2.0-OpenSSH_9.6\r\n\r\n'],
      ['TLS', '\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00'],
    ];
    for (const [what, text] of cases) {
      const out = await raw(port, Buffer.from(text, 'latin1'));
      expect([what, out.slice(0, 12)]).toEqual([what, 'HTTP/1.1 400']);
    }
    expect(allowed.seen.length).toBe(before);
  });
});

describe("transparent listener: the proxy port's protections", () => {
  test('headers that do not arrive within server.headersTimeout get 408 and a closed connection', async () => {
    const t0 = Date.now();
    const out = await raw(port, `GET /page HTTP/1.1\r\nhost: 127.0.0.1:${allowed.port}\r\n`, 8000);
    expect(out).toMatch(/^HTTP\/1.1 408/);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  test('more than 16 pipelined requests close the connection', async () => {
    const one = `GET /p HTTP/1.1\r\nhost: 127.0.0.1:${allowed.port}\r\n\r\n`;
    const out = await raw(port, one.repeat(40), 5000);
    expect((out.match(/HTTP\/1.1 200/g) ?? []).length).toBeLessThan(40);
    const metrics = await tg.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_refused_total');
    expect(metrics).toMatch(/listener="transparent",reason="pipelining"\} [1-9]/);
  });

  test('an Origin not allowed is refused on either road to an MCP source, counted under the listener it came in on', async () => {
    up.clear();
    const host = `127.0.0.1:${up.port}`;
    const refusals = async () => {
      const text = await (await fetch(`${tg.admin}/metrics`)).text();
      const count = (listener: string) => Number(new RegExp(`http_refused_total\\{listener="${listener}",check="origin"\\} (\\d+)`).exec(text)?.[1] ?? 0);
      return { proxy: count('proxy'), transparent: count('transparent') };
    };
    const evil = { origin: 'http://evil.example' };
    const before = await refusals();
    const captured = await postAs(port, host, upPath, initialize, evil);
    expect(captured.status).toBe(403);
    expect(captured.text).toContain('not in server.allowedOrigins');
    expect(await refusals()).toEqual({ proxy: before.proxy, transparent: before.transparent + 1 });
    // The same source through the proxy port (absolute-form, forward-proxy mode).
    const proxied = await postAs(tg.sidecar.port, host, up.url, initialize, evil);
    expect(proxied.status).toBe(403);
    expect(proxied.text).toContain('not in server.allowedOrigins');
    expect(await refusals()).toEqual({ proxy: before.proxy + 1, transparent: before.transparent + 1 });
    expect(up.received).toHaveLength(0);
  });

  test('refusals are counted per listener and reason', async () => {
    const text = await tg.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_refused_total');
    for (const reason of ['request', 'denied', 'unavailable', 'bad_request', 'timeout'])
      expect(text).toMatch(new RegExp(`listener="transparent",reason="${reason}"\\} [1-9]`));
    const conns = await tg.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_connections_total');
    expect(conns).toMatch(/listener="transparent"\} [1-9]/);
  });
});

describe('/ready of a captured sidecar', () => {
  const state = (transparentPort: number, tlsPort: number | null = null): CaptureState => ({
    version: 1,
    backend: 'nft',
    families: ['ipv4', 'ipv6'],
    spec: { uid: 7467, redirectPorts: [up.port], transparentPort, tlsPort, dns: 'resolv', exceptions: [] },
    rulesHash: 'sha256:x',
    installedAt: new Date().toISOString(),
    durationMs: 12,
  });
  const ready = async () => {
    const r = await fetch(`${tg.admin}/ready`);
    return { status: r.status, body: (await r.json()) as { ready: boolean; capture: { expected: boolean; state: CaptureState | null; error?: string } } };
  };
  const write = (text: string) => {
    // A new inode and mtime each time, as the init container's write would be.
    rmSync(stateFile, { force: true });
    writeFileSync(stateFile, text);
  };

  test('not ready while the state file is missing, invalid, or names other ports; ready with the right one', async () => {
    rmSync(stateFile, { force: true });
    let r = await ready();
    expect(r.status).toBe(503);
    expect(r.body.capture).toMatchObject({ expected: true, state: null, error: expect.stringContaining('missing') });
    write('{"version": 1');
    r = await ready();
    expect(r.status).toBe(503);
    expect(r.body.capture.error).toContain('unreadable');
    write(JSON.stringify({ ...state(port), backend: 'pf' }));
    r = await ready();
    expect(r.status).toBe(503);
    expect(r.body.capture.error).toContain('invalid');
    write(JSON.stringify(state(port + 1)));
    r = await ready();
    expect(r.status).toBe(503);
    expect(r.body.capture.error).toContain(`redirect to port ${port + 1}`);
    write(JSON.stringify(state(port, 7471)));
    r = await ready();
    expect(r.status).toBe(503);
    expect(r.body.capture.error).toContain('not running');
    write(JSON.stringify(state(port)));
    await tg.waitFor(() => tg.sidecar.ready(), 'ready');
    r = await ready();
    expect(r.status).toBe(200);
    expect(r.body.capture).toEqual({ expected: true, state: expect.objectContaining({ spec: state(port).spec }) });
    // /health does not depend on it.
    rmSync(stateFile, { force: true });
    expect((await fetch(`${tg.admin}/health`)).status).toBe(200);
    expect((await ready()).status).toBe(503);
  });

  test('an uncaptured sidecar reports capture: null', async () => {
    const plain = await startTestSidecar(`sources: []\ndefaultAction: forward\n`);
    try {
      const r = await fetch(`${plain.admin}/ready`);
      expect(((await r.json()) as { capture: unknown }).capture).toBeNull();
      expect(plain.sidecar.capture).toBeNull();
    } finally {
      await plain.close();
    }
  });
});

describe('thoughtgate sidecar: the capture flags', () => {
  test('--help names them and their variables', async () => {
    const p = run(process.execPath, [CLI, 'sidecar', '--help']);
    expect(await p.exited).toBe(0);
    for (const s of [
      '--transparent-port',
      'THOUGHTGATE_TRANSPARENT_PORT',
      '--tls-port',
      'THOUGHTGATE_TLS_PORT',
      '--capture-state',
      'THOUGHTGATE_CAPTURE_STATE',
    ])
      expect(p.out()).toContain(s);
  });

  test('--tls-port without --transparent-port is a usage error', async () => {
    const p = run(process.execPath, [CLI, 'sidecar', '--config', '/nonexistent.yaml', '--tls-port', '7471']);
    expect(await p.exited).toBe(2);
    expect(p.err()).toContain('need --transparent-port');
  });

  test('the CLI sidecar, captured by the environment, is ready once the state file names its port, and governs by Host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-capture-cli-'));
    const [transparentPort, tls] = [await freePort(), await freePort()];
    const file = join(dir, 'state.json');
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `sources:\n  - name: e\n    url: ${up.url}\n    expose: { mode: blocklist, tools: ["get-env"] }\ndefaultAction: forward\n`);
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        backend: 'legacy',
        families: ['ipv4'],
        spec: { uid: 7467, redirectPorts: [80], transparentPort, tlsPort: tls, dns: 'resolv', exceptions: [] },
        rulesHash: 'x',
        installedAt: new Date().toISOString(),
        durationMs: 1,
      }),
    );
    const cli = await startCliSidecar(cfg, {
      THOUGHTGATE_TRANSPARENT_PORT: String(transparentPort),
      THOUGHTGATE_TLS_PORT: String(tls),
      THOUGHTGATE_CAPTURE_STATE: file,
    });
    try {
      const ready = (await (await fetch(`${cli.admin}/ready`)).json()) as { capture: { state: { spec: { transparentPort: number } } } };
      expect(ready.capture.state.spec.transparentPort).toBe(transparentPort);
      up.clear();
      const r = await postAs(transparentPort, `127.0.0.1:${up.port}`, upPath, initialize);
      expect(r.status).toBe(200);
      expect(up.bodies()).toEqual([expect.objectContaining({ method: 'initialize' })]);
    } finally {
      await cli.proc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

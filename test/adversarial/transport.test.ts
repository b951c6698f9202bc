// Classes 12–14 of issue 7, as foreign MCP peers found them: stream heads held back until the first
// body byte, Host not validated (DNS rebinding), CORS preflights refused for allowed origins.
// The oracle is what the upstream received (server-everything behind the recording relay) or, where
// the upstream must hold its body back on cue, a raw upstream under the test's control.
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { checkHost, hostPolicy } from '../../sidecar/proxy/hosts.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { openSession, startGuard, startRecordedEverything, type RecordedEverything, closeGuarded, startGuarded } from './harness.js';

// ---------- helpers ----------

/** A request with a Host header of our choosing (fetch does not let a caller set Host). */
function requestWithHost(
  port: number,
  host: string,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/mcp/e', headers: { host, ...opts.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    r.on('error', reject);
    r.end(opts.body);
  });
}

/**
 * An upstream that answers every request with an SSE head at once and then writes nothing until the
 * test says so: the proof that a head reached the agent before any body existed.
 */
async function startHoldingUpstream(): Promise<{
  url: string;
  received: { method: string; headers: http.IncomingHttpHeaders; body: string }[];
  bodyWritten: () => boolean;
  release: (text: string) => void;
  close: () => Promise<void>;
}> {
  const open = new Set<http.ServerResponse>();
  const received: { method: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let written = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'mcp-session-id': 'held-session',
        'access-control-allow-origin': '*',
      });
      res.flushHeaders();
      open.add(res);
      res.on('close', () => open.delete(res));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    received,
    bodyWritten: () => written,
    release: (text) => {
      written = true;
      for (const res of open) res.write(text);
    },
    close: async () => {
      for (const res of open) res.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Reads a fetch body until `pred` holds on the text so far. */
async function readUntil(r: Response, pred: (text: string) => boolean): Promise<string> {
  const reader = r.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  while (!pred(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  void reader.cancel();
  return text;
}

// ---------- 12. streams start when they start ----------

describe('12: a stream head reaches the agent when the upstream head does', () => {
  let up: Awaited<ReturnType<typeof startHoldingUpstream>>;
  let tg: TestSidecar;
  beforeAll(async () => {
    up = await startHoldingUpstream();
    tg = await startTestSidecar(`
sources:
  - name: held
    url: ${up.url}
  - name: filtered
    url: ${up.url}
    expose: { mode: allowlist, tools: ["echo"] }
defaultAction: forward
server:
  allowedOrigins: ["https://app.example"]
`);
  });
  afterAll(async () => {
    await tg?.close();
    await up?.close();
  });

  const sse = { accept: 'text/event-stream' };
  const post = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const cases: [string, string, RequestInit][] = [
    ['an idle GET stream of a session', 'held', { headers: { ...sse, 'mcp-session-id': 's1' } }],
    ['a Last-Event-ID resumption', 'held', { headers: { ...sse, 'mcp-session-id': 's1', 'last-event-id': 'ev-41' } }],
    ['a session-less GET stream (no wait for a first event)', 'held', { headers: sse }],
    ['a GET stream on a filtered source', 'filtered', { headers: { ...sse, 'mcp-session-id': 's1' } }],
    [
      'a silent POST SSE answer (relayed as is)',
      'held',
      { method: 'POST', headers: post, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow', arguments: {} } }) },
    ],
    [
      'a silent POST SSE answer that is inspected (filtered list)',
      'filtered',
      { method: 'POST', headers: post, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) },
    ],
    [
      'a silent POST SSE answer for an allowed browser origin',
      'held',
      { method: 'POST', headers: { ...post, origin: 'https://app.example' }, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }) },
    ],
  ];
  test.each(cases)('%s', async (_what, source, init) => {
    const before = up.received.length;
    const r = await fetch(tg.mcpUrl(source), init);
    // fetch resolved with the head, and the upstream has written no body byte yet.
    expect(up.bodyWritten()).toBe(false);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    expect(r.headers.get('mcp-session-id')).toBe('held-session');
    expect(up.received.length).toBe(before + 1);
    if (init.headers && 'last-event-id' in (init.headers as Record<string, string>)) expect(up.received.at(-1)!.headers['last-event-id']).toBe('ev-41');
    await r.body?.cancel();
  });

  test('after the head, events still stream through as the upstream writes them', async () => {
    const r = await fetch(tg.mcpUrl('held'), { headers: { ...sse, 'mcp-session-id': 's2' } });
    expect(r.status).toBe(200);
    const reading = readUntil(r, (t) => t.includes('"ping"'));
    up.release('event: message\ndata: {"jsonrpc":"2.0","id":"s1","method":"ping"}\n\n');
    expect(await reading).toContain('"method":"ping"');
  });
});

describe('12: the legacy endpoint never reaches the agent, though the head is sent at once', () => {
  let legacy: http.Server;
  let write: ((t: string) => void) | null = null;
  let end: (() => void) | null = null;
  let tg: TestSidecar;
  beforeAll(async () => {
    legacy = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      write = (t) => res.write(t);
      end = () => res.end();
    });
    await new Promise<void>((r) => legacy.listen(0, '127.0.0.1', r));
    tg = await startTestSidecar(`sources:\n  - name: old\n    url: http://127.0.0.1:${(legacy.address() as AddressInfo).port}/sse\ndefaultAction: forward\n`);
  });
  afterAll(async () => {
    await tg?.close();
    legacy.closeAllConnections();
    await new Promise<void>((r) => legacy.close(() => r()));
  });

  const variants: [string, string[]][] = [
    ['at once', ['event: endpoint\ndata: /message?sessionId=abc\n\n']],
    ['after a comment and a retry field', [': hello\n\n', 'retry: 1000\n\n', 'event: endpoint\ndata: /message?sessionId=abc\n\n']],
    ['split across writes', ['event: endp', 'oint\r\ndata: /messa', 'ge?sessionId=abc\r\n\r\n']],
    [
      'after a Streamable HTTP message (any endpoint event, not only the first)',
      [
        'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}\n\n',
        'event: endpoint\ndata: /message?sessionId=abc\n\n',
      ],
    ],
    ['unterminated at the end of the stream', ['event: endpoint\ndata: /message?sessionId=abc']],
  ];
  test.each(variants)('%s', async (_what, parts) => {
    write = null;
    const r = await fetch(tg.mcpUrl('old'), { headers: { accept: 'text/event-stream' } });
    expect(r.status).toBe(200); // the head came before any event was written
    expect(write).not.toBeNull();
    for (const p of parts) {
      write!(p);
      await new Promise((res) => setTimeout(res, 5));
    }
    if (!parts.at(-1)!.endsWith('\n\n')) end!();
    const text = await r.text(); // the sidecar ends the stream
    expect(text).not.toContain('sessionId=abc');
    expect(text).not.toContain('event: endpoint');
    const errors = text.split('\n').filter((l) => l.startsWith('data: ') && l.includes('-32013'));
    expect(errors).toHaveLength(1);
    expect(JSON.parse(errors[0]!.slice(6)).error.data.reason).toContain('2024-11-05 HTTP+SSE');
  });
});

// ---------- 13. DNS rebinding ----------

describe('13: Host must name the sidecar (real server-everything behind the sidecar)', () => {
  let up: RecordedEverything;
  let tg: TestSidecar;
  let port: number;
  beforeAll(async () => {
    up = await startRecordedEverything();
    tg = await startGuard(
      up,
      `
sources:
  - name: e
    url: \${UPSTREAM}
defaultAction: forward
server:
  allowedHosts: ["agent-tools.internal", "svc.example:8080"]
`,
    );
    port = tg.sidecar.port;
  }, 60_000);
  afterAll(() => closeGuarded(tg, up));

  const init = JSON.stringify({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'rebound', version: '1' } },
  });
  const postHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  test('a rebound name without Origin is refused with 403 -32023, and the upstream receives nothing', async () => {
    up.clear();
    for (const host of [
      'evil.example.com',
      `evil.example.com:${port}`,
      'EVIL.example.com',
      'evil.example.com.',
      `localhost.evil.example:${port}`,
      `127.0.0.1.nip.io:${port}`,
      `agent-tools.internal.evil:${port}`,
      `svc.example:${port}`,
    ]) {
      const r = await requestWithHost(port, host, { method: 'POST', headers: postHeaders, body: init });
      expect([host, r.status]).toEqual([host, 403]);
      const body = JSON.parse(r.text);
      expect(body.error.code).toBe(-32023);
      expect(body.error.message).toBe('Host not allowed');
      expect(r.headers['connection']).toBe('close');
    }
    // The oracle: server-everything was never asked anything.
    expect(up.received).toEqual([]);
  });

  test('a loopback name on another port is accepted (a port-forward), and the name is still what is checked', async () => {
    up.clear();
    // What a rebinding page controls is the name; the port is in its own URL. A port-forward
    // (kubectl port-forward 8080:7467) or a node port changes the port legitimately.
    for (const host of [`localhost:${port + 1}`, '127.0.0.1', `[::1]:${port + 1}`, 'localhost:80']) {
      const r = await requestWithHost(port, host, { method: 'POST', headers: postHeaders, body: init });
      expect([host, r.status]).toEqual([host, 200]);
    }
    for (const host of [`evil.example:${port + 1}`, 'evil.example', `localhost.evil.example:${port + 1}`]) {
      const r = await requestWithHost(port, host, { method: 'POST', headers: postHeaders, body: init });
      expect([host, r.status]).toEqual([host, 403]);
    }
    // Only the four accepted initializes reached the upstream.
    expect(up.bodies().filter((b) => (b as { method?: string }).method === 'initialize')).toHaveLength(4);
  });
});

describe('13: wildcard binds accept the pod address (kubelet probes), names still refused', () => {
  test('a listener on 0.0.0.0 takes any IP literal; names need allowedHosts', () => {
    const p = hostPolicy('0.0.0.0', 7469, []);
    expect(checkHost(p, '10.244.1.17:7469')).toBeNull();
    expect(checkHost(p, '[fd00::17]:7469')).toBeNull();
    expect(checkHost(p, '10.244.1.17:7470')).toBeNull(); // a node port or port-forward
    expect(checkHost(p, 'pod.cluster.local:7469')).not.toBeNull();
    expect(checkHost(hostPolicy('::', 7469, ['pod.cluster.local']), 'pod.cluster.local:7469')).toBeNull();
  });

  test('a specific bind accepts its own address, not another', () => {
    const p = hostPolicy('10.0.0.5', 7467, []);
    expect(checkHost(p, '10.0.0.5:7467')).toBeNull();
    expect(checkHost(p, '10.0.0.6:7467')).not.toBeNull();
    expect(checkHost(hostPolicy('::1', 7467, []), '[::1]:7467')).toBeNull();
  });

  // Every spelling a browser or client might send for the same address gets the same decision.
  const ipv4Spellings = (a: number, b: number, c: number, d: number) => {
    const n = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
    return [
      `${a}.${b}.${c}.${d}`,
      String(n),
      `0x${n.toString(16)}`,
      `0${a.toString(8)}.${b}.${c}.${d}`,
      `${a}.${(b << 16) + (c << 8) + d}`,
      `0x${a.toString(16)}.${b}.${c}.${d}`,
    ];
  };
  test('property: all IPv4 spellings of an address agree, on a specific and a wildcard bind', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })),
        fc.boolean(),
        ([a, b, c, d], bindSame) => {
          const bind = bindSame ? `${a}.${b}.${c}.${d}` : '192.0.2.1';
          for (const policy of [hostPolicy(bind, 7467, []), hostPolicy('0.0.0.0', 7467, [])]) {
            const decisions = ipv4Spellings(a, b, c, d).map((h) => checkHost(policy, `${h}:7467`) === null);
            expect(new Set(decisions).size).toBe(1);
          }
        },
      ),
    );
  });

  test("property: case and a trailing dot never change a name's decision", () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
    fc.assert(
      fc.property(
        fc.array(label, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
        (labels, listed, upper) => {
          const name = labels.join('.');
          const policy = hostPolicy('127.0.0.1', 7467, listed ? [name] : []);
          const variant = [...name].map((ch, i) => (upper[i % upper.length] ? ch.toUpperCase() : ch)).join('');
          const base = checkHost(policy, `${name}:7467`) === null;
          expect(checkHost(policy, `${variant}:7467`) === null).toBe(base);
          expect(checkHost(policy, `${variant}.:7467`) === null).toBe(base);
          expect(base).toBe(listed || name === 'localhost');
        },
      ),
    );
  });
});

// ---------- 14. browsers and CORS ----------

describe('14: CORS for allowed origins (real server-everything behind the sidecar)', () => {
  let up: RecordedEverything;
  let tg: TestSidecar;
  const APP = 'https://app.example';
  beforeAll(async () => {
    ({ up, tg } = await startGuarded(`
sources:
  - name: e
    url: \${UPSTREAM}
defaultAction: forward
server:
  allowedOrigins: ["${APP}"]
`));
  }, 60_000);
  afterAll(() => closeGuarded(tg, up));

  const preflight = (origin: string, method: string, headers: string) =>
    fetch(tg.mcpUrl('e'), { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });

  test('a preflight from an allowed origin is answered by the sidecar and never forwarded', async () => {
    up.clear();
    const r = await preflight(
      APP,
      'POST',
      'content-type, mcp-session-id, MCP-Protocol-Version, authorization, last-event-id, mcp-method, mcp-name, mcp-param-region',
    );
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe(APP);
    expect(r.headers.get('access-control-allow-methods')).toBe('GET, POST, DELETE');
    expect(r.headers.get('access-control-allow-headers')!.split(', ').sort()).toEqual([
      'authorization',
      'content-type',
      'last-event-id',
      'mcp-method',
      'mcp-name',
      'mcp-param-region',
      'mcp-protocol-version',
      'mcp-session-id',
    ]);
    expect(r.headers.get('access-control-max-age')).toBe('600');
    expect(r.headers.get('vary')).toContain('Origin');
    expect(r.headers.get('access-control-allow-credentials')).toBeNull();
    expect(up.received).toEqual([]);
  });

  test('headers MCP does not use are not reflected, so the browser refuses them', async () => {
    const r = await preflight(APP, 'POST', 'content-type, x-forwarded-host, cookie');
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-headers')).toBe('content-type');
  });

  test('preflights from other origins are refused, loopback ones included (no default trust)', async () => {
    up.clear();
    for (const origin of [
      'https://evil.example',
      'https://APP.example',
      `${APP}.evil`,
      'null',
      `http://127.0.0.1:${tg.sidecar.port}`,
      'http://localhost:6274',
    ]) {
      const r = await preflight(origin, 'POST', 'content-type');
      expect([origin, r.status]).toEqual([origin, 403]);
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      expect(((await r.json()) as any).error.code).toBe(-32014);
    }
    expect(up.received).toEqual([]);
  });

  test("a browser-like session: preflight, then requests with Origin get CORS headers; the upstream's own never pass", async () => {
    const pf = await preflight(APP, 'POST', 'content-type');
    expect(pf.status).toBe(204);
    const h = await openSession(tg.mcpUrl('e'), { origin: APP });
    expect(h['mcp-session-id']).toBeDefined();
    const r = await fetch(tg.mcpUrl('e'), { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe(APP);
    expect(r.headers.get('access-control-expose-headers')).toContain('Mcp-Session-Id');
    expect(r.headers.get('vary')).toContain('Origin');
    expect(await r.text()).toContain('"tools"');
    // A denied answer (unknown method shape) still carries them, so the browser can read the error.
    const bad = await fetch(tg.mcpUrl('e'), { method: 'POST', headers: h, body: '{' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('access-control-allow-origin')).toBe(APP);
  });

  test('OPTIONS without a preflight method is still not part of the transport (405)', async () => {
    const r = await fetch(tg.mcpUrl('e'), { method: 'OPTIONS', headers: { origin: APP } });
    expect(r.status).toBe(405);
  });
});

describe("14: the upstream's CORS headers are replaced by the sidecar's", () => {
  test('Access-Control-Allow-Origin: * from the upstream never reaches a browser', async () => {
    const up = await startHoldingUpstream();
    const tg = await startTestSidecar(
      `sources:\n  - name: h\n    url: ${up.url}\ndefaultAction: forward\nserver:\n  allowedOrigins: ["https://app.example"]\n`,
    );
    try {
      const own = await fetch(tg.mcpUrl('h'), { headers: { accept: 'text/event-stream', 'mcp-session-id': 'x', origin: 'https://app.example' } });
      expect(own.headers.get('access-control-allow-origin')).toBe('https://app.example');
      await own.body?.cancel();
      const none = await fetch(tg.mcpUrl('h'), { headers: { accept: 'text/event-stream', 'mcp-session-id': 'x' } });
      expect(none.headers.get('access-control-allow-origin')).toBeNull();
      await none.body?.cancel();
    } finally {
      await tg.close();
      await up.close();
    }
  });
});

// ---------- 15. jitter: connection setup off the request path ----------

describe('15: a pre-connected spare serves the request that finds no idle upstream connection', () => {
  test('a GET stream pins a connection; the next POST goes out on the spare, not after a connect', async () => {
    const held = new Set<http.ServerResponse>();
    const sockets = new Set<net.Socket>();
    const used = new WeakSet<net.Socket>();
    const upstream = http.createServer((req, res) => {
      used.add(req.socket);
      req.resume();
      req.on('end', () => {
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.flushHeaders();
          held.add(res);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
      });
    });
    upstream.on('connection', (sock: net.Socket) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    // The spare: a connection that stays open without a request (health probes connect and close at once).
    const idleOpen = () => [...sockets].filter((x) => !used.has(x) && !x.destroyed);
    const spareReady = async () => {
      for (;;) {
        const first = idleOpen();
        await new Promise((r) => setTimeout(r, 50));
        if (first.some((x) => idleOpen().includes(x))) return;
      }
    };
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const tg = await startTestSidecar(
      `sources:\n  - name: u\n    url: http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp\ndefaultAction: forward\n`,
    );
    const until = async (pred: () => boolean) => {
      while (!pred()) await new Promise((r) => setTimeout(r, 5));
    };
    const spareCount = async () =>
      Number(/thoughtgate_sidecar_upstream_connections_opened_total\{spare="true"\} (\d+)/.exec(await (await fetch(`${tg.admin}/metrics`)).text())?.[1] ?? 0);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 's' };
    try {
      const r1 = await fetch(tg.mcpUrl('u'), { method: 'POST', headers, body });
      await r1.text();
      const before = await spareCount();
      // A GET stream takes the idle connection and keeps it.
      const get = await fetch(tg.mcpUrl('u'), { headers: { accept: 'text/event-stream', 'mcp-session-id': 's' } });
      expect(get.status).toBe(200);
      await until(() => held.size === 1);
      // Once the spare has connected, the POST that follows finds no idle connection but the spare.
      await spareReady();
      const r2 = await fetch(tg.mcpUrl('u'), { method: 'POST', headers, body });
      expect(await r2.text()).toContain('"result"');
      expect(await spareCount()).toBeGreaterThan(before);
      await get.body?.cancel();
    } finally {
      await tg.close();
      for (const res of held) res.end();
      upstream.closeAllConnections();
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });
});

describe('13: --allowed-hosts and a wildcard admin bind (as in a pod) through a running sidecar', () => {
  test('the admin port on 0.0.0.0 answers the kubelet by pod IP, not a rebound name; --allowed-hosts works before any config', async () => {
    const { startSidecar } = await import('../../sidecar/sidecar.js');
    const { createLogger } = await import('../../lib/log.js');
    // No config at all: the flag alone must already apply (the admin port serves before a config loads).
    const sc = await startSidecar({
      port: 0,
      adminPort: 0,
      bind: '127.0.0.1',
      adminBind: '0.0.0.0',
      log: createLogger('error', () => undefined),
      provider: { description: 'none', start: () => undefined, close: () => undefined },
      allowedHosts: ['agent-tools.internal'],
    });
    try {
      const admin = sc.adminPort;
      expect((await requestWithHost(admin, `10.244.1.17:${admin}`, { path: '/health' })).status).toBe(200); // kubelet: pod IP
      expect((await requestWithHost(admin, `[fd00::17]:${admin}`, { path: '/health' })).status).toBe(200);
      expect((await requestWithHost(admin, `10.244.1.17:${admin + 1}`, { path: '/health' })).status).toBe(200); // a node port or port-forward
      expect((await requestWithHost(admin, `rebound.evil.example:${admin}`, { path: '/metrics' })).status).toBe(403);
      expect((await requestWithHost(admin, 'agent-tools.internal', { path: '/health' })).status).toBe(200);
      // The proxy is bound to 127.0.0.1: an IP that is not its own is refused there.
      const proxy = await requestWithHost(sc.port, `10.244.1.17:${sc.port}`, { path: '/mcp/x' });
      expect(proxy.status).toBe(403);
      expect(JSON.parse(proxy.text).error.code).toBe(-32023);
      // The flag's name is accepted on the proxy (then: no config, so -32011 by HTTP 503).
      expect((await requestWithHost(sc.port, `agent-tools.internal:${sc.port}`, { path: '/mcp/x' })).status).toBe(503);
    } finally {
      await sc.close();
    }
  });
});

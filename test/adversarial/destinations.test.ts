// Class 2: destinations in forward-proxy mode. With a broad egress.allow, every other name of the
// source's address (IP spellings, localhost, 0.0.0.0, IPv4-mapped IPv6, case, trailing dot), by
// absolute-form and by CONNECT, must be governed or refused: the hidden tool never reaches
// server-everything. A denied egress host stays denied under every spelling of its address.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { openSession, startGuard, startRecordedEverything, type RecordedEverything } from './harness.js';
import type { TestSidecar } from '../support/sidecar.js';

/** The spellings of 127.0.0.1 (and the addresses that reach it) an agent could try. */
const SPELLINGS = [
  '127.0.0.1',
  'localhost',
  'LOCALHOST',
  'LocalHost.',
  'localhost.',
  '127.1',
  '127.0.1',
  '2130706433',
  '0x7f000001',
  '0X7F000001',
  '0177.0.0.1',
  '0x7f.0.0.1',
  '0x7f.1',
  '017700000001',
  '127.000.000.001',
  '127.0.0.1.',
  '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]',
  '[0:0:0:0:0:ffff:7f00:1]',
  '[::FFFF:7F00:0001]',
  '0.0.0.0',
  '0',
  '[::1]',
  '[::]',
  '127.0.0.2',
  '127.255.255.254',
];
/** The ones that name 127.0.0.1 itself (a server on 127.0.0.1 only is reachable at these). */
const SAME_ADDRESS = SPELLINGS.filter((s) => !['[::1]', '[::]', '127.0.0.2', '127.255.255.254'].includes(s));

interface Recorder {
  port: number;
  seen: string[];
  close(): Promise<void>;
}
async function recorder(): Promise<Recorder> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end('reached');
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

/** One raw exchange with the sidecar as proxy; everything the agent got back. */
function raw(proxyPort: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = net.connect(proxyPort, '127.0.0.1', () => s.write(text));
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
    });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    // A fallback so a hung exchange fails the assertions instead of the suite's timeout.
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

function absolutePost(host: string, port: number, path: string, headers: Record<string, string>, body: unknown): string {
  const b = JSON.stringify(body);
  const h = Object.entries({ ...headers, host: `${host}:${port}`, 'content-length': String(Buffer.byteLength(b)), connection: 'close' })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `POST http://${host}:${port}${path} HTTP/1.1\r\n${h}\r\n${b}`;
}

let up: RecordedEverything;
let tg: TestSidecar;
let allowed: Recorder;
let denied: Recorder;
let proxyPort: number;
let session: Record<string, string>;
const mcpPath = () => new URL(up.url).pathname;

beforeAll(async () => {
  up = await startRecordedEverything();
  allowed = await recorder();
  denied = await recorder();
  // Broad allow; the two local servers are also written out (this host's addresses need that),
  // and the deny wins for one of them.
  tg = await startGuard(
    up,
    `
sources:
  - name: e
    url: \${UPSTREAM}
    expose: { mode: blocklist, tools: ["get-env"] }
defaultAction: forward
egress:
  allow: ["*", "127.0.0.1:${allowed.port}", "127.0.0.1:${denied.port}", "localhost:${denied.port}"]
  deny: ["0x7f.1:${denied.port}"]
`,
  );
  proxyPort = tg.sidecar.port;
  session = await openSession(tg.mcpUrl('e'));
}, 60_000);
afterAll(async () => {
  await tg?.close();
  await up?.close();
  await allowed?.close();
  await denied?.close();
});

const hiddenCall = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'get-env', arguments: {} } });

describe("absolute-form to any spelling of the source's address", () => {
  test.each(SPELLINGS)('%s: the hidden tool call is governed (a probe upstream, never get-env)', async (host) => {
    up.clear();
    const out = await raw(proxyPort, absolutePost(host, up.port, mcpPath(), session, hiddenCall(7)));
    expect(out).toMatch(/^HTTP\/1.1 200/);
    expect(up.everything()).not.toContain('get-env');
    expect(up.everything()).toContain('thoughtgate-probe-');
  });

  test.each(SPELLINGS)('%s: a visible call goes through the gates and reaches the server', async (host) => {
    up.clear();
    const out = await raw(
      proxyPort,
      absolutePost(host, up.port, mcpPath(), session, {
        jsonrpc: '2.0',
        id: 8,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: `via ${host}` } },
      }),
    );
    expect(out).toContain(`Echo: via ${host}`);
    expect(up.bodies()).toHaveLength(1);
  });

  test.each(SPELLINGS)('%s: another path on the source is refused and nothing is sent', async (host) => {
    up.clear();
    const out = await raw(proxyPort, absolutePost(host, up.port, '/other', session, hiddenCall(9)));
    expect(out).toMatch(/^HTTP\/1.1 403/);
    expect(up.received).toHaveLength(0);
  });

  test('percent-encoded and full-width spellings of the host are governed or refused, never relayed', async () => {
    for (const host of [
      '127%2e0%2e0%2e1',
      '%31%32%37.0.0.1',
      'local%68ost',
      '\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11',
      'xn--localhost',
      '127.0.0.1%00',
    ]) {
      up.clear();
      const out = await raw(proxyPort, absolutePost(host, up.port, mcpPath(), session, hiddenCall(13)));
      expect(out).toMatch(/^HTTP\/1.1 (200|400|403)/);
      expect(up.everything()).not.toContain('get-env');
      // The URL parser decodes these to the source's address: governed, so a probe went out.
      if (['127%2e0%2e0%2e1', '%31%32%37.0.0.1', 'local%68ost'].includes(host)) expect(up.everything()).toContain('thoughtgate-probe-');
    }
  });

  test('percent-encoded and dot-segment spellings of the MCP path are governed or refused, never relayed', async () => {
    for (const path of [`${mcpPath().replace('m', '%6d')}`, `/x/..${mcpPath()}`, `/.${mcpPath()}`, `${mcpPath()}/`, `${mcpPath().toUpperCase()}`]) {
      up.clear();
      const out = await raw(proxyPort, absolutePost('localhost', up.port, path, session, hiddenCall(10)));
      expect(out).toMatch(/^HTTP\/1.1 (200|403)/);
      expect(up.everything()).not.toContain('get-env');
    }
  });
});

test("absolute-form to the sidecar's own /mcp/<source> (a client whose NO_PROXY misses it) is governed", async () => {
  for (const host of ['127.0.0.1', 'localhost', '0x7f.1']) {
    up.clear();
    const out = await raw(proxyPort, absolutePost(host, proxyPort, '/mcp/e', session, hiddenCall(12)));
    expect(out).toMatch(/^HTTP\/1.1 200/);
    expect(up.everything()).not.toContain('get-env');
    expect(up.everything()).toContain('thoughtgate-probe-');
  }
});

describe("CONNECT to any spelling of the source's address", () => {
  test.each(SPELLINGS)('%s: refused; a request written into the would-be tunnel never arrives', async (host) => {
    up.clear();
    const inner = absolutePost(host, up.port, mcpPath(), session, hiddenCall(11)).replace(/^POST http:\/\/[^/]+/, 'POST ');
    const out = await raw(proxyPort, `CONNECT ${host}:${up.port} HTTP/1.1\r\nhost: ${host}:${up.port}\r\n\r\n${inner}`);
    expect(out).toMatch(/^HTTP\/1.1 403/);
    expect(up.received).toHaveLength(0);
  });
});

describe('a denied egress host stays denied under every spelling', () => {
  test.each(SPELLINGS)('%s: absolute-form and CONNECT to the denied server are refused', async (host) => {
    const a = await raw(proxyPort, `GET http://${host}:${denied.port}/secret HTTP/1.1\r\nhost: ${host}:${denied.port}\r\nconnection: close\r\n\r\n`);
    expect(a).toMatch(/^HTTP\/1.1 403/);
    const c = await raw(
      proxyPort,
      `CONNECT ${host}:${denied.port} HTTP/1.1\r\nhost: ${host}:${denied.port}\r\n\r\nGET /tunnelled HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    );
    expect(c).toMatch(/^HTTP\/1.1 403/);
    expect(denied.seen).toEqual([]);
  });

  // The control: the same spellings reach an allowed server, so the refusals above are the deny's.
  test.each(SAME_ADDRESS)('%s: the allowed server is reached by absolute-form and CONNECT', async (host) => {
    const before = allowed.seen.length;
    const a = await raw(proxyPort, `GET http://${host}:${allowed.port}/page HTTP/1.1\r\nhost: ${host}:${allowed.port}\r\nconnection: close\r\n\r\n`);
    expect(a).toMatch(/^HTTP\/1.1 200/);
    const c = await raw(
      proxyPort,
      `CONNECT ${host}:${allowed.port} HTTP/1.1\r\nhost: ${host}:${allowed.port}\r\n\r\nGET /tunnelled HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    );
    expect(c).toMatch(/^HTTP\/1.1 200 Connection Established/);
    expect(c).toContain('reached');
    expect(allowed.seen.length).toBe(before + 2);
  });

  test("a wildcard allow does not open this host's other ports", async () => {
    const other = await recorder();
    try {
      for (const host of ['127.0.0.1', 'localhost', '0x7f.1', '[::ffff:7f00:1]']) {
        expect(await raw(proxyPort, `GET http://${host}:${other.port}/ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)).toMatch(/^HTTP\/1.1 403/);
        expect(await raw(proxyPort, `CONNECT ${host}:${other.port} HTTP/1.1\r\nhost: x\r\n\r\n`)).toMatch(/^HTTP\/1.1 403/);
      }
      expect(other.seen).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

// Capture listeners against a hostile agent whose traffic is redirected to them: with a broad
// egress.allow ("*"), no Host and no SNI reaches the MCP server except through the gates; the
// sidecar's own ports are not a way around them; each listener holds the proxy port's limits.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { openSession, startRecordedEverything, type RecordedEverything } from './harness.js';
import { exchange as raw } from '../support/raw-socket.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

let up: RecordedEverything;
let tg: TestSidecar;
let stateDir: string;
let transparent: number;
let tlsPort: number;
let mcpPath: string;

const yaml = (extra = '') => `
sources:
  - name: e
    url: \${UPSTREAM}
    expose: { mode: blocklist, tools: ["get-env"] }
defaultAction: forward
egress:
  allow: ["*"]
${extra}
`;

async function captured(extra = ''): Promise<TestSidecar> {
  return startTestSidecar(
    yaml(extra),
    { UPSTREAM: up.url },
    // TLS destinations are checked and dialled at the MCP server's port: "443" is the source's.
    { capture: { transparentPort: 0, tlsPort: 0, stateFile: join(stateDir, 'state.json'), tlsUpstreamPort: up.port } },
  );
}

beforeAll(async () => {
  up = await startRecordedEverything();
  stateDir = mkdtempSync(join(tmpdir(), 'tg-adv-capture-'));
  tg = await captured();
  transparent = tg.sidecar.capture!.transparentPort;
  tlsPort = tg.sidecar.capture!.tlsPort!;
  mcpPath = new URL(up.url).pathname;
}, 60_000);
afterAll(async () => {
  await tg?.close();
  await up?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

const post = (host: string, path: string, session: Record<string, string>, body: unknown, extra = '') => {
  const text = JSON.stringify(body);
  const headers = Object.entries(session)
    .filter(([k]) => k !== 'content-type')
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\n${headers}${extra}content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`;
};
const hiddenCall = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'get-env', arguments: {} } };

describe('transparent listener with egress.allow "*"', () => {
  test('the source by any name is governed, never relayed as egress', async () => {
    const session = await openSession(tg.mcpUrl('e'));
    for (const host of [`127.0.0.1:${up.port}`, `localhost:${up.port}`, `0x7f.1:${up.port}`, `[::ffff:7f00:1]:${up.port}`]) {
      up.clear();
      const out = await raw(transparent, post(host, mcpPath, session, hiddenCall));
      expect([host, out.slice(0, 12)]).toEqual([host, 'HTTP/1.1 200']);
      expect(up.everything()).not.toContain('get-env');
    }
  });

  test("the sidecar's own proxy port named in Host: the request comes back to the gates", async () => {
    const session = await openSession(tg.mcpUrl('e'));
    up.clear();
    const out = await raw(transparent, post(`127.0.0.1:${tg.sidecar.port}`, '/mcp/e', session, hiddenCall));
    expect(out).toMatch(/^HTTP\/1.1 200/);
    expect(out).toContain('get-env not found');
    expect(up.everything()).not.toContain('get-env');
  });

  test('the sidecar\'s admin port and the transparent port itself are not egress, even under "*"', async () => {
    for (const port of [tg.sidecar.adminPort, transparent]) {
      const out = await raw(transparent, `GET /metrics HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`);
      expect([port, out.slice(0, 12)]).toEqual([port, 'HTTP/1.1 403']);
      expect(out).not.toContain('thoughtgate_sidecar_');
    }
  });

  test('a smuggled second request (Content-Length and Transfer-Encoding) is refused by the parser', async () => {
    up.clear();
    const inner = post(`127.0.0.1:${up.port}`, mcpPath, {}, hiddenCall);
    const out = await raw(
      transparent,
      `POST ${mcpPath} HTTP/1.1\r\nhost: 127.0.0.1:${up.port}\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${inner}`,
    );
    expect(out).toMatch(/^HTTP\/1.1 400/);
    expect(up.everything()).not.toContain('get-env');
  });
});

describe('TLS listener with egress.allow "*"', () => {
  test('SNI naming the source (its port is the one dialled) is refused: MCP in a tunnel is unseen', async () => {
    up.clear();
    const err = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', rejectUnauthorized: false });
      s.once('secureConnect', () => resolve('connected'));
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(err).toBe('ERR_SSL_TLSV1_ALERT_ACCESS_DENIED');
    expect(up.received).toHaveLength(0);
  });
});

describe('limits', () => {
  test('each capture listener closes connections beyond server.maxConnections at accept, and counts them', async () => {
    const g = await captured('server: { maxConnections: 2, headersTimeout: 5s }');
    try {
      for (const [listener, port] of [
        ['transparent', g.sidecar.capture!.transparentPort],
        ['tls', g.sidecar.capture!.tlsPort!],
      ] as const) {
        const held = await Promise.all(
          [0, 1].map(
            () =>
              new Promise<net.Socket>((resolve) => {
                const s = net.connect(port, '127.0.0.1', () => resolve(s));
                s.on('error', () => undefined);
              }),
          ),
        );
        await new Promise((r) => setTimeout(r, 100));
        const extra = await raw(port, 'GET / HTTP/1.1\r\nhost: localhost\r\n\r\n');
        expect([listener, extra]).toEqual([listener, '']);
        const text = await g.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_refused_total');
        expect(text).toContain(`listener="${listener}",reason="max_connections"} 1`);
        for (const s of held) s.destroy();
      }
    } finally {
      await g.close();
    }
  });

  test("the cap is the listener's, not each loopback server's: connections on 127.0.0.1 and ::1 count together", async () => {
    const g = await captured('server: { maxConnections: 2, headersTimeout: 5s }');
    const open = (port: number, host: string) =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, host, () => resolve(s));
        s.once('error', reject);
      });
    try {
      for (const [listener, port] of [
        ['transparent', g.sidecar.capture!.transparentPort],
        ['tls', g.sidecar.capture!.tlsPort!],
      ] as const) {
        // One on each address: each server is under its own cap of 2, the listener is at it.
        const held = [await open(port, '127.0.0.1'), await open(port, '::1')];
        await new Promise((r) => setTimeout(r, 100));
        const refusedBefore = await g.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_refused_total');
        const extra = await open(port, '::1');
        const closed = await new Promise<string>((resolve) => {
          let got = '';
          extra.on('data', (d) => (got += d.toString()));
          extra.on('close', () => resolve(got));
          extra.on('error', () => undefined);
          extra.write('GET / HTTP/1.1\r\nhost: localhost\r\n\r\n');
        });
        expect([listener, closed]).toEqual([listener, '']);
        const text = await g.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_refused_total');
        expect([listener, text]).not.toEqual([listener, refusedBefore]);
        expect(text).toContain(`listener="${listener}",reason="max_connections"}`);
        for (const s of held) s.destroy();
      }
    } finally {
      await g.close();
    }
  });
});

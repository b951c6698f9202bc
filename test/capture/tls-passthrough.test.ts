// The TLS passthrough listener of a captured pod, with a real node:tls client and server: an SNI
// name in egress.allow is tunnelled unopened (the client completes the handshake with the real
// server's certificate); a source's name or address, a name not allowed, no SNI, an IP address as
// SNI, a slow, oversize or non-TLS opening are refused by closing the connection.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { issueCa, issueServing } from '../../webhook/x509.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

const DAY = 24 * 3600 * 1000;

let ca: string;
let upstream: tls.Server;
let upstreamPort: number;
/** SNI names the real server saw on completed handshakes. */
const handshakes: string[] = [];
let tg: TestSidecar;
let tlsPort: number;
let stateDir: string;

/** Config: what egress allows, and the sources there are (both decide a tunnel). */
const config = (allow: string[], sources = '[]') => `
sources: ${sources}
defaultAction: forward
server:
  headersTimeout: 1s
egress:
  allow: ${JSON.stringify(allow)}
`;

async function useConfig(yaml: string): Promise<void> {
  const before = tg.sidecar.snapshot()?.hash;
  tg.writeConfig(yaml);
  await tg.waitFor(() => tg.sidecar.snapshot()?.hash !== before, 'the new config');
}

beforeAll(async () => {
  const authority = await issueCa({ now: new Date(), validityMs: DAY });
  const serving = await issueServing({ ca: authority, sans: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, now: new Date(), validityMs: DAY });
  ca = authority.cert;
  upstream = tls.createServer({ cert: serving.cert, key: serving.key }, (s) => {
    handshakes.push((s as tls.TLSSocket & { servername?: string | false }).servername || '-');
    s.on('error', () => undefined);
    // The server ends only when the client answers: a tunnel stays open until one side closes.
    s.write('hello over tls\n');
    s.once('data', () => s.end());
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as AddressInfo).port;
  stateDir = mkdtempSync(join(tmpdir(), 'tg-capture-tls-'));
  tg = await startTestSidecar(
    config([`localhost:${upstreamPort}`]),
    {},
    { capture: { transparentPort: 0, tlsPort: 0, stateFile: join(stateDir, 'state.json'), tlsUpstreamPort: upstreamPort } },
  );
  tlsPort = tg.sidecar.capture!.tlsPort!;
}, 60_000);
afterAll(async () => {
  await tg?.close();
  upstream?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** A TLS client at the listener (as the agent's connection to <name>:443 arrives after REDIRECT). */
function agentTls(
  o: tls.ConnectionOptions,
): Promise<{ ok: true; text: string; cert: tls.PeerCertificate; authorized: boolean } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca, ...o });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
      if (text.endsWith('\n')) s.write('bye');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, error: e.code ?? e.message }));
    s.once('end', () => resolve({ ok: true, text, cert: s.getPeerCertificate(), authorized: s.authorized }));
    s.once('close', () => resolve({ ok: false, error: 'closed' }));
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

/** Raw bytes at the listener: what came back and how long until the sidecar closed. */
function rawTls(bytes: Buffer | Buffer[], gapMs = 0, limitMs = 6000): Promise<{ out: Buffer; ms: number; closedBySidecar: boolean }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const parts = Array.isArray(bytes) ? bytes : [bytes];
    const chunks: Buffer[] = [];
    let timedOut = false;
    const s = net.connect(tlsPort, '127.0.0.1', async () => {
      for (const p of parts) {
        if (s.destroyed) break;
        s.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ out: Buffer.concat(chunks), ms: Date.now() - t0, closedBySidecar: !timedOut }));
    setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, limitMs).unref();
  });
}

/** The first flight node:tls sends for this server name (captured from a local socket). */
async function clientHello(servername?: string): Promise<Buffer> {
  const sink = net.createServer();
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) =>
    sink.once('connection', (s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      });
      s.on('error', () => undefined);
    }),
  );
  const c = tls.connect({ host: '127.0.0.1', port: (sink.address() as AddressInfo).port, ...(servername ? { servername } : {}) });
  c.on('error', () => undefined);
  const hello = await got;
  c.destroy();
  sink.close();
  return hello;
}

const refusedCount = async (reason: string) => {
  const text = await tg.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_refused_total');
  return Number(new RegExp(`listener="tls",reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
};

describe('TLS passthrough', () => {
  test("an SNI name in egress.allow is tunnelled: the handshake completes with the real server's certificate", async () => {
    const r = await agentTls({ servername: 'localhost' });
    expect(r).toMatchObject({ ok: true, text: 'hello over tls\n', authorized: true });
    if (r.ok) expect(r.cert.subjectaltname).toContain('DNS:localhost');
    expect(handshakes.at(-1)).toBe('localhost');
    const line = tg.logs().find((l) => l['http'] === 'TLS' && l['status'] === 200);
    expect(line).toMatchObject({ listener: 'tls', target: `localhost:${upstreamPort}`, decision: 'forward', gate: 'egress' });
  });

  test('a ClientHello split over several TCP reads is reassembled and replayed intact', async () => {
    const raw = net.connect(tlsPort, '127.0.0.1');
    // Every write of the TLS stack leaves in 40-byte pieces, a few milliseconds apart.
    const trickle = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        void (async () => {
          for (let i = 0; i < chunk.length; i += 40) {
            raw.write(chunk.subarray(i, i + 40));
            await new Promise((r) => setTimeout(r, 3));
          }
          cb();
        })();
      },
    });
    raw.on('data', (d: Buffer) => trickle.push(d));
    raw.on('end', () => trickle.push(null));
    raw.on('error', () => trickle.destroy());
    const text = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ socket: trickle, servername: 'LocalHost', ca });
      let out = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        out += d;
        if (out.endsWith('\n')) s.write('bye');
      });
      s.once('end', () => resolve(out));
      s.once('error', reject);
    });
    raw.destroy();
    expect(text).toBe('hello over tls\n');
  });

  test('the SNI of a source is refused, by name or by address, whatever egress.allow says', async () => {
    for (const url of [`https://localhost:${upstreamPort}/mcp`, `https://127.0.0.1:${upstreamPort}/mcp`]) {
      await useConfig(config([`localhost:${upstreamPort}`, `127.0.0.1:${upstreamPort}`, '*'], `[{ name: s, url: "${url}" }]`));
      const seen = handshakes.length;
      const before = await refusedCount('denied');
      const r = await agentTls({ servername: 'localhost' });
      expect([url, r]).toEqual([url, { ok: false, error: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' }]);
      expect(handshakes.length).toBe(seen);
      expect(await refusedCount('denied')).toBe(before + 1);
      const line = tg.logs().findLast((l) => l['http'] === 'TLS');
      expect(line).toMatchObject({ status: 403, decision: 'deny', reason: expect.stringContaining('is an MCP source') });
    }
  });

  test('an SNI name not in egress.allow is refused', async () => {
    await useConfig(config(['example.com']));
    const seen = handshakes.length;
    expect(await agentTls({ servername: 'localhost' })).toEqual({ ok: false, error: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' });
    expect(tg.logs().findLast((l) => l['http'] === 'TLS')).toMatchObject({ status: 403, reason: expect.stringContaining('is not allowed') });
    // A name that does not resolve is refused too (and the connection closed).
    expect((await agentTls({ servername: 'nowhere.invalid' })).ok).toBe(false);
    expect(handshakes.length).toBe(seen);
    await useConfig(config([`localhost:${upstreamPort}`]));
  });

  test('no SNI is refused (an IP-address connection sends none)', async () => {
    const seen = handshakes.length;
    const before = await refusedCount('no_sni');
    expect(await agentTls({})).toEqual({ ok: false, error: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' });
    expect(await refusedCount('no_sni')).toBe(before + 1);
    expect(handshakes.length).toBe(seen);
  });

  test('an IP address as SNI is refused (RFC 6066 forbids it; only names are checked)', async () => {
    const hello = await clientHello('abcdefghi');
    const at = hello.indexOf('abcdefghi');
    for (const ip of ['127.0.0.1', '0x7f.0.01', '2130706433']) {
      const mutated = Buffer.concat([hello.subarray(0, at), Buffer.from(ip.padEnd(9, '0').slice(0, 9)), hello.subarray(at + 9)]);
      const before = await refusedCount('ip_literal');
      const r = await rawTls(mutated);
      expect(r.closedBySidecar).toBe(true);
      expect(await refusedCount('ip_literal')).toBe(before + 1);
    }
  });

  test('a ClientHello slower than server.headersTimeout is closed within the bound', async () => {
    const hello = await clientHello('localhost');
    const before = await refusedCount('timeout');
    const r = await rawTls([hello.subarray(0, 20), hello.subarray(20, 40)], 200);
    expect(r.closedBySidecar).toBe(true);
    expect(r.ms).toBeLessThan(3000);
    expect(r.out.length).toBe(0);
    expect(await refusedCount('timeout')).toBe(before + 1);
  });

  test('an oversize ClientHello is closed as soon as it is past the bound', async () => {
    const before = await refusedCount('too_large');
    // A handshake header that promises 64 KiB.
    const promise = await rawTls(Buffer.from([22, 3, 1, 0, 4, 1, 0, 0xff, 0xff]));
    expect(promise.closedBySidecar).toBe(true);
    expect(promise.ms).toBeLessThan(1000);
    expect(await refusedCount('too_large')).toBe(before + 1);
    // A message just under the bound in 1 KiB records: with their headers, the bytes pass it first.
    const first = Buffer.concat([Buffer.from([22, 3, 1, 4, 0, 1, 0, 0x3f, 0xfc]), Buffer.alloc(1020)]);
    const records = [first, ...Array.from({ length: 16 }, () => Buffer.concat([Buffer.from([22, 3, 1, 4, 0]), Buffer.alloc(1024)]))];
    const drip = await rawTls(records, 5);
    expect(drip.closedBySidecar).toBe(true);
    expect(drip.ms).toBeLessThan(1000);
    expect(await refusedCount('too_large')).toBe(before + 2);
  });

  test('non-TLS bytes are closed, with nothing written back', async () => {
    const before = await refusedCount('not_tls');
    for (const bytes of ['GET / HTTP/1.1\r\nhost: localhost\r\n\r\n', 'SSH-2.0-OpenSSH_9.6\r\n', '\x80\x2e\x01\x03\x01']) {
      const r = await rawTls(Buffer.from(bytes, 'latin1'));
      expect([bytes, r.closedBySidecar, r.out.length]).toEqual([bytes, true, 0]);
    }
    expect(await refusedCount('not_tls')).toBe(before + 3);
  });

  test('connections are counted; the listener also answers on ::1', async () => {
    const r = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '::1', port: tlsPort, servername: 'localhost', ca });
      s.once('secureConnect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    expect(r).toBe(true);
    const text = await tg.sidecar.metrics.registry.getSingleMetricAsString('thoughtgate_sidecar_capture_connections_total');
    expect(Number(/listener="tls"\} (\d+)/.exec(text)?.[1])).toBeGreaterThan(5);
  });

  test('closing the sidecar ends open tunnels', async () => {
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('secureConnect', r));
    // Neither end closes the tunnel (the server waits for the client's answer): the drain must.
    const closed = new Promise<string>((r) => s.once('close', () => r('closed')));
    await tg.close();
    expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 3000).unref())])).toBe('closed');
    s.destroy();
    tg = undefined as unknown as TestSidecar;
  });
});

// The ClientHello parser against ClientHellos node:tls itself sends, re-cut into records and reads
// every way, and against arbitrary and mutated bytes: it never throws and never reads out of bounds.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { CLIENT_HELLO_LIMIT, readClientHello, type SniResult } from './sni.js';

/** The first bytes node:tls sends to a server: a real ClientHello (the server hangs up after it). */
async function captureHello(o: tls.ConnectionOptions): Promise<Buffer> {
  let got = Buffer.alloc(0);
  const done = new Promise<Buffer>((resolve) => {
    server.once('connection', (s: net.Socket) => {
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (readClientHello(got).kind !== 'incomplete') {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', () => undefined);
    });
  });
  const c = tls.connect({ host: '127.0.0.1', port, ...o });
  c.on('error', () => undefined);
  const out = await done;
  c.destroy();
  return out;
}

let server: net.Server;
let port: number;
beforeAll(async () => {
  server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** The handshake bytes of a record stream (the record headers removed). */
function handshakeOf(records: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < records.length; ) {
    const len = records.readUInt16BE(at + 3);
    parts.push(records.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return Buffer.concat(parts);
}

/** The handshake bytes cut into records of the given sizes (cycled). */
function recut(hs: Buffer, sizes: number[]): Buffer {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < hs.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, hs.length - at);
    out.push(Buffer.from([22, 3, 1, n >> 8, n & 0xff]), hs.subarray(at, at + n));
    at += n;
  }
  return Buffer.concat(out);
}

/** Feeds the bytes in the given read sizes, as the listener does: parse again only once `need` bytes are in. */
function feed(bytes: Buffer, reads: number[]): { result: SniResult; parses: number } {
  let have = 0;
  let need = 0;
  let parses = 0;
  for (let i = 0; have < bytes.length; i++) {
    have = Math.min(bytes.length, have + reads[i % reads.length]!);
    if (have < need) continue;
    parses++;
    const r = readClientHello(bytes.subarray(0, have));
    if (r.kind !== 'incomplete') return { result: r, parses };
    expect(r.need).toBeGreaterThan(have);
    need = r.need;
  }
  return { result: readClientHello(bytes), parses };
}

const hostName = fc.domain().filter((d) => d.length <= 253);

describe('readClientHello', () => {
  test('reads the server name of ClientHellos node:tls sends (TLS 1.2 and 1.3, ALPN), whatever its case', async () => {
    await fc.assert(
      fc.asyncProperty(hostName, fc.boolean(), fc.boolean(), async (name, tls12, alpn) => {
        const hello = await captureHello({
          servername: name,
          ...(tls12 ? { maxVersion: 'TLSv1.2' as const } : {}),
          ...(alpn ? { ALPNProtocols: ['h2', 'http/1.1'] } : {}),
        });
        expect(readClientHello(hello)).toEqual({ kind: 'sni', host: name.toLowerCase() });
      }),
      { numRuns: 40 },
    );
  });

  test('the same ClientHello cut into any records and TCP reads gives the same name', async () => {
    const hs = handshakeOf(await captureHello({ servername: 'Api.Example.COM' }));
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
        (sizes, reads) => {
          const { result } = feed(recut(hs, sizes), reads);
          expect(result).toEqual({ kind: 'sni', host: 'api.example.com' });
        },
      ),
      { numRuns: 300 },
    );
  });

  test('one byte per record and per read: parsed in a bounded number of passes', async () => {
    const hs = handshakeOf(await captureHello({ servername: 'a.example' }));
    const { result, parses } = feed(recut(hs, [1]), [1]);
    expect(result).toEqual({ kind: 'sni', host: 'a.example' });
    // `need` skips re-parsing within a record: one pass per record header and body, not per byte.
    expect(parses).toBeLessThanOrEqual(2 * hs.length + 2);
  });

  test('every proper prefix of a ClientHello is incomplete, never an answer', async () => {
    const hello = await captureHello({ servername: 'prefix.example' });
    for (let n = 0; n < hello.length; n++) expect(readClientHello(hello.subarray(0, n)).kind).toBe('incomplete');
  });

  test('a ClientHello without server_name (an IP-address connection) is no_sni', async () => {
    const hello = await captureHello({});
    expect(readClientHello(hello)).toMatchObject({ kind: 'error', reason: 'no_sni' });
  });

  test('arbitrary bytes: never throws, and an incomplete answer asks for more than it has, within the limit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        const r = readClientHello(bytes);
        if (r.kind === 'incomplete') {
          expect(r.need).toBeGreaterThan(bytes.length);
          expect(r.need).toBeLessThanOrEqual(CLIENT_HELLO_LIMIT);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('arbitrary bytes behind a valid record header: never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 0, max: 0xffff }), (body, len) => {
        const bytes = Buffer.concat([Buffer.from([22, 3, 1, len >> 8, len & 0xff, 1, 0, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
        readClientHello(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  test('mutated real ClientHellos: never throws; a name it returns is a DNS host name', async () => {
    const hello = await captureHello({ servername: 'mutate.example', ALPNProtocols: ['http/1.1'] });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(), (flips, cut) => {
        const b = Buffer.from(hello);
        for (const [i, v] of flips) b[i % b.length] = v;
        const r = readClientHello(b.subarray(0, b.length - (cut % 4)));
        if (r.kind === 'sni') expect(r.host).toMatch(/^[a-z0-9_.-]+$/);
      }),
      { numRuns: 3000 },
    );
  });

  test('reads nothing past the buffer it is given (a subarray of a larger buffer)', async () => {
    const hello = await captureHello({ servername: 'bounds.example' });
    // The bytes after the view are a second, different ClientHello: reading them would change the answer.
    const other = await captureHello({ servername: 'other.example' });
    const big = Buffer.concat([hello, other]);
    for (let n = 0; n < hello.length; n++) expect(readClientHello(big.subarray(0, n)).kind).toBe('incomplete');
  });

  test('refuses what is not a TLS handshake, or too large, or malformed', () => {
    expect(readClientHello(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))).toMatchObject({ kind: 'error', reason: 'not_tls' });
    expect(readClientHello(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'))).toMatchObject({ kind: 'error', reason: 'not_tls' });
    // A handshake header that promises more than the limit.
    expect(readClientHello(Buffer.from([22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00]))).toMatchObject({ kind: 'error', reason: 'too_large' });
    // Records that keep coming without completing the message: too large once past the limit.
    const drip = recut(Buffer.concat([Buffer.from([1, 0, 0x3f, 0xff]), Buffer.alloc(CLIENT_HELLO_LIMIT)]), [1000]);
    expect(readClientHello(drip)).toMatchObject({ kind: 'error', reason: 'too_large' });
    // An alert record where the rest of the ClientHello should be.
    expect(readClientHello(Buffer.from([22, 3, 1, 0, 4, 1, 0, 0, 80, 21, 3, 3, 0, 2, 2, 40]))).toMatchObject({ kind: 'error', reason: 'malformed' });
    // A ServerHello is not a ClientHello.
    expect(readClientHello(Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]))).toMatchObject({ kind: 'error', reason: 'malformed' });
    // A zero-length record.
    expect(readClientHello(Buffer.from([22, 3, 1, 0, 0]))).toMatchObject({ kind: 'error', reason: 'malformed' });
  });

  test('a host_name that is not a DNS name (an IP literal is one; the listener refuses those) is malformed when it has odd bytes', async () => {
    const hs = handshakeOf(await captureHello({ servername: 'abcd.example' }));
    const at = hs.indexOf('abcd.example');
    for (const bad of ['ab d.example', 'ab/d.example', 'ab\0d.example', 'abcd.exampl.', '.bcd.example']) {
      const mutated = Buffer.from(hs);
      mutated.write(bad, at, 'latin1');
      expect(readClientHello(recut(mutated, [512]))).toMatchObject({ kind: 'error', reason: 'malformed' });
    }
  });
});

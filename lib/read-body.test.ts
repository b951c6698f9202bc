import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { request } from 'undici';
import { BodyError, decodeUtf8, readBodyBytes, readBodyText, type ReadBodyOptions } from './read-body.js';

const reason = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof BodyError ? e.reason : `other: ${String(e)}`),
  );

describe('readBodyBytes / readBodyText on Node streams', () => {
  test('the whole body, any chunking', async () => {
    expect((await readBodyBytes(Readable.from([Buffer.from('ab'), Buffer.from('c')]), { limitBytes: 3 })).toString()).toBe('abc');
    expect(await readBodyText(Readable.from([Buffer.from([0xc3]), Buffer.from([0xa9])]), { limitBytes: 10 })).toBe('é');
    expect((await readBodyBytes(Readable.from([]), { limitBytes: 0 })).length).toBe(0);
  });

  test('one byte over the limit fails with too-large naming the limit, and destroys the stream', async () => {
    const s = Readable.from([Buffer.from('ab'), Buffer.from('cd')]);
    const err = await readBodyBytes(s, { limitBytes: 3, limitName: 'limits.maxBodyBytes', what: 'request body' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BodyError);
    expect((err as BodyError).reason).toBe('too-large');
    expect((err as BodyError).limitBytes).toBe(3);
    expect((err as BodyError).message).toBe('request body is over 3 bytes, over the limit of limits.maxBodyBytes (3 bytes)');
    expect(s.destroyed).toBe(true);
  });

  test('invalid UTF-8 is an error, never replaced', async () => {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      expect(await reason(readBodyText(Readable.from([Buffer.from(bad)]), { limitBytes: 10 }))).toBe('invalid-utf8');
    }
    expect(() => decodeUtf8(Buffer.from([0x7b, 0xff, 0x7d]), 'AdmissionReview')).toThrow('AdmissionReview is not valid UTF-8');
    // A BOM is kept: the JSON parser refuses it, as it would the raw bytes.
    expect(decodeUtf8(Buffer.from([0xef, 0xbb, 0xbf, 0x31]))).toBe('\ufeff1');
  });

  test('a stream error is aborted, with the cause', async () => {
    const s = new PassThrough();
    const p = readBodyBytes(s, { limitBytes: 10 }).catch((e: unknown) => e);
    s.write('x');
    s.destroy(new Error('socket hang up'));
    const err = (await p) as BodyError;
    expect(err.reason).toBe('aborted');
    expect((err.cause as Error).message).toBe('socket hang up');
  });

  test('timeout, signal and budget', async () => {
    expect(await reason(readBodyBytes(new PassThrough(), { limitBytes: 10, timeoutMs: 20 }))).toBe('timeout');
    const ac = new AbortController();
    const p = reason(readBodyBytes(new PassThrough(), { limitBytes: 10, signal: ac.signal }));
    ac.abort();
    expect(await p).toBe('aborted');
    let budget = 3;
    const grow = (n: number) => {
      budget -= n;
      return budget >= 0;
    };
    expect(await reason(readBodyBytes(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { limitBytes: 10, grow }))).toBe('over-budget');
  });
});

describe('on a web ReadableStream (fetch)', () => {
  const web = (parts: number[][]) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(new Uint8Array(p));
        c.close();
      },
    });

  test('reads, bounds, decodes strictly', async () => {
    expect(await readBodyText(web([[0x61], [0x62]]), { limitBytes: 2 })).toBe('ab');
    expect(await reason(readBodyText(web([[0x61], [0x62, 0x63]]), { limitBytes: 2 }))).toBe('too-large');
    expect(await reason(readBodyText(web([[0xe2, 0x82]]), { limitBytes: 9 }))).toBe('invalid-utf8');
  });

  test('a stalled stream times out', async () => {
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array([1]));
      },
    });
    expect(await reason(readBodyBytes(stalled, { limitBytes: 9, timeoutMs: 20 }))).toBe('timeout');
  });
});

describe('over real sockets', () => {
  let server: http.Server;
  let port = 0;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {};
  beforeAll(async () => {
    server = http.createServer((req, res) => handler(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** The server reads the request with `o` and answers with what happened. */
  const serverReads = (o: Omit<ReadBodyOptions, 'onStop'>) => {
    handler = (req, res) => {
      readBodyText(req, { ...o, onStop: 'pause' }).then(
        (text) => res.end(`ok ${text}`),
        (e: BodyError) => {
          res.writeHead(e.reason === 'too-large' ? 413 : 400, { connection: 'close' });
          res.end(e.reason);
        },
      );
    };
  };

  test('an IncomingMessage: a declared length over the limit is refused before reading, and the answer still gets out', async () => {
    serverReads({ limitBytes: 5 });
    const small = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'hello' });
    expect([small.statusCode, await small.body.text()]).toEqual([200, 'ok hello']);
    const big = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x'.repeat(100_000) });
    expect([big.statusCode, await big.body.text()]).toEqual([413, 'too-large']);
  });

  test('an IncomingMessage without a length (chunked) is bounded as it arrives', async () => {
    serverReads({ limitBytes: 5 });
    const big = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body: Readable.from([Buffer.from('abc'), Buffer.from('def')]) });
    expect([big.statusCode, await big.body.text()]).toEqual([413, 'too-large']);
    const bad = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body: Readable.from([Buffer.from([0xff])]) });
    expect([bad.statusCode, await bad.body.text()]).toEqual([400, 'invalid-utf8']);
  });

  test('an undici response body: too large by its declared length or as it arrives', async () => {
    handler = (_req, res) => res.end('y'.repeat(1000));
    const r = await request(`http://127.0.0.1:${port}/`);
    expect(await reason(readBodyText(r.body, { limitBytes: 999, declaredLength: r.headers['content-length'] as string }))).toBe('too-large');
    handler = (_req, res) => {
      res.write('y'.repeat(600));
      setTimeout(() => res.end('y'.repeat(600)), 10);
    };
    const chunked = await request(`http://127.0.0.1:${port}/`);
    expect(await reason(readBodyText(chunked.body, { limitBytes: 1000 }))).toBe('too-large');
    const ok = await request(`http://127.0.0.1:${port}/`);
    expect((await readBodyText(ok.body, { limitBytes: 1200 })).length).toBe(1200);
  });
});

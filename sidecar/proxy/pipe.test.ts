// Relaying a body to a real HTTP client: backpressure from a client that does not read (the source
// is not drained into memory), a stream cut midway on either side, events larger than a chunk
// through the SSE rewriter, and the young-generation collections every RECLAIM_BYTES.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { Readable } from 'node:stream';
import { createSseRewriter } from '../sse.js';
import { pipeTo } from './pipe.js';
import { exposedGc, reclaimEvery } from './reclaim.js';

const CHUNK = 64 * 1024;

/** A source that makes 64 KiB chunks on demand, up to `total` bytes, counting what was asked of it. */
function source(total: number, fill = 'x'): Readable & { produced: number } {
  const chunk = Buffer.alloc(CHUNK, fill);
  const s = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (s.produced >= total) return void this.push(null);
      s.produced += CHUNK;
      this.push(chunk);
    },
  }) as Readable & { produced: number };
  s.produced = 0;
  return s;
}

/** A server whose one response is relayed from `body` (through `through`); the outcome of pipeTo is kept. */
async function serve(make: () => { body: Readable; through?: ReturnType<typeof createSseRewriter> }) {
  let done: (v: unknown) => void = () => undefined;
  const outcome = new Promise<unknown>((r) => (done = r));
  const server = http.createServer((_req, res) => {
    const { body, through } = make();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    pipeTo(body, res, through).then(
      () => done('finished'),
      (err: unknown) => done(err),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, outcome: () => outcome };
}

/** A raw client that sends one GET and reads nothing until told. */
function rawClient(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      s.pause();
      resolve(s);
    });
  });
}

/** Polls `read` until it stops changing over three looks: the relay has stopped asking for more. */
async function settled(read: () => number): Promise<number> {
  let last = -1;
  let same = 0;
  while (same < 3) {
    await new Promise((r) => setTimeout(r, 100));
    const now = read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

describe('pipeTo', () => {
  test('a client that does not read stops the source: bounded, not 1 GiB in memory; reading resumes it to the end', async () => {
    const total = 1024 * 1024 * 1024;
    let src: ReturnType<typeof source> | null = null;
    const s = await serve(() => {
      src = source(total);
      return { body: src };
    });
    const client = await rawClient(s.port);
    try {
      const stalled = await settled(() => src?.produced ?? 0);
      // What is in flight: the kernel's socket buffers on both sides and a few chunks of ours.
      expect(stalled).toBeGreaterThan(0);
      expect(stalled).toBeLessThan(64 * 1024 * 1024);
      // Reading resumes the flow ('drain'); the whole body arrives.
      let received = 0;
      client.on('data', (c: Buffer) => (received += c.length));
      client.resume();
      await expect(s.outcome()).resolves.toBe('finished');
      expect(src!.produced).toBe(total);
      await settled(() => received);
      expect(received).toBeGreaterThan(total);
    } finally {
      client.destroy();
      s.server.close();
    }
  }, 60_000);

  test('the upstream failing midway rejects with its error and the client connection is not left open', async () => {
    const broken = new Error('upstream reset');
    const s = await serve(() => {
      const src = source(1024 * 1024 * 1024);
      setTimeout(() => src.destroy(broken), 50);
      return { body: src };
    });
    const client = await rawClient(s.port);
    client.resume();
    try {
      await expect(s.outcome()).resolves.toBe(broken);
    } finally {
      client.destroy();
      s.server.close();
    }
  });

  test('the client going away midway rejects with CLIENT_CLOSED and destroys the source', async () => {
    let src: ReturnType<typeof source> | null = null;
    const s = await serve(() => {
      src = source(1024 * 1024 * 1024);
      return { body: src };
    });
    const client = await rawClient(s.port);
    try {
      await settled(() => src?.produced ?? 0);
      client.destroy();
      const err = (await s.outcome()) as Error & { code?: string };
      expect(err.code).toBe('CLIENT_CLOSED');
      expect(src!.destroyed).toBe(true);
    } finally {
      s.server.close();
    }
  });

  test('events larger than a chunk pass the SSE rewriter whole and in order, with a slow client', async () => {
    const events = Array.from({ length: 40 }, (_, i) => `id: ${i}\ndata: ${String(i).repeat(150_000)}\n\n`);
    const text = events.join('');
    const s = await serve(() => {
      const bytes = Buffer.from(text);
      let at = 0;
      // Odd chunk sizes so events and even lines are split across chunks.
      const body = new Readable({
        read() {
          if (at >= bytes.length) return void this.push(null);
          const from = at;
          at += 40_001;
          this.push(bytes.subarray(from, at));
        },
      });
      return { body, through: createSseRewriter({ rewrite: () => null, maxEventBytes: 1024 * 1024 }) };
    });
    const client = await rawClient(s.port);
    try {
      const chunks: Buffer[] = [];
      client.on('data', (c: Buffer) => chunks.push(c));
      // Slow: the client reads in bursts, so the rewriter's output meets backpressure.
      for (let i = 0; i < 5; i++) {
        client.resume();
        await new Promise((r) => setTimeout(r, 20));
        client.pause();
        await new Promise((r) => setTimeout(r, 20));
      }
      client.resume();
      await expect(s.outcome()).resolves.toBe('finished');
      await settled(() => chunks.reduce((n, c) => n + c.length, 0));
      const received = Buffer.concat(chunks).toString();
      const body = received.slice(received.indexOf('\r\n\r\n') + 4);
      // Chunked framing around the body: take the events back out of it.
      const unframed = body.replace(/\r\n[0-9a-f]+\r\n/g, '').replace(/^[0-9a-f]+\r\n/, '');
      expect(unframed.startsWith(text)).toBe(true);
    } finally {
      client.destroy();
      s.server.close();
    }
  }, 30_000);
});

describe('reclaim', () => {
  test('collects once per `every` bytes counted, however they are split; small reads are not counted', () => {
    let collected = 0;
    const count = reclaimEvery(1000, 100, () => collected++);
    for (let i = 0; i < 9; i++) count(100);
    expect(collected).toBe(0);
    for (let i = 0; i < 50; i++) count(99);
    expect(collected).toBe(0);
    count(100);
    expect(collected).toBe(1);
    count(2500);
    expect(collected).toBe(2);
    count(999);
    expect(collected).toBe(2);
  });

  test("V8's gc is available to the relay and runs a young collection", () => {
    const gc = exposedGc();
    expect(typeof gc).toBe('function');
    expect(() => gc!({ type: 'minor' })).not.toThrow();
  });
});

import type { Transform } from 'node:stream';
import { SseEventTooLargeError, SseParser, createSseRewriter, formatSseEvent, type SseEvent } from './sse.js';

type Fields = Omit<SseEvent, 'raw'>;
const fields = (e: SseEvent): Fields => ({ data: e.data, event: e.event, id: e.id, retry: e.retry });
const ev = (f: Partial<Fields>): Fields => ({ data: null, event: null, id: null, retry: null, ...f });

const TOOLS_RESULT = '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"ünï"},{"name":"secret_tool"}]}}';

// A stream mixing every line ending, comments, a priming event, multibyte text and a stray blank line.
const EVENTS: [string, Fields][] = [
  [': keep-alive\n\n', ev({})],
  ['id: prime-1\ndata:\n\n', ev({ id: 'prime-1', data: '' })],
  ['retry: 1500\r\n\r\n', ev({ retry: 1500 })],
  [
    'event: message\r\nid: 7\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"message":"é中😀"}}\r\n\r\n',
    ev({ event: 'message', id: '7', data: '{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"message":"é中😀"}}' }),
  ],
  ['data: line one\rdata:  two spaces\rdata\r\r', ev({ data: 'line one\n two spaces\n' })],
  [`:comment\nunknown: field\nevent: message\ndata:${TOOLS_RESULT}\n\n`, ev({ event: 'message', data: TOOLS_RESULT })],
  ['\n', ev({})],
  ['event: message\ndata: tail 😀\r\n\n', ev({ event: 'message', data: 'tail 😀' })],
];
const INPUT = EVENTS.map(([raw]) => raw).join('');
const INPUT_BYTES = Buffer.from(INPUT, 'utf8');

function parseAll(chunks: string[]): SseEvent[] {
  const p = new SseParser();
  const out: SseEvent[] = [];
  for (const c of chunks) out.push(...p.push(c));
  const last = p.end();
  if (last) out.push(last);
  return out;
}

async function run(chunks: (Buffer | string)[], rewrite: (e: SseEvent) => string | null = () => null, maxEventBytes = 1 << 20): Promise<Buffer> {
  const t = createSseRewriter({ rewrite, maxEventBytes });
  const out: Buffer[] = [];
  t.on('data', (b: Buffer) => out.push(b));
  const done = new Promise<void>((resolve, reject) => {
    t.on('end', resolve);
    t.on('error', reject);
  });
  for (const c of chunks) t.write(c);
  t.end();
  await done;
  return Buffer.concat(out);
}

describe('SseParser', () => {
  test('parses the fixed stream in one chunk', () => {
    const got = parseAll([INPUT]);
    expect(got.map((e) => e.raw)).toEqual(EVENTS.map(([raw]) => raw));
    expect(got.map(fields)).toEqual(EVENTS.map(([, f]) => f));
  });

  test('split at every position: same events, and the raws concatenate to the input', () => {
    const want = EVENTS.map(([, f]) => f);
    for (let i = 0; i <= INPUT.length; i++) {
      const got = parseAll([INPUT.slice(0, i), INPUT.slice(i)]);
      expect(got.map(fields)).toEqual(want);
      expect(got.map((e) => e.raw).join('')).toBe(INPUT);
    }
  });

  test('split at every pair of positions', () => {
    const want = JSON.stringify(EVENTS.map(([, f]) => f));
    let runs = 0;
    for (let i = 0; i <= INPUT.length; i++) {
      for (let j = i; j <= INPUT.length; j++) {
        const got = parseAll([INPUT.slice(0, i), INPUT.slice(i, j), INPUT.slice(j)]);
        // (no expect per iteration: ~50k runs)
        if (JSON.stringify(got.map(fields)) !== want || got.map((e) => e.raw).join('') !== INPUT) {
          throw new Error(`split at ${i},${j} differs`);
        }
        runs++;
      }
    }
    expect(runs).toBe(((INPUT.length + 1) * (INPUT.length + 2)) / 2);
  });

  test('one character at a time', () => {
    const got = parseAll([...INPUT].flatMap((ch) => ch.split(''))); // even splitting surrogate pairs
    expect(got.map(fields)).toEqual(EVENTS.map(([, f]) => f));
    expect(got.map((e) => e.raw).join('')).toBe(INPUT);
  });

  test('a CRLF split across chunks is one line break, not an extra blank line', () => {
    const p = new SseParser();
    expect(p.push('data: a\r').map(fields)).toEqual([]);
    expect(p.push('\n\r').map((e) => [e.raw, e.data])).toEqual([['data: a\r\n\r', 'a']]);
    // The LF after the dispatching CR is consumed and travels with the next event's raw.
    const next = p.push('\ndata: b\n\n');
    expect(next.map((e) => [e.raw, e.data])).toEqual([['\ndata: b\n\n', 'b']]);
    expect(p.end()).toBeNull();
  });

  test('a CR at the end of a chunk followed by something else is a line break on its own', () => {
    const p = new SseParser();
    expect(p.push('data: a\r')).toEqual([]);
    expect(p.push('\rdata: b\n\n').map((e) => [e.raw, e.data])).toEqual([
      ['data: a\r\r', 'a'],
      ['data: b\n\n', 'b'],
    ]);
  });

  test('events are returned as soon as their blank line arrives', () => {
    const p = new SseParser();
    expect(p.push('data: 1\n')).toEqual([]);
    expect(p.push('\n').map((e) => e.data)).toEqual(['1']);
    expect(p.buffered).toBe(0);
  });

  test('field rules', () => {
    const got = parseAll([
      'data:no space\n\n' +
        'data:  two\n\n' +
        'data\n\n' +
        'data:\ndata:\n\n' +
        'data: a:b: c\n\n' +
        'DATA: upper\nData: mixed\n\n' +
        'event\ndata: x\n\n' +
        'id: a\u0000b\ndata: x\n\n' +
        'id\ndata: x\n\n' +
        'retry: 12a\n\nretry:\n\nretry: -1\n\nretry:  5\n\nretry:007\n\n' +
        'foo: bar\n:c\n\n',
    ]);
    expect(got.map(fields)).toEqual([
      ev({ data: 'no space' }),
      ev({ data: ' two' }),
      ev({ data: '' }),
      ev({ data: '\n' }),
      ev({ data: 'a:b: c' }),
      ev({}),
      ev({ event: '', data: 'x' }),
      ev({ data: 'x' }), // an id with NUL is ignored
      ev({ id: '', data: 'x' }),
      ev({}),
      ev({}),
      ev({}),
      ev({}), // retry must be only digits
      ev({ retry: 7 }),
      ev({}),
    ]);
  });

  test('a leading BOM is skipped for parsing but kept in raw', () => {
    const got = parseAll(['\ufeff', 'data: x\n\n']);
    expect(got).toEqual([{ raw: '\ufeffdata: x\n\n', ...ev({ data: 'x' }) }]);
    // only at the very start
    expect(parseAll(['data: a\n\n\ufeffdata: b\n\n']).map((e) => e.data)).toEqual(['a', null]);
  });

  test('end() returns the unterminated tail, parsed as if terminated', () => {
    const p = new SseParser();
    expect(p.push('data: a\n\nevent: message\ndata: {"x"')).toHaveLength(1);
    expect(p.buffered).toBe('event: message\ndata: {"x"'.length);
    expect(p.end()).toEqual({ raw: 'event: message\ndata: {"x"', ...ev({ event: 'message', data: '{"x"' }) });
    expect(p.end()).toBeNull();
  });

  test('buffered counts UTF-8 bytes of the incomplete event', () => {
    const p = new SseParser();
    p.push('data: é😀');
    expect(p.buffered).toBe(Buffer.byteLength('data: é😀'));
    p.push('x\n');
    expect(p.buffered).toBe(Buffer.byteLength('data: é😀x\n'));
    p.push('\n');
    expect(p.buffered).toBe(0);
  });

  test('a long line across many chunks', () => {
    const big = 'y'.repeat(100_000);
    const chunks = ['data: '];
    for (let i = 0; i < big.length; i += 1000) chunks.push(big.slice(i, i + 1000));
    chunks.push('\n\n');
    const got = parseAll(chunks);
    expect(got).toHaveLength(1);
    const [event] = got;
    expect(event?.data).toBe(big);
    expect(event?.raw).toBe(`data: ${big}\n\n`);
  });
});

describe('formatSseEvent', () => {
  test('fields and multi-line data round-trip through the parser', () => {
    const text = formatSseEvent({ event: 'message', id: 'e-1', retry: 2000, data: 'a\nb\r\nc\rd' });
    expect(text).toBe('event: message\nid: e-1\nretry: 2000\ndata: a\ndata: b\ndata: c\ndata: d\n\n');
    expect(parseAll([text]).map(fields)).toEqual([ev({ event: 'message', id: 'e-1', retry: 2000, data: 'a\nb\nc\nd' })]);
  });

  test('data with leading spaces and colons survives', () => {
    for (const data of [' lead', '', ':colon', TOOLS_RESULT]) {
      expect(parseAll([formatSseEvent({ data })]).map((e) => e.data)).toEqual([data]);
    }
  });

  test('line breaks in event or id would inject fields and are refused', () => {
    expect(() => formatSseEvent({ data: 'x', event: 'a\ndata: evil' })).toThrow(TypeError);
    expect(() => formatSseEvent({ data: 'x', id: 'a\rb' })).toThrow(TypeError);
    expect(() => formatSseEvent({ data: 'x', retry: -1 })).toThrow(RangeError);
  });
});

describe('createSseRewriter', () => {
  test('passthrough is byte-exact for every split of the byte stream (incl. inside UTF-8 sequences)', async () => {
    for (let i = 0; i <= INPUT_BYTES.length; i++) {
      const out = await run([INPUT_BYTES.subarray(0, i), INPUT_BYTES.subarray(i)]);
      if (!out.equals(INPUT_BYTES)) throw new Error(`split at byte ${i}: output differs`);
    }
    const oneByOne = await run([...INPUT_BYTES].map((b) => Buffer.of(b)));
    expect(oneByOne.equals(INPUT_BYTES)).toBe(true);
  });

  test('the callback sees every event, decoded across chunk boundaries', async () => {
    for (const split of [0, 30, 101, 150, INPUT_BYTES.indexOf(0xf0) + 1, INPUT_BYTES.indexOf(0xc3) + 1]) {
      const seen: Fields[] = [];
      await run([INPUT_BYTES.subarray(0, split), INPUT_BYTES.subarray(split)], (e) => {
        seen.push(fields(e));
        return null;
      });
      expect(seen).toEqual(EVENTS.map(([, f]) => f));
    }
  });

  test('rewrites one event among many and passes the others through unchanged', async () => {
    const rewrite = (e: SseEvent): string | null => {
      if (e.data === null || !e.data.includes('"result"')) return null;
      const msg = JSON.parse(e.data) as { result: { tools: { name: string }[] } };
      msg.result.tools = msg.result.tools.filter((t) => t.name !== 'secret_tool');
      return formatSseEvent({ event: e.event ?? undefined, data: JSON.stringify(msg) });
    };
    const replacement = 'event: message\ndata: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"ünï"}]}}\n\n';
    const expected = EVENTS.map(([raw]) => (raw.includes('"result"') ? replacement : raw)).join('');
    for (const split of [0, 17, INPUT_BYTES.indexOf('secret'), INPUT_BYTES.length - 1]) {
      const out = await run([INPUT_BYTES.subarray(0, split), INPUT_BYTES.subarray(split)], rewrite);
      expect(out.toString('utf8')).toBe(expected);
    }
  });

  test('keep-alive comments pass through and reach the callback with data null', async () => {
    const seen: (string | null)[] = [];
    const input = ': ping\n\n: ping\n\ndata: x\n\n: ping\n\n';
    const out = await run([input], (e) => {
      seen.push(e.data);
      return null;
    });
    expect(out.toString()).toBe(input);
    expect(seen).toEqual([null, null, 'x', null]);
  });

  test('a priming event with empty data passes through', async () => {
    const input = 'id: 728c2fae\ndata:\n\n';
    const seen: SseEvent[] = [];
    const out = await run([input], (e) => {
      seen.push(e);
      return null;
    });
    expect(out.toString()).toBe(input);
    expect(seen.map(fields)).toEqual([ev({ id: '728c2fae', data: '' })]);
  });

  test('the first event is emitted before the source ends', async () => {
    const t = createSseRewriter({ rewrite: () => null, maxEventBytes: 1024 });
    t.write(Buffer.from('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'));
    t.write(Buffer.from('data: incompl'));
    await new Promise((resolve) => setImmediate(resolve)); // one turn of the event loop, nothing more
    expect(t.writableEnded).toBe(false);
    expect((t.read() as Buffer | null)?.toString()).toBe('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n');
    const rest: Buffer[] = [];
    t.on('data', (b: Buffer) => rest.push(b));
    const ended = new Promise((resolve) => t.on('end', resolve));
    t.end();
    await ended;
    expect(Buffer.concat(rest).toString()).toBe('data: incompl'); // the trailing partial event, flushed raw
  });

  test('the trailing unterminated event is still offered to the callback', async () => {
    const out = await run(['data: a\n\n', 'data: {"result":1}'], (e) => (e.data?.includes('result') ? formatSseEvent({ data: 'filtered' }) : null));
    expect(out.toString()).toBe('data: a\n\ndata: filtered\n\n');
  });

  test('an event growing beyond maxEventBytes errors the stream instead of buffering it', async () => {
    let oversize = 0;
    const t = createSseRewriter({ rewrite: () => null, maxEventBytes: 100, onOversize: () => oversize++ });
    const out: Buffer[] = [];
    t.on('data', (b: Buffer) => out.push(b));
    const failed = new Promise<Error>((resolve) => t.on('error', resolve));
    t.write(`data: small\n\ndata: ${'x'.repeat(60)}`);
    t.write('x'.repeat(60));
    const err = await failed;
    expect(err).toBeInstanceOf(SseEventTooLargeError);
    expect(err.message).toMatch(/100 bytes/);
    expect(oversize).toBe(1);
    expect(Buffer.concat(out).toString()).toBe('data: small\n\n');
    expect(t.destroyed).toBe(true);
  });

  test('the limit counts bytes, not characters', async () => {
    const t = createSseRewriter({ rewrite: () => null, maxEventBytes: 100 });
    const failed = new Promise<Error>((resolve) => t.on('error', resolve));
    t.resume();
    t.write(Buffer.from(`data: ${'😀'.repeat(30)}`)); // 66 UTF-16 units, 126 bytes
    expect(await failed).toBeInstanceOf(SseEventTooLargeError);
  });

  test('a complete event larger than the limit inside one chunk is refused too', async () => {
    await expect(run([`data: ok\n\ndata: ${'z'.repeat(200)}\n\n`], () => null, 100)).rejects.toBeInstanceOf(SseEventTooLargeError);
    // at the limit is fine
    const exact = `data: ${'z'.repeat(92)}\n\n`;
    expect(Buffer.byteLength(exact)).toBe(100);
    expect((await run([exact], () => null, 100)).toString()).toBe(exact);
  });

  test('an error thrown by the callback errors the stream', async () => {
    await expect(
      run(['data: a\n\n'], () => {
        throw new Error('rewrite failed');
      }),
    ).rejects.toThrow('rewrite failed');
  });

  test('invalid UTF-8 is decoded with U+FFFD, as an EventSource client would read it', async () => {
    const out = await run([Buffer.from([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0xc3, 0x0a, 0x0a])]);
    expect(out.toString()).toBe('data: \ufffd\ufffd\n\n');
  });

  test('a leading BOM passes through', async () => {
    const input = Buffer.from('\ufeffdata: x\n\n');
    expect((await run([input])).equals(input)).toBe(true);
  });

  test('respects backpressure: writes report a full buffer when nobody reads', async () => {
    const t: Transform = createSseRewriter({ rewrite: () => null, maxEventBytes: 1 << 20 });
    const chunk = Buffer.from(`data: ${'x'.repeat(1000)}\n\n`);
    let writes = 0;
    let ok = true;
    while (ok && writes < 10_000) {
      ok = t.write(chunk);
      writes++;
    }
    expect(ok).toBe(false);
    expect(writes).toBeLessThan(100);
    const drained = new Promise((resolve) => t.once('drain', resolve));
    let bytes = 0;
    t.on('data', (b: Buffer) => (bytes += b.length));
    await drained;
    const ended = new Promise((resolve) => t.on('end', resolve));
    t.end();
    await ended;
    expect(bytes).toBe(chunk.length * writes);
  });
});

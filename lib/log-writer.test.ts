// The line writer's queue against a sink the test completes by hand; real stdout (pipes, files,
// /dev/null, exit) is tried in a child process in test/log/stdout.test.ts.
import fc from 'fast-check';
import { createLineWriter, type Sink } from './log-writer.js';

/** A sink that holds each write until the test completes it; writeSync per `sync`. */
function heldSink(sync: (chunk: Buffer) => number = (c) => c.length) {
  const writes: string[] = [];
  const synced: string[] = [];
  let done: (() => void) | undefined;
  let left: number | undefined;
  const sink: Sink = {
    write(batch, cb) {
      writes.push(batch.toString());
      done = cb;
    },
    unwritten: () => left,
    writeSync(chunk) {
      const n = sync(chunk);
      synced.push(chunk.subarray(0, n).toString());
      return n;
    },
  };
  return {
    sink,
    writes,
    synced,
    complete() {
      const d = done;
      done = undefined;
      d?.();
    },
    setUnwritten(n: number) {
      left = n;
    },
  };
}
const turn = () => new Promise((r) => setImmediate(r));
const line = (i: number, size = 8) => `${String(i).padStart(size - 1, '0')}\n`;

test('lines written in one turn leave in one write, in order; lines written during a write wait for it', async () => {
  const s = heldSink();
  const w = createLineWriter(s.sink);
  w.write('a\n');
  w.write('b\n');
  expect(s.writes).toEqual([]);
  await turn();
  expect(s.writes).toEqual(['a\nb\n']);
  w.write('c\n');
  await turn();
  w.write('d\n');
  await turn();
  expect(s.writes).toEqual(['a\nb\n']);
  s.complete();
  expect(s.writes).toEqual(['a\nb\n', 'c\nd\n']);
  s.complete();
  expect(w.queued()).toBe(0);
});

test('past the bound lines are dropped and counted; dropping lasts until half the bound is free, then one notice and lines again', async () => {
  const s = heldSink();
  const w = createLineWriter(s.sink, { maxQueuedBytes: 80, dropNotice: (n) => `dropped ${n}\n` });
  for (let i = 0; i < 10; i++) w.write(line(i)); // 80 characters: exactly the bound
  w.write(line(10));
  expect(w.dropped()).toBe(1);
  await turn();
  expect(s.writes).toEqual([Array.from({ length: 10 }, (_, i) => line(i)).join('')]);
  expect(w.queued()).toBe(80);
  w.write(line(11));
  expect(w.dropped()).toBe(2);
  s.complete(); // the queue is empty: the notice leaves at once
  expect(s.writes[1]).toBe('dropped 2\n');
  w.write(line(12));
  s.complete();
  await turn();
  expect(s.writes[2]).toBe(line(12));
  expect(w.dropped()).toBe(2);
});

test('a reader that just keeps up makes one notice per episode: lines that would fit are dropped until half the bound is free', async () => {
  const s = heldSink();
  const w = createLineWriter(s.sink, { maxQueuedBytes: 80, dropNotice: (n) => `dropped ${n}\n` });
  for (let i = 0; i < 4; i++) w.write(line(i));
  await turn(); // 32 in flight
  for (let i = 4; i < 10; i++) w.write(line(i)); // 48 waiting: 80 queued
  w.write(line(10)); // dropped
  s.complete(); // 48 in flight: more than half the bound
  w.write(line(11)); // would fit (56), dropped all the same
  w.write(line(12));
  expect(w.dropped()).toBe(3);
  s.complete(); // empty: the notice
  w.write(line(13));
  s.complete();
  await turn();
  s.complete();
  const out = s.writes.join('');
  expect(out.match(/dropped/g)).toEqual(['dropped']);
  expect(out).toBe(`${[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => line(i)).join('')}dropped 3\n${line(13)}`);
});

test('flushSync writes the unwritten tail of the write in flight, then what waits, in order', async () => {
  const s = heldSink();
  const w = createLineWriter(s.sink);
  w.write('first line\n');
  await turn();
  w.write('second\n');
  s.setUnwritten(5); // "line\n" of the first batch is still queued in the stream
  w.flushSync();
  expect(s.synced.join('')).toBe('line\nsecond\n');
});

test('flushSync gives up on a pipe that stays full, within its budget, and resumes after EAGAIN', () => {
  const eagain = () => {
    throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
  };
  const stuck = heldSink(eagain);
  const w = createLineWriter(stuck.sink, { exitBudgetMs: 50 });
  w.write('x\n');
  const t0 = Date.now();
  w.flushSync();
  expect(Date.now() - t0).toBeLessThan(2000);
  expect(stuck.synced).toEqual([]);

  let calls = 0;
  const slow = heldSink((c) => (++calls % 2 ? eagain() : Math.min(3, c.length)));
  const v = createLineWriter(slow.sink, { exitBudgetMs: 5000 });
  v.write('abcdefgh\n');
  v.flushSync();
  expect(slow.synced.join('')).toBe('abcdefgh\n');
});

test('whatever the bursts and write completions, what leaves is what was kept, in order, and drops add up', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.boolean()), { maxLength: 40 }), async (steps) => {
      const s = heldSink();
      const w = createLineWriter(s.sink, { maxQueuedBytes: 100, dropNotice: (n) => `-${n}\n` });
      let n = 0;
      for (const [burst, complete] of steps) {
        for (let i = 0; i < burst; i++) w.write(line(n++));
        await turn();
        if (complete) s.complete();
      }
      for (let i = 0; i < 50 && w.queued() > 0; i++) {
        s.complete();
        await turn();
      }
      const out = s.writes.join('').split('\n').slice(0, -1);
      const kept = out.filter((l) => !l.startsWith('-')).map(Number);
      const noticed = out.filter((l) => l.startsWith('-')).reduce((a, l) => a + Number(l.slice(1)), 0);
      expect(kept).toEqual([...kept].sort((a, b) => a - b));
      expect(new Set(kept).size).toBe(kept.length);
      expect(kept.length + w.dropped()).toBe(n);
      expect(noticed).toBe(w.dropped());
      expect(w.queued()).toBe(0);
    }),
    { numRuns: 100 },
  );
});

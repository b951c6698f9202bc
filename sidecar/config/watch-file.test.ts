import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBounded, readBoundedSync, watchFile } from './watch-file.js';
import type { FileWatch, WatchFileOptions } from './watch-file.js';

// Waits for a condition by polling; the limit is generous because it only bounds a failure.
async function waitFor(cond: () => boolean, what: string, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let dir: string;
let watches: FileWatch[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tg-watch-'));
  watches = [];
});
afterEach(() => {
  for (const w of watches) w.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a watch whose poll is effectively off, so changes must be seen through fs.watch events. */
async function start(path: string, opts: WatchFileOptions = {}) {
  const texts: string[] = [];
  const errors: string[] = [];
  const w = watchFile(path, (t) => texts.push(t), {
    pollMs: 3_600_000,
    debounceMs: 20,
    onError: (e) => errors.push((e as NodeJS.ErrnoException).code ?? e.message),
    ...opts,
  });
  watches.push(w);
  await w.check(); // baseline read done
  return { w, texts, errors };
}

test('in-place write', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 1\n');
  const { texts } = await start(p);
  writeFileSync(p, 'a: 2\n');
  await waitFor(() => texts.length === 1, 'the change');
  expect(texts).toEqual(['a: 2\n']);
});

test('atomic replace by rename', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 1\n');
  const { texts } = await start(p);
  writeFileSync(join(dir, '.thoughtgate.yaml.tmp'), 'a: 2\n');
  renameSync(join(dir, '.thoughtgate.yaml.tmp'), p);
  await waitFor(() => texts.length === 1, 'the change');
  expect(texts).toEqual(['a: 2\n']);
});

test('ConfigMap volume: the ..data symlink swap', async () => {
  // The layout kubelet's AtomicWriter makes: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/
  mkdirSync(join(dir, '..2026_01_01_00_00_00.1'));
  writeFileSync(join(dir, '..2026_01_01_00_00_00.1', 'config.yaml'), 'v: 1\n');
  symlinkSync('..2026_01_01_00_00_00.1', join(dir, '..data'));
  symlinkSync('..data/config.yaml', join(dir, 'config.yaml'));
  const { texts } = await start(join(dir, 'config.yaml'));

  mkdirSync(join(dir, '..2026_01_01_00_01_00.2'));
  writeFileSync(join(dir, '..2026_01_01_00_01_00.2', 'config.yaml'), 'v: 2\n');
  symlinkSync('..2026_01_01_00_01_00.2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  rmSync(join(dir, '..2026_01_01_00_00_00.1'), { recursive: true });

  await waitFor(() => texts.length === 1, 'the swap');
  expect(texts).toEqual(['v: 2\n']);
});

test('delete then recreate: missing is not a change; new content is', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 1\n');
  const { w, texts, errors } = await start(p);
  unlinkSync(p);
  await w.check();
  await w.check();
  expect(texts).toEqual([]);
  expect(errors).toEqual(['ENOENT']); // reported once, not on every read
  writeFileSync(p, 'a: 2\n');
  await waitFor(() => texts.length === 1, 'the recreated file');
  expect(texts).toEqual(['a: 2\n']);
});

test('recreated with the same content is not a change', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 1\n');
  const { w, texts } = await start(p);
  unlinkSync(p);
  await w.check();
  writeFileSync(p, 'a: 1\n');
  await w.check();
  writeFileSync(p, 'a: 3\n');
  await waitFor(() => texts.length === 1, 'the change after');
  expect(texts).toEqual(['a: 3\n']);
});

test('rewriting identical content does not call back', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 1\n');
  const { w, texts } = await start(p);
  writeFileSync(p, 'a: 1\n');
  await w.check();
  expect(texts).toEqual([]);
  writeFileSync(p, 'a: 2\n');
  await waitFor(() => texts.length === 1, 'the real change');
  writeFileSync(p, 'a: 2\n');
  await w.check();
  expect(texts).toEqual(['a: 2\n']);
});

test('a burst of writes ends with the last content delivered', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'n: 0\n');
  const { texts } = await start(p);
  for (let i = 1; i <= 20; i++) writeFileSync(p, `n: ${i}\n`);
  await waitFor(() => texts.at(-1) === 'n: 20\n', 'the last write');
  expect(texts.every((t, i) => i === 0 || t !== texts[i - 1])).toBe(true); // never the same content twice in a row
});

test("initialText: a change between the caller's load and the watch is reported", async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 2\n');
  const { texts } = await start(p, { initialText: 'a: 1\n' });
  expect(texts).toEqual(['a: 2\n']);
  const same = await start(p, { initialText: 'a: 2\n' });
  expect(same.texts).toEqual([]);
});

test('a file missing at start is reported when it appears', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  const { texts, errors } = await start(p);
  expect(errors).toEqual(['ENOENT']);
  writeFileSync(p, 'a: 1\n');
  await waitFor(() => texts.length === 1, 'the new file');
  expect(texts).toEqual(['a: 1\n']);
});

test('the poll finds a file whose directory did not exist at start', async () => {
  const sub = join(dir, 'later');
  const p = join(sub, 'thoughtgate.yaml');
  const { texts } = await start(p, { pollMs: 25 });
  mkdirSync(sub);
  writeFileSync(p, 'a: 1\n');
  await waitFor(() => texts.length === 1, 'the poll');
  writeFileSync(p, 'a: 2\n');
  await waitFor(() => texts.length === 2, 'the next change');
  expect(texts).toEqual(['a: 1\n', 'a: 2\n']);
});

test('a callback that throws does not stop the watch', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 1\n');
  const seen: string[] = [];
  const w = watchFile(
    p,
    (t) => {
      seen.push(t);
      throw new Error('boom');
    },
    { debounceMs: 20, onError: () => {} },
  );
  watches.push(w);
  await w.check();
  writeFileSync(p, 'a: 2\n');
  await waitFor(() => seen.length === 1, 'the first change');
  writeFileSync(p, 'a: 3\n');
  await waitFor(() => seen.length === 2, 'the second change');
  expect(seen).toEqual(['a: 2\n', 'a: 3\n']);
});

test('close() stops everything', async () => {
  const p = join(dir, 'thoughtgate.yaml');
  writeFileSync(p, 'a: 1\n');
  const { w, texts } = await start(p, { pollMs: 10 });
  w.close();
  w.close();
  writeFileSync(p, 'a: 2\n');
  await w.check();
  // Give a stray timer or event every chance to fire; the assertion does not depend on timing.
  await new Promise((r) => setTimeout(r, 100));
  expect(texts).toEqual([]);
});

test('maxBytes: a larger file is a read failure (EFBIG), not text', async () => {
  const p = join(dir, 'token');
  writeFileSync(p, 'small');
  const { texts, errors } = await start(p, { maxBytes: 8, initialText: null });
  await waitFor(() => texts.length === 1, 'the first text (initialText null: reported)');
  writeFileSync(p, 'much too large');
  await waitFor(() => errors.includes('EFBIG'), 'the size failure');
  expect(texts).toEqual(['small']);
});

test('redeliverAfterError: the same text is reported again after the file was gone', async () => {
  const p = join(dir, 'token');
  writeFileSync(p, 'v1');
  const { texts, errors } = await start(p, { initialText: 'v1', redeliverAfterError: true });
  unlinkSync(p);
  await waitFor(() => errors.includes('ENOENT'), 'the removal');
  writeFileSync(p, 'v1');
  await waitFor(() => texts.length === 1, 'the restored text');
  expect(texts).toEqual(['v1']);
});

test('readBounded and readBoundedSync read only regular files: a FIFO is refused at once, not waited on', async () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  symlinkSync(fifo, join(dir, 'link'));
  // A blocking open would wait for this writer and then read its "x".
  const writer = spawn('sh', ['-c', 'sleep 1; exec printf x > "$0"', fifo], { stdio: 'ignore' });
  try {
    const t0 = Date.now();
    for (const p of [fifo, join(dir, 'link')]) {
      await expect(readBounded(p, 100)).rejects.toMatchObject({ code: 'ENOTREG', kind: 'a FIFO' });
      expect(() => readBoundedSync(p, 100)).toThrow(expect.objectContaining({ code: 'ENOTREG', kind: 'a FIFO' }));
    }
    expect(Date.now() - t0).toBeLessThan(500);
    await expect(readBounded('/dev/zero', 100)).rejects.toMatchObject({ code: 'ENOTREG', kind: 'a character device' });
    writeFileSync(join(dir, 'f'), 'ok');
    symlinkSync(join(dir, 'f'), join(dir, 'flink'));
    expect(await readBounded(join(dir, 'flink'), 100)).toBe('ok');
    expect(readBoundedSync(join(dir, 'f'), 100)).toBe('ok');
  } finally {
    writer.kill();
  }
});

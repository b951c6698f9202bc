// The stdout writer in a real process (test/log/log-child.ts, bundled): stdout as a pipe nobody
// reads, a pipe read late, a file, /dev/null, and what is left at exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CLI, freePort, ROOT, waitForPort } from '../support/processes.js';

interface State {
  queued: number;
  dropped: number;
  ticks: number;
  seq: number;
  rss: number;
}
type Line = { level: string; msg: string; seq?: number; dropped?: number };

const MIB = 1024 * 1024;
let dir: string;
let bundle: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tg-log-'));
  bundle = join(dir, 'log-child.mjs');
  const esbuild = join(ROOT, 'node_modules', '.bin', 'esbuild');
  const built = spawnSync(esbuild, [
    join(ROOT, 'test/log/log-child.ts'),
    '--bundle',
    '--platform=node',
    '--format=esm',
    `--outfile=${bundle}`,
    '--log-level=error',
  ]);
  expect(built.stderr.toString()).toBe('');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function start(
  stdout: 'pipe' | 'ignore' | number,
): Promise<{ child: ChildProcess; get: (path: string) => Promise<State>; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [bundle], { stdio: ['ignore', stdout, 'pipe'] });
  children.push(child);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /port (\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
  });
  const get = async (path: string) => (await (await fetch(`http://127.0.0.1:${port}${path}`)).json()) as State;
  return { child, get, exited };
}

/** Lines from a readable until `until` holds for one of them (or the stream ends). */
function readLines(stream: Readable, until: (l: Line) => boolean): Promise<Line[]> {
  return new Promise((resolve) => {
    const lines: Line[] = [];
    let rest = '';
    const done = () => {
      stream.off('data', onData);
      resolve(lines);
    };
    const onData = (d: Buffer) => {
      const parts = (rest + d.toString()).split('\n');
      rest = parts.pop()!;
      for (const p of parts) {
        const l = JSON.parse(p) as Line;
        lines.push(l);
        if (until(l)) return done();
      }
    };
    stream.on('data', onData);
    stream.once('end', done);
  });
}

const seqs = (lines: Line[]) => lines.filter((l) => l.msg === 'line').map((l) => l.seq!);
const ascending = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

test('stdout a pipe nobody reads: the process keeps serving, holds at most 1 MiB and counts drops; read later, the kept lines arrive in order, then one drop warning', async () => {
  const { child, get } = await start('pipe');
  child.stdout!.pause();
  // 40 000 lines of ~200 characters: ~9 MB, far more than the pipe and the bound hold.
  const after = await get('/log?n=40000&size=150&bursts=20');
  expect(after.dropped).toBeGreaterThan(0);
  expect(after.queued).toBeLessThanOrEqual(MIB);
  const t0 = await get('/state');
  await new Promise((r) => setTimeout(r, 300));
  const t1 = await get('/state');
  // Timers fire and HTTP is answered while stdout is stalled; nothing more is queued.
  expect(t1.ticks).toBeGreaterThan(t0.ticks);
  expect(t1.queued).toBeLessThanOrEqual(MIB);
  expect(t1.rss - t0.rss).toBeLessThan(8 * MIB);

  const reading = readLines(child.stdout!, (l) => l.msg.endsWith('log lines dropped'));
  child.stdout!.resume();
  const lines = await reading;
  const kept = seqs(lines);
  const notice = lines.at(-1)!;
  expect(notice).toMatchObject({ level: 'warn', msg: `${t1.dropped} log lines dropped`, dropped: t1.dropped });
  expect(ascending(kept)).toBe(true);
  expect(kept[0]).toBe(0);
  expect(kept.length + t1.dropped).toBe(40000);
  // After the warning the writer takes lines again.
  const tail = readLines(child.stdout!, (l) => l.seq === 40000);
  await get('/log?n=1');
  expect(seqs(await tail)).toEqual([40000]);
  expect((await get('/state')).dropped).toBe(t1.dropped);
}, 30_000);

test('lines logged in bursts arrive complete and in order when stdout keeps up', async () => {
  const { child, get } = await start('pipe');
  const reading = readLines(child.stdout!, (l) => l.seq === 29999);
  // Paced: each burst waits for room, so a reader slowed by a busy machine cannot cause drops.
  await Promise.all([
    get('/log?n=10000&size=50&bursts=50&paced=1'),
    get('/log?n=10000&size=10&bursts=7&paced=1'),
    get('/log?n=10000&size=80&bursts=100&paced=1'),
  ]);
  const got = seqs(await reading);
  expect(got).toEqual([...Array(30000).keys()]);
  expect((await get('/state')).dropped).toBe(0);
}, 30_000);

test('at exit what is queued is written: to a pipe, and to a file', async () => {
  const piped = await start('pipe');
  const reading = readLines(piped.child.stdout!, () => false);
  await piped.get('/exit?n=3000&size=100').catch(() => undefined);
  expect(await piped.exited).toBe(0);
  expect(seqs(await reading)).toEqual([...Array(3000).keys()]);

  const file = join(dir, 'stdout.log');
  const fd = openSync(file, 'w');
  const filed = await start(fd);
  closeSync(fd);
  await filed.get('/log?n=5000&size=100&bursts=10');
  await filed.get('/exit?n=1000').catch(() => undefined);
  expect(await filed.exited).toBe(0);
  const lines = readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
  expect(seqs(lines)).toEqual([...Array(6000).keys()]);
}, 30_000);

test('at exit with stdout a full pipe nobody reads, the process still ends', async () => {
  const { child, get, exited } = await start('pipe');
  child.stdout!.pause();
  await get('/log?n=20000&size=150&bursts=4');
  await get('/exit?n=100').catch(() => undefined);
  expect(await exited).toBe(0);
}, 30_000);

test('stdout /dev/null: lines are written and nothing stays queued', async () => {
  const { get } = await start('ignore');
  await get('/log?n=20000&size=100&bursts=40');
  let s = await get('/state');
  for (let i = 0; i < 100 && s.queued > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    s = await get('/state');
  }
  expect(s).toMatchObject({ queued: 0, dropped: 0, seq: 20000 });
}, 30_000);

test('the sidecar with stdout a pipe nobody reads answers requests and counts the lines it dropped on /metrics', async () => {
  const config = join(dir, 'thoughtgate.yaml');
  // Every call is denied by a rule: one request line each, no upstream needed.
  writeFileSync(config, 'sources:\n  - name: up\n    url: http://127.0.0.1:9/mcp\nrules:\n  - name: none\n    match: { tool: "*" }\n    action: deny\n');
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [CLI, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(adminPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  child.stdout!.pause();
  await waitForPort(adminPort);
  const body = (i: number) => JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'x'.repeat(400), arguments: {} } });
  const dropped = async () =>
    Number(/thoughtgate_sidecar_log_lines_dropped_total (\d+)/.exec(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text())?.[1]);
  let sent = 0;
  // ~700-character lines: past the pipe's buffer and the 1 MiB bound within a few thousand calls.
  while ((await dropped()) === 0 && sent < 40_000) {
    await Promise.all(
      Array.from({ length: 500 }, async () => {
        const r = await fetch(`http://127.0.0.1:${port}/mcp/up`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: body(sent++),
        });
        expect(r.status).toBe(200);
        await r.text();
      }),
    );
  }
  expect(await dropped()).toBeGreaterThan(0);
  expect((await fetch(`http://127.0.0.1:${adminPort}/health`)).status).toBe(200);
}, 60_000);

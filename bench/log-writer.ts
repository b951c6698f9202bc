// The log writer alone: CPU per line of the old writer (process.stdout.write per line) and the new one
// (lib/log-writer.ts, one write per event-loop turn), and making the lines without writing them
// ("format"), in a child process whose stdout is a file, a
// FIFO drained by `cat`, or /dev/null. Lines come 50 per turn (50 requests answered per loop
// iteration) and are the size of a request line. The two alternate, round by round. Prints only.
//
//   BENCH_NODE=<node 24> node dist/bench/log-writer.js     BENCH_ROUNDS (7), BENCH_LINES (200000)
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLineWriter, stdoutSink } from '../lib/log-writer.js';
import { pct } from './support/processes.js';

const NODE = process.env['BENCH_NODE'] || process.execPath;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] || 7);
const LINES = Number(process.env['BENCH_LINES'] || 200_000);
const PER_TURN = 50;
const SELF = fileURLToPath(import.meta.url);

/** Child: logs LINES lines, PER_TURN a turn, and prints its CPU µs per line on stderr once all are written. */
function child(writer: 'old' | 'new' | 'format'): void {
  const fields = { correlationId: '6edc4c03-1b7e-4c55-9d43-3b2f0f6a1e9c', source: 'up', http: 'POST', status: 200, method: 'tools/call' };
  let sink = 0;
  const write =
    writer === 'old'
      ? (l: string) => process.stdout.write(l)
      : writer === 'new'
        ? (
            (w) => (l: string) =>
              w.write(l)
          )(createLineWriter(stdoutSink(), {}))
        : (l: string) => {
            sink += l.length; // the line made and thrown away: what formatting costs
          };
  const c0 = process.cpuUsage();
  let n = 0;
  const turn = () => {
    for (let i = 0; i < PER_TURN && n < LINES; i++, n++)
      write(
        `${JSON.stringify({ ts: new Date().toISOString(), level: 'info', msg: 'request', ...fields, latencyMs: n % 97, tool: 'add', decision: 'forward' })}\n`,
      );
    if (n < LINES) setImmediate(turn);
  };
  turn();
  process.once('beforeExit', () => {
    const c = process.cpuUsage(c0);
    process.stderr.write(`${(c.user + c.system) / LINES} ${sink}\n`);
  });
}

async function once(writer: string, sink: 'file' | 'fifo' | 'null', dir: string): Promise<number> {
  let out: number | 'ignore' = 'ignore';
  let catExited: Promise<unknown> = Promise.resolve();
  if (sink === 'file') out = openSync(join(dir, 'out.log'), 'w');
  if (sink === 'fifo') {
    const fifo = join(dir, `fifo-${writer}-${Date.now()}`);
    execFileSync('mkfifo', [fifo]);
    const cat = spawn('taskset', ['-c', '1', 'sh', '-c', `cat "${fifo}" > /dev/null`], { stdio: 'ignore' });
    catExited = new Promise((r) => cat.once('exit', r));
    out = openSync(fifo, 'w');
  }
  const p = spawn('taskset', ['-c', '0', NODE, SELF, '--child', writer], { stdio: ['ignore', out, 'pipe'] });
  if (typeof out === 'number') closeSync(out);
  let err = '';
  p.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await new Promise((r) => p.once('exit', r));
  await catExited;
  return Number(err.trim().split(' ')[0]);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3] as 'old' | 'new');
  console.log(`# log writer benchmark: child on ${NODE}, ${LINES} lines of ~300 characters, ${PER_TURN} per turn, ${ROUNDS} rounds`);
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-logw-'));
  const results = new Map<string, number[]>();
  try {
    for (let round = 0; round < ROUNDS; round++)
      for (const sink of ['file', 'fifo', 'null'] as const)
        for (const writer of round % 2 ? ['format', 'new', 'old'] : ['old', 'new', 'format']) {
          const key = `${sink}.${writer}`;
          results.set(key, [...(results.get(key) ?? []), await once(writer, sink, dir)]);
        }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [key, v] of results) {
    v.sort((a, b) => a - b);
    console.log(`log_writer.${key}.cpu_us_per_line ${pct(v, 50).toFixed(2)} (min ${v[0]!.toFixed(2)}, max ${v.at(-1)!.toFixed(2)})`);
  }
}

void main();

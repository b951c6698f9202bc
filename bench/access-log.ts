// The access log's CPU cost: the sidecar at --log-level info (one line per request) under closed-loop
// load, its stdout a file or a FIFO drained by `cat` (what a container runtime reads), and at warn
// (no request lines) as the baseline. CPU per request is the sidecar's utime+stime from
// /proc/<pid>/stat over the requests answered. Several builds alternate, round by round, so a
// shared machine's drift hits each alike; medians and spread at the end. Prints, never asserts.
//
//   BENCH_CLIS=old=/tmp/base/dist/cli.js,new=dist/cli.js BENCH_NODE=<node 24> node dist/bench/access-log.js
//   BENCH_ROUNDS (5), BENCH_SECONDS (3), BENCH_CLIENTS (50); the sidecar on CPU 0, the rest on 1.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from './support/load.js';
import { cpuMicros } from './support/proc.js';
import { freePort, pct, spawnReady } from './support/processes.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const NODE = process.env['BENCH_NODE'] || process.execPath;
const SECONDS = Number(process.env['BENCH_SECONDS'] || 3);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] || 5);
const CLIENTS = Number(process.env['BENCH_CLIENTS'] || 50);
const CLIS = (process.env['BENCH_CLIS'] || `this=${join(HERE, '..', 'cli.js')}`).split(',').map((kv) => kv.split('=') as [string, string]);
const BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}';

type Sink = 'file' | 'fifo' | 'none';

async function ready(adminPort: number, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sidecar exited ${child.exitCode}`);
    if (
      await fetch(`http://127.0.0.1:${adminPort}/ready`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function run(cli: string, sink: Sink, config: string, dir: string): Promise<{ usPerReq: number; rps: number; logBytes: number; dropped: number }> {
  const port = await freePort();
  const adminPort = await freePort();
  let out: number | 'ignore' = 'ignore';
  let cat: ChildProcess | undefined;
  const file = join(dir, 'stdout.log');
  if (sink === 'file') out = openSync(file, 'w');
  if (sink === 'fifo') {
    const fifo = join(dir, `fifo-${port}`);
    execFileSync('mkfifo', [fifo]);
    cat = spawn('taskset', ['-c', '1', 'sh', '-c', `cat "${fifo}" | wc -c`], { stdio: ['ignore', 'pipe', 'inherit'] });
    out = openSync(fifo, 'w');
  }
  const level = sink === 'none' ? 'warn' : 'info';
  const args = ['-c', '0', NODE, cli, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(adminPort), '--log-level', level];
  const sidecar = spawn('taskset', args, { stdio: ['ignore', out, 'inherit'], env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' } });
  if (typeof out === 'number') closeSync(out);
  const counted = cat ? new Promise<number>((r) => cat.stdout!.on('data', (d: Buffer) => r(Number(d.toString().trim())))) : undefined;
  await ready(adminPort, sidecar);
  const via = `http://127.0.0.1:${port}/mcp/up`;
  await load(via, BODY, 10, 1); // warm-up: JIT and pools
  const c0 = cpuMicros(sidecar.pid!);
  const r = await load(via, BODY, CLIENTS, SECONDS);
  const c1 = cpuMicros(sidecar.pid!);
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const dropped = Number(/thoughtgate_sidecar_log_lines_dropped_total (\d+)/.exec(metrics)?.[1] ?? 0);
  sidecar.kill('SIGTERM');
  await new Promise((res) => sidecar.once('exit', res));
  const logBytes = sink === 'file' ? statSync(file).size : ((await counted) ?? 0);
  if (r.errors) console.log(`# ${r.errors} errors`);
  return { usPerReq: (c1 - c0) / r.lat.length, rps: r.rps, logBytes, dropped };
}

async function main(): Promise<void> {
  console.log(
    `# access log benchmark: sidecar on ${NODE}, ${CLIENTS} clients, ${SECONDS}s per run, ${ROUNDS} rounds, builds ${CLIS.map(([k]) => k).join(', ')}`,
  );
  const upPort = await freePort();
  const upstream = await spawnReady('taskset', ['-c', '1', process.execPath, join(HERE, 'proxy.js'), '--upstream', String(upPort)]);
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-log-'));
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(config, `sources:\n  - name: up\n    url: http://127.0.0.1:${upPort}/mcp\ndefaultAction: forward\n`);
  const results = new Map<string, { usPerReq: number; rps: number }[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const sink of ['none', 'file', 'fifo'] as const) {
        // Alternate the order of builds each round.
        const order = round % 2 ? [...CLIS].reverse() : CLIS;
        for (const [name, cli] of order) {
          const r = await run(cli, sink, config, dir);
          const key = `${sink}.${name}`;
          results.set(key, [...(results.get(key) ?? []), r]);
          console.log(
            `# round ${round} ${key}: ${r.usPerReq.toFixed(1)} µs/req, ${r.rps.toFixed(0)} req/s, ${(r.logBytes / 1e6).toFixed(1)} MB logged, ${r.dropped} dropped`,
          );
        }
      }
    }
  } finally {
    upstream.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [key, rs] of results) {
    const us = rs.map((r) => r.usPerReq).sort((a, b) => a - b);
    const rps = rs.map((r) => r.rps).sort((a, b) => a - b);
    console.log(`access_log.${key}.cpu_us_per_req ${pct(us, 50).toFixed(1)} (min ${us[0]!.toFixed(1)}, max ${us.at(-1)!.toFixed(1)})`);
    console.log(`access_log.${key}.rps ${pct(rps, 50).toFixed(0)} (min ${rps[0]!.toFixed(0)}, max ${rps.at(-1)!.toFixed(0)})`);
  }
}

void main();

// CPU per forwarded request, peak private memory under load and RSS growth on a 100 MB SSE answer,
// for several builds of the sidecar and the Node floor relay, alternated round by round so they
// share the machine's state. Each proxy runs pinned to core 0 (BENCH_PROXY_CPU); run this process
// (load generator and upstream) pinned to the other core:
//
//   taskset -c 1 node dist/bench/cpu-per-request.js base=/tmp/base-repo new=.   (repo roots, built)
//
// A variant may also be a relay script (name=path.mjs) run like the floor: `<port> <upstream origin>`.
//
// CPU per request = (utime + stime of the proxy, /proc/<pid>/stat) / requests answered, over a
// closed-loop load of BENCH_CLIENTS clients for BENCH_SECONDS. Prints one line per run and medians.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBigStream } from './support/big-stream.js';
import { load } from './support/load.js';
import { runUpstream } from './support/mcp-upstream.js';
import { cpuMicros, statusMemory } from './support/proc.js';
import { freePort } from './support/processes.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const NODE = process.env['BENCH_NODE'] || process.execPath;
const SECONDS = Number(process.env['BENCH_SECONDS'] || 4);
const CLIENTS = Number(process.env['BENCH_CLIENTS'] || 50);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] || 3);
const PROXY_CPU = process.env['BENCH_PROXY_CPU'] ?? '0';
const SSE = process.env['BENCH_SSE'] !== '0';
// BENCH_PROF=<dir>: the sidecars write a CPU profile there (node --cpu-prof) when they exit.
const PROF = process.env['BENCH_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_PROF']}`] : [];
// The floor relay has no SIGTERM handler; profiled, it must exit (not die) to write its profile.
const FLOOR_PROF = PROF.length > 0 ? [...PROF, '--import', 'data:text/javascript,process.on("SIGTERM",()=>process.exit(0))'] : [];

async function waitFor(url: string, status = 200): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const ok = await fetch(url).then(
      (r) => r.status === status,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${url} never answered`);
}

interface Proxy {
  child: ChildProcess;
  url: string;
}

async function startProxy(variant: string, upPort: number, config: string): Promise<Proxy> {
  const port = await freePort();
  const env = { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' };
  // The floor, or any relay script taking the same arguments (<port> <upstream origin>).
  if (variant === 'floor' || /\.m?js$/.test(variant)) {
    const script = variant === 'floor' ? join(HERE, 'support', 'floor-relay.js') : resolve(variant);
    const child = spawn('taskset', ['-c', PROXY_CPU, NODE, ...FLOOR_PROF, script, String(port), `http://127.0.0.1:${upPort}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
    await waitFor(`http://127.0.0.1:${port}/mcp`, 200);
    return { child, url: `http://127.0.0.1:${port}/mcp` };
  }
  const admin = await freePort();
  const cli = join(resolve(variant), 'dist', 'cli.js');
  const child = spawn(
    'taskset',
    ['-c', PROXY_CPU, NODE, ...PROF, cli, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(admin), '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'], env },
  );
  await waitFor(`http://127.0.0.1:${admin}/ready`);
  return { child, url: `http://127.0.0.1:${port}/mcp/up` };
}

const BODY =
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2,"note":"a 215-byte tools/call........................................................................................"}}}';

interface Run {
  cpuUs: number;
  rps: number;
  peakAnon: number;
  sseGrowth: number;
  sseSeconds: number;
}

async function sse(url: string, pid: number): Promise<{ growth: number; seconds: number }> {
  const before = statusMemory(pid).rss;
  let max = before;
  const tick = setInterval(() => (max = Math.max(max, statusMemory(pid).rss)), 50);
  const t = Date.now();
  const bytes = await readBigStream(url);
  clearInterval(tick);
  max = Math.max(max, statusMemory(pid).rss);
  if (bytes < 100 * 1024 * 1024) throw new Error(`SSE: only ${bytes} bytes`);
  return { growth: max - before, seconds: (Date.now() - t) / 1000 };
}

async function once(variant: string, upPort: number, config: string): Promise<Run> {
  const p = await startProxy(variant, upPort, config);
  const pid = p.child.pid!;
  try {
    await load(p.url, BODY, 10, 1);
    let peakAnon = statusMemory(pid).anon;
    const t0 = cpuMicros(pid);
    const r = await load(p.url, BODY, CLIENTS, SECONDS, { onTick: () => (peakAnon = Math.max(peakAnon, statusMemory(pid).anon)) });
    const cpu = cpuMicros(pid) - t0;
    if (r.errors > 0) throw new Error(`${variant}: ${r.errors} errors`);
    const s = SSE ? await sse(p.url, pid) : { growth: NaN, seconds: NaN };
    return { cpuUs: cpu / r.lat.length, rps: r.rps, peakAnon, sseGrowth: s.growth, sseSeconds: s.seconds };
  } finally {
    p.child.kill('SIGTERM');
    await new Promise((r) => p.child.once('exit', r));
  }
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

async function main(): Promise<void> {
  if (process.argv[2] === '--upstream') return runUpstream(Number(process.argv[3]));
  const variants = process.argv.slice(2).map((a) => {
    const [name, path] = a.includes('=') ? a.split('=') : [a, a];
    return { name: name!, path: path! };
  });
  if (!variants.some((v) => v.path === 'floor')) variants.push({ name: 'floor', path: 'floor' });
  const upPort = await freePort();
  const upstream = spawn(process.execPath, [fileURLToPath(import.meta.url), '--upstream', String(upPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => upstream.stdout!.once('data', r));
  const config = join(mkdtempSync(join(tmpdir(), 'tg-cpu-')), 'thoughtgate.yaml');
  writeFileSync(
    config,
    `sources:\n  - name: up\n    url: http://127.0.0.1:${upPort}/mcp\nrules:\n  - name: no-deletes\n    match: { tool: "delete_*" }\n    action: deny\ndefaultAction: forward\n`,
  );
  console.log(`# proxy on core ${PROXY_CPU} (${NODE}), ${CLIENTS} clients, ${SECONDS}s, ${ROUNDS} rounds, body ${BODY.length} B`);
  const runs = new Map<string, Run[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      const r = await once(v.path, upPort, config);
      runs.get(v.name)!.push(r);
      console.log(
        `${v.name} round ${round}: ${r.cpuUs.toFixed(1)} us/req, ${r.rps.toFixed(0)} rps, peak anon ${r.peakAnon.toFixed(1)} MiB, sse growth ${r.sseGrowth.toFixed(1)} MiB in ${r.sseSeconds.toFixed(2)}s`,
      );
    }
  }
  const floor = median(runs.get('floor')!.map((r) => r.cpuUs));
  for (const [name, rs] of runs) {
    const cpu = rs.map((r) => r.cpuUs);
    console.log(
      `${name}: median ${median(cpu).toFixed(1)} us/req (${Math.min(...cpu).toFixed(1)}–${Math.max(...cpu).toFixed(1)}), ${((median(cpu) / floor - 1) * 100).toFixed(0)} % over floor, ` +
        `${median(rs.map((r) => r.rps)).toFixed(0)} rps, peak anon ${median(rs.map((r) => r.peakAnon)).toFixed(1)} MiB, sse growth ${median(rs.map((r) => r.sseGrowth)).toFixed(1)} MiB (${rs.map((r) => r.sseGrowth.toFixed(0)).join(' ')})`,
    );
  }
  upstream.kill('SIGTERM');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

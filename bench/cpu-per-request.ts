// CPU per forwarded request of several builds of the sidecar against the Node floor relay, as a
// ratio trustworthy on a shared machine. Two kinds of noise, two remedies: the machine's speed
// drifts from one second to the next (other users), so the proxies take turns under the same
// closed-loop load in short slices, the order rotated each round, and a round's ratio (variant /
// floor) compares slices seconds apart; and each process keeps a speed of its own for its whole
// life (two starts of the same floor relay differ by up to ±15 %, round after round), so every
// proxy is started BENCH_STARTS times. The figure is the median of all rounds' ratios, with its
// spread (interquartile range and min..max). A second floor relay (floor_b) is measured like the
// rest as a yardstick: its ratio to the floor is 1 but for noise. The proxies run pinned to one
// core, this process (load generator) and the upstream to another (support/proc.ts pinSelfAndPlanProxy):
//
//   node dist/bench/cpu-per-request.js base=/tmp/base-repo new=.   (repo roots, built;
//                                        none: this repo's build, as `make bench` runs it)
//
// A variant may also be a relay script (name=path.mjs) run like the floor: `<port> <upstream origin>`.
//
// CPU per request = the proxy's on-CPU time over the slice (the sum of its threads'
// /proc/<pid>/task/*/schedstat, ns resolution) / requests answered in the slice.
// Env: BENCH_STARTS (3), BENCH_ROUNDS per start (4), BENCH_SECONDS per slice (1), BENCH_CLIENTS (50),
// BENCH_WARM_SECONDS (1), BENCH_LOG_LEVEL of the sidecars (warn), BENCH_SSE=1
// to end with a 100 MB SSE through each proxy of the last start (RSS growth), BENCH_PROF=<dir> for
// CPU profiles (node --cpu-prof) written at exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBigStream } from './support/big-stream.js';
import { load } from './support/load.js';
import { runUpstream } from './support/mcp-upstream.js';
import { cpuPreciseMicros, pinSelfAndPlanProxy, statusMemory } from './support/proc.js';
import { freePort, median, quantile, rotate } from './support/processes.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const NODE = process.env['BENCH_NODE'] || process.execPath;
const SECONDS = Number(process.env['BENCH_SECONDS'] || 1);
const WARM_SECONDS = Number(process.env['BENCH_WARM_SECONDS'] || 1);
const CLIENTS = Number(process.env['BENCH_CLIENTS'] || 50);
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] || 4));
const STARTS = Math.max(1, Number(process.env['BENCH_STARTS'] || 3));
/** The proxies' pinning prefix (e.g. taskset -c 0), set by main() when it pins itself. */
let pin: string[] = [];
const LOG_LEVEL = process.env['BENCH_LOG_LEVEL'] || 'warn';
const SSE = process.env['BENCH_SSE'] === '1';
// BENCH_PROF=<dir>: the proxies write a CPU profile there (node --cpu-prof) when they exit.
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
  name: string;
  child: ChildProcess;
  url: string;
}

async function startProxy(name: string, variant: string, upPort: number, config: string): Promise<Proxy> {
  const port = await freePort();
  const env = { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' };
  // The floor, or any relay script taking the same arguments (<port> <upstream origin>).
  if (variant === 'floor' || /\.m?js$/.test(variant)) {
    const script = variant === 'floor' ? join(HERE, 'support', 'floor-relay.js') : resolve(variant);
    const [cmd, ...args] = [...pin, NODE, ...FLOOR_PROF, script];
    const child = spawn(cmd!, [...args, String(port), `http://127.0.0.1:${upPort}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
    await waitFor(`http://127.0.0.1:${port}/mcp`, 200);
    return { name, child, url: `http://127.0.0.1:${port}/mcp` };
  }
  const admin = await freePort();
  const cli = join(resolve(variant), 'dist', 'cli.js');
  const [cmd, ...args] = [...pin, NODE, ...PROF, cli];
  const child = spawn(
    cmd!,
    [...args, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(admin), '--log-level', LOG_LEVEL],
    // The access log (at info) goes to a pipe this process drains, as a container runtime's would.
    { stdio: ['ignore', 'pipe', 'inherit'], env },
  );
  child.stdout!.resume();
  await waitFor(`http://127.0.0.1:${admin}/ready`);
  return { name, child, url: `http://127.0.0.1:${port}/mcp/up` };
}

async function stop(p: Proxy): Promise<void> {
  if (p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  await new Promise((r) => p.child.once('exit', r));
}

const BODY =
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2,"note":"a 215-byte tools/call........................................................................................"}}}';

/** One slice of load through one proxy: its CPU µs per request answered, and the rate. */
async function slice(p: Proxy): Promise<{ cpuUs: number; rps: number }> {
  const pid = p.child.pid!;
  const t0 = cpuPreciseMicros(pid);
  const r = await load(p.url, BODY, CLIENTS, SECONDS);
  const cpu = cpuPreciseMicros(pid) - t0;
  if (r.errors > 0) throw new Error(`${p.name}: ${r.errors} errors`);
  return { cpuUs: cpu / r.lat.length, rps: r.rps };
}

async function sse(p: Proxy): Promise<{ growth: number; seconds: number }> {
  const pid = p.child.pid!;
  const before = statusMemory(pid).rss;
  let max = before;
  const tick = setInterval(() => (max = Math.max(max, statusMemory(pid).rss)), 50);
  const t = Date.now();
  const bytes = await readBigStream(p.url);
  clearInterval(tick);
  max = Math.max(max, statusMemory(pid).rss);
  if (bytes < 100 * 1024 * 1024) throw new Error(`SSE: only ${bytes} bytes`);
  return { growth: max - before, seconds: (Date.now() - t) / 1000 };
}

/** The rounds' spread: interquartile range, then min..max. */
const spread = (a: number[], digits: number) =>
  `IQR ${quantile(a, 0.25).toFixed(digits)}..${quantile(a, 0.75).toFixed(digits)}, range ${Math.min(...a).toFixed(digits)}..${Math.max(...a).toFixed(digits)}`;

async function main(): Promise<void> {
  if (process.argv[2] === '--upstream') return runUpstream(Number(process.argv[3]));
  const pinning = pinSelfAndPlanProxy();
  pin = pinning.proxy;
  const variants = process.argv.slice(2).map((a) => {
    const [name, path] = a.includes('=') ? a.split('=') : [a, a];
    return { name: name!, path: path! };
  });
  // No builds named (as `make bench` runs it): this repo's build.
  if (variants.length === 0) variants.push({ name: 'sidecar', path: join(HERE, '..', '..') });
  if (!variants.some((v) => v.path === 'floor')) variants.push({ name: 'floor', path: 'floor' });
  const floorName = variants.find((v) => v.path === 'floor')!.name;
  // A second floor relay, measured like the rest: its ratio to the first should read 1, and how far
  // it strays is what this machine's noise does to every ratio of the run.
  variants.push({ name: `${floorName}_b`, path: join(HERE, 'support', 'floor-relay.js') });
  const upPort = await freePort();
  const upstream = spawn(process.execPath, [fileURLToPath(import.meta.url), '--upstream', String(upPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => upstream.stdout!.once('data', r));
  const config = join(mkdtempSync(join(tmpdir(), 'tg-cpu-')), 'thoughtgate.yaml');
  writeFileSync(
    config,
    `sources:\n  - name: up\n    url: http://127.0.0.1:${upPort}/mcp\nrules:\n  - name: no-deletes\n    match: { tool: "delete_*" }\n    action: deny\ndefaultAction: forward\n`,
  );
  console.log(
    `# ${pinning.note}; proxies on ${NODE}, sidecars at --log-level ${LOG_LEVEL}; ${CLIENTS} clients, closed loop, body ${BODY.length} B; ` +
      `${STARTS} starts of every proxy, each warmed ${WARM_SECONDS} s and then ${ROUNDS} rounds of one ${SECONDS} s slice per proxy (order rotated)`,
  );
  let proxies: Proxy[] = [];
  const runs = new Map<string, { cpuUs: number; rps: number }[]>(variants.map((v) => [v.name, []]));
  try {
    // A process keeps its own speed (±15 % here between two starts of the same floor relay, round
    // after round): every start is a new draw, so each proxy is started STARTS times.
    for (let start = 0; start < STARTS; start++) {
      for (const v of rotate(variants, start)) proxies.push(await startProxy(v.name, v.path, upPort, config));
      proxies = variants.map((v) => proxies.find((p) => p.name === v.name)!);
      for (const p of rotate(proxies, start)) await load(p.url, BODY, CLIENTS, WARM_SECONDS);
      for (let round = 0; round < ROUNDS; round++) {
        for (const p of rotate(proxies, round + start)) runs.get(p.name)!.push(await slice(p));
        const at = runs.get(floorName)!.length - 1;
        const floor = runs.get(floorName)![at]!.cpuUs;
        console.log(
          `start ${start} round ${round}: ${proxies.map((p) => `${p.name} ${runs.get(p.name)![at]!.cpuUs.toFixed(1)}`).join(', ')} µs/req; ratio to floor ` +
            proxies
              .filter((p) => p.name !== floorName)
              .map((p) => `${p.name} ${(runs.get(p.name)![at]!.cpuUs / floor).toFixed(3)}`)
              .join(', '),
        );
      }
      if (SSE && start === STARTS - 1) break; // the last processes stream the SSE below
      for (const p of proxies) await stop(p);
      proxies = [];
    }
    const floorRuns = runs.get(floorName)!;
    for (const [name, rs] of runs) {
      const cpu = rs.map((r) => r.cpuUs);
      console.log(`${name}.cpu_us_per_req ${median(cpu).toFixed(1)} (${spread(cpu, 1)})`);
      console.log(`${name}.rps ${median(rs.map((r) => r.rps)).toFixed(0)}`);
      if (name === floorName) continue;
      const ratios = rs.map((r, i) => r.cpuUs / floorRuns[i]!.cpuUs);
      console.log(`${name}.cpu_to_floor ${median(ratios).toFixed(3)} (${spread(ratios, 3)})`);
    }
    // Pairs of builds (neither the floor): the ratio of each to the first, per round.
    const builds = variants.filter((v) => v.name !== floorName && v.name !== `${floorName}_b`);
    for (const b of builds.slice(1)) {
      const first = runs.get(builds[0]!.name)!;
      const ratios = runs.get(b.name)!.map((r, i) => r.cpuUs / first[i]!.cpuUs);
      console.log(`${b.name}.cpu_to_${builds[0]!.name} ${median(ratios).toFixed(3)} (${spread(ratios, 3)})`);
    }
    if (SSE) {
      for (const p of proxies) {
        const s = await sse(p);
        console.log(`${p.name}.sse_100mb_rss_growth_mib ${s.growth.toFixed(1)} (${s.seconds.toFixed(2)} s)`);
      }
    }
  } finally {
    for (const p of proxies) await stop(p);
    upstream.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

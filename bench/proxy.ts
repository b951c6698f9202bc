// The sidecar's cost per pod (issue 11), in one run: every figure for three targets side by side —
// direct to the upstream, the Node floor relay (bench/support/floor-relay.ts: what node:http +
// undici can do) and the sidecar — so each is also a ratio to direct and to the floor. Prints
// `name value [unit]` lines and a closing `target.<name> <value> <limit> met|missed` block;
// asserts nothing. Bounded in count and time; loopback only; free ports only.
//
// Processes: this one is the load generator; it starts a minimal upstream (bench/support/
// mcp-upstream.ts). Both are pinned to one core, the proxy under test (floor or sidecar, run by
// BENCH_NODE, the same binary for both) to another, when taskset and two cores are there.
//
//   node dist/bench/proxy.js   (env: BENCH_NODE, BENCH_SECONDS per load run, BENCH_ROUNDS, BENCH_STARTS,
//                               BENCH_NICE to yield less to other work on a shared machine)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureBigStream } from './support/big-stream.js';
import { alternate, load } from './support/load.js';
import { runUpstream, SSE_TOTAL_BYTES } from './support/mcp-upstream.js';
import { policies } from './support/policies.js';
import { benchSettings } from './support/settings.js';
import { freePort, median, pct, quantile, rotate, spawnReady } from './support/processes.js';
import { cpuOf, cpuPreciseMicros, foreignLoad, type Memory, memory, niceSelf, peakTracker, pinSelfAndPlanProxy } from './support/proc.js';
import { post, PROXY_NODE_OPTIONS, proxyPids, reapOnExit, type Started, startFloor, startSidecar } from './support/proxies.js';

const { cli: CLI, floor: FLOOR, node: NODE, seconds: SECONDS, rounds: ROUNDS, warmSeconds: WARM_SECONDS } = benchSettings(import.meta.url);
const STARTS = Math.max(5, Number(process.env['BENCH_STARTS'] || 5));
const SOURCE = 'up';

// Small tools/call bodies (96 and 117 bytes), the same as this bench has always sent.
const FORWARD = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}';
const GOVERNED = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi","n":1.5,"x":null}}}';
const DENIED = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/x"}}}';

function configs(dir: string, upstream: string): { plain: string; cedar: string } {
  const base = `sources:\n  - name: ${SOURCE}\n    url: ${upstream}\nrules:\n  - name: no-deletes\n    match: { tool: "delete_*" }\n    action: deny\n`;
  const cedar = `${base}  - name: by-policy\n    match: { tool: "echo" }\n    action: policy\ndefaultAction: forward\ncedar:\n  policies: |\n${policies(20)
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
  const files = { plain: join(dir, 'plain.yaml'), cedar: join(dir, 'cedar.yaml') };
  writeFileSync(files.plain, `${base}defaultAction: forward\n`);
  writeFileSync(files.cedar, cedar);
  return files;
}

// ---------- output ----------

const line = (name: string, value: number | string, unit = '') =>
  console.log(`${name} ${typeof value === 'number' ? (Number.isFinite(value) ? value.toFixed(3) : 'NaN') : value}${unit ? ` ${unit}` : ''}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- load runs ----------

interface Run {
  rps: number;
  p50: number;
  p99: number;
  /** CPU µs of the proxy process per request (NaN for direct). */
  cpu: number;
  errors: number;
  requests: number;
  /** Share of each pinned core's time spent on work not ours (other users of the machine). */
  otherOnProxyCore: number;
  otherOnLoadCore: number;
}

/** Our processes on each pinned core, for telling our CPU use from other users'. */
const ours = {
  cores: null as { proxy: number; load: number } | null,
  /** CPU µs used so far by our processes on the proxy core: every proxy started, running or exited. */
  onProxyCore: (): number => cpuOf(proxyPids(), true),
  /** ... and on the load core: this load generator and the upstream. */
  onLoadCore: (): number => 0,
};

/** Median added µs of a governed call over a plain forward, one client alternating them, per round. */
const cedarPaired: { plain: number; governed: number }[] = [];
const pairedAdded = () => median(cedarPaired.map((r) => (r.governed - r.plain) * 1000));

/** Every run of a (phase, target, clients), over the rounds; figures are their medians. */
const runs = new Map<string, Run[]>();

async function measure(key: string, url: string, body: string, clients: number, pid: number | null, onTick?: () => void, seconds = SECONDS): Promise<void> {
  const otherOnProxyCore = foreignLoad(ours.cores?.proxy ?? null, ours.onProxyCore);
  const otherOnLoadCore = foreignLoad(ours.cores?.load ?? null, ours.onLoadCore);
  const cpu0 = pid === null ? Number.NaN : cpuPreciseMicros(pid);
  const r = await load(url, body, clients, seconds, onTick ? { onTick } : {});
  const cpu1 = pid === null ? Number.NaN : cpuPreciseMicros(pid);
  const run = {
    rps: r.rps,
    p50: pct(r.lat, 50),
    p99: pct(r.lat, 99),
    cpu: (cpu1 - cpu0) / r.lat.length,
    errors: r.errors,
    requests: r.lat.length,
    otherOnProxyCore: otherOnProxyCore(),
    otherOnLoadCore: otherOnLoadCore(),
  };
  runs.set(key, [...(runs.get(key) ?? []), run]);
}

function fig(key: string): Run {
  const rs = runs.get(key) ?? [];
  const m = (f: (r: Run) => number) => median(rs.map(f));
  return {
    rps: m((r) => r.rps),
    p50: m((r) => r.p50),
    p99: m((r) => r.p99),
    cpu: m((r) => r.cpu),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    requests: rs.reduce((a, r) => a + r.requests, 0),
    otherOnProxyCore: m((r) => r.otherOnProxyCore),
    otherOnLoadCore: m((r) => r.otherOnLoadCore),
  };
}

/** a/b per round (runs of the same round were made minutes apart at most), their median. */
function ratios(a: string, b: string, f: 'rps' | 'cpu'): number[] {
  const [ra, rb] = [runs.get(a) ?? [], runs.get(b) ?? []];
  return ra.map((r, i) => r[f] / (rb[i]?.[f] ?? Number.NaN));
}
const ratio = (a: string, b: string, f: 'rps' | 'cpu') => median(ratios(a, b, f));

/** The median of the per-round ratios, and with more than one round their range (and with more
 *  than three their interquartile range). */
function ratioLine(name: string, a: string, b: string, f: 'rps' | 'cpu'): void {
  const rs = ratios(a, b, f);
  line(name, median(rs));
  if (rs.length > 1) line(`${name}_range`, `${Math.min(...rs).toFixed(3)}..${Math.max(...rs).toFixed(3)}`);
  if (rs.length > 3) line(`${name}_iqr`, `${quantile(rs, 0.25).toFixed(3)}..${quantile(rs, 0.75).toFixed(3)}`);
}

function printMemory(prefix: string, m: Memory): void {
  line(`${prefix}.rss_mib`, m.rss);
  line(`${prefix}.anon_mib`, m.anon);
  line(`${prefix}.private_mib`, m.private);
}

// ---------- phases ----------

type Target = 'floor' | 'sidecar' | 'sidecar_cedar';

interface Env {
  pin: string[];
  upstreamOrigin: string;
  direct: string;
  files: { plain: string; cedar: string };
}

async function start(env: Env, target: Target, o: { logLevel?: string; stdout?: 'pipe' | 'ignore' } = {}): Promise<Started> {
  const common = { node: NODE, pin: env.pin, port: await freePort() };
  if (target === 'floor') return startFloor({ ...common, script: FLOOR, upstreamOrigin: env.upstreamOrigin, upstreamPath: '/mcp' });
  return startSidecar({
    ...common,
    cli: CLI,
    config: target === 'sidecar' ? env.files.plain : env.files.cedar,
    adminPort: await freePort(),
    source: SOURCE,
    logLevel: o.logLevel ?? 'info',
    stdout: o.stdout ?? 'pipe',
  });
}

const startFirst: Record<Target, number> = { floor: Number.NaN, sidecar: Number.NaN, sidecar_cedar: Number.NaN };

/** An idle pod is idle for minutes; 5 s is past the sidecar's idle collection (two quiet 1 s windows) after its start and first call. */
const IDLE_READ_MS = 5000;

/** Start to ready and to the first answered request (a governed one with Cedar), median of STARTS;
 *  the last start of each stays up for the idle-memory reading and is returned. */
async function startTimes(env: Env): Promise<{ kept: Record<Target, Started>; idle: Record<Target, Promise<Memory>> }> {
  console.log(`# start: spawn to ready, and to the first request answered, median of ${STARTS} starts`);
  const kept = {} as Record<Target, Started>;
  const idle = {} as Record<Target, Promise<Memory>>;
  for (const target of ['floor', 'sidecar', 'sidecar_cedar'] as const) {
    const ready: number[] = [];
    const first: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      const p = await start(env, target);
      const status = await post(p.url, target === 'sidecar_cedar' ? GOVERNED : FORWARD);
      first.push(Number(process.hrtime.bigint() - p.t0) / 1e6);
      ready.push(p.readyMs);
      if (status !== 200) line(`start.${target}.first_request_status`, String(status));
      if (i < STARTS - 1) await p.stop();
      else {
        kept[target] = p;
        // Idle memory: this fresh process, one request made, read IDLE_READ_MS later (the sidecar
        // collects once a 1 s window after work was quiet: sidecar/proxy/reclaim.ts).
        idle[target] = sleep(IDLE_READ_MS).then(() => memory(p.pid));
      }
    }
    startFirst[target] = median(first);
    line(`start.${target}.ready_ms`, median(ready));
    line(`start.${target}.first_request_ms`, median(first));
    line(`start.${target}.first_request_spread_ms`, `${Math.min(...first).toFixed(1)}..${Math.max(...first).toFixed(1)}`);
  }
  return { kept, idle };
}

async function idleMemory(reads: Record<Target, Promise<Memory>>): Promise<Record<Target, Memory>> {
  console.log(`# idle memory: a fresh process, one request made (a governed one with Cedar), read ${IDLE_READ_MS / 1000} s later`);
  const out = {} as Record<Target, Memory>;
  for (const target of ['floor', 'sidecar', 'sidecar_cedar'] as const) {
    out[target] = await reads[target];
    printMemory(`idle.${target}`, out[target]);
  }
  return out;
}

/** 100 MB of SSE through a proxy: its RSS growth while it streams, same upstream, same reader. */
async function sse(name: string, p: Started): Promise<number> {
  const { bytes, seconds, before, top } = await measureBigStream(p.pid, p.url);
  line(`sse.${name}.mib`, bytes / 1048576);
  line(`sse.${name}.mib_per_s`, bytes / 1048576 / seconds);
  line(`sse.${name}.rss_growth_mib`, top.rss - before.rss);
  line(`sse.${name}.anon_growth_mib`, top.anon - before.anon);
  if (bytes < SSE_TOTAL_BYTES) line(`sse.${name}.short_by_bytes`, SSE_TOTAL_BYTES - bytes);
  return top.rss - before.rss;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--upstream') return runUpstream(Number(process.argv[3]));
  const pinning = pinSelfAndPlanProxy();
  const proxyNode = NODE === process.execPath ? `node ${process.version}` : NODE;
  console.log(
    `# proxies (floor relay and sidecar) on ${proxyNode}, NODE_OPTIONS=${PROXY_NODE_OPTIONS}; load generator and upstream on node ${process.version}`,
  );
  console.log(`# ${pinning.note}; ${niceSelf(process.env['BENCH_NICE'])}`);
  console.log(`# ${SECONDS} s per load run, ${ROUNDS} rounds (figures are medians over rounds), closed loop`);

  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-'));
  const upPort = await freePort();
  const upstream = reapOnExit(await spawnReady(process.execPath, [fileURLToPath(import.meta.url), '--upstream', String(upPort)]));
  const upstreamOrigin = `http://127.0.0.1:${upPort}`;
  const env: Env = { pin: pinning.proxy, upstreamOrigin, direct: `${upstreamOrigin}/mcp`, files: configs(dir, `${upstreamOrigin}/mcp`) };
  const live: Started[] = [];
  ours.cores = pinning.cores;
  ours.onLoadCore = () => cpuOf([process.pid, upstream.pid!], false);
  try {
    // The load generator's own first request (module loading, connection) stays out of start times.
    await post(env.direct, FORWARD);

    const startNoise = foreignLoad(ours.cores?.proxy ?? null, ours.onProxyCore);
    const { kept, idle: idleReads } = await startTimes(env);
    line('noise.start.proxy_core_other_share', startNoise());
    live.push(...Object.values(kept));
    const idle = await idleMemory(idleReads);

    console.log('# 100 MB SSE (64 KiB events) through the idle processes above (floor, Cedar sidecar); RSS growth = peak - before');
    const sseFloor = await sse('floor', kept.floor);
    const sseSidecar = await sse('sidecar', kept.sidecar_cedar);
    for (const p of live.splice(0)) await p.stop();

    // ---------- load ----------
    const floor = await start(env, 'floor');
    live.push(floor);
    // As deployed: the default level, the access log to a pipe that is drained (this process reads it).
    const sidecar = await start(env, 'sidecar_cedar');
    live.push(sidecar);
    // The access log's cost: three sidecars alike but for the log, with the same history.
    const logPipe = await start(env, 'sidecar');
    live.push(logPipe);
    const logDevNull = await start(env, 'sidecar', { stdout: 'ignore' });
    live.push(logDevNull);
    const logWarn = await start(env, 'sidecar', { logLevel: 'warn', stdout: 'ignore' });
    live.push(logWarn);

    // Warm-up: JIT and connection pools in their steady state.
    for (const url of [env.direct, floor.url, sidecar.url]) await load(url, FORWARD, 50, WARM_SECONDS);

    const peakFloor = peakTracker(floor.pid);
    const peakForward = peakTracker(sidecar.pid);
    const peakCedar = peakTracker(sidecar.pid);
    // Forwarding first (Cedar not yet evaluated in this sidecar), the targets alternated.
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of [1, 50]) {
        const steps = [
          () => measure(`fwd.direct.c${c}`, env.direct, FORWARD, c, null),
          () => measure(`fwd.floor.c${c}`, floor.url, FORWARD, c, floor.pid, c === 50 ? peakFloor.sample : undefined),
          () => measure(`fwd.sidecar.c${c}`, sidecar.url, FORWARD, c, sidecar.pid, c === 50 ? peakForward.sample : undefined),
        ];
        for (const step of rotate(steps, round)) await step();
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of [1, 50]) await measure(`cedar.sidecar.c${c}`, sidecar.url, GOVERNED, c, sidecar.pid, c === 50 ? peakCedar.sample : undefined);
      await measure('deny.sidecar.c1', sidecar.url, DENIED, 1, sidecar.pid);
      const [plain, governed] = await alternate(sidecar.url, [FORWARD, GOVERNED], SECONDS);
      cedarPaired.push({ plain: pct(plain!, 50), governed: pct(governed!, 50) });
    }
    // The access log's cost: the same forwarding at 50 clients, three ways, same warm-up, alternating.
    for (const p of [logPipe, logDevNull, logWarn]) await load(p.url, FORWARD, 50, WARM_SECONDS);
    const pipeBytes0 = logPipe.log.bytes;
    const pipeLines0 = logPipe.log.lines;
    for (let round = 0; round < ROUNDS; round++) {
      const steps = [
        () => measure('log.info_pipe.c50', logPipe.url, FORWARD, 50, logPipe.pid),
        () => measure('log.info_devnull.c50', logDevNull.url, FORWARD, 50, logDevNull.pid),
        () => measure('log.warn.c50', logWarn.url, FORWARD, 50, logWarn.pid),
      ];
      for (const step of rotate(steps, round)) await step();
    }

    // ---------- report ----------
    console.log('# the same 100 MB SSE through the floor and the Cedar sidecar after all the load above (heaps already grown)');
    await sse('after_load.floor', floor);
    const sseSidecarAfterLoad = await sse('after_load.sidecar', sidecar);
    const pipeRequests = fig('log.info_pipe.c50').requests;
    const peak = { floor: peakFloor.peak(), forward: peakForward.peak(), cedar: peakCedar.peak() };
    await ownView(sidecar);
    report({
      idle,
      peak,
      sseFloor,
      sseSidecar,
      sseSidecarAfterLoad,
      logBytesPerRequest: (logPipe.log.bytes - pipeBytes0) / pipeRequests,
      logLinesPerRequest: (logPipe.log.lines - pipeLines0) / pipeRequests,
    });
  } finally {
    for (const p of live) await p.stop();
    upstream.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The sidecar's own view: the share of requests it says it added under 1 ms to, by decision. */
async function ownView(sidecar: Started): Promise<void> {
  const metrics = await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`).then((r) => r.text());
  for (const decision of ['forward', 'deny']) {
    const count = Number(
      new RegExp(`thoughtgate_sidecar_added_latency_seconds_count\\{source="${SOURCE}",decision="${decision}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0,
    );
    const under1ms = Number(
      new RegExp(`thoughtgate_sidecar_added_latency_seconds_bucket\\{le="0.001",source="${SOURCE}",decision="${decision}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0,
    );
    if (count > 0) line(`sidecar_metric.added_latency.${decision}.share_under_1ms`, under1ms / count);
  }
}

function report(o: {
  idle: Record<Target, Memory>;
  peak: { floor: Memory; forward: Memory; cedar: Memory };
  sseFloor: number;
  sseSidecar: number;
  sseSidecarAfterLoad: number;
  logBytesPerRequest: number;
  logLinesPerRequest: number;
}): void {
  const errors = [...runs.keys()].reduce((a, k) => a + fig(k).errors, 0);
  for (const c of [1, 50]) {
    const d = fig(`fwd.direct.c${c}`);
    const f = fig(`fwd.floor.c${c}`);
    const s = fig(`fwd.sidecar.c${c}`);
    const g = fig(`cedar.sidecar.c${c}`);
    console.log(`# forwarding, ${c} client${c > 1 ? 's' : ''}`);
    line(`throughput.c${c}.direct_rps`, d.rps);
    line(`throughput.c${c}.floor_rps`, f.rps);
    line(`throughput.c${c}.sidecar_rps`, s.rps);
    ratioLine(`throughput.c${c}.floor_ratio`, `fwd.floor.c${c}`, `fwd.direct.c${c}`, 'rps');
    ratioLine(`throughput.c${c}.sidecar_ratio`, `fwd.sidecar.c${c}`, `fwd.direct.c${c}`, 'rps');
    ratioLine(`throughput.c${c}.sidecar_to_floor`, `fwd.sidecar.c${c}`, `fwd.floor.c${c}`, 'rps');
    for (const [name, r] of [
      ['direct', d],
      ['floor', f],
      ['sidecar', s],
    ] as const) {
      line(`latency.c${c}.${name}.p50_ms`, r.p50);
      line(`latency.c${c}.${name}.p99_ms`, r.p99);
      if (name !== 'direct') {
        line(`latency.c${c}.${name}.added_p50_ms`, r.p50 - d.p50);
        line(`latency.c${c}.${name}.added_p99_ms`, r.p99 - d.p99);
      }
    }
    line(`cpu.c${c}.floor_us_per_req`, f.cpu);
    line(`cpu.c${c}.sidecar_us_per_req`, s.cpu);
    ratioLine(`cpu.c${c}.sidecar_to_floor`, `fwd.sidecar.c${c}`, `fwd.floor.c${c}`, 'cpu');
    console.log(`# with a Cedar policy reading an argument (20 policies), ${c} client${c > 1 ? 's' : ''}`);
    line(`cedar.c${c}.rps`, g.rps);
    ratioLine(`cedar.c${c}.ratio`, `cedar.sidecar.c${c}`, `fwd.direct.c${c}`, 'rps');
    line(`cedar.c${c}.p50_ms`, g.p50);
    line(`cedar.c${c}.p99_ms`, g.p99);
    line(`cedar.c${c}.added_p50_us`, (g.p50 - s.p50) * 1000);
    line(`cedar.c${c}.cpu_us_per_req`, g.cpu);
    line(`cedar.c${c}.added_cpu_us`, g.cpu - s.cpu);
  }
  console.log('# Cedar added per call, one client alternating plain and governed calls (median latency difference)');
  line('cedar.paired.plain_p50_ms', median(cedarPaired.map((r) => r.plain)));
  line('cedar.paired.governed_p50_ms', median(cedarPaired.map((r) => r.governed)));
  line('cedar.paired.added_p50_us', pairedAdded());
  const deny = fig('deny.sidecar.c1');
  line('deny.c1.p50_ms', deny.p50);
  line('deny.c1.p99_ms', deny.p99);

  console.log('# access log, 50 clients forwarding, three sidecars without Cedar: info to a drained pipe (default), info to /dev/null, warn');
  const [pipe, devnull, warn] = ['info_pipe', 'info_devnull', 'warn'].map((k) => fig(`log.${k}.c50`)) as [Run, Run, Run];
  line('log.info_pipe.cpu_us_per_req', pipe.cpu);
  line('log.info_devnull.cpu_us_per_req', devnull.cpu);
  line('log.warn.cpu_us_per_req', warn.cpu);
  line('log.info_pipe.rps', pipe.rps);
  line('log.info_devnull.rps', devnull.rps);
  line('log.warn.rps', warn.rps);
  line('log.info_pipe.share_of_cpu', (pipe.cpu - warn.cpu) / pipe.cpu);
  line('log.bytes_per_request', o.logBytesPerRequest);
  line('log.lines_per_request', o.logLinesPerRequest);

  console.log('# peak memory under the 50-client load (sampled every 100 ms)');
  printMemory('peak.floor', o.peak.floor);
  printMemory('peak.sidecar_forward', o.peak.forward);
  printMemory('peak.sidecar_cedar', o.peak.cedar);
  if (errors > 0) line('errors', errors);

  // A shared machine: how much of each pinned core other users took during the load runs.
  const all = [...runs.values()].flat();
  const spread = (xs: number[]) => `${median(xs).toFixed(3)} (max ${Math.max(...xs).toFixed(3)})`;
  console.log('# other users of the machine during the load runs: share of the pinned core busy with work not ours, median (max)');
  line('noise.load.proxy_core_other_share', spread(all.map((r) => r.otherOnProxyCore).filter((x) => !Number.isNaN(x))));
  line('noise.load.load_core_other_share', spread(all.map((r) => r.otherOnLoadCore).filter((x) => !Number.isNaN(x))));
  const worst = Math.max(median(all.map((r) => r.otherOnProxyCore)), median(all.map((r) => r.otherOnLoadCore)));
  if (worst > 0.1)
    console.log(`# WARNING: other work took ${(worst * 100).toFixed(0)} % of a pinned core: compare only figures of this run, ratios rather than rates`);

  console.log('# against the targets of issue 11');
  const target = (name: string, value: number, op: '<=' | '>=', limit: number) =>
    console.log(`target.${name} ${value.toFixed(3)} ${op}${limit} ${(op === '<=' ? value <= limit : value >= limit) ? 'met' : 'missed'}`);
  const c50 = { s: fig('fwd.sidecar.c50'), g: fig('cedar.sidecar.c50') };
  target('cedar_added_us', pairedAdded(), '<=', 50);
  target('cedar_added_cpu_us', c50.g.cpu - c50.s.cpu, '<=', 50);
  target('policy_throughput_ratio', ratio('cedar.sidecar.c50', 'fwd.direct.c50', 'rps'), '>=', 0.4);
  target('start_ms', startFirst.sidecar, '<=', 150);
  target('start_cedar_ms', startFirst.sidecar_cedar, '<=', 300);
  // Fresh: the first stream also pays one-time growth (JIT, heap sizing) that a 5 MB stream pays too.
  target('sse_growth_fresh_mib', o.sseSidecar, '<=', 10);
  target('sse_growth_after_load_mib', o.sseSidecarAfterLoad, '<=', 10);
  target('idle_private_cedar_mib', o.idle.sidecar_cedar.anon, '<=', 32);
  target('peak_private_mib', Math.max(o.peak.forward.anon, o.peak.cedar.anon), '<=', 64);
  // One process each, two rounds: a rough figure. bench/cpu-per-request.ts (also in `make bench`)
  // measures this ratio over several starts and many short alternating slices, with its spread.
  target('cpu_per_request_to_floor', ratio('fwd.sidecar.c50', 'fwd.floor.c50', 'cpu'), '<=', 1.2);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// Resource-exhaustion attacks on the sidecar (issue 7, class 9), printing one `name value` line per
// figure: RSS growth, /metrics size, the event loop's responsiveness (latency of the admin /health
// endpoint, which shares the sidecar's one thread, sampled every 10 ms while the attack runs), and
// how the sidecar answered. Three processes: a minimal upstream, the sidecar (the built CLI, run by
// BENCH_NODE, its own RSS) and this generator. Bounded in count and time; loopback only.
//
//   node dist/bench/attacks.js
//   BENCH_CLI=/path/to/old/dist/cli.js BENCH_BASELINE=1 node dist/bench/attacks.js   (a build without
//   the bounds: its config schema has no server.requestBodyTimeout, so none is written)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnReady } from './support/processes.js';
import { readBodyText } from '../lib/read-body.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI = process.env['BENCH_CLI'] || join(HERE, '..', 'cli.js');
const NODE = process.env['BENCH_NODE'] || process.execPath;
const BASELINE = process.env['BENCH_BASELINE'] === '1';

// ---------- upstream mode: tools/list answers a 13 MB list, anything else a small result ----------
function runUpstream(): void {
  const tools = Array.from({ length: 13_000 }, (_, i) => ({ name: `tool_${i}`, description: 'd'.repeat(950), inputSchema: { type: 'object' } }));
  const list = JSON.stringify({ tools });
  const server = http.createServer((req, res) => {
    // The fake upstream reads as the sidecar does: bounded, strict UTF-8.
    void readBodyText(req, { limitBytes: 64 * 1024 * 1024 }).then(
      (body) => {
        const id = /"id":(\d+|"[^"]*")/.exec(body)?.[1] ?? 'null';
        const out = body.includes('"tools/list"') ? `{"jsonrpc":"2.0","id":${id},"result":${list}}` : `{"jsonrpc":"2.0","id":${id},"result":{}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      },
      () => res.destroy(),
    );
  });
  server.listen(Number(process.argv[3]), '127.0.0.1', () => process.stdout.write('ready\n'));
}

// ---------- helpers ----------

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const line = (name: string, value: number | string, unit = '') =>
  console.log(`${name} ${typeof value === 'number' ? value.toFixed(1) : value}${unit ? ` ${unit}` : ''}`);

/** Samples the sidecar while an attack runs: peak RSS and the latency of /health (event-loop stalls). */
function monitor(pid: number, adminPort: number): { stop(): Promise<{ rssPeak: number; healthMaxMs: number; healthP99Ms: number }> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let rssPeak = rssMiB(pid);
  const lat: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = process.hrtime.bigint();
      await new Promise<void>((r) => {
        const req = http.get({ host: '127.0.0.1', port: adminPort, path: '/health', agent }, (res) => {
          res.resume();
          res.on('end', () => r());
        });
        req.on('error', () => r());
      });
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      try {
        rssPeak = Math.max(rssPeak, rssMiB(pid));
      } catch {
        /* exited */
      }
      await sleep(10);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      lat.sort((a, b) => a - b);
      return { rssPeak, healthMaxMs: lat[lat.length - 1] ?? 0, healthP99Ms: lat[Math.floor(lat.length * 0.99)] ?? 0 };
    },
  };
}

interface Sidecar {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  logBytes: () => number;
}

async function startSidecar(upPort: number): Promise<Sidecar> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-attacks-'));
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(
    config,
    `
sources:
  - name: up
    url: http://127.0.0.1:${upPort}/mcp
    expose: { mode: blocklist, tools: ["tool_1"] }
rules:
  - name: no-deletes
    match: { tool: "delete_*" }
    action: deny
defaultAction: forward
${BASELINE ? '' : 'server: { requestBodyTimeout: 5s }'}
`,
  );
  const port = await freePort();
  const adminPort = await freePort();
  // Log level info: log volume is one of the costs measured. The same V8 setting as the image.
  const proc = spawn(NODE, [CLI, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(adminPort), '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' },
  });
  let logBytes = 0;
  proc.stdout!.on('data', (c: Buffer) => {
    logBytes += c.length;
  });
  for (;;) {
    if (
      await fetch(`http://127.0.0.1:${adminPort}/ready`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      break;
    await sleep(20);
  }
  await sleep(500);
  return { proc, port, adminPort, logBytes: () => logBytes };
}

async function metricsBytes(s: Sidecar): Promise<number> {
  return Buffer.byteLength(await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text());
}

/** One request on its own connection; resolves with the status (0: no HTTP answer). */
function request(port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

function countStatuses(statuses: number[]): string {
  const by = new Map<number, number>();
  for (const s of statuses) by.set(s, (by.get(s) ?? 0) + 1);
  return [...by]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${s}x${n}`)
    .join(',');
}

/** Each attack on a fresh sidecar, so growth left by one does not hide or inflate the next. */
async function attack(name: string, upPort: number, run: (s: Sidecar) => Promise<Record<string, number | string>>): Promise<void> {
  const s = await startSidecar(upPort);
  const rss0 = rssMiB(s.proc.pid!);
  const metrics0 = await metricsBytes(s);
  const log0 = s.logBytes();
  const mon = monitor(s.proc.pid!, s.adminPort);
  const t = Date.now();
  const extra = await run(s);
  const seconds = (Date.now() - t) / 1000;
  const m = await mon.stop();
  await sleep(300);
  line(`${name}.seconds`, seconds);
  line(`${name}.rss_before_mib`, rss0);
  line(`${name}.rss_peak_growth_mib`, m.rssPeak - rss0);
  line(`${name}.rss_after_growth_mib`, rssMiB(s.proc.pid!) - rss0);
  line(`${name}.metrics_bytes_before`, metrics0);
  line(`${name}.metrics_bytes_after`, await metricsBytes(s));
  line(`${name}.health_max_ms`, m.healthMaxMs);
  line(`${name}.health_p99_ms`, m.healthP99Ms);
  line(`${name}.log_mib`, (s.logBytes() - log0) / 1048576);
  for (const [k, v] of Object.entries(extra)) line(`${name}.${k}`, v);
  s.proc.kill('SIGTERM');
  await new Promise((r) => s.proc.once('exit', r));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--upstream') return runUpstream();
  console.log(
    `# thoughtgate exhaustion attacks: sidecar ${CLI} on ${NODE === process.execPath ? `node ${process.version}` : NODE}${BASELINE ? ' (baseline config)' : ''}`,
  );
  const upPort = await freePort();
  const upstream = await spawnReady(process.execPath, [fileURLToPath(import.meta.url), '--upstream', String(upPort)]);

  // a. Made-up methods and made-up /mcp/<x> paths, 20 at a time, in two rounds of 3000 + 3000: a
  // bounded label set shows as no growth of /metrics (and of RSS) in the second round.
  await attack('labels_flood', upPort, async (s) => {
    let next = 0;
    const round = async (n: number) => {
      const end = next + n;
      const worker = async () => {
        while (next < end) {
          const i = next++;
          await request(s.port, '/mcp/up', `{"jsonrpc":"2.0","id":${i},"method":"made/up-${i}-${'m'.repeat(40)}"}`);
          await request(s.port, `/mcp/made-up-source-${i}-${'p'.repeat(40)}`, '{"jsonrpc":"2.0","id":1,"method":"ping"}');
        }
      };
      await Promise.all(Array.from({ length: 20 }, worker));
    };
    await round(3000);
    const rss1 = rssMiB(s.proc.pid!);
    const metrics1 = await metricsBytes(s);
    await round(3000);
    return { requests: 2 * next, metrics_bytes_after_round1: metrics1, rss_growth_round2_mib: rssMiB(s.proc.pid!) - rss1 };
  });

  // b. 40 connections each sending a 4 MiB body but the last byte, then stalling.
  await attack('slow_bodies', upPort, async (s) => {
    const size = 4 * 1024 * 1024;
    const sockets: net.Socket[] = [];
    const answers: string[] = [];
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const sock = net.connect(s.port, '127.0.0.1');
      sockets.push(sock);
      let first = '';
      sock.on('data', (d: Buffer) => {
        if (!first) first = d.toString('latin1', 0, 12);
      });
      sock.on('error', () => undefined);
      closed.push(
        new Promise((r) =>
          sock.once('close', () => {
            answers.push(first.slice(9, 12) || 'none');
            r();
          }),
        ),
      );
      sock.write(
        `POST /mcp/up HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ${size}\r\n\r\n`,
      );
      sock.write(Buffer.alloc(size - 1, 0x20));
    }
    await sleep(2000);
    const stalledRss = rssMiB(s.proc.pid!);
    const open = sockets.filter((x) => !x.destroyed).length;
    // Bounded: with a body deadline every connection ends; without one, give up after 8 s.
    const all = Promise.all(closed).then(() => true);
    const ended = await Promise.race([all, sleep(8000).then(() => false)]);
    const stillOpen = sockets.filter((x) => !x.destroyed).length;
    for (const x of sockets) x.destroy();
    return {
      rss_while_stalled_mib: stalledRss,
      open_after_2s: open,
      open_after_10s: stillOpen,
      all_closed_by_sidecar: ended ? 'yes' : 'no',
      answers: countStatuses(answers.map(Number).filter((n) => n > 0)) || 'none',
    };
  });

  // c. 10 concurrent tools/list of a 13 MB list that the sidecar must filter.
  await attack('one_list', upPort, async (s) => {
    const status = await request(s.port, '/mcp/up', '{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
    return { status };
  });
  await attack('concurrent_lists', upPort, async (s) => {
    const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => request(s.port, '/mcp/up', `{"jsonrpc":"2.0","id":${i},"method":"tools/list"}`)));
    return { statuses: countStatuses(statuses) };
  });

  // d. One 4 MiB batch of denied calls (~56k messages).
  await attack('huge_batch', upPort, async (s) => {
    const one = '{"jsonrpc":"2.0","id":123456,"method":"tools/call","params":{"name":"delete_x","arguments":{}}}';
    const n = Math.floor((4 * 1024 * 1024 - 2) / (one.length + 1));
    const body = `[${Array.from({ length: n }, (_, i) => one.replace('123456', String(100000 + i))).join(',')}]`;
    const t = Date.now();
    const status = await request(s.port, '/mcp/up', body);
    return { messages: n, status, answer_ms: Date.now() - t };
  });

  upstream.kill('SIGTERM');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

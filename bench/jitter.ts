// Jitter of independent requests of one session (issue 7, class 15). A client opens a session's GET
// stream and at once sends its first POST, as MCP clients do; a server that sends a request
// (sampling, elicitation) on the GET stream races the POST. We measure, direct and through the
// sidecar, how long each request takes from the client's send to the upstream's arrival (one
// monotonic clock: CLOCK_MONOTONIC is shared by the processes), and how often the POST overtakes
// the GET. Three processes: this client, the upstream, the sidecar (BENCH_NODE, default this node).
//
//   node dist/bench/jitter.js        (scripts/bench.sh runs it; BENCH_PAIRS, default 2000)
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { freePort, pct, spawnReady } from './support/processes.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI = join(HERE, '..', 'cli.js');
const NODE = process.env['BENCH_NODE'] || process.execPath;
const PAIRS = Number(process.env['BENCH_PAIRS'] || 2000);
const now = (): bigint => process.hrtime.bigint();

// ---------- upstream: arrival times; GET streams stay open until the client leaves ----------
function runUpstream(): void {
  const server = http.createServer((req, res) => {
    const t = now();
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-arrived': String(t) });
      // A first byte at once: before class 12 was fixed the sidecar sent no head until one came.
      res.write(': open\n\n');
      return;
    }
    req.resume();
    req.on('end', () => {
      const out = `{"jsonrpc":"2.0","id":1,"result":{}}`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), 'x-arrived': String(t) });
      res.end(out);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(process.argv[3]), '127.0.0.1', () => process.stdout.write('ready\n'));
}

// ---------- helpers ----------

const line = (name: string, value: number | string) => console.log(`${name} ${typeof value === 'number' ? value.toFixed(3) : value}`);

interface Run {
  get: number[];
  post: number[];
  inverted: number;
}

/**
 * PAIRS sessions, one after another: GET stream opened, then the first POST at once. Like agents,
 * sessions overlap: the last OPEN sessions keep their GET streams, the oldest leaves.
 */
const OPEN = Number(process.env['BENCH_OPEN_SESSIONS'] || 8);
async function pairs(base: string, count: number, tag: string): Promise<Run> {
  // Like an SDK client: fetch's keep-alive agent, connections reused across requests.
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 16 });
  const get: number[] = [];
  const post: number[] = [];
  let inverted = 0;
  const open: { destroy(): unknown }[] = [];
  const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}';
  const u = new URL(base);
  for (let i = 0; i < count; i++) {
    const sid = `${tag}-${i}`;
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const t0 = now();
    const g = agent.request({ origin: u.origin, path: u.pathname, method: 'GET', headers: { ...headers, accept: 'text/event-stream' } });
    const t1 = now();
    const p = agent.request({
      origin: u.origin,
      path: u.pathname,
      method: 'POST',
      body,
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    });
    const [gr, pr] = await Promise.all([g, p]);
    const ga = BigInt(String(gr.headers['x-arrived']));
    const pa = BigInt(String(pr.headers['x-arrived']));
    await pr.body.text();
    gr.body.on('error', () => undefined);
    open.push(gr.body);
    if (open.length > OPEN) open.shift()!.destroy();
    get.push(Number(ga - t0) / 1e6);
    post.push(Number(pa - t1) / 1e6);
    if (pa < ga) inverted++;
    // Real sessions are not back to back: idle a little, so pooled connections go idle too.
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
  }
  for (const b of open) b.destroy();
  await agent.destroy();
  get.sort((a, b) => a - b);
  post.sort((a, b) => a - b);
  return { get, post, inverted };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--upstream') return runUpstream();
  console.log(
    `# jitter of GET+POST pairs (${PAIRS} sessions): sidecar on ${NODE === process.execPath ? `node ${process.version}` : NODE}, client node ${process.version}`,
  );
  const upPort = await freePort();
  const upstream = await spawnReady(process.execPath, [fileURLToPath(import.meta.url), '--upstream', String(upPort)]);
  const dir = mkdtempSync(join(tmpdir(), 'tg-jitter-'));
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(config, `sources:\n  - name: up\n    url: http://127.0.0.1:${upPort}/mcp\ndefaultAction: forward\n`);
  const port = await freePort();
  const adminPort = await freePort();
  const sidecar = spawn(
    NODE,
    [CLI, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(adminPort), '--log-level', process.env['BENCH_LOG_LEVEL'] || 'info'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' },
    },
  );
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${adminPort}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  const direct = `http://127.0.0.1:${upPort}/mcp`;
  const via = `http://127.0.0.1:${port}/mcp/up`;
  await pairs(direct, 200, 'warm-d');
  await pairs(via, 200, 'warm-v');
  // Interleaved halves so drift of the machine affects both alike.
  const d: Run = { get: [], post: [], inverted: 0 };
  const v: Run = { get: [], post: [], inverted: 0 };
  for (let round = 0; round < 4; round++) {
    for (const [base, acc, tag] of [
      [direct, d, 'd'],
      [via, v, 'v'],
    ] as const) {
      const r = await pairs(base, Math.ceil(PAIRS / 4), `${tag}${round}`);
      acc.get.push(...r.get);
      acc.post.push(...r.post);
      acc.inverted += r.inverted;
    }
  }
  for (const r of [d, v]) {
    r.get.sort((a, b) => a - b);
    r.post.sort((a, b) => a - b);
  }
  for (const [name, r] of [
    ['direct', d],
    ['sidecar', v],
  ] as const) {
    for (const kind of ['get', 'post'] as const) {
      line(`${name}.${kind}.p50_ms`, pct(r[kind], 50));
      line(`${name}.${kind}.p99_ms`, pct(r[kind], 99));
      line(`${name}.${kind}.max_ms`, r[kind].at(-1)!);
    }
    line(`${name}.post_before_get_share`, r.inverted / r.get.length);
  }
  for (const kind of ['get', 'post'] as const) {
    line(`added.${kind}.p50_ms`, pct(v[kind], 50) - pct(d[kind], 50));
    line(`added.${kind}.p99_ms`, pct(v[kind], 99) - pct(d[kind], 99));
    line(`added.${kind}.max_ms`, v[kind].at(-1)! - d[kind].at(-1)!);
  }
  sidecar.kill('SIGTERM');
  upstream.kill('SIGTERM');
  await new Promise((r) => sidecar.once('exit', r));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

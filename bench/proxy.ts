// Sidecar benchmarks against a direct connection, in one run, printing one `name value` line per
// figure. Three processes share the machine: a minimal upstream (so upstream noise does not hide
// the sidecar's cost), the sidecar (the built CLI, run by BENCH_NODE, default this node), and this
// load generator. Bounded in count and time; loopback only.
//
//   node dist/bench/proxy.js            (make bench runs it with Node 24 when it can)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { load } from './support/load.js';
import { freePort, pct, spawnReady } from './support/processes.js';
import { readBodyText } from '../lib/read-body.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI = join(HERE, '..', 'cli.js');
const NODE = process.env['BENCH_NODE'] || process.execPath;
const SECONDS = Number(process.env['BENCH_SECONDS'] || 3);

// ---------- upstream mode: a minimal Streamable HTTP JSON responder, and a 100 MB SSE stream ----------
const RESULT = JSON.stringify({ content: [{ type: 'text', text: 'ok' }] });
function runUpstream(): void {
  const chunk = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x'.repeat(64 * 1024 - 120) } })}\n\n`;
  const server = http.createServer((req, res) => {
    // The fake upstream reads as the sidecar does: bounded, strict UTF-8.
    void readBodyText(req, { limitBytes: 64 * 1024 * 1024 }).then(
      (body) => {
        if (body.includes('"big_stream"')) {
          // 100 MB of SSE events, written with backpressure, then the response.
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          let sent = 0;
          const total = 100 * 1024 * 1024;
          const pump = (): void => {
            while (sent < total) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end(`event: message\ndata: {"jsonrpc":"2.0","id":1,"result":${RESULT}}\n\n`);
          };
          pump();
          return;
        }
        const id = /"id":(\d+|"[^"]*")/.exec(body)?.[1] ?? 'null';
        const out = `{"jsonrpc":"2.0","id":${id},"result":${RESULT}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      },
      () => res.destroy(),
    );
  });
  server.listen(Number(process.argv[3]), '127.0.0.1', () => process.stdout.write('ready\n'));
}

// ---------- helpers ----------

function rssMiB(pid: number): { rss: number; anon: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
}

const line = (name: string, value: number | string, unit = '') =>
  console.log(`${name} ${typeof value === 'number' ? value.toFixed(3) : value}${unit ? ` ${unit}` : ''}`);

function policies(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n - 1; i++) {
    out.push(
      `@id("p${i}")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource) when { resource.name == "tool_${i}" && context.arguments has limit && context.arguments.limit < ${i + 10} };`,
    );
  }
  out.push(`@id("echo")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource) when { resource.name == "echo" };`);
  return out.join('\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--upstream') return runUpstream();
  console.log(
    `# thoughtgate proxy benchmark: sidecar on ${NODE === process.execPath ? `node ${process.version}` : NODE}, load generator node ${process.version}, ${SECONDS}s per run`,
  );
  const upPort = await freePort();
  const upstream = await spawnReady(process.execPath, [fileURLToPath(import.meta.url), '--upstream', String(upPort)]);
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-'));
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(
    config,
    `
sources:
  - name: up
    url: http://127.0.0.1:${upPort}/mcp
rules:
  - name: no-deletes
    match: { tool: "delete_*" }
    action: deny
  - name: by-policy
    match: { tool: "echo" }
    action: policy
defaultAction: forward
cedar:
  policies: |
${policies(20)
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`,
  );
  const port = await freePort();
  const adminPort = await freePort();
  const t0 = process.hrtime.bigint();
  // The same V8 setting as the container image (Dockerfile.sidecar): a smaller young generation.
  const sidecar = spawn(NODE, [CLI, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(adminPort), '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' },
  });
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${adminPort}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  line('sidecar.start_to_ready_ms', Number(process.hrtime.bigint() - t0) / 1e6);
  await new Promise((r) => setTimeout(r, 1000));
  const idle = rssMiB(sidecar.pid!);
  line('sidecar.rss_idle_mib', idle.rss);
  line('sidecar.rss_idle_anon_mib', idle.anon);

  const direct = `http://127.0.0.1:${upPort}/mcp`;
  const via = `http://127.0.0.1:${port}/mcp/up`;
  const forwardBody = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}';
  const cedarBody = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi","n":1.5,"x":null}}}';
  const denyBody = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/x"}}}';

  // Warm-up so JIT and connection pools are in their steady state.
  await load(direct, forwardBody, 10, 1);
  await load(via, forwardBody, 10, 1);

  let peak = idle;
  const sample = () => {
    const m = rssMiB(sidecar.pid!);
    if (m.rss > peak.rss) peak = m;
  };
  for (const clients of [1, 50]) {
    const d = await load(direct, forwardBody, clients, SECONDS);
    const f = await load(via, forwardBody, clients, SECONDS, { onTick: sample });
    const c = await load(via, cedarBody, clients, SECONDS, { onTick: sample });
    const n = await load(via, denyBody, clients, SECONDS, { onTick: sample });
    const tag = `c${clients}`;
    line(`direct.${tag}.p50_ms`, pct(d.lat, 50));
    line(`direct.${tag}.p99_ms`, pct(d.lat, 99));
    line(`forward.${tag}.p50_ms`, pct(f.lat, 50));
    line(`forward.${tag}.p99_ms`, pct(f.lat, 99));
    line(`forward.${tag}.added_p50_ms`, pct(f.lat, 50) - pct(d.lat, 50));
    line(`forward.${tag}.added_p99_ms`, pct(f.lat, 99) - pct(d.lat, 99));
    line(`forward_cedar.${tag}.added_p50_ms`, pct(c.lat, 50) - pct(d.lat, 50));
    line(`forward_cedar.${tag}.added_p99_ms`, pct(c.lat, 99) - pct(d.lat, 99));
    line(`deny.${tag}.p50_ms`, pct(n.lat, 50));
    line(`deny.${tag}.p99_ms`, pct(n.lat, 99));
    line(`throughput.${tag}.direct_rps`, d.rps);
    line(`throughput.${tag}.forward_rps`, f.rps);
    line(`throughput.${tag}.ratio`, f.rps / d.rps);
    if (d.errors + f.errors + c.errors + n.errors > 0) line(`errors.${tag}`, d.errors + f.errors + c.errors + n.errors);
  }
  line('sidecar.rss_load_peak_mib', peak.rss);
  line('sidecar.rss_load_peak_anon_mib', peak.anon);

  // The sidecar's own view: added latency as it measures it (from /metrics), by decision.
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  for (const decision of ['forward', 'deny']) {
    const count = Number(new RegExp(`thoughtgate_sidecar_added_latency_seconds_count\\{source="up",decision="${decision}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    const under1ms = Number(
      new RegExp(`thoughtgate_sidecar_added_latency_seconds_bucket\\{le="0.001",source="up",decision="${decision}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0,
    );
    if (count > 0) line(`sidecar_metric.added_latency.${decision}.share_under_1ms`, under1ms / count);
  }

  // 100 MB SSE through the sidecar: RSS growth while it streams.
  const before = rssMiB(sidecar.pid!);
  let max = before;
  const tick = setInterval(() => {
    const m = rssMiB(sidecar.pid!);
    if (m.rss > max.rss) max = m;
  }, 50);
  const t = Date.now();
  const pool = new Pool(`http://127.0.0.1:${port}`);
  const r = await pool.request({
    path: '/mcp/up',
    method: 'POST',
    body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big_stream"}}',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  });
  let bytes = 0;
  for await (const c of r.body) bytes += (c as Buffer).length;
  clearInterval(tick);
  await pool.close();
  line('sse.bytes_mib', bytes / 1048576);
  line('sse.seconds', (Date.now() - t) / 1000);
  line('sse.rss_growth_mib', max.rss - before.rss);

  sidecar.kill('SIGTERM');
  upstream.kill('SIGTERM');
  await new Promise((r) => sidecar.once('exit', r));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// What tracing costs the sidecar: the same governed calls (Cedar-decided, forwarded) through the
// built sidecar with tracing off and on (every call sampled, exported to a local OTLP/HTTP
// collector that accepts everything), printing `name value` lines: idle RSS, latency p50/p99 and
// throughput at 1 and 10 clients, RSS after load, spans the collector received and spans dropped.
// Runs alternate off/on twice so drift on a shared machine shows. Loopback only, bounded.
//
//   node dist/bench/tracing.js          (BENCH_NODE picks the sidecar's node; BENCH_SECONDS per run)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from './support/load.js';
import { freePort, pct, spawnReady } from './support/processes.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI = join(HERE, '..', 'cli.js');
const NODE = process.env['BENCH_NODE'] || process.execPath;
const SECONDS = Number(process.env['BENCH_SECONDS'] || 3);
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** Peers mode: a minimal MCP JSON responder and an OTLP/HTTP collector counting the spans it gets. */
function runPeers(upPort: number, collectorPort: number): void {
  const RESULT = JSON.stringify({ content: [{ type: 'text', text: 'ok' }] });
  let spans = 0;
  http
    .createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const id = /"id":(\d+|"[^"]*")/.exec(body)?.[1] ?? 'null';
        const out = `{"jsonrpc":"2.0","id":${id},"result":${RESULT}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
      });
    })
    .listen(upPort, '127.0.0.1');
  http
    .createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        if (req.url === '/count') return res.end(String(spans));
        spans += body.split('"spanId"').length - 1;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    })
    .listen(collectorPort, '127.0.0.1', () => process.stdout.write('ready\n'));
}

function rssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024;
}

const line = (name: string, value: number) => console.log(`${name} ${value.toFixed(3)}`);

async function sidecar(config: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number; admin: number }> {
  const port = await freePort();
  const admin = await freePort();
  const child = spawn(NODE, [CLI, 'sidecar', '--config', config, '--port', String(port), '--admin-port', String(admin), '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4', ...env },
  });
  for (;;) {
    if (
      await fetch(`http://127.0.0.1:${admin}/ready`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 5));
  }
  return { child, port, admin };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--peers') return runPeers(Number(process.argv[3]), Number(process.argv[4]));
  console.log(`# tracing benchmark: sidecar on ${NODE === process.execPath ? `node ${process.version}` : NODE}, ${SECONDS}s per run`);
  const upPort = await freePort();
  const collectorPort = await freePort();
  const peers = await spawnReady(process.execPath, [fileURLToPath(import.meta.url), '--peers', String(upPort), String(collectorPort)]);
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-tracing-'));
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(
    config,
    `sources:
  - name: up
    url: http://127.0.0.1:${upPort}/mcp
rules:
  - name: by-policy
    match: { tool: "echo" }
    action: policy
defaultAction: forward
cedar:
  policies: |
    @id("echo")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource) when { resource.name == "echo" };
`,
  );
  const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}';
  const modes: [string, Record<string, string>][] = [
    ['off', {}],
    ['on', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`, OTEL_SERVICE_NAME: 'bench' }],
  ];
  for (const round of [1, 2]) {
    for (const [mode, env] of modes) {
      const s = await sidecar(config, env);
      const via = `http://127.0.0.1:${s.port}/mcp/up`;
      await load(via, body, 1, 0.2, { headers: { traceparent: TRACEPARENT } }); // one warm-up burst: Cedar loaded, pools open
      await new Promise((r) => setTimeout(r, 1500));
      const tag = `${mode}.r${round}`;
      line(`${tag}.rss_idle_mib`, rssMiB(s.child.pid!));
      for (const clients of [1, 10]) {
        const r = await load(via, body, clients, SECONDS, { headers: { traceparent: TRACEPARENT } });
        line(`${tag}.c${clients}.p50_ms`, pct(r.lat, 50));
        line(`${tag}.c${clients}.p99_ms`, pct(r.lat, 99));
        line(`${tag}.c${clients}.rps`, r.rps);
        if (r.errors > 0) line(`${tag}.c${clients}.errors`, r.errors);
      }
      line(`${tag}.rss_after_load_mib`, rssMiB(s.child.pid!));
      const metrics = await (await fetch(`http://127.0.0.1:${s.admin}/metrics`)).text();
      const dropped = Number(/thoughtgate_sidecar_tracing_spans_dropped_total (\d+)/.exec(metrics)?.[1] ?? 0);
      s.child.kill('SIGTERM');
      await new Promise((r) => s.child.once('exit', r));
      if (mode === 'on') {
        line(`${tag}.spans_dropped`, dropped);
        line(`${tag}.collector_spans_total`, Number(await (await fetch(`http://127.0.0.1:${collectorPort}/count`)).text()));
      }
    }
  }
  peers.kill();
}

await main();

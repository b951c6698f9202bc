// RSS growth of the sidecar (20 Cedar policies, as bench/proxy.ts's) while a 100 MB SSE answer
// (64 KiB events, bench/support/mcp-upstream.ts) passes: in a fresh process (one governed call,
// 2.5 s idle, then the stream), a second stream in the same process, and a third right after a
// 50-client load. Growth = peak (sampled every 50 ms) − before; and the sidecar's CPU per stream. Builds alternate, A B A B …
//
//   node dist/bench/sse-memory.js [--runs 3] [--load-seconds 3] [--variant 'label|dist/cli.js' ...]
//
// The sidecar runs on BENCH_NODE (default this node) with the image's NODE_OPTIONS.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureBigStream } from './support/big-stream.js';
import { load } from './support/load.js';
import { runUpstream, SSE_TOTAL_BYTES } from './support/mcp-upstream.js';
import { policies } from './support/policies.js';
import { cpuMicros } from './support/proc.js';
import { freePort, pct, spawnReady } from './support/processes.js';
import { post, reapOnExit, startSidecar, type Started } from './support/proxies.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const NODE = process.env['BENCH_NODE'] || process.execPath;
const GOVERNED = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}';
const FORWARD = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figures {
  rss: number;
  anon: number;
  /** Sidecar CPU ms for the stream. */
  cpu: number;
}

function args(): { runs: number; loadSeconds: number; variants: { label: string; cli: string }[] } {
  const a = process.argv.slice(2);
  let runs = 3;
  let loadSeconds = 3;
  const variants: { label: string; cli: string }[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--runs') runs = Number(a[++i]);
    else if (a[i] === '--load-seconds') loadSeconds = Number(a[++i]);
    else if (a[i] === '--variant') {
      const [label, cli] = a[++i]!.split('|');
      variants.push({ label: label!, cli: cli || join(HERE, '..', 'cli.js') });
    }
  }
  if (variants.length === 0) variants.push({ label: 'this', cli: join(HERE, '..', 'cli.js') });
  return { runs, loadSeconds, variants };
}

/** RSS and anon growth while one 100 MB stream passes, and the sidecar's CPU for it. */
async function stream(p: Started): Promise<Figures> {
  const cpu0 = cpuMicros(p.pid);
  const { bytes, before, top } = await measureBigStream(p.pid, p.url);
  if (bytes < SSE_TOTAL_BYTES) throw new Error(`short stream: ${bytes} bytes`);
  return { rss: top.rss - before.rss, anon: top.anon - before.anon, cpu: (cpuMicros(p.pid) - cpu0) / 1000 };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--upstream') return runUpstream(Number(process.argv[3]));
  const { runs, loadSeconds, variants } = args();
  console.log(`# 100 MB SSE through the Cedar sidecar: node ${NODE === process.execPath ? process.version : NODE}, ${runs} runs per variant`);
  const upPort = await freePort();
  const upstream = reapOnExit(await spawnReady(process.execPath, [fileURLToPath(import.meta.url), '--upstream', String(upPort)]));
  const dir = mkdtempSync(join(tmpdir(), 'tg-sse-'));
  const config = join(dir, 'cedar.yaml');
  writeFileSync(
    config,
    `sources:\n  - name: up\n    url: http://127.0.0.1:${upPort}/mcp\nrules:\n  - name: by-policy\n    match: { tool: "echo" }\n    action: policy\ndefaultAction: forward\ncedar:\n  policies: |\n${policies(
      20,
    )
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n')}\n`,
  );
  const phases = ['fresh', 'second', 'after_load'] as const;
  const out = new Map(variants.map((v) => [v.label, Object.fromEntries(phases.map((ph) => [ph, [] as Figures[]]))]));
  try {
    for (let i = 0; i < runs; i++) {
      for (const v of variants) {
        const p = await startSidecar({
          node: NODE,
          pin: [],
          cli: v.cli,
          config,
          port: await freePort(),
          adminPort: await freePort(),
          source: 'up',
          logLevel: 'warn',
          stdout: 'ignore',
        });
        try {
          await post(p.url, GOVERNED);
          await sleep(2500);
          const r = out.get(v.label)!;
          r['fresh']!.push(await stream(p));
          await sleep(1000);
          r['second']!.push(await stream(p));
          await load(p.url, FORWARD, 50, loadSeconds);
          r['after_load']!.push(await stream(p));
        } finally {
          await p.stop();
        }
      }
    }
  } finally {
    upstream.kill('SIGTERM');
  }
  for (const v of variants) {
    for (const ph of phases) {
      for (const k of ['rss', 'anon', 'cpu'] as const) {
        const s = out
          .get(v.label)!
          [ph]!.map((x) => x[k])
          .sort((a, b) => a - b);
        const [name, unit] = k === 'cpu' ? ['cpu_ms', 'ms'] : [`${k}_growth_mib`, 'MiB'];
        console.log(
          `sse.${ph}.${v.label}.${name} ${pct(s, 50).toFixed(1)} ${unit} (min ${s[0]!.toFixed(1)}, max ${s[s.length - 1]!.toFixed(1)}, n ${s.length})`,
        );
      }
    }
  }
}

await main();

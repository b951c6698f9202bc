// Start to ready and idle memory of the standalone sidecar, without Cedar and with the 20-policy set
// of bench/proxy.ts. Per start: spawn → admin /ready 200 (polled every 2 ms), then the first governed
// call 0.5 s later (its latency: what was moved off the path to ready is paid here, if anywhere), then 5 s of
// idle and the private (RssAnon) and total RSS. Prints medians and spread of the starts; the CPU
// time to ready (all threads, from schedstat: µs, not 10 ms ticks) is the steadier figure when the
// machine is busy.
//
//   node dist/bench/start.js [--runs 7] [--only no_cedar|cedar20]
//        [--variant 'label|dist/cli.js|NODE_OPTIONS|K=V,K=V|node flags' ...]
//
// Variants (default: this build as the image runs it, with and without the compile cache) run
// alternately, A B A B …, after one uncounted start each, so a comparison is made in one run on a
// shared machine. The sidecar runs on BENCH_NODE (default this node).
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { policies } from './support/policies.js';
import { statusMemory } from './support/proc.js';
import { summary } from './support/processes.js';
import { parseVariant, startVariantSidecar, type Variant } from './support/variants.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const NODE = process.env['BENCH_NODE'] || process.execPath;
/** After the first call: past the sidecar's idle collection (two quiet 1 s windows, sidecar/proxy/reclaim.ts). */
const IDLE_READ_MS = 5000;
/** The container image's (Dockerfile.sidecar). */
const IMAGE_NODE_OPTIONS = '--max-semi-space-size=4';

function args(): { runs: number; variants: Variant[]; only: string | null } {
  const a = process.argv.slice(2);
  let runs = 7;
  let only: string | null = null;
  const variants: Variant[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--runs') runs = Number(a[++i]);
    else if (a[i] === '--only') only = a[++i]!;
    else if (a[i] === '--variant') {
      variants.push(parseVariant(a[++i]!, { cli: join(HERE, '..', 'cli.js'), nodeOptions: IMAGE_NODE_OPTIONS }));
    }
  }
  if (variants.length === 0) {
    // As the image runs it (Dockerfile.sidecar): its NODE_OPTIONS and a compile cache of its own.
    const cache = mkdtempSync(join(tmpdir(), 'tg-start-cache-'));
    variants.push({
      label: 'image',
      cli: join(HERE, '..', 'cli.js'),
      nodeOptions: IMAGE_NODE_OPTIONS,
      env: { NODE_COMPILE_CACHE: cache },
      nodeArgs: [],
    });
    variants.push({
      label: 'no_compile_cache',
      cli: join(HERE, '..', 'cli.js'),
      nodeOptions: IMAGE_NODE_OPTIONS,
      env: { NODE_DISABLE_COMPILE_CACHE: '1' },
      nodeArgs: [],
    });
  }
  return { runs, variants, only };
}

const RESULT = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}';

/** When the first governed call is made after ready: what start work runs after ready is done by then. */
const FIRST_CALL_AFTER_MS = 500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  readyMs: number;
  readyCpuMs: number;
  firstCallMs: number;
  firstCallStatus: number;
  rss: number;
  anon: number;
}

async function once(v: Variant, config: string, body: string): Promise<Sample> {
  const { port, readyMs, readyCpuMs, child, stop } = await startVariantSidecar(NODE, v, ['--config', config]);
  try {
    // An agent's first call comes after its own start, not within a millisecond of /ready.
    await sleep(FIRST_CALL_AFTER_MS);
    const t1 = process.hrtime.bigint();
    const r = await fetch(`http://127.0.0.1:${port}/mcp/up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
    });
    await r.text();
    const firstCallMs = Number(process.hrtime.bigint() - t1) / 1e6;
    await sleep(IDLE_READ_MS);
    return { readyMs, readyCpuMs, firstCallMs, firstCallStatus: r.status, ...statusMemory(child.pid!) };
  } finally {
    await stop();
  }
}

async function main(): Promise<void> {
  const { runs, variants, only } = args();
  console.log(`# sidecar start to ready and idle memory: node ${NODE === process.execPath ? process.version : NODE}, ${runs} starts per case`);
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': RESULT.length }).end(RESULT));
  });
  const upPort = await new Promise<number>((r) => upstream.listen(0, '127.0.0.1', () => r((upstream.address() as { port: number }).port)));
  const dir = mkdtempSync(join(tmpdir(), 'tg-start-'));
  const base = `sources:\n  - name: up\n    url: http://127.0.0.1:${upPort}/mcp\n`;
  const cases = [
    { name: 'no_cedar', config: base, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}' },
    {
      name: 'cedar20',
      config: `${base}rules:\n  - name: by-policy\n    match: { tool: "echo" }\n    action: policy\ndefaultAction: forward\ncedar:\n  policies: |\n${policies(
        20,
      )
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')}\n`,
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}',
    },
  ].filter((c) => only === null || c.name === only);
  for (const c of cases) {
    const config = join(dir, `${c.name}.yaml`);
    writeFileSync(config, c.config);
    const samples = new Map<string, Sample[]>(variants.map((v) => [v.label, []]));
    // One start of each, not counted: it fills the variant's compile cache and the page cache.
    for (const v of variants) await once(v, config, c.body);
    for (let i = 0; i < runs; i++) for (const v of variants) samples.get(v.label)!.push(await once(v, config, c.body));
    for (const v of variants) {
      const s = samples.get(v.label)!;
      const tag = `${c.name}.${v.label}`;
      const figures: [string, keyof Sample, string][] = [
        ['start_to_ready_ms', 'readyMs', 'ms'],
        ['cpu_to_ready_ms', 'readyCpuMs', 'ms'],
        ['first_call_ms', 'firstCallMs', 'ms'],
        ['idle_anon_mib', 'anon', 'MiB'],
        ['idle_rss_mib', 'rss', 'MiB'],
      ];
      for (const [name, key, unit] of figures)
        summary(
          `${tag}.${name}`,
          s.map((x) => x[key]),
          unit,
        );
      const bad = s.filter((x) => x.firstCallStatus !== 200).length;
      if (bad) console.log(`${tag}.first_call_not_200 ${bad}`);
    }
  }
  upstream.close();
}

await main();

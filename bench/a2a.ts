// What governing an A2A agent costs (issue 13, DESIGN §3.3): added latency of SendMessage (A2A 1.0
// JSON-RPC `SendMessage` and 0.3 `message/send`, the SDK clients' captured bytes) and the time to
// the first event of SendStreamingMessage, through the Node floor relay and through the sidecar
// (`/a2a/<source>/`), each against direct to the agent in the same round; the same for the
// HTTP+JSON binding's `message:send` and for reading the agent card (the sidecar filters it to the
// exposed skills: 3 of CARD_SKILLS); and one BULK_BYTES stream per round, its throughput and the
// sidecar's memory growth while it passes. Prints `name value [unit]` lines; asserts nothing.
// Loopback only, free ports only.
//
// Processes as bench/proxy.ts: this one is the load generator (raw undici POSTs, not an SDK
// client, whose own per-call work would hide the proxy's); it starts the agent
// (bench/support/a2a-agent.ts: node:http, answers at once; streams 5 events 10 ms apart). Both on
// one core, the proxy under test on another, when taskset and two cores are there.
//
//   node dist/bench/a2a.js   (env: BENCH_NODE, BENCH_SECONDS per load run, BENCH_ROUNDS, BENCH_NICE, BENCH_CLI)
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { BULK_BYTES, CARD_SKILLS, runA2aAgent, STREAM_EVENTS, STREAM_STEP_MS } from './support/a2a-agent.js';
import { load } from './support/load.js';
import { freePort, median, pct, rotate, spawnReady } from './support/processes.js';
import { cpuPreciseMicros, niceSelf, peakTracker, pinSelfAndPlanProxy, statusMemory } from './support/proc.js';
import { benchSettings } from './support/settings.js';
import { PROXY_NODE_OPTIONS, reapOnExit, type Started, startFloor, startSidecar } from './support/proxies.js';

const { cli: CLI, floor: FLOOR, node: NODE, seconds: SECONDS, rounds: ROUNDS, warmSeconds: WARM_SECONDS } = benchSettings(import.meta.url);
const SOURCE = 'agent';
const RPC_PATH = '/a2a/jsonrpc';
const REST_PATH = '/a2a/rest';
const CARD_PATH = '/.well-known/agent-card.json';
const MCP_SOURCE = 'mcp';
const MCP_PATH = '/mcp';

// The SDK clients' bytes (/work/a2a/captures js1-jsonrpc-v10-01/02, js03-srv03-jsonrpc-01/02).
const SEND_10 =
  '{"jsonrpc":"2.0","method":"SendMessage","params":{"message":{"messageId":"msg-733d08cd","role":"ROLE_USER","parts":[{"text":"hello","mediaType":"text/plain"}],"metadata":{"skill":"echo","tenantNote":"m1"}},"configuration":{}},"id":1}';
const SEND_03 =
  '{"jsonrpc":"2.0","method":"message/send","params":{"message":{"kind":"message","messageId":"msg-a4b0a3d8","role":"user","parts":[{"kind":"text","text":"hello"}],"metadata":{"skill":"echo"}},"configuration":{"blocking":true}},"id":1}';
const STREAM_10 =
  '{"jsonrpc":"2.0","method":"SendStreamingMessage","params":{"message":{"messageId":"msg-beda3978","role":"ROLE_USER","parts":[{"text":"count 3","mediaType":"text/plain"}],"metadata":{"skill":"count"}},"configuration":{}},"id":2}';
const STREAM_03 =
  '{"jsonrpc":"2.0","method":"message/stream","params":{"message":{"kind":"message","messageId":"msg-02cd31d2","role":"user","parts":[{"kind":"text","text":"count 3"}],"metadata":{"skill":"count"}},"configuration":{"blocking":true}},"id":2}';

interface Variant {
  name: string;
  body: string;
  headers: Record<string, string>;
  /** An MCP call through the same sidecar (its /mcp/ source on the same agent): the yardstick. */
  mcp?: boolean;
}
const SENDS: Variant[] = [
  { name: 'send_1.0', body: SEND_10, headers: { 'a2a-version': '1.0' } },
  // JS 0.3.14 sends no A2A-Version (absent = 0.3).
  { name: 'send_0.3', body: SEND_03, headers: {} },
  // The same small JSON-RPC round trip as MCP (bench/proxy.ts's forwarded tools/call): A2A's target is this + 20 %.
  { name: 'mcp_tools_call', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}', headers: {}, mcp: true },
];
// The 1.3.0 client's HTTP+JSON bytes (/work/a2a/captures js1-rest-v10-01).
const REST_SEND_10 =
  '{"message":{"messageId":"msg-91ede336","role":"ROLE_USER","parts":[{"text":"hello","mediaType":"text/plain"}],"metadata":{"skill":"echo","tenantNote":"m1"}},"configuration":{}}';
const BULK_10 =
  '{"jsonrpc":"2.0","method":"SendStreamingMessage","params":{"message":{"messageId":"msg-bulk","role":"ROLE_USER","parts":[{"text":"bulk","mediaType":"text/plain"}],"metadata":{"skill":"bulk"}},"configuration":{}},"id":3}';
const STREAMS: Variant[] = [
  { name: 'stream_1.0', body: STREAM_10, headers: { 'a2a-version': '1.0', accept: 'text/event-stream' } },
  { name: 'stream_0.3', body: STREAM_03, headers: { accept: 'text/event-stream' } },
];

/** Rules only (a forward rule naming the skill) and the same with a Cedar policy on metadata. */
function configs(dir: string, agent: string): { rules: string; cedar: string } {
  // One client sends thousands of messages a minute: above the default a2a.tasks.rate (60 new tasks a minute per client).
  const source =
    'a2a:\n  tasks: { rate: { perMinute: 1000000, burst: 1000000 } }\n' +
    `sources:\n  - name: ${SOURCE}\n    protocol: a2a\n    url: ${agent}\n    a2a:\n      jsonrpc: ${RPC_PATH}\n      rest: ${REST_PATH}\n      skillFrom: metadata.skill\n` +
    '    expose:\n      mode: allowlist\n      skills: [echo, count, bulk]\n' +
    `  - name: ${MCP_SOURCE}\n    url: ${agent}${MCP_PATH}\n`;
  const rules = `${source}rules:\n  - name: echo\n    match: { source: ${SOURCE}, skill: "echo" }\n    action: forward\ndefaultAction: forward\n`;
  const cedar =
    `${source}rules:\n  - name: by-policy\n    match: { source: ${SOURCE} }\n    action: policy\ndefaultAction: forward\ncedar:\n  policies: |\n` +
    '    @id("echo-count-bulk")\n' +
    `    permit(principal, action, resource == ThoughtGate::Agent::"${SOURCE}")\n` +
    '      when { (context.skill == "echo" || context.skill == "count" || context.skill == "bulk") && !context.partKinds.contains("url") };\n';
  const files = { rules: join(dir, 'rules.yaml'), cedar: join(dir, 'cedar.yaml') };
  writeFileSync(files.rules, rules);
  writeFileSync(files.cedar, cedar);
  return files;
}

const line = (name: string, value: number | string, unit = '') =>
  console.log(`${name} ${typeof value === 'number' ? (Number.isFinite(value) ? value.toFixed(3) : 'NaN') : value}${unit ? ` ${unit}` : ''}`);

/** Per (figure key) the value of each round; printed as medians. */
const rounds = new Map<string, number[]>();
const keep = (key: string, v: number) => rounds.set(key, [...(rounds.get(key) ?? []), v]);
const med = (key: string) => median(rounds.get(key) ?? []);

interface Target {
  name: 'direct' | 'floor' | 'sidecar' | 'sidecar_cedar';
  url: string;
  /** Where the MCP yardstick goes on this target. */
  mcpUrl: string;
  /** The agent's root as this target reaches it (the card and the REST base are under it). */
  base: string;
  pid: number | null;
}

/** Closed-loop REST `message:send` or card GETs, one client: p50/p99 (and the card's bytes). */
async function extraRun(t: Target, what: 'rest_send_1.0' | 'card'): Promise<void> {
  const r =
    what === 'card'
      ? await load(`${t.base}${CARD_PATH}`, '', 1, SECONDS, { method: 'GET' })
      : await load(`${t.base}${REST_PATH}/message:send`, REST_SEND_10, 1, SECONDS, { headers: { 'a2a-version': '1.0' } });
  const key = `${what}.c1.${t.name}`;
  keep(`${key}.p50`, pct(r.lat, 50));
  keep(`${key}.p99`, pct(r.lat, 99));
  keep(`${key}.errors`, r.errors);
}

async function cardSkills(t: Target): Promise<number> {
  const pool = new Pool(new URL(t.base).origin);
  const r = await pool.request({ path: `${new URL(t.base).pathname.replace(/\/$/, '')}${CARD_PATH}`, method: 'GET' });
  const card = (await r.body.json()) as { skills?: unknown[] };
  await pool.close();
  return card.skills?.length ?? -1;
}

/**
 * One BULK_BYTES stream read as fast as the client can: MB/s, and (a proxy) how far its RSS rose
 * above where it stood before the stream — a stream is relayed, never buffered whole.
 */
async function bulkRun(t: Target): Promise<void> {
  const u = new URL(t.url);
  const pool = new Pool(u.origin, { connections: 1 });
  const before = t.pid === null ? null : statusMemory(t.pid);
  const tracker = t.pid === null ? null : peakTracker(t.pid);
  const tick = tracker ? setInterval(tracker.sample, 20) : null;
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  try {
    const r = await pool.request({
      path: u.pathname,
      method: 'POST',
      body: BULK_10,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'a2a-version': '1.0' },
    });
    let head = '';
    for await (const chunk of r.body) {
      if (head.length < 300) head += (chunk as Buffer).toString('utf8', 0, 300);
      bytes += (chunk as Buffer).length;
    }
    if (r.statusCode !== 200 || bytes < BULK_BYTES) {
      keep(`bulk.${t.name}.errors`, 1);
      console.log(`# bulk through ${t.name}: HTTP ${r.statusCode}, ${bytes} bytes: ${head.slice(0, 300).replace(/\s+/g, ' ')}`);
    }
  } catch (e) {
    keep(`bulk.${t.name}.errors`, 1);
    console.log(`# bulk through ${t.name}: ${String(e)}`);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (tick) clearInterval(tick);
  await pool.close();
  keep(`bulk.${t.name}.mb_per_s`, bytes / 1e6 / seconds);
  if (tracker && before) {
    tracker.sample();
    keep(`bulk.${t.name}.rss_rise_mib`, tracker.peak().rss - before.rss);
    keep(`bulk.${t.name}.rss_before_mib`, before.rss);
  }
}

/** Closed-loop SendMessage load: p50/p99 and (proxies) CPU µs per request. */
async function sendRun(t: Target, v: Variant, clients: number): Promise<void> {
  const cpu0 = t.pid === null ? Number.NaN : cpuPreciseMicros(t.pid);
  const r = await load(v.mcp ? t.mcpUrl : t.url, v.body, clients, SECONDS, { headers: v.headers });
  const cpu1 = t.pid === null ? Number.NaN : cpuPreciseMicros(t.pid);
  const key = `${v.name}.c${clients}.${t.name}`;
  keep(`${key}.p50`, pct(r.lat, 50));
  keep(`${key}.p99`, pct(r.lat, 99));
  keep(`${key}.rps`, r.rps);
  keep(`${key}.cpu_us`, (cpu1 - cpu0) / r.lat.length);
  keep(`${key}.errors`, r.errors);
}

/**
 * One client, one stream at a time for SECONDS: time from sending to the first `data:` event
 * read, and the gaps between later events (the agent sends them STREAM_STEP_MS apart).
 */
async function streamRun(t: Target, v: Variant): Promise<void> {
  const u = new URL(t.url);
  const pool = new Pool(u.origin, { connections: 1 });
  const ttfe: number[] = [];
  const jitter: number[] = [];
  let errors = 0;
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    try {
      const r = await pool.request({ path: u.pathname, method: 'POST', body: v.body, headers: { 'content-type': 'application/json', ...v.headers } });
      let seen = 0;
      let last = 0n;
      let buf = '';
      for await (const chunk of r.body) {
        buf += (chunk as Buffer).toString('utf8');
        let at = buf.indexOf('\n\n');
        while (at !== -1) {
          const ev = buf.slice(0, at);
          buf = buf.slice(at + 2);
          if (ev.startsWith('data:')) {
            const now = process.hrtime.bigint();
            if (seen === 0) ttfe.push(Number(now - t0) / 1e6);
            else jitter.push(Math.abs(Number(now - last) / 1e6 - STREAM_STEP_MS));
            last = now;
            seen++;
          }
          at = buf.indexOf('\n\n');
        }
      }
      if (r.statusCode !== 200 || seen !== STREAM_EVENTS + 1) errors++;
    } catch {
      errors++;
    }
  }
  await pool.close();
  ttfe.sort((a, b) => a - b);
  jitter.sort((a, b) => a - b);
  const key = `${v.name}.${t.name}`;
  keep(`${key}.ttfe_p50`, pct(ttfe, 50));
  keep(`${key}.ttfe_p99`, pct(ttfe, 99));
  keep(`${key}.gap_jitter_p99`, pct(jitter, 99));
  keep(`${key}.errors`, errors);
}

/** Whether the sidecar serves A2A at /a2a/<source>/: one SendMessage answered by the agent. */
async function a2aRouteAnswers(url: string): Promise<{ ok: boolean; why: string }> {
  try {
    const pool = new Pool(new URL(url).origin);
    const r = await pool.request({
      path: new URL(url).pathname,
      method: 'POST',
      body: SEND_10,
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    });
    const text = await r.body.text();
    await pool.close();
    return text.includes('echo: hello') ? { ok: true, why: '' } : { ok: false, why: `HTTP ${r.statusCode} ${text.slice(0, 200)}` };
  } catch (e) {
    return { ok: false, why: String(e) };
  }
}

async function startA2aSidecar(pin: string[], config: string): Promise<{ started: Started; url: string; mcpUrl: string } | { error: string }> {
  try {
    const port = await freePort();
    const started = await startSidecar({
      node: NODE,
      pin,
      port,
      cli: CLI,
      config,
      adminPort: await freePort(),
      source: SOURCE,
      logLevel: 'info',
      stdout: 'pipe',
    });
    return { started, url: `http://127.0.0.1:${port}/a2a/${SOURCE}${RPC_PATH}`, mcpUrl: `http://127.0.0.1:${port}/mcp/${MCP_SOURCE}` };
  } catch (e) {
    return { error: String(e) };
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--agent') return runA2aAgent(Number(process.argv[3]));
  const pinning = pinSelfAndPlanProxy();
  console.log(
    `# proxies on ${NODE === process.execPath ? `node ${process.version}` : NODE}, NODE_OPTIONS=${PROXY_NODE_OPTIONS}; load generator and agent on node ${process.version}`,
  );
  console.log(`# ${pinning.note}; ${niceSelf(process.env['BENCH_NICE'])}`);
  console.log(`# ${SECONDS} s per run, ${ROUNDS} rounds (medians over rounds); agent streams ${STREAM_EVENTS + 1} events ${STREAM_STEP_MS} ms apart`);
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-a2a-'));
  const agentPort = await freePort();
  reapOnExit(await spawnReady(process.execPath, [fileURLToPath(import.meta.url), '--agent', String(agentPort)]));
  const agent = `http://127.0.0.1:${agentPort}`;
  const files = configs(dir, agent);
  const live: Started[] = [];
  try {
    const floor = await startFloor({ node: NODE, pin: pinning.proxy, port: await freePort(), script: FLOOR, upstreamOrigin: agent, upstreamPath: RPC_PATH });
    live.push(floor);
    const targets: Target[] = [
      { name: 'direct', url: `${agent}${RPC_PATH}`, mcpUrl: `${agent}${MCP_PATH}`, base: agent, pid: null },
      { name: 'floor', url: floor.url, mcpUrl: `${new URL(floor.url).origin}${MCP_PATH}`, base: new URL(floor.url).origin, pid: floor.pid },
    ];
    for (const [name, config] of [
      ['sidecar', files.rules],
      ['sidecar_cedar', files.cedar],
    ] as const) {
      const s = await startA2aSidecar(pinning.proxy, config);
      if ('error' in s) {
        console.log(`# sidecar A2A route not available (${name}: the sidecar did not start with an A2A source: ${s.error.slice(0, 200)})`);
        continue;
      }
      live.push(s.started);
      const answered = await a2aRouteAnswers(s.url);
      if (!answered.ok) {
        console.log(`# sidecar A2A route not available (${name}: POST ${new URL(s.url).pathname} → ${answered.why.replace(/\s+/g, ' ')})`);
        continue;
      }
      targets.push({ name, url: s.url, mcpUrl: s.mcpUrl, base: s.url.slice(0, -RPC_PATH.length), pid: s.started.pid });
    }
    const proxies = targets.filter((t) => t.name !== 'direct');
    for (const t of targets) await load(t.url, SEND_10, 16, WARM_SECONDS, { headers: { 'a2a-version': '1.0' } });
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of SENDS) for (const c of [1, 32]) for (const t of rotate(targets, round)) await sendRun(t, v, c);
      for (const v of STREAMS) for (const t of rotate(targets, round)) await streamRun(t, v);
      for (const what of ['rest_send_1.0', 'card'] as const) for (const t of rotate(targets, round)) await extraRun(t, what);
      for (const t of rotate(targets, round)) await bulkRun(t);
    }
    console.log(
      '# SendMessage (and an MCP tools/call through the same sidecar): latency to the whole answer (ms); added = target − direct, medians of the rounds',
    );
    for (const v of SENDS)
      for (const c of [1, 32])
        for (const t of targets) {
          const k = `${v.name}.c${c}.${t.name}`;
          line(`${k}.p50_ms`, med(`${k}.p50`));
          line(`${k}.p99_ms`, med(`${k}.p99`));
          line(`${k}.rps`, med(`${k}.rps`));
          if (t.name !== 'direct') {
            const d = `${v.name}.c${c}.direct`;
            line(`${k}.added_p50_ms`, med(`${k}.p50`) - med(`${d}.p50`));
            line(`${k}.added_p99_ms`, med(`${k}.p99`) - med(`${d}.p99`));
            line(`${k}.cpu_us_per_request`, med(`${k}.cpu_us`));
          }
          const errors = (rounds.get(`${k}.errors`) ?? []).reduce((a, b) => a + b, 0);
          if (errors > 0) line(`${k}.errors`, errors);
        }
    console.log('# A2A added p50 over MCP added p50 through the same target, same rounds (target: ≤ 1.2)');
    for (const v of SENDS.filter((x) => !x.mcp))
      for (const c of [1, 32])
        for (const t of proxies) {
          const added = (name: string) => med(`${name}.c${c}.${t.name}.p50`) - med(`${name}.c${c}.direct.p50`);
          line(`${v.name}.c${c}.${t.name}.added_p50_over_mcp`, added(v.name) / added('mcp_tools_call'));
        }
    console.log('# SendStreamingMessage: time to the first event (ms), added = target − direct; inter-event gap jitter p99 (ms)');
    for (const v of STREAMS)
      for (const t of targets) {
        const k = `${v.name}.${t.name}`;
        line(`${k}.ttfe_p50_ms`, med(`${k}.ttfe_p50`));
        line(`${k}.ttfe_p99_ms`, med(`${k}.ttfe_p99`));
        line(`${k}.gap_jitter_p99_ms`, med(`${k}.gap_jitter_p99`));
        if (t.name !== 'direct') {
          line(`${k}.ttfe_added_p50_ms`, med(`${k}.ttfe_p50`) - med(`${v.name}.direct.ttfe_p50`));
          line(`${k}.ttfe_added_p99_ms`, med(`${k}.ttfe_p99`) - med(`${v.name}.direct.ttfe_p99`));
        }
        const errors = (rounds.get(`${k}.errors`) ?? []).reduce((a, b) => a + b, 0);
        if (errors > 0) line(`${k}.errors`, errors);
      }
    console.log(`# HTTP+JSON message:send and the agent card (${CARD_SKILLS} skills; the sidecar serves 3), one client (ms); added = target − direct`);
    for (const what of ['rest_send_1.0', 'card'])
      for (const t of targets) {
        const k = `${what}.c1.${t.name}`;
        line(`${k}.p50_ms`, med(`${k}.p50`));
        line(`${k}.p99_ms`, med(`${k}.p99`));
        if (t.name !== 'direct') line(`${k}.added_p50_ms`, med(`${k}.p50`) - med(`${what}.c1.direct.p50`));
        const errors = (rounds.get(`${k}.errors`) ?? []).reduce((a, b) => a + b, 0);
        if (errors > 0) line(`${k}.errors`, errors);
      }
    for (const t of targets) line(`card.${t.name}.skills`, await cardSkills(t));
    console.log(
      `# one ${BULK_BYTES / 1024 / 1024} MiB SendStreamingMessage per round: throughput, and the proxy's RSS peak above its RSS before the stream (MiB)`,
    );
    for (const t of targets) {
      line(`bulk.${t.name}.mb_per_s`, med(`bulk.${t.name}.mb_per_s`));
      if (t.pid !== null) {
        line(`bulk.${t.name}.rss_before_mib`, med(`bulk.${t.name}.rss_before_mib`));
        line(`bulk.${t.name}.rss_rise_mib`, med(`bulk.${t.name}.rss_rise_mib`));
      }
      const errors = (rounds.get(`bulk.${t.name}.errors`) ?? []).reduce((a, b) => a + b, 0);
      if (errors > 0) line(`bulk.${t.name}.errors`, errors);
    }
    if (!proxies.some((t) => t.name.startsWith('sidecar'))) console.log('# sidecar A2A route not available: direct and floor figures only');
  } finally {
    for (const p of live) await p.stop();
  }
  process.exit(0);
}

void main();

// Gate 4 benchmarks, printing `name value unit` lines. Real pieces throughout: the sidecar with the
// standalone backend, the real @slack/web-api against the fake Slack Web API, and a minimal
// Streamable HTTP upstream in a child process. Loopback only; bounded in count and time.
//
// 1. approval task creation: tools/call with params.task → CreateTaskResult, p50/p99, 1 and 10
//    concurrent clients, with the sidecar in a process of its own (the fake Slack in another). The Slack post is NOT on this path: submit runs in the background and a
//    Slack failure ends the task with -32006 (docs/approvals.md). Measured separately: how long the
//    standalone submit takes to be durable (= posted, chat.postMessage answered).
// 2. held-call overhead: from the moment the sidecar has the decision (its "approval decided" log
//    line) to the upstream's result at the client, against the same call made directly.
// 3. Slack API calls per pending approval per minute in steady state, with time compressed ×SCALE
//    (backoff divided, budgets multiplied, as bench/slack.ts does).
//
//   node dist/bench/approvals.js
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { standaloneBackend, type StandaloneOptions } from '../sidecar/approvals/standalone.js';
import { createLogger } from '../lib/log.js';
import { fileProvider, loadInitial } from '../sidecar/providers/file.js';
import { startSidecar, type Sidecar } from '../sidecar/sidecar.js';
import { DEFAULT_BACKOFF } from '../slack/poller.js';
import { SLACK_RATE_BUDGETS, type RateBudget } from '../slack/rate-limiter.js';
import { startFakeSlack, type FakeSlack } from '../test/fakes/slack-server.js';
import { freePort } from './support/processes.js';
import { readBodyText } from '../lib/read-body.js';

const CH = 'C0BENCH';
const TOKEN = 'xoxb-bench';
const APPROVER = 'U0BENCH';
const SCALE = Number(process.env['BENCH_APPROVALS_SCALE'] || 30);

const line = (name: string, value: number, unit: string) => console.log(`${name} ${value.toFixed(3)} ${unit}`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

// ---------- peers (child process): the upstream, answering every tools/call at once as JSON, and a fake Slack ----------
async function runPeers(): Promise<void> {
  const fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CH, name: 'bench' }],
    users: [{ id: APPROVER, name: 'approver' }],
  });
  const server = http.createServer((req, res) => {
    // The fake upstream reads as the sidecar does: bounded, strict UTF-8.
    void readBodyText(req, { limitBytes: 64 * 1024 * 1024 }).then(
      (body) => {
        const id = /"id":(\d+|"[^"]*")/.exec(body)?.[1] ?? 'null';
        const out = `{"jsonrpc":"2.0","id":${id},"result":{"content":[{"type":"text","text":"deployed"}]}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      },
      () => res.destroy(),
    );
  });
  server.listen(Number(process.argv[3]), '127.0.0.1', () => process.stdout.write(`ready ${fake.url}\n`));
}

function spawnReady(args: string[]): Promise<{ child: ChildProcess; slackUrl: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.once('data', (d: Buffer) => resolve({ child, slackUrl: /ready (\S+)/.exec(d.toString())![1]! }));
    child.once('exit', (c) => reject(new Error(`peers exited ${c}`)));
  });
}

function budgets(factor: number, postFree: boolean): Record<string, RateBudget> {
  const out: Record<string, RateBudget> = {};
  for (const [m, b] of Object.entries(SLACK_RATE_BUDGETS)) out[m] = { ...b, perMinute: b.perMinute * factor };
  if (postFree) out['chat.postMessage'] = { perMinute: 1e6, burst: 1000, scope: 'channel' };
  return out;
}

interface Rig {
  sidecar: Sidecar;
  base: string;
  decidedAt: Map<string, number>;
  close(): Promise<void>;
}

async function startRig(fake: Pick<FakeSlack, 'url'>, upstreamUrl: string, opts: StandaloneOptions, timeout = '1h'): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-approvals-'));
  const path = join(dir, 'thoughtgate.yaml');
  writeFileSync(
    path,
    `
sources:
  - name: up
    url: ${upstreamUrl}
rules:
  - name: deploys
    match: { tool: deploy }
    action: approve
    approval: { channel: oncall, timeout: ${timeout} }
defaultAction: forward
approvalChannels:
  - name: oncall
    slack: { channel: ${CH}, apiUrl: "${fake.url}", tokenEnv: BENCH_SLACK_TOKEN }
    approvers: { users: [${APPROVER}] }
approvals:
  maxPending: { workload: 100000, client: 100000 }
  maxRetainedTasks: 100000
`,
  );
  const env = { BENCH_SLACK_TOKEN: TOKEN };
  const decidedAt = new Map<string, number>();
  // The engine logs "approval decided" synchronously as it applies a decision: the moment to time from.
  const log = createLogger('info', (l) => {
    if (l.includes('"msg":"approval decided"')) decidedAt.set(/"id":"([^"]+)"/.exec(l)![1]!, nowMs());
  });
  const initial = await loadInitial(path, env);
  if (!initial.ok) throw new Error(initial.errors.join('\n'));
  const sidecar = await startSidecar({
    port: 0,
    adminPort: 0,
    bind: '127.0.0.1',
    log,
    provider: fileProvider(path, env, initial, log, 60_000),
    approvals: standaloneBackend(initial.config.approvalChannels!, env, log, undefined, opts),
  });
  return {
    sidecar,
    base: `http://127.0.0.1:${sidecar.port}`,
    decidedAt,
    close: async () => {
      await sidecar.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

async function post(pool: Pool, body: string): Promise<string> {
  const r = await pool.request({ path: '/mcp/up', method: 'POST', body, headers: HEADERS });
  return r.body.text();
}

let seq = 0;
const callBody = (task: boolean) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id: ++seq,
    method: 'tools/call',
    params: { name: 'deploy', arguments: { service: 'api', version: String(seq) }, ...(task ? { task: { ttl: 3_600_000 } } : {}) },
  });

/** `gapMs` after each task: lets the Slack work of the last approval finish (a sidecar at rest). */
async function taskCreation(pool: Pool, clients: number, perClient: number, gapMs = 0): Promise<number[]> {
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) {
        const t = nowMs();
        const text = await post(pool, callBody(true));
        lat.push(nowMs() - t);
        const id = /"taskId":"(tg-[0-9a-f]{32})"/.exec(text)?.[1];
        if (!id) throw new Error(`no task: ${text}`);
        await post(pool, JSON.stringify({ jsonrpc: '2.0', id: ++seq, method: 'tasks/cancel', params: { taskId: id } }));
        if (gapMs > 0) await sleep(gapMs);
      }
    }),
  );
  return lat.sort((a, b) => a - b);
}

/** `--sidecar <upstream url> <slack url>`: a sidecar with the standalone backend, until SIGTERM. */
async function runSidecar(upstreamUrl: string, slackUrl: string): Promise<void> {
  // Posts and updates go out at once: one post and one update per approval, from this process.
  const rig = await startRig({ url: slackUrl }, upstreamUrl, {
    requestTimeoutMs: 5000,
    limiter: { budgets: { ...budgets(1, true), 'chat.update': { perMinute: 1e6, burst: 1000 } } },
  });
  process.stdout.write(`ready ${rig.sidecar.port}\n`);
  process.once('SIGTERM', () => {
    void rig.close().then(() => process.exit(0));
  });
}

function spawnSidecar(upstreamUrl: string, slackUrl: string): Promise<{ child: ChildProcess; base: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...(process.env['BENCH_SIDECAR_NODE_ARGS'] ?? '').split(' ').filter(Boolean), fileURLToPath(import.meta.url), '--sidecar', upstreamUrl, slackUrl],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    child.stdout!.once('data', (d: Buffer) => resolve({ child, base: `http://127.0.0.1:${/ready (\d+)/.exec(d.toString())![1]}` }));
    child.once('exit', (c) => reject(new Error(`sidecar exited ${c}`)));
  });
}

async function main(): Promise<void> {
  console.log(
    `# thoughtgate approvals benchmark: node ${process.version}. 1: sidecar, upstream + fake Slack, load generator in 3 processes; 1b-3: sidecar, fake Slack and load in this one, upstream in a child`,
  );
  const upPort = await freePort();
  const { child: upstream, slackUrl: peerSlackUrl } = await spawnReady([fileURLToPath(import.meta.url), '--peers', String(upPort)]);
  const upstreamUrl = `http://127.0.0.1:${upPort}/mcp`;
  const fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CH, name: 'bench' }],
    users: [{ id: APPROVER, name: 'approver' }],
  });
  try {
    // ---------- 1. task creation, sidecar in its own process ----------
    // Each created task is cancelled right after (untimed), so a long warm run stays under the
    // pending limits; every approval still costs its Slack post and cancel update in that process.
    {
      const { child, base } = await spawnSidecar(upstreamUrl, peerSlackUrl);
      for (const [c, perClient, gap, tag] of [
        [4, 150, 0, 'warmup'],
        [1, 500, 10, 'c1_at_rest'],
        [1, 1000, 0, 'c1'],
        [10, 100, 0, 'c10'],
      ] as const) {
        const pool = new Pool(base, { connections: c });
        const lat = await taskCreation(pool, c, perClient, gap);
        await pool.close();
        if (tag === 'warmup') continue;
        line(`approvals.task_create.${tag}.p50`, pct(lat, 50), 'ms');
        line(`approvals.task_create.${tag}.p99`, pct(lat, 99), 'ms');
      }
      // Baseline on the same sidecar and client: a plain forwarded call (to the upstream and back), at rest.
      const pool = new Pool(base, { connections: 1 });
      const fwd: number[] = [];
      for (let i = 0; i < 500; i++) {
        const t = nowMs();
        await post(pool, JSON.stringify({ jsonrpc: '2.0', id: ++seq, method: 'tools/call', params: { name: 'status', arguments: {} } }));
        fwd.push(nowMs() - t);
        await sleep(10);
      }
      fwd.sort((a, b) => a - b);
      line('approvals.baseline_forward_at_rest.p50', pct(fwd, 50), 'ms');
      line('approvals.baseline_forward_at_rest.p99', pct(fwd, 99), 'ms');
      await pool.close();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }

    // ---------- 1b. standalone submit = posted to Slack (post budget lifted to see the call itself) ----------
    {
      const log = createLogger('error', () => undefined);
      const backend = standaloneBackend(
        [
          {
            name: 'oncall',
            slack: { channel: CH, apiUrl: fake.url, tokenEnv: 'T' },
            approvers: { users: [APPROVER], userGroups: [], required: 1 },
            reactions: { approve: ['white_check_mark'], reject: ['x'] },
            timeout: '1h',
            onTimeout: 'reject',
            redact: [],
          },
        ],
        { T: TOKEN },
        log,
        undefined,
        { limiter: { budgets: budgets(1, true) } },
      );
      const lat: number[] = [];
      for (let i = 0; i < 200; i++) {
        const now = new Date();
        const t = nowMs();
        await backend.submit({
          id: `tg-bench${i}`,
          channel: 'oncall',
          workload: { namespace: 'ns', serviceAccount: 'sa', pod: 'p' },
          source: 'up',
          method: 'tools/call',
          tool: 'deploy',
          arguments: { i },
          requestHash: 'x'.repeat(64),
          reason: 'bench',
          createdAt: now,
          expiresAt: new Date(now.getTime() + 3_600_000),
        });
        lat.push(nowMs() - t);
      }
      lat.sort((a, b) => a - b);
      line('approvals.standalone_submit_posted.p50', pct(lat, 50), 'ms');
      line('approvals.standalone_submit_posted.p99', pct(lat, 99), 'ms');
      await backend.close();
    }

    // ---------- 2. held call: decision → upstream result at the client, vs a direct call ----------
    {
      const rig = await startRig(fake, upstreamUrl, {
        backoff: { initialMs: 2, factor: 1, maxMs: 2 },
        limiter: { budgets: budgets(1000, true), maxConcurrent: 64 },
      });
      const pool = new Pool(rig.base, { connections: 4 });
      const direct = new Pool(`http://127.0.0.1:${upPort}`, { connections: 4 });
      const held: number[] = [];
      const straight: number[] = [];
      const N = 200;
      for (let i = 0; i < N + 20; i++) {
        const before = fake.messages(CH).length;
        const body = callBody(false);
        const answer = post(pool, body).then((t) => ({ t, at: nowMs() }));
        while (fake.messages(CH).length <= before) await sleep(1);
        const m = fake.messages(CH)[before]!;
        const id = /request (tgh-[0-9a-f]{32})/.exec(m.text ?? '')![1]!;
        fake.addReaction(CH, m.ts, 'white_check_mark', APPROVER);
        const { t, at } = await answer;
        if (!t.includes('deployed')) throw new Error(`held call failed: ${t}`);
        const decided = rig.decidedAt.get(id)!;
        const t0 = nowMs();
        const r = await direct.request({ path: '/mcp', method: 'POST', body, headers: HEADERS });
        await r.body.text();
        if (i >= 20) {
          held.push(at - decided);
          straight.push(nowMs() - t0);
        }
      }
      held.sort((a, b) => a - b);
      straight.sort((a, b) => a - b);
      line('approvals.held.decision_to_result.p50', pct(held, 50), 'ms');
      line('approvals.held.decision_to_result.p99', pct(held, 99), 'ms');
      line('approvals.held.direct_call.p50', pct(straight, 50), 'ms');
      line('approvals.held.direct_call.p99', pct(straight, 99), 'ms');
      line('approvals.held.added.p50', pct(held, 50) - pct(straight, 50), 'ms');
      await pool.close();
      await direct.close();
      await rig.close();
    }

    // ---------- 3. Slack calls per pending approval per minute, steady state (time ×SCALE) ----------
    {
      const minute = 60_000 / SCALE;
      const rig = await startRig(fake, upstreamUrl, {
        backoff: { initialMs: DEFAULT_BACKOFF.initialMs / SCALE, factor: DEFAULT_BACKOFF.factor, maxMs: DEFAULT_BACKOFF.maxMs / SCALE },
        expiryGraceMs: 5000 / SCALE,
        limiter: { budgets: budgets(SCALE, true) },
      });
      const pool = new Pool(rig.base, { connections: 10 });
      const N = 10;
      fake.clearCalls();
      for (let i = 0; i < N; i++) await post(pool, callBody(true));
      await sleep(2 * minute); // the interval reaches its 30 s ceiling after ~95 s
      const m0 = Date.now();
      await sleep(3 * minute);
      const m1 = Date.now();
      const calls = fake.calls().filter((c) => c.time >= m0 && c.time < m1 && c.token === TOKEN);
      const perMin = (n: number) => n / N / ((m1 - m0) / minute);
      line('approvals.slack_calls_per_pending_per_min', perMin(calls.length), 'calls');
      line('approvals.slack_reactions_get_per_pending_per_min', perMin(calls.filter((c) => c.method === 'reactions.get').length), 'calls');
      line('approvals.slack_429', fake.calls().filter((c) => c.status === 429).length, 'responses');
      await pool.close();
      await rig.close();
    }
  } finally {
    await fake.close();
    upstream.kill('SIGTERM');
  }
}

if (process.argv[2] === '--peers') {
  void runPeers();
} else if (process.argv[2] === '--sidecar') {
  void runSidecar(process.argv[3]!, process.argv[4]!);
} else {
  // Exits by itself: Slack calls still queued in the closed backends must not keep it alive.
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

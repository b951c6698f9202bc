// Slack API calls per pending approval per minute, measured: the real @slack/web-api WebClient,
// the real limiter and poller, and the fake Slack over loopback.
//
// Time is compressed so the run takes about a minute: the poller's backoff and the limiter's
// budgets are divided/multiplied by the same SCALE, so "calls per scaled minute" equals calls per
// real minute with the production settings (2 s ×1.5 → 30 s; reactions.get 45/min + burst 5).
// Timer granularity (~1 ms against a 67 ms shortest interval at SCALE 30) adds a few percent.
//
// Run (Node 20 cannot run .ts directly; .dev/ is git-ignored):
//   npx esbuild bench/slack.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=.dev/bench-slack.mjs && node .dev/bench-slack.mjs [--scale 30] [--n 1,10,50,200]
import { startFakeSlack, DEFAULT_FAKE_TOKEN, type FakeSlack } from '../test/fakes/slack-server.js';
import { SlackApprovalClient } from '../slack/client.js';
import { SlackConnection } from '../slack/connection.js';
import { ApprovalPoller, DEFAULT_BACKOFF, type PollerResult } from '../slack/poller.js';
import { SLACK_RATE_BUDGETS, type RateBudget } from '../slack/rate-limiter.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const SCALE = Number(arg('scale', '30'));
const SIZES = arg('n', '1,10,50,200').split(',').map(Number);
const MINUTE = 60_000 / SCALE;
const WARMUP_MIN = 2; // the interval reaches 30 s after ~95 s
const MEASURE_MIN = 3;
const CH = 'C0BENCH';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function scaledBudgets(): Record<string, RateBudget> {
  const out: Record<string, RateBudget> = {};
  for (const [m, b] of Object.entries(SLACK_RATE_BUDGETS)) out[m] = { ...b, perMinute: b.perMinute * SCALE };
  // Posting the N messages is setup, not what we measure.
  out['chat.postMessage'] = { perMinute: 1e6, burst: 1000, scope: 'channel' };
  return out;
}

interface Row {
  n: number;
  firstMinute: number;
  steady: number;
  steadyAll: number;
  decideMedianS: number;
  decideMaxS: number;
  http429: number;
}

async function scenario(fake: FakeSlack, n: number): Promise<Row> {
  fake.clearCalls();
  const conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url, limiter: { budgets: scaledBudgets() } });
  const client = new SlackApprovalClient(conn, {
    channel: CH,
    approvers: { users: ['U1'], userGroups: [] },
    reactions: { approve: ['white_check_mark'], reject: ['x'] },
  });
  const decided = new Map<string, number>();
  const poller = new ApprovalPoller({
    onResult: (r: PollerResult) => decided.set(r.id, Date.now()),
    backoff: { initialMs: DEFAULT_BACKOFF.initialMs / SCALE, factor: DEFAULT_BACKOFF.factor, maxMs: DEFAULT_BACKOFF.maxMs / SCALE },
  });
  try {
    const posted = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        client.post({
          id: `ar-${i}`,
          tool: 'deploy',
          source: 'ci',
          arguments: { i },
          workload: { namespace: 'ns', serviceAccount: 'sa', pod: `p${i}` },
          expiresAt: Date.now() + 3_600_000,
        }),
      ),
    );
    const t0 = Date.now();
    for (const [i, p] of posted.entries()) poller.add(client.pending(`ar-${i}`, p.ts, Date.now() + 3_600_000));
    await sleep(WARMUP_MIN * MINUTE);
    const m0 = Date.now();
    await sleep(MEASURE_MIN * MINUTE);
    const m1 = Date.now();
    const calls = fake.calls().filter((c) => c.token === DEFAULT_FAKE_TOKEN && c.method !== 'chat.postMessage');
    const inRange = (a: number, b: number, method?: string) => calls.filter((c) => c.time >= a && c.time < b && (!method || c.method === method)).length;
    const perMin = (count: number, ms: number) => count / n / (ms / MINUTE);

    // Then everybody approves at once: how long until each approval is seen (in real-equivalent seconds)?
    const reactedAt = Date.now();
    for (const p of posted) fake.addReaction(CH, p.ts, 'white_check_mark', 'U1');
    const deadline = reactedAt + 15 * MINUTE;
    while (decided.size < n && Date.now() < deadline) await sleep(5);
    const lat = [...decided.values()].map((t) => ((t - reactedAt) * SCALE) / 1000).sort((a, b) => a - b);
    return {
      n,
      firstMinute: perMin(inRange(t0, t0 + MINUTE, 'reactions.get'), MINUTE),
      steady: perMin(inRange(m0, m1, 'reactions.get'), m1 - m0),
      steadyAll: perMin(inRange(m0, m1), m1 - m0),
      decideMedianS: lat[Math.floor(lat.length / 2)] ?? NaN,
      decideMaxS: lat.length === n ? lat[lat.length - 1]! : Infinity,
      http429: fake.calls().filter((c) => c.status === 429).length,
    };
  } finally {
    poller.close();
    conn.close();
  }
}

async function main(): Promise<void> {
  const fake = await startFakeSlack({ channels: [{ id: CH, name: 'bench' }], users: [{ id: 'U1', name: 'alice' }] });
  // Slack's Tier 3 minimum for reactions.get, scaled like everything else: a 429 here would mean our budget is wrong.
  fake.setRateLimit('reactions.get', { limit: 50, windowMs: MINUTE });
  const rb = SLACK_RATE_BUDGETS['reactions.get']!;
  console.log(`Slack approval polling, time compressed ×${SCALE}; numbers are per real-equivalent minute.`);
  console.log(
    `backoff ${DEFAULT_BACKOFF.initialMs / 1000}s ×${DEFAULT_BACKOFF.factor} → ${DEFAULT_BACKOFF.maxMs / 1000}s; reactions.get budget ${rb.perMinute}/min + burst ${rb.burst} per token; fake enforces 50/min`,
  );
  console.log('pending | reactions.get/approval/min: 1st min | steady | all calls steady | decision seen after (median / max s) | 429s');
  try {
    for (const n of SIZES) {
      const r = await scenario(fake, n);
      console.log(
        `${String(r.n).padStart(7)} | ${r.firstMinute.toFixed(2).padStart(35)} | ${r.steady.toFixed(2).padStart(6)} | ${r.steadyAll.toFixed(2).padStart(16)} | ${`${r.decideMedianS.toFixed(1)} / ${r.decideMaxS.toFixed(1)}`.padStart(37)} | ${r.http429}`,
      );
    }
  } finally {
    await fake.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

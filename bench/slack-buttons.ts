// Slack buttons over Socket Mode, measured (issue 12):
//   1. time from a click to the held call's result, with 1, 50 and 200 approvals pending: the real
//      sidecar (in process) with the standalone backend, a held tools/call from the MCP SDK client,
//      the real @slack/socket-mode client against the fake Slack's Socket Mode, the real upstream.
//      The other approvals are pending on the same channel and token (submitted to the backend).
//   2. Slack API calls per pending approval per minute, buttons (Socket Mode + the reactions'
//      safety poll) against reactions polling, with time compressed ×SCALE like bench/slack.ts:
//      the backoffs are divided by SCALE, so calls per scaled minute are calls per real minute.
// Prints numbers, asserts nothing. Run: npm run build && node dist/bench/slack-buttons.js [--n 1,50,200] [--rounds 15] [--scale 30]
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { PendingApproval } from '../sidecar/approvals/backend.js';
import { standaloneBackend } from '../sidecar/approvals/standalone.js';
import { createLogger } from '../lib/log.js';
import { APPROVE_ACTION_ID } from '../slack/message.js';
import { DEFAULT_BACKOFF, SAFETY_BACKOFF } from '../slack/poller.js';
import { SLACK_RATE_BUDGETS, type RateBudget } from '../slack/rate-limiter.js';
import { ALICE, APP_TOKEN, approvalConfig, CHANNEL, plainClient, startRig, TOKEN, withButtons, type Rig } from '../test/approvals-harness.js';
import { startFakeSlack } from '../test/fakes/slack-server.js';
import { FileApprovalChannelSchema } from '../api/approval.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const SIZES = arg('n', '1,50,200').split(',').map(Number);
const ROUNDS = Number(arg('rounds', '15'));
const SCALE = Number(arg('scale', '30'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = createLogger('error', () => undefined);

/** Posting the background approvals is setup: Slack's one post per second per channel would make it slow. */
const SETUP_LIMITS = {
  budgets: {
    'chat.postMessage': { perMinute: 60_000, burst: 1000, scope: 'channel' as const },
    'chat.update': { perMinute: 60_000, burst: 1000 },
    'reactions.get': { perMinute: 60_000, burst: 1000 },
  },
};

function pending(i: number, expiresInMs: number): PendingApproval {
  const now = Date.now();
  return {
    id: `bg-${i}`,
    channel: 'oncall',
    workload: { namespace: 'bench', serviceAccount: 'sa', pod: `p${i}` },
    source: 'up',
    method: 'tools/call',
    tool: 'deploy',
    arguments: { i },
    requestHash: '00'.repeat(32),
    reason: 'bench',
    owner: `bg-${i}`,
    createdAt: new Date(now),
    expiresAt: new Date(now + expiresInMs),
  };
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function clickToResult(n: number): Promise<number[]> {
  const rig: Rig = await startRig({
    config: (u, s) =>
      withButtons(
        approvalConfig(u, s, {
          channelTimeout: '30m',
          approvals:
            '  maxPending: { client: 1000, workload: 1000 }\n  rate: { client: { perMinute: 6000, burst: 100 }, workload: { perMinute: 6000, burst: 100 } }',
        }),
      ),
    env: { TG_TEST_SLACK_APP_TOKEN: APP_TOKEN },
    backend: { limiter: SETUP_LIMITS, backoff: DEFAULT_BACKOFF, buttonsBackoff: SAFETY_BACKOFF },
  });
  try {
    await rig.fake.socketMode.waitForConnections(1);
    const background = Array.from({ length: n - 1 }, (_, i) => rig.backend.submit(pending(i, 1_800_000)));
    await Promise.all(background);
    const out: number[] = [];
    const { client } = await plainClient(rig.url);
    for (let round = 0; round < ROUNDS; round++) {
      const before = rig.fake.messages(CHANNEL).length;
      const call = client.callTool({ name: 'deploy', arguments: { service: 'bench', version: String(round) } }, CallToolResultSchema, { timeout: 60_000 });
      const m = await rig.message(before);
      const t0 = performance.now();
      rig.fake.socketMode.click({ channel: CHANNEL, ts: m.ts, user: ALICE, actionId: APPROVE_ACTION_ID });
      await call;
      out.push(performance.now() - t0);
    }
    await client.close();
    return out.sort((a, b) => a - b);
  } finally {
    await rig.close();
  }
}

/** Calls per pending approval per (real-equivalent) minute, over the first 10 minutes and in the steady state after. */
async function callsPerMinute(n: number, buttons: boolean): Promise<{ first10: number; steady: number }> {
  const fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [{ id: ALICE, name: 'alice' }],
  });
  const minute = 60_000 / SCALE;
  const scale = (b: { initialMs: number; factor: number; maxMs: number }) => ({ initialMs: b.initialMs / SCALE, factor: b.factor, maxMs: b.maxMs / SCALE });
  const channel = FileApprovalChannelSchema.parse({
    name: 'oncall',
    slack: { channel: CHANNEL, apiUrl: fake.url, tokenEnv: 'TOKEN', ...(buttons ? { appTokenEnv: 'APP_TOKEN' } : {}) },
    approvers: { users: [ALICE] },
  });
  // Slack's budgets, scaled like the time (bench/slack.ts); posting the approvals is setup.
  const budgets: Record<string, RateBudget> = {};
  for (const [m, b] of Object.entries(SLACK_RATE_BUDGETS)) budgets[m] = { ...b, perMinute: b.perMinute * SCALE };
  budgets['chat.postMessage'] = SETUP_LIMITS.budgets['chat.postMessage'];
  const backend = standaloneBackend([channel], { TOKEN, APP_TOKEN }, quiet, undefined, {
    limiter: { budgets },
    backoff: scale(DEFAULT_BACKOFF),
    buttonsBackoff: scale(SAFETY_BACKOFF),
  });
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => backend.submit(pending(i, 120 * minute))));
    const t0 = Date.now();
    await sleep(20 * minute);
    const counted = fake.calls().filter((c) => c.method !== 'chat.postMessage' && c.method !== 'apps.connections.open');
    const inRange = (a: number, b: number) => counted.filter((c) => c.time >= a && c.time < b).length;
    return { first10: inRange(t0, t0 + 10 * minute) / n / 10, steady: inRange(t0 + 10 * minute, t0 + 20 * minute) / n / 10 };
  } finally {
    await backend.close();
    await fake.close();
  }
}

async function main(): Promise<void> {
  console.log(`1. click → held call's result (ms), ${ROUNDS} clicks per row, other approvals pending on the same channel and token`);
  console.log('pending | median |   p90 |   max');
  for (const n of SIZES) {
    const xs = await clickToResult(n);
    console.log(
      `${String(n).padStart(7)} | ${pct(xs, 50).toFixed(1).padStart(6)} | ${pct(xs, 90).toFixed(1).padStart(5)} | ${xs[xs.length - 1]!.toFixed(1).padStart(5)}`,
    );
  }
  console.log(`2. Slack API calls per pending approval per minute (time ×${SCALE}; all calls but the posts and apps.connections.open)`);
  console.log('pending | reactions polled: first 10 min | after | buttons (Socket Mode + safety poll): first 10 min | after');
  for (const n of SIZES) {
    const r = await callsPerMinute(n, false);
    const b = await callsPerMinute(n, true);
    console.log(
      `${String(n).padStart(7)} | ${r.first10.toFixed(2).padStart(30)} | ${r.steady.toFixed(2).padStart(5)} | ${b.first10.toFixed(2).padStart(48)} | ${b.steady.toFixed(2).padStart(5)}`,
    );
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);

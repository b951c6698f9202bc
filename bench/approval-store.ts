// What the standalone approval store (--state-dir) costs (issue 12): the sidecar's memory is paid
// once per pod, so the figures are memory first.
//   1. In this process (run with --expose-gc): heap added per live approval by the store, over
//      holding the same PendingApprovals alone (the backend holds those anyway), and the time of
//      a durable put (write + fdatasync) on this disk.
//   2. The built sidecar (dist/cli.js) idle with an approval channel, without and with
//      --state-dir, alternated (A B A B …), median RSS and anonymous memory of 5 starts each.
// Prints numbers, asserts nothing.
//
//   node dist/bench/approval-store.js   (it runs itself again with --expose-gc)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../lib/log.js';
import { openApprovalStore } from '../sidecar/approvals/approval-store.js';
import type { PendingApproval } from '../sidecar/approvals/backend.js';
import { freePort, pct } from './support/processes.js';
import { statusMemory } from './support/proc.js';

const N = 1000;
const gc = (globalThis as { gc?: () => void }).gc;

function approval(i: number): PendingApproval {
  return {
    id: `tg-${i.toString(16).padStart(32, '0')}`,
    channel: 'oncall',
    workload: { namespace: 'default', serviceAccount: 'default', pod: 'standalone' },
    source: 'github',
    method: 'tools/call',
    tool: 'create_release',
    // A typical call: a few hundred bytes of arguments.
    arguments: { repo: 'acme/api', tag: `v1.${i}.0`, notes: 'x'.repeat(200), draft: false },
    requestHash: 'ab'.repeat(32),
    reason: 'releases need a human',
    mcpSessionId: `session-${i}`,
    owner: `github\u0000session:session-${i}`,
    client: `session:session-${i}`,
    createdAt: new Date(),
    expiresAt: new Date(Date.now() + 600_000),
  };
}

function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

async function inProcess(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-store-'));
  try {
    const held: PendingApproval[] = [];
    const h0 = heap();
    for (let i = 0; i < N; i++) held.push(approval(i));
    const h1 = heap();
    const store = await openApprovalStore(join(dir, 'state'), { log: createLogger('error', () => undefined) });
    const h2 = heap();
    const times: number[] = [];
    for (const p of held) {
      const t = process.hrtime.bigint();
      await store.put(p, 'C0BENCH');
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const h3 = heap();
    times.sort((a, b) => a - b);
    const s = store.stats();
    console.log(`approvals held alone: ${((h1 - h0) / N).toFixed(0)} B heap each`);
    console.log(`store opened (empty): ${((h2 - h1) / 1024).toFixed(0)} KiB heap`);
    console.log(`store, per live approval: ${((h3 - h2) / N).toFixed(0)} B heap (records referencing the same arguments)`);
    console.log(`durable put (write + fdatasync): p50 ${pct(times, 50).toFixed(2)} ms, p99 ${pct(times, 99).toFixed(2)} ms`);
    console.log(`file: ${s.fileBytes} bytes for ${s.approvals} approvals (${(s.fileBytes / s.approvals).toFixed(0)} B each)`);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function idle(withStore: boolean, dir: string): Promise<{ rss: number; anon: number }> {
  const node = process.env['BENCH_NODE'] ?? process.execPath;
  const cfg = join(dir, 'c.yaml');
  const [port, admin] = [await freePort(), await freePort()];
  const args = [
    join(import.meta.dirname, '..', 'cli.js'),
    'sidecar',
    '--config',
    cfg,
    '--port',
    String(port),
    '--admin-port',
    String(admin),
    '--log-level',
    'error',
  ];
  if (withStore) args.push('--state-dir', join(dir, `state-${port}`));
  const p = spawn(node, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, TG_BENCH_TOKEN: 'xoxb-bench' } });
  for (let i = 0; i < 500; i++) {
    if (
      await fetch(`http://127.0.0.1:${admin}/ready`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const out = statusMemory(p.pid!);
  p.kill();
  await new Promise((r) => p.once('exit', r));
  return out;
}

async function sidecarIdle(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-store-idle-'));
  writeFileSync(
    join(dir, 'c.yaml'),
    `sources:
  - name: up
    url: http://127.0.0.1:9/mcp
rules:
  - name: all
    match: { tool: "*" }
    action: approve
    approval: { channel: oncall }
approvalChannels:
  - name: oncall
    slack: { channel: C0BENCH, apiUrl: "http://127.0.0.1:9/api/", tokenEnv: TG_BENCH_TOKEN }
    approvers: { users: [U0ALICE] }
`,
  );
  const runs: Record<string, { rss: number; anon: number }[]> = { memory: [], store: [] };
  try {
    for (let i = 0; i < 5; i++) {
      runs.memory!.push(await idle(false, dir));
      runs.store!.push(await idle(true, dir));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
  const spread = (a: number[]) => `${Math.min(...a).toFixed(1)}–${Math.max(...a).toFixed(1)}`;
  for (const [name, rs] of Object.entries(runs)) {
    const rss = rs.map((r) => r.rss);
    const anon = rs.map((r) => r.anon);
    console.log(
      `idle sidecar, approvals ${name === 'store' ? 'with --state-dir' : 'in memory'}: RSS ${med(rss).toFixed(1)} MiB (${spread(rss)}), anon ${med(anon).toFixed(1)} MiB (${spread(anon)})`,
    );
  }
}

if (gc) {
  await inProcess();
  await sidecarIdle();
} else process.exitCode = spawnSync(process.execPath, ['--expose-gc', process.argv[1]!], { stdio: 'inherit' }).status ?? 1;

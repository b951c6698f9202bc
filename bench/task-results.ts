// Memory of task results (issue 7, class 9e): 40 (then 120) clients each run a task ThoughtGate answers
// itself whose tool returns 3 MiB, and nobody reads the results. Printed: the sidecar process's
// RSS growth (after GC) with the limits as shipped (approvals.maxTaskResultBytes 4 MiB,
// maxRetainedTaskBytes 64 MiB) and with them lifted out of the way (what the sidecar did before
// they existed: every result kept whole until its ttl), plus what was kept.
//
// The upstream and the fake Slack run in this process; the sidecar in a child of its own
// (`node --expose-gc dist/bench/task-results.js child <mode> <upstream> <slack>`), so its RSS is
// the sidecar's alone. Loopback only.
//
//   node dist/bench/task-results.js
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { standaloneBackend } from '../sidecar/approvals/standalone.js';
import { createLogger } from '../lib/log.js';
import { fileProvider, loadInitial } from '../sidecar/providers/file.js';
import { startSidecar } from '../sidecar/sidecar.js';
import { startFakeSlack } from '../test/fakes/slack-server.js';
import { readBodyText } from '../lib/read-body.js';

/** Clients (one task each) per run: the 40, and three times as many to show the bound. */
const RUNS = [40, 120];
const RESULT_BYTES = 3 * 1024 * 1024;
const TOKEN = 'xoxb-bench';
const CH = 'C0BENCH';
const MIB = 1024 * 1024;

const MODES: Record<string, string> = {
  // What the sidecar did before the limits: every result kept whole until its ttl.
  unbounded: '  maxTaskResultBytes: 268435456\n  maxRetainedTaskBytes: 4294967296\n',
  bounded: '',
};

async function parent(): Promise<void> {
  const text = 'x'.repeat(RESULT_BYTES);
  const upstream = http.createServer((req, res) => {
    // The fake upstream reads as the sidecar does: bounded, strict UTF-8.
    void readBodyText(req, { limitBytes: 64 * 1024 * 1024 }).then(
      (body) => {
        const id = /"id":(\d+|"[^"]*")/.exec(body)?.[1];
        if (id === undefined) return void res.writeHead(202).end();
        const out = body.includes('"tools/call"')
          ? `{"jsonrpc":"2.0","id":${id},"result":{"content":[{"type":"text","text":"${text}"}]}}`
          : `{"jsonrpc":"2.0","id":${id},"result":{}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const up = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  const fake = await startFakeSlack({ tokens: { [TOKEN]: { userId: 'UBOT' } }, channels: [{ id: CH, name: 'bench' }] });
  try {
    for (const [clients, mode] of RUNS.flatMap((c) => Object.keys(MODES).map((m) => [c, m] as const))) {
      const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'child', mode, up, fake.url, String(clients)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      if (code !== 0) throw new Error(`task-results child (${mode}) exited ${code}`);
      process.stdout.write(out);
    }
  } finally {
    upstream.close();
    await fake.close();
  }
}

async function child(mode: string, up: string, slack: string, CLIENTS: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-tasks-'));
  const path = join(dir, 'thoughtgate.yaml');
  writeFileSync(
    path,
    `
sources:
  - { name: up, url: "${up}" }
rules:
  - match: { tool: report }
    action: policy
defaultAction: forward
cedar:
  policies: |
    @id("asks") @approve("oncall")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "report" && context.arguments has approve };
    @id("runs")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "report" && !(context.arguments has approve) };
approvalChannels:
  - name: oncall
    slack: { channel: ${CH}, apiUrl: "${slack}", tokenEnv: BENCH_SLACK_TOKEN }
    approvers: { users: [U0BENCH] }
approvals:
  maxRetainedTasksPerClient: 1000
${MODES[mode]}`,
  );
  const env = { BENCH_SLACK_TOKEN: TOKEN };
  const log = createLogger('error', () => undefined);
  const initial = await loadInitial(path, env);
  if (!initial.ok) throw new Error(initial.errors.join('\n'));
  const sidecar = await startSidecar({
    port: 0,
    adminPort: 0,
    bind: '127.0.0.1',
    log,
    provider: fileProvider(path, env, initial, log, 60_000),
    approvals: standaloneBackend(initial.config.approvalChannels ?? [], env, log),
  });
  const url = `http://127.0.0.1:${sidecar.port}/mcp/up`;
  let n = 0;
  const rpc = async (client: number, method: string, params: unknown): Promise<Record<string, unknown>> => {
    const r = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25',
        authorization: `Bearer client-${client}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++n, method, params }),
    });
    return (await r.json()) as Record<string, unknown>;
  };
  const runTask = async (client: number): Promise<string> => {
    const created = (await rpc(client, 'tools/call', { name: 'report', arguments: {}, task: {} })) as { result: { task: { taskId: string } } };
    const id = created.result.task.taskId;
    for (;;) {
      const got = (await rpc(client, 'tasks/get', { taskId: id })) as { result: { status: string } };
      if (got.result.status !== 'working') return got.result.status;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const rss = () => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().rss;
  };
  // Warm up every path once (its result is dropped by the ttl only, so it counts in both modes).
  await runTask(-1);
  await new Promise((r) => setTimeout(r, 200));
  const before = rss();
  const statuses: string[] = [];
  for (let c = 0; c < CLIENTS; c++) statuses.push(await runTask(c));
  await new Promise((r) => setTimeout(r, 200));
  const after = rss();
  const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
  const kept = Number(/^thoughtgate_sidecar_task_results_retained_bytes (\S+)/m.exec(metrics)?.[1] ?? NaN);
  console.log(
    `task_results_${CLIENTS}_${mode}_rss_growth ${((after - before) / MIB).toFixed(1)} MiB (${CLIENTS} tasks x ${RESULT_BYTES / MIB} MiB results, after GC)`,
  );
  console.log(
    `task_results_${CLIENTS}_${mode}_kept ${(kept / MIB).toFixed(1)} MiB in ${statuses.filter((s) => s === 'completed').length} results; ${statuses.filter((s) => s === 'failed').length} tasks ended -32024`,
  );
  await sidecar.close();
  rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === 'child') {
  child(process.argv[3]!, process.argv[4]!, process.argv[5]!, Number(process.argv[6])).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  parent().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

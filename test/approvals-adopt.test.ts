// Adoption after a sidecar restart, over the wire (issue 8, item 9): a task created by a client
// known only by its Authorization header answers to that client after the restart, and to no
// other client, anonymous ones included. The backend stores each approval as the ApprovalRequest
// the cluster backend would write and reads it back the same way (approvalRequestFor /
// pendingFromRequest), so what survives the restart is exactly what the CRD keeps.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApprovalRequestObject } from '../kube/resources.js';
import { createLogger } from '../lib/log.js';
import type { AdoptedApproval, ApprovalBackend, Decision } from '../sidecar/approvals/backend.js';
import { approvalRequestFor, pendingFromRequest } from '../sidecar/approvals/cluster-backend.js';
import { fileProvider, loadInitial } from '../sidecar/providers/file.js';
import { startSidecar, type Sidecar } from '../sidecar/sidecar.js';
import { approvalConfig, startApprovalUpstream, TOKEN, type ApprovalUpstream } from './approvals-harness.js';

/** ApprovalRequests as a cluster keeps them, across sidecar restarts. */
class StoredBackend implements ApprovalBackend {
  readonly description = 'stored ApprovalRequests';
  private cb: ((d: Decision) => void) | null = null;
  constructor(readonly store: Map<string, ApprovalRequestObject>) {}
  async submit(p: Parameters<ApprovalBackend['submit']>[0]) {
    this.store.set(p.id, JSON.parse(JSON.stringify(approvalRequestFor(p))) as ApprovalRequestObject);
  }
  onDecision(cb: (d: Decision) => void) {
    this.cb = cb;
  }
  decide(id: string, outcome: Decision['outcome']) {
    this.cb!({ id, outcome, at: new Date(), message: `${outcome} by a test` });
  }
  async cancel() {}
  async markExecuting() {}
  async finished() {}
  async adopt(): Promise<AdoptedApproval[]> {
    return [...this.store.values()].flatMap((obj) => {
      const r = pendingFromRequest(obj);
      return 'error' in r ? [] : [{ pending: r.pending, executionStarted: r.executionStarted }];
    });
  }
  async close() {}
}

let upstream: ApprovalUpstream;
let dir: string;
let configPath: string;
const env = { TG_TEST_SLACK_TOKEN: TOKEN };
const log = createLogger('error', () => undefined);

beforeAll(async () => {
  upstream = await startApprovalUpstream();
  dir = mkdtempSync(join(tmpdir(), 'tg-adopt-'));
  configPath = join(dir, 'thoughtgate.yaml');
  writeFileSync(configPath, approvalConfig(upstream.url, 'http://127.0.0.1:9/api'));
});
afterAll(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(backend: ApprovalBackend): Promise<Sidecar> {
  const initial = await loadInitial(configPath, env);
  if (!initial.ok) throw new Error(initial.errors.join('\n'));
  return startSidecar({
    port: 0,
    adminPort: 0,
    bind: '127.0.0.1',
    log,
    provider: fileProvider(configPath, env, initial, log, 100),
    drainTimeoutMs: 500,
    approvals: backend,
  });
}

async function post(
  s: Sidecar,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ result?: Record<string, unknown>; error?: { code: number; message: string } }> {
  const r = await fetch(`http://127.0.0.1:${s.port}/mcp/up`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  // tasks/result may answer as SSE: the last data line is the answer.
  const data = r.headers.get('content-type')?.startsWith('text/event-stream')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .pop()!
        .slice(6)
    : text;
  return JSON.parse(data) as { result?: Record<string, unknown>; error?: { code: number; message: string } };
}

const ALICE = { authorization: 'Bearer alice-token' };
const MALLORY = { authorization: 'Bearer mallory-token' };
const taskGet = (id: number, taskId: string) => ({ jsonrpc: '2.0', id, method: 'tasks/get', params: { taskId } });

test('after a restart an adopted task answers to its Authorization-identified client only', async () => {
  const store = new Map<string, ApprovalRequestObject>();
  const first = await start(new StoredBackend(store));
  const created = await post(
    first,
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'deploy', arguments: { service: 'api' }, task: { ttl: 600_000 } } },
    ALICE,
  );
  const taskId = (created.result?.['task'] as { taskId: string } | undefined)?.taskId;
  if (!taskId) throw new Error(`no task created: ${JSON.stringify(created)}`);
  expect(taskId).toMatch(/^tg-/);
  // What the cluster keeps: a hash of the header, never the header.
  const stored = JSON.stringify([...store.values()]);
  expect(stored).not.toContain('alice-token');
  expect([...store.values()][0]!.spec!['owner']).toMatch(/^auth:[0-9a-f]{32}$/);
  await first.close();

  const backend = new StoredBackend(store);
  const second = await start(backend);
  try {
    expect((await post(second, taskGet(2, taskId), ALICE)).result).toMatchObject({ taskId, status: 'working' });
    // Nobody else has this task: not an anonymous client, not another Authorization.
    expect((await post(second, taskGet(3, taskId))).error).toMatchObject({ code: -32602 });
    expect((await post(second, taskGet(4, taskId), MALLORY)).error).toMatchObject({ code: -32602 });
    expect(
      ((await post(second, { jsonrpc: '2.0', id: 5, method: 'tasks/list', params: {} }, ALICE)).result?.['tasks'] as { taskId: string }[] | undefined)?.map(
        (t) => t.taskId,
      ),
    ).toContain(taskId);
    backend.decide(taskId, 'rejected');
    expect((await post(second, { jsonrpc: '2.0', id: 6, method: 'tasks/result', params: { taskId } }, ALICE)).error).toMatchObject({ code: -32007 });
    expect(upstream.calls.filter((c) => c.args['service'] === 'api')).toHaveLength(0);
  } finally {
    await second.close();
  }
});

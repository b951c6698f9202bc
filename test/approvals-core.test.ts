// The pure parts of gate 4 (tasks.ts, hash.ts, approval-tools.ts, config validation) and the task
// engine's guarantees, driven through the ApprovalBackend contract with a scripted backend and a
// manual clock (the real backend, on the fake Slack, is exercised in approvals.test.ts).
import { parseConfigText } from '../policy/config/load.js';
import { compileRules } from '../policy/gates/rules.js';
import { sourceMayNeedApproval, toolMayNeedApproval } from '../policy/gates/approval-tools.js';
import { compilePolicies } from '../policy/cedar/policies.js';
import { compileSnapshot } from '../sidecar/snapshot.js';
import { canonicalJson } from '../api/canonical.js';
import { requestHash } from '../sidecar/approvals/hash.js';
import {
  decisionError,
  decodeCursor,
  encodeCursor,
  isOurTaskId,
  markTaskSupport,
  mergeInitializeResult,
  newTaskId,
  taskTtl,
  upstreamTaskSupport,
  withRelatedTask,
} from '../sidecar/approvals/tasks.js';
import { backoffCeiling } from '../lib/backoff.js';
import { ApprovalEngine, BACKEND_RETRIES, BACKEND_RETRY, type ApprovalSettings, type Executor } from '../sidecar/approvals/engine.js';
import type { AdoptedApproval, ApprovalBackend, Decision, PendingApproval } from '../sidecar/approvals/backend.js';
import { ApprovalSetupError, standaloneBackend } from '../sidecar/approvals/standalone.js';
import { adoptedOwner } from '../sidecar/approvals/runtime.js';
import { createLogger } from '../lib/log.js';
import { ManualClock } from './support/manual-clock.js';
import { IdentitySchema, PolicyDocumentSchema } from '../api/config.js';
import { TOO_MANY_PENDING } from '../api/approval-request.js';

describe('request hash', () => {
  test('canonical: key order does not matter, values and names do', () => {
    const a = requestHash('gh', 'create_issue', { title: 't', labels: ['a', 'b'], meta: { x: 1, y: null } });
    const b = requestHash('gh', 'create_issue', { meta: { y: null, x: 1 }, labels: ['a', 'b'], title: 't' });
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(requestHash('gh', 'create_issue', { title: 'u', labels: ['a', 'b'], meta: { x: 1, y: null } })).not.toBe(a);
    expect(requestHash('gh', 'create_issue', { title: 't', labels: ['b', 'a'], meta: { x: 1, y: null } })).not.toBe(a);
    expect(requestHash('gl', 'create_issue', { title: 't', labels: ['a', 'b'], meta: { x: 1, y: null } })).not.toBe(a);
    expect(canonicalJson({ b: 1, a: [true, 'x'], c: undefined })).toBe('{"a":[true,"x"],"b":1}');
  });
});

describe('tasks.ts', () => {
  test('task ids are ours only in the exact shape, 128 random bits', () => {
    const id = newTaskId('task');
    expect(id).toMatch(/^tg-[0-9a-f]{32}$/);
    expect(isOurTaskId(id)).toBe(true);
    expect(isOurTaskId(newTaskId('held'))).toBe(false);
    expect(isOurTaskId('tg-123')).toBe(false);
    expect(isOurTaskId('786512e2-9e0d-44bd-8f29-789f320fe840')).toBe(false);
    expect(newTaskId('task')).not.toBe(id);
  });

  test('ttl: requested or default, at most the max, never shorter than the approval timeout plus a minute', () => {
    const s = { taskTtlMs: 3_600_000, maxTaskTtlMs: 86_400_000 };
    expect(taskTtl(undefined, s, 600_000)).toBe(3_600_000);
    expect(taskTtl(7_200_000, s, 600_000)).toBe(7_200_000);
    expect(taskTtl(10 * 86_400_000, s, 600_000)).toBe(86_400_000);
    expect(taskTtl(1000, s, 600_000)).toBe(660_000);
    // A maximum below the approval timeout cannot cut the approval short.
    expect(taskTtl(undefined, { taskTtlMs: 1000, maxTaskTtlMs: 1000 }, 600_000)).toBe(660_000);
    expect(taskTtl(-5, s, 0)).toBe(3_600_000);
  });

  test('decisions map to distinct errors and statuses', () => {
    expect(decisionError('rejected')).toEqual({ name: 'APPROVAL_REJECTED', status: 'failed' });
    expect(decisionError('expired')).toEqual({ name: 'APPROVAL_TIMEOUT', status: 'failed' });
    expect(decisionError('cancelled')).toEqual({ name: 'APPROVAL_CANCELLED', status: 'cancelled' });
    expect(decisionError('failed')).toEqual({ name: 'APPROVAL_UNAVAILABLE', status: 'failed' });
    // The operator's cluster-wide cap is a limit (-32010), not an unavailable approval.
    expect(decisionError('failed', `${TOO_MANY_PENDING} in the cluster (1000)`)).toEqual({ name: 'APPROVAL_LIMIT', status: 'failed' });
  });

  test('tasks/list cursors: ours and the upstream one round-trip; anything else is invalid', () => {
    const ours = { kind: 'ours' as const, after: [1_700_000_000_000, 'tg-abc'] as [number, string] };
    expect(decodeCursor(encodeCursor(ours))).toEqual(ours);
    const up = { kind: 'upstream' as const, cursor: 'their/opaque cursor=1' };
    expect(decodeCursor(encodeCursor(up))).toEqual(up);
    for (const bad of ['', 'abc', 'tg1.!!', `tg1.${Buffer.from('[1]').toString('base64url')}`, 7, null, 'x'.repeat(5000)]) expect(decodeCursor(bad)).toBeNull();
  });

  test('initialize: our task capabilities are added, the upstream keeps everything it declared', () => {
    expect(mergeInitializeResult({ protocolVersion: '2025-11-25', capabilities: { tools: {} } })).toEqual({
      protocolVersion: '2025-11-25',
      capabilities: { tools: {}, tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } },
    });
    const theirs = { capabilities: { tasks: { list: { x: 1 }, requests: { tools: { call: { y: 2 } }, sampling: { createMessage: {} } } } } };
    expect(mergeInitializeResult(theirs)).toEqual({
      capabilities: { tasks: { list: { x: 1 }, cancel: {}, requests: { tools: { call: { y: 2 } }, sampling: { createMessage: {} } } } },
    });
    expect(mergeInitializeResult({ protocolVersion: 'x' })).toBeNull();
    expect(upstreamTaskSupport(theirs.capabilities === undefined ? {} : theirs)).toEqual({ list: true, cancel: false, toolsCall: true });
    expect(upstreamTaskSupport({ capabilities: {} })).toEqual({ list: false, cancel: false, toolsCall: false });
  });

  test('tools/list: tools that may need approval become optional unless the upstream said optional or required', () => {
    const seen: [string, string][] = [];
    const out = markTaskSupport(
      {
        tools: [
          { name: 'a' },
          { name: 'b', execution: { taskSupport: 'forbidden' } },
          { name: 'c', execution: { taskSupport: 'required' } },
          { name: 'd', execution: { taskSupport: 'optional' } },
          { name: 'e' },
        ],
        nextCursor: 'n',
      },
      (t) => t !== 'e',
      (t, s) => seen.push([t, s]),
    );
    expect(out).toEqual({
      tools: [
        { name: 'a', execution: { taskSupport: 'optional' } },
        { name: 'b', execution: { taskSupport: 'optional' } },
        { name: 'c', execution: { taskSupport: 'required' } },
        { name: 'd', execution: { taskSupport: 'optional' } },
        { name: 'e' },
      ],
      nextCursor: 'n',
    });
    expect(seen).toEqual([
      ['a', 'forbidden'],
      ['b', 'forbidden'],
      ['c', 'required'],
      ['d', 'optional'],
      ['e', 'forbidden'],
    ]);
  });

  test("tasks/result carries the related-task meta, keeping the result's own", () => {
    expect(withRelatedTask({ content: [], _meta: { k: 1 } }, 'tg-x')).toEqual({
      content: [],
      _meta: { k: 1, 'io.modelcontextprotocol/related-task': { taskId: 'tg-x' } },
    });
  });
});

describe('which tools may need approval (gates/approval-tools.ts)', () => {
  const doc = PolicyDocumentSchema.parse({
    rules: [
      { match: { tool: 'delete_*' }, action: 'deny' },
      { match: { tool: 'create_*', source: 'github' }, action: 'approve', approval: { channel: 'oncall' } },
      { match: { tool: 'transfer_*' }, action: 'policy' },
      { match: { resource: 'file:///*' }, action: 'approve', approval: { channel: 'oncall' } },
    ],
    defaultAction: 'forward',
    cedar: { policies: '@approve("finance") permit(principal, action, resource) when { context.arguments.amount > 5 };' },
  });
  const cedar = compilePolicies(doc.cedar!.policies);
  if (!cedar.ok) throw new Error(cedar.errors.join('\n'));
  const g = { rules: compileRules(doc.rules), defaultAction: doc.defaultAction, cedar: cedar.policies };

  test('per tool: the first matching rule decides, Cedar counts when a policy carries @approve', () => {
    expect(toolMayNeedApproval(g, 'github', 'create_issue')).toBe(true);
    expect(toolMayNeedApproval(g, 'gitlab', 'create_issue')).toBe(false);
    expect(toolMayNeedApproval(g, 'bank', 'transfer_funds')).toBe(true);
    expect(toolMayNeedApproval(g, 'bank', 'delete_account')).toBe(false);
    expect(toolMayNeedApproval({ ...g, cedar: null }, 'bank', 'transfer_funds')).toBe(false);
  });

  test('per source: whether tools/list needs looking at all', () => {
    expect(sourceMayNeedApproval(g, 'github')).toBe(true);
    expect(sourceMayNeedApproval({ ...g, cedar: null }, 'gitlab')).toBe(false);
    expect(sourceMayNeedApproval({ rules: compileRules(doc.rules.slice(0, 2)), defaultAction: 'forward', cedar: null }, 'gitlab')).toBe(false);
  });
});

describe('config: approvalChannels and approvals', () => {
  const channel = (name: string) => `  - name: ${name}
    slack: { channel: C0123, tokenEnv: SLACK_TOKEN }
    approvers: { users: [U0ALICE] }`;

  test('a rule naming no approvalChannels entry is an error at load, pointing at the rule', () => {
    const text = `rules:
  - match: { tool: "x" }
    action: approve
    approval: { channel: finance }
approvalChannels:
${channel('oncall')}
`;
    const r = parseConfigText(text, 'tg.yaml', {});
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors).toEqual(['tg.yaml:4:26: rules[0].approval.channel: no approvalChannels entry is named "finance" (listed: oncall)']);
  });

  test('a Cedar @approve naming no approvalChannels entry is an error where the policies compile', () => {
    const text = `defaultAction: policy
cedar:
  policies: |
    @id("p") @approve("finance")
    permit(principal, action, resource);
approvalChannels:
${channel('oncall')}
${channel('oncall')}
`;
    const parsed = parseConfigText(text, 'tg.yaml', {});
    expect(!parsed.ok && parsed.errors).toEqual([expect.stringMatching(/approvalChannels\[1\]\.name: duplicate approval channel name "oncall"/)]);
    const ok = parseConfigText(text.replace(/\n {2}- name: oncall[\s\S]*$/, `\n${channel('oncall')}\n`), 'tg.yaml', {});
    if (!ok.ok) throw new Error(ok.errors.join('\n'));
    const { identity: _i, ...doc } = ok.config;
    const c = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
    expect(!c.ok && c.errors).toEqual(['cedar.policies:1:1: policy "p": @approve("finance") names no approvalChannels entry (listed: oncall)']);
  });

  test('without approvalChannels nothing is checked (approval calls are refused with -32006 instead)', () => {
    const r = parseConfigText('rules:\n  - { match: { tool: x }, action: approve, approval: { channel: anything } }\n', 'tg.yaml', {});
    expect(r.ok).toBe(true);
    expect(r.ok && r.config.approvals).toEqual({
      maxPending: { workload: 100, client: 20 },
      defaultTimeout: '10m',
      taskTtl: '1h',
      maxTaskTtl: '24h',
      pollInterval: '5s',
      heldKeepAlive: '15s',
      maxRetainedTasks: 1000,
      maxRetainedTasksPerClient: 100,
      maxTaskResultBytes: 4194304,
      maxRetainedTaskBytes: 67108864,
      rate: { client: { perMinute: 30, burst: 10 }, workload: { perMinute: 120, burst: 30 } },
    });
  });

  test("the standalone backend needs every channel's token variable", () => {
    const r = parseConfigText(`approvalChannels:\n${channel('oncall')}\n`, 'tg.yaml', {});
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(() =>
      standaloneBackend(
        r.config.approvalChannels!,
        {},
        createLogger('error', () => undefined),
      ),
    ).toThrow(ApprovalSetupError);
    expect(() =>
      standaloneBackend(
        r.config.approvalChannels!,
        {},
        createLogger('error', () => undefined),
      ),
    ).toThrow(/SLACK_TOKEN \(slack.tokenEnv\) is not set/);
  });
});

// ---------- the engine, through the backend contract ----------

class ScriptedBackend implements ApprovalBackend {
  readonly description = 'scripted backend';
  readonly log: string[] = [];
  submitted: PendingApproval[] = [];
  adopted: AdoptedApproval[] = [];
  failMarkExecuting = false;
  /** How many of the next finished() calls fail. */
  failFinished = 0;
  private cb: ((d: Decision) => void) | null = null;
  async submit(p: PendingApproval) {
    this.log.push(`submit ${p.id}`);
    this.submitted.push(p);
  }
  onDecision(cb: (d: Decision) => void) {
    this.cb = cb;
  }
  decide(id: string, outcome: Decision['outcome']) {
    this.cb!({ id, outcome, at: new Date(), message: `${outcome} by script`, by: [{ id: 'U1', name: 'Una' }] });
  }
  async cancel(id: string) {
    this.log.push(`cancel ${id}`);
  }
  async markExecuting(id: string) {
    this.log.push(`markExecuting ${id}`);
    if (this.failMarkExecuting) throw new Error('API server unreachable');
  }
  async finished(id: string, r: { ok: boolean; summary: string }) {
    this.log.push(`finished ${id} ${r.ok}`);
    if (this.failFinished > 0) {
      this.failFinished--;
      throw new Error('API server unreachable');
    }
  }
  async adopt() {
    return this.adopted;
  }
  async close() {}
}

const SETTINGS: ApprovalSettings = {
  maxPendingWorkload: 10,
  maxPendingClient: 10,
  defaultTimeoutMs: 60_000,
  taskTtlMs: 3_600_000,
  maxTaskTtlMs: 86_400_000,
  pollIntervalMs: 1000,
  keepAliveMs: 15_000,
  maxRetainedTasks: 100,
};
const OWNER = { source: 'up', client: 'session:s1' };

function setup() {
  const clock = new ManualClock();
  const backend = new ScriptedBackend();
  const engine = new ApprovalEngine({
    backend,
    workload: () => ({ namespace: 'ns', serviceAccount: 'sa', pod: 'p' }),
    log: createLogger('error', () => undefined),
    clock,
  });
  const ran: { tool: string; arguments: unknown }[] = [];
  const execute: Executor = async (call) => {
    backend.log.push(`execute ${call.tool}`);
    ran.push(structuredClone(call));
    return { kind: 'result', result: { content: [{ type: 'text', text: 'ok' }] } };
  };
  const start = (args: Record<string, unknown> = { n: 1 }, s: ApprovalSettings = SETTINGS) =>
    engine.start(
      { mode: 'task', owner: OWNER, source: 'up', tool: 'deploy', arguments: args, approval: { channel: 'oncall', reason: 'r' }, correlationId: 'c', execute },
      s,
    );
  return { clock, backend, engine, ran, start, execute };
}

describe('the task engine', () => {
  test('at most once: markExecuting first, then one run, however many approvals arrive', async () => {
    const { clock, backend, engine, ran, start } = setup();
    const r = start();
    if (!r.ok) throw new Error(r.reason);
    await clock.advance(0);
    backend.decide(r.task.id, 'approved');
    backend.decide(r.task.id, 'approved');
    await clock.advance(0);
    backend.decide(r.task.id, 'approved');
    await engine.wait(r.task);
    expect(ran).toEqual([{ tool: 'deploy', arguments: { n: 1 } }]);
    expect(backend.log).toEqual([`submit ${r.task.id}`, `markExecuting ${r.task.id}`, 'execute deploy', `finished ${r.task.id} true`]);
    expect(r.task.status).toBe('completed');
  });

  test("what runs is the engine's own copy: changing the submitted arguments changes nothing", async () => {
    const { clock, backend, engine, ran, start } = setup();
    const args = { amount: 10 };
    const r = start(args);
    if (!r.ok) throw new Error(r.reason);
    args.amount = 1_000_000; // the caller's object
    await clock.advance(0); // submit runs after the turn that created the task
    (backend.submitted[0]!.arguments as { amount: number }).amount = 999; // the backend's copy
    backend.decide(r.task.id, 'approved');
    await engine.wait(r.task);
    expect(ran).toEqual([{ tool: 'deploy', arguments: { amount: 10 } }]);
  });

  test('markExecuting failing means the call is not run (it could not be kept at most once)', async () => {
    const { clock, backend, engine, ran, start } = setup();
    backend.failMarkExecuting = true;
    const r = start();
    if (!r.ok) throw new Error(r.reason);
    await clock.advance(0);
    backend.decide(r.task.id, 'approved');
    await engine.wait(r.task);
    expect(ran).toEqual([]);
    expect(r.task.status).toBe('failed');
    expect(r.task.outcome).toMatchObject({ kind: 'error', error: { code: -32006, data: { reason: expect.stringMatching(/API server unreachable/) } } });
  });

  test('adopted approvals run only when the stored request still matches its hash; held ones are cancelled', async () => {
    const { backend, engine, ran, execute } = setup();
    const now = new Date();
    const pending = (id: string, args: Record<string, unknown>, hashOf = args): PendingApproval => ({
      id,
      channel: 'oncall',
      workload: { namespace: 'ns', serviceAccount: 'sa', pod: 'p' },
      source: 'up',
      method: 'tools/call',
      tool: 'deploy',
      arguments: args,
      requestHash: requestHash('up', 'deploy', hashOf),
      reason: 'r',
      mcpSessionId: 's1',
      createdAt: now,
      expiresAt: new Date(now.getTime() + 60_000),
    });
    const good = pending(newTaskId('task'), { to: 'alice' });
    const tampered = pending(newTaskId('task'), { to: 'mallory' }, { to: 'alice' });
    const held = pending(newTaskId('held'), { to: 'bob' });
    const approved = (id: string): Decision => ({ id, outcome: 'approved', at: now, message: 'ok' });
    await engine.adopt(
      [
        { pending: good, decision: approved(good.id), executionStarted: false },
        { pending: tampered, decision: approved(tampered.id), executionStarted: false },
        { pending: held, executionStarted: false },
      ],
      (p) => ({ owner: { source: p.source, client: `session:${p.mcpSessionId}` }, execute }),
      SETTINGS,
    );
    const g = engine.get(good.id, OWNER)!;
    const t = engine.get(tampered.id, OWNER)!;
    await engine.wait(g);
    await engine.wait(t);
    expect(ran).toEqual([{ tool: 'deploy', arguments: { to: 'alice' } }]);
    expect(g.status).toBe('completed');
    expect(t.status).toBe('failed');
    expect(t.outcome).toMatchObject({ error: { code: -32006, data: { reason: expect.stringMatching(/hash mismatch/) } } });
    expect(backend.log).toContain(`cancel ${held.id}`);
    expect(backend.log).toContain(`finished ${tampered.id} false`);
  });

  test('adopted tasks answer to the client that created them: the stored owner key, never anonymous by default', async () => {
    const { backend, engine, execute } = setup();
    const now = new Date();
    const authClient = { source: 'up', client: 'auth:0123456789abcdef0123456789abcdef' };
    const anonymous = { source: 'up', client: 'anonymous' };
    // What the engine stores with a new approval is the client key the owner has.
    const r = engine.start(
      {
        mode: 'task',
        owner: authClient,
        source: 'up',
        tool: 'deploy',
        arguments: {},
        approval: { channel: 'oncall', reason: 'r' },
        correlationId: 'c',
        execute,
      },
      SETTINGS,
    );
    if (!r.ok) throw new Error(r.reason);
    await new Promise((res) => setImmediate(res));
    expect(backend.submitted[0]!.client).toBe(authClient.client);

    const pending = (over: Partial<PendingApproval>): PendingApproval => ({
      id: newTaskId('task'),
      channel: 'oncall',
      workload: { namespace: 'ns', serviceAccount: 'sa', pod: 'p' },
      source: 'up',
      method: 'tools/call',
      tool: 'deploy',
      arguments: {},
      requestHash: requestHash('up', 'deploy', {}),
      reason: 'r',
      createdAt: now,
      expiresAt: new Date(now.getTime() + 60_000),
      ...over,
    });
    const byAuth = pending({ client: authClient.client });
    const bySession = pending({ client: 'session:s1', mcpSessionId: 's1' });
    const legacySession = pending({ mcpSessionId: 's1' });
    const legacyUnknown = pending({});
    expect([byAuth, bySession, legacySession, legacyUnknown].map(adoptedOwner)).toEqual([authClient, OWNER, OWNER, null]);
    await engine.adopt(
      [byAuth, bySession, legacySession, legacyUnknown].map((p) => ({ pending: p, executionStarted: false })),
      (p) => {
        const owner = adoptedOwner(p);
        return owner && { owner, execute };
      },
      SETTINGS,
    );
    expect(engine.get(byAuth.id, authClient)?.status).toBe('working');
    expect(engine.get(byAuth.id, anonymous)).toBeUndefined();
    expect(engine.get(byAuth.id, OWNER)).toBeUndefined();
    expect(engine.list(authClient, null, 10).tasks.map((t) => t.id)).toEqual([r.task.id, byAuth.id]);
    expect(engine.get(bySession.id, OWNER)?.status).toBe('working');
    expect(engine.get(legacySession.id, OWNER)?.status).toBe('working');
    // Whose it was is unknown: not adopted (cancelled), so no client can take it.
    expect(engine.get(legacyUnknown.id, anonymous)).toBeUndefined();
    expect(backend.log).toContain(`cancel ${legacyUnknown.id}`);
  });

  test('a failed backend write after the answer is retried, then logged and counted when given up', async () => {
    const clock = new ManualClock();
    const backend = new ScriptedBackend();
    const lines: Record<string, unknown>[] = [];
    const failures: string[] = [];
    const metrics = {
      pending: { set: () => undefined },
      decisions: { inc: () => undefined },
      waitSeconds: { observe: () => undefined },
      backendWriteFailures: { inc: (l: { op: string }) => failures.push(l.op) },
    };
    const engine = new ApprovalEngine({
      backend,
      workload: () => ({ namespace: 'ns', serviceAccount: 'sa', pod: 'p' }),
      log: createLogger('warn', (l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
      clock,
      metrics,
    });
    const execute: Executor = async () => ({ kind: 'result', result: {} });
    const startOne = () =>
      engine.start(
        { mode: 'task', owner: OWNER, source: 'up', tool: 'deploy', arguments: {}, approval: { channel: 'oncall', reason: 'r' }, correlationId: 'c', execute },
        SETTINGS,
      );
    /** A task approved and run to its end; its `finished` write may still be failing. */
    const approvedAndRun = async () => {
      const r = startOne();
      if (!r.ok) throw new Error(r.reason);
      await clock.advance(0);
      backend.decide(r.task.id, 'approved');
      await engine.wait(r.task);
      expect(r.task.status).toBe('completed');
      return r;
    };
    const finishedCalls = (id: string) => backend.log.filter((l) => l === `finished ${id} true`).length;

    // Two failures, then the write goes through: the record ends right, nothing is counted.
    backend.failFinished = 2;
    const a = await approvedAndRun();
    // Each wait is at most its ceiling (equal jitter: between half of it and all of it).
    await clock.advance(backoffCeiling(0, BACKEND_RETRY));
    await clock.advance(backoffCeiling(1, BACKEND_RETRY));
    expect(finishedCalls(a.task.id)).toBe(3);
    expect(failures).toEqual([]);
    expect(lines.filter((l) => l['msg'] === 'approval backend write failed; retrying')).toHaveLength(2);

    // It keeps failing: every retry is made, then it is an error in the log and a metric.
    backend.failFinished = 100;
    const b = await approvedAndRun();
    for (let i = 0; i < BACKEND_RETRIES; i++) await clock.advance(backoffCeiling(i, BACKEND_RETRY));
    expect(finishedCalls(b.task.id)).toBe(BACKEND_RETRIES + 1);
    expect(failures).toEqual(['finished']);
    expect(lines.find((l) => l['msg'] === 'approval backend write failed; given up')).toMatchObject({
      level: 'error',
      id: b.task.id,
      op: 'finished',
      attempts: 4,
    });

    // A retry still waiting when the engine closes is given up then, not left to keep the process alive.
    const c = await approvedAndRun();
    expect(clock.pending).toBeGreaterThan(0);
    engine.close();
    expect(failures).toEqual(['finished', 'finished']);
    expect(lines.filter((l) => l['msg'] === 'approval backend write failed; given up').map((l) => l['id'])).toEqual([b.task.id, c.task.id]);
    await clock.advance(60_000);
    expect(finishedCalls(c.task.id)).toBe(1);
  });

  test('the oldest-pending gauge: when the longest-waiting call started waiting, 0 when none waits', async () => {
    const clock = new ManualClock(1_000_000);
    const backend = new ScriptedBackend();
    const oldest: number[] = [];
    const engine = new ApprovalEngine({
      backend,
      workload: () => ({ namespace: 'ns', serviceAccount: 'sa', pod: 'p' }),
      log: createLogger('error', () => undefined),
      clock,
      metrics: {
        pending: { set: () => undefined },
        oldestPending: { set: (v: number) => oldest.push(v) },
        decisions: { inc: () => undefined },
        waitSeconds: { observe: () => undefined },
      },
    });
    const execute: Executor = async () => ({ kind: 'result', result: {} });
    const startOne = () => {
      const r = engine.start(
        { mode: 'task', owner: OWNER, source: 'up', tool: 'deploy', arguments: {}, approval: { channel: 'oncall', reason: 'r' }, correlationId: 'c', execute },
        SETTINGS,
      );
      if (!r.ok) throw new Error(r.reason);
      return r.task;
    };
    const first = startOne();
    await clock.advance(5_000);
    const second = startOne();
    await clock.advance(0);
    expect(oldest.at(-1)).toBe(1_000);
    backend.decide(first.id, 'rejected');
    await clock.advance(0);
    expect(oldest.at(-1)).toBe(1_005);
    backend.decide(second.id, 'rejected');
    await clock.advance(0);
    expect(oldest.at(-1)).toBe(0);
    engine.close();
  });

  test('no decision from the backend: the engine times the call out itself, and tells the backend', async () => {
    const { clock, backend, engine, ran, start } = setup();
    const r = start();
    if (!r.ok) throw new Error(r.reason);
    await clock.advance(60_000 + 30_000);
    expect(r.task.status).toBe('failed');
    expect(r.task.outcome).toMatchObject({ error: { code: -32008 } });
    expect(backend.log).toContain(`cancel ${r.task.id}`);
    backend.decide(r.task.id, 'approved'); // too late
    await clock.advance(0);
    expect(ran).toEqual([]);
    expect(engine.pending).toBe(0);
  });

  test('finished tasks are dropped after their ttl, and beyond maxRetainedTasks the oldest go first', async () => {
    const { clock, backend, engine, start } = setup();
    const small = { ...SETTINGS, maxRetainedTasks: 2 };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = start({ i }, small);
      if (!r.ok) throw new Error(r.reason);
      ids.push(r.task.id);
      backend.decide(r.task.id, 'rejected');
    }
    expect(ids.map((id) => engine.get(id, OWNER) !== undefined)).toEqual([false, true, true]);
    await clock.advance(3_600_000 + 1);
    expect(ids.map((id) => engine.get(id, OWNER) !== undefined)).toEqual([false, false, false]);
    expect(engine.size).toBe(0);
  });

  test("list: the owner's tasks in creation order, page by page", async () => {
    const { clock, engine, start } = setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = start({ i });
      if (!r.ok) throw new Error(r.reason);
      ids.push(r.task.id);
      await clock.advance(1);
    }
    const p1 = engine.list(OWNER, null, 2);
    expect(p1.tasks.map((t) => t.id)).toEqual(ids.slice(0, 2));
    expect(p1.more).toBe(true);
    const last = p1.tasks[1]!;
    const p2 = engine.list(OWNER, [last.createdAt, last.id], 2);
    expect(p2.tasks.map((t) => t.id)).toEqual(ids.slice(2, 4));
    const p3 = engine.list(OWNER, [p2.tasks[1]!.createdAt, p2.tasks[1]!.id], 2);
    expect(p3).toEqual({ tasks: [expect.objectContaining({ id: ids[4] })], more: false });
    expect(engine.list({ source: 'up', client: 'session:other' }, null, 10).tasks).toEqual([]);
  });

  test('limits count calls waiting for a decision, per client and per workload', () => {
    const { backend, start } = setup();
    const s = { ...SETTINGS, maxPendingClient: 2, maxPendingWorkload: 3 };
    const a = start({ a: 1 }, s);
    start({ a: 2 }, s);
    expect(start({ a: 3 }, s)).toMatchObject({ ok: false, error: 'APPROVAL_LIMIT' });
    if (!a.ok) throw new Error(a.reason);
    backend.decide(a.task.id, 'rejected');
    expect(start({ a: 4 }, s).ok).toBe(true);
  });
});

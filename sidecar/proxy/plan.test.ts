// Batch planning without a socket: what each message of a POST becomes (forwarded, probed, answered
// here, a held call cancelled, taken over by gate 4), and that the planner itself has no effects.
import { IdentitySchema, PolicyDocumentSchema } from '../../api/config.js';
import { parseJsonRpc, type Message } from '../../lib/jsonrpc.js';
import { compileSnapshot, type Snapshot } from '../snapshot.js';
import type { ApprovalView } from './gate4.js';
import { editPayload } from './edits.js';
import { checkPost, planPost, type PlanInput, type PostPlan, loggedTarget } from './plan.js';

function snapshot(enforcement?: 'audit'): Snapshot {
  const doc = PolicyDocumentSchema.parse({
    ...(enforcement ? { enforcement } : {}),
    sources: [{ name: 'up', url: 'http://127.0.0.1:1/mcp', expose: { mode: 'blocklist', tools: ['secret'] } }],
    defaultAction: 'forward',
    rules: [
      { match: { tool: 'rm' }, action: 'deny', reason: 'no deleting' },
      { match: { tool: 'pay' }, action: 'approve', approval: { channel: 'finance' } },
    ],
  });
  const r = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.snapshot;
}
const snap = snapshot();
const source = snap.sources.get('up')!;

function messagesOf(body: string): { messages: Message[]; batch: boolean } {
  const p = parseJsonRpc(body);
  if (!p.ok) throw new Error(p.reason);
  return p.batch ? { messages: p.messages, batch: true } : { messages: [p.message], batch: false };
}

/** A view that records what is asked of it; `held` maps JSON-RPC request ids to held task ids. */
function view(held: Record<string, string> = {}, owns = false): ApprovalView & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    heldCall: (_s, _h, params) => held[String((params as { requestId?: unknown }).requestId)] ?? null,
    ownsTaskCall: () => owns,
    toolSupportSeen: (s, tool, support) => seen.push(`tool ${s}/${tool}=${support}`),
    initializeSeen: (s, session) => seen.push(`init ${s}/${session}`),
  };
}

function plan(body: string, approvals: ApprovalView | null = null, more: Partial<PlanInput> = {}): PostPlan {
  return planPost({
    ...messagesOf(body),
    snap,
    source,
    headers: { 'mcp-session-id': 's1' },
    approvals,
    now: new Date(0),
    correlationId: 'cid',
    logging: false,
    probeName: () => 'thoughtgate-probe-x',
    ...more,
  });
}

const req = (id: number | string, method: string, params: unknown = {}) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
const note = (method: string, params: unknown = {}) => JSON.stringify({ jsonrpc: '2.0', method, params });
const call = (id: number, name: string, extra: Record<string, unknown> = {}) => req(id, 'tools/call', { name, arguments: {}, ...extra });
const codes = (local: string[]) => local.map((l) => (JSON.parse(l) as { id: unknown; error: { code: number } }).error.code);

test('a mixed batch: allowed calls go upstream in order, a denied one is answered here, a hidden one becomes a probe', () => {
  const p = plan(`[${call(1, 'echo')},${call(2, 'rm')},${call(3, 'secret')},${note('notifications/progress', { progressToken: 1, progress: 1 })}]`);
  expect(p.forward.map((f) => (JSON.parse(f) as { params: { name?: string } }).params.name)).toEqual(['echo', 'thoughtgate-probe-x', undefined]);
  expect(p.forwardedIds.map((i) => i.raw)).toEqual(['1', '3']);
  expect(codes(p.local)).toEqual([-32003]);
  expect(JSON.parse(p.local[0]!)).toMatchObject({ id: 2, error: { data: { gate: 'rules', reason: 'no deleting', correlationId: 'cid' } } });
  expect(p.edits.edits).toBe(1); // the probe's answer gets the hidden name back
  expect(p.counts.map((c) => `${c.method}:${c.decision}:${c.rule}`)).toEqual([
    'tools/call:forward:defaultAction',
    'tools/call:deny:rules[0]',
    'tools/call:hidden:expose',
    'notifications/progress:forward:none',
  ]);
  expect(p.outcomes.map((o) => o.decision)).toEqual(['forward', 'deny', 'hidden', 'forward']);
  expect(p.takeover).toBeNull();
});

test('responses pass, invalid messages and unreadable params are answered here, in the batch', () => {
  const p = plan(`[{"jsonrpc":"2.0","id":"srv-1","result":{}},{"jsonrpc":"2.0","id":7},${req(8, 'tools/call', { arguments: {} })}]`);
  expect(p.forward).toEqual(['{"jsonrpc":"2.0","id":"srv-1","result":{}}']);
  expect(p.forwardedIds).toEqual([]);
  expect(codes(p.local)).toEqual([-32600, -32602]);
  expect(p.outcomes.map((o) => o.decision)).toEqual(['response', 'invalid', 'invalid']);
  expect(p.counts).toEqual([]); // only decided messages are counted
});

test('without gate 4, approval calls are refused with -32006 and nothing is taken over', () => {
  const p = plan(call(1, 'pay'));
  expect(codes(p.local)).toEqual([-32006]);
  expect(p.local[0]).toContain('no approval channels configured');
  expect(p.forward).toEqual([]);
  expect(p.takeover).toBeNull();
});

test('with gate 4, a single approval call is taken over; in a batch it is refused and the rest still goes', () => {
  const single = plan(call(1, 'pay'), view());
  expect(single.takeover).toMatchObject({ kind: 'approval', message: { method: 'tools/call' }, decision: { channel: 'finance' } });
  const batch = plan(`[${call(1, 'pay')},${call(2, 'echo')}]`, view());
  expect(batch.takeover).toBeNull();
  expect(codes(batch.local)).toEqual([-32006]);
  expect(batch.local[0]).toContain('not available inside JSON-RPC batches');
  expect(batch.forwardedIds.map((i) => i.raw)).toEqual(['2']);
});

test("ThoughtGate's task ids and tasks/list are taken over singly, refused in a batch; other task ids pass", () => {
  const ours = `tg-${'0'.repeat(32)}`;
  expect(plan(req(1, 'tasks/get', { taskId: ours }), view()).takeover).toMatchObject({ kind: 'task-method' });
  expect(plan(req(1, 'tasks/list'), view()).takeover).toMatchObject({ kind: 'tasks-list' });
  const batch = plan(`[${req(1, 'tasks/result', { taskId: ours })},${req(2, 'tasks/get', { taskId: 'upstream-task' })},${req(3, 'tasks/list')}]`, view());
  expect(batch.takeover).toBeNull();
  expect(codes(batch.local)).toEqual([-32600]);
  expect(batch.forwardedIds.map((i) => i.raw)).toEqual(['2', '3']); // the upstream's task, and its own tasks/list
  // Without gate 4 there are no tasks of ours: everything goes upstream.
  expect(plan(req(1, 'tasks/get', { taskId: ours })).forwardedIds.map((i) => i.raw)).toEqual(['1']);
});

test('a task-augmented call gate 4 answers itself is taken over as own-task', () => {
  expect(plan(call(1, 'echo', { task: {} }), view({}, true)).takeover).toMatchObject({ kind: 'own-task', op: { target: { name: 'echo' } } });
  expect(plan(`[${call(1, 'echo', { task: {} })}]`, view({}, true)).local[0]).toContain('must be sent as a single request');
});

test('notifications/cancelled for a held call is planned as a cancellation and not forwarded; others go upstream', () => {
  const v = view({ 5: 'tgh-held' });
  const p = plan(`[${note('notifications/cancelled', { requestId: 5 })},${note('notifications/cancelled', { requestId: 6 })}]`, v);
  expect(p.cancelHeld).toEqual(['tgh-held']);
  expect(p.forward).toEqual([note('notifications/cancelled', { requestId: 6 })]);
});

test('edits: tools/list marks task support through gate 4, initialize learns the session the executor sets', () => {
  const v = view();
  const p = plan(
    `[${req(1, 'tools/list')},${req(2, 'initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } })}]`,
    v,
  );
  expect(p.edits.edits).toBe(2);
  expect(v.seen).toEqual([]); // planning asks nothing of gate 4's memory
  // The edits' callbacks run when the answers come: the session is the one the executor read.
  p.init.session = 'up-session';
  const tools = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"pay","inputSchema":{}}]}}';
  const init = '{"jsonrpc":"2.0","id":2,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}';
  expect(editPayload(tools, { edits: p.edits, correlationId: 'cid' })?.text).toContain('"taskSupport":"optional"');
  expect(editPayload(init, { edits: p.edits, correlationId: 'cid' })?.text).toContain('"tasks"');
  expect(v.seen).toEqual(['tool up/pay=forbidden', 'init up/up-session']);
});

describe('checkPost: a body refused whole before any message is decided', () => {
  const check = (body: string, headers: Record<string, string> = {}, max = 10) => {
    const p = parseJsonRpc(body);
    if (!p.ok) throw new Error(p.reason);
    return checkPost(p, headers, max);
  };

  test('plain requests and batches pass', () => {
    expect(check(call(1, 'echo'), { 'mcp-method': 'tools/call', 'mcp-name': 'echo' })).toBeNull();
    expect(check(`[${call(1, 'echo')},${call(2, 'echo')}]`)).toBeNull();
  });

  test('too many messages, ids a peer could confuse, and ids of ours are refused', () => {
    expect(check(`[${call(1, 'a')},${call(2, 'b')},${call(3, 'c')}]`, {}, 2)).toEqual({ kind: 'batch-too-large' });
    expect(check(`[${call(1, 'a')},${req('1', 'ping')}]`)).toMatchObject({ kind: 'refused', name: 'INVALID_REQUEST' });
    expect(check(req(' ThoughtGate-x', 'ping'))).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/reserved/) });
  });

  test('routing headers must describe the single message; a single invalid message is an HTTP 400', () => {
    expect(check(call(7, 'echo'), { 'mcp-name': 'other' })).toMatchObject({ kind: 'bad-message', name: 'HEADER_MISMATCH', id: { raw: '7' } });
    expect(check(`[${call(1, 'echo')}]`, { 'mcp-method': 'tools/call' })).toMatchObject({
      kind: 'bad-message',
      id: null,
      reason: expect.stringMatching(/cannot describe a batch/),
    });
    expect(check('{"jsonrpc":"2.0","id":9}')).toMatchObject({ kind: 'bad-message', name: 'INVALID_REQUEST', id: { raw: '9' } });
  });
});

describe('planPost: rate limits', () => {
  test('asked only for what gates 1–3 forward; a refusal answers -32026 with retryAfterMs, a refused notification is dropped', () => {
    const asked: string[] = [];
    const rateLimit: PlanInput['rateLimit'] = (op, nameBlindOnly) => {
      asked.push(`${op.method} ${op.target?.name}${nameBlindOnly ? ' (name-blind limits only)' : ''}`);
      return op.target?.name === 'busy' ? { rule: 'r1', retryAfterMs: 1234, reason: 'r1 allows …' } : null;
    };
    const p = plan(
      `[${req(1, 'tools/call', { name: 'busy' })},${req(2, 'tools/call', { name: 'echo' })},${req(3, 'tools/call', { name: 'secret' })},${req(4, 'tools/call', { name: 'rm' })},${note('tools/call', { name: 'busy' })}]`,
      null,
      { rateLimit },
    );
    // The denied tool never reaches a bucket; the hidden one (its probe goes upstream) only the
    // limits that match any name.
    expect(asked).toEqual(['tools/call busy', 'tools/call echo', 'tools/call secret (name-blind limits only)', 'tools/call busy']);
    expect(p.forward).toHaveLength(2); // echo, and the probe for the hidden tool
    const errors = p.local.map((l) => JSON.parse(l));
    expect(errors.find((e) => e.id === 1).error).toEqual({
      code: -32026,
      message: 'Rate limit exceeded',
      data: { gate: 'ratelimit', rule: 'r1', reason: 'r1 allows …', retryAfterMs: 1234, correlationId: 'cid' },
    });
    expect(errors.map((e) => e.id).sort()).toEqual([1, 4]);
    expect(p.rateLimited).toEqual(['r1', 'r1']);
    expect(p.counts.filter((c) => c.gate === 'ratelimit')).toEqual([
      { method: 'tools/call', decision: 'deny', gate: 'ratelimit', rule: 'r1' },
      { method: 'tools/call', decision: 'deny', gate: 'ratelimit', rule: 'r1' },
    ]);
  });
});

describe('audit', () => {
  const audit = snapshot('audit');
  const auditSource = audit.sources.get('up')!;
  const planAudit = (body: string, approvals: ApprovalView | null = null, more: Partial<PlanInput> = {}) =>
    plan(body, approvals, { snap: audit, source: auditSource, ...more });

  test('a batch: the would-deny, would-hide and would-approve calls are forwarded as sent, each with its record', () => {
    const body = `[${call(1, 'echo')},${call(2, 'rm')},${call(3, 'secret')},${call(4, 'pay')}]`;
    const p = planAudit(body, view());
    expect(p.forward).toEqual(messagesOf(body).messages.map((m) => m.raw)); // no probe, no local answer
    expect(p.local).toEqual([]);
    expect(p.takeover).toBeNull();
    expect(p.audits).toEqual([
      { would: 'deny', gate: 'rules', rule: 'rules[0]', reason: 'no deleting' },
      { would: 'hide', gate: 'visibility', rule: 'expose', reason: 'tool is not exposed' },
      { would: 'approve', gate: 'rules', rule: 'rules[1]', reason: 'rules[1] requires approval' },
    ]);
    expect(p.counts.map((c) => c.decision)).toEqual(['forward', 'forward', 'forward', 'forward']);
    expect(p.outcomes.map((o) => o.audit?.would)).toEqual([undefined, 'deny', 'hide', 'approve']);
  });

  test('a would-approve call alone is forwarded: no approval is requested (not even without a backend)', () => {
    expect(planAudit(call(1, 'pay'), view()).takeover).toBeNull();
    expect(planAudit(call(1, 'pay')).forwardedIds.map((i) => i.raw)).toEqual(['1']);
  });

  test('lists pass unfiltered, byte for byte, and the entries enforce would hide are counted when the answer comes', () => {
    const seen: string[] = [];
    const p = planAudit(`[${req(1, 'tools/list')},${req(2, 'prompts/list')}]`, null, { onListAudit: (m, n) => seen.push(`${m}:${n}`) });
    const answer = `[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"secret"}]}},{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"p"}]}}]`;
    expect(editPayload(answer, { edits: p.edits, correlationId: 'cid' })).toEqual({ text: answer, changed: false });
    expect(seen).toEqual(['tools/list:1']); // prompts are not filtered by this source: nothing to count
    // Enforce filters the same answer.
    const enforced = plan(req(1, 'tools/list'));
    expect(editPayload(answer.slice(1, answer.indexOf(',{"jsonrpc"')), { edits: enforced.edits, correlationId: 'cid' })?.text).not.toContain('secret');
  });

  test('an unreadable list is still refused (-32015): audit relaxes verdicts, not what ThoughtGate cannot read', () => {
    const p = planAudit(req(1, 'tools/list'), null, { onListAudit: () => undefined });
    expect(editPayload('{"jsonrpc":"2.0","id":1,"result":{"tools":"nope"}}', { edits: p.edits, correlationId: 'cid' })?.text).toContain('-32015');
  });

  test('a rate limit still refuses what audit would forward', () => {
    const p = planAudit(call(1, 'rm'), null, { rateLimit: () => ({ rule: 'slow', reason: 'too fast', retryAfterMs: 1000 }) });
    expect(p.forward).toEqual([]);
    expect(p.audits).toEqual([]);
    expect(p.rateLimited).toEqual(['slow']);
  });
});

test("logs and spans never carry a resource URI's query (agent-chosen, may hold credentials)", () => {
  const p = plan(req(9, 'resources/read', { uri: 'https://files.example/report.pdf?X-Amz-Signature=SECRET&t=1' }));
  expect(p.outcomes[0]!.target).toBe('https://files.example/report.pdf?…');
  expect(JSON.stringify(p.outcomes)).not.toContain('SECRET');
  expect(loggedTarget('resource', 'file:///srv/a.md')).toBe('file:///srv/a.md');
  expect(loggedTarget('tool', 'odd?name')).toBe('odd?name');
});

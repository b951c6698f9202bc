import { startFakeSlack, DEFAULT_FAKE_TOKEN, type FakeSlack } from '../fakes/slack-server.js';
import { SlackApprovalClient } from '../../slack/client.js';
import { SlackConnection } from '../../slack/connection.js';
import {
  APPROVE_ACTION_ID,
  REJECT_ACTION_ID,
  SLACK_LIMITS,
  buildApprovalMessage,
  buildOutcomeMessage,
  checkMessageLimits,
  escapeMrkdwn,
  renderArguments,
  truncate,
  type ApprovalMessageInput,
  type Block,
} from '../../slack/message.js';
import { redactArguments, REDACTED } from '../../slack/redact.js';

const EXPIRES = Date.UTC(2026, 10, 21, 10, 0, 0);

function input(over: Partial<ApprovalMessageInput> = {}): ApprovalMessageInput {
  return {
    id: 'ar-7f3a',
    tool: 'create_issue',
    source: 'github',
    arguments: { repo: 'acme/web', title: 'Bug', labels: ['p1'] },
    workload: { namespace: 'agents', serviceAccount: 'triage-bot', pod: 'triage-bot-5d9c7-abcde' },
    expiresAt: EXPIRES,
    reactions: { approve: ['white_check_mark'], reject: ['x'] },
    approvers: { users: ['U1'], userGroups: ['S1'] },
    redact: [],
    ...over,
  };
}

const allText = (blocks: Block[]) => JSON.stringify(blocks);
/** Only mrkdwn is parsed for mentions and links; plain_text (the header) is shown literally. */
const mrkdwnText = (blocks: Block[]) => JSON.stringify(blocks.filter((b) => b.type !== 'header'));

describe('redaction', () => {
  const args = {
    password: 'hunter2',
    Nested: { deeper: [{ API_TOKEN: 'tok-1', keep: 'visible' }, { list: [{ secretKey: { inner: 'sk-2' } }] }] },
    creds: { accessToken: 'tok-3' },
    note: 'password is not a key here',
  };

  test('keys matching the globs are hidden at any depth, case-insensitively, whole values included', () => {
    const { value, redacted } = redactArguments(args, ['password', '*token*', 'secret?ey']);
    expect(redacted).toBe(4);
    expect(value).toEqual({
      password: REDACTED,
      Nested: { deeper: [{ API_TOKEN: REDACTED, keep: 'visible' }, { list: [{ secretKey: REDACTED }] }] },
      creds: { accessToken: REDACTED },
      note: 'password is not a key here',
    });
    expect(args.password).toBe('hunter2'); // input untouched
  });

  test('no secret reaches the blocks, the fallback text or the metadata', () => {
    const msg = buildApprovalMessage(input({ arguments: args, redact: ['password', '*token*', 'secretkey'] }));
    const everything = JSON.stringify(msg);
    for (const secret of ['hunter2', 'tok-1', 'sk-2', 'tok-3']) expect(everything).not.toContain(secret);
    expect(everything).toContain('visible');
    expect(allText(msg.blocks)).toContain('4 values hidden');
    // The fallback text never carries arguments at all, whatever the redact list.
    const unredacted = buildApprovalMessage(input({ arguments: args, redact: [] }));
    expect(unredacted.text).not.toContain('hunter2');
    expect(allText(unredacted.blocks)).toContain('hunter2');
  });

  test('escaped glob characters and __proto__ keys', () => {
    const v = JSON.parse('{"a*b":1,"axb":2,"__proto__":{"x":1}}');
    const { value } = redactArguments(v, ['a\\*b', '__proto__']);
    expect(JSON.stringify(value)).toBe('{"a*b":"[redacted]","axb":2,"__proto__":"[redacted]"}');
  });
});

describe('approval message', () => {
  test('shows tool, source, workload, arguments, expiry, reactions, approvers and the request id', () => {
    const msg = buildApprovalMessage(input());
    const text = allText(msg.blocks);
    expect(msg.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'Approval needed: create_issue', emoji: false } });
    for (const s of [
      '`create_issue`',
      '`github`',
      '`agents/triage-bot`',
      '`triage-bot-5d9c7-abcde`',
      '`ar-7f3a`',
      'acme/web',
      ':white_check_mark:',
      ':x:',
      '<@U1>',
      '<!subteam^S1>',
      'reject wins',
    ]) {
      expect(text).toContain(s);
    }
    expect(text).toContain(`<!date^${EXPIRES / 1000}^`);
    expect(text).toContain('2026-11-21T10:00:00Z');
    expect(msg.text).toBe(
      'Approval needed: create_issue (source github) for agents/triage-bot, request ar-7f3a. React :white_check_mark: to approve or :x: to reject before 2026-11-21T10:00:00Z.',
    );
    expect(msg.metadata).toEqual({
      event_type: 'thoughtgate_approval',
      event_payload: { request_id: 'ar-7f3a', tool: 'create_issue', source: 'github', namespace: 'agents', status: 'pending' },
    });
    expect(checkMessageLimits(msg)).toEqual([]);
  });

  test('agent-controlled text is escaped and cannot close the code block', () => {
    const msg = buildApprovalMessage(input({ tool: '<!channel> & <http://evil|x>', arguments: { q: '```\n<!here>' } }));
    const text = mrkdwnText(msg.blocks);
    expect(text).not.toContain('<!channel>');
    expect(text).not.toContain('<!here>');
    expect(text).toContain('&lt;!channel&gt; &amp;');
    expect(text).toContain('`\u200b`\u200b`');
    expect(msg.text).not.toContain('<!channel>');
  });

  test('huge arguments are truncated to valid Block Kit sizes', () => {
    const big = { blob: 'x'.repeat(50_000), rows: Array.from({ length: 2000 }, (_, i) => ({ i, s: '<&>' })) };
    const msg = buildApprovalMessage(input({ arguments: big, tool: 't'.repeat(500), id: 'i'.repeat(400), rule: 'r'.repeat(3000) }));
    expect(checkMessageLimits(msg)).toEqual([]);
    expect(msg.blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
    expect(msg.text.length).toBeLessThanOrEqual(SLACK_LIMITS.fallbackText);
    const header = msg.blocks[0] as Extract<Block, { type: 'header' }>;
    expect(header.text.text.length).toBeLessThanOrEqual(150);
    expect(header.text.text.endsWith('…')).toBe(true);
    expect(allText(msg.blocks)).toMatch(/Arguments truncated: [\d,]+ of [\d,]+ characters shown/);
    for (const b of msg.blocks) if (b.type === 'section' && b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);
  });

  test('renderArguments splits at lines, never inside an entity or a surrogate pair', () => {
    const args = { a: '&'.repeat(4000), b: '😀'.repeat(3000) };
    const r = renderArguments(args, [], 9000);
    expect(r.chunks.length).toBeGreaterThan(1);
    for (const c of r.chunks) {
      expect(c.length).toBeLessThanOrEqual(3000);
      expect(c).toMatch(/^(\*Arguments\*\n)?```\n[\s\S]*\n```$/);
      const body = c.replace(/^(\*Arguments\*\n)?```\n/, '').replace(/\n```$/, '');
      expect(body).not.toMatch(/&(a|am|amp)?$/); // no cut entity at the end
      expect(body).not.toMatch(/[\ud800-\udbff]$/); // no lone high surrogate
    }
    expect(r.shownChars).toBeLessThan(r.totalChars);
  });

  test('truncate and escape helpers', () => {
    expect(escapeMrkdwn('a<b>&c')).toBe('a&lt;b&gt;&amp;c');
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
    expect(truncate('ab&amp;cd', 5)).toBe('ab…');
  });

  test('many approvers are summarised', () => {
    const users = Array.from({ length: 30 }, (_, i) => `U${String(i).padStart(4, '0')}`);
    const msg = buildApprovalMessage(input({ approvers: { users, userGroups: [] } }));
    expect(allText(msg.blocks)).toContain('and 10 more');
  });
});

describe('outcome message', () => {
  test.each([
    ['approved', '✅ Approved'],
    ['rejected', '❌ Rejected'],
    ['expired', '⌛ Expired'],
    ['cancelled', '🚫 Cancelled'],
    ['failed', '⚠️ Failed'],
  ] as const)('%s', (status, title) => {
    const by = status === 'approved' || status === 'rejected' ? [{ id: 'U1', name: 'Alice <admin>' }] : [];
    const msg = buildOutcomeMessage(input({ arguments: { password: 'hunter2' }, redact: ['password'] }), {
      status,
      by,
      at: EXPIRES - 60_000,
      ...(status === 'failed' ? { reason: 'Slack <said> no' } : {}),
    });
    const text = allText(msg.blocks);
    expect((msg.blocks[0] as Extract<Block, { type: 'header' }>).text.text).toBe(`${title}: create_issue`);
    expect(text).not.toContain('React with'); // instructions are gone
    expect(text).toContain('`ar-7f3a`');
    expect(JSON.stringify(msg)).not.toContain('hunter2');
    expect(msg.metadata.event_payload.status).toBe(status);
    if (by.length) {
      expect(text).toContain('by <@U1>');
      expect(msg.text).toContain('by Alice &lt;admin&gt;');
    }
    if (status === 'failed') expect(text).toContain('Slack &lt;said&gt; no');
    expect(checkMessageLimits(msg)).toEqual([]);
  });
});

describe('through the real WebClient to the fake', () => {
  let fake: FakeSlack;
  let conn: SlackConnection;
  beforeAll(async () => {
    fake = await startFakeSlack({ channels: [{ id: 'C1', name: 'approvals' }], users: [{ id: 'U1', name: 'alice' }] });
    conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url });
  });
  afterAll(async () => {
    conn.close();
    await fake.close();
  });

  test('the fake (which checks Block Kit limits) accepts a maximal message and its outcome', async () => {
    const client = new SlackApprovalClient(conn, {
      channel: 'C1',
      approvers: { users: ['U1'], userGroups: [] },
      reactions: { approve: ['white_check_mark'], reject: ['x'] },
      redact: ['*secret*'],
    });
    const huge = { s: '<'.repeat(30_000), mySecret: 'nope', list: Array.from({ length: 500 }, (_, i) => i) };
    const { ts } = await client.post({
      id: 'i'.repeat(300),
      tool: 'x'.repeat(1000),
      source: 'github',
      arguments: huge,
      workload: input().workload,
      expiresAt: EXPIRES,
    });
    await client.finish(
      ts,
      { id: 'i'.repeat(300), tool: 'x'.repeat(1000), source: 'github', arguments: huge, workload: input().workload, expiresAt: EXPIRES },
      { status: 'rejected', by: [{ id: 'U1' }], at: EXPIRES },
    );
    const [m] = fake.messages('C1');
    expect(m!.history).toHaveLength(2);
    expect(JSON.stringify(m)).not.toContain('nope');
    expect(fake.calls().filter((c) => c.ok === false)).toEqual([]);
  });
});

describe('buttons and the two-person rule', () => {
  test('with buttons: an actions block of Approve (with a confirm dialog) and Reject carrying the id; no reaction instructions', () => {
    const m = buildApprovalMessage(input({ buttons: true }));
    const actions = m.blocks.find((b) => b.type === 'actions');
    expect(actions).toMatchObject({
      elements: [
        { type: 'button', action_id: APPROVE_ACTION_ID, value: 'ar-7f3a', style: 'primary', confirm: { confirm: { text: 'Approve' } } },
        { type: 'button', action_id: REJECT_ACTION_ID, value: 'ar-7f3a', style: 'danger' },
      ],
    });
    expect(m.blocks.at(-1)).toBe(actions);
    // Reactions still count (read slowly): the fallback while the buttons do not answer.
    expect(allText(m.blocks)).toContain('Decide with the buttons below (if they do not answer, react with :white_check_mark: or :x:)');
    expect(m.text).toContain('Approve or reject in Slack');
    expect(checkMessageLimits(m)).toEqual([]);
    // Without buttons nothing changes: reactions as before, no actions block.
    const plain = buildApprovalMessage(input());
    expect(plain.blocks.some((b) => b.type === 'actions')).toBe(false);
    expect(allText(plain.blocks)).toContain(':white_check_mark:');
  });

  test('N > 1: the rule is stated, the count so far is shown, and the outcome says k of N', () => {
    const two = input({ buttons: true, approvers: { users: ['U1', 'U2'], userGroups: [], required: 2 } });
    expect(allText(buildApprovalMessage(two).blocks)).toContain('2 different approvers must approve; any one reject rejects.');
    // The count shows only when the caller tracks it (a message nobody updates would go stale).
    expect(allText(buildApprovalMessage(two).blocks)).not.toContain('of 2 approvals');
    expect(allText(buildApprovalMessage({ ...two, approvedBy: [] }).blocks)).toContain('*0 of 2 approvals*');
    const mid = buildApprovalMessage({ ...two, approvedBy: [{ id: 'U1', name: 'alice' }] });
    expect(allText(mid.blocks)).toContain('*1 of 2 approvals* (<@U1>)');
    expect(mid.blocks.some((b) => b.type === 'actions')).toBe(true);
    const done = buildOutcomeMessage(two, { status: 'approved', by: [{ id: 'U1' }, { id: 'U2' }], at: EXPIRES });
    expect(allText(done.blocks)).toContain('by <@U1>, <@U2> (2 of 2 approvals)');
    expect(done.blocks.some((b) => b.type === 'actions')).toBe(false);
    // N = 1 shows no count.
    expect(allText(buildApprovalMessage(input({ buttons: true })).blocks)).not.toContain('approvals*');
  });

  test('the real Slack (fake) accepts the button message', async () => {
    const fake: FakeSlack = await startFakeSlack({ channels: [{ id: 'C1', name: 'a' }] });
    const conn = new SlackConnection({ token: DEFAULT_FAKE_TOKEN, apiUrl: fake.url });
    try {
      const c = new SlackApprovalClient(conn, {
        channel: 'C1',
        approvers: { users: ['U1', 'U2'], userGroups: [], required: 2 },
        reactions: input().reactions,
        buttons: true,
      });
      const { id, tool, source, arguments: args, workload, expiresAt } = input();
      const { ts } = await c.post({ id, tool, source, arguments: args, workload, expiresAt });
      await c.showProgress(ts, { id, tool, source, arguments: args, workload, expiresAt }, [{ id: 'U1', name: 'alice' }]);
      expect(allText(fake.messages('C1')[0]!.blocks as Block[])).toContain('1 of 2 approvals');
    } finally {
      conn.close();
      await fake.close();
    }
  });
});

describe('A2A messages', () => {
  const a2a = (over: Partial<ApprovalMessageInput> = {}) =>
    input({
      protocol: 'a2a',
      method: 'SendMessage',
      source: 'billing-agent',
      tool: 'refund',
      arguments: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'refund order 42' }], metadata: { skill: 'refund' } } },
      ...over,
    });

  test('the header, fallback text and fields name the A2A call: method, agent and skill', () => {
    const m = buildApprovalMessage(a2a());
    expect(m.blocks[0]).toMatchObject({ type: 'header', text: { text: 'Approval needed: A2A SendMessage to billing-agent, skill refund' } });
    expect(m.text).toContain('Approval needed: A2A SendMessage to billing-agent, skill refund for agents/triage-bot');
    const fields = JSON.stringify(m.blocks[1]);
    expect(fields).toContain('*Skill*\\n`refund`');
    expect(fields).toContain('*Agent*\\n`billing-agent`');
    expect(fields).toContain('*A2A method*\\n`SendMessage`');
    expect(allText(m.blocks)).toContain('refund order 42');
    expect(m.metadata.event_payload).toMatchObject({ protocol: 'a2a', tool: 'refund', source: 'billing-agent' });
    expect(checkMessageLimits(m)).toEqual([]);
  });

  test('a message naming no skill says so; the outcome keeps the subject', () => {
    const m = buildApprovalMessage(a2a({ tool: '', method: 'SendStreamingMessage' }));
    expect(m.blocks[0]).toMatchObject({ text: { text: 'Approval needed: A2A SendStreamingMessage to billing-agent, no skill' } });
    expect(JSON.stringify(m.blocks[1])).toContain('(none named)');
    const out = buildOutcomeMessage(a2a(), { status: 'approved', by: [{ id: 'U1' }], at: EXPIRES });
    expect(out.blocks[0]).toMatchObject({ text: { text: '✅ Approved: A2A SendMessage to billing-agent, skill refund' } });
    expect(out.text).toContain('A2A SendMessage to billing-agent, skill refund, request ar-7f3a');
  });

  test('buttons confirm sending the message, not running a tool', () => {
    const m = buildApprovalMessage(a2a({ buttons: true }));
    expect(allText(m.blocks)).toContain('ThoughtGate will send this message to billing-agent once, exactly as shown.');
  });

  test('agent-controlled skill and source stay visible and escaped', () => {
    const m = buildApprovalMessage(a2a({ tool: 're\u202efund <!channel>' }));
    expect(m.text).not.toContain('<!channel>');
    expect(m.text).not.toContain('\u202e');
    expect(mrkdwnText(m.blocks)).not.toContain('<!channel>');
  });

  test('the tenant, A2A version and binding the approval is bound to are in the header, fallback text, fields and confirm', () => {
    const m = buildApprovalMessage(a2a({ a2a: { tenant: 'acme-eu', version: '1.0', binding: 'rest' }, buttons: true }));
    const subject = 'A2A SendMessage to billing-agent, tenant acme-eu, skill refund (A2A 1.0 over HTTP+JSON)';
    expect(m.blocks[0]).toMatchObject({ type: 'header', text: { text: `Approval needed: ${subject}` } });
    expect(m.text).toContain(`Approval needed: ${subject} for agents/triage-bot`);
    const fields = JSON.stringify(m.blocks[1]);
    expect(fields).toContain('*Tenant*\\n`acme-eu`');
    expect(fields).toContain('*A2A method*\\n`SendMessage`\\nA2A 1.0 over HTTP+JSON');
    expect(allText(m.blocks)).toContain('ThoughtGate will send this message to billing-agent (tenant acme-eu) once, exactly as shown.');
    expect(checkMessageLimits(m)).toEqual([]);
    const out = buildOutcomeMessage(a2a({ a2a: { tenant: 'acme-eu', version: '1.0', binding: 'rest' } }), {
      status: 'rejected',
      by: [{ id: 'U1' }],
      at: EXPIRES,
    });
    expect(out.blocks[0]).toMatchObject({ text: { text: `❌ Rejected: ${subject}` } });
    expect(out.text).toContain(`${subject}, request ar-7f3a`);
    expect(JSON.stringify(out.blocks[1])).toContain('*Tenant*\\n`acme-eu`');
  });

  test('no tenant: no Tenant field; 0.3 over JSON-RPC is named as such', () => {
    for (const tenant of [undefined, '']) {
      const m = buildApprovalMessage(a2a({ a2a: { ...(tenant !== undefined ? { tenant } : {}), version: '0.3', binding: 'jsonrpc' } }));
      expect(m.blocks[0]).toMatchObject({ text: { text: 'Approval needed: A2A SendMessage to billing-agent, skill refund (A2A 0.3 over JSON-RPC)' } });
      expect(JSON.stringify(m.blocks[1])).not.toContain('Tenant');
      expect(m.text).not.toContain('tenant');
    }
  });

  test('a hostile tenant is shown visible, escaped and bounded everywhere', () => {
    const tenant = `acme\u202e<!channel> *x* \`\`\`<http://evil|ok>${'t'.repeat(600)}`;
    const m = buildApprovalMessage(a2a({ a2a: { tenant, version: '1.0', binding: 'jsonrpc' }, buttons: true }));
    const tenantField = (m.blocks[1] as { fields: { text: string }[] }).fields.find((f) => f.text.startsWith('*Tenant*'))!;
    const header = (m.blocks[0] as { text: { text: string } }).text.text;
    for (const text of [m.text, header, tenantField.text, allText(m.blocks)]) expect(text).not.toContain('\u202e');
    for (const text of [m.text, header, tenantField.text]) expect(text).toContain('acme\\u202E');
    expect(m.text).not.toContain('<!channel>');
    expect(m.text).not.toContain('<http://evil');
    // Every mrkdwn text object (plain_text, e.g. the header and the confirm dialog, is shown literally).
    const mrkdwn: string[] = [];
    JSON.stringify(m.blocks, (_k, v: unknown) => {
      if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'mrkdwn') mrkdwn.push((v as { text: string }).text);
      return v;
    });
    expect(mrkdwn.length).toBeGreaterThan(5);
    for (const text of mrkdwn) {
      expect(text).not.toContain('<!channel>');
      expect(text).not.toContain('<http://evil');
    }
    // One code span: the agent's backticks cannot close it; bounded, marked as cut.
    expect(tenantField.text.match(/`/g)).toHaveLength(2);
    expect(tenantField.text).toContain('&lt;!channel&gt;');
    expect(tenantField.text).toContain('…`');
    expect(tenantField.text.length).toBeLessThan(400);
    expect(checkMessageLimits(m)).toEqual([]);
  });

  test('MCP messages are unchanged by the protocol field', () => {
    expect(buildApprovalMessage(input({ protocol: 'mcp' }))).toEqual(buildApprovalMessage(input()));
  });
});

// Gate 4 for A2A through the sidecar itself: /a2a/<source>/ (the A2A handler), an `approve` rule on
// a skill, the standalone Slack backend against the fake Slack, SDK agents and clients. What the
// agent received is the assertion: the held bytes exactly, once, after the approval; nothing after
// a rejection. (holdA2a's cases in detail: test/a2a-approvals.test.ts.)
import { afterAll, beforeAll, beforeEach, expect, jest, test } from '@jest/globals';
import { request } from 'undici';
import { a2aClient, runPython, startA2aAgent, type A2aAgent } from './support/a2a-peers.js';
import { ALICE, CHANNEL, sleep, startRig, type Rig } from './approvals-harness.js';

jest.setTimeout(60_000);

let agent: A2aAgent;
let agent03: A2aAgent;
let rig: Rig;
let base: string;
/** The 0.3.14 agent through the sidecar. */
let base03: string;
let posted = 0;

/** The `finance` channel on the fake Slack, and fast polling. */
const finance = (slack: string) => `approvalChannels:
  - name: finance
    slack: { channel: ${CHANNEL}, apiUrl: "${slack}", tokenEnv: TG_TEST_SLACK_TOKEN }
    approvers: { users: [${ALICE}] }
    timeout: 30s
approvals:
  pollInterval: 50ms
`;

beforeAll(async () => {
  [agent, agent03] = await Promise.all([startA2aAgent({ sdk: '1.3.0', stepMs: 20 }), startA2aAgent({ sdk: '0.3.14', stepMs: 20 })]);
  rig = await startRig({
    config: (_upstream, slack) => `
sources:
  - name: billing
    protocol: a2a
    url: ${agent.base}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest, skillFrom: metadata.skill }
  - name: billing03
    protocol: a2a
    url: ${agent03.base}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest, skillFrom: metadata.skill }
rules:
  - name: echo03-needs-a-human
    match: { source: billing03, skill: echo }
    action: approve
    approval: { channel: finance }
  - name: echo-needs-a-human
    match: { source: billing, skill: echo }
    action: approve
    approval: { channel: finance }
    reason: echoes are approved by finance
  - name: count-needs-a-human
    match: { source: billing, skill: count }
    action: approve
    approval: { channel: finance }
defaultAction: forward
# Push notification URLs are egress: the push test's webhook is allowed.
egress: { allow: ["*"] }
${finance(slack)}  # One held call per client: what the owner test counts.
  maxPending: { client: 1 }
`,
  });
  base = `http://127.0.0.1:${rig.sidecar.port}/a2a/billing`;
  base03 = `http://127.0.0.1:${rig.sidecar.port}/a2a/billing03`;
});

afterAll(async () => {
  await rig?.close();
  await Promise.all([agent?.close(), agent03?.close()]);
});

beforeEach(() => {
  agent.reset();
  agent03.reset();
});

const sends = (a: A2aAgent = agent) => a.requests.filter((r) => r.method === 'POST' && r.url.startsWith('/a2a/'));

async function nextMessage(): Promise<{ ts: string; text: string; posted: { text: string; blocks: unknown[] } }> {
  const m = await rig.message(posted++);
  return { ts: m.ts, text: JSON.stringify(m), posted: m };
}

/** The texts Slack parses as mrkdwn (mentions, links): the fallback text and every mrkdwn object of the blocks. */
function mrkdwnTexts(m: { text: string; blocks: unknown[] }): string[] {
  const out = [m.text];
  JSON.stringify(m.blocks, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'mrkdwn') out.push((v as { text: string }).text);
    return v;
  });
  return out;
}

test('a raw SendMessage held through the sidecar: approved, the agent receives exactly the client bytes, once', async () => {
  const body =
    '{"jsonrpc":"2.0","id":"r-1","method":"SendMessage","params":{"message":{"messageId":"m-raw","role":"ROLE_USER","parts":[{"text":"echo refund 5","mediaType":"text/plain"}],"metadata":{"skill":"echo","amount":5}},"configuration":{}}}';
  const answer = request(`${base}/a2a/jsonrpc`, { method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' }, body }).then(
    async (r) => ({
      status: r.statusCode,
      type: r.headers['content-type'],
      text: await r.body.text(),
    }),
  );
  const m = await nextMessage();
  expect(m.text).toContain('A2A SendMessage to billing, skill echo');
  await sleep(300);
  expect(sends()).toEqual([]);
  rig.approve(m.ts);
  const r = await answer;
  expect(r.status).toBe(200);
  expect(r.type).toBe('application/json');
  expect(JSON.parse(r.text)).toMatchObject({ id: 'r-1', result: { message: { parts: [{ text: expect.stringContaining('refund 5') }] } } });
  expect(sends().map((q) => q.body)).toEqual([body]);
});

test('the Slack message names what the approval is bound to: the path tenant, the A2A version and the binding (1.0 HTTP+JSON)', async () => {
  const body = { message: { messageId: 'm-tenant', role: 'ROLE_USER', parts: [{ text: 'echo refund 9' }], metadata: { skill: 'echo' } } };
  const answer = request(`${base}/a2a/rest/acme-eu/message:send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify(body),
  }).then((r) => r.body.text());
  const m = await nextMessage();
  expect(m.text).toContain('A2A SendMessage to billing, tenant acme-eu, skill echo (A2A 1.0 over HTTP+JSON)');
  expect(m.text).toContain('*Tenant*\\n`acme-eu`');
  expect(m.text).toContain('*A2A method*\\n`SendMessage`\\nA2A 1.0 over HTTP+JSON');
  rig.approve(m.ts);
  expect(await answer).toContain('refund 9');
  expect(sends().map((q) => q.url)).toEqual(['/a2a/rest/acme-eu/message:send']);
});

test('a hostile tenant (JSON-RPC params.tenant) reaches the approver visible and escaped; rejected, the agent gets nothing', async () => {
  const params = {
    tenant: 'acme\u202e<!channel>`x',
    message: { messageId: 'm-hostile', role: 'ROLE_USER', parts: [{ text: 'echo refund 10' }], metadata: { skill: 'echo' } },
  };
  const answer = request(`${base}/a2a/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'h-1', method: 'SendMessage', params }),
  }).then((r) => r.body.text());
  const m = await nextMessage();
  // The tenant field and the subject: the bidi override shown as \u202E, the mention escaped, the backtick neutralised.
  expect(m.text).toContain("*Tenant*\\n`acme\\\\u202E&lt;!channel&gt;'x`");
  expect(m.text).toContain('tenant acme\\\\u202E');
  expect(m.text).toContain('(A2A 1.0 over JSON-RPC)');
  expect(m.text).not.toContain('\u202e');
  const mrkdwn = mrkdwnTexts(m.posted);
  expect(mrkdwn.length).toBeGreaterThan(5);
  for (const t of mrkdwn) expect(t).not.toContain('<!channel>');
  rig.reject(m.ts);
  expect(JSON.parse((await answer).trim())).toMatchObject({ id: 'h-1', error: { code: -32057 } });
  expect(sends()).toEqual([]);
});

test('rejected (JS 0.3 compat client through the card): -32057, the agent gets nothing', async () => {
  const client = await a2aClient('js1-compat-jsonrpc', `${base}/`);
  const sent = client.send('echo refund 7', { metadata: { skill: 'echo' } }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  rig.reject((await nextMessage()).ts);
  const err = await sent;
  expect(err?.message).toMatch(/Approval rejected/);
  expect(sends()).toEqual([]);
});

test('the Python client survives a 7 s hold through the sidecar (keep-alive bytes), then gets the agent answer', async () => {
  const py = runPython([`${base}/`, 'send', '--text', 'echo refund 8', '--metadata', JSON.stringify({ skill: 'echo' })]);
  const m = await nextMessage();
  await sleep(7_000);
  rig.approve(m.ts);
  const r = await py;
  expect(r.code).toBe(0);
  expect(JSON.stringify(r.lines)).toContain('refund 8');
  expect(agent.messages.map((x) => x.skill)).toEqual(['echo']);
});

test("the task an approved message created is its client's: readable by it, unknown to another client (task isolation learned the owner from the approved answer)", async () => {
  const post = (auth: string, body: unknown) =>
    request(`${base}/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: auth },
      body: JSON.stringify(body),
    }).then(async (r) => JSON.parse(await r.body.text()) as { result?: { task?: { id: string } }; error?: { code: number } });
  const sent = post('Bearer alice', {
    jsonrpc: '2.0',
    id: 1,
    method: 'SendMessage',
    params: { message: { messageId: 'm-task', role: 'ROLE_USER', parts: [{ text: 'count 2' }], metadata: { skill: 'count', delayMs: 10 } } },
  });
  rig.approve((await nextMessage()).ts);
  const taskId = (await sent).result?.task?.id;
  expect(taskId).toEqual(expect.any(String));
  const get = { jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id: taskId } };
  expect(await post('Bearer alice', get)).toMatchObject({ result: { id: taskId } });
  expect(await post('Bearer bob', get)).toMatchObject({ error: { code: -32001 } });
});

test('held calls are owned by the Authorization (a2aOwner), never by Mcp-Session-Id: each client counts against its own maxPending.client, and a copied session id reaches nothing of another', async () => {
  const post = (auth: string, session: string, body: unknown) =>
    request(`${base}/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: auth, 'mcp-session-id': session },
      body: JSON.stringify(body),
    }).then(async (r) => JSON.parse((await r.body.text()).trim()) as { id?: unknown; result?: { task?: { id: string } }; error?: { code: number } });
  const send = (auth: string, session: string, id: string, skill: string, text: string) =>
    post(auth, session, {
      jsonrpc: '2.0',
      id,
      method: 'SendMessage',
      params: { message: { messageId: `m-${id}`, role: 'ROLE_USER', parts: [{ text }], metadata: { skill, delayMs: 10 } } },
    });
  // Alice's call is held: her one pending approval.
  const a = send('Bearer alice', 'sess-shared', 'own-a', 'count', 'count 1');
  const ma = await nextMessage();
  // Bob sends with the same Mcp-Session-Id: his own limit, so he is held too (not refused as if he were alice).
  const b = send('Bearer bob', 'sess-shared', 'own-b', 'echo', 'echo from bob');
  const mb = await nextMessage();
  expect(mb.text).toContain('echo from bob');
  // Alice again under a fresh session id: still alice, still over her limit.
  expect(await send('Bearer alice', 'sess-fresh', 'own-c', 'echo', 'echo again')).toMatchObject({ id: 'own-c', error: { code: -32060 } });
  rig.approve(ma.ts);
  rig.approve(mb.ts);
  const [ra, rb] = await Promise.all([a, b]);
  expect(JSON.stringify(rb)).toContain('echo from bob');
  const taskId = ra.result?.task?.id;
  expect(taskId).toEqual(expect.any(String));
  // Bob copying alice's session id does not make her task his.
  const get = { jsonrpc: '2.0', id: 'g', method: 'GetTask', params: { id: taskId } };
  expect(await post('Bearer bob', 'sess-shared', get)).toMatchObject({ error: { code: -32001 } });
  expect(await post('Bearer alice', 'sess-fresh', get)).toMatchObject({ result: { id: taskId } });
  expect(agent.messages.map((x) => x.text).sort()).toEqual(['count 1', 'echo from bob']);
});

test('Python over HTTP+JSON (REST): a 6 s hold survives its 5 s read timeout on keep-alive bytes, then the agent answer; rejected: the connection is cut, the agent gets nothing', async () => {
  const args = (text: string) => [`${base}/`, 'send', '--binding', 'HTTP+JSON', '--text', text, '--metadata', JSON.stringify({ skill: 'echo' })];
  const ok = runPython(args('echo refund 11'));
  const m = await nextMessage();
  await sleep(6_000);
  rig.approve(m.ts);
  const r = await ok;
  expect(r.code).toBe(0);
  expect(r.lines).toEqual([{ kind: 'message', text: expect.stringContaining('refund 11') }]);
  expect(sends().map((q) => q.url)).toEqual(['/a2a/rest/message:send']);

  agent.reset();
  const refused = runPython(args('echo refund 12'));
  rig.reject((await nextMessage()).ts);
  const e = await refused;
  expect(e.code).toBe(1);
  // HTTP+JSON cannot carry a refusal after the held 200 head: a cut body, which the client reports as an error.
  expect(JSON.stringify(e.lines)).toMatch(/peer closed connection|incomplete|Network communication error/i);
  expect(sends()).toEqual([]);
});

test('A2A 0.3 over HTTP+JSON (SDK 0.3.14 agent and client, /v1/message:send): approved runs once; rejected is cut, nothing sent', async () => {
  const client = await a2aClient('js03-rest', `${base03}/`);
  const ok = client.send('echo refund 13', { metadata: { skill: 'echo' } });
  const m = await nextMessage();
  expect(m.text).toContain('A2A SendMessage to billing03, skill echo');
  await sleep(300);
  expect(sends(agent03)).toEqual([]);
  rig.approve(m.ts);
  expect(await ok).toMatchObject({ kind: 'message', text: expect.stringContaining('refund 13') });
  expect(sends(agent03).map((q) => q.url)).toEqual([expect.stringMatching(/\/v1\/message:send$/)]);

  agent03.reset();
  const refused = client.send('echo refund 14', { metadata: { skill: 'echo' } }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  rig.reject((await nextMessage()).ts);
  expect((await refused)?.message).toMatch(/terminated|fetch failed|socket/i);
  expect(sends(agent03)).toEqual([]);
});

test('push credentials in a held send through the sidecar (Python client, a push config with a token): the Slack message shows [redacted], never the token', async () => {
  const py = runPython([
    `${base}/`,
    'send',
    '--text',
    'echo refund 15',
    '--metadata',
    JSON.stringify({ skill: 'echo' }),
    '--push-url',
    'https://8.8.8.8/a2a-hook',
    '--push-token',
    'tok-SECRET-15',
  ]);
  const m = await nextMessage();
  expect(m.text).toContain('8.8.8.8/a2a-hook');
  expect(m.text).toContain('[redacted]');
  expect(m.text).not.toContain('SECRET');
  rig.reject(m.ts);
  const r = await py;
  expect(r.code).toBe(1);
  expect(JSON.stringify(r.lines)).toMatch(/Approval rejected/);
  expect(sends()).toEqual([]);
});

test("SIGTERM (sidecar.close) while an approved SendMessage runs at the agent: the drain lets it finish and the client gets the agent's answer", async () => {
  const slow = await startA2aAgent({ sdk: '1.3.0', waitMaxMs: 1_500 });
  const own = await startRig({
    config: (_upstream, slack) => `
sources:
  - name: billing
    protocol: a2a
    url: ${slow.base}
    a2a: { jsonrpc: /a2a/jsonrpc, skillFrom: metadata.skill }
rules:
  - name: waits-need-a-human
    match: { source: billing, skill: wait }
    action: approve
    approval: { channel: finance }
defaultAction: forward
${finance(slack)}`,
    sidecar: { drainTimeoutMs: 10_000 },
  });
  try {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 'term-1',
      method: 'SendMessage',
      params: { message: { messageId: 'm-term', role: 'ROLE_USER', parts: [{ text: 'wait' }], metadata: { skill: 'wait' } } },
    });
    const answer = request(`http://127.0.0.1:${own.sidecar.port}/a2a/billing/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body,
    }).then(async (r) => r.body.text());
    own.approve((await own.message(0)).ts);
    const started = Date.now();
    while (!slow.messages.some((x) => x.skill === 'wait')) {
      if (Date.now() - started > 10_000) throw new Error('the agent never ran the approved message');
      await sleep(20);
    }
    const closed = own.sidecar.close();
    const text = await answer;
    // Not "-32059 … not sent" while the agent ran it (a client told that would send it again).
    expect(JSON.parse(text)).toMatchObject({ id: 'term-1', result: { task: { status: { state: 'TASK_STATE_COMPLETED' } } } });
    await closed;
    expect(sends(slow)).toHaveLength(1);
  } finally {
    await own.close();
    await slow.close();
  }
});

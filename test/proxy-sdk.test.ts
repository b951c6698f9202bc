// The official MCP SDK client talks through a real sidecar to a real SDK server, in every
// upstream shape (stateful/stateless × SSE/JSON responses). Gates 1–3 end to end.
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, startTestSidecar, type TestSidecar } from './support/sidecar.js';
import { startUpstream, type TestUpstream } from './support/upstream.js';
import { governedConfig } from './support/configs.js';

const MODES = [
  { stateful: true, json: false },
  { stateful: true, json: true },
  { stateful: false, json: false },
  { stateful: false, json: true },
];

describe.each(MODES)('SDK client through the sidecar to an SDK server (stateful=$stateful, json=$json)', (mode) => {
  let upstream: TestUpstream;
  let tg: TestSidecar;

  beforeAll(async () => {
    upstream = await startUpstream(mode);
    tg = await startTestSidecar(governedConfig(upstream.url));
  });
  afterAll(async () => {
    await tg.close();
    await upstream.close();
  });

  test('tools/list hides blocklisted tools and keeps the rest', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(['add', 'delete_file', 'echo', 'transfer_funds', 'wait_for_release']);
    await client.close();
  });

  test('resources and prompts lists are filtered too', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['file:///public/readme.txt']);
    expect((await client.listPrompts()).prompts.map((p) => p.name)).toEqual(['greeting']);
    await client.close();
  });

  test('a forwarded call returns the upstream result unchanged', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    const r = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    expect(r.structuredContent).toEqual({ sum: 5 });
    await client.close();
  });

  test('a call to a hidden tool gets exactly the answer an unknown tool gets', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    const hidden = await client.callTool({ name: 'get_secret', arguments: {} });
    const unknown = await client.callTool({ name: 'no_such_tool', arguments: {} });
    expect(JSON.stringify(hidden).replaceAll('get_secret', 'X')).toEqual(JSON.stringify(unknown).replaceAll('no_such_tool', 'X'));
    expect(JSON.stringify(hidden)).not.toContain('s3cr3t');
    expect(JSON.stringify(hidden)).not.toContain('thoughtgate-probe');
    // The upstream never saw the hidden tool's name.
    expect(upstream.requests.some((r) => r.body.includes('get_secret'))).toBe(false);
    await client.close();
  });

  test('a hidden resource reads like a missing one', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    const hidden = await client.readResource({ uri: 'file:///secret/keys.txt' }).then(
      (r) => ({ ok: r }),
      (e: McpError) => ({ code: e.code, message: e.message }),
    );
    const missing = await client.readResource({ uri: 'file:///nope/none.txt' }).then(
      (r) => ({ ok: r }),
      (e: McpError) => ({ code: e.code, message: e.message }),
    );
    expect(JSON.stringify(hidden).replaceAll('file:///secret/keys.txt', 'U')).toEqual(JSON.stringify(missing).replaceAll('file:///nope/none.txt', 'U'));
    await client.close();
  });

  test('rule deny answers with a ThoughtGate error naming the rule, and forwards nothing', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    const before = upstream.requests.length;
    const err = await client.callTool({ name: 'delete_file', arguments: { path: '/etc/passwd' } }).catch((e: McpError) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32003);
    expect((err as McpError).data).toMatchObject({ gate: 'rules', rule: 'no-deletes', reason: 'deleting files is not allowed here' });
    expect(typeof ((err as McpError).data as { correlationId: string }).correlationId).toBe('string');
    expect(upstream.requests.slice(before).some((r) => r.body.includes('delete_file'))).toBe(false);
    await client.close();
  });

  test('Cedar allows and denies on the arguments', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    const small = await client.callTool({ name: 'transfer_funds', arguments: { amount: 500, to: 'bob' } });
    expect(small.content).toEqual([{ type: 'text', text: 'transferred 500 to bob' }]);

    const huge = await client.callTool({ name: 'transfer_funds', arguments: { amount: 1_000_000, to: 'bob' } }).catch((e: McpError) => e);
    expect((huge as McpError).code).toBe(-32004);
    expect((huge as McpError).data).toMatchObject({ gate: 'cedar', rule: 'transfers' });

    const urgent = await client.callTool({ name: 'transfer_funds', arguments: { amount: 5, to: 'bob', memo: 'pay now URGENT' } }).catch((e: McpError) => e);
    expect((urgent as McpError).code).toBe(-32004);
    expect(JSON.stringify((urgent as McpError).data)).toContain('no-tagged-memos');

    // A null is "absent" to Cedar, so `has memo` is false and the call is allowed.
    const nullMemo = await client.callTool({ name: 'transfer_funds', arguments: { amount: 12, to: 'bob', memo: null } });
    expect(nullMemo.content).toEqual([{ type: 'text', text: 'transferred 12 to bob' }]);
    // A fraction becomes a Cedar decimal; `<` on a decimal is a type error, and errors deny.
    const fraction = await client.callTool({ name: 'transfer_funds', arguments: { amount: 12.5, to: 'bob' } }).catch((e: McpError) => e);
    expect((fraction as McpError).code).toBe(-32005);
    expect(((fraction as McpError).data as { reason: string }).reason).toMatch(/small-transfers.*decimal/);
    await client.close();
  });

  test('an approval decision is never forwarded and says approval is unavailable', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    const before = upstream.requests.length;
    const err = await client.callTool({ name: 'transfer_funds', arguments: { amount: 5000, to: 'bob' } }).catch((e: McpError) => e);
    expect((err as McpError).code).toBe(-32006);
    expect((err as McpError).message).toMatch(/approval/i);
    expect(upstream.requests.slice(before).some((r) => r.body.includes('transfer_funds'))).toBe(false);
    await client.close();
  });

  test('each request is logged once with decision, gate and rule, and arguments are not logged', async () => {
    const { client } = await connectClient(tg.mcpUrl('up'));
    await client.callTool({ name: 'echo', arguments: { message: 'top-secret-value' } });
    await client.callTool({ name: 'delete_file', arguments: { path: '/x' } }).catch(() => undefined);
    await client.close();
    const lines = tg.logs().filter((l) => l['msg'] === 'request' && l['method'] === 'tools/call');
    expect(lines.find((l) => l['tool'] === 'echo')).toMatchObject({ decision: 'forward', source: 'up', status: 200 });
    expect(lines.find((l) => l['tool'] === 'delete_file')).toMatchObject({ decision: 'deny', gate: 'rules', rule: 'no-deletes' });
    expect(JSON.stringify(tg.logs())).not.toContain('top-secret-value');
  });

  test('an SSE event reaches the client before the upstream finishes', async () => {
    if (mode.json) return; // JSON responses have no intermediate events by definition
    const { client } = await connectClient(tg.mcpUrl('up'));
    const progress: unknown[] = [];
    const call = client.callTool({ name: 'wait_for_release', arguments: {} }, undefined, { onprogress: (p) => progress.push(p) });
    await upstream.waiting();
    const until = Date.now() + 5000;
    while (progress.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(progress).toEqual([{ progress: 1, total: 2, message: 'started' }]);
    upstream.release();
    expect((await call).content).toEqual([{ type: 'text', text: 'released' }]);
    await client.close();
  });
});

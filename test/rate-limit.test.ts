// Rate limits over real sockets: the official SDK client through an in-process sidecar to
// server-everything. The burst passes, the next call gets -32026 with data.retryAfterMs, the call
// passes again once that time has gone by; other tools are unaffected, a hidden tool stays hidden
// (it is never limited, so no error tells it exists), and a batch is limited message by message.
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startEverything, type Proc } from './support/processes.js';
import { connectClient, messagesOf, rawPost, startTestSidecar, type TestSidecar } from './support/sidecar.js';

describe('rateLimits: SDK client through the sidecar to server-everything', () => {
  let everything: { url: string; proc: Proc };
  let tg: TestSidecar;
  let client: Client;
  let session: string;

  beforeAll(async () => {
    everything = await startEverything();
    tg = await startTestSidecar(
      [
        'sources:',
        `  - name: everything`,
        `    url: ${everything.url}`,
        '    expose: { mode: blocklist, tools: [get-env] }',
        'defaultAction: forward',
        'rateLimits:',
        // 2 per second: the test waits at most half a second for a token.
        '  - { name: echo-limit, match: { tool: echo }, perMinute: 120, burst: 2 }',
        '  - { name: env-limit, match: { tool: get-env }, perMinute: 1, burst: 1 }',
        '  - { name: sum-limit, match: { tool: get-sum }, perMinute: 1, burst: 1 }',
        '',
      ].join('\n'),
    );
    ({ client } = await connectClient(tg.mcpUrl('everything')));
    session = (client as unknown as { _transport: { sessionId: string } })._transport.sessionId;
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await tg?.close();
    await everything?.proc.stop();
  });

  const echo = (message: string) => client.callTool({ name: 'echo', arguments: { message } });
  const text = (r: Awaited<ReturnType<typeof echo>>) => (r.content as { text: string }[])[0]!.text;

  test('the burst passes, the next call is refused with -32026 and retryAfterMs, and passes after that time', async () => {
    expect(text(await echo('one'))).toBe('Echo: one');
    expect(text(await echo('two'))).toBe('Echo: two');
    const err = await echo('three').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    const e = err as McpError;
    expect(e.code).toBe(-32026);
    expect(e.message).toContain('Rate limit exceeded');
    const data = e.data as { gate: string; rule: string; retryAfterMs: number; reason: string; correlationId: string };
    expect(data).toMatchObject({ gate: 'ratelimit', rule: 'echo-limit' });
    expect(data.retryAfterMs).toBeGreaterThan(0);
    expect(data.retryAfterMs).toBeLessThanOrEqual(500);
    expect(data.reason).toContain('echo-limit allows 120 calls per minute (burst 2) for all the calls it matches of source "everything"');
    // Other tools are not affected.
    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
    expect(JSON.stringify(sum.content)).toContain('3');
    await new Promise((r) => setTimeout(r, data.retryAfterMs + 20));
    expect(text(await echo('four'))).toBe('Echo: four');
  });

  test('a hidden tool stays hidden: every call gets the unknown-tool answer, never a rate-limit error', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++)
      answers.push(await client.callTool({ name: 'get-env', arguments: {} }).catch((e: McpError) => ({ code: e.code, message: e.message })));
    const unknown = await client.callTool({ name: 'no-such-tool', arguments: {} }).catch((e: McpError) => ({ code: e.code, message: e.message }));
    for (const a of answers) expect(JSON.stringify(a).replaceAll('get-env', 'X')).toBe(JSON.stringify(unknown).replaceAll('no-such-tool', 'X'));
    expect(JSON.stringify(answers)).not.toContain('-32026');
  });

  test('in a batch each message is decided on its own: both get-sum calls are refused while sum-limit is empty', async () => {
    const call = (id: number, name: string, args: Record<string, unknown>) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    // sum-limit's single token went in the first test; a minute has not passed: both are refused.
    const r = await rawPost(tg.mcpUrl('everything'), JSON.stringify([call(1, 'get-sum', { a: 2, b: 2 }), call(2, 'get-sum', { a: 3, b: 3 })]), {
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
    });
    expect(r.status).toBe(200);
    const byId = new Map<number, any>(messagesOf(r).map((m) => [m.id, m]));
    expect(byId.get(1).error).toMatchObject({ code: -32026, data: { rule: 'sum-limit' } });
    expect(byId.get(2).error).toMatchObject({ code: -32026, data: { rule: 'sum-limit' } });
    expect(byId.get(2).error.data.retryAfterMs).toBeGreaterThan(50_000);
  });

  test('a batch of three echo calls with two tokens: two forwarded together, the third refused', async () => {
    await new Promise((r) => setTimeout(r, 1000)); // echo-limit is full again (burst 2)
    const call = (id: number, message: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });
    const r = await rawPost(tg.mcpUrl('everything'), JSON.stringify([call(11, 'a'), call(12, 'b'), call(13, 'c')]), {
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
    });
    const byId = new Map<number, any>(messagesOf(r).map((m) => [m.id, m]));
    expect(byId.get(11).result.content[0].text).toBe('Echo: a');
    expect(byId.get(12).result.content[0].text).toBe('Echo: b');
    expect(byId.get(13).error).toMatchObject({ code: -32026, data: { gate: 'ratelimit', rule: 'echo-limit' } });
  });

  test('the metric counts refusals by source and limit', async () => {
    const m = await (await fetch(`${tg.admin}/metrics`)).text();
    expect(m).toContain('thoughtgate_sidecar_rate_limited_total{source="everything",rule="echo-limit"} 2');
    expect(m).toContain('thoughtgate_sidecar_rate_limited_total{source="everything",rule="sum-limit"} 2');
    expect(m).not.toContain('rule="env-limit"');
    // One bucket per limit that was reached (echo-limit, sum-limit); the hidden tool's limit has none.
    expect(m).toMatch(/thoughtgate_sidecar_rate_limit_buckets 2\n/);
  });
});

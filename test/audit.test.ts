// Audit mode over real sockets: the official SDK client through an in-process sidecar to
// server-everything. In audit a would-deny (rule), would-hide (call and list) and would-approve
// call reach the upstream and are recorded (metric, log field); after the config is switched to
// enforce (a reload, as a ConfigMap update or an edited file brings it) the same calls are
// denied, hidden and refused for approval again.
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startEverything, type Proc } from './support/processes.js';
import { connectClient, startTestSidecar, type TestSidecar } from './support/sidecar.js';

const config = (enforcement: 'audit' | 'enforce') =>
  [
    `enforcement: ${enforcement}`,
    'sources:',
    '  - name: everything',
    '    url: ${EVERYTHING_URL}',
    '    expose: { mode: blocklist, tools: [get-env] }',
    'defaultAction: forward',
    'rules:',
    '  - { name: no-sum, match: { tool: get-sum }, action: deny, reason: sums are not allowed }',
    '  - { name: echo-needs-ok, match: { tool: echo }, action: approve, approval: { channel: ops } }',
    '',
  ].join('\n');

describe('audit → enforce: SDK client through the sidecar to server-everything', () => {
  let everything: { url: string; proc: Proc };
  let tg: TestSidecar;
  let client: Client;

  beforeAll(async () => {
    everything = await startEverything();
    tg = await startTestSidecar(config('audit'), { EVERYTHING_URL: everything.url });
    ({ client } = await connectClient(tg.mcpUrl('everything')));
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await tg?.close();
    await everything?.proc.stop();
  });

  const metrics = async () => (await fetch(`${tg.admin}/metrics`)).text();
  const failure = (p: Promise<unknown>) =>
    p.then(
      (r) => ({ result: r }),
      (e: McpError) => ({ code: e.code, message: e.message, data: e.data }),
    );

  test('audit: the would-deny, would-hide and would-approve calls reach the upstream and are recorded', async () => {
    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    expect(JSON.stringify(sum.content)).toContain('5');
    const env = await client.callTool({ name: 'get-env', arguments: {} });
    expect(env.isError).not.toBe(true);
    expect(JSON.stringify(env.content)).toContain('PATH');
    const echo = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    expect((echo.content as { text: string }[])[0]!.text).toBe('Echo: hi');

    const m = await metrics();
    expect(m).toContain('thoughtgate_sidecar_audit_decisions_total{policy="",source="everything",gate="rules",rule="no-sum",would="deny"} 1');
    expect(m).toContain('thoughtgate_sidecar_audit_decisions_total{policy="",source="everything",gate="visibility",rule="expose",would="hide"} 1');
    expect(m).toContain('thoughtgate_sidecar_audit_decisions_total{policy="",source="everything",gate="rules",rule="echo-needs-ok",would="approve"} 1');

    const lines = tg.logs().filter((l) => l['msg'] === 'request' && l['audit'] !== undefined);
    expect(lines.map((l) => [l['tool'], l['decision'], l['audit']])).toEqual([
      ['get-sum', 'forward', { would: 'deny', gate: 'rules', rule: 'no-sum' }],
      ['get-env', 'forward', { would: 'hide', gate: 'visibility', rule: 'expose' }],
      ['echo', 'forward', { would: 'approve', gate: 'rules', rule: 'echo-needs-ok' }],
    ]);
  });

  test('audit: tools/list is not filtered; the entry enforce would hide is counted', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('get-env');
    expect(await metrics()).toContain('thoughtgate_sidecar_audit_list_items_total{policy="",source="everything",method="tools/list"} 1');
  });

  test('switching the config to enforce denies, hides and refuses for approval again', async () => {
    tg.writeConfig(config('enforce'));
    await tg.waitFor(() => tg.sidecar.snapshot()?.gates.enforcement === 'enforce', 'the enforce config');
    const sum = await failure(client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }));
    expect(sum).toMatchObject({ code: -32003, data: { rule: 'no-sum', reason: 'sums are not allowed' } });
    // Hidden: the upstream's own answer for a tool that does not exist.
    const env = await failure(client.callTool({ name: 'get-env', arguments: {} }));
    const unknown = await failure(client.callTool({ name: 'no-such-tool', arguments: {} }));
    expect(JSON.stringify(env).replaceAll('get-env', 'X')).toBe(JSON.stringify(unknown).replaceAll('no-such-tool', 'X'));
    // No approval backend: the call that needs one is refused, not forwarded.
    expect(await failure(client.callTool({ name: 'echo', arguments: { message: 'hi' } }))).toMatchObject({ code: -32006 });
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('get-env');
    // Nothing more was recorded as audit.
    const m = await metrics();
    expect(m).toContain('gate="rules",rule="no-sum",would="deny"} 1');
    expect(m).toContain('method="tools/list"} 1');
  });
});

// Audit mode is chosen by the platform's config, never by the agent. Against the real
// server-everything behind the recording relay: with one rule in audit (so the audit path is
// live in this sidecar) and the rest enforced, nothing the agent sends (headers, params such as
// `_meta`, `enforcement` or `task`, method spellings, batching beside an audited call) makes an
// enforced denial or a hidden tool audit-only: the upstream never receives the call.
import fc from 'fast-check';
import { closeGuarded, openSession, post, startGuarded, type RecordedEverything } from './harness.js';
import type { TestSidecar } from '../support/sidecar.js';

let up: RecordedEverything;
let tg: TestSidecar;
let h: Record<string, string>;

beforeAll(async () => {
  ({ up, tg } = await startGuarded(`
enforcement: enforce
sources:
  - name: e
    url: \${UPSTREAM}
    expose: { mode: blocklist, tools: ["get-env"] }
rules:
  - { name: audited-echo, match: { tool: echo }, action: deny, enforcement: audit }
  - { name: no-sum, match: { tool: get-sum }, action: deny }
  - { match: { method: "tools/call" }, action: forward }
defaultAction: deny
`));
  h = await openSession(tg.mcpUrl('e'), { 'mcp-protocol-version': '2025-03-26' });
  h['mcp-protocol-version'] = '2025-03-26';
}, 60_000);
afterAll(() => closeGuarded(tg, up));

const call = (id: number, name: string, params: Record<string, unknown> = {}, method = 'tools/call') => ({
  jsonrpc: '2.0',
  id,
  method,
  params: { name, arguments: { a: 1, b: 2 }, ...params },
});

/** What an agent might try, in the body's params, to be audited rather than enforced. */
const PARAMS: Record<string, unknown>[] = [
  {},
  { _meta: { enforcement: 'audit' } },
  { _meta: { 'thoughtgate.io/enforcement': 'audit', 'thoughtgate.io/audit': true, audit: true } },
  { enforcement: 'audit' },
  { enforcement: 'audit', _meta: { progressToken: 1 }, task: { ttl: 1000 } },
];
/** And in the headers. */
const HEADERS: Record<string, string>[] = [
  {},
  { 'x-thoughtgate-enforcement': 'audit' },
  { 'thoughtgate-enforcement': 'audit', 'x-thoughtgate-audit': 'true' },
  { 'mcp-param-enforcement': 'audit' },
];

const codeOf = (m: unknown) => (m as { error?: { code: number } }).error?.code;

test('control: the audited rule is live in this sidecar (echo is forwarded and recorded)', async () => {
  up.clear();
  const r = await post(tg.mcpUrl('e'), h, call(1, 'echo', { arguments: { message: 'hi' } }));
  expect(JSON.stringify(r.messages)).toContain('Echo: hi');
  expect(up.everything()).toContain('"echo"');
  const metrics = await (await fetch(`${tg.admin}/metrics`)).text();
  expect(metrics).toContain('rule="audited-echo",would="deny"} 1');
});

test('headers and params never turn an enforced denial or a hidden tool into an audited forward', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...PARAMS), fc.constantFrom(...HEADERS), fc.constantFrom('get-sum', 'get-env'), async (params, headers, tool) => {
      up.clear();
      const r = await post(tg.mcpUrl('e'), { ...h, ...headers }, call(7, tool, params));
      expect(up.everything()).not.toContain(tool);
      if (tool === 'get-sum') expect(r.messages.map(codeOf)).toEqual([-32003]);
    }),
    { numRuns: 40 },
  );
});

test('method spellings are other methods: denied by defaultAction, never forwarded as a call', async () => {
  for (const method of ['Tools/Call', 'tools/call ', ' tools/call', 'tools/call\u0000', 'tools//call', 'tools\\/call']) {
    up.clear();
    const r = await post(tg.mcpUrl('e'), h, call(8, 'get-sum', { _meta: { enforcement: 'audit' } }, method));
    expect(up.everything()).not.toContain('get-sum');
    expect(r.messages.map(codeOf)).toEqual([-32003]);
  }
});

test('in a batch beside an audited call, the enforced call is still denied: enforcement is per message', async () => {
  up.clear();
  const r = await post(tg.mcpUrl('e'), h, [call(1, 'echo', { arguments: { message: 'x' } }), call(2, 'get-sum', { _meta: { enforcement: 'audit' } })]);
  expect(up.everything()).not.toContain('get-sum');
  expect(up.everything()).toContain('"echo"');
  expect((r.messages as { id: number }[]).find((m) => m.id === 2)).toMatchObject({ error: { code: -32003 } });
  const metrics = await (await fetch(`${tg.admin}/metrics`)).text();
  const audits = metrics.split('\n').filter((l) => l.startsWith('thoughtgate_sidecar_audit_'));
  expect(audits.filter((l) => l.includes('rule="no-sum"') || l.includes('would="hide"'))).toEqual([]);
  // requests_total has the enforced denial, with its rule.
  expect(metrics).toMatch(/thoughtgate_sidecar_requests_total\{[^}]*decision="deny",gate="rules",rule="no-sum",protocol="mcp"\} [1-9]/);
});

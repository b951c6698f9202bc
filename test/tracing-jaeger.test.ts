// Tracing against a real collector (Jaeger v2, built by scripts/jaeger-tools.sh): a governed call
// that is forwarded (Cedar), one denied by a rule and one approved by a human (standalone, fake
// Slack) arrive with the right parents: the agent's traceparent → the sidecar's request span →
// its gate spans, the approval wait and decision, and the upstream HTTP client span, whose
// context is what the upstream MCP server receives. No argument value reaches any span.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startTracing, type Tracer } from '../lib/tracing.js';
import { approvalConfig, plainClient, startRig, until, type Rig } from './approvals-harness.js';
import { startJaeger, type Jaeger, type JaegerSpan } from './support/jaeger.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const AGENT_SPAN = '00f067aa0ba902b7';
const TP = `00-${TRACE}-${AGENT_SPAN}-01`;
const SECRET = 'secret-arg-value';

const config = (up: string, slack: string) =>
  approvalConfig(up, slack, { rules: '  - name: no-status\n    match: { tool: "status" }\n    action: deny\n    reason: status is off limits' });

let jaeger: Jaeger;
let tracer: Tracer;
let rig: Rig;
const dropped: number[] = [];

beforeAll(async () => {
  jaeger = await startJaeger();
  tracer = await startTracing(
    { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlp, OTEL_SERVICE_NAME: 'tg-tracing-test', OTEL_BSP_SCHEDULE_DELAY: '50' },
    { defaultServiceName: 'x', onDropped: (n) => dropped.push(n) },
  );
  expect(tracer.on).toBe(true);
  rig = await startRig({ config, sidecar: { tracer } });
}, 600_000);

afterAll(async () => {
  await rig?.close(); // shuts the tracer down too
  await jaeger?.close();
});

const tag = (s: JaegerSpan, key: string): unknown => s.tags.find((t) => t.key === key)?.value;
const parentOf = (s: JaegerSpan): string | undefined => s.references.find((r) => r.refType === 'CHILD_OF')?.spanID;
const childrenOf = (spans: JaegerSpan[], p: JaegerSpan) => spans.filter((s) => parentOf(s) === p.spanID);

describe('spans reach Jaeger with the right parents', () => {
  test('a forwarded call (Cedar), a denial (rule) and an approval (held call, decided in Slack)', async () => {
    const { client } = await plainClient(rig.url, { traceparent: TP, tracestate: 'agent=1' });
    const forwarded = await client.callTool({ name: 'scale', arguments: { replicas: 2, note: SECRET } });
    expect(forwarded.isError).toBeFalsy();
    await expect(client.callTool({ name: 'status', arguments: { note: SECRET } })).rejects.toThrow(/-32003/);
    const approved = client.callTool({ name: 'deploy', arguments: { service: SECRET, version: '1' } });
    rig.approve((await rig.message(0)).ts);
    expect((await approved).isError).toBeFalsy();
    await client.close();

    const calls = (tool: string) => rig.upstream.calls.filter((c) => c.tool === tool);
    expect(calls('status')).toEqual([]);
    // The upstream continues the agent's trace under the sidecar's span, not the agent's own.
    for (const c of [...calls('scale'), ...calls('deploy')]) {
      expect(c.traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
      expect(c.traceparent).not.toBe(TP);
    }

    let spans: JaegerSpan[] = [];
    await until(
      async () => {
        spans = await jaeger.trace(TRACE);
        return spans.filter((s) => s.operationName === 'mcp tools/call').length === 3 && spans.some((s) => s.operationName === 'approval decision');
      },
      'the three tools/call traces in Jaeger',
      20_000,
    );

    const requests = spans.filter((s) => s.operationName === 'mcp tools/call');
    for (const r of requests) {
      expect(parentOf(r)).toBe(AGENT_SPAN);
      expect(tag(r, 'span.kind')).toBe('server');
      expect(tag(r, 'mcp.method.name')).toBe('tools/call');
      expect(tag(r, 'jsonrpc.request.id.kind')).toBe('number');
      expect(tag(r, 'thoughtgate.source')).toBe('up');
    }
    const byTarget = (tool: string) => {
      const r = requests.find((q) => childrenOf(spans, q).some((c) => tag(c, 'thoughtgate.target') === tool));
      if (!r) throw new Error(`no request span for ${tool}`);
      return { request: r, children: childrenOf(spans, r) };
    };

    // Forwarded by Cedar: the gate span names the policy; the upstream's parent is the client span.
    const scale = byTarget('scale');
    const cedar = scale.children.find((c) => c.operationName === 'gate cedar')!;
    expect(tag(cedar, 'thoughtgate.decision')).toBe('forward');
    expect(tag(cedar, 'thoughtgate.rule')).toBe('scaling-by-policy');
    expect(String(tag(cedar, 'thoughtgate.cedar.policy_ids'))).toContain('small-scale');
    const scaleUp = scale.children.find((c) => c.operationName === 'POST')!;
    expect(tag(scaleUp, 'span.kind')).toBe('client');
    expect(tag(scaleUp, 'http.response.status_code')).toBe(200);
    expect(calls('scale')[0]!.traceparent).toBe(`00-${TRACE}-${scaleUp.spanID}-01`);

    // Denied by a rule: a gate span, and no upstream span.
    const status = byTarget('status');
    const rule = status.children.find((c) => c.operationName === 'gate rules')!;
    expect([tag(rule, 'thoughtgate.decision'), tag(rule, 'thoughtgate.rule')]).toEqual(['deny', 'no-status']);
    expect(status.children.some((c) => c.operationName === 'POST')).toBe(false);

    // Approved: the wait, its decision, then the upstream call, all under the request span.
    const deploy = byTarget('deploy');
    const gate = deploy.children.find((c) => c.operationName === 'gate rules')!;
    expect([tag(gate, 'thoughtgate.decision'), tag(gate, 'thoughtgate.rule')]).toEqual(['approve', 'deploys-need-approval']);
    const wait = deploy.children.find((c) => c.operationName === 'approval wait')!;
    expect(tag(wait, 'thoughtgate.approval.channel')).toBe('oncall');
    expect(tag(wait, 'thoughtgate.approval.outcome')).toBe('approved');
    const decision = childrenOf(spans, wait).find((c) => c.operationName === 'approval decision')!;
    expect(tag(decision, 'thoughtgate.approval.outcome')).toBe('approved');
    expect(tag(decision, 'thoughtgate.approval.approvers')).toBe(1);
    const deployUp = deploy.children.find((c) => c.operationName === 'POST')!;
    expect(calls('deploy')[0]!.traceparent).toBe(`00-${TRACE}-${deployUp.spanID}-01`);

    // No argument value anywhere in the trace.
    expect(JSON.stringify(spans)).not.toContain(SECRET);
    expect(dropped).toEqual([]);
  }, 60_000);

  test('an invalid traceparent starts a new trace and is never forwarded as sent', async () => {
    const bad = `00-${TRACE.toUpperCase()}-${AGENT_SPAN}-01`;
    const { client } = await plainClient(rig.url, { traceparent: bad, tracestate: 'a=1' });
    const before = rig.upstream.calls.length;
    await client.callTool({ name: 'scale', arguments: { replicas: 3 } });
    await client.close();
    const seen = rig.upstream.calls.slice(before).find((c) => c.tool === 'scale')!;
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(seen.traceparent ?? '');
    expect(m).not.toBeNull();
    expect(m![1]).not.toBe(TRACE);
    let spans: JaegerSpan[] = [];
    await until(
      async () => {
        spans = await jaeger.trace(m![1]!);
        return spans.some((s) => s.operationName === 'mcp tools/call');
      },
      'the new trace in Jaeger',
      20_000,
    );
    const request = spans.find((s) => s.operationName === 'mcp tools/call')!;
    expect(request.references).toEqual([]); // a root: nothing of the agent's context was kept
    expect(spans.find((s) => s.spanID === m![2])?.operationName).toBe('POST');
  }, 60_000);
});

describe('tracing off', () => {
  test("the agent's traceparent passes to the upstream untouched (as before tracing existed)", async () => {
    const off = await startRig({ config }); // no OTEL_* in the test environment: off
    try {
      const { client } = await plainClient(off.url, { traceparent: TP });
      await client.callTool({ name: 'scale', arguments: { replicas: 2 } });
      await client.close();
      expect(off.upstream.calls.find((c) => c.tool === 'scale')?.traceparent).toBe(TP);
    } finally {
      await off.close();
    }
  }, 60_000);
});

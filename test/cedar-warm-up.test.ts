// The Cedar warm-up after a snapshot starts serving (sidecar/warm-cedar.ts): one evaluation through
// the real evaluator, off the request path, that decides nothing anyone sees — for a set that needs
// cedar-wasm; a set the direct evaluator decides whole has nothing to warm.
import { jest } from '@jest/globals';
import { IdentitySchema, PolicyDocumentSchema } from '../api/config.js';
import { cedarEngine } from '../policy/cedar/engine.js';
import { evaluate } from '../policy/cedar/evaluate.js';
import { compileSnapshot, type Snapshot } from '../sidecar/snapshot.js';
import { WARM_DELAY_MS, WARM_TOOL, warmCedar } from '../sidecar/warm-cedar.js';
import { startTestSidecar } from './support/sidecar.js';
import { startUpstream } from './support/upstream.js';

// `ip(…)` is not a shape the direct evaluator models: this set is decided by cedar-wasm.
const POLICY = 'permit(principal, action, resource) when { context.arguments has a && context.arguments.a < 10 && !ip("10.0.0.1").isLoopback() };';
const DIRECT_POLICY = 'permit(principal, action, resource) when { context.arguments has a && context.arguments.a < 10 };';

function snapshot(cedar?: string): Snapshot {
  const doc = PolicyDocumentSchema.parse({
    sources: [{ name: 'up', url: 'http://127.0.0.1:9/mcp' }],
    defaultAction: 'forward',
    ...(cedar ? { cedar: { policies: cedar } } : {}),
  });
  const r = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.snapshot;
}

describe('Cedar warm-up', () => {
  test('evaluates once through the snapshot’s own policies, on a tool no config names', () => {
    const s = snapshot(POLICY);
    expect(s.gates.cedar!.needsWasmToEvaluate).toBe(true);
    // The policy reads an argument the warm-up does not send: a real evaluation that permits nothing,
    // made in wasm (what compiles its evaluator).
    const wasmCalls = jest.spyOn(cedarEngine(), 'statefulIsAuthorized');
    try {
      expect(warmCedar(s)).toEqual({ decision: 'deny', policies: [], reason: expect.any(String) });
      expect(wasmCalls).toHaveBeenCalledTimes(1);
    } finally {
      wasmCalls.mockRestore();
    }
    // Decisions after it are the evaluator's as ever.
    const call = (a: number) =>
      evaluate(s.gates.cedar!, {
        identity: s.gates.identity,
        method: 'tools/call',
        source: 'up',
        target: { kind: 'tool', name: 'pay' },
        arguments: { a },
        now: new Date(),
      });
    expect(call(1).decision).toBe('allow');
    expect(call(100).decision).toBe('deny');
    s.gates.cedar!.dispose();
  });

  test('has nothing to do without policies, for a set decided without wasm, or once the set is released', () => {
    expect(warmCedar(snapshot())).toBeNull();
    const direct = snapshot(DIRECT_POLICY);
    expect(direct.gates.cedar!.needsWasmToEvaluate).toBe(false);
    expect(warmCedar(direct)).toBeNull();
    direct.gates.cedar!.dispose();
    const s = snapshot(POLICY);
    s.gates.cedar!.dispose();
    expect(warmCedar(s)).toBeNull();
  });

  test('a running sidecar warms up without a request line, a decision metric or a changed answer', async () => {
    const upstream = await startUpstream({ stateful: false, json: true });
    const tg = await startTestSidecar(
      `sources: [{ name: up, url: "${upstream.url}" }]\nrules: [{ match: { tool: add }, action: policy }]\ndefaultAction: forward\ncedar:\n  policies: '${POLICY}'\n`,
    );
    try {
      // The warm-up runs WARM_DELAY_MS after the listeners are bound.
      await new Promise((r) => setTimeout(r, WARM_DELAY_MS * 3));
      expect(tg.logs().filter((l) => l['msg'] === 'request')).toEqual([]);
      expect(JSON.stringify(tg.logs())).not.toContain(WARM_TOOL);
      const metrics = await (await fetch(`${tg.admin}/metrics`)).text();
      expect(metrics).not.toContain(WARM_TOOL);
      expect(metrics).not.toMatch(/^thoughtgate_sidecar_requests_total\{.*\} [1-9]/m);
      const call = (a: number) =>
        fetch(tg.mcpUrl('up'), {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a, b: 2 } } }),
        }).then((r) => r.text());
      expect(await call(1)).toContain('"sum":3');
      expect(await call(100)).toContain('-32004');
    } finally {
      await tg.close();
      await upstream.close();
    }
  });
});

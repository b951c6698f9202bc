// Gate 3 for A2A calls: ThoughtGate::Agent, canonical actions, the A2A context; the direct
// evaluator and cedar-wasm give the same answers, and text is sent only when a policy reads it.
import { ConfigFileSchema } from '../../api/config.js';
import { describeA2a, type A2aCall } from '../gates/a2a-operation.js';
import { decide } from '../gates/decide.js';
import { compileRules } from '../gates/rules.js';
import { compileVisibility } from '../gates/visibility.js';
import { cedarReadsText, evaluate, type CedarDecision, type CedarInput } from './evaluate.js';
import { compilePolicies, type CompiledPolicies } from './policies.js';

const identity = { namespace: 'prod', serviceAccount: 'agent', pod: 'agent-1', labels: { team: 'payments' } };
const now = new Date('2026-11-21T10:00:00Z');

function compileBoth(text: string): { direct: CompiledPolicies; wasm: CompiledPolicies } {
  const direct = compilePolicies(text);
  const wasm = compilePolicies(text, { engine: 'wasm' });
  if (!direct.ok || !wasm.ok) throw new Error(`does not compile: ${text}`);
  expect(direct.policies.needsWasmToEvaluate).toBe(false);
  return { direct: direct.policies, wasm: wasm.policies };
}

function inputOf(call: A2aCall, text = false): CedarInput {
  const d = describeA2a('billing', call, { skillFrom: 'metadata.skill', text });
  if (!d.ok) throw new Error(d.reason);
  return { identity, method: d.op.method, source: 'billing', target: { kind: 'agent', name: 'billing' }, arguments: d.op.arguments, now, a2a: d.op.a2a };
}

/** The decision both engines give (they must agree, reason included). */
function decideBoth(text: string, input: CedarInput): CedarDecision {
  const c = compileBoth(text);
  try {
    const direct = evaluate(c.direct, input);
    expect(direct).toEqual(evaluate(c.wasm, input));
    return direct;
  } finally {
    c.direct.dispose();
    c.wasm.dispose();
  }
}

const send03 = (metadata: object, parts: object[] = [{ kind: 'text', text: 'please refund order 7' }]): A2aCall => ({
  version: '0.3',
  binding: 'jsonrpc',
  method: 'message/send',
  params: { message: { parts, metadata } },
});
const send10 = (metadata: object, parts: object[] = [{ text: 'please refund order 7' }]): A2aCall => ({
  version: '1.0',
  binding: 'rest',
  method: 'POST /message:send',
  params: { message: { parts, metadata } },
});

describe('Cedar on A2A calls', () => {
  test('the docs URL allowlist: schemes and canonical hosts; a data: URL, a port or a mapped IPv6 spelling does not slip past', () => {
    const policy = [
      '@id("all") permit(principal, action, resource);',
      '@id("files-from-our-buckets-only") forbid(principal, action, resource is ThoughtGate::Agent)',
      '  unless { ["https"].containsAll(context.urlSchemes) && ["files.example.com", "cdn.example.com"].containsAll(context.urlHosts) };',
    ].join('\n');
    const withUrls = (...urls: string[]) =>
      inputOf(
        send10(
          {},
          urls.map((url) => ({ url })),
        ),
      );
    expect(decideBoth(policy, withUrls())).toMatchObject({ decision: 'allow' });
    expect(decideBoth(policy, withUrls('https://files.example.com:8443/a', 'https://CDN.example.com./b'))).toMatchObject({ decision: 'allow' });
    for (const bad of ['data:text/plain,hello', 'http://files.example.com/a', 'https://[::ffff:a9fe:a9fe]/', 'https://files.example.com.evil.example/'])
      expect(decideBoth(policy, withUrls('https://files.example.com/ok', bad))).toMatchObject({ decision: 'deny', policies: ['files-from-our-buckets-only'] });
  });

  test('requestMetadata is in the context, apart from the message metadata', () => {
    const policy = '@id("gold") permit(principal, action, resource) when { context.requestMetadata has tier && context.requestMetadata.tier == "gold" };';
    const call = (tier: string): A2aCall => ({
      version: '1.0',
      binding: 'jsonrpc',
      method: 'SendMessage',
      params: { message: { parts: [], metadata: { tier: 'gold' } }, metadata: { tier } },
    });
    expect(decideBoth(policy, inputOf(call('gold')))).toMatchObject({ decision: 'allow' });
    expect(decideBoth(policy, inputOf(call('tin')))).toMatchObject({ decision: 'deny' });
  });

  test('one policy on the canonical action and the agent covers both generations', () => {
    const policy =
      '@id("refunds") permit(principal, action == ThoughtGate::Action::"SendMessage", resource == ThoughtGate::Agent::"billing") when { context.skill == "refund" && context.metadata.amount < 100 };';
    for (const send of [send03, send10]) {
      expect(decideBoth(policy, inputOf(send({ skill: 'refund', amount: 50 })))).toMatchObject({ decision: 'allow', policies: ['refunds'] });
      expect(decideBoth(policy, inputOf(send({ skill: 'refund', amount: 500 })))).toMatchObject({
        decision: 'deny',
        reason: 'no policy permits SendMessage on billing',
      });
      expect(decideBoth(policy, inputOf(send({ skill: 'status', amount: 1 })))).toMatchObject({ decision: 'deny' });
    }
  });

  test('the resource is the agent, in its source; context names protocol, version and binding', () => {
    const input = inputOf(send10({ skill: 'x' }));
    expect(
      decideBoth(
        'permit(principal, action, resource in ThoughtGate::Source::"billing") when { resource.name == "billing" && resource.source == "billing" };',
        input,
      ).decision,
    ).toBe('allow');
    expect(
      decideBoth(
        'permit(principal, action, resource is ThoughtGate::Agent) when { context.protocol == "a2a" && context.version == "1.0" && context.binding == "rest" };',
        input,
      ).decision,
    ).toBe('allow');
    expect(decideBoth('permit(principal, action, resource == ThoughtGate::Agent::"other");', input).decision).toBe('deny');
  });

  test('part kinds, hosts and sizes: forbid file URLs to internal hosts, cap the size', () => {
    const policies = `
      @id("all") permit(principal, action, resource);
      @id("no-internal-urls") forbid(principal, action, resource) when { context.urlHosts.containsAny(["169.254.169.254", "metadata.internal"]) };
      @id("small") forbid(principal, action, resource) when { context.totalBytes > 1000 || context.partCount > 3 };
      @id("no-raw") forbid(principal, action, resource) when { context.partKinds.contains("raw") };`;
    expect(decideBoth(policies, inputOf(send03({}, [{ kind: 'file', file: { uri: 'http://169.254.169.254/latest' } }]))).policies).toEqual([
      'no-internal-urls',
    ]);
    expect(decideBoth(policies, inputOf(send10({}, [{ url: 'http://169.254.169.254/latest' }]))).policies).toEqual(['no-internal-urls']);
    expect(decideBoth(policies, inputOf(send10({}, [{ text: 'x'.repeat(1001) }]))).policies).toEqual(['small']);
    expect(decideBoth(policies, inputOf(send03({}, [{ kind: 'file', file: { bytes: 'AAAA' } }]))).policies).toEqual(['no-raw']);
    expect(decideBoth(policies, inputOf(send10({}, [{ url: 'https://docs.example/a.pdf' }, { data: { a: 1 } }]))).decision).toBe('allow');
  });

  test('text reaches Cedar only when collected; a policy reading it without it fails closed', () => {
    const policy = '@id("t") forbid(principal, action, resource) when { context.text like "*refund*" }; @id("all") permit(principal, action, resource);';
    const c = compilePolicies(policy);
    const none = compilePolicies('permit(principal, action, resource) when { context.skill == "x" };');
    if (!c.ok || !none.ok) throw new Error('compile');
    expect(cedarReadsText(c.policies)).toBe(true);
    expect(cedarReadsText(none.policies)).toBe(false);
    expect(cedarReadsText(null)).toBe(false);
    c.policies.dispose();
    none.policies.dispose();
    expect(decideBoth(policy, inputOf(send10({}), true))).toMatchObject({ decision: 'deny', policies: ['t'] });
    expect(decideBoth(policy, inputOf(send10({}, [{ text: 'hello' }]), true))).toMatchObject({ decision: 'allow' });
    expect(decideBoth(policy, inputOf(send10({}), false))).toMatchObject({ decision: 'error', policies: ['t'] });
  });

  test('push URL and ids are in the context; metadata refused like arguments', () => {
    const create: A2aCall = {
      version: '0.3',
      binding: 'jsonrpc',
      method: 'tasks/pushNotificationConfig/set',
      params: { taskId: 't-1', pushNotificationConfig: { url: 'http://hooks.example/x', authentication: { credentials: 'secret' } } },
    };
    const input = inputOf(create);
    expect(input.method).toBe('CreateTaskPushNotificationConfig');
    expect(
      decideBoth(
        'permit(principal, action, resource) when { context.pushUrl like "http://hooks.example/*" && context.pushAuth && context.taskId == "t-1" };',
        input,
      ).decision,
    ).toBe('allow');
    const deep = inputOf(send10({ a: Array.from({ length: 10_001 }, () => 1) }));
    expect(evaluate(compileBoth('permit(principal, action, resource);').direct, deep)).toMatchObject({
      decision: 'error',
      reason: expect.stringMatching(/^message metadata refused: /),
    });
  });

  test('decide(): rules send A2A calls to Cedar as the agent resource', () => {
    const cedarText =
      '@id("small") permit(principal, action == ThoughtGate::Action::"SendMessage", resource == ThoughtGate::Agent::"billing") when { context.metadata.amount < 100 };';
    const cfg = ConfigFileSchema.parse({
      sources: [{ name: 'billing', protocol: 'a2a', url: 'https://b.internal', a2a: { jsonrpc: '/rpc', skillFrom: 'metadata.skill' } }],
      rules: [{ match: { method: 'message/send' }, action: 'policy' }],
      cedar: { policies: cedarText },
    });
    const compiled = compilePolicies(cedarText);
    if (!compiled.ok) throw new Error('compile');
    const g = {
      visibility: compileVisibility(cfg.sources[0]!.expose),
      rules: compileRules(cfg.rules),
      defaultAction: cfg.defaultAction,
      cedar: compiled.policies,
      identity,
    };
    const op = (amount: number) => {
      const d = describeA2a('billing', send03({ amount }), { skillFrom: 'metadata.skill' });
      if (!d.ok) throw new Error(d.reason);
      return d.op;
    };
    expect(decide(g, op(5), now)).toMatchObject({ action: 'forward', gate: 'cedar', policies: ['small'] });
    expect(decide(g, op(500), now)).toMatchObject({ action: 'deny', gate: 'cedar', error: 'DENIED_BY_POLICY' });
    compiled.policies.dispose();
  });

  test('context.extensions: the extensions the call asks for, as a set (both engines)', () => {
    const policy = [
      '@id("all") permit(principal, action, resource);',
      '@id("no-unsafe") forbid(principal, action, resource is ThoughtGate::Agent) when { context.extensions.contains("urn:unsafe") };',
    ].join('\n');
    const call = (extensions: string[]): CedarInput => inputOf({ ...send10({}), extensions });
    expect(decideBoth(policy, call([]))).toMatchObject({ decision: 'allow' });
    expect(decideBoth(policy, call(['urn:traced']))).toMatchObject({ decision: 'allow' });
    expect(decideBoth(policy, call(['urn:traced', 'urn:unsafe']))).toMatchObject({ decision: 'deny', policies: ['no-unsafe'] });
  });
});

// Operator → ConfigMap → sidecar with Cedar: the operator renders each policy's parsed Cedar form
// next to its text; the sidecar builds its policies from it (no cedar-wasm) when that form is for
// the text it has, and refuses a form that is malformed or contradicts itself.
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { IdentitySchema } from '../api/config.js';
import { CONFIGMAP_KEY, CONFIGMAP_NAME } from '../api/wellknown.js';
import type { ConfigMap } from '../kube/resources.js';
import { evaluate } from '../policy/cedar/evaluate.js';
import { parseRendered, renderNamespace, type PolicyObject } from '../operator/render.js';
import { evaluateConfigMap } from '../sidecar/providers/configmap.js';
import { compileSnapshot } from '../sidecar/snapshot.js';
import type { Env } from '../policy/config/env.js';
import { configHash } from '../policy/config/load.js';

const POLICIES = `@id("small") permit(principal, action == ThoughtGate::Action::"tools/call", resource in ThoughtGate::Source::"\${SRC:-bank}")
  when { context.arguments has amount && context.arguments.amount < 1000 };
@id("no-delete") forbid(principal, action, resource) when { resource.name like "delete_*" };`;

const gp = (cedar: string): PolicyObject => ({
  metadata: { name: 'p', namespace: 'ns', generation: 1 },
  spec: {
    sources: [{ name: 'bank', url: 'http://127.0.0.1:9/mcp' }],
    defaultAction: 'forward',
    rules: [{ match: {}, action: 'policy' }],
    cedar: { policies: cedar },
  },
});
const identity = IdentitySchema.parse({ namespace: 'ns', serviceAccount: 'sa', pod: 'p' });
const cm = (text: string): ConfigMap => ({ metadata: { name: CONFIGMAP_NAME, namespace: 'ns' }, data: { [CONFIGMAP_KEY]: text } });

/** The sidecar's path: the ConfigMap evaluated for this pod, then compiled into a snapshot. */
function sidecarReads(text: string, env: Env = {}) {
  const o = evaluateConfigMap(cm(text), { namespace: 'ns', name: CONFIGMAP_NAME, identity, env });
  if (o.kind !== 'config') return o;
  return compileSnapshot(o.doc, identity, { hash: o.hash, generation: 1, ...(o.cedar ? { cedar: o.cedar } : {}) });
}

function rendered(cedar = POLICIES) {
  const r = renderNamespace([gp(cedar)], new Set(), null);
  if (!r.text) throw new Error([...r.byPolicy.values()].map((v) => JSON.stringify(v)).join('\n'));
  return r;
}

/** The rendered ConfigMap text with its first policy's parsed Cedar form changed. */
function tampered(change: (cedar: Record<string, unknown>) => void): string {
  const doc = parseYaml(rendered().text!) as { policies: { cedar: Record<string, unknown> }[] };
  change(doc.policies[0]!.cedar);
  return stringifyYaml(doc);
}

const call = (name: string, args: unknown) => ({
  identity,
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool' as const, name },
  arguments: args,
  now: new Date('2026-11-21T10:00:00Z'),
});

test('the operator renders each policy’s parsed form, versioned, in the hash and read back as written', () => {
  const r = rendered();
  const cedar = r.config!.policies[0]!.cedar!;
  expect(cedar).toMatchObject({ version: 1, textSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect(cedar.policies.map((p) => [p.id, p.effect, p.index, p.line, p.column])).toEqual([
    ['small', 'permit', 0, 1, 1],
    ['no-delete', 'forbid', 1, 3, 1],
  ]);
  expect(cedar.policies[0]!.json).toMatchObject({ effect: 'permit', annotations: { id: 'small' } });
  expect(parseRendered(r.text!)).toEqual(r.config);
  // The per-policy hash (what a sidecar compares to decide on a reload) covers the parsed form.
  const { spec, priority, hash } = r.config!.policies[0]!;
  expect(hash).toBe(configHash({ priority, podSelector: null, spec, cedar }));
  expect(hash).not.toBe(configHash({ priority, podSelector: null, spec }));
});

test('the sidecar builds its policies from the parsed form, and they decide as the text says', () => {
  const s = sidecarReads(rendered().text!);
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  const cedar = s.snapshot.gates.cedar!;
  expect(cedar.from).toBe('json');
  expect(evaluate(cedar, call('transfer', { amount: 5 })).decision).toBe('allow');
  expect(evaluate(cedar, call('transfer', { amount: 5000 })).decision).toBe('deny');
  expect(evaluate(cedar, call('delete_all', { amount: 5 }))).toMatchObject({ decision: 'deny', policies: ['no-delete'] });
  // A request the closures cannot represent: the text, compiled in wasm now, decides it.
  // (a time beyond Cedar's datetime; the policies do not read it, so wasm decides by the name).
  const far = { ...call('delete_all', { amount: 5 }), now: new Date('+010000-01-01T00:00:00Z') };
  expect(evaluate(cedar, far)).toEqual({ decision: 'deny', policies: ['no-delete'], reason: 'forbidden by no-delete' });
  // Text that is not valid Unicode: Cedar refuses it, and so the decision is wasm's refusal, as without the form.
  expect(evaluate(cedar, call('delete_\ud800', { amount: 5 }))).toMatchObject({
    decision: 'error',
    reason: expect.stringMatching(/^Cedar evaluation failed: /),
  });
  cedar.dispose();
});

test('a pod whose ${VAR} gives other text compiles its own text', () => {
  const s = sidecarReads(rendered().text!, { SRC: 'other' });
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  expect(s.snapshot.gates.cedar!.from).toBe('wasm');
  expect(evaluate(s.snapshot.gates.cedar!, call('transfer', { amount: 5 })).decision).toBe('deny');
  s.snapshot.gates.cedar!.dispose();
});

test('a policy only wasm evaluates: the sidecar compiles the text', () => {
  const s = sidecarReads(rendered(`${POLICIES}\n@id("ip") forbid(principal, action, resource) when { ip("10.0.0.1").isLoopback() };`).text!);
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  expect(s.snapshot.gates.cedar!.from).toBe('wasm');
  expect(s.snapshot.gates.cedar!.needsWasmToEvaluate).toBe(true);
  s.snapshot.gates.cedar!.dispose();
});

test('an older operator’s ConfigMap (no parsed form): the text is compiled as before', () => {
  const s = sidecarReads(tamperedOut());
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  expect(s.snapshot.gates.cedar!.from).toBe('wasm');
  s.snapshot.gates.cedar!.dispose();
  function tamperedOut(): string {
    const doc = parseYaml(rendered().text!) as { policies: Record<string, unknown>[] };
    delete doc.policies[0]!['cedar'];
    return stringifyYaml(doc);
  }
});

describe('a malformed or self-contradicting parsed form is refused, not trusted', () => {
  test.each<[string, (c: Record<string, unknown>) => void, RegExp]>([
    ['an unknown version', (c) => (c['version'] = 2), /policies\[0\]\.cedar\.version: /],
    [
      'a policy’s JSON that is not an object',
      (c) => ((c['policies'] as Record<string, unknown>[])[0]!['json'] = 'permit'),
      /policies\[0\]\.cedar\.policies\[0\]\.json: /,
    ],
    ['an unknown field', (c) => (c['extra'] = 1), /policies\[0\]\.cedar: Unrecognized key/],
  ])('the ConfigMap is invalid: %s', (_what, change, path) => {
    const o = sidecarReads(tampered(change));
    expect(o).toMatchObject({ kind: 'invalid', errors: [expect.stringMatching(path)] });
  });

  test('ids that are not what the JSON says: the compile fails, naming why', () => {
    const s = sidecarReads(tampered((c) => ((c['policies'] as Record<string, unknown>[])[1]!['id'] = 'allow-all')));
    expect(s).toEqual({
      ok: false,
      errors: [
        expect.stringMatching(
          /^cedar\.policies: the operator's parsed form of these policies is inconsistent \(policies\[1\] "allow-all": its JSON names it "no-delete"\); refused$/,
        ),
      ],
    });
  });

  test('a policy left out of the form: the compile fails', () => {
    const s = sidecarReads(tampered((c) => (c['policies'] as unknown[]).splice(0, 1)));
    expect(s).toMatchObject({ ok: false, errors: [expect.stringContaining('index 1, expected 0')] });
  });
});

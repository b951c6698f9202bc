// Operator → ConfigMap → sidecar with Cedar: the operator renders each policy's parsed Cedar form
// into the ConfigMap's cedar.json, next to config.yaml; the sidecar builds its policies from it (no
// cedar-wasm) when that form is for the text it has, and refuses a form that is malformed or
// contradicts itself.
import { parse as parseYaml } from 'yaml';
import { IdentitySchema } from '../api/config.js';
import { RenderedConfigSchema } from '../api/crds.js';
import { CONFIGMAP_CEDAR_KEY, CONFIGMAP_KEY, CONFIGMAP_NAME } from '../api/wellknown.js';
import type { ConfigMap } from '../kube/resources.js';
import { evaluate } from '../policy/cedar/evaluate.js';
import { CEDAR_JSON_BUDGET_BYTES, parseRendered, parseRenderedCedarText, renderNamespace, type PolicyObject } from '../operator/render.js';
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

interface Rendered {
  text: string;
  cedarText?: string;
}
const cm = (r: Rendered): ConfigMap => ({
  metadata: { name: CONFIGMAP_NAME, namespace: 'ns' },
  data: { [CONFIGMAP_KEY]: r.text, ...(r.cedarText !== undefined ? { [CONFIGMAP_CEDAR_KEY]: r.cedarText } : {}) },
});

/** The sidecar's path: the ConfigMap evaluated for this pod, then compiled into a snapshot. */
function sidecarReads(r: Rendered, env: Env = {}) {
  const o = evaluateConfigMap(cm(r), { namespace: 'ns', name: CONFIGMAP_NAME, identity, env });
  if (o.kind !== 'config') return o;
  return compileSnapshot(o.doc, identity, { hash: o.hash, generation: 1, ...(o.cedar ? { cedar: o.cedar } : {}) });
}

function rendered(cedar = POLICIES) {
  const r = renderNamespace([gp(cedar)], new Set(), null);
  if (!r.text || !r.cedarText) throw new Error([...r.byPolicy.values()].map((v) => JSON.stringify(v)).join('\n'));
  return { ...r, text: r.text, cedarText: r.cedarText };
}

type CedarDoc = { version: unknown; policies: Record<string, Record<string, unknown>> };
/** The rendered ConfigMap with its cedar.json changed. */
function tampered(change: (doc: CedarDoc) => void): Rendered {
  const r = rendered();
  const doc = JSON.parse(r.cedarText) as CedarDoc;
  change(doc);
  return { text: r.text, cedarText: JSON.stringify(doc) };
}
const policiesOf = (doc: CedarDoc) => doc.policies['p']!['policies'] as Record<string, unknown>[];

const call = (name: string, args: unknown) => ({
  identity,
  method: 'tools/call',
  source: 'bank',
  target: { kind: 'tool' as const, name },
  arguments: args,
  now: new Date('2026-11-21T10:00:00Z'),
});

test('the operator renders each policy’s parsed form into cedar.json, versioned and in the hash; config.yaml is as before', () => {
  const r = rendered();
  const doc = parseRenderedCedarText(r.cedarText)!;
  expect(doc.version).toBe(1);
  const cedar = doc.policies['p']!;
  expect(cedar.textSha256).toMatch(/^[0-9a-f]{64}$/);
  expect(cedar.policies.map((p) => [p.id, p.effect, p.index, p.line, p.column])).toEqual([
    ['small', 'permit', 0, 1, 1],
    ['no-delete', 'forbid', 1, 3, 1],
  ]);
  expect(cedar.policies[0]!.json).toMatchObject({ effect: 'permit', annotations: { id: 'small' } });
  expect(parseRendered(r.text)).toEqual(r.config);
  // config.yaml holds only what a sidecar that does not know cedar.json accepts (a strict schema).
  expect(Object.keys(r.config!.policies[0]!).sort()).toEqual(['generation', 'hash', 'name', 'priority', 'spec']);
  expect(RenderedConfigSchema.safeParse(parseYaml(r.text)).success).toBe(true);
  // The per-policy hash (what a sidecar compares to decide on a reload) covers the parsed form.
  const { spec, priority, hash } = r.config!.policies[0]!;
  expect(hash).toBe(configHash({ priority, podSelector: null, spec, cedar }));
  expect(hash).not.toBe(configHash({ priority, podSelector: null, spec }));
});

test('an invalid policy keeps its last good parsed form with its last good rendering', () => {
  const good = rendered();
  const bad = renderNamespace([gp('permit(')], new Set(), parseRendered(good.text), parseRenderedCedarText(good.cedarText));
  expect(bad.byPolicy.get('p')?.valid).toBe(false);
  expect(bad.text).toBe(good.text);
  expect(bad.cedarText).toBe(good.cedarText);
});

test('the sidecar builds its policies from the parsed form, and they decide as the text says', () => {
  const s = sidecarReads(rendered());
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  const cedar = s.snapshot.gates.cedar!;
  expect(cedar.from).toBe('json');
  expect(evaluate(cedar, call('transfer', { amount: 5 })).decision).toBe('allow');
  expect(evaluate(cedar, call('transfer', { amount: 5000 })).decision).toBe('deny');
  expect(evaluate(cedar, call('delete_all', { amount: 5 }))).toMatchObject({ decision: 'deny', policies: ['no-delete'] });
  // A request the closures cannot represent: the text, compiled in wasm now, decides it
  // (a time beyond Cedar's datetime; the policies do not read it, so wasm decides by the name).
  const far = { ...call('delete_all', { amount: 5 }), now: new Date('+010000-01-01T00:00:00Z') };
  expect(evaluate(cedar, far)).toEqual({ decision: 'deny', policies: ['no-delete'], reason: 'forbidden by no-delete' });
  // Text that is not valid Unicode: Cedar refuses it, so the decision is wasm's refusal, as without the form.
  expect(evaluate(cedar, call('delete_\ud800', { amount: 5 }))).toMatchObject({
    decision: 'error',
    reason: expect.stringMatching(/^Cedar evaluation failed: /),
  });
  cedar.dispose();
});

test('a pod whose ${VAR} gives other text compiles its own text', () => {
  const s = sidecarReads(rendered(), { SRC: 'other' });
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  expect(s.snapshot.gates.cedar!.from).toBe('wasm');
  expect(evaluate(s.snapshot.gates.cedar!, call('transfer', { amount: 5 })).decision).toBe('deny');
  s.snapshot.gates.cedar!.dispose();
});

test.each<[string, () => Rendered]>([
  ['a policy only wasm evaluates', () => rendered(`${POLICIES}\n@id("ip") forbid(principal, action, resource) when { ip("10.0.0.1").isLoopback() };`)],
  ['an older operator’s ConfigMap (no cedar.json)', () => ({ text: rendered().text })],
  ['a newer operator’s cedar.json (another version)', () => tampered((d) => (d.version = 2))],
  ['a cedar.json without this policy', () => tampered((d) => delete d.policies['p'])],
])('%s: the text is compiled in wasm, as before', (_what, r) => {
  const s = sidecarReads(r());
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  expect(s.snapshot.gates.cedar!.from).toBe('wasm');
  expect(evaluate(s.snapshot.gates.cedar!, call('delete_all', { amount: 5 })).decision).toBe('deny');
  s.snapshot.gates.cedar!.dispose();
});

describe('a malformed or self-contradicting parsed form is refused, not trusted', () => {
  test.each<[string, () => Rendered, RegExp]>([
    ['not JSON', () => ({ text: rendered().text, cedarText: '{"version": 1,' }), /cedar\.json: not JSON: /],
    ['a policy’s JSON that is not an object', () => tampered((d) => (policiesOf(d)[0]!['json'] = 'permit')), /cedar\.json: policies\.p\.policies\[0\]\.json: /],
    ['an unknown field', () => tampered((d) => (d.policies['p']!['extra'] = 1)), /cedar\.json: policies\.p: Unrecognized key/],
    ['a digest that is not one', () => tampered((d) => (d.policies['p']!['textSha256'] = 'x')), /cedar\.json: policies\.p\.textSha256: /],
  ])('the ConfigMap is invalid: %s', (_what, r, message) => {
    expect(sidecarReads(r())).toMatchObject({ kind: 'invalid', errors: [expect.stringMatching(message)] });
  });

  test('ids that are not what the JSON says: the compile fails, naming why', () => {
    const s = sidecarReads(tampered((d) => (policiesOf(d)[1]!['id'] = 'allow-all')));
    expect(s).toEqual({
      ok: false,
      errors: [
        `cedar.policies: the operator's parsed form of these policies is inconsistent (policies[1] "allow-all": its JSON names it "no-delete"); refused`,
      ],
    });
  });

  test('a policy left out of the form: the compile fails', () => {
    const s = sidecarReads(tampered((d) => policiesOf(d).splice(0, 1)));
    expect(s).toMatchObject({ ok: false, errors: [expect.stringContaining('index 1, expected 0')] });
  });
});

test('cedar.json is left out rather than push the ConfigMap past 1 MiB: the sidecar then compiles the text', () => {
  // ~330 KiB of policy text: config.yaml holds it once, cedar.json ~2.5 times over.
  const big = Array.from(
    { length: 1600 },
    (_, i) => `@id("p${i}") permit(principal, action, resource) when { resource.name == "tool-${i}-${'x'.repeat(150)}" };`,
  ).join('\n');
  const r = renderNamespace([gp(big)], new Set(), null);
  expect(r.text).not.toBeNull();
  expect(Buffer.byteLength(r.text!)).toBeLessThan(CEDAR_JSON_BUDGET_BYTES);
  expect(r.cedarText === null).toBe(true);
  const s = sidecarReads({ text: r.text! });
  if (!('ok' in s) || !s.ok) throw new Error(JSON.stringify(s));
  expect(s.snapshot.gates.cedar!.from).toBe('wasm');
  s.snapshot.gates.cedar!.dispose();
});

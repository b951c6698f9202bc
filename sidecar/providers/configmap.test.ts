// The pure half of the ConfigMap provider. The watching shell is tested against a real
// kube-apiserver in e2e/sidecar-configmap.test.ts.
import { stringify } from 'yaml';
import type { Identity } from '../../api/config.js';
import type { ConfigMap } from '../../kube/resources.js';
import { evaluateConfigMap, type EvaluateContext } from './configmap.js';

const identity: Identity = { namespace: 'team-a', serviceAccount: 'agent', pod: 'agent-0', labels: { app: 'agent', tier: 'gold' } };
const ctx: EvaluateContext = { namespace: 'team-a', name: 'thoughtgate-config', identity, env: { HOST: 'mcp.example.com', PORT: '8443' } };

const spec = (url: string, defaultAction = 'deny') => ({ sources: [{ name: 'gh', url }], rules: [], defaultAction });

function rendered(policies: unknown[]): string {
  return stringify({ apiVersion: 'thoughtgate.io/v1alpha1', kind: 'SidecarConfig', policies });
}

function cm(text: string | undefined): ConfigMap {
  return { metadata: { name: 'thoughtgate-config', namespace: 'team-a', resourceVersion: '1' }, data: text === undefined ? {} : { 'config.yaml': text } };
}

describe('evaluateConfigMap', () => {
  it('selects the policy for this pod by priority, then name, and resolves ${VAR} in it', () => {
    const text = rendered([
      // Deliberately not in selection order.
      { name: 'b-generic', priority: 0, generation: 1, hash: 'h-b', spec: spec('https://generic.example.com/mcp') },
      {
        name: 'a-gold',
        priority: 5,
        podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['gold'] }] },
        generation: 3,
        hash: 'h-a',
        spec: spec('https://${HOST}:${PORT}/mcp', 'forward'),
      },
      { name: 'other', priority: 9, podSelector: { matchLabels: { app: 'other' } }, generation: 1, hash: 'h-o', spec: spec('https://other.example.com/mcp') },
    ]);
    const out = evaluateConfigMap(cm(text), ctx);
    expect(out).toMatchObject({ kind: 'config', policy: 'a-gold', hash: 'h-a/a-gold' });
    if (out.kind !== 'config') throw new Error('unreachable');
    expect(out.doc.sources[0]!.url).toBe('https://mcp.example.com:8443/mcp');
    expect(out.doc.defaultAction).toBe('forward');
    // Defaults are applied by the schema.
    expect(out.doc.sources[0]!.expose).toEqual({ mode: 'all' });

    const silver = evaluateConfigMap(cm(text), { ...ctx, identity: { ...identity, labels: { app: 'agent', tier: 'silver' } } });
    expect(silver).toMatchObject({ kind: 'config', policy: 'b-generic', hash: 'h-b/b-generic' });
  });

  it('says "none" for no ConfigMap, no key, no policies, and no policy selecting the pod', () => {
    expect(evaluateConfigMap(null, ctx)).toEqual({ kind: 'none', reason: expect.stringContaining('ConfigMap team-a/thoughtgate-config does not exist') });
    expect(evaluateConfigMap(cm(undefined), ctx)).toEqual({ kind: 'none', reason: expect.stringContaining('has no key "config.yaml"') });
    expect(evaluateConfigMap(cm(rendered([])), ctx)).toEqual({
      kind: 'none',
      reason: expect.stringContaining('no GovernancePolicy in namespace team-a selects this pod'),
      policies: [],
    });
    const text = rendered([
      { name: 'x', priority: 0, podSelector: { matchLabels: { app: 'x' } }, generation: 1, hash: 'h', spec: spec('https://x.example.com') },
    ]);
    const out = evaluateConfigMap(cm(text), ctx);
    expect(out).toEqual({
      kind: 'none',
      reason: 'no GovernancePolicy in namespace team-a selects this pod (labels {"app":"agent","tier":"gold"})',
      policies: ['x'],
    });
  });

  it('reports invalid YAML with its position', () => {
    const out = evaluateConfigMap(cm('apiVersion: thoughtgate.io/v1alpha1\nkind: SidecarConfig\npolicies: [\n'), ctx);
    expect(out.kind).toBe('invalid');
    if (out.kind !== 'invalid') throw new Error('unreachable');
    expect(out.errors[0]).toMatch(/^ConfigMap team-a\/thoughtgate-config config\.yaml:\d+:\d+: /);
    expect(evaluateConfigMap(cm('a: 1\na: 2\n'), ctx).kind).toBe('invalid');
    expect(evaluateConfigMap(cm('- just\n- a list\n'), ctx)).toEqual({ kind: 'invalid', errors: [expect.stringContaining('expected a mapping')] });
  });

  it('rejects a document that is not a SidecarConfig, naming the path', () => {
    const wrongKind = stringify({ apiVersion: 'thoughtgate.io/v1alpha1', kind: 'Other', policies: [] });
    expect(evaluateConfigMap(cm(wrongKind), ctx)).toEqual({ kind: 'invalid', errors: [expect.stringContaining('kind:')] });
    const badSpec = rendered([{ name: 'p', priority: 0, generation: 1, hash: 'h', spec: { sources: 'nope' } }]);
    expect(evaluateConfigMap(cm(badSpec), ctx)).toEqual({ kind: 'invalid', errors: [expect.stringContaining('policies[0] (p).spec.sources')] });
    const extraKey = rendered([{ name: 'p', priority: 0, generation: 1, hash: 'h', spec: spec('https://x.example.com'), surprise: true }]);
    expect(evaluateConfigMap(cm(extraKey), ctx).kind).toBe('invalid');
  });

  it('rejects the selected policy when a variable it uses is unset, or its resolved value is invalid', () => {
    const text = rendered([{ name: 'p', priority: 0, generation: 1, hash: 'h', spec: spec('https://${MISSING}/mcp') }]);
    expect(evaluateConfigMap(cm(text), ctx)).toEqual({
      kind: 'invalid',
      errors: ['ConfigMap team-a/thoughtgate-config config.yaml: policies[0] (p).spec.sources[0].url: environment variable MISSING is not set'],
    });
    const badUrl = rendered([{ name: 'p', priority: 0, generation: 1, hash: 'h', spec: spec('${HOST}') }]);
    expect(evaluateConfigMap(cm(badUrl), ctx)).toEqual({
      kind: 'invalid',
      errors: [expect.stringContaining('policies[0] (p).spec.sources[0].url: not a URL')],
    });
  });

  it('does not resolve or validate the specs of policies that do not govern this pod', () => {
    const text = rendered([
      { name: 'mine', priority: 0, generation: 1, hash: 'h1', spec: spec('https://${HOST}/mcp') },
      { name: 'broken', priority: 0, podSelector: { matchLabels: { app: 'x' } }, generation: 1, hash: 'h2', spec: { sources: 'nope', unknownKey: 1 } },
    ]);
    expect(evaluateConfigMap(cm(text), ctx)).toMatchObject({ kind: 'config', policy: 'mine' });
  });

  it('does not resolve variables of policies that do not govern this pod', () => {
    const text = rendered([
      { name: 'mine', priority: 0, generation: 1, hash: 'h1', spec: spec('https://${HOST}/mcp') },
      { name: 'theirs', priority: 0, podSelector: { matchLabels: { app: 'x' } }, generation: 1, hash: 'h2', spec: spec('https://${ONLY_IN_THEIR_POD}/mcp') },
    ]);
    expect(evaluateConfigMap(cm(text), ctx)).toMatchObject({ kind: 'config', policy: 'mine' });
  });

  it('bounds alias expansion', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
      ...Array.from(
        { length: 8 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`,
      ),
    ].join('\n');
    expect(evaluateConfigMap(cm(bomb), ctx).kind).toBe('invalid');
  });
});

describe('credentials in the ConfigMap', () => {
  const withHeader = (value: unknown) =>
    rendered([
      {
        name: 'p',
        priority: 0,
        generation: 1,
        hash: 'h',
        spec: { ...spec('https://gh.example.com/mcp'), sources: [{ name: 'gh', url: 'https://gh.example.com/mcp', headers: { Authorization: value } }] },
      },
    ]);

  it('keeps a secretKeyRef as a reference for the sidecar to resolve', () => {
    const ref = { valueFrom: { secretKeyRef: { name: 'gh-token', key: 'token' } }, prefix: 'Bearer ' };
    const out = evaluateConfigMap(cm(withHeader(ref)), ctx);
    expect(out).toMatchObject({ kind: 'config' });
    if (out.kind === 'config') expect(out.doc.sources[0]!.headers).toEqual({ Authorization: ref });
  });

  it.each(['file', 'env'])('refuses valueFrom.%s, whoever wrote the ConfigMap', (kind) => {
    const out = evaluateConfigMap(cm(withHeader({ valueFrom: kind === 'file' ? { file: '/etc/passwd' } : { env: 'HOME' } })), ctx);
    expect(out).toEqual({
      kind: 'invalid',
      errors: [
        expect.stringContaining(
          `policies[0] (p).spec.sources[0].headers.Authorization.valueFrom.${kind}: valueFrom.${kind} is only allowed in a standalone thoughtgate.yaml`,
        ),
      ],
    });
  });
});

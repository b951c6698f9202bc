import { parse as parseYaml } from 'yaml';
import { parseRendered, renderNamespace, validatePolicy, type PolicyObject } from './render.js';
import { PolicyDocumentSchema } from '../api/config.js';

const gp = (name: string, spec: object, generation = 1): PolicyObject => ({ metadata: { name, namespace: 'ns', generation, uid: `uid-${name}` }, spec });
const base = { sources: [{ name: 'gh', url: 'https://${HOST}:${PORT}/mcp' }], defaultAction: 'forward' };

describe('validatePolicy', () => {
  test('a policy whose URL is only known in the pod (${HOST}:${PORT}) is valid, and rendered as written', () => {
    const v = validatePolicy(gp('a', base), new Set());
    expect(v.valid).toBe(true);
    if (v.valid) expect(v.rendered.spec).toMatchObject({ sources: [{ name: 'gh', url: 'https://${HOST}:${PORT}/mcp' }] });
  });

  test('schema, Cedar and channel problems are reported with paths', () => {
    expect(validatePolicy(gp('a', { ...base, defaultAction: 'maybe' }), new Set())).toEqual({
      valid: false,
      errors: [expect.stringMatching(/^spec\.defaultAction: expected one of/)],
    });
    const cedar = validatePolicy(
      gp('a', { ...base, rules: [{ match: {}, action: 'policy' }], cedar: { policies: 'permit(principal, action, resource' } }),
      new Set(),
    );
    expect(cedar).toEqual({ valid: false, errors: [expect.stringMatching(/^spec\.cedar\.policies:1:\d+: /)] });
    const channel = validatePolicy(
      gp('a', { ...base, rules: [{ match: { tool: 'x' }, action: 'approve', approval: { channel: 'finance' } }] }),
      new Set(['other']),
    );
    expect(channel).toEqual({ valid: false, errors: ['approval channel "finance" is referenced but no ApprovalChannel "finance" exists in namespace ns'] });
    const viaCedar = validatePolicy(gp('a', { ...base, cedar: { policies: '@approve("ops") permit(principal, action, resource);' } }), new Set());
    expect(viaCedar).toMatchObject({ valid: false, errors: [expect.stringContaining('"ops"')] });
  });
});

describe('renderNamespace', () => {
  test('orders by priority then name, and hashes the content', () => {
    const r = renderNamespace([gp('b', base), gp('a', base), gp('z', { ...base, priority: 5 })], new Set(), null);
    expect(r.config!.policies.map((p) => p.name)).toEqual(['z', 'a', 'b']);
    expect(r.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(parseRendered(r.text!)).toEqual(r.config);
    expect(parseYaml(r.text!).kind).toBe('SidecarConfig');
    // Same input, same text: the operator does not rewrite an unchanged ConfigMap.
    expect(renderNamespace([gp('a', base), gp('b', base), gp('z', { ...base, priority: 5 })], new Set(), null).text).toBe(r.text);
  });

  test('an invalid policy keeps its last good rendering; one never valid is left out', () => {
    const good = renderNamespace([gp('a', base, 1)], new Set(), null);
    const next = renderNamespace([gp('a', { ...base, defaultAction: 'nope' }, 2), gp('new', { ...base, defaultAction: 'nope' })], new Set(), good.config);
    expect(next.config!.policies).toEqual(good.config!.policies);
    expect(next.byPolicy.get('a')).toMatchObject({ valid: false, servingGeneration: 1 });
    expect(next.byPolicy.get('new')).toMatchObject({ valid: false, servingGeneration: undefined });
  });

  test('nothing valid and nothing served means no ConfigMap', () => {
    expect(renderNamespace([], new Set(), null)).toMatchObject({ config: null, text: null, hash: null });
    expect(renderNamespace([gp('a', { nope: 1 })], new Set(), null).config).toBeNull();
  });

  test('an unreadable current ConfigMap counts as none', () => {
    expect(parseRendered('kind: Something\n')).toBeNull();
    expect(parseRendered(': : :')).toBeNull();
    expect(parseRendered(undefined)).toBeNull();
  });
});

describe('credentials', () => {
  test('a secretKeyRef naming its Secret with ${VAR} is refused: the webhook mounts it by name', () => {
    const headers = { Authorization: { valueFrom: { secretKeyRef: { name: '${TOKEN_SECRET}', key: 'token' } } } };
    expect(validatePolicy(gp('a', { ...base, sources: [{ ...base.sources[0], headers }] }), new Set())).toEqual({
      valid: false,
      errors: [
        'spec.sources[0].headers.Authorization.valueFrom.secretKeyRef.name: ${VAR} is not substituted in a secretKeyRef: name the Secret and key as they are (the webhook mounts the Secret by this name)',
      ],
    });
  });

  test('so is one in auth.clientSecret, the other place a source names a Secret', () => {
    const auth = { mode: 'clientCredentials', clientId: 'c', clientSecret: { valueFrom: { secretKeyRef: { name: 'oauth', key: '${KEY}' } } } };
    expect(validatePolicy(gp('a', { ...base, sources: [{ ...base.sources[0], auth }] }), new Set())).toEqual({
      valid: false,
      errors: [
        'spec.sources[0].auth.clientSecret.valueFrom.secretKeyRef.key: ${VAR} is not substituted in a secretKeyRef: name the Secret and key as they are (the webhook mounts the Secret by this name)',
      ],
    });
  });
});

describe('A2A sources in the rendered ConfigMap', () => {
  const a2a = {
    sources: [
      {
        name: 'billing-agent',
        protocol: 'a2a',
        url: 'https://billing.internal:8443',
        a2a: { jsonrpc: '/a2a/jsonrpc', rest: '/a2a/rest', versions: ['1.0'], skillFrom: 'metadata.skill' },
        expose: { mode: 'allowlist', skills: ['invoice-*'] },
      },
    ],
    rules: [{ match: { source: 'billing-agent', method: 'message/send', skill: 'refund*' }, action: 'deny' }],
    defaultAction: 'forward',
  };

  test('protocol, the a2a block, expose.skills and match.skill pass through as written', () => {
    const r = renderNamespace([gp('agents', a2a)], new Set(), null);
    const spec = parseRendered(r.text!)!.policies[0]!.spec;
    expect(spec).toEqual(a2a);
    expect(PolicyDocumentSchema.parse(spec).sources[0]).toMatchObject({ protocol: 'a2a', a2a: a2a.sources[0]!.a2a, expose: a2a.sources[0]!.expose });
  });

  test('an a2a mistake is reported with its spec path', () => {
    const bad = { ...a2a, sources: [{ ...a2a.sources[0]!, protocol: undefined }] };
    expect(validatePolicy(gp('agents', bad), new Set())).toEqual({
      valid: false,
      errors: expect.arrayContaining(['spec.sources[0].a2a: the a2a block is only used with protocol: a2a']),
    });
  });
});

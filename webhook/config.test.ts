// The MutatingWebhookConfiguration's shape and defaults; e2e/webhook.test.ts applies it to a real
// apiserver and checks what its selectors and match conditions let through.
import { buildWebhookConfiguration } from './config.js';

describe('buildWebhookConfiguration', () => {
  it('defaults to Fail / 5 s, CREATE of pods only, and keeps system and operator namespaces out', () => {
    const cfg = buildWebhookConfiguration({
      name: 'thoughtgate',
      target: { service: { name: 'thoughtgate-webhook', namespace: 'tg' } },
      operatorNamespace: 'tg',
    }) as any;
    expect(cfg.metadata).toEqual({ name: 'thoughtgate', labels: { 'app.kubernetes.io/managed-by': 'thoughtgate-operator' } });
    const [wh] = cfg.webhooks;
    expect(wh).toMatchObject({
      name: 'pods.thoughtgate.io',
      failurePolicy: 'Fail',
      timeoutSeconds: 5,
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      reinvocationPolicy: 'Never',
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
      clientConfig: { service: { name: 'thoughtgate-webhook', namespace: 'tg', port: 443, path: '/mutate-pods' } },
    });
    expect(wh.clientConfig.caBundle).toBeUndefined();
    const names = { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'tg'] };
    expect(wh.namespaceSelector).toEqual({
      matchLabels: { 'thoughtgate.io/inject': 'enabled' },
      matchExpressions: [names, { key: 'thoughtgate.io/capture', operator: 'NotIn', values: ['required'] }],
    });
    expect(wh.objectSelector.matchExpressions).toContainEqual({ key: 'thoughtgate.io/inject', operator: 'NotIn', values: ['disabled'] });
    expect(wh.matchConditions.map((m: { name: string }) => m.name)).toEqual(['not-opted-out', 'not-injected-yet']);
  });

  it('sends every pod CREATE of a namespace labelled capture=required to a second webhook, opted out or not, so it can be denied', () => {
    const cfg = buildWebhookConfiguration({ name: 'thoughtgate', target: { url: 'https://x/' }, operatorNamespace: 'tg' }) as any;
    const [first, required] = cfg.webhooks;
    expect(cfg.webhooks).toHaveLength(2);
    expect(required.name).toBe('capture-required.pods.thoughtgate.io');
    expect(required.namespaceSelector).toEqual({
      matchLabels: { 'thoughtgate.io/inject': 'enabled', 'thoughtgate.io/capture': 'required' },
      matchExpressions: [first.namespaceSelector.matchExpressions[0]],
    });
    // Nothing filters pods out before the call: the webhook denies the opted-out ones.
    expect(required.objectSelector).toBeUndefined();
    expect(required.matchConditions).toBeUndefined();
    // The rest is the first webhook's: same target, failure policy, timeout, rules.
    const { name: _a, namespaceSelector: _b, objectSelector: _c, matchConditions: _d, ...rest } = first;
    expect(required).toMatchObject(rest);
  });

  it('takes a URL target, the policy, timeout and caBundle', () => {
    const cfg = buildWebhookConfiguration({
      name: 'x',
      target: { url: 'https://127.0.0.1:9443/' },
      operatorNamespace: 'tg',
      failurePolicy: 'Ignore',
      timeoutSeconds: 2,
      caBundle: 'Q0E=',
      excludedNamespaces: ['kube-system'],
    }) as any;
    expect(cfg.webhooks[0]).toMatchObject({
      failurePolicy: 'Ignore',
      timeoutSeconds: 2,
      clientConfig: { url: 'https://127.0.0.1:9443/mutate-pods', caBundle: 'Q0E=' },
    });
    expect(cfg.webhooks[0].namespaceSelector.matchExpressions[0].values).toEqual(['kube-system', 'tg']);
  });
});

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
    expect(wh.namespaceSelector).toEqual({
      matchLabels: { 'thoughtgate.io/inject': 'enabled' },
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'tg'] }],
    });
    expect(wh.objectSelector.matchExpressions).toContainEqual({ key: 'thoughtgate.io/inject', operator: 'NotIn', values: ['disabled'] });
    expect(wh.matchConditions.map((m: { name: string }) => m.name)).toEqual(['not-opted-out', 'not-injected-yet']);
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

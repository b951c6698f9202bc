// The caBundle patch: only webhooks whose bundle differs, pinned to the object and index read.
// CaInjector.inject against a real apiserver: e2e/webhook.test.ts.
import { caBundlePatch } from './ca-injector.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const A = '-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n';
const B = '-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n';

describe('caBundlePatch', () => {
  it('patches every webhook whose caBundle differs, guarded by the resourceVersion and each name', () => {
    const cfg = {
      metadata: { resourceVersion: '42' },
      webhooks: [
        { name: 'a', clientConfig: {} },
        { name: 'b', clientConfig: { caBundle: b64(B + A) } },
        { name: 'c', clientConfig: { caBundle: b64(A) } },
      ],
    };
    expect(caBundlePatch(cfg, B + A)).toEqual({
      webhooks: ['a', 'c'],
      ops: [
        { op: 'test', path: '/metadata/resourceVersion', value: '42' },
        { op: 'test', path: '/webhooks/0/name', value: 'a' },
        { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64(B + A) },
        { op: 'test', path: '/webhooks/2/name', value: 'c' },
        { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: b64(B + A) },
      ],
    });
  });

  it('is null when every webhook already trusts exactly the bundle (no write, so replicas never fight)', () => {
    expect(caBundlePatch({ metadata: { resourceVersion: '1' }, webhooks: [{ name: 'a', clientConfig: { caBundle: b64(A) } }] }, A)).toBeNull();
    expect(caBundlePatch({ metadata: { resourceVersion: '1' }, webhooks: [] }, A)).toBeNull();
  });

  it('removes a CA the Secret no longer holds (the bundle is set, not merged)', () => {
    const p = caBundlePatch({ metadata: { resourceVersion: '7' }, webhooks: [{ name: 'a', clientConfig: { caBundle: b64(B + A) } }] }, B);
    expect(p?.ops.at(-1)).toEqual({ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64(B) });
  });
});

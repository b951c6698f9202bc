import { captureReport, planCaptureReport, type ReportPod } from './capture-report-plan.js';
import type { KubeObject } from './kube-object.js';

/** A pod as the webhook leaves it: a captured one runs capture-init first. */
const pod = (name: string, sidecar: string, extra: Partial<ReportPod> = {}): ReportPod => ({
  metadata: { name, labels: { 'thoughtgate.io/sidecar': sidecar }, ...extra.metadata },
  spec: extra.spec ?? (sidecar === 'captured' ? { initContainers: [{ name: 'thoughtgate-capture', args: ['capture-init', '--uid', '7467'] }] } : {}),
  ...(extra.status ? { status: extra.status } : {}),
});
const policy = (name: string, capture?: unknown): KubeObject =>
  ({
    apiVersion: 'thoughtgate.io/v1alpha1',
    kind: 'GovernancePolicy',
    metadata: { name, namespace: 'agents' },
    status: capture ? { capture } : {},
  }) as KubeObject;

describe('capture report', () => {
  it('counts captured and not captured pods, names the bypassable ones, skips ended pods', () => {
    const r = captureReport([
      pod('b', 'captured'),
      pod('a', 'captured', {
        metadata: { name: 'a', labels: { 'thoughtgate.io/sidecar': 'captured' }, annotations: { 'thoughtgate.io/captured': '{"bypassable":["app"]}' } },
      }),
      pod('c', 'injected'),
      pod('done', 'captured', { status: { phase: 'Succeeded' } }),
      pod('odd', 'something-else'),
    ]);
    expect(r).toEqual({
      summary: '2/3',
      captured: 2,
      notCaptured: 1,
      bypassable: 1,
      capturedPods: ['a', 'b'],
      notCapturedPods: ['c'],
      bypassablePods: ['a'],
    });
  });

  it('counts a pod as captured only when it runs capture-init first: the label alone may be forged', () => {
    const r = captureReport([
      pod('real', 'captured'),
      pod('label-only', 'captured', { spec: {} }),
      pod('other-init-first', 'captured', { spec: { initContainers: [{ name: 'setup' }, { name: 'thoughtgate-capture', args: ['capture-init'] }] } }),
      pod('look-alike', 'captured', { spec: { initContainers: [{ name: 'thoughtgate-capture', args: ['sleep', '1'] }] } }),
    ]);
    expect([r.summary, r.capturedPods, r.notCapturedPods]).toEqual(['1/4', ['real'], ['label-only', 'look-alike', 'other-init-first']]);
  });

  it('is bounded: full counts, ten names each', () => {
    const r = captureReport(Array.from({ length: 500 }, (_, i) => pod(`p-${String(i).padStart(3, '0')}`, i % 2 ? 'captured' : 'injected')));
    expect([r.captured, r.notCaptured, r.summary]).toEqual([250, 250, '250/500']);
    expect(r.capturedPods).toHaveLength(10);
    expect(r.notCapturedPods[0]).toBe('p-000');
  });

  it('writes nothing for a namespace without injected pods, and removes a report whose pods are gone', () => {
    expect(planCaptureReport([policy('p')], [])).toEqual([]);
    expect(planCaptureReport([policy('p')], [pod('done', 'captured', { status: { phase: 'Failed' } })])).toEqual([]);
    expect(planCaptureReport([policy('p', captureReport([pod('a', 'captured')]))], [])).toEqual([{ policy: 'p', report: null }]);
  });

  it('writes only the policies whose report differs', () => {
    const current = captureReport([pod('a', 'captured')]);
    expect(
      planCaptureReport([policy('same', current), policy('stale', { ...current, captured: 0 }), policy('none')], [pod('a', 'captured')]).map((w) => w.policy),
    ).toEqual(['stale', 'none']);
  });
});

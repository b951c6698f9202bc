import { DEFAULTS } from '../cmd/operator.js';
import { checkCrds, checkCrdsPre, checkVersion, EXPECTED_CRDS } from './cluster-checks.js';
import { DEFAULT_NAMES, DEFAULT_NAMESPACE, flag, installationFrom } from './installation.js';
import type { Crd, Deployment, Installation, Lease, Read } from './model.js';
import { checkDeployment, checkLease } from './operator-checks.js';

const ok = <T>(value: T): Read<T> => ({ ok: true, value });
const forbidden: Read<never> = { ok: false, error: 'HTTP 403 Forbidden', category: 'forbidden' };
const now = new Date('2026-12-06T08:00:00Z');

const crd = (name: string, versions = [{ name: 'v1alpha1', served: true, storage: true }], established = true): Crd => ({
  metadata: { name },
  spec: { group: 'thoughtgate.io', names: { plural: name.split('.')[0]!, kind: 'X' }, versions },
  status: { conditions: [{ type: 'Established', status: established ? 'True' : 'False' }] },
});
const allCrds = () => EXPECTED_CRDS.map((e) => crd(e.name));

describe('installation names', () => {
  test('the defaults are the operator defaults', () => {
    expect(DEFAULT_NAMESPACE).toBe(DEFAULTS.namespace);
    expect(DEFAULT_NAMES.secret).toBe(DEFAULTS.secret);
    expect(DEFAULT_NAMES.webhookConfig).toBe(DEFAULTS.configName);
  });
  test('flags in both spellings, bare flags, absent flags', () => {
    const args = ['operator', '--webhook-config=tg', '--lease-name', 'l1', '--no-leader-election'];
    expect(flag(args, 'webhook-config')).toBe('tg');
    expect(flag(args, 'lease-name')).toBe('l1');
    expect(flag(args, 'no-leader-election')).toBe(true);
    expect(flag(args, 'webhook-secret')).toBeUndefined();
  });
  test("read from the chart's Deployment; cert-manager mode takes the mounted Secret", () => {
    const dep = (args: string[]): Deployment => ({
      metadata: { name: 'tg-thoughtgate-operator' },
      spec: {
        template: { spec: { containers: [{ name: 'operator', args }], volumes: [{ name: 'webhook-tls', secret: { secretName: 'tg-webhook' } }] } },
      },
    });
    expect(installationFrom(dep(['operator', '--webhook-secret=tg-webhook-tls', '--webhook-config=tg']), 'ns')).toEqual({
      namespace: 'ns',
      leaseName: 'thoughtgate-operator',
      leaderElection: true,
      webhook: true,
      webhookConfigName: 'tg',
      secretName: 'tg-webhook-tls',
      certManager: false,
    });
    expect(installationFrom(dep(['operator', '--webhook-cert-dir=/etc/x']), 'ns')).toMatchObject({ secretName: 'tg-webhook', certManager: true });
    expect(installationFrom(null, 'ns')).toMatchObject({
      secretName: DEFAULT_NAMES.secret,
      webhookConfigName: 'thoughtgate',
      leaseName: 'thoughtgate-operator',
    });
  });
});

describe('Kubernetes version', () => {
  test('1.30 and later pass, 1.29 fails naming why (the identity policy, native sidecars), providers\' "30+" minor is read', () => {
    expect(checkVersion(ok({ major: '1', minor: '33', gitVersion: 'v1.33.1' })).status).toBe('ok');
    expect(checkVersion(ok({ major: '1', minor: '30+', gitVersion: 'v1.30.4-gke.100' })).status).toBe('ok');
    expect(checkVersion(ok({ major: '2', minor: '0', gitVersion: 'v2.0.0' })).status).toBe('ok');
    const old = checkVersion(ok({ major: '1', minor: '29', gitVersion: 'v1.29.9' }));
    expect(old).toMatchObject({ status: 'fail', message: expect.stringContaining('older than 1.30') });
    expect(old.message).toContain('ValidatingAdmissionPolicy v1 (the ApprovalDecision identity check)');
    expect(old.message).toContain('native sidecars');
    expect(old.hint).toContain('upgrade');
    expect(checkVersion(ok({ major: '1', minor: '28', gitVersion: 'v1.28.9' })).status).toBe('fail');
    expect(checkVersion(ok({ major: '1', minor: '30+', gitVersion: 'weird' })).status).toBe('ok');
    expect(checkVersion(ok({ major: '1', minor: '29+', gitVersion: 'weird' })).status).toBe('fail');
    expect(checkVersion(ok({ major: '?', minor: '?', gitVersion: 'weird' })).status).toBe('warn');
    expect(checkVersion(forbidden).status).toBe('fail');
  });
});

describe('CRDs', () => {
  test('all present, served, stored and Established pass', () => {
    expect(checkCrds(ok(allCrds())).map((r) => r.status)).toEqual(EXPECTED_CRDS.map(() => 'ok'));
  });
  test('each way one can be wrong fails that CRD only', () => {
    const a = EXPECTED_CRDS[0]!.name;
    const others = () => EXPECTED_CRDS.slice(1).map((e) => crd(e.name));
    const cases: Array<[Crd[], string]> = [
      [[...others()], 'is missing'],
      [[crd(a, [{ name: 'v1alpha1', served: false, storage: true }]), ...others()], 'is not served'],
      [[crd(a, [{ name: 'v1beta1', served: true, storage: true }]), ...others()], 'has no version v1alpha1'],
      [
        [
          crd(a, [
            { name: 'v1alpha1', served: true, storage: false },
            { name: 'v1', served: true, storage: true },
          ]),
          ...others(),
        ],
        'v1 is',
      ],
      [[crd(a, undefined, false), ...others()], 'not Established'],
    ];
    for (const [crds, text] of cases) {
      const r = checkCrds(ok(crds));
      expect(r.map((x) => x.status)).toEqual(['fail', ...others().map(() => 'ok')]);
      expect(r[0]!.message).toContain(text);
      expect(r[0]!.hint).toBeTruthy();
    }
  });
  test('pre-install: absent or compatible pass, another stored version fails', () => {
    expect(checkCrdsPre(ok([])).map((r) => r.status)).toEqual(EXPECTED_CRDS.map(() => 'ok'));
    expect(checkCrdsPre(ok(allCrds())).map((r) => r.status)).toEqual(EXPECTED_CRDS.map(() => 'ok'));
    const old = crd(EXPECTED_CRDS[0]!.name, [{ name: 'v1alpha0', served: true, storage: true }]);
    const r = checkCrdsPre(ok([old]));
    expect(r[0]).toMatchObject({ status: 'fail', message: expect.stringContaining('incompatible version: v1alpha0 (stored)') });
    expect(checkCrdsPre(forbidden)[0]!.hint).toContain('cluster administrator');
  });
});

describe('operator', () => {
  const dep = (status: Deployment['status'], replicas = 2, generation = 3): Deployment => ({
    metadata: { name: 'thoughtgate-operator', generation },
    spec: { replicas },
    status,
  });
  test('available replicas', () => {
    expect(checkDeployment(ok(dep({ observedGeneration: 3, availableReplicas: 2, conditions: [{ type: 'Available', status: 'True' }] })), 'ns').status).toBe(
      'ok',
    );
    expect(checkDeployment(ok(dep({ observedGeneration: 3, availableReplicas: 1 })), 'ns').status).toBe('warn');
    expect(checkDeployment(ok(dep({ observedGeneration: 2, availableReplicas: 2 })), 'ns').status).toBe('warn');
    const none = checkDeployment(
      ok(dep({ availableReplicas: 0, conditions: [{ type: 'Available', status: 'False', message: 'MinimumReplicasUnavailable' }] })),
      'ns',
    );
    expect(none).toMatchObject({ status: 'fail', message: expect.stringContaining('no available replica') });
    expect(checkDeployment(ok(dep({}, 0)), 'ns').message).toContain('scaled to 0');
    const missing = checkDeployment(ok(null), 'tg');
    expect(missing).toMatchObject({ status: 'fail' });
    expect(missing.hint).toContain('--namespace');
  });
  const inst: Installation = {
    namespace: 'ns',
    leaseName: 'thoughtgate-operator',
    leaderElection: true,
    webhook: true,
    webhookConfigName: 'thoughtgate',
    secretName: 's',
    certManager: false,
  };
  const lease = (spec: Lease['spec']): Read<Lease | null> => ok({ metadata: { name: 'thoughtgate-operator' }, spec });
  test('a fresh Lease passes; stale, released, never renewed or missing fail', () => {
    expect(checkLease(lease({ holderIdentity: 'op-1', leaseDurationSeconds: 15, renewTime: '2026-12-06T07:59:50.000000Z' }), inst, now)).toMatchObject({
      status: 'ok',
      message: expect.stringContaining('op-1 leads'),
    });
    const stale = checkLease(lease({ holderIdentity: 'op-1', leaseDurationSeconds: 15, renewTime: '2026-12-06T07:50:00Z' }), inst, now);
    expect(stale).toMatchObject({ status: 'fail', message: expect.stringContaining('stale: op-1 last renewed it 600s ago') });
    expect(checkLease(lease({ holderIdentity: '', renewTime: '2026-12-06T07:59:59Z' }), inst, now).message).toContain('no holder');
    expect(checkLease(lease({ holderIdentity: 'x' }), inst, now).message).toContain('never renewed');
    expect(checkLease(ok(null), inst, now).message).toContain('no leader Lease');
    expect(checkLease(null, inst, now).status).toBe('skip');
    expect(checkLease(forbidden, inst, now).status).toBe('fail');
  });
});

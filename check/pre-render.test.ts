import type { AccessAnswer, CheckResult, PreSnapshot, Read, WebhookConfiguration } from './model.js';
import { checkOptions, withWaitDefault } from './options.js';
import { accessText, checkAccess, checkNoWebhookYet, installerQuestions, optionalAccessNote, preChecks } from './pre-checks.js';
import { exitCode, renderHuman, renderJson } from './render.js';

const ok = <T>(value: T): Read<T> => ({ ok: true, value });

describe('installer permissions', () => {
  test('the questions cover what the chart creates and grants, once each; namespaces only when it is missing', () => {
    const qs = installerQuestions('tg', true);
    const texts = qs.map(accessText);
    expect(new Set(texts).size).toBe(texts.length);
    for (const t of [
      'create customresourcedefinitions.apiextensions.k8s.io (cluster-wide)',
      'create mutatingwebhookconfigurations.admissionregistration.k8s.io (cluster-wide)',
      'create clusterroles.rbac.authorization.k8s.io (cluster-wide)',
      'create deployments.apps in tg',
      'create secrets in tg',
      'update leases.coordination.k8s.io in tg',
      'patch governancepolicies/status.thoughtgate.io (cluster-wide)',
    ])
      expect(texts).toContain(t);
    expect(texts).not.toContain('create namespaces (cluster-wide)');
    expect(installerQuestions('tg', false).map(accessText)).toContain('create namespaces (cluster-wide)');
  });
  test('all allowed pass; each refusal is listed with why', () => {
    const qs = installerQuestions('tg', true);
    expect(checkAccess(qs.map((q) => ({ ...q, allowed: true }))).status).toBe('ok');
    const answers: AccessAnswer[] = qs.map((q) => ({ ...q, allowed: q.resource !== 'clusterroles' }));
    const r = checkAccess(answers);
    expect(r.status).toBe('fail');
    expect(r.items).toHaveLength(4);
    expect(r.items?.[0]).toBe('get clusterroles.rbac.authorization.k8s.io (cluster-wide): the chart creates it');
  });
});

describe('permissions for optional chart values', () => {
  test('not asked, but named in --pre output: PrometheusRule, ServiceMonitor, cert-manager objects', () => {
    const note = optionalAccessNote('tg');
    expect(note).toMatchObject({ id: 'pre/rbac-optional', status: 'skip' });
    expect(note.items).toEqual([
      'prometheusRule.enabled: get, create, patch, delete prometheusrules.monitoring.coreos.com in tg',
      'metrics.serviceMonitor.enabled: get, create, patch, delete servicemonitors.monitoring.coreos.com in tg',
      'webhook.certManager.enabled: get, create, patch, delete certificates.cert-manager.io in tg, issuers.cert-manager.io in tg',
    ]);
    // Shown, and it does not change the verdict.
    expect(renderHuman([note], 'h')).toContain('· not asked: what chart values that are off by default also create');
    expect(exitCode([note])).toBe(0);
  });
});

describe('webhook already registered', () => {
  const cfg = (name: string, hooks: string[]): WebhookConfiguration => ({ metadata: { name }, webhooks: hooks.map((h) => ({ name: h })) });
  test('none passes; ours under any configuration name fails', () => {
    expect(checkNoWebhookYet(ok([cfg('other', ['a.example.com'])])).status).toBe('ok');
    const r = checkNoWebhookYet(ok([cfg('renamed', ['pods.thoughtgate.io'])]));
    expect(r).toMatchObject({ status: 'fail', items: ['renamed'] });
    expect(r.hint).toContain('already installed');
  });
});

describe('the whole pre-install plan', () => {
  test('a fresh cluster and an admin pass', () => {
    const s: PreSnapshot = {
      now: new Date(),
      namespace: 'tg',
      version: ok({ major: '1', minor: '33', gitVersion: 'v1.33.0' }),
      crds: ok([]),
      webhookConfigs: ok([]),
      namespaceExists: ok(false),
      access: installerQuestions('tg', false).map((q) => ({ ...q, allowed: true })),
    };
    expect(exitCode(preChecks(s))).toBe(0);
    expect(preChecks(s).map((r) => r.id)).toContain('pre/rbac-optional');
  });
});

describe('output', () => {
  const results: CheckResult[] = [
    { id: 'kubernetes/reachable', group: 'kubernetes-api', status: 'ok', message: 'the API server answers' },
    { id: 'operator/leader', group: 'operator', status: 'fail', message: 'Lease stale', hint: 'start the operator' },
    { id: 'namespaces/policies', group: 'namespaces', status: 'warn', message: 'no policy', items: ['b'], hint: 'apply one' },
    { id: 'policies', group: 'policies', status: 'skip', message: 'none' },
  ];
  test('human: groups, marks, items and hints; the verdict', () => {
    const text = renderHuman(results, 'header');
    expect(text).toContain('Kubernetes API\n--------------\n✔ the API server answers');
    expect(text).toContain('✖ Lease stale\n    hint: start the operator');
    expect(text).toContain('‼ no policy\n    b\n    hint: apply one');
    expect(text).toContain('· none');
    expect(text).toContain('Status check results are ✖ (1 failed, 1 warnings)');
    expect(renderHuman(results.slice(2), 'h')).toContain('Status check results are ✔ (1 warnings)');
  });
  test('exit status: a failure is 1, warnings are 0', () => {
    expect(exitCode(results)).toBe(1);
    expect(exitCode(results.slice(2))).toBe(0);
  });
  test('json: the documented document', () => {
    const doc = JSON.parse(renderJson(results, { mode: 'post', server: 'https://k', namespace: 'tg', time: new Date('2026-12-06T08:00:00Z') }));
    expect(doc).toEqual({
      schema: 'thoughtgate.io/check/v1',
      mode: 'post',
      server: 'https://k',
      namespace: 'tg',
      time: '2026-12-06T08:00:00.000Z',
      result: 'fail',
      summary: { ok: 1, warn: 1, fail: 1, skip: 1 },
      checks: results,
    });
  });
});

describe('flags', () => {
  test('defaults and durations', () => {
    expect(checkOptions({})).toEqual({
      pre: false,
      namespace: 'thoughtgate-system',
      output: 'human',
      waitMs: 0,
      settings: { certWarnMs: 14 * 86400_000, approvalWarnMs: 1800_000 },
    });
    expect(checkOptions({ pre: true, namespace: 'x', output: 'json', wait: '10s', 'approval-age-warning': '1h' })).toMatchObject({
      pre: true,
      namespace: 'x',
      output: 'json',
      waitMs: 10_000,
      settings: { approvalWarnMs: 3600_000 },
    });
    expect(() => checkOptions({ output: 'yaml' })).toThrow('--output must be human or json');
    expect(() => checkOptions({ wait: 'soon' })).toThrow('--wait');
  });
  test('a bare --wait takes the default', () => {
    expect(withWaitDefault(['--wait'])).toEqual(['--wait=5m']);
    expect(withWaitDefault(['--wait', '--pre'])).toEqual(['--wait=5m', '--pre']);
    expect(withWaitDefault(['--wait', '30s'])).toEqual(['--wait', '30s']);
  });
});

import { ApprovalDecisionSpecSchema, DECISION_POLICY_NAME, DECISION_PROBE_USERNAME as PROBE_USERNAME } from '../api/approval-decision.js';
import type { DecisionProbe, Read } from './model.js';
import { checkDecisionEnforced, decisionProbe, probeAnswer } from './decision-enforcement.js';

const ok = (value: DecisionProbe): Read<DecisionProbe> => ({ ok: true, value });
const status = (code: number, reason: string, message: string) =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
/** The API server's answer, read as observe.ts reads it. */
const refused = (code: number, reason: string, message: string) => ok(probeAnswer(code, status(code, reason, message), 'create a dry-run ApprovalDecision'));
// As kube-apiserver v1.33 words them (the first seen in e2e/check.test.ts).
const POLICY_DENIAL = `approvaldecisions.thoughtgate.io "thoughtgate-check-lh6qs" is forbidden: ValidatingAdmissionPolicy '${DECISION_POLICY_NAME}' with binding '${DECISION_POLICY_NAME}' denied request: spec.user.username must be your own username as the API server authenticated you (thoughtgate approve fills it in)`;
const RBAC_DENIAL =
  'approvaldecisions.thoughtgate.io is forbidden: User "system:serviceaccount:tg:viewer" cannot create resource "approvaldecisions" in API group "thoughtgate.io" in the namespace "tg"';

describe('the dry-run ApprovalDecision', () => {
  test('is a valid decision (the CRD would not refuse it first) in a name nobody authenticates as, created as a dry run', () => {
    const p = decisionProbe('thoughtgate-system');
    expect(p.path).toBe('/apis/thoughtgate.io/v1alpha1/namespaces/thoughtgate-system/approvaldecisions?dryRun=All');
    expect(p.body).toMatchObject({ apiVersion: 'thoughtgate.io/v1alpha1', kind: 'ApprovalDecision', metadata: { namespace: 'thoughtgate-system' } });
    expect((p.body.metadata as { name?: string; generateName?: string }).name).toBeUndefined();
    const spec = ApprovalDecisionSpecSchema.parse(p.body.spec);
    expect(spec.user).toEqual({ username: PROBE_USERNAME, groups: [] });
    expect(PROBE_USERNAME.startsWith('system:')).toBe(true);
  });
});

describe('what its answer proves', () => {
  test('refused by our policy (403 Forbidden as shipped, or 422 Invalid): ok', () => {
    expect(checkDecisionEnforced(refused(403, 'Forbidden', POLICY_DENIAL), 'tg')).toMatchObject({ id: 'approvals/decision-enforced', status: 'ok' });
    expect(checkDecisionEnforced(refused(422, 'Invalid', POLICY_DENIAL), 'tg').status).toBe('ok');
  });
  test('a 200 or 201 is an acceptance; a refusal that is not a Status (a proxy page) keeps its start', () => {
    expect(probeAnswer(201, '{}', 'x')).toEqual({ accepted: true });
    expect(probeAnswer(200, '{}', 'x')).toEqual({ accepted: true });
    const proxy = probeAnswer(502, '<html>bad gateway</html>', 'create a dry-run ApprovalDecision');
    expect(proxy).toMatchObject({ accepted: false, status: 502, message: expect.stringContaining('<html>bad gateway</html>') });
    expect(checkDecisionEnforced(ok(proxy), 'tg').status).toBe('warn');
  });
  test('accepted: fail, anyone can decide as anyone, with a hint naming the admission plugin and the policy check', () => {
    const r = checkDecisionEnforced(ok({ accepted: true }), 'tg');
    expect(r).toMatchObject({ status: 'fail', message: expect.stringContaining('ValidatingAdmissionPolicy not enforced: anyone can decide as anyone') });
    expect(r.hint).toContain('admission plugin');
    expect(r.hint).toContain('approvals/decision-policy');
  });
  test('a 403 from RBAC: warn, could not prove', () => {
    const r = checkDecisionEnforced(refused(403, 'Forbidden', RBAC_DENIAL), 'tg');
    expect(r).toMatchObject({ status: 'warn', message: expect.stringContaining('could not prove: no RBAC to create approvaldecisions (dry run)') });
    expect(r.hint).toContain('kubectl auth can-i create approvaldecisions.thoughtgate.io -n tg');
  });
  test('refused by something else (another policy, a webhook, the schema, the server): warn, never ok', () => {
    const other = "ValidatingAdmissionPolicy 'someone-elses' with binding 'x' denied request: no";
    for (const r of [
      refused(403, 'Forbidden', other),
      refused(422, 'Invalid', 'spec.user.username: Invalid value'),
      refused(500, 'InternalError', 'Internal error occurred: failed calling webhook'),
    ]) {
      const c = checkDecisionEnforced(r, 'tg');
      expect(c.status).toBe('warn');
      expect(c.message).toContain('could not prove');
      expect(c.hint).toBeTruthy();
    }
  });
  test('ApprovalDecisions not served, or no such namespace: skipped (the CRD and operator checks say why); no answer: fail', () => {
    expect(checkDecisionEnforced(refused(404, 'NotFound', 'the server could not find the requested resource'), 'tg').status).toBe('skip');
    expect(checkDecisionEnforced({ ok: false, error: 'connect ECONNREFUSED', category: 'network' }, 'tg').status).toBe('fail');
  });
});

import { decideHelp, decideOptions, decisionGenerateName } from './options.js';

describe('thoughtgate approve|reject options', () => {
  test('a name, a namespace and a reason; waits 30s by default', () => {
    expect(decideOptions('approve', ['t-1'], { namespace: 'team', reason: 'hotfix' })).toEqual({
      decision: 'Approve',
      name: 't-1',
      namespace: 'team',
      reason: 'hotfix',
      waitMs: 30_000,
    });
    expect(decideOptions('reject', ['t-1'], { timeout: '2m', context: 'prod', kubeconfig: '/k' })).toEqual({
      decision: 'Reject',
      name: 't-1',
      context: 'prod',
      kubeconfig: '/k',
      waitMs: 120_000,
    });
    expect(decideOptions('approve', ['t-1'], { 'no-wait': true }).waitMs).toBe(0);
  });

  test('--as, --as-group (repeated) and --as-uid are the impersonation over the kubeconfig', () => {
    expect(decideOptions('approve', ['t-1'], { as: 'alice', 'as-group': ['oncall', 'dev'], 'as-uid': 'u-1' }).impersonate).toEqual({
      user: 'alice',
      groups: ['oncall', 'dev'],
      uid: 'u-1',
    });
    // Groups alone: the kubeconfig user's "as" may name the user (else connecting says so).
    expect(decideOptions('approve', ['t-1'], { 'as-group': ['oncall'] }).impersonate).toEqual({ groups: ['oncall'] });
    expect(decideOptions('approve', ['t-1'], {}).impersonate).toBeUndefined();
  });

  test.each<[string, string[], Record<string, unknown>, RegExp]>([
    ['no name', [], {}, /name the ApprovalRequest/],
    ['two names', ['a', 'b'], {}, /one ApprovalRequest at a time/],
    ['a name that is no object name', ['../x'], {}, /not an ApprovalRequest name/],
    ['a bad namespace', ['a'], { namespace: 'A_B' }, /--namespace/],
    ['a bad timeout', ['a'], { timeout: 'soon' }, /--timeout/],
    ['a zero timeout', ['a'], { timeout: '0s' }, /greater than zero/],
    ['--timeout with --no-wait', ['a'], { timeout: '5s', 'no-wait': true }, /make no sense/],
    ['a reason too long', ['a'], { reason: 'x'.repeat(1025) }, /1024/],
    ['an empty --as', ['a'], { as: ' ' }, /--as: empty/],
    ['an empty --as-group', ['a'], { as: 'x', 'as-group': ['ok', ''] }, /--as-group: empty/],
  ])('%s is a usage error', (_what, positionals, flags, message) => {
    expect(() => decideOptions('approve', positionals, flags)).toThrow(message);
  });

  test('decisions are named after their request', () => {
    expect(decisionGenerateName('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b')).toBe('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b-');
    expect(decisionGenerateName(`${'a'.repeat(39)}-b`)).toBe(`${'a'.repeat(39)}-`);
  });

  test('the help names the flags and the RBAC it needs', () => {
    const h = decideHelp('reject');
    for (const s of [
      'Usage: thoughtgate reject NAME',
      '--namespace',
      '--reason',
      '--kubeconfig',
      '--context',
      '--timeout',
      '--no-wait',
      '--as <user>',
      '--as-group',
      '--as-uid',
      'interactiveMode',
      '130 interrupted',
      'deleting the request deletes it',
      'approvaldecisions.thoughtgate.io',
    ])
      expect(h).toContain(s);
  });
});

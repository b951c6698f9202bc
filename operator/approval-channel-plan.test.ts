// The ApprovalChannel controller's decisions: when to check, and the status for a check. The Slack
// and Kubernetes sides run in e2e/approvals.test.ts.
import * as k8s from '@kubernetes/client-node';
import { createLogger } from '../lib/log.js';
import { channelStatus, planChannelStatus, planCheck, stableJson, type CheckInput } from './approval-channel-plan.js';
import { SlackChannels } from './slack-channels.js';

const now = new Date('2030-01-01T00:00:00Z');
const later = new Date('2030-01-01T00:05:00Z');
const byType = (s: ReturnType<typeof channelStatus>) => Object.fromEntries(s.conditions.map((c) => [c.type, [c.status, c.reason]]));

describe('channelStatus', () => {
  test('a working token and channel: Ready, TokenValid, ChannelFound, with the workspace details', () => {
    const s = channelStatus(
      { check: { tokenOk: true, channelOk: true, approversOk: true, team: 'Acme', botUserId: 'UBOT', channelName: 'approvals', approverCount: 3 } },
      2,
      undefined,
      now,
    );
    expect(byType(s)).toEqual({ TokenValid: ['True', 'TokenValid'], ChannelFound: ['True', 'ChannelFound'], Ready: ['True', 'Ready'] });
    expect(s).toMatchObject({ observedGeneration: 2, team: 'Acme', botUser: 'UBOT', channelName: 'approvals' });
    expect(s.conditions.find((c) => c.type === 'Ready')!.message).toBe('approvals can be posted; 3 approvers after resolving user groups');
    expect(s.conditions.every((c) => c.observedGeneration === 2 && c.lastTransitionTime === now.toISOString())).toBe(true);
  });

  test('a refused token; a channel the bot cannot see; approvers that do not resolve', () => {
    expect(
      byType(channelStatus({ check: { tokenOk: false, channelOk: false, approversOk: false, error: 'Slack auth.test: invalid_auth: …' } }, 1, undefined, now)),
    ).toEqual({ TokenValid: ['False', 'TokenRefused'], ChannelFound: ['Unknown', 'TokenNotValid'], Ready: ['False', 'TokenRefused'] });
    expect(byType(channelStatus({ check: { tokenOk: true, channelOk: false, approversOk: false, error: 'channel_not_found' } }, 1, undefined, now))).toEqual({
      TokenValid: ['True', 'TokenValid'],
      ChannelFound: ['False', 'ChannelNotFound'],
      Ready: ['False', 'ChannelNotFound'],
    });
    expect(byType(channelStatus({ check: { tokenOk: true, channelOk: true, approversOk: false, error: 'no_such_subteam' } }, 1, undefined, now))).toEqual({
      TokenValid: ['True', 'TokenValid'],
      ChannelFound: ['True', 'ChannelFound'],
      Ready: ['False', 'ApproversUnresolved'],
    });
  });

  test('Slack unreachable: Unknown, not False (nothing is known to be wrong)', () => {
    const s = channelStatus(
      { check: { tokenOk: false, channelOk: false, approversOk: false, retryable: true, error: 'cannot reach Slack' } },
      1,
      undefined,
      now,
    );
    expect(byType(s)).toEqual({
      TokenValid: ['Unknown', 'SlackUnreachable'],
      ChannelFound: ['Unknown', 'SlackUnreachable'],
      Ready: ['Unknown', 'SlackUnreachable'],
    });
  });

  test('problems found before Slack is asked: a missing Secret, an invalid channel', () => {
    expect(byType(channelStatus({ problem: { where: 'token', reason: 'SecretNotFound', message: 'Secret "x" does not exist' } }, 1, undefined, now))).toEqual({
      TokenValid: ['False', 'SecretNotFound'],
      ChannelFound: ['Unknown', 'TokenNotValid'],
      Ready: ['False', 'SecretNotFound'],
    });
    expect(byType(channelStatus({ problem: { where: 'channel', reason: 'ChannelInvalid', message: 'bad' } }, 1, undefined, now))).toEqual({
      TokenValid: ['Unknown', 'ChannelInvalid'],
      ChannelFound: ['False', 'ChannelInvalid'],
      Ready: ['False', 'ChannelInvalid'],
    });
  });

  test('lastTransitionTime moves only when a status changes, so an unchanged check writes nothing', () => {
    const ok = { check: { tokenOk: true, channelOk: true, approversOk: true, approverCount: 1 } } as const;
    const first = channelStatus(ok, 1, undefined, now);
    const again = channelStatus(ok, 1, first.conditions, later);
    expect(stableJson(again)).toBe(stableJson(first));
    const broken = channelStatus({ check: { tokenOk: false, channelOk: false, approversOk: false } }, 1, first.conditions, later);
    expect(broken.conditions.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe(later.toISOString());
  });
});

test('stableJson ignores key order (the API server returns keys sorted)', () => {
  expect(stableJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe(stableJson({ a: [{ c: 2, d: 1 }], b: 1 }));
  expect(stableJson({ a: [1, 2] })).not.toBe(stableJson({ a: [2, 1] }));
});

describe('planCheck', () => {
  const base: CheckInput = { generation: 2, resolved: { ok: true, connKey: 'k1' }, last: undefined, now: 1_000_000, checkIntervalMs: 300_000, hasReady: true };

  test('never checked: check; a problem before Slack is reported without a call', () => {
    expect(planCheck(base)).toEqual({ do: 'check', fingerprint: '2 k1' });
    expect(planCheck({ ...base, resolved: { ok: false, where: 'token', reason: 'SecretNotFound', message: 'gone' } })).toEqual({
      do: 'report',
      fingerprint: '2 problem SecretNotFound gone',
      result: { problem: { where: 'token', reason: 'SecretNotFound', message: 'gone' } },
    });
  });

  test('checked recently with the same generation and token: skip, while a Ready condition exists', () => {
    const last = { fingerprint: '2 k1', at: 1_000_000 - 60_000, unsure: false };
    expect(planCheck({ ...base, last })).toEqual({ do: 'skip' });
    expect(planCheck({ ...base, last, hasReady: false })).toEqual({ do: 'check', fingerprint: '2 k1' });
  });

  test('a new generation, a rotated token, an unsure last check or an old one: check again', () => {
    const last = { fingerprint: '2 k1', at: 1_000_000 - 60_000, unsure: false };
    expect(planCheck({ ...base, last, generation: 3 })).toMatchObject({ do: 'check' });
    expect(planCheck({ ...base, last, resolved: { ok: true, connKey: 'k2' } })).toEqual({ do: 'check', fingerprint: '2 k2' });
    expect(planCheck({ ...base, last: { ...last, unsure: true } })).toMatchObject({ do: 'check' });
    expect(planCheck({ ...base, last: { ...last, at: 1_000_000 - 300_000 } })).toMatchObject({ do: 'check' });
  });
});

describe('planChannelStatus', () => {
  const ok = {
    check: { tokenOk: true, channelOk: true, approversOk: true, team: 'Acme', botUserId: 'UBOT', channelName: 'approvals', approverCount: 2 },
  } as const;

  test('a first check: the status is written, Ready transition as an Event, next look after the Secret poll', () => {
    const p = planChannelStatus({ result: ok, generation: 1, status: undefined, now, secretPollMs: 60_000 });
    expect(p.write).toMatchObject({ observedGeneration: 1, team: 'Acme', botUser: 'UBOT', channelName: 'approvals' });
    expect(p.transition).toEqual({
      type: 'Normal',
      reason: 'ChannelReady',
      ready: 'True',
      message: 'approvals can be posted; 2 approvers after resolving user groups',
    });
    expect(p).toMatchObject({ unsure: false, requeueMs: 60_000 });
  });

  test('the same result again writes nothing (keys come back sorted from the API server)', () => {
    const first = planChannelStatus({ result: ok, generation: 1, status: undefined, now, secretPollMs: 60_000 });
    const stored = JSON.parse(stableJson(first.write)) as Record<string, unknown>;
    expect(planChannelStatus({ result: ok, generation: 1, status: stored, now: later, secretPollMs: 60_000 })).toMatchObject({ write: null, transition: null });
  });

  test('details the check no longer reports are cleared; a Warning when Ready turns False', () => {
    const first = planChannelStatus({ result: ok, generation: 1, status: undefined, now, secretPollMs: 60_000 });
    const p = planChannelStatus({
      result: { check: { tokenOk: false, channelOk: false, approversOk: false, error: 'invalid_auth' } },
      generation: 1,
      status: first.write!,
      now: later,
      secretPollMs: 60_000,
    });
    expect(p.write).toMatchObject({ team: null, botUser: null, channelName: null });
    expect(p.transition).toMatchObject({ type: 'Warning', reason: 'TokenRefused', ready: 'False' });
  });

  test('Slack unreachable: unsure, looked at again within 30 s', () => {
    const p = planChannelStatus({
      result: { check: { tokenOk: false, channelOk: false, approversOk: false, retryable: true } },
      generation: 1,
      status: undefined,
      now,
      secretPollMs: 60_000,
    });
    expect(p).toMatchObject({ unsure: true, requeueMs: 30_000, transition: { type: 'Normal', reason: 'SlackUnreachable', ready: 'Unknown' } });
    expect(planChannelStatus({ result: ok, generation: 1, status: undefined, now, secretPollMs: 5000 }).requeueMs).toBe(5000);
  });
});

describe('an invalid spec: Kubernetes system users and groups as approvers', () => {
  const kc = new k8s.KubeConfig();
  // An API server nobody answers at: resolve() reads no Secret for an invalid spec.
  kc.loadFromClusterAndUser({ name: 'c', server: 'https://127.0.0.1:9', skipTLSVerify: true }, { name: 'u' });
  const resolveWith = (kubernetes: Record<string, unknown>) => {
    const channel = {
      apiVersion: 'thoughtgate.io/v1alpha1',
      kind: 'ApprovalChannel',
      metadata: { name: 'approvals', namespace: 'team', generation: 3 },
      spec: { slack: { channel: 'C0123', tokenSecretRef: { name: 't' } }, approvers: { users: ['U0123'], kubernetes } },
    };
    const channels = new SlackChannels({ kc, log: createLogger('error', () => undefined), channel: () => channel });
    return channels.resolve('team', 'approvals').finally(() => channels.close());
  };

  test.each<[string, Record<string, unknown>, string]>([
    ['a ServiceAccount user', { users: ['system:serviceaccount:agents:agent'] }, 'is a ServiceAccount: a workload could approve its own calls (self-approval)'],
    ['another system user', { users: ['system:anonymous'] }, 'is a Kubernetes system user, not a person'],
    ['system:authenticated', { groups: ['system:authenticated'] }, 'is a Kubernetes system group'],
    ['system:serviceaccounts', { groups: ['oncall', 'system:serviceaccounts'] }, '"system:serviceaccounts" is a Kubernetes system group'],
    ['system:masters', { groups: ['system:masters'] }, 'is a Kubernetes system group'],
  ])('%s: the channel is not Ready (ChannelInvalid), with a Warning Event saying why', async (_what, kubernetes, says) => {
    const r = await resolveWith(kubernetes);
    expect(r).toMatchObject({ ok: false, reason: 'ChannelInvalid', where: 'channel' });
    const plan = planCheck({ generation: 3, resolved: r as never, last: undefined, now: now.getTime(), checkIntervalMs: 300_000, hasReady: false });
    expect(plan.do).toBe('report');
    const s = planChannelStatus({
      result: (plan as Extract<typeof plan, { do: 'report' }>).result,
      generation: 3,
      status: undefined,
      now,
      secretPollMs: 60_000,
    });
    const ready = (s.write!.conditions as { type: string; status: string; reason: string; message: string }[]).find((c) => c.type === 'Ready')!;
    expect(ready).toMatchObject({ status: 'False', reason: 'ChannelInvalid' });
    expect(ready.message).toContain('approvers.kubernetes.');
    expect(ready.message).toContain(says);
    expect(s.transition).toMatchObject({ type: 'Warning', reason: 'ChannelInvalid', message: ready.message });
  });

  test('people and their own groups are fine', async () => {
    // Past the spec check, resolve() reads the token Secret (an unreachable API server here): the spec itself was accepted.
    await expect(resolveWith({ users: ['alice', 'oidc:bob'], groups: ['oncall', 'sre:system'] })).rejects.toThrow();
  });
});

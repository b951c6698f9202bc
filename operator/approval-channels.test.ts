// ApprovalChannel status as a pure function of a check; the Slack and Kubernetes sides run in
// e2e/approvals.test.ts.
import { apiUrlAllowed, channelStatus, DEFAULT_SLACK_API_URLS, stableJson } from './approval-channels.js';

const now = new Date('2030-01-01T00:00:00Z');
const later = new Date('2030-01-01T00:05:00Z');
const byType = (s: ReturnType<typeof channelStatus>) => Object.fromEntries(s.conditions.map((c) => [c.type, [c.status, c.reason]]));

describe('channelStatus', () => {
  test('a working token and channel: Ready, TokenValid, ChannelFound, with the workspace details', () => {
    const s = channelStatus({ check: { tokenOk: true, channelOk: true, approversOk: true, team: 'Acme', botUserId: 'UBOT', channelName: 'approvals', approverCount: 3 } }, 2, undefined, now);
    expect(byType(s)).toEqual({ TokenValid: ['True', 'TokenValid'], ChannelFound: ['True', 'ChannelFound'], Ready: ['True', 'Ready'] });
    expect(s).toMatchObject({ observedGeneration: 2, team: 'Acme', botUser: 'UBOT', channelName: 'approvals' });
    expect(s.conditions.find((c) => c.type === 'Ready')!.message).toBe('approvals can be posted; 3 approvers after resolving user groups');
    expect(s.conditions.every((c) => c.observedGeneration === 2 && c.lastTransitionTime === now.toISOString())).toBe(true);
  });

  test('a refused token; a channel the bot cannot see; approvers that do not resolve', () => {
    expect(byType(channelStatus({ check: { tokenOk: false, channelOk: false, approversOk: false, error: 'Slack auth.test: invalid_auth: …' } }, 1, undefined, now)))
      .toEqual({ TokenValid: ['False', 'TokenRefused'], ChannelFound: ['Unknown', 'TokenNotValid'], Ready: ['False', 'TokenRefused'] });
    expect(byType(channelStatus({ check: { tokenOk: true, channelOk: false, approversOk: false, error: 'channel_not_found' } }, 1, undefined, now)))
      .toEqual({ TokenValid: ['True', 'TokenValid'], ChannelFound: ['False', 'ChannelNotFound'], Ready: ['False', 'ChannelNotFound'] });
    expect(byType(channelStatus({ check: { tokenOk: true, channelOk: true, approversOk: false, error: 'no_such_subteam' } }, 1, undefined, now)))
      .toEqual({ TokenValid: ['True', 'TokenValid'], ChannelFound: ['True', 'ChannelFound'], Ready: ['False', 'ApproversUnresolved'] });
  });

  test('Slack unreachable: Unknown, not False (nothing is known to be wrong)', () => {
    const s = channelStatus({ check: { tokenOk: false, channelOk: false, approversOk: false, retryable: true, error: 'cannot reach Slack' } }, 1, undefined, now);
    expect(byType(s)).toEqual({ TokenValid: ['Unknown', 'SlackUnreachable'], ChannelFound: ['Unknown', 'SlackUnreachable'], Ready: ['Unknown', 'SlackUnreachable'] });
  });

  test('problems found before Slack is asked: a missing Secret, an invalid channel', () => {
    expect(byType(channelStatus({ problem: { where: 'token', reason: 'SecretNotFound', message: 'Secret "x" does not exist' } }, 1, undefined, now)))
      .toEqual({ TokenValid: ['False', 'SecretNotFound'], ChannelFound: ['Unknown', 'TokenNotValid'], Ready: ['False', 'SecretNotFound'] });
    expect(byType(channelStatus({ problem: { where: 'channel', reason: 'ChannelInvalid', message: 'bad' } }, 1, undefined, now)))
      .toEqual({ TokenValid: ['Unknown', 'ChannelInvalid'], ChannelFound: ['False', 'ChannelInvalid'], Ready: ['False', 'ChannelInvalid'] });
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

test('apiUrlAllowed: exact base URLs (trailing slash optional), or "*"', () => {
  expect(apiUrlAllowed('https://slack.com/api/', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('https://slack.com/api', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('https://slack-gov.com/api/', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('http://10.0.0.1/api/', DEFAULT_SLACK_API_URLS)).toBe(false);
  expect(apiUrlAllowed('https://slack.com.evil.example/api/', DEFAULT_SLACK_API_URLS)).toBe(false);
  expect(apiUrlAllowed('http://127.0.0.1:3999/api/', ['*'])).toBe(true);
});

test('stableJson ignores key order (the API server returns keys sorted)', () => {
  expect(stableJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe(stableJson({ a: [{ c: 2, d: 1 }], b: 1 }));
  expect(stableJson({ a: [1, 2] })).not.toBe(stableJson({ a: [2, 1] }));
});

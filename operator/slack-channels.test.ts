// Which Slack API base URLs an ApprovalChannel may name, and that a closed instance hands out no
// client; the clients themselves run against the fake Slack in e2e/approvals.test.ts.
import * as k8s from '@kubernetes/client-node';
import { createLogger } from '../lib/log.js';
import { apiUrlAllowed, DEFAULT_SLACK_API_URLS, SlackChannels } from './slack-channels.js';

test('apiUrlAllowed: exact base URLs (trailing slash optional), or "*"', () => {
  expect(apiUrlAllowed('https://slack.com/api/', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('https://slack.com/api', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('https://slack-gov.com/api/', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('http://10.0.0.1/api/', DEFAULT_SLACK_API_URLS)).toBe(false);
  expect(apiUrlAllowed('https://slack.com.evil.example/api/', DEFAULT_SLACK_API_URLS)).toBe(false);
  expect(apiUrlAllowed('http://127.0.0.1:3999/api/', ['*'])).toBe(true);
});

test('closed with its term: resolve() hands out no client, so a reconcile still running starts no Slack call', async () => {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:9' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  let lookedUp = 0;
  const channels = new SlackChannels({
    kc,
    log: createLogger('error', () => undefined),
    channel: () => {
      lookedUp++;
      return undefined;
    },
  });
  channels.close();
  await expect(channels.resolve('team-a', 'approvals')).rejects.toMatchObject({ code: 'closed', kind: 'permanent' });
  expect(lookedUp).toBe(0);
  expect(() => channels.pool.get('xoxb-1')).toThrow(expect.objectContaining({ code: 'closed' }));
});

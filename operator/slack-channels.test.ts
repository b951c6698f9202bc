// Which Slack API base URLs an ApprovalChannel may name; the clients themselves run against the
// fake Slack in e2e/approvals.test.ts.
import { apiUrlAllowed, DEFAULT_SLACK_API_URLS } from './slack-channels.js';

test('apiUrlAllowed: exact base URLs (trailing slash optional), or "*"', () => {
  expect(apiUrlAllowed('https://slack.com/api/', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('https://slack.com/api', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('https://slack-gov.com/api/', DEFAULT_SLACK_API_URLS)).toBe(true);
  expect(apiUrlAllowed('http://10.0.0.1/api/', DEFAULT_SLACK_API_URLS)).toBe(false);
  expect(apiUrlAllowed('https://slack.com.evil.example/api/', DEFAULT_SLACK_API_URLS)).toBe(false);
  expect(apiUrlAllowed('http://127.0.0.1:3999/api/', ['*'])).toBe(true);
});

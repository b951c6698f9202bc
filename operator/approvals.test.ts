// The operator's approval settings (flags → options) and metrics registration; the relay itself
// runs against a real API server and the fake Slack in e2e/approvals.test.ts.
import { Registry } from 'prom-client';
import { parseApprovalFlags } from './main.js';
import { approvalMetrics } from './approvals.js';

describe('parseApprovalFlags', () => {
  test('defaults are left to the operator; values are parsed', () => {
    expect(parseApprovalFlags({})).toEqual({});
    expect(parseApprovalFlags({ maxPending: '50', retention: '2h', slackTimeout: '5s', channelCheckInterval: '1m', slackApiUrls: ['https://slack.com/api/', '*'] })).toEqual({
      maxPending: 50, retentionMs: 7_200_000, slackRequestTimeoutMs: 5000, channelCheckIntervalMs: 60_000, slackApiUrls: ['https://slack.com/api/', '*'],
    });
  });

  test('bad values name their flag', () => {
    expect(() => parseApprovalFlags({ maxPending: '0' })).toThrow('--max-pending-approvals must be a whole number ≥ 1, got "0"');
    expect(() => parseApprovalFlags({ maxPending: '1e3' })).toThrow('--max-pending-approvals');
    expect(() => parseApprovalFlags({ retention: '10' })).toThrow(/^--approval-retention: invalid duration/);
    expect(() => parseApprovalFlags({ retention: '10s' })).toThrow('--approval-retention must be at least 60s');
    expect(() => parseApprovalFlags({ slackApiUrls: ['ftp://x/'] })).toThrow('--slack-api-url: not an http(s) URL: "ftp://x/"');
    expect(() => parseApprovalFlags({ slackApiUrls: ['slack'] })).toThrow('--slack-api-url: not a URL');
  });
});

test('approval metrics register once per registry (each leadership term reuses them)', async () => {
  const registry = new Registry();
  const a = approvalMetrics(registry);
  const b = approvalMetrics(registry);
  expect(b.open).toBe(a.open);
  expect(b.postsWaiting).toBe(a.postsWaiting);
  a.postsWaiting!.set(3);
  expect(await registry.metrics()).toMatch(/thoughtgate_operator_approval_posts_waiting 3/);
  a.decisions.inc({ outcome: 'Approved' });
  expect(await registry.metrics()).toMatch(/thoughtgate_operator_approval_decisions_total\{outcome="Approved"\} 1/);
});

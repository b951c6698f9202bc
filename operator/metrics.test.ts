// The approval metrics registration; the controllers that bump them run against a real API server
// and the fake Slack in e2e/approvals.test.ts.
import { Registry } from 'prom-client';
import { approvalMetrics } from './metrics.js';

test('approval metrics register once per registry (each leadership term reuses them)', async () => {
  const registry = new Registry();
  const a = approvalMetrics(registry);
  const b = approvalMetrics(registry);
  expect(b.open).toBe(a.open);
  expect(b.postsWaiting).toBe(a.postsWaiting);
  a.postsWaiting.set(3);
  expect(await registry.metrics()).toMatch(/thoughtgate_operator_approval_posts_waiting 3/);
  a.decisions.inc({ outcome: 'Approved' });
  expect(await registry.metrics()).toMatch(/thoughtgate_operator_approval_decisions_total\{outcome="Approved"\} 1/);
});

import { approvalChannelController } from './approval-channel-controller.js';
import { approvalDecisionController } from './approval-decision-controller.js';
import { approvalRequestController, type ApprovalSettings } from './approval-request-controller.js';
import { auditReportControllerWith } from './audit-report-controller.js';
import { captureReportController } from './capture-report-controller.js';
import type { ObjectKey } from './keys.js';
import { Manager, type ControllerContext, type ManagerOptions } from './manager.js';
import type { OperatorMetrics } from './metrics.js';
import { policyController } from './policy-controller.js';
import { rbacController } from './rbac-controller.js';
import { SlackChannels } from './slack-channels.js';
import { APPROVAL_CHANNELS } from './sources.js';
import { RateLimitMemories } from '../slack/index.js';

export interface OperatorOptions extends ManagerOptions {
  /** ApprovalRequest relay and ApprovalChannel checks (leader only). */
  approvals?: ApprovalOptions;
  /** The least time between two status.audit writes of a namespace; default AUDIT_REPORT_INTERVAL_MS (30 s). */
  auditReportIntervalMs?: number;
}

export interface ApprovalOptions extends ApprovalSettings {
  /** Slack API base URLs ApprovalChannels may use (spec.slack.apiUrl); '*' allows any. Default: Slack and GovSlack. */
  slackApiUrls?: string[];
  /** Per Slack request. Default 15 s. */
  slackRequestTimeoutMs?: number;
  /** Full ApprovalChannel check (auth.test, conversations.info) at least this often. Default 5 min. */
  channelCheckIntervalMs?: number;
  /** Re-read each channel's token Secret this often; a change is checked at once. Default 60 s. */
  secretPollMs?: number;
}

export interface Operator {
  metrics: OperatorMetrics;
  metricsPort: number;
  isLeader(): boolean;
  close(): Promise<void>;
}

export async function startOperator(o: OperatorOptions): Promise<Operator> {
  const a = o.approvals ?? {};
  // Both approval controllers use one set of Slack clients per term (one rate limiter per token);
  // the budget each token has spent is the process's, so a new term (a lost and regained lease)
  // resumes it instead of starting with full buckets.
  const rateMemories = new RateLimitMemories();
  const slack = (ctx: ControllerContext<ObjectKey>) =>
    ctx.shared(
      'slack-channels',
      () =>
        new SlackChannels({
          kc: ctx.kc,
          log: ctx.log,
          channel: (ns, name) => ctx.cache(APPROVAL_CHANNELS).get(name, ns),
          allowedApiUrls: a.slackApiUrls,
          requestTimeoutMs: a.slackRequestTimeoutMs,
          rateMemories,
        }),
      (s) => s.close(),
    );
  const manager = new Manager(o)
    .add(policyController)
    .add(rbacController)
    .add(captureReportController)
    .add(auditReportControllerWith({ minIntervalMs: o.auditReportIntervalMs }))
    .add(approvalRequestController(slack, a))
    .add(approvalDecisionController(slack))
    .add(approvalChannelController(slack, { checkIntervalMs: a.channelCheckIntervalMs, secretPollMs: a.secretPollMs }));
  await manager.start();
  o.log.info('operator started', { identity: o.identity, namespace: o.namespace, metrics: manager.metricsPort, leaderElection: o.leaderElection !== false });
  return {
    metrics: manager.metrics,
    metricsPort: manager.metricsPort,
    isLeader: () => manager.isLeader(),
    async close() {
      await manager.close();
      o.log.info('operator stopped', { identity: o.identity });
    },
  };
}

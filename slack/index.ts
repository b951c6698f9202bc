// The Slack approval adapter's public surface (sidecar standalone mode and the operator).
export { ApprovalPoller, DEFAULT_BACKOFF, DEFAULT_EXPIRY_GRACE_MS, nextPollDelay } from './poller.js';
export type { BackoffConfig, PendingApproval, PollerOptions, PollerResult, PollResult } from './poller.js';
export { SlackApprovalClient } from './client.js';
export type { ApprovalPostInput, ChannelCheck, PostedMessage, SlackChannelConfig } from './client.js';
export { SlackConnection, SlackConnectionPool, normalizeApiUrl } from './connection.js';
export type { BotIdentity, SlackConnectionOptions, SlackLog } from './connection.js';
export { SlackApprovalError, classifySlackError, isSlackApprovalError, REQUIRED_SCOPES } from './errors.js';
export { SlackRateLimiter, SLACK_RATE_BUDGETS, DEFAULT_RATE_BUDGET, RateLimitMemory, RateLimitMemories } from './rate-limiter.js';
export type { Priority, RateBudget, RateLimiterOptions } from './rate-limiter.js';
export { buildApprovalMessage, buildOutcomeMessage, checkMessageLimits, SLACK_LIMITS } from './message.js';
export type { ApprovalMessageInput, ApprovalOutcome, FinalStatus, SlackMessage } from './message.js';
export { decide, collectVotes, decideFromVotes } from './decision.js';
export type { Decision, ReactionRule, SlackReaction } from './decision.js';
export { ApproverDirectory, LruTtlCache } from './approvers.js';
export { redactArguments } from './redact.js';

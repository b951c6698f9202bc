// Every failure of a Slack call becomes one SlackApprovalError that says whether trying again can
// help. Callers fail closed either way: a retryable error keeps an approval pending (until its
// timeout), a permanent one ends it as "failed" with a message a person can act on.
// We classify by the `code` strings of @slack/web-api's errors rather than `instanceof`, so this
// module needs nothing from the (CJS) package at runtime.

import { describeError } from '../lib/describe-error.js';

export type SlackErrorKind = 'retryable' | 'permanent';

export class SlackApprovalError extends Error {
  override readonly name = 'SlackApprovalError';
  constructor(
    readonly kind: SlackErrorKind,
    /** Slack's error string (invalid_auth, channel_not_found…), or rate_limited, network, http_500, queue_full, closed, aborted, bad_response. */
    readonly code: string,
    /** The Slack method, e.g. chat.postMessage. */
    readonly method: string,
    message: string,
    /** For rate_limited: how long Slack asked us to wait. */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get retryable(): boolean {
    return this.kind === 'retryable';
  }
}

export function isSlackApprovalError(e: unknown): e is SlackApprovalError {
  return e instanceof SlackApprovalError;
}

// Slack's own "try later" answers; everything else Slack says with ok:false is about the request
// or the setup and will not change by retrying.
const RETRYABLE_PLATFORM = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited', 'rate_limited']);

const AUTH_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'not_allowed_token_type',
  'no_permission',
  'ekm_access_denied',
]);

/** Whether Slack's error says the token itself is refused (invalid, revoked, of the wrong type…). */
export function isAuthError(code: string): boolean {
  return AUTH_ERRORS.has(code);
}

/** The bot scopes the adapter needs; quoted in missing_scope messages. */
export const REQUIRED_SCOPES = ['chat:write', 'reactions:read', 'users:read', 'usergroups:read', 'channels:read', 'groups:read'] as const;

function hint(code: string, data: Record<string, unknown>): string {
  if (AUTH_ERRORS.has(code)) return 'the bot token is not valid (check the token Secret / environment variable)';
  switch (code) {
    case 'missing_scope':
      return `the bot token lacks the scope ${typeof data.needed === 'string' ? data.needed : '?'} (needs ${REQUIRED_SCOPES.join(', ')})`;
    case 'channel_not_found':
      return 'the channel does not exist or the bot cannot see it (check the channel id; invite the bot to private channels)';
    case 'not_in_channel':
      return 'the bot is not a member of the channel (invite it)';
    case 'is_archived':
      return 'the channel is archived';
    case 'message_not_found':
      return 'the approval message no longer exists (deleted?)';
    case 'cant_update_message':
      return 'the approval message was not posted by this bot';
    case 'no_such_subteam':
      return 'an approver user group does not exist';
    case 'user_not_found':
      return 'a user does not exist';
    case 'invalid_blocks':
    case 'msg_blocks_too_long':
    case 'invalid_blocks_format':
      return 'Slack refused the message layout (a ThoughtGate bug; please report it)';
    default:
      return 'Slack refused the call';
  }
}

/** How long a 429 asks us to wait, or undefined when `err` is not a rate-limit rejection. */
export function rateLimitRetryAfterMs(err: unknown): number | undefined {
  if (err instanceof SlackApprovalError) return err.code === 'rate_limited' ? err.retryAfterMs : undefined;
  const e = err as { code?: unknown; retryAfter?: unknown } | null;
  if (e && e.code === 'slack_webapi_rate_limited_error' && typeof e.retryAfter === 'number' && Number.isFinite(e.retryAfter)) {
    // Retry-After: 0 would mean "hammer again now"; wait at least a second.
    return Math.max(1, e.retryAfter) * 1000;
  }
  return undefined;
}

/** The WebClient wraps the network error in `original`; that one says what happened. */
function causeText(err: unknown): string {
  const original = (err as { original?: unknown }).original;
  return describeError(original instanceof Error ? original : err);
}

/** Maps anything a WebClient call can throw to a SlackApprovalError. */
export function classifySlackError(method: string, err: unknown): SlackApprovalError {
  if (err instanceof SlackApprovalError) return err;
  const e = err as { code?: unknown; data?: unknown; statusCode?: unknown } | null;
  const code = e && typeof e === 'object' ? e.code : undefined;
  const opts = { cause: err };
  const retryAfterMs = rateLimitRetryAfterMs(err);
  if (retryAfterMs !== undefined) {
    return new SlackApprovalError(
      'retryable',
      'rate_limited',
      method,
      `Slack ${method}: rate limited; retry after ${retryAfterMs / 1000}s`,
      retryAfterMs,
      opts,
    );
  }
  if (code === 'slack_webapi_platform_error') {
    const data = (e!.data ?? {}) as Record<string, unknown>;
    const slackCode = typeof data.error === 'string' ? data.error : 'unknown_error';
    const kind: SlackErrorKind = RETRYABLE_PLATFORM.has(slackCode) ? 'retryable' : 'permanent';
    return new SlackApprovalError(
      kind,
      slackCode,
      method,
      `Slack ${method}: ${slackCode}: ${kind === 'retryable' ? 'Slack is having trouble; will retry' : hint(slackCode, data)}`,
      undefined,
      opts,
    );
  }
  if (code === 'slack_webapi_http_error') {
    const status = typeof e!.statusCode === 'number' ? e!.statusCode : 0;
    const kind: SlackErrorKind = status >= 500 || status === 408 || status === 0 ? 'retryable' : 'permanent';
    return new SlackApprovalError(
      kind,
      `http_${status}`,
      method,
      `Slack ${method}: HTTP ${status}${kind === 'retryable' ? '; Slack unavailable, will retry' : ''}`,
      undefined,
      opts,
    );
  }
  if (code === 'slack_webapi_request_error') {
    return new SlackApprovalError('retryable', 'network', method, `Slack ${method}: cannot reach Slack: ${causeText(err)}`, undefined, opts);
  }
  // A plain Error from the client (e.g. a 429 without a usable Retry-After) or something unexpected:
  // treat as transient; the approval still fails closed at its timeout.
  return new SlackApprovalError('retryable', 'unknown', method, `Slack ${method}: ${describeError(err)}`, undefined, opts);
}

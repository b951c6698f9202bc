// Ephemeral notices to a clicker ("you are not an approver", "could not record your click"),
// sent in the background so that no envelope waits for them: chat.postEphemeral goes through the
// token's rate limiter (Tier 4, 80/min, burst 10 here), and awaiting it before the ack let a burst
// of non-approver clicks hold every in-flight slot of the receiver.
//
// Bounded three ways: at most one notice per (approval, user, kind) per window (a person clicking
// ten times is told once), at most `maxPending` sent at once (more are dropped, logged), and the
// memory of who was told is an LRU+TTL cache. A user not in the channel (user_not_in_channel) or
// gone (user_not_found) cannot be told: that is logged at debug level, not as a problem.
import { describeError } from '../lib/describe-error.js';
import { LruTtlCache } from './approvers.js';
import type { SlackApprovalClient } from './client.js';
import type { SlackLog } from './connection.js';
import { isSlackApprovalError } from './errors.js';
import type { Priority } from './rate-limiter.js';

export type NoticeKind = 'not_approver' | 'not_recorded';
/** What became of a notice: sent, failed (Slack or the response_url refused it), dropped (maxPending were being sent). */
export type NoticeResult = 'sent' | 'failed' | 'dropped';

export interface ClickNoticesOptions {
  /** One notice per (approval, user, kind) in this window (default 60 s). */
  windowMs?: number;
  /** (approval, user, kind) remembered (default 10 000). */
  maxEntries?: number;
  /** Notices being sent at once; more are dropped (default 50). */
  maxPending?: number;
  log?: SlackLog;
  /** Each notice's outcome (metrics); one already sent within the window is not one. */
  onResult?: (kind: NoticeKind, result: NoticeResult) => void;
}

const QUIET = new Set(['user_not_in_channel', 'user_not_found', 'channel_not_found', 'not_in_channel']);

export class ClickNotices {
  private readonly told: LruTtlCache<string, true>;
  private pending = 0;
  private readonly maxPending: number;

  constructor(private readonly opts: ClickNoticesOptions = {}) {
    this.told = new LruTtlCache({ maxEntries: opts.maxEntries ?? 10_000, ttlMs: opts.windowMs ?? 60_000 });
    this.maxPending = opts.maxPending ?? 50;
  }

  /** Notices being sent now. */
  get inFlight(): number {
    return this.pending;
  }

  /**
   * Starts sending `text` to `user` in `client`'s channel unless this (approval, user, kind) was
   * told within the window or too many are being sent; never waits, never throws. Returns whether
   * it started one.
   */
  tell(client: SlackApprovalClient, approvalId: string, user: string, kind: NoticeKind, text: string): boolean {
    const channel = client.config.channel;
    // Being told "try again" matters more than being told "you are not an approver".
    const priority: Priority = kind === 'not_recorded' ? 'normal' : 'low';
    return this.send(approvalId, user, kind, () => client.connection.call('chat.postEphemeral', { channel, user, text }, { priority, channel }));
  }

  /**
   * The same through the click's response_url (no bot token, no rate limiter): for a click whose
   * approval was not looked up (overloaded, lookup failed). The caller checks the URL's origin.
   */
  tellByUrl(responseUrl: string, approvalId: string, user: string, kind: NoticeKind, text: string): boolean {
    return this.send(approvalId, user, kind, async () => {
      const res = await fetch(responseUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, text }),
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`response_url answered HTTP ${res.status}`);
    });
  }

  private send(approvalId: string, user: string, kind: NoticeKind, post: () => Promise<unknown>): boolean {
    const key = `${approvalId}\0${user}\0${kind}`;
    if (this.told.get(key)) return false;
    if (this.pending >= this.maxPending) {
      this.opts.log?.('warn', `Slack Socket Mode: ${this.pending} notices being sent; not telling ${user} (${kind})`);
      this.report(kind, 'dropped');
      return false;
    }
    this.told.set(key, true);
    this.pending++;
    post()
      .then(
        () => this.report(kind, 'sent'),
        (e: unknown) => {
          const quiet = isSlackApprovalError(e) && QUIET.has(e.code);
          this.opts.log?.(quiet ? 'debug' : 'warn', `Slack Socket Mode: could not tell ${user} (${kind}): ${describeError(e)}`);
          this.report(kind, 'failed');
        },
      )
      .finally(() => {
        this.pending--;
      });
    return true;
  }

  private report(kind: NoticeKind, result: NoticeResult): void {
    try {
      this.opts.onResult?.(kind, result);
    } catch {
      /* a metrics hook must not break the notices */
    }
  }
}

// SocketModeReceiver: approval clicks pushed over Slack Socket Mode (one outbound WebSocket per
// Slack app, opened with the app-level token, xapp-…), instead of polling reactions.
//
// Per `interactive` envelope (parseInteraction maps it; anything not ours is acked and ignored):
//   1. the same (approval, user, action) already applied → ack, handler not called again;
//      the same one in flight (a redelivery while the first is still writing) → wait for it;
//   2. lookup(approvalId): the caller's record of the pending approval. undefined = not pending
//      (acked, nothing decided); a throw (e.g. not loaded yet after a leader change) leaves the
//      envelope unacked;
//   3. the click must come from that approval's own message (channel and ts), else it is ignored;
//   4. only allowlisted approvers (users, user-group members: approvers.ts) count; anyone else's
//      click is acked at once and they get an ephemeral "you are not an approver" in the
//      background (click-notices.ts: once per approval and user per window, never awaited), so
//      non-approvers cannot fill the in-flight slots (a modal submission: an error in the modal).
//      An approve that counts only through a user group is checked against a read of that group
//      at most `approveGroupMaxAgeMs` old (the cache keeps members 10 min; a person just removed
//      must not approve meanwhile);
//   5. Reject opens the reason modal (views.open with the click's trigger_id); the reject arrives
//      as its view_submission. If the modal cannot be opened, the click rejects without a reason
//      (a reject is the safe direction, and the person did press Reject);
//      Steps 2-5 share one deadline (`preVoteTimeoutMs`), so a 429 pause of the limiter cannot hold
//      a slot for its whole length;
//   6. onVote(vote) writes the vote durably; the envelope is acked only after it resolved.
// A click that is not recorded (overloaded, lookup threw, deadline passed, handler failed or too
// slow) is left unacked AND the clicker is told "could not record your click, click again" in the
// background: Slack documents redelivery only for Events API envelopes, so an unacked click may
// never come back, and it must not be lost silently.
// Bounded: at most 4 × `maxInFlight` clicks screened (steps 1-5) and `maxInFlight` in onVote at
// once (a flood screening turns away never takes a handler slot), handler retries, the
// applied-votes cache (LRU + TTL), the notices. The SDK's own reconnect is off: when
// apps.connections.open fails during its reconnect, @slack/socket-mode 3.1 leaves a rejected
// promise unhandled (which ends a Node process); this class reconnects itself after every close,
// including Slack's `disconnect` envelopes (refresh_requested, link_disabled), with a backoff that
// resets only once a connection stayed up `stableAfterMs` (a link that closes right after its
// hello does not reconnect in a tight loop). A permanent error (invalid_auth…) before the first
// connection fails start(); after one, it is retried with a long backoff (an egress proxy's 4xx or
// an auth incident must not stop approvals for good) and shows in `state`/onState. A failure is
// logged when it starts or its error changes, then at debug level until it connects: an outage is
// one line, not one per retry. firstAttempt() tells a start-up check how the first attempt went.
// close() stops taking envelopes (unacked ones go to the next holder of the socket, e.g. a new
// leader), waits for the handlers in flight, then disconnects.
import { SocketModeClient } from '@slack/socket-mode';
import { Backoff, type BackoffPolicy } from '../lib/backoff.js';
import { describeError } from '../lib/describe-error.js';
import { LruTtlCache } from './approvers.js';
import { ClickNotices, type ClickNoticesOptions, type NoticeKind, type NoticeResult } from './click-notices.js';
import type { SlackApprovalClient } from './client.js';
import { loggerFrom, normalizeApiUrl, type SlackLog } from './connection.js';
import { classifySlackError, isAuthError, SlackApprovalError } from './errors.js';
import { buildReasonModal, parseInteraction, REASON_BLOCK_ID, type Interaction, type VoteAction } from './interactions.js';

/** A pending approval as the caller knows it. */
export interface OpenApproval {
  /** The approval's channel (id, approvers) on its bot token's connection (ephemerals, views.open, group lookups). */
  client: SlackApprovalClient;
  /** ts of its approval message. */
  ts: string;
  /** Tool name, shown in the reason modal. */
  tool: string;
}

/** One allowlisted approver's vote from a button or the reason modal. */
export interface ApprovalVote {
  approvalId: string;
  /** Slack user id. */
  user: string;
  action: VoteAction;
  reason?: string;
  via: 'button' | 'modal';
  channel: string;
  ts: string;
  envelopeId: string;
}

export type ReceiverEvent =
  | { kind: 'connected' }
  | { kind: 'disconnected' }
  | { kind: 'connect_failed'; error: SlackApprovalError; willRetry: boolean }
  | { kind: 'vote'; vote: ApprovalVote; durationMs: number }
  | { kind: 'duplicate' | 'not_approver' | 'unknown_approval' | 'wrong_message' | 'reason_asked'; interaction: Interaction }
  | { kind: 'handler_failed'; interaction: Interaction; error: unknown }
  | { kind: 'overloaded' | 'ignored' | 'ack_failed'; envelopeId: string }
  /** An envelope acked, `durationMs` after it arrived (Slack's window is 3 s). */
  | { kind: 'acked'; envelopeId: string; durationMs: number }
  /** An ephemeral to a clicker: sent, failed (Slack refused it), or dropped (too many being sent). */
  | { kind: 'notice'; notice: NoticeKind; result: NoticeResult };

/**
 * Where the connection stands: `connecting` until the first hello, `reconnecting` while it is
 * down afterwards (retrying, even after a permanent error), `failed` when start() gave up (a
 * permanent error before any connection), `closed` after close().
 */
export type ReceiverState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed';

export interface SocketModeReceiverOptions {
  /** App-level token (xapp-…) with the connections:write scope. */
  appToken: string;
  /** Web API base URL (apps.connections.open); default Slack's. */
  apiUrl?: string;
  /** The pending approval for an id from a button; undefined when not pending; throw to leave the envelope unacked. */
  lookup(approvalId: string): OpenApproval | undefined | Promise<OpenApproval | undefined>;
  /**
   * Records the vote durably, then resolves; the envelope is acked only after that. Must be
   * idempotent by (approvalId, user, action): the applied-votes cache is bounded, and after a
   * leader change the new holder's cache is empty, so the same vote can come again.
   */
  onVote(vote: ApprovalVote): Promise<void>;
  /** Reject opens a modal asking for an optional reason (default true). */
  askReason?: boolean;
  /** Votes in the handler at once (default 32); clicks being screened before it: 4 × as many. More are left unacked, their clickers told. */
  maxInFlight?: number;
  /** Further attempts of a failed onVote before the envelope is left unacked (default 1). */
  retries?: number;
  /** Wait before a retry (default 200 ms). */
  retryDelayMs?: number;
  /** Stop waiting for onVote after this long and leave the envelope unacked (default 10 s; Slack's window is 3 s). */
  handlerTimeoutMs?: number;
  /** Applied (approval, user, action) remembered to ack redeliveries at once (default 10 000 for 1 h). */
  applied?: { maxEntries?: number; ttlMs?: number };
  /** Backoff between connection attempts (default 1 s doubling to 30 s, with jitter). */
  reconnect?: BackoffPolicy;
  /** The reconnect backoff resets only after a connection stayed up this long (default 10 s). */
  stableAfterMs?: number;
  /** Backoff after a permanent error (invalid_auth, a proxy's 4xx) once a connection was established (default 30 s doubling to 5 min). */
  permanentRetry?: BackoffPolicy;
  /** One deadline for lookup, group resolution and views.open of a click (default 2.5 s, inside Slack's 3 s). */
  preVoteTimeoutMs?: number;
  /** The ephemeral notices to clickers (not an approver, not recorded): window and bounds. */
  notices?: ClickNoticesOptions;
  /**
   * An approve that counts only through a user group is checked against a read of that group at
   * most this old (re-read otherwise, through the limiter: Tier 2, 16/min here); default 5 s.
   * Infinity keeps the directory's 10-minute cache.
   */
  approveGroupMaxAgeMs?: number;
  /** Called on every state change (metrics, readiness). */
  onState?: (state: ReceiverState, error?: SlackApprovalError) => void;
  /** Give up on one connection attempt (apps.connections.open + WebSocket + hello) after this long (default 30 s). */
  connectTimeoutMs?: number;
  /** Per-request timeout of apps.connections.open (default 15 s). */
  requestTimeoutMs?: number;
  /** How long close() waits for handlers in flight (default 5 s). */
  closeTimeoutMs?: number;
  log?: SlackLog;
  /** One call per thing that happened, for metrics. */
  onEvent?: (e: ReceiverEvent) => void;
}

const NOT_APPROVER = 'You are not an approver for this request, so your click was not counted.';
const NOT_RECORDED = 'Your click could not be recorded. Please click again.';

type Ack = (payload?: Record<string, unknown>) => Promise<void>;
/** Screening's result: ack with `reply`, or apply `vote`. */
type Step = { reply: Record<string, unknown> | undefined } | { vote: ApprovalVote; key: string; it: Interaction };
/** Envelopes being screened at once, per handler slot. */
const SCREENING_PER_SLOT = 4;

export class SocketModeReceiver {
  private readonly sm: SocketModeClient;
  private readonly applied: LruTtlCache<string, true>;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly backoff: Backoff;
  private readonly permanentBackoff: Backoff;
  private readonly notices: ClickNotices;
  /** Channel id → its client, learned from lookups: to tell a clicker when no lookup was made (overloaded). */
  private readonly clients = new LruTtlCache<string, SlackApprovalClient>({ maxEntries: 1000, ttlMs: 3_600_000 });
  private current: ReceiverState = 'idle';
  private lastError: SlackApprovalError | undefined;
  private established = false;
  private connectedAt = 0;
  private busy = 0;
  private screening = 0;
  private idle: (() => void)[] = [];
  private closing = false;
  private connecting = false;
  /** A close seen while the loop was finishing: run it again. */
  private again = false;
  private isConnected = false;
  /** The last connection closed before stableAfterMs: wait before the next attempt. */
  private flapped = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  private first: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;
  /** The first attempt's outcome (firstAttempt()). */
  private readonly attempted = settleOnce<SlackApprovalError | undefined>();
  /** The error code of the failures being retried now: logged once when it starts, not per retry. */
  private failing: string | undefined;

  constructor(private readonly opts: SocketModeReceiverOptions) {
    this.applied = new LruTtlCache({ maxEntries: opts.applied?.maxEntries ?? 10_000, ttlMs: opts.applied?.ttlMs ?? 3_600_000 });
    this.backoff = new Backoff(opts.reconnect ?? { baseMs: 1000, maxMs: 30_000 });
    this.permanentBackoff = new Backoff(opts.permanentRetry ?? { baseMs: 30_000, maxMs: 300_000 });
    this.notices = new ClickNotices({
      ...(opts.log ? { log: opts.log } : {}),
      onResult: (notice, result) => this.emit({ kind: 'notice', notice, result }),
      ...opts.notices,
    });
    this.sm = new SocketModeClient({
      appToken: opts.appToken,
      autoReconnectEnabled: false,
      logger: loggerFrom(opts.log),
      // A 429 on apps.connections.open (Tier 1) comes back at once with its Retry-After, which the
      // connection loop honours, instead of the WebClient sleeping inside the attempt.
      clientOptions: {
        slackApiUrl: normalizeApiUrl(opts.apiUrl),
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        timeout: opts.requestTimeoutMs ?? 15_000,
      },
    });
    this.sm.on('connected', () => {
      this.isConnected = true;
      this.established = true;
      this.connectedAt = Date.now();
      this.lastError = undefined;
      this.failing = undefined;
      this.attempted.resolve(undefined);
      this.opts.log?.('info', 'Slack Socket Mode connected');
      this.emit({ kind: 'connected' });
      this.setState('connected');
    });
    this.sm.on('disconnected', () => {
      const was = this.isConnected;
      this.isConnected = false;
      if (was) {
        // Only a connection that stayed up resets the backoff: one that closes right after its
        // hello (a flapping link, a proxy) must not reconnect, and call apps.connections.open, at once.
        if (Date.now() - this.connectedAt >= (this.opts.stableAfterMs ?? 10_000)) {
          this.backoff.reset();
          this.permanentBackoff.reset();
          this.flapped = false;
        } else this.flapped = true;
        this.opts.log?.('info', 'Slack Socket Mode disconnected');
        this.emit({ kind: 'disconnected' });
      }
      if (this.closing) return;
      this.setState('reconnecting');
      if (this.connecting) this.again = true;
      else void this.connect();
    });
    this.sm.on('interactive', (e: { ack: Ack; envelope_id: string; body: unknown }) => {
      void this.onEnvelope(e.envelope_id, e.body, e.ack);
    });
    // Anything else the app is subscribed to (events_api, slash_commands…) is not ours: acked at
    // once, so Slack does not deliver it again and again.
    this.sm.on('slack_event', (e: { type: string; ack: Ack; envelope_id?: string }) => {
      if (e.type === 'interactive' || e.envelope_id === undefined || this.closing) return;
      this.emit({ kind: 'ignored', envelopeId: e.envelope_id });
      void this.ack(e.ack, e.envelope_id, undefined, Date.now());
    });
  }

  /** Connects; resolves once connected the first time. Rejects on a permanent error (bad app token) or close(). */
  start(): Promise<void> {
    if (!this.first) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      this.first = { promise, resolve, reject };
      void this.connect();
    }
    return this.first.promise;
  }

  /**
   * The first connection attempt's outcome, once start() made it: undefined when it connected, else
   * its error (retryable: the receiver keeps trying; not: start() rejected). For a check at start.
   */
  firstAttempt(): Promise<SlackApprovalError | undefined> {
    return this.attempted.promise;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** Where the connection stands (see ReceiverState); `error` is the last failed attempt's while not connected. */
  get state(): ReceiverState {
    return this.current;
  }

  get error(): SlackApprovalError | undefined {
    return this.isConnected ? undefined : this.lastError;
  }

  /** Envelopes being processed now (screened or in the handler). */
  get inFlight(): number {
    return this.busy + this.screening;
  }

  /** Stops taking envelopes, waits for handlers in flight (up to closeTimeoutMs), then disconnects. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.setState('closed');
    clearTimeout(this.retryTimer);
    this.wake?.();
    const closedError = new SlackApprovalError('permanent', 'closed', 'apps.connections.open', 'Slack Socket Mode: closed');
    this.first?.reject(closedError);
    this.attempted.resolve(closedError);
    if (this.busy > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.closeTimeoutMs ?? 5000);
        this.idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.sm.disconnect();
    this.isConnected = false;
  }

  private setState(state: ReceiverState): void {
    if (this.current === state || (this.current === 'closed' && state !== 'closed')) return;
    this.current = state;
    try {
      this.opts.onState?.(state, this.lastError);
    } catch {
      /* a metrics hook must not break the receiver */
    }
  }

  private emit(e: ReceiverEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      /* a metrics hook must not break the receiver */
    }
  }

  /**
   * The connection loop: one at a time, backoff between attempts (also before the first one when
   * the last connection flapped). A permanent error stops it only before the first connection.
   */
  private async connect(): Promise<void> {
    if (this.connecting || this.closing) return;
    this.connecting = true;
    this.again = false;
    try {
      let wait = this.flapped ? this.backoff.next() : 0;
      while (!this.closing) {
        if (wait > 0) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            this.retryTimer = setTimeout(resolve, wait);
          });
          this.wake = undefined;
          if (this.closing) return;
        }
        this.setState(this.established ? 'reconnecting' : 'connecting');
        try {
          await this.attempt();
          this.first?.resolve();
          return;
        } catch (e) {
          if (this.closing) return;
          const next = this.failedAttempt(e);
          if (next === undefined) return;
          wait = next;
        }
      }
    } finally {
      this.connecting = false;
      // The socket closed between the hello and here: the 'disconnected' listener saw `connecting` and left it to us.
      if (this.again && !this.closing && !this.isConnected) void this.connect();
    }
  }

  /** A failed attempt: counted, logged (once per failure streak), and the wait before the next one; undefined when it gives up. */
  private failedAttempt(e: unknown): number | undefined {
    const error = classifySlackError('apps.connections.open', e);
    this.lastError = error;
    this.attempted.resolve(error);
    const willRetry = error.retryable || this.established;
    this.emit({ kind: 'connect_failed', error, willRetry });
    const why = isAuthError(error.code) ? 'the app-level token (xapp-…) is not valid or lacks connections:write' : error.message;
    if (!willRetry) {
      this.opts.log?.('error', `Slack Socket Mode: cannot connect, giving up: ${error.code}: ${why}`);
      this.setState('failed');
      this.first?.reject(error);
      return undefined;
    }
    const wait = error.retryable ? Math.max(this.backoff.next(), error.retryAfterMs ?? 0) : this.permanentBackoff.next();
    // Logged when the failure starts (or changes), not at every retry of an outage.
    const repeat = this.failing === error.code;
    this.failing = error.code;
    this.opts.log?.(
      repeat ? 'debug' : error.retryable ? 'warn' : 'error',
      `Slack Socket Mode: cannot connect (${error.retryable ? error.message : `${error.code}: ${why}`}); retrying in ${wait} ms${repeat ? '' : ' (further failures alike are logged at debug level until it connects)'}`,
    );
    this.setState('reconnecting');
    return wait;
  }

  private async attempt(): Promise<void> {
    const limit = this.opts.connectTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new SlackApprovalError('retryable', 'timeout', 'apps.connections.open', `Slack Socket Mode: no hello within ${limit} ms`)),
        limit,
      );
    });
    const started = this.sm.start();
    started.catch(() => {});
    try {
      await Promise.race([started, timeout]);
    } catch (e) {
      // A hung attempt is torn down before the next one starts.
      if (e instanceof SlackApprovalError && e.code === 'timeout') await this.sm.disconnect().catch(() => {});
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private async onEnvelope(envelopeId: string, body: unknown, ack: Ack): Promise<void> {
    // Closing (e.g. leadership lost): leave it unacked so Slack gives it to the next connection.
    if (this.closing) return;
    const arrived = Date.now();
    const it = parseInteraction(body);
    if (!it) {
      this.emit({ kind: 'ignored', envelopeId });
      return this.ack(ack, envelopeId, undefined, arrived);
    }
    // Two stages, bounded apart: screening (lookup, approver check, modal; cheap waits, bounded
    // by the pre-vote deadline) and the handler (onVote, at most maxInFlight). A flood of clicks
    // that screening turns away (non-approvers, not pending) never takes a handler slot.
    const max = this.opts.maxInFlight ?? 32;
    if (this.screening >= max * SCREENING_PER_SLOT) return this.overloaded(it, envelopeId);
    this.screening++;
    let step: Step;
    try {
      step = await this.process(it, envelopeId);
    } catch (error) {
      return this.notRecorded(it, error);
    } finally {
      this.screening--;
    }
    if (!('vote' in step)) return this.ack(ack, envelopeId, step.reply, arrived);
    // Closing (leadership lost while screening): leave it for the next holder of the socket.
    if (this.closing) return;
    if (this.busy >= max) return this.overloaded(it, envelopeId);
    this.busy++;
    try {
      await this.apply(step);
      await this.ack(ack, envelopeId, undefined, arrived);
    } catch (error) {
      this.notRecorded(it, error);
    } finally {
      this.busy--;
      if (this.busy === 0) for (const f of this.idle.splice(0)) f();
    }
  }

  private overloaded(it: Interaction, envelopeId: string): void {
    this.opts.log?.('warn', `Slack Socket Mode: ${this.busy + this.screening} envelopes in flight; ${envelopeId} not processed (left unacknowledged)`);
    this.emit({ kind: 'overloaded', envelopeId });
    this.tellNotRecorded(it);
  }

  private notRecorded(it: Interaction, error: unknown): void {
    this.opts.log?.('warn', `Slack Socket Mode: ${it.action} by ${it.user} on ${it.approvalId} not recorded (left unacknowledged): ${describeError(error)}`);
    this.emit({ kind: 'handler_failed', interaction: it, error });
    this.tellNotRecorded(it);
  }

  /** Acks (`arrived`: when the envelope came, for the envelope-to-ack time). */
  private async ack(ack: Ack, envelopeId: string, payload?: Record<string, unknown>, arrived?: number): Promise<void> {
    try {
      await ack(payload);
      if (arrived !== undefined) this.emit({ kind: 'acked', envelopeId, durationMs: Date.now() - arrived });
    } catch (e) {
      // The socket went away: Slack delivers it again, and the applied-votes cache acks it at once.
      this.opts.log?.('warn', `Slack Socket Mode: could not acknowledge ${envelopeId}: ${describeError(e)}`);
      this.emit({ kind: 'ack_failed', envelopeId });
    }
  }

  /**
   * "Click again", in the background: through the click's response_url (Slack's hooks host, or the
   * configured API's origin; no bot token, not through the limiter, which may be what is slow),
   * else through the channel's bot token when an earlier lookup showed which client it is.
   * A modal submission left unacked shows Slack's own error in the modal, which stays open.
   */
  private tellNotRecorded(it: Interaction): void {
    if (it.kind !== 'button') return;
    const client = this.clients.get(it.channel);
    if (it.responseUrl && this.trustedResponseUrl(it.responseUrl)) this.notices.tellByUrl(it.responseUrl, it.approvalId, it.user, 'not_recorded', NOT_RECORDED);
    else if (client) this.notices.tell(client, it.approvalId, it.user, 'not_recorded', NOT_RECORDED);
    else this.opts.log?.('warn', `Slack Socket Mode: cannot tell ${it.user} that their click on ${it.approvalId} was not recorded`);
  }

  /** Only Slack's hooks host (or the API URL's origin, e.g. a test double): a payload's URL is not fetched blindly. */
  private trustedResponseUrl(u: string): boolean {
    try {
      const url = new URL(u);
      return (url.protocol === 'https:' && url.hostname === 'hooks.slack.com') || url.origin === new URL(normalizeApiUrl(this.opts.apiUrl)).origin;
    } catch {
      return false;
    }
  }

  /** Screening: what to ack with, or the vote to apply; throws to leave the envelope unacked. */
  private async process(it: Interaction, envelopeId: string): Promise<Step> {
    const key = `${it.approvalId}\0${it.user}\0${it.action}`;
    const running = this.inflight.get(key);
    if (this.applied.get(key) || running !== undefined) {
      if (running !== undefined) await running;
      this.emit({ kind: 'duplicate', interaction: it });
      return { reply: undefined };
    }
    const deadline = Date.now() + (this.opts.preVoteTimeoutMs ?? 2500);
    const approval = await beforeDeadline(
      Promise.resolve().then(() => this.opts.lookup(it.approvalId)),
      deadline,
      'the lookup',
    );
    if (!approval) {
      this.opts.log?.('info', `Slack Socket Mode: ${it.action} by ${it.user} on ${it.approvalId}, which is not pending; ignored`);
      this.emit({ kind: 'unknown_approval', interaction: it });
      return {
        reply:
          it.kind === 'reason' ? { response_action: 'errors', errors: { [REASON_BLOCK_ID]: 'This request is no longer waiting for a decision.' } } : undefined,
      };
    }
    const { client } = approval;
    if (client.config.channel !== it.channel || approval.ts !== it.ts) {
      this.opts.log?.('warn', `Slack Socket Mode: a button for ${it.approvalId} came from ${it.channel}/${it.ts}, not its message; ignored`);
      this.emit({ kind: 'wrong_message', interaction: it });
      return { reply: undefined };
    }
    this.clients.set(it.channel, client);
    const maxAge = it.action === 'approve' ? (this.opts.approveGroupMaxAgeMs ?? 5000) : undefined;
    if (!(await beforeDeadline(isApprover(client, it.user, maxAge), deadline, 'the approver check'))) {
      this.emit({ kind: 'not_approver', interaction: it });
      if (it.kind === 'reason') return { reply: { response_action: 'errors', errors: { [REASON_BLOCK_ID]: NOT_APPROVER } } };
      // Acked at once; the ephemeral goes out in the background, once per window.
      this.notices.tell(client, it.approvalId, it.user, 'not_approver', NOT_APPROVER);
      return { reply: undefined };
    }
    if (it.kind === 'button' && it.action === 'reject' && (this.opts.askReason ?? true) && it.triggerId) {
      // The same click again (its ack was lost): the modal is open already, and its trigger_id is spent.
      const asked = `ask\0${envelopeId}`;
      if (this.applied.get(asked)) return { reply: undefined };
      const abort = new AbortController();
      try {
        const view = buildReasonModal({ approvalId: it.approvalId, channel: it.channel, ts: it.ts, tool: approval.tool });
        const opened = client.connection.call('views.open', { trigger_id: it.triggerId, view }, { priority: 'high', signal: abort.signal });
        await beforeDeadline(opened, deadline, 'views.open', () => abort.abort());
        this.applied.set(asked, true);
        this.emit({ kind: 'reason_asked', interaction: it });
        return { reply: undefined };
      } catch (e) {
        this.opts.log?.('warn', `Slack Socket Mode: could not ask ${it.user} for a reason (${describeError(e)}); rejecting without one`);
      }
    }
    const vote: ApprovalVote = {
      approvalId: it.approvalId,
      user: it.user,
      action: it.action,
      via: it.kind === 'reason' ? 'modal' : 'button',
      channel: it.channel,
      ts: it.ts,
      envelopeId,
      ...(it.kind === 'reason' && it.reason !== undefined ? { reason: it.reason } : {}),
    };
    return { vote, key, it };
  }

  /** The handler stage: onVote (with retries, within handlerTimeoutMs); throws when not recorded. */
  private async apply({ vote, key, it }: { vote: ApprovalVote; key: string; it: Interaction }): Promise<void> {
    // The same vote passed screening twice at once (a redelivery): the second waits for the first.
    const running = this.inflight.get(key);
    if (running !== undefined || this.applied.get(key)) {
      await running;
      this.emit({ kind: 'duplicate', interaction: it });
      return;
    }
    const started = Date.now();
    const run = this.runHandler(vote);
    this.inflight.set(key, run);
    // A handler that finishes after we stopped waiting still counts: a redelivery is then acked at once.
    run.then(
      () => this.applied.set(key, true),
      () => {},
    );
    run.finally(() => this.inflight.delete(key)).catch(() => {});
    await withTimeout(run, this.opts.handlerTimeoutMs ?? 10_000);
    this.emit({ kind: 'vote', vote, durationMs: Date.now() - started });
  }

  private async runHandler(vote: ApprovalVote): Promise<void> {
    const retries = this.opts.retries ?? 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.opts.onVote(vote);
      } catch (e) {
        if (attempt >= retries || this.closing) throw e;
        await new Promise((r) => setTimeout(r, this.opts.retryDelayMs ?? 200));
      }
    }
  }
}

/**
 * Listed user, or member of a listed group (looked up only for people not listed by id). Throws
 * when a group cannot be read. `maxAgeMs` (approves): someone who counts only through groups is
 * checked against a read of those groups at most that old (usergroups.users.list, through the
 * limiter), so a person removed from a group cannot approve for the 10 minutes of the cache.
 * Someone not in the cached membership is not re-read (that would let any non-approver's click
 * cost a Tier 2 call): a new member can approve once the cache entry expired (10 min at most).
 */
async function isApprover(client: SlackApprovalClient, user: string, maxAgeMs: number | undefined): Promise<boolean> {
  const approvers = client.config.approvers;
  if (approvers.users.includes(user)) return true;
  const directory = client.connection.directory;
  const cached = await Promise.all(approvers.userGroups.map(async (g) => ({ g, members: await directory.groupMembers(g) })));
  const via = cached.filter((c) => c.members.includes(user)).map((c) => c.g);
  if (via.length === 0 || maxAgeMs === undefined || maxAgeMs === Number.POSITIVE_INFINITY) return via.length > 0;
  const fresh = await Promise.all(via.map((g) => directory.groupMembers(g, maxAgeMs)));
  return fresh.some((members) => members.includes(user));
}

/** `p`, unless `deadline` (epoch ms) passes first: then a rejection (and `onLate`, e.g. an abort). */
function beforeDeadline<T>(p: Promise<T>, deadline: number, what: string, onLate?: () => void): Promise<T> {
  p.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_r, reject) => {
    timer = setTimeout(
      () => {
        onLate?.();
        reject(new Error(`${what} did not finish before the click's deadline`));
      },
      Math.max(0, deadline - Date.now()),
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`the decision handler did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A promise resolved by its first resolve() (later ones are ignored). */
function settleOnce<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

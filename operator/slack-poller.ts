// Reaction polling for posted ApprovalRequests, as a component of its own: the ApprovalRequest
// controller starts a poll once a message is posted and reads the outcome back in its next
// reconcile. One ApprovalPoller per bot token (one rate limiter per token, shared by every request
// of every namespace). An outcome is kept until the controller has written it into status.
//
// A poll refused for the token (invalid_auth, token_revoked, …) is retried once after the Secret is
// read again: the token may have been rotated.
import type { Logger } from '../lib/log.js';
import { ApprovalPoller, SAFETY_BACKOFF, type BackoffConfig, type PollerResult, type PollResult, type Votes } from '../slack/index.js';
import type { PollOutcome } from './approval-request-plan.js';
import type { KubeObject } from './kube-object.js';
import type { ChannelTarget } from './slack-channels.js';

export const AUTH_CODES: ReadonlySet<string> = new Set(['invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'token_expired']);

export interface SlackPollerOptions {
  log: Logger;
  /** Reaction polling backoff (the adapter's default: 2 s ×1.5 up to 30 s). */
  backoff?: Partial<BackoffConfig>;
  /** Channels with buttons: their reactions on a slow safety schedule (default SAFETY_BACKOFF, 30 s ×2 up to 5 min). */
  safetyBackoff?: Partial<BackoffConfig>;
  /** A decision seen this long after expiresAt still counts. */
  expiryGraceMs?: number;
  /** A request's poll has news (an outcome, or it must be set up again): reconcile it. */
  wake: (id: string) => void;
  /** A token refused mid-poll may have been rotated: forget the cached Secret. */
  forgetSecret: (namespace: string, name: string) => void;
}

interface Polling {
  poller: ApprovalPoller;
  /** The ApprovalChannel's name, and its generation the poll was set up with. */
  channel: string;
  generation: number;
  secret: string;
}

export class SlackPoller {
  private readonly pollers = new Map<string, ApprovalPoller>();
  private readonly polling = new Map<string, Polling>();
  private readonly results = new Map<string, PollOutcome>();
  private readonly authRetried = new Set<string>();
  private closed = false;

  constructor(private readonly o: SlackPollerOptions) {}

  /**
   * Polls the reactions on request `id`'s message `ts` in the channel `target` resolved to. A
   * channel with buttons (`target.app`) is polled slowly and only after its Socket Mode connection
   * was down (`buttons.connectedSince`), its clicks (`buttons.clicks`) counted with the reactions.
   */
  start(
    id: string,
    target: ChannelTarget,
    ts: string,
    expiresAt: Date,
    buttons?: { clicks: () => Votes; connectedSince: () => number | undefined },
    /** Sees each read before the poller does (the controller records reaction votes in status). */
    record?: (r: PollResult) => Promise<PollResult>,
  ): void {
    // Closed with its term: a late start would leave a poller that nobody closes, polling Slack
    // beside the next term's.
    if (this.closed) return;
    const slow = target.app !== undefined && buttons !== undefined;
    const key = slow ? `${target.connKey}/buttons` : target.connKey;
    let poller = this.pollers.get(key);
    if (!poller) {
      poller = new ApprovalPoller({
        onResult: (r) => this.onResult(r),
        onPollError: (request, error) => this.o.log.debug('reaction poll failed; will retry', { request, error: error.message }),
        backoff: slow ? { ...SAFETY_BACKOFF, ...this.o.safetyBackoff } : this.o.backoff,
        expiryGraceMs: this.o.expiryGraceMs,
      });
      this.pollers.set(key, poller);
    }
    const pending =
      slow && buttons ? target.client.pendingWithButtons(id, ts, expiresAt, buttons.clicks, buttons.connectedSince) : target.client.pending(id, ts, expiresAt);
    poller.add(record ? { ...pending, poll: async (priority) => record(await pending.poll(priority)) } : pending);
    this.polling.set(id, {
      poller,
      channel: target.channel.metadata.name,
      generation: target.channel.metadata.generation ?? 0,
      secret: target.spec.slack.tokenSecretRef.name,
    });
  }

  isPolling(id: string): boolean {
    return this.polling.has(id);
  }

  /** The outcome of `id`'s poll, not yet written into status. */
  outcome(id: string): PollOutcome | undefined {
    return this.results.get(id);
  }

  stop(id: string): void {
    this.polling.get(id)?.poller.remove(id);
    this.polling.delete(id);
  }

  /** The request ended: no more polling, and its outcome (if any) is written. */
  done(id: string): void {
    this.stop(id);
    this.results.delete(id);
  }

  /** The request is gone. */
  forget(id: string): void {
    this.done(id);
    this.authRetried.delete(id);
  }

  /**
   * An ApprovalChannel changed or was deleted: polls set up with another spec (approvers,
   * reactions, token reference) stop; the ids returned must be reconciled to poll with the new
   * spec (or to fail, the channel deleted). Status-only changes (the channel checks) change nothing.
   */
  channelChanged(channel: KubeObject, deleted: boolean): string[] {
    const namespace = channel.metadata.namespace;
    const stopped: string[] = [];
    for (const [id, p] of this.polling) {
      if (id.startsWith(`${namespace}/`) && p.channel === channel.metadata.name && (deleted || p.generation !== (channel.metadata.generation ?? 0))) {
        this.stop(id);
        stopped.push(id);
      }
    }
    return stopped;
  }

  private onResult(r: PollerResult): void {
    if (this.closed) return;
    const id = r.id;
    const p = this.polling.get(id);
    this.polling.delete(id);
    if (r.status === 'failed' && AUTH_CODES.has(r.error.code) && !this.authRetried.has(id) && p) {
      this.authRetried.add(id);
      this.o.forgetSecret(id.slice(0, id.indexOf('/')), p.secret);
      this.o.wake(id);
      return;
    }
    this.results.set(
      id,
      r.status === 'failed'
        ? { status: 'failed', message: r.error.message, at: r.at }
        : r.status === 'expired'
          ? { status: 'expired', at: r.at }
          : { status: r.status, by: r.by, at: r.at },
    );
    this.o.wake(id);
  }

  close(): void {
    this.closed = true;
    for (const p of this.pollers.values()) p.close();
    this.pollers.clear();
    this.polling.clear();
  }
}

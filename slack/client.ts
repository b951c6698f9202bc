// SlackApprovalClient: one approval channel (channel id + approvers + reactions + redaction) on a
// shared per-token SlackConnection. It posts the approval message, reads a decision from the
// reactions, and writes the outcome into the message. All calls go through the token's limiter;
// all failures are SlackApprovalErrors (retryable or permanent) so callers can fail closed.
import {
  collectVotes,
  mergeVotes,
  reactionFingerprint,
  requiredApprovals,
  tally,
  type Decision,
  type ReactionRule,
  type SlackReaction,
  type Tally,
  type Votes,
} from './decision.js';
import { SlackApprovalError } from './errors.js';
import {
  buildApprovalMessage,
  buildOutcomeMessage,
  checkMessageLimits,
  METADATA_EVENT_TYPE,
  type ApprovalMessageInput,
  type ApprovalOutcome,
  type SlackMessage,
} from './message.js';
import { LruTtlCache, type Approvers } from './approvers.js';
import type { SlackConnection } from './connection.js';
import type { Priority } from './rate-limiter.js';
import type { PendingApproval, PollResult } from './poller.js';

export interface SlackChannelConfig {
  /** Channel id (C…/G…). */
  channel: string;
  approvers: Approvers;
  reactions: ReactionRule;
  /** Argument key globs shown as "[redacted]". */
  redact?: readonly string[];
  /** Approve/Reject buttons instead of reactions (the channel has an app-level token; socket-mode.ts receives the clicks). */
  buttons?: boolean;
}

/** What ApprovalChannel.status needs to say whether the token and the channel work. */
export interface ChannelCheck {
  tokenOk: boolean;
  channelOk: boolean;
  /** Every user group resolved (false when one failed; see error). */
  approversOk: boolean;
  team?: string;
  teamId?: string;
  botUserId?: string;
  channelName?: string;
  /** Distinct approver user ids after resolving groups (when approversOk). */
  approverCount?: number;
  /** The first problem, as a sentence for status conditions. */
  error?: string;
  /** True when the problem may go away by itself (Slack unreachable, rate limited). */
  retryable?: boolean;
}

/** What a caller supplies per approval; the channel supplies reactions, approvers and redaction. */
export type ApprovalPostInput = Omit<ApprovalMessageInput, 'reactions' | 'approvers' | 'redact' | 'buttons'>;

export interface PostedMessage {
  channel: string;
  ts: string;
}

export class SlackApprovalClient {
  /** Per message ts: its queue of chat.update calls (removed when it drains). */
  private readonly chains = new Map<string, { tail: Promise<void>; seq: number }>();
  /** Messages finish() was called for (bounded: an approval lives far shorter than the TTL). */
  private readonly finished = new LruTtlCache<string, true>({ maxEntries: 10_000, ttlMs: 24 * 3_600_000 });

  constructor(
    readonly connection: SlackConnection,
    readonly config: SlackChannelConfig,
  ) {}

  private messageInput(input: ApprovalPostInput): ApprovalMessageInput {
    return {
      ...input,
      reactions: this.config.reactions,
      approvers: this.config.approvers,
      redact: this.config.redact ?? [],
      ...(this.config.buttons ? { buttons: true } : {}),
    };
  }

  private static guard(method: string, msg: SlackMessage): void {
    const problems = checkMessageLimits(msg);
    if (problems.length)
      throw new SlackApprovalError('permanent', 'invalid_blocks', method, `Slack ${method}: message exceeds Slack limits: ${problems.join('; ')}`);
  }

  /** Checks the token (auth.test), the channel (conversations.info) and the approver groups. */
  async check(): Promise<ChannelCheck> {
    const out: ChannelCheck = { tokenOk: false, channelOk: false, approversOk: false };
    try {
      const id = await this.connection.identity(true);
      out.tokenOk = true;
      out.botUserId = id.userId;
      if (id.team !== undefined) out.team = id.team;
      if (id.teamId !== undefined) out.teamId = id.teamId;
    } catch (e) {
      return fail(out, e);
    }
    try {
      const res = await this.connection.call('conversations.info', { channel: this.config.channel }, { priority: 'normal' });
      const ch = res.channel as { name?: unknown } | undefined;
      out.channelOk = true;
      if (typeof ch?.name === 'string') out.channelName = ch.name;
    } catch (e) {
      return fail(out, e);
    }
    try {
      const allowed = await this.connection.directory.allowlist(this.config.approvers, true);
      out.approverCount = allowed.size;
      // The two-person rule with fewer people than it needs could never approve anything.
      const required = requiredApprovals(this.config.approvers.required);
      const people = [...allowed].filter((u) => u !== out.botUserId).length;
      if (people < required) {
        out.error = `${required} approvals are required but only ${people} approver${people === 1 ? '' : 's'} can approve (users and user-group members, not the bot)`;
        out.retryable = false;
        return out;
      }
      out.approversOk = true;
    } catch (e) {
      return fail(out, e);
    }
    return out;
  }

  /**
   * Posts the approval message (`signal`: the caller gave up; dropped if not sent yet). Not idempotent: after a retryable error other than rate_limited
   * the message may exist anyway (a 5xx or timeout after Slack stored it).
   */
  async post(input: ApprovalPostInput, signal?: AbortSignal): Promise<PostedMessage> {
    const msg = buildApprovalMessage(this.messageInput(input));
    SlackApprovalClient.guard('chat.postMessage', msg);
    const res = await this.connection.call(
      'chat.postMessage',
      { channel: this.config.channel, text: msg.text, blocks: msg.blocks, metadata: msg.metadata, unfurl_links: false, unfurl_media: false },
      // `signal` drops the post while it still waits in the rate limiter's queue (never once sent).
      { priority: 'high', channel: this.config.channel, ...(signal ? { signal } : {}) },
    );
    if (typeof res.ts !== 'string') throw new SlackApprovalError('retryable', 'bad_response', 'chat.postMessage', 'Slack chat.postMessage: answer without ts');
    return { channel: typeof res.channel === 'string' ? res.channel : this.config.channel, ts: res.ts };
  }

  /**
   * Looks for this bot's approval message for `id` (message metadata request_id) posted between
   * `since` and `until`, newest first, reading at most `maxPages` pages of conversations.history.
   * For recovery after a crash between chat.postMessage and recording its ts. `complete` is false
   * when the window held more messages than were read. Needs channels:history (groups:history).
   */
  async findPosted(
    id: string,
    window: { since: Date | number; until: Date | number },
    maxPages = 5,
  ): Promise<{ message: PostedMessage | null; complete: boolean }> {
    const me = await this.connection.identity();
    const secs = (t: Date | number) => ((typeof t === 'number' ? t : t.getTime()) / 1000).toFixed(6);
    let cursor: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const res = await this.connection.call(
        'conversations.history',
        {
          channel: this.config.channel,
          oldest: secs(window.since),
          latest: secs(window.until),
          inclusive: true,
          limit: 200,
          include_all_metadata: true,
          ...(cursor ? { cursor } : {}),
        },
        { priority: 'high', channel: this.config.channel },
      );
      const messages = (Array.isArray(res.messages) ? res.messages : []) as {
        ts?: unknown;
        user?: unknown;
        bot_id?: unknown;
        metadata?: { event_type?: unknown; event_payload?: { request_id?: unknown } };
      }[];
      for (const m of messages) {
        const ours = m.user === me.userId || (me.botId !== undefined && m.bot_id === me.botId);
        if (ours && typeof m.ts === 'string' && m.metadata?.event_type === METADATA_EVENT_TYPE && m.metadata.event_payload?.request_id === id) {
          return { message: { channel: this.config.channel, ts: m.ts }, complete: true };
        }
      }
      const next = (res.response_metadata as { next_cursor?: unknown } | undefined)?.next_cursor;
      if (res.has_more !== true || typeof next !== 'string' || next === '') return { message: null, complete: true };
      cursor = next;
    }
    return { message: null, complete: false };
  }

  /**
   * Reads the reactions once: the decision (or null) and a fingerprint of all reactions. `clicks`:
   * votes from buttons recorded elsewhere (socket-mode.ts), counted with the reactions.
   */
  async pollReactions(ts: string, priority: Priority = 'low', clicks?: () => Votes): Promise<PollResult> {
    const res = await this.connection.call(
      'reactions.get',
      { channel: this.config.channel, timestamp: ts, full: true },
      { priority, channel: this.config.channel },
    );
    const message = res.message as { reactions?: unknown } | undefined;
    const reactions = (Array.isArray(message?.reactions) ? message.reactions : []) as SlackReaction[];
    const fingerprint = reactionFingerprint(reactions);
    const extra = clicks?.();
    const anyVotes = mergeVotes(collectVotes(reactions, this.config.reactions), ...(extra ? [extra] : []));
    if (anyVotes.approve.size + anyVotes.reject.size === 0) return { decision: null, fingerprint };
    const bot = (await this.connection.identity()).userId;
    const votes = mergeVotes(collectVotes(reactions, this.config.reactions, bot), ...(extra ? [extra] : []));
    const t = await this.tallyVotes(votes, bot);
    return { decision: t.state === 'pending' ? null : { outcome: t.state, by: t.by }, tally: t, fingerprint };
  }

  /** Where `votes` (clicks, reactions, merged) stand under the channel's allowlist and `approvers.required`. */
  async tallyVotes(votes: Votes, botUserId?: string): Promise<Tally> {
    const bot = botUserId ?? (await this.connection.identity()).userId;
    // Resolve user groups only when someone outside the explicit list voted: a partial allowlist
    // could turn a group member's reject into an approve, so a failed lookup throws (fail closed).
    const explicit = new Set(this.config.approvers.users);
    const needGroups = this.config.approvers.userGroups.length > 0 && [...votes.approve, ...votes.reject].some((u) => !explicit.has(u));
    const allowed = await this.connection.directory.allowlist(this.config.approvers, needGroups);
    return tally(votes, allowed, this.config.approvers.required, bot);
  }

  /** The decision on a message, or null while nobody allowed has decided. */
  async readDecision(ts: string): Promise<Decision | null> {
    return (await this.pollReactions(ts, 'normal')).decision;
  }

  /**
   * Rewrites the message with the outcome (chat.update). Names of deciders are looked up when
   * missing. After it, progress updates of this message are dropped.
   */
  finish(ts: string, input: ApprovalPostInput, outcome: ApprovalOutcome): Promise<void> {
    return this.serialized(ts, 'finish', async () => {
      const by = await this.named(outcome.by ?? []);
      return buildOutcomeMessage(this.messageInput(input), { ...outcome, by });
    });
  }

  /**
   * chat.update calls of one message run one after another, so a progress update cannot land
   * after the outcome (two calls on one ts can reorder through the limiter: a 429 re-queues one)
   * and bring the buttons back. A progress update that a later update overtook in the queue is
   * skipped (the latest state wins); once finish() was called, progress updates are dropped.
   */
  private serialized(ts: string, kind: 'progress' | 'finish', build: () => Promise<SlackMessage>): Promise<void> {
    if (kind === 'progress' && this.finished.get(ts)) return Promise.resolve();
    if (kind === 'finish') this.finished.set(ts, true);
    let chain = this.chains.get(ts);
    if (!chain) {
      chain = { tail: Promise.resolve(), seq: 0 };
      this.chains.set(ts, chain);
    }
    const c = chain;
    const mine = ++c.seq;
    const run = c.tail.then(async () => {
      if (kind === 'progress' && (mine !== c.seq || this.finished.get(ts))) return;
      await this.update(ts, await build());
    });
    c.tail = run.catch(() => {});
    // The last one out removes the chain (the finished mark stays, bounded, in `finished`).
    void c.tail.then(() => {
      if (c.seq === mine && this.chains.get(ts) === c) this.chains.delete(ts);
    });
    return run;
  }

  private named(people: readonly { id: string; name?: string }[]): Promise<{ id: string; name: string }[]> {
    return Promise.all(people.map(async (b) => ({ id: b.id, name: b.name ?? (await this.connection.directory.displayName(b.id)) })));
  }

  private async update(ts: string, msg: SlackMessage): Promise<void> {
    SlackApprovalClient.guard('chat.update', msg);
    await this.connection.call(
      'chat.update',
      { channel: this.config.channel, ts, text: msg.text, blocks: msg.blocks, metadata: msg.metadata },
      { priority: 'high', channel: this.config.channel },
    );
  }

  /**
   * Shows the approvals so far on a still-pending message ("1 of 2 approvals", buttons kept), for
   * channels that require more than one. Names of approvers are looked up when missing. Dropped
   * once finish() was called for this message (see serialized()).
   */
  async showProgress(ts: string, input: ApprovalPostInput, approvedBy: readonly { id: string; name?: string }[]): Promise<void> {
    await this.serialized(ts, 'progress', async () => {
      const named = await this.named(approvedBy);
      return buildApprovalMessage({ ...this.messageInput(input), approvedBy: named });
    });
  }

  /**
   * A pending approval of a message with buttons, for ApprovalPoller: while the Socket Mode
   * connection has stayed up since the last read (`connectedSince()`: when the connection now open
   * was made, undefined while there is none), nothing can have been missed that matters (clicks
   * are pushed; a reaction is the fallback for when they are not), so the read is skipped: no Slack
   * call. Once the socket was down, the next scheduled read reads the reactions (counting `clicks`).
   */
  pendingWithButtons(
    id: string,
    ts: string,
    expiresAt: Date | number,
    clicks: () => Votes,
    connectedSince: () => number | undefined,
    /** Read at the first poll whatever the socket did (adopted after a restart). */
    readFirst = false,
  ): PendingApproval {
    let lastRead = readFirst ? 0 : Date.now();
    let fingerprint = '';
    return {
      id,
      expiresAt,
      poll: async (priority) => {
        const since = connectedSince();
        if (since !== undefined && since <= lastRead) return { decision: null, fingerprint };
        lastRead = Date.now();
        const r = await this.pollReactions(ts, priority, clicks);
        fingerprint = r.fingerprint;
        return r;
      },
    };
  }

  /** A pending approval for ApprovalPoller, reading this channel's message `ts` (and counting `clicks`). */
  pending(id: string, ts: string, expiresAt: Date | number, clicks?: () => Votes): PendingApproval {
    return { id, expiresAt, poll: (priority) => this.pollReactions(ts, priority, clicks) };
  }
}

function fail(out: ChannelCheck, e: unknown): ChannelCheck {
  // A bad approvers.required (requiredApprovals throws a RangeError) will not fix itself.
  if (e instanceof RangeError) {
    out.error = e.message;
    out.retryable = false;
    return out;
  }
  const err = e instanceof SlackApprovalError ? e : new SlackApprovalError('retryable', 'unknown', '?', String(e));
  out.error = err.message;
  out.retryable = err.retryable;
  return out;
}

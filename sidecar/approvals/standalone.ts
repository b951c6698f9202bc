// The standalone ApprovalBackend: the sidecar talks to Slack itself (slack/), with its state in
// memory. One SlackConnection (and so one rate limiter) per bot token, one ApprovalPoller for
// every pending approval. Without a store approvals do not survive a restart of the sidecar
// (adopt() returns []); with one (approval-store.ts, on local disk) each step is recorded and
// fsync'd before the action it protects (the approval before it is queued, the start of a post
// before chat.postMessage, the execution mark before the call runs), and adopt() returns what
// was live: polled again, posted when it never was (looked for first when a post was
// interrupted), never run again when its execution had started.
// Posting is fair: per approval channel one post at a time goes to the token's rate limiter, the
// next one taken round-robin across owners (FairQueue), and a post cancelled before it was sent is
// never sent. So a client that floods (or creates and cancels in a loop) delays others by at most
// one post per channel, not by its whole backlog at Slack's one post per second.
// (In a cluster they do: the ApprovalRequest holds them; docs/approvals.md.)
// A channel with an app-level token (slack.appTokenEnv) posts Approve/Reject buttons; the clicks
// arrive over Socket Mode (one SocketModeReceiver per app token, whatever number of channels use
// it), so noticing a decision does not wait for a poll. A click is recorded (durably, with a
// store) before its envelope is acked, then counted with the reactions (the two-person rule
// across both); its reactions are polled only once the socket was down (the fallback), on a slow
// safety schedule. The receivers' metrics (thoughtgate_sidecar_slack_socket_*, labelled by the
// app token's variable) are made here and added to the sidecar's registry (registerMetrics). A
// socket that is down does not make the sidecar unready: reactions still decide (polled slowly).
// At the start, checkAppTokens() waits for each receiver's first attempt: an app token Slack
// refuses is a configuration error (the start is refused); Slack unreachable is only a warning.
import type { FileApprovalChannel } from '../../api/approval.js';
import { parseDuration } from '../../api/duration.js';
import { SlackApprovalClient, type ApprovalPostInput } from '../../slack/client.js';
import type { Clock } from '../../lib/clock.js';
import { SlackConnectionPool } from '../../slack/connection.js';
import type { ApprovalOutcome, FinalStatus } from '../../slack/message.js';
import { ApprovalPoller, SAFETY_BACKOFF, type BackoffConfig, type PollerResult } from '../../slack/poller.js';
import { SocketModeReceiver, type ApprovalVote, type OpenApproval } from '../../slack/socket-mode.js';
import type { Votes } from '../../slack/decision.js';
import type { RateLimiterOptions } from '../../slack/rate-limiter.js';
import type { Logger } from '../../lib/log.js';
import type { AdoptedApproval, ApprovalBackend, Decision, PendingApproval } from './backend.js';
import type { ApprovalStore, StoredApproval, StoredVote } from './approval-store.js';
import type { ApprovalChannelInfo } from './engine.js';
import { FairQueue } from '../../lib/fair-queue.js';
import { describeError } from '../../lib/describe-error.js';
import { Registry } from 'prom-client';
import { socketMetrics } from '../../slack/socket-metrics.js';
import { isAuthError } from '../../slack/errors.js';

export interface StandaloneOptions {
  /** Polling backoff (default 2 s ×1.5 up to 30 s; see slack/README.md). */
  backoff?: Partial<BackoffConfig>;
  /** Reactions polling of channels with buttons (Socket Mode), a safety net (default 30 s ×2 up to 5 min). */
  buttonsBackoff?: Partial<BackoffConfig>;
  /** Socket Mode reconnect backoff and timeouts (tests make them short). */
  socket?: { reconnect?: { baseMs: number; maxMs: number }; handlerTimeoutMs?: number };
  /** How long after the expiry a decision still counts when the final poll is late (default 5 s). */
  expiryGraceMs?: number;
  /** Per Slack request (default 15 s). */
  requestTimeoutMs?: number;
  limiter?: RateLimiterOptions;
  /** Where approvals survive a restart (openApprovalStore); without it they live in memory only. */
  store?: ApprovalStore;
}

export interface StandaloneBackend extends ApprovalBackend, ApprovalChannelInfo {
  readonly channels: ReadonlySet<string>;
  channelTimeoutMs(channel: string): number | undefined;
  channelDescription(channel: string): string | undefined;
  /** Checks every channel's token, channel and approver groups (for a startup log line). */
  check(): Promise<{ channel: string; ok: boolean; error?: string }[]>;
  /**
   * Waits (up to `timeoutMs`, default 20 s) for each app token's first Socket Mode connection
   * attempt. Throws ApprovalSetupError, naming the channels and the variable, when Slack refused
   * a token (invalid_auth, token_revoked, not_allowed_token_type…); Slack unreachable, a 5xx or a
   * rate limit, or no answer in time, is logged (the receiver keeps retrying) and passes.
   */
  checkAppTokens(timeoutMs?: number): Promise<void>;
  registerMetrics(registry: Registry): void;
}

/** A configuration problem found while building the backend (e.g. a token variable is unset). */
export class ApprovalSetupError extends Error {
  override readonly name = 'ApprovalSetupError';
}

interface Channel {
  config: FileApprovalChannel;
  client: SlackApprovalClient;
  timeoutMs: number;
  /** Posts waiting for their turn (round-robin across owners), and whether one is being sent. */
  posts: FairQueue<Record_>;
  posting: boolean;
  /** Buttons: the key of its app token's receiver (receivers). */
  receiver?: string;
}

/** Who decided, with display names where the token's directory already knows them (no extra call). */
function deciders(ch: Channel, ids: readonly string[]): { id: string; name?: string }[] {
  return ids.map((id) => {
    const name = ch.client.connection.directory.names.get(id);
    return name !== undefined && name !== id ? { id, name } : { id };
  });
}

interface Record_ {
  pending: PendingApproval;
  channel: Channel;
  input: ApprovalPostInput;
  ts?: string;
  /** queued: waiting for its turn (cancelling drops it unsent); posting: handed to the limiter. */
  state: 'queued' | 'posting' | 'pending' | 'decided' | 'cancelled';
  /** The fairness key (the owner), and what submit() waits on. */
  key: string;
  abort: AbortController;
  posted: { resolve: () => void; reject: (e: Error) => void };
  decision?: Decision;
  executionStarted: boolean;
  /** Adopted after a restart: nobody waits on `posted`; a post that fails becomes a `failed` decision. */
  adopted?: boolean;
  /** Adopted with a post started and no ts recorded: look for that message before posting again. */
  recoverFrom?: Date;
  /** Adopted as approved: Slack is read again for the decision, until this time at the latest. */
  recheckUntil?: Date;
  /** Approvers' clicks (buttons), recorded before acknowledged; counted with the reactions. */
  clicks: Votes;
  /** A rejecter's reason from the modal, by Slack user id. */
  reasons: Map<string, string>;
  /** The last message rewrite queued: rewrites of one message run in order (progress, then outcome). */
  rewriting: Promise<void>;
}

const noVotes = (): Votes => ({ approve: new Set(), reject: new Set() });

/** Clicks found in the approval store after a restart, back into the record. */
function addClicks(r: Record_, votes: readonly StoredVote[]): void {
  for (const v of votes) {
    (v.action === 'approve' ? r.clicks.approve : r.clicks.reject).add(v.user);
    if (v.reason !== undefined) r.reasons.set(v.user, v.reason);
  }
}

/** How long after its expiry an approval decided before a restart may still run after it (read again from Slack first). */
const ADOPT_LATE_MS = 20_000;

type Env = Record<string, string | undefined>;

/** What the Slack message shows of an approval. */
export function postInput(p: PendingApproval): ApprovalPostInput {
  return {
    id: p.id,
    tool: p.tool,
    source: p.source,
    method: p.method,
    ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
    ...(p.target !== undefined ? { a2a: { ...p.target } } : {}),
    arguments: p.arguments,
    workload: p.workload,
    expiresAt: p.expiresAt,
    rule: p.reason,
  };
}

export function standaloneBackend(
  channels: readonly FileApprovalChannel[],
  env: Env,
  log: Logger,
  clock?: Clock,
  opts: StandaloneOptions = {},
): StandaloneBackend {
  const missing = channels
    .filter((c) => !env[c.slack.tokenEnv])
    .map((c) => `approvalChannels "${c.name}": the environment variable ${c.slack.tokenEnv} (slack.tokenEnv) is not set`);
  for (const c of channels)
    if (c.slack.appTokenEnv !== undefined && !env[c.slack.appTokenEnv])
      missing.push(`approvalChannels "${c.name}": the environment variable ${c.slack.appTokenEnv} (slack.appTokenEnv) is not set`);
  if (missing.length > 0) throw new ApprovalSetupError(missing.join('\n'));

  const pool = new SlackConnectionPool({
    ...(clock ? { clock } : {}),
    ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
    ...(opts.limiter ? { limiter: opts.limiter } : {}),
    log: (level, message) => (level === 'error' ? log.warn : log.debug)('slack client', { message }),
  });
  const byName = new Map<string, Channel>();
  for (const c of channels) {
    const timeout = parseDuration(c.timeout);
    byName.set(c.name, {
      config: c,
      // One connection per (API URL, token): channels sharing a token share its rate limits.
      client: new SlackApprovalClient(pool.get(env[c.slack.tokenEnv]!, c.slack.apiUrl), {
        channel: c.slack.channel,
        approvers: c.approvers,
        reactions: c.reactions,
        redact: c.redact,
        ...(c.slack.appTokenEnv !== undefined ? { buttons: true } : {}),
      }),
      timeoutMs: typeof timeout === 'number' ? timeout : 600_000,
      posts: new FairQueue(),
      posting: false,
      ...(c.slack.appTokenEnv !== undefined ? { receiver: `${c.slack.apiUrl}\0${env[c.slack.appTokenEnv]!}` } : {}),
    });
  }

  const records = new Map<string, Record_>();
  /** adopt() has run (with a store: until then a click may name an approval from before a restart). */
  let adoptRan = false;
  const callbacks: ((d: Decision) => void)[] = [];
  const updates = new Set<Promise<void>>();
  const pollErrors = new Set<string>();
  let closed = false;
  const store = opts.store;
  /** Approvals markExecuting was called for (until finished): a second call is refused. */
  const marked = new Set<string>();

  /** A store write no action waits on: a failure is logged (the next restart may see an older state). */
  const remember = (what: string, id: string, write: () => Promise<void>): void => {
    write().catch((err: unknown) => log.warn('approval store write failed', { id, what, error: describeError(err) }));
  };

  const emit = (d: Decision): void => {
    for (const cb of callbacks) {
      try {
        cb(d);
      } catch (err) {
        log.error('approval decision callback failed', { id: d.id, error: describeError(err) });
      }
    }
  };

  /** Rewrites the Slack message; best effort (a failure is logged, the decision stands). */
  const update = (r: Record_, outcome: ApprovalOutcome): void => {
    const ts = r.ts;
    if (ts === undefined) return;
    rewrite(r, () =>
      r.channel.client
        .finish(ts, r.input, outcome)
        .catch((err: unknown) => log.warn('approval message update failed', { id: r.pending.id, status: outcome.status, error: (err as Error)?.message })),
    );
  };

  /** Queues a rewrite of the record's message after the ones before it (a late progress never hides the outcome). */
  const rewrite = (r: Record_, run: () => Promise<void>): void => {
    const p = r.rewriting.then(run).finally(() => updates.delete(p));
    r.rewriting = p;
    updates.add(p);
  };

  const onResult = (res: PollerResult): void => {
    const r = records.get(res.id);
    pollErrors.delete(res.id);
    if (r?.state !== 'pending') return;
    r.state = 'decided';
    const at = new Date(res.at);
    let d: Decision;
    switch (res.status) {
      case 'approved':
      case 'rejected': {
        // A rejecter's reason from the modal, when one was given.
        const why = res.status === 'rejected' ? res.by.map((u) => r.reasons.get(u)).find((x) => x !== undefined) : undefined;
        d = {
          id: res.id,
          outcome: res.status,
          by: deciders(r.channel, res.by),
          at,
          message: `${res.status} in Slack by ${deciders(r.channel, res.by)
            .map((b) => b.name ?? b.id)
            .join(', ')}${why !== undefined ? `: ${why}` : ''}`,
        };
        update(r, {
          status: res.status,
          by: d.by!,
          at,
          ...(res.status === 'approved' ? { reason: 'executing the call' } : why !== undefined ? { reason: why } : {}),
        });
        break;
      }
      case 'expired':
        d = { id: res.id, outcome: 'expired', at, message: `no approver decided by ${r.pending.expiresAt.toISOString()}` };
        update(r, { status: 'expired', at });
        break;
      case 'failed':
        d = { id: res.id, outcome: 'failed', at, message: res.error.message };
        update(r, { status: 'failed', at, reason: res.error.message });
        break;
    }
    r.decision = d;
    // Rejected, expired and failed approvals are finished here; approved ones when finished() comes.
    if (d.outcome !== 'approved') {
      records.delete(res.id);
      if (store) remember('end', res.id, () => store.end(res.id));
    } else if (store) remember('decided', res.id, () => store.decided(res.id, d));
    emit(d);
  };

  const poller = new ApprovalPoller({
    onResult,
    onPollError: (id, error) => {
      // The first failure of an approval is worth a warning; the rest of a Slack outage is noise.
      if (!pollErrors.has(id)) log.warn('Slack poll failed; retrying with backoff', { id, error: error.message });
      pollErrors.add(id);
    },
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    ...(opts.expiryGraceMs !== undefined ? { expiryGraceMs: opts.expiryGraceMs } : {}),
    ...(clock ? { clock } : {}),
  });
  // Channels with buttons: their reactions on the slow schedule (clicks do not wait for it).
  const safetyPoller = new ApprovalPoller({
    onResult,
    onPollError: (id, error) => {
      if (!pollErrors.has(id)) log.warn('Slack poll failed; retrying with backoff', { id, error: error.message });
      pollErrors.add(id);
    },
    backoff: { ...SAFETY_BACKOFF, ...opts.buttonsBackoff },
    ...(opts.expiryGraceMs !== undefined ? { expiryGraceMs: opts.expiryGraceMs } : {}),
    ...(clock ? { clock } : {}),
  });

  /** Starts reading the reactions of a posted approval (with its clicks, for a channel with buttons). */
  const watch = (r: Record_): void => {
    const ch = r.channel;
    const id = r.pending.id;
    const until = r.recheckUntil ?? r.pending.expiresAt;
    const key = ch.receiver;
    // Without buttons, or adopted as approved and read again before it runs (its clicks counted): polled as usual.
    if (key === undefined || r.recheckUntil) poller.add(ch.client.pending(id, r.ts!, until, key !== undefined ? () => r.clicks : undefined));
    // Adopted after a restart: read once at least (a reaction may have come while no sidecar ran).
    else
      safetyPoller.add(
        ch.client.pendingWithButtons(
          id,
          r.ts!,
          until,
          () => r.clicks,
          () => connectedAt.get(key),
          r.adopted === true,
        ),
      );
  };
  const unwatch = (id: string): void => {
    poller.remove(id);
    safetyPoller.remove(id);
  };

  // ---------- buttons (Socket Mode) ----------

  /** The pending approval a click names, if it is this receiver's; throws while its post is on its way (Slack delivers the click again). */
  const lookup = (key: string, id: string): OpenApproval | undefined => {
    // With a store, approvals from before a restart are not in `records` until adopt(): a click
    // redelivered at the first connection would otherwise be called not pending and acked.
    if (store && !adoptRan) throw new Error('approvals from before the restart are not adopted yet');
    const r = records.get(id);
    if (!r || r.channel.receiver !== key) return undefined;
    if (r.state === 'queued' || r.state === 'posting') throw new Error(`approval ${id}: its message is still being posted`);
    if (r.state !== 'pending' || r.ts === undefined) return undefined;
    return { client: r.channel.client, ts: r.ts, tool: r.pending.tool };
  };

  /**
   * An allowlisted approver's click: recorded (durably first, with a store), then counted with the
   * clicks and reactions so far. Decided: the same path as a reaction decision. Still pending (k of
   * N): the message shows the progress. Idempotent: a repeat records nothing and counts again.
   * Throws (the envelope stays unacked) when the vote could not be recorded or counted.
   */
  const onVote = async (v: ApprovalVote): Promise<void> => {
    const r = records.get(v.approvalId);
    // Decided or ended meanwhile: nothing left to count.
    if (r?.state !== 'pending' || r.ts !== v.ts) return;
    const side = v.action === 'approve' ? r.clicks.approve : r.clicks.reject;
    if (!side.has(v.user)) {
      if (store)
        await store.vote(v.approvalId, {
          user: v.user,
          action: v.action,
          ...(v.reason !== undefined ? { reason: v.reason } : {}),
          at: new Date().toISOString(),
        });
      side.add(v.user);
      if (v.reason !== undefined) r.reasons.set(v.user, v.reason);
    }
    let t = await r.channel.client.tallyVotes(r.clicks);
    if (t.state === 'pending') {
      // Another approver may have reacted (reactions count too): read them now, not at the next safety poll.
      try {
        t = (await r.channel.client.pollReactions(r.ts, 'high', () => r.clicks)).tally ?? t;
      } catch (err) {
        log.debug('could not read reactions after a click; counting the clicks alone', { id: v.approvalId, error: describeError(err) });
      }
    }
    if (r.state !== 'pending') return;
    if (t.state === 'pending') {
      const ts = r.ts;
      const by = deciders(r.channel, t.approvedBy);
      rewrite(r, () =>
        r.channel.client
          .showProgress(ts, r.input, by)
          .catch((err: unknown) => log.warn('approval message progress update failed', { id: v.approvalId, error: describeError(err) })),
      );
      return;
    }
    unwatch(v.approvalId);
    onResult({ id: v.approvalId, status: t.state, by: t.by, at: Date.now() });
  };

  const receivers = new Map<string, SocketModeReceiver>();
  /** Each receiver's `app` label: its token's variable (made unique when two API URLs share one). */
  const appLabels = new Map<string, string>();
  /** Registered in the sidecar's registry by registerMetrics (the backend is made before the sidecar). */
  const metricsRegistry = new Registry();
  const metrics = socketMetrics(metricsRegistry, 'thoughtgate_sidecar_');
  /** When each receiver's open connection was made (none while it is down): the safety poll reads only after a gap. */
  const connectedAt = new Map<string, number>();
  for (const ch of byName.values()) {
    const key = ch.receiver;
    if (key === undefined || receivers.has(key)) continue;
    const tokenVar = ch.config.slack.appTokenEnv!;
    const used = new Set(appLabels.values());
    let label = tokenVar;
    for (let n = 2; used.has(label); n++) label = `${tokenVar}-${n}`;
    appLabels.set(key, label);
    const m = metrics.forApp(label);
    const rcv = new SocketModeReceiver({
      appToken: env[ch.config.slack.appTokenEnv!]!,
      apiUrl: ch.config.slack.apiUrl,
      lookup: (id) => lookup(key, id),
      onVote,
      ...(opts.socket?.reconnect ? { reconnect: opts.socket.reconnect } : {}),
      ...(opts.socket?.handlerTimeoutMs !== undefined ? { handlerTimeoutMs: opts.socket.handlerTimeoutMs } : {}),
      ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
      log: (level, message) =>
        (level === 'error' ? log.error : level === 'warn' ? log.warn : level === 'info' ? log.info : log.debug)('slack socket mode', { message }),
      onState: (s) => m.onState(s),
      onEvent: (e) => {
        m.onEvent(e);
        if (e.kind === 'connected') connectedAt.set(key, Date.now());
        else if (e.kind === 'disconnected') connectedAt.delete(key);
      },
    });
    receivers.set(key, rcv);
    rcv.start().catch((err: unknown) => {
      if (!closed) log.error('Slack Socket Mode gave up: buttons do not work; reactions still do (polled slowly)', { error: describeError(err) });
    });
  }

  /** Sends the channel's next post when none is on its way; one at a time keeps the order ours. */
  const pump = (ch: Channel): void => {
    if (ch.posting || closed) return;
    const r = ch.posts.shift();
    if (!r) return;
    ch.posting = true;
    r.state = 'posting';
    void send(r).finally(() => {
      ch.posting = false;
      pump(ch);
    });
  };

  /** The post failed (or was dropped, cancelled): the approval ends here. */
  const postFailed = (r: Record_, err: unknown): void => {
    const p = r.pending;
    if (records.get(p.id) === r) records.delete(p.id);
    if (store) remember('end', p.id, () => store.end(p.id));
    const message = (err as Error)?.message ?? String(err);
    // An adopted approval has no submit() waiting: its task learns it from a decision.
    if (r.adopted && r.state !== 'cancelled') emit({ id: p.id, outcome: 'failed', at: new Date(), message });
    // Cancelled while queued in the limiter: nothing was sent, and nobody waits for an answer.
    r.posted.reject(new Error(message));
  };

  /**
   * A post started before a crash and its ts never recorded: the message may exist. Found in the
   * channel's history, it is adopted; else (not found, or it cannot be looked for) posted again.
   */
  const recover = async (r: Record_, since: Date): Promise<string | undefined> => {
    const p = r.pending;
    try {
      const found = await r.channel.client.findPosted(p.id, { since: since.getTime() - 60_000, until: Date.now() + 60_000 });
      if (found.message) {
        log.info('found the Slack message of a post interrupted by a restart; not posting again', { id: p.id, ts: found.message.ts });
        return found.message.ts;
      }
      if (found.complete) return undefined;
      log.warn('could not read all of the channel history for a post interrupted by a restart; posting again (possibly a second message)', { id: p.id });
    } catch (err) {
      log.warn('could not look for the message of a post interrupted by a restart; posting again (possibly a second message)', {
        id: p.id,
        error: describeError(err),
        hint: 'the bot token needs channels:history (groups:history for private channels) to look',
      });
    }
    return undefined;
  };

  const send = async (r: Record_): Promise<void> => {
    const p = r.pending;
    try {
      const found = r.recoverFrom ? await recover(r, r.recoverFrom) : undefined;
      if (found !== undefined) r.ts = found;
      else {
        // Recorded before Slack is called: a crash from here on is known to have maybe posted.
        if (store) await store.posting(p.id, new Date());
        if (r.state === 'cancelled') throw new Error('cancelled before it was posted');
        r.ts = (await r.channel.client.post(r.input, r.abort.signal)).ts;
      }
    } catch (err) {
      postFailed(r, err);
      return;
    }
    if (store) {
      const ts = r.ts;
      await store.posted(p.id, ts).catch((err: unknown) =>
        log.warn('approval store write failed; after a restart the message is looked for before posting again', {
          id: p.id,
          what: 'posted',
          error: describeError(err),
        }),
      );
    }
    if (r.state === 'cancelled') {
      // The agent gave up while the message was being posted.
      update(r, { status: 'cancelled', at: new Date(), reason: 'cancelled by the agent' });
      records.delete(p.id);
      if (store) remember('end', p.id, () => store.end(p.id));
      r.posted.resolve();
      return;
    }
    r.state = 'pending';
    watch(r);
    r.posted.resolve();
  };

  /**
   * One approval found in the store after a restart: what the engine is told, and the record this
   * backend keeps for it (none when it ends here). Its message is polled (posted), posted (never
   * was; looked for first when a post was interrupted), or it waits for finished() (approved).
   */
  const restore = (a: StoredApproval, now: Date): { adopted: AdoptedApproval; r?: Record_ } => {
    const p = a.pending;
    const adopted: AdoptedApproval = { pending: p, executionStarted: a.executionStarted, ...(a.decision ? { decision: a.decision } : {}) };
    const ch = byName.get(p.channel);
    if (!ch || ch.config.slack.channel !== a.slackChannel) {
      // Its message cannot be read any more, so neither can an approval be confirmed (see below).
      if (!a.executionStarted) {
        const why = ch ? `now posts to another Slack channel than ${a.slackChannel}` : 'is no longer configured';
        adopted.decision = {
          id: p.id,
          outcome: 'failed',
          at: now,
          message: `the approval channel "${p.channel}" ${why}; the approval cannot be decided after the restart`,
        };
        remember('end', p.id, () => store!.end(p.id));
      }
      return { adopted };
    }
    const r: Record_ = {
      pending: p,
      channel: ch,
      input: postInput(p),
      state: 'queued',
      executionStarted: a.executionStarted,
      key: p.owner ?? p.id,
      abort: new AbortController(),
      posted: { resolve: () => undefined, reject: () => undefined },
      adopted: true,
      clicks: noVotes(),
      reasons: new Map(),
      rewriting: Promise.resolve(),
      ...(a.ts !== undefined ? { ts: a.ts } : {}),
      ...(a.decision ? { decision: a.decision } : {}),
    };
    if (a.executionStarted) {
      // It may have run: the engine ends its task (never runs it again); the message says so.
      update(r, {
        status: 'approved',
        by: a.decision?.by ?? [],
        at: now,
        reason: 'interrupted by a restart of the sidecar while executing; it may or may not have run, and is not run again',
      });
      remember('end', p.id, () => store!.end(p.id));
      return { adopted };
    }
    if (!a.decision && a.ts === undefined && p.expiresAt.getTime() <= now.getTime()) {
      // Expired while no sidecar ran, before anyone could see it: not worth a message now.
      adopted.decision = {
        id: p.id,
        outcome: 'expired',
        at: now,
        message: `no approver decided by ${p.expiresAt.toISOString()} (it expired before it was posted)`,
      };
      remember('end', p.id, () => store!.end(p.id));
      return { adopted };
    }
    addClicks(r, a.votes);
    if (a.decision) {
      // The store is not trusted alone to run a call: whoever can write it could append an
      // approval. A real one follows its message (posted), and Slack must still say so: it is
      // read again (polled), and runs only on what Slack answers. Not long after its expiry.
      const fail = (message: string): { adopted: AdoptedApproval } => {
        adopted.decision = { id: p.id, outcome: 'failed', at: now, message };
        update(r, { status: 'failed', at: now, reason: message });
        remember('end', p.id, () => store!.end(p.id));
        return { adopted };
      };
      if (a.ts === undefined) {
        log.warn('approval store: an approval recorded as decided has no Slack message on record; not running it', { id: p.id, file: store!.file });
        return fail('the approval store records a decision for an approval that was never posted to Slack; not run');
      }
      if (now.getTime() > p.expiresAt.getTime() + ADOPT_LATE_MS)
        return fail(
          `approved before a restart of the sidecar, which came back ${Math.round((now.getTime() - p.expiresAt.getTime()) / 1000)} s after the approval expired; not run this late`,
        );
      delete adopted.decision;
      delete r.decision;
      r.recheckUntil = new Date(Math.max(p.expiresAt.getTime(), Math.min(now.getTime() + 10_000, p.expiresAt.getTime() + ADOPT_LATE_MS)));
    }
    records.set(p.id, r);
    if (a.ts !== undefined) r.state = 'pending';
    else {
      if (a.postingAt) r.recoverFrom = a.postingAt;
      ch.posts.push(r.key, r);
    }
    return { adopted, r };
  };

  const names = [...byName.keys()];
  return {
    description: 'Slack, standalone',
    channels: new Set(names),
    channelTimeoutMs: (c) => byName.get(c)?.timeoutMs,
    channelDescription: (c) => {
      const ch = byName.get(c);
      return ch ? `Slack channel ${ch.config.slack.channel}` : undefined;
    },

    async submit(p) {
      if (closed) throw new Error('the sidecar is shutting down');
      const ch = byName.get(p.channel);
      if (!ch) throw new Error(`there is no approval channel named "${p.channel}" (approvalChannels lists: ${names.join(', ') || 'none'})`);
      let r!: Record_;
      const done = new Promise<void>((resolve, reject) => {
        r = {
          pending: p,
          channel: ch,
          input: postInput(p),
          state: 'queued',
          executionStarted: false,
          key: p.owner ?? p.id,
          abort: new AbortController(),
          posted: { resolve, reject },
          clicks: noVotes(),
          reasons: new Map(),
          rewriting: Promise.resolve(),
        };
        records.set(p.id, r);
      });
      if (store) {
        // Durable before it is queued: from here on a restart finds it (and posts it if need be).
        try {
          await store.put(p, ch.config.slack.channel);
        } catch (err) {
          if (records.get(p.id) === r) records.delete(p.id);
          throw err;
        }
        // Cancelled meanwhile (cancel() ended it), or the sidecar is stopping (it stays stored).
        if (r.state !== 'queued' || closed) return done;
      }
      ch.posts.push(r.key, r);
      pump(ch);
      return done;
    },

    onDecision(cb) {
      callbacks.push(cb);
    },

    async cancel(id) {
      const r = records.get(id);
      if (!r) {
        if (store?.has(id)) await store.end(id);
        return;
      }
      if (r.state === 'queued') {
        // Not sent yet: it never will be.
        r.channel.posts.remove(r.key, r);
        r.state = 'cancelled';
        records.delete(id);
        r.posted.resolve();
        if (store) await store.end(id);
        return;
      }
      if (r.state === 'posting') {
        // Dropped if it still waits in the rate limiter; else rewritten as cancelled once posted.
        r.state = 'cancelled';
        r.abort.abort();
        return;
      }
      if (r.state !== 'pending') return;
      unwatch(id);
      r.state = 'cancelled';
      records.delete(id);
      update(r, { status: 'cancelled', at: new Date(), reason: 'cancelled by the agent, or the deadline passed without a decision' });
      if (store) await store.end(id);
    },

    async markExecuting(id) {
      // Once per approval, whether the first attempt succeeded or not.
      if (marked.has(id)) throw new Error(`approval ${id} was already marked as executing`);
      marked.add(id);
      // With a store the mark is durable before the call runs: a restart never runs it again.
      if (store) await store.executing(id, new Date());
      const r = records.get(id);
      if (r) r.executionStarted = true;
    },

    async finished(id, result) {
      const r = records.get(id);
      marked.delete(id);
      if (r) {
        records.delete(id);
        const status: FinalStatus = r.executionStarted ? 'approved' : 'failed';
        update(r, { status, by: r.decision?.by ?? [], at: new Date(), reason: result.summary });
      }
      if (store?.has(id)) await store.end(id);
    },

    async adopt() {
      if (!store) return [];
      adoptRan = true;
      const out: AdoptedApproval[] = [];
      const poll: Record_[] = [];
      const post = new Set<Channel>();
      let interrupted = 0;
      for (const a of store.takeLoaded()) {
        if (records.has(a.pending.id) || !store.has(a.pending.id)) continue;
        const { adopted, r } = restore(a, new Date());
        out.push(adopted);
        if (a.executionStarted) interrupted++;
        if (r?.state === 'pending') poll.push(r);
        else if (r?.state === 'queued') post.add(r.channel);
      }
      // Polls and posts start once the engine holds the tasks (its adopt() follows this one).
      setImmediate(() => {
        for (const r of poll) if (r.state === 'pending' && !closed) watch(r);
        for (const ch of post) pump(ch);
      });
      if (out.length) log.info('approvals found in the approval store', { file: store.file, count: out.length, polled: poll.length, interrupted });
      return out;
    },

    ...(store ? { storeStatus: () => store.status() } : {}),

    async check() {
      return Promise.all(
        [...byName.entries()].map(async ([name, ch]) => {
          const c = await ch.client.check();
          const ok = c.tokenOk && c.channelOk && c.approversOk;
          return { channel: name, ok, ...(c.error !== undefined ? { error: c.error } : {}) };
        }),
      );
    },

    async checkAppTokens(timeoutMs = 20_000) {
      const refused: string[] = [];
      await Promise.all(
        [...receivers.entries()].map(async ([key, rcv]) => {
          const uses = [...byName.values()].filter((c) => c.receiver === key);
          const env = uses[0]!.config.slack.appTokenEnv!;
          const named = uses.map((c) => `"${c.config.name}"`).join(', ');
          let timer: ReturnType<typeof setTimeout> | undefined;
          const late = new Promise<'late'>((r) => {
            timer = setTimeout(() => r('late'), timeoutMs);
          });
          const first = await Promise.race([rcv.firstAttempt(), late]).finally(() => clearTimeout(timer));
          if (first === undefined) return;
          if (first === 'late') {
            log.warn('Slack Socket Mode: no answer to the app token check yet; starting anyway (buttons work once it connects)', { env });
            return;
          }
          if (first.retryable || first.code === 'closed') {
            log.warn('Slack Socket Mode: could not check the app token (Slack unreachable or busy); starting anyway, retrying', {
              env,
              error: first.message,
            });
            return;
          }
          const why = isAuthError(first.code) ? 'Slack refuses it: it is not a valid app-level token (xapp-…) with connections:write' : first.message;
          refused.push(`approvalChannels ${named}: the app-level token in ${env} (slack.appTokenEnv): ${first.code}: ${why}`);
        }),
      );
      if (refused.length > 0) throw new ApprovalSetupError(refused.join('\n'));
    },

    registerMetrics(registry) {
      // Only with buttons: a sidecar without an app token has no socket to report.
      if (receivers.size > 0) for (const m of metrics.all) registry.registerMetric(m);
    },

    async close() {
      if (closed) return;
      closed = true;
      poller.close();
      safetyPoller.close();
      // Clicks not yet acknowledged stay with Slack (a restart with --state-dir answers them).
      await Promise.all([...receivers.values()].map((rcv) => rcv.close()));
      // Posts still waiting stay in the store (if any): the next start posts them.
      if (!store)
        for (const ch of byName.values()) {
          for (let r = ch.posts.shift(); r; r = ch.posts.shift()) {
            records.delete(r.pending.id);
            r.posted.reject(new Error('the sidecar is shutting down'));
          }
        }
      // Let outcome updates already on their way reach Slack, briefly.
      await Promise.race([Promise.allSettled([...updates]), new Promise((r) => setTimeout(r, 2000).unref())]);
      pool.close();
      await store?.close();
    },
  };
}

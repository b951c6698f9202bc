// The ApprovalRequest controller (leader only): posts each new request to its ApprovalChannel's
// Slack channel once, has its reactions polled (operator/slack-poller.ts), and writes the decision
// into status.
//
// Status is the record. Every step re-reads it and plans (approval-request-plan.ts), so a restarted
// operator, or a new leader, resumes where the last one stopped: Posted requests are polled again
// (a decision made while no operator ran is seen by the first poll), a post that may have happened
// is looked up before posting again, and ended requests get their Slack message rewritten.
// Status writes carry the resourceVersion they were planned on (a 409 re-reads and re-plans), and
// the CRD's transition rules make decisions and the post record write-once, so a replica that lost
// its lease cannot overwrite what the leader wrote.
//
// Buttons (an ApprovalChannel with spec.slack.appTokenKey): the leader holds one Socket Mode
// receiver per Slack app (slack-socket.ts), for its term only. A click is written into the
// request's status.votes (slack-votes.ts plans it; a conditional write on the resourceVersion
// read), and only then acknowledged to Slack: a write conflict is retried from a fresh read, a
// lost lease makes it throw, so the envelope stays unacknowledged and Slack gives it to the next
// connection (the next leader's); the same vote again writes nothing. Decided: the decision is in
// that same write, and the message is rewritten by the next reconcile, as for reactions.
// Reactions a poll reads are recorded in status.votes too (recordReactions), so every vote source
// meets there and one tally decides.
//
// Posting is fair: a request ready to post waits for its turn (post-turns.ts): one post per
// ApprovalChannel at a time, the next taken round-robin across service accounts, pods and MCP
// sessions; a request that ends while it waits is never posted.
import * as k8s from '@kubernetes/client-node';
import {
  ApprovalRequestSpecSchema,
  APPROVAL_ANNOTATIONS,
  APPROVAL_REASONS,
  TOO_MANY_PENDING,
  type ApprovalPhase,
  type ApprovalRequestSpec,
  type ApprovalRequestStatus,
} from '../api/approval-request.js';
import { KINDS } from '../api/crds.js';
import { KUBERNETES_VOTER_PREFIX } from '../api/approval-decision.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import { describeError } from '../lib/describe-error.js';
import { parseTraceparent } from '../lib/trace-context.js';
import { NO_SPAN, type Span } from '../lib/tracing.js';
import { classifySlackError, type ApprovalPostInput, type BackoffConfig, type FinalStatus } from '../slack/index.js';
import { isTerminal, planApproval, type Plan, type PollOutcome } from './approval-request-plan.js';
import { objectId, objectKey, objectKeyFromId, type ObjectKey } from './keys.js';
import type { KubeObject } from './kube-object.js';
import { mergePatch, statusCode } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import { approvalMetrics, type ApprovalMetrics } from './metrics.js';
import { PostTurns } from './post-turns.js';
import type { ChannelTarget, SlackChannels } from './slack-channels.js';
import { AUTH_CODES, SlackPoller } from './slack-poller.js';
import { SlackSockets, type SlackApp, type SlackSocketsOptions } from './slack-socket.js';
import { clickTooLate, planReactionVotes, planSlackVote, slackApprovers, type SlackVoteUpdate } from './slack-votes.js';
import type { ApprovalVote, OpenApproval, PollResult, Votes } from '../slack/index.js';
import type { CurrentApprovers, Vote } from '../api/approval-request.js';
import { APPROVAL_CHANNELS, APPROVAL_REQUESTS } from './sources.js';

export interface ApprovalSettings {
  /** Open (admitted, undecided) ApprovalRequests cluster-wide; beyond it new ones fail. Default 1000. */
  maxPending?: number;
  /** Ended requests are deleted this long after their decision. Default 24 h. */
  retentionMs?: number;
  /** How long a post another replica started may still be in flight. Default 2 min. */
  postGraceMs?: number;
  /** A decision seen this long after expiresAt still counts (the poller's grace). Default 5 s. */
  expiryGraceMs?: number;
  /** Reaction polling backoff (default 2 s ×1.5 up to 30 s). */
  pollBackoff?: Partial<BackoffConfig>;
  /** Reactions of channels with buttons (default 30 s ×2 up to 5 min). */
  safetyBackoff?: Partial<BackoffConfig>;
  /** Socket Mode receiver timings (tests). */
  socket?: SlackSocketsOptions['receiver'];
  /** How often the receivers are checked against the channels' Secrets (a rotated app token). Default 60 s. */
  socketSyncMs?: number;
}

/** `slack`: the term's shared Slack clients. */
export function approvalRequestController(
  slack: (ctx: ControllerContext<ObjectKey>) => SlackChannels,
  settings: ApprovalSettings = {},
): ControllerDefinition<ObjectKey> {
  return {
    kind: 'ar',
    id: objectId,
    // Slack calls may wait on a token's rate limit: many requests are worked on at once.
    concurrency: 16,
    setup: (ctx) => new ApprovalRequestController(ctx, slack(ctx), settings),
  };
}

const WAITING = 'waiting for its turn to be posted to Slack';
/** Whose turn: as the sidecar recorded it (the namespace is the lane's, so it is checked by RBAC). */
const ownerOf = (spec: ApprovalRequestSpec): string[] => [spec.workload.serviceAccount, spec.workload.pod, spec.mcpSessionId ?? ''];
/** The request's id: its key's objectId, also its id in the Slack message ("Request" field). */
const requestId = (obj: KubeObject): string => objectId(objectKey(obj));

type Obj = KubeObject & { spec?: unknown; status?: ApprovalRequestStatus };

class ApprovalRequestController implements Reconciler<ObjectKey> {
  readonly watches = [
    watch(APPROVAL_REQUESTS, (e, obj) => {
      if (e !== 'delete') return [objectKey(obj)];
      this.onDeleted(obj);
      return [];
    }),
    // A channel's new spec (approvers, reactions, token) restarts the polls set up with the old one,
    // and may start or end a Slack app's receiver.
    watch(APPROVAL_CHANNELS, (e, obj) => {
      this.syncSocketsSoon();
      return e === 'update' || e === 'delete' ? this.poller.channelChanged(obj, e === 'delete').map(objectKeyFromId) : [];
    }),
  ];
  private readonly sockets: SlackSockets;
  private socketSync: NodeJS.Timeout | undefined;
  private socketTimer: NodeJS.Timeout | undefined;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly poller: SlackPoller;
  private readonly metrics: ApprovalMetrics;
  /** Admitted by this replica and maybe not yet in the informer's cache (the cap counts them). */
  private readonly admitted = new Set<string>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  private readonly turns: PostTurns;
  /** Keys whose running reconcile took their post turn. */
  private readonly posting = new Set<string>();
  /** The reconcile span of each key being reconciled. */
  private readonly spans = new Map<string, Span>();
  private stopped = false;
  private readonly s: Required<Pick<ApprovalSettings, 'maxPending' | 'retentionMs' | 'postGraceMs' | 'expiryGraceMs'>>;

  constructor(
    private readonly ctx: ControllerContext<ObjectKey>,
    private readonly slack: SlackChannels,
    settings: ApprovalSettings,
  ) {
    this.custom = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
    this.metrics = approvalMetrics(ctx.metrics.registry);
    this.s = {
      maxPending: settings.maxPending ?? 1000,
      retentionMs: settings.retentionMs ?? 24 * 3600_000,
      postGraceMs: settings.postGraceMs ?? 120_000,
      expiryGraceMs: settings.expiryGraceMs ?? 5000,
    };
    this.poller = new SlackPoller({
      log: ctx.log,
      backoff: settings.pollBackoff,
      ...(settings.safetyBackoff ? { safetyBackoff: settings.safetyBackoff } : {}),
      expiryGraceMs: this.s.expiryGraceMs,
      wake: (id) => this.requeue(id),
      forgetSecret: (namespace, name) => slack.forgetSecret(namespace, name),
    });
    // Waiting requests are admitted ones, so the cap on open requests bounds them already.
    this.turns = new PostTurns(this.s.maxPending);
    this.sockets = new SlackSockets({
      log: ctx.log,
      lookup: (id, appKey) => this.lookupClick(id, appKey),
      onVote: (v) => this.onClick(v),
      metrics: this.metrics.sockets,
      ...(settings.socket ? { receiver: settings.socket } : {}),
    });
    // A rotated app token shows only in its Secret: look again now and then.
    this.socketTimer = setInterval(() => this.syncSocketsSoon(), settings.socketSyncMs ?? 60_000);
    this.socketTimer.unref();
    this.syncSocketsSoon();
  }

  // ---------- buttons (Socket Mode) ----------

  /** Channel events come in bursts (the first list): one sync after them. */
  private syncSocketsSoon(): void {
    if (this.stopped || this.socketSync) return;
    this.socketSync = setTimeout(() => {
      this.socketSync = undefined;
      this.syncSockets().catch((err: unknown) =>
        this.ctx.log.warn('could not check the Slack apps of the ApprovalChannels; will try again', { error: describeError(err) }),
      );
    }, 200);
    this.socketSync.unref();
  }

  /** One receiver per Slack app some ApprovalChannel names. A channel that cannot be read now keeps what is held. */
  private async syncSockets(): Promise<void> {
    const wanted = new Map<string, SlackApp>();
    for (const ch of this.ctx.cache(APPROVAL_CHANNELS).list()) {
      const slack = (ch.spec as { slack?: { appTokenKey?: unknown } } | undefined)?.slack;
      if (slack?.appTokenKey === undefined) continue;
      const r = await this.slack.resolve(ch.metadata.namespace!, ch.metadata.name, true);
      if (r.ok && r.target.app) wanted.set(r.target.app.key, r.target.app);
    }
    if (!this.stopped) this.sockets.sync(wanted);
  }

  /** The pending request a click names, when it is posted on a channel of that Slack app. */
  private async lookupClick(id: string, appKey: string): Promise<OpenApproval | undefined> {
    const k = objectKeyFromId(id);
    let obj = this.ctx.cache(APPROVAL_REQUESTS).get(k.name, k.namespace) as Obj | undefined;
    // Not in the cache, or posted but not yet seen there (a new leader's cache still listing, an
    // informer behind the post): ask the API server before calling the click "not pending".
    if (!obj || obj.status?.slack?.ts === undefined) obj = (await this.get(k.namespace, k.name)) ?? undefined;
    const ts = obj?.status?.slack?.ts;
    if (!obj || ts === undefined || isTerminal(obj.status?.phase)) return undefined;
    const spec = ApprovalRequestSpecSchema().safeParse(obj.spec);
    if (!spec.success) return undefined;
    const r = await this.slack.resolve(k.namespace, spec.data.channel);
    if (!r.ok || r.target.app?.key !== appKey) return undefined;
    return { client: r.target.client, ts, tool: spec.data.tool };
  }

  /**
   * An approver's click: written into status.votes (with the decision when it decides) before
   * Slack gets its ack. Throws (left unacked) when this replica no longer leads or the write fails.
   */
  private async onClick(v: ApprovalVote): Promise<void> {
    const k = objectKeyFromId(v.approvalId);
    for (let attempt = 0; attempt < 5; attempt++) {
      if (this.stopped) throw new Error('no longer the leader; left for the next one');
      const obj = await this.get(k.namespace, k.name);
      const spec = obj ? ApprovalRequestSpecSchema().safeParse(obj.spec) : undefined;
      if (!obj || !spec?.success || obj.status?.slack?.ts !== v.ts) return;
      // Past its expiry or cancelled by the agent: the request ends Expired or Cancelled, whatever a late click says.
      if (clickTooLate(spec.data, this.now())) return;
      const r = await this.slack.resolve(k.namespace, spec.data.channel);
      if (!r.ok) throw new Error(r.message);
      const t = r.target;
      const name = await t.connection.directory.displayName(v.user).catch(() => v.user);
      const vote: Vote = { by: v.user, name, via: 'slack', decision: v.action, at: this.now().toISOString() };
      const required = t.spec.approvers.required ?? 1;
      // The clicker passed the allowlist a moment ago (socket-mode.ts); the others recorded are checked again.
      const approvers = await this.currentApprovers(t, obj.status?.votes ?? [], [v.user]);
      let plan = planSlackVote(obj.status ?? {}, vote, required, approvers, [], v.reason);
      if (plan.do === 'write' && !plan.update.end && required > 1) {
        // Another approver may have reacted: read the reactions now, not at the next safety poll.
        const reactions = await this.reactionVotes(t, v.ts).catch(() => []);
        const withReactions = await this.currentApprovers(t, obj.status?.votes ?? [], [v.user, ...reactions.map((r) => r.by)]);
        plan = planSlackVote(obj.status ?? {}, vote, required, withReactions, reactions, v.reason);
      }
      if (plan.do !== 'write') return;
      const u = plan.update;
      const fresh = await this.writeVotes(obj, u);
      if (!fresh) continue;
      const key = requestId(obj);
      if (!u.end) {
        this.ctx.log.info('approval vote from Slack', { request: key, user: v.user, vote: v.action, approvals: u.approvals });
        await this.ctx.events.event(fresh, 'Normal', 'Voted', `${name} voted ${v.action} in Slack (approvals ${u.approvals})`);
        t.client
          .showProgress(v.ts, this.postInput(fresh, spec.data), u.approvedBy)
          .catch((err: unknown) => this.ctx.log.warn('could not show the approval progress in Slack', { request: key, error: describeError(err) }));
      }
      return;
    }
    throw new Error('the ApprovalRequest kept changing while the vote was written; left for Slack to deliver again');
  }

  /**
   * Writes Slack votes (and the decision they complete) into status, conditional on the
   * resourceVersion of `obj`; null on a write conflict (re-read and re-plan). Decided: the request
   * ends here, and the next reconcile rewrites the message with the outcome.
   */
  private async writeVotes(obj: Obj, u: SlackVoteUpdate): Promise<Obj | null> {
    const decidedAt = this.now().toISOString();
    let fresh: Obj;
    try {
      fresh = await this.patchStatus(obj, {
        votes: u.votes,
        approvals: u.approvals,
        ...(u.end ? { phase: u.end.phase, reason: u.end.reason, message: u.end.message, decidedBy: u.end.decidedBy, decidedAt } : {}),
      });
    } catch (err) {
      if (statusCode(err) === 409) return null;
      throw err;
    }
    if (u.end) {
      this.ended(obj, fresh, u.end.phase, u.end.reason, u.end.message, decidedAt, u.end.decidedBy);
      await this.ctx.events.event(fresh, 'Normal', u.end.phase, u.end.message);
      this.requeue(requestId(obj));
    }
    return fresh;
  }

  /**
   * The channel's approvers now, for the votes recorded on a request (standingVotes): its
   * Kubernetes users and groups, and its Slack allowlist (`known`: Slack users just checked
   * against it; user groups read, cached, only for other Slack voters).
   */
  private async currentApprovers(t: ChannelTarget, votes: readonly Vote[], known: readonly string[]): Promise<CurrentApprovers> {
    const slack = await slackApprovers(t.spec.approvers, votes, () => t.connection.directory.allowlist(t.spec.approvers, true), known);
    return { slack, kubernetes: t.spec.approvers.kubernetes };
  }

  /** Allowlisted reactions on the message, as votes (counted with a click; the reaction poll records them). */
  private async reactionVotes(t: ChannelTarget, ts: string): Promise<Vote[]> {
    const res = await t.client.pollReactions(ts, 'high');
    const at = this.now().toISOString();
    const tally = res.tally;
    if (!tally) return [];
    const as = (ids: readonly string[], decision: 'approve' | 'reject'): Vote[] => ids.map((by) => ({ by, via: 'slack', decision, at }));
    return tally.state === 'rejected' ? as(tally.by, 'reject') : as(tally.state === 'pending' ? tally.approvedBy : tally.by, 'approve');
  }

  /** The Slack votes recorded on a request (from the cache), for the safety poll to count with the reactions. */
  private clicksOf(id: string): Votes {
    const k = objectKeyFromId(id);
    const obj = this.ctx.cache(APPROVAL_REQUESTS).get(k.name, k.namespace) as Obj | undefined;
    const out: Votes = { approve: new Set(), reject: new Set() };
    for (const v of obj?.status?.votes ?? []) if (v.via === 'slack') out[v.decision].add(v.by);
    return out;
  }

  private now(): Date {
    return new Date();
  }

  private requeue(id: string, delayMs?: number): void {
    this.ctx.enqueue(objectKeyFromId(id), delayMs);
  }

  /** Carries out plans for one request until there is nothing to do now (or it must wait). */
  async reconcile(k: ObjectKey, span: Span = NO_SPAN): Promise<void> {
    const { namespace, name } = k;
    const key = objectId(k);
    // The queue never runs one key twice at once: this run's span, for the decision it may write.
    this.spans.set(key, span);
    let obj: Obj | null | undefined = this.ctx.cache(APPROVAL_REQUESTS).get(name, namespace) as Obj | undefined;
    try {
      for (let step = 0; step < 10 && !this.stopped; step++) {
        if (!obj) {
          this.forget(key);
          return;
        }
        try {
          const next = await this.act(obj);
          if (next === null) return;
          obj = next;
        } catch (err) {
          if (statusCode(err) !== 409) throw err;
          // Someone wrote in between (the sidecar, another replica, a person): read and plan again
          // (a post turn is kept for that).
          obj = await this.get(namespace, name);
        }
      }
    } finally {
      this.spans.delete(key);
      // A turn taken in this run ends with it: done, failed (retried later, at the back) or gone.
      if (this.posting.delete(key)) this.releaseTurn(key, this.turns.done(key));
    }
  }

  private async get(namespace: string, name: string): Promise<Obj | null> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: KINDS.ApprovalRequest.plural, name })) as Obj;
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw err;
    }
  }

  /** Open requests cluster-wide other than `key`: admitted (phase set) and not ended. */
  private openCount(except: string): number {
    const open = new Set(this.admitted);
    for (const o of this.ctx.cache(APPROVAL_REQUESTS).list()) {
      const phase = (o as Obj).status?.phase;
      const k = requestId(o);
      if (phase && !isTerminal(phase)) open.add(k);
      else if (isTerminal(phase)) open.delete(k);
    }
    this.metrics.open.set(open.size);
    open.delete(except);
    return open.size;
  }

  /** One step; the updated object to plan again with, or null when done for now. */
  private async act(obj: Obj): Promise<Obj | null> {
    const key = requestId(obj);
    const parsed = ApprovalRequestSpecSchema().safeParse(obj.spec);
    const status = obj.status ?? {};
    const plan = planApproval({
      namespace: obj.metadata.namespace!,
      spec: parsed.success ? parsed.data : null,
      specError: parsed.success ? undefined : parsed.error.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; '),
      status,
      result: obj.metadata.annotations?.[APPROVAL_ANNOTATIONS.result],
      created: new Date(obj.metadata.creationTimestamp ?? this.now()),
      now: this.now(),
      pollResult: this.poller.outcome(key),
      polling: this.poller.isPolling(key),
      me: this.ctx.identity,
      postGraceMs: this.s.postGraceMs,
      retentionMs: this.s.retentionMs,
      // Admitted already (waiting for its post turn) counts as admitted, even before Pending is read back.
      pending: status.phase === undefined && !this.admitted.has(key) ? this.openCount(key) : 0,
      maxPending: this.s.maxPending,
    });
    if (plan.do !== 'nothing' && plan.do !== 'later') this.ctx.log.debug('approval step', { request: key, step: plan.do, phase: status.phase });
    const spec = parsed.success ? parsed.data : null;
    // Ended by another writer (an ApprovalDecision from kubectl, a person patching status): stop polling.
    if (isTerminal(status.phase) && (this.poller.isPolling(key) || this.expiryTimers.has(key))) {
      this.poller.done(key);
      this.clearExpiry(key);
      this.admitted.delete(key);
    }
    // A turn is held for a post step only (a request granted one may have ended meanwhile).
    if (plan.do !== 'post' && plan.do !== 'recover') {
      this.posting.delete(key);
      this.releaseTurn(key, this.turns.drop(key));
    }
    switch (plan.do) {
      case 'nothing':
        return null;
      case 'later':
        // Retention: the periodic resync comes back too; a near end gets its own wake-up.
        if (plan.ms < 10 * 60_000) this.requeue(key, plan.ms + 1000);
        return null;
      case 'wait':
        this.ctx.log.info('not posting yet: another replica may be posting', { request: key, why: plan.why, retryInMs: plan.ms });
        this.wakeAtExpiry(key, spec);
        this.requeue(key, plan.ms);
        return null;
      case 'delete':
        if (this.stopped) return null;
        await this.custom
          .deleteNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: obj.metadata.namespace!,
            plural: KINDS.ApprovalRequest.plural,
            name: obj.metadata.name,
            body: { preconditions: { uid: obj.metadata.uid } },
          })
          .catch((err) => {
            if (statusCode(err) !== 404 && statusCode(err) !== 409) throw err;
          });
        this.ctx.log.info('approval request deleted after its retention', { request: key, phase: status.phase });
        this.forget(key);
        return null;
      case 'fail':
        return this.end(obj, 'Failed', plan.reason, plan.message);
      case 'cancel':
        this.poller.stop(key);
        return this.end(obj, 'Cancelled', APPROVAL_REASONS.cancelled, 'cancelled by the agent before a decision');
      case 'expire':
        return this.end(obj, 'Expired', APPROVAL_REASONS.expired, plan.message);
      case 'decide':
        return this.decide(obj, plan.outcome);
      case 'post':
      case 'recover': {
        // Admitted from here on: counted against the cap before the first await.
        if (status.phase === undefined) this.admitted.add(key);
        const turn = this.turns.take(`${obj.metadata.namespace}/${spec!.channel}`, ownerOf(spec!), key);
        this.metrics.postsWaiting.set(this.turns.waiting);
        if (turn === 'wait') {
          // Requeued when its turn comes; ended at expiry if it never does. Admitted is recorded
          // (Pending), so the cap holds across a leader change and kubectl shows why it waits.
          this.wakeAtExpiry(key, spec);
          if (status.phase === undefined) await this.patchStatus(obj, { phase: 'Pending', reason: null, message: WAITING });
          return null;
        }
        if (turn === 'full') {
          return this.end(
            obj,
            'Failed',
            APPROVAL_REASONS.tooManyPending,
            `${TOO_MANY_PENDING}: ${this.turns.waiting} wait to be posted (the operator's limit is ${this.s.maxPending})`,
          );
        }
        this.posting.add(key);
        return plan.do === 'post' ? this.post(obj, spec!) : this.recover(obj, spec!);
      }
      case 'poll':
        return this.poll(obj, spec!);
      case 'update-message':
        return this.updateMessage(obj, spec, plan.state);
      default:
        return assertNever(plan);
    }
  }

  /**
   * Writes a status merge patch, conditional on the resourceVersion unless `force`. Nothing is
   * written once this replica stopped leading (its Slack client is closed, so what it saw may be
   * that), except the ts of a message it did post: recording that spares the next leader a search.
   */
  private async patchStatus(obj: Obj, status: Record<string, unknown>, force = false, evenIfStopped = false): Promise<Obj> {
    if (this.stopped && !evenIfStopped) throw new Error('no longer the leader; not writing');
    const body = force ? { status } : { metadata: { resourceVersion: obj.metadata.resourceVersion }, status };
    return (await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace: obj.metadata.namespace!, plural: KINDS.ApprovalRequest.plural, name: obj.metadata.name, body },
      mergePatch(),
    )) as Obj;
  }

  /**
   * The decision in the held call's trace: a span whose parent is the sidecar's approval wait (the
   * request's traceparent annotation), linked both ways with this reconcile. Outcome and the count
   * of approvers only; never who, never the call's arguments.
   */
  private traceDecision(obj: Obj, phase: ApprovalPhase, decidedAt: string, approvers: number): void {
    const { tracer } = this.ctx;
    const wait = parseTraceparent(obj.metadata.annotations?.[APPROVAL_ANNOTATIONS.traceparent]);
    if (!tracer.on || wait === null) return;
    const reconcile = this.spans.get(requestId(obj));
    const decision = tracer.start('approval decision', {
      parent: wait,
      startTime: Date.parse(decidedAt),
      attributes: {
        'thoughtgate.approval.outcome': phase.toLowerCase(),
        'thoughtgate.approval.approvers': approvers,
        'thoughtgate.approval.decided_in': 'operator',
      },
      ...(reconcile?.ref ? { links: [reconcile.ref] } : {}),
    });
    decision.end();
    if (decision.ref) reconcile?.link(decision.ref, { 'thoughtgate.link': 'decision' });
  }

  /** Ends a request (a terminal phase, written once) with an Event; the Slack message follows in the next step. */
  private async end(obj: Obj, phase: ApprovalPhase, reason: string, message: string, by?: { id: string; name?: string }[], at?: Date): Promise<Obj> {
    const decidedAt = (at ?? this.now()).toISOString();
    const fresh = await this.patchStatus(obj, { phase, reason, message, decidedAt, ...(by?.length ? { decidedBy: by } : {}) });
    const warn = this.ended(obj, fresh, phase, reason, message, decidedAt, by);
    await this.ctx.events.event(fresh, warn ? 'Warning' : 'Normal', phase, message);
    return fresh;
  }

  /** What follows a terminal phase written by this replica: trace, metrics, log; true when worth a Warning. */
  private ended(
    obj: Obj,
    _fresh: Obj,
    phase: ApprovalPhase,
    reason: string,
    message: string,
    decidedAt: string,
    by?: { id: string; name?: string }[],
  ): boolean {
    const key = requestId(obj);
    this.traceDecision(obj, phase, decidedAt, by?.length ?? 0);
    this.poller.done(key);
    this.admitted.delete(key);
    this.clearExpiry(key);
    this.releaseTurn(key, this.turns.drop(key));
    this.metrics.decisions.inc({ outcome: phase });
    const warn = phase === 'Failed' || phase === 'Expired';
    this.ctx.log[phase === 'Failed' ? 'warn' : 'info']('approval request ended', { request: key, phase, reason, message, by: by?.map((b) => b.name ?? b.id) });
    return warn;
  }

  /** After a turn was given up: the key now holding it (if any) is worked on next. */
  private releaseTurn(key: string, next: string | undefined): void {
    this.metrics.postsWaiting.set(this.turns.waiting);
    if (next === undefined || this.stopped) return;
    this.ctx.log.debug('approval post turn', { request: next, after: key });
    this.requeue(next);
  }

  private async decide(obj: Obj, o: PollOutcome): Promise<Obj | null> {
    const at = new Date(o.at);
    if (o.status === 'failed') return this.end(obj, 'Failed', APPROVAL_REASONS.slackRefused, o.message, undefined, at);
    if (o.status === 'expired')
      return this.end(obj, 'Expired', APPROVAL_REASONS.expired, 'no decision in Slack before the request expired; the call is rejected', undefined, at);
    const r = await this.slack.resolve(obj.metadata.namespace!, (obj.spec as ApprovalRequestSpec).channel);
    const by = await Promise.all(o.by.map(async (id) => ({ id, name: r.ok ? await r.target.connection.directory.displayName(id).catch(() => id) : id })));
    const names = by.map((b) => b.name).join(', ');
    return o.status === 'approved'
      ? this.end(obj, 'Approved', APPROVAL_REASONS.approved, `approved in Slack by ${names}`, by, at)
      : this.end(obj, 'Rejected', APPROVAL_REASONS.rejected, `rejected in Slack by ${names}`, by, at);
  }

  /** The channel's Slack client, or the request ended as Failed. `fresh` re-reads the token Secret. */
  private async target(obj: Obj, spec: ApprovalRequestSpec, fresh = false): Promise<ChannelTarget | Obj> {
    const r = await this.slack.resolve(obj.metadata.namespace!, spec.channel, fresh);
    if (r.ok) return r.target;
    return this.end(obj, 'Failed', r.reason, r.message);
  }

  private async post(obj: Obj, spec: ApprovalRequestSpec): Promise<Obj | null> {
    const key = requestId(obj);
    let t: ChannelTarget | Obj;
    try {
      // Fresh: a post is where a deleted Secret or a changed token must show (one GET per request).
      t = await this.target(obj, spec, true);
    } catch (err) {
      if (obj.status?.phase === undefined) this.admitted.delete(key);
      throw err;
    }
    if (!('client' in t)) return t;
    let fresh: Obj;
    try {
      fresh = await this.patchStatus(obj, {
        phase: 'Pending',
        reason: null,
        message: 'posting to Slack',
        slack: { channel: t.spec.slack.channel, postingStartedAt: this.now().toISOString(), postingBy: this.ctx.identity },
      });
    } catch (err) {
      if (obj.status?.phase === undefined) this.admitted.delete(key);
      throw err;
    }
    return this.postNow(fresh, spec, t);
  }

  /** postingStartedAt is recorded: post (the message does not exist, as far as anyone can tell). */
  private async postNow(obj: Obj, spec: ApprovalRequestSpec, t: ChannelTarget): Promise<Obj | null> {
    const key = requestId(obj);
    let ts: string;
    try {
      ts = (await t.client.post(this.postInput(obj, spec))).ts;
    } catch (e) {
      const err = classifySlackError('chat.postMessage', e);
      if (this.stopped) throw err;
      if (!err.retryable) {
        this.metrics.posts.inc({ result: 'failed' });
        return this.end(obj, 'Failed', APPROVAL_REASONS.slackRefused, err.message);
      }
      return this.retryLater(obj, spec, `Slack unavailable, will retry until the request expires: ${err.message}`, err);
    }
    this.metrics.posts.inc({ result: 'posted' });
    // Unconditional: the ts must be recorded whatever else changed meanwhile (write-once in the CRD).
    const posted = { ts, channel: t.spec.slack.channel, messageState: 'Posted' };
    const fresh = await this.patchStatus(obj, { phase: 'Posted', message: 'posted to Slack; waiting for a decision', slack: posted }, true, true).catch(
      (err) => {
        // Decided meanwhile (an ApprovalDecision from kubectl): the CRD keeps the decision; record
        // only where the message is, so the next step rewrites it with the outcome.
        if (statusCode(err) !== 422) throw err;
        return this.patchStatus(obj, { slack: posted }, true, true);
      },
    );
    this.clearExpiry(key);
    this.ctx.log.info('approval posted to Slack', { request: key, channel: t.spec.slack.channel, slackTs: ts });
    await this.ctx.events.event(fresh, 'Normal', 'Posted', `posted to Slack channel ${t.spec.slack.channel} (ts ${ts}); waiting for a decision`);
    return fresh;
  }

  /** postingStartedAt without ts: the message may exist. Look for it before posting again. */
  private async recover(obj: Obj, spec: ApprovalRequestSpec): Promise<Obj | null> {
    const key = requestId(obj);
    const t = await this.target(obj, spec, true);
    if (!('client' in t)) return t;
    const started = Date.parse(obj.status?.slack?.postingStartedAt ?? '');
    const now = this.now().getTime();
    // A minute either side: clocks of operator replicas and Slack differ a little.
    const since = (Number.isNaN(started) ? now - 3600_000 : started) - 60_000;
    let found: Awaited<ReturnType<typeof t.client.findPosted>>;
    try {
      found = await t.client.findPosted(key, { since, until: now + 60_000 });
    } catch (e) {
      const err = classifySlackError('conversations.history', e);
      if (this.stopped) throw err;
      if (err.retryable) return this.retryLater(obj, spec, `Slack unavailable, will retry until the request expires: ${err.message}`, err);
      if (err.code === 'channel_not_found' || AUTH_CODES.has(err.code)) return this.end(obj, 'Failed', APPROVAL_REASONS.slackRefused, err.message);
      // e.g. missing_scope (channels:history): cannot tell; a possible duplicate beats a lost approval.
      this.ctx.log.warn('cannot look for an approval message that may have been posted; posting (it may appear twice)', { request: key, error: err.message });
      found = { message: null, complete: false };
    }
    if (found.message) {
      const fresh = await this.patchStatus(
        obj,
        {
          phase: 'Posted',
          message: 'posted to Slack; waiting for a decision',
          slack: { ts: found.message.ts, channel: found.message.channel, messageState: 'Posted' },
        },
        true,
      );
      this.clearExpiry(key);
      this.metrics.posts.inc({ result: 'adopted' });
      this.ctx.log.info('found the approval message posted before a restart; not posting again', { request: key, slackTs: found.message.ts });
      await this.ctx.events.event(fresh, 'Normal', 'Adopted', `found the Slack message posted before a restart (ts ${found.message.ts}); not posting again`);
      return fresh;
    }
    if (!found.complete) this.ctx.log.warn('the channel history was too long to search fully; posting (it may appear twice)', { request: key });
    return this.postNow(obj, spec, t);
  }

  /** A transient failure: say so in status, wake up at expiry, and let the queue retry with backoff. */
  private async retryLater(obj: Obj, spec: ApprovalRequestSpec, message: string, err: Error): Promise<never> {
    const key = requestId(obj);
    this.wakeAtExpiry(key, spec);
    if (obj.status?.message !== message) await this.patchStatus(obj, { message }, true).catch(() => undefined);
    this.ctx.log.warn('approval not posted yet; retrying', { request: key, error: err.message });
    throw err;
  }

  private async poll(obj: Obj, spec: ApprovalRequestSpec): Promise<Obj | null> {
    const key = requestId(obj);
    const t = await this.target(obj, spec);
    if (!('client' in t)) return t;
    const app = t.app;
    this.poller.start(
      key,
      t,
      obj.status!.slack!.ts!,
      new Date(spec.expiresAt),
      app ? { clicks: () => this.clicksOf(key), connectedSince: () => this.sockets.connectedSince(app.key) } : undefined,
      (r) => this.recordReactions(key, t, r),
    );
    return null;
  }

  /**
   * A reaction poll's read, before the poller sees it: allowlisted votes not yet in status.votes
   * are written there (planReactionVotes; conditional on the resourceVersion read), so reactions
   * add up with clicks and kubectl approvals in the one tally, and a decision they complete is
   * written here. A read that Slack alone decides goes on as before: while a request is open its
   * recorded votes are approvals only (a reject ends it), so adding them cannot change that outcome.
   */
  private async recordReactions(key: string, t: ChannelTarget, r: PollResult): Promise<PollResult> {
    const tally = r.tally;
    if (r.decision || tally?.state !== 'pending' || tally.approvedBy.length === 0) return r;
    // The usual read finds nothing new: no name lookups, no write.
    const k = objectKeyFromId(key);
    const known = (this.ctx.cache(APPROVAL_REQUESTS).get(k.name, k.namespace) as Obj | undefined)?.status?.votes ?? [];
    if (tally.approvedBy.every((by) => known.some((v) => v.by === by))) return r;
    // Never fails the read: a vote not recorded now is recorded by the next one.
    await this.writeReactionVotes(key, t, tally.approvedBy).catch((err: unknown) =>
      this.ctx.log.warn('could not record reaction votes; the next read tries again', { request: key, error: describeError(err) }),
    );
    return r;
  }

  private async writeReactionVotes(key: string, t: ChannelTarget, approvedBy: readonly string[]): Promise<void> {
    const k = objectKeyFromId(key);
    const at = this.now().toISOString();
    const reactions: Vote[] = await Promise.all(
      approvedBy.map(async (by) => ({
        by,
        name: await t.connection.directory.displayName(by).catch(() => by),
        via: 'slack' as const,
        decision: 'approve' as const,
        at,
      })),
    );
    const required = t.spec.approvers.required ?? 1;
    for (let attempt = 0; attempt < 3 && !this.stopped; attempt++) {
      const obj = attempt === 0 ? (this.ctx.cache(APPROVAL_REQUESTS).get(k.name, k.namespace) as Obj | undefined) : await this.get(k.namespace, k.name);
      if (!obj) return;
      const plan = planReactionVotes(obj.status ?? {}, reactions, required, await this.currentApprovers(t, obj.status?.votes ?? [], approvedBy));
      if (plan.do !== 'write') return;
      const u = plan.update;
      const fresh = await this.writeVotes(obj, u);
      if (!fresh) continue;
      if (!u.end) {
        this.ctx.log.info('approval votes from reactions recorded', { request: key, approvals: u.approvals });
        await this.ctx.events.event(fresh, 'Normal', 'Voted', `reactions recorded from Slack (approvals ${u.approvals})`);
        const spec = ApprovalRequestSpecSchema().safeParse(fresh.spec);
        const ts = fresh.status?.slack?.ts;
        if (spec.success && ts !== undefined)
          t.client
            .showProgress(ts, this.postInput(fresh, spec.data), u.approvedBy)
            .catch((err: unknown) => this.ctx.log.warn('could not show the approval progress in Slack', { request: key, error: describeError(err) }));
      }
      return;
    }
  }

  private async updateMessage(obj: Obj, spec: ApprovalRequestSpec | null, state: string): Promise<Obj | null> {
    const key = requestId(obj);
    const status = obj.status ?? {};
    const record = (s: string) => this.patchStatus(obj, { slack: { messageState: s } }, true);
    if (!spec) return record(state);
    const r = await this.slack.resolve(obj.metadata.namespace!, spec.channel);
    if (!r.ok) {
      await this.ctx.events.event(obj, 'Warning', 'SlackMessageNotUpdated', `the Slack message still shows the request as pending: ${r.message}`);
      return record(state);
    }
    const result = obj.metadata.annotations?.[APPROVAL_ANNOTATIONS.result];
    const phase = status.phase!;
    // The message names Slack deciders itself; a decision from kubectl is said in words ("approved by alice (kubectl): …").
    const fromKubectl = status.decidedBy?.some((b) => b.id.startsWith(KUBERNETES_VOTER_PREFIX)) ? status.message : undefined;
    const reason =
      phase === 'Approved'
        ? [fromKubectl, result ? `the call ${result}` : undefined].filter(Boolean).join('; ') || undefined
        : phase === 'Rejected'
          ? fromKubectl
          : phase === 'Cancelled' || phase === 'Failed'
            ? status.message
            : undefined;
    try {
      await r.target.client.finish(status.slack!.ts!, this.postInput(obj, spec), {
        status: phase.toLowerCase() as FinalStatus,
        by: status.decidedBy,
        at: status.decidedAt ? new Date(status.decidedAt) : this.now(),
        ...(reason ? { reason } : {}),
      });
    } catch (e) {
      const err = classifySlackError('chat.update', e);
      if (err.retryable || this.stopped) throw err;
      this.ctx.log.warn('could not update the Slack message', { request: key, error: err.message });
      await this.ctx.events.event(obj, 'Warning', 'SlackMessageNotUpdated', err.message);
    }
    return record(state);
  }

  private postInput(obj: Obj, spec: ApprovalRequestSpec): ApprovalPostInput {
    return {
      id: requestId(obj),
      tool: spec.tool,
      source: spec.source,
      method: spec.method,
      ...(spec.protocol !== undefined ? { protocol: spec.protocol } : {}),
      ...(spec.a2a !== undefined ? { a2a: { ...spec.a2a } } : {}),
      arguments: spec.arguments,
      workload: spec.workload,
      expiresAt: new Date(spec.expiresAt),
      rule: spec.reason,
    };
  }

  private wakeAtExpiry(key: string, spec: ApprovalRequestSpec | null): void {
    if (!spec || this.expiryTimers.has(key)) return;
    const ms = Date.parse(spec.expiresAt) - this.now().getTime();
    if (!(ms > 0)) return;
    const t = setTimeout(
      () => {
        this.expiryTimers.delete(key);
        this.requeue(key);
      },
      Math.min(ms + 50, 2 ** 31 - 1),
    );
    t.unref();
    this.expiryTimers.set(key, t);
  }

  private clearExpiry(key: string): void {
    const t = this.expiryTimers.get(key);
    if (t) clearTimeout(t);
    this.expiryTimers.delete(key);
  }

  private forget(key: string): void {
    this.poller.forget(key);
    this.admitted.delete(key);
    this.clearExpiry(key);
    this.releaseTurn(key, this.turns.drop(key));
  }

  /** The informer saw a request deleted: stop, and tell Slack when it was still open there. */
  private onDeleted(obj: KubeObject): void {
    const o = obj as Obj;
    const key = requestId(o);
    this.forget(key);
    const ts = o.status?.slack?.ts;
    if (this.stopped || !ts || isTerminal(o.status?.phase)) return;
    const parsed = ApprovalRequestSpecSchema().safeParse(o.spec);
    if (!parsed.success) return;
    void this.slack
      .resolve(o.metadata.namespace!, parsed.data.channel)
      .then(async (r) => {
        if (!r.ok) return;
        await r.target.client.finish(ts, this.postInput(o, parsed.data), {
          status: 'cancelled',
          at: this.now(),
          reason: 'the ApprovalRequest was deleted before a decision',
        });
      })
      .catch((err: unknown) => this.ctx.log.warn('could not mark the Slack message of a deleted request', { request: key, error: describeError(err) }));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.socketSync);
    clearInterval(this.socketTimer);
    // Clicks not yet written stay unacknowledged: Slack gives them to the next leader's socket.
    void this.sockets.close();
    this.poller.close();
    for (const t of this.expiryTimers.values()) clearTimeout(t);
    this.expiryTimers.clear();
    this.turns.clear();
    this.posting.clear();
    this.metrics.postsWaiting.set(0);
  }
}

function assertNever(x: never): never {
  throw new Error(`unhandled plan ${JSON.stringify(x as Plan)}`);
}

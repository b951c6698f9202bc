// The ApprovalChannel controller: one key per channel. It resolves the channel (token Secret, API
// URL), checks it in Slack when operator/approval-channel-plan.ts says so, and writes the status
// and an Event on a Ready transition. The Secret is re-read every secretPollMs (no watch of Secrets),
// so a rotated or deleted token shows within that.
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import { planChannelStatus, planCheck, type CheckResult, type LastCheck, type StoredChannelStatus } from './approval-channel-plan.js';
import { objectId, objectKey, type ObjectKey } from './keys.js';
import { ignoreNotFound, mergePatch } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import type { SlackChannels } from './slack-channels.js';
import { APPROVAL_CHANNELS } from './sources.js';

export interface ChannelCheckSettings {
  /** Full Slack check at least this often. Default 5 min. */
  checkIntervalMs?: number;
  /** Re-read the token Secret this often (a changed token is checked at once). Default 60 s. */
  secretPollMs?: number;
}

/** `slack`: the term's shared Slack clients. */
export function approvalChannelController(
  slack: (ctx: ControllerContext<ObjectKey>) => SlackChannels,
  settings: ChannelCheckSettings = {},
): ControllerDefinition<ObjectKey> {
  return {
    kind: 'ac',
    id: objectId,
    concurrency: 4,
    setup: (ctx) => new ApprovalChannelController(ctx, slack(ctx), settings),
  };
}

class ApprovalChannelController implements Reconciler<ObjectKey> {
  readonly watches = [watch(APPROVAL_CHANNELS, (_e, obj) => [objectKey(obj)])];
  private readonly custom: k8s.CustomObjectsApi;
  private readonly last = new Map<string, LastCheck>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly checkIntervalMs: number;
  private readonly secretPollMs: number;
  private stopped = false;

  constructor(
    private readonly ctx: ControllerContext<ObjectKey>,
    private readonly slack: SlackChannels,
    s: ChannelCheckSettings,
  ) {
    this.custom = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
    this.checkIntervalMs = s.checkIntervalMs ?? 300_000;
    this.secretPollMs = s.secretPollMs ?? 60_000;
  }

  async reconcile(key: ObjectKey): Promise<void> {
    const { namespace, name } = key;
    const id = objectId(key);
    const obj = this.ctx.cache(APPROVAL_CHANNELS).get(name, namespace);
    if (!obj) {
      this.forget(id);
      return;
    }
    const now = new Date();
    const generation = obj.metadata.generation ?? 0;
    const r = await this.slack.resolve(namespace, name, true);
    const plan = planCheck({
      generation,
      resolved: r.ok ? { ok: true, connKey: r.target.connKey } : r,
      last: this.last.get(id),
      now: now.getTime(),
      checkIntervalMs: this.checkIntervalMs,
      hasReady: obj.status?.conditions?.some((c) => c.type === 'Ready') ?? false,
    });
    if (plan.do === 'skip') {
      this.schedule(key, this.secretPollMs);
      return;
    }
    let result: CheckResult;
    if (plan.do === 'report') result = plan.result;
    else if (r.ok) result = { check: await r.target.client.check() };
    else return; // planCheck reports every channel that did not resolve
    // Stopped meanwhile (leadership lost): the Slack client was closed under the check.
    if (this.stopped) return;
    const s = planChannelStatus({ result, generation, status: obj.status as StoredChannelStatus | undefined, now, secretPollMs: this.secretPollMs });
    this.last.set(id, { fingerprint: plan.fingerprint, at: now.getTime(), unsure: s.unsure });
    if (s.write) {
      await this.custom
        .patchNamespacedCustomObjectStatus(
          { group: GROUP, version: VERSION, namespace, plural: KINDS.ApprovalChannel.plural, name, body: { status: s.write } },
          mergePatch(),
        )
        .catch(ignoreNotFound);
    }
    if (s.transition) {
      const t = s.transition;
      await this.ctx.events.event(obj, t.type, t.reason, t.message);
      this.ctx.log[t.ready === 'True' ? 'info' : 'warn']('approval channel checked', { channel: id, ready: t.ready, reason: t.reason, message: t.message });
    }
    this.schedule(key, s.requeueMs);
  }

  /** The next look at a channel (its own timer: a newer schedule replaces an older one). */
  private schedule(key: ObjectKey, ms: number): void {
    if (this.stopped) return;
    const id = objectId(key);
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    const timer = setTimeout(() => {
      this.timers.delete(id);
      this.ctx.enqueue(key);
    }, ms);
    timer.unref();
    this.timers.set(id, timer);
  }

  private forget(id: string): void {
    this.last.delete(id);
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

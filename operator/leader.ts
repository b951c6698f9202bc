// Leader election on a coordination.k8s.io Lease, as client-go does it (client-node has none).
// Only the leader reconciles; every replica serves the webhook. Writes are guarded by the Lease's
// resourceVersion, so two candidates can never both believe they won.
import * as k8s from '@kubernetes/client-node';
import { describeError } from '../lib/describe-error.js';
import type { Logger } from '../lib/log.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSec?: number;
  /** A leader that cannot renew for this long steps down (must be < lease duration). */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
}

export type LeaseState = { holder: string; renewTime: Date | null; durationSec: number; transitions: number; resourceVersion?: string } | null;

/** Pure: may `me` take the lease now? */
export function canAcquire(state: LeaseState, me: string, now: Date): boolean {
  if (!state?.holder) return true;
  if (state.holder === me) return true;
  if (!state.renewTime) return true;
  return state.renewTime.getTime() + state.durationSec * 1000 < now.getTime();
}

function toState(l: k8s.V1Lease): LeaseState {
  const s = l.spec ?? {};
  // client-node returns MicroTime fields as strings at run time despite their Date type.
  const renew = s.renewTime ? new Date(s.renewTime as unknown as string) : null;
  return {
    holder: s.holderIdentity ?? '',
    renewTime: renew,
    durationSec: s.leaseDurationSeconds ?? 15,
    transitions: s.leaseTransitions ?? 0,
    resourceVersion: l.metadata?.resourceVersion,
  };
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private lastRenew = 0;
  private readonly api: k8s.CoordinationV1Api;
  private readonly duration: number;
  private readonly renewDeadline: number;
  private readonly retry: number;

  constructor(
    kc: k8s.KubeConfig,
    private o: LeaderOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.duration = o.leaseDurationSec ?? 15;
    this.renewDeadline = o.renewDeadlineMs ?? 10_000;
    this.retry = o.retryPeriodMs ?? 2_000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      // client-node 1.4 requests have no timeout: a request stuck on a dead connection (say, across
      // an API server restart) must not stall the loop, or a leader whose lease has expired would
      // never notice and step down while another replica takes over.
      // The lease's renewTime is written about now: count from here, not from when the answer came.
      const started = Date.now();
      // Past the deadline already (the last attempts failed): step down before trying again, so
      // this replica never leads past its lease while another may have taken it.
      if (this.leading && started - this.lastRenew > this.renewDeadline) await this.stepDown();
      if (this.stopped) return;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), this.retry * 2);
      });
      const ok = await Promise.race([
        this.tryAcquireOrRenew().catch((err: unknown) => {
          (this.leading ? this.o.log.warn : this.o.log.debug)('lease attempt failed', { lease: this.o.name, error: describeError(err) });
          return false;
        }),
        deadline,
      ]);
      clearTimeout(timer);
      // stop() may have run while the attempt was in flight: a stopped elector never starts leading.
      if (this.stopped) return;
      const now = Date.now();
      if (ok) {
        this.lastRenew = started;
        if (!this.leading) {
          this.leading = true;
          this.o.log.info('became leader', { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity });
          await this.o.onStartedLeading();
        }
      } else if (this.leading && now - this.lastRenew > this.renewDeadline) {
        await this.stepDown();
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.retry);
    };
    void tick();
  }

  private async stepDown(): Promise<void> {
    this.leading = false;
    this.o.log.warn('lost leadership', { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity });
    await this.o.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const now = new Date();
    let lease: k8s.V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await this.api.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: this.duration,
            acquireTime: new k8s.V1MicroTime(now),
            renewTime: new k8s.V1MicroTime(now),
            leaseTransitions: 0,
          },
        },
      });
      return true;
    }
    const state = toState(lease);
    if (!canAcquire(state, identity, now)) return false;
    const takingOver = state!.holder !== identity;
    lease.spec = {
      ...lease.spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.duration,
      renewTime: new k8s.V1MicroTime(now),
      ...(takingOver ? { acquireTime: new k8s.V1MicroTime(now), leaseTransitions: state!.transitions + 1 } : {}),
    };
    // A 409 here means another replica wrote first: not leader this round.
    await this.api.replaceNamespacedLease({ name, namespace, body: lease });
    return true;
  }

  /** Stops campaigning; a leader releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    await this.o.onStoppedLeading();
    try {
      const lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity === this.o.identity) {
        lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 };
        await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease });
      }
    } catch (err) {
      this.o.log.debug('could not release the lease', { error: describeError(err) });
    }
  }
}

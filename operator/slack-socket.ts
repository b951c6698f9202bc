// The leader's Slack Socket Mode receivers: one per distinct Slack app (app-level token and API
// URL) across the ApprovalChannels that name one (spec.slack.appTokenKey, a key of the channel's
// token Secret), whatever number of channels and namespaces share it. Held by the ApprovalRequest
// controller for its leadership term: started when it starts, closed when it stops (the next
// leader's receivers get the envelopes this one leaves unacknowledged), and brought in line with
// the channels whenever they change (sync: new apps start, apps no channel names any more close).
//
// What a click does is the controller's (lookup, onVote); this only keeps the sockets, and their
// metrics (thoughtgate_operator_slack_socket_*, labelled by appLabel(key): only the leader has
// them). A socket that is down does not make the operator unready: the safety poll of the
// reactions still decides, and the state gauge and the log (once per change) show it.
import type { Logger } from '../lib/log.js';
import type { SocketMetrics } from '../slack/socket-metrics.js';
import { SocketModeReceiver, type ApprovalVote, type OpenApproval, type ReceiverEvent, type SocketModeReceiverOptions } from '../slack/socket-mode.js';

/** One Slack app a channel uses: `key` is a hash of API URL and app token (never the token itself). */
export interface SlackApp {
  key: string;
  appToken: string;
  apiUrl: string;
}

export interface SlackSocketsOptions {
  log: Logger;
  /** The pending request a click names, if it is on a channel of app `appKey`. */
  lookup(approvalId: string, appKey: string): OpenApproval | undefined | Promise<OpenApproval | undefined>;
  /** Writes the vote; the envelope is acked only after it resolved. */
  onVote(vote: ApprovalVote): Promise<void>;
  onEvent?: (e: ReceiverEvent) => void;
  metrics?: SocketMetrics;
  /** Timings for tests (reconnect backoff, handler timeout…). */
  receiver?: Pick<SocketModeReceiverOptions, 'reconnect' | 'handlerTimeoutMs' | 'connectTimeoutMs' | 'requestTimeoutMs' | 'closeTimeoutMs'>;
}

/** The `app` label and log field of an app: the start of its key (a hash, never the token). */
export function appLabel(key: string): string {
  return key.slice(0, 12);
}

/** Pure: which receivers to start and which to close, from the ones held and the apps wanted. */
export function planSockets(held: ReadonlySet<string>, wanted: ReadonlyMap<string, SlackApp>): { start: SlackApp[]; close: string[] } {
  return {
    start: [...wanted.values()].filter((a) => !held.has(a.key)),
    close: [...held].filter((k) => !wanted.has(k)),
  };
}

export class SlackSockets {
  private readonly held = new Map<string, SocketModeReceiver>();
  private readonly connectedAt = new Map<string, number>();
  private closed = false;

  constructor(private readonly o: SlackSocketsOptions) {}

  /** Receivers held now (their app keys). */
  get keys(): ReadonlySet<string> {
    return new Set(this.held.keys());
  }

  /** When app `key`'s open connection was made; undefined while it has none (the safety poll then reads). */
  connectedSince(key: string): number | undefined {
    return this.connectedAt.get(key);
  }

  /** Holds exactly one receiver per app in `wanted`. */
  sync(wanted: ReadonlyMap<string, SlackApp>): void {
    if (this.closed) return;
    const plan = planSockets(new Set(this.held.keys()), wanted);
    for (const key of plan.close) {
      const r = this.held.get(key)!;
      this.held.delete(key);
      this.connectedAt.delete(key);
      this.o.log.info('Slack Socket Mode: no ApprovalChannel uses this Slack app any more; closing its socket', { app: appLabel(key) });
      // Its series go with it (unless the app came back meanwhile).
      void r.close().finally(() => {
        if (!this.held.has(key)) this.o.metrics?.remove(appLabel(key));
      });
    }
    for (const app of plan.start) {
      const label = appLabel(app.key);
      const m = this.o.metrics?.forApp(label);
      const r = new SocketModeReceiver({
        appToken: app.appToken,
        apiUrl: app.apiUrl,
        lookup: (id) => this.o.lookup(id, app.key),
        onVote: (v) => this.o.onVote(v),
        ...this.o.receiver,
        ...(m ? { onState: (state) => m.onState(state) } : {}),
        onEvent: (e) => {
          m?.onEvent(e);
          if (this.held.get(app.key) === r) {
            if (e.kind === 'connected') this.connectedAt.set(app.key, Date.now());
            else if (e.kind === 'disconnected') this.connectedAt.delete(app.key);
          }
          this.o.onEvent?.(e);
        },
        log: (level, message) => this.o.log[level === 'error' ? 'error' : level]('slack socket mode', { app: label, message }),
      });
      this.held.set(app.key, r);
      r.start().catch((err: unknown) => {
        if (this.closed || this.held.get(app.key) !== r) return;
        // A permanent error (a bad app token): given up until the channel (or its Secret) changes.
        this.held.delete(app.key);
        this.o.log.error('Slack Socket Mode: cannot connect; buttons of the channels using this app do not work until the token is fixed', {
          app: label,
          error: (err as Error)?.message ?? String(err),
        });
      });
    }
  }

  /** Stops every receiver: envelopes not yet acked stay with Slack, for the next leader. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.held.values()];
    const keys = [...this.held.keys()];
    this.held.clear();
    this.connectedAt.clear();
    await Promise.all(all.map((r) => r.close()));
    // Only the leader reports its sockets.
    for (const key of keys) this.o.metrics?.remove(appLabel(key));
  }
}

// Prometheus metrics of the Socket Mode receivers (socket-mode.ts), the same for the operator's
// leader and the standalone sidecar: <prefix>slack_socket_*, labelled by `app` (a short name of
// the Slack app the receiver holds: a hash of its token in the operator, the token's variable in
// the sidecar; never a user or an approval), so the label sets stay bounded.
// What it tells a platform engineer: whether buttons work (the state), whether the link flaps
// (reconnects), what clicks become (envelopes by outcome), how close the acks come to Slack's 3 s,
// and whether clickers hear back (ephemerals).
import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';
import type { ReceiverEvent, ReceiverState } from './socket-mode.js';

/** Every value of the state gauge's `state` label: one is 1 per app, the others 0. */
export const SOCKET_STATES: readonly ReceiverState[] = ['idle', 'connecting', 'connected', 'reconnecting', 'failed', 'closed'];

/**
 * What an envelope became (the `outcome` label). Acked: counted (the vote was recorded),
 * duplicate (recorded before), not_approver, not_pending (decided, expired or unknown),
 * invalid (a button not from its approval's message), reason_asked (Reject opened the modal),
 * ignored (not an approval click). Left unacked, the clicker told to click again: failed (the
 * lookup or the write failed or was too slow), overloaded (too many in flight).
 */
export type EnvelopeOutcome = 'counted' | 'duplicate' | 'not_approver' | 'not_pending' | 'invalid' | 'reason_asked' | 'ignored' | 'failed' | 'overloaded';

/** Pure: the `outcome` of a receiver event that ends an envelope's processing; undefined for the others. */
export function envelopeOutcome(e: ReceiverEvent): EnvelopeOutcome | undefined {
  switch (e.kind) {
    case 'vote':
      return 'counted';
    case 'duplicate':
    case 'not_approver':
    case 'reason_asked':
    case 'ignored':
    case 'overloaded':
      return e.kind;
    case 'unknown_approval':
      return 'not_pending';
    case 'wrong_message':
      return 'invalid';
    case 'handler_failed':
      return 'failed';
    default:
      return undefined;
  }
}

export interface SocketMetrics {
  /** Hooks for one receiver (SocketModeReceiverOptions onState/onEvent), labelled `app`. */
  forApp(app: string): { onState(state: ReceiverState): void; onEvent(e: ReceiverEvent): void };
  /** The receiver of `app` is gone (no channel uses it): its series go too. */
  remove(app: string): void;
  /** Every metric, to register in another registry too. */
  readonly all: readonly Metric[];
}

/**
 * The metrics, registered in `registry` (or found there: the operator makes them again at each
 * leadership term). `prefix` is the deployable's (thoughtgate_operator_, thoughtgate_sidecar_).
 */
export function socketMetrics(registry: Registry, prefix: string): SocketMetrics {
  const p = `${prefix}slack_socket_`;
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(`${p}${name}`) as T | undefined) ?? make();
  const state = get(
    'state',
    () =>
      new Gauge({
        name: `${p}state`,
        help: 'Slack Socket Mode connection of each Slack app (buttons): 1 for its state (connected; connecting: before the first hello; reconnecting: down and retrying; failed: gave up on a bad app token at the start; closed), 0 for the others',
        labelNames: ['app', 'state'] as const,
        registers: [registry],
      }),
  );
  const reconnects = get(
    'reconnects_total',
    () =>
      new Counter({
        name: `${p}reconnects_total`,
        help: 'Slack Socket Mode connections made again after one was lost, by Slack app (a steady rise: the link flaps)',
        labelNames: ['app'] as const,
        registers: [registry],
      }),
  );
  const connectFailures = get(
    'connect_failures_total',
    () =>
      new Counter({
        name: `${p}connect_failures_total`,
        help: 'Failed Slack Socket Mode connection attempts (apps.connections.open, the WebSocket or its hello), by Slack app and whether the error is retryable (true: network, 5xx, rate limit; false: the app token)',
        labelNames: ['app', 'retryable'] as const,
        registers: [registry],
      }),
  );
  const envelopes = get(
    'envelopes_total',
    () =>
      new Counter({
        name: `${p}envelopes_total`,
        help: 'Slack Socket Mode envelopes received, by Slack app and outcome (acked: counted, duplicate, not_approver, not_pending, invalid, reason_asked, ignored; left unacked and the clicker told to click again: failed, overloaded)',
        labelNames: ['app', 'outcome'] as const,
        registers: [registry],
      }),
  );
  const ackSeconds = get(
    'ack_seconds',
    () =>
      new Histogram({
        name: `${p}ack_seconds`,
        help: "Time from a Slack Socket Mode envelope's arrival to its ack (a counted click: after its vote was recorded), by Slack app; Slack shows the clicker an error after 3 s",
        labelNames: ['app'] as const,
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10],
        registers: [registry],
      }),
  );
  const ephemerals = get(
    'ephemerals_total',
    () =>
      new Counter({
        name: `${p}ephemerals_total`,
        help: 'Ephemeral notices to clickers, by Slack app, notice (not_approver, not_recorded) and result (sent; failed: Slack refused it; dropped: too many were being sent)',
        labelNames: ['app', 'notice', 'result'] as const,
        registers: [registry],
      }),
  );
  return {
    all: [state, reconnects, connectFailures, envelopes, ackSeconds, ephemerals],
    forApp(app) {
      let established = false;
      return {
        onState(s) {
          for (const x of SOCKET_STATES) state.set({ app, state: x }, x === s ? 1 : 0);
        },
        onEvent(e) {
          const outcome = envelopeOutcome(e);
          if (outcome !== undefined) envelopes.inc({ app, outcome });
          else if (e.kind === 'connected') {
            if (established) reconnects.inc({ app });
            established = true;
          } else if (e.kind === 'connect_failed') connectFailures.inc({ app, retryable: String(e.error.retryable) });
          else if (e.kind === 'acked') ackSeconds.observe({ app }, e.durationMs / 1000);
          else if (e.kind === 'notice') ephemerals.inc({ app, notice: e.notice, result: e.result });
        },
      };
    },
    remove(app) {
      for (const x of SOCKET_STATES) state.remove({ app, state: x });
      reconnects.remove({ app });
      ackSeconds.remove({ app });
      // Series with more labels than `app` are removed one by one, as they were made.
      for (const m of [connectFailures, envelopes, ephemerals] as Counter<string>[])
        void m.get().then((v) => {
          for (const x of v.values) if (x.labels.app === app) m.remove(x.labels as Record<string, string>);
        });
    },
  };
}

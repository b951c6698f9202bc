// The shell of the audit Events (cluster only): a timer flushes the pure table (events-plan.ts)
// every interval through the API server, one write per Event with new occurrences. The sidecar
// Role allows create, get and patch of events in its namespace (operator/rbac-plan.ts). A write
// that fails stays pending for the next flush; nothing here ever holds up a request, nor the pod's
// exit for long: the last flush, at close(), has AUDIT_CLOSE_DEADLINE_MS.
import { isConflict, isNotFound } from '../../kube/protocol.js';
import { resourceClient } from '../../kube/resource.js';
import { createTransport, type Transport, type TransportOptions } from '../../kube/transport.js';
import type { AuditEventKey } from '../../api/audit.js';
import { describeError } from '../../lib/describe-error.js';
import type { Logger } from '../../lib/log.js';
import type { SidecarMetrics } from '../metrics.js';
import { AUDIT_FLUSH_INTERVAL_MS, AUDIT_MAX_EVENTS, AuditEventTable, type AuditEventWrite, type CoreEvent, type WriteResult } from './events-plan.js';

const EVENTS = { apiVersion: 'v1', plural: 'events', kind: 'Event', namespaced: true } as const;

/**
 * How long close() spends on the last flush (like tracing's shutdown): its writes go one after
 * another, each bounded only by the transport's timeouts, and an API server that is down must not
 * hold up the pod's exit past its grace period. What is not written by then is lost (the metrics
 * counted it).
 */
export const AUDIT_CLOSE_DEADLINE_MS = 2000;

/** The flush interval spread by ±20%, so the sidecars of a rollout do not write in step. */
export function jittered(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (0.8 + 0.4 * random()));
}

export interface AuditEventsOptions {
  namespace: string;
  pod: string;
  /** A transport to use (not closed here); else one is made from clientOptions. */
  transport?: Transport;
  clientOptions?: TransportOptions;
  intervalMs?: number;
  maxEvents?: number;
  /** Default AUDIT_CLOSE_DEADLINE_MS. */
  closeDeadlineMs?: number;
}

export interface AuditEvents {
  add(policy: string, key: AuditEventKey, n: number): void;
  /** Writes what is pending now (also run by the timer). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function startAuditEvents(o: AuditEventsOptions, deps: { metrics: SidecarMetrics; log: Logger }): AuditEvents {
  const { metrics, log } = deps;
  const owned = o.transport ? null : createTransport(o.clientOptions);
  const transport = o.transport ?? owned!;
  const events = resourceClient<CoreEvent & { metadata: { name: string } }>(transport, EVENTS, {
    rbacHint: 'create, get and patch on events (the thoughtgate-sidecar Role)',
  });
  const table = new AuditEventTable({ namespace: o.namespace, pod: o.pod }, o.maxEvents ?? AUDIT_MAX_EVENTS);
  let running: Promise<void> | null = null;
  let warned = false;

  const write = async (w: AuditEventWrite, signal: AbortSignal | undefined): Promise<WriteResult> => {
    const opts = { namespace: o.namespace, ...(signal ? { signal } : {}) };
    try {
      if (w.kind === 'create') {
        await events.create(w.event, opts);
        metrics.auditEventWrites.inc({ result: 'created' });
        return { kind: 'ok' };
      }
      await events.patch(w.name, w.patch, 'merge', opts);
      metrics.auditEventWrites.inc({ result: 'patched' });
      return { kind: 'ok' };
    } catch (err) {
      if (w.kind === 'create' && isConflict(err)) {
        const found = await events.get(w.name, o.namespace, signal).catch(() => null);
        if (found) {
          const first = Date.parse(found.firstTimestamp);
          return { kind: 'exists', count: found.count ?? 0, ...(Number.isFinite(first) ? { first } : {}) };
        }
      }
      if (w.kind === 'patch' && isNotFound(err)) return { kind: 'gone' };
      metrics.auditEventWrites.inc({ result: 'failed' });
      if (!warned) log.warn('could not write an audit Event; retried at the next flush', { event: w.name, error: describeError(err) });
      warned = true;
      return { kind: 'failed' };
    }
  };

  /** Aborted at close()'s deadline: the write in flight ends, and the rest of the flush with it. */
  const closing = new AbortController();
  const flushOnce = async (): Promise<void> => {
    for (const w of table.plan()) {
      if (closing.signal.aborted) return;
      table.settle(w, await write(w, closing.signal), Date.now());
    }
  };
  const flush = (): Promise<void> => {
    // One flush at a time: a slow API server never piles writes up.
    running ??= flushOnce().finally(() => {
      running = null;
    });
    return running;
  };
  const intervalMs = o.intervalMs ?? AUDIT_FLUSH_INTERVAL_MS;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const schedule = (): void => {
    if (closed) return;
    timer = setTimeout(() => void flush().finally(schedule), jittered(intervalMs));
    timer.unref();
  };
  schedule();

  return {
    add(policy, key, n) {
      if (!table.add(policy, key, n, Date.now())) metrics.auditEventsDropped.inc(n);
    },
    flush,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const deadline = setTimeout(() => closing.abort(new Error('the audit Events flush deadline passed')), o.closeDeadlineMs ?? AUDIT_CLOSE_DEADLINE_MS);
      // A flush the timer started runs first (one at a time), then the last one, all within the deadline.
      await (running ?? Promise.resolve())
        .then(() => flush())
        .catch(() => undefined)
        .finally(() => clearTimeout(deadline));
      await owned?.close();
    },
  };
}

// Gate 4 as the proxy holds it: the task engine, what it learned of each upstream (its declared
// task capabilities per MCP session, each tool's own taskSupport), the client binding, and the
// approval metrics. One per sidecar; absent when no approval backend is configured.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Identity } from '../../api/config.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { headerValue } from '../proxy/headers.js';
import type { UpstreamClient } from '../proxy/upstream.js';
import type { ApprovalBackend, ApprovalStoreStatus, PendingApproval } from './backend.js';
import { ApprovalEngine, type ApprovalChannelInfo } from './engine.js';
import type { Owner, TaskSupport, UpstreamTaskSupport } from './tasks.js';

/** Bound on what is remembered per upstream (sessions, tools); the oldest entries go first. */
const MEMORY_LIMIT = 10_000;

class BoundedMap<K, V> extends Map<K, V> {
  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= MEMORY_LIMIT) this.delete(this.keys().next().value as K);
    return super.set(key, value);
  }
}

export interface ApprovalRuntime {
  engine: ApprovalEngine;
  /** ThoughtGate's own requests upstream (approved calls that run after their request was answered). */
  upstream: UpstreamClient;
  /** What the upstream declared in capabilities.tasks, by source and upstream session. */
  upstreamTasks: Map<string, UpstreamTaskSupport>;
  /** The upstream's own taskSupport per tool, by source (learned from tools/list answers). */
  toolSupport: Map<string, Map<string, TaskSupport>>;
  /** Held calls by heldKey(owner, JSON-RPC id): a client's notifications/cancelled finds them. */
  held: Map<string, string>;
  close(): Promise<void>;
}

export function heldKey(owner: Owner, requestId: string): string {
  return `${owner.source}\u0000${owner.client}\u0000${requestId}`;
}

export function sessionKey(source: string, session: string | undefined): string {
  return `${source}\u0000${session ?? ''}`;
}

export function rememberToolSupport(rt: ApprovalRuntime, source: string, tool: string, support: TaskSupport): void {
  let m = rt.toolSupport.get(source);
  if (!m) {
    m = new BoundedMap();
    rt.toolSupport.set(source, m);
  }
  m.set(tool, support);
}

/**
 * Who a task belongs to: the MCP session when the client has one, else a hash of its
 * Authorization header, else "anonymous": clients with neither cannot be told apart, so each of
 * their tasks is reachable by its id only (never listed), their held calls only by their own
 * connection (never by notifications/cancelled), and they share one quota that never evicts a
 * task (docs/approvals.md). Always together with the source the task was created on.
 */
export function ownerOf(source: string, headers: IncomingHttpHeaders): Owner {
  const session = headerValue(headers['mcp-session-id']);
  if (session) return { source, client: `session:${session}` };
  const auth = headerValue(headers['authorization']);
  if (auth) return { source, client: `auth:${createHash('sha256').update(auth).digest('hex').slice(0, 32)}` };
  return { source, client: 'anonymous' };
}

/**
 * Who an adopted task belongs to after a restart: the client key stored with it. A request stored
 * before the key was (no spec.owner) belongs to its MCP session when it had one; else its client
 * is unknown, and it is not adopted (null): re-owning it as `anonymous` would hand a client's task
 * to every client without a session or Authorization.
 */
export function adoptedOwner(p: PendingApproval): Owner | null {
  if (p.client !== undefined) return { source: p.source, client: p.client };
  if (p.mcpSessionId !== undefined) return { source: p.source, client: `session:${p.mcpSessionId}` };
  return null;
}

/**
 * The standalone approval store's use against its bounds and its refused writes, read from the
 * backend when scraped (thoughtgate_sidecar_approval_store_*; none without a store).
 */
function storeMetrics(registry: Registry, status: () => ApprovalStoreStatus): void {
  const p = 'thoughtgate_sidecar_approval_store_';
  const gauge = (name: string, help: string, read: (s: ApprovalStoreStatus) => number) =>
    new Gauge({
      name: `${p}${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read(status()));
      },
    });
  gauge('approvals', 'Live approvals in the approval store (--state-dir)', (s) => s.approvals);
  gauge('approvals_max', 'The most live approvals the approval store keeps; beyond, a new approval is refused', (s) => s.maxApprovals);
  gauge('bytes', "Bytes of the live approvals' records in the approval store", (s) => s.bytes);
  gauge('bytes_max', "The most bytes of live approvals' records the approval store keeps; beyond, a new approval is refused", (s) => s.maxBytes);
  gauge('file_bytes', "The approval store's journal file size (live records, and ended ones until the next compaction)", (s) => s.fileBytes);
  gauge('writable', '1 while the approval store can write durably; 0 once its journal is broken (the sidecar is then not ready)', (s) => (s.failure ? 0 : 1));
  new Counter({
    name: `${p}write_failures_total`,
    help: 'Approval store writes refused, by reason: full (a bound: the approval is refused), broken (the journal can no longer be written), io (one write failed)',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(status().writeFailures)) this.inc({ reason }, n);
    },
  });
}

export function approvalMetrics(registry: Registry) {
  const p = 'thoughtgate_sidecar_';
  return {
    pending: new Gauge({ name: `${p}approvals_pending`, help: 'Calls waiting for a human decision right now', registers: [registry] }),
    oldestPending: new Gauge({
      name: `${p}approvals_oldest_pending_timestamp_seconds`,
      help: 'Unix time the longest-waiting call of this sidecar started waiting for a human (0 when none waits)',
      registers: [registry],
    }),
    decisions: new Counter({
      name: `${p}approvals_total`,
      help: 'Ends of approval waits by outcome (approved, rejected, expired, cancelled, failed, unavailable)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    retainedTasks: new Gauge({ name: `${p}tasks_retained`, help: "ThoughtGate's own tasks kept in memory (running or finished)", registers: [registry] }),
    retainedBytes: new Gauge({ name: `${p}task_results_retained_bytes`, help: 'Bytes of task results kept for tasks/result', registers: [registry] }),
    refused: new Counter({
      name: `${p}approval_limit_refusals_total`,
      help: 'Calls refused (-32010) or task results not kept (-32024), by the bound that was hit',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    evicted: new Counter({
      name: `${p}tasks_evicted_total`,
      help: 'Finished tasks dropped before their ttl to keep a bound, by that bound',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    backendWriteFailures: new Counter({
      name: `${p}approval_backend_write_failures_total`,
      help: 'Writes to the approval backend that failed for good, by operation (submit and mark_executing fail the call; cancel and finished after their retries) and cause (store_full, store_broken, store_io: the standalone approval store; backend: Slack or the API server; shutdown)',
      labelNames: ['op', 'cause'] as const,
      registers: [registry],
    }),
    waitSeconds: new Histogram({
      name: `${p}approval_wait_seconds`,
      help: 'Time from the request for approval to its decision',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    }),
  };
}

export interface RuntimeOptions {
  backend: ApprovalBackend & ApprovalChannelInfo;
  upstream: UpstreamClient;
  log: Logger;
  registry: Registry;
  identity: () => Identity | null;
  clock?: Clock;
}

export function createApprovalRuntime(o: RuntimeOptions): ApprovalRuntime {
  const engine = new ApprovalEngine({
    backend: o.backend,
    workload: () => {
      const id = o.identity();
      return { namespace: id?.namespace ?? 'default', serviceAccount: id?.serviceAccount ?? 'default', pod: id?.pod ?? 'standalone' };
    },
    log: o.log,
    metrics: approvalMetrics(o.registry),
    ...(o.clock ? { clock: o.clock } : {}),
  });
  const status = o.backend.storeStatus?.bind(o.backend);
  if (status) storeMetrics(o.registry, status);
  o.backend.registerMetrics?.(o.registry);
  return {
    engine,
    upstream: o.upstream,
    upstreamTasks: new BoundedMap(),
    toolSupport: new Map(),
    held: new Map(),
    async close() {
      engine.close();
      await o.backend.close();
    },
  };
}

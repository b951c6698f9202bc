// The controller manager (kubebuilder's model): it owns what every controller needs and none should
// build itself — the shared informers, leader election, one work queue per controller, metrics, and
// the health and readiness endpoints. Controllers register a definition; each leadership term calls
// their setup, which declares what the controller watches and how an event maps to its keys.
//
// Every replica serves health, metrics and the extras (the webhook); the replica holding the Lease
// runs the controllers. Stepping down stops them, their informers and queues; the next term starts
// from empty caches.
import http from 'node:http';
import type * as k8s from '@kubernetes/client-node';
import { describeError } from '../lib/describe-error.js';
import type { Logger } from '../lib/log.js';
import { NO_SPAN, NO_TRACING, startTracing, type Span, type Tracer } from '../lib/tracing.js';
import { EventRecorder } from './events.js';
import { startInformer, type ResilientInformer } from './informer.js';
import { transportFromKubeConfig } from './kube-transport.js';
import { LeaderElector } from './leader.js';
import { createOperatorMetrics, type OperatorMetrics } from './metrics.js';
import { startQueue, type WorkQueue } from './queue.js';
import type { Source } from './sources.js';

export type WatchEvent = 'add' | 'update' | 'delete' | 'resync';

/** A watched resource and how its events become this controller's keys. */
export interface Watch<K> {
  source: Source<k8s.KubernetesObject>;
  map: (event: WatchEvent, obj: k8s.KubernetesObject) => readonly K[];
}

/** Builds a Watch with the source's object type. `resync`: the periodic pass over every cached object. */
export function watch<T extends k8s.KubernetesObject, K>(source: Source<T>, map: (event: WatchEvent, obj: T) => readonly K[]): Watch<K> {
  return { source: source as unknown as Source<k8s.KubernetesObject>, map: map as Watch<K>['map'] };
}

/** The read side of a shared informer. */
export interface Cache<T extends k8s.KubernetesObject> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): ReadonlyArray<T>;
  /** The source has `limits` and left out an object of `namespace` lately: what list() gives there is incomplete. */
  truncated?(namespace: string): boolean;
}

/** What one leadership term offers every controller. */
export interface TermContext {
  kc: k8s.KubeConfig;
  log: Logger;
  identity: string;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** The operator's tracer (NO_TRACING when off). */
  tracer: Tracer;
  cache<T extends k8s.KubernetesObject>(source: Source<T>): Cache<T>;
  /**
   * One value per term, shared by every controller asking by the same name (the Slack clients of
   * the approval controllers); `close` runs at step-down, after the controllers stop.
   */
  shared<T>(name: string, make: () => T, close?: (value: T) => void): T;
}

export interface ControllerContext<K> extends TermContext {
  /** Queue a key of this controller, now or after `delayMs`. */
  enqueue(key: K, delayMs?: number): void;
}

export interface Reconciler<K> {
  watches: readonly Watch<K>[];
  /** Caches read besides the watched ones: every one is filled before the first reconcile. */
  reads?: readonly Source<k8s.KubernetesObject>[];
  /** `span`: this reconcile's span (NO_SPAN when tracing is off), e.g. to link what the object carries. */
  reconcile(key: K, span?: Span): Promise<void>;
  /** The term ends: stop timers and outside calls (runs before the informers stop). */
  stop?(): void;
}

export interface ControllerDefinition<K> {
  /** The `kind` label of the reconcile metrics and logs (docs/operations.md). */
  kind: string;
  /** A key's identity in the queue. */
  id: (key: K) => string;
  concurrency?: number;
  setup(ctx: ControllerContext<K>): Reconciler<K>;
}

export interface Extras {
  close(): Promise<void> | void;
  ready?(): boolean;
}

export interface ManagerOptions {
  kc: k8s.KubeConfig;
  /** The operator's own namespace (the Lease). */
  namespace: string;
  identity: string;
  log: Logger;
  metricsPort: number;
  metricsBind?: string;
  leaderElection?: boolean;
  leaseName?: string;
  leaseDurationSec?: number;
  /** Every cached object is mapped to its keys again at this interval, repairing drift nobody reported. */
  resyncMs?: number;
  /** Extra work every replica does (the webhook server, its certificate); stopped on close. */
  extras?: (ctx: { metrics: OperatorMetrics; log: Logger }) => Promise<Extras>;
  /** Tracing (docs/observability.md): default from the OTEL_* environment, off unless an OTLP endpoint is set. */
  tracer?: Tracer;
}

/** How long a stopping operator waits for its last spans to be exported. */
const TRACING_SHUTDOWN_MS = 2000;

interface Term {
  synced(): boolean;
  stop(): Promise<void>;
}

export class Manager {
  readonly metrics: OperatorMetrics = createOperatorMetrics();
  private readonly definitions: ControllerDefinition<unknown>[] = [];
  private term: Term | null = null;
  private leading = false;
  private closing = false;
  private elector: LeaderElector | null = null;
  private extras: Extras | null = null;
  private health: http.Server | null = null;
  private port = 0;
  private tracer: Tracer = NO_TRACING;

  constructor(private readonly o: ManagerOptions) {}

  /** Registers a controller; it runs in every leadership term that starts after. */
  add<K>(definition: ControllerDefinition<K>): this {
    this.definitions.push(definition as ControllerDefinition<unknown>);
    return this;
  }

  get metricsPort(): number {
    return this.port;
  }

  isLeader(): boolean {
    return this.leading;
  }

  async start(): Promise<void> {
    const { o } = this;
    this.tracer =
      o.tracer ??
      (await startTracing(process.env, {
        defaultServiceName: 'thoughtgate-operator',
        onDropped: (n) => this.metrics.tracingSpansDropped.inc(n),
        onNote: (level, msg, fields) => o.log[level](msg, fields),
      }));
    this.extras = o.extras ? await o.extras({ metrics: this.metrics, log: o.log }) : null;
    if (o.leaderElection === false) {
      this.becomeLeader();
    } else {
      this.elector = new LeaderElector(o.kc, {
        namespace: o.namespace,
        name: o.leaseName ?? 'thoughtgate-operator',
        identity: o.identity,
        leaseDurationSec: o.leaseDurationSec,
        renewDeadlineMs: o.leaseDurationSec ? Math.round((o.leaseDurationSec * 1000 * 2) / 3) : undefined,
        retryPeriodMs: o.leaseDurationSec ? Math.max(200, Math.round((o.leaseDurationSec * 1000) / 7)) : undefined,
        log: o.log,
        onStartedLeading: () => this.becomeLeader(),
        onStoppedLeading: () => this.stepDown(),
      });
      this.elector.start();
    }
    const health = http.createServer((req, res) => this.serve(req, res));
    this.health = health;
    await new Promise<void>((resolve, reject) => {
      health.once('error', reject);
      health.listen(o.metricsPort, o.metricsBind ?? '0.0.0.0', () => resolve());
    });
    this.port = (health.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.elector) await this.elector.stop();
    else await this.stepDown();
    await this.extras?.close();
    const health = this.health;
    if (health) {
      health.closeAllConnections();
      await new Promise<void>((r) => health.close(() => r()));
    }
    await this.tracer.shutdown(TRACING_SHUTDOWN_MS);
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else if (path === '/readyz') {
      // A follower is ready (it serves the webhook); the leader once its caches are filled.
      const ready = (this.extras?.ready?.() ?? true) && (!this.leading || (this.term?.synced() ?? false));
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready, leader: this.leading, identity: this.o.identity }));
    } else if (path === '/metrics') {
      const { registry } = this.metrics;
      registry.metrics().then(
        (t) => res.writeHead(200, { 'content-type': registry.contentType }).end(t),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404).end();
    }
  }

  private becomeLeader(): void {
    // The elector can report a renewal that was in flight when close() stopped it: a term started
    // then would outlive the operator (and relay approvals beside the next leader).
    if (this.closing) return;
    this.leading = true;
    this.metrics.leader.set(1);
    this.term = startTerm(this.o, this.definitions, this.metrics, this.tracer);
  }

  private async stepDown(): Promise<void> {
    this.leading = false;
    this.metrics.leader.set(0);
    const t = this.term;
    this.term = null;
    await t?.stop();
  }
}

interface Running {
  definition: ControllerDefinition<unknown>;
  reconciler: Reconciler<unknown>;
  queue: WorkQueue<unknown>;
}

function startTerm(o: ManagerOptions, definitions: readonly ControllerDefinition<unknown>[], metrics: OperatorMetrics, tracer: Tracer): Term {
  const { kc, log } = o;
  // One set of connections for the term's informers (a watch each, and their lists).
  const transport = transportFromKubeConfig(kc);
  const informers = new Map<Source<k8s.KubernetesObject>, ResilientInformer<k8s.KubernetesObject>>();
  const handlers = new Map<Source<k8s.KubernetesObject>, ((event: WatchEvent, obj: k8s.KubernetesObject) => void)[]>();
  const shared = new Map<string, { value: unknown; close?: (value: unknown) => void }>();
  let stopping = false;
  let onStop!: () => void;
  const stopped = new Promise<void>((r) => {
    onStop = r;
  });

  const informer = <T extends k8s.KubernetesObject>(source: Source<T>): ResilientInformer<T> => {
    const s = source as unknown as Source<k8s.KubernetesObject>;
    let i = informers.get(s);
    if (!i) {
      // Started within this synchronous setup: handlers are all registered before the first list arrives.
      i = startInformer<k8s.KubernetesObject>({
        kc,
        name: s.name,
        path: s.path,
        transport,
        labelSelector: s.labelSelector,
        fieldSelector: s.fieldSelector,
        log,
        transform: s.transform,
        limits: s.limits,
        onDrop: (reason, obj) => {
          metrics.informerDropped.inc({ resource: s.name, reason });
          // A cache over its limits is incomplete where the object was: its controllers look again
          // (no change is delivered for an object left out).
          if (reason === 'limit') for (const h of handlers.get(s) ?? []) h('resync', obj);
        },
        onChange: (event, obj) => {
          metrics.informerObjects.set({ resource: s.name }, i!.size());
          for (const h of handlers.get(s) ?? []) h(event, obj);
        },
        onRestart: () => metrics.informerRestarts.inc({ resource: s.name }),
      });
      informers.set(s, i);
    }
    return i as unknown as ResilientInformer<T>;
  };

  const base: TermContext = {
    kc,
    log,
    identity: o.identity,
    metrics,
    tracer,
    events: new EventRecorder(kc, o.identity, log),
    cache: informer,
    shared<T>(name: string, make: () => T, close?: (value: T) => void): T {
      let s = shared.get(name);
      if (!s) {
        s = { value: make(), close: close as ((value: unknown) => void) | undefined };
        shared.set(name, s);
      }
      return s.value as T;
    },
  };

  const running: Running[] = [];
  const depth = () => running.reduce((n, r) => n + r.queue.size(), 0);
  for (const definition of definitions) {
    const { kind } = definition;
    let queue!: WorkQueue<unknown>;
    const reconciler = definition.setup({ ...base, enqueue: (key, delayMs) => queue.add(key, delayMs) });
    const needs = [...new Set([...reconciler.watches.map((w) => w.source), ...(reconciler.reads ?? [])])].map(informer);
    queue = startQueue(
      async (key) => {
        // Reconciling from a cache that is still filling could withdraw a config that exists. A cache
        // that never fills (its CRD is not installed) must not hold up stopping.
        await Promise.race([Promise.all(needs.map((i) => i.synced())), stopped]);
        if (stopping) return;
        const end = metrics.reconcileDuration.startTimer({ kind });
        const span = tracer.on
          ? tracer.start(`reconcile ${kind}`, { attributes: { 'thoughtgate.controller': kind, 'thoughtgate.key': definition.id(key) } })
          : NO_SPAN;
        try {
          await reconciler.reconcile(key, span);
          metrics.reconciles.inc({ kind, result: 'success' });
          span.set({ 'thoughtgate.outcome': 'success' });
        } catch (err) {
          metrics.reconciles.inc({ kind, result: 'error' });
          span.set({ 'thoughtgate.outcome': 'error' });
          span.fail('reconcile failed');
          throw err;
        } finally {
          span.end();
          end();
          metrics.queueDepth.set(depth());
        }
      },
      {
        id: definition.id,
        concurrency: definition.concurrency,
        onError: (key, err, retryInMs) => {
          if (!stopping) log.warn('reconcile failed; will retry', { controller: kind, key: definition.id(key), retryInMs, error: describeError(err) });
        },
      },
    );
    for (const w of reconciler.watches) {
      const list = handlers.get(w.source) ?? [];
      list.push((event, obj) => {
        for (const key of w.map(event, obj)) queue.add(key);
      });
      handlers.set(w.source, list);
    }
    running.push({ definition, reconciler, queue });
  }

  const resync = setInterval(
    () => {
      for (const r of running)
        for (const w of r.reconciler.watches) for (const obj of informer(w.source).list()) for (const key of w.map('resync', obj)) r.queue.add(key);
    },
    o.resyncMs ?? 5 * 60_000,
  );
  resync.unref();

  return {
    synced: () => [...informers].every(([s, i]) => s.optional || i.isSynced()),
    async stop() {
      clearInterval(resync);
      stopping = true;
      onStop();
      for (const r of running) r.reconciler.stop?.();
      // Closing shared clients (Slack) fails calls still waiting on a rate limit, so stepping down is quick.
      for (const s of shared.values()) s.close?.(s.value);
      await Promise.all([...informers.values()].map((i) => i.stop()));
      await transport.close();
      await Promise.all(running.map((r) => r.queue.close()));
    },
  };
}

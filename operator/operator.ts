// The operator process: every replica serves health, metrics and (when configured) the admission
// webhook; the replica holding the Lease runs the reconcilers. Informers feed keyed queues:
// "ns:<namespace>" renders policies, "rbac:<namespace>" keeps sidecar RBAC; on a queue of their
// own (Slack calls may wait on a rate limit), "ar:<ns>/<name>" relays an ApprovalRequest and
// "ac:<ns>/<name>" checks an ApprovalChannel.
import http from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { KINDS } from '../api/crds.js';
import { GROUP, INJECT_ENABLED, LABELS, MANAGED_BY, VERSION } from '../api/wellknown.js';
import type { Logger } from '../lib/log.js';
import { ChannelChecker, SlackChannels } from './approval-channels.js';
import { ApprovalRelay, approvalMetrics, type ApprovalSettings } from './approvals.js';
import { startInformer, type ResilientInformer } from './informer.js';
import { transportFromKubeConfig } from './kube-transport.js';
import { LeaderElector } from './leader.js';
import { createOperatorMetrics, type OperatorMetrics } from './metrics.js';
import { startQueue, type WorkQueue } from './queue.js';
import { Reconciler, type KubeObject } from './reconcile.js';

export interface OperatorOptions {
  kc: k8s.KubeConfig;
  /** The operator's own namespace (Lease, webhook Secret). */
  namespace: string;
  identity: string;
  log: Logger;
  metricsPort: number;
  metricsBind?: string;
  leaderElection?: boolean;
  leaseName?: string;
  leaseDurationSec?: number;
  /** Every key is reconciled again at this interval, repairing drift nobody reported. */
  resyncMs?: number;
  /** ApprovalRequest relay and ApprovalChannel checks (leader only). */
  approvals?: ApprovalOptions;
  /** Extra work every replica does (the webhook server, its certificate); stopped on close. */
  extras?: (ctx: { metrics: OperatorMetrics; log: Logger }) => Promise<{ close(): Promise<void> | void; ready?(): boolean }>;
}

export interface ApprovalOptions extends ApprovalSettings {
  /** Slack API base URLs ApprovalChannels may use (spec.slack.apiUrl); '*' allows any. Default: Slack and GovSlack. */
  slackApiUrls?: string[];
  /** Per Slack request. Default 15 s. */
  slackRequestTimeoutMs?: number;
  /** Full ApprovalChannel check (auth.test, conversations.info) at least this often. Default 5 min. */
  channelCheckIntervalMs?: number;
  /** Re-read each channel's token Secret this often; a change is checked at once. Default 60 s. */
  secretPollMs?: number;
}

export interface Operator {
  metrics: OperatorMetrics;
  metricsPort: number;
  isLeader(): boolean;
  /** For tests: resolves when the controller has nothing left to do. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

interface Controller {
  queue: WorkQueue;
  synced(): boolean;
  stop(): Promise<void>;
}

function startController(o: OperatorOptions, metrics: OperatorMetrics): Controller {
  const { kc, log } = o;
  const managedSelector = `${LABELS.managedBy}=${MANAGED_BY}`;
  const injectSelector = `${LABELS.inject}=${INJECT_ENABLED}`;

  let queue!: WorkQueue;
  let approvalQueue!: WorkQueue;
  let relay!: ApprovalRelay;
  const enqueueNs = (obj: k8s.KubernetesObject) => { if (obj.metadata?.namespace) queue.add(`ns:${obj.metadata.namespace}`); };
  const objKey = (obj: k8s.KubernetesObject) => `${obj.metadata!.namespace}/${obj.metadata!.name}`;
  // One set of connections for all informers (a watch each, and their lists).
  const transport = transportFromKubeConfig(kc);
  const informer = <T extends k8s.KubernetesObject>(name: string, path: string, onChange: (e: 'add' | 'update' | 'delete', obj: T) => void, labelSelector?: string): ResilientInformer<T> =>
    startInformer<T>({ kc, transport, name, path, labelSelector, onChange, log, onRestart: () => metrics.informerRestarts.inc({ resource: name }) });

  const policies = informer<KubeObject>('governancepolicies', `/apis/${GROUP}/${VERSION}/${KINDS.GovernancePolicy.plural}`, (_e, obj) => enqueueNs(obj));
  const channels = informer<KubeObject>('approvalchannels', `/apis/${GROUP}/${VERSION}/${KINDS.ApprovalChannel.plural}`, (e, obj) => {
      enqueueNs(obj);
      approvalQueue.add(`ac:${objKey(obj)}`);
      if (e !== 'add') relay.channelChanged(obj, e === 'delete');
    });
  const requests = informer<KubeObject>('approvalrequests', `/apis/${GROUP}/${VERSION}/${KINDS.ApprovalRequest.plural}`, (e, obj) => {
      if (e === 'delete') relay.onDeleted(obj);
      else approvalQueue.add(`ar:${objKey(obj)}`);
    });
  // Our own ConfigMaps: an edit or deletion by anyone else is repaired.
  const configMaps = informer<k8s.V1ConfigMap>('configmaps', '/api/v1/configmaps', (_e, obj) => enqueueNs(obj), managedSelector);
  const namespaces = informer<k8s.V1Namespace>('namespaces', '/api/v1/namespaces', (_e, obj) => queue.add(`rbac:${obj.metadata!.name}`), injectSelector);

  const reconciler = new Reconciler({
    kc,
    log,
    instance: o.identity,
    policies: (ns) => policies.list(ns),
    channels: (ns) => channels.list(ns),
    configMap: (ns) => configMaps.get('thoughtgate-config', ns),
  });
  const all = [policies, channels, configMaps, namespaces];

  const a = o.approvals ?? {};
  const slack = new SlackChannels({
    kc,
    log,
    channel: (ns, name) => channels.get(name, ns),
    allowedApiUrls: a.slackApiUrls,
    requestTimeoutMs: a.slackRequestTimeoutMs,
  });
  relay = new ApprovalRelay({
    kc,
    log,
    identity: o.identity,
    request: (ns, name) => requests.get(name, ns),
    requests: () => requests.list(),
    slack,
    event: (obj, type, reason, message) => reconciler.event(obj, type, reason, message),
    requeue: (key, delayMs) => approvalQueue.add(key, delayMs),
    settings: a,
    metrics: approvalMetrics(metrics.registry),
  });
  const checker = new ChannelChecker({
    kc,
    log,
    slack,
    event: (obj, type, reason, message) => reconciler.event(obj, type, reason, message),
    requeue: (key, delayMs) => approvalQueue.add(key, delayMs),
    checkIntervalMs: a.channelCheckIntervalMs,
    secretPollMs: a.secretPollMs,
  });
  let stopping = false;
  let onStop!: () => void;
  const stopped = new Promise<void>((r) => { onStop = r; });
  approvalQueue = startQueue(async (key) => {
    // Not part of `all`: a cluster without the ApprovalRequest CRD still renders policies. A
    // cache that never fills (no CRD) must not hold up stopping.
    await Promise.race([Promise.all([channels.synced(), requests.synced()]), stopped]);
    if (stopping) return;
    const kind = key.slice(0, key.indexOf(':'));
    const ref = key.slice(key.indexOf(':') + 1);
    const [ns, name] = [ref.slice(0, ref.indexOf('/')), ref.slice(ref.indexOf('/') + 1)];
    const end = metrics.reconcileDuration.startTimer({ kind });
    try {
      if (kind === 'ar') await relay.reconcile(ns, name);
      else await checker.reconcile(ns, name, channels.get(name, ns));
      metrics.reconciles.inc({ kind, result: 'success' });
    } catch (err) {
      metrics.reconciles.inc({ kind, result: 'error' });
      throw err;
    } finally {
      end();
    }
  }, {
    concurrency: 16,
    onError: (key, err, retryInMs) => { if (!stopping) log.warn('reconcile failed; will retry', { key, retryInMs, error: describeError(err) }); },
  });

  queue = startQueue(async (key) => {
    // Reconciling from a cache that is still filling could withdraw a config that exists.
    await Promise.all(all.map((i) => i.synced()));
    const [kind, ns] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
    const end = metrics.reconcileDuration.startTimer({ kind });
    try {
      if (kind === 'ns') await reconciler.reconcileNamespace(ns);
      else await reconciler.reconcileSidecarRbac(ns, namespaces.get(ns) !== undefined);
      metrics.reconciles.inc({ kind, result: 'success' });
    } catch (err) {
      metrics.reconciles.inc({ kind, result: 'error' });
      throw err;
    } finally {
      end();
      metrics.queueDepth.set(queue.size());
    }
  }, {
    onError: (key, err, retryInMs) => log.warn('reconcile failed; will retry', { key, retryInMs, error: describeError(err) }),
  });

  const resyncAll = () => {
    const keys = new Set<string>();
    for (const i of [policies, channels, configMaps]) for (const obj of i.list()) if (obj.metadata?.namespace) keys.add(`ns:${obj.metadata.namespace}`);
    for (const ns of namespaces.list()) keys.add(`rbac:${ns.metadata!.name}`);
    keys.forEach((k) => queue.add(k));
    for (const r of requests.list()) approvalQueue.add(`ar:${objKey(r)}`);
    for (const c of channels.list()) approvalQueue.add(`ac:${objKey(c)}`);
  };
  const resync = setInterval(resyncAll, o.resyncMs ?? 5 * 60_000);
  resync.unref();

  return {
    queue,
    synced: () => all.every((i) => i.isSynced()),
    async stop() {
      clearInterval(resync);
      stopping = true;
      onStop();
      relay.stop();
      checker.stop();
      // Closing Slack first fails calls still waiting on a rate limit, so stepping down is quick.
      slack.close();
      await Promise.all([...all, requests].map((i) => i.stop()));
      await transport.close();
      await Promise.all([queue.close(), approvalQueue.close()]);
    },
  };
}

export async function startOperator(o: OperatorOptions): Promise<Operator> {
  const { log } = o;
  const metrics = createOperatorMetrics();
  let controller: Controller | null = null;
  let leading = false;

  const extras = o.extras ? await o.extras({ metrics, log }) : null;

  let closing = false;
  const becomeLeader = () => {
    // The elector can report a renewal that was in flight when close() stopped it: a controller
    // started then would outlive the operator (and relay approvals beside the next leader).
    if (closing) return;
    leading = true;
    metrics.leader.set(1);
    controller = startController(o, metrics);
  };
  const stepDown = async () => {
    leading = false;
    metrics.leader.set(0);
    const c = controller;
    controller = null;
    await c?.stop();
  };

  let elector: LeaderElector | null = null;
  if (o.leaderElection === false) {
    becomeLeader();
  } else {
    elector = new LeaderElector(o.kc, {
      namespace: o.namespace,
      name: o.leaseName ?? 'thoughtgate-operator',
      identity: o.identity,
      leaseDurationSec: o.leaseDurationSec,
      renewDeadlineMs: o.leaseDurationSec ? Math.round(o.leaseDurationSec * 1000 * 2 / 3) : undefined,
      retryPeriodMs: o.leaseDurationSec ? Math.max(200, Math.round(o.leaseDurationSec * 1000 / 7)) : undefined,
      log,
      onStartedLeading: becomeLeader,
      onStoppedLeading: stepDown,
    });
    elector.start();
  }

  const health = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else if (path === '/readyz') {
      // A follower is ready (it serves the webhook); the leader once its caches are filled.
      const ready = (extras?.ready?.() ?? true) && (!leading || (controller?.synced() ?? false));
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready, leader: leading, identity: o.identity }));
    } else if (path === '/metrics') {
      metrics.registry.metrics().then((t) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(t), () => res.writeHead(500).end());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    health.once('error', reject);
    health.listen(o.metricsPort, o.metricsBind ?? '0.0.0.0', () => resolve());
  });
  const metricsPort = (health.address() as { port: number }).port;
  log.info('operator started', { identity: o.identity, namespace: o.namespace, metrics: metricsPort, leaderElection: o.leaderElection !== false });

  return {
    metrics,
    metricsPort,
    isLeader: () => leading,
    async idle() {
      while (!controller || !controller.synced()) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50));
      await controller.queue.idle();
    },
    async close() {
      closing = true;
      if (elector) await elector.stop();
      else await stepDown();
      await extras?.close();
      health.closeAllConnections();
      await new Promise<void>((r) => health.close(() => r()));
      log.info('operator stopped', { identity: o.identity });
    },
  };
}

function describeError(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e?.code === 'number' && typeof e.body === 'string') {
    try {
      const s = JSON.parse(e.body) as { message?: string };
      return `${e.code}: ${s.message ?? e.body}`;
    } catch { return `${e.code}: ${e.body}`; }
  }
  return e?.message ?? String(err);
}

// The capture report controller against a small HTTP API server (port 0) that applies its status
// merge patches to the policies the cache holds, driven by a manual clock through the work queue:
// a burst of pod events becomes a bounded number of status writes, and the last state is written.
import http from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { createLogger } from '../lib/log.js';
import { ManualClock } from '../test/support/manual-clock.js';
import { captureReport, type ReportPod } from './capture-report-plan.js';
import { captureReportControllerWith } from './capture-report-controller.js';
import type { NamespaceKey } from './keys.js';
import type { KubeObject } from './kube-object.js';
import type { ControllerContext } from './manager.js';
import { startQueue } from './queue.js';
import { GOVERNANCE_POLICIES, INJECTED_PODS } from './sources.js';

const NS = 'agents';
const POLICIES = 3;
const PODS = 50;
const EVERY_MS = 100; // one pod event every 100 ms: the burst lasts 5 s

interface Run {
  writes: number;
  policies: KubeObject[];
  pods: ReportPod[];
}

/** A rolling update's pod events (create one, delete an old one) through the controller. */
async function burst(minIntervalMs: number): Promise<Run> {
  const policies: KubeObject[] = Array.from(
    { length: POLICIES },
    (_, i) => ({ apiVersion: 'thoughtgate.io/v1alpha1', kind: 'GovernancePolicy', metadata: { name: `p${i}`, namespace: NS }, status: {} }) as KubeObject,
  );
  let pods: ReportPod[] = Array.from({ length: 10 }, (_, i) => ({ metadata: { name: `old-${i}`, labels: { 'thoughtgate.io/sidecar': 'injected' } } }));
  let writes = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const m = /^\/apis\/thoughtgate\.io\/v1alpha1\/namespaces\/agents\/governancepolicies\/([^/]+)\/status$/.exec(req.url ?? '');
      const p = m && policies.find((x) => x.metadata.name === m[1]);
      if (req.method !== 'PATCH' || !p) return void res.writeHead(404).end('{}');
      writes++;
      // What the informer would bring back: the merge patch of status.capture applied.
      const capture = (JSON.parse(body) as { status: { capture: unknown } }).status.capture;
      const { capture: _, ...rest } = (p.status ?? {}) as Record<string, unknown>;
      p.status = capture === null ? rest : { ...rest, capture };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(p));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }, { name: 'op' });

  const clock = new ManualClock();
  const def = captureReportControllerWith({ minIntervalMs, clock });
  let reconcile!: (k: NamespaceKey) => Promise<void>;
  const queue = startQueue<NamespaceKey>((k) => reconcile(k), { id: def.id, clock });
  const ctx = {
    kc,
    log: createLogger('error', () => undefined),
    enqueue: (k: NamespaceKey, delayMs?: number) => queue.add(k, delayMs),
    cache: (source: unknown) => ({
      list: () => (source === INJECTED_PODS ? pods : source === GOVERNANCE_POLICIES ? policies : []),
      get: () => undefined,
    }),
  } as unknown as ControllerContext<NamespaceKey>;
  const reconciler = def.setup(ctx);
  reconcile = (k) => reconciler.reconcile(k);
  // The requests are real I/O: wait until nothing is queued or running (timers may wait on the clock).
  const drain = async () => {
    while (queue.size() > 0) await new Promise((r) => setTimeout(r, 1));
  };
  try {
    for (let i = 0; i < PODS; i++) {
      // Each pod event is one enqueue, as the informer's handler does.
      pods = [
        ...pods,
        {
          metadata: { name: `new-${String(i).padStart(2, '0')}`, labels: { 'thoughtgate.io/sidecar': 'captured' } },
          spec: { initContainers: [{ name: 'thoughtgate-capture', args: ['capture-init'] }] },
        },
      ];
      queue.add({ namespace: NS });
      await drain();
      if (i < 10) {
        pods = pods.filter((p) => p.metadata.name !== `old-${i}`);
        queue.add({ namespace: NS });
        await drain();
      }
      await clock.advance(EVERY_MS);
      await drain();
    }
    // Quiet afterwards: the write that waited goes out once its interval is over.
    await clock.advance(minIntervalMs + 1);
    await drain();
    expect(clock.pending).toBe(0);
    return { writes, policies, pods };
  } finally {
    await queue.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

describe('capture report controller', () => {
  test('a burst of pod events: at most one write per policy per interval, and the final report written', async () => {
    const run = await burst(5_000);
    // 60 events over 5 s: the first writes at once, the rest wait for the interval (t=5 s), then
    // the last one (t=10 s) — at most three rounds of one patch per policy.
    expect(run.writes).toBeGreaterThanOrEqual(POLICIES);
    expect(run.writes).toBeLessThanOrEqual(3 * POLICIES);
    const final = captureReport(run.pods);
    expect(final.summary).toBe('50/50');
    expect(final.capturedPods).toHaveLength(10); // bounded as before
    for (const p of run.policies) expect((p.status as { capture?: unknown }).capture).toEqual(final);
    process.stdout.write(`capture report, ${PODS + 10} pod events, ${POLICIES} policies: ${run.writes} status writes with a 5 s interval\n`);
  });

  test('without the interval every pod event is a write to every policy (what the interval saves)', async () => {
    const run = await burst(0);
    expect(run.writes).toBe((PODS + 10) * POLICIES);
    for (const p of run.policies) expect((p.status as { capture?: unknown }).capture).toEqual(captureReport(run.pods));
    process.stdout.write(`capture report, ${PODS + 10} pod events, ${POLICIES} policies: ${run.writes} status writes without an interval\n`);
  });
});

// The manager without an API server: leader election off, controllers that watch nothing (the
// informers run against a real API server in e2e/operator.test.ts). What is left is its own work:
// a term per leadership, typed keys through each controller's queue, metrics by kind, shared
// values closed after the controllers stop, health and readiness.
import * as k8s from '@kubernetes/client-node';
import { createLogger } from '../../lib/log.js';
import { Manager, type ControllerDefinition, type ManagerOptions } from '../../operator/manager.js';

/** A cluster nothing here calls (no controller watches anything). */
function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'none', server: 'http://127.0.0.1:9', skipTLSVerify: true }, { name: 'nobody' });
  return kc;
}

const options = (over: Partial<ManagerOptions> = {}): ManagerOptions => ({
  kc: kubeConfig(),
  namespace: 'thoughtgate-system',
  identity: 'op-1',
  log: createLogger('error', () => undefined),
  metricsPort: 0,
  metricsBind: '127.0.0.1',
  leaderElection: false,
  ...over,
});

interface Key {
  namespace: string;
  name: string;
}

test('each controller gets its typed keys on its own queue; metrics by kind; stop, then shared values close', async () => {
  const seen: string[] = [];
  const order: string[] = [];
  let enqueue!: (k: Key, delayMs?: number) => void;
  let shared: object | undefined;
  const def: ControllerDefinition<Key> = {
    kind: 'test',
    id: (k) => `${k.namespace}/${k.name}`,
    setup: (ctx) => {
      enqueue = ctx.enqueue;
      shared = ctx.shared(
        'thing',
        () => ({}),
        () => order.push('shared closed'),
      );
      expect(ctx.shared('thing', () => ({}))).toBe(shared);
      return {
        watches: [],
        reconcile: async (k) => {
          seen.push(`${k.namespace}/${k.name}`);
          if (k.name === 'bad' && !seen.includes('retried')) {
            seen.push('retried');
            throw new Error('once');
          }
        },
        stop: () => order.push('controller stopped'),
      };
    },
  };
  const m = new Manager(options()).add(def);
  await m.start();
  expect(m.isLeader()).toBe(true);
  enqueue({ namespace: 'a', name: 'x' });
  enqueue({ namespace: 'a', name: 'bad' });
  const until = async (f: () => boolean) => {
    for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  await until(() => seen.filter((s) => s === 'a/bad').length === 2);
  expect(seen).toEqual(['a/x', 'a/bad', 'retried', 'a/bad']);
  const text = await (await fetch(`http://127.0.0.1:${m.metricsPort}/metrics`)).text();
  expect(text).toContain('thoughtgate_operator_reconciles_total{kind="test",result="success"} 2');
  expect(text).toContain('thoughtgate_operator_reconciles_total{kind="test",result="error"} 1');
  expect(text).toContain('thoughtgate_operator_leader 1');
  await m.close();
  expect(order).toEqual(['controller stopped', 'shared closed']);
  expect(m.isLeader()).toBe(false);
  expect(await m.metrics.registry.getSingleMetricAsString('thoughtgate_operator_leader')).toContain('thoughtgate_operator_leader 0');
});

test("health always; ready while the extras are ready and the leader's caches are filled", async () => {
  let extrasReady = false;
  const m = new Manager(options({ extras: async () => ({ close: () => undefined, ready: () => extrasReady }) }));
  await m.start();
  const base = `http://127.0.0.1:${m.metricsPort}`;
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const notReady = await fetch(`${base}/readyz`);
  expect(notReady.status).toBe(503);
  expect(await notReady.json()).toEqual({ ready: false, leader: true, identity: 'op-1' });
  extrasReady = true;
  expect((await fetch(`${base}/readyz`)).status).toBe(200);
  expect((await fetch(`${base}/nope`)).status).toBe(404);
  await m.close();
});

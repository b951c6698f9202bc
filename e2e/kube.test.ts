// kube/ against a real kube-apiserver: the resource client's verbs and error categories, and the
// reflector through watches, 410 relists after an apiserver restart, a silent connection, RBAC
// refusals with backoff, and stop(). Also the operator's transport built from a KubeConfig.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startReflector, type Reflector, type ReflectorOptions } from '../kube/reflector.js';
import { resourceClient, type ResourceClient } from '../kube/resource.js';
import { CONFIG_MAPS, GOVERNANCE_POLICIES, isConfigMap, isCustomObject, type ConfigMap, type CustomObject } from '../kube/resources.js';
import { createTransport, type Transport } from '../kube/transport.js';
import { startInformer } from '../operator/informer.js';
import { transportFromKubeConfig } from '../operator/kube-transport.js';
import { createLogger } from '../lib/log.js';
import { cluster, e2eCluster, kubectl as must } from './support/k8s.js';

const STEP_TIMEOUT = 3 * 60_000;
const WAIT_MS = 20_000;

const e2e = e2eCluster('kube');
let tmp: string;
let admin: Transport;
let cms: ResourceClient<ConfigMap>;
let kcAdmin: k8s.KubeConfig;
const stops: Array<() => Promise<void>> = [];

async function until<T>(what: string, f: () => T | null | undefined | false, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cm = (ns: string, name: string, data: Record<string, string> = {}): ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: ns },
  data,
});

/** A reflector over the namespace's ConfigMaps, with a mirror kept only from its change stream. */
function reflect(ns: string, extra: Partial<ReflectorOptions<ConfigMap>> = {}, transport = admin) {
  const mirror = new Map<string, string>();
  const log: string[] = [];
  const r: Reflector<ConfigMap> = startReflector<ConfigMap>({
    source: resourceClient<ConfigMap>(transport, CONFIG_MAPS, { is: isConfigMap }).listWatch({ namespace: ns }),
    addsOnFirstList: true,
    onChange: (c) => {
      if (c.type === 'delete') mirror.delete(c.object.metadata.name);
      else mirror.set(c.object.metadata.name, c.object.data?.v ?? '');
    },
    onFailure: (err, delayMs) => log.push(`failure ${delayMs} ${String((err as Error).message)}`),
    onGone: () => log.push('gone'),
    onWatchdog: () => log.push('watchdog'),
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    ...extra,
  });
  stops.push(() => r.stop());
  const storeView = () => new Map(r.list(ns).map((c) => [c.metadata.name, c.data?.v ?? '']));
  return { r, mirror, log, storeView };
}

/** The server's truth for the namespace's ConfigMaps (kube-root-ca.crt too, as the reflector sees it). */
async function truth(ns: string): Promise<Map<string, string>> {
  const l = await cms.list({ namespace: ns });
  return new Map(l.items.map((c) => [c.metadata.name, c.data?.v ?? '']));
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'thoughtgate-kube-'));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster().kubeconfig);
  kcAdmin = kc;
  admin = transportFromKubeConfig(kc);
  cms = resourceClient<ConfigMap>(admin, CONFIG_MAPS, { is: isConfigMap });
});

e2e.cleanup(async () => {
  try {
    for (const s of stops) await s();
    await admin?.close();
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

describe('the resource client on a real kube-apiserver (transport from a KubeConfig with a client certificate)', () => {
  it(
    'creates, gets, lists, replaces, patches (merge, JSON patch, server-side apply) and deletes, with categorised errors',
    async () => {
      const ns = await e2e.namespace('verbs');
      const created = await cms.create(cm(ns, 'a', { v: '1' }));
      expect(created.metadata).toMatchObject({ name: 'a', namespace: ns, uid: expect.any(String), resourceVersion: expect.stringMatching(/^\d+$/) });
      expect(typeof created.metadata.creationTimestamp).toBe('string');
      await expect(cms.create(cm(ns, 'a'))).rejects.toMatchObject({ kind: 'http', status: 409, category: 'conflict' });
      expect((await cms.get('a', ns))?.data).toEqual({ v: '1' });
      expect(await cms.get('missing', ns)).toBeNull();

      const replaced = await cms.replace({ ...created, data: { v: '2' } });
      expect(replaced.data).toEqual({ v: '2' });
      // A write from a stale resourceVersion is a conflict, not a lost update.
      await expect(cms.replace({ ...created, data: { v: 'stale' } })).rejects.toMatchObject({ status: 409, category: 'conflict' });

      expect((await cms.patch('a', { data: { w: 'x' } }, 'merge', { namespace: ns })).data).toEqual({ v: '2', w: 'x' });
      expect((await cms.patch('a', [{ op: 'replace', path: '/data/v', value: '3' }], 'json', { namespace: ns })).data).toEqual({ v: '3', w: 'x' });
      // A failed JSON-patch test is the server refusing the write: 422, invalid.
      await expect(cms.patch('a', [{ op: 'test', path: '/data/v', value: 'nope' }], 'json', { namespace: ns })).rejects.toMatchObject({ category: 'invalid' });
      await expect(cms.patch('missing', { data: {} }, 'merge', { namespace: ns })).rejects.toMatchObject({ status: 404, category: 'not-found' });

      // Server-side apply: creates, then owns its fields; another manager's conflicting apply needs force.
      const applied = await cms.apply(cm(ns, 'b', { v: 'mine' }), { fieldManager: 'kube-e2e' });
      expect(applied.metadata.managedFields?.map((f) => f.manager)).toContain('kube-e2e');
      await expect(cms.apply(cm(ns, 'b', { v: 'theirs' }), { fieldManager: 'other' })).rejects.toMatchObject({ status: 409, category: 'conflict' });
      expect((await cms.apply(cm(ns, 'b', { v: 'theirs' }), { fieldManager: 'other', force: true })).data).toEqual({ v: 'theirs' });
      const dry = await cms.create(cm(ns, 'dry'), { dryRun: true });
      expect(dry.metadata.name).toBe('dry');
      expect(await cms.get('dry', ns)).toBeNull();

      // Paginated lists come back whole.
      for (let i = 0; i < 5; i++) await cms.create(cm(ns, `p${i}`));
      const paged = await cms.list({ namespace: ns, limit: 2 });
      expect(
        paged.items
          .map((c) => c.metadata.name)
          .filter((n) => n !== 'kube-root-ca.crt')
          .sort(),
      ).toEqual(['a', 'b', 'p0', 'p1', 'p2', 'p3', 'p4']);
      expect(paged.resourceVersion).toMatch(/^\d+$/);

      await expect(cms.delete('a', { namespace: ns, preconditions: { uid: 'not-the-uid' } })).rejects.toMatchObject({ status: 409, category: 'conflict' });
      expect(await cms.delete('a', { namespace: ns, preconditions: { uid: created.metadata.uid! } })).toBe(true);
      expect(await cms.delete('a', { namespace: ns })).toBe(false);
    },
    STEP_TIMEOUT,
  );

  it(
    'writes the status subresource of a custom resource, and only through it',
    async () => {
      const ns = await e2e.namespace('status');
      const gps = resourceClient<CustomObject>(admin, GOVERNANCE_POLICIES, { is: isCustomObject });
      const gp: CustomObject = {
        apiVersion: 'thoughtgate.io/v1alpha1',
        kind: 'GovernancePolicy',
        metadata: { name: 'p', namespace: ns },
        spec: { sources: [{ name: 'up', url: 'http://up.example/mcp' }], rules: [], defaultAction: 'deny' },
      };
      await gps.create(gp);
      // The main resource ignores status; the subresource ignores spec.
      await gps.patch('p', { status: { renderedHash: 'ignored' } }, 'merge', { namespace: ns });
      expect((await gps.get('p', ns))?.status?.renderedHash).toBeUndefined();
      const s = await gps.patch('p', { status: { renderedHash: 'abc', observedGeneration: 1 }, spec: { defaultAction: 'forward' } }, 'merge', {
        namespace: ns,
        status: true,
      });
      expect(s.status).toMatchObject({ renderedHash: 'abc', observedGeneration: 1 });
      expect(s.spec?.defaultAction).toBe('deny');
      const applied = await gps.apply(
        { apiVersion: gp.apiVersion, kind: gp.kind, metadata: { name: 'p', namespace: ns }, status: { renderedHash: 'def' } },
        { fieldManager: 'kube-e2e', status: true, force: true },
      );
      expect(applied.status?.renderedHash).toBe('def');
    },
    STEP_TIMEOUT,
  );
  it(
    'lists in pages, and halves a page that is over the transport bound, so a list larger than any one response still fills the store',
    async () => {
      const ns = await e2e.namespace('pages');
      const big = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 24; i++) await cms.create(cm(ns, `cm-${String(i).padStart(2, '0')}`, { v: String(i), big }));
      // 64 KiB per response: 24 ConfigMaps of 16 KiB (~400 KiB) can only arrive over many pages.
      const small = transportFromKubeConfig(kcAdmin, { maxBodyBytes: 64 * 1024 });
      stops.push(() => small.close());
      const client = resourceClient<ConfigMap>(small, CONFIG_MAPS, { is: isConfigMap });
      const all = await client.list({ namespace: ns });
      expect(all.items.filter((c) => c.metadata.name.startsWith('cm-')).map((c) => c.data?.v)).toEqual(Array.from({ length: 24 }, (_, i) => String(i)));
      // The same through a reflector: its store fills and matches the server.
      const { r, storeView } = reflect(ns, {}, small);
      await r.synced();
      expect(storeView()).toEqual(await truth(ns));
      // One object over the bound is refused with a clear error, not retried for ever in halves.
      const tiny = transportFromKubeConfig(kcAdmin, { maxBodyBytes: 4 * 1024 });
      stops.push(() => tiny.close());
      await expect(resourceClient<ConfigMap>(tiny, CONFIG_MAPS, { is: isConfigMap }).list({ namespace: ns })).rejects.toThrow(/over the limit|exceeds|bytes/);
    },
    STEP_TIMEOUT,
  );
});

describe('the reflector on a real kube-apiserver', () => {
  it(
    'lists, then follows adds, updates and deletes; its store and its change stream agree with the server',
    async () => {
      const ns = await e2e.namespace('follow');
      await cms.create(cm(ns, 'before', { v: '0' }));
      const { r, mirror, storeView } = reflect(ns);
      await r.synced();
      expect(r.isSynced()).toBe(true);
      expect(r.get('before', ns)?.data).toEqual({ v: '0' });
      for (let i = 1; i <= 10; i++) await cms.create(cm(ns, `c${i}`, { v: String(i) }));
      await cms.patch('c1', { data: { v: 'changed' } }, 'merge', { namespace: ns });
      await cms.delete('before', { namespace: ns });
      const want = await truth(ns);
      await until('the store to match the server', () => JSON.stringify([...storeView()].sort()) === JSON.stringify([...want].sort()));
      expect([...mirror].sort()).toEqual([...want].sort());
      const s = r.state();
      expect(s).toMatchObject({ phase: 'watching', lastError: null });
      expect(s.counters).toMatchObject({ lists: 1, failures: 0, relists: 0 });
      expect(s.counters.events).toBeGreaterThanOrEqual(12);
      await r.stop();
      expect(r.state().phase).toBe('closed');
      // Stopped means stopped: nothing more reaches the store.
      await cms.create(cm(ns, 'after'));
      await new Promise((res) => setTimeout(res, 500));
      expect(r.get('after', ns)).toBeUndefined();
    },
    STEP_TIMEOUT,
  );

  it(
    'resumes watches the server ends, restarts a silent one (watchdog), and bookmarks keep one alive, without relisting',
    async () => {
      const ns = await e2e.namespace('timeouts');
      const short = reflect(ns, { watchTimeoutSeconds: 1 });
      const quiet = reflect(ns, { watchTimeoutSeconds: 300, watchdogMs: 1500 });
      // The API server bookmarks a watch 2 s before its timeout (and about every minute) once its
      // cache has moved past the watch's resourceVersion: writes elsewhere move it. A 10 s watch gets
      // a bookmark at 8–9.25 s (the server's timer is per second, jittered), which pets a 9.5 s
      // watchdog that would otherwise cut it before the server ends it.
      const bookmarked = reflect(ns, { watchTimeoutSeconds: 10, watchdogMs: 9500 });
      await Promise.all([short.r.synced(), quiet.r.synced(), bookmarked.r.synced()]);
      const listedAt = Number(bookmarked.r.state().resourceVersion);
      const elsewhere = await e2e.namespace('elsewhere');
      for (let i = 0; i < 24; i++) {
        await cms.create(cm(elsewhere, `e${i}`));
        await new Promise((res) => setTimeout(res, 500));
      }
      const b = bookmarked.r.state();
      expect(b.counters.bookmarks).toBeGreaterThanOrEqual(1);
      // Only bookmarks arrived, yet the watch resumes from a newer resourceVersion than its list's.
      expect(b.counters.events).toBe(b.counters.bookmarks);
      expect(Number(b.resourceVersion)).toBeGreaterThan(listedAt);
      expect(b.counters).toMatchObject({ lists: 1, relists: 0, failures: 0, watchdogRestarts: 0 });
      await cms.create(cm(ns, 'late', { v: 'x' }));
      await until('both to see it', () => short.r.get('late', ns) && quiet.r.get('late', ns));
      expect(short.r.state().counters.watches).toBeGreaterThanOrEqual(3);
      expect(short.r.state().counters).toMatchObject({ lists: 1, relists: 0, failures: 0, watchdogRestarts: 0 });
      expect(quiet.r.state().counters.watchdogRestarts).toBeGreaterThanOrEqual(2);
      expect(quiet.r.state().counters).toMatchObject({ lists: 1, relists: 0, failures: 0 });
      expect(quiet.log).toContain('watchdog');
      await Promise.all([short.r.stop(), quiet.r.stop(), bookmarked.r.stop()]);
    },
    STEP_TIMEOUT,
  );

  it(
    'after an apiserver restart: reconnects with backoff, relists on 410, and reports what changed meanwhile',
    async () => {
      const ns = await e2e.namespace('restart');
      for (const n of ['keep', 'drop', 'edit']) await cms.create(cm(ns, n, { v: 'old' }));
      const { r, mirror, log, storeView } = reflect(ns);
      await r.synced();
      await until('watching', () => r.state().phase === 'watching');
      // Writes elsewhere move etcd past the watch's resourceVersion: a restarted apiserver's watch
      // cache starts at the head, so resuming is answered with 410 and the reflector lists again.
      await must(['create', 'configmap', 'elsewhere', '-n', await e2e.namespace('restart-elsewhere'), '--from-literal=a=b']);
      await cluster().restartApiServer();
      // Changes the reflector may see as events or only in its relist; either way they must arrive.
      await cms.delete('drop', { namespace: ns });
      await cms.patch('edit', { data: { v: 'new' } }, 'merge', { namespace: ns });
      await cms.create(cm(ns, 'added', { v: 'new' }));
      const want = await truth(ns);
      await until('the store to match the server', () => JSON.stringify([...storeView()].sort()) === JSON.stringify([...want].sort()));
      await until('the change stream to match', () => JSON.stringify([...mirror].sort()) === JSON.stringify([...want].sort()));
      const s = r.state().counters;
      console.log(`reflector after an apiserver restart: ${JSON.stringify(s)}; ${JSON.stringify(log)}`);
      expect(s.failures).toBeGreaterThan(0);
      expect(s.relists).toBeGreaterThanOrEqual(1);
      expect(s.lists).toBe(1 + s.relists);
      expect(log).toContain('gone');
      await r.stop();
    },
    STEP_TIMEOUT,
  );

  it(
    'backs off on a refusal (403), says why, and recovers once RBAC allows it',
    async () => {
      const ns = await e2e.namespace('rbac');
      await must(['create', 'serviceaccount', 'reader', '-n', ns]);
      const tokenFile = path.join(tmp, 'reader.token');
      await writeFile(tokenFile, await must(['create', 'token', 'reader', '-n', ns, '--duration', '1h']));
      const sa = createTransport({ server: cluster().server, caFile: cluster().caFile, tokenFile });
      stops.push(() => sa.close());
      const { r, log } = reflect(ns, {}, sa);
      await until('three failures', () => r.state().counters.failures >= 3);
      expect(r.isSynced()).toBe(false);
      expect(r.state().lastError).toContain('HTTP 403 Forbidden');
      const delays = log.filter((l) => l.startsWith('failure')).map((l) => Number(l.split(' ')[1]));
      // 100 ms doubling, with jitter in the upper half of each step.
      expect(delays[0]).toBeGreaterThanOrEqual(50);
      expect(delays[0]).toBeLessThanOrEqual(100);
      expect(delays[2]).toBeGreaterThanOrEqual(200);
      await must(['create', 'rolebinding', 'reader', '-n', ns, '--clusterrole=view', `--serviceaccount=${ns}:reader`]);
      await r.synced();
      await until('watching', () => r.state().phase === 'watching');
      expect(r.state().lastError).toBeNull();
      await r.stop();
    },
    STEP_TIMEOUT,
  );
});

describe('the operator informer (operator/informer.ts) on the reflector', () => {
  it(
    'fires adds for the first list, then updates and deletes, by label selector, and reads back from its store',
    async () => {
      const ns = await e2e.namespace('informer');
      await cms.create({ ...cm(ns, 'mine'), metadata: { name: 'mine', namespace: ns, labels: { team: 'x' } } });
      await cms.create(cm(ns, 'not-mine'));
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(cluster().kubeconfig);
      const events: string[] = [];
      let restarts = 0;
      const inf = startInformer<k8s.V1ConfigMap>({
        kc,
        name: 'configmaps',
        path: `/api/v1/configmaps`,
        labelSelector: 'team=x',
        onChange: (e, o) => events.push(`${e} ${o.metadata?.namespace}/${o.metadata?.name}`),
        log: createLogger('error', () => undefined),
        onRestart: () => restarts++,
      });
      stops.push(() => inf.stop());
      await inf.synced();
      expect(events).toEqual([`add ${ns}/mine`]);
      await cms.patch('mine', { data: { v: '1' } }, 'merge', { namespace: ns });
      await cms.delete('mine', { namespace: ns });
      await until('update and delete', () => events.length >= 3);
      expect(events).toEqual([`add ${ns}/mine`, `update ${ns}/mine`, `delete ${ns}/mine`]);
      expect(inf.get('mine', ns)).toBeUndefined();
      expect(inf.list(ns)).toEqual([]);
      expect(restarts).toBe(0);
      await inf.stop();
    },
    STEP_TIMEOUT,
  );
});

// The sidecar's ConfigMap provider against a real kube-apiserver: a ServiceAccount token that
// RBAC lets read only thoughtgate-config, the cluster CA, and the watch through apiserver
// restarts, token rotation, deletes, bad documents and silent connections.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import type { Identity } from '../api/config.js';
import { API_VERSION, CONFIGMAP_KEY, CONFIGMAP_NAME } from '../api/wellknown.js';
import { resourceClient } from '../kube/resource.js';
import { CONFIG_MAPS, isConfigMap, type ConfigMap } from '../kube/resources.js';
import { createTransport, type Transport } from '../kube/transport.js';
import { createLogger } from '../lib/log.js';
import { configMapProvider, type ConfigMapProvider, type ConfigMapProviderOptions } from '../sidecar/providers/configmap.js';
import { startSidecar } from '../sidecar/sidecar.js';
import type { ConfigUpdate } from '../sidecar/sidecar.js';
import { cluster as current, e2eCluster, kubectl as must, until } from './support/k8s.js';

const STEP_TIMEOUT = 3 * 60_000;
const WAIT_MS = 20_000;

const e2e = e2eCluster('cm');
let tmp: string;
const open: Array<{ close(): Promise<void> | void }> = [];

const RBAC = (ns: string) => ({
  apiVersion: 'v1',
  kind: 'List',
  items: [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'agent', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'thoughtgate-sidecar', namespace: ns },
      rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [CONFIGMAP_NAME], verbs: ['get', 'list', 'watch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'thoughtgate-sidecar', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'thoughtgate-sidecar' },
      subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: ns }],
    },
  ],
});

/** A namespace with the ServiceAccount `agent`, its RBAC (unless `rbac: false`), and a token file. */
async function namespace(name: string, opts: { rbac?: boolean } = {}): Promise<{ ns: string; tokenFile: string }> {
  const ns = await e2e.namespace(name);
  const list = RBAC(ns);
  if (opts.rbac === false) list.items = list.items.slice(0, 1);
  await must(['apply', '-f', '-'], JSON.stringify(list));
  const tokenFile = path.join(tmp, `${ns}.token`);
  await writeFile(tokenFile, await must(['create', 'token', 'agent', '-n', ns, '--duration', '1h']));
  return { ns, tokenFile };
}

interface PolicyEntry {
  name: string;
  priority?: number;
  podSelector?: unknown;
  hash: string;
  defaultAction?: 'forward' | 'deny';
}

function configText(policies: PolicyEntry[]): string {
  return stringify({
    apiVersion: API_VERSION,
    kind: 'SidecarConfig',
    policies: policies.map((p) => ({
      name: p.name,
      priority: p.priority ?? 0,
      ...(p.podSelector ? { podSelector: p.podSelector } : {}),
      generation: 1,
      hash: p.hash,
      spec: {
        sources: [{ name: 'up', url: 'http://${UPSTREAM_HOST}:9/mcp' }],
        rules: [{ name: p.hash, match: { tool: 'delete_*' }, action: 'deny' }],
        defaultAction: p.defaultAction ?? 'forward',
      },
    })),
  });
}

async function applyConfig(ns: string, text: string): Promise<void> {
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: CONFIGMAP_NAME, namespace: ns }, data: { [CONFIGMAP_KEY]: text } };
  await must(['apply', '-f', '-'], JSON.stringify(cm));
}

/** A merge-patch with the admin client certificate, timed without kubectl's process start. */
async function adminPatch(urlPath: string, body: unknown): Promise<void> {
  const [ca, cert, key] = await Promise.all([
    readFile(current().caFile),
    readFile(current().env.THOUGHTGATE_K8S_ADMIN_CERT_FILE!),
    readFile(current().env.THOUGHTGATE_K8S_ADMIN_KEY_FILE!),
  ]);
  await new Promise<void>((resolve, reject) => {
    const req = https.request(
      new URL(urlPath, current().server),
      { method: 'PATCH', ca, cert, key, headers: { 'content-type': 'application/merge-patch+json' } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PATCH ${urlPath}: ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const identity = (ns: string, labels: Record<string, string> = { app: 'agent' }): Identity => ({
  namespace: ns,
  serviceAccount: 'agent',
  pod: 'agent-0',
  labels,
});

interface Running {
  provider: ConfigMapProvider;
  updates: Array<ConfigUpdate & { at: number }>;
  logs: Array<{ level: string; msg: string; [k: string]: unknown }>;
  /** Resolves once the watch is established (the server sent its response headers). */
  watching(): Promise<void>;
  /** Resolves with the first update at index >= `from` that satisfies `pred`. */
  next(pred: (u: ConfigUpdate) => boolean, from?: number, timeoutMs?: number): Promise<ConfigUpdate & { at: number }>;
}

async function run(ns: string, tokenFile: string, extra: Partial<ConfigMapProviderOptions> = {}): Promise<Running> {
  const updates: Running['updates'] = [];
  const logs: Running['logs'] = [];
  const provider = configMapProvider({
    namespace: ns,
    identity: identity(ns),
    env: { UPSTREAM_HOST: '127.0.0.1' },
    log: createLogger('debug', (line) => logs.push(JSON.parse(line))),
    clientOptions: { server: current().server, caFile: current().caFile, tokenFile },
    backoffMaxMs: 1000,
    ...extra,
  });
  open.push(provider);
  await provider.start((u) => updates.push({ ...u, at: performance.now() }));
  const next: Running['next'] = async (pred, from = 0, timeoutMs = WAIT_MS) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const u = updates.slice(from).find(pred);
      if (u) return u;
      if (Date.now() > deadline) {
        throw new Error(
          `no matching update within ${timeoutMs} ms; updates: ${JSON.stringify(updates.map((x) => (x.ok === true ? x.hash : x.ok === 'none' ? x.reason : x.errors)))}; state: ${JSON.stringify({ ...provider.state(), view: provider.state().view.kind })}; logs: ${JSON.stringify(logs.slice(-5))}`,
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const watching = async (): Promise<void> => {
    const deadline = Date.now() + WAIT_MS;
    while (provider.state().phase !== 'watching') {
      if (Date.now() > deadline) throw new Error(`not watching after ${WAIT_MS} ms: ${JSON.stringify(provider.state())}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { provider, updates, logs, next, watching };
}

const isHash = (hash: string) => (u: ConfigUpdate) => u.ok === true && u.hash === hash;
const isNone = (text: string) => (u: ConfigUpdate) => u.ok === 'none' && u.reason.includes(text);
const isInvalid = (u: ConfigUpdate): u is Extract<ConfigUpdate, { ok: false }> => u.ok === false;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'thoughtgate-cm-'));
});

e2e.cleanup(async () => {
  try {
    for (const o of open) await o.close();
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

describe('ConfigMap provider on a real kube-apiserver', () => {
  it(
    'loads the policy for this pod, follows kubectl apply, and reports the propagation latency',
    async () => {
      const { ns, tokenFile } = await namespace('load');
      await applyConfig(
        ns,
        configText([
          { name: 'base', hash: 'v0' },
          { name: 'other', priority: 50, podSelector: { matchLabels: { app: 'other' } }, hash: 'x0' },
        ]),
      );
      const r = await run(ns, tokenFile);
      // start() waits for the first list: the config is there when it resolves.
      expect(r.updates).toHaveLength(1);
      expect(r.updates[0]).toMatchObject({ ok: true, hash: 'v0/base', origin: `ConfigMap ${ns}/${CONFIGMAP_NAME} policy base` });
      const first = r.updates[0]!;
      if (first.ok !== true) throw new Error('unreachable');
      expect(first.doc.sources[0]!.url).toBe('http://127.0.0.1:9/mcp');
      expect(first.identity).toEqual(identity(ns));
      await r.watching();
      expect(r.provider.state()).toMatchObject({ view: { kind: 'config', policy: 'base' }, phase: 'watching' });

      // Measured from the start of `kubectl apply` (a process start, a GET and a PATCH) to the
      // update in the provider; kubectl's own run time is printed alongside for scale.
      const latency: number[] = [];
      const kubectlRun: number[] = [];
      let beforeKubectlExit = 0;
      for (let i = 1; i <= 20; i++) {
        const t0 = performance.now();
        await applyConfig(
          ns,
          configText([
            { name: 'base', hash: `v${i}` },
            { name: 'other', priority: 50, podSelector: { matchLabels: { app: 'other' } }, hash: 'x0' },
          ]),
        );
        const t1 = performance.now();
        const u = await r.next(isHash(`v${i}/base`));
        latency.push(u.at - t0);
        kubectlRun.push(t1 - t0);
        if (u.at < t1) beforeKubectlExit++;
      }
      const fmt = (xs: number[]) => {
        const s = [...xs].sort((a, b) => a - b);
        return `p50 ${percentile(s, 50).toFixed(1)} ms, p99 (= max of 20) ${percentile(s, 99).toFixed(1)} ms`;
      };
      console.log(
        `ConfigMap propagation, 20 kubectl apply changes:\n  kubectl apply start → provider update: ${fmt(latency)}\n  kubectl apply run time:                 ${fmt(kubectlRun)}\n  updates that arrived before kubectl exited: ${beforeKubectlExit}/20`,
      );
      // 21 distinct hashes, each handed over once, in order.
      expect(r.updates.map((u) => (u.ok === true ? u.hash : 'x'))).toEqual(Array.from({ length: 21 }, (_, i) => `v${i}/base`));

      // The same, written straight to the API (one PATCH as admin, no kubectl process): what the
      // watch itself adds between the write and the sidecar.
      const direct: number[] = [];
      for (let i = 100; i < 120; i++) {
        const t0 = performance.now();
        await adminPatch(`/api/v1/namespaces/${ns}/configmaps/${CONFIGMAP_NAME}`, {
          data: {
            [CONFIGMAP_KEY]: configText([
              { name: 'base', hash: `v${i}` },
              { name: 'other', priority: 50, podSelector: { matchLabels: { app: 'other' } }, hash: 'x0' },
            ]),
          },
        });
        const u = await r.next(isHash(`v${i}/base`));
        direct.push(u.at - t0);
      }
      console.log(`  PATCH start → provider update:         ${fmt(direct)}`);

      // A change that does not concern this pod (another pod's policy) is not handed to the sidecar.
      const before = r.updates.length;
      await applyConfig(
        ns,
        configText([
          { name: 'base', hash: 'v119' },
          { name: 'other', priority: 50, podSelector: { matchLabels: { app: 'other' } }, hash: 'x1' },
        ]),
      );
      await applyConfig(
        ns,
        configText([
          { name: 'base', hash: 'v120' },
          { name: 'other', priority: 50, podSelector: { matchLabels: { app: 'other' } }, hash: 'x1' },
        ]),
      );
      await r.next(isHash('v120/base'), before);
      expect(r.updates.length).toBe(before + 1);
      await r.provider.close();
      expect(r.provider.state().phase).toBe('closed');
    },
    STEP_TIMEOUT,
  );

  it(
    'says "no config" when no policy selects the pod, and when the ConfigMap is deleted; recovers when it returns',
    async () => {
      const { ns, tokenFile } = await namespace('none');
      const sel = (app: string) => ({ matchExpressions: [{ key: 'app', operator: 'In', values: [app] }] });
      await applyConfig(ns, configText([{ name: 'p', podSelector: sel('agent'), hash: 'a' }]));
      const r = await run(ns, tokenFile);
      await r.next(isHash('a/p'));

      let from = r.updates.length;
      await applyConfig(ns, configText([{ name: 'p', podSelector: sel('someone-else'), hash: 'b' }]));
      await r.next(isNone('no GovernancePolicy in namespace cm-none selects this pod'), from);
      expect(r.provider.state().view).toMatchObject({ kind: 'none' });
      expect(r.logs.some((l) => l.msg === 'no policy for this pod' && JSON.stringify(l.policies) === '["p"]')).toBe(true);

      from = r.updates.length;
      await applyConfig(ns, configText([{ name: 'p', podSelector: sel('agent'), hash: 'c' }]));
      await r.next(isHash('c/p'), from);

      from = r.updates.length;
      await must(['delete', 'configmap', CONFIGMAP_NAME, '-n', ns]);
      await r.next(isNone('does not exist'), from);
      expect(r.provider.state().view).toMatchObject({ kind: 'none', reason: expect.stringContaining('does not exist') });

      from = r.updates.length;
      await applyConfig(ns, configText([{ name: 'p', podSelector: sel('agent'), hash: 'd' }]));
      await r.next(isHash('d/p'), from);

      // A ConfigMap without the key is "no config" too.
      from = r.updates.length;
      await must(
        ['apply', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: CONFIGMAP_NAME, namespace: ns }, data: { other: 'x' } }),
      );
      await r.next(isNone('has no key "config.yaml"'), from);
      await r.provider.close();
    },
    STEP_TIMEOUT,
  );

  it(
    'rejects an invalid document and keeps the last good config',
    async () => {
      const { ns, tokenFile } = await namespace('invalid');
      await applyConfig(ns, configText([{ name: 'p', hash: 'good' }]));
      const r = await run(ns, tokenFile);
      await r.next(isHash('good/p'));

      let from = r.updates.length;
      await applyConfig(ns, 'apiVersion: thoughtgate.io/v1alpha1\nkind: SidecarConfig\npolicies: [ {name: p\n');
      const bad = await r.next(isInvalid, from);
      expect(bad).toMatchObject({
        ok: false,
        origin: `ConfigMap ${ns}/${CONFIGMAP_NAME}`,
        errors: expect.arrayContaining([expect.stringMatching(/^ConfigMap cm-invalid\/thoughtgate-config config\.yaml:\d+:\d+: /)]),
      });
      expect(r.provider.state().view).toMatchObject({ kind: 'invalid', serving: { policy: 'p', hash: 'good/p' } });

      // Valid YAML, invalid document (a source URL that is not a URL once resolved).
      from = r.updates.length;
      await applyConfig(ns, configText([{ name: 'p', hash: 'good' }]).replace('http://${UPSTREAM_HOST}:9/mcp', 'not a url'));
      await r.next((u) => isInvalid(u) && u.errors.some((e) => e.includes('policies[0] (p).spec.sources[0].url')), from);
      expect(r.provider.state().view).toMatchObject({ kind: 'invalid', serving: { hash: 'good/p' } });

      from = r.updates.length;
      await applyConfig(ns, configText([{ name: 'p', hash: 'fixed' }]));
      await r.next(isHash('fixed/p'), from);
      await r.provider.close();
    },
    STEP_TIMEOUT,
  );

  it(
    'drives a real sidecar: the snapshot follows the ConfigMap, and no ConfigMap means denials',
    async () => {
      const { ns, tokenFile } = await namespace('sidecar');
      await applyConfig(ns, configText([{ name: 'p', hash: 's1' }]));
      const log = createLogger('error', () => undefined);
      const provider = configMapProvider({
        namespace: ns,
        identity: identity(ns),
        env: { UPSTREAM_HOST: '127.0.0.1' },
        log,
        clientOptions: { server: current().server, caFile: current().caFile, tokenFile },
      });
      const sidecar = await startSidecar({ port: 0, adminPort: 0, bind: '127.0.0.1', log, provider, drainTimeoutMs: 100 });
      open.push(sidecar);
      try {
        expect(sidecar.snapshot()?.hash).toBe('s1/p');
        await applyConfig(ns, configText([{ name: 'p', hash: 's2' }]));
        const deadline = Date.now() + WAIT_MS;
        while (sidecar.snapshot()?.hash !== 's2/p' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(sidecar.snapshot()?.hash).toBe('s2/p');
        expect(sidecar.snapshot()?.gates.rules[0]?.label).toBe('s2');

        // ConfigMap gone: the sidecar drops its config and denies governed calls, saying why.
        await must(['delete', 'configmap', CONFIGMAP_NAME, '-n', ns]);
        const gone = Date.now() + WAIT_MS;
        while (sidecar.snapshot() !== null && Date.now() < gone) await new Promise((r) => setTimeout(r, 10));
        expect(sidecar.snapshot()).toBeNull();
        expect(sidecar.ready()).toBe(false);
        const res = await fetch(`http://127.0.0.1:${sidecar.port}/mcp/up`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'anything', arguments: {} } }),
        });
        const body = (await res.json()) as { error?: { code: number; message: string } };
        expect(body.error?.code).toBe(-32011);
        // The agent is told that no config applies, not which ConfigMap or namespace: that is for
        // the operator, on /ready.
        expect(JSON.stringify(body)).not.toContain(CONFIGMAP_NAME);
        expect(JSON.stringify(body)).not.toContain(ns);
        const ready = await fetch(`http://127.0.0.1:${sidecar.adminPort}/ready`);
        expect(ready.status).toBe(503);
        expect(await ready.text()).toContain(`ConfigMap ${ns}/${CONFIGMAP_NAME} does not exist`);

        await applyConfig(ns, configText([{ name: 'p', hash: 's3' }]));
        const back = Date.now() + WAIT_MS;
        while (sidecar.snapshot()?.hash !== 's3/p' && Date.now() < back) await new Promise((r) => setTimeout(r, 10));
        expect(sidecar.snapshot()?.hash).toBe('s3/p');
      } finally {
        await sidecar.close();
      }
    },
    STEP_TIMEOUT,
  );

  it(
    'reconnects after the API server restarts, lists again on 410, and a later change still arrives',
    async () => {
      const { ns, tokenFile } = await namespace('restart');
      await applyConfig(ns, configText([{ name: 'p', hash: 'r1' }]));
      const r = await run(ns, tokenFile);
      await r.next(isHash('r1/p'));
      await r.watching();
      // A write elsewhere moves the cluster's resourceVersion past the one this watch resumes from.
      // A restarted API server's watch cache starts at the etcd head, so resuming is answered with
      // 410 Expired ("too old resource version") and the provider must list again.
      await must(['create', 'configmap', 'elsewhere', '-n', 'default', '--from-literal=a=b']);

      await current().restartApiServer();
      const from = r.updates.length;
      await applyConfig(ns, configText([{ name: 'p', hash: 'r2' }]));
      await r.next(isHash('r2/p'), from);
      const s = r.provider.state();
      console.log(
        `after an apiserver restart: ${JSON.stringify(s.counters)}; log: ${JSON.stringify(r.logs.filter((l) => l.level !== 'debug').map((l) => `${l.level} ${l.msg}${l.error ? `: ${String(l.error)}` : ''}`))}`,
      );
      // The watch broke (connection closed or refused), then 410 made it list again.
      expect(s.counters.failures).toBeGreaterThan(0);
      expect(s.counters.relists).toBeGreaterThanOrEqual(1);
      expect(s.counters.lists).toBe(1 + s.counters.relists);
      expect(s.counters.watches).toBeGreaterThan(1);
      expect(r.updates.filter((u) => u.ok !== true)).toEqual([]);
      await r.provider.close();
    },
    STEP_TIMEOUT,
  );

  it(
    'restarts watches the server ends (timeoutSeconds) without relisting, and restarts a silent watch (watchdog)',
    async () => {
      const { ns, tokenFile } = await namespace('timeouts');
      await applyConfig(ns, configText([{ name: 'p', hash: 't1' }]));

      // The server ends each watch after 1 s: resumed at once from the last resourceVersion.
      const short = await run(ns, tokenFile, { watchTimeoutSeconds: 1 });
      // The server sends nothing for 60 s on a quiet watch; the watchdog (1.5 s) restarts it.
      const quiet = await run(ns, tokenFile, { watchTimeoutSeconds: 300, watchdogMs: 1500 });
      await new Promise((res) => setTimeout(res, 4000));
      const from = [short.updates.length, quiet.updates.length];
      await applyConfig(ns, configText([{ name: 'p', hash: 't2' }]));
      await short.next(isHash('t2/p'), from[0]);
      await quiet.next(isHash('t2/p'), from[1]);

      const s = short.provider.state().counters;
      expect(s.watches).toBeGreaterThanOrEqual(3);
      expect(s).toMatchObject({ lists: 1, relists: 0, failures: 0, watchdogRestarts: 0 });
      const q = quiet.provider.state().counters;
      expect(q.watchdogRestarts).toBeGreaterThanOrEqual(2);
      expect(q).toMatchObject({ lists: 1, relists: 0, failures: 0 });
      expect(quiet.logs.some((l) => l.level === 'warn' && l.msg.includes('went silent'))).toBe(true);
      await short.provider.close();
      await quiet.provider.close();
    },
    STEP_TIMEOUT,
  );

  it(
    'uses a token that may read the ConfigMap and nothing else',
    async () => {
      const { ns, tokenFile } = await namespace('rbac');
      await applyConfig(ns, configText([{ name: 'p', hash: 'x' }]));
      await must(['create', 'secret', 'generic', 'api-key', '-n', ns, '--from-literal=key=hunter2']);
      await must(['create', 'configmap', 'other', '-n', ns, '--from-literal=a=b']);
      const transport = createTransport({ server: current().server, caFile: current().caFile, tokenFile });
      const raw = (p: string) => transport.request({ path: p, what: `GET ${p}` });
      const cms = resourceClient<ConfigMap>(transport, CONFIG_MAPS, { is: isConfigMap, rbacHint: 'get, list and watch on this ConfigMap' });
      try {
        expect((await cms.get(CONFIGMAP_NAME, ns))?.data?.[CONFIGMAP_KEY]).toContain('SidecarConfig');
        expect((await cms.list({ namespace: ns, fieldSelector: `metadata.name=${CONFIGMAP_NAME}` })).items.map((c) => c.metadata.name)).toEqual([
          CONFIGMAP_NAME,
        ]);
        const secret = await raw(`/api/v1/namespaces/${ns}/secrets/api-key`);
        expect(secret.status).toBe(403);
        expect(JSON.parse(secret.body)).toMatchObject({ reason: 'Forbidden' });
        expect(secret.body).not.toContain('hunter2');
        expect((await raw(`/api/v1/namespaces/${ns}/configmaps/other`)).status).toBe(403);
        // resourceNames cannot restrict an unfiltered list: only the list by name is allowed.
        expect((await raw(`/api/v1/namespaces/${ns}/configmaps`)).status).toBe(403);
        await expect(cms.get('other', ns)).rejects.toMatchObject({
          kind: 'http',
          status: 403,
          category: 'forbidden',
          message: expect.stringContaining('RBAC'),
        });
        expect((await raw(`/api/v1/namespaces/cm-load/configmaps/${CONFIGMAP_NAME}`)).status).toBe(403);
      } finally {
        await transport.close();
      }
    },
    STEP_TIMEOUT,
  );

  it(
    'logs a missing RoleBinding clearly, keeps retrying, and loads once RBAC is granted',
    async () => {
      const { ns, tokenFile } = await namespace('norbac', { rbac: false });
      await applyConfig(ns, configText([{ name: 'p', hash: 'late' }]));
      const r = await run(ns, tokenFile);
      expect(r.updates).toEqual([]);
      const deadline = Date.now() + WAIT_MS;
      while (r.provider.state().counters.failures < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      expect(r.provider.state()).toMatchObject({
        view: { kind: 'starting' },
        phase: expect.stringMatching(/backoff|listing/),
        lastError: expect.stringContaining('HTTP 403 Forbidden'),
      });
      const err = r.logs.find((l) => l.level === 'error');
      expect(err?.msg).toContain('RBAC does not grant this ServiceAccount get/list/watch');
      expect(String(err?.error)).toContain('system:serviceaccount:cm-norbac:agent');

      await must(['apply', '-f', '-'], JSON.stringify(RBAC(ns)));
      await r.next(isHash('late/p'));
      expect(r.provider.state().lastError).toBeNull();
      await r.provider.close();
    },
    STEP_TIMEOUT,
  );

  it(
    'follows a rotated token file: after the old token is revoked, the new one is read and used',
    async () => {
      const { ns, tokenFile } = await namespace('rotate');
      // Tokens bound to a Secret die with it: that is how this test revokes token A.
      await must(['create', 'secret', 'generic', 'holder-a', '-n', ns]);
      await must(['create', 'secret', 'generic', 'holder-b', '-n', ns]);
      const token = async (holder: string) =>
        (await must(['create', 'token', 'agent', '-n', ns, '--duration', '1h', '--bound-object-kind', 'Secret', '--bound-object-name', holder])).trim();
      await writeFile(tokenFile, await token('holder-a'));
      await applyConfig(ns, configText([{ name: 'p', hash: 'k1' }]));
      // A long refresh period: the new token must be picked up because of the 401, not by a timer.
      // Short watches make the provider send new requests (with whatever token it holds) every second.
      const r = await run(ns, tokenFile, {
        watchTimeoutSeconds: 1,
        clientOptions: { server: current().server, caFile: current().caFile, tokenFile, tokenRefreshMs: 3_600_000 },
      });
      await r.next(isHash('k1/p'));

      const oldTokenFile = path.join(tmp, 'old.token');
      await writeFile(oldTokenFile, await readFile(tokenFile, 'utf8'));
      await writeFile(tokenFile, await token('holder-b')); // what the kubelet does when it rotates
      await must(['delete', 'secret', 'holder-a', '-n', ns]);
      const revokedAt = performance.now();
      const oldClient: Transport = createTransport({ server: current().server, caFile: current().caFile, tokenFile: oldTokenFile });
      try {
        const path = `/api/v1/namespaces/${ns}/configmaps/${CONFIGMAP_NAME}`;
        await until('the revoked token refused with 401', async () => (await oldClient.request({ path, what: 'get' })).status === 401, WAIT_MS);
        // The API server caches a token's authentication for a few seconds: revocation is not instant.
        console.log(`a revoked (bound-object deleted) token was refused after ${(performance.now() - revokedAt).toFixed(0)} ms`);
      } finally {
        await oldClient.close();
      }
      // Give the provider a few watch restarts on the revoked token's watch-to-be.
      await new Promise((res) => setTimeout(res, 2500));
      const from = r.updates.length;
      await applyConfig(ns, configText([{ name: 'p', hash: 'k2' }]));
      await r.next(isHash('k2/p'), from);
      // The 401 was absorbed by re-reading the file: no failure was counted or logged.
      expect(r.provider.state().counters.failures).toBe(0);
      expect(r.logs.filter((l) => l.level === 'error')).toEqual([]);
      await r.provider.close();
    },
    STEP_TIMEOUT,
  );
});

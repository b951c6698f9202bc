// Idle private memory (RssAnon) of the sidecar as a pod runs it and as it runs standalone, with and
// without Cedar. Cluster mode: a local fake API server over HTTPS (its own CA, handed to the sidecar
// as the ServiceAccount's ca.crt) serves the namespace's ConfigMap as the operator renders it
// (config.yaml and cedar.json, operator/render.ts), holds the watches open and accepts audit Events.
// Per start: spawn → admin /ready 200, one governed call 0.5 s later, 5 s (--idle-ms; the sidecar collects after two quiet 1 s windows) of idle, then RssAnon and
// RSS from /proc/<pid>/status. Prints medians and spread.
//
//   node dist/bench/idle-memory.js [--runs 5] [--idle-ms 5000] [--only cluster_cedar20,standalone_none,...]
//        [--variant 'label|dist/cli.js|NODE_OPTIONS|K=V,K=V|node flags' ...]
//
// Variants (default: this build as the image runs it) run alternately, A B A B …, after one
// uncounted start each. The sidecar runs on BENCH_NODE (default this node).
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIGMAP_CEDAR_KEY, CONFIGMAP_KEY, CONFIGMAP_NAME } from '../api/wellknown.js';
import { renderNamespace, type PolicyObject } from '../operator/render.js';
import { issueCa, issueServing } from '../webhook/x509.js';
import { policies } from './support/policies.js';
import { statusMemory } from './support/proc.js';
import { summary } from './support/processes.js';
import { parseVariant, startVariantSidecar, type Variant } from './support/variants.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const NODE = process.env['BENCH_NODE'] || process.execPath;
/** The container image's (Dockerfile.sidecar). */
const IMAGE_NODE_OPTIONS = '--max-semi-space-size=4';
const NAMESPACE = 'bench';

function args(): { runs: number; idleMs: number; variants: Variant[]; only: string[] | null } {
  const a = process.argv.slice(2);
  let runs = 5;
  let idleMs = 5000;
  let only: string[] | null = null;
  const variants: Variant[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--runs') runs = Number(a[++i]);
    else if (a[i] === '--idle-ms') idleMs = Number(a[++i]);
    else if (a[i] === '--only') only = a[++i]!.split(',');
    else if (a[i] === '--variant') {
      variants.push(parseVariant(a[++i]!, { cli: join(HERE, '..', 'cli.js'), nodeOptions: IMAGE_NODE_OPTIONS }));
    }
  }
  if (variants.length === 0) variants.push({ label: 'image', cli: join(HERE, '..', 'cli.js'), nodeOptions: IMAGE_NODE_OPTIONS, env: {}, nodeArgs: [] });
  // Each variant gets a compile cache of its own, as the image ships one.
  for (const v of variants) v.env = { NODE_COMPILE_CACHE: mkdtempSync(join(tmpdir(), 'tg-idle-cache-')), ...v.env };
  return { runs, idleMs, variants, only };
}

const RESULT = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}';
const GOVERNED = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The policy's spec, as a GovernancePolicy holds it and as thoughtgate.yaml does. */
function spec(upstream: string, cedar: boolean) {
  return {
    sources: [{ name: 'up', url: upstream }],
    defaultAction: 'forward' as const,
    ...(cedar ? { rules: [{ name: 'by-policy', match: { tool: 'echo' }, action: 'policy' as const }], cedar: { policies: policies(20) } } : {}),
  };
}

/** The ConfigMap the operator would write for one GovernancePolicy selecting every pod. */
function renderedConfigMap(upstream: string, cedar: boolean): object {
  const gp: PolicyObject = { metadata: { name: 'bench', namespace: NAMESPACE, generation: 1 }, spec: spec(upstream, cedar) } as PolicyObject;
  const r = renderNamespace([gp], new Set(), null);
  if (!r.text) throw new Error(`the operator would not render the policy: ${JSON.stringify([...r.byPolicy.values()])}`);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CONFIGMAP_NAME, namespace: NAMESPACE, resourceVersion: '1', uid: 'u1' },
    data: { [CONFIGMAP_KEY]: r.text, ...(r.cedarText ? { [CONFIGMAP_CEDAR_KEY]: r.cedarText } : {}) },
  };
}

/** Lists (the ConfigMap for configmaps, nothing else), watches held open, Events accepted. */
async function fakeApiServer(configMap: object): Promise<{ port: number; ca: string; close: () => void }> {
  const day = 24 * 3600 * 1000;
  const ca = await issueCa({ now: new Date(), validityMs: day });
  const serving = await issueServing({ ca, sans: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, now: new Date(), validityMs: day });
  const watches = new Set<http.ServerResponse>();
  const server = https.createServer({ cert: serving.cert, key: serving.key }, (req, res) => {
    const url = new URL(req.url!, 'https://x');
    req.resume();
    if (req.method === 'POST') {
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"kind":"Event","apiVersion":"v1","metadata":{"name":"e"}}');
      return;
    }
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      watches.add(res);
      res.on('close', () => watches.delete(res));
      return;
    }
    const items = url.pathname.endsWith('/configmaps') ? [configMap] : [];
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items }));
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
  return {
    port,
    ca: ca.cert,
    close: () => {
      for (const w of watches) w.destroy();
      server.close();
    },
  };
}

interface Case {
  name: string;
  /** Standalone: the config file. */
  config?: string;
  /** Cluster: the environment that points the sidecar at the fake API server. */
  env?: Record<string, string>;
}

interface Sample {
  readyMs: number;
  status: number;
  rss: number;
  anon: number;
}

async function once(v: Variant, c: Case, idleMs: number): Promise<Sample> {
  const { port, readyMs, child, stop } = await startVariantSidecar(NODE, v, c.config ? ['--config', c.config] : [], c.env);
  try {
    await sleep(500);
    const r = await fetch(`http://127.0.0.1:${port}/mcp/up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: GOVERNED,
    });
    await r.text();
    await sleep(idleMs);
    return { readyMs, status: r.status, ...statusMemory(child.pid!) };
  } finally {
    await stop();
  }
}

async function main(): Promise<void> {
  const { runs, idleMs, variants, only } = args();
  console.log(`# sidecar idle memory: node ${NODE === process.execPath ? process.version : NODE}, ${runs} starts per case and variant, ${idleMs} ms idle`);
  const upstreamServer = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': RESULT.length }).end(RESULT));
  });
  const upPort = await new Promise<number>((r) => upstreamServer.listen(0, '127.0.0.1', () => r((upstreamServer.address() as { port: number }).port)));
  const upstream = `http://127.0.0.1:${upPort}/mcp`;
  const dir = mkdtempSync(join(tmpdir(), 'tg-idle-'));

  // One API server per ConfigMap (with and without Cedar), each with its own CA.
  const api = await fakeApiServer(renderedConfigMap(upstream, true));
  const apiNone = await fakeApiServer(renderedConfigMap(upstream, false));
  const sa = mkdtempSync(join(tmpdir(), 'tg-idle-sa-'));
  writeFileSync(join(sa, 'token'), 'bench-token');
  writeFileSync(join(sa, 'ca.crt'), api.ca);
  const saNone = mkdtempSync(join(tmpdir(), 'tg-idle-sa-'));
  writeFileSync(join(saNone, 'token'), 'bench-token');
  writeFileSync(join(saNone, 'ca.crt'), apiNone.ca);
  const labels = join(dir, 'labels');
  writeFileSync(labels, 'app="bench"\n');
  const clusterEnv = (port: number, saDir: string) => ({
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(port),
    THOUGHTGATE_SERVICEACCOUNT_DIR: saDir,
    THOUGHTGATE_CONFIGMAP: CONFIGMAP_NAME,
    THOUGHTGATE_LABELS_FILE: labels,
    POD_NAME: 'bench-pod',
    POD_NAMESPACE: NAMESPACE,
    SERVICE_ACCOUNT: 'default',
  });
  const yaml = (cedar: boolean) => {
    const s = spec(upstream, cedar);
    return JSON.stringify(s); // JSON is YAML
  };
  writeFileSync(join(dir, 'cedar20.yaml'), yaml(true));
  writeFileSync(join(dir, 'none.yaml'), yaml(false));
  const cases: Case[] = [
    { name: 'cluster_cedar20', env: clusterEnv(api.port, sa) },
    { name: 'cluster_none', env: clusterEnv(apiNone.port, saNone) },
    { name: 'standalone_cedar20', config: join(dir, 'cedar20.yaml') },
    { name: 'standalone_none', config: join(dir, 'none.yaml') },
  ].filter((c) => only === null || only.includes(c.name));

  for (const c of cases) {
    const samples = new Map<string, Sample[]>(variants.map((v) => [v.label, []]));
    for (const v of variants) await once(v, c, idleMs);
    for (let i = 0; i < runs; i++) for (const v of variants) samples.get(v.label)!.push(await once(v, c, idleMs));
    for (const v of variants) {
      const s = samples.get(v.label)!;
      const tag = `${c.name}.${v.label}`;
      summary(
        `${tag}.idle_anon_mib`,
        s.map((x) => x.anon),
        'MiB',
      );
      summary(
        `${tag}.idle_rss_mib`,
        s.map((x) => x.rss),
        'MiB',
      );
      summary(
        `${tag}.start_to_ready_ms`,
        s.map((x) => x.readyMs),
        'ms',
      );
      const bad = s.filter((x) => x.status !== 200).length;
      if (bad) console.log(`${tag}.governed_call_not_200 ${bad}`);
    }
  }
  api.close();
  apiNone.close();
  upstreamServer.close();
}

await main();

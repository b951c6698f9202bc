// Capture and custody on a real control plane, with a pod run for real: a GovernancePolicy with a
// source on the upstream's MCP server (by name, plain HTTP) and a header from a Secret; the pod
// created through the API server (the operator's webhook injects capture and the Secret mount);
// then the test kubelet (e2e/support/pod-runtime.ts) runs the admitted spec in network namespaces
// (e2e/support/e2e-run.sh: the pod's, and an upstream one with real DNS, MCP servers and an A2A
// agent, IPv4 and IPv6): the init container's rules installed as root with NET_ADMIN+NET_RAW only, the sidecar as
// its UID in its own mount namespace (where alone its Secret volume exists), and an agent as the
// app container's UID, which tries what a hostile agent with a shell would. The oracle is what the
// agent saw and what the upstream servers received.
import { CAPTURE_ANNOTATIONS, CAPTURE_PORTS, INIT_CONTAINER_NAME, SECRETS_DIR, SIDECAR_UID } from '../api/capture.js';
import { a2aCode, ERRORS } from '../api/errors.js';
import { findContainer, startPodSandbox, type PodJson, type PodSandbox } from './support/kubelet.js';
import { cluster, e2eCluster, getJson, kubectl, until } from './support/k8s.js';
import { runPod, type Agent, type ContainerProc, type PodRuntime } from './support/pod-runtime.js';
import { startOperatorProcess, type OperatorProc } from './support/stack.js';
import { startUpstream, type Seen, type Upstream } from './support/upstream.js';
import { freePort } from '../test/support/processes.js';

const e2e = e2eCluster('capture');
const NS = e2e.ns('agents');
const OPNS = e2e.ns('system');
const MWC = e2e.ns('injector');
const AGENT_UID = 4242;
const SECRET = 'mcp-cred';
const TOKEN = (n: number) => `tok-${n}-${Math.random().toString(36).slice(2)}`;
/** Banner port the pod's egress exception opens (IPv4 only); the relays on 8080 stay closed. */
const EXCEPTION_PORT = 9000;
/** The A2A agent's port (a source of the policy: captured like the MCP server's 80). */
const A2A_PORT = 81;
/**
 * What the upstream's DNS answers: the MCP source on the upstream's first addresses; on its second
 * ones (another host, as far as the pod can tell: a source's address is the source) names egress
 * allows (plain HTTP, TLS) and one it does not.
 */
const ALT_NAMES = ['web.test', 'tls.test', 'other.test'];
/** Addresses nobody holds (TEST-NET-3, documentation prefix): the agent dials them, naming another host. */
const NOWHERE = ['203.0.113.9', '2001:db8::9'];

const MCP_POST = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'captured-agent', version: '1' } },
});

let op: OperatorProc | undefined;
let token = TOKEN(1);

const secret = (value: string) => `
apiVersion: v1
kind: Secret
metadata: { name: ${SECRET} }
stringData: { token: "${value}" }
`;

const policy = `
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: capture-policy }
spec:
  podSelector: { matchLabels: { app: agent } }
  sources:
    - name: upstream
      url: http://mcp.test/mcp
      expose: { mode: blocklist, tools: [get-env] }
      headers:
        Authorization: { valueFrom: { secretKeyRef: { name: ${SECRET}, key: token } }, prefix: "Bearer " }
    - name: billing
      protocol: a2a
      url: http://mcp.test:${A2A_PORT}
      a2a: { jsonrpc: /a2a/jsonrpc, skillFrom: metadata.skill }
      expose: { mode: blocklist, skills: [secret] }
      headers:
        Authorization: { valueFrom: { secretKeyRef: { name: ${SECRET}, key: token } }, prefix: "Bearer " }
  rules:
    - match: { tool: get-sum }
      action: deny
    - match: { skill: refund }
      action: deny
  defaultAction: forward
  egress: { allow: ["web.test:80", "tls.test:443"] }
`;

const podYaml = (name: string, annotations: Record<string, string>) => `
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: { app: agent }
  annotations: ${JSON.stringify(annotations)}
spec:
  serviceAccountName: agent
  containers:
    - name: agent
      image: registry.example/agent:1
      securityContext: { runAsUser: ${AGENT_UID}, runAsGroup: ${AGENT_UID}, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
`;

/** A pod with its own network and upstream, created through the API server (the webhook injects), not started yet. */
interface CapturedPod {
  sandbox: PodSandbox;
  upstream: Upstream;
  admitted: PodJson;
  runtime: PodRuntime;
}
const pods: CapturedPod[] = [];

async function createPod(name: string, annotations: (u: Upstream) => Record<string, string> = () => ({})): Promise<CapturedPod> {
  const sandbox = await startPodSandbox(cluster(), { upstream: true, forwardAs: SIDECAR_UID });
  const p: Partial<CapturedPod> = { sandbox };
  pods.push(p as CapturedPod);
  p.upstream = await startUpstream(sandbox, { names: ['mcp.test'], altNames: ALT_NAMES, http: [80, 8080], tls: 443, tcp: [EXCEPTION_PORT], a2a: A2A_PORT });
  await kubectl(['apply', '-n', NS, '-f', '-'], podYaml(name, annotations(p.upstream)));
  p.admitted = await getJson(['get', 'pod', name, '-n', NS]);
  p.runtime = await runPod(cluster(), p.admitted!, sandbox);
  return p as CapturedPod;
}

/** Runs the pod as the kubelet would: capture-init, then the sidecar until ready, then the app (as the agent). */
async function startPod(p: CapturedPod): Promise<{ sidecar: ContainerProc; agent: Agent; initMs: number }> {
  const { ms } = await p.runtime.runInit(INIT_CONTAINER_NAME);
  const sidecar = await p.runtime.start('thoughtgate', async () => (await fetch(`${p.sandbox.url(7469)}/ready`)).status === 200);
  return { sidecar, agent: await p.runtime.startAgent('agent'), initMs: ms };
}

/** The upstream's record lines arrive through a pipe: wait for `n` matching ones. */
function seen(u: Upstream, pred: (s: Seen) => boolean, n: number): Promise<Seen[]> {
  return until(
    `${n} matching upstream record(s)`,
    () => {
      const m = u.seen.filter(pred);
      return m.length >= n && m;
    },
    5000,
    { detail: () => JSON.stringify(u.seen) },
  );
}

/** A counter of the pod's sidecar (its /metrics), summed over the series carrying `labels`. */
async function counter(p: CapturedPod, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${p.sandbox.url(7469)}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop());
  }
  return sum;
}

/** Where a connection arrived, IPv4 without the ::ffff: of a dual-stack socket. */
const at = (s: Seen) => s.local.replace(/^::ffff:/, '');

beforeAll(async () => {
  await e2e.namespace('system');
  await e2e.namespace('agents', { 'thoughtgate.io/inject': 'enabled', 'thoughtgate.io/capture': 'enabled' });
  await kubectl(['create', 'serviceaccount', 'agent', '-n', NS]);
  op = await startOperatorProcess(cluster(), { identity: 'op-1', namespace: OPNS, webhookPort: await freePort(), webhookConfig: MWC });
  await kubectl(['apply', '-n', NS, '-f', '-'], secret(token));
  await kubectl(['apply', '-n', NS, '-f', '-'], policy);
  await until('the ConfigMap', () => getJson(['get', 'configmap', 'thoughtgate-config', '-n', NS]));
  await until('caBundle', async () => (await getJson(['get', 'mutatingwebhookconfiguration', MWC]))?.webhooks?.[0]?.clientConfig?.caBundle);
}, 120_000);

e2e.cleanup(async () => {
  for (const p of pods) {
    await p.runtime?.stop();
    await p.upstream?.stop();
    await p.sandbox?.stop();
  }
  await op?.proc.stop();
});

describe('a captured pod', () => {
  let p: CapturedPod;
  let upstream: Upstream;
  let sidecar: ContainerProc;
  let agent: Agent;
  beforeAll(async () => {
    p = await createPod('agent-0', (u) => ({ [CAPTURE_ANNOTATIONS.allow]: `${u.net.ipv4}/32:${EXCEPTION_PORT}` }));
    upstream = p.upstream;
  }, 60_000);

  /** Direct connections the agent must not make: the upstream's MCP relay on 8080, every spelling. */
  const directTargets = () => [
    { host: upstream.net.ipv4, port: 8080 },
    { host: upstream.net.ipv6, port: 8080 },
    { host: 'mcp.test', port: 8080, family: 4 },
    { host: 'mcp.test', port: 8080, family: 6 },
  ];
  const governedPosts = () => upstream.seen.filter((s) => s.port === 80 && s.method === 'POST');

  test('the webhook adds capture-init first, as root with NET_ADMIN and NET_RAW only, and mounts the Secret into the sidecar alone', () => {
    const init = p.admitted.spec.initContainers!;
    expect(init.map((c) => c.name).slice(0, 2)).toEqual([INIT_CONTAINER_NAME, 'thoughtgate']);
    const capture = findContainer(p.admitted, INIT_CONTAINER_NAME);
    expect(capture.args!.slice(0, 3)).toEqual(['capture-init', '--uid', String(SIDECAR_UID)]);
    expect(capture.args!.join(' ')).toContain(`--redirect-ports 80,${A2A_PORT}`);
    expect(capture.args!.join(' ')).toContain(`--allow ${upstream.net.ipv4}/32:${EXCEPTION_PORT}`);
    expect(capture.securityContext).toMatchObject({
      runAsUser: 0,
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    });
    const side = findContainer(p.admitted, 'thoughtgate');
    expect(side.securityContext?.runAsUser).toBe(SIDECAR_UID);
    expect(side.volumeMounts!.map((m) => m.mountPath)).toContain(`${SECRETS_DIR}/${SECRET}`);
    const app = findContainer(p.admitted, 'agent');
    expect((app.volumeMounts ?? []).map((m) => m.mountPath).filter((p) => p.startsWith('/var/run/thoughtgate'))).toEqual([]);
    expect(JSON.stringify(p.admitted)).not.toContain(token);
  });

  test('before the rules (the control): the agent reaches the upstream directly, so what is refused below is refused by capture', async () => {
    const control = await p.runtime.startAgent('agent');
    try {
      for (const t of [...directTargets(), { host: upstream.net.ipv6, port: EXCEPTION_PORT }]) {
        expect({ ...t, ...(await control.ask('tcp', t)) }).toMatchObject({ ...t, result: 'connected' });
      }
      expect(await control.ask('tls', { host: 'mcp.test', port: 443, ca: upstream.ca })).toMatchObject({ result: 'connected' });
    } finally {
      await control.proc.stop();
    }
  });

  test('capture-init installs the rules (exit 0) and leaves its state for the sidecar', async () => {
    const started = await startPod(p);
    ({ sidecar, agent } = started);
    console.log(`capture-init ran in ${started.initMs} ms`);
    const ready = (await (await fetch(`${p.sandbox.url(7469)}/ready`)).json()) as { capture: { expected: boolean; state: { spec: object } } };
    expect(ready.capture.expected).toBe(true);
    expect(ready.capture.state.spec).toMatchObject({
      uid: SIDECAR_UID,
      redirectPorts: [80, A2A_PORT],
      transparentPort: CAPTURE_PORTS.transparent,
      tlsPort: null,
    });
    expect(await agent.ask('id')).toMatchObject({ uid: AGENT_UID });
  });

  test('DNS works for the agent, through the servers resolv.conf names only (--dns resolv)', async () => {
    const r = await agent.ask('dns', { name: 'mcp.test' });
    expect(r.addresses.map((a: { address: string }) => a.address).sort()).toEqual([upstream.net.ipv4, upstream.net.ipv6].sort());
    expect(await agent.ask('dns', { name: 'mcp.test', server: upstream.net.ipv4 })).toMatchObject({ addresses: [{ address: upstream.net.ipv4 }] });
    // The same DNS server on its other address, which resolv.conf does not name: refused (the sidecar's UID may).
    expect(await agent.ask('dns', { name: 'mcp.test', server: upstream.net.altIpv4 })).toMatchObject({ error: 'ECONNREFUSED' });
  });

  test('the agent cannot connect directly: TCP refused on IPv4 and IPv6, by address and by name', async () => {
    for (const t of directTargets()) expect({ ...t, ...(await agent.ask('tcp', t)) }).toMatchObject({ ...t, result: 'ECONNREFUSED' });
    expect(upstream.seen.filter((s) => s.port === 8080)).toEqual([]);
  });

  test('TLS to 443 is refused (no passthrough asked for), on IPv4 and IPv6', async () => {
    for (const family of [4, 6]) {
      expect(await agent.ask('tls', { host: 'mcp.test', port: 443, family, ca: upstream.ca })).toMatchObject({ result: 'ECONNREFUSED' });
    }
  });

  test("the sidecar's UID passes: its own connections reach the upstream directly", async () => {
    const asSidecar = await p.runtime.startAgent('agent', 'thoughtgate');
    try {
      expect(await asSidecar.ask('id')).toMatchObject({ uid: SIDECAR_UID });
      for (const t of directTargets()) expect({ ...t, ...(await asSidecar.ask('tcp', t)) }).toMatchObject({ ...t, result: 'connected' });
      expect(await asSidecar.ask('tls', { host: 'mcp.test', port: 443, ca: upstream.ca })).toMatchObject({ result: 'connected' });
      expect(await asSidecar.ask('dns', { name: 'mcp.test', server: upstream.net.altIpv4 })).toMatchObject({ addresses: [{ address: upstream.net.ipv4 }] });
    } finally {
      await asSidecar.proc.stop();
    }
  });

  test('plain HTTP to the MCP server is captured and governed: the SDK client with no proxy settings, by name', async () => {
    upstream.clear();
    for (const family of [undefined, 4, 6]) {
      const r = await agent.ask('mcp', {
        url: 'http://mcp.test/mcp',
        family,
        list: true,
        calls: [
          { name: 'echo', arguments: { message: 'captured' } },
          { name: 'get-sum', arguments: { a: 1, b: 2 } },
          { name: 'get-env', arguments: {} },
        ],
      });
      expect(r.error).toBeUndefined();
      expect(r.tools).toContain('echo');
      expect(r.tools).not.toContain('get-env');
      expect(r.calls[0]).toMatchObject({ ok: true });
      expect(r.calls[0].text).toContain('captured');
      expect(r.calls[1]).toMatchObject({ ok: false, code: ERRORS.DENIED_BY_RULE.code });
      expect(r.calls[2].ok).toBe(false);
    }
    // What the upstream received: the allowed calls, never the denied or hidden ones, always with
    // the credential the agent does not have.
    const bodies = governedPosts().map((s) => s.body ?? '');
    expect(bodies.filter((b) => b.includes('"tools/call"') && b.includes('"echo"'))).toHaveLength(3);
    expect(bodies.filter((b) => b.includes('get-sum') || b.includes('get-env'))).toEqual([]);
    for (const s of governedPosts()) expect(s.headers!['authorization']).toBe(`Bearer ${token}`);
  });

  test('the destination is the Host, never the address dialled: an address nobody holds, named mcp.test, is governed', async () => {
    upstream.clear();
    for (const host of NOWHERE) {
      const r = await agent.ask('raw', { host, port: 80, path: '/mcp', method: 'POST', headers: { ...MCP_POST, host: 'mcp.test' }, body: INITIALIZE });
      expect({ host, status: r.status }).toEqual({ host, status: 200 });
      expect(r.body).toContain('serverInfo');
    }
    expect(governedPosts()).toHaveLength(2);
    for (const s of governedPosts()) expect(s.headers!['authorization']).toBe(`Bearer ${token}`);
  });

  test('plain HTTP to a name egress allows is relayed (without the credential) where the name resolves; any other name is refused', async () => {
    upstream.clear();
    // By name, and dialled at the MCP source's address naming web.test: both reach web.test's address.
    await agent.ask('raw', { host: 'web.test', port: 80, path: '/egress-allowed', family: 6 });
    await agent.ask('raw', { host: upstream.net.ipv4, port: 80, path: '/egress-allowed', headers: { host: 'web.test' } });
    const relayed = await seen(upstream, (s) => s.url === '/egress-allowed', 2);
    for (const s of relayed) {
      expect(s.headers!['host']).toBe('web.test');
      expect(s.headers!['authorization']).toBeUndefined();
      expect([upstream.net.altIpv4, upstream.net.altIpv6]).toContain(at(s));
    }
    // Refused by the sidecar (403, the forward proxy's refusal), by name and dialled by address.
    expect(await agent.ask('raw', { host: 'other.test', port: 80, path: '/egress-denied', family: 6 })).toMatchObject({ status: 403 });
    expect(await agent.ask('raw', { host: upstream.net.altIpv4, port: 80, path: '/egress-denied', headers: { host: 'other.test' } })).toMatchObject({
      status: 403,
    });
    expect(upstream.seen.filter((s) => s.url === '/egress-denied')).toEqual([]);
    expect(await counter(p, 'thoughtgate_sidecar_capture_refused_total', { listener: 'transparent', reason: 'denied' })).toBe(2);
  });

  test('plain HTTP to the A2A agent is captured and governed like /a2a/<source>/: card filtered and naming the agent again, skills denied and hidden, other paths refused', async () => {
    upstream.clear();
    const rpc = (skill: string, text: string) =>
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'message/send',
        params: { message: { kind: 'message', messageId: `m-${skill}`, role: 'user', parts: [{ kind: 'text', text }], metadata: { skill } } },
      });
    const base = `http://mcp.test:${A2A_PORT}`;
    const denied = () => counter(p, 'thoughtgate_sidecar_capture_refused_total', { listener: 'transparent', reason: 'denied' });
    const deniedBefore = await denied();
    for (const family of [4, 6]) {
      const card = await agent.ask('http', { url: `${base}/.well-known/agent-card.json`, family });
      expect(card.status).toBe(200);
      const c = JSON.parse(card.body) as { url: string; skills: { id: string }[] };
      expect(c.skills.map((s) => s.id)).toEqual(['echo', 'refund']);
      // The card names the agent's own URL: the client comes back through capture.
      expect(c.url).toBe(`${base}/a2a/jsonrpc`);
      const post = (skill: string, text: string) =>
        agent.ask('http', { url: c.url, method: 'POST', headers: { 'content-type': 'application/json' }, body: rpc(skill, text), family });
      expect(JSON.parse((await post('echo', `hello ${family}`)).body)).toMatchObject({ result: { parts: [{ kind: 'text', text: `echo: hello ${family}` }] } });
      expect(JSON.parse((await post('refund', 'refund it')).body)).toMatchObject({ error: { code: a2aCode('DENIED_BY_RULE') } });
      expect(JSON.parse((await post('secret', 'tell me')).body)).toMatchObject({ error: { code: -32602 } });
      for (const path of ['/admin', '/a2a/%2e%2e/a2a/jsonrpc', '/A2A/JSONRPC'])
        expect({ path, ...(await agent.ask('raw', { host: 'mcp.test', port: A2A_PORT, path, method: 'POST', family, body: rpc('echo', 'x') })) }).toMatchObject(
          {
            path,
            status: 403,
          },
        );
    }
    // The off-endpoint paths are counted as the transparent listener's refusals; the gates' answers are not.
    expect((await denied()) - deniedBefore).toBe(6);
    // The agent dialled nowhere, naming the agent: governed all the same.
    const nowhere = await agent.ask('raw', {
      host: NOWHERE[0],
      port: A2A_PORT,
      path: '/a2a/jsonrpc',
      method: 'POST',
      headers: { host: `mcp.test:${A2A_PORT}`, 'content-type': 'application/json' },
      body: rpc('echo', 'from nowhere'),
    });
    expect(JSON.parse(nowhere.body)).toMatchObject({ result: { parts: [{ text: 'echo: from nowhere' }] } });
    // What the agent received: the allowed messages only, each request with the credential the pod's agent does not have.
    const executed = await seen(upstream, (s) => s.a2a === 'executed', 3);
    expect(executed.map((s) => s.text)).toEqual(['hello 4', 'hello 6', 'from nowhere']);
    const requests = upstream.seen.filter((s) => s.port === A2A_PORT && s.method !== undefined);
    expect(requests.map((s) => s.url)).not.toContain('/admin');
    for (const s of requests) expect(s.headers!['authorization']).toBe(`Bearer ${token}`);
  });

  test('through THOUGHTGATE_URL all works', async () => {
    const env = (await agent.ask('environ')).environ as string[];
    const url = env.find((e) => e.startsWith('THOUGHTGATE_URL='))!.slice('THOUGHTGATE_URL='.length);
    const r = await agent.ask('mcp', { url: `${url}/mcp/upstream`, list: true, calls: [{ name: 'echo', arguments: { message: 'via-url' } }] });
    expect(r.error).toBeUndefined();
    expect(r.tools).not.toContain('get-env');
    expect(r.calls[0].text).toContain('via-url');
  });

  test('an egress exception (capture-allow) passes: its CIDR and port only', async () => {
    expect(await agent.ask('tcp', { host: upstream.net.ipv4, port: EXCEPTION_PORT })).toMatchObject({
      result: 'connected',
      data: `banner ${EXCEPTION_PORT}\n`,
    });
    expect(await agent.ask('tcp', { host: upstream.net.ipv6, port: EXCEPTION_PORT })).toMatchObject({ result: 'ECONNREFUSED' });
    expect(await agent.ask('tcp', { host: upstream.net.ipv4, port: 8080 })).toMatchObject({ result: 'ECONNREFUSED' });
  });

  test('the agent cannot read the credential: not in its env, not at the mount path, not through the sidecar process; nothing shows it', async () => {
    const env = (await agent.ask('environ')).environ as string[];
    expect(env.join('\n')).not.toContain(token);
    expect(await agent.ask('read', { path: `${SECRETS_DIR}/${SECRET}/token` })).toMatchObject({ error: 'ENOENT' });
    expect(await agent.ask('read', { path: SECRETS_DIR })).toMatchObject({ error: 'ENOENT' });
    // The sidecar's filesystem and env through /proc: another UID, so not without ptrace rights.
    for (const path of [`/proc/${sidecar.child.pid}/root${SECRETS_DIR}/${SECRET}/token`, `/proc/${sidecar.child.pid}/environ`]) {
      expect(await agent.ask('read', { path })).toMatchObject({ error: 'EACCES' });
    }
    // Nor anywhere the cluster shows: the rendered ConfigMap keeps the reference, Events, the pod.
    for (const what of [['configmap', 'thoughtgate-config'], ['events'], ['pod', 'agent-0']]) {
      expect(await kubectl(['get', ...what, '-n', NS, '-o', 'json'])).not.toContain(token);
    }
    expect(await kubectl(['get', 'configmap', 'thoughtgate-config', '-n', NS, '-o', 'json'])).toContain(SECRET);
    // Nor the sidecar's logs and /ready, while the sidecar, in its mount namespace, holds it.
    expect(sidecar.out()).not.toContain(token);
    expect(await (await fetch(`${p.sandbox.url(7469)}/ready`)).text()).not.toContain(token);
    expect(governedPosts().length).toBeGreaterThan(0);
  });

  test('a rotated Secret is used after rotation, without a restart', async () => {
    const pid = sidecar.child.pid;
    const old = token;
    token = TOKEN(2);
    await kubectl(['apply', '-n', NS, '-f', '-'], secret(token));
    // The kubelet's periodic sync: the new payload in a new dir, ..data swapped.
    await p.runtime.syncSecrets();
    await until(
      'the upstream receiving the rotated credential',
      async () => {
        upstream.clear();
        const r = await agent.ask('mcp', { url: 'http://mcp.test/mcp', calls: [{ name: 'echo', arguments: { message: 'rotated' } }] });
        const calls = governedPosts().filter((s) => (s.body ?? '').includes('rotated'));
        return r.calls?.[0]?.ok && calls.length > 0 && calls.every((s) => s.headers!['authorization'] === `Bearer ${token}`);
      },
      20_000,
    );
    // Once picked up (the store watches the file; a session may straddle the swap), only the new one.
    upstream.clear();
    const r = await agent.ask('mcp', { url: 'http://mcp.test/mcp', calls: [{ name: 'echo', arguments: { message: 'after' } }] });
    expect(r.calls[0].ok).toBe(true);
    expect(governedPosts().length).toBeGreaterThanOrEqual(2);
    for (const s of governedPosts()) expect(s.headers!['authorization']).toBe(`Bearer ${token}`);
    expect(JSON.stringify(upstream.seen)).not.toContain(old);
    expect(sidecar.child.pid).toBe(pid);
    expect(sidecar.child.exitCode).toBeNull();
  });

  test('killing the sidecar does not open the way: everything stays refused (fail closed)', async () => {
    await sidecar.stop('SIGKILL');
    // Records of the earlier tests still in the pipe land before the slate is cleaned.
    await new Promise((r) => setTimeout(r, 200));
    upstream.clear();
    for (const t of [...directTargets(), { host: 'mcp.test', port: 80, family: 4 }, { host: 'mcp.test', port: 80, family: 6 }]) {
      expect({ ...t, ...(await agent.ask('tcp', t)) }).toMatchObject({ ...t, result: 'ECONNREFUSED' });
    }
    expect(await agent.ask('mcp', { url: 'http://mcp.test/mcp', list: true })).toMatchObject({ error: expect.stringContaining('ECONNREFUSED') });
    expect(await agent.ask('tls', { host: 'mcp.test', port: 443, ca: upstream.ca })).toMatchObject({ result: 'ECONNREFUSED' });
    expect(upstream.seen).toEqual([]);
  });
});

describe('a captured pod with TLS passthrough (annotation capture-tls: passthrough)', () => {
  let p: CapturedPod;
  let agent: Agent;
  beforeAll(async () => {
    p = await createPod('agent-tls', () => ({ [CAPTURE_ANNOTATIONS.tls]: 'passthrough' }));
    ({ agent } = await startPod(p));
  }, 90_000);

  test('443 goes to the SNI listener: a name egress allows is tunnelled unopened (the agent verifies the upstream itself)', async () => {
    p.upstream.clear();
    for (const family of [4, 6]) {
      expect(await agent.ask('tls', { host: 'tls.test', port: 443, family, ca: p.upstream.ca })).toMatchObject({ result: 'connected' });
    }
    const tunnelled = await seen(p.upstream, (s) => s.tls === true, 2);
    expect(tunnelled.map((s) => s.sni)).toEqual(['tls.test', 'tls.test']);
    for (const s of tunnelled) expect([p.upstream.net.altIpv4, p.upstream.net.altIpv6]).toContain(at(s));
  });

  test("the tunnel goes where the SNI name resolves, never to the address dialled (the MCP source's, or one nobody holds)", async () => {
    p.upstream.clear();
    for (const host of [p.upstream.net.ipv4, p.upstream.net.ipv6, ...NOWHERE]) {
      expect({ host, ...(await agent.ask('tls', { host, port: 443, servername: 'tls.test', ca: p.upstream.ca })) }).toMatchObject({
        host,
        result: 'connected',
      });
    }
    const tunnelled = await seen(p.upstream, (s) => s.tls === true, 4);
    for (const s of tunnelled) expect([p.upstream.net.altIpv4, p.upstream.net.altIpv6]).toContain(at(s));
  });

  test('an MCP source by SNI is refused (its MCP would pass unseen), and so is a name egress does not allow', async () => {
    p.upstream.clear();
    for (const [host, servername] of [
      [p.upstream.net.ipv4, 'mcp.test'],
      [p.upstream.net.altIpv6, 'mcp.test'],
      [p.upstream.net.altIpv4, 'other.test'],
    ] as const) {
      const r = await agent.ask('tls', { host, port: 443, servername, ca: p.upstream.ca });
      expect({ servername, result: r.result }).toEqual({ servername, result: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' });
    }
    // The refusals reached nothing (a late handshake record would show within the wait of the tests above).
    await new Promise((r) => setTimeout(r, 300));
    expect(p.upstream.seen).toEqual([]);
    expect(await counter(p, 'thoughtgate_sidecar_capture_refused_total', { listener: 'tls', reason: 'denied' })).toBe(3);
  });
});

test("the operator reports the namespace's captured pods in the status of its GovernancePolicy", async () => {
  const report = await until('status.capture naming both pods', async () => {
    const c = (await getJson(['get', 'governancepolicy', 'capture-policy', '-n', NS]))?.status?.capture;
    return c?.captured === 2 && c;
  });
  expect(report).toMatchObject({ summary: '2/2', notCaptured: 0, bypassable: 0, capturedPods: ['agent-0', 'agent-tls'] });
});

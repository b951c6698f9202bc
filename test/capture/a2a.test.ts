// A2A agents reached at their own URLs, the way an agent in a captured pod or behind HTTP_PROXY
// reaches them (issue 13): the real SDK clients (JS 1.3.0 and 0.3.14, and the Python a2a-sdk through
// HTTP_PROXY) talk to real SDK agents by the agents' own base URLs, and the sidecar's forward proxy
// and transparent listener govern them exactly as /a2a/<source>/: the card comes back filtered and
// pointing at the agent's origin again, a denied skill and a hidden one are refused, an allowed send
// runs, and paths off the agent's endpoints and tunnels are refused. The oracle is what the agent
// recorded as well as what the clients saw.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher, ProxyAgent, fetch as undiciFetch } from 'undici';
import { type A2aAgent, type A2aClientKind, a2aClient, runPython, startA2aAgent } from '../support/a2a-peers.js';
import { exchange as raw } from '../support/raw-socket.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

let a1: A2aAgent;
let a03: A2aAgent;
let tg: TestSidecar;
let stateDir: string;
let proxyPort: number;
let transparentPort: number;
const dispatchers: Dispatcher[] = [];

beforeAll(async () => {
  [a1, a03] = await Promise.all([startA2aAgent({ sdk: '1.3.0' }), startA2aAgent({ sdk: '0.3.14' })]);
  stateDir = mkdtempSync(join(tmpdir(), 'tg-a2a-capture-'));
  const source = (name: string, url: string) => `  - name: ${name}
    protocol: a2a
    url: ${url}
    a2a: { jsonrpc: /a2a/jsonrpc, rest: /a2a/rest, skillFrom: metadata.skill }
    expose: { mode: blocklist, skills: ["wait", "admin"] }
    headers: { X-Agent-Key: "${name}-key" }
`;
  tg = await startTestSidecar(
    `
sources:
${source('agent1', a1.base)}${source('agent03', a03.base)}
rules:
  - name: no-count-skill
    match: { skill: "count" }
    action: deny
defaultAction: forward
egress: { allow: ["*"] }
`,
    {},
    { capture: { transparentPort: 0, stateFile: join(stateDir, 'state.json') } },
  );
  proxyPort = tg.sidecar.port;
  transparentPort = tg.sidecar.capture!.transparentPort;
});
afterAll(async () => {
  await Promise.all(dispatchers.map((d) => d.close()));
  await tg?.close();
  await a1?.close();
  await a03?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

/** A fetch through the forward proxy, absolute-form (undici would tunnel plain http by default). */
function viaProxy(): typeof fetch {
  const d = new ProxyAgent({ uri: `http://127.0.0.1:${proxyPort}`, proxyTunnel: false });
  dispatchers.push(d);
  return ((u: string | URL, init?: RequestInit) => undiciFetch(u, { ...(init as object), dispatcher: d })) as unknown as typeof fetch;
}

/** A fetch whose every connection lands on the transparent listener, whatever its URL says: what REDIRECT does. */
function viaCapture(): typeof fetch {
  const d = new Agent({
    connect: (_opts, cb) => {
      const s = net.connect(transparentPort, '127.0.0.1');
      s.once('connect', () => cb(null, s));
      s.once('error', (e) => cb(e, null));
    },
  });
  dispatchers.push(d);
  return ((u: string | URL, init?: RequestInit) => undiciFetch(u, { ...(init as object), dispatcher: d })) as unknown as typeof fetch;
}

const CELLS: [string, A2aClientKind, () => A2aAgent, () => typeof fetch][] = [
  ['forward proxy', 'js1-jsonrpc', () => a1, viaProxy],
  ['forward proxy', 'js1-rest', () => a1, viaProxy],
  ['forward proxy', 'js03-jsonrpc', () => a03, viaProxy],
  ['capture', 'js1-jsonrpc', () => a1, viaCapture],
  ['capture', 'js1-compat-rest', () => a1, viaCapture],
  ['capture', 'js03-rest', () => a03, viaCapture],
];

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a refusal, the call succeeded');
}

describe.each(CELLS)("%s: the %s client by the agent's own URL", (_how, kind, agentOf, through) => {
  test("the card is filtered and names the agent's origin again; a denied and a hidden skill are refused; an allowed send runs", async () => {
    const agent = agentOf();
    const name = agent === a1 ? 'agent1' : 'agent03';
    agent.reset();
    const client = await a2aClient(kind, agent.base, {}, through());
    // Gate 1 on the card: "wait" is hidden; its interface URLs are the agent's own, where the client is captured again.
    expect(client.publicCard.skills).toEqual(['echo', 'count']);
    const card = JSON.stringify(client.publicCard.raw);
    expect(card).toContain(`${agent.base}/a2a/`);
    expect(card).not.toContain(`/a2a/${name}`);
    // The extended card is filtered too ("admin" is hidden).
    expect((await client.card()).skills).toEqual(['echo', 'count']);

    const sent = await client.send('hello', { metadata: { skill: 'echo' } });
    expect(sent).toMatchObject({ kind: 'message', text: 'echo: hello' });
    expect(await refusal(client.send('count 2', { metadata: { skill: 'count' } }))).toMatch(/Denied by ThoughtGate rule/);
    expect(await refusal(client.send('wait', { metadata: { skill: 'wait' } }))).toMatch(/Invalid params/);
    expect(agent.messages.map((m) => m.text)).toEqual(['hello']);
    // Every request the agent got went through the gates: the source's configured header is on each.
    expect(agent.requests.length).toBeGreaterThan(0);
    expect(agent.requests.every((r) => r.headers['x-agent-key'] === `${name}-key`)).toBe(true);
  });
});

test("through capture the same isolation and push checks hold: another caller's task is unknown, a push URL to cloud metadata is refused", async () => {
  a1.reset();
  const alice = await a2aClient('js1-jsonrpc', a1.base, { Authorization: 'Bearer alice' }, viaCapture());
  const bob = await a2aClient('js1-jsonrpc', a1.base, { Authorization: 'Bearer bob' }, viaProxy());
  // A task of alice's: a message naming no skill (the agent picks "count" from the text; the rule denies only a named one).
  const task = await alice.send('count 1', { metadata: {} });
  if (task.kind !== 'task') throw new Error('expected a task');
  expect((await alice.getTask(task.task.id)).id).toBe(task.task.id);
  const calls = a1.calls.length;
  expect(await refusal(bob.getTask(task.task.id))).toMatch(/Task ?Not ?Found|Task not found|-32001/i);
  expect(await refusal(alice.pushSet(task.task.id, { id: 'meta', url: 'http://169.254.169.254/latest/meta-data/' }))).toMatch(
    /Push notification URL not allowed|-32068/,
  );
  expect(a1.calls.length).toBe(calls);
  expect(a1.pushConfigs).toEqual([]);
});

test('the Python client through HTTP_PROXY: card filtered, an allowed send runs, a denied skill is refused', async () => {
  a1.reset();
  const env = { HTTP_PROXY: `http://127.0.0.1:${proxyPort}`, http_proxy: `http://127.0.0.1:${proxyPort}`, NO_PROXY: '', no_proxy: '' };
  const [card, sent, denied] = await Promise.all([
    runPython([a1.base, 'card'], env),
    runPython([a1.base, 'send', '--binding', 'HTTP+JSON', '--text', 'hi from python', '--metadata', JSON.stringify({ skill: 'echo' })], env),
    // JSON-RPC: the Python client keeps a JSON-RPC error's message (over HTTP+JSON it reports only the status).
    runPython([a1.base, 'send', '--text', 'count 2', '--metadata', JSON.stringify({ skill: 'count' })], env),
  ]);
  expect(card.lines.map((l) => l['skills'])).toEqual([['echo', 'count']]);
  expect(sent.lines).toEqual([{ kind: 'message', text: 'echo: hi from python' }]);
  expect(denied.code).toBe(1);
  expect(JSON.stringify(denied.lines)).toMatch(/Denied by ThoughtGate rule/);
  expect(a1.messages.map((m) => m.text)).toEqual(['hi from python']);
  expect(a1.requests.every((r) => r.headers['x-agent-key'] === 'agent1-key')).toBe(true);
}, 60_000);

describe('what is not an endpoint of the agent is refused and never reaches it', () => {
  const host = () => new URL(a1.base).host;

  test.each([
    ['another path', 'GET', '/admin'],
    ['the old card path', 'GET', '/.well-known/agent.json'],
    ['a dot segment, %-encoded', 'POST', '/a2a/%2e%2e/a2a/jsonrpc'],
    ['a double slash', 'POST', '/a2a//jsonrpc'],
    ['another case', 'POST', '/A2A/JSONRPC'],
  ])('%s, on the proxy port and on the transparent listener', async (_what, method, path) => {
    a1.reset();
    const body = method === 'POST' ? '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}' : '';
    const head = (target: string) =>
      `${method} ${target} HTTP/1.1\r\nhost: ${host()}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
    for (const [port, target] of [
      [proxyPort, `http://${host()}${path}`],
      [transparentPort, path],
    ] as const) {
      const out = await raw(port, head(target));
      expect([target, out]).toEqual([target, expect.stringMatching(/^HTTP\/1\.1 403/)]);
      expect(out).toContain(`${host()} is an A2A agent; only its governed endpoints are reachable`);
      expect(out).not.toContain('agent1');
    }
    expect(a1.requests).toEqual([]);
  });

  test('a CONNECT tunnel to the agent is refused, even with egress.allow "*"', async () => {
    a1.reset();
    const out = await raw(proxyPort, `CONNECT ${host()} HTTP/1.1\r\nhost: ${host()}\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toContain(`${host()} is an A2A agent; use http://<sidecar>/a2a/<source>/ instead of a tunnel`);
    expect(a1.requests).toEqual([]);
  });
});

test('an Origin not allowed is refused on either road, counted under the listener it came in on', async () => {
  a1.reset();
  const host = new URL(a1.base).host;
  const refusals = async () => {
    const text = await (await fetch(`${tg.admin}/metrics`)).text();
    const count = (listener: string) => Number(new RegExp(`http_refused_total\\{listener="${listener}",check="origin"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    return { proxy: count('proxy'), transparent: count('transparent') };
  };
  const head = (target: string) => `GET ${target} HTTP/1.1\r\nhost: ${host}\r\norigin: http://evil.example\r\nconnection: close\r\n\r\n`;
  const before = await refusals();
  expect(await raw(transparentPort, head('/.well-known/agent-card.json'))).toMatch(/^HTTP\/1\.1 403[\s\S]*not in server\.allowedOrigins/);
  expect(await refusals()).toEqual({ proxy: before.proxy, transparent: before.transparent + 1 });
  expect(await raw(proxyPort, head(`http://${host}/.well-known/agent-card.json`))).toMatch(/^HTTP\/1\.1 403[\s\S]*not in server\.allowedOrigins/);
  expect(await refusals()).toEqual({ proxy: before.proxy + 1, transparent: before.transparent + 1 });
  expect(a1.requests).toEqual([]);
});

describe('two sources configured under different host names behind one address and port', () => {
  // "localhost" and 127.0.0.1 are one agent at one port: what a gateway routing on Host looks like.
  // The address is listed first, so a pick by config order would govern "localhost" as it.
  let gw: TestSidecar;
  const port = () => new URL(a1.base).port;
  beforeAll(async () => {
    gw = await startTestSidecar(`
sources:
  - name: by-address
    protocol: a2a
    url: http://127.0.0.1:${port()}
    a2a: { jsonrpc: /a2a/jsonrpc }
    headers: { X-Agent-Key: "by-address-key" }
  - name: by-name
    protocol: a2a
    url: http://localhost:${port()}
    a2a: { jsonrpc: /a2a/jsonrpc }
    headers: { X-Agent-Key: "by-name-key" }
rules:
  - { name: not-by-address, match: { source: by-address }, action: deny }
defaultAction: forward
egress: { allow: ["*"] }
`);
  });
  afterAll(async () => {
    await gw?.close();
  });
  const send = (host: string) => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'SendMessage',
      params: { message: { messageId: `m-${host}`, role: 'ROLE_USER', parts: [{ text: `hello ${host}` }] } },
    });
    return raw(
      gw.sidecar.port,
      `POST http://${host}:${port()}/a2a/jsonrpc HTTP/1.1\r\nhost: ${host}:${port()}\r\na2a-version: 1.0\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
  };

  test('the host the client used names the source: its rules, its URL and its credentials', async () => {
    a1.reset();
    expect(await send('localhost')).toContain('echo: hello localhost');
    expect(a1.messages.map((m) => m.text)).toEqual(['hello localhost']);
    expect(a1.requests.map((r) => r.headers['x-agent-key'])).toEqual(['by-name-key']);
    a1.reset();
    expect(await send('127.0.0.1')).toMatch(/Denied by ThoughtGate rule/);
    expect(a1.requests).toEqual([]);
  });

  test('a host naming neither is refused as ambiguous and never reaches the agent', async () => {
    a1.reset();
    const out = await send('[::1]');
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toContain(`[::1]:${port()} reaches more than one governed source, configured under different host names, and names none of them`);
    expect(out).not.toMatch(/by-name|by-address/);
    expect(a1.requests).toEqual([]);
  });
});

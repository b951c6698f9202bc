// The "agent" of a captured pod: a process the test drives, run by the test kubelet as the app
// container's UID in the pod's network namespace (kubelet.ts startAgent). It does what a hostile
// agent with a shell would try — dial addresses, resolve names, read files — and reports what
// happened, so the test asserts on outcomes seen from inside the pod.
//
// stdin: one JSON request a line {id, op, ...}; stdout: one JSON answer a line {id, ...}.
//   tcp   {host, port, family?}          → {result: "connected", data} | {result: <errno code> | "timeout"}
//   tls   {host, port, servername?, ca?, family?} → {result: "connected", status} | {result: <code>}
//   http  {url, method?, headers?, body?, family?} → {status, body} | {error}
//   raw   {host, port, path, method?, headers?, body?, family?} → {status, body} | {error}: node:http,
//         which, unlike fetch, sends the Host header it is given (dial one address, name another)
//   mcp   {url, headers?, list?, calls?, family?} → {tools?, calls?: [{ok, text} | {ok: false, code, message}]} | {error}
// `family` (4 or 6): connect to that family of the name's addresses only (fetch itself takes
// whichever getaddrinfo puts first: IPv4 here, as RFC 6724 ranks 10/8 above a ULA).
//   dns   {name, server?}                → {addresses: [{address, family}]} | {error}: getaddrinfo, or
//                                          an A query to `server` alone
//   read  {path}                         → {content} | {error: <code>}   (a directory: its entries)
//   environ                              → {environ: string[]}           (this process's, from /proc)
//   id                                   → {uid, gid}
//   timed {host, port, path, hostHeader?, family?, n} → {connect: ms[], request: ms[]}: n MCP
//         initialize POSTs, each on a new connection (bench/capture-connect.mjs)
import dns from 'node:dns/promises';
import http from 'node:http';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import tls from 'node:tls';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';

const TIMEOUT_MS = 3000;

function tcp({ host, port, family }) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, family, timeout: TIMEOUT_MS });
    let data = '';
    s.on('data', (d) => {
      data += d;
    });
    const done = (answer) => {
      s.destroy();
      resolve(answer);
    };
    // A moment for a banner, if the server sends one.
    s.once('connect', () => setTimeout(() => done({ result: 'connected', data }), 300));
    s.once('timeout', () => done({ result: 'timeout' }));
    s.once('error', (e) => resolve({ result: e.code ?? e.message }));
  });
}

/**
 * A handshake, then one HTTP request over it: "connected" only once the server answered, so the
 * server saw the handshake complete too (in TLS 1.3 the client finishes first).
 */
function tlsConnect({ host, port, servername, ca, family }) {
  return new Promise((resolve) => {
    // SNI: the name given, else the host when it is a name (as an HTTPS client sends it).
    const sni = servername ?? (net.isIP(host) ? undefined : host);
    const s = tls.connect({ host, port, servername: sni, ca, family, timeout: TIMEOUT_MS });
    let data = '';
    const done = (answer) => {
      s.destroy();
      resolve(answer);
    };
    s.once('secureConnect', () => s.write(`GET / HTTP/1.1\r\nhost: ${sni ?? host}\r\nconnection: close\r\n\r\n`));
    s.on('data', (d) => {
      data += d;
      if (data.includes('\r\n\r\n')) done({ result: 'connected', status: Number(data.split(' ')[1]) });
    });
    s.once('end', () => done({ result: data ? 'connected' : 'closed' }));
    s.once('timeout', () => done({ result: 'timeout' }));
    s.once('error', (e) => done({ result: e.code ?? e.message }));
  });
}

/** fetch, on one address family when asked. */
const fetchOf = (family) => {
  if (!family) return fetch;
  const dispatcher = new Agent({ connect: { family } });
  return (url, init) => undiciFetch(url, { ...init, dispatcher });
};

async function httpReq({ url, method = 'GET', headers = {}, body, family }) {
  try {
    const r = await fetchOf(family)(url, { method, headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
    return { status: r.status, body: (await r.text()).slice(0, 4000) };
  } catch (e) {
    return { error: e.cause?.code ?? e.message };
  }
}

function raw({ host, port, path, method = 'GET', headers = {}, body, family }) {
  return new Promise((resolve) => {
    const req = http.request({ host, port, path, method, headers, family, agent: false, timeout: TIMEOUT_MS }, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode, body: text.slice(0, 4000) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
    req.end(body);
  });
}

async function mcp({ url, headers = {}, list, calls = [], family }) {
  const client = new Client({ name: 'captured-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, fetch: fetchOf(family) });
  try {
    await client.connect(transport);
    const out = {};
    if (list) out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
    out.calls = [];
    for (const c of calls) {
      try {
        const r = await client.callTool(c);
        out.calls.push({ ok: !r.isError, text: JSON.stringify(r.content) });
      } catch (e) {
        out.calls.push({ ok: false, code: e.code, message: e.message });
      }
    }
    return out;
  } catch (e) {
    return { error: `${e.code ?? ''} ${e.message} ${e.cause?.code ?? ''}`.trim() };
  } finally {
    await client.close().catch(() => {});
  }
}

function read({ path }) {
  try {
    if (statSync(path).isDirectory()) return { content: readdirSync(path).join('\n') };
    return { content: readFileSync(path, 'utf8') };
  } catch (e) {
    return { error: e.code ?? e.message };
  }
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
});

/** One request on a new connection: [ms to connected, ms to the end of the response]. */
function timedOnce({ host, port, path, hostHeader, family }) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let connected = 0;
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const req = http.request(
      {
        host,
        port,
        path,
        family,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(hostHeader ? { host: hostHeader } : {}) },
      },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve([connected, ms()]) : reject(new Error(`status ${res.statusCode}: ${body.slice(0, 300)}`))));
      },
    );
    req.on('socket', (s) => s.once('connect', () => (connected = ms())));
    req.on('error', reject);
    req.end(INITIALIZE);
  });
}

async function timed(a) {
  const connect = [];
  const request = [];
  try {
    for (let i = 0; i < a.n; i++) {
      const [c, r] = await timedOnce(a);
      connect.push(c);
      request.push(r);
    }
    return { connect, request };
  } catch (e) {
    return { error: e.code ?? e.message };
  }
}

const ops = {
  timed,
  tcp,
  tls: tlsConnect,
  http: httpReq,
  raw,
  mcp,
  dns: async ({ name, server }) => {
    try {
      if (!server) return { addresses: await dns.lookup(name, { all: true }) };
      // One server, asked directly (UDP), not through resolv.conf.
      const r = new dns.Resolver({ timeout: 1000, tries: 1 });
      r.setServers([server]);
      return { addresses: (await r.resolve4(name)).map((address) => ({ address, family: 4 })) };
    } catch (e) {
      return { error: e.code ?? e.message };
    }
  },
  read,
  environ: () => ({ environ: readFileSync('/proc/self/environ', 'utf8').split('\0').filter(Boolean) }),
  id: () => ({ uid: process.getuid(), gid: process.getgid() }),
};

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  // Each request on its own: a slow one (a timeout) does not hold the others.
  void (async () => {
    const op = ops[req.op];
    const answer = op ? await op(req) : { error: `unknown op ${req.op}` };
    process.stdout.write(`${JSON.stringify({ id: req.id, ...answer })}\n`);
  })();
}

// The world outside a captured pod, run inside its upstream network namespace (ip netns exec;
// see e2e-run.sh pod-add … upstream): a real DNS server (dnsmasq), the real server-everything
// behind recording relays on plain HTTP ports, a TLS server, plain TCP banner ports (egress
// exceptions) and a real A2A agent (the official JS SDK, A2A 0.3) on its own plain HTTP port. Every listener binds "::" without v6only, so it answers on the namespace's IPv4 and
// IPv6 addresses alike.
//
//   node upstream-servers.mjs '<json>'
//     {"dns":{"listen":["10.214.0.2","fd74::2"],"hosts":{"mcp.test":["10.214.0.2","fd74::2"]}},
//      "http":[80,8080],"tls":{"port":443,"cert":"<file>","key":"<file>"},"tcp":[9000],
//      "a2a":{"port":81,"base":"http://mcp.test:81"}}
//
// dnsmasq answers `hosts` (and names under them) and nothing else: --no-resolv, --no-hosts and
// --conf-file=/dev/null (not the machine's dnsmasq.conf), so no query leaves the machine.
//
// stdout, one JSON object a line: {"ready":true} once DNS answers and every listener is bound; then one
// {"port","method","url","headers","remote","local","body"} per HTTP request a relay received (the test's
// oracle: what the upstream was sent, e.g. the credential header), {"port","tls":true,"sni",
// "remote","local"} per TLS handshake, {"port","tcp":true,"remote","local"} per banner connection, and
// for the A2A agent one {"port","method","url","headers","remote","local"} per request (body: the
// SDK reads it) and one {"port","a2a":"executed","text","metadata"} per message its executor ran.
// SIGTERM ends the children too.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createRequire } from 'node:module';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const require = createRequire(import.meta.url);
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

// server-everything binds every interface of this namespace; the relays reach it on loopback.
const INNER = 3001;
const children = [];
/** A child this process cannot do without: its exit ends this one (the test sees it). */
function child(name, command, args, env = process.env) {
  const c = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  c.stderr.pipe(process.stderr);
  c.once('exit', (code) => {
    process.stderr.write(`${name} exited with ${code}\n`);
    process.exit(1);
  });
  children.push(c);
  return c;
}
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.once(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(0);
  });
}
child('server-everything', process.execPath, [EVERYTHING, 'streamableHttp'], { ...process.env, PORT: String(INNER) });
let dnsStarted = Promise.resolve();
if (cfg.dns) {
  const dns = child('dnsmasq', 'dnsmasq', [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--pid-file=',
    '--user=root',
    '--port=53',
    `--listen-address=${cfg.dns.listen.join(',')}`,
    '--bind-interfaces',
    '--log-facility=-',
    ...Object.entries(cfg.dns.hosts).flatMap(([name, addrs]) => addrs.map((a) => `--address=/${name}/${a}`)),
  ]);
  let log = '';
  dnsStarted = new Promise((resolve) => {
    dns.stderr.on('data', (d) => {
      log += d;
      if (log.includes('started, version')) resolve();
    });
  });
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

const relay = (port) =>
  http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      say({
        port,
        method: req.method,
        url: req.url,
        headers: req.headers,
        remote: req.socket.remoteAddress,
        local: req.socket.localAddress,
        body: body.toString('utf8'),
      });
      // Hop-by-hop headers stay on this hop: a client's "connection: close" forwarded on the
      // relay's kept-alive connection made every other request fail.
      const headers = { ...req.headers, host: `127.0.0.1:${INNER}` };
      for (const h of HOP_BY_HOP) delete headers[h];
      const up = http.request({ host: '127.0.0.1', port: INNER, method: req.method, path: req.url, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        res.flushHeaders();
        upRes.pipe(res);
      });
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      res.on('close', () => up.destroy());
      up.end(body);
    });
  });

// Every completed handshake is recorded (SNI included), whether or not a request follows.
const tlsServer = (t) => {
  const server = https.createServer({ cert: readFileSync(t.cert), key: readFileSync(t.key) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('tls upstream\n');
  });
  server.on('secureConnection', (s) => say({ port: t.port, tls: true, sni: s.servername || null, remote: s.remoteAddress, local: s.localAddress }));
  return server;
};

const banner = (port) =>
  net.createServer((s) => {
    say({ port, tcp: true, remote: s.remoteAddress, local: s.localAddress });
    s.on('error', () => {});
    s.end(`banner ${port}\n`);
  });

/**
 * A real A2A agent on the official JS SDK (0.3 line, express): the card at
 * /.well-known/agent-card.json names `base` (skills echo and secret), JSON-RPC at /a2a/jsonrpc, and
 * every message is answered with "echo: <text>".
 */
async function a2aAgent({ port, base }) {
  const { default: express } = await import('express');
  const s03 = await import('a2a-js-sdk-03/server');
  const x03 = await import('a2a-js-sdk-03/server/express');
  const skill = (id) => ({ id, name: id, description: id, tags: [id] });
  const card = {
    name: 'upstream agent',
    description: 'echo',
    protocolVersion: '0.3.0',
    version: '1.0.0',
    url: `${base}/a2a/jsonrpc`,
    preferredTransport: 'JSONRPC',
    skills: [skill('echo'), skill('secret'), skill('refund')],
    capabilities: {},
    defaultInputModes: ['text'],
    defaultOutputModes: ['text'],
  };
  const executor = {
    cancelTask: async () => {},
    async execute(ctx, bus) {
      const text = ctx.userMessage.parts.map((p) => (p.kind === 'text' ? p.text : '')).join(' ');
      say({ port, a2a: 'executed', text, metadata: ctx.userMessage.metadata ?? {} });
      bus.publish({ kind: 'message', role: 'agent', messageId: `m-${Date.now()}`, parts: [{ kind: 'text', text: `echo: ${text}` }], contextId: ctx.contextId });
      bus.finished();
    },
  };
  const handler = new s03.DefaultRequestHandler(card, new s03.InMemoryTaskStore(), executor);
  const app = express();
  app.use('/.well-known/agent-card.json', x03.agentCardHandler({ agentCardProvider: handler }));
  app.use('/a2a/jsonrpc', x03.jsonRpcHandler({ requestHandler: handler, userBuilder: async () => ({ isAuthenticated: false, userName: '' }) }));
  return http.createServer((req, res) => {
    say({ port, method: req.method, url: req.url, headers: req.headers, remote: req.socket.remoteAddress, local: req.socket.localAddress });
    app(req, res);
  });
}

const listen = (server, port) =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, resolve);
  });

// server-everything first: the relays are useless until it answers.
for (const end = Date.now() + 15_000; ; ) {
  const up = await new Promise((r) => {
    const s = net.connect(INNER, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
  if (up) break;
  if (Date.now() > end) throw new Error('server-everything did not listen');
  await new Promise((r) => setTimeout(r, 50));
}
await Promise.all([
  dnsStarted,
  ...(cfg.http ?? []).map((p) => listen(relay(p), p)),
  ...(cfg.tls ? [listen(tlsServer(cfg.tls), cfg.tls.port)] : []),
  ...(cfg.tcp ?? []).map((p) => listen(banner(p), p)),
  ...(cfg.a2a ? [a2aAgent(cfg.a2a).then((server) => listen(server, cfg.a2a.port))] : []),
]);
say({ ready: true });

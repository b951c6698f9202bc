// The floor for Node: the least a node:http + undici relay does to pass a POST to an upstream and
// its answer back (no parsing, no gates, no log). `make bench` runs it beside the sidecar so every
// figure is also a ratio to what Node itself can do.
//   node dist/bench/support/floor-relay.js <port> <upstream origin>   (prints "ready")
import http from 'node:http';
import { Pool } from 'undici';

const [port, origin] = [Number(process.argv[2]), process.argv[3]!];
const pool = new Pool(origin, { connections: 128 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);

http
  .createServer((req, res) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && typeof v === 'string') headers[k] = v;
    pool.request({ path: req.url!, method: req.method as 'POST', headers, body: req }).then(
      (up) => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP.has(k) && typeof v === 'string') out[k] = v;
        res.writeHead(up.statusCode, out);
        up.body.on('data', (c: Buffer) => res.write(c) || up.body.pause());
        res.on('drain', () => up.body.resume());
        up.body.on('end', () => res.end());
        up.body.on('error', () => res.destroy());
      },
      () => res.writeHead(502).end(),
    );
  })
  .listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));

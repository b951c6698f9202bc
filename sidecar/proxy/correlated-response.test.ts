// CorrelatedResponse puts the correlation id in writeHead's headers instead of setHeader ahead of
// it: every way an answer's head is written must carry the same headers as the setHeader way did.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CORRELATION_HEADER, CorrelatedResponse } from './context.js';

const ID = '6f1c2d3e-0000-4000-8000-00000000abcd';

/** Ways the proxy writes a head, each given a response whose correlation id is already in place. */
const scenarios: Record<string, (res: http.ServerResponse) => void> = {
  'writeHead(status, headers)': (res) => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's1' }).end('{}'),
  'writeHead(status, reason, headers)': (res) => res.writeHead(201, 'Made', { 'content-type': 'text/plain' }).end('x'),
  'writeHead(status, raw header array)': (res) => res.writeHead(200, ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2']).end('x'),
  'writeHead(status) alone': (res) => res.writeHead(202).end(),
  'end() without writeHead': (res) => res.end('plain'),
  'flushHeaders() then end()': (res) => {
    res.flushHeaders();
    res.end('later');
  },
  'setHeader, then writeHead(status, headers)': (res) => {
    res.setHeader('access-control-allow-origin', 'https://a.example');
    res.writeHead(200, { vary: 'Accept' }).end();
  },
  // An upstream's header of the same name replaced ours when it was set first; it still does.
  'headers naming the correlation id': (res) => res.writeHead(200, { [CORRELATION_HEADER]: 'theirs' }).end(),
};

async function serve(correlated: boolean): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(correlated ? { ServerResponse: CorrelatedResponse } : {}, (req, res) => {
    if (correlated) (res as CorrelatedResponse).correlationId = ID;
    else res.setHeader(CORRELATION_HEADER, ID);
    scenarios[decodeURIComponent(req.url!.slice(1))]!(res);
  }) as http.Server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Status, reason and header lines as the client reads them (names lower-cased, in order of name). */
function head(url: string): Promise<{ status: number; reason: string; headers: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const headers: string[] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const name = res.rawHeaders[i]!.toLowerCase();
            if (name !== 'date') headers.push(`${name}: ${res.rawHeaders[i + 1]}`);
          }
          resolve({ status: res.statusCode!, reason: res.statusMessage!, headers: headers.sort(), body });
        });
      })
      .on('error', reject);
  });
}

describe('CorrelatedResponse', () => {
  let plain: { server: http.Server; url: string };
  let correlated: { server: http.Server; url: string };
  beforeAll(async () => {
    plain = await serve(false);
    correlated = await serve(true);
  });
  afterAll(() => {
    plain.server.close();
    correlated.server.close();
  });

  for (const name of Object.keys(scenarios)) {
    it(`${name}: the same head as setHeader before it`, async () => {
      const path = `/${encodeURIComponent(name)}`;
      const [a, b] = [await head(plain.url + path), await head(correlated.url + path)];
      expect(b).toEqual(a);
      const ours = name === 'headers naming the correlation id' ? 'theirs' : ID;
      expect(b.headers).toContain(`${CORRELATION_HEADER}: ${ours}`);
    });
  }

  it('without an id it is a plain response', async () => {
    const server = http.createServer({ ServerResponse: CorrelatedResponse }, (_req, res) => res.writeHead(200, { a: '1' }).end()) as http.Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await head(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(r.headers.some((h) => h.startsWith(CORRELATION_HEADER))).toBe(false);
      expect(r.headers).toContain('a: 1');
    } finally {
      server.close();
    }
  });
});

// The relay of an unedited POST answer (forward.ts relayDispatched, undici's dispatch handler):
// the bounds relay() keeps, with a real sidecar and a raw node:http upstream. Functional only.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestSidecar, type TestSidecar } from '../../test/support/sidecar.js';

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse) => void;
let behaviour: Behaviour = () => undefined;
let upstream: http.Server;
let tg: TestSidecar;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => behaviour(req, res));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  tg = await startTestSidecar(`
sources:
  - name: up
    url: ${url}
defaultAction: forward
`);
});
afterAll(async () => {
  await tg?.close();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

const CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: {} } });

/** Sends the call; resolves with the response (its body not read) once the head arrives. */
function send(): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${tg.mcpUrl('up')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    });
    req.on('response', (res) => resolve({ req, res }));
    req.on('error', reject);
    req.end(CALL);
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${tg.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

function endedEarly(kind: string): number {
  return tg.logs().filter((l) => l['msg'] === 'request' && l['reason'] === `stream ended early: ${kind}`).length;
}

test('the agent hanging up mid-answer cancels the upstream call and ends the stream', async () => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  behaviour = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"jsonrpc":"2.0","id":1,');
    res.on('close', upstreamClosed);
  };
  const before = endedEarly('client-closed');
  const { req, res } = await send();
  await new Promise((r) => res.once('data', r));
  expect(await metric('thoughtgate_sidecar_open_streams{source="up"}')).toBe(1);
  req.destroy();
  await closed;
  await tg.waitFor(() => endedEarly('client-closed') === before + 1, 'the log line');
  expect(await metric('thoughtgate_sidecar_open_streams{source="up"}')).toBe(0);
});

test('an upstream that breaks mid-answer cuts the agent response and is counted as a reset', async () => {
  behaviour = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"jsonrpc":"2.0","id":1,');
    setTimeout(() => res.socket!.destroy(), 50);
  };
  const resets = await metric('thoughtgate_sidecar_upstream_errors_total{source="up",kind="reset",protocol="mcp"}');
  const { res } = await send();
  const outcome = await new Promise<string>((r) => {
    res.on('data', () => undefined);
    res.on('end', () => r('end'));
    res.on('error', () => r('error'));
    res.on('aborted', () => r('error'));
  });
  expect(outcome).toBe('error');
  await tg.waitFor(() => endedEarly('reset') >= 1, 'the log line');
  expect(await metric('thoughtgate_sidecar_upstream_errors_total{source="up",kind="reset",protocol="mcp"}')).toBe(resets + 1);
  expect(await metric('thoughtgate_sidecar_open_streams{source="up"}')).toBe(0);
});

test('an agent that does not read pauses the upstream (backpressure), then gets every byte', async () => {
  const TOTAL = 64 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'a');
  let written = 0;
  behaviour = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(TOTAL) });
    const pump = (): void => {
      while (written < TOTAL) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };
  const { res } = await send();
  res.pause();
  // What socket buffers hold (a few MiB each way) is all that moves while the agent reads nothing.
  let last = -1;
  while (written !== last) {
    last = written;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(written).toBeLessThan(TOTAL / 2);
  let received = 0;
  res.on('data', (c: Buffer) => (received += c.length));
  res.resume();
  await new Promise((r) => res.on('end', r));
  expect(received).toBe(TOTAL);
}, 30_000);

test('an upstream that is not there: the forwarded request is answered -32000, naming the connect failure', async () => {
  const dead = http.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const gen = tg.sidecar.snapshot()!.generation;
  tg.writeConfig(`
sources:
  - name: up
    url: http://127.0.0.1:${port}/mcp
defaultAction: forward
`);
  await tg.waitFor(() => tg.sidecar.snapshot()!.generation > gen, 'the reload');
  const { res } = await send();
  let text = '';
  for await (const c of res) text += String(c);
  expect(res.statusCode).toBe(200);
  expect(JSON.parse(text)).toMatchObject({ id: 1, error: { code: -32000 } });
  expect(text).toContain('could not connect to upstream \\"up\\"');
});

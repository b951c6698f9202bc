// Drain: a source's GET streams carry no pending request, so close() ends them at once, whichever
// listener and form opened them (origin-form /mcp/<source>, absolute-form on the proxy port, Host on
// the transparent listener), instead of waiting for the drain deadline.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRecordedEverything, type RecordedEverything } from '../adversarial/harness.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

const DRAIN_MS = 8_000;

/** One request to the sidecar's `port` with this request target and Host; resolves at the response head. */
function send(port: number, path: string, host: string, method: string, headers: Record<string, string>, body?: unknown): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, headers: { ...headers, host } }, resolve);
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function text(res: http.IncomingMessage): Promise<string> {
  let t = '';
  for await (const chunk of res) t += String(chunk);
  return t;
}

const json = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** A session, then its GET stream, through (port, path, Host): the open stream's response. */
async function openStream(port: number, path: string, host: string): Promise<http.IncomingMessage> {
  const init = await send(port, path, host, 'POST', json, {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'drain', version: '1' } },
  });
  await text(init);
  expect([path, host, init.statusCode]).toEqual([path, host, 200]);
  const session = { 'mcp-session-id': init.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-06-18' };
  await text(await send(port, path, host, 'POST', { ...json, ...session }, { jsonrpc: '2.0', method: 'notifications/initialized' }));
  const stream = await send(port, path, host, 'GET', { accept: 'text/event-stream', ...session });
  expect([path, host, stream.statusCode]).toEqual([path, host, 200]);
  return stream;
}

let up: RecordedEverything;
let tg: TestSidecar | undefined;
let dir: string;

beforeAll(async () => {
  up = await startRecordedEverything();
  dir = mkdtempSync(join(tmpdir(), 'tg-drain-'));
});
afterAll(async () => {
  await tg?.close();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('close() ends GET streams of every listener and form at once, not at the drain deadline', async () => {
  tg = await startTestSidecar(
    `sources:\n  - name: e\n    url: \${UPSTREAM}\ndefaultAction: forward\n`,
    { UPSTREAM: up.url },
    {
      capture: { transparentPort: 0, stateFile: join(dir, 'state.json') },
      drainTimeoutMs: DRAIN_MS,
    },
  );
  const upHost = new URL(up.url).host;
  const upPath = new URL(up.url).pathname;
  const streams = [
    await openStream(tg.sidecar.port, '/mcp/e', `127.0.0.1:${tg.sidecar.port}`),
    await openStream(tg.sidecar.port, up.url, upHost), // absolute-form (forward proxy)
    await openStream(tg.sidecar.capture!.transparentPort, upPath, upHost), // captured: Host names the server
  ];
  const ended = streams.map((s) => new Promise<void>((r) => s.once('close', () => r())));
  for (const s of streams) s.resume();
  const t0 = Date.now();
  const closing = tg.sidecar.close();
  await Promise.all(ended);
  await closing;
  expect(Date.now() - t0).toBeLessThan(DRAIN_MS / 4);
}, 30_000);

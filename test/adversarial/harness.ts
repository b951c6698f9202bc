// The oracle of the adversarial suite: the real server-everything behind a recording relay, so a
// test asserts on exactly what the MCP server received (method, path, headers, body bytes), never
// on what the sidecar says it did. The relay streams both ways and changes nothing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEverything, type Proc } from '../support/processes.js';
import { startTestSidecar, type TestSidecar, messagesOf } from '../support/sidecar.js';

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RecordedEverything {
  /** The relay's MCP URL (what a source's `url` points at). */
  url: string;
  /** The relay's port, for configs that name the source by another spelling of its address. */
  port: number;
  received: Received[];
  /** Every byte the upstream received so far (request lines, headers and bodies), for "never saw X". */
  everything(): string;
  /** JSON-RPC bodies received, parsed; a batch stays an array. */
  bodies(): unknown[];
  clear(): void;
  close(): Promise<void>;
}

/** server-everything (a real process) behind a relay that records every request it is sent. */
export async function startRecordedEverything(): Promise<RecordedEverything> {
  const everything: { url: string; proc: Proc } = await startEverything();
  const target = new URL(everything.url);
  const received: Received[] = [];
  const relay = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: body.toString('utf8') });
      const headers = { ...req.headers, host: target.host };
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (upRes) => {
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
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const { port } = relay.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${target.pathname}`,
    port,
    received,
    everything: () => received.map((r) => `${r.method} ${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`).join('\n'),
    bodies: () =>
      received
        .filter((r) => r.body)
        .map((r) => {
          try {
            return JSON.parse(r.body) as unknown;
          } catch {
            return r.body;
          }
        }),
    clear: () => {
      received.length = 0;
    },
    close: async () => {
      relay.closeAllConnections();
      await new Promise<void>((r) => relay.close(() => r()));
      await everything.proc.stop();
    },
  };
}

/** A sidecar in front of the recorded server: `${UPSTREAM}` in the YAML is the relay's URL. */
export function startGuard(upstream: RecordedEverything, yaml: string, env: Record<string, string> = {}): Promise<TestSidecar> {
  return startTestSidecar(yaml, { UPSTREAM: upstream.url, ...env });
}

/** Opens an MCP session by hand (initialize + initialized) and returns the headers to reuse. */
/** server-everything behind its recording relay, and a sidecar in front of it with this config. */
export async function startGuarded(yaml: string, env: Record<string, string> = {}): Promise<{ up: RecordedEverything; tg: TestSidecar }> {
  const up = await startRecordedEverything();
  try {
    return { up, tg: await startGuard(up, yaml, env) };
  } catch (err) {
    await up.close();
    throw err;
  }
}

/** Stops what startGuarded started (either may be missing when a beforeAll failed). */
export async function closeGuarded(tg: TestSidecar | undefined, up: RecordedEverything | undefined): Promise<void> {
  await tg?.close();
  await up?.close();
}

export async function openSession(url: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra };
  const r = await fetch(url, {
    method: 'POST',
    headers: base,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'adversary', version: '1' } },
    }),
  });
  await r.text();
  const sid = r.headers.get('mcp-session-id');
  const headers: Record<string, string> = { ...base, 'mcp-protocol-version': '2025-06-18', ...(sid ? { 'mcp-session-id': sid } : {}) };
  const n = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await n.text();
  return headers;
}

/** The JSON-RPC messages of a reply, whether it came as JSON or as SSE events. */
export function replyMessages(text: string, contentType: string | null): unknown[] {
  return messagesOf({ text, headers: new Headers(contentType === null ? {} : { 'content-type': contentType }) });
}

/** POSTs one body in a session and returns the parsed reply messages. */
export async function post(url: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; messages: unknown[]; headers: Headers }> {
  const r = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let messages: unknown[] = [];
  try {
    messages = replyMessages(text, r.headers.get('content-type'));
  } catch {
    messages = [text];
  }
  return { status: r.status, messages, headers: r.headers };
}

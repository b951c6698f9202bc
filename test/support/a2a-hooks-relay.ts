// A minimal A2A relay that drives the isolation hooks (sidecar/a2a/isolation.ts) exactly where the
// data path calls them (handler.ts: describeA2a → beforeForward → forward → onAnswer), in front of a
// real SDK agent. For tests of task isolation and push egress that do not depend on the rest of
// the data path (gates, routing): the hooks see the real SDK clients' requests and the agent's
// real answer bytes. Card URLs are rewritten to the relay so the SDK clients stay behind it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadable } from 'node:stream/web';
import { a2aJsonRpcError, a2aRestError, tgRestError } from '../../api/a2a-errors.js';
import { a2aGateError } from '../../api/errors.js';
import { a2aVersionOf } from '../../policy/gates/a2a-methods.js';
import { type A2aCall, describeA2a } from '../../policy/gates/a2a-operation.js';
import type { IsolationCall, IsolationHooks } from '../../sidecar/a2a/isolation.js';

export interface HooksRelay {
  /** The base URL clients use (the card is at <base>/.well-known/agent-card.json). */
  base: string;
  /** Requests the relay answered itself (nothing forwarded): method and status. */
  refused: { method: string; body: string }[];
  close(): Promise<void>;
}

const readAll = async (s: NodeJS.ReadableStream): Promise<string> => {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
};

export async function startHooksRelay(agentBase: string, source: string, hooks: IsolationHooks, snap: IsolationCall['snap']): Promise<HooksRelay> {
  const refused: HooksRelay['refused'] = [];
  let base = '';
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(502).end(String(e));
      else res.destroy();
    });
  });
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readAll(req);
    const url = new URL(req.url ?? '/', 'http://relay');
    const binding: 'jsonrpc' | 'rest' | null = url.pathname.startsWith('/a2a/jsonrpc') ? 'jsonrpc' : url.pathname.startsWith('/a2a/rest') ? 'rest' : null;
    let op: Parameters<IsolationHooks['beforeForward']>[0]['op'] | null = null;
    let stream = false;
    let rpcId: unknown = null;
    const v = a2aVersionOf(req.headers['a2a-version'], url.searchParams.get('A2A-Version') ?? undefined);
    const version = v.ok ? v.version : '0.3';
    if (binding) {
      const parsed = body === '' ? undefined : (JSON.parse(body) as Record<string, unknown>);
      rpcId = binding === 'jsonrpc' ? (parsed?.['id'] ?? null) : null;
      const call: A2aCall =
        binding === 'jsonrpc'
          ? { version, binding, method: String(parsed?.['method']), params: parsed?.['params'] }
          : { version, binding, method: `${req.method} ${url.pathname.slice('/a2a/rest'.length)}`, params: parsed };
      const d = describeA2a(source, call);
      if (d.ok) {
        op = d.op;
        stream = d.row.stream;
      }
    }
    const call = op ? { req, source: { name: source }, op, shape: { binding: binding!, version }, row: { stream }, snap } : null;
    if (call) {
      const r = await hooks.beforeForward(call);
      if (r) {
        refused.push({ method: op!.method, body });
        const correlationId = 'test';
        if (binding === 'jsonrpc') {
          const error = r.kind === 'a2a' ? a2aJsonRpcError(version, r.name, r.message) : a2aGateError(r.name, { reason: r.reason, correlationId });
          const text = JSON.stringify({ jsonrpc: '2.0', id: rpcId, error });
          if (r.kind === 'a2a' && r.sse) res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`event: error\ndata: ${text}\n\n`);
          else res.writeHead(200, { 'content-type': 'application/json' }).end(text);
        } else {
          const e = r.kind === 'a2a' ? a2aRestError(version, r.name, r.message) : tgRestError(version, r.name, { reason: r.reason, correlationId });
          res.writeHead(e.http, { 'content-type': e.contentType }).end(JSON.stringify(e.body));
        }
        return;
      }
    }
    const headers = { ...req.headers };
    for (const h of ['host', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'expect', 'upgrade']) delete headers[h];
    const up = await fetch(`${agentBase}${req.url}`, {
      method: req.method ?? 'GET',
      headers: headers as Record<string, string>,
      ...(body !== '' ? { body } : {}),
    });
    const upHeaders: Record<string, string> = {};
    up.headers.forEach((value, key) => {
      if (
        key !== 'content-length' &&
        key !== 'content-encoding' &&
        key !== 'transfer-encoding' &&
        key !== 'connection' &&
        key !== 'keep-alive' &&
        key !== 'etag'
      )
        upHeaders[key] = value;
    });
    if (url.pathname === '/.well-known/agent-card.json') {
      // The card's interface URLs point at the agent: point them at the relay.
      res.writeHead(up.status, upHeaders).end((await up.text()).split(agentBase).join(base));
      return;
    }
    res.writeHead(up.status, upHeaders);
    res.flushHeaders();
    if (!up.body) return void res.end();
    const through = call && hooks.readsAnswer(call) && up.status >= 200 && up.status < 300 ? hooks.onAnswer(call, up.status, upHeaders) : null;
    const answer = Readable.fromWeb(up.body as WebReadable);
    // A hook error cuts the answer (the client sees a broken response, never the id).
    await (through ? pipeline(answer, through, res) : pipeline(answer, res)).catch(() => res.destroy());
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    refused,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

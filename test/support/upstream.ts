// A real MCP server for tests, built on the official SDK (@modelcontextprotocol/sdk), in any of the
// four shapes a ThoughtGate source can have: stateful or stateless, SSE or JSON responses. Every
// HTTP request it receives is recorded, so a test can prove that something was NOT forwarded.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface UpstreamOptions {
  stateful?: boolean;
  json?: boolean;
  /** Requests without `Authorization: Bearer <token>` get 401 + WWW-Authenticate; token "readonly" gets 403. */
  requireToken?: string;
}

export interface TestUpstream {
  url: string;
  requests: RecordedRequest[];
  /** JSON-RPC bodies received (parsed), newest last. */
  messages(): unknown[];
  /** Resolves the pending `wait_for_release` tool call. */
  release(): void;
  /** Resolves when a `wait_for_release` call has started and sent its progress notification. */
  waiting(): Promise<void>;
  close(): Promise<void>;
}

function buildServer(hooks: { waiting: () => void; released: () => Promise<void> }): McpServer {
  const server = new McpServer({ name: 'thoughtgate-test-upstream', version: '1.0.0' }, { capabilities: { logging: {} } });
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
  server.registerTool('echo', { description: 'Echoes a message', inputSchema: { message: z.string() } }, async ({ message }) => text(`echo: ${message}`));
  server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    ...text(String(a + b)),
    structuredContent: { sum: a + b },
  }));
  server.registerTool('delete_file', { description: 'Deletes a file', inputSchema: { path: z.string() } }, async ({ path }) => text(`deleted ${path}`));
  server.registerTool(
    'transfer_funds',
    { description: 'Moves money', inputSchema: { amount: z.number(), to: z.string(), memo: z.string().nullable().optional() } },
    async ({ amount, to }) => text(`transferred ${amount} to ${to}`),
  );
  server.registerTool('get_secret', { description: 'Returns a secret' }, async () => text('s3cr3t'));
  server.registerTool(
    'wait_for_release',
    { description: 'Sends a progress notification, then waits until the test releases it', inputSchema: {} },
    async (_args, extra) => {
      const token = extra._meta?.progressToken;
      if (token !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2, message: 'started' } });
      }
      hooks.waiting();
      await hooks.released();
      return text('released');
    },
  );
  server.registerResource('readme', 'file:///public/readme.txt', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'hello' }] }));
  server.registerResource('keys', 'file:///secret/keys.txt', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'k' }] }));
  server.registerPrompt('greeting', { description: 'Says hello' }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'hello' } }] }));
  server.registerPrompt('secret_prompt', { description: 'Hidden prompt' }, async () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'psst' } }],
  }));
  return server;
}

export async function startUpstream(opts: UpstreamOptions = {}): Promise<TestUpstream> {
  const requests: RecordedRequest[] = [];
  let releaseFn: (() => void) | null = null;
  let releasePromise = new Promise<void>((r) => {
    releaseFn = r;
  });
  let waitingFn: (() => void) | null = null;
  let waitingPromise = new Promise<void>((r) => {
    waitingFn = r;
  });
  const hooks = { waiting: () => waitingFn?.(), released: () => releasePromise };
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  const httpServer = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    if (opts.requireToken) {
      const auth = req.headers['authorization'];
      if (auth === 'Bearer readonly') {
        res.writeHead(403, { 'www-authenticate': 'Bearer error="insufficient_scope", scope="write"', 'content-type': 'application/json' });
        res.end('{"error":"insufficient_scope"}');
        return;
      }
      if (auth !== `Bearer ${opts.requireToken}`) {
        res.writeHead(401, {
          'www-authenticate': 'Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource", scope="mcp"',
          'content-type': 'application/json',
        });
        res.end('{"error":"invalid_token"}');
        return;
      }
    }
    let parsed: unknown;
    try {
      parsed = body ? JSON.parse(body) : undefined;
    } catch {
      parsed = undefined;
    }
    try {
      if (!opts.stateful) {
        const server = buildServer(hooks);
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !!opts.json });
        res.on('close', () => {
          void transport.close();
          void server.close();
        });
        await server.connect(transport);
        await transport.handleRequest(req, res, parsed);
        return;
      }
      const sid = req.headers['mcp-session-id'];
      let transport = typeof sid === 'string' ? sessions.get(sid) : undefined;
      if (!transport) {
        if (req.method === 'POST' && !sid && isInitializeRequest(parsed)) {
          transport = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            enableJsonResponse: !!opts.json,
            onsessioninitialized: (id) => {
              sessions.set(id, transport!);
            },
            onsessionclosed: (id) => {
              sessions.delete(id);
            },
          });
          await buildServer(hooks).connect(transport);
        } else {
          res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              jsonrpc: '2.0',
              error: { code: -32000, message: sid ? 'Session not found' : 'Bad Request: No valid session ID provided' },
              id: null,
            }),
          );
          return;
        }
      }
      await transport.handleRequest(req, res, parsed);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    }
  });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    messages: () =>
      requests
        .filter((r) => r.method === 'POST' && r.body)
        .map((r) => {
          try {
            return JSON.parse(r.body);
          } catch {
            return r.body;
          }
        }),
    release: () => {
      releaseFn?.();
      releasePromise = new Promise<void>((r) => {
        releaseFn = r;
      });
      waitingPromise = new Promise<void>((r) => {
        waitingFn = r;
      });
    },
    waiting: () => waitingPromise,
    close: async () => {
      for (const t of sessions.values()) await t.close().catch(() => undefined);
      httpServer.closeAllConnections();
      await new Promise<void>((r) => httpServer.close(() => r()));
    },
  };
}

// The upstream of the A2A benchmark: a minimal A2A agent on node:http (no express, no SDK: what is
// measured is the proxy, not the agent) answering with the bytes the SDK agents send
// (/work/a2a/captures js1-jsonrpc-v10-0{1,2}, js03-srv03-jsonrpc-0{1,2}): SendMessage / message/send
// with one Message, SendStreamingMessage / message/stream with a Task, then STREAM_EVENTS status
// updates STREAM_STEP_MS apart (the first at once). JSON-RPC at /a2a/jsonrpc, HTTP+JSON (1.0) at
// /a2a/rest (message:send only), the card at /.well-known/agent-card.json (CARD_SKILLS skills, most
// of which the bench's sidecar hides); an MCP tools/call (any path) gets a one-text result, so the
// bench can put the MCP figure beside A2A's through the same sidecar. A SendStreamingMessage naming
// skill "bulk" streams BULK_BYTES of artifact updates as fast as the reader takes them.
import http from 'node:http';
import { readBodyText } from '../../lib/read-body.js';

export const STREAM_EVENTS = 5;
export const STREAM_STEP_MS = 10;
/** Skills on the card: "echo", "count", "bulk" and filler ones; the sidecar exposes only the first three. */
export const CARD_SKILLS = 60;
export const BULK_BYTES = 100 * 1024 * 1024;
const BULK_CHUNK = 64 * 1024;

const TASK = { id: 'task-1', contextId: 'ctx-1' };

function sendResult(method: string): unknown {
  return method === 'message/send'
    ? {
        kind: 'message',
        messageId: 'm-1',
        role: 'agent',
        parts: [{ kind: 'text', text: 'echo: hello' }],
        contextId: TASK.contextId,
        metadata: { skill: 'echo' },
      }
    : {
        message: {
          messageId: 'm-1',
          contextId: TASK.contextId,
          role: 'ROLE_AGENT',
          parts: [{ text: 'echo: hello', mediaType: 'text/plain' }],
          metadata: { skill: 'echo' },
        },
      };
}

function streamEvent(v03: boolean, i: number, last: boolean): unknown {
  if (i === 0) return v03 ? { kind: 'task', ...TASK, status: { state: 'submitted' } } : { task: { ...TASK, status: { state: 'TASK_STATE_SUBMITTED' } } };
  const state = last ? 'completed' : 'working';
  return v03
    ? { kind: 'status-update', taskId: TASK.id, contextId: TASK.contextId, status: { state }, final: last }
    : { statusUpdate: { taskId: TASK.id, contextId: TASK.contextId, status: { state: `TASK_STATE_${state.toUpperCase()}` } } };
}

function card(base: string): string {
  return JSON.stringify({
    name: 'bench agent',
    description: 'answers at once',
    version: '1',
    protocolVersion: '0.3',
    url: `${base}/a2a/jsonrpc`,
    preferredTransport: 'JSONRPC',
    capabilities: { streaming: true },
    defaultInputModes: ['text'],
    defaultOutputModes: ['text'],
    // Every skill the bench's messages name (the sidecar answers a skill its cards do not list as hidden).
    skills: [
      { id: 'echo', name: 'Echo', description: 'echo', tags: [] },
      { id: 'count', name: 'Count', description: 'a stream', tags: [] },
      { id: 'bulk', name: 'Bulk', description: 'a 100 MB stream', tags: [] },
      ...Array.from({ length: CARD_SKILLS - 3 }, (_, i) => ({
        id: `filler-${i}`,
        name: `Filler ${i}`,
        description: 'a skill this workload may not use, as cards of real agents list many',
        tags: ['bench', 'hidden'],
        examples: ['do the thing', 'do the other thing'],
      })),
    ],
  });
}

/** BULK_BYTES of 1.0 artifact updates, each written when the socket has taken the one before. */
function bulkStream(res: http.ServerResponse, id: unknown): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const text = 'x'.repeat(BULK_CHUNK);
  const event = (i: number) =>
    `data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { artifactUpdate: { taskId: TASK.id, contextId: TASK.contextId, append: i > 0, artifact: { artifactId: 'a-1', parts: [{ text }] } } } })}\n\n`;
  res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { task: { ...TASK, status: { state: 'TASK_STATE_WORKING' } } } })}\n\n`);
  let sent = 0;
  let i = 0;
  const more = () => {
    while (sent < BULK_BYTES) {
      const ev = event(i++);
      sent += ev.length;
      if (!res.write(ev)) return void res.once('drain', more);
    }
    res.end(
      `data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { statusUpdate: { taskId: TASK.id, contextId: TASK.contextId, status: { state: 'TASK_STATE_COMPLETED' } } } })}\n\n`,
    );
  };
  more();
}

/** Listens on 127.0.0.1:`port` and prints "ready". */
export function runA2aAgent(port: number): void {
  const base = `http://127.0.0.1:${port}`;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      const body = card(base);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    void readBodyText(req, { limitBytes: 1024 * 1024 }).then(
      (text) => {
        if (req.url?.startsWith('/a2a/rest/')) {
          const out = JSON.stringify(sendResult('SendMessage'));
          res.writeHead(200, { 'content-type': 'application/a2a+json', 'content-length': Buffer.byteLength(out) });
          res.end(out);
          return;
        }
        const m = JSON.parse(text) as { id?: unknown; method?: string; params?: { message?: { metadata?: { skill?: string } } } };
        const id = m.id ?? null;
        const method = m.method ?? '';
        if (method === 'SendStreamingMessage' && m.params?.message?.metadata?.skill === 'bulk') return bulkStream(res, id);
        if (method === 'SendStreamingMessage' || method === 'message/stream') {
          const v03 = method === 'message/stream';
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
          let i = 0;
          const next = () => {
            const last = i === STREAM_EVENTS;
            const ev = `data: ${JSON.stringify({ jsonrpc: '2.0', id, result: streamEvent(v03, i, last) })}\n\n`;
            if (last) return res.end(ev);
            res.write(ev);
            i++;
            setTimeout(next, STREAM_STEP_MS);
          };
          next();
          return;
        }
        const result = method === 'tools/call' ? { content: [{ type: 'text', text: 'ok' }] } : sendResult(method);
        const out = JSON.stringify({ jsonrpc: '2.0', id, result });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      },
      () => res.destroy(),
    );
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}

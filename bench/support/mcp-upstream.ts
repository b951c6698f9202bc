// The upstream of the proxy benchmarks: a minimal Streamable HTTP JSON-RPC responder (so what is
// measured is the proxy, not the upstream), and a 100 MB SSE stream for a call named `big_stream`.
import http from 'node:http';
import { readBodyText } from '../../lib/read-body.js';

export const SSE_TOTAL_BYTES = 100 * 1024 * 1024;
const RESULT = JSON.stringify({ content: [{ type: 'text', text: 'ok' }] });

/** Listens on 127.0.0.1:`port` and prints "ready". */
export function runUpstream(port: number): void {
  const chunk = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x'.repeat(64 * 1024 - 120) } })}\n\n`;
  const server = http.createServer((req, res) => {
    // The fake upstream reads as the sidecar does: bounded, strict UTF-8.
    void readBodyText(req, { limitBytes: 64 * 1024 * 1024 }).then(
      (body) => {
        if (body.includes('"big_stream"')) {
          // 100 MB of SSE events, written with backpressure, then the response.
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          let sent = 0;
          const pump = (): void => {
            while (sent < SSE_TOTAL_BYTES) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end(`event: message\ndata: {"jsonrpc":"2.0","id":1,"result":${RESULT}}\n\n`);
          };
          pump();
          return;
        }
        const id = /"id":(\d+|"[^"]*")/.exec(body)?.[1] ?? 'null';
        const out = `{"jsonrpc":"2.0","id":${id},"result":${RESULT}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      },
      () => res.destroy(),
    );
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}

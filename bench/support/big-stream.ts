// The 100 MB SSE answer the proxy benchmarks stream: one `tools/call` of "big_stream", which their
// upstreams answer with 100 MB of 64 KiB events. Reads it to the end and says how many bytes came.
import { Pool } from 'undici';

export const BIG_STREAM_BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big_stream"}}';

export async function readBigStream(url: string): Promise<number> {
  const u = new URL(url);
  const pool = new Pool(u.origin);
  try {
    const r = await pool.request({
      path: u.pathname,
      method: 'POST',
      body: BIG_STREAM_BODY,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    });
    let bytes = 0;
    for await (const c of r.body) bytes += (c as Buffer).length;
    return bytes;
  } finally {
    await pool.close();
  }
}

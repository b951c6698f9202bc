// The 100 MB SSE answer the proxy benchmarks stream: one `tools/call` of "big_stream", which their
// upstreams answer with 100 MB of 64 KiB events. Reads it to the end and says how many bytes came.
import { Pool } from 'undici';
import { memory, peakTracker, type Memory } from './proc.js';

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

/** Streams it through the proxy `pid` listening at `url`, with the proxy's memory before and its peak (sampled every 50 ms) during. */
export async function measureBigStream(pid: number, url: string): Promise<{ bytes: number; seconds: number; before: Memory; top: Memory }> {
  const before = memory(pid);
  const peak = peakTracker(pid);
  const tick = setInterval(peak.sample, 50);
  const t = process.hrtime.bigint();
  let bytes = 0;
  try {
    bytes = await readBigStream(url);
  } finally {
    clearInterval(tick);
  }
  peak.sample();
  return { bytes, seconds: Number(process.hrtime.bigint() - t) / 1e9, before, top: peak.peak() };
}

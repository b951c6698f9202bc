// Closed-loop load for the proxy benchmarks: `clients` concurrent loops for `seconds`, each sending
// one POST at a time and timing it to the end of the response body.
import { Pool } from 'undici';

export async function load(
  url: string,
  body: string,
  clients: number,
  seconds: number,
  o: { onTick?: () => void; headers?: Record<string, string> } = {},
): Promise<{ lat: number[]; rps: number; errors: number }> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: clients, pipelining: 1 });
  const lat: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const tick = o.onTick ? setInterval(o.onTick, 100) : null;
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...o.headers };
  const loop = async () => {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      try {
        const r = await pool.request({ path: u.pathname, method: 'POST', body, headers });
        await r.body.text();
        if (r.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: clients }, loop));
  const elapsed = (Date.now() - started) / 1000;
  if (tick) clearInterval(tick);
  await pool.close();
  lat.sort((a, b) => a - b);
  return { lat, rps: lat.length / elapsed, errors };
}

// Closed-loop load for the proxy benchmarks: `clients` concurrent loops for `seconds`, each sending
// one request (a POST of `body`, or a GET) at a time and timing it to the end of the response body.
import { Pool } from 'undici';

export async function load(
  url: string,
  body: string,
  clients: number,
  seconds: number,
  o: { onTick?: () => void; headers?: Record<string, string>; method?: 'GET' | 'POST' } = {},
): Promise<{ lat: number[]; rps: number; errors: number }> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: clients, pipelining: 1 });
  const lat: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const tick = o.onTick ? setInterval(o.onTick, 100) : null;
  const method = o.method ?? 'POST';
  const headers =
    method === 'GET'
      ? { accept: 'application/json', ...o.headers }
      : { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...o.headers };
  const loop = async () => {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      try {
        const r = await pool.request({ path: u.pathname, method, ...(method === 'POST' ? { body } : {}), headers });
        await r.body.text();
        if (r.statusCode >= 300) errors++;
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

/**
 * One client alternating `bodies` (a, b, a, b, ...) for `seconds`: each body's latencies, sorted.
 * Two kinds of request measured in the same moments, so their difference survives a machine whose
 * load changes from one second to the next.
 */
export async function alternate(url: string, bodies: string[], seconds: number): Promise<number[][]> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: 1, pipelining: 1 });
  const lat = bodies.map((): number[] => []);
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const end = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < end; i = (i + 1) % bodies.length) {
    const t = process.hrtime.bigint();
    const r = await pool.request({ path: u.pathname, method: 'POST', body: bodies[i]!, headers });
    await r.body.text();
    lat[i]!.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  await pool.close();
  for (const l of lat) l.sort((a, b) => a - b);
  return lat;
}

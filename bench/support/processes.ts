// What every benchmark needs to run its peers: free loopback ports, child processes that say
// when they are ready, and percentiles. Bundled into each bench by scripts/build.mjs.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

/** Starts a process and resolves on its first line of stdout (its "ready"). */
export function spawnReady(cmd: string, args: string[], env: Record<string, string> = {}): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (c) => reject(new Error(`${args.join(' ')} exited ${c}`)));
  });
}

/** The p-th percentile of ascending values (nearest rank). */
export function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The q-quantile (0..1) of unsorted numbers, interpolated between neighbours; NaN for none. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo]! + (s[Math.ceil(i)]! - s[lo]!) * (i - lo);
}

export const median = (xs: number[]): number => quantile(xs, 0.5);

/** `xs` in a different order each round (rotated by `by`), so none always runs first (or last). */
export const rotate = <T>(xs: T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length]!);

/** Prints `name median unit (min, max, n)`. */
export function summary(name: string, values: number[], unit: string): void {
  const s = [...values].sort((a, b) => a - b);
  console.log(`${name} ${pct(s, 50).toFixed(1)} ${unit} (min ${s[0]!.toFixed(1)}, max ${s[s.length - 1]!.toFixed(1)}, n ${s.length})`);
}

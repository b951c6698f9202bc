// Starting the proxies the benchmarks compare, timed from spawn: the Node floor relay
// (bench/support/floor-relay.ts) and the sidecar (the built CLI). Both run on the same node
// binary with the same V8 flags, under the same pinning prefix.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';

/** The container image's V8 setting (Dockerfile.sidecar), given to the floor too so both compare. */
export const PROXY_NODE_OPTIONS = '--max-semi-space-size=4';
/**
 * As in the image (which bakes one): a module compile cache the proxies share, this run's own, filled
 * by the first start (one of the starts a median is taken over). NODE_COMPILE_CACHE overrides it.
 */
const COMPILE_CACHE = process.env['NODE_COMPILE_CACHE'] || mkdtempSync(join(tmpdir(), 'tg-bench-compile-cache-'));

export interface Started {
  child: ChildProcess;
  pid: number;
  /** Where clients send their POSTs. */
  url: string;
  /** ms from spawn to ready: the floor's "ready" line, the sidecar's /ready answering 200. */
  readyMs: number;
  t0: bigint;
  /** The sidecar's admin port (/ready, /metrics); 0 for the floor. */
  adminPort: number;
  /** Access-log bytes and lines read from its stdout when it is a pipe. */
  log: { bytes: number; lines: number };
  stop: () => Promise<void>;
}

interface Common {
  node: string;
  /** Command prefix that pins the process, e.g. ['taskset', '-c', '0'], or []. */
  pin: string[];
}

const children = new Set<ChildProcess>();
/** Kills `child` when this process exits, however it exits (an error, Ctrl-C), so no proxy or
 *  upstream outlives its benchmark. */
export function reapOnExit(child: ChildProcess): ChildProcess {
  if (children.size === 0) {
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const proxies = new Set<number>();
/** The proxies started and not yet exited. */
export const proxyPids = (): number[] => [...proxies];

function launch(o: Common, args: string[], stdout: 'pipe' | 'ignore'): { child: ChildProcess; t0: bigint } {
  const [cmd, ...rest] = [...o.pin, o.node, ...args];
  const t0 = process.hrtime.bigint();
  const child = reapOnExit(
    spawn(cmd!, rest, { stdio: ['ignore', stdout, 'inherit'], env: { ...process.env, NODE_OPTIONS: PROXY_NODE_OPTIONS, NODE_COMPILE_CACHE: COMPILE_CACHE } }),
  );
  proxies.add(child.pid!);
  child.once('exit', () => proxies.delete(child.pid!));
  return { child, t0 };
}

function finish(child: ChildProcess, t0: bigint, url: string, log: Started['log'], adminPort = 0): Started {
  const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return { child, pid: child.pid!, url, readyMs, t0, adminPort, log, stop };
}

export async function startFloor(o: Common & { script: string; port: number; upstreamOrigin: string; upstreamPath: string }): Promise<Started> {
  const { child, t0 } = launch(o, [o.script, String(o.port), o.upstreamOrigin], 'pipe');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`floor relay exited ${c}`)));
  });
  child.stdout!.resume();
  return finish(child, t0, `http://127.0.0.1:${o.port}${o.upstreamPath}`, { bytes: 0, lines: 0 });
}

export async function startSidecar(
  o: Common & { cli: string; config: string; port: number; adminPort: number; source: string; logLevel: string; stdout: 'pipe' | 'ignore' },
): Promise<Started> {
  const args = [o.cli, 'sidecar', '--config', o.config, '--port', String(o.port), '--admin-port', String(o.adminPort), '--log-level', o.logLevel];
  const { child, t0 } = launch(o, args, o.stdout);
  const log = { bytes: 0, lines: 0 };
  // The access log goes to a pipe this process drains, as a container runtime drains stdout.
  child.stdout?.on('data', (c: Buffer) => {
    log.bytes += c.length;
    for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) log.lines++;
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`sidecar exited ${child.exitCode} before ready`);
    const ok = await request(`http://127.0.0.1:${o.adminPort}/ready`).then(
      async (r) => {
        await r.body.dump();
        return r.statusCode === 200;
      },
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  return finish(child, t0, `http://127.0.0.1:${o.port}/mcp/${o.source}`, log, o.adminPort);
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** One POST; resolves with its status once the whole answer is read. */
export async function post(url: string, body: string): Promise<number> {
  const r = await request(url, { method: 'POST', body, headers: MCP_HEADERS });
  await r.body.dump();
  return r.statusCode;
}

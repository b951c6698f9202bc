// Real processes for tests: the built thoughtgate binary, server-everything, the Inspector CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../e2e/cluster/cluster.js';

export const ROOT = repoRoot();
export const CLI = join(ROOT, 'dist/cli.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function waitForPort(port: number, limitMs = 15_000): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listening on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function run(cmd: string, args: string[], env: Record<string, string | undefined> = {}): Proc {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** server-everything in Streamable HTTP mode (it binds all interfaces; tests only talk to loopback). */
export async function startEverything(): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = run(process.execPath, [join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'streamableHttp'], {
    PORT: String(port),
  });
  await waitForPort(port);
  return { url: `http://127.0.0.1:${port}/mcp`, proc };
}

/** The built CLI's sidecar; resolves once its admin port reports ready. */
export async function startCliSidecar(
  configPath: string,
  env: Record<string, string | undefined> = {},
  extraArgs: string[] = [],
): Promise<{ proc: Proc; base: string; admin: string }> {
  const port = await freePort();
  const adminPort = await freePort();
  const proc = run(process.execPath, [CLI, 'sidecar', '--config', configPath, '--port', String(port), '--admin-port', String(adminPort), ...extraArgs], env);
  const until = Date.now() + 15_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`sidecar exited ${proc.child.exitCode}: ${proc.err()}`);
    const r = await fetch(`http://127.0.0.1:${adminPort}/ready`).catch(() => null);
    if (r?.status === 200) break;
    if (Date.now() > until) throw new Error(`sidecar not ready: ${proc.out()} ${proc.err()}`);
    await new Promise((res) => setTimeout(res, 25));
  }
  return { proc, base: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}` };
}

/** The MCP Inspector CLI (v2), with its state in a throwaway HOME. */
export function inspector(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const home = mkdtempSync(join(tmpdir(), 'tg-inspector-'));
  const p = run(process.execPath, [join(ROOT, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js'), '--cli', ...args], {
    HOME: home,
  });
  return p.exited.then((code) => ({ code, out: p.out(), err: p.err() }));
}

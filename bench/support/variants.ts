// A benchmark's `--variant 'label|dist/cli.js|NODE_OPTIONS|K=V,K=V|node flags'`: a build and how
// its node runs, compared with others in one run. Empty fields take the defaults given.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpuPreciseMicros } from './proc.js';
import { freePort } from './processes.js';

export interface Variant {
  label: string;
  cli: string;
  nodeOptions: string;
  env: Record<string, string>;
  /** Flags before the script: V8's wasm flags are not allowed in NODE_OPTIONS. */
  nodeArgs: string[];
}

export function parseVariant(spec: string, defaults: { cli: string; nodeOptions: string }): Variant {
  const [label, cli, nodeOptions, env, nodeArgs] = spec.split('|');
  return {
    label: label!,
    cli: cli || defaults.cli,
    nodeOptions: nodeOptions ?? defaults.nodeOptions,
    env: Object.fromEntries(
      (env ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => kv.split('=') as [string, string]),
    ),
    nodeArgs: (nodeArgs ?? '').split(' ').filter(Boolean),
  };
}

export interface Running {
  child: ChildProcess;
  port: number;
  adminPort: number;
  /** Spawn to the admin /ready answering 200 (polled every 2 ms), and the CPU used by then. */
  readyMs: number;
  readyCpuMs: number;
  stop: () => Promise<void>;
}

/** Starts the variant's sidecar on free ports (`args` after them, `env` under the variant's). */
export async function startVariantSidecar(node: string, v: Variant, args: string[], env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const adminPort = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(node, [...v.nodeArgs, v.cli, 'sidecar', ...args, '--port', String(port), '--admin-port', String(adminPort), '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: v.nodeOptions, ...env, ...v.env },
  });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    child.kill();
    await exited;
  };
  for (let i = 0; ; i++) {
    if (i > 5000 || child.exitCode !== null) {
      await stop();
      throw new Error(`${v.label}: not ready after 10 s`);
    }
    const ok = await fetch(`http://127.0.0.1:${adminPort}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { child, port, adminPort, readyMs, readyCpuMs: cpuPreciseMicros(child.pid!) / 1000, stop };
}

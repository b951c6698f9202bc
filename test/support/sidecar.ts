// Starts a real sidecar in-process (real sockets, real config file and watcher) for tests.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createLogger } from '../../lib/log.js';
import { fileProvider, loadInitial } from '../../sidecar/providers/file.js';
import { startSidecar, type Sidecar, type SidecarOptions } from '../../sidecar/sidecar.js';

export interface TestSidecar {
  sidecar: Sidecar;
  base: string;
  admin: string;
  configPath: string;
  mcpUrl(source: string): string;
  /** Parsed log lines so far. */
  logs(): Record<string, unknown>[];
  /** Replaces the config file atomically (like an editor or a ConfigMap update). */
  writeConfig(yaml: string): void;
  /** Waits until the given predicate over the current snapshot holds (config reloads are async). */
  waitFor(pred: () => boolean, what: string, limitMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTestSidecar(
  yaml: string,
  env: Record<string, string | undefined> = {},
  options: Partial<SidecarOptions> = {},
): Promise<TestSidecar> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-sidecar-'));
  const configPath = join(dir, 'thoughtgate.yaml');
  writeFileSync(configPath, yaml);
  const lines: string[] = [];
  const log = createLogger('debug', (l) => lines.push(l));
  const fullEnv = { ...env };
  const initial = await loadInitial(configPath, fullEnv);
  if (!initial.ok) throw new Error(`test config invalid:\n${initial.errors.join('\n')}`);
  const provider = fileProvider(configPath, fullEnv, initial, log, 100);
  const sidecar = await startSidecar({ port: 0, adminPort: 0, bind: '127.0.0.1', log, provider, drainTimeoutMs: 2000, probeIntervalMs: 200, ...options });
  const base = `http://127.0.0.1:${sidecar.port}`;
  let n = 0;
  return {
    sidecar,
    base,
    admin: `http://127.0.0.1:${sidecar.adminPort}`,
    configPath,
    mcpUrl: (s) => `${base}/mcp/${s}`,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    writeConfig: (text) => {
      const tmp = join(dir, `.next-${++n}.yaml`);
      writeFileSync(tmp, text);
      renameSync(tmp, configPath);
    },
    waitFor: async (pred, what, limitMs = 10_000) => {
      const until = Date.now() + limitMs;
      while (!pred()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {
      await sidecar.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function connectClient(url: string, headers: Record<string, string> = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'thoughtgate-test-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

/** A raw JSON-RPC POST, for what the SDK client will not send (batches, odd ids, broken bodies). */
export async function rawPost(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

/** The JSON-RPC messages inside a response body, whether it is JSON or SSE. */
export function messagesOf(r: { headers: Headers; text: string }): any[] {
  if ((r.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    return r.text
      .split(/\r?\n\r?\n/)
      .map((ev) =>
        ev
          .split(/\r?\n/)
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n'),
      )
      .filter((d) => d !== '')
      .flatMap((d) => {
        const v = JSON.parse(d);
        return Array.isArray(v) ? v : [v];
      });
  }
  if (r.text.trim() === '') return [];
  const v = JSON.parse(r.text);
  return Array.isArray(v) ? v : [v];
}

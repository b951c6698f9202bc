// The command the conformance suite runs per client scenario: `node <bundle> <server-url>`, with
// MCP_CONFORMANCE_SCENARIO (and MCP_CONFORMANCE_CONTEXT) set by the suite and TG_CONFORMANCE_MODE
// by conformance-auth.test.ts:
// - direct: the client speaks to the server (the baseline: the suite and the client work);
// - passthrough: a sidecar (the built CLI) with the server as a source in auth mode passthrough; the
//   client uses it as its HTTP proxy and does OAuth itself, to the server's real URL;
// - capture: the same sidecar config, the client's connections all delivered to the sidecar's
//   transparent listener (what a captured pod's REDIRECT does), the client unaware of any proxy;
// - custody: a sidecar holding the scenario's client credentials (auth mode clientCredentials, the
//   secret in the sidecar's environment only); the client speaks to /mcp/<source> with no credentials.
// The sidecar's config is what an operator would write for that server: the wrapper knows the
// scenario as the operator knows their server (relayPaths for a server that is its own authorization server).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { SIDECAR_UID } from '../../api/capture.js';
import type { CaptureState } from '../../api/capture-state.js';
import { runClient, scenarioContext } from './conformance-client.js';

/** Passthrough: paths of the server's own origin besides discovery that a scenario's server uses. */
export const RELAY_PATHS: Record<string, string[]> = {
  // Its protected-resource metadata at a custom place, named in WWW-Authenticate.
  'auth/metadata-var3': ['/custom/metadata/location.json'],
  // 2025-03-26: the MCP server is its own authorization server.
  'auth/2025-03-26-oauth-metadata-backcompat': ['/oauth/authorize', '/oauth/token', '/oauth/register'],
  'auth/2025-03-26-oauth-endpoint-fallback': ['/authorize', '/token', '/register'],
};

function captureState(transparentPort: number): CaptureState {
  const spec = { uid: SIDECAR_UID, redirectPorts: [80], transparentPort, tlsPort: null, dns: 'resolv' as const, exceptions: [] };
  return { version: 1, backend: 'nft', families: ['ipv4'], spec, rulesHash: 'test', installedAt: new Date().toISOString(), durationMs: 0 };
}

/**
 * The built CLI's sidecar on ports the kernel picks (--port 0: no race with the suite's own servers),
 * read from its "sidecar listening" log line; ready once /ready answers.
 */
async function startSidecar(
  config: string,
  env: Record<string, string>,
  capture = false,
): Promise<{ port: number; transparentPort?: number; child: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-conf-'));
  writeFileSync(join(dir, 'thoughtgate.yaml'), config);
  const cli = process.env['TG_CLI'];
  if (!cli) throw new Error('TG_CLI is not set');
  const stateFile = join(dir, 'capture-state.json');
  const captureArgs = capture ? ['--transparent-port', '0', '--capture-state', stateFile] : [];
  const child = spawn(process.execPath, [cli, 'sidecar', '--config', join(dir, 'thoughtgate.yaml'), '--port', '0', '--admin-port', '0', ...captureArgs], {
    env: { ...process.env, ...env, THOUGHTGATE_LOG_LEVEL: process.env['TG_SIDECAR_LOG'] ?? 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let transparentPort: number | undefined;
  const listening = await new Promise<{ proxy: string; admin: string }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => {
      if (process.env['TG_SIDECAR_LOG']) process.stderr.write(`${l}\n`);
      const m = JSON.parse(l) as { msg?: string; proxy?: string; admin?: string; transparent?: number };
      if (m.msg === 'capture listeners') transparentPort = m.transparent;
      if (m.msg === 'sidecar listening' && m.proxy && m.admin) resolve({ proxy: m.proxy, admin: m.admin });
    });
    child.once('exit', (code) => reject(new Error(`sidecar exited ${code}`)));
  });
  // What capture-init leaves for /ready (the rules themselves are not needed: the client's dispatcher does the redirect).
  if (capture) writeFileSync(stateFile, JSON.stringify(captureState(transparentPort!)));
  const until = Date.now() + 60_000; // a loaded machine starts many sidecars at once
  while (!(await fetch(`${listening.admin}/ready`).catch(() => null))?.ok) {
    if (Date.now() > until) throw new Error('sidecar not ready');
    await new Promise((res) => setTimeout(res, 50));
  }
  return { port: Number(new URL(listening.proxy).port), ...(transparentPort !== undefined ? { transparentPort } : {}), child, dir };
}

/** The authorization server a scenario's MCP server names in its protected-resource metadata (RFC 9728). */
async function authorizationServerOf(url: URL): Promise<string> {
  const r = await fetch(new URL(`/.well-known/oauth-protected-resource${url.pathname}`, url));
  const servers = r.ok ? ((await r.json()) as { authorization_servers?: string[] }).authorization_servers : undefined;
  if (!servers?.[0]) throw new Error(`no authorization server named at ${r.url} (${r.status})`);
  return servers[0];
}

async function main(): Promise<void> {
  const url = new URL(process.argv[process.argv.length - 1]!);
  const scenario = process.env['MCP_CONFORMANCE_SCENARIO'] ?? '';
  const mode = process.env['TG_CONFORMANCE_MODE'] ?? 'direct';
  if (mode === 'direct') return runClient(url, scenario);
  let config: string;
  const env: Record<string, string> = {};
  if (mode === 'passthrough' || mode === 'capture') {
    const relay = RELAY_PATHS[scenario];
    config = [
      'sources:',
      `  - { name: conf, url: "${url.href}", auth: { mode: passthrough${relay ? `, relayPaths: ${JSON.stringify(relay)}` : ''} } }`,
      'defaultAction: forward',
      // The suite's authorization servers listen on loopback ports of their own: ordinary egress.
      'egress: { allow: ["localhost:*", "127.0.0.1:*"] }',
    ].join('\n');
  } else if (mode === 'custody') {
    const ctx = scenarioContext();
    env['TG_CONF_CLIENT_SECRET'] = ctx['client_secret'] ?? '';
    // The suite's authorization server is plain http on a loopback port of its own: discovery follows
    // only https or the source's origin, so the operator names it (auth.issuer), as they know it.
    const issuer = await authorizationServerOf(url);
    config = [
      'sources:',
      `  - name: conf`,
      `    url: "${url.href}"`,
      `    auth: { mode: clientCredentials, clientId: "${ctx['client_id']}", clientSecret: { valueFrom: { env: TG_CONF_CLIENT_SECRET } }, issuer: "${issuer}" }`,
      'defaultAction: forward',
    ].join('\n');
  } else throw new Error(`unknown TG_CONFORMANCE_MODE ${mode}`);
  const sidecar = await startSidecar(config, env, mode === 'capture');
  try {
    if (mode === 'passthrough') await runClient(url, scenario, { proxy: `http://127.0.0.1:${sidecar.port}` });
    else if (mode === 'capture') await runClient(url, scenario, { capturedTo: sidecar.transparentPort! });
    else await runClient(new URL(`http://127.0.0.1:${sidecar.port}/mcp/conf`), scenario, { noAuth: true });
  } finally {
    sidecar.child.kill('SIGTERM');
    rmSync(sidecar.dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`conformance client: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

#!/usr/bin/env node
// The "agent" of the kind tier (scripts/kind-e2e.sh): runs as the app container of an injected pod,
// in the e2e tools image (the Dockerfile build stage, /src), and talks MCP to its sidecar with the
// real MCP SDK client, the way an agent would.
//
//   node scripts/kind-agent.mjs app
//       the container's command: first thing, asks the sidecar's admin port for /health once (no
//       retry) and logs whether it answered, proving the native sidecar was up before the app
//       started; then idles until SIGTERM.
//   node scripts/kind-agent.mjs call <source> <tool> [json-arguments]
//       one tools/call through $THOUGHTGATE_URL/mcp/<source>; prints one JSON line
//       {"ok":true,"content":[…]} (exit 0) or {"ok":false,"code":-32003,"message":…,"data":…}
//       (exit 3: the call was refused with a JSON-RPC error); anything else exits 1.
//
// Plain JavaScript: the tools image runs it from the source tree, without a build step.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const PROXY = process.env.THOUGHTGATE_URL ?? 'http://127.0.0.1:7467';
const ADMIN = process.env.THOUGHTGATE_ADMIN_URL ?? 'http://127.0.0.1:7469';

async function app() {
  let line;
  try {
    const res = await fetch(`${ADMIN}/health`, { signal: AbortSignal.timeout(2000) });
    line = res.ok ? 'kind-agent: sidecar answered /health before the app started' : `kind-agent: sidecar /health answered ${res.status} at app start`;
  } catch (err) {
    line = `kind-agent: sidecar NOT reachable at app start: ${err.message}${err.cause ? ` (${err.cause.code ?? err.cause.message})` : ''}`;
  }
  console.log(line);
  const timer = setInterval(() => {}, 1 << 30);
  process.once('SIGTERM', () => clearInterval(timer));
}

async function call(source, tool, args) {
  const client = new Client({ name: 'thoughtgate-kind-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${PROXY}/mcp/${source}`)));
  try {
    const r = await client.callTool({ name: tool, arguments: args });
    console.log(JSON.stringify({ ok: !r.isError, content: r.content }));
    return r.isError ? 1 : 0;
  } catch (err) {
    if (typeof err?.code !== 'number') throw err;
    console.log(JSON.stringify({ ok: false, code: err.code, message: err.message, data: err.data }));
    return 3;
  } finally {
    await client.close();
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'app') {
  await app();
} else if (mode === 'call' && rest.length >= 2) {
  process.exitCode = await call(rest[0], rest[1], rest[2] ? JSON.parse(rest[2]) : {});
} else {
  console.error('usage: kind-agent.mjs app | call <source> <tool> [json-arguments]');
  process.exitCode = 2;
}

// The README's setup, as processes: the built thoughtgate binary with examples/thoughtgate.yaml in
// front of @modelcontextprotocol/server-everything, driven by the MCP Inspector CLI and the SDK.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, type McpError } from '@modelcontextprotocol/sdk/types.js';
import { connectClient } from './support/sidecar.js';
import { CLI, freePort, inspector, ROOT, run, startCliSidecar, startEverything, waitForPort, type Proc } from './support/processes.js';

describe('examples/thoughtgate.yaml in front of server-everything', () => {
  let everything: { url: string; proc: Proc };
  let tg: Awaited<ReturnType<typeof startCliSidecar>>;
  let url: string;

  beforeAll(async () => {
    everything = await startEverything();
    tg = await startCliSidecar(join(ROOT, 'examples/thoughtgate.yaml'), { EVERYTHING_URL: everything.url });
    url = `${tg.base}/mcp/everything`;
  }, 60_000);
  afterAll(async () => {
    await tg?.proc.stop();
    await everything?.proc.stop();
  });

  test('Inspector CLI: tools/list shows exactly the allowlisted tools', async () => {
    const r = await inspector([url, '--transport', 'http', '--method', 'tools/list', '--format', 'json']);
    expect(r.code).toBe(0);
    const names = JSON.parse(r.out)
      .result.tools.map((t: { name: string }) => t.name)
      .sort();
    expect(names).toEqual(['echo', 'get-structured-content', 'get-sum', 'get-tiny-image', 'trigger-long-running-operation']);
  }, 60_000);

  test('Inspector CLI: Cedar permits a small sum and denies a large one', async () => {
    const ok = await inspector([
      url,
      '--transport',
      'http',
      '--method',
      'tools/call',
      '--tool-name',
      'get-sum',
      '--tool-arg',
      'a=5',
      '--tool-arg',
      'b=3',
      '--format',
      'json',
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).result.content[0].text).toBe('The sum of 5 and 3 is 8.');
    const denied = await inspector([
      url,
      '--transport',
      'http',
      '--method',
      'tools/call',
      '--tool-name',
      'get-sum',
      '--tool-arg',
      'a=5000',
      '--tool-arg',
      'b=3',
      '--format',
      'json',
    ]);
    expect(denied.code).not.toBe(0);
    expect(denied.out + denied.err).toContain('Denied by ThoughtGate policy');
  }, 60_000);

  test('SDK client: the hidden get-env answers exactly like a tool that does not exist', async () => {
    const { client } = await connectClient(url);
    const hidden = await client.callTool({ name: 'get-env', arguments: {} }).then(
      (r) => r,
      (e: McpError) => ({ code: e.code, message: e.message }),
    );
    const unknown = await client.callTool({ name: 'no-such-tool', arguments: {} }).then(
      (r) => r,
      (e: McpError) => ({ code: e.code, message: e.message }),
    );
    expect(JSON.stringify(hidden).replaceAll('get-env', 'T')).toBe(JSON.stringify(unknown).replaceAll('no-such-tool', 'T'));
    expect(JSON.stringify(hidden)).not.toContain('PATH');
    const denied = await client.callTool({ name: 'get-tiny-image', arguments: {} }).catch((e: McpError) => e);
    expect((denied as McpError).data).toMatchObject({ gate: 'rules', rule: 'no-images', reason: 'images are not needed by this agent' });
    await client.close();
  });

  test('SDK client: progress notifications of a long operation stream through', async () => {
    const { client } = await connectClient(url);
    const progress: number[] = [];
    const r = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3]);
    expect(JSON.stringify(r.content)).toContain('Long running operation completed');
    await client.close();
  });

  test('/metrics counts decisions by gate', async () => {
    const text = await (await fetch(`${tg.admin}/metrics`)).text();
    expect(text).toMatch(
      /thoughtgate_sidecar_requests_total\{source="everything",method="tools\/call",decision="deny",gate="cedar",rule="[^"]+",protocol="mcp"\} [1-9]/,
    );
    expect(text).toMatch(
      /thoughtgate_sidecar_requests_total\{source="everything",method="tools\/call",decision="hidden",gate="visibility",rule="expose",protocol="mcp"\} [1-9]/,
    );
    expect(text).toContain('thoughtgate_sidecar_added_latency_seconds_bucket');
    expect(text).toContain('thoughtgate_sidecar_upstream_latency_seconds_bucket');
    expect(text).toMatch(/thoughtgate_sidecar_upstream_up\{source="everything"\} 1/);
  });
});

describe('server-to-client requests through the sidecar', () => {
  test('sampling/createMessage from server-everything reaches the client, and its answer reaches the server', async () => {
    const everything = await startEverything();
    const dir = mkdtempSync(join(tmpdir(), 'tg-sampling-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `sources:\n  - name: e\n    url: ${everything.url}\ndefaultAction: forward\n`);
    const tg = await startCliSidecar(file);
    try {
      const client = new Client({ name: 'sampler', version: '1' }, { capabilities: { sampling: {} } });
      const asked: string[] = [];
      client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        asked.push(JSON.stringify(req.params.messages));
        return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled through ThoughtGate' } };
      });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${tg.base}/mcp/e`)));
      const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello', maxTokens: 5 } });
      expect(asked).toHaveLength(1);
      expect(asked[0]).toContain('hello');
      expect(JSON.stringify(r.content)).toContain('sampled through ThoughtGate');
      await client.close();
    } finally {
      await tg.proc.stop();
      await everything.proc.stop();
    }
  });
});

describe('the thoughtgate command', () => {
  test('--help documents every option and its environment variable', async () => {
    const p = run(process.execPath, [CLI, 'sidecar', '--help']);
    expect(await p.exited).toBe(0);
    for (const s of [
      '--config',
      '--port',
      '--admin-port',
      '--bind',
      '--admin-bind',
      '--log-level',
      '--drain-timeout',
      'THOUGHTGATE_CONFIG',
      'THOUGHTGATE_PORT',
      'THOUGHTGATE_ADMIN_PORT',
      'THOUGHTGATE_BIND',
      'THOUGHTGATE_ADMIN_BIND',
      'THOUGHTGATE_LOG_LEVEL',
      'THOUGHTGATE_DRAIN_TIMEOUT',
    ]) {
      expect(p.out()).toContain(s);
    }
  });

  test.each([
    [['sidecar', '--bogus'], /Unknown option '--bogus'/],
    [['sidecar', '--config', 'x.yaml', '--port', 'abc'], /--port must be a port number/],
    [['sidecar', '--config', 'x.yaml', '--log-level', 'loud'], /log level must be debug, info, warn or error/],
    [['sidecar'], /no config: pass --config <file> or set THOUGHTGATE_CONFIG/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('bad usage %j exits 2 with one clear message', async (args, message) => {
    const p = run(process.execPath, [CLI, ...args], { THOUGHTGATE_CONFIG: undefined });
    expect(await p.exited).toBe(2);
    expect(p.err()).toMatch(message);
  });

  test('a bad config at start exits 1 naming the file, the path in it and the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'sources:\n  - name: gh\n    url: https://x/mcp\nrules:\n  - match: { tool: "x" }\n    action: maybe\n');
    const p = run(process.execPath, [CLI, 'sidecar', '--config', file, '--port', '0', '--admin-port', '0']);
    expect(await p.exited).toBe(1);
    expect(p.err()).toContain(`${file}:6:13: rules[0].action: expected one of forward, deny, approve, policy`);
    const missing = run(process.execPath, [CLI, 'sidecar', '--config', join(dir, 'nope.yaml')]);
    expect(await missing.exited).toBe(1);
    expect(missing.err()).toMatch(/nope\.yaml: .*(no such file|not found|does not exist)/i);
  });

  test('the environment configures what the flags do', async () => {
    const everything = await startEverything();
    const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `sources:\n  - name: e\n    url: ${everything.url}\ndefaultAction: forward\n`);
    const port = await freePort();
    const adminPort = await freePort();
    const p = run(process.execPath, [CLI, 'sidecar'], {
      THOUGHTGATE_CONFIG: file,
      THOUGHTGATE_PORT: String(port),
      THOUGHTGATE_ADMIN_PORT: String(adminPort),
      THOUGHTGATE_BIND: '127.0.0.1',
      THOUGHTGATE_LOG_LEVEL: 'warn',
    });
    try {
      await waitForPort(adminPort);
      while ((await fetch(`http://127.0.0.1:${adminPort}/ready`)).status !== 200) await new Promise((r) => setTimeout(r, 25));
      const r = await fetch(`http://127.0.0.1:${port}/mcp/e`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      });
      expect(r.status).toBeLessThan(500);
      // At level warn, neither the "listening" line nor request lines are printed.
      expect(p.out()).toBe('');
    } finally {
      await p.stop();
      await everything.proc.stop();
    }
  });

  test('SIGTERM lets an in-flight call finish, then exits 0', async () => {
    const everything = await startEverything();
    const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `sources:\n  - name: e\n    url: ${everything.url}\ndefaultAction: forward\n`);
    const tg = await startCliSidecar(file, {}, ['--drain-timeout', '10s']);
    try {
      const { client } = await connectClient(`${tg.base}/mcp/e`);
      const progress: number[] = [];
      const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      while (progress.length === 0) await new Promise((r) => setTimeout(r, 20));
      tg.proc.child.kill('SIGTERM');
      const r = await call;
      expect(JSON.stringify(r.content)).toContain('Long running operation completed');
      expect(await tg.proc.exited).toBe(0);
      const lines = tg.proc
        .out()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['signal received', 'draining', 'stopped']));
      await client.close().catch(() => undefined);
    } finally {
      await tg.proc.stop();
      await everything.proc.stop();
    }
  });
});

// Real peers for the approval tests: a real SDK upstream (low-level Server, so a tool can answer
// with a JSON-RPC error), the fake Slack Web API (driven by the real @slack/web-api through the
// standalone backend), and an in-process sidecar started with that backend.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, isInitializeRequest, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { standaloneBackend, type StandaloneBackend, type StandaloneOptions } from '../sidecar/approvals/standalone.js';
import { createLogger } from '../lib/log.js';
import { fileProvider, loadInitial } from '../sidecar/providers/file.js';
import { startSidecar, type Sidecar, type SidecarOptions } from '../sidecar/sidecar.js';
import { startFakeSlack, type FakeSlack, type FakeSlackOptions } from './fakes/slack-server.js';

export const CHANNEL = 'C0APPROVE';
export const ALICE = 'U0ALICE';
export const BOB = 'U0BOB';
export const MALLORY = 'U0MALLORY';
export const TOKEN = 'xoxb-approvals-test';
/** The fake Slack's default app-level token (Socket Mode). */
export const APP_TOKEN = 'xapp-test';

/** The test config's channel with Approve/Reject buttons (an app-level token) and `required` approvals. */
export function withButtons(config: string, required = 1): string {
  return config
    .replace('tokenEnv: TG_TEST_SLACK_TOKEN }', 'tokenEnv: TG_TEST_SLACK_TOKEN, appTokenEnv: TG_TEST_SLACK_APP_TOKEN }')
    .replace(`approvers: { users: [${ALICE}, ${BOB}] }`, `approvers: { users: [${ALICE}, ${BOB}], required: ${required} }`);
}

// ---------- upstream ----------

export interface ToolCallSeen {
  tool: string;
  args: Record<string, unknown>;
  session: string | undefined;
  authorization: string | undefined;
  meta: unknown;
  task: unknown;
  /** The W3C traceparent the call arrived with (the sidecar's span when tracing is on). */
  traceparent: string | undefined;
}

export interface ApprovalUpstream {
  url: string;
  calls: ToolCallSeen[];
  /** Every JSON-RPC body received, parsed. */
  bodies: unknown[];
  /** The bodies of the requests the sidecar aborted: their connection closed before the answer was written. */
  cut: unknown[];
  release(): void;
  close(): Promise<void>;
}

/**
 * Tools: deploy {service, version} (approval in the test configs), status (forwarded),
 * fail_soft (isError result), fail_hard (JSON-RPC error -32050 with data), slow_deploy (sends
 * progress 0 and 1 of 2, waits for release()), scale {replicas} (Cedar decides in the test configs).
 */
export async function startApprovalUpstream(opts: { json?: boolean } = {}): Promise<ApprovalUpstream> {
  const calls: ToolCallSeen[] = [];
  const bodies: unknown[] = [];
  const cut: unknown[] = [];
  let releaseFn: () => void = () => undefined;
  let released = new Promise<void>((r) => {
    releaseFn = r;
  });
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const build = (): Server => {
    const server = new Server({ name: 'approval-upstream', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [
        {
          name: 'deploy',
          description: 'Deploys a service',
          inputSchema: { type: 'object', properties: { service: { type: 'string' }, version: { type: 'string' } } },
        },
        { name: 'status', description: 'Reads status', inputSchema: { type: 'object' }, execution: { taskSupport: 'forbidden' } },
        { name: 'fail_soft', description: 'Fails with isError', inputSchema: { type: 'object' } },
        { name: 'fail_hard', description: 'Fails with a JSON-RPC error', inputSchema: { type: 'object' } },
        { name: 'slow_deploy', description: 'Deploys slowly', inputSchema: { type: 'object' } },
        { name: 'scale', description: 'Scales a service', inputSchema: { type: 'object', properties: { replicas: { type: 'number' } } } },
      ],
    }));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      const info = extra.requestInfo?.headers ?? {};
      const h = (k: string) => {
        const v = info[k];
        return Array.isArray(v) ? v[0] : v;
      };
      calls.push({
        tool: req.params.name,
        args: (req.params.arguments ?? {}) as Record<string, unknown>,
        session: h('mcp-session-id'),
        authorization: h('authorization'),
        meta: req.params._meta,
        task: (req.params as { task?: unknown }).task,
        traceparent: h('traceparent'),
      });
      switch (req.params.name) {
        case 'deploy':
          return { content: [{ type: 'text', text: `deployed ${String(req.params.arguments?.['service'])}@${String(req.params.arguments?.['version'])}` }] };
        case 'status':
          return { content: [{ type: 'text', text: 'all green' }] };
        case 'scale':
          return { content: [{ type: 'text', text: `scaled to ${String(req.params.arguments?.['replicas'])}` }] };
        case 'fail_soft':
          return { content: [{ type: 'text', text: 'disk full' }], isError: true };
        case 'fail_hard':
          throw new McpError(-32050, 'deploy pipeline exploded', { stage: 'build' });
        case 'slow_deploy': {
          const token = req.params._meta?.progressToken;
          if (token !== undefined) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 0, total: 2, message: 'starting' } });
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2, message: 'halfway' } });
          }
          await released;
          return { content: [{ type: 'text', text: 'slow deploy done' }] };
        }
        default:
          throw new McpError(-32602, `Unknown tool: ${req.params.name}`);
      }
    });
    return server;
  };
  const httpServer = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined) bodies.push(parsed);
    res.once('close', () => {
      if (!res.writableFinished) cut.push(parsed);
    });
    try {
      const sid = req.headers['mcp-session-id'];
      let transport = typeof sid === 'string' ? sessions.get(sid) : undefined;
      if (!transport) {
        if (req.method === 'POST' && !sid && isInitializeRequest(parsed)) {
          transport = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            enableJsonResponse: !!opts.json,
            onsessioninitialized: (id) => {
              sessions.set(id, transport!);
            },
            onsessionclosed: (id) => {
              sessions.delete(id);
            },
          });
          await build().connect(transport);
        } else {
          res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
          return;
        }
      }
      await transport.handleRequest(req, res, parsed);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    }
  });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    bodies,
    cut,
    release: () => {
      releaseFn();
      released = new Promise<void>((r) => {
        releaseFn = r;
      });
    },
    close: async () => {
      for (const t of sessions.values()) await t.close().catch(() => undefined);
      httpServer.closeAllConnections();
      await new Promise<void>((r) => httpServer.close(() => r()));
    },
  };
}

// ---------- config ----------

export function approvalConfig(
  upstreamUrl: string,
  slackUrl: string,
  extra: { approvals?: string; rules?: string; channelTimeout?: string; more?: string } = {},
): string {
  return `
sources:
  - name: up
    url: ${upstreamUrl}
rules:
  - name: deploys-need-approval
    match: { tool: ["deploy", "slow_deploy", "fail_*"] }
    action: approve
    approval: { channel: oncall }
    reason: deploys need a human
${extra.rules ?? ''}
  - name: scaling-by-policy
    match: { tool: "scale" }
    action: policy
defaultAction: forward
cedar:
  policies: |
    @id("small-scale")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "scale" && context.arguments has replicas && context.arguments.replicas < 10 };
    @id("big-scale") @approve("oncall")
    permit(principal, action == ThoughtGate::Action::"tools/call", resource)
      when { resource.name == "scale" && context.arguments has replicas && context.arguments.replicas >= 10 };
approvalChannels:
  - name: oncall
    slack: { channel: ${CHANNEL}, apiUrl: "${slackUrl}", tokenEnv: TG_TEST_SLACK_TOKEN }
    approvers: { users: [${ALICE}, ${BOB}] }
    timeout: ${extra.channelTimeout ?? '20s'}
    redact: ["*token*"]
approvals:
  pollInterval: 50ms
  heldKeepAlive: 100ms
${extra.approvals ?? ''}
${extra.more ?? ''}`;
}

// ---------- rig ----------

export interface Rig {
  fake: FakeSlack;
  upstream: ApprovalUpstream;
  sidecar: Sidecar;
  backend: StandaloneBackend;
  url: string;
  logs(): Record<string, unknown>[];
  /** The nth approval message posted (0-based), waiting for it. */
  message(n?: number): Promise<{ ts: string; text: string; blocks: unknown[] }>;
  approve(ts: string, user?: string): void;
  reject(ts: string, user?: string): void;
  close(): Promise<void>;
}

/** Fast polling so that tests do not wait for Slack-scale intervals. */
export const FAST: StandaloneOptions = {
  backoff: { initialMs: 40, factor: 1.5, maxMs: 200 },
  expiryGraceMs: 300,
  requestTimeoutMs: 2000,
  // Slack's budgets (one post per second per channel…) would make each test wait; the 429 test
  // keeps the real ones.
  limiter: {
    budgets: {
      'chat.postMessage': { perMinute: 6000, burst: 20, scope: 'channel' },
      'reactions.get': { perMinute: 6000, burst: 20 },
      'chat.update': { perMinute: 6000, burst: 20 },
    },
  },
};

export async function startRig(
  o: {
    config?: (upstream: string, slack: string) => string;
    upstream?: { json?: boolean };
    backend?: StandaloneOptions;
    sidecar?: Partial<SidecarOptions>;
    /** More environment for the config (e.g. an app-level token for buttons). */
    env?: Record<string, string>;
    /** The fake Slack's Socket Mode timings (redelivery of unacked envelopes). */
    socketMode?: FakeSlackOptions['socketMode'];
  } = {},
): Promise<Rig> {
  const fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT' } },
    channels: [{ id: CHANNEL, name: 'approvals' }],
    users: [
      { id: ALICE, name: 'alice', realName: 'Alice Approver' },
      { id: BOB, name: 'bob' },
      { id: MALLORY, name: 'mallory' },
    ],
    ...(o.socketMode ? { socketMode: o.socketMode } : {}),
  });
  const upstream = await startApprovalUpstream(o.upstream);
  const dir = mkdtempSync(join(tmpdir(), 'tg-approvals-'));
  const configPath = join(dir, 'thoughtgate.yaml');
  writeFileSync(configPath, (o.config ?? approvalConfig)(upstream.url, fake.url));
  const lines: string[] = [];
  const log = createLogger('debug', (l) => lines.push(l));
  const env = { TG_TEST_SLACK_TOKEN: TOKEN, ...o.env };
  const initial = await loadInitial(configPath, env);
  if (!initial.ok) throw new Error(`test config invalid:\n${initial.errors.join('\n')}`);
  const backend = standaloneBackend(initial.config.approvalChannels ?? [], env, log, undefined, { ...FAST, ...o.backend });
  const sidecar = await startSidecar({
    port: 0,
    adminPort: 0,
    bind: '127.0.0.1',
    log,
    provider: fileProvider(configPath, env, initial, log, 100),
    drainTimeoutMs: 1000,
    probeIntervalMs: 200,
    approvals: backend,
    ...o.sidecar,
  });
  if (!sidecar.snapshot()) throw new Error(`sidecar has no config: ${lines.join('')}`);
  const rig: Rig = {
    fake,
    upstream,
    sidecar,
    backend,
    url: `http://127.0.0.1:${sidecar.port}/mcp/up`,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    async message(n = 0) {
      const until = Date.now() + 10_000;
      for (;;) {
        const m = fake.messages(CHANNEL)[n];
        if (m) return { ts: m.ts, text: m.text ?? '', blocks: m.blocks ?? [] };
        if (Date.now() > until) throw new Error(`no approval message #${n} was posted`);
        await sleep(10);
      }
    },
    approve: (ts, user = ALICE) => fake.addReaction(CHANNEL, ts, 'white_check_mark', user),
    reject: (ts, user = ALICE) => fake.addReaction(CHANNEL, ts, 'x', user),
    async close() {
      await sidecar.close();
      await upstream.close();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `pred` holds (bounded); for state that changes asynchronously, never for timing. */
export async function until(pred: () => boolean | Promise<boolean>, what: string, limitMs = 10_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** An SDK client with the tasks API (client capabilities declare tasks). */
export async function tasksClient(url: string, headers: Record<string, string> = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'approvals-test', version: '1.0.0' }, { capabilities: { tasks: { list: {}, cancel: {} } } });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

/** A plain SDK client without tasks. */
export async function plainClient(url: string, headers: Record<string, string> = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'approvals-plain', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

/** The Slack message's last version, as text (blocks included) for assertions. */
export function messageText(fake: FakeSlack, ts: string): string {
  const m = fake.messages(CHANNEL).find((x) => x.ts === ts);
  return JSON.stringify({ text: m?.text, blocks: m?.blocks });
}

export function updatesOf(fake: FakeSlack, ts: string): unknown[] {
  return fake
    .calls('chat.update')
    .filter((c) => c.args['ts'] === ts)
    .map((c) => c.args);
}

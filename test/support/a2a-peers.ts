// Real A2A peers for tests and benchmarks: an agent on the official JS SDK (@a2a-js/sdk 1.3.0 with
// its v0.3 compat layer, or the genuine v0.3 SDK 0.3.14 under the alias a2a-js-sdk-03) on its
// express wrappers, the SDK clients of both generations behind one small interface, and the Python
// a2a-sdk client (test/a2a-py/client.py in the venv of scripts/a2a-python.sh). The agent records
// what reached it (HTTP requests, handler calls, executed messages, stored push configs), so a test
// can prove that something was NOT forwarded. Facts behind the shapes: /work/a2a/DESIGN.md §1.
import { existsSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AGENT_CARD_PATH, type AgentCard, type Message, type Part, Role, TaskState } from '@a2a-js/sdk';
import { type Client, ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import { duplicateInterfacesForLegacy } from '@a2a-js/sdk/compat/v0_3';
import { createLegacyAwarePushNotificationSender } from '@a2a-js/sdk/compat/v0_3/server';
import {
  AgentEvent,
  type AgentExecutor,
  DefaultRequestHandler,
  type ExecutionEventBus,
  InMemoryPushNotificationStore,
  InMemoryTaskStore,
  type RequestContext,
  type ServerCallContext,
} from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler } from '@a2a-js/sdk/server/express';
import * as c03 from 'a2a-js-sdk-03/client';
import type { AgentCard as AgentCard03, Message as Message03, Part as Part03 } from 'a2a-js-sdk-03';
import * as s03 from 'a2a-js-sdk-03/server';
import * as x03 from 'a2a-js-sdk-03/server/express';
import { run } from '../../e2e/cluster/cluster.js';
import { ROOT } from './processes.js';

// ---------------------------------------------------------------------------------------------
// The agent

export type A2aSdk = '1.3.0' | '0.3.14';

/** How the agent tells callers apart (the SDK 1.3.0 scopes tasks and push configs by user name). */
export type A2aUsers =
  /** Everyone is one user (what a sidecar injecting one configured credential produces). Default. */
  | 'shared'
  /** The user is the Authorization header: 1.3.0 answers another caller's task id as unknown. 0.3.14 has no scoping. */
  | 'per-caller';

export interface A2aAgentOptions {
  sdk: A2aSdk;
  host?: string;
  users?: A2aUsers;
  /** Step delay of the `count` skill when the message's metadata has no `delayMs` (default 100 ms). */
  stepMs?: number;
  /** How long the `wait` skill runs unless cancelled (default 20 s): bounds a test that forgets to cancel. */
  waitMaxMs?: number;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The body bytes the SDK read ('' when it read none, e.g. a 404). */
  body: string;
}

/** One call of the SDK request handler: the operation the agent's SDK decided to run. */
export interface RecordedCall {
  /** The handler method (1.3.0: sendMessage, getTask, createTaskPushNotificationConfig, …; 0.3.14: setTaskPushNotificationConfig, …). */
  method: string;
  params: unknown;
  user: string;
}

/** A message the agent's executor ran. */
export interface ReceivedMessage {
  skill: string;
  /** The text parts joined by spaces; other parts as `[url]`, `[raw]`, `[data]`, `[file]`. */
  text: string;
  parts: unknown[];
  metadata: Record<string, unknown>;
  taskId: string;
  contextId: string;
  user: string;
  at: number;
}

export interface RecordedPushConfig {
  taskId: string;
  id: string;
  url: string;
  token: string;
  user: string;
}

export interface AgentTaskRecord {
  skill: string;
  startedAt: number;
  /** Set when the executor published the task's last state (Date.now()). */
  finishedAt?: number;
  state?: TaskStateName;
}

export interface A2aAgent {
  sdk: A2aSdk;
  /** http://host:port — the card is at /.well-known/agent-card.json. */
  base: string;
  jsonrpcUrl: string;
  restUrl: string;
  /** The public card as the SDK was given it (1.0 shape for 1.3.0, 0.3 shape for 0.3.14). */
  card: AgentCard | AgentCard03;
  requests: RecordedRequest[];
  calls: RecordedCall[];
  messages: ReceivedMessage[];
  pushConfigs: RecordedPushConfig[];
  tasks: Map<string, AgentTaskRecord>;
  /** Forget everything recorded so far (the SDK's task store is kept). */
  reset(): void;
  close(): Promise<void>;
}

export type TaskStateName = 'submitted' | 'working' | 'completed' | 'failed' | 'canceled' | 'input-required' | 'rejected' | 'auth-required' | 'unknown';

/** The skills of the public card; the extended card adds `admin`. */
export const A2A_SKILLS = ['echo', 'count', 'wait'] as const;

const SKILL_TEXT: Record<string, { name: string; description: string; example: string }> = {
  echo: { name: 'Echo', description: 'Answers with a Message echoing the text.', example: 'hello' },
  count: { name: 'Count', description: 'A streamed Task counting to N, one artifact chunk per step.', example: 'count 3' },
  wait: { name: 'Wait', description: 'A long Task that runs until cancelled.', example: 'wait' },
  admin: { name: 'Admin', description: 'Only in the extended card.', example: 'admin' },
};

/** The skill a message asks for: metadata.skill, else the first word when it names one, else echo. */
function pickSkill(text: string, metadata: Record<string, unknown>): string {
  if (typeof metadata.skill === 'string') return metadata.skill;
  const first = text.split(' ')[0] ?? '';
  return first === 'count' || first === 'wait' ? first : 'echo';
}

/** The skill logic, written once for both SDKs: `emit` turns a neutral event into the SDK's. */
type Neutral =
  | { kind: 'message'; text: string }
  | { kind: 'task'; state: TaskStateName }
  | { kind: 'status'; state: TaskStateName; final: boolean }
  | { kind: 'artifact'; text: string; append: boolean; last: boolean };

class Skills {
  private readonly cancelled = new Set<string>();
  private readonly wake = new Map<string, () => void>();
  constructor(
    private readonly rec: { messages: ReceivedMessage[]; tasks: Map<string, AgentTaskRecord> },
    private readonly opts: { stepMs: number; waitMaxMs: number },
  ) {}

  cancel(taskId: string): void {
    this.cancelled.add(taskId);
    this.wake.get(taskId)?.();
  }

  /** Ends every running task (on close: no timer outlives the agent). */
  cancelAll(): void {
    for (const id of [...this.wake.keys()]) this.cancel(id);
  }

  /** Sleeps up to ms; true when the task was cancelled meanwhile. */
  private async pause(taskId: string, ms: number): Promise<boolean> {
    if (!this.cancelled.has(taskId))
      await new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        this.wake.set(taskId, () => {
          clearTimeout(t);
          r();
        });
      });
    this.wake.delete(taskId);
    return this.cancelled.has(taskId);
  }

  async run(m: Omit<ReceivedMessage, 'skill' | 'at'>, emit: (e: Neutral) => void, done: () => void): Promise<void> {
    const skill = pickSkill(m.text, m.metadata);
    this.rec.messages.push({ ...m, skill, at: Date.now() });
    const task = this.rec.tasks.get(m.taskId) ?? { skill, startedAt: Date.now() };
    const finish = (state: TaskStateName) => {
      emit({ kind: 'status', state, final: true });
      task.state = state;
      task.finishedAt = Date.now();
    };
    try {
      if (skill !== 'count' && skill !== 'wait') {
        emit({ kind: 'message', text: `${skill}: ${m.text}` });
        return;
      }
      this.rec.tasks.set(m.taskId, task);
      emit({ kind: 'task', state: 'submitted' });
      emit({ kind: 'status', state: 'working', final: false });
      if (skill === 'wait') {
        finish((await this.pause(m.taskId, this.opts.waitMaxMs)) ? 'canceled' : 'completed');
        return;
      }
      const steps = Number(m.text.split(' ')[1]) || 3;
      const delay = Number(m.metadata.delayMs ?? this.opts.stepMs);
      for (let i = 1; i <= steps; i++) {
        if (await this.pause(m.taskId, delay)) return finish('canceled');
        emit({ kind: 'artifact', text: `${i} `, append: i > 1, last: i === steps });
      }
      finish('completed');
    } finally {
      this.cancelled.delete(m.taskId);
      done();
    }
  }
}

const STATE_1: Record<TaskStateName, TaskState> = {
  submitted: TaskState.TASK_STATE_SUBMITTED,
  working: TaskState.TASK_STATE_WORKING,
  completed: TaskState.TASK_STATE_COMPLETED,
  failed: TaskState.TASK_STATE_FAILED,
  canceled: TaskState.TASK_STATE_CANCELED,
  'input-required': TaskState.TASK_STATE_INPUT_REQUIRED,
  rejected: TaskState.TASK_STATE_REJECTED,
  'auth-required': TaskState.TASK_STATE_AUTH_REQUIRED,
  unknown: TaskState.TASK_STATE_UNSPECIFIED,
};

const text1 = (value: string): Part => ({ content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: 'text/plain' });

function partSummary1(p: Part): string {
  return p.content?.$case === 'text' ? p.content.value : `[${p.content?.$case ?? '?'}]`;
}

function partSummary03(p: Part03): string {
  return p.kind === 'text' ? p.text : `[${p.kind}]`;
}

class Executor1 implements AgentExecutor {
  constructor(private readonly skills: Skills) {}
  cancelTask = async (taskId: string): Promise<void> => this.skills.cancel(taskId);
  async execute(ctx: RequestContext, bus: ExecutionEventBus): Promise<void> {
    const msg = ctx.userMessage;
    const { taskId, contextId } = ctx;
    const status = (state: TaskStateName) => ({ state: STATE_1[state], timestamp: new Date().toISOString(), message: undefined });
    await this.skills.run(
      {
        text: msg.parts.map(partSummary1).join(' '),
        parts: msg.parts,
        metadata: (msg.metadata ?? {}) as Record<string, unknown>,
        taskId,
        contextId,
        user: ctx.context.user?.userName ?? '',
      },
      (e) => {
        if (e.kind === 'message')
          bus.publish(
            AgentEvent.message({
              role: Role.ROLE_AGENT,
              messageId: `m-${crypto.randomUUID()}`,
              parts: [text1(e.text)],
              taskId: '',
              contextId,
              extensions: [],
              metadata: {},
              referenceTaskIds: [],
            }),
          );
        else if (e.kind === 'task')
          bus.publish(AgentEvent.task(ctx.task ?? { id: taskId, contextId, status: status(e.state), artifacts: [], history: [msg], metadata: {} }));
        else if (e.kind === 'status') bus.publish(AgentEvent.statusUpdate({ taskId, contextId, status: status(e.state), metadata: {} }));
        else
          bus.publish(
            AgentEvent.artifactUpdate({
              taskId,
              contextId,
              append: e.append,
              lastChunk: e.last,
              metadata: undefined,
              artifact: { artifactId: 'count', name: 'count', description: '', parts: [text1(e.text)], metadata: undefined, extensions: [] },
            }),
          );
      },
      () => bus.finished(),
    );
  }
}

class Executor03 implements s03.AgentExecutor {
  constructor(private readonly skills: Skills) {}
  cancelTask = async (taskId: string): Promise<void> => this.skills.cancel(taskId);
  async execute(ctx: s03.RequestContext, bus: s03.ExecutionEventBus): Promise<void> {
    const msg = ctx.userMessage;
    const { taskId, contextId } = ctx;
    const status = (state: TaskStateName) => ({ state, timestamp: new Date().toISOString() });
    await this.skills.run(
      {
        text: msg.parts.map(partSummary03).join(' '),
        parts: msg.parts,
        metadata: msg.metadata ?? {},
        taskId,
        contextId,
        user: ctx.context?.user?.userName ?? '',
      },
      (e) => {
        if (e.kind === 'message')
          bus.publish({ kind: 'message', messageId: `m-${crypto.randomUUID()}`, role: 'agent', parts: [{ kind: 'text', text: e.text }], contextId });
        else if (e.kind === 'task') bus.publish(ctx.task ?? { kind: 'task', id: taskId, contextId, status: status(e.state), history: [msg] });
        else if (e.kind === 'status') bus.publish({ kind: 'status-update', taskId, contextId, status: status(e.state), final: e.final });
        else
          bus.publish({
            kind: 'artifact-update',
            taskId,
            contextId,
            append: e.append,
            lastChunk: e.last,
            artifact: { artifactId: 'count', name: 'count', parts: [{ kind: 'text', text: e.text }] },
          });
      },
      () => bus.finished(),
    );
  }
}

// Express is a test-only CommonJS peer without bundled types; only its app factory is needed.
type ExpressApp = http.RequestListener & { use(path: string, handler: unknown): void };
const express = createRequire(import.meta.url)('express') as () => ExpressApp;

interface SdkUser {
  readonly isAuthenticated: boolean;
  readonly userName: string;
}

function userOf(authorization: string | undefined, users: A2aUsers): SdkUser {
  // Authenticated whenever a credential is presented: the extended card is served to those callers only.
  const isAuthenticated = authorization !== undefined && authorization !== '';
  const userName = users === 'per-caller' ? (authorization ?? '') : 'shared';
  return { isAuthenticated, userName };
}

/** Records each handler call (the operation the SDK decided to run) before running it. */
function recordCalls(handler: object, calls: RecordedCall[]): void {
  const target = handler as Record<string, unknown>;
  const methods = [
    'sendMessage',
    'sendMessageStream',
    'getTask',
    'listTasks',
    'cancelTask',
    'resubscribe',
    'createTaskPushNotificationConfig',
    'setTaskPushNotificationConfig',
    'getTaskPushNotificationConfig',
    'listTaskPushNotificationConfigs',
    'deleteTaskPushNotificationConfig',
    'getAuthenticatedExtendedAgentCard',
  ];
  for (const name of methods) {
    const fn = target[name];
    if (typeof fn !== 'function') continue;
    target[name] = (...args: unknown[]) => {
      // 1.3.0: (params, context); 0.3.14: (params, context?) but getAuthenticatedExtendedAgentCard(context?).
      const ctx = args.find((a): a is ServerCallContext => typeof a === 'object' && a !== null && 'user' in a);
      const params = name === 'getAuthenticatedExtendedAgentCard' && args.length === 1 ? undefined : args[0];
      calls.push({ method: name, params: structuredClone(params), user: ctx?.user?.userName ?? '' });
      return (fn as (...a: unknown[]) => unknown).apply(handler, args);
    };
  }
}

/** Records the bytes the SDK reads from each request, without changing how it reads them. */
function recordRequests(requests: RecordedRequest[]): (req: http.IncomingMessage) => void {
  return (req) => {
    const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
    requests.push(rec);
    const emit = req.emit.bind(req);
    const chunks: Buffer[] = [];
    req.emit = ((event: string, ...args: unknown[]) => {
      if (event === 'data') {
        chunks.push(Buffer.from(args[0] as Buffer));
        rec.body = Buffer.concat(chunks).toString('utf8');
      }
      return emit(event, ...args);
    }) as typeof req.emit;
  };
}

function card1(base: string): { card: AgentCard; extended: AgentCard } {
  const skill = (id: string) => {
    const s = SKILL_TEXT[id]!;
    return {
      id,
      name: s.name,
      description: s.description,
      tags: [id],
      examples: [s.example],
      inputModes: ['text/plain'],
      outputModes: ['text/plain'],
      securityRequirements: [],
    };
  };
  const card: AgentCard = {
    name: 'Test Agent (a2a-js 1.3.0)',
    description: 'echo, count (streaming), wait (cancellable)',
    supportedInterfaces: duplicateInterfacesForLegacy(
      [
        { url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' },
        { url: `${base}/a2a/rest`, protocolBinding: 'HTTP+JSON', tenant: '', protocolVersion: '1.0' },
      ],
      ['JSONRPC', 'HTTP+JSON'],
    ),
    provider: { organization: 'ThoughtGate tests', url: 'https://example.com' },
    version: '1.0.0',
    capabilities: { streaming: true, pushNotifications: true, extensions: [], extendedAgentCard: true },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: A2A_SKILLS.map(skill),
    documentationUrl: '',
    signatures: [],
  };
  return { card, extended: { ...card, name: `${card.name} (extended)`, skills: [...card.skills, skill('admin')] } };
}

function card03(base: string): { card: AgentCard03; extended: AgentCard03 } {
  const skill = (id: string) => {
    const s = SKILL_TEXT[id]!;
    return { id, name: s.name, description: s.description, tags: [id], examples: [s.example] };
  };
  const card: AgentCard03 = {
    name: 'Test Agent (a2a-js 0.3.14)',
    description: 'echo, count (streaming), wait (cancellable)',
    protocolVersion: '0.3.0',
    version: '0.1.0',
    url: `${base}/a2a/jsonrpc`,
    preferredTransport: 'JSONRPC',
    additionalInterfaces: [
      { url: `${base}/a2a/jsonrpc`, transport: 'JSONRPC' },
      { url: `${base}/a2a/rest`, transport: 'HTTP+JSON' },
    ],
    skills: A2A_SKILLS.map(skill),
    capabilities: { streaming: true, pushNotifications: true },
    supportsAuthenticatedExtendedCard: true,
    defaultInputModes: ['text'],
    defaultOutputModes: ['text'],
  };
  return { card, extended: { ...card, name: `${card.name} (extended)`, skills: [...card.skills, skill('admin')] } };
}

/** A real SDK agent on 127.0.0.1, port 0: JSON-RPC at /a2a/jsonrpc, REST at /a2a/rest, the card at /.well-known/agent-card.json. */
export async function startA2aAgent(opts: A2aAgentOptions): Promise<A2aAgent> {
  const host = opts.host ?? '127.0.0.1';
  const users = opts.users ?? 'shared';
  const app = express();
  const requests: RecordedRequest[] = [];
  const record = recordRequests(requests);
  const server = http.createServer((req, res) => {
    record(req);
    app(req, res);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const base = `http://${host}:${(server.address() as AddressInfo).port}`;
  const rec = {
    requests,
    calls: [] as RecordedCall[],
    messages: [] as ReceivedMessage[],
    pushConfigs: [] as RecordedPushConfig[],
    tasks: new Map<string, AgentTaskRecord>(),
  };
  const skills = new Skills(rec, { stepMs: opts.stepMs ?? 100, waitMaxMs: opts.waitMaxMs ?? 20_000 });
  const userBuilder = async (req: { header(name: string): string | undefined }) => userOf(req.header('authorization'), users);
  let card: AgentCard | AgentCard03;
  if (opts.sdk === '1.3.0') {
    const cards = card1(base);
    card = cards.card;
    const pushStore = new (class extends InMemoryPushNotificationStore {
      override async save(taskId: string, context: ServerCallContext, config: Parameters<InMemoryPushNotificationStore['save']>[2]) {
        await super.save(taskId, context, config);
        rec.pushConfigs.push({ taskId, id: config.id, url: config.url, token: config.token, user: context.user?.userName ?? '' });
      }
    })();
    const pushSender = createLegacyAwarePushNotificationSender(pushStore, { timeout: 2000, tokenHeaderName: 'X-A2A-Notification-Token' });
    const handler = new DefaultRequestHandler(cards.card, new InMemoryTaskStore(), new Executor1(skills), undefined, pushStore, pushSender, cards.extended);
    recordCalls(handler, rec.calls);
    const legacyCompat = { enabled: true };
    app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler, legacyCompat }));
    app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder, legacyCompat }));
    app.use('/a2a/rest', restHandler({ requestHandler: handler, userBuilder, legacyCompat }));
  } else {
    const cards = card03(base);
    card = cards.card;
    const pushStore = new (class extends s03.InMemoryPushNotificationStore {
      override async save(taskId: string, config: Parameters<s03.InMemoryPushNotificationStore['save']>[1]) {
        await super.save(taskId, config);
        rec.pushConfigs.push({ taskId, id: config.id ?? '', url: config.url, token: config.token ?? '', user: '' });
      }
    })();
    const handler = new s03.DefaultRequestHandler(
      cards.card,
      new s03.InMemoryTaskStore(),
      new Executor03(skills),
      undefined,
      pushStore,
      new s03.DefaultPushNotificationSender(pushStore),
      cards.extended,
    );
    recordCalls(handler, rec.calls);
    app.use(`/${AGENT_CARD_PATH}`, x03.agentCardHandler({ agentCardProvider: handler }));
    app.use('/a2a/jsonrpc', x03.jsonRpcHandler({ requestHandler: handler, userBuilder }));
    app.use('/a2a/rest', x03.restHandler({ requestHandler: handler, userBuilder }));
  }
  return {
    sdk: opts.sdk,
    base,
    jsonrpcUrl: `${base}/a2a/jsonrpc`,
    restUrl: `${base}/a2a/rest`,
    card,
    ...rec,
    reset() {
      rec.requests.length = 0;
      rec.calls.length = 0;
      rec.messages.length = 0;
      rec.pushConfigs.length = 0;
      rec.tasks.clear();
    },
    close: () =>
      new Promise<void>((r) => {
        skills.cancelAll();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A webhook receiver for push notifications (the agent's SDK POSTs the task JSON on each change). */
export interface A2aWebhook {
  url: string;
  deliveries: { headers: http.IncomingHttpHeaders; body: string; at: number }[];
  close(): Promise<void>;
}

export async function startA2aWebhook(host = '127.0.0.1'): Promise<A2aWebhook> {
  const deliveries: A2aWebhook['deliveries'] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body, at: Date.now() });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}/hook`,
    deliveries,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The JS clients, one interface

/** Which SDK client, which binding, which protocol generation. */
export type A2aClientKind =
  | 'js1-jsonrpc' // @a2a-js/sdk 1.3.0, JSON-RPC, A2A 1.0
  | 'js1-rest' // 1.3.0, HTTP+JSON, A2A 1.0
  | 'js1-compat-jsonrpc' // 1.3.0's v0.3 compat transport, JSON-RPC, A2A 0.3
  | 'js1-compat-rest' // 1.3.0's v0.3 compat transport, REST, A2A 0.3
  | 'js03-jsonrpc' // @a2a-js/sdk 0.3.14, JSON-RPC
  | 'js03-rest'; // 0.3.14, REST

export const A2A_CLIENT_KINDS: readonly A2aClientKind[] = ['js1-jsonrpc', 'js1-rest', 'js1-compat-jsonrpc', 'js1-compat-rest', 'js03-jsonrpc', 'js03-rest'];

/** Whether a client kind can talk to an agent of that SDK (A2A 1.0 clients need the 1.3.0 agent). */
export function clientSupports(kind: A2aClientKind, sdk: A2aSdk): boolean {
  return sdk === '1.3.0' || !kind.startsWith('js1-') || kind.startsWith('js1-compat-');
}

export interface SendOptions {
  metadata?: Record<string, unknown>;
  /** A push config inside the send (configuration.taskPushNotificationConfig / pushNotificationConfig). */
  push?: { id?: string; url: string; token?: string };
  taskId?: string;
  contextId?: string;
}

export interface TaskView {
  id: string;
  contextId: string;
  state: TaskStateName;
  /** The text of every artifact part, concatenated. */
  artifactText: string;
}

export type SendResult = { kind: 'message'; text: string; raw: unknown } | { kind: 'task'; task: TaskView; raw: unknown };

/** A stream event with its receive time (Date.now() when the client's iterator yielded it). */
export type A2aEvent = (
  | { kind: 'task'; taskId: string; contextId: string; state: TaskStateName }
  | { kind: 'message'; text: string }
  | { kind: 'status'; taskId: string; state: TaskStateName; final: boolean }
  | { kind: 'artifact'; taskId: string; text: string; lastChunk: boolean }
) & { receivedAt: number; raw: unknown };

export interface PushConfigView {
  taskId: string;
  id: string;
  url: string;
  token: string;
}

export interface CardView {
  name: string;
  skills: string[];
  raw: unknown;
}

export interface A2aTestClient {
  kind: A2aClientKind;
  /** What the client speaks: '1.0' or '0.3'. */
  protocol: '1.0' | '0.3';
  /** The card the client was built from (fetched from baseUrl). */
  publicCard: CardView;
  /** The SDK's getAgentCard: the extended card when offered and the caller is authenticated. */
  card(): Promise<CardView>;
  send(text: string, opts?: SendOptions): Promise<SendResult>;
  stream(text: string, opts?: SendOptions): AsyncGenerator<A2aEvent>;
  getTask(id: string): Promise<TaskView>;
  cancelTask(id: string): Promise<TaskView>;
  resubscribe(id: string): AsyncGenerator<A2aEvent>;
  pushSet(taskId: string, cfg: { id: string; url: string; token?: string }): Promise<PushConfigView>;
  pushGet(taskId: string, id: string): Promise<PushConfigView>;
  pushList(taskId: string): Promise<PushConfigView[]>;
  pushDelete(taskId: string, id: string): Promise<void>;
  /** The SDK client itself (1.3.0 `Client` or 0.3.14 `Client`), for what the interface does not cover. Errors are the SDK's own classes. */
  sdk: unknown;
}

/** Fetch with the caller's headers added (they win over the SDK's: a test may mean to send odd ones), through `through` (a proxy, say). */
function fetchWith(headers: Record<string, string>, through: typeof fetch = fetch): typeof fetch {
  return (input, init) => {
    const h = new Headers(init?.headers);
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    return through(input, { ...init, headers: h });
  };
}

function stateName(s: TaskState | string | undefined): TaskStateName {
  if (s === undefined) return 'unknown';
  if (typeof s === 'string') return (s === 'cancelled' ? 'canceled' : s) as TaskStateName;
  const n = (TaskState[s] ?? 'TASK_STATE_UNSPECIFIED').replace('TASK_STATE_', '').toLowerCase().replace('_', '-');
  return (n === 'unspecified' ? 'unknown' : n) as TaskStateName;
}

const texts1 = (parts: Part[]) => parts.map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('');
const texts03 = (parts: Part03[]) => parts.map((p) => (p.kind === 'text' ? p.text : '')).join('');

type Task1 = Awaited<ReturnType<Client['getTask']>>;
type Task03 = Awaited<ReturnType<c03.Client['getTask']>>;

const task1 = (t: Task1): TaskView => ({
  id: t.id,
  contextId: t.contextId,
  state: stateName(t.status?.state),
  artifactText: t.artifacts.map((a) => texts1(a.parts)).join(''),
});
const task03 = (t: Task03): TaskView => ({
  id: t.id,
  contextId: t.contextId,
  state: stateName(t.status.state),
  artifactText: (t.artifacts ?? []).map((a) => texts03(a.parts)).join(''),
});

function cardView(raw: { name: string; skills: { id: string }[] }): CardView {
  return { name: raw.name, skills: raw.skills.map((s) => s.id), raw };
}

type Event1 = ReturnType<Client['sendMessageStream']> extends AsyncGenerator<infer T> ? T : never;
type Event03 = ReturnType<c03.Client['sendMessageStream']> extends AsyncGenerator<infer T> ? T : never;

async function* events1(it: AsyncGenerator<Event1>): AsyncGenerator<A2aEvent> {
  for await (const ev of it) {
    const receivedAt = Date.now();
    const p = ev.payload;
    if (p?.$case === 'task')
      yield { kind: 'task', taskId: p.value.id, contextId: p.value.contextId, state: stateName(p.value.status?.state), receivedAt, raw: ev };
    else if (p?.$case === 'message') yield { kind: 'message', text: texts1(p.value.parts), receivedAt, raw: ev };
    else if (p?.$case === 'statusUpdate') {
      const state = stateName(p.value.status?.state);
      yield { kind: 'status', taskId: p.value.taskId, state, final: isFinal(state), receivedAt, raw: ev };
    } else if (p?.$case === 'artifactUpdate')
      yield { kind: 'artifact', taskId: p.value.taskId, text: texts1(p.value.artifact?.parts ?? []), lastChunk: p.value.lastChunk, receivedAt, raw: ev };
  }
}

async function* events03(it: AsyncGenerator<Event03>): AsyncGenerator<A2aEvent> {
  for await (const ev of it) {
    const receivedAt = Date.now();
    if (ev.kind === 'task') yield { kind: 'task', taskId: ev.id, contextId: ev.contextId, state: stateName(ev.status.state), receivedAt, raw: ev };
    else if (ev.kind === 'message') yield { kind: 'message', text: texts03(ev.parts), receivedAt, raw: ev };
    else if (ev.kind === 'status-update') yield { kind: 'status', taskId: ev.taskId, state: stateName(ev.status.state), final: ev.final, receivedAt, raw: ev };
    else yield { kind: 'artifact', taskId: ev.taskId, text: texts03(ev.artifact.parts), lastChunk: ev.lastChunk ?? false, receivedAt, raw: ev };
  }
}

const isFinal = (s: TaskStateName) => s === 'completed' || s === 'failed' || s === 'canceled' || s === 'rejected';
const messageId = () => `msg-${crypto.randomUUID()}`;

async function client1(kind: A2aClientKind, baseUrl: string, headers: Record<string, string>, through?: typeof fetch): Promise<A2aTestClient> {
  const legacy = kind.startsWith('js1-compat-');
  const rest = kind.endsWith('-rest');
  const fetchImpl = fetchWith(headers, through);
  const resolver = new DefaultAgentCardResolver({ legacyCompat: { enabled: true }, fetchImpl });
  const full = await resolver.resolve(baseUrl);
  const binding = rest ? 'HTTP+JSON' : 'JSONRPC';
  const version = legacy ? '0.3' : '1.0';
  // One interface only, so the client speaks exactly the binding and generation asked for.
  const only = { ...full, supportedInterfaces: full.supportedInterfaces.filter((i) => i.protocolBinding === binding && i.protocolVersion.startsWith(version)) };
  if (only.supportedInterfaces.length === 0) throw new Error(`${kind}: the card at ${baseUrl} offers no ${binding} interface at A2A ${version}`);
  const transport = rest
    ? new RestTransportFactory({ fetchImpl, legacyCompat: { enabled: legacy } })
    : new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: legacy } });
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { cardResolver: resolver, transports: [transport] }));
  const c = await factory.createFromAgentCard(only);
  const message = (text: string, o: SendOptions): Message => ({
    messageId: messageId(),
    contextId: o.contextId ?? '',
    taskId: o.taskId ?? '',
    role: Role.ROLE_USER,
    parts: [text1(text)],
    metadata: o.metadata ?? {},
    extensions: [],
    referenceTaskIds: [],
  });
  const request = (text: string, o: SendOptions = {}) => ({
    tenant: '',
    message: message(text, o),
    configuration: o.push
      ? {
          acceptedOutputModes: [],
          taskPushNotificationConfig: { tenant: '', id: o.push.id ?? '', taskId: '', url: o.push.url, token: o.push.token ?? '', authentication: undefined },
          returnImmediately: false,
        }
      : undefined,
    metadata: undefined,
  });
  const push = (p: { taskId: string; id: string; url: string; token: string }): PushConfigView => ({ taskId: p.taskId, id: p.id, url: p.url, token: p.token });
  return {
    kind,
    protocol: legacy ? '0.3' : '1.0',
    publicCard: cardView(full),
    sdk: c,
    card: async () => cardView(await c.getAgentCard()),
    async send(text, o) {
      const r = await c.sendMessage(request(text, o));
      return 'messageId' in r && !('status' in r) ? { kind: 'message', text: texts1(r.parts), raw: r } : { kind: 'task', task: task1(r as Task1), raw: r };
    },
    stream: (text, o) => events1(c.sendMessageStream(request(text, o))),
    getTask: async (id) => task1(await c.getTask({ tenant: '', id, historyLength: undefined })),
    cancelTask: async (id) => task1(await c.cancelTask({ tenant: '', id, metadata: undefined })),
    resubscribe: (id) => events1(c.resubscribeTask({ tenant: '', id })),
    pushSet: async (taskId, cfg) =>
      push(await c.createTaskPushNotificationConfig({ tenant: '', id: cfg.id, taskId, url: cfg.url, token: cfg.token ?? '', authentication: undefined })),
    pushGet: async (taskId, id) => push(await c.getTaskPushNotificationConfig({ tenant: '', taskId, id })),
    pushList: async (taskId) => (await c.listTaskPushNotificationConfig({ tenant: '', taskId, pageSize: 0, pageToken: '' })).configs.map(push),
    pushDelete: (taskId, id) => c.deleteTaskPushNotificationConfig({ tenant: '', taskId, id }),
  };
}

async function client03(kind: A2aClientKind, baseUrl: string, headers: Record<string, string>, through?: typeof fetch): Promise<A2aTestClient> {
  const rest = kind === 'js03-rest';
  const fetchImpl = fetchWith(headers, through);
  const full = await new c03.DefaultAgentCardResolver({ fetchImpl }).resolve(baseUrl);
  const binding = rest ? 'HTTP+JSON' : 'JSONRPC';
  const url = full.preferredTransport === binding ? full.url : full.additionalInterfaces?.find((i) => i.transport === binding)?.url;
  if (!url) throw new Error(`${kind}: the card at ${baseUrl} offers no ${binding} interface`);
  const transport = rest ? new c03.RestTransportFactory({ fetchImpl }) : new c03.JsonRpcTransportFactory({ fetchImpl });
  const factory = new c03.ClientFactory(
    c03.ClientFactoryOptions.createFrom(c03.ClientFactoryOptions.default, { transports: [transport], preferredTransports: [binding] }),
  );
  const c = await factory.createFromAgentCard({ ...full, url, preferredTransport: binding });
  const params = (text: string, o: SendOptions = {}) => ({
    message: {
      kind: 'message' as const,
      messageId: messageId(),
      role: 'user' as const,
      parts: [{ kind: 'text' as const, text }],
      metadata: o.metadata ?? {},
      ...(o.taskId ? { taskId: o.taskId } : {}),
      ...(o.contextId ? { contextId: o.contextId } : {}),
    } satisfies Message03,
    ...(o.push ? { configuration: { blocking: true, pushNotificationConfig: { id: o.push.id, url: o.push.url, token: o.push.token } } } : {}),
  });
  const push = (p: Awaited<ReturnType<c03.Client['getTaskPushNotificationConfig']>>): PushConfigView => ({
    taskId: p.taskId,
    id: p.pushNotificationConfig.id ?? '',
    url: p.pushNotificationConfig.url,
    token: p.pushNotificationConfig.token ?? '',
  });
  return {
    kind,
    protocol: '0.3',
    publicCard: cardView(full),
    sdk: c,
    card: async () => cardView(await c.getAgentCard()),
    async send(text, o) {
      const r = await c.sendMessage(params(text, o));
      return r.kind === 'message' ? { kind: 'message', text: texts03(r.parts), raw: r } : { kind: 'task', task: task03(r), raw: r };
    },
    stream: (text, o) => events03(c.sendMessageStream(params(text, o))),
    getTask: async (id) => task03(await c.getTask({ id })),
    cancelTask: async (id) => task03(await c.cancelTask({ id })),
    resubscribe: (id) => events03(c.resubscribeTask({ id })),
    pushSet: async (taskId, cfg) =>
      push(await c.setTaskPushNotificationConfig({ taskId, pushNotificationConfig: { id: cfg.id, url: cfg.url, token: cfg.token } })),
    pushGet: async (taskId, id) => {
      // The 0.3.14 type names only TaskIdParams; the wire (and the SDK) take GetTaskPushNotificationConfigParams.
      const params = { id: taskId, pushNotificationConfigId: id };
      return push(await c.getTaskPushNotificationConfig(params));
    },
    pushList: async (taskId) => (await c.listTaskPushNotificationConfig({ id: taskId })).map(push),
    pushDelete: (taskId, id) => c.deleteTaskPushNotificationConfig({ id: taskId, pushNotificationConfigId: id }),
  };
}

/**
 * An SDK client of the given kind, built from the card at baseUrl (so through a sidecar the card's
 * URLs decide where it goes). headers go on every request, card fetches included; `through`: the
 * fetch every request is made with (default the global one; e.g. undici's with a proxy dispatcher).
 */
export function a2aClient(kind: A2aClientKind, baseUrl: string, headers: Record<string, string> = {}, through?: typeof fetch): Promise<A2aTestClient> {
  return kind.startsWith('js03-') ? client03(kind, baseUrl, headers, through) : client1(kind, baseUrl, headers, through);
}

/** Collects a stream's events; `until` stops early (the stream is closed). */
export async function collect(it: AsyncGenerator<A2aEvent>, until?: (e: A2aEvent) => boolean): Promise<A2aEvent[]> {
  const out: A2aEvent[] = [];
  for await (const e of it) {
    out.push(e);
    if (until?.(e)) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The Python client

export const A2A_PYTHON_SCRIPT = join(ROOT, 'scripts', 'a2a-python.sh');
export const A2A_PYTHON_CLIENT = join(ROOT, 'test', 'a2a-py', 'client.py');

let pythonPath: Promise<string> | undefined;

/** The venv's python (scripts/a2a-python.sh path); fails when the venv is not installed. */
export function a2aPython(): Promise<string> {
  pythonPath ??= run(A2A_PYTHON_SCRIPT, ['path']).then(({ code, stdout, stderr }) => {
    const py = stdout.trim();
    if (code === 0 && py && existsSync(py)) return py;
    throw new Error(`the Python A2A client is not installed (${stderr.trim() || py}): run \`make a2a-peers\` or \`scripts/a2a-python.sh install\``);
  });
  return pythonPath;
}

export interface PythonRun {
  code: number;
  /** Each stdout line parsed as JSON (test/a2a-py/client.py prints one object a line). */
  lines: Record<string, unknown>[];
  stderr: string;
}

/** Runs test/a2a-py/client.py with args (`<base-url> <operation> [options]`), env added to the process's (e.g. HTTP_PROXY). A stream ends with the agent's task (or its close). */
export async function runPython(args: string[], env: Record<string, string> = {}): Promise<PythonRun> {
  const { code, stdout, stderr } = await run(await a2aPython(), [A2A_PYTHON_CLIENT, ...args], { env: { ...process.env, ...env } });
  try {
    const lines = stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { code, lines, stderr };
  } catch (e) {
    throw new Error(`client.py printed a line that is not JSON (${String(e)}):\n${stdout}\n${stderr}`);
  }
}

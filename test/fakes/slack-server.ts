// A fake Slack Web API for tests and local demos. The real `@slack/web-api` WebClient talks to it
// over loopback (`slackApiUrl: fake.url`, which ends in "/api/" — the client needs the slash).
//
// What it implements (POST, or GET with a query string, to /api/<method>; bodies are
// application/x-www-form-urlencoded like WebClient sends, or JSON; `blocks`, `metadata` and
// `attachments` given as JSON strings are parsed):
//   auth.test, chat.postMessage, chat.update, reactions.get, users.info, usergroups.users.list,
//   conversations.info, conversations.history (newest first; oldest/latest/inclusive, limit and
//   cursor paging; message metadata only with include_all_metadata, like Slack).
//   Socket Mode (slack-server-socket.ts): apps.connections.open with an app-level token, a
//   WebSocket on the same port delivering `interactive` envelopes (click(), submitView()), acks,
//   redelivery, `disconnect`; and views.open, chat.postEphemeral (fake.socketMode).
//   Anything else: {ok:false, error:'unknown_method'}.
// Auth: `Authorization: Bearer <token>` or a `token` argument. Missing → not_authed, unknown → invalid_auth.
// App-level tokens (`appTokens`, default "xapp-test") work for apps.connections.open only; a bot
// token there, or an app token elsewhere, gets not_allowed_token_type, like Slack.
// Like Slack, errors are HTTP 200 with {ok:false, error}; only rate limits (429 + Retry-After) and
// outages (500, refused connections) use other statuses.
// Block Kit checks on chat.postMessage/chat.update (so tests catch messages Slack would refuse):
//   ≤ 50 blocks, header text ≤ 150, section text ≤ 3000, ≤ 10 fields of ≤ 2000, ≤ 10 context
//   elements, block_id ≤ 255 → invalid_blocks; all block text together > 12,000 → msg_blocks_too_long
//   (Slack's cumulative limit is undocumented; ~12k is what people observe); `text` > 40,000 is
//   truncated with a message_truncated warning.
//
// Test control (plain methods, no HTTP): addChannel, addUser, addUserGroup, addToken, removeToken,
// addReaction, removeReaction, messages(), calls(), setRateLimit(), force429(), setDown(), reset
// helpers. See the FakeSlack interface below for each one.
//
// Standalone, for demos (Node 20 cannot run .ts directly, so bundle it first; .dev/ is git-ignored):
//   npx esbuild test/fakes/slack-server.ts --bundle --platform=node --format=esm \
//     --packages=external --outfile=.dev/fake-slack.mjs
//   PORT=3999 FAKE_SLACK_SEED=seed.json node .dev/fake-slack.mjs
// Seed file (every key optional; without tokens the token "xoxb-test" is accepted):
//   { "tokens": { "xoxb-demo": { "userId": "UBOT", "team": "Demo" } },   // or ["xoxb-demo"]
//     "channels": [{ "id": "C0APPROVE", "name": "approvals" }],
//     "users": [{ "id": "U0ALICE", "name": "alice", "realName": "Alice A." }],
//     "userGroups": [{ "id": "S0ONCALL", "users": ["U0ALICE"] }] }
// It prints its URL (use it as the channel's apiUrl) and each posted message with a ready curl line.
// Only an entry file named slack-server.* or fake-slack.* starts the server, so bundles of other
// entry points that include this module (bench/slack.ts) do not.
// A person "clicks" a reaction with the one extra control endpoint:
//   curl -s -X POST http://127.0.0.1:3999/_control/react -H 'content-type: application/json' \
//     -d '{"channel":"C0APPROVE","ts":"1732180000.000100","name":"white_check_mark","user":"U0ALICE"}'
// ({"remove": true} in the same body takes the reaction away again.)
// Or clicks a button of a message (Socket Mode; app token "xapp-test" unless the seed lists appTokens):
//   curl -s -X POST http://127.0.0.1:3999/_control/click -H 'content-type: application/json' \
//     -d '{"channel":"C0APPROVE","ts":"1732180000.000100","action_id":"thoughtgate_approve","user":"U0ALICE"}'
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createSocketMode, DEFAULT_FAKE_APP_TOKEN, type FakeSocketMode, type FakeSocketModeOptions } from './slack-server-socket.js';

export { DEFAULT_FAKE_APP_TOKEN } from './slack-server-socket.js';
export type { FakeClick, FakeEnvelope, FakeEphemeral, FakeSocketMode, FakeSocketModeOptions, FakeView } from './slack-server-socket.js';

export interface FakeUser {
  id: string;
  name: string;
  realName?: string;
  displayName?: string;
  isBot?: boolean;
  deleted?: boolean;
}
export interface FakeChannel {
  id: string;
  name: string;
  isPrivate?: boolean;
  /** User ids in the channel; when given, chat.postEphemeral to anyone else fails with user_not_in_channel. */
  members?: string[];
}
export interface FakeUserGroup {
  id: string;
  handle?: string;
  users: string[];
}
/** Who a token authenticates as (auth.test); messages posted with it carry `userId`. */
export interface FakeTokenIdentity {
  userId: string;
  botId: string;
  teamId: string;
  team: string;
}
export interface FakeSlackSeed {
  tokens?: Record<string, Partial<FakeTokenIdentity>> | string[];
  /** App-level tokens (xapp-…) for Socket Mode; default ["xapp-test"]. */
  appTokens?: string[];
  channels?: FakeChannel[];
  users?: FakeUser[];
  userGroups?: FakeUserGroup[];
}
export interface FakeSlackOptions extends FakeSlackSeed {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Serve POST /_control/react and /_control/click (the standalone process turns them on). */
  controlEndpoint?: boolean;
  /** Called with one line per posted message (standalone mode prints them). */
  log?: (line: string) => void;
  /** Socket Mode timings (redelivery, trigger_id lifetime). */
  socketMode?: FakeSocketModeOptions;
}

export interface FakeReaction {
  name: string;
  users: string[];
  count: number;
}
export interface FakeMessageVersion {
  time: number;
  text?: string;
  blocks?: unknown[];
  metadata?: unknown;
}
export interface FakeMessage {
  channel: string;
  ts: string;
  /** Bot user that posted it (from the token). */
  user: string;
  /** Current state. */
  text?: string;
  blocks?: unknown[];
  metadata?: unknown;
  reactions: FakeReaction[];
  /** The posted version first, then one entry per chat.update. */
  history: FakeMessageVersion[];
}
export interface FakeCall {
  seq: number;
  method: string;
  /** Arrival time (Date.now()) of the request, before its body was read. */
  time: number;
  token?: string;
  args: Record<string, unknown>;
  /** HTTP status the fake answered with. */
  status: 200 | 429 | 500;
  ok?: boolean;
  error?: string;
  /** Retry-After seconds on a 429. */
  retryAfter?: number;
}
export interface FakeRateLimit {
  /** At most `limit` accepted calls per token+method in any sliding window of `windowMs`. */
  limit: number;
  windowMs: number;
  /** Retry-After to send; default: whole seconds until the oldest call leaves the window (≥ 1). */
  retryAfterSec?: number;
}
export type FakeDownMode = false | 'http500' | 'refuse';

export interface FakeSlack {
  /** Base URL for WebClient's slackApiUrl, e.g. http://127.0.0.1:PORT/api/ */
  readonly url: string;
  readonly port: number;
  /** The token → identity table; add or remove entries to change which tokens work. */
  readonly tokens: Map<string, FakeTokenIdentity>;
  /** App-level tokens accepted by apps.connections.open; add or remove entries. */
  readonly appTokens: Set<string>;
  /** Socket Mode: connections, clicks, modal submissions, acks, disconnects (slack-server-socket.ts). */
  readonly socketMode: FakeSocketMode;
  addChannel(channel: FakeChannel): void;
  addUser(user: FakeUser): void;
  addUserGroup(group: FakeUserGroup): void;
  addToken(token: string, identity?: Partial<FakeTokenIdentity>): FakeTokenIdentity;
  removeToken(token: string): void;
  /** Adds `userId`'s reaction `name` to a message (idempotent); throws if the message does not exist. */
  addReaction(channel: string, ts: string, name: string, userId: string): void;
  removeReaction(channel: string, ts: string, name: string, userId: string): void;
  /** Snapshots of posted messages (current state + history), in posting order. */
  messages(channel?: string): FakeMessage[];
  /** Every request that reached the fake (not the refused ones), oldest first. */
  calls(method?: string): FakeCall[];
  clearCalls(): void;
  /** Per token+method sliding-window limit for `method` ('*' = every method); null removes it. */
  setRateLimit(method: string, limit: FakeRateLimit | null): void;
  /** The next `count` calls of `method` ('*' = any) get 429 with Retry-After `retryAfterSec`. */
  force429(method: string, count: number, retryAfterSec: number): void;
  /** 'http500': answer every request with 500. 'refuse': stop listening and reset open sockets. */
  setDown(mode: FakeDownMode): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_FAKE_TOKEN = 'xoxb-test';
const MAX_BODY_BYTES = 1024 * 1024;
const JSON_ARGS = new Set(['blocks', 'metadata', 'attachments', 'view']);

/** Slack-shaped error; the handlers throw it and the dispatcher turns it into {ok:false,...}. */
class SlackFail extends Error {
  constructor(
    readonly error: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(error);
  }
}

interface StoredMessage {
  channel: string;
  ts: string;
  user: string;
  token: string;
  text?: string;
  blocks?: unknown[];
  metadata?: unknown;
  /** reaction name → user ids in the order they reacted. */
  reactions: Map<string, string[]>;
  history: FakeMessageVersion[];
}

function identityFor(_token: string, partial: Partial<FakeTokenIdentity> = {}, n = 0): FakeTokenIdentity {
  return {
    userId: partial.userId ?? (n === 0 ? 'UBOT' : `UBOT${n}`),
    botId: partial.botId ?? (n === 0 ? 'BBOT' : `BBOT${n}`),
    teamId: partial.teamId ?? 'T0FAKE',
    team: partial.team ?? 'Fake Workspace',
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

function required(args: Record<string, unknown>, name: string, error = 'invalid_arguments'): string {
  const v = str(args[name]);
  if (v === undefined || v === '') throw new SlackFail(error, { detail: `missing ${name}` });
  return v;
}

function plainTextOf(o: unknown): string | undefined {
  return o && typeof o === 'object' && typeof (o as { text?: unknown }).text === 'string' ? (o as { text: string }).text : undefined;
}

/** A confirmation dialog object: title, text, confirm and deny, with Slack's lengths. */
function checkConfirm(c: unknown): string[] {
  if (!c || typeof c !== 'object') return [': not an object'];
  const o = c as Record<string, unknown>;
  const errors: string[] = [];
  const field = (key: string, max: number, mrkdwnOk = false) => {
    const v = o[key] as { type?: unknown; text?: unknown } | undefined;
    const typeOk = v?.type === 'plain_text' || (mrkdwnOk && v?.type === 'mrkdwn');
    if (!typeOk || typeof v?.text !== 'string' || v.text.length === 0 || v.text.length > max)
      errors.push(`/${key}: ${mrkdwnOk ? 'text object' : 'plain_text'} of 1 to ${max} characters`);
  };
  field('title', 100);
  field('text', 300, true);
  field('confirm', 30);
  field('deny', 30);
  if (o.style !== undefined && o.style !== 'primary' && o.style !== 'danger') errors.push('/style: primary or danger');
  return errors;
}

/** Block Kit size checks Slack applies to chat.postMessage/chat.update (see header comment). */
export function checkBlocks(blocks: unknown): string[] {
  const errors: string[] = [];
  if (!Array.isArray(blocks)) return ['blocks must be an array'];
  if (blocks.length > 50) errors.push(`too many blocks: ${blocks.length} > 50`);
  let total = 0;
  blocks.forEach((b, i) => {
    if (!b || typeof b !== 'object' || typeof (b as { type?: unknown }).type !== 'string') {
      errors.push(`/blocks/${i}: not a block`);
      return;
    }
    const block = b as Record<string, unknown>;
    if (typeof block.block_id === 'string' && block.block_id.length > 255) errors.push(`/blocks/${i}/block_id longer than 255`);
    const text = plainTextOf(block.text);
    switch (block.type) {
      case 'header':
        if (text === undefined) errors.push(`/blocks/${i}/text missing`);
        else if (text.length > 150) errors.push(`/blocks/${i}/text/text must be at most 150 characters`);
        total += text?.length ?? 0;
        break;
      case 'section': {
        const fields = Array.isArray(block.fields) ? block.fields : undefined;
        if (text === undefined && !fields) errors.push(`/blocks/${i}: a section needs text or fields`);
        if (text !== undefined && text.length > 3000) errors.push(`/blocks/${i}/text/text must be at most 3000 characters`);
        if (text !== undefined && text.length === 0) errors.push(`/blocks/${i}/text/text must not be empty`);
        total += text?.length ?? 0;
        if (fields) {
          if (fields.length > 10) errors.push(`/blocks/${i}/fields: at most 10`);
          fields.forEach((f, j) => {
            const t = plainTextOf(f) ?? '';
            if (t.length > 2000) errors.push(`/blocks/${i}/fields/${j}/text must be at most 2000 characters`);
            total += t.length;
          });
        }
        break;
      }
      case 'context': {
        const elements = Array.isArray(block.elements) ? block.elements : [];
        if (elements.length === 0 || elements.length > 10) errors.push(`/blocks/${i}/elements: 1 to 10 elements`);
        for (const e of elements) {
          const t = plainTextOf(e) ?? '';
          if (t.length > 3000) errors.push(`/blocks/${i}/elements: text must be at most 3000 characters`);
          total += t.length;
        }
        break;
      }
      case 'actions': {
        const elements = Array.isArray(block.elements) ? (block.elements as Record<string, unknown>[]) : [];
        if (elements.length === 0 || elements.length > 25) errors.push(`/blocks/${i}/elements: 1 to 25 elements`);
        elements.forEach((e, j) => {
          if (e?.type !== 'button') return;
          const t = plainTextOf(e.text) ?? '';
          if (t.length === 0 || t.length > 75) errors.push(`/blocks/${i}/elements/${j}/text: 1 to 75 characters`);
          if (typeof e.action_id === 'string' && e.action_id.length > 255) errors.push(`/blocks/${i}/elements/${j}/action_id longer than 255`);
          if (typeof e.value === 'string' && e.value.length > 2000) errors.push(`/blocks/${i}/elements/${j}/value longer than 2000`);
          if (e.confirm !== undefined) for (const p of checkConfirm(e.confirm)) errors.push(`/blocks/${i}/elements/${j}/confirm${p}`);
        });
        break;
      }
      case 'input': {
        const label = plainTextOf(block.label);
        if (label === undefined || label.length > 2000) errors.push(`/blocks/${i}/label: plain_text of at most 2000 characters`);
        if (!block.element || typeof block.element !== 'object') errors.push(`/blocks/${i}/element missing`);
        break;
      }
      default:
        break;
    }
  });
  if (errors.length === 0 && total > 12_000) errors.push(`msg_blocks_too_long: ${total} characters of block text`);
  return errors;
}

export async function startFakeSlack(opts: FakeSlackOptions = {}): Promise<FakeSlack> {
  const host = opts.host ?? '127.0.0.1';
  const tokens = new Map<string, FakeTokenIdentity>();
  const channels = new Map<string, FakeChannel>();
  const users = new Map<string, FakeUser>();
  const groups = new Map<string, FakeUserGroup>();
  const messages: StoredMessage[] = [];
  const byKey = new Map<string, StoredMessage>();
  const callLog: FakeCall[] = [];
  const rateLimits = new Map<string, FakeRateLimit>();
  /** token + '\0' + method → accepted call times inside the window. */
  const windows = new Map<string, number[]>();
  const forced: { method: string; left: number; retryAfterSec: number }[] = [];
  let down: FakeDownMode = false;
  let seq = 0;
  // ts values: "<unix seconds>.<6 digits>" of the posting time, unique and increasing like Slack's
  // (conversations.history windows are in these units).
  let lastMicros = 0;
  const nextTs = () => {
    lastMicros = Math.max(Date.now() * 1000, lastMicros + 100);
    return `${Math.floor(lastMicros / 1_000_000)}.${String(lastMicros % 1_000_000).padStart(6, '0')}`;
  };

  const addToken = (token: string, identity: Partial<FakeTokenIdentity> = {}) => {
    const id = identityFor(token, identity, tokens.size);
    tokens.set(token, id);
    if (!users.has(id.userId)) users.set(id.userId, { id: id.userId, name: 'thoughtgate', realName: 'ThoughtGate', isBot: true });
    return id;
  };
  const seedTokens = opts.tokens ?? [DEFAULT_FAKE_TOKEN];
  if (Array.isArray(seedTokens)) for (const t of seedTokens) addToken(t);
  else for (const [t, id] of Object.entries(seedTokens)) addToken(t, id);
  const appTokens = new Set(opts.appTokens ?? [DEFAULT_FAKE_APP_TOKEN]);
  for (const c of opts.channels ?? []) channels.set(c.id, { ...c });
  for (const u of opts.users ?? []) users.set(u.id, { ...u });
  for (const g of opts.userGroups ?? []) groups.set(g.id, { ...g, users: [...g.users] });
  // apps.connections.open is Tier 1 at Slack (1+ per minute); setRateLimit() changes it.
  rateLimits.set('apps.connections.open', { ...(opts.socketMode?.connectionsOpenLimit ?? { limit: 10, windowMs: 60_000 }) });

  const findMessage = (channel: string, ts: string): StoredMessage | undefined => byKey.get(`${channel}/${ts}`);

  const snapshot = (m: StoredMessage): FakeMessage =>
    structuredClone({
      channel: m.channel,
      ts: m.ts,
      user: m.user,
      text: m.text,
      blocks: m.blocks,
      metadata: m.metadata,
      reactions: reactionList(m),
      history: m.history,
    });

  const reactionList = (m: StoredMessage): FakeReaction[] =>
    [...m.reactions].filter(([, us]) => us.length > 0).map(([name, us]) => ({ name, users: [...us], count: us.length }));

  const messageContent = (args: Record<string, unknown>, m?: StoredMessage) => {
    const text = str(args.text);
    const blocks = args.blocks as unknown[] | undefined;
    if (!m && (text === undefined || text === '') && !blocks) throw new SlackFail('no_text');
    const warnings: string[] = [];
    if (blocks !== undefined) {
      const problems = checkBlocks(blocks);
      if (problems.some((p) => p.startsWith('msg_blocks_too_long'))) throw new SlackFail('msg_blocks_too_long', { errors: problems });
      if (problems.length > 0) throw new SlackFail('invalid_blocks', { errors: problems });
    }
    let finalText = text;
    if (finalText !== undefined && finalText.length > 40_000) {
      finalText = finalText.slice(0, 40_000);
      warnings.push('message_truncated');
    }
    return { text: finalText, blocks, metadata: args.metadata, warnings };
  };

  type Handler = (args: Record<string, unknown>, token: string, who: FakeTokenIdentity) => Record<string, unknown>;
  const handlers: Record<string, Handler> = {
    'auth.test': (_a, _t, who) => ({
      url: 'https://fake.slack.com/',
      team: who.team,
      user: users.get(who.userId)?.name ?? 'thoughtgate',
      team_id: who.teamId,
      user_id: who.userId,
      bot_id: who.botId,
      is_enterprise_install: false,
    }),
    'conversations.info': (a) => {
      const id = required(a, 'channel', 'channel_not_found');
      const c = channels.get(id);
      if (!c) throw new SlackFail('channel_not_found');
      return { channel: { id: c.id, name: c.name, is_channel: !c.isPrivate, is_private: !!c.isPrivate, is_member: true } };
    },
    'conversations.history': (a) => {
      const channel = required(a, 'channel', 'channel_not_found');
      if (!channels.has(channel)) throw new SlackFail('channel_not_found');
      const inclusive = a.inclusive === true || a.inclusive === 'true' || a.inclusive === '1';
      const oldest = Number(str(a.oldest) ?? '0');
      const latest = str(a.latest) !== undefined ? Number(str(a.latest)) : Infinity;
      const limit = Math.min(999, Math.max(1, Number(str(a.limit) ?? '100') || 100));
      const metadata = a.include_all_metadata === true || a.include_all_metadata === 'true' || a.include_all_metadata === '1';
      const inWindow = messages
        .filter((m) => m.channel === channel)
        .filter((m) => {
          const t = Number(m.ts);
          return inclusive ? t >= oldest && t <= latest : t > oldest && t < latest;
        })
        .reverse();
      const start = Number(str(a.cursor) ?? '0') || 0;
      const page = inWindow.slice(start, start + limit);
      const more = start + limit < inWindow.length;
      return {
        messages: page.map((m) => ({
          type: 'message',
          user: m.user,
          bot_id: tokens.get(m.token)?.botId,
          ts: m.ts,
          text: m.text,
          ...(metadata && m.metadata !== undefined ? { metadata: m.metadata } : {}),
        })),
        has_more: more,
        response_metadata: { next_cursor: more ? String(start + limit) : '' },
      };
    },
    'chat.postMessage': (a, token, who) => {
      const channel = required(a, 'channel', 'channel_not_found');
      if (!channels.has(channel)) throw new SlackFail('channel_not_found');
      const content = messageContent(a);
      const ts = nextTs();
      const m: StoredMessage = {
        channel,
        ts,
        user: who.userId,
        token,
        text: content.text,
        blocks: content.blocks,
        metadata: content.metadata,
        reactions: new Map(),
        history: [{ time: Date.now(), text: content.text, blocks: content.blocks, metadata: content.metadata }],
      };
      messages.push(m);
      byKey.set(`${channel}/${ts}`, m);
      opts.log?.(`posted ${channel} ts=${ts}: ${(content.text ?? '').slice(0, 120)}`);
      return {
        channel,
        ts,
        message: { type: 'message', user: who.userId, bot_id: who.botId, ts, text: content.text, blocks: content.blocks },
        ...(content.warnings.length ? { warning: content.warnings.join(','), response_metadata: { warnings: content.warnings } } : {}),
      };
    },
    'chat.update': (a, _token, who) => {
      const channel = required(a, 'channel', 'channel_not_found');
      const ts = required(a, 'ts', 'message_not_found');
      if (!channels.has(channel)) throw new SlackFail('channel_not_found');
      const m = findMessage(channel, ts);
      if (!m) throw new SlackFail('message_not_found');
      if (m.user !== who.userId) throw new SlackFail('cant_update_message');
      const content = messageContent(a, m);
      if (content.text !== undefined) m.text = content.text;
      if (content.blocks !== undefined) m.blocks = content.blocks;
      if (content.metadata !== undefined) m.metadata = content.metadata;
      m.history.push({ time: Date.now(), text: m.text, blocks: m.blocks, metadata: m.metadata });
      return { channel, ts, text: m.text, message: { text: m.text, blocks: m.blocks } };
    },
    'reactions.get': (a) => {
      const channel = required(a, 'channel', 'channel_not_found');
      const ts = required(a, 'timestamp', 'message_not_found');
      if (!channels.has(channel)) throw new SlackFail('channel_not_found');
      const m = findMessage(channel, ts);
      if (!m) throw new SlackFail('message_not_found');
      const reactions = reactionList(m);
      // Like Slack, `reactions` is absent when the message has none.
      return {
        type: 'message',
        channel,
        message: { type: 'message', user: m.user, ts: m.ts, text: m.text, ...(reactions.length ? { reactions } : {}) },
      };
    },
    'users.info': (a) => {
      const u = users.get(required(a, 'user', 'user_not_found'));
      if (!u) throw new SlackFail('user_not_found');
      return {
        user: {
          id: u.id,
          team_id: 'T0FAKE',
          name: u.name,
          real_name: u.realName ?? u.name,
          deleted: !!u.deleted,
          is_bot: !!u.isBot,
          profile: { display_name: u.displayName ?? '', real_name: u.realName ?? u.name },
        },
      };
    },
    'usergroups.users.list': (a) => {
      const g = groups.get(required(a, 'usergroup', 'no_such_subteam'));
      if (!g) throw new SlackFail('no_such_subteam');
      return { users: [...g.users] };
    },
  };

  /** Returns seconds to wait when token+method is over its window, else records the call. */
  const overLimit = (token: string, method: string, now: number): number | undefined => {
    const limit = rateLimits.get(method) ?? rateLimits.get('*');
    if (!limit) return undefined;
    const key = `${token}\0${method}`;
    const times = (windows.get(key) ?? []).filter((t) => t > now - limit.windowMs);
    windows.set(key, times);
    if (times.length >= limit.limit) {
      return limit.retryAfterSec ?? Math.max(1, Math.ceil((times[0]! + limit.windowMs - now) / 1000));
    }
    times.push(now);
    return undefined;
  };

  const takeForced = (method: string): number | undefined => {
    const f = forced.find((x) => x.left > 0 && (x.method === method || x.method === '*'));
    if (!f) return undefined;
    f.left -= 1;
    return f.retryAfterSec;
  };

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json; charset=utf-8', ...headers });
    res.end(text);
  };

  const readBody = (req: http.IncomingMessage): Promise<string | undefined> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          resolve(undefined);
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const parseArgs = (req: http.IncomingMessage, url: URL, body: string): Record<string, unknown> => {
    const args: Record<string, unknown> = Object.create(null);
    for (const [k, v] of url.searchParams) args[k] = v;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type === 'application/json' && body.trim() !== '') {
      const parsed: unknown = JSON.parse(body);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) Object.assign(args, parsed);
    } else if (body !== '') {
      for (const [k, v] of new URLSearchParams(body)) args[k] = v;
    }
    for (const k of JSON_ARGS) {
      if (typeof args[k] === 'string') {
        try {
          args[k] = JSON.parse(args[k] as string);
        } catch {
          throw new SlackFail(k === 'blocks' ? 'invalid_blocks_format' : 'invalid_arguments', { detail: `${k} is not JSON` });
        }
      }
    }
    return args;
  };

  const handleControl = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const what = url.pathname.slice('/_control/'.length);
    if (req.method !== 'POST' || (what !== 'react' && what !== 'click')) return send(res, 404, { ok: false, error: 'not_found' });
    const body = (await readBody(req)) ?? '';
    try {
      const a = parseArgs(req, url, body);
      const channel = required(a, 'channel');
      const ts = required(a, 'ts');
      if (what === 'click') {
        const clicked = socket.control.click({ channel, ts, user: required(a, 'user'), actionId: required(a, 'action_id') });
        return send(res, 200, { ok: true, envelope_id: clicked.envelopeId, connections: socket.control.connections });
      }
      const name = required(a, 'name');
      const user = required(a, 'user');
      if (a.remove === true || a.remove === 'true') fake.removeReaction(channel, ts, name, user);
      else fake.addReaction(channel, ts, name, user);
      const m = findMessage(channel, ts)!;
      send(res, 200, { ok: true, reactions: reactionList(m) });
    } catch (e) {
      send(res, 400, { ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const time = Date.now();
    const url = new URL(req.url ?? '/', 'http://fake');
    if (opts.controlEndpoint && url.pathname.startsWith('/_control/')) return handleControl(req, res, url);
    if (url.pathname.startsWith('/actions/') && req.method === 'POST') {
      const r = socket.respond(url.pathname, (await readBody(req)) ?? '');
      return send(res, r.status, r.body);
    }
    const match = /^\/api\/([A-Za-z0-9._]+)$/.exec(url.pathname);
    if (!match || (req.method !== 'POST' && req.method !== 'GET')) return send(res, 404, { ok: false, error: 'not_found' });
    const method = match[1]!;
    const call: FakeCall = { seq: ++seq, method, time, args: {}, status: 200 };
    callLog.push(call);
    const body = await readBody(req);
    if (body === undefined) return; // oversized; the socket is gone
    const finish = (payload: Record<string, unknown>) => {
      call.ok = payload.ok === true;
      if (typeof payload.error === 'string') call.error = payload.error;
      send(res, 200, payload);
    };
    let parseError: SlackFail | undefined;
    try {
      call.args = parseArgs(req, url, body);
    } catch (e) {
      parseError = e instanceof SlackFail ? e : new SlackFail('invalid_json');
    }
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : str(call.args.token);
    if (token !== undefined) call.token = token;
    delete call.args.token; // keep secrets out of the log's args; `token` has it
    if (down === 'http500') {
      call.status = 500;
      return send(res, 500, 'Internal Server Error');
    }
    if (parseError) return finish({ ok: false, error: parseError.error, ...parseError.extra });
    // Slack's rate-limit answer: 429 with Retry-After (seconds), for force429 and the sliding-window limits.
    const tooMany = (wait: number): void => {
      call.status = 429;
      call.retryAfter = wait;
      send(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(wait) });
    };
    const forcedRetry = takeForced(method);
    if (forcedRetry !== undefined) return tooMany(forcedRetry);
    const socketHandler = socket.handlers[method];
    const handler = handlers[method] ?? socketHandler;
    if (!handler) return finish({ ok: false, error: 'unknown_method' });
    if (!token) return finish({ ok: false, error: 'not_authed' });
    const appLevel = method === 'apps.connections.open';
    if (appTokens.has(token) !== appLevel)
      return finish({ ok: false, error: appTokens.has(token) || tokens.has(token) ? 'not_allowed_token_type' : 'invalid_auth' });
    // Over a sliding-window limit (setRateLimit; Tier 1 for apps.connections.open): counted once authenticated.
    const limited = (): boolean => {
      const wait = overLimit(token, method, time);
      if (wait !== undefined) tooMany(wait);
      return wait !== undefined;
    };
    if (appLevel) {
      if (limited()) return;
      try {
        return finish({ ok: true, ...socket.handlers[method]!(call.args) });
      } catch (e) {
        return finish({ ok: false, error: e instanceof SlackFail ? e.error : 'internal_error' });
      }
    }
    const who = tokens.get(token);
    if (!who) return finish({ ok: false, error: 'invalid_auth' });
    if (limited()) return;
    try {
      finish({ ok: true, ...handler(call.args, token, who) });
    } catch (e) {
      if (e instanceof SlackFail) return finish({ ok: false, error: e.error, ...e.extra });
      finish({ ok: false, error: 'internal_error', detail: e instanceof Error ? e.message : String(e) });
    }
  };

  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, e instanceof Error ? e.message : String(e));
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  await listen(opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  const socket = createSocketMode(
    {
      server,
      host,
      port,
      findMessage,
      channelName: (id) => channels.get(id)?.name,
      userName: (id) => users.get(id)?.name,
      channelExists: (id) => channels.has(id),
      inChannel: (id, user) => {
        const members = channels.get(id)?.members;
        return members === undefined || members.includes(user);
      },
      fail: (error, detail) => {
        throw new SlackFail(error, detail !== undefined ? { detail } : {});
      },
      checkBlocks,
    },
    opts.socketMode,
  );

  const fake: FakeSlack = {
    url: `http://${host}:${port}/api/`,
    port,
    tokens,
    appTokens,
    socketMode: socket.control,
    addChannel: (c) => void channels.set(c.id, { ...c }),
    addUser: (u) => void users.set(u.id, { ...u }),
    addUserGroup: (g) => void groups.set(g.id, { ...g, users: [...g.users] }),
    addToken,
    removeToken: (t) => void tokens.delete(t),
    addReaction(channel, ts, name, userId) {
      const m = findMessage(channel, ts);
      if (!m) throw new Error(`fake slack: no message ${channel}/${ts}`);
      const list = m.reactions.get(name) ?? [];
      if (!list.includes(userId)) list.push(userId);
      m.reactions.set(name, list);
    },
    removeReaction(channel, ts, name, userId) {
      const m = findMessage(channel, ts);
      if (!m) throw new Error(`fake slack: no message ${channel}/${ts}`);
      const list = (m.reactions.get(name) ?? []).filter((u) => u !== userId);
      if (list.length) m.reactions.set(name, list);
      else m.reactions.delete(name);
    },
    messages: (channel) => messages.filter((m) => channel === undefined || m.channel === channel).map(snapshot),
    calls: (method) => callLog.filter((c) => method === undefined || c.method === method).map((c) => structuredClone(c)),
    clearCalls: () => void callLog.splice(0),
    setRateLimit(method, limit) {
      if (limit) rateLimits.set(method, { ...limit });
      else rateLimits.delete(method);
    },
    force429(method, count, retryAfterSec) {
      forced.push({ method, left: count, retryAfterSec });
    },
    async setDown(mode) {
      if (closed || mode === down) return;
      const wasRefusing = down === 'refuse';
      down = mode;
      if (mode === 'refuse') await stopListening();
      else if (wasRefusing) await listen(port);
    },
    async close() {
      if (closed) return;
      closed = true;
      socket.close();
      if (down !== 'refuse') await stopListening();
    },
  };
  return fake;
}

/** Reads a seed file for the standalone process. */
export function loadSeed(file: string): FakeSlackSeed {
  return JSON.parse(readFileSync(file, 'utf8')) as FakeSlackSeed;
}

async function main(): Promise<void> {
  const seed = process.env.FAKE_SLACK_SEED ? loadSeed(process.env.FAKE_SLACK_SEED) : {};
  let base = '';
  const fake = await startFakeSlack({
    ...seed,
    port: Number(process.env.PORT ?? 3999),
    host: process.env.HOST ?? '127.0.0.1',
    controlEndpoint: true,
    log: (line) => {
      console.log(line);
      const m = /^posted (\S+) ts=([0-9.]+)/.exec(line);
      if (m) {
        const posted = fake.messages(m[1]).find((x) => x.ts === m[2]);
        const buttons = JSON.stringify(posted?.blocks ?? []).includes('"type":"actions"');
        const body = buttons
          ? JSON.stringify({ channel: m[1], ts: m[2], action_id: 'thoughtgate_approve', user: '<approver user id>' })
          : JSON.stringify({ channel: m[1], ts: m[2], name: 'white_check_mark', user: '<approver user id>' });
        console.log(`  approve with: curl -s -X POST ${base}/_control/${buttons ? 'click' : 'react'} -H 'content-type: application/json' -d '${body}'`);
      }
    },
  });
  base = fake.url.replace(/\/api\/$/, '');
  console.log(`fake Slack Web API listening on ${fake.url}`);
  console.log(`tokens: ${[...fake.tokens.keys()].join(', ')}; channels: ${(seed.channels ?? []).map((c) => c.id).join(', ') || '(none)'}`);
  const stop = () => {
    void fake.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/**
 * True when this file is the process entry point. A bundle of some other entry point that
 * includes this module (bench/slack.ts bundled with esbuild) shares its import.meta.url with the
 * entry, so the entry's file name must also be this file's or the documented bundle's.
 */
function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry || !/(?:^|[\\/])(?:slack-server|fake-slack)(?:\.[cm]?[jt]s)?$/.test(entry)) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}

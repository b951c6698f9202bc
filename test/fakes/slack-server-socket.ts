// Socket Mode for the fake Slack (slack-server.ts): what a Slack app with an app-level token
// (xapp-…) sees, built on the `ws` library, so the real `@slack/socket-mode` client runs against it.
//
//   - apps.connections.open (app token only; a bot token gets not_allowed_token_type) answers a
//     one-use ws:// URL on the fake's own port (/link/?ticket=…);
//   - on connect the fake sends `hello`; then `interactive` envelopes that a test triggers with
//     click() (a `block_actions` payload built from the button that is really in the stored
//     message: no button, no click) or submitView() (a `view_submission` of a modal opened with
//     views.open);
//   - acks (`{envelope_id, payload}`) are recorded; an envelope not acked within redeliverAfterMs
//     is delivered again (up to maxRedeliveries times, with retry_attempt/retry_reason), to any
//     open connection; one with no open connection waits for the next `hello`. For `interactive`
//     envelopes only when redeliverInteractive is on (see below): by default a click is delivered
//     once, and a click made while no connection is open is lost (the clicker sees Slack's error);
//   - submitView() only by the user the modal was opened for; a modal with input blocks must
//     have `submit`; button `confirm` objects are checked (title/text/confirm/deny plain_text);
//   - apps.connections.open is rate limited like Slack's Tier 1 (default 10 per minute per app
//     token, connectionsOpenLimit), so reconnect storms show as 429s;
//   - chat.postEphemeral to a user not in the channel (channel `members` given) fails with
//     user_not_in_channel;
//   - send(type, payload) delivers any other envelope (events_api, slash_commands…);
//   - loseAcks(n) drops the next n acks on the way (the envelopes then come again);
//   - disconnect(reason) sends a `disconnect` envelope (refresh_requested, link_disabled,
//     warning); drop() closes every connection abruptly;
//   - Web API: views.open (a trigger_id from a click, used once, within triggerTtlMs; Slack's is
//     3 s) and chat.postEphemeral (recorded in ephemerals()).
// Slack documents redelivery for Events API envelopes; whether it redelivers unacknowledged
// interactive envelopes is not documented (the clicker sees an error after 3 s). So by default the
// fake does not: a receiver must record a click or tell the clicker, never count on a second
// delivery. redeliverInteractive (option, or setInteractiveRedelivery()) turns it on, to test the
// other hard case: the same click twice (idempotency).
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export const DEFAULT_FAKE_APP_TOKEN = 'xapp-test';
export const FAKE_APP_ID = 'A0FAKE';

export interface FakeSocketModeOptions {
  /** Unacknowledged envelopes are delivered again after this long (default 3000 ms). */
  redeliverAfterMs?: number;
  /** How many times an envelope is delivered again at most (default 3). */
  maxRedeliveries?: number;
  /** How long a click's trigger_id works for views.open (default 3000 ms, Slack's). */
  triggerTtlMs?: number;
  /** apps.connections.open calls per app token per window (default 10 per 60 s, like Slack's Tier 1 with a burst). */
  connectionsOpenLimit?: { limit: number; windowMs: number };
  /** Redeliver unacknowledged `interactive` envelopes too (default false: Slack documents it only for Events API envelopes). */
  redeliverInteractive?: boolean;
}

export interface FakeEnvelope {
  envelopeId: string;
  /** interactive (click, submitView), or whatever send() was given (events_api, slash_commands…). */
  type: string;
  payload: Record<string, unknown>;
  /** Times it was sent (1 = first delivery only). */
  deliveries: number;
  ackedAt?: number;
  ackPayload?: unknown;
  /** Redelivered maxRedeliveries times and still not acked: Slack gives up. */
  gaveUp?: boolean;
}

export interface FakeView {
  id: string;
  /** Who opened it (the clicker whose trigger_id was used). */
  user: string;
  view: Record<string, unknown>;
}

export interface FakeEphemeral {
  channel: string;
  user: string;
  /** How it was sent: chat.postEphemeral (default) or a click's response_url. */
  via?: 'response_url';
  text?: string;
  blocks?: unknown[];
  time: number;
}

export interface FakeClick {
  user: string;
  channel: string;
  ts: string;
  /** action_id of a button in the message. */
  actionId: string;
}

export interface FakeSocketMode {
  /** Open Socket Mode connections. */
  readonly connections: number;
  /** Connections opened since the start (a reconnect adds one). */
  readonly opened: number;
  /** A person clicks a button of a posted message; throws when the message has no such button. */
  click(c: FakeClick): { envelopeId: string; triggerId: string };
  /** A person submits a modal; `inputs` maps an input's action_id to the typed text. */
  submitView(viewId: string, user: string, inputs?: Record<string, string>): { envelopeId: string };
  /** Delivers any other envelope (events_api, slash_commands…), acked and redelivered like the rest. */
  send(type: string, payload: Record<string, unknown>): { envelopeId: string };
  /** Resolves with the ack's payload once `envelopeId` is acked; rejects after `timeoutMs`. */
  acked(envelopeId: string, timeoutMs?: number): Promise<unknown>;
  /** Resolves once `n` connections are open (after their `hello`); rejects after `timeoutMs`. */
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  envelopes(): FakeEnvelope[];
  views(): FakeView[];
  ephemerals(): FakeEphemeral[];
  /** Sends a `disconnect` envelope to every open connection. */
  disconnect(reason: 'refresh_requested' | 'link_disabled' | 'warning'): void;
  /** Closes every connection without a close handshake (a network failure). */
  drop(): void;
  /** The next `count` acks are lost on the way (not recorded), so those envelopes come again. */
  loseAcks(count: number): void;
  /** Acks lost so far (loseAcks). */
  readonly lostAcks: number;
  /** Turns redelivery of unacknowledged `interactive` envelopes on or off (from now on). */
  setInteractiveRedelivery(on: boolean): void;
}

/** What the socket part needs from the fake's Web API part. */
export interface SocketModeDeps {
  server: http.Server;
  host: string;
  port: number;
  /** The stored message's channel, ts, posting user, text and blocks. */
  findMessage(channel: string, ts: string): { channel: string; ts: string; user: string; text?: string; blocks?: unknown[] } | undefined;
  channelName(id: string): string | undefined;
  userName(id: string): string | undefined;
  channelExists(id: string): boolean;
  /** Whether `user` is in `channel` (true when the channel lists no members). */
  inChannel(channel: string, user: string): boolean;
  /** Throws the fake's Slack-shaped error. */
  fail(error: string, detail?: string): never;
  checkBlocks(blocks: unknown): string[];
}

type Api = (args: Record<string, unknown>) => Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function createSocketMode(deps: SocketModeDeps, opts: FakeSocketModeOptions = {}) {
  const redeliverAfterMs = opts.redeliverAfterMs ?? 3000;
  const maxRedeliveries = opts.maxRedeliveries ?? 3;
  const triggerTtlMs = opts.triggerTtlMs ?? 3000;
  let redeliverInteractive = opts.redeliverInteractive ?? false;
  const redelivers = (e: FakeEnvelope) => e.type !== 'interactive' || redeliverInteractive;
  const wss = new WebSocketServer({ noServer: true });
  const tickets = new Set<string>();
  const open: WebSocket[] = [];
  const envelopes = new Map<string, FakeEnvelope>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const ackWaiters = new Map<string, (payload: unknown) => void>();
  const connWaiters = new Set<() => void>();
  const triggers = new Map<string, { user: string; expiresAt: number }>();
  const views = new Map<string, FakeView>();
  const ephemerals: FakeEphemeral[] = [];
  /** response_url path → the click it answers (Slack allows 5 uses in 30 min). */
  const responseUrls = new Map<string, { channel: string; user: string; uses: number }>();
  let opened = 0;
  let toLose = 0;
  let lost = 0;
  let seq = 0;
  let next = 0;
  let closed = false;

  const id = (prefix: string) => `${prefix}${(++seq).toString(36).toUpperCase()}${randomBytes(4).toString('hex').toUpperCase()}`;

  const send = (e: FakeEnvelope): boolean => {
    if (open.length === 0) return false;
    const ws = open[next++ % open.length]!;
    const retry = e.deliveries > 0 ? { retry_attempt: e.deliveries, retry_reason: 'timeout' } : {};
    ws.send(JSON.stringify({ envelope_id: e.envelopeId, type: e.type, payload: e.payload, accepts_response_payload: true, ...retry }));
    e.deliveries += 1;
    return true;
  };

  /** Delivers now if a connection is open, and (re)arms the redelivery timer either way. */
  const deliver = (e: FakeEnvelope) => {
    if (closed || e.ackedAt !== undefined || e.gaveUp) return;
    const sent = send(e);
    if (!redelivers(e)) {
      // Delivered once, or lost when no connection was open.
      if (!sent) e.gaveUp = true;
      return;
    }
    clearTimeout(timers.get(e.envelopeId));
    timers.set(
      e.envelopeId,
      setTimeout(() => {
        timers.delete(e.envelopeId);
        if (e.ackedAt !== undefined) return;
        if (e.deliveries > maxRedeliveries || !redelivers(e)) {
          e.gaveUp = true;
          return;
        }
        deliver(e);
      }, redeliverAfterMs),
    );
  };

  const enqueue = (payload: Record<string, unknown>, type = 'interactive'): FakeEnvelope => {
    const e: FakeEnvelope = { envelopeId: randomBytes(16).toString('hex'), type, payload, deliveries: 0 };
    envelopes.set(e.envelopeId, e);
    deliver(e);
    return e;
  };

  const onMessage = (data: Buffer) => {
    let msg: { envelope_id?: unknown; payload?: unknown };
    try {
      msg = JSON.parse(data.toString('utf8')) as typeof msg;
    } catch {
      return;
    }
    const e = typeof msg.envelope_id === 'string' ? envelopes.get(msg.envelope_id) : undefined;
    if (!e || e.ackedAt !== undefined) return;
    if (toLose > 0) {
      toLose -= 1;
      lost += 1;
      return;
    }
    e.ackedAt = Date.now();
    e.ackPayload = msg.payload;
    clearTimeout(timers.get(e.envelopeId));
    timers.delete(e.envelopeId);
    ackWaiters.get(e.envelopeId)?.(msg.payload);
    ackWaiters.delete(e.envelopeId);
  };

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const ticket = url.searchParams.get('ticket') ?? '';
    if (closed || url.pathname !== '/link/' || !tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      opened += 1;
      open.push(ws);
      ws.on('message', onMessage);
      ws.on('close', () => {
        const i = open.indexOf(ws);
        if (i >= 0) open.splice(i, 1);
      });
      ws.on('error', () => ws.terminate());
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: open.length,
          debug_info: { host: 'fake-slack', build_number: 1, approximate_connection_time: 18060 },
          connection_info: { app_id: FAKE_APP_ID },
        }),
      );
      for (const w of [...connWaiters]) w();
      // Envelopes that found no connection go out now (their redelivery timers keep running).
      for (const e of envelopes.values()) if (e.ackedAt === undefined && !e.gaveUp && e.deliveries === 0) send(e);
    });
  };
  deps.server.on('upgrade', onUpgrade);

  const takeTrigger = (triggerId: string): { user: string } => {
    const t = triggers.get(triggerId);
    triggers.delete(triggerId);
    if (!t) return deps.fail('invalid_trigger_id');
    if (t.expiresAt < Date.now()) return deps.fail('expired_trigger_id');
    return t;
  };

  const teamOf = { id: 'T0FAKE', domain: 'fake' };

  const responseUrl = (channel: string, user: string): string => {
    const path = `/actions/${randomBytes(6).toString('hex')}`;
    responseUrls.set(path, { channel, user, uses: 0 });
    return `http://${deps.host}:${deps.port}${path}`;
  };

  /** POST to a click's response_url: an ephemeral to the clicker unless replace_original/delete_original or response_type in_channel. */
  const respond = (path: string, body: string): { status: number; body: unknown } => {
    const r = responseUrls.get(path);
    if (!r) return { status: 404, body: 'no_such_response_url' };
    if (++r.uses > 5) return { status: 400, body: 'used_too_many_times' };
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return { status: 400, body: 'invalid_payload' };
    }
    const text = str(msg.text);
    if (!text) return { status: 400, body: 'no_text' };
    if (msg.replace_original === true || msg.delete_original === true || msg.response_type === 'in_channel')
      return { status: 400, body: 'fake slack: only ephemeral answers are modelled' };
    ephemerals.push({ channel: r.channel, user: r.user, via: 'response_url', text, time: Date.now() });
    return { status: 200, body: { ok: true } };
  };

  /** Web API methods of this part; `apps.connections.open` is called with the app token. */
  const handlers: Record<string, Api> = {
    'apps.connections.open': () => {
      const ticket = randomBytes(16).toString('hex');
      tickets.add(ticket);
      return { url: `ws://${deps.host}:${deps.port}/link/?ticket=${ticket}&app_id=${FAKE_APP_ID}` };
    },
    'views.open': (a) => {
      const opener = takeTrigger(str(a.trigger_id) ?? '');
      const view = a.view as Record<string, unknown> | undefined;
      if (!view || typeof view !== 'object' || view.type !== 'modal') return deps.fail('invalid_arguments', 'view must be a modal');
      const title = (view.title as { text?: unknown } | undefined)?.text;
      if (typeof title !== 'string' || title.length > 24) return deps.fail('invalid_arguments', 'title: plain_text of at most 24 characters');
      const blocks = Array.isArray(view.blocks) ? (view.blocks as { type?: unknown }[]) : [];
      if (blocks.some((b) => b?.type === 'input') && typeof (view.submit as { text?: unknown } | undefined)?.text !== 'string')
        return deps.fail('invalid_arguments', 'a modal with input blocks needs submit');
      const problems = deps.checkBlocks(view.blocks ?? []);
      if (problems.length) return deps.fail('invalid_blocks', problems.join('; '));
      if (typeof view.private_metadata === 'string' && view.private_metadata.length > 3000) return deps.fail('invalid_arguments', 'private_metadata too long');
      const v: FakeView = { id: id('V'), user: opener.user, view: { ...structuredClone(view), state: { values: {} } } };
      v.view.id = v.id;
      views.set(v.id, v);
      return { view: structuredClone(v.view) };
    },
    'chat.postEphemeral': (a) => {
      const channel = str(a.channel) ?? '';
      const user = str(a.user) ?? '';
      if (!deps.channelExists(channel)) return deps.fail('channel_not_found');
      if (!user || deps.userName(user) === undefined) return deps.fail('user_not_found');
      if (!deps.inChannel(channel, user)) return deps.fail('user_not_in_channel');
      const text = str(a.text);
      const blocks = a.blocks as unknown[] | undefined;
      if ((text === undefined || text === '') && !blocks) return deps.fail('no_text');
      ephemerals.push({ channel, user, ...(text !== undefined ? { text } : {}), ...(blocks ? { blocks } : {}), time: Date.now() });
      return { message_ts: `${Math.floor(Date.now() / 1000)}.${String(ephemerals.length).padStart(6, '0')}` };
    },
  };

  const waitFor = <T>(what: string, timeoutMs: number, register: (done: (v: T) => void) => () => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let unregister = () => {};
      const timer = setTimeout(() => {
        unregister();
        reject(new Error(`fake slack: ${what} did not happen within ${timeoutMs} ms`));
      }, timeoutMs);
      unregister = register((v) => {
        clearTimeout(timer);
        unregister();
        resolve(v);
      });
    });

  const control: FakeSocketMode = {
    get connections() {
      return open.length;
    },
    get opened() {
      return opened;
    },
    click({ user, channel, ts, actionId }) {
      const m = deps.findMessage(channel, ts);
      if (!m) throw new Error(`fake slack: no message ${channel}/${ts}`);
      let found: { block_id?: string; element: Record<string, unknown> } | undefined;
      for (const b of (m.blocks ?? []) as { type?: string; block_id?: string; elements?: Record<string, unknown>[] }[]) {
        if (b?.type !== 'actions') continue;
        const element = (b.elements ?? []).find((e) => e?.type === 'button' && e.action_id === actionId);
        if (element) found = { ...(b.block_id !== undefined ? { block_id: b.block_id } : {}), element };
      }
      if (!found) throw new Error(`fake slack: message ${channel}/${ts} has no button ${actionId}`);
      const triggerId = `${Date.now()}.${++seq}.${randomBytes(8).toString('hex')}`;
      triggers.set(triggerId, { user, expiresAt: Date.now() + triggerTtlMs });
      const actionTs = (Date.now() / 1000).toFixed(6);
      const e = enqueue({
        type: 'block_actions',
        user: { id: user, username: deps.userName(user) ?? user, name: deps.userName(user) ?? user, team_id: teamOf.id },
        api_app_id: FAKE_APP_ID,
        token: 'fake-verification-token',
        container: { type: 'message', message_ts: m.ts, channel_id: m.channel, is_ephemeral: false },
        trigger_id: triggerId,
        team: teamOf,
        enterprise: null,
        is_enterprise_install: false,
        channel: { id: m.channel, name: deps.channelName(m.channel) ?? m.channel },
        message: { type: 'message', user: m.user, ts: m.ts, text: m.text, blocks: structuredClone(m.blocks) },
        state: { values: {} },
        response_url: responseUrl(m.channel, user),
        actions: [
          {
            type: 'button',
            action_id: actionId,
            block_id: found.block_id,
            text: found.element.text,
            value: found.element.value,
            ...(found.element.style !== undefined ? { style: found.element.style } : {}),
            action_ts: actionTs,
          },
        ],
      });
      return { envelopeId: e.envelopeId, triggerId };
    },
    submitView(viewId, user, inputs = {}) {
      const v = views.get(viewId);
      if (!v) throw new Error(`fake slack: no view ${viewId}`);
      // A modal is shown only to the person it was opened for.
      if (v.user !== user) throw new Error(`fake slack: view ${viewId} was opened for ${v.user}, not ${user}`);
      const values: Record<string, Record<string, { type: string; value: string | null }>> = {};
      for (const b of (v.view.blocks ?? []) as { type?: string; block_id?: string; element?: { type?: string; action_id?: string } }[]) {
        if (b?.type !== 'input' || !b.block_id || !b.element?.action_id) continue;
        values[b.block_id] = { [b.element.action_id]: { type: b.element.type ?? 'plain_text_input', value: inputs[b.element.action_id] ?? null } };
      }
      const e = enqueue({
        type: 'view_submission',
        team: teamOf,
        user: { id: user, username: deps.userName(user) ?? user, name: deps.userName(user) ?? user, team_id: teamOf.id },
        api_app_id: FAKE_APP_ID,
        token: 'fake-verification-token',
        trigger_id: `${Date.now()}.${++seq}.${randomBytes(8).toString('hex')}`,
        view: { ...structuredClone(v.view), state: { values } },
        response_urls: [],
        is_enterprise_install: false,
        enterprise: null,
      });
      return { envelopeId: e.envelopeId };
    },
    send(type, payload) {
      return { envelopeId: enqueue(structuredClone(payload), type).envelopeId };
    },
    acked(envelopeId, timeoutMs = 5000) {
      const e = envelopes.get(envelopeId);
      if (e?.ackedAt !== undefined) return Promise.resolve(e.ackPayload);
      return waitFor(`the ack of ${envelopeId}`, timeoutMs, (done) => {
        ackWaiters.set(envelopeId, done);
        return () => ackWaiters.delete(envelopeId);
      });
    },
    waitForConnections(n, timeoutMs = 5000) {
      if (open.length >= n) return Promise.resolve();
      return waitFor<void>(`${n} Socket Mode connections`, timeoutMs, (done) => {
        const check = () => {
          if (open.length >= n) done();
        };
        connWaiters.add(check);
        return () => connWaiters.delete(check);
      });
    },
    envelopes: () => [...envelopes.values()].map((e) => structuredClone(e)),
    views: () => [...views.values()].map((v) => structuredClone(v)),
    ephemerals: () => ephemerals.map((e) => structuredClone(e)),
    disconnect(reason) {
      for (const ws of open) ws.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'fake-slack' } }));
    },
    drop() {
      for (const ws of [...open]) ws.terminate();
    },
    loseAcks(count) {
      toLose += count;
    },
    get lostAcks() {
      return lost;
    },
    setInteractiveRedelivery(on) {
      redeliverInteractive = on;
    },
  };

  const close = () => {
    closed = true;
    deps.server.off('upgrade', onUpgrade);
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    for (const ws of [...open]) ws.terminate();
    wss.close();
  };

  return { handlers, control, close, respond };
}

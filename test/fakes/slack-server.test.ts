// The fake Slack Web API itself: wire behaviour with plain fetch, compatibility with the real
// WebClient, rate limits, outages, and the standalone process with its control endpoint.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebClient } from '@slack/web-api';
import { DEFAULT_FAKE_TOKEN, startFakeSlack, type FakeSlack } from './slack-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

let fake: FakeSlack;

async function api(method: string, args: Record<string, string> = {}, token: string | null = DEFAULT_FAKE_TOKEN) {
  const res = await fetch(`${fake.url}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: new URLSearchParams(args).toString(),
  });
  return { status: res.status, headers: res.headers, body: (await res.json().catch(() => null)) as Record<string, any> };
}

beforeEach(async () => {
  fake = await startFakeSlack({
    channels: [{ id: 'C1', name: 'approvals' }],
    users: [{ id: 'U1', name: 'alice', realName: 'Alice A.', displayName: 'ali' }],
    userGroups: [{ id: 'S1', users: ['U1'] }],
  });
});
afterEach(async () => {
  await fake.close();
});

describe('wire behaviour', () => {
  test('url ends in /api/ and auth is checked', async () => {
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
    expect((await api('auth.test', {}, null)).body).toMatchObject({ ok: false, error: 'not_authed' });
    expect((await api('auth.test', {}, 'xoxb-wrong')).body).toMatchObject({ ok: false, error: 'invalid_auth' });
    const ok = await api('auth.test');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, user_id: 'UBOT', team_id: 'T0FAKE' });
    // A token in the body works too, and never shows up in the logged args.
    const viaBody = await api('auth.test', { token: DEFAULT_FAKE_TOKEN }, null);
    expect(viaBody.body.ok).toBe(true);
    expect(fake.calls('auth.test').at(-1)).toMatchObject({ token: DEFAULT_FAKE_TOKEN, args: {} });
  });

  test('unknown method', async () => {
    expect((await api('files.upload')).body).toEqual({ ok: false, error: 'unknown_method' });
  });

  test('post, update, reactions, users, groups, conversations', async () => {
    expect((await api('chat.postMessage', { channel: 'C404', text: 'x' })).body.error).toBe('channel_not_found');
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: 'hello' } }];
    const a = await api('chat.postMessage', {
      channel: 'C1',
      text: 'hi',
      blocks: JSON.stringify(blocks),
      metadata: JSON.stringify({ event_type: 'e', event_payload: { id: '1' } }),
    });
    const b = await api('chat.postMessage', { channel: 'C1', text: 'again' });
    expect(a.body).toMatchObject({ ok: true, channel: 'C1' });
    expect(a.body.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(Number(b.body.ts)).toBeGreaterThan(Number(a.body.ts));
    expect((await api('chat.update', { channel: 'C1', ts: '1.000000', text: 'x' })).body.error).toBe('message_not_found');
    expect((await api('chat.update', { channel: 'C1', ts: a.body.ts, text: 'done' })).body.ok).toBe(true);

    const empty = await api('reactions.get', { channel: 'C1', timestamp: a.body.ts, full: 'true' });
    expect(empty.body).toMatchObject({ ok: true, type: 'message', message: { ts: a.body.ts } });
    expect(empty.body.message.reactions).toBeUndefined();
    fake.addReaction('C1', a.body.ts, 'white_check_mark', 'U1');
    fake.addReaction('C1', a.body.ts, 'white_check_mark', 'U2');
    fake.addReaction('C1', a.body.ts, 'white_check_mark', 'U2'); // idempotent
    const got = await api('reactions.get', { channel: 'C1', timestamp: a.body.ts, full: 'true' });
    expect(got.body.message.reactions).toEqual([{ name: 'white_check_mark', users: ['U1', 'U2'], count: 2 }]);
    fake.removeReaction('C1', a.body.ts, 'white_check_mark', 'U1');
    expect((await api('reactions.get', { channel: 'C1', timestamp: a.body.ts })).body.message.reactions[0].users).toEqual(['U2']);

    expect((await api('users.info', { user: 'U1' })).body.user).toMatchObject({
      id: 'U1',
      name: 'alice',
      real_name: 'Alice A.',
      profile: { display_name: 'ali' },
    });
    expect((await api('users.info', { user: 'U404' })).body.error).toBe('user_not_found');
    expect((await api('usergroups.users.list', { usergroup: 'S1' })).body).toEqual({ ok: true, users: ['U1'] });
    expect((await api('usergroups.users.list', { usergroup: 'S404' })).body.error).toBe('no_such_subteam');
    expect((await api('conversations.info', { channel: 'C1' })).body.channel).toMatchObject({ id: 'C1', name: 'approvals' });
    expect((await api('conversations.info', { channel: 'C404' })).body.error).toBe('channel_not_found');

    const [m] = fake.messages('C1');
    expect(m).toMatchObject({ channel: 'C1', ts: a.body.ts, user: 'UBOT', text: 'done', blocks, metadata: { event_type: 'e' } });
    expect(m!.history.map((h) => h.text)).toEqual(['hi', 'done']);
    expect(m!.reactions).toEqual([{ name: 'white_check_mark', users: ['U2'], count: 1 }]);
    expect(fake.messages()).toHaveLength(2);
    expect(fake.calls('chat.postMessage').map((c) => c.args.channel)).toEqual(['C404', 'C1', 'C1']);
  });

  test('conversations.history: newest first, time window, paging, metadata on request', async () => {
    const meta = (id: string) => JSON.stringify({ event_type: 'thoughtgate_approval', event_payload: { request_id: id } });
    const ts: string[] = [];
    for (const id of ['a', 'b', 'c']) ts.push((await api('chat.postMessage', { channel: 'C1', text: id, metadata: meta(id) })).body.ts);
    const all = await api('conversations.history', { channel: 'C1' });
    expect(all.body.messages.map((m: { text: string }) => m.text)).toEqual(['c', 'b', 'a']);
    expect(all.body.messages[0].metadata).toBeUndefined();
    const withMeta = await api('conversations.history', { channel: 'C1', include_all_metadata: 'true', oldest: ts[0]!, inclusive: 'true', limit: '2' });
    expect(withMeta.body.messages.map((m: { metadata: { event_payload: { request_id: string } } }) => m.metadata.event_payload.request_id)).toEqual(['c', 'b']);
    expect(withMeta.body).toMatchObject({ has_more: true, response_metadata: { next_cursor: '2' } });
    const next = await api('conversations.history', {
      channel: 'C1',
      include_all_metadata: 'true',
      oldest: ts[0]!,
      inclusive: 'true',
      limit: '2',
      cursor: '2',
    });
    expect(next.body.messages.map((m: { text: string }) => m.text)).toEqual(['a']);
    expect(next.body.has_more).toBe(false);
    expect((await api('conversations.history', { channel: 'C1', oldest: ts[0]!, latest: ts[2]! })).body.messages.map((m: { text: string }) => m.text)).toEqual([
      'b',
    ]);
    expect(all.body.messages[0]).toMatchObject({ user: 'UBOT', bot_id: 'BBOT' });
    // ts is the posting time, in seconds.
    expect(Math.abs(Number(ts[0]) * 1000 - Date.now())).toBeLessThan(60_000);
    expect((await api('conversations.history', { channel: 'C404' })).body.error).toBe('channel_not_found');
  });

  test('JSON bodies are accepted', async () => {
    const res = await fetch(`${fake.url}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${DEFAULT_FAKE_TOKEN}` },
      body: JSON.stringify({ channel: 'C1', text: 'json', blocks: [{ type: 'divider' }] }),
    });
    expect(await res.json()).toMatchObject({ ok: true });
    expect(fake.messages()[0]!.blocks).toEqual([{ type: 'divider' }]);
  });

  test('Block Kit limits are enforced like Slack', async () => {
    const long = [{ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(3001) } }];
    expect((await api('chat.postMessage', { channel: 'C1', text: 't', blocks: JSON.stringify(long) })).body).toMatchObject({
      ok: false,
      error: 'invalid_blocks',
    });
    const many = Array.from({ length: 51 }, () => ({ type: 'divider' }));
    expect((await api('chat.postMessage', { channel: 'C1', text: 't', blocks: JSON.stringify(many) })).body.error).toBe('invalid_blocks');
    const big = Array.from({ length: 5 }, () => ({ type: 'section', text: { type: 'mrkdwn', text: 'y'.repeat(2900) } }));
    expect((await api('chat.postMessage', { channel: 'C1', text: 't', blocks: JSON.stringify(big) })).body.error).toBe('msg_blocks_too_long');
    expect((await api('chat.postMessage', { channel: 'C1' })).body.error).toBe('no_text');
  });

  test('tokens can be added and removed', async () => {
    const id = fake.addToken('xoxb-other', { userId: 'UOTHER' });
    expect((await api('auth.test', {}, 'xoxb-other')).body.user_id).toBe(id.userId);
    fake.removeToken('xoxb-other');
    expect((await api('auth.test', {}, 'xoxb-other')).body.error).toBe('invalid_auth');
  });
});

describe('rate limits and outages', () => {
  test('setRateLimit answers 429 with Retry-After per token+method', async () => {
    fake.addToken('xoxb-two');
    fake.setRateLimit('users.info', { limit: 2, windowMs: 60_000, retryAfterSec: 7 });
    expect((await api('users.info', { user: 'U1' })).status).toBe(200);
    expect((await api('users.info', { user: 'U1' })).status).toBe(200);
    const third = await api('users.info', { user: 'U1' });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('7');
    // Other methods and other tokens have their own windows.
    expect((await api('auth.test')).status).toBe(200);
    expect((await api('users.info', { user: 'U1' }, 'xoxb-two')).status).toBe(200);
    expect(fake.calls('users.info').map((c) => c.status)).toEqual([200, 200, 429, 200]);
    expect(fake.calls('users.info')[2]).toMatchObject({ retryAfter: 7, token: DEFAULT_FAKE_TOKEN });
    fake.setRateLimit('users.info', null);
    expect((await api('users.info', { user: 'U1' })).status).toBe(200);
  });

  test('without retryAfterSec, Retry-After is the time until the window frees up', async () => {
    fake.setRateLimit('*', { limit: 1, windowMs: 2500 });
    await api('auth.test');
    const r = await api('auth.test');
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(2);
    expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(3);
  });

  test('force429 hits the next calls of a method', async () => {
    fake.force429('reactions.get', 2, 1);
    const ts = (await api('chat.postMessage', { channel: 'C1', text: 'x' })).body.ts as string;
    expect((await api('reactions.get', { channel: 'C1', timestamp: ts })).status).toBe(429);
    expect((await api('chat.postMessage', { channel: 'C1', text: 'y' })).status).toBe(200);
    expect((await api('reactions.get', { channel: 'C1', timestamp: ts })).status).toBe(429);
    expect((await api('reactions.get', { channel: 'C1', timestamp: ts })).status).toBe(200);
  });

  test('http500 and refused connections, then recovery', async () => {
    await fake.setDown('http500');
    expect((await api('auth.test')).status).toBe(500);
    expect(fake.calls('auth.test').at(-1)).toMatchObject({ status: 500, token: DEFAULT_FAKE_TOKEN });
    await fake.setDown('refuse');
    await expect(api('auth.test')).rejects.toThrow();
    await fake.setDown(false);
    expect((await api('auth.test')).body.ok).toBe(true);
  });

  test('the real WebClient works against it, including 429 → WebAPIRateLimitedError', async () => {
    const web = new WebClient(DEFAULT_FAKE_TOKEN, { slackApiUrl: fake.url, rejectRateLimitedCalls: true, retryConfig: { retries: 0 } });
    const posted = await web.chat.postMessage({ channel: 'C1', text: 'fallback', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*hi*' } }] });
    expect(posted.ok).toBe(true);
    expect(fake.messages()[0]!.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: '*hi*' } }]);
    fake.addReaction('C1', posted.ts!, 'x', 'U1');
    const r = await web.reactions.get({ channel: 'C1', timestamp: posted.ts!, full: true });
    expect(r.message?.reactions).toEqual([{ name: 'x', users: ['U1'], count: 1 }]);
    fake.force429('users.info', 1, 3);
    await expect(web.users.info({ user: 'U1' })).rejects.toMatchObject({ code: 'slack_webapi_rate_limited_error', retryAfter: 3 });
    await expect(web.conversations.info({ channel: 'C404' })).rejects.toMatchObject({
      code: 'slack_webapi_platform_error',
      data: { error: 'channel_not_found' },
    });
  });
});

describe('standalone process', () => {
  test('bundled with esbuild, seeded from FAKE_SLACK_SEED, with POST /_control/react', async () => {
    // Inside the repository (.dev/ is git-ignored, as in the documented command), so the bundle's
    // external packages (ws) resolve from node_modules.
    mkdirSync(path.join(repoRoot, '.dev'), { recursive: true });
    const dir = mkdtempSync(path.join(repoRoot, '.dev', 'fake-slack-'));
    try {
      const out = path.join(dir, 'fake-slack.mjs');
      const esbuild = path.join(repoRoot, 'node_modules', '.bin', 'esbuild');
      const built = spawnSync(esbuild, [
        path.join(here, 'slack-server.ts'),
        '--bundle',
        '--platform=node',
        '--format=esm',
        '--packages=external',
        `--outfile=${out}`,
        '--log-level=error',
      ]);
      expect(built.stderr.toString()).toBe('');
      expect(built.status).toBe(0);
      const seed = path.join(dir, 'seed.json');
      writeFileSync(
        seed,
        JSON.stringify({ tokens: { 'xoxb-demo': { userId: 'UDEMO' } }, channels: [{ id: 'C9', name: 'demo' }], users: [{ id: 'U7', name: 'bob' }] }),
      );
      const child = spawn(process.execPath, [out], { env: { ...process.env, PORT: '0', FAKE_SLACK_SEED: seed }, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        let stdout = '';
        const url = await new Promise<string>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => {
            stdout += d.toString();
            const m = /listening on (http:\/\/\S+\/api\/)/.exec(stdout);
            if (m) resolve(m[1]!);
          });
          child.on('exit', (code) => reject(new Error(`exited ${code}: ${stdout}`)));
        });
        const web = new WebClient('xoxb-demo', { slackApiUrl: url, retryConfig: { retries: 0 } });
        expect((await web.auth.test()).user_id).toBe('UDEMO');
        const posted = await web.chat.postMessage({ channel: 'C9', text: 'please approve' });
        const control = url.replace(/\/api\/$/, '/_control/react');
        const res = await fetch(control, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ channel: 'C9', ts: posted.ts, name: 'white_check_mark', user: 'U7' }),
        });
        expect(await res.json()).toMatchObject({ ok: true, reactions: [{ name: 'white_check_mark', users: ['U7'], count: 1 }] });
        const r = await web.reactions.get({ channel: 'C9', timestamp: posted.ts!, full: true });
        expect(r.message?.reactions?.[0]?.users).toEqual(['U7']);
        expect(stdout).toContain(`posted C9 ts=${posted.ts}`);
        expect(stdout).toContain('/_control/react');
        // A message with buttons gets a click line; the click is an envelope for Socket Mode apps.
        const blocks = [
          { type: 'actions', elements: [{ type: 'button', action_id: 'thoughtgate_approve', value: 'r1', text: { type: 'plain_text', text: 'Approve' } }] },
        ];
        const withButtons = await web.chat.postMessage({ channel: 'C9', text: 'buttons', blocks });
        const clickAt = url.replace(/\/api\/$/, '/_control/click');
        const click = (action_id: string) =>
          fetch(clickAt, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ channel: 'C9', ts: withButtons.ts, action_id, user: 'U7' }),
          });
        expect(await (await click('thoughtgate_approve')).json()).toMatchObject({ ok: true, envelope_id: expect.any(String), connections: 0 });
        expect((await click('nope')).status).toBe(400);
        await new Promise((r) => setTimeout(r, 50));
        expect(stdout).toContain('/_control/click');
        // The printed curl line carries the ts as it is (it once kept the colon after it).
        expect(stdout).toContain(`"ts":"${withButtons.ts}"`);
      } finally {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

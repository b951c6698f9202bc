// Classes 3, 5, 6 and 11, against the real server-everything behind the recording relay:
// 3: answers are matched per message (a batch with ids a peer could confuse is refused whole);
// 5: the upstream learns nothing of a hidden call, neither in the body nor in the headers;
// 6: the agent cannot override a source's own query parameters;
// 11: errors do not list the configured sources.
import fc from 'fast-check';
import { ambiguousIds, parseJsonRpc, type Message } from '../../lib/jsonrpc.js';
import { openSession, post, startGuard, startRecordedEverything, type RecordedEverything, closeGuarded } from './harness.js';
import type { TestSidecar } from '../support/sidecar.js';

let up: RecordedEverything;
let tg: TestSidecar;
let h: Record<string, string>;

beforeAll(async () => {
  up = await startRecordedEverything();
  tg = await startGuard(
    up,
    `
sources:
  - name: e
    url: \${UPSTREAM}
    expose: { mode: blocklist, tools: ["get-env"] }
  - name: ro
    url: \${UPSTREAM}?mode=readonly
  - name: internal-billing-7
    url: \${UPSTREAM}
rules:
  - match: { tool: "get-sum" }
    action: deny
defaultAction: forward
`,
  );
  // 2025-03-26 still has JSON-RPC batches; server-everything answers them.
  h = await openSession(tg.mcpUrl('e'), { 'mcp-protocol-version': '2025-03-26' });
  h['mcp-protocol-version'] = '2025-03-26';
}, 60_000);
afterAll(() => closeGuarded(tg, up));

const list = (id: string) => `{"jsonrpc":"2.0","id":${id},"method":"tools/list"}`;
const echo = (id: string) => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`;

describe('3. answers are matched per message', () => {
  test('control: a batch with distinct ids is forwarded and its list is filtered', async () => {
    up.clear();
    const r = await post(tg.mcpUrl('e'), h, `[${list('1')},${echo('2')}]`);
    expect(r.status).toBe(200);
    const text = JSON.stringify(r.messages);
    expect(text).toContain('Echo: hi');
    expect(text).toContain('"echo"');
    expect(text).not.toContain('get-env');
    expect(up.received).toHaveLength(1);
  });

  test.each([
    ['the same number', '1', '1'],
    ['1 and 1.0', '1', '1.0'],
    ['1 and 1e0', '1', '1e0'],
    ['1 and 10e-1', '1', '10e-1'],
    ['0 and -0', '0', '-0'],
    ['two integers beyond 2^53 that round alike', '9007199254740993', '9007199254740992'],
    ['the same string', '"a"', '"a"'],
    ['"1" and 1', '"1"', '1'],
    ['1 and "1.0"', '1', '"1.0"'],
    ['"1" and " 1 "', '"1"', '" 1 "'],
    ['"7" and 7.0', '"7"', '7.0'],
    ['a string with an escape', '"a"', '"\\u0061"'],
  ])('a batch with a list and another request under ids %s is refused whole', async (_what, a, b) => {
    up.clear();
    for (const body of [`[${list(a)},${echo(b)}]`, `[${echo(a)},${list(b)}]`, `[${list(a)},${list(b)}]`]) {
      const r = await post(tg.mcpUrl('e'), h, body);
      expect(r.status).toBe(400);
      expect(r.messages).toEqual([expect.objectContaining({ id: null, error: expect.objectContaining({ code: -32600 }) })]);
      expect(JSON.stringify(r.messages)).not.toContain('get-env');
    }
    expect(up.received).toHaveLength(0);
  });

  test('a batch whose client response reuses a request id is refused whole', async () => {
    up.clear();
    const r = await post(tg.mcpUrl('e'), h, `[${list('5')},{"jsonrpc":"2.0","id":5,"result":{}}]`);
    expect(r.status).toBe(400);
    expect(up.received).toHaveLength(0);
  });

  test("an invalid element with a request's id makes the batch ambiguous too", async () => {
    up.clear();
    const r = await post(tg.mcpUrl('e'), h, `[${list('6')},{"jsonrpc":"1.0","id":6,"method":"tools/call"}]`);
    expect(r.status).toBe(400);
    expect(up.received).toHaveLength(0);
  });

  test('a denied or hidden element with a colliding id does not unlock the list either', async () => {
    up.clear();
    const hidden = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get-env","arguments":{}}}`;
    const denied = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"b":2}}}`;
    for (const other of [hidden, denied]) {
      const r = await post(tg.mcpUrl('e'), h, `[${list('3')},${other}]`);
      expect(r.status).toBe(400);
    }
    expect(up.received).toHaveLength(0);
  });

  test('a request id still in flight in the session is refused in another POST, in any spelling, until it ends', async () => {
    up.clear();
    const slow = `{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":30,"steps":1}}}`;
    const abort = new AbortController();
    const first = fetch(tg.mcpUrl('e'), { method: 'POST', headers: h, body: slow, signal: abort.signal })
      .then((r) => r.text())
      .catch(() => 'aborted');
    while (!up.received.some((r) => r.body.includes('trigger-long-running-operation'))) await new Promise((r) => setTimeout(r, 10));
    for (const id of ['41', '41.0', '"41"']) {
      const r = await post(tg.mcpUrl('e'), h, list(id));
      expect(r.status).toBe(400);
      expect(r.messages).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: -32600 }) })]);
      const b = await post(tg.mcpUrl('e'), h, `[${echo('42')},${list(id)}]`);
      expect(b.status).toBe(400);
    }
    expect(up.received).toHaveLength(1);
    abort.abort();
    await first;
    // Released when the first request's response closed.
    let again = await post(tg.mcpUrl('e'), h, list('41'));
    for (let i = 0; again.status !== 200 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 10));
      again = await post(tg.mcpUrl('e'), h, list('41'));
    }
    expect(again.status).toBe(200);
    expect(JSON.stringify(again.messages)).not.toContain('get-env');
  });

  test('ids of the form ThoughtGate uses for its own upstream requests are refused', async () => {
    up.clear();
    for (const id of ['"thoughtgate-tg-0123"', '"thoughtgate-list-x"', '" ThoughtGate-x"']) {
      expect((await post(tg.mcpUrl('e'), h, list(id))).status).toBe(400);
      expect((await post(tg.mcpUrl('e'), h, `[${echo('1')},${list(id)}]`)).status).toBe(400);
    }
    expect(up.received).toHaveLength(0);
  });

  test('property: ids that some peer reads as the same value always make a batch ambiguous', () => {
    const spellings = (n: number): string[] => [String(n), `${n}.0`, `${n}e0`, `"${n}"`, `"${n}.0"`, `" ${n}"`, `${n * 10}e-1`];
    fc.assert(
      fc.property(fc.integer({ min: -1e6, max: 1e6 }), fc.nat(6), fc.nat(6), (n, i, j) => {
        const ids = spellings(n);
        const body = `[${list(ids[i]!)},${echo(ids[j]!)}]`;
        const p = parseJsonRpc(body);
        return p.ok && p.batch && ambiguousIds(p.messages as Message[]) !== null;
      }),
    );
    // Different values stay apart.
    fc.assert(
      fc.property(fc.integer(), fc.integer(), (a, b) => {
        fc.pre(a !== b);
        const p = parseJsonRpc(`[${list(String(a))},${echo(String(b))}]`);
        return p.ok && p.batch && ambiguousIds(p.messages as Message[]) === null;
      }),
    );
  });
});

describe('5. the upstream learns nothing of a hidden call', () => {
  const SECRET_ARG = 'zz-secret-arg-77';
  const hiddenCall = (id: string) => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"get-env","arguments":{"filter":"${SECRET_ARG}"}}}`;
  const describing = { 'mcp-method': 'tools/call', 'mcp-name': 'get-env', 'mcp-param-filter': SECRET_ARG, 'Mcp-Param-Other': `x-${SECRET_ARG}` };

  test('a hidden call: Mcp-Name names the probe, Mcp-Param-* are dropped, the agent gets the unknown-tool answer', async () => {
    up.clear();
    const r = await post(tg.mcpUrl('e'), { ...h, ...describing }, hiddenCall('11'));
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.messages)).toContain('get-env');
    expect(up.received).toHaveLength(1);
    expect(up.everything()).not.toContain('get-env');
    expect(up.everything()).not.toContain(SECRET_ARG);
    const sent = up.received[0]!;
    expect(sent.headers['mcp-method']).toBe('tools/call');
    expect(sent.headers['mcp-name']).toMatch(/^thoughtgate-probe-[0-9a-f]+$/);
    expect(sent.body).toContain(String(sent.headers['mcp-name']));
    expect(Object.keys(sent.headers).filter((k) => k.startsWith('mcp-param-'))).toEqual([]);
  });

  test('Mcp-Name in its base64 form is rebuilt too', async () => {
    up.clear();
    const b64 = `=?base64?${Buffer.from('get-env').toString('base64')}?=`;
    await post(tg.mcpUrl('e'), { ...h, ...describing, 'mcp-name': b64 }, hiddenCall('12'));
    expect(up.everything()).not.toContain(b64);
    expect(up.everything()).not.toContain(SECRET_ARG);
    expect(up.received[0]!.headers['mcp-name']).toMatch(/^thoughtgate-probe-/);
  });

  test('a batch with a hidden call and a denied call: no header describes what was removed', async () => {
    up.clear();
    const denied = `{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"b":${SECRET_ARG.length}}}}`;
    const r = await post(tg.mcpUrl('e'), { ...h, 'mcp-param-filter': SECRET_ARG, 'mcp-param-a': SECRET_ARG }, `[${hiddenCall('13')},${denied},${echo('15')}]`);
    expect(r.status).toBe(200);
    expect(up.received).toHaveLength(1);
    expect(up.everything()).not.toContain('get-env');
    expect(up.everything()).not.toContain('get-sum');
    expect(up.everything()).not.toContain(SECRET_ARG);
  });

  test('control: an allowed call keeps the headers the agent sent', async () => {
    up.clear();
    await post(tg.mcpUrl('e'), { ...h, 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'mcp-param-message': 'hi' }, echo('16'));
    expect(up.received[0]!.headers).toMatchObject({ 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'mcp-param-message': 'hi' });
  });
});

describe("6. the agent cannot override a source's own query parameters", () => {
  let hr: Record<string, string>;
  beforeAll(async () => {
    hr = await openSession(tg.mcpUrl('ro'));
  });

  test.each([
    'mode=write',
    'MODE=write',
    '%6Dode=write',
    'mo%64e=write',
    'mode[]=write',
    'mode%5B%5D=write',
    'mode[x]=write',
    '+mode=write',
    'other=1&mode=write',
    'other=1;mode=write',
    'mode',
    '%zz=1',
  ])('?%s is refused, on POST, GET and DELETE, and nothing is forwarded', async (query) => {
    up.clear();
    const url = `${tg.mcpUrl('ro')}?${query}`;
    const r = await post(url, hr, echo('21'));
    expect(r.status).toBe(400);
    expect(r.messages).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: -32019 }) })]);
    for (const method of ['GET', 'DELETE']) {
      const g = await fetch(url, { method, headers: hr });
      expect(g.status).toBe(400);
      expect(((await g.json()) as { error: { code: number } }).error.code).toBe(-32019);
    }
    expect(up.received).toHaveLength(0);
  });

  test("other parameters pass, after the source's own", async () => {
    up.clear();
    const r = await post(`${tg.mcpUrl('ro')}?trace=1&mode_x=2`, hr, echo('22'));
    expect(JSON.stringify(r.messages)).toContain('Echo: hi');
    expect(up.received[0]!.url).toMatch(/\?mode=readonly&trace=1&mode_x=2$/);
  });
});

describe('11. errors tell an agent no more than it needs', () => {
  test('an unknown source does not list the configured ones', async () => {
    for (const path of ['/mcp/nope', '/mcp/e%2e', '/mcp/', '/other']) {
      const r = await fetch(`${tg.base}${path}`, { method: 'POST', headers: h, body: echo('31') });
      const text = await r.text();
      expect(r.status).toBe(404);
      expect(JSON.parse(text).error.code).toBe(-32017);
      expect(text).not.toContain('internal-billing-7');
      expect(text).not.toContain('"ro"');
      expect(text).not.toContain(String(up.port));
    }
  });
});

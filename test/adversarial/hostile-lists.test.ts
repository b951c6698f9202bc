// Class 4: list filtering fails closed. A hostile upstream answers tools/list in every shape the
// filter might misread (duplicate keys, a BOM, deep nesting, no jsonrpc, odd content types, SSE
// tricks, wrong ids); a hidden tool must never reach the agent, whatever the shape. The upstream
// picks the shape from a custom header the sidecar passes through.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rawPost, startTestSidecar, type TestSidecar } from '../support/sidecar.js';

const HIDDEN = 'hidden-tool-xyz';
const SECRET = 'SECRET-DESC-42';
const echoTool = { name: 'echo', description: 'says it back', inputSchema: { type: 'object' } };
const hiddenTool = { name: HIDDEN, description: SECRET, inputSchema: { type: 'object' } };
const tools = JSON.stringify([echoTool, hiddenTool]);
const list = (id: string) => `{"jsonrpc":"2.0","id":${id},"result":{"tools":${tools}}}`;
const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

interface Variant {
  status?: number;
  /** null: no content-type header at all. */
  type: string | null;
  body: (id: string) => string;
  /**
   * true: a readable list, filtered (echo stays); false: refused with -32015; 'silent': the upstream
   * said nothing readable, so the agent gets no answer (and nothing of the list).
   */
  filtered: boolean | 'silent';
}

const SSE = 'text/event-stream';
const JSON_T = 'application/json';
const variants: Record<string, Variant> = {
  'json, plain (control)': { type: JSON_T, body: list, filtered: true },
  'json, duplicate result key': {
    type: JSON_T,
    body: (id) => `{"jsonrpc":"2.0","id":${id},"result":{"tools":[${JSON.stringify(echoTool)}]},"result":{"tools":${tools}}}`,
    filtered: false,
  },
  'json, duplicate tools key': { type: JSON_T, body: (id) => `{"jsonrpc":"2.0","id":${id},"result":{"tools":[],"tools":${tools}}}`, filtered: false },
  'json, UTF-8 BOM': { type: JSON_T, body: (id) => `\uFEFF${list(id)}`, filtered: false },
  'json, nesting deeper than the parser takes': {
    type: JSON_T,
    body: (id) => `{"jsonrpc":"2.0","id":${id},"result":{"tools":${tools},"x":${deep(600)}}}`,
    filtered: false,
  },
  'json, no jsonrpc member': { type: JSON_T, body: (id) => `{"id":${id},"result":{"tools":${tools}}}`, filtered: false },
  'json, jsonrpc 1.0': { type: JSON_T, body: (id) => `{"jsonrpc":"1.0","id":${id},"result":{"tools":${tools}}}`, filtered: false },
  'json, tools not an array': {
    type: JSON_T,
    body: (id) => `{"jsonrpc":"2.0","id":${id},"result":{"tools":{"0":${JSON.stringify(hiddenTool)}}}}`,
    filtered: false,
  },
  'json, answer under another id': { type: JSON_T, body: () => list('"not-asked"'), filtered: false },
  'json, answer under a null id': { type: JSON_T, body: () => list('null'), filtered: false },
  // A number id answered as a string or as 1.0 is still that request's answer, and is filtered.
  'json, answer under the id as a string': { type: JSON_T, body: (id) => list(id.startsWith('"') ? id : JSON.stringify(id)), filtered: true },
  'json, answer under the id as 1.0': { type: JSON_T, body: (id) => list(id.startsWith('"') ? id : `${id}.0`), filtered: true },
  'json, batch answer with the id twice': { type: JSON_T, body: (id) => `[${list(id)},${list(id)}]`, filtered: true },
  'json, trailing garbage': { type: JSON_T, body: (id) => `${list(id)}\n${list(id)}`, filtered: false },
  'Application/JSON': { type: 'Application/JSON', body: list, filtered: true },
  'APPLICATION/JSON; charset=UTF-8': { type: 'APPLICATION/JSON; charset=UTF-8', body: list, filtered: true },
  'application/json ; foo=bar': { type: 'application/json ; foo=bar', body: list, filtered: true },
  'application/json-seq': { type: 'application/json-seq', body: (id) => `\x1e${list(id)}\n`, filtered: false },
  'application/jsonx': { type: 'application/jsonx', body: list, filtered: false },
  'text/plain': { type: 'text/plain', body: list, filtered: false },
  'application/x-ndjson': { type: 'application/x-ndjson', body: (id) => `${list(id)}\n`, filtered: false },
  'no content-type': { type: null, body: list, filtered: false },
  '202 with a body': { status: 202, type: JSON_T, body: list, filtered: false },
  'sse, plain (control)': { type: SSE, body: (id) => `event: message\ndata: ${list(id)}\n\n`, filtered: true },
  'TEXT/EVENT-STREAM; charset=utf-8': { type: 'TEXT/EVENT-STREAM; charset=utf-8', body: (id) => `event: message\ndata: ${list(id)}\n\n`, filtered: true },
  'sse, no event name': { type: SSE, body: (id) => `data: ${list(id)}\n\n`, filtered: true },
  'sse, another event name': { type: SSE, body: (id) => `event: smuggled\ndata: ${list(id)}\n\n`, filtered: true },
  'sse, data split across lines between tokens': {
    type: SSE,
    body: (id) => `data: {"jsonrpc":"2.0","id":${id},\ndata: "result":{"tools":${tools}}}\n\n`,
    filtered: true,
  },
  'sse, data split inside a string': {
    type: SSE,
    body: (id) =>
      `data: {"jsonrpc":"2.0","id":${id},"result":{"tools":[${JSON.stringify(echoTool)},{"name":"${HIDDEN}","description":"${SECRET.slice(0, 6)}\ndata: ${SECRET.slice(6)}"}]}}\n\n`,
    filtered: false,
  },
  'sse, CR line endings': { type: SSE, body: (id) => `event: message\rdata: ${list(id)}\r\r`, filtered: true },
  'sse, BOM inside data': { type: SSE, body: (id) => `data: \uFEFF${list(id)}\n\n`, filtered: false },
  'sse, duplicate keys': {
    type: SSE,
    body: (id) => `data: {"jsonrpc":"2.0","id":${id},"result":{"tools":[]},"result":{"tools":${tools}}}\n\n`,
    filtered: false,
  },
  'sse, no jsonrpc member': { type: SSE, body: (id) => `data: {"id":${id},"result":{"tools":${tools}}}\n\n`, filtered: false },
  'sse, deep nesting': { type: SSE, body: (id) => `data: {"jsonrpc":"2.0","id":${id},"result":{"tools":${tools},"x":${deep(600)}}}\n\n`, filtered: false },
  'sse, not JSON at all': { type: SSE, body: () => `data: ${HIDDEN} ${SECRET}\n\n`, filtered: false },
  'sse, list in a comment': {
    type: SSE,
    body: (id) => `: ${list(id)}\ndata: {"jsonrpc":"2.0","id":${id},"result":{"tools":[${JSON.stringify(echoTool)}]}}\n\n`,
    filtered: true,
  },
  'sse, list in an unknown field': {
    type: SSE,
    body: (id) => `smuggle: ${list(id)}\ndata: {"jsonrpc":"2.0","id":${id},"result":{"tools":[${JSON.stringify(echoTool)}]}}\n\n`,
    filtered: true,
  },
  'sse, list in an id field': {
    type: SSE,
    body: (id) => `id: ${list(id).replace(/ /g, '')}\ndata: {"jsonrpc":"2.0","id":${id},"result":{"tools":[${JSON.stringify(echoTool)}]}}\n\n`,
    filtered: true,
  },
  'sse, last event unterminated': { type: SSE, body: (id) => `data: ${list(id)}`, filtered: true },
  'sse, answer under another id': { type: SSE, body: () => `data: ${list('99999')}\n\n`, filtered: false },
  'sse, unparseable event then the list': { type: SSE, body: (id) => `data: {oops\n\ndata: ${list(id)}\n\n`, filtered: false },
  'sse, JSON body without data lines': { type: SSE, body: list, filtered: 'silent' },
  'sse, list in a long id field': { type: SSE, body: (id) => `id: ${list(id).replace(/ /g, '')}\n\n`, filtered: 'silent' },
};

// GET streams (replays after Last-Event-ID) are filtered by shape: the same rules hold there.
const getVariants: Record<string, { type: string; body: string }> = {
  'get, upper-case SSE type': { type: 'TEXT/EVENT-STREAM; charset=utf-8', body: `id: 1\ndata: ${list('7')}\n\n` },
  'get, data that is not JSON-RPC': {
    type: SSE,
    body: `data: ${HIDDEN} ${SECRET}\n\ndata: {"jsonrpc":"2.0","id":7,"result":{"tools":${tools}},"x":1,"x":2}\n\n`,
  },
};

let upstream: http.Server;
let tg: TestSidecar;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const v = variants[decodeURIComponent(String(req.headers['x-variant']))];
      if (req.method === 'GET') {
        const g = getVariants[decodeURIComponent(String(req.headers['x-variant']))];
        if (!g) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': g.type });
        res.end(g.body);
        return;
      }
      if (!v || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      const id = JSON.stringify((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: unknown }).id);
      const head: Record<string, string> = {};
      if (v.type !== null) head['content-type'] = v.type;
      res.writeHead(v.status ?? 200, head);
      res.end(v.body(id));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  tg = await startTestSidecar(`sources:\n  - name: h\n    url: ${url}\n    expose: { mode: allowlist, tools: ["echo"] }\ndefaultAction: forward\n`);
});
afterAll(async () => {
  await tg?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

describe.each(['1', '"list-1"'])('tools/list id %s', (id) => {
  test.each(Object.keys(variants))('%s: the hidden tool never reaches the agent', async (name) => {
    const v = variants[name]!;
    const r = await rawPost(tg.mcpUrl('h'), `{"jsonrpc":"2.0","id":${id},"method":"tools/list"}`, { 'x-variant': encodeURIComponent(name) });
    expect(r.text).not.toContain(HIDDEN);
    expect(r.text).not.toContain(SECRET);
    if (v.filtered === 'silent') {
      expect(r.text).not.toContain('"echo"');
    } else if (v.filtered) {
      expect(r.status).toBe(200);
      expect(r.text).toContain('"echo"');
      expect(r.text).not.toContain('-32015');
    } else {
      expect(r.text).toContain('-32015');
    }
  });
});

test.each(Object.keys(getVariants))('%s: a replayed list on a GET stream is filtered too', async (name) => {
  const r = await fetch(tg.mcpUrl('h'), { headers: { accept: 'text/event-stream', 'mcp-session-id': 's1', 'x-variant': encodeURIComponent(name) } });
  const text = await r.text();
  expect(r.status).toBe(200);
  expect(text).not.toContain(HIDDEN);
  expect(text).not.toContain(SECRET);
});

test('a batch of two lists: an unreadable event answers every pending id with -32015', async () => {
  const r = await rawPost(tg.mcpUrl('h'), '[{"jsonrpc":"2.0","id":"x","method":"tools/list"},{"jsonrpc":"2.0","id":"y","method":"tools/list"}]', {
    'x-variant': encodeURIComponent('sse, not JSON at all'),
  });
  expect(r.text).not.toContain(HIDDEN);
  const ids = r.text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as { id: unknown; error: { code: number } });
  expect(ids.map((m) => [m.id, m.error.code]).sort()).toEqual([
    ['x', -32015],
    ['y', -32015],
  ]);
});

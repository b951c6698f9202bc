// Class 1 of issue 7: a hidden or denied resource read through another spelling of its URI. The
// oracle is what server-everything received: a spelling is either refused (nothing forwarded),
// or forwarded in canonical form, so the gates' decision is on the resource the server reads.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { canonicalUri } from '../../api/resource-uri.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { openSession, post, startGuard, startRecordedEverything, type RecordedEverything, closeGuarded } from './harness.js';

let up: RecordedEverything;
let tg: TestSidecar;
let h: Record<string, string>;

const ARCH = 'demo://resource/static/document/architecture.md'; // hidden (gate 1)
const TEXT1 = 'demo://resource/dynamic/text/1'; // hidden (gate 1)
const FEATURES = 'demo://resource/static/document/features.md'; // denied by a rule (gate 2)
const HOW = 'demo://resource/static/document/how-it-works.md'; // forbidden by Cedar (gate 3)
const CONTENT = /Everything Server|Resource 1:|UmVzb3VyY2UgMT/; // document titles, dynamic resource 1 (text or base64)

beforeAll(async () => {
  up = await startRecordedEverything();
  tg = await startGuard(
    up,
    `
sources:
  - name: e
    url: \${UPSTREAM}
    expose:
      mode: blocklist
      resources: ["${ARCH}", "${TEXT1}", "demo://resource/dynamic/blob/*"]
      tools: ["get-env"]
      prompts: ["simple-prompt"]
rules:
  - match: { resource: "${FEATURES}" }
    action: deny
defaultAction: policy
cedar:
  policies: |
    permit (principal, action, resource);
    forbid (principal, action, resource == ThoughtGate::Resource::"e/${HOW}");
`,
  );
  h = await openSession(tg.mcpUrl('e'));
}, 60_000);
afterAll(() => closeGuarded(tg, up));

/** Other spellings of a URI, one per class (and a few combined). */
function spellings(uri: string): string[] {
  const [scheme, rest] = uri.split('://') as [string, string];
  const host = rest.slice(0, rest.indexOf('/'));
  const path = rest.slice(rest.indexOf('/'));
  const segs = path.split('/');
  const last = segs[segs.length - 1]!;
  const dir = segs.slice(0, -1).join('/');
  const num = /^[0-9]+$/.test(last);
  const encFirst = `%${last.charCodeAt(0).toString(16)}${last.slice(1)}`;
  const encFirstUpper = `%${last.charCodeAt(0).toString(16).toUpperCase()}${last.slice(1)}`;
  const out = [
    `${scheme.toUpperCase()}://${host}${path}`, // scheme case
    `${scheme}://${host.toUpperCase()}${path}`, // host case
    `DeMo://ReSoUrCe${path}`,
    `${scheme}://${host}${dir}/./${last}`, // dot segments
    `${scheme}://${host}${dir}/x/../${last}`,
    `${scheme}://${host}/static/../${path.slice(1)}`,
    `${scheme}://${host}${dir}/%2e/${last}`, // percent-encoded dot segments
    `${scheme}://${host}${dir}/x/%2E%2e/${last}`,
    `${scheme}://${host}${dir}/x/.%2E/${last}`,
    `${scheme}://${host}${dir}/${encFirst}`, // percent-encoded unreserved characters
    `${scheme}://${host}${dir}/${encFirstUpper}`,
    `${scheme}://%${host.charCodeAt(0).toString(16).toUpperCase()}${host.slice(1)}${path}`,
    `${scheme}://${host}${path.replace(/[a-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}`,
    ` ${uri}`, // surrounding whitespace
    `${uri}\n`,
    `\t\r\n ${uri} \t`,
    `${scheme}://${host}${dir}/\t${last}`, // tabs and newlines inside
    `${scheme}:/\n/${host}${path}`,
    `${scheme}://${host}${dir}//${last}`, // empty segments
    `${scheme}://${host}/${path}`,
    `${uri}?`, // empty query
    `${scheme}://${host}:${path}`, // empty port
    `${scheme}://@${host}${path}`, // empty user information
    `  ${scheme.toUpperCase()}://${host.toUpperCase()}${dir}/./x/%2E%2E//${encFirst}?\n`, // all at once
  ];
  if (num) {
    out.push(
      `${scheme}://${host}${dir}/0${last}`,
      `${scheme}://${host}${dir}/000${last}`,
      `${scheme}://${host}${dir}/%30${last}`,
      `${scheme}://${host}${dir}/%30%3${last}`,
    );
  }
  return out;
}

/** Spellings without a canonical form: refused by ThoughtGate, never forwarded. */
function refusedSpellings(uri: string): string[] {
  const out = [
    `${uri}#x`,
    `${uri}#`, // fragments
    uri.replace(/\/([^/]*)$/, '%2F$1'),
    uri.replace(/\/([^/]*)$/, '%2f$1'),
    uri.replace(/\/([^/]*)$/, '%5C$1'), // encoded separators
    uri.replace(/\/([^/]*)$/, '\\$1'), // a backslash in a non-special scheme
    `${uri}%00`,
    `${uri}\u0000`,
    `${uri.slice(0, 10)}\u0001${uri.slice(10)}`, // NUL, controls
    `${uri}%zz`,
    `${uri}%C3`,
    `${uri}%e9`, // invalid percent-encoding, not UTF-8
    `demo://user@${uri.slice('demo://'.length)}`, // user information
  ];
  if (/\/[0-9]+$/.test(uri)) {
    for (const n of ['1.0', '1.', '+1', '1e0', '.1e1', '0x1', '0o1', '0b1', '1_0', '%201', '1%20', '%2B1', '１']) out.push(uri.replace(/[0-9]+$/, n));
  }
  return out;
}

function readsOf(target: string): unknown[] {
  // Any read the upstream received whose server-side reading (new URL, then its routing) is the target.
  return up
    .bodies()
    .flat()
    .filter((b) => {
      const p = (b as { params?: { uri?: unknown; ref?: { uri?: unknown } } }).params;
      const uri = p?.uri ?? p?.ref?.uri;
      if (typeof uri !== 'string') return false;
      const c = canonicalUri(uri);
      let href = '';
      try {
        href = new URL(uri).href;
      } catch {
        /* not a URL: the server cannot read it */
      }
      return (c.ok && c.uri === target) || href === target || href.toLowerCase() === target.toLowerCase();
    });
}

describe.each([
  ['hidden (gate 1)', ARCH, 'hidden'],
  ['hidden numeric id (gate 1)', TEXT1, 'hidden'],
  ['denied by a rule (gate 2)', FEATURES, 'denied'],
  ['forbidden by Cedar (gate 3)', HOW, 'denied'],
])('%s: %s', (_what, target, how) => {
  test('every spelling is answered as the canonical URI is, and the upstream never reads it', async () => {
    const variants = spellings(target);
    expect(new Set(variants.map((v) => canonicalUri(v).ok && (canonicalUri(v) as { uri: string }).uri))).toEqual(new Set([target]));
    for (const method of ['resources/read', 'resources/subscribe']) {
      up.clear();
      let id = 0;
      for (const v of variants) {
        const r = await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: ++id, method, params: { uri: v } });
        expect(r.messages).toHaveLength(1);
        const m = r.messages[0] as { id: number; error?: { code: number; data?: { gate?: string } }; result?: unknown };
        expect(m.id).toBe(id);
        expect(JSON.stringify(m)).not.toMatch(CONTENT);
        if (method === 'resources/read' || how === 'denied') expect(m.error).toBeDefined();
        if (how === 'denied') expect(m.error?.data?.gate).toMatch(/rules|cedar/);
      }
      expect(readsOf(target)).toEqual([]);
      if (how === 'denied') expect(up.received).toHaveLength(0);
      else expect(up.everything()).not.toMatch(/architecture|dynamic\/text|%61|%2e|%2E/);
    }
  }, 60_000);

  test('spellings without a canonical form are refused with -32602 and nothing is forwarded', async () => {
    up.clear();
    let id = 100;
    for (const v of refusedSpellings(target)) {
      const r = await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: ++id, method: 'resources/read', params: { uri: v } });
      const m = r.messages[0] as { id: number; error?: { code: number; data?: { reason?: string } } };
      expect({ v, id: m.id, code: m.error?.code }).toEqual({ v, id, code: -32602 });
      expect(m.error?.data?.reason).toMatch(/^params\.uri is not a resource URI ThoughtGate can compare: /);
    }
    expect(up.received).toHaveLength(0);
  }, 60_000);
});

test('a hidden resource in a batch, under any spelling, never reaches the upstream; allowed ones go in canonical form', async () => {
  up.clear();
  const batch = [
    { jsonrpc: '2.0', id: 'a', method: 'resources/read', params: { uri: 'DEMO://resource/dynamic/text/01' } },
    { jsonrpc: '2.0', id: 'b', method: 'resources/read', params: { uri: ' demo://RESOURCE/dynamic/./text/002 ' } },
    { jsonrpc: '2.0', id: 'c', method: 'resources/read', params: { uri: 'demo://resource/static/document/%61rchitecture.md' } },
  ];
  const r = await post(tg.mcpUrl('e'), h, batch);
  const byId = Object.fromEntries((r.messages as { id: string }[]).map((m) => [m.id, JSON.stringify(m)]));
  expect(byId['a']).not.toMatch(CONTENT);
  expect(byId['c']).not.toMatch(CONTENT);
  expect(byId['b']).toContain('Resource 2:');
  expect(readsOf(TEXT1)).toEqual([]);
  expect(readsOf(ARCH)).toEqual([]);
  const sent = up.bodies().flat() as { id?: string; params?: { uri?: string } }[];
  expect(sent.find((b) => b.id === 'b')?.params?.uri).toBe('demo://resource/dynamic/text/2');
}, 30_000);

test('an allowed resource read through odd spellings reaches the upstream in canonical form, with the id as sent', async () => {
  for (const [spelt, canonical, content] of [
    ['DEMO://Resource/dynamic/x/../text/%30%30%32', 'demo://resource/dynamic/text/2', 'Resource 2:'],
    ['\t demo://resource//static/document/%73tartup%2Emd?\n', 'demo://resource/static/document/startup.md', 'Startup'],
    ['demo://@resource:/static/./document/structure.md', 'demo://resource/static/document/structure.md', 'Structure'],
  ] as const) {
    up.clear();
    const body = `{"jsonrpc":"2.0", "id" : "\\u0061-1","method":"resources/read","params":{"uri":${JSON.stringify(spelt)}}}`;
    const r = await fetch(tg.mcpUrl('e'), { method: 'POST', headers: h, body });
    const text = await r.text();
    expect(text).toContain(content);
    expect(up.received).toHaveLength(1);
    // Exactly the agent's bytes, but for the URI: the id keeps its text (an escape, spaces).
    expect(up.received[0]!.body).toBe(`{"jsonrpc":"2.0", "id" : "\\u0061-1","method":"resources/read","params":{"uri":"${canonical}"}}`);
  }
}, 30_000);

test('subscribe and unsubscribe go upstream in the same canonical form', async () => {
  up.clear();
  await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'DEMO://resource/dynamic/text/%30%33' } });
  await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: 2, method: 'resources/unsubscribe', params: { uri: 'demo://resource/./dynamic/text/3' } });
  const uris = (up.bodies() as { params?: { uri?: string } }[]).map((b) => b.params?.uri);
  expect(uris).toEqual(['demo://resource/dynamic/text/3', 'demo://resource/dynamic/text/3']);
}, 30_000);

test('a hidden resource template: completion under any spelling is probed, and the template is not listed', async () => {
  up.clear();
  for (const uri of [
    'demo://resource/dynamic/blob/{resourceId}',
    'DEMO://resource/dynamic/./blob/{resourceId}',
    'demo://RESOURCE//dynamic/%62lob/{resourceId}',
  ]) {
    const r = await post(tg.mcpUrl('e'), h, {
      jsonrpc: '2.0',
      id: 9,
      method: 'completion/complete',
      params: { ref: { type: 'ref/resource', uri }, argument: { name: 'resourceId', value: '1' } },
    });
    const m = r.messages[0] as { error?: unknown; result?: { completion?: { values?: unknown[] } } };
    expect(m.result?.completion?.values ?? []).toEqual([]);
  }
  expect(up.everything()).not.toMatch(/blob/i);
  // The text template is visible: completion goes upstream in canonical form and works.
  up.clear();
  const ok = await post(tg.mcpUrl('e'), h, {
    jsonrpc: '2.0',
    id: 10,
    method: 'completion/complete',
    params: { ref: { type: 'ref/resource', uri: 'DEMO://resource/dynamic/./text/{resourceId}' }, argument: { name: 'resourceId', value: '7' } },
  });
  expect((ok.messages[0] as { result?: { completion?: { values?: unknown[] } } }).result?.completion?.values).toEqual(['7']);
  expect((up.bodies()[0] as { params: { ref: { uri: string } } }).params.ref.uri).toBe('demo://resource/dynamic/text/{resourceId}');
  const list = await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: 11, method: 'resources/templates/list', params: {} });
  const templates = JSON.stringify(list.messages);
  expect(templates).toContain('dynamic/text/{resourceId}');
  expect(templates).not.toContain('dynamic/blob');
  const resources = await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: 12, method: 'resources/list', params: {} });
  expect(JSON.stringify(resources.messages)).not.toContain('architecture.md');
  expect(JSON.stringify(resources.messages)).toContain('features.md'); // denied, not hidden: listed
}, 30_000);

// Tool and prompt names are not normalised: the SDK's McpServer looks them up exactly (a plain
// object indexed by the name as sent). So another spelling of a hidden name reaches no tool; this
// proves it on the real server, for the spellings a URI-like normalisation would fold.
test('tool and prompt names: no spelling of a hidden name runs it', async () => {
  const names = (n: string) => [
    n.toUpperCase(),
    ` ${n}`,
    `${n} `,
    `${n}\n`,
    `\t${n}`,
    n.replace('-', '\u2010'),
    n.replace('-', '\u2011'),
    `${n}\u200b`,
    `\ufeff${n}`,
    n.normalize('NFD'),
    n.replace(/[a-z]/, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)),
    n.replace('-', '_'),
    `${n}/`,
    `./${n}`,
    n.replace('e', '%65'),
  ];
  up.clear();
  let id = 200;
  for (const name of names('get-env')) {
    const r = await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name, arguments: {} } });
    expect(JSON.stringify(r.messages)).not.toMatch(/"PATH|HOME\\?"/);
    const m = r.messages[0] as { error?: unknown; result?: { isError?: boolean } };
    expect(m.error !== undefined || m.result?.isError === true).toBe(true);
  }
  for (const name of names('simple-prompt')) {
    const r = await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: ++id, method: 'prompts/get', params: { name } });
    expect(JSON.stringify(r.messages)).not.toContain('This is a simple prompt');
  }
  // The exact names are hidden (probed): the upstream never saw them.
  await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'get-env', arguments: {} } });
  await post(tg.mcpUrl('e'), h, { jsonrpc: '2.0', id: ++id, method: 'prompts/get', params: { name: 'simple-prompt' } });
  expect(
    up
      .bodies()
      .flat()
      .map((b) => (b as { params?: { name?: string } }).params?.name),
  ).not.toContain('get-env');
  expect(
    up
      .bodies()
      .flat()
      .map((b) => (b as { params?: { name?: string } }).params?.name),
  ).not.toContain('simple-prompt');
}, 30_000);

// An opaque URI (urn:…) has no path a probe can replace: the old probe, built by setting
// URL.pathname (which opaque URIs ignore), was the hidden URI itself, so the upstream read it.
describe('a hidden opaque URI (urn:) is probed under another name', () => {
  let server: http.Server;
  const bodies: string[] = [];
  let guard: TestSidecar;
  beforeAll(async () => {
    server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      bodies.push(body);
      const mcp = new McpServer({ name: 'urn-server', version: '1' });
      mcp.registerResource('secret', 'urn:thoughtgate:secret', {}, async (uri) => ({ contents: [{ uri: uri.href, text: 'TOP-SECRET' }] }));
      mcp.registerResource('open', 'urn:thoughtgate:open', {}, async (uri) => ({ contents: [{ uri: uri.href, text: 'open' }] }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    guard = await startTestSidecar(`
sources:
  - name: u
    url: http://127.0.0.1:${port}/mcp
    expose: { mode: blocklist, resources: ["urn:thoughtgate:secret"] }
defaultAction: forward
`);
  }, 30_000);
  afterAll(async () => {
    await guard?.close();
    server?.closeAllConnections();
    await new Promise<void>((r) => server?.close(() => r()));
  });

  test('no spelling of it is read upstream; the answer is the unknown-resource answer', async () => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    for (const uri of ['urn:thoughtgate:secret', 'URN:thoughtgate:secret', ' urn:thoughtgate:%73ecret\n', 'urn:thoughtgate:secre\tt']) {
      bodies.length = 0;
      const r = await post(guard.mcpUrl('u'), headers, { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri } });
      expect(JSON.stringify(r.messages)).not.toContain('TOP-SECRET');
      expect(JSON.stringify(r.messages)).toContain('urn:thoughtgate:secret not found'); // the probe's answer, the name put back
      expect(bodies.join('\n')).not.toMatch(/secret|%73ecret/i);
    }
    const open = await post(guard.mcpUrl('u'), headers, { jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'URN:thoughtgate:%6Fpen' } });
    expect(JSON.stringify(open.messages)).toContain('"text":"open"');
  }, 30_000);
});

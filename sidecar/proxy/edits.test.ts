// Response edits are matched per message, never by a key the agent can make ambiguous.
import { rawId } from '../../lib/jsonrpc.js';
import { compileVisibility } from '../../policy/gates/visibility.js';
import { EditTable, editPayload, filterByShape, probeRequest } from './edits.js';

const visibility = compileVisibility({ mode: 'allowlist', tools: ['echo'] });
const filter = { kind: 'filter' as const, method: 'tools/list', visibility };
const tools = '[{"name":"echo","inputSchema":{}},{"name":"hidden","inputSchema":{}}]';
const list = (id: string) => `{"jsonrpc":"2.0","id":${id},"result":{"tools":${tools}}}`;
const edit = (t: EditTable, text: string) => editPayload(text, { edits: t, correlationId: 'c' })?.text ?? null;
const codeOf = (text: string | null) => (JSON.parse(text ?? 'null') as { error?: { code: number } } | null)?.error?.code;

test('a response is matched to its request by value: 1.0 and "1" answer request 1, and are filtered', () => {
  for (const id of ['1', '1.0', '1e0', '"1"']) {
    const t = new EditTable();
    t.add(rawId(1), filter);
    const out = edit(t, list(id));
    expect(out).not.toContain('hidden');
    expect(out).toContain('echo');
  }
});

test('ids that collide in the table fail closed, whichever request had the edit', () => {
  for (const [a, b] of [
    [rawId(1), rawId('1')],
    [rawId('1'), rawId(1)],
    [rawId(1), rawId(1)],
  ] as const) {
    const t = new EditTable();
    t.add(a, filter);
    t.add(b, null);
    for (const id of ['1', '"1"']) {
      const out = edit(t, list(id));
      expect(out).not.toContain('hidden');
      expect(codeOf(out)).toBe(-32015);
    }
  }
});

test('a response to an id not asked, a result without id, and invalid messages fail closed; errors pass', () => {
  const t = new EditTable();
  t.add(rawId(1), filter);
  expect(codeOf(edit(t, list('2')))).toBe(-32015);
  expect(codeOf(edit(t, list('null')))).toBe(-32015);
  expect(codeOf(edit(t, `{"id":1,"result":{"tools":${tools}}}`))).toBe(-32015);
  expect(codeOf(edit(t, `{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{"tools":${tools}}}`))).toBe(-32015);
  const err = '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}';
  expect(edit(t, err)).toBe(err);
  expect(edit(t, '{oops')).toBeNull();
});

test('pending() lists the requests no response has matched yet', () => {
  const t = new EditTable();
  t.add(rawId('a'), filter);
  t.add(rawId('b'), null);
  edit(t, list('"a"'));
  expect(t.pending().map((id) => id.value)).toEqual(['b']);
});

test('filterByShape: colliding list-shaped responses and unreadable messages fail closed', () => {
  expect(filterByShape(`[${list('1')},${list('1')}]`, visibility, 'c')).not.toContain('hidden');
  expect(filterByShape(`{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{"tools":${tools}}}`, visibility, 'c')).not.toContain('hidden');
  const plain = '{"jsonrpc":"2.0","id":1,"result":{"content":[]}}';
  expect(filterByShape(plain, visibility, 'c')).toBe(plain);
});

test('a probe keeps only the _meta keys that describe the client, never the call', () => {
  const params = {
    name: 'hidden',
    arguments: { a: 'secret' },
    _meta: {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'c' },
      'io.modelcontextprotocol/x': 'hidden',
      progressToken: 'hidden',
    },
  };
  const body = JSON.parse(probeRequest(rawId(1), 'tools/call', 'tool', 'thoughtgate-probe-1', params)) as { params: Record<string, unknown> };
  expect(body.params).toEqual({
    name: 'thoughtgate-probe-1',
    arguments: {},
    _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'c' } },
  });
});

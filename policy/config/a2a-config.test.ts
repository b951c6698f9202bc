// A2A in the config document (issue 13): protocol, the a2a block, expose.skills, match.skill.
import { ConfigFileSchema, PolicyDocumentSchema, protocolOf } from '../../api/config.js';
import { formatIssues } from '../../api/issues.js';
import { configHash } from './load.js';

const agent = (extra: Record<string, unknown> = {}) => ({
  name: 'billing-agent',
  protocol: 'a2a',
  url: 'https://billing.internal:8443',
  a2a: { jsonrpc: '/a2a/jsonrpc', rest: '/a2a/rest', skillFrom: 'metadata.skill' },
  ...extra,
});

function errors(doc: unknown): string[] {
  const r = ConfigFileSchema.safeParse(doc);
  if (r.success) return [];
  return formatIssues(r.error);
}

describe('config: A2A sources', () => {
  test('a document written before A2A parses as before: no protocol key appears, and its parsed form hashes as it did', () => {
    const doc = {
      sources: [{ name: 'github', url: 'https://api.example.com/mcp', expose: { mode: 'allowlist', tools: ['get_*'] } }],
      rules: [{ match: { tool: 'delete_*' }, action: 'deny' }],
    };
    const parsed = ConfigFileSchema.parse(doc);
    expect(Object.keys(parsed.sources[0]!)).not.toContain('protocol');
    expect(Object.keys(parsed.sources[0]!)).not.toContain('a2a');
    expect(protocolOf(parsed.sources[0]!)).toBe('mcp');
    // Computed from main before A2A existed: a new schema default would change it.
    expect(configHash(parsed)).toBe('c4611ddef3d4a1c6');
  });

  test.each(['A2A-Version', 'a2a-extensions', 'X-A2A-Extensions'])('an a2a source may not set %s in headers (the gates decide it per call)', (name) => {
    expect(errors({ sources: [agent({ headers: { [name]: 'urn:x' } })] })).toEqual([
      expect.stringContaining('an a2a source must not set A2A-Version, A2A-Extensions or X-A2A-Extensions in headers'),
    ]);
    // An MCP source's headers are not A2A's business.
    expect(errors({ sources: [{ name: 'm', url: 'http://10.0.0.5/mcp', headers: { [name]: 'x' } }] })).toEqual([]);
  });

  test.each(['metadata.__proto__.x', 'metadata.constructor', 'params.metadata.prototype'])(
    'skillFrom %s is refused (object plumbing, not a metadata key)',
    (skillFrom) => {
      expect(errors({ sources: [agent({ a2a: { jsonrpc: '/x', skillFrom } })] })).toEqual([expect.stringContaining('skillFrom must not name __proto__')]);
    },
  );

  test('skillFrom may read the request metadata (params.metadata.<key>)', () => {
    expect(errors({ sources: [agent({ a2a: { jsonrpc: '/x', skillFrom: 'params.metadata.skill' } })] })).toEqual([]);
  });

  test('a full a2a source parses, versions default to both', () => {
    const cfg = ConfigFileSchema.parse({
      sources: [agent({ expose: { mode: 'allowlist', skills: ['invoice-*', 'status'] } })],
      rules: [{ match: { source: 'billing-agent', method: 'SendMessage', skill: 'refund*' }, action: 'deny' }],
    });
    const s = cfg.sources[0]!;
    expect(protocolOf(s)).toBe('a2a');
    expect(s.a2a).toEqual({ jsonrpc: '/a2a/jsonrpc', rest: '/a2a/rest', skillFrom: 'metadata.skill', versions: ['1.0', '0.3'] });
    expect(s.expose).toEqual({ mode: 'allowlist', skills: ['invoice-*', 'status'] });
    expect(cfg.rules[0]!.match.skill).toBe('refund*');
  });

  test('one interface is enough; versions may be narrowed', () => {
    expect(errors({ sources: [agent({ a2a: { rest: '/' } })] })).toEqual([]);
    expect(errors({ sources: [agent({ a2a: { jsonrpc: '/rpc', versions: ['0.3'] } })] })).toEqual([]);
    expect(PolicyDocumentSchema.parse({ sources: [agent({ a2a: { jsonrpc: '/', versions: ['1.0'] } })] }).sources[0]!.a2a!.versions).toEqual(['1.0']);
  });

  test.each([
    [{ sources: [agent({ a2a: undefined })] }, 'sources[0].a2a: protocol a2a needs an a2a block naming its interfaces (a2a.jsonrpc and/or a2a.rest)'],
    [
      { sources: [agent({ a2a: {} })] },
      'sources[0].a2a: an a2a block needs at least one interface: jsonrpc (the JSON-RPC path) or rest (the HTTP+JSON base path)',
    ],
    [{ sources: [agent({ protocol: undefined })] }, 'sources[0].a2a: the a2a block is only used with protocol: a2a'],
    [{ sources: [agent({ protocol: 'mcp' })] }, 'sources[0].a2a: the a2a block is only used with protocol: a2a'],
    [{ sources: [agent({ protocol: 'grpc' })] }, 'sources[0].protocol: expected one of mcp, a2a'],
    [{ sources: [agent({ a2a: { jsonrpc: '/x', rest: '/x' } })] }, 'sources[0].a2a.rest: jsonrpc and rest must be different paths (both are "/x")'],
    [{ sources: [agent({ a2a: { jsonrpc: '/x', versions: [] } })] }, 'sources[0].a2a.versions: list at least one version'],
    [{ sources: [agent({ a2a: { jsonrpc: '/x', versions: ['1.0.0'] } })] }, 'sources[0].a2a.versions[0]: expected one of 1.0, 0.3'],
    [{ sources: [agent({ a2a: { jsonrpc: '/x', versions: ['0.3', '0.3'] } })] }, 'sources[0].a2a.versions[1]: duplicate version "0.3"'],
    [{ sources: [agent({ a2a: { jsonrpc: '/x', grpc: '/g' } })] }, 'sources[0].a2a: unknown key "grpc" (allowed: jsonrpc, rest, versions, skillFrom)'],
    [
      { sources: [agent({ a2a: { jsonrpc: '/x', skillFrom: 'skill' } })] },
      'sources[0].a2a.skillFrom: a dotted path into the message metadata such as "metadata.skill", or into the request metadata such as "params.metadata.skill" (letters, digits, "_" and "-" between the dots)',
    ],
    [
      { sources: [agent({ a2a: { jsonrpc: '/x', skillFrom: 'metadata.' } })] },
      'sources[0].a2a.skillFrom: a dotted path into the message metadata such as "metadata.skill", or into the request metadata such as "params.metadata.skill" (letters, digits, "_" and "-" between the dots)',
    ],
    [
      { sources: [agent({ a2a: { jsonrpc: '/x', skillFrom: 'params.skill' } })] },
      'sources[0].a2a.skillFrom: a dotted path into the message metadata such as "metadata.skill", or into the request metadata such as "params.metadata.skill" (letters, digits, "_" and "-" between the dots)',
    ],
    [
      { sources: [agent({ expose: { mode: 'allowlist', tools: ['x'] } })] },
      'sources[0].expose.tools: expose.tools is for MCP sources; an a2a source exposes skills (expose.skills)',
    ],
    [
      { sources: [agent({ expose: { mode: 'blocklist', prompts: ['x'] } })] },
      'sources[0].expose.prompts: expose.prompts is for MCP sources; an a2a source exposes skills (expose.skills)',
    ],
    [
      { sources: [{ name: 'gh', url: 'https://x/mcp', expose: { mode: 'allowlist', skills: ['x'] } }] },
      'sources[0].expose.skills: expose.skills is for A2A sources (protocol: a2a); an MCP source exposes tools, resources and prompts',
    ],
    [
      { sources: [agent()], rules: [{ match: { tool: 't', skill: 's' }, action: 'deny' }] },
      'rules[0].match: a rule matches one kind of target; it names tool and skill',
    ],
  ])('refused with a clear error: %j', (doc, message) => {
    expect(errors(doc)).toContain(message);
  });

  test.each([
    'a2a/jsonrpc',
    '/a2a/',
    '//a2a',
    '/a2a//rest',
    '/a2a/./rest',
    '/a2a/../rest',
    '/a%2Frest',
    '/a2a?x=1',
    '/a2a rest',
    '/a2a/rest:x',
    '/.well-known',
    '/.well-known/agent-card.json',
    '',
  ])('interface path %j is refused: only absolute, canonical paths are compared', (path) => {
    const e = errors({ sources: [agent({ a2a: { jsonrpc: path } })] });
    expect(e.some((m) => m.startsWith('sources[0].a2a.jsonrpc: '))).toBe(true);
  });
});

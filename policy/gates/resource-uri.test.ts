// Gates 1–3 decide on the canonical resource URI, whatever spelling the agent sent, and the
// message forwarded upstream carries that canonical URI (every other byte as sent).
import fc from 'fast-check';
import { ConfigFileSchema } from '../../api/config.js';
import { canonicalUri } from '../../api/resource-uri.js';
import { compilePolicies } from '../cedar/policies.js';
import { parseJsonRpc } from '../../lib/jsonrpc.js';
import { replaceJsonString } from '../../lib/json-splice.js';
import { decide, type GateInputs } from './decide.js';
import { describe as describeOp, describeMessage } from './operation.js';
import { compileRules } from './rules.js';
import { compileVisibility, filterListResult } from './visibility.js';
import { plain, spelling, uriParts } from '../../test/support/uri-spellings.js';

const identity = { namespace: 'ns', serviceAccount: 'sa', pod: 'p', labels: {} };
const now = new Date('2026-01-01T00:00:00Z');
const esc = (s: string) => s.replace(/[*?\\]/g, (c) => `\\${c}`);

function inputs(doc: object, cedarText?: string): GateInputs {
  const cfg = ConfigFileSchema.parse({
    sources: [{ name: 'e', url: 'http://127.0.0.1:1/mcp' }],
    ...doc,
    ...(cedarText ? { cedar: { policies: cedarText } } : {}),
  });
  const cedar = cedarText ? compilePolicies(cedarText) : null;
  if (cedar && !cedar.ok) throw new Error(cedar.errors.join('\n'));
  return {
    visibility: compileVisibility(cfg.sources[0]!.expose),
    rules: compileRules(cfg.rules),
    defaultAction: cfg.defaultAction,
    cedar: cedar?.ok ? cedar.policies : null,
    identity,
  };
}

function decision(g: GateInputs, method: string, params: unknown): string {
  const d = describeOp('e', method, params);
  return d.ok ? decide(g, d.op, now).action : 'invalid';
}

const canonicalParts = uriParts.filter((p) => canonicalUri(plain(p)).ok);
const withSpelling = canonicalParts.chain((p) => fc.tuple(fc.constant(p), spelling(p)));

describe('every spelling of a resource gets the decision of its canonical form', () => {
  test('gate 1 (blocklist and allowlist), gate 2 (a deny rule), for read, subscribe and completion', () => {
    fc.assert(
      fc.property(withSpelling, ([p, s]) => {
        const c = canonicalUri(plain(p));
        if (!c.ok) throw new Error(c.reason);
        const hidden = inputs({
          sources: [{ name: 'e', url: 'http://127.0.0.1:1/mcp', expose: { mode: 'blocklist', resources: [esc(c.uri)] } }],
          defaultAction: 'forward',
        });
        const only = inputs({
          sources: [{ name: 'e', url: 'http://127.0.0.1:1/mcp', expose: { mode: 'allowlist', resources: [esc(c.uri)] } }],
          defaultAction: 'forward',
        });
        const denied = inputs({ rules: [{ match: { resource: esc(c.uri) }, action: 'deny' }], defaultAction: 'forward' });
        for (const method of ['resources/read', 'resources/subscribe']) {
          expect(decision(hidden, method, { uri: s })).toBe('hidden');
          expect(decision(only, method, { uri: s })).toBe('forward');
          expect(decision(denied, method, { uri: s })).toBe('deny');
        }
        expect(decision(hidden, 'resources/unsubscribe', { uri: s })).toBe('hidden');
        expect(decision(hidden, 'completion/complete', { ref: { type: 'ref/resource', uri: s }, argument: { name: 'a', value: '' } })).toBe('hidden');
        expect(decision(denied, 'completion/complete', { ref: { type: 'ref/resource', uri: s }, argument: { name: 'a', value: '' } })).toBe('deny');
        // Listed under any spelling, the entry is filtered as its canonical form.
        expect(filterListResult(hidden.visibility, 'resources/list', { resources: [{ uri: s, name: 'x' }] })).toEqual({ resources: [] });
        expect(filterListResult(only.visibility, 'resources/list', { resources: [{ uri: s, name: 'x' }] })).toEqual({ resources: [{ uri: s, name: 'x' }] });
      }),
      { numRuns: 150 },
    );
  });

  test('gate 3: Cedar sees the canonical name', () => {
    const g = inputs(
      { defaultAction: 'policy' },
      `
permit (principal, action, resource);
forbid (principal, action, resource == ThoughtGate::Resource::"e/demo://resource/dynamic/text/1");
forbid (principal, action, resource) when { resource.name like "demo://resource/static/document/architecture*" };
`,
    );
    for (const s of [
      'demo://resource/dynamic/text/1',
      'demo://resource/dynamic/text/01',
      'DEMO://Resource/dynamic/./text/%31',
      ' demo://resource/dynamic/x/../text/0001\n',
    ]) {
      expect(decision(g, 'resources/read', { uri: s })).toBe('deny');
    }
    for (const s of [
      'demo://resource/static/document/architecture.md',
      'demo://resource/static/document/%61rchitecture.md',
      'demo://resource//static/document/architecture%2Emd',
    ]) {
      expect(decision(g, 'resources/read', { uri: s })).toBe('deny');
    }
    expect(decision(g, 'resources/read', { uri: 'demo://resource/dynamic/text/2' })).toBe('forward');
  });

  test('a URI without a canonical form is refused before any gate', () => {
    const g = inputs({ defaultAction: 'forward' });
    for (const s of ['demo://resource/dynamic/text/1.0', 'demo://resource/a%2Fb', 'not a uri', 'demo://resource/x#f']) {
      expect(decision(g, 'resources/read', { uri: s })).toBe('invalid');
      expect(decision(g, 'resources/unsubscribe', { uri: s })).toBe('invalid');
    }
    const d = describeOp('e', 'resources/read', { uri: 'demo://resource/%zz' });
    expect(d.ok ? '' : d.reason).toMatch(/^params\.uri is not a resource URI ThoughtGate can compare: invalid percent-encoding/);
  });
});

describe('the forwarded message', () => {
  const message = (text: string) => {
    const p = parseJsonRpc(text);
    if (!p.ok || p.batch || (p.message.kind !== 'request' && p.message.kind !== 'notification')) throw new Error('not a request');
    return p.message;
  };

  test('carries the canonical URI and every other byte as sent, the id text included', () => {
    const text =
      '{ "id" : 1.0e0, "jsonrpc":"2.0", "method":"resources/read", "params": {"_meta":{"progressToken":12345678901234567890,"k":"u\\u0072i"}, "uri" : "DEMO://resource/dynamic/text/01" } }';
    const d = describeMessage('e', message(text));
    expect(d.ok && d.raw).toBe(
      '{ "id" : 1.0e0, "jsonrpc":"2.0", "method":"resources/read", "params": {"_meta":{"progressToken":12345678901234567890,"k":"u\\u0072i"}, "uri" : "demo://resource/dynamic/text/1" } }',
    );
    const complete =
      '{"jsonrpc":"2.0","id":"a","method":"completion/complete","params":{"argument":{"name":"resourceId","value":"1"},"ref":{"uri":"demo://resource/dynamic/./text/{resourceId}","type":"ref/resource"}}}';
    const c = describeMessage('e', message(complete));
    expect(c.ok && c.raw).toBe(complete.replace('/./', '/'));
  });

  test('is the original text when the URI is already canonical', () => {
    const text = '{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"demo://resource/dynamic/text/1"}}';
    const d = describeMessage('e', message(text));
    expect(d.ok).toBe(true);
    expect(d.ok && d.raw).toBeUndefined();
  });

  test('replaceJsonString finds the key past nested values and escaped keys', () => {
    const text = '{"a":[1,{"uri":"no"}],"b":"x\\"}","p":{"\\u0075ri":"old","uri2":3}}';
    expect(replaceJsonString(text, ['p', 'uri'], 'new')).toBe('{"a":[1,{"uri":"no"}],"b":"x\\"}","p":{"\\u0075ri":"new","uri2":3}}');
    expect(replaceJsonString(text, ['p', 'missing'], 'new')).toBeNull();
    expect(replaceJsonString(text, ['p', 'uri2'], 'new')).toBeNull(); // not a string
  });
});

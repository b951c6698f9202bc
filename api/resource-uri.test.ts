// Canonical resource URIs: one spelling per resource, idempotent, read back unchanged by `new URL()`.
import fc from 'fast-check';
import { canonicalUri, canonicalUriTemplate, probeUriFor, resourceGlobProblem } from './resource-uri.js';
import { ConfigFileSchema } from './config.js';
import { plain, spelling, uriParts } from '../test/support/uri-spellings.js';

const canon = (s: string): string => {
  const c = canonicalUri(s);
  if (!c.ok) throw new Error(`${JSON.stringify(s)}: ${c.reason}`);
  return c.uri;
};

describe('canonicalUri: spellings of one resource', () => {
  test.each([
    // scheme and host case
    ['DEMO://resource/static/document/architecture.md', 'demo://resource/static/document/architecture.md'],
    ['demo://RESOURCE/static/document/architecture.md', 'demo://resource/static/document/architecture.md'],
    ['HTTP://Example.COM/A', 'http://example.com/A'],
    // dot segments, also percent-encoded
    ['demo://resource/static/./document/x/../architecture.md', 'demo://resource/static/document/architecture.md'],
    ['demo://resource/static/%2e/document/x/%2E%2e/architecture.md', 'demo://resource/static/document/architecture.md'],
    ['demo://resource/a/..', 'demo://resource/'],
    ['demo://resource/a/.', 'demo://resource/a/'],
    // percent-encoded unreserved characters decoded, other hex uppercased
    ['demo://resource/static/document/%61rchitecture%2emd', 'demo://resource/static/document/architecture.md'],
    ['demo://%72esource/x', 'demo://resource/x'],
    ['demo://resource/%7e%5f%2d', 'demo://resource/~_-'],
    ['demo://resource/a%2cb%c3%a9', 'demo://resource/a%2Cb%C3%A9'],
    ['demo://resource/x?q=%2f%41', 'demo://resource/x?q=%2FA'],
    // characters a URI does not carry literally
    ['demo://resource/a b|c^d[e]{f}', 'demo://resource/a%20b%7Cc%5Ed%5Be%5D%7Bf%7D'],
    ['demo://resource/é', 'demo://resource/%C3%A9'],
    ['urn:a b', 'urn:a%20b'],
    // whitespace around, tabs and newlines inside (the WHATWG parser drops them)
    [' \n demo://resource/dynamic/text/1 \r\n', 'demo://resource/dynamic/text/1'],
    ['demo://resource/dyn\tamic/te\nxt/1', 'demo://resource/dynamic/text/1'],
    // leading zeros of a number
    ['demo://resource/dynamic/text/01', 'demo://resource/dynamic/text/1'],
    ['demo://resource/dynamic/text/%30%30%37', 'demo://resource/dynamic/text/7'],
    ['demo://resource/000/x', 'demo://resource/0/x'],
    // empty segments, empty query, empty userinfo, ports
    ['demo://resource//dynamic///text/1', 'demo://resource/dynamic/text/1'],
    ['demo://resource/x?', 'demo://resource/x'],
    ['demo://@resource/x', 'demo://resource/x'],
    ['demo://resource:/x', 'demo://resource/x'],
    ['demo://resource:0080/x', 'demo://resource:80/x'],
    ['http://example.com:80/x', 'http://example.com/x'],
    // a trailing dot in the host (a fully qualified name)
    ['https://Internal.Example.com./x', 'https://internal.example.com/x'],
    ['demo://resource./x', 'demo://resource/x'],
    ['http://127.1./x', 'http://127.0.0.1/x'],
    // special schemes: backslashes, localhost file host
    ['http:\\\\example.com\\a\\b', 'http://example.com/a/b'],
    ['file://LOCALHOST/etc/passwd', 'file:///etc/passwd'],
    // things that stay as they are
    ['demo://resource/dynamic/text/-1', 'demo://resource/dynamic/text/-1'],
    ['demo://resource/v/1.5', 'demo://resource/v/1.5'],
    ['demo://resource/0xdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef', 'demo://resource/0xdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef'],
    ['urn:isbn:0451450523', 'urn:isbn:0451450523'],
    ['demo://resource/Case/Sensitive', 'demo://resource/Case/Sensitive'],
  ])('%j → %s', (input, expected) => {
    expect(canon(input)).toBe(expected);
    expect(canon(expected)).toBe(expected);
    expect(new URL(expected).href).toBe(expected);
  });
});

describe('canonicalUri: refused', () => {
  test.each([
    ['not a URL', 'resource/static/x', /absolute URI/],
    ['relative', '/x', /absolute URI/],
    ['fragment', 'demo://resource/x#frag', /fragment/],
    ['empty fragment', 'demo://resource/x#', /fragment/],
    ['user information', 'demo://user@resource/x', /user information/],
    ['NUL', 'demo://resource/x\u0000', /control character/],
    ['control character', 'demo://resource/a\u0001b', /control character/],
    ['C1 control', 'demo://resource/a\u0085b', /control character/],
    ['lone surrogate', 'demo://resource/\ud800', /surrogate/],
    ['host of dots', 'demo://../x', /empty label/],
    ['too long', `demo://resource/${'a'.repeat(8200)}`, /longer than 8192 characters/],
    ['too long once encoded', `demo://resource/${'é'.repeat(1400)}`, /longer than 8192 characters in canonical form/],
    ['two trailing dots', 'demo://resource../x', /empty label/],
    ['encoded NUL', 'demo://resource/a%00b', /NUL/],
    ['encoded NUL in a query', 'demo://resource/a?b=%00', /NUL/],
    ['encoded control', 'demo://resource/a%0Ab', /control/],
    ['encoded slash', 'demo://resource/a%2Fb', /"\/"/],
    ['encoded slash, lowercase', 'demo://resource/a%2fb', /"\/"/],
    ['encoded backslash', 'demo://resource/a%5Cb', /"\/"/],
    ['backslash in a non-special path', 'demo://resource/a\\b', /backslash/],
    ['invalid percent', 'demo://resource/%zz', /percent-encoding/],
    ['truncated percent', 'demo://resource/a%4', /percent-encoding/],
    ['not UTF-8', 'demo://resource/%C3', /UTF-8/],
    ['not UTF-8 (Latin-1)', 'demo://resource/%E9t%E9', /UTF-8/],
    ['1.0', 'demo://resource/dynamic/text/1.0', /number/],
    ['1.', 'demo://resource/dynamic/text/1.', /number/],
    ['+1', 'demo://resource/dynamic/text/+1', /number/],
    ['-0', 'demo://resource/dynamic/text/-0', /number/],
    ['-01', 'demo://resource/dynamic/text/-01', /number/],
    ['1e0', 'demo://resource/dynamic/text/1e0', /number/],
    ['.1e1', 'demo://resource/dynamic/text/.1e1', /number/],
    ['0x1', 'demo://resource/dynamic/text/0x1', /number/],
    ['0o1', 'demo://resource/dynamic/text/0o1', /number/],
    ['0b1', 'demo://resource/dynamic/text/0b1', /number/],
    ['1_0', 'demo://resource/dynamic/text/1_0', /number/],
    ['space-padded', 'demo://resource/dynamic/text/%201', /number/],
    ['tab-padded', 'demo://resource/dynamic/text/1%09', /control|number/],
    ['Devanagari digit', 'demo://resource/dynamic/text/%E0%A5%A7', /number/],
    ['fullwidth digit', 'demo://resource/dynamic/text/１', /number/],
  ])('%s: %j', (_what, input, why) => {
    const c = canonicalUri(input);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.reason).toMatch(why);
  });
});

describe('canonicalUri: properties', () => {
  const runs = { numRuns: 400 };
  const canonicalParts = uriParts.filter((p) => canonicalUri(plain(p)).ok);

  test('every generated spelling of a URI has the canonical form of the URI', () => {
    fc.assert(
      fc.property(
        canonicalParts.chain((p) => fc.tuple(fc.constant(p), spelling(p))),
        ([p, s]) => {
          const c = canonicalUri(s);
          expect(c).toEqual({ ok: true, uri: canon(plain(p)) });
        },
      ),
      runs,
    );
  });

  test('idempotent, and `new URL()` reads the canonical form back unchanged', () => {
    const check = (s: string) => {
      const c = canonicalUri(s);
      if (!c.ok) return;
      expect(canonicalUri(c.uri)).toEqual(c);
      expect(new URL(c.uri).href).toBe(c.uri);
    };
    fc.assert(fc.property(canonicalParts.chain(spelling), check), runs);
    fc.assert(fc.property(fc.webUrl({ withQueryParameters: true, withFragments: false }), check), runs);
    const uriish = fc.array(fc.constantFrom(...'aZ09-._~!$&\'()*+,;=:@/?#%[]\\ \t{}|^`"<>éÅ€'.split(''), '%2e', '%2E', '%41', '%2f', '%00', '..', './', '//'), {
      maxLength: 24,
    });
    fc.assert(
      fc.property(fc.constantFrom('demo://', 'DEMO://h', 'http://', 'file://', 'urn:', 'x:/', 'demo:'), uriish, (pre, rest) => check(pre + rest.join(''))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => check(`demo://h/${s}`)),
      { numRuns: 1000 },
    );
  });
});

describe('URI templates', () => {
  test('the URI text around expressions is canonicalised; expressions are kept', () => {
    expect(canonicalUriTemplate('DEMO://Resource/dynamic/./text/{resourceId}')).toEqual({ ok: true, uri: 'demo://resource/dynamic/text/{resourceId}' });
    expect(canonicalUriTemplate('file:///pub/{+path}{?q,r}')).toEqual({ ok: true, uri: 'file:///pub/{+path}{?q,r}' });
    expect(canonicalUriTemplate('demo://resource/%61/{x}')).toEqual({ ok: true, uri: 'demo://resource/a/{x}' });
    expect(canonicalUriTemplate('demo://resource/x')).toEqual({ ok: true, uri: 'demo://resource/x' });
  });

  test('refused: unbalanced braces, an expression a dot segment removes, the reserved placeholder text', () => {
    expect(canonicalUriTemplate('demo://r/{x').ok).toBe(false);
    expect(canonicalUriTemplate('demo://r/x}').ok).toBe(false);
    expect(canonicalUriTemplate('demo://r/{x}/../y').ok).toBe(false);
    expect(canonicalUriTemplate('demo://r/zztgh0zz/{x}').ok).toBe(false);
  });
});

describe('probes for hidden resources', () => {
  test('same scheme and authority, a path that cannot exist, never the hidden URI itself', () => {
    expect(probeUriFor('demo://resource/static/document/architecture.md', 'P')).toBe('demo://resource/P');
    expect(probeUriFor('http://example.com:8080/a?b', 'P')).toBe('http://example.com:8080/P');
    expect(probeUriFor('file:///etc/passwd', 'P')).toBe('file:///P');
    expect(probeUriFor('demo:/x', 'P')).toBe('demo:/P');
    // Opaque URIs ignore URL.pathname: the old probe was the hidden URI itself.
    expect(probeUriFor('urn:secret', 'P')).toBe('urn:P');
    expect(probeUriFor('urn:P', 'P')).toBe('thoughtgate:///P');
    expect(probeUriFor('demo://resource/dynamic/text/{resourceId}', 'P')).toBe('demo://resource/P');
  });
});

describe('resource globs in the config', () => {
  test.each([
    ['demo://resource/*', null],
    ['file:///public/*', null],
    ['demo://resource/dynamic/text/{resourceId}', null],
    ['demo://resource/x\\?a=1', null],
    ['*secret*', null],
    ['*.md', null],
    ['*', null],
    ['DEMO://resource/*', /write it as "demo:\/\/resource\/\*"/],
    ['demo://Resource/x', /write it as "demo:\/\/resource\/x"/],
    ['demo://resource/./x', /write it as "demo:\/\/resource\/x"/],
    ['demo://resource/%41*', /write it as "demo:\/\/resource\/A\*"/],
    ['demo://resource/dynamic/text/01', /write it as "demo:\/\/resource\/dynamic\/text\/1"/],
    ['demo://resource/dynamic/text/1.0', /number/],
    ['demo://resource/x#*', /fragment/],
    ['*%2e*', /encoded unreserved/],
    ['*%2f*', /uppercase hex/],
    ['* secret', /whitespace/],
    ['*é*', /non-ASCII/],
    ['*%4', /two hex digits/],
  ])('%j', (glob, expected) => {
    const problem = resourceGlobProblem(glob);
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });

  test('every canonical URI, written as a glob, is accepted', () => {
    const esc = (s: string) => s.replace(/[*?\\]/g, (c) => `\\${c}`);
    fc.assert(
      fc.property(uriParts.chain(spelling), (s) => {
        const c = canonicalUri(s);
        if (c.ok) expect(resourceGlobProblem(esc(c.uri))).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  test('the config refuses a non-canonical resource glob in expose.resources and rules[].match.resource', () => {
    const base = { sources: [{ name: 'e', url: 'http://127.0.0.1:1/mcp' }], defaultAction: 'forward' };
    const bad1 = ConfigFileSchema.safeParse({ ...base, sources: [{ ...base.sources[0], expose: { mode: 'blocklist', resources: ['DEMO://resource/x'] } }] });
    expect(bad1.success).toBe(false);
    expect(JSON.stringify(bad1.error?.issues)).toContain('write it as \\"demo://resource/x\\"');
    const bad2 = ConfigFileSchema.safeParse({ ...base, rules: [{ match: { resource: ['demo://resource/dynamic/text/01'] }, action: 'deny' }] });
    expect(bad2.success).toBe(false);
    const good = ConfigFileSchema.safeParse({ ...base, rules: [{ match: { resource: 'demo://resource/dynamic/text/1' }, action: 'deny' }] });
    expect(good.success).toBe(true);
  });
});

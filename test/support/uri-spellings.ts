// fast-check arbitraries for resource URIs and for other spellings of the same URI: the ones the
// WHATWG parser and RFC 3986 §6 treat as equal (scheme/host case, percent-encoded unreserved
// characters and hex case, dot segments, empty segments, surrounding whitespace, tabs and newlines,
// a trailing dot in the host, default and empty ports, backslashes in special schemes, an empty query) and the leading zeros
// servers ignore when they route a numeric id.
import fc from 'fast-check';

const UNRESERVED = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~';
const SPECIAL_PORTS: Record<string, string> = { http: '80', https: '443', ws: '80', wss: '443' };

/** One URI as parts; every path/query "char" is an unreserved char, a sub-delim or a %XX triplet. */
export interface UriParts {
  scheme: string;
  host: string;
  port: string;
  segments: string[][];
  query: string[] | null;
}

const unreservedChar = fc.constantFrom(...UNRESERVED.split(''));
const pathChar = fc.oneof(
  { weight: 8, arbitrary: unreservedChar },
  { weight: 1, arbitrary: fc.constantFrom('!', '$', '&', "'", '(', ')', '+', ',', ';', '=', ':', '@') },
  { weight: 1, arbitrary: fc.constantFrom('%20', '%C3%A9', '%25', '%3F', '%23', '%E2%82%AC') },
);
const numericSegment = fc.integer({ min: 0, max: 100000 }).map((n) => String(n).split(''));
const segment = fc.oneof({ weight: 4, arbitrary: fc.array(pathChar, { minLength: 1, maxLength: 8 }) }, { weight: 1, arbitrary: numericSegment });
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?$/);

export const uriParts: fc.Arbitrary<UriParts> = fc
  .record({
    scheme: fc.constantFrom('demo', 'custom+x', 'x-res', 'http', 'https', 'ws'),
    host: fc
      .array(label, { minLength: 1, maxLength: 3 })
      .map((l) => l.join('.'))
      .filter((h) => !/^[0-9.]+$/.test(h) && !/(^|\.)[0-9]+$/.test(h) && !/^0x/i.test(h) && !/(^|\.)xn--/.test(h)),
    port: fc.constantFrom('', '', '8080'),
    segments: fc.array(segment, { minLength: 1, maxLength: 5 }),
    query: fc.option(fc.array(pathChar, { minLength: 1, maxLength: 6 }), { nil: null }),
  })
  .filter((p) =>
    p.segments.every((s) => {
      const t = s.join('');
      return t !== '.' && t !== '..';
    }),
  );

/** The parts written plainly. */
export function plain(p: UriParts): string {
  const port = p.port ? `:${p.port}` : '';
  const q = p.query ? `?${p.query.join('')}` : '';
  return `${p.scheme}://${p.host}${port}/${p.segments.map((s) => s.join('')).join('/')}${q}`;
}

const hex = (b: number, lower: boolean): string => {
  const h = b.toString(16).toUpperCase().padStart(2, '0');
  return `%${lower ? h.toLowerCase() : h}`;
};

function randomCase(s: string, flips: boolean[]): string {
  return s
    .split('')
    .map((c, i) => (flips[i % flips.length] ? c.toUpperCase() : c.toLowerCase()))
    .join('');
}

/** Another spelling of `plain(p)`, driven by the random choices in `r`. */
export const spelling = (p: UriParts): fc.Arbitrary<string> =>
  fc
    .record({
      schemeCase: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
      hostCase: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
      encode: fc.array(fc.constantFrom(0, 0, 0, 1, 2), { minLength: 1, maxLength: 16 }), // 0 literal, 1 %XX, 2 %xx
      hostEncode: fc.boolean(),
      dots: fc.array(fc.constantFrom('none', 'none', 'dot', 'up', 'empty'), { minLength: 1, maxLength: 8 }),
      dotSpelling: fc.constantFrom('.', '%2e', '%2E'),
      zeros: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 6 }),
      lead: fc.constantFrom('', ' ', '\t', '\n ', '\r\n', ' \f'),
      trail: fc.constantFrom('', ' ', '\n', '\t \r\n'),
      inner: fc.option(fc.tuple(fc.nat(), fc.constantFrom('\t', '\n', '\r')), { nil: null }),
      defaultPort: fc.constantFrom('', 'default', 'empty'),
      backslash: fc.boolean(),
      hostDot: fc.boolean(),
      emptyQuery: fc.boolean(),
    })
    .map((r) => {
      let k = 0;
      const enc = (c: string): string => {
        if (c.length > 1) return r.encode[k++ % r.encode.length] === 2 ? c.toLowerCase() : c; // a %XX triplet: hex case only
        const how = r.encode[k++ % r.encode.length];
        return UNRESERVED.includes(c) && how !== 0 ? hex(c.charCodeAt(0), how === 2) : c;
      };
      const special = p.scheme in SPECIAL_PORTS;
      const scheme = randomCase(p.scheme, r.schemeCase);
      let host = randomCase(p.host, r.hostCase);
      if (r.hostEncode)
        host = host
          .split('')
          .map((c) => (c === '.' ? c : enc(c)))
          .join('');
      if (r.hostDot) host += '.';
      let port = p.port ? `:${p.port}` : '';
      if (!p.port && special && r.defaultPort === 'default') port = `:${SPECIAL_PORTS[p.scheme]}`;
      if (!p.port && r.defaultPort === 'empty') port = ':';
      const segs: string[] = [];
      p.segments.forEach((s, i) => {
        const d = r.dots[i % r.dots.length];
        const dot = r.dotSpelling;
        if (d === 'dot') segs.push(dot);
        if (d === 'up') segs.push('zz', `${dot}${dot === '.' ? '.' : dot.toUpperCase()}`);
        if (d === 'empty' && i > 0) segs.push('');
        const text = s.join('');
        if (/^[0-9]+$/.test(text)) segs.push('0'.repeat(r.zeros[i % r.zeros.length]!) + text);
        else segs.push(s.map(enc).join(''));
      });
      const sep = special && r.backslash ? '\\' : '/';
      const query = p.query ? `?${p.query.map(enc).join('')}` : r.emptyQuery ? '?' : '';
      let out = `${scheme}://${host}${port}${sep}${segs.join(sep)}${query}`;
      if (r.inner) {
        const at = r.inner[0] % (out.length + 1);
        out = out.slice(0, at) + r.inner[1] + out.slice(at);
      }
      return `${r.lead}${out}${r.trail}`;
    });

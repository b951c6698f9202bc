// A source's own query parameters cannot be given again by the agent, in any spelling.
import fc from 'fast-check';
import { canonicalParamName, upstreamTarget } from './query.js';

test('the agent query follows the source query when it repeats none of its parameters', () => {
  expect(upstreamTarget('/mcp?token=x', '/mcp/s?trace=1')).toEqual({ ok: true, path: '/mcp?token=x&trace=1' });
  expect(upstreamTarget('/mcp', '/mcp/s?token=1')).toEqual({ ok: true, path: '/mcp?token=1' });
  expect(upstreamTarget('/mcp?token=x', '/mcp/s')).toEqual({ ok: true, path: '/mcp?token=x' });
  expect(upstreamTarget('/mcp?token=x', '/mcp/s?')).toEqual({ ok: true, path: '/mcp?token=x' });
  // Forward-proxy mode: the absolute URL carries the source's own query, once.
  expect(upstreamTarget('/mcp?token=x', 'http://h:1/mcp?token=x')).toEqual({ ok: true, path: '/mcp?token=x' });
  expect(upstreamTarget('/mcp?token=x', 'http://h:1/mcp?token=x&trace=1')).toEqual({ ok: true, path: '/mcp?token=x&trace=1' });
  expect(upstreamTarget('/mcp?token=x', 'http://h:1/mcp?token=x&token=y').ok).toBe(false);
  expect(upstreamTarget('/mcp?token=x', 'http://h:1/mcp?token=xy').ok).toBe(false);
});

test.each(['token=y', 'TOKEN=y', '%74oken=y', 'token[]=y', 'token%5b0%5d=y', 'a=1&token=y', 'a=1;token=y', 'token', '+token=y', '%20token=y', 'x=%zz&%zz=1'])(
  '?%s is refused',
  (q) => {
    expect(upstreamTarget('/mcp?token=x', `/mcp/s?${q}`).ok).toBe(false);
  },
);

test('property: any percent-encoding and case of a source parameter name is refused', () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[a-z][a-z0-9_]{0,11}$/),
      fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      (name, enc, upper) => {
        const spelled = [...name]
          .map((c, i) => {
            const ch = upper[i] ? c.toUpperCase() : c;
            return enc[i] ? `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}` : ch;
          })
          .join('');
        expect(canonicalParamName(spelled)).toBe(name);
        return !upstreamTarget(`/mcp?${name}=v`, `/mcp/s?${spelled}=w`).ok;
      },
    ),
  );
});

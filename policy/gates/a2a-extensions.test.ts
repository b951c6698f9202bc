// Parsing and deciding the A2A extensions header: both spellings, canonical form, bounds.
import { expect, test } from '@jest/globals';
import { a2aExtensionsOf, decideExtensionHeaders } from './a2a-extensions.js';

test("comma-separated URIs, trimmed, empty items and repeats dropped; sent under the version's one name", () => {
  expect(a2aExtensionsOf({ 'a2a-extensions': ' urn:a , ,urn:b,urn:a' }, '1.0')).toEqual({
    ok: true,
    extensions: ['urn:a', 'urn:b'],
    header: { name: 'a2a-extensions', value: 'urn:a, urn:b' },
  });
  expect(a2aExtensionsOf({ 'a2a-extensions': 'urn:a' }, '0.3')).toMatchObject({ header: { name: 'x-a2a-extensions', value: 'urn:a' } });
  expect(a2aExtensionsOf({}, '1.0')).toEqual({ ok: true, extensions: [], header: null });
  expect(a2aExtensionsOf({ 'a2a-extensions': ' , ' }, '1.0')).toEqual({ ok: true, extensions: [], header: null });
});

test('both spellings must name the same set; malformed, too long and too many are refused', () => {
  expect(a2aExtensionsOf({ 'a2a-extensions': 'urn:a, urn:b', 'x-a2a-extensions': 'urn:b,urn:a' }, '0.3')).toMatchObject({
    ok: true,
    extensions: ['urn:a', 'urn:b'],
  });
  expect(a2aExtensionsOf({ 'a2a-extensions': 'urn:a', 'x-a2a-extensions': 'urn:a, urn:b' }, '0.3')).toMatchObject({ ok: false });
  for (const bad of ['no-scheme', 'urn:a b', 'https://é.example/x', `urn:${'x'.repeat(600)}`, Array.from({ length: 17 }, (_, i) => `urn:${i}`).join(',')])
    expect(a2aExtensionsOf({ 'a2a-extensions': bad }, '1.0')).toMatchObject({ ok: false });
});

test('the headers are rewritten to the decided one; a Connection header naming either spelling is refused', () => {
  const h: Record<string, string | string[] | undefined> = { 'x-a2a-extensions': 'urn:a', 'a2a-extensions': 'urn:a' };
  expect(decideExtensionHeaders(h, '1.0')).toMatchObject({ ok: true });
  expect(h).toEqual({ 'a2a-extensions': 'urn:a' });
  const none: Record<string, string | string[] | undefined> = { 'a2a-extensions': ',' };
  decideExtensionHeaders(none, '1.0');
  expect(none).toEqual({});
  expect(decideExtensionHeaders({ connection: 'close, X-A2A-Extensions', 'x-a2a-extensions': 'urn:a' }, '0.3')).toMatchObject({ ok: false });
});

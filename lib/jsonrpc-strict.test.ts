import { expect, test } from '@jest/globals';
import { parseStrictJson } from './jsonrpc.js';

test('parseStrictJson: plain JSON values parse; duplicate keys at any depth, bad JSON and a BOM are refused', () => {
  expect(parseStrictJson('{"a":[1,{"b":"c"}]}')).toEqual({ ok: true, value: { a: [1, { b: 'c' }] } });
  expect(parseStrictJson('"x"')).toEqual({ ok: true, value: 'x' });
  expect(parseStrictJson('{"a":1,"a":2}')).toMatchObject({ ok: false, reason: 'duplicate key "a"' });
  expect(parseStrictJson('{"m":{"p":[{"t":1,"t":2}]}}')).toMatchObject({ ok: false, reason: 'duplicate key "t"' });
  expect(parseStrictJson('{"a\\u0062":1,"ab":2}')).toMatchObject({ ok: false });
  expect(parseStrictJson('{"a":1')).toMatchObject({ ok: false });
  expect(parseStrictJson('\uFEFF{}')).toMatchObject({ ok: false });
  // The scanner's tables are reset per call: a clean body after a duplicate one parses.
  expect(parseStrictJson('{"a":1}')).toEqual({ ok: true, value: { a: 1 } });
});

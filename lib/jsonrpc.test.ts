import { MAX_DEPTH, batchBody, decodeUtf8Strict, parseJsonRpc, rawId, type Message, type Parsed } from './jsonrpc.js';
import { errorResponse, resultResponse } from './jsonrpc-reply.js';

function single(body: string): Message {
  const p = parseJsonRpc(body);
  if (!p.ok || p.batch) throw new Error(`expected a single message, got ${JSON.stringify(p)}`);
  return p.message;
}

function batch(body: string): Message[] {
  const p = parseJsonRpc(body);
  if (!p.ok || !p.batch) throw new Error(`expected a batch, got ${JSON.stringify(p)}`);
  return p.messages;
}

const req = (id: string, extra = '') => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"t"}${extra}}`;

describe('ids keep their exact type and text', () => {
  const ids: [string, string | number][] = [
    ['1', 1],
    ['"1"', '1'],
    ['0', 0],
    ['-5', -5],
    ['1.5', 1.5],
    ['1e3', 1000],
    ['1.0', 1],
    ['-0', -0],
    ['12345678901234567890', Number('12345678901234567890')],
    ['""', ''],
    ['"é✓🙂"', 'é✓🙂'],
    ['"\\u00e9\\ud83d\\ude42"', 'é🙂'],
    ['"a\\"b\\\\c"', 'a"b\\c'],
  ];
  test.each(ids)('id %s', (raw, value) => {
    const m = single(req(raw));
    expect(m.kind).toBe('request');
    if (m.kind !== 'request') return;
    expect(m.id.raw).toBe(raw);
    expect(Object.is(m.id.value, value)).toBe(true);
    const err = errorResponse(m.id, -32601, 'Method not found');
    expect(err).toBe(`{"jsonrpc":"2.0","id":${raw},"error":{"code":-32601,"message":"Method not found"}}`);
    expect(Object.is(JSON.parse(err).id, value)).toBe(true);
    expect(resultResponse(m.id, { ok: 1 })).toBe(`{"jsonrpc":"2.0","id":${raw},"result":{"ok":1}}`);
  });

  test('the big integer id is not rounded in the reply even though its value is', () => {
    const m = single(req('12345678901234567890'));
    if (m.kind !== 'request') throw new Error(m.kind);
    expect(String(m.id.value)).not.toBe('12345678901234567890');
    expect(errorResponse(m.id, -32600, 'x')).toContain('"id":12345678901234567890,');
  });

  test('whitespace around the id is not part of its raw text', () => {
    const m = single('{ "jsonrpc" : "2.0" , "id" :\n\t 7 \r\n, "method":"ping" }');
    expect(m.kind === 'request' && m.id.raw).toBe('7');
  });

  test('response ids are preserved as well', () => {
    const m = single('{"jsonrpc":"2.0","id":"abc","result":{}}');
    expect(m).toMatchObject({ kind: 'response', id: { raw: '"abc"', value: 'abc' }, isError: false, result: {} });
  });
});

describe('message kinds', () => {
  test('request with object and array params, and without params', () => {
    expect(single(req('1'))).toEqual({
      kind: 'request',
      id: { raw: '1', value: 1 },
      method: 'tools/call',
      params: { name: 't' },
      raw: req('1'),
    });
    expect(single('{"jsonrpc":"2.0","id":1,"method":"m","params":[1,2]}')).toMatchObject({ kind: 'request', params: [1, 2] });
    const m = single('{"jsonrpc":"2.0","id":1,"method":"ping"}');
    expect(m).toMatchObject({ kind: 'request', method: 'ping' });
    expect(m.kind === 'request' && m.params).toBeUndefined();
  });

  test('notification', () => {
    const body = '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"123"}}';
    expect(single(body)).toEqual({ kind: 'notification', method: 'notifications/cancelled', params: { requestId: '123' }, raw: body });
  });

  test('result and error responses', () => {
    expect(single('{"jsonrpc":"2.0","id":1,"result":null}')).toMatchObject({ kind: 'response', isError: false, result: null });
    const e = single('{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"boom","data":[1]}}');
    expect(e).toMatchObject({ kind: 'response', isError: true, id: { raw: '2' }, error: { code: -32000, message: 'boom', data: [1] } });
    expect(single('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}')).toMatchObject({
      kind: 'response',
      id: null,
      isError: true,
    });
    // MCP 2025-11-25: an error response may omit an id it could not read.
    expect(single('{"jsonrpc":"2.0","error":{"code":-32600,"message":"x"}}')).toMatchObject({ kind: 'response', id: null, isError: true });
  });

  test('raw of a single message is its exact text without surrounding whitespace', () => {
    const body = '{"jsonrpc":"2.0", "method":"a"}';
    expect(single(` \n\t${body}\r\n `).raw).toBe(body);
  });
});

describe('invalid messages', () => {
  const cases: [string, string, string | null][] = [
    // body, reason fragment, expected id raw
    ['{"id":1,"method":"m"}', 'jsonrpc', '1'],
    ['{"jsonrpc":"1.0","id":1,"method":"m"}', 'jsonrpc', '1'],
    ['{"jsonrpc":2.0,"id":1,"method":"m"}', 'jsonrpc', '1'],
    ['{"jsonrpc":"2.0","id":1,"method":5}', 'method must be a string', '1'],
    ['{"jsonrpc":"2.0","id":1,"method":null}', 'method must be a string', '1'],
    ['{"jsonrpc":"2.0","id":null,"method":"m"}', 'request id', null],
    ['{"jsonrpc":"2.0","id":true,"method":"m"}', 'request id', null],
    ['{"jsonrpc":"2.0","id":{"a":1},"method":"m"}', 'request id', null],
    ['{"jsonrpc":"2.0","id":[1],"method":"m"}', 'request id', null],
    ['{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}', 'params', '1'],
    ['{"jsonrpc":"2.0","id":1,"method":"m","params":null}', 'params', '1'],
    ['{"jsonrpc":"2.0","id":1,"method":"m","params":3}', 'params', '1'],
    ['{"jsonrpc":"2.0","method":"m","params":true}', 'params', null],
    ['{"jsonrpc":"2.0","id":1,"method":"m","result":{}}', 'method', '1'],
    ['{"jsonrpc":"2.0","id":1,"method":"m","error":{"code":1,"message":"x"}}', 'method', '1'],
    ['{"jsonrpc":"2.0","id":1}', 'result or error', '1'],
    ['{"jsonrpc":"2.0"}', 'missing method', null],
    ['{}', 'jsonrpc', null],
    ['{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}', 'both', '1'],
    ['{"jsonrpc":"2.0","result":{}}', 'without id', null],
    ['{"jsonrpc":"2.0","id":true,"result":{}}', 'response id', null],
    ['{"jsonrpc":"2.0","id":1,"error":"bad"}', 'error must be an object', '1'],
    ['{"jsonrpc":"2.0","id":1,"error":null}', 'error must be an object', '1'],
    ['{"jsonrpc":"2.0","id":1,"error":[]}', 'error must be an object', '1'],
    ['{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}', 'error.code', '1'],
    ['{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}', 'error.code', '1'],
    ['{"jsonrpc":"2.0","id":1,"error":{"code":"1","message":"x"}}', 'error.code', '1'],
    ['{"jsonrpc":"2.0","id":1,"error":{"code":1}}', 'error.message', '1'],
    ['{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":2}}', 'error.message', '1'],
  ];
  test.each(cases)('%s', (body, reason, id) => {
    const m = single(body);
    expect(m.kind).toBe('invalid');
    if (m.kind !== 'invalid') return;
    expect(m.reason).toContain(reason);
    expect(m.id?.raw ?? null).toBe(id);
    expect(m.raw).toBe(body);
  });
});

describe('duplicate keys', () => {
  test.each([
    ['top level', '{"jsonrpc":"2.0","method":"a","method":"b"}', 'method'],
    ['in params', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}', 'name'],
    ['deep in arguments', '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":[{"b":{"c":1,"d":2,"c":3}}]}}', 'c'],
    ['spelled with an escape', '{"jsonrpc":"2.0","id":1,"method":"m","params":{"name":1,"n\\u0061me":2}}', 'name'],
    ['both escaped differently', '{"jsonrpc":"2.0","id":1,"method":"m","params":{"\\u0041":1,"\\u0041":2}}', 'A'],
    [
      'in a wide object',
      `{"jsonrpc":"2.0","id":1,"method":"m","params":{${Array.from({ length: 200 }, (_, i) => `"k${i}":${i}`).join(',')},"k150":0}}`,
      'k150',
    ],
    ['__proto__', '{"jsonrpc":"2.0","id":1,"method":"m","params":{"__proto__":{},"__proto__":{"x":1}}}', '__proto__'],
    ['in a result', '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","name":"b"}]}}', 'name'],
  ])('%s', (_name, body, key) => {
    const m = single(body);
    expect(m).toMatchObject({ kind: 'invalid', reason: `duplicate key ${JSON.stringify(key)}`, raw: body });
  });

  test('a duplicate id makes the id unknown', () => {
    expect(single('{"jsonrpc":"2.0","id":1,"method":"m","id":2}')).toMatchObject({ kind: 'invalid', id: null });
  });

  test('a duplicate elsewhere keeps the id, so the error can be addressed', () => {
    expect(single('{"jsonrpc":"2.0","id":"x","method":"m","params":{"a":1,"a":1}}')).toMatchObject({
      kind: 'invalid',
      id: { raw: '"x"', value: 'x' },
    });
  });

  test('equal keys in sibling or nested objects are not duplicates', () => {
    const body = '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":{"a":{"a":1}},"b":{"a":2},"c":[{"a":1},{"a":2}]}}';
    expect(single(body).kind).toBe('request');
    const wide = Array.from({ length: 100 }, (_, i) => `"k${i}":{"k${i}":1,"x":{"k${i}":2}}`).join(',');
    expect(single(`{"jsonrpc":"2.0","id":1,"method":"m","params":{${wide}}}`).kind).toBe('request');
  });

  test('keys that differ only after decoding are distinct', () => {
    expect(single('{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"\\u0062":2,"A":3}}').kind).toBe('request');
  });

  test('in a batch only the element with the duplicate is invalid', () => {
    const ms = batch('[{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"a":2}},{"jsonrpc":"2.0","id":2,"method":"m","params":{"a":1}}]');
    expect(ms.map((m) => m.kind)).toEqual(['invalid', 'request']);
  });
});

describe('__proto__ and friends stay plain data', () => {
  test('__proto__ in params is an own property and pollutes nothing', () => {
    const m = single('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"__proto__":{"polluted":true},"name":"t"}}');
    if (m.kind !== 'request') throw new Error(m.kind);
    const params = m.params as Record<string, unknown>;
    expect(Object.hasOwn(params, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(params)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('a message-level __proto__ cannot supply method or id', () => {
    expect(single('{"jsonrpc":"2.0","__proto__":{"method":"x","id":1}}')).toMatchObject({ kind: 'invalid', reason: 'missing method' });
  });

  test('constructor / toString keys are ordinary', () => {
    expect(single('{"jsonrpc":"2.0","method":"m","params":{"constructor":1,"toString":2,"hasOwnProperty":3}}').kind).toBe('notification');
  });
});

describe('batches', () => {
  const elements = [
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}',
    '{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":2}}',
    '{"jsonrpc":"2.0","id":"s1","result":{"content":[]}}',
    '{"jsonrpc":"2.0","id":"s2","error":{"code":-1,"message":"no"}}',
    '{"jsonrpc":"2.0","id":3}',
    '42',
    '"str"',
    'null',
    '[{"jsonrpc":"2.0","method":"nested"}]',
    '{"jsonrpc":"2.0","id":4,"method":"m","params":{"x":1,"x":2}}',
  ];
  const body = ` [ ${elements.join(' ,\n ')} ] `;

  test('each element is classified and keeps its exact raw slice', () => {
    const ms = batch(body);
    expect(ms.map((m) => m.kind)).toEqual([
      'request',
      'notification',
      'response',
      'response',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
    ]);
    expect(ms.map((m) => m.raw)).toEqual(elements);
    expect(ms.map((m) => ('id' in m && m.id ? m.id.raw : null))).toEqual(['1', null, '"s1"', '"s2"', '3', null, null, null, null, '4']);
  });

  test('allowed elements re-assemble byte-for-byte', () => {
    const ms = batch(body);
    const kept = ms.filter((m) => m.kind !== 'invalid').map((m) => m.raw);
    const rebuilt = batchBody(kept);
    expect(rebuilt).toBe(`[${elements.slice(0, 4).join(',')}]`);
    expect(batch(rebuilt).map((m) => m.raw)).toEqual(elements.slice(0, 4));
  });

  test('a one-element batch is still a batch', () => {
    expect(parseJsonRpc('[{"jsonrpc":"2.0","method":"m"}]')).toMatchObject({ ok: true, batch: true, messages: [{ kind: 'notification' }] });
  });

  test('empty batch and non-message top levels are invalid requests', () => {
    for (const body of ['[]', ' [ \n ] ', '5', '"x"', 'null', 'true', '-1.5e3']) {
      expect(parseJsonRpc(body)).toMatchObject({ ok: false, code: -32600 });
    }
  });

  test('batchBody of nothing is an empty array', () => {
    expect(batchBody([])).toBe('[]');
  });
});

describe('parse errors', () => {
  const bad = [
    '',
    ' ',
    '\ufeff{"jsonrpc":"2.0","method":"m"}',
    '{',
    '}',
    '[',
    '[1,]',
    '{"a":1,}',
    '{,}',
    '{"a"}',
    '{"a":}',
    '{a:1}',
    "{'a':1}",
    '{"a":1}}',
    '{"a":1} x',
    '{"a":1}{"b":2}',
    '{"a":01}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":+1}',
    '{"a":-}',
    '{"a":1e}',
    '{"a":1e+}',
    '{"a":0x10}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":tru}',
    '{"a":True}',
    '{"a":nul}',
    '{"a":"\\x41"}',
    '{"a":"\\u12"}',
    '{"a":"\\u12G4"}',
    '{"a":"\\',
    '{"a":"abc',
    '{"a":"tab\there"}',
    '{"a":"nl\nhere"}',
    '{"a":"\u0000"}',
    '{"a":"\u001f"}',
    '{"a" 1}',
    '{"a"::1}',
    '{"a":1 "b":2}',
    '[1 2]',
    '{"a":[1}',
    '{"a":{]}',
    '"\\"',
    '[1e.5]',
    '[1.e5]',
    '[-.5]',
    '[--1]',
    '[1e5.5]',
    '[1.5.5]',
    '[01.5]',
    '[-01]',
    '[1ee5]',
    '[1e5e5]',
    '[1e5-]',
    '[-]',
    '[trux]',
    '[fals3]',
    '[nul1]',
    '[nulll]',
    '[t]',
    '["\\u00e"]',
    '["\\uD83D\\u"]',
    '["\\U0041"]',
    '\u00a0{}',
    '{}\u00a0',
    '{}\u2028',
    '\u000b{}',
    '\u000c{}',
    '{"a":1}\u0000',
    '/* c */{}',
    '{"a":1}//',
  ];
  test.each(bad.map((b) => [JSON.stringify(b), b]))('%s', (_label, body) => {
    expect(() => JSON.parse(body)).toThrow(); // the premise: JSON.parse rejects it too
    const p = parseJsonRpc(body);
    expect(p.ok).toBe(false);
    if (!p.ok) {
      expect(p.code).toBe(-32700);
      // The scanner itself must reject it (JSON.parse is only a fail-closed backstop, reason "invalid JSON").
      expect(p.reason).toMatch(/at offset \d+$|^empty body$/);
    }
  });

  test('nesting beyond the limit is a parse error, not a stack overflow', () => {
    const deep = (d: number) => `{"jsonrpc":"2.0","method":"m","params":${'['.repeat(d)}${']'.repeat(d)}}`;
    expect(single(deep(MAX_DEPTH - 1)).kind).toBe('notification');
    const p = parseJsonRpc(deep(MAX_DEPTH));
    expect(p).toMatchObject({ ok: false, code: -32700 });
    expect(!p.ok && p.reason).toMatch(/nesting/);
    const huge = parseJsonRpc('['.repeat(1_000_000));
    expect(huge).toMatchObject({ ok: false, code: -32700 });
  });
});

describe('strings', () => {
  test('escapes, unicode and surrogates decode like JSON.parse', () => {
    const params =
      '{"s":"\\"\\\\\\/\\b\\f\\n\\r\\t","u":"\\u00e9\\u4e2d\\uD83D\\uDE00","raw":"é中😀","lone":"\\ud800x\\udfff","rawLone":"\ud800","empty":"","ws":" \\t "}';
    const m = single(`{"jsonrpc":"2.0","method":"m","params":${params}}`);
    expect(m.kind === 'notification' && m.params).toEqual(JSON.parse(params));
  });

  test('all JSON whitespace is accepted between tokens', () => {
    const body = ' \t\r\n{ \t\r\n"jsonrpc" \t\r\n: \t\r\n"2.0" \t\r\n, \t\r\n"method":"m","params":[ 1 , 2 ] } \t\r\n';
    expect(single(body)).toMatchObject({ kind: 'notification', params: [1, 2] });
  });

  test('method and params values are exactly what JSON.parse reads', () => {
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"n":[1e400,-0,0.1,1E-7,12345678901234567890],"t":true,"f":false,"z":null}}';
    const m = single(body);
    expect(m.kind === 'request' && m.method).toBe('tools/call');
    expect(m.kind === 'request' && m.params).toEqual(JSON.parse(body).params);
  });
});

describe('errorResponse / resultResponse', () => {
  test('null id and data', () => {
    expect(errorResponse(null, -32700, 'Parse error')).toBe('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
    expect(errorResponse(rawId(3), -32001, 'x', { reason: 'denied "by" rule' })).toBe(
      '{"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"x","data":{"reason":"denied \\"by\\" rule"}}}',
    );
    expect(errorResponse(rawId('a'), 1, 'm', null)).toBe('{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"m","data":null}}');
  });

  test('messages with quotes, control characters and unicode stay valid JSON', () => {
    const msg = 'he said "no"\n\u0000\u2028 é 🙂 \ud800';
    const out = errorResponse(rawId('i'), -32600, msg);
    expect(JSON.parse(out).error.message).toBe(msg);
  });

  test('non-integer codes and unserialisable results are programming errors', () => {
    expect(() => errorResponse(null, 1.5, 'x')).toThrow(RangeError);
    expect(() => errorResponse(null, Number.NaN, 'x')).toThrow(RangeError);
    expect(() => resultResponse(rawId(1), undefined)).toThrow(TypeError);
    expect(() => rawId(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  test('rawId produces the JSON token', () => {
    expect(rawId(5)).toEqual({ raw: '5', value: 5 });
    expect(rawId('x"y')).toEqual({ raw: '"x\\"y"', value: 'x"y' });
  });
});

describe('decodeUtf8Strict', () => {
  const bytes = (...b: number[]) => Uint8Array.from(b);
  test.each([
    ['lone continuation byte', bytes(0x80)],
    ['invalid byte FF', bytes(0x41, 0xff)],
    ['invalid byte C0', bytes(0xc0, 0x80)],
    ['overlong "/" (2 bytes)', bytes(0xc0, 0xaf)],
    ['overlong NUL (3 bytes)', bytes(0xe0, 0x80, 0x80)],
    ['overlong (4 bytes)', bytes(0xf0, 0x80, 0x80, 0xaf)],
    ['UTF-16 surrogate D800 encoded (ED A0 80)', bytes(0xed, 0xa0, 0x80)],
    ['UTF-16 surrogate DFFF encoded (ED BF BF)', bytes(0xed, 0xbf, 0xbf)],
    ['surrogate pair encoded separately (CESU-8)', bytes(0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80)],
    ['above U+10FFFF', bytes(0xf4, 0x90, 0x80, 0x80)],
    ['F5 lead byte', bytes(0xf5, 0x80, 0x80, 0x80)],
    ['truncated 2-byte at end', bytes(0x7b, 0xc3)],
    ['truncated 3-byte at end', bytes(0xe4, 0xb8)],
    ['truncated 4-byte followed by ASCII', bytes(0xf0, 0x9f, 0x98, 0x41)],
    ['missing continuation', bytes(0xc3, 0x41)],
  ])('%s → null', (_name, b) => {
    expect(decodeUtf8Strict(b)).toBeNull();
  });

  test.each([
    ['empty', bytes(), ''],
    ['ASCII', Buffer.from('{"a":1}'), '{"a":1}'],
    ['2-byte é', bytes(0xc3, 0xa9), 'é'],
    ['3-byte 中', bytes(0xe4, 0xb8, 0xad), '中'],
    ['3-byte U+FFFD itself', bytes(0xef, 0xbf, 0xbd), '\ufffd'],
    ['4-byte 😀', bytes(0xf0, 0x9f, 0x98, 0x80), '😀'],
    ['max code point U+10FFFF', bytes(0xf4, 0x8f, 0xbf, 0xbf), '\u{10ffff}'],
    ['last before surrogates U+D7FF', bytes(0xed, 0x9f, 0xbf), '\ud7ff'],
    ['first after surrogates U+E000', bytes(0xee, 0x80, 0x80), '\ue000'],
    ['NUL', bytes(0x00), '\u0000'],
  ])('%s decodes', (_name, b, text) => {
    expect(decodeUtf8Strict(b)).toBe(text);
  });

  test('a BOM is kept, so the parser rejects it instead of silently dropping it', () => {
    const s = decodeUtf8Strict(bytes(0xef, 0xbb, 0xbf, 0x7b, 0x7d));
    expect(s).toBe('\ufeff{}');
    expect(parseJsonRpc(s as string)).toMatchObject({ ok: false, code: -32700 });
  });

  test('works on a view into a larger buffer', () => {
    const whole = Buffer.from('xx{"a":"é"}yy');
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 2, whole.length - 4);
    expect(decodeUtf8Strict(view)).toBe('{"a":"é"}');
  });
});

describe('result shape', () => {
  test('ok results carry no extra properties', () => {
    const p: Parsed = parseJsonRpc('{"jsonrpc":"2.0","method":"m"}');
    expect(Object.keys(p).sort()).toEqual(['batch', 'message', 'ok']);
  });
});

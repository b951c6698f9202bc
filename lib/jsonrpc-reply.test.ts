import { describe, expect, test } from '@jest/globals';
import { parseJsonRpc, rawId, type RawId } from './jsonrpc.js';
import { errorResponse, errorText, notificationText, requestText, resultResponse, rpcError } from './jsonrpc-reply.js';

/** The id of the single request in `body`, exactly as parsed. */
function idOf(body: string): RawId {
  const p = parseJsonRpc(body);
  if (!p.ok || p.batch || p.message.kind !== 'request') throw new Error('not a request');
  return p.message.id;
}

describe('ids go out as the peer wrote them', () => {
  test.each(['1', '1.0', '-0', '1e2', '12345678901234567890', '"a\\u0041"', '"é"'])('id %s', (raw) => {
    const id = idOf(`{"jsonrpc":"2.0","id":${raw},"method":"ping"}`);
    expect(resultResponse(id, {})).toBe(`{"jsonrpc":"2.0","id":${raw},"result":{}}`);
    expect(errorResponse(id, -32601, 'Method not found')).toBe(`{"jsonrpc":"2.0","id":${raw},"error":{"code":-32601,"message":"Method not found"}}`);
    expect(requestText(id, 'tasks/result', { taskId: 't' })).toBe(`{"jsonrpc":"2.0","id":${raw},"method":"tasks/result","params":{"taskId":"t"}}`);
  });
});

describe('errors', () => {
  test('null id, data present or absent, data null kept', () => {
    expect(errorResponse(null, -32700, 'Parse error')).toBe('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
    expect(errorResponse(rawId('a'), 1, 'm', null)).toBe('{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"m","data":null}}');
    expect(errorText(rawId(7), rpcError(-32602, 'Invalid params', { reason: 'x "y"' }))).toBe(
      '{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"Invalid params","data":{"reason":"x \\"y\\""}}}',
    );
  });

  test('codes are integers', () => {
    expect(() => rpcError(1.5, 'x')).toThrow(RangeError);
    expect(() => errorResponse(null, Number.NaN, 'x')).toThrow(RangeError);
    expect(rpcError(-32000, 'x')).toEqual({ code: -32000, message: 'x' });
    expect('data' in rpcError(-32000, 'x')).toBe(false);
  });

  test('every text parses back as the same message', () => {
    const text = errorResponse(rawId(3), -32004, 'Denied', { gate: 'cedar', reason: '\u2028' });
    expect(JSON.parse(text)).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32004, message: 'Denied', data: { gate: 'cedar', reason: '\u2028' } } });
    const p = parseJsonRpc(text);
    expect(p.ok && !p.batch && p.message.kind).toBe('response');
  });
});

describe('results, requests, notifications', () => {
  test('a result must be JSON', () => {
    expect(() => resultResponse(rawId(1), undefined)).toThrow(TypeError);
    expect(resultResponse(rawId(1), null)).toBe('{"jsonrpc":"2.0","id":1,"result":null}');
  });

  test('params are optional, and structured when present', () => {
    expect(requestText(rawId(1), 'ping')).toBe('{"jsonrpc":"2.0","id":1,"method":"ping"}');
    expect(notificationText('notifications/progress', { progressToken: 'p', progress: 1 })).toBe(
      '{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1}}',
    );
    expect(notificationText('notifications/initialized')).toBe('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    expect(() => requestText(rawId(1), 'x', 'str')).toThrow(TypeError);
    expect(() => notificationText('x', null)).toThrow(TypeError);
    const n = parseJsonRpc(notificationText('a/b', []));
    expect(n.ok && !n.batch && n.message.kind).toBe('notification');
  });
});

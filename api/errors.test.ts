import { describe, expect, test } from '@jest/globals';
import { rawId } from '../lib/jsonrpc.js';
import { errorText } from '../lib/jsonrpc-reply.js';
import { A2A_ERRORS, a2aCode, a2aGateError, ERRORS, gateError } from './errors.js';

describe('gateError', () => {
  test('code and message from the table, data in a fixed order', () => {
    const e = gateError('DENIED_BY_RULE', { reason: 'matched', rule: 'no-delete', correlationId: 'c1' });
    expect(e).toEqual({
      code: -32003,
      message: ERRORS.DENIED_BY_RULE.message,
      data: { gate: 'rules', rule: 'no-delete', reason: 'matched', correlationId: 'c1' },
    });
    expect(errorText(rawId(1), e)).toBe(
      '{"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"Denied by ThoughtGate rule","data":{"gate":"rules","rule":"no-delete","reason":"matched","correlationId":"c1"}}}',
    );
  });

  test('a gate of the caller, extra fields before the correlation id, no rule when none', () => {
    const e = gateError('UPSTREAM_RESPONSE_INVALID', { gate: 'visibility', reason: 'r', correlationId: 'c', retryAfterMs: 5 });
    expect(JSON.stringify(e.data)).toBe('{"gate":"visibility","reason":"r","retryAfterMs":5,"correlationId":"c"}');
  });
});

describe('A2A codes', () => {
  test('ThoughtGate refusals move down by 50 into -32050…-32076; standard JSON-RPC codes stay', () => {
    expect(a2aCode('UPSTREAM_UNAVAILABLE')).toBe(-32050);
    expect(a2aCode('DENIED_BY_RULE')).toBe(-32053);
    expect(a2aCode('DENIED_BY_POLICY')).toBe(-32054);
    expect(a2aCode('APPROVAL_REJECTED')).toBe(-32057);
    expect(a2aCode('PUSH_URL_NOT_ALLOWED')).toBe(-32068);
    expect(a2aCode('RATE_LIMITED')).toBe(-32076);
    expect(a2aCode('PARSE_ERROR')).toBe(-32700);
    expect(a2aCode('INVALID_REQUEST')).toBe(-32600);
    expect(a2aCode('INTERNAL_ERROR')).toBe(-32603);
  });

  test('no A2A code of ThoughtGate collides with another, or with A2A’s own table (-32001…-32009), and each stays in the verified block', () => {
    const names = Object.keys(ERRORS) as (keyof typeof ERRORS)[];
    const codes = names.map(a2aCode);
    expect(new Set(codes).size).toBe(codes.length);
    const a2aOwn = new Set<number>(Object.values(A2A_ERRORS).map((e) => e.code));
    for (const [i, c] of codes.entries()) {
      expect([names[i], a2aOwn.has(c)]).toEqual([names[i], false]);
      expect([names[i], (c >= -32076 && c <= -32050) || [-32700, -32600, -32603].includes(c)]).toEqual([names[i], true]);
    }
  });

  test('a2aGateError: the A2A code, the same message and data', () => {
    const e = a2aGateError('DENIED_BY_RULE', { reason: 'r', rule: 'x', correlationId: 'c' });
    expect(e).toEqual({ ...gateError('DENIED_BY_RULE', { reason: 'r', rule: 'x', correlationId: 'c' }), code: -32053 });
  });

  test('A2A’s own errors as the SDK words them', () => {
    expect(A2A_ERRORS.TASK_NOT_FOUND).toEqual({ code: -32001, http: 404, status: 'NOT_FOUND', reason: 'TASK_NOT_FOUND', message: 'Task not found' });
    expect(A2A_ERRORS.VERSION_NOT_SUPPORTED.code).toBe(-32009);
    expect(Object.values(A2A_ERRORS).map((e) => e.code)).toEqual([-32001, -32002, -32003, -32004, -32005, -32006, -32007, -32008, -32009, -32601, -32602]);
  });
});

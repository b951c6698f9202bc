import { describe, expect, test } from '@jest/globals';
import { rawId } from '../lib/jsonrpc.js';
import { errorText } from '../lib/jsonrpc-reply.js';
import { ERRORS, gateError } from './errors.js';

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

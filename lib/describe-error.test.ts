import { describe, expect, test } from '@jest/globals';
import { describeError } from './describe-error.js';

describe('describeError', () => {
  test('an Error is its message', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError(new TypeError('bad type'))).toBe('bad type');
  });

  test('an errno code is added unless the message has it already', () => {
    const e = Object.assign(new Error('open failed'), { code: 'EACCES' });
    expect(describeError(e)).toBe('open failed (EACCES)');
    expect(describeError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe('connect ECONNREFUSED 127.0.0.1:1');
  });

  test('the cause chain follows the message', () => {
    const inner = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    const outer = new TypeError('fetch failed', { cause: inner });
    expect(describeError(outer)).toBe('fetch failed: connect ECONNREFUSED 127.0.0.1:9');
    expect(describeError(new Error('a', { cause: new Error('b', { cause: 'c' }) }))).toBe('a: b: c');
    // A cause the message already quotes is not repeated.
    expect(describeError(new Error('x failed: disk full', { cause: new Error('disk full') }))).toBe('x failed: disk full');
  });

  test('an HTTP error with a JSON body gives the status and the body message', () => {
    const e = Object.assign(new Error('HTTP request failed'), { statusCode: 409, body: JSON.stringify({ kind: 'Status', message: 'object was modified' }) });
    expect(describeError(e)).toBe('HTTP request failed: object was modified (409)');
    const plain = { code: 403, body: 'forbidden: no' };
    expect(describeError(plain)).toBe('forbidden: no (403)');
  });

  test('an AggregateError with no message lists its errors', () => {
    const e = new AggregateError([new Error('connect ECONNREFUSED ::1:80'), new Error('connect ECONNREFUSED 127.0.0.1:80')], '');
    expect(describeError(e)).toBe('connect ECONNREFUSED ::1:80; connect ECONNREFUSED 127.0.0.1:80');
  });

  test('anything else thrown becomes text, never a throw', () => {
    expect(describeError('plain string')).toBe('plain string');
    expect(describeError(42)).toBe('42');
    expect(describeError(undefined)).toBe('undefined');
    expect(describeError(null)).toBe('null');
    expect(describeError({ reason: 'x' })).toBe('{"reason":"x"}');
    expect(describeError(Object.create(null))).toBe('[object Object]');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(describeError(cyclic)).toBe('[object Object]');
    expect(describeError(new Error(''))).toBe('Error');
    expect(describeError(Symbol('s'))).toBe('Symbol(s)');
  });

  test('one line, bounded, even for a cyclic cause chain', () => {
    expect(describeError(new Error('line one\nline two\r\n  three'))).toBe('line one line two three');
    expect(describeError(new Error('x'.repeat(5000))).length).toBe(1000);
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(describeError(b)).toMatch(/^b: a/);
  });
});

import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { rawId } from '../../lib/jsonrpc.js';
import type { A2aHold, ApproveDecision } from '../proxy/gate4.js';
import { startKeepAlive } from './a2a.js';
import {
  A2A_KEEP_ALIVE_MAX_MS,
  checkHeldBytes,
  inexactNumber,
  invalidParamsBeforeHead,
  planA2aHold,
  readHeldParams,
  refusalAfterHead,
  refusalBeforeHead,
  SSE_KEEP_ALIVE,
  toA2aError,
} from './a2a-hold.js';
import { a2aRequestHash, callHash, requestHash, type A2aTarget } from './hash.js';

const decision: ApproveDecision = { action: 'approve', gate: 'rules', channel: 'finance', rule: 'refunds', reason: 'refunds need a human' };
/** Where hold() sends: no tenant, 1.0, JSON-RPC. */
const T: A2aTarget = { tenant: '', version: '1.0', binding: 'jsonrpc' };
const message = { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'refund 5' }], metadata: { skill: 'refund', amount: 5 } };

function hold(over: Partial<A2aHold> = {}): A2aHold {
  return {
    version: '1.0',
    binding: 'jsonrpc',
    canonical: 'SendMessage',
    id: rawId(1),
    stream: false,
    skill: 'refund',
    tenant: '',
    bytes: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message } })),
    decision,
    send: async () => ({ ok: false, kind: 'other' }),
    ...over,
  };
}

describe('the hash an A2A approval is bound to', () => {
  test('canonical: key order does not matter; source, method and every param do', () => {
    const a = a2aRequestHash('billing', 'SendMessage', { message }, T);
    const reordered = { message: { metadata: { amount: 5, skill: 'refund' }, parts: [{ text: 'refund 5' }], role: 'ROLE_USER', messageId: 'm1' } };
    expect(a2aRequestHash('billing', 'SendMessage', reordered, T)).toBe(a);
    expect(a2aRequestHash('billing2', 'SendMessage', { message }, T)).not.toBe(a);
    expect(a2aRequestHash('billing', 'SendStreamingMessage', { message }, T)).not.toBe(a);
    expect(a2aRequestHash('billing', 'SendMessage', { message: { ...message, metadata: { skill: 'refund', amount: 6 } } }, T)).not.toBe(a);
    expect(a2aRequestHash('billing', 'SendMessage', { message, configuration: { returnImmediately: true } }, T)).not.toBe(a);
  });

  test('an A2A call never hashes like an MCP tool call with the same names', () => {
    expect(callHash('billing', { protocol: 'a2a', method: 'SendMessage', target: T, tool: 'refund', arguments: { message } })).toBe(
      a2aRequestHash('billing', 'SendMessage', { message }, T),
    );
    expect(callHash('billing', { tool: 'refund', arguments: { message } })).toBe(requestHash('billing', 'refund', { message }));
    expect(a2aRequestHash('billing', 'SendMessage', { message }, T)).not.toBe(requestHash('billing', 'SendMessage', { message }));
  });

  test('the tenant, the A2A version and the binding are bound too: the same params elsewhere are another call', () => {
    const a = a2aRequestHash('billing', 'SendMessage', { message }, T);
    expect(a2aRequestHash('billing', 'SendMessage', { message }, { ...T, tenant: 'tenant-b' })).not.toBe(a);
    expect(a2aRequestHash('billing', 'SendMessage', { message }, { ...T, version: '0.3' })).not.toBe(a);
    expect(a2aRequestHash('billing', 'SendMessage', { message }, { ...T, binding: 'rest' })).not.toBe(a);
    // A call read back without its target (a record) binds as none: it matches no live call.
    expect(callHash('billing', { protocol: 'a2a', method: 'SendMessage', tool: 'refund', arguments: { message } })).not.toBe(a);
    // What gate 4 checks before sending: approved for tenant A at 1.0, the same bytes held for tenant B or read as 0.3 are not released.
    const approvedForA = a2aRequestHash('billing', 'SendMessage', { message }, { ...T, tenant: 'tenant-a' });
    expect(checkHeldBytes('billing', hold({ tenant: 'tenant-a' }), approvedForA)).toBeNull();
    expect(checkHeldBytes('billing', hold({ tenant: 'tenant-b' }), approvedForA)).toMatch(/hash mismatch/);
    expect(checkHeldBytes('billing', hold({ tenant: 'tenant-a', version: '0.3' }), approvedForA)).toMatch(/hash mismatch/);
  });

  test('the held bytes are checked again: same bytes pass, one changed byte or another method fails', () => {
    const h = hold();
    const approved = a2aRequestHash('billing', 'SendMessage', { message }, T);
    expect(checkHeldBytes('billing', h, approved)).toBeNull();
    // The 0.3 spelling of the same call binds the same way within a version (canonical method).
    const b03 = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'message/send', params: { message } }));
    expect(checkHeldBytes('billing', hold({ bytes: b03 }), approved)).toBeNull();
    const edited = Buffer.from(h.bytes.toString().replace('refund 5', 'refund 9'));
    expect(checkHeldBytes('billing', hold({ bytes: edited }), approved)).toMatch(/hash mismatch/);
    const other = Buffer.from(h.bytes.toString().replace('"SendMessage"', '"GetTask"'));
    expect(checkHeldBytes('billing', hold({ bytes: other }), approved)).toMatch(/method is not SendMessage/);
    expect(checkHeldBytes('billing', hold({ bytes: Buffer.from([0xff, 0xfe]) }), approved)).toMatch(/not UTF-8/);
    expect(readHeldParams(hold({ bytes: Buffer.from('[{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}]') }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('one JSON-RPC request'),
    });
    expect(readHeldParams(h)).toEqual({ ok: true, params: { message } });
    expect(checkHeldBytes('other', h, approved)).toMatch(/hash mismatch/);
  });

  test('REST: the body is the params', () => {
    const body = { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'x' }] } };
    const h = hold({ binding: 'rest', id: null, bytes: Buffer.from(JSON.stringify(body)) });
    const approved = a2aRequestHash('billing', 'SendMessage', body, { ...T, binding: 'rest' });
    expect(checkHeldBytes('billing', h, approved)).toBeNull();
    expect(checkHeldBytes('billing', hold({ ...h, bytes: Buffer.from('[1]') }), approved)).toMatch(/not an object/);
  });
});

describe('numbers a human would see rounded', () => {
  test('inexactNumber: an integer beyond 2^53 or a literal out of double range; strings, decimals and a JSON-RPC id are not it', () => {
    expect(inexactNumber('{"a":9007199254740991,"b":-9007199254740991,"c":0.1,"d":1e20,"e":-0,"f":[1,2.5e-3]}', 1)).toBeNull();
    expect(inexactNumber('{"a":{"amount":12345678901234567890}}', 1)).toBe('12345678901234567890');
    expect(inexactNumber('{"a":[1,-9007199254740993]}', 1)).toBe('-9007199254740993');
    expect(inexactNumber('{"a":1e400}', 1)).toBe('1e400');
    // Inside strings (escaped quotes included) digits are text.
    expect(inexactNumber('{"a":"12345678901234567890 \\" 12345678901234567890","12345678901234567890":1}', 1)).toBeNull();
    // A JSON-RPC id (depth 1) is echoed as sent, never shown: only params count (depth 2).
    expect(inexactNumber('{"jsonrpc":"2.0","id":12345678901234567890,"method":"SendMessage","params":{}}', 2)).toBeNull();
  });

  test('readHeldParams refuses params with such a number, naming it; the request id may be one', () => {
    const big = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"metadata":{"amount":12345678901234567890}}}}');
    expect(readHeldParams(hold({ bytes: big }))).toEqual({
      ok: false,
      inexact: '12345678901234567890',
      reason: expect.stringContaining('12345678901234567890'),
    });
    const rest = Buffer.from('{"message":{"metadata":{"amount":12345678901234567890}}}');
    expect(readHeldParams(hold({ binding: 'rest', id: null, bytes: rest }))).toMatchObject({ ok: false, inexact: '12345678901234567890' });
    const bigId = Buffer.from(`{"jsonrpc":"2.0","id":12345678901234567890,"method":"SendMessage","params":${JSON.stringify({ message })}}`);
    expect(readHeldParams(hold({ bytes: bigId }))).toEqual({ ok: true, params: { message } });
  });

  test("refused as A2A's InvalidParams in each binding's shape", () => {
    const j = invalidParamsBeforeHead(hold(), 'Invalid params: x');
    expect(j.status).toBe(200);
    expect(JSON.parse(j.body)).toMatchObject({ id: 1, error: { code: -32602, message: 'Invalid params: x' } });
    const r = invalidParamsBeforeHead(hold({ binding: 'rest', id: null }), 'Invalid params: x');
    expect([r.status, r.headers['content-type']]).toEqual([400, 'application/a2a+json']);
    expect(JSON.parse(r.body)).toMatchObject({ error: { status: 'INVALID_ARGUMENT', message: 'Invalid params: x' } });
    const s = invalidParamsBeforeHead(hold({ version: '0.3', stream: true }), 'Invalid params: x');
    expect(s.body).toMatch(/^event: error\ndata: \{.*"code":-32602.*\}\n\n$/);
  });
});

describe('planA2aHold', () => {
  test('JSON answers: the agent’s own content type; the keep-alive at most every 2 s', () => {
    expect(planA2aHold(hold(), 15_000)).toEqual({
      kind: 'hold',
      head: { 'content-type': 'application/json', 'cache-control': 'no-cache' },
      keepAlive: ' ',
      intervalMs: A2A_KEEP_ALIVE_MAX_MS,
    });
    expect(planA2aHold(hold({ binding: 'rest', id: null }), 500)).toMatchObject({ head: { 'content-type': 'application/a2a+json' }, intervalMs: 500 });
    expect(planA2aHold(hold({ binding: 'rest', id: null, version: '0.3' }), 500)).toMatchObject({ head: { 'content-type': 'application/json' } });
  });

  test('streams: SSE head, comment keep-alives', () => {
    expect(planA2aHold(hold({ canonical: 'SendStreamingMessage', stream: true }), 15_000)).toMatchObject({
      head: { 'content-type': 'text/event-stream', 'x-accel-buffering': 'no' },
      keepAlive: SSE_KEEP_ALIVE,
    });
  });

  test('only Send* can be held, and not as a notification', () => {
    expect(planA2aHold(hold({ canonical: 'CancelTask' }), 1000)).toMatchObject({
      kind: 'refuse',
      name: 'APPROVAL_UNAVAILABLE',
      reason: expect.stringContaining('CancelTask is not forwarded'),
    });
    expect(planA2aHold(hold({ id: null }), 1000)).toMatchObject({ kind: 'refuse', reason: expect.stringContaining('notification') });
  });
});

describe('refusals', () => {
  test('before the head: JSON-RPC error with the A2A code and the request id; REST: HTTP status and body', () => {
    const j = refusalBeforeHead(hold(), 'APPROVAL_LIMIT', { reason: 'too many', correlationId: 'c1', rule: 'refunds', retryAfterMs: 1500 });
    expect(j.status).toBe(200);
    expect(j.headers['retry-after']).toBe('2');
    expect(JSON.parse(j.body)).toMatchObject({
      id: 1,
      error: { code: -32060, data: { gate: 'approval', rule: 'refunds', reason: 'too many', correlationId: 'c1', retryAfterMs: 1500 } },
    });
    const r = refusalBeforeHead(hold({ binding: 'rest', id: null }), 'APPROVAL_UNAVAILABLE', { reason: 'no', correlationId: 'c2' });
    expect(r.status).toBe(503);
    expect(r.headers['content-type']).toBe('application/a2a+json');
    expect(JSON.parse(r.body)).toMatchObject({ error: { status: 'UNAVAILABLE', details: [{ reason: 'APPROVAL_UNAVAILABLE' }] } });
  });

  test('before the head on a 0.3 stream method: one SSE error event (the 0.3.14 client reads nothing else there)', () => {
    const s = refusalBeforeHead(hold({ version: '0.3', stream: true }), 'APPROVAL_LIMIT', { reason: 'too many', correlationId: 'c3' });
    expect([s.status, s.headers['content-type']]).toEqual([200, 'text/event-stream']);
    expect(s.body).toMatch(/^event: error\ndata: \{.*\}\n\n$/);
    expect(JSON.parse(s.body.slice('event: error\ndata: '.length))).toMatchObject({ id: 1, error: { code: -32060 } });
  });

  test('after the head: JSON body or one SSE data event with the A2A code; REST cannot say it (null: cut)', () => {
    const e = { code: -32007, message: 'Approval rejected', data: { gate: 'approval', reason: 'no' } };
    expect(toA2aError(e).code).toBe(-32057);
    expect(toA2aError({ code: -32601, message: 'x' }).code).toBe(-32601);
    expect(JSON.parse(refusalAfterHead(hold(), e)!)).toEqual({ jsonrpc: '2.0', id: 1, error: { ...e, code: -32057 } });
    const sse = refusalAfterHead(hold({ stream: true }), e)!;
    expect(sse).toMatch(/^data: \{.*"code":-32057.*\}\n\n$/);
    expect(refusalAfterHead(hold({ binding: 'rest', id: null }), e)).toBeNull();
  });
});

describe('startKeepAlive', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  test('one keep-alive per interval until stopped or the response ended', () => {
    jest.useFakeTimers();
    const writes: string[] = [];
    const res = { writableEnded: false, destroyed: false, write: (s: string) => writes.push(s) > 0 };
    const ka = startKeepAlive(res as never, ' ', 2000);
    jest.advanceTimersByTime(1999);
    expect(writes).toEqual([]);
    jest.advanceTimersByTime(4001);
    expect(writes).toEqual([' ', ' ', ' ']);
    res.writableEnded = true;
    jest.advanceTimersByTime(4000);
    expect(writes).toHaveLength(3);
    ka.stop();
    const again = startKeepAlive({ ...res, writableEnded: false } as never, SSE_KEEP_ALIVE, 1000);
    again.stop();
    jest.advanceTimersByTime(5000);
    expect(writes).toHaveLength(3);
  });
});

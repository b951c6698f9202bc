import { describe, expect, test } from '@jest/globals';
import { A2A_REST_STATUS, a2aJsonRpcError, a2aRestError, tgRestError } from './a2a-errors.js';
import { ERRORS } from './errors.js';

const info = { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'TASK_NOT_FOUND', domain: 'a2a-protocol.org' };

describe('A2A error bodies, as the SDK servers send them (captures/*-12-get-unknown-task.txt)', () => {
  test('TASK_NOT_FOUND on JSON-RPC: 1.0 with ErrorInfo data, 0.3 without', () => {
    expect(a2aJsonRpcError('1.0', 'TASK_NOT_FOUND', 'Task not found: no-such-task')).toEqual({
      code: -32001,
      message: 'Task not found: no-such-task',
      data: [info],
    });
    expect(a2aJsonRpcError('0.3', 'TASK_NOT_FOUND', 'Task not found: no-such-task')).toEqual({ code: -32001, message: 'Task not found: no-such-task' });
    expect(a2aJsonRpcError('1.0', 'VERSION_NOT_SUPPORTED').message).toBe('Version not supported');
  });

  test('TASK_NOT_FOUND on HTTP+JSON: 1.0 google.rpc error, 0.3 {code, message}; both 404', () => {
    expect(a2aRestError('1.0', 'TASK_NOT_FOUND', 'Task not found: no-such-task')).toEqual({
      http: 404,
      contentType: 'application/a2a+json',
      body: { error: { code: 404, status: 'NOT_FOUND', message: 'Task not found: no-such-task', details: [info] } },
    });
    expect(a2aRestError('0.3', 'TASK_NOT_FOUND', 'Task not found: no-such-task')).toEqual({
      http: 404,
      contentType: 'application/json',
      body: { code: -32001, message: 'Task not found: no-such-task' },
    });
  });

  test('a ThoughtGate refusal on HTTP+JSON: 403 with ThoughtGate ErrorInfo (1.0), A2A code (0.3)', () => {
    const d = { reason: 'refunds need a human', rule: 'refunds', correlationId: 'c-1', retryAfterMs: 5 };
    expect(tgRestError('1.0', 'DENIED_BY_RULE', d)).toEqual({
      http: 403,
      contentType: 'application/a2a+json',
      body: {
        error: {
          code: 403,
          status: 'PERMISSION_DENIED',
          message: 'Denied by ThoughtGate rule',
          details: [
            {
              '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
              reason: 'DENIED_BY_RULE',
              domain: 'thoughtgate.io',
              metadata: { gate: 'rules', rule: 'refunds', reason: 'refunds need a human', retryAfterMs: '5', correlationId: 'c-1' },
            },
          ],
        },
      },
    });
    expect(tgRestError('0.3', 'RATE_LIMITED', d)).toEqual({
      http: 429,
      contentType: 'application/json',
      body: { code: -32076, message: 'Rate limit exceeded' },
    });
  });

  test('every ThoughtGate error has an HTTP+JSON status', () => {
    expect(Object.keys(A2A_REST_STATUS).sort()).toEqual(Object.keys(ERRORS).sort());
  });
});

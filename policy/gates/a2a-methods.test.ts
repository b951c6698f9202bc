// The A2A alias table (DESIGN §2.8): exact per version, both generations, both bindings.
import { a2aAliases, a2aVersionOf, A2A_METHODS, A2A_ROWS, canonicalA2aMethod, jsonRpcMethod, restRoute, valueAt } from './a2a-methods.js';

describe('JSON-RPC methods', () => {
  test('every wire name of each generation, with its canonical name', () => {
    const v03 = A2A_ROWS.filter((r) => r.binding === 'jsonrpc' && r.version === '0.3').map((r) => [r.wire, r.canonical]);
    expect(Object.fromEntries(v03)).toEqual({
      'message/send': 'SendMessage',
      'message/stream': 'SendStreamingMessage',
      'tasks/get': 'GetTask',
      'tasks/cancel': 'CancelTask',
      'tasks/resubscribe': 'SubscribeToTask',
      'tasks/pushNotificationConfig/set': 'CreateTaskPushNotificationConfig',
      'tasks/pushNotificationConfig/get': 'GetTaskPushNotificationConfig',
      'tasks/pushNotificationConfig/list': 'ListTaskPushNotificationConfigs',
      'tasks/pushNotificationConfig/delete': 'DeleteTaskPushNotificationConfig',
      'agent/getAuthenticatedExtendedCard': 'GetExtendedAgentCard',
    });
    const v10 = A2A_ROWS.filter((r) => r.binding === 'jsonrpc' && r.version === '1.0');
    expect(v10.map((r) => r.wire)).toEqual(v10.map((r) => r.canonical));
    expect(v10.map((r) => r.wire).sort()).toEqual(A2A_METHODS.filter((m) => m !== 'GetAgentCard').sort());
  });

  test('governed: what acts on the world; the rest is plumbing; streams', () => {
    const governed = [...new Set(A2A_ROWS.filter((r) => r.governed).map((r) => r.canonical))].sort();
    expect(governed).toEqual(['CancelTask', 'CreateTaskPushNotificationConfig', 'DeleteTaskPushNotificationConfig', 'SendMessage', 'SendStreamingMessage']);
    const streams = [...new Set(A2A_ROWS.filter((r) => r.stream).map((r) => r.canonical))].sort();
    expect(streams).toEqual(['SendStreamingMessage', 'SubscribeToTask']);
  });

  test('exact match per version: the other generation, another case or a space is not found', () => {
    expect(jsonRpcMethod('0.3', 'message/send')?.canonical).toBe('SendMessage');
    expect(jsonRpcMethod('1.0', 'SendMessage')?.canonical).toBe('SendMessage');
    for (const m of ['SendMessage', 'Message/Send', 'sendMessage', 'message/send ', 'MESSAGE/SEND', 'tasks/steal', '__proto__', 'constructor', 'toString', ''])
      expect(jsonRpcMethod('0.3', m)).toBeUndefined();
    for (const m of ['message/send', 'sendMessage', 'sendmessage', 'SendMessage ', 'ListTaskPushNotificationConfig', 'hasOwnProperty'])
      expect(jsonRpcMethod('1.0', m)).toBeUndefined();
    // ListTasks has no 0.3 method.
    expect(jsonRpcMethod('0.3', 'ListTasks')).toBeUndefined();
  });

  test('where the task id and the push URL sit', () => {
    expect(jsonRpcMethod('0.3', 'tasks/get')!.taskIdAt).toEqual(['id']);
    expect(jsonRpcMethod('1.0', 'GetTaskPushNotificationConfig')!.taskIdAt).toEqual(['taskId']);
    expect(jsonRpcMethod('0.3', 'tasks/pushNotificationConfig/get')!.configIdAt).toEqual(['pushNotificationConfigId']);
    const send03 = { configuration: { pushNotificationConfig: { url: 'http://h/hook' } } };
    expect(valueAt(send03, jsonRpcMethod('0.3', 'message/send')!.pushUrlAt!)).toBe('http://h/hook');
    const send10 = { configuration: { taskPushNotificationConfig: { url: 'http://h/hook' } } };
    expect(valueAt(send10, jsonRpcMethod('1.0', 'SendStreamingMessage')!.pushUrlAt!)).toBe('http://h/hook');
    expect(valueAt({ taskId: 't', url: 'http://x' }, jsonRpcMethod('1.0', 'CreateTaskPushNotificationConfig')!.pushUrlAt!)).toBe('http://x');
    expect(valueAt({ pushNotificationConfig: { url: 'http://y' } }, jsonRpcMethod('0.3', 'tasks/pushNotificationConfig/set')!.pushUrlAt!)).toBe('http://y');
    expect(valueAt(Object.create({ url: 'inherited' }), ['url'])).toBeUndefined();
    expect(valueAt({ a: [1] }, ['a', '0'])).toBeUndefined();
  });

  test('aliases: either spelling names the canonical method', () => {
    expect(canonicalA2aMethod('message/send')).toBe('SendMessage');
    expect(canonicalA2aMethod('SendMessage')).toBe('SendMessage');
    expect(canonicalA2aMethod('tasks/resubscribe')).toBe('SubscribeToTask');
    expect(canonicalA2aMethod('tools/call')).toBeUndefined();
    expect(canonicalA2aMethod('__proto__')).toBeUndefined();
    expect(a2aAliases('SendMessage')).toEqual(['message/send']);
    expect(a2aAliases('ListTasks')).toEqual([]);
    expect(a2aAliases('tools/call')).toEqual([]);
  });
});

describe('REST routes', () => {
  test('1.0 paths, with their ids', () => {
    expect(restRoute('1.0', 'POST', '/message:send')).toEqual({ row: expect.objectContaining({ canonical: 'SendMessage', partsKey: 'parts' }) });
    expect(restRoute('1.0', 'GET', '/tasks/t-1')).toMatchObject({ row: { canonical: 'GetTask' }, taskId: 't-1' });
    expect(restRoute('1.0', 'GET', '/tasks')).toMatchObject({ row: { canonical: 'ListTasks' } });
    expect(restRoute('1.0', 'POST', '/tasks/t-1:cancel')).toMatchObject({ row: { canonical: 'CancelTask' }, taskId: 't-1' });
    expect(restRoute('1.0', 'GET', '/tasks/t-1:subscribe')).toMatchObject({ row: { canonical: 'SubscribeToTask' }, taskId: 't-1' });
    expect(restRoute('1.0', 'DELETE', '/tasks/t-1/pushNotificationConfigs/c-2')).toMatchObject({
      row: { canonical: 'DeleteTaskPushNotificationConfig' },
      taskId: 't-1',
      configId: 'c-2',
    });
    expect(restRoute('1.0', 'GET', '/extendedAgentCard')).toMatchObject({ row: { canonical: 'GetExtendedAgentCard' } });
  });

  test('1.0 takes one tenant segment first; 0.3 none', () => {
    expect(restRoute('1.0', 'POST', '/tenant-x/message:send')).toMatchObject({ row: { canonical: 'SendMessage' }, tenant: 'tenant-x' });
    expect(restRoute('1.0', 'GET', '/tenant-x/tasks/t-1')).toMatchObject({ row: { canonical: 'GetTask' }, taskId: 't-1', tenant: 'tenant-x' });
    expect(restRoute('1.0', 'POST', '/a/b/message:send')).toBeUndefined();
    expect(restRoute('0.3', 'POST', '/tenant-x/v1/message:send')).toBeUndefined();
  });

  test('0.3 paths are /v1/ only, and /v1/ is 0.3 only', () => {
    expect(restRoute('0.3', 'POST', '/v1/message:send')).toMatchObject({ row: { canonical: 'SendMessage', partsKey: 'content' } });
    expect(restRoute('0.3', 'GET', '/v1/card')).toMatchObject({ row: { canonical: 'GetExtendedAgentCard' } });
    expect(restRoute('0.3', 'POST', '/v1/tasks/t:subscribe')).toMatchObject({ row: { canonical: 'SubscribeToTask' }, taskId: 't' });
    expect(restRoute('0.3', 'GET', '/v1/tasks/t:subscribe')).toMatchObject({ row: { canonical: 'SubscribeToTask' }, taskId: 't' });
    expect(restRoute('0.3', 'POST', '/message:send')).toBeUndefined();
    expect(restRoute('1.0', 'POST', '/v1/message:send')).toBeUndefined();
    expect(restRoute('0.3', 'GET', '/v1/tasks')).toBeUndefined();
  });

  test('case, method, encoding and shape must be exact; ambiguous paths are refused', () => {
    for (const [m, p] of [
      ['POST', '/Message:Send'],
      ['POST', '/message:Send'],
      ['GET', '/message:send'],
      ['PUT', '/message:send'],
      ['post', '/message:send'],
      ['POST', '/message%3Asend'],
      ['POST', '//message:send'],
      ['POST', '/message:send/'],
      ['POST', 'message:send'],
      ['GET', '/tasks/'],
      ['GET', '/tasks/a:b'],
      ['POST', '/tasks/a:b:cancel'],
      ['GET', '/tasks/tasks'],
      ['GET', '/Tasks/t'],
    ] as const)
      expect([m, p, restRoute('1.0', m, p)]).toEqual([m, p, undefined]);
  });
});

describe('A2A-Version', () => {
  test('exactly 0.3 or 1.0; absent or empty is 0.3', () => {
    expect(a2aVersionOf(undefined, undefined)).toEqual({ ok: true, version: '0.3' });
    expect(a2aVersionOf('', undefined)).toEqual({ ok: true, version: '0.3' });
    expect(a2aVersionOf('1.0', undefined)).toEqual({ ok: true, version: '1.0' });
    expect(a2aVersionOf(undefined, '1.0')).toEqual({ ok: true, version: '1.0' });
    expect(a2aVersionOf(['0.3'], ['0.3'])).toEqual({ ok: true, version: '0.3' });
    expect(a2aVersionOf('1.0', '1.0')).toEqual({ ok: true, version: '1.0' });
  });

  test.each([
    ['1.0.0', undefined],
    ['1', undefined],
    ['0.3.0', undefined],
    ['2.0', undefined],
    [' 1.0', undefined],
    ['0.3, 1.0', undefined],
    [['0.3', '1.0'], undefined],
    [['1.0', '1.0'], undefined],
    ['1.0', '0.3'],
    [undefined, '1.00'],
    [undefined, ['1.0', '0.3']],
  ])('header %j with query %j is unsupported', (h, q) => {
    expect(a2aVersionOf(h, q)).toMatchObject({ ok: false, reason: expect.any(String) });
  });

  test('a version the source does not enable is unsupported', () => {
    expect(a2aVersionOf(undefined, undefined, ['1.0'])).toEqual({ ok: false, reason: 'A2A-Version 0.3 is not enabled for this agent (a2a.versions: 1.0)' });
    expect(a2aVersionOf('1.0', undefined, ['1.0'])).toEqual({ ok: true, version: '1.0' });
  });
});

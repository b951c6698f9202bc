// describeA2a against the bodies the SDK servers actually run (JS 1.3.0 fromJSON's snake_case
// fallbacks, Python's json_format, the three 0.3 push-create shapes, body tenants): the gates must
// read what the agent will, or refuse the call.
import { type A2aCall, type A2aDescribeOptions, describeA2a, tenantOf } from './a2a-operation.js';

const d = (call: A2aCall, options: A2aDescribeOptions = {}) => describeA2a('billing', call, options);
const ok = (call: A2aCall, options: A2aDescribeOptions = {}) => {
  const r = d(call, options);
  if (!r.ok) throw new Error(r.reason);
  return r;
};
const refused = (call: A2aCall, options: A2aDescribeOptions = {}) => {
  const r = d(call, options);
  expect(r).toMatchObject({ ok: false, error: 'params' });
  return r.ok ? '' : r.reason;
};
const rpc10 = (method: string, params: unknown): A2aCall => ({ version: '1.0', binding: 'jsonrpc', method, params });
const rpc03 = (method: string, params: unknown): A2aCall => ({ version: '0.3', binding: 'jsonrpc', method, params });
const rest10 = (method: string, params?: unknown): A2aCall => ({ version: '1.0', binding: 'rest', method, params });
const rest03 = (method: string, params?: unknown): A2aCall => ({ version: '0.3', binding: 'rest', method, params });
const IMDS = 'http://169.254.169.254/';

describe('snake_case twins are read (the JS 1.3.0 server falls back to them, Python takes either)', () => {
  test('1.0 SendMessage: configuration.task_push_notification_config.url and message.task_id', () => {
    const r = ok(rpc10('SendMessage', { message: { task_id: 'VICTIM', parts: [] }, configuration: { task_push_notification_config: { url: IMDS } } }));
    expect(r.op.a2a.pushUrl).toBe(IMDS);
    expect(r.op.a2a.taskId).toBe('VICTIM');
  });

  test('1.0 REST send: the same twins; context_id and reference_task_ids too', () => {
    const r = ok(
      rest10('POST /message:send', {
        message: { context_id: 'c', reference_task_ids: ['t0'], parts: [] },
        configuration: { task_push_notification_config: { url: IMDS, authentication: { credentials: 'x' } } },
      }),
    );
    expect(r.op.a2a).toMatchObject({ pushUrl: IMDS, pushAuth: true, contextId: 'c', referenceTaskIds: ['t0'] });
  });

  test('0.3: configuration.push_notification_config (JSON-RPC) and configuration.push_notification (REST)', () => {
    expect(ok(rpc03('message/send', { message: { parts: [] }, configuration: { push_notification_config: { url: IMDS } } })).op.a2a.pushUrl).toBe(IMDS);
    expect(ok(rest03('POST /v1/message:send', { message: { content: [] }, configuration: { push_notification: { url: IMDS } } })).op.a2a.pushUrl).toBe(IMDS);
  });

  test('push config methods: tasks/pushNotificationConfig/set {task_id, push_notification_config}, 1.0 {task_id}', () => {
    const set = ok(rpc03('tasks/pushNotificationConfig/set', { task_id: 'VICTIM', push_notification_config: { id: 'c1', url: IMDS } }));
    expect(set.op.a2a).toMatchObject({ taskId: 'VICTIM', pushUrl: IMDS });
    expect(set.configId).toBe('c1');
    expect(ok(rpc10('CreateTaskPushNotificationConfig', { task_id: 'VICTIM', url: IMDS })).op.a2a).toMatchObject({ taskId: 'VICTIM', pushUrl: IMDS });
    expect(ok(rpc10('GetTaskPushNotificationConfig', { task_id: 'VICTIM', id: 'c' })).op.a2a.taskId).toBe('VICTIM');
    expect(ok(rpc10('DeleteTaskPushNotificationConfig', { task_id: 'VICTIM', id: 'c' })).op.a2a.taskId).toBe('VICTIM');
    expect(ok(rpc10('ListTaskPushNotificationConfigs', { task_id: 'VICTIM' })).op.a2a.taskId).toBe('VICTIM');
    expect(ok(rpc03('tasks/pushNotificationConfig/get', { id: 'T', push_notification_config_id: 'c9' })).configId).toBe('c9');
  });

  test('parts: 1.0 media_type, 0.3 REST file_with_uri / file_with_bytes / mime_type', () => {
    expect(ok(rpc10('SendMessage', { message: { parts: [{ text: 'a', media_type: 'text/x-evil' }] } })).op.a2a.mediaTypes).toEqual(['text/x-evil']);
    const r = ok(
      rest03('POST /v1/message:send', {
        message: { content: [{ file: { file_with_uri: IMDS, mime_type: 'application/pdf' } }, { file: { file_with_bytes: 'aGk=', mimeType: 'text/plain' } }] },
      }),
    );
    expect(r.op.a2a.parts).toEqual([
      { kind: 'url', mediaType: 'application/pdf', bytes: IMDS.length, host: '169.254.169.254' },
      { kind: 'raw', mediaType: 'text/plain', bytes: 2, host: '' },
    ]);
  });

  test('the Python 0.3 HTTP+JSON client: the message under `request`, snake_case members (as captured)', () => {
    const r = ok(
      rest03('POST /v1/message:send', {
        request: { message_id: 'm', role: 'ROLE_USER', content: [{ text: 'count 2' }], metadata: { skill: 'count' } },
        configuration: { blocking: true },
      }),
      { skillFrom: 'metadata.skill' },
    );
    expect(r.op.target).toEqual({ kind: 'skill', name: 'count' });
    expect(r.op.a2a.partKinds).toEqual(['text']);
  });

  test.each<[string, A2aCall]>([
    ['message.taskId and message.task_id', rpc10('SendMessage', { message: { taskId: 'A', task_id: 'B', parts: [] } })],
    ['message.taskId null and message.task_id', rpc10('SendMessage', { message: { taskId: null, task_id: 'B', parts: [] } })],
    [
      'two push configs',
      rpc10('SendMessage', {
        message: { parts: [] },
        configuration: { taskPushNotificationConfig: { url: 'https://ok.example/' }, task_push_notification_config: { url: IMDS } },
      }),
    ],
    ['taskId and task_id', rpc10('CreateTaskPushNotificationConfig', { taskId: 'A', task_id: 'B', url: 'https://ok.example/' })],
    ['mediaType and media_type', rpc10('SendMessage', { message: { parts: [{ text: 'a', mediaType: 'text/plain', media_type: 'x/y' }] } })],
    ['message and request (0.3 REST)', rest03('POST /v1/message:send', { message: { content: [] }, request: { content: [{ text: 'x' }] } })],
    [
      'fileWithUri and file_with_uri',
      rest03('POST /v1/message:send', { message: { content: [{ file: { fileWithUri: 'https://a/', file_with_uri: IMDS } }] } }),
    ],
  ])('both spellings at once are refused: %s', (_, call) => {
    expect(refused(call)).toMatch(/twice/);
  });
});

describe('0.3 REST push config create: three body shapes, one task', () => {
  const path = 'POST /v1/tasks/T/pushNotificationConfigs';
  test('JS 1.3.0 compat: pushNotificationConfig with the task in name (as the 1.3.0 client sends)', () => {
    const r = ok(rest03(path, { name: 'tasks/T/pushNotificationConfigs/cfg-1', pushNotificationConfig: { id: 'cfg-1', url: IMDS, token: 't' } }));
    expect(r.op.a2a).toMatchObject({ taskId: 'T', pushUrl: IMDS });
    expect(r.configId).toBe('cfg-1');
  });

  test('JS 0.3.14: {parent, config: {pushNotificationConfig}} — the URL is read', () => {
    const r = ok(rest03(path, { parent: 'tasks/T', config: { pushNotificationConfig: { id: 'c', url: IMDS, authentication: { credentials: 'k' } } } }));
    expect(r.op.a2a).toMatchObject({ taskId: 'T', pushUrl: IMDS, pushAuth: true });
    expect(r.configId).toBe('c');
  });

  test('Python 0.3 (as captured): parent, config_id, config.name, config.push_notification_config', () => {
    const r = ok(
      rest03(path, {
        parent: 'tasks/T',
        config_id: 'cfg-1',
        config: { name: 'tasks/T/pushNotificationConfigs/cfg-1', push_notification_config: { id: 'cfg-1', url: IMDS, token: 'tok' } },
      }),
    );
    expect(r.op.a2a).toMatchObject({ taskId: 'T', pushUrl: IMDS });
  });

  test.each<[string, unknown, RegExp]>([
    ['name names another task', { name: 'tasks/VICTIM/pushNotificationConfigs/c', pushNotificationConfig: { url: 'https://ok.example/' } }, /VICTIM/],
    ['parent names another task', { parent: 'tasks/VICTIM', config: { pushNotificationConfig: { url: 'https://ok.example/' } } }, /VICTIM/],
    ['config.name names another task', { config: { name: 'tasks/VICTIM/x', pushNotificationConfig: { url: 'https://ok.example/' } } }, /VICTIM/],
    ['name is no task name', { name: 'VICTIM', pushNotificationConfig: { url: 'https://ok.example/' } }, /resource name/],
    ['URLs in two places', { pushNotificationConfig: { url: 'https://ok.example/' }, config: { pushNotificationConfig: { url: IMDS } } }, /twice/],
    ['no URL', { pushNotificationConfig: { id: 'c' } }, /needs a url/],
  ])('refused: %s', (_, body, why) => {
    expect(refused(rest03(path, body))).toMatch(why);
  });

  test('1.0 REST: a body taskId or id must be the path task', () => {
    expect(ok(rest10('POST /tasks/T/pushNotificationConfigs', { id: 'cfg', taskId: 'T', url: 'https://ok.example/' })).configId).toBe('cfg');
    expect(refused(rest10('POST /tasks/T/pushNotificationConfigs', { taskId: 'VICTIM', url: 'https://ok.example/' }))).toMatch(/VICTIM/);
    expect(refused(rest10('POST /tasks/T/pushNotificationConfigs', { task_id: 'VICTIM', url: 'https://ok.example/' }))).toMatch(/VICTIM/);
    expect(ok(rest10('POST /tasks/T:cancel', { id: 'T' })).op.a2a.taskId).toBe('T');
    expect(refused(rest10('POST /tasks/T:cancel', { id: 'VICTIM' }))).toMatch(/VICTIM/);
  });
});

describe('tenant: path, body/params, query must agree', () => {
  test('1.0 JSON-RPC params.tenant is the tenant', () => {
    expect(ok(rpc10('GetTask', { id: 't', tenant: 'acme' })).op.a2a.tenant).toBe('acme');
  });
  test('1.0 REST: a body tenant alone is the tenant; one that disagrees with the path is refused', () => {
    expect(ok(rest10('POST /message:send', { tenant: 'acme', message: { parts: [] } })).op.a2a.tenant).toBe('acme');
    expect(ok(rest10('POST /acme/message:send', { tenant: 'acme', message: { parts: [] } })).op.a2a.tenant).toBe('acme');
    expect(refused(rest10('POST /acme/message:send', { tenant: 'other', message: { parts: [] } }))).toMatch(/tenant/);
    expect(refused(rpc10('GetTask', { id: 't', tenant: 7 }))).toMatch(/tenant/);
  });
  test('tenantOf: every given tenant agrees, "" is none', () => {
    expect(tenantOf(undefined, undefined, undefined)).toEqual({ ok: true, tenant: '' });
    expect(tenantOf('a', '', 'a')).toEqual({ ok: true, tenant: 'a' });
    expect(tenantOf(undefined, 'q', undefined)).toEqual({ ok: true, tenant: 'q' });
    expect(tenantOf('a', 'b', undefined)).toMatchObject({ ok: false });
    expect(tenantOf(undefined, 'b', 'c')).toMatchObject({ ok: false });
    expect(tenantOf(undefined, ['a'], undefined)).toMatchObject({ ok: false });
  });
});

describe('url parts: size, scheme, canonical host', () => {
  test('a data: URL counts its bytes; schemes are facts', () => {
    const big = `data:text/plain,${'x'.repeat(100_000)}`;
    const r = ok(rpc10('SendMessage', { message: { parts: [{ url: big }, { url: 'file:///etc/passwd' }, { url: 'https://a.example/' }] } }));
    expect(r.op.a2a.parts[0]!.bytes).toBe(big.length);
    expect(r.op.a2a.totalBytes).toBeGreaterThan(100_000);
    expect(r.op.a2a.urlSchemes).toEqual(['data', 'file', 'https']);
  });
  test('hosts without port, mapped IPv6 as IPv4, no trailing dot, lower case', () => {
    const r = ok(
      rpc10('SendMessage', {
        message: {
          parts: [
            { url: 'http://[::ffff:a9fe:a9fe]:8080/' },
            { url: 'http://Metadata.Internal./x' },
            { url: 'http://a.example:443/' },
            { url: 'file://evil.example/x' },
          ],
        },
      }),
    );
    expect(r.op.a2a.urlHosts).toEqual(['169.254.169.254', 'metadata.internal', 'a.example', 'evil.example']);
  });
});

describe('context.text covers data parts and text/* raw parts', () => {
  test('string leaves of data, decoded text/* bytes; not other bytes', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const r = ok(
      rpc10('SendMessage', {
        message: {
          parts: [
            { text: 'one' },
            { data: { a: 'two', n: 3, nested: [{ b: 'three' }] } },
            { raw: b64('four'), mediaType: 'text/plain; charset=utf-8' },
            { raw: b64('five'), mediaType: 'image/png' },
          ],
        },
      }),
      { text: true },
    );
    expect(r.op.a2a.text).toBe('one\ntwo\nthree\nfour');
    const f = ok(rpc03('message/send', { message: { parts: [{ kind: 'file', file: { bytes: b64('six'), mimeType: 'TEXT/markdown' } }] } }), { text: true });
    expect(f.op.a2a.text).toBe('six');
  });
  test('a data part deeper than the arguments bound is refused when text is collected', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(refused(rpc10('SendMessage', { message: { parts: [{ data: { deep } }] } }), { text: true })).toMatch(/deeper/);
  });
});

describe('request metadata', () => {
  const send = (params: object) => rpc10('SendMessage', { message: { parts: [], ...params }, metadata: { skill: 'refund', tier: 'gold' } });
  test('is a fact of its own (requestMetadata), apart from the message metadata (arguments)', () => {
    const r = ok(rpc10('SendMessage', { message: { parts: [], metadata: { m: 1 } }, metadata: { tier: 'gold' } }));
    expect(r.op.a2a.requestMetadata).toEqual({ tier: 'gold' });
    expect(r.op.arguments).toEqual({ m: 1 });
  });
  test('skillFrom params.metadata.<key> reads it', () => {
    expect(ok(send({}), { skillFrom: 'params.metadata.skill' }).op.target).toEqual({ kind: 'skill', name: 'refund' });
  });
  test('the skillFrom key in the other metadata is refused (which one the agent reads is unknown)', () => {
    expect(refused(send({}), { skillFrom: 'metadata.skill' })).toMatch(/request metadata/);
    expect(refused(send({ metadata: { skill: 'x' } }), { skillFrom: 'params.metadata.skill' })).toMatch(/message metadata/);
    expect(ok(send({}), { skillFrom: 'metadata.tier2' }).op.target).toBeNull();
  });
});

describe('__proto__ keys in metadata are refused', () => {
  test.each([
    ['message metadata', '{"message":{"parts":[],"metadata":{"__proto__":{"admin":true}}}}'],
    ['nested', '{"message":{"parts":[],"metadata":{"a":[{"__proto__":1}]}}}'],
    ['request metadata', '{"message":{"parts":[]},"metadata":{"__proto__":{}}}'],
  ])('%s', (_, json) => {
    expect(refused(rpc10('SendMessage', JSON.parse(json)))).toMatch(/__proto__/);
  });
  test('metadata too deep to check is refused', () => {
    const json = `{"message":{"parts":[],"metadata":{"a":${'['.repeat(70)}{"__proto__":1}${']'.repeat(70)}}}}`;
    expect(refused(rpc10('SendMessage', JSON.parse(json)))).toMatch(/deeper than 64/);
  });
});

describe('only members the SDKs know, per level and generation (a2a-keys.ts)', () => {
  test.each<[string, A2aCall]>([
    ['1.0 params: 0.3 REST’s request alias', rpc10('SendMessage', { message: { parts: [] }, request: { parts: [{ text: 'x' }] } })],
    ['1.0 message', rpc10('SendMessage', { message: { parts: [], request: {} } })],
    ['1.0 message: a 0.3 member', rpc10('SendMessage', { message: { parts: [], kind: 'message' } })],
    ['1.0 part', rpc10('SendMessage', { message: { parts: [{ text: 'a', file: { uri: IMDS } }] } })],
    ['1.0 configuration: 0.3 push member', rpc10('SendMessage', { message: { parts: [] }, configuration: { pushNotificationConfig: { url: IMDS } } })],
    ['1.0 push config', rpc10('SendMessage', { message: { parts: [] }, configuration: { taskPushNotificationConfig: { url: 'https://ok/', uri: IMDS } } })],
    ['1.0 create', rpc10('CreateTaskPushNotificationConfig', { taskId: 'T', url: 'https://ok/', pushNotificationConfig: { url: IMDS } })],
    ['0.3 JSON-RPC file', rpc03('message/send', { message: { parts: [{ kind: 'file', file: { uri: 'https://ok/', fileWithUri: IMDS } }] } })],
    [
      '0.3 JSON-RPC configuration: 1.0 push member',
      rpc03('message/send', { message: { parts: [] }, configuration: { taskPushNotificationConfig: { url: IMDS } } }),
    ],
    ['0.3 JSON-RPC set', rpc03('tasks/pushNotificationConfig/set', { taskId: 'T', pushNotificationConfig: { url: 'https://ok/' }, config: { url: IMDS } })],
    ['0.3 REST create config', rest03('POST /v1/tasks/T/pushNotificationConfigs', { config: { pushNotificationConfig: { url: 'https://ok/' }, other: 1 } })],
  ])('refused: %s', (_, call) => {
    expect(refused(call)).toMatch(/is not a member A2A/);
  });

  test('what the clients send passes (captures): 0.3 JSON-RPC kind/blocking/acceptedOutputModes, 1.0 mediaType', () => {
    ok(
      rpc03('message/send', {
        message: { kind: 'message', messageId: 'm', role: 'user', parts: [{ kind: 'text', text: 'count 2' }], metadata: { skill: 'count' } },
        configuration: { blocking: true, acceptedOutputModes: [], pushNotificationConfig: { url: 'http://127.0.0.1:1/hook', id: 'c', token: 't' } },
      }),
    );
    ok(rpc10('SendMessage', { message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'count 2', mediaType: 'text/plain' }] }, configuration: {} }));
  });
});

// describeA2a: an A2A call of either generation and binding → the Operation gates 1–3 decide on.
import fc from 'fast-check';
import { canonicalJson } from '../../api/canonical.js';
import { ConfigFileSchema } from '../../api/config.js';
import { A2A_MAX_ID_BYTES, type A2aCall, describeA2a } from './a2a-operation.js';
import { decide, type GateInputs } from './decide.js';
import { compileRules } from './rules.js';
import { compileVisibility } from './visibility.js';

const SKILL = { skillFrom: 'metadata.skill' };

const ok = (call: A2aCall, options = {}) => {
  const d = describeA2a('billing', call, options);
  if (!d.ok) throw new Error(d.reason);
  return d;
};

describe('describeA2a', () => {
  test('a 0.3 JSON-RPC send: canonical method, skill target, metadata as arguments, parts unified', () => {
    const d = ok(
      {
        version: '0.3',
        binding: 'jsonrpc',
        method: 'message/send',
        params: {
          message: {
            kind: 'message',
            messageId: 'm1',
            role: 'user',
            contextId: 'ctx-1',
            referenceTaskIds: ['t-0'],
            parts: [
              { kind: 'text', text: 'héllo' },
              { kind: 'file', file: { uri: 'https://Files.Example:8443/a.pdf', mimeType: 'application/pdf' } },
              { kind: 'file', file: { bytes: 'aGVsbG8=' } },
              { kind: 'data', data: { b: 1, a: [true] } },
            ],
            metadata: { skill: 'refund', amount: 12 },
          },
          configuration: { pushNotificationConfig: { url: 'http://hooks.internal/x', authentication: { schemes: ['Bearer'], credentials: 's3cret' } } },
        },
      },
      { ...SKILL, text: true },
    );
    expect(d.op).toEqual({
      source: 'billing',
      method: 'SendMessage',
      target: { kind: 'skill', name: 'refund' },
      arguments: { skill: 'refund', amount: 12 },
      governed: true,
      a2a: {
        version: '0.3',
        binding: 'jsonrpc',
        skill: 'refund',
        parts: [
          { kind: 'text', mediaType: '', bytes: 6, host: '' },
          { kind: 'url', mediaType: 'application/pdf', bytes: 32, host: 'files.example' },
          { kind: 'raw', mediaType: '', bytes: 5, host: '' },
          { kind: 'data', mediaType: '', bytes: canonicalJson({ a: [true], b: 1 }).length, host: '' },
        ],
        partKinds: ['text', 'url', 'raw', 'data'],
        mediaTypes: ['application/pdf'],
        urlHosts: ['files.example'],
        urlSchemes: ['https'],
        partCount: 4,
        totalBytes: 6 + 32 + 5 + canonicalJson({ a: [true], b: 1 }).length,
        taskId: '',
        contextId: 'ctx-1',
        referenceTaskIds: ['t-0'],
        pushUrl: 'http://hooks.internal/x',
        pushAuth: true,
        tenant: '',
        requestMetadata: {},
        extensions: [],
        text: 'héllo',
      },
    });
  });

  test('a task or context id longer than A2A_MAX_ID_BYTES is refused as invalid params', () => {
    const long = 'x'.repeat(A2A_MAX_ID_BYTES + 1);
    const send = (message: Record<string, unknown>) =>
      describeA2a('billing', {
        version: '0.3',
        binding: 'jsonrpc',
        method: 'message/send',
        params: { message: { kind: 'message', messageId: 'm', role: 'user', parts: [], ...message } },
      });
    expect(send({ contextId: long })).toEqual({ ok: false, error: 'params', reason: `contextId is longer than ${A2A_MAX_ID_BYTES} bytes` });
    expect(send({ taskId: long })).toMatchObject({ ok: false, error: 'params' });
    expect(send({ referenceTaskIds: ['t', long] })).toMatchObject({ ok: false, error: 'params' });
    expect(describeA2a('billing', { version: '0.3', binding: 'jsonrpc', method: 'tasks/get', params: { id: long } })).toMatchObject({
      ok: false,
      error: 'params',
    });
    expect(send({ contextId: 'é'.repeat(A2A_MAX_ID_BYTES / 2) }).ok).toBe(true);
  });

  test('url hosts in canonical form', () => {
    const d = ok({
      version: '1.0',
      binding: 'jsonrpc',
      method: 'SendMessage',
      params: { message: { parts: [{ url: 'http://0x7f000001/x' }, { url: 'HTTP://[::FFFF:127.0.0.1]:80/' }] } },
    });
    // Without the port, and the IPv4-mapped address as the IPv4 one it reaches (lib/destination.ts).
    expect(d.op.a2a.urlHosts).toEqual(['127.0.0.1']);
  });

  test('text only when asked', () => {
    const call: A2aCall = { version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [{ text: 'hi' }] } } };
    expect(ok(call).op.a2a.text).toBeUndefined();
    expect(ok(call, { text: true }).op.a2a.text).toBe('hi');
  });

  test('1.0 REST: path ids and tenant; push URL of a create; plumbing is not governed', () => {
    expect(ok({ version: '1.0', binding: 'rest', method: 'GET /tenant-a/tasks/t-9', params: undefined })).toMatchObject({
      op: { method: 'GetTask', governed: false, target: null, a2a: { taskId: 't-9', tenant: 'tenant-a' } },
    });
    const create = ok({ version: '1.0', binding: 'rest', method: 'POST /tasks/t-9/pushNotificationConfigs', params: { id: 'c1', url: 'http://h/x' } });
    expect(create).toMatchObject({
      op: { method: 'CreateTaskPushNotificationConfig', governed: true, a2a: { taskId: 't-9', pushUrl: 'http://h/x', pushAuth: false } },
      configId: 'c1',
    });
    expect(ok({ version: '0.3', binding: 'rest', method: 'DELETE /v1/tasks/t/pushNotificationConfigs/c', params: undefined })).toMatchObject({
      op: { method: 'DeleteTaskPushNotificationConfig', a2a: { taskId: 't' } },
      configId: 'c',
    });
    expect(ok({ version: '0.3', binding: 'jsonrpc', method: 'tasks/resubscribe', params: { id: 't-1' } }).op).toMatchObject({
      method: 'SubscribeToTask',
      a2a: { taskId: 't-1' },
    });
    expect(ok({ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { taskId: 't-2', parts: [] } } }).op.a2a.taskId).toBe('t-2');
  });

  test('no skillFrom: no skill, whatever the metadata says', () => {
    const d = ok({ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [], metadata: { skill: 'refund' } } } });
    expect(d.op.target).toBeNull();
    expect(d.op.a2a.skill).toBe('');
  });

  test.each([
    [{ version: '0.3', binding: 'jsonrpc', method: 'SendMessage', params: {} }, 'method'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'message/send', params: {} }, 'method'],
    [{ version: '1.0', binding: 'rest', method: 'POST /Message:Send', params: {} }, 'method'],
    [{ version: '1.0', binding: 'rest', method: 'POST/message:send', params: {} }, 'method'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'GetTask', params: [] }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'GetTask', params: { id: 5 } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: {} }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [{}] } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [{ text: 'a', url: 'http://x' }] } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [{ raw: 'not base64!' }] } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [{ url: '/relative/file' }] } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [{ url: 'http://169.254.169.254:99999/' }] } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [], metadata: { skill: ['refund'] } } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [], metadata: { skill: { n: 1 } } } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [], metadata: { skill: '' } } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [], metadata: 'x' } } }, 'params'],
    [{ version: '1.0', binding: 'jsonrpc', method: 'SendMessage', params: { message: { parts: [], referenceTaskIds: [1] } } }, 'params'],
    [{ version: '0.3', binding: 'jsonrpc', method: 'message/send', params: { message: { parts: [{ kind: 'Text', text: 'a' }] } } }, 'params'],
    [
      { version: '0.3', binding: 'jsonrpc', method: 'message/send', params: { message: { parts: [{ kind: 'file', file: { uri: 'u', bytes: 'AA==' } }] } } },
      'params',
    ],
    // 1.0 body on the 0.3 REST path: the 1.3.0 server runs it with empty text.
    [{ version: '0.3', binding: 'rest', method: 'POST /v1/message:send', params: { message: { parts: [{ text: 'a' }] } } }, 'params'],
    [{ version: '0.3', binding: 'rest', method: 'POST /v1/message:send', params: { message: { content: [{ text: 'a' }], parts: [] } } }, 'params'],
    [{ version: '1.0', binding: 'rest', method: 'POST /message:send', params: { message: { content: [{ text: 'a' }] } } }, 'params'],
    [{ version: '1.0', binding: 'rest', method: 'POST /tasks/t/pushNotificationConfigs', params: { url: 7 } }, 'params'],
  ] as [A2aCall, string][])('refused before any gate: %j → %s', (call, error) => {
    expect(describeA2a('billing', call, SKILL)).toMatchObject({ ok: false, error, reason: expect.any(String) });
  });

  // One logical message, written in each generation's and binding's shape, reads the same.
  type Logical =
    | { kind: 'text'; text: string }
    | { kind: 'url'; url: string; mediaType: string }
    | { kind: 'raw'; bytes: Uint8Array }
    | { kind: 'data'; data: unknown };
  const logicalPart: fc.Arbitrary<Logical> = fc.oneof(
    fc.record({ kind: fc.constant('text' as const), text: fc.string({ unit: 'grapheme' }) }),
    fc.record({ kind: fc.constant('url' as const), url: fc.webUrl(), mediaType: fc.constantFrom('application/pdf', 'image/png') }),
    fc.record({ kind: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
    fc.record({ kind: fc.constant('data' as const), data: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })) }),
  );
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  const leaves = (v: unknown): string[] => (typeof v === 'string' ? [v] : v !== null && typeof v === 'object' ? Object.values(v).flatMap(leaves) : []);
  const part10 = (p: Logical): object =>
    p.kind === 'text'
      ? { text: p.text }
      : p.kind === 'url'
        ? { url: p.url, mediaType: p.mediaType }
        : p.kind === 'raw'
          ? { raw: b64(p.bytes) }
          : { data: p.data };
  const shapes: Record<string, { call: (message: object) => A2aCall; part: (p: Logical) => object; partsKey: string }> = {
    '0.3 jsonrpc': {
      call: (message) => ({ version: '0.3', binding: 'jsonrpc', method: 'message/send', params: { message } }),
      part: (p) =>
        p.kind === 'text'
          ? { kind: 'text', text: p.text }
          : p.kind === 'url'
            ? { kind: 'file', file: { uri: p.url, mimeType: p.mediaType } }
            : p.kind === 'raw'
              ? { kind: 'file', file: { bytes: b64(p.bytes) } }
              : { kind: 'data', data: p.data },
      partsKey: 'parts',
    },
    '0.3 rest': {
      call: (message) => ({ version: '0.3', binding: 'rest', method: 'POST /v1/message:stream', params: { message } }),
      part: (p) =>
        p.kind === 'text'
          ? { text: p.text }
          : p.kind === 'url'
            ? { file: { fileWithUri: p.url, mimeType: p.mediaType } }
            : p.kind === 'raw'
              ? { file: { fileWithBytes: b64(p.bytes) } }
              : { data: { data: p.data } },
      partsKey: 'content',
    },
    '1.0 jsonrpc': {
      call: (message) => ({ version: '1.0', binding: 'jsonrpc', method: 'SendStreamingMessage', params: { message } }),
      part: part10,
      partsKey: 'parts',
    },
    '1.0 rest': {
      call: (message) => ({ version: '1.0', binding: 'rest', method: 'POST /message:send', params: { message } }),
      part: part10,
      partsKey: 'parts',
    },
  };

  test('property: every generation and binding reads the same kinds, sizes, skill, metadata and text', () => {
    fc.assert(
      fc.property(
        fc.array(logicalPart, { maxLength: 6 }),
        fc.option(fc.string({ minLength: 1 }), { nil: undefined }),
        // Metadata with a "__proto__" key is refused (a2a-wire.test.ts), so none is generated here.
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })).filter((m) => !JSON.stringify(m).includes('"__proto__"')),
        (parts, skill, extra) => {
          const metadata = skill === undefined ? extra : { ...extra, skill };
          const seen = Object.entries(shapes).map(([name, s]) => {
            const d = describeA2a('billing', s.call({ messageId: 'm', metadata, [s.partsKey]: parts.map(s.part) }), { ...SKILL, text: true });
            if (!d.ok) throw new Error(`${name}: ${d.reason}`);
            const { version: _v, binding: _b, ...facts } = d.op.a2a;
            return { target: d.op.target, arguments: d.op.arguments, facts };
          });
          for (const s of seen.slice(1)) expect(s).toEqual(seen[0]);
          const f = seen[0]!.facts;
          expect(f.parts.map((p) => p.kind)).toEqual(parts.map((p) => p.kind));
          expect(f.parts.map((p) => p.bytes)).toEqual(
            parts.map((p) =>
              p.kind === 'text'
                ? Buffer.byteLength(p.text)
                : p.kind === 'raw'
                  ? p.bytes.length
                  : p.kind === 'data'
                    ? Buffer.byteLength(canonicalJson(p.data))
                    : Buffer.byteLength(p.url),
            ),
          );
          expect(f.totalBytes).toBe(f.parts.reduce((n, p) => n + p.bytes, 0));
          expect(f.text).toBe(parts.flatMap((p) => (p.kind === 'text' ? [p.text] : p.kind === 'data' ? leaves(p.data) : [])).join('\n'));
          expect(seen[0]!.target).toEqual(skill === undefined ? null : { kind: 'skill', name: skill });
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: any params of any method are read or refused, never thrown', () => {
    const methods = [
      'message/send',
      'SendMessage',
      'tasks/get',
      'GetTask',
      'CreateTaskPushNotificationConfig',
      'tasks/pushNotificationConfig/set',
      'POST /message:send',
      'POST /v1/message:send',
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...methods),
        fc.constantFrom('0.3', '1.0'),
        fc.constantFrom('jsonrpc', 'rest'),
        fc.anything(),
        (method, version, binding, params) => {
          const d = describeA2a('s', { version: version as '0.3' | '1.0', binding: binding as 'jsonrpc' | 'rest', method, params }, { ...SKILL, text: true });
          expect(typeof d.ok).toBe('boolean');
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('gates 1–2 decide A2A calls unchanged', () => {
  const identity = { namespace: 'team-a', serviceAccount: 'agent', pod: 'agent-0', labels: {} };
  const inputs = (doc: object): GateInputs => {
    const cfg = ConfigFileSchema.parse(doc);
    return { visibility: compileVisibility(cfg.sources[0]!.expose), rules: compileRules(cfg.rules), defaultAction: cfg.defaultAction, cedar: null, identity };
  };
  const source = { name: 'billing', protocol: 'a2a', url: 'https://billing.internal', a2a: { jsonrpc: '/rpc', skillFrom: 'metadata.skill' } };
  const send = (skill?: string, method = 'message/send') => {
    const d = describeA2a(
      'billing',
      { version: '0.3', binding: 'jsonrpc', method, params: { message: { parts: [{ kind: 'text', text: 'x' }], ...(skill ? { metadata: { skill } } : {}) } } },
      SKILL,
    );
    if (!d.ok) throw new Error(d.reason);
    return d.op;
  };

  test('a skill outside expose.skills is hidden; one inside is decided by the rules', () => {
    const g = inputs({
      sources: [{ ...source, expose: { mode: 'allowlist', skills: ['invoice-*', 'refund*'] } }],
      rules: [{ name: 'refunds', match: { method: 'SendMessage', skill: 'refund*' }, action: 'deny' }],
      defaultAction: 'forward',
    });
    expect(decide(g, send('admin'), new Date())).toEqual({ action: 'hidden', gate: 'visibility', reason: 'skill is not exposed' });
    expect(decide(g, send('refund-all'), new Date())).toMatchObject({ action: 'deny', rule: 'refunds', error: 'DENIED_BY_RULE' });
    expect(decide(g, send('invoice-list'), new Date())).toMatchObject({ action: 'forward', rule: 'defaultAction' });
    // Naming no skill is not hiding one: the message is decided with skill absent.
    expect(decide(g, send(), new Date())).toMatchObject({ action: 'forward' });
  });

  test('defaultAction governs sends; plumbing flows; a 0.3 spelling in a rule reaches a 1.0 call', () => {
    const g = inputs({ sources: [source], rules: [{ name: 'no-cancel', match: { method: 'tasks/cancel' }, action: 'deny' }], defaultAction: 'deny' });
    expect(decide(g, send('x', 'message/stream'), new Date())).toMatchObject({ action: 'deny', rule: 'defaultAction' });
    const get = describeA2a('billing', { version: '1.0', binding: 'jsonrpc', method: 'GetTask', params: { id: 't' } });
    expect(get.ok && decide(g, get.op, new Date())).toEqual({ action: 'forward', gate: 'rules', reason: 'protocol message' });
    const cancel = describeA2a('billing', { version: '1.0', binding: 'rest', method: 'POST /tasks/t:cancel', params: {} });
    expect(cancel.ok && decide(g, cancel.op, new Date())).toMatchObject({ action: 'deny', rule: 'no-cancel' });
  });
});

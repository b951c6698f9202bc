import {
  decodeList,
  decodeObject,
  decodeWatchLine,
  errorFromResponse,
  hasName,
  inClusterServer,
  KubeError,
  LineSplitter,
  listPath,
  parseRetryAfter,
  resourcePath,
  resourceTypeFromPath,
  watchPath,
  type ResourceType,
} from './protocol.js';
import { APPROVAL_REQUESTS, CONFIG_MAPS, isApprovalRequest, isConfigMap, NAMESPACES } from './resources.js';

describe('inClusterServer', () => {
  it('builds the URL from KUBERNETES_SERVICE_HOST/PORT, bracketing IPv6', () => {
    expect(inClusterServer({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' })).toBe('https://10.96.0.1');
    expect(inClusterServer({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443' })).toBe('https://10.96.0.1:6443');
    expect(inClusterServer({ KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '443' })).toBe('https://[fd00:10:96::1]');
    expect(inClusterServer({ KUBERNETES_SERVICE_HOST: '[fd00::1]', KUBERNETES_SERVICE_PORT: '8443' })).toBe('https://[fd00::1]:8443');
    expect(inClusterServer({ KUBERNETES_SERVICE_HOST: 'kubernetes.default.svc' })).toBe('https://kubernetes.default.svc');
  });

  it('says what is missing or wrong', () => {
    expect(inClusterServer({})).toEqual({ error: expect.stringContaining('KUBERNETES_SERVICE_HOST is not set') });
    expect(inClusterServer({ KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: 'https' })).toEqual({ error: expect.stringContaining('not a port') });
    expect(inClusterServer({ KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '70000' })).toEqual({ error: expect.stringContaining('not a port') });
  });
});

describe('paths', () => {
  const cm = (ns: string) => resourcePath(CONFIG_MAPS, { namespace: ns });
  it('builds core and group paths, objects, subresources and the all-namespaces collection', () => {
    expect(resourcePath(CONFIG_MAPS, { namespace: 'ns', name: 'thoughtgate-config' })).toBe('/api/v1/namespaces/ns/configmaps/thoughtgate-config');
    expect(resourcePath(CONFIG_MAPS)).toBe('/api/v1/configmaps');
    expect(resourcePath(NAMESPACES, { namespace: 'ignored', name: 'team-a' })).toBe('/api/v1/namespaces/team-a');
    expect(resourcePath(APPROVAL_REQUESTS, { namespace: 'team-a' })).toBe('/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests');
    expect(resourcePath(APPROVAL_REQUESTS, { namespace: 'team-a', name: 'r1', subresource: 'status' })).toBe(
      '/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests/r1/status',
    );
  });

  it('selects the one ConfigMap by name, so RBAC resourceNames can authorize list and watch', () => {
    const sel = { fieldSelector: 'metadata.name=thoughtgate-config' };
    expect(listPath(cm('ns'), sel)).toBe('/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dthoughtgate-config');
    expect(watchPath(cm('ns'), { fieldSelector: 'metadata.name=cm' }, '123', 300)).toBe(
      '/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dcm&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=123',
    );
    expect(watchPath(cm('ns'), { fieldSelector: 'metadata.name=cm' }, '', 0.2)).toBe(
      '/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dcm&watch=1&allowWatchBookmarks=true&timeoutSeconds=1',
    );
  });

  it('label selectors: checked key=value pairs, or a selector string as kubectl takes it', () => {
    const ars = resourcePath(APPROVAL_REQUESTS, { namespace: 'team-a' });
    expect(listPath(ars, { labelSelector: { 'thoughtgate.io/pod': 'agent-0' } })).toBe(
      '/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests?labelSelector=thoughtgate.io%2Fpod%3Dagent-0',
    );
    expect(watchPath(ars, { labelSelector: { 'thoughtgate.io/pod': 'agent-0' } }, '42', 300)).toBe(
      '/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests?labelSelector=thoughtgate.io%2Fpod%3Dagent-0&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=42',
    );
    expect(watchPath(ars, {}, '', 5)).toBe(
      '/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests?watch=1&allowWatchBookmarks=true&timeoutSeconds=5',
    );
    // A string is encoded whole: it cannot add query parameters.
    expect(listPath('/api/v1/namespaces', { labelSelector: 'a=b,c!=d&watch=1' })).toBe('/api/v1/namespaces?labelSelector=a%3Db%2Cc!%3Dd%26watch%3D1');
  });

  it('refuses names, selectors and resourceVersions that would walk the URL or change the query', () => {
    expect(() => resourcePath(CONFIG_MAPS, { namespace: '..', name: 'x' })).toThrow(KubeError);
    expect(() => resourcePath(CONFIG_MAPS, { namespace: 'ns', name: 'a/b' })).toThrow('invalid name');
    expect(() => resourcePath(CONFIG_MAPS, { namespace: 'ns', name: 'a&watch=1' })).toThrow('invalid name');
    expect(() => resourcePath(CONFIG_MAPS, { namespace: 'ns', name: 'a', subresource: '../x' })).toThrow('invalid subresource');
    expect(() => watchPath('/api/v1/configmaps', {}, '1&x=2', 10)).toThrow('invalid resourceVersion');
    expect(() => listPath('/x', { labelSelector: { 'thoughtgate.io/pod': 'a,b=c' } })).toThrow('invalid label selector');
    expect(() => listPath('/x', { labelSelector: { 'x&watch': '1' } })).toThrow('invalid label selector');
    expect(() => listPath('/x', { labelSelector: { k: 'v'.repeat(64) } })).toThrow('invalid label selector');
  });

  it('reads the type and namespace back from a collection path (the operator names informers by path)', () => {
    expect(resourceTypeFromPath('/api/v1/configmaps')).toEqual({ type: { apiVersion: 'v1', plural: 'configmaps', kind: 'configmaps', namespaced: true } });
    expect(resourceTypeFromPath('/apis/thoughtgate.io/v1alpha1/namespaces/a/approvalrequests')).toEqual({
      type: { apiVersion: 'thoughtgate.io/v1alpha1', plural: 'approvalrequests', kind: 'approvalrequests', namespaced: true },
      namespace: 'a',
    });
    const t: ResourceType = resourceTypeFromPath('/apis/thoughtgate.io/v1alpha1/governancepolicies').type;
    expect(resourcePath(t)).toBe('/apis/thoughtgate.io/v1alpha1/governancepolicies');
    expect(() => resourceTypeFromPath('/api/v1/configmaps?watch=1')).toThrow('not a collection path');
    expect(() => resourceTypeFromPath('/apis/x/../configmaps')).toThrow('not a collection path');
  });
});

describe('objects', () => {
  it('decodes ApprovalRequest lists, objects and watch events, filling nothing in', () => {
    const ar = {
      apiVersion: 'thoughtgate.io/v1alpha1',
      kind: 'ApprovalRequest',
      metadata: { name: 'r1', resourceVersion: '9' },
      spec: { tool: 't' },
      status: { phase: 'Posted' },
    };
    expect(decodeList(JSON.stringify({ metadata: { resourceVersion: '10' }, items: [ar, { metadata: {} }] }), 'list', isApprovalRequest)).toEqual({
      items: [ar],
      resourceVersion: '10',
    });
    expect(decodeList(JSON.stringify({ metadata: { resourceVersion: '10', continue: 'abc' }, items: [] }), 'list', hasName)).toEqual({
      items: [],
      resourceVersion: '10',
      continue: 'abc',
    });
    expect(decodeObject(JSON.stringify(ar), 'get', isApprovalRequest, 'an ApprovalRequest')).toEqual(ar);
    expect(() => decodeObject('{"metadata":{}}', 'get x', isApprovalRequest, 'an ApprovalRequest')).toThrow('get x: response is not an ApprovalRequest');
    expect(decodeWatchLine(JSON.stringify({ type: 'MODIFIED', object: ar }), isApprovalRequest, 'an ApprovalRequest')).toEqual({
      type: 'MODIFIED',
      object: ar,
    });
    expect(() =>
      decodeWatchLine(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'x' }, spec: [] } }), isApprovalRequest, 'an ApprovalRequest'),
    ).toThrow('ADDED event without an ApprovalRequest');
  });

  it('a 403 names what the sidecar Role must grant', () => {
    const e = errorFromResponse(
      403,
      JSON.stringify({ kind: 'Status', reason: 'Forbidden', message: 'nope' }),
      'create ApprovalRequest x',
      'create on approvalrequests',
    );
    expect(e.message).toBe('create ApprovalRequest x: HTTP 403 Forbidden: nope — RBAC: the ServiceAccount needs create on approvalrequests');
  });
});

describe('decodeWatchLine', () => {
  const cm = { kind: 'ConfigMap', metadata: { name: 'c', resourceVersion: '7' }, data: { a: 'b' } };
  const decodeCm = (line: string) => decodeWatchLine(line, isConfigMap, 'a ConfigMap');

  it('decodes object events and bookmarks', () => {
    for (const type of ['ADDED', 'MODIFIED', 'DELETED'] as const) {
      expect(decodeCm(JSON.stringify({ type, object: cm }))).toEqual({ type, object: cm });
    }
    const bookmark = { type: 'BOOKMARK', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '253', creationTimestamp: null } } };
    expect(decodeCm(JSON.stringify(bookmark))).toEqual({ type: 'BOOKMARK', resourceVersion: '253' });
  });

  it('turns ERROR 410 into a "gone" error and other ERRORs into http errors', () => {
    const gone = { type: 'ERROR', object: { kind: 'Status', status: 'Failure', message: 'too old resource version: 1 (250)', reason: 'Expired', code: 410 } };
    try {
      decodeCm(JSON.stringify(gone));
      throw new Error('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(KubeError);
      expect((e as KubeError).kind).toBe('gone');
      expect((e as KubeError).reason).toBe('Expired');
    }
    const other = { type: 'ERROR', object: { kind: 'Status', message: 'internal', reason: 'InternalError', code: 500 } };
    expect(() => decodeCm(JSON.stringify(other))).toThrow(expect.objectContaining({ kind: 'http', status: 500 }));
  });

  it('ignores unknown event types and rejects garbage', () => {
    expect(decodeCm('{"type":"FUTURE","object":{}}')).toBeNull();
    expect(() => decodeCm('not json')).toThrow(expect.objectContaining({ kind: 'protocol' }));
    expect(() => decodeCm('{"type":"ADDED","object":{"metadata":{}}}')).toThrow(expect.objectContaining({ kind: 'protocol' }));
    expect(() => decodeCm('{"type":"BOOKMARK","object":{"metadata":{}}}')).toThrow(expect.objectContaining({ kind: 'protocol' }));
  });
});

describe('decodeList', () => {
  it('returns the items and the list resourceVersion, also for an empty list', () => {
    expect(decodeList('{"kind":"ConfigMapList","metadata":{"resourceVersion":"9"},"items":[]}', 'l', isConfigMap)).toEqual({ items: [], resourceVersion: '9' });
    const r = decodeList('{"metadata":{"resourceVersion":"9"},"items":[{"metadata":{"name":"c","resourceVersion":"5"},"data":{"k":"v"}}]}', 'l', isConfigMap);
    expect(r.items[0]?.data).toEqual({ k: 'v' });
    expect(() => decodeList('{"items":[]}', 'l', isConfigMap)).toThrow('not a list');
    expect(() => decodeList('nope', 'l', isConfigMap)).toThrow('l: response is not JSON');
  });
});

describe('errorFromResponse', () => {
  const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: 'Status', status: 'Failure', code, reason, message });

  it('explains 403 as missing RBAC and 401 as a rejected token', () => {
    const e403 = errorFromResponse(403, status(403, 'Forbidden', 'configmaps "x" is forbidden: User "system:serviceaccount:a:b" cannot list'), 'list');
    expect(e403.message).toMatch(/HTTP 403 Forbidden: configmaps "x" is forbidden.*RBAC/);
    expect(e403.status).toBe(403);
    const e401 = errorFromResponse(401, status(401, 'Unauthorized', 'Unauthorized'), 'watch');
    expect(e401.message).toContain('credentials were rejected');
  });

  it('maps 410 to "gone" and survives a body that is not a Status', () => {
    expect(errorFromResponse(410, status(410, 'Gone', 'too old'), 'watch').kind).toBe('gone');
    expect(errorFromResponse(502, '<html>bad gateway</html>', 'list').message).toBe('list: HTTP 502: <html>bad gateway</html>');
  });
});

describe('error categories and Retry-After', () => {
  const status = (code: number, reason: string) => JSON.stringify({ kind: 'Status', code, reason, message: reason });

  it('classifies the statuses a caller branches on', () => {
    const cat = (code: number) => errorFromResponse(code, status(code, 'X'), 'op').category;
    expect([404, 409, 410, 400, 422, 401, 403, 429, 500, 503, 418].map(cat)).toEqual([
      'not-found',
      'conflict',
      'gone',
      'invalid',
      'invalid',
      'unauthorized',
      'forbidden',
      'throttled',
      'server',
      'server',
      'other',
    ]);
    expect(new KubeError('network', 'x').category).toBe('network');
    expect(errorFromResponse(503, '', 'op').retryable).toBe(true);
    expect(errorFromResponse(404, '', 'op').retryable).toBe(false);
  });

  it('reads Retry-After as seconds or an HTTP date, bounded, and falls back to the Status details', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(['7'])).toBe(7000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(parseRetryAfter('999999')).toBe(3_600_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(errorFromResponse(429, status(429, 'TooManyRequests'), 'op', undefined, '2').retryAfterMs).toBe(2000);
    const withDetails = JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', details: { retryAfterSeconds: 1 } });
    expect(errorFromResponse(429, withDetails, 'op').retryAfterMs).toBe(1000);
    expect(errorFromResponse(500, '', 'op').retryAfterMs).toBeUndefined();
  });
});

describe('LineSplitter', () => {
  it('splits lines across chunks and keeps multi-byte characters whole', () => {
    const s = new LineSplitter(1024);
    const text = Buffer.from('{"a":"é€😀"}\n{"b":1}\r\n\n{"c"');
    const out: string[] = [];
    // One byte at a time: every character boundary falls between chunks at some point.
    for (let i = 0; i < text.length; i++) out.push(...s.push(text.subarray(i, i + 1)));
    expect(out).toEqual(['{"a":"é€😀"}', '{"b":1}']);
    expect(s.pending).toBe(4);
    expect(s.push(Buffer.from(':2}\n'))).toEqual(['{"c":2}']);
    expect(s.pending).toBe(0);
  });

  it('refuses a line longer than the bound, however it is chunked', () => {
    const s = new LineSplitter(10);
    expect(s.push(Buffer.from('0123456789\n'))).toEqual(['0123456789']);
    s.push(Buffer.from('01234'));
    expect(() => s.push(Buffer.from('567890'))).toThrow(/exceeds 10 bytes/);
  });

  it('copies what it keeps: the stream may reuse its chunk', () => {
    const s = new LineSplitter(100);
    const chunk = Buffer.from('{"a":1}\n{"b"');
    expect(s.push(chunk)).toEqual(['{"a":1}']);
    chunk.fill(0x20);
    expect(s.push(Buffer.from(':2}\n'))).toEqual(['{"b":2}']);
  });
});

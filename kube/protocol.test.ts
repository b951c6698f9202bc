import {
  approvalRequestPath,
  approvalRequestsListPath,
  approvalRequestsPath,
  approvalRequestsWatchPath,
  backoffDelay,
  decodeListOf,
  decodeWatchLineOf,
  isApprovalRequest,
  configMapListPath,
  configMapPath,
  configMapWatchPath,
  decodeList,
  decodeWatchLine,
  errorFromResponse,
  inClusterServer,
  KubeError,
  LineSplitter,
} from './protocol.js';

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
  it('selects the one ConfigMap by name, so RBAC resourceNames can authorize list and watch', () => {
    expect(configMapPath('ns', 'thoughtgate-config')).toBe('/api/v1/namespaces/ns/configmaps/thoughtgate-config');
    expect(configMapListPath('ns', 'thoughtgate-config')).toBe('/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dthoughtgate-config');
    expect(configMapWatchPath('ns', 'cm', '123', 300)).toBe(
      '/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dcm&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=123',
    );
    expect(configMapWatchPath('ns', 'cm', '', 0.2)).toBe('/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dcm&watch=1&allowWatchBookmarks=true&timeoutSeconds=1');
  });

  it('refuses names that would walk the URL', () => {
    expect(() => configMapPath('..', 'x')).toThrow(KubeError);
    expect(() => configMapPath('ns', 'a/b')).toThrow('invalid name');
    expect(() => configMapListPath('ns', 'a&watch=1')).toThrow('invalid name');
    expect(() => configMapWatchPath('ns', 'cm', '1&x=2', 10)).toThrow('invalid resourceVersion');
  });
});

describe('ApprovalRequest paths', () => {
  it('collection, object, label-selected list and watch', () => {
    expect(approvalRequestsPath('team-a')).toBe('/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests');
    expect(approvalRequestPath('team-a', 'r1')).toBe('/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests/r1');
    expect(approvalRequestsListPath('team-a', { 'thoughtgate.io/pod': 'agent-0' })).toBe(
      '/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests?labelSelector=thoughtgate.io%2Fpod%3Dagent-0',
    );
    expect(approvalRequestsWatchPath('team-a', { 'thoughtgate.io/pod': 'agent-0' }, '42', 300)).toBe(
      '/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests?labelSelector=thoughtgate.io%2Fpod%3Dagent-0&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=42',
    );
    expect(approvalRequestsWatchPath('team-a', {}, '', 5)).toBe('/apis/thoughtgate.io/v1alpha1/namespaces/team-a/approvalrequests?watch=1&allowWatchBookmarks=true&timeoutSeconds=5');
  });

  it('refuses names and selectors that would change the query', () => {
    expect(() => approvalRequestPath('team-a', '../x')).toThrow('invalid name');
    expect(() => approvalRequestsListPath('team-a', { 'thoughtgate.io/pod': 'a,b=c' })).toThrow('invalid label selector');
    expect(() => approvalRequestsListPath('team-a', { 'x&watch': '1' })).toThrow('invalid label selector');
    expect(() => approvalRequestsListPath('team-a', { k: 'v'.repeat(64) })).toThrow('invalid label selector');
  });

  it('decodes ApprovalRequest lists and watch events', () => {
    const ar = { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'ApprovalRequest', metadata: { name: 'r1', resourceVersion: '9' }, spec: { tool: 't' }, status: { phase: 'Posted' } };
    expect(decodeListOf(JSON.stringify({ metadata: { resourceVersion: '10' }, items: [ar, { metadata: {} }] }), 'list', isApprovalRequest)).toEqual({ items: [ar], resourceVersion: '10' });
    expect(decodeWatchLineOf(JSON.stringify({ type: 'MODIFIED', object: ar }), isApprovalRequest, 'an ApprovalRequest')).toEqual({ type: 'MODIFIED', object: ar });
    expect(() => decodeWatchLineOf(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'x' }, spec: [] } }), isApprovalRequest, 'an ApprovalRequest')).toThrow('ADDED event without an ApprovalRequest');
  });

  it('a 403 names what the sidecar Role must grant', () => {
    const e = errorFromResponse(403, JSON.stringify({ kind: 'Status', reason: 'Forbidden', message: 'nope' }), 'create ApprovalRequest x', 'create on approvalrequests');
    expect(e.message).toBe('create ApprovalRequest x: HTTP 403 Forbidden: nope — RBAC: the ServiceAccount needs create on approvalrequests');
  });
});

describe('decodeWatchLine', () => {
  const cm = { kind: 'ConfigMap', metadata: { name: 'c', resourceVersion: '7' }, data: { a: 'b' } };

  it('decodes object events and bookmarks', () => {
    for (const type of ['ADDED', 'MODIFIED', 'DELETED'] as const) {
      expect(decodeWatchLine(JSON.stringify({ type, object: cm }))).toEqual({ type, object: cm });
    }
    const bookmark = { type: 'BOOKMARK', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '253', creationTimestamp: null } } };
    expect(decodeWatchLine(JSON.stringify(bookmark))).toEqual({ type: 'BOOKMARK', resourceVersion: '253' });
  });

  it('turns ERROR 410 into a "gone" error and other ERRORs into http errors', () => {
    const gone = { type: 'ERROR', object: { kind: 'Status', status: 'Failure', message: 'too old resource version: 1 (250)', reason: 'Expired', code: 410 } };
    try {
      decodeWatchLine(JSON.stringify(gone));
      throw new Error('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(KubeError);
      expect((e as KubeError).kind).toBe('gone');
      expect((e as KubeError).reason).toBe('Expired');
    }
    const other = { type: 'ERROR', object: { kind: 'Status', message: 'internal', reason: 'InternalError', code: 500 } };
    expect(() => decodeWatchLine(JSON.stringify(other))).toThrow(expect.objectContaining({ kind: 'http', status: 500 }));
  });

  it('ignores unknown event types and rejects garbage', () => {
    expect(decodeWatchLine('{"type":"FUTURE","object":{}}')).toBeNull();
    expect(() => decodeWatchLine('not json')).toThrow(expect.objectContaining({ kind: 'protocol' }));
    expect(() => decodeWatchLine('{"type":"ADDED","object":{"metadata":{}}}')).toThrow(expect.objectContaining({ kind: 'protocol' }));
    expect(() => decodeWatchLine('{"type":"BOOKMARK","object":{"metadata":{}}}')).toThrow(expect.objectContaining({ kind: 'protocol' }));
  });
});

describe('decodeList', () => {
  it('returns the item and the list resourceVersion, also for an empty list', () => {
    expect(decodeList('{"kind":"ConfigMapList","metadata":{"resourceVersion":"9"},"items":[]}', 'l')).toEqual({ item: null, resourceVersion: '9' });
    const r = decodeList('{"metadata":{"resourceVersion":"9"},"items":[{"metadata":{"name":"c","resourceVersion":"5"},"data":{"k":"v"}}]}', 'l');
    expect(r.item?.data).toEqual({ k: 'v' });
    expect(() => decodeList('{"items":[]}', 'l')).toThrow('not a list');
  });
});

describe('errorFromResponse', () => {
  const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: 'Status', status: 'Failure', code, reason, message });

  it('explains 403 as missing RBAC and 401 as a rejected token', () => {
    const e403 = errorFromResponse(403, status(403, 'Forbidden', 'configmaps "x" is forbidden: User "system:serviceaccount:a:b" cannot list'), 'list');
    expect(e403.message).toMatch(/HTTP 403 Forbidden: configmaps "x" is forbidden.*RBAC/);
    expect(e403.status).toBe(403);
    const e401 = errorFromResponse(401, status(401, 'Unauthorized', 'Unauthorized'), 'watch');
    expect(e401.message).toContain('token was rejected');
  });

  it('maps 410 to "gone" and survives a body that is not a Status', () => {
    expect(errorFromResponse(410, status(410, 'Gone', 'too old'), 'watch').kind).toBe('gone');
    expect(errorFromResponse(502, '<html>bad gateway</html>', 'list').message).toBe('list: HTTP 502: <html>bad gateway</html>');
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

describe('backoffDelay', () => {
  it('doubles from 250 ms to a 30 s cap, with jitter in the upper half', () => {
    expect(backoffDelay(0, 250, 30_000, () => 0)).toBe(125);
    expect(backoffDelay(0, 250, 30_000, () => 1)).toBe(250);
    expect(backoffDelay(3, 250, 30_000, () => 1)).toBe(2000);
    expect(backoffDelay(20, 250, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(1000, 250, 30_000, () => 0)).toBe(15_000);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(4);
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });
});

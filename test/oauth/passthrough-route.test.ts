// The forward proxy's decision for a passthrough source's origin: its MCP path is governed, its
// OAuth discovery documents (GET) and relayPaths are relayed, everything else stays refused.
import { IdentitySchema, PolicyDocumentSchema, SourceAuthSchema } from '../../api/config.js';
import { isDiscoveryPath, parseAbsolute, parseConnect, planRoute, type Facts, type Target } from '../../sidecar/proxy/forward-proxy.js';
import { compileSnapshot, type Snapshot } from '../../sidecar/snapshot.js';

function snapshot(sources: unknown[]): Snapshot {
  const doc = PolicyDocumentSchema.parse({ sources, defaultAction: 'forward', egress: { allow: [], deny: [] } });
  const r = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.snapshot;
}

const snap = snapshot([
  { name: 'pass', url: 'http://10.0.0.1:8080/mcp', auth: { mode: 'passthrough', relayPaths: ['/oauth/token'] } },
  { name: 'plain', url: 'http://10.0.0.2:8080/mcp' },
  { name: 'custody', url: 'http://10.0.0.3:8080/mcp', auth: { mode: 'clientCredentials', clientId: 'c', clientSecret: { valueFrom: { env: 'S' } } } },
]);
const facts = (address: string): Facts => ({
  addresses: [address],
  sources: [...snap.sources.values()].map((s) => ({ source: s, addresses: [s.url.hostname] })),
  own: new Set(),
});
const plan = (method: string, url: string) => planRoute(snap.egress, parseAbsolute(url, method) as Target, facts(new URL(url).hostname));

test('a passthrough source: MCP governed; discovery GETs and relayPaths relayed to the address decided on', () => {
  expect(plan('POST', 'http://10.0.0.1:8080/mcp')).toMatchObject({ kind: 'source', source: { name: 'pass' } });
  for (const p of [
    '/.well-known/oauth-protected-resource',
    '/.well-known/oauth-protected-resource/mcp',
    '/.well-known/oauth-authorization-server',
    '/.well-known/oauth-authorization-server/tenant1',
    '/.well-known/openid-configuration',
    '/tenant1/.well-known/openid-configuration',
  ])
    expect([p, plan('GET', `http://10.0.0.1:8080${p}`)]).toEqual([p, { kind: 'egress', url: expect.any(URL), address: '10.0.0.1', port: 8080, oauth: 'pass' }]);
  expect(plan('HEAD', 'http://10.0.0.1:8080/.well-known/oauth-protected-resource/mcp')).toMatchObject({ kind: 'egress', oauth: 'pass' });
  expect(plan('POST', 'http://10.0.0.1:8080/oauth/token')).toMatchObject({ kind: 'egress', oauth: 'pass' });
});

test('a passthrough source: other paths, other methods on discovery, and tunnels stay refused', () => {
  for (const [m, p] of [
    ['POST', '/.well-known/oauth-protected-resource/mcp'],
    ['GET', '/.well-known/oauth-protected-resource/other'],
    ['GET', '/.well-known/oauth-protected-resource/mcp/x'],
    ['GET', '/.well-known/oauth-protected-resourcex'],
    ['GET', '/oauth/token/x'],
    ['GET', '/admin'],
    ['GET', '/.well-known/openid-configuration/../../admin'],
    // Relayed as sent, so never with a %: an upstream that decodes after routing would reach /mcp.
    ['GET', '/.well-known/oauth-authorization-server/..%2F..%2Fmcp'],
    ['GET', '/.well-known/oauth-authorization-server/..%2f..%2fmcp'],
    ['GET', '/.well-known/oauth-authorization-server/..%5C..%5Cmcp'],
    ['GET', '/.well-known/openid-configuration/%2E%2E%2Fmcp'],
    ['GET', '/.well-known/%6fauth-protected-resource'],
    ['GET', '/tenant%2F..%2Fmcp/.well-known/openid-configuration'],
    ['POST', '/oauth/token%2F..%2F..%2Fmcp'],
  ] as const)
    expect([m, p, plan(m, `http://10.0.0.1:8080${p}`)]).toEqual([m, p, expect.objectContaining({ kind: 'refused', status: 403 })]);
  // Method unknown (a caller that did not say): not a discovery GET.
  expect(planRoute(snap.egress, parseAbsolute('http://10.0.0.1:8080/.well-known/oauth-protected-resource') as Target, facts('10.0.0.1'))).toMatchObject({
    kind: 'refused',
  });
  expect(planRoute(snap.egress, parseConnect('10.0.0.1:8080') as Target, facts('10.0.0.1'))).toMatchObject({ kind: 'refused', status: 403 });
});

test('without passthrough (no auth, or custody), the discovery paths are refused like any other', () => {
  for (const host of ['10.0.0.2', '10.0.0.3'])
    expect(plan('GET', `http://${host}:8080/.well-known/oauth-protected-resource/mcp`)).toMatchObject({ kind: 'refused', status: 403 });
});

test('isDiscoveryPath: RFC 9728 for the MCP path only, RFC 8414 and OIDC forms', () => {
  expect(isDiscoveryPath('/.well-known/oauth-protected-resource/mcp', '/mcp')).toBe(true);
  expect(isDiscoveryPath('/.well-known/oauth-protected-resource/other', '/mcp')).toBe(false);
  expect(isDiscoveryPath('/.well-known/oauth-protected-resource', '/')).toBe(true);
  expect(isDiscoveryPath('/a/b/.well-known/openid-configuration', '/mcp')).toBe(true);
  expect(isDiscoveryPath('/.well-known/openid-configurationx', '/mcp')).toBe(false);
});

test('the auth schema: each mode takes only its keys; clientCredentials needs its client', () => {
  expect(SourceAuthSchema.safeParse({ mode: 'passthrough', clientId: 'x' }).error?.issues[0]?.message).toMatch(/"clientId" is for mode clientCredentials/);
  expect(SourceAuthSchema.safeParse({ mode: 'clientCredentials', clientId: 'x' }).error?.issues[0]?.message).toMatch(/needs clientSecret/);
  expect(SourceAuthSchema.safeParse({ mode: 'clientCredentials', clientId: 'x', clientSecret: { valueFrom: { env: 'S' } }, relayPaths: ['/t'] }).success).toBe(
    false,
  );
  expect(SourceAuthSchema.safeParse({ mode: 'passthrough', relayPaths: ['/a/../b'] }).success).toBe(false);
  expect(SourceAuthSchema.safeParse({ mode: 'passthrough', relayPaths: ['/t?x=1'] }).success).toBe(false);
  expect(SourceAuthSchema.safeParse({ mode: 'passthrough', relayPaths: ['/oauth%2Ftoken'] }).success).toBe(false); // never relayed: refused when written
  expect(SourceAuthSchema.safeParse({ mode: 'other' }).success).toBe(false);
});

// Where OAuth metadata is looked for, and what is read from it (sidecar/oauth/discovery.ts). Pure.
import * as d from '../../sidecar/oauth/discovery.js';

const hrefs = (us: URL[]) => us.map((u) => u.href);

test('protected-resource metadata: path-inserted first, then the root (RFC 9728 §3.1)', () => {
  expect(hrefs(d.protectedResourceUrls(new URL('https://mcp.example.com/mcp')))).toEqual([
    'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
    'https://mcp.example.com/.well-known/oauth-protected-resource',
  ]);
  expect(hrefs(d.protectedResourceUrls(new URL('https://mcp.example.com/')))).toEqual(['https://mcp.example.com/.well-known/oauth-protected-resource']);
});

test('authorization-server metadata: RFC 8414 and OpenID Connect, path-inserted and path-appended', () => {
  expect(hrefs(d.authServerMetadataUrls(new URL('https://as.example.com/tenant1')))).toEqual([
    'https://as.example.com/.well-known/oauth-authorization-server/tenant1',
    'https://as.example.com/.well-known/openid-configuration/tenant1',
    'https://as.example.com/tenant1/.well-known/openid-configuration',
  ]);
  expect(hrefs(d.authServerMetadataUrls(new URL('https://as.example.com')))).toEqual([
    'https://as.example.com/.well-known/oauth-authorization-server',
    'https://as.example.com/.well-known/openid-configuration',
  ]);
});

test('metadata documents: only http(s) URLs are taken; the resource must be the source', () => {
  expect(d.readResourceMetadata({ resource: 'https://m/mcp', authorization_servers: ['https://as/'] })).toEqual({
    resource: 'https://m/mcp',
    authorizationServer: new URL('https://as/'),
  });
  expect(d.readResourceMetadata({ authorization_servers: ['javascript:alert(1)'] })).toEqual({ resource: null, authorizationServer: null });
  expect(d.readResourceMetadata('nope')).toBeNull();
  expect(d.readAuthServerMetadata({ issuer: 'https://as', token_endpoint: 'file:///etc/passwd' })).toEqual({ issuer: 'https://as', tokenEndpoint: null });
  expect(d.readAuthServerMetadata({ token_endpoint: 'https://as/token' })).toEqual({ issuer: null, tokenEndpoint: new URL('https://as/token') });
  const src = new URL('https://m.example/mcp');
  expect(d.resourceMatches('https://m.example/mcp', src)).toBe(true);
  expect(d.resourceMatches('https://m.example/mcp/', src)).toBe(true);
  expect(d.resourceMatches('https://m.example', src)).toBe(true);
  expect(d.resourceMatches('https://evil.example/mcp', src)).toBe(false);
  expect(d.resourceMatches('https://m.example/other', src)).toBe(false);
});

test('token responses: a Bearer token with its lifetime, or a reason that never quotes a token', () => {
  expect(d.readTokenResponse(200, { access_token: 'abc', token_type: 'bearer', expires_in: 60 })).toEqual({ ok: true, token: 'abc', expiresInS: 60 });
  expect(d.readTokenResponse(200, { access_token: 'abc', token_type: 'Bearer' })).toEqual({ ok: true, token: 'abc', expiresInS: null });
  expect(d.readTokenResponse(200, { access_token: 'abc', token_type: 'DPoP' })).toEqual({
    ok: false,
    reason: 'the token endpoint issued a token of type "DPoP", not Bearer',
  });
  expect(d.readTokenResponse(200, { access_token: 'a b', token_type: 'Bearer' })).toMatchObject({ ok: false });
  expect(d.readTokenResponse(400, { error: 'invalid_scope', access_token: 'leak' })).toEqual({
    ok: false,
    reason: 'the token endpoint answered 400: invalid_scope',
  });
  expect(d.readTokenResponse(500, null)).toEqual({ ok: false, reason: 'the token endpoint answered 500' });
});

test('authorization-server metadata is for the issuer it was fetched for (RFC 8414 §3.3)', () => {
  expect(d.issuerMatches('https://as.example/tenant1', new URL('https://as.example/tenant1'))).toBe(true);
  expect(d.issuerMatches('https://as.example', new URL('https://as.example'))).toBe(true); // href "https://as.example/"
  expect(d.issuerMatches('https://evil.example', new URL('https://as.example'))).toBe(false);
  expect(d.issuerMatches('https://as.example/tenant2', new URL('https://as.example/tenant1'))).toBe(false);
  expect(d.issuerMatches(null, new URL('https://as.example'))).toBe(false);
});

test('discovery follows https, or an origin the operator named; never plain http elsewhere', () => {
  const trusted = ['http://mcp.internal:8080'];
  expect(d.mayFollow(new URL('https://as.example/token'), trusted)).toBe(true);
  expect(d.mayFollow(new URL('http://mcp.internal:8080/token'), trusted)).toBe(true);
  expect(d.mayFollow(new URL('http://mcp.internal:8081/token'), trusted)).toBe(false);
  expect(d.mayFollow(new URL('http://169.254.169.254/latest'), trusted)).toBe(false);
  expect(d.mayFollow(new URL('http://attacker.example/'), trusted)).toBe(false);
});

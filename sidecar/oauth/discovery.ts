// Where a source's OAuth metadata lives, and what in it the sidecar uses. Pure.
// RFC 9728 (protected-resource metadata) names the authorization server; RFC 8414 (and OpenID
// Connect Discovery) names its token endpoint. The MCP authorization spec's order is followed.

/** RFC 9728 §3.1: the path-inserted form first (`/.well-known/oauth-protected-resource/mcp`), then the root. */
export function protectedResourceUrls(resource: URL): URL[] {
  const root = new URL('/.well-known/oauth-protected-resource', resource);
  const path = resource.pathname.replace(/\/$/, '');
  return path === '' ? [root] : [new URL(`/.well-known/oauth-protected-resource${path}`, resource), root];
}

/** RFC 8414 §3.1 path-inserted, OpenID Connect path-inserted, then path-appended; a root issuer has two. */
export function authServerMetadataUrls(issuer: URL): URL[] {
  const path = issuer.pathname.replace(/\/$/, '');
  if (path === '') return [new URL('/.well-known/oauth-authorization-server', issuer), new URL('/.well-known/openid-configuration', issuer)];
  return [
    new URL(`/.well-known/oauth-authorization-server${path}`, issuer),
    new URL(`/.well-known/openid-configuration${path}`, issuer),
    new URL(`${path}/.well-known/openid-configuration`, issuer),
  ];
}

function httpUrl(v: unknown): URL | null {
  if (typeof v !== 'string') return null;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
  } catch {
    return null;
  }
}

export type ResourceMetadata = { resource: string | null; authorizationServer: URL | null };

/** The parts of protected-resource metadata the sidecar uses; null: not metadata. */
export function readResourceMetadata(doc: unknown): ResourceMetadata | null {
  if (typeof doc !== 'object' || doc === null) return null;
  const d = doc as Record<string, unknown>;
  const servers = Array.isArray(d['authorization_servers']) ? d['authorization_servers'] : [];
  return { resource: typeof d['resource'] === 'string' ? d['resource'] : null, authorizationServer: httpUrl(servers[0]) };
}

export type AuthServerMetadata = { issuer: string | null; tokenEndpoint: URL | null };

/** The parts of authorization-server metadata the sidecar uses; null: not metadata. */
export function readAuthServerMetadata(doc: unknown): AuthServerMetadata | null {
  if (typeof doc !== 'object' || doc === null) return null;
  const d = doc as Record<string, unknown>;
  return { issuer: typeof d['issuer'] === 'string' ? d['issuer'] : null, tokenEndpoint: httpUrl(d['token_endpoint']) };
}

/** RFC 8414 §3.3: metadata is for the issuer it was fetched for, else it is not used (a trailing slash aside). */
export function issuerMatches(issuer: string | null, fetchedFor: URL): boolean {
  const strip = (s: string) => s.replace(/\/$/, '');
  return issuer !== null && strip(issuer) === strip(fetchedFor.href);
}

/**
 * Whether discovery may follow `url` (an authorization server, a token endpoint that gets the
 * client's secret): https, or one of the origins the operator named (the source's own, auth.issuer).
 * Anything else (plain http elsewhere, a metadata address) could hand the secret to whoever wrote
 * the metadata, or to whoever is on the plain-http path.
 */
export function mayFollow(url: URL, trustedOrigins: readonly string[]): boolean {
  return url.protocol === 'https:' || trustedOrigins.includes(url.origin);
}

/**
 * Whether protected-resource metadata may speak for the source (RFC 9728 §3.3: its `resource` must
 * be the URL it was asked about): the source URL, or its origin for servers that name only that.
 */
export function resourceMatches(resource: string, source: URL): boolean {
  const strip = (s: string) => s.replace(/\/$/, '');
  return strip(resource) === strip(`${source.origin}${source.pathname}`) || strip(resource) === source.origin;
}

export type TokenAnswer = { ok: true; token: string; expiresInS: number | null } | { ok: false; reason: string };

/** A token endpoint's answer (RFC 6749 §5.1, §5.2), as a token or a reason that never quotes one. */
export function readTokenResponse(status: number, doc: unknown): TokenAnswer {
  const d = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  if (status !== 200) {
    const err = typeof d['error'] === 'string' ? `: ${d['error'].slice(0, 64)}` : '';
    return { ok: false, reason: `the token endpoint answered ${status}${err}` };
  }
  const token = d['access_token'];
  if (typeof token !== 'string' || token === '' || !/^[\x21-\x7e]+$/.test(token))
    return { ok: false, reason: 'the token endpoint answered without a usable access_token' };
  const type = d['token_type'];
  if (typeof type !== 'string' || type.toLowerCase() !== 'bearer')
    return { ok: false, reason: `the token endpoint issued a token of type ${JSON.stringify(type).slice(0, 32)}, not Bearer` };
  const e = d['expires_in'];
  return { ok: true, token, expiresInS: typeof e === 'number' && e > 0 ? e : null };
}

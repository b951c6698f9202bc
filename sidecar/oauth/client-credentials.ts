// Custody of a source's OAuth client (auth mode clientCredentials): the sidecar discovers the token
// endpoint, asks for a token with the client's credentials (RFC 6749 §4.4) for the source
// (RFC 8707 `resource`), keeps it (token-cache.ts) and adds it to the source's upstream requests.
// The agent never sees the secret or the token; neither is ever logged or put in an error.
import type { SecretValue } from '../../api/config.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { BodyError, readBodyText } from '../../lib/read-body.js';
import type { CompiledSource } from '../snapshot.js';
import type { CompiledAuth } from './compile.js';
import {
  authServerMetadataUrls,
  protectedResourceUrls,
  readResourceMetadata,
  issuerMatches,
  mayFollow,
  readAuthServerMetadata,
  readTokenResponse,
  resourceMatches,
  type TokenAnswer,
} from './discovery.js';
import { createTokenCache, type TokenResult } from './token-cache.js';

/** How the sidecar reads a SecretValue (sidecar/credentials/: the custody store's get). */
export type ResolveSecret = (ref: SecretValue) => { ok: true; value: string } | { ok: false; reason: string };

/** Discovery and token requests: each bounded in time and size. */
export const OAUTH_REQUEST_TIMEOUT_MS = 10_000;
export const MAX_METADATA_BYTES = 256 * 1024;

type ClientCredentials = Extract<CompiledAuth, { mode: 'clientCredentials' }>;

export interface SourceTokens {
  /** The bearer token for a source in mode clientCredentials. */
  token(source: CompiledSource & { auth: ClientCredentials }): Promise<TokenResult>;
  /** The upstream answered 401 to `token`: it is not used again. */
  rejected(source: CompiledSource & { auth: ClientCredentials }, token: string): void;
  /** After a reload: forget tokens and discoveries of settings no source has any more. */
  retain(sources: Iterable<CompiledSource>): void;
}

export function usesClientCredentials(s: CompiledSource): s is CompiledSource & { auth: ClientCredentials } {
  return s.auth?.mode === 'clientCredentials';
}

async function fetchJson(fetchFn: typeof fetch, url: URL, init: RequestInit = {}): Promise<{ status: number; doc: unknown }> {
  // redirect: 'error': a metadata or token URL that redirects would send the credentials elsewhere.
  const r = await fetchFn(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(OAUTH_REQUEST_TIMEOUT_MS) });
  let text: string;
  try {
    // Streamed with the bound: a chunked answer (no Content-Length) is stopped at the limit too.
    text = r.body
      ? await readBodyText(r.body, { limitBytes: MAX_METADATA_BYTES, declaredLength: r.headers.get('content-length') ?? undefined, what: url.origin })
      : '';
  } catch (err) {
    if (err instanceof BodyError) return { status: r.status, doc: null };
    throw err;
  }
  try {
    return { status: r.status, doc: JSON.parse(text) as unknown };
  } catch {
    return { status: r.status, doc: null };
  }
}

type Discovered = { tokenUrl: URL; resource: string };

/**
 * The token endpoint and resource indicator for a source: as configured, else from its
 * protected-resource metadata (RFC 9728) and its authorization server's metadata (RFC 8414); a
 * server without protected-resource metadata is its own authorization server (MCP 2025-03-26).
 * What the metadata names is followed only where the secret may go (discovery.ts, mayFollow);
 * auth.tokenUrl and auth.issuer are the operator's and trusted as written.
 */
export async function discover(source: CompiledSource, auth: ClientCredentials, fetchFn: typeof fetch): Promise<Discovered | { error: string }> {
  let resource = auth.resource;
  let named: URL | null = null;
  if (auth.tokenUrl === null || resource === null) {
    for (const u of protectedResourceUrls(source.url)) {
      const r = await fetchJson(fetchFn, u).catch(() => null);
      const m = r && r.status === 200 ? readResourceMetadata(r.doc) : null;
      if (!m) continue;
      if (m.resource !== null && !resourceMatches(m.resource, source.url))
        return { error: `the protected-resource metadata at ${u.href} is for another resource` };
      resource ??= m.resource;
      named = m.authorizationServer;
      break;
    }
  }
  resource ??= source.url.href;
  if (auth.tokenUrl !== null) return { tokenUrl: auth.tokenUrl, resource };
  const trusted = [source.url.origin, ...(auth.issuer ? [auth.issuer.origin] : [])];
  const as = auth.issuer ?? named ?? new URL(source.url.origin);
  const untrusted = (what: string, u: URL) =>
    `refused ${what} ${u.origin}: not https, nor the source's origin or auth.issuer (set auth.issuer or auth.tokenUrl to trust it)`;
  if (!mayFollow(as, trusted)) return { error: untrusted('the authorization server', as) };
  for (const u of authServerMetadataUrls(as)) {
    const r = await fetchJson(fetchFn, u).catch(() => null);
    const m = r && r.status === 200 ? readAuthServerMetadata(r.doc) : null;
    if (!m?.tokenEndpoint) continue;
    if (!issuerMatches(m.issuer, as)) return { error: `the authorization-server metadata at ${u.href} is not for the issuer ${as.href} (RFC 8414 §3.3)` };
    if (!mayFollow(m.tokenEndpoint, trusted)) return { error: untrusted('the token endpoint', m.tokenEndpoint) };
    return { tokenUrl: m.tokenEndpoint, resource };
  }
  if (named === null && auth.issuer === null) return { tokenUrl: new URL('/token', source.url.origin), resource }; // 2025-03-26 default endpoint
  return { error: `no token endpoint found in the metadata of ${as.href}; set auth.tokenUrl` };
}

export interface SourceTokensDeps {
  secret: ResolveSecret;
  clock: Clock;
  log: Logger;
  fetchFn?: typeof fetch;
}

export function createSourceTokens(deps: SourceTokensDeps): SourceTokens {
  const cache = createTokenCache(deps.clock);
  const fetchFn = deps.fetchFn ?? fetch;
  const discovered = new Map<string, Discovered>();

  async function fetchToken(source: CompiledSource, auth: ClientCredentials): Promise<TokenAnswer> {
    const secret = deps.secret(auth.clientSecret);
    if (!secret.ok) return { ok: false, reason: `the client secret: ${secret.reason}` };
    let d = discovered.get(auth.key);
    if (!d) {
      const r = await discover(source, auth, fetchFn);
      if ('error' in r) return { ok: false, reason: r.error };
      d = r;
      discovered.set(auth.key, d);
    }
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: d.resource });
    if (auth.scope !== null) body.set('scope', auth.scope);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (auth.tokenEndpointAuth === 'client_secret_basic') {
      // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
      const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
      headers['authorization'] = `Basic ${Buffer.from(`${enc(auth.clientId)}:${enc(secret.value)}`).toString('base64')}`;
    } else {
      body.set('client_id', auth.clientId);
      body.set('client_secret', secret.value);
    }
    let r: { status: number; doc: unknown };
    try {
      r = await fetchJson(fetchFn, d.tokenUrl, { method: 'POST', headers, body: body.toString() });
    } catch {
      discovered.delete(auth.key); // the endpoint may have moved: discover again next time
      return { ok: false, reason: `could not reach the token endpoint ${d.tokenUrl.origin}` };
    }
    const a = readTokenResponse(r.status, r.doc);
    if (!a.ok) discovered.delete(auth.key);
    return a;
  }

  return {
    async token(source) {
      const r = await cache.get(source.auth.key, () => fetchToken(source, source.auth));
      if (!r.ok) deps.log.warn('no OAuth token for a source', { source: source.name, reason: r.reason });
      return r;
    },
    rejected(source, token) {
      deps.log.info('the upstream rejected the OAuth token; getting a new one', { source: source.name });
      cache.reject(source.auth.key, token);
    },
    retain(sources) {
      const keys = new Set<string>();
      for (const s of sources) if (usesClientCredentials(s)) keys.add(s.auth.key);
      cache.retain(keys);
      for (const k of discovered.keys()) if (!keys.has(k)) discovered.delete(k);
    },
  };
}

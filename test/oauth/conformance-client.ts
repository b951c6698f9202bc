// The MCP client for the conformance suite's client auth scenarios (conformance-command.ts runs it):
// an ordinary SDK client doing OAuth itself: discovery, registration, an authorization code fetched
// headlessly (the suite's authorization server redirects at once), client credentials. With a proxy,
// every request it makes goes through it (the sidecar's forward proxy), as an agent's would; with
// `noAuth` it sends no credentials at all (custody: the sidecar adds them).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, extractWWWAuthenticateParams, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import net from 'node:net';
import { Agent, type Dispatcher, ProxyAgent } from 'undici';

const REDIRECT_URL = 'http://localhost:3000/callback';
/** The suite's authorization servers that support CIMD accept any https client_id URL. */
const CLIENT_METADATA_URL = 'https://conformance-test.local/client-metadata.json';

let dispatcher: Dispatcher | undefined;
// The global fetch (the SDK checks `instanceof Response`), with undici's non-standard `dispatcher`.
const baseFetch: FetchLike = (url, init) => fetch(url, { ...init, ...(dispatcher ? { dispatcher } : {}) } as RequestInit);

/** Authorization code grant without a browser: the authorize URL is fetched and its redirect read. */
class HeadlessProvider implements OAuthClientProvider {
  private info: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier: string | undefined;
  code: string | undefined;
  constructor(
    readonly clientMetadata: OAuthClientMetadata,
    readonly clientMetadataUrl?: string,
  ) {}
  get redirectUrl(): string {
    return REDIRECT_URL;
  }
  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens(): OAuthTokens | undefined {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    if (!this.verifier) throw new Error('no code verifier');
    return this.verifier;
  }
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
    if (scope === 'all' || scope === 'client') this.info = undefined;
  }
  async redirectToAuthorization(url: URL): Promise<void> {
    const r = await baseFetch(url.toString(), { redirect: 'manual' });
    const location = r.headers.get('location');
    const code = location ? new URL(location).searchParams.get('code') : null;
    if (!code) throw new Error(`authorization did not redirect with a code (status ${r.status})`);
    this.code = code;
  }
}

/**
 * Fetch with OAuth: the bearer token on every request; a 401 (or a 403 insufficient_scope) runs the
 * SDK's auth() (discovery, registration, code or client credentials) and retries, a bounded number of times.
 */
function withOAuth(provider: OAuthClientProvider & { code?: string | undefined }, serverUrl: URL): FetchLike {
  let attempts = 0;
  return async (input, init) => {
    for (;;) {
      const headers = new Headers(init?.headers);
      const tokens = await provider.tokens();
      if (tokens) headers.set('authorization', `Bearer ${tokens.access_token}`);
      const res = await baseFetch(input, { ...init, headers });
      const params = res.status === 401 || res.status === 403 ? extractWWWAuthenticateParams(res) : null;
      if (!params || (res.status === 403 && params.error !== 'insufficient_scope')) return res;
      if (++attempts > 3) throw new Error(`still ${res.status} after ${attempts - 1} authorizations`);
      await res.body?.cancel();
      const opts = {
        serverUrl,
        fetchFn: baseFetch,
        ...(params.resourceMetadataUrl ? { resourceMetadataUrl: params.resourceMetadataUrl } : {}),
        ...(params.scope ? { scope: params.scope } : {}),
      };
      let result = await auth(provider, opts);
      if (result === 'REDIRECT') {
        const authorizationCode = provider.code;
        if (!authorizationCode) throw new Error('no authorization code');
        provider.code = undefined;
        result = await auth(provider, { ...opts, authorizationCode });
      }
      if (result !== 'AUTHORIZED') throw new Error(`authorization ended with ${result}`);
    }
  };
}

/** The scenario's credentials (MCP_CONFORMANCE_CONTEXT), if any. */
export function scenarioContext(): Record<string, string> {
  const raw = process.env['MCP_CONFORMANCE_CONTEXT'];
  return raw ? (JSON.parse(raw) as Record<string, string>) : {};
}

function providerFor(scenario: string): OAuthClientProvider & { code?: string | undefined } {
  const ctx = scenarioContext();
  if (scenario === 'auth/client-credentials-basic') return new ClientCredentialsProvider({ clientId: ctx['client_id']!, clientSecret: ctx['client_secret']! });
  if (scenario === 'auth/client-credentials-jwt')
    return new PrivateKeyJwtProvider({ clientId: ctx['client_id']!, privateKey: ctx['private_key_pem']!, algorithm: ctx['signing_algorithm'] ?? 'ES256' });
  const metadata = { client_name: 'thoughtgate-conformance', redirect_uris: [REDIRECT_URL], grant_types: ['authorization_code', 'refresh_token'] };
  const p = new HeadlessProvider(metadata, scenario === 'auth/basic-cimd' ? CLIENT_METADATA_URL : undefined);
  if (scenario === 'auth/pre-registration')
    p.saveClientInformation({ client_id: ctx['client_id']!, client_secret: ctx['client_secret']!, redirect_uris: [REDIRECT_URL] });
  return p;
}

/**
 * What a captured pod's REDIRECT does to the agent's plain-HTTP connections: whatever address the
 * client dials, the connection reaches the sidecar's transparent listener (the request keeps its Host).
 */
function captured(port: number): Dispatcher {
  return new Agent({
    connect: (_opts, cb) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => cb(null, s));
      s.once('error', (e) => cb(e, null));
    },
  });
}

/**
 * Connects, lists tools and calls the scenario's tool. `proxy`: an HTTP proxy for every request,
 * absolute-form (the sidecar governs plain-HTTP MCP it can read; a CONNECT tunnel to a source is refused).
 */
export async function runClient(url: URL, scenario: string, opts: { proxy?: string; capturedTo?: number; noAuth?: boolean } = {}): Promise<void> {
  dispatcher = opts.proxy ? new ProxyAgent({ uri: opts.proxy, proxyTunnel: false }) : opts.capturedTo !== undefined ? captured(opts.capturedTo) : undefined;
  const transport = new StreamableHTTPClientTransport(url, { fetch: opts.noAuth ? baseFetch : withOAuth(providerFor(scenario), url) });
  const client = new Client({ name: 'thoughtgate-conformance', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  // The authorization-code scenarios check a call (step-up asks for more scope on it); others have no tool.
  if (tools.some((t) => t.name === 'test-tool')) await client.callTool({ name: 'test-tool', arguments: {} });
  await transport.close();
}

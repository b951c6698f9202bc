// A source's `auth` compiled once per snapshot: what the forward proxy relays (passthrough) and what
// the token client needs (clientCredentials). Pure.
import type { SecretValue, SourceAuth } from '../../api/config.js';

export type CompiledAuth =
  | { mode: 'passthrough'; relayPaths: ReadonlySet<string> }
  | {
      mode: 'clientCredentials';
      /** Identity of the token cache entry: the same settings after a reload keep their token. */
      key: string;
      clientId: string;
      clientSecret: SecretValue;
      /** null: discovered from the source (RFC 9728, then RFC 8414). Trusted as written. */
      tokenUrl: URL | null;
      /** The authorization server the operator trusts for the source (any scheme); null: as the source's metadata names, https only. */
      issuer: URL | null;
      tokenEndpointAuth: 'client_secret_basic' | 'client_secret_post';
      scope: string | null;
      /** null: the protected-resource metadata's `resource`, else the source URL. */
      resource: string | null;
    };

export function compileAuth(sourceUrl: URL, auth: SourceAuth | undefined): CompiledAuth | null {
  if (!auth) return null;
  if (auth.mode === 'passthrough') return { mode: 'passthrough', relayPaths: new Set(auth.relayPaths ?? []) };
  // The schema guarantees both for this mode.
  const clientId = auth.clientId!;
  const clientSecret = auth.clientSecret!;
  const c = {
    clientId,
    clientSecret,
    tokenUrl: auth.tokenUrl ?? null,
    issuer: auth.issuer ?? null,
    tokenEndpointAuth: auth.tokenEndpointAuth ?? 'client_secret_basic',
    scope: auth.scope ?? null,
    resource: auth.resource ?? null,
  };
  return {
    mode: 'clientCredentials',
    key: JSON.stringify({ source: sourceUrl.href, ...c }),
    ...c,
    tokenUrl: c.tokenUrl === null ? null : new URL(c.tokenUrl),
    issuer: c.issuer === null ? null : new URL(c.issuer),
  };
}

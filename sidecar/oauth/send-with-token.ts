// The one place a source's upstream request gets the sidecar's OAuth token (auth mode
// clientCredentials): the source's configured headers plus `Authorization: Bearer`, which wins over
// the agent's. A 401 to that token is retried once with a new one (revoked, or expired early).
import type { CompiledSource } from '../snapshot.js';
import { usesClientCredentials, type SourceTokens } from './client-credentials.js';

export type SentWithToken<R> = { ok: true; response: R } | { ok: false; kind: 'token' };

/**
 * `configured`: the source's headers as resolved now (sidecar/credentials/headers.ts). `send` is
 * called with the headers to add (once, or twice after a 401); what it throws propagates.
 */
export async function sendWithToken<R extends { statusCode: number; body: { resume(): unknown } }>(
  tokens: SourceTokens | undefined,
  source: CompiledSource,
  configured: Record<string, string>,
  send: (extra: Record<string, string>) => Promise<R>,
): Promise<SentWithToken<R>> {
  if (!tokens || !usesClientCredentials(source)) return { ok: true, response: await send(configured) };
  for (let attempt = 1; ; attempt++) {
    const t = await tokens.token(source);
    if (!t.ok) return { ok: false, kind: 'token' };
    const response = await send({ ...configured, authorization: `Bearer ${t.token}` });
    if (response.statusCode !== 401 || attempt > 1) return { ok: true, response };
    response.body.resume(); // drained: the connection goes back to the pool
    tokens.rejected(source, t.token);
  }
}

// Upstream connections: one undici Pool per origin and connect timeout, kept alive, shared by
// every snapshot that names that origin, and closed gracefully when no snapshot does any more.
import type { Dispatcher, Pool } from 'undici';
import apiRequest from 'undici/lib/api/api-request.js';
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { upstreamRequestHeaders } from './headers.js';
import { warmConnector, type WarmConnector } from './warm-connect.js';
import type { SourceTokens } from '../oauth/client-credentials.js';
import { sendWithToken } from '../oauth/send-with-token.js';

/**
 * 'credential': the source's credential is missing or invalid, so nothing was sent; 'token': the
 * sidecar could not get the OAuth token it sends for the source (auth mode clientCredentials).
 */
export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'aborted' | 'credential' | 'token' | 'other';

/** Egress destinations kept pooled at once; past it the oldest pool is closed (its requests finish). */
export const MAX_EGRESS_POOLS = 128;

export class UpstreamPools {
  private pools = new Map<string, Pool>();
  private egressCount = 0;
  private warm = new Map<string, WarmConnector>();

  /** onConnect: each new upstream connection of a source pool, and whether a spare served it. */
  constructor(
    private readonly metrics?: { egressPools: { set(n: number): void } },
    private readonly onConnect?: (spare: boolean) => void,
  ) {}

  private key(origin: string, connectTimeoutMs: number): string {
    return `${origin}|${connectTimeoutMs}`;
  }

  get(origin: string, connectTimeoutMs: number): Pool {
    const k = this.key(origin, connectTimeoutMs);
    let p = this.pools.get(k);
    if (!p) {
      const warm = warmConnector(connectTimeoutMs, this.onConnect);
      this.warm.set(k, warm);
      p = new PoolImpl(origin, {
        connections: 256,
        connect: warm.connect,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        // Streams (SSE, long tool calls) may be idle for minutes; the agent's disconnect ends them.
        bodyTimeout: 0,
        pipelining: 1,
      });
      this.pools.set(k, p);
    }
    return p;
  }

  forSource(s: CompiledSource): Pool {
    return this.get(s.origin, s.connectTimeoutMs);
  }

  /** After a reload: close pools that the new snapshot no longer uses (in-flight requests finish). */
  retain(snapshot: Snapshot): void {
    const keep = new Set([...snapshot.sources.values()].map((s) => this.key(s.origin, s.connectTimeoutMs)));
    for (const [k, p] of this.pools) {
      if (keep.has(k) || k.startsWith('egress:')) continue;
      this.pools.delete(k);
      this.warm.get(k)?.dispose();
      this.warm.delete(k);
      void p.close().catch(() => undefined);
    }
  }

  /** Pools for forward-proxy destinations that are not sources. */
  egress(origin: string): Pool {
    const k = `egress:${origin}`;
    let p = this.pools.get(k);
    if (!p) {
      if (this.egressCount >= MAX_EGRESS_POOLS) {
        const oldest = [...this.pools.keys()].find((key) => key.startsWith('egress:'))!;
        void this.pools
          .get(oldest)!
          .close()
          .catch(() => undefined);
        this.pools.delete(oldest);
        this.egressCount--;
      }
      p = new PoolImpl(origin, { connections: 64, connectTimeout: 10_000, keepAliveTimeout: 10_000, bodyTimeout: 0 });
      this.pools.set(k, p);
      this.egressCount++;
      this.metrics?.egressPools.set(this.egressCount);
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.egressCount = 0;
    for (const w of this.warm.values()) w.dispose();
    this.warm.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
  }
}

export function classifyUpstreamError(err: unknown): UpstreamErrorKind {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH'
  )
    return 'connect';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') return 'reset';
  if (code === 'UND_ERR_ABORTED' || (err as Error | null)?.name === 'AbortError') return 'aborted';
  return 'other';
}

/** A short, non-leaking sentence for the agent (no addresses, no stack). */
export function describeUpstreamError(kind: UpstreamErrorKind, source: string): string {
  switch (kind) {
    case 'connect':
      return `could not connect to upstream "${source}"`;
    case 'timeout':
      return `upstream "${source}" did not answer in time`;
    case 'reset':
      return `connection to upstream "${source}" was reset`;
    case 'aborted':
      return `request to upstream "${source}" was aborted`;
    case 'credential':
      return `the credential for upstream "${source}" is unavailable; nothing was sent (the sidecar's /ready names it)`;
    case 'token':
      return `the sidecar could not get an OAuth token for upstream "${source}"; nothing was sent (the sidecar's log says why)`;
    default:
      return `request to upstream "${source}" failed`;
  }
}

export type UpstreamResponse = Dispatcher.ResponseData;

/** undici's request() on a pool (see types/undici-pool.d.ts for why it is not a method call). */
export function poolRequest(pool: Pool, opts: Dispatcher.RequestOptions): Promise<UpstreamResponse> {
  return apiRequest.call(pool, opts);
}

export type UpstreamResult = { ok: true; response: UpstreamResponse } | { ok: false; kind: UpstreamErrorKind };

/**
 * Requests ThoughtGate sends upstream on its own (an approved call that runs after its request was
 * answered, a page of a merged tasks/list): what gate 4 is given of the proxy's upstream side.
 */
export interface UpstreamClient {
  /** POST `body` to the source with these client headers (the source's configured headers still win). */
  post(source: CompiledSource, client: Record<string, string>, body: string, signal?: AbortSignal, headersTimeoutMs?: number): Promise<UpstreamResult>;
}

export function createUpstreamClient(pools: UpstreamPools, tokens?: SourceTokens): UpstreamClient {
  return {
    async post(source, client, body, signal, headersTimeoutMs = source.responseTimeoutMs) {
      const configured = source.headers();
      if (!configured.ok) return { ok: false, kind: 'credential' };
      try {
        return await sendWithToken(tokens, source, configured.headers, (extra) =>
          poolRequest(pools.forSource(source), {
            path: source.path,
            method: 'POST',
            headers: upstreamRequestHeaders(
              { ...client, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
              { extra, identityEncoding: true },
            ),
            body,
            ...(signal ? { signal } : {}),
            headersTimeout: headersTimeoutMs,
            bodyTimeout: 0,
          }),
        );
      } catch (err) {
        return { ok: false, kind: classifyUpstreamError(err) };
      }
    },
  };
}

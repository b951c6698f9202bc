// Access tokens per key (a source's auth settings): one request at a time per key (single-flight),
// renewed before they expire while the current one keeps serving, dropped when the upstream
// rejects them. A failed fetch is not repeated for FAILURE_BACKOFF_MS: a down authorization server
// is not hammered by every call. Tokens are never logged (nothing here logs).
import type { Clock } from '../../lib/clock.js';
import type { TokenAnswer } from './discovery.js';

/** Lifetime assumed when the token endpoint gives no expires_in (RFC 6749 §5.1 makes it optional). */
export const DEFAULT_LIFETIME_MS = 5 * 60_000;
/** Renew this long before expiry (at most a fifth of the lifetime, so short tokens are not renewed at once). */
export const REFRESH_BEFORE_MS = 60_000;
export const FAILURE_BACKOFF_MS = 1_000;

interface Entry {
  token: string | null;
  /** When the token expires, and when to start renewing it. */
  expiresAt: number;
  refreshAt: number;
  inflight: Promise<TokenAnswer> | null;
  failure: { at: number; reason: string } | null;
}

export type TokenResult = { ok: true; token: string } | { ok: false; reason: string };

export interface TokenCache {
  /** A valid token for `key`, fetched with `fetchToken` when there is none (or it is due for renewal). */
  get(key: string, fetchToken: () => Promise<TokenAnswer>): Promise<TokenResult>;
  /** The upstream rejected `token` (401): the next get fetches a new one. */
  reject(key: string, token: string): void;
  /** Forget the keys not listed (after a reload). */
  retain(keys: ReadonlySet<string>): void;
}

export function createTokenCache(clock: Clock): TokenCache {
  const entries = new Map<string, Entry>();

  function start(key: string, e: Entry, fetchToken: () => Promise<TokenAnswer>): Promise<TokenAnswer> {
    const p = fetchToken()
      .catch((err: unknown): TokenAnswer => ({ ok: false, reason: err instanceof Error ? err.message : 'token request failed' }))
      .then((a) => {
        e.inflight = null;
        const now = clock.now();
        if (a.ok) {
          const lifetime = a.expiresInS === null ? DEFAULT_LIFETIME_MS : a.expiresInS * 1000;
          e.token = a.token;
          e.expiresAt = now + lifetime;
          e.refreshAt = e.expiresAt - Math.min(REFRESH_BEFORE_MS, lifetime / 5);
          e.failure = null;
        } else e.failure = { at: now, reason: a.reason };
        if (entries.get(key) !== e) e.token = null; // forgotten meanwhile (reload)
        return a;
      });
    e.inflight = p;
    return p;
  }

  return {
    async get(key, fetchToken) {
      let e = entries.get(key);
      if (!e) {
        e = { token: null, expiresAt: 0, refreshAt: 0, inflight: null, failure: null };
        entries.set(key, e);
      }
      const now = clock.now();
      const valid = e.token !== null && now < e.expiresAt;
      const backingOff = e.failure !== null && now - e.failure.at < FAILURE_BACKOFF_MS;
      if (valid) {
        // Renew in the background: this call is served with the token it has.
        if (now >= e.refreshAt && !e.inflight && !backingOff) void start(key, e, fetchToken);
        return { ok: true, token: e.token! };
      }
      if (backingOff && !e.inflight) return { ok: false, reason: e.failure!.reason };
      const a = await (e.inflight ?? start(key, e, fetchToken));
      return a.ok ? { ok: true, token: a.token } : { ok: false, reason: a.reason };
    },
    reject(key, token) {
      const e = entries.get(key);
      if (e && e.token === token) e.token = null;
    },
    retain(keys) {
      for (const k of entries.keys()) if (!keys.has(k)) entries.delete(k);
    },
  };
}

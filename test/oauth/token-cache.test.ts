// The token cache: single-flight per key, renewal before expiry while the old token serves, a
// rejected token dropped, a failure not repeated at once.
import { createTokenCache, FAILURE_BACKOFF_MS } from '../../sidecar/oauth/token-cache.js';
import type { TokenAnswer } from '../../sidecar/oauth/discovery.js';
import { ManualClock } from '../support/manual-clock.js';

function issuer(expiresInS: number | null = 3600) {
  let n = 0;
  const calls: ((a: TokenAnswer) => void)[] = [];
  return {
    get count() {
      return n;
    },
    /** Answers at once with tok-<n>. */
    now: (): Promise<TokenAnswer> => Promise.resolve({ ok: true, token: `tok-${++n}`, expiresInS }),
    /** Answers when `release` is called. */
    held: (): Promise<TokenAnswer> => {
      n++;
      return new Promise((r) => calls.push(r));
    },
    release: (a: TokenAnswer) => calls.shift()!(a),
  };
}

test('concurrent calls share one request; the token is reused until it is due', async () => {
  const clock = new ManualClock();
  const cache = createTokenCache(clock);
  const iss = issuer();
  const all = Promise.all([cache.get('k', iss.held), cache.get('k', iss.held), cache.get('k', iss.held)]);
  iss.release({ ok: true, token: 'A', expiresInS: 3600 });
  expect(await all).toEqual([
    { ok: true, token: 'A' },
    { ok: true, token: 'A' },
    { ok: true, token: 'A' },
  ]);
  expect(iss.count).toBe(1);
  await clock.advance(3600_000 - 61_000);
  expect(await cache.get('k', iss.now)).toEqual({ ok: true, token: 'A' });
  expect(iss.count).toBe(1);
});

test('renewal starts before expiry and the current token serves meanwhile', async () => {
  const clock = new ManualClock();
  const cache = createTokenCache(clock);
  const iss = issuer();
  await cache.get('k', iss.now); // tok-1, 1 h
  await clock.advance(3600_000 - 30_000); // inside the last minute
  expect(await cache.get('k', iss.held)).toEqual({ ok: true, token: 'tok-1' });
  expect(await cache.get('k', iss.held)).toEqual({ ok: true, token: 'tok-1' }); // one renewal in flight, not two
  expect(iss.count).toBe(2);
  iss.release({ ok: true, token: 'tok-2', expiresInS: 3600 });
  await new Promise((r) => setImmediate(r));
  expect(await cache.get('k', iss.now)).toEqual({ ok: true, token: 'tok-2' });
});

test('a short-lived token is renewed in its last fifth, and an expired one is waited for', async () => {
  const clock = new ManualClock();
  const cache = createTokenCache(clock);
  const iss = issuer(10);
  await cache.get('k', iss.now);
  await clock.advance(7_000);
  await cache.get('k', iss.now);
  expect(iss.count).toBe(1);
  await clock.advance(1_500); // 8.5 s of 10: renew
  await cache.get('k', iss.now);
  expect(iss.count).toBe(2);
  await clock.advance(60_000);
  expect(await cache.get('k', iss.now)).toEqual({ ok: true, token: 'tok-3' });
});

test('a rejected token is not used again; a stale rejection does not drop the new one', async () => {
  const clock = new ManualClock();
  const cache = createTokenCache(clock);
  const iss = issuer();
  await cache.get('k', iss.now);
  cache.reject('k', 'tok-1');
  expect(await cache.get('k', iss.now)).toEqual({ ok: true, token: 'tok-2' });
  cache.reject('k', 'tok-1');
  expect(await cache.get('k', iss.now)).toEqual({ ok: true, token: 'tok-2' });
});

test('a failure is answered from memory for a moment, then tried again; keys are separate', async () => {
  const clock = new ManualClock();
  const cache = createTokenCache(clock);
  let n = 0;
  const failing = (): Promise<TokenAnswer> => {
    n++;
    return Promise.resolve({ ok: false, reason: 'the token endpoint answered 401: invalid_client' });
  };
  expect(await cache.get('k', failing)).toEqual({ ok: false, reason: 'the token endpoint answered 401: invalid_client' });
  expect(await cache.get('k', failing)).toMatchObject({ ok: false });
  expect(n).toBe(1);
  const thrown = (): Promise<TokenAnswer> => Promise.reject(new Error('connect ECONNREFUSED'));
  expect(await cache.get('other', thrown)).toEqual({ ok: false, reason: 'connect ECONNREFUSED' });
  await clock.advance(FAILURE_BACKOFF_MS);
  expect(await cache.get('k', issuer().now)).toEqual({ ok: true, token: 'tok-1' });
});

test('retain forgets keys no source has any more', async () => {
  const clock = new ManualClock();
  const cache = createTokenCache(clock);
  const iss = issuer();
  await cache.get('a', iss.now);
  await cache.get('b', iss.now);
  cache.retain(new Set(['b']));
  expect(await cache.get('a', iss.now)).toEqual({ ok: true, token: 'tok-3' });
  expect(await cache.get('b', iss.now)).toEqual({ ok: true, token: 'tok-2' });
});

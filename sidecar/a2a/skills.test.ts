import { expect, test } from '@jest/globals';
import { BUSY_RETRY_MS, CardSkills, MAX_SKILLS, REFRESH_MS, RETRY_MS, skillIdsOf } from './skills.js';

const counting = (ids: string[] | 'failed' | 'busy' | Error) => {
  const f = Object.assign(
    async () => {
      f.calls++;
      await new Promise((r) => setTimeout(r, 5));
      if (ids instanceof Error) throw ids;
      return ids;
    },
    { calls: 0 },
  );
  return f;
};

test('a stale list is read again before any skill is judged, whatever the skill; at most once per REFRESH_MS per compiled source', async () => {
  let now = 1_000_000;
  const k = new CardSkills(() => now);
  const a = { name: 'a' };
  const fetch = counting(['echo', 'hidden']);
  // Never read: the first call reads it, known or not.
  expect(await k.known(a, 'nope', fetch)).toBe(false);
  expect(fetch.calls).toBe(1);
  expect(await k.known(a, 'hidden', fetch)).toBe(true);
  expect(await k.known(a, 'nope', fetch)).toBe(false);
  expect(fetch.calls).toBe(1);
  now += REFRESH_MS - 1;
  expect(await k.known(a, 'nope', fetch)).toBe(false);
  expect(fetch.calls).toBe(1);
  now += 1;
  // Stale: the next call reads it again, a known skill as much as an unknown one.
  expect(await k.known(a, 'echo', fetch)).toBe(true);
  expect(fetch.calls).toBe(2);
  // A reload compiles new sources: nothing carries over.
  expect(k.has({ name: 'a' }, 'echo')).toBe(false);
});

test('concurrent callers share one refresh', async () => {
  const k = new CardSkills();
  const a = {};
  const fetch = counting(['echo']);
  const all = await Promise.all(['echo', 'x', 'echo', 'y', 'echo'].map((s) => k.known(a, s, fetch)));
  expect(all).toEqual([true, false, true, false, true]);
  expect(fetch.calls).toBe(1);
});

test('a failed read keeps the list and is retried after RETRY_MS; a fresh source with no list fails closed', async () => {
  let now = 0;
  const k = new CardSkills(() => now);
  const a = {};
  for (const failing of [counting(new Error('boom')), counting('failed')]) {
    const b = {};
    expect(await k.known(b, 'echo', failing)).toBe(false);
    expect(await k.known(b, 'echo', failing)).toBe(false);
    expect(failing.calls).toBe(1);
  }
  expect(await k.known(a, 'echo', counting(['echo']))).toBe(true);
  now += REFRESH_MS;
  const failing = counting('failed');
  // The agent errs: the list it had still judges, and the next read is RETRY_MS away, not REFRESH_MS.
  expect(await k.known(a, 'echo', failing)).toBe(true);
  now += RETRY_MS - 1;
  expect(await k.known(a, 'echo', failing)).toBe(true);
  expect(failing.calls).toBe(1);
  now += 1;
  const ok = counting(['echo', 'new']);
  expect(await k.known(a, 'new', ok)).toBe(true);
  expect(ok.calls).toBe(1);
});

test('a read the byte budget refused does not count as a refresh: read again after BUSY_RETRY_MS, not at every call', async () => {
  let now = 0;
  const k = new CardSkills(() => now);
  const a = {};
  const busy = counting('busy');
  expect(await k.known(a, 'echo', busy)).toBe(false);
  // While the budget is full (another client can fill it), calls do not each cost a card read.
  expect(await k.known(a, 'echo', busy)).toBe(false);
  expect(busy.calls).toBe(1);
  now += BUSY_RETRY_MS;
  const ok = counting(['echo']);
  expect(await k.known(a, 'echo', ok)).toBe(true);
  expect(await k.known(a, 'echo', ok)).toBe(true);
  expect([busy.calls, ok.calls]).toEqual([1, 1]);
});

test('every caller waiting awaits the one read in flight, whoever started it', async () => {
  const k = new CardSkills();
  const a = {};
  const fetch = counting(['echo']);
  const all = await Promise.all([k.known(a, 'x', fetch), k.known(a, 'x', counting('failed')), k.known(a, 'echo', counting('failed'))]);
  expect(all).toEqual([false, false, true]);
  expect(fetch.calls).toBe(1);
});

test('cards served to clients add their skills; bounded per source', () => {
  const k = new CardSkills();
  const a = {};
  k.seen(a, ['echo']);
  expect(k.has(a, 'echo')).toBe(true);
  const b = {};
  k.seen(
    b,
    Array.from({ length: MAX_SKILLS + 10 }, (_, i) => `s${i}`),
  );
  expect(k.has(b, `s${MAX_SKILLS - 1}`)).toBe(true);
  expect(k.has(b, `s${MAX_SKILLS}`)).toBe(false);
});

test('skillIdsOf reads string ids only', () => {
  expect(skillIdsOf({ skills: [{ id: 'a' }, { id: 1 }, null, 'b', { id: 'c' }] })).toEqual(['a', 'c']);
  expect(skillIdsOf({ skills: {} })).toEqual([]);
  expect(skillIdsOf(null)).toEqual([]);
});

import { expect, test } from '@jest/globals';
import { CardSkills, MAX_SKILLS, REFRESH_MS, skillIdsOf } from './skills.js';

const counting = (ids: string[] | 'abandoned' | Error) => {
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

test('a failed read counts as a refresh; one its caller abandoned does not, and a waiter tries once more', async () => {
  let now = 0;
  const k = new CardSkills(() => now);
  const a = {};
  const failing = counting(new Error('boom'));
  expect(await k.known(a, 'echo', failing)).toBe(false);
  expect(await k.known(a, 'echo', failing)).toBe(false);
  expect(failing.calls).toBe(1);
  now += REFRESH_MS;
  const abandoned = counting('abandoned');
  expect(await k.known(a, 'echo', abandoned)).toBe(false);
  expect(abandoned.calls).toBe(2); // bounded: two attempts per caller
  const ok = counting(['echo']);
  expect(await k.known(a, 'echo', ok)).toBe(true);
  expect(ok.calls).toBe(1);
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

import { expect, test } from '@jest/globals';
import { CardSkills, MAX_SKILLS, REFRESH_MS, skillIdsOf } from './skills.js';

test('skills seen in cards are known per compiled source; the public card is refetched at most once per REFRESH_MS', () => {
  let now = 1_000_000;
  const k = new CardSkills(() => now);
  const a = { name: 'a' };
  const aAfterReload = { name: 'a' };
  expect(k.has(a, 'echo')).toBe(false);
  expect(k.mayRefresh(a)).toBe(true);
  k.seen(a, ['echo']); // a card served to a client: no refresh time
  expect(k.has(a, 'echo')).toBe(true);
  expect(k.mayRefresh(a)).toBe(true);
  k.seen(a, ['admin'], true);
  expect(k.has(a, 'admin') && k.has(a, 'echo')).toBe(true);
  expect(k.mayRefresh(a)).toBe(false);
  now += REFRESH_MS - 1;
  expect(k.mayRefresh(a)).toBe(false);
  now += 1;
  expect(k.mayRefresh(a)).toBe(true);
  // A reload compiles new sources: nothing carries over.
  expect(k.has(aAfterReload, 'echo')).toBe(false);
});

test('bounded per source', () => {
  const k = new CardSkills();
  const a = {};
  k.seen(
    a,
    Array.from({ length: MAX_SKILLS + 10 }, (_, i) => `s${i}`),
  );
  expect(k.has(a, `s${MAX_SKILLS - 1}`)).toBe(true);
  expect(k.has(a, `s${MAX_SKILLS}`)).toBe(false);
});

test('skillIdsOf reads string ids only', () => {
  expect(skillIdsOf({ skills: [{ id: 'a' }, { id: 1 }, null, 'b', { id: 'c' }] })).toEqual(['a', 'c']);
  expect(skillIdsOf({ skills: {} })).toEqual([]);
  expect(skillIdsOf(null)).toEqual([]);
});

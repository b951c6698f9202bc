import { describe, expect, test } from '@jest/globals';
import { Backoff, backoffCeiling, backoffDelay } from './backoff.js';

const P = { baseMs: 250, maxMs: 30_000 };

describe('backoffCeiling', () => {
  test('grows by the factor from base up to max', () => {
    expect([0, 1, 2, 3, 7, 8, 20].map((n) => backoffCeiling(n, P))).toEqual([250, 500, 1000, 2000, 30_000, 30_000, 30_000]);
    expect([0, 1, 2, 3].map((n) => backoffCeiling(n, { baseMs: 2000, maxMs: 30_000, factor: 1.5 }))).toEqual([2000, 3000, 4500, 6750]);
  });

  test('huge attempts stay at max (no Infinity, no NaN); negative and fractional attempts count as 0 / floor', () => {
    expect(backoffCeiling(1e9, P)).toBe(30_000);
    expect(backoffCeiling(Number.MAX_SAFE_INTEGER, { baseMs: 0, maxMs: 10 })).toBe(0);
    expect(backoffCeiling(-3, P)).toBe(250);
    expect(backoffCeiling(1.9, P)).toBe(500);
  });

  test('a nonsensical policy is refused', () => {
    expect(() => backoffCeiling(0, { baseMs: -1, maxMs: 10 })).toThrow(RangeError);
    expect(() => backoffCeiling(0, { baseMs: 1, maxMs: 10, factor: 0.5 })).toThrow(RangeError);
    expect(() => backoffCeiling(0, { baseMs: Number.NaN, maxMs: 10 })).toThrow(RangeError);
  });
});

describe('backoffDelay: equal jitter', () => {
  test('between half the ceiling and the ceiling', () => {
    expect(backoffDelay(0, P, () => 0)).toBe(125);
    expect(backoffDelay(0, P, () => 1)).toBe(250);
    expect(backoffDelay(3, P, () => 0.5)).toBe(1500);
    expect(backoffDelay(1000, P, () => 0)).toBe(15_000);
    for (let n = 0; n < 200; n++) {
      const d = backoffDelay(n % 12, P);
      const c = backoffCeiling(n % 12, P);
      expect(d).toBeGreaterThanOrEqual(c / 2);
      expect(d).toBeLessThanOrEqual(c);
    }
  });

  test('spreads a herd: 100 clients failing together do not retry together', () => {
    const delays = new Set(Array.from({ length: 100 }, () => backoffDelay(5, P)));
    expect(delays.size).toBeGreaterThan(50);
  });
});

describe('Backoff', () => {
  test('counts attempts, resets after success', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000 }, () => 1);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    expect(b.attempts).toBe(5);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });
});

import { describe, expect, test } from '@jest/globals';
import { lazy } from './lazy.js';

describe('lazy', () => {
  test('builds on the first call, not before, and only once', () => {
    let builds = 0;
    const value = lazy(() => ({ n: ++builds }));
    expect(builds).toBe(0);
    const first = value();
    expect(builds).toBe(1);
    expect(value()).toBe(first);
    expect(builds).toBe(1);
  });

  test('a value that is falsy or undefined is built once too', () => {
    let builds = 0;
    const value = lazy(() => {
      builds++;
      return undefined;
    });
    expect(value()).toBeUndefined();
    expect(value()).toBeUndefined();
    expect(builds).toBe(1);
  });

  test('a build that throws is tried again on the next call', () => {
    let calls = 0;
    const value = lazy(() => {
      if (++calls === 1) throw new Error('first');
      return 'ok';
    });
    expect(() => value()).toThrow('first');
    expect(value()).toBe('ok');
  });
});

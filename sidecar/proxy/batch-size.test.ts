import fc from 'fast-check';
import { batchExceeds } from './batch-size.js';

describe('batchExceeds', () => {
  test('for any JSON array, in any layout, it says exactly whether there are more than max elements', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 12 }), fc.integer({ min: 1, max: 12 }), fc.constantFrom(undefined, 1, '\t'), (arr, max, indent) => {
        const text = JSON.stringify(arr, null, indent);
        expect(batchExceeds(text, max)).toBe(arr.length > max);
        expect(batchExceeds(` \r\n${text}\n`, max)).toBe(arr.length > max);
      }),
      { numRuns: 2000 },
    );
  });

  test('strings holding commas, brackets, quotes and backslashes do not count', () => {
    const arr = ['a,b', '[,]', '{,}', 'say \\"hi\\", ok', '\\', ',,,'];
    expect(batchExceeds(JSON.stringify(arr), 6)).toBe(false);
    expect(batchExceeds(JSON.stringify(arr), 5)).toBe(true);
  });

  test('objects and non-arrays are never batches', () => {
    expect(batchExceeds('{"a":[1,2,3,4]}', 1)).toBe(false);
    expect(batchExceeds('"[1,2,3]"', 1)).toBe(false);
    expect(batchExceeds('', 1)).toBe(false);
    expect(batchExceeds('[]', 1)).toBe(false);
  });

  test('it stops scanning once over the limit (the rest of a huge body is never looked at)', () => {
    expect(batchExceeds(`[1,2,3,${'x'.repeat(10)}`, 2)).toBe(true);
  });
});

import fc from 'fast-check';
import { ByteBudget } from './budget.js';

describe('ByteBudget', () => {
  test('holds never take more than the capacity together, and give back exactly what they took', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(
          fc.record({ hold: fc.integer({ min: 0, max: 3 }), op: fc.constantFrom('grow', 'resize', 'settle', 'release'), n: fc.integer({ min: 0, max: 400 }) }),
          { maxLength: 60 },
        ),
        (capacity, ops) => {
          const b = new ByteBudget(capacity);
          const holds = [b.hold('request_body'), b.hold('filtered_response', 4), b.hold('sse_event', 4), b.hold('request_body')];
          for (const o of ops) {
            const h = holds[o.hold]!;
            const before = h.bytes;
            if (o.op === 'grow') {
              const ok = h.grow(o.n);
              if (!ok) expect(h.bytes).toBe(before);
            } else if (o.op === 'resize') {
              h.resize(o.n);
            } else if (o.op === 'settle') {
              h.settle(o.n);
              expect(h.bytes).toBe(Math.min(before, o.n));
            } else {
              h.release();
              expect(h.bytes).toBe(0);
            }
            expect(b.inUse).toBe(holds.reduce((s, x) => s + x.bytes, 0));
            expect(b.inUse).toBeLessThanOrEqual(capacity);
          }
          for (const h of holds) h.release();
          expect(b.inUse).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('a hold with a charge takes that many budget bytes per byte; a refusal takes nothing', () => {
    const b = new ByteBudget(100);
    const edit = b.hold('filtered_response', 4);
    expect(edit.grow(20)).toBe(true);
    expect(b.inUse).toBe(80);
    expect(edit.grow(6)).toBe(false);
    expect(b.inUse).toBe(80);
    const body = b.hold('request_body');
    expect(body.grow(20)).toBe(true);
    expect(body.grow(1)).toBe(false);
    edit.settle(10);
    expect(body.grow(70)).toBe(true);
    expect(b.inUse).toBe(100);
  });
});

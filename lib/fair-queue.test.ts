// The nested fair queue (round-robin at every level of an owner path); FairQueue itself is tried
// in test/adversarial/approvals.test.ts with the standalone backend's posting queue.
import fc from 'fast-check';
import { NestedFairQueue } from './fair-queue.js';

const drain = <T>(q: NestedFairQueue<T>): T[] => {
  const out: T[] = [];
  for (let x = q.shift(); x !== undefined; x = q.shift()) out.push(x);
  return out;
};

describe('NestedFairQueue', () => {
  test("a pod with many sessions gets its pod's share, not one per session; a service account with many pods gets its own share", () => {
    const q = new NestedFairQueue<string>(3);
    // sa "flood": pod p1 with 3 sessions × 2 requests, pod p2 with 2 requests; sa "quiet": one.
    for (const s of ['s1', 's2', 's3']) for (const i of [1, 2]) q.push(['flood', 'p1', s], `p1-${s}-${i}`);
    q.push(['flood', 'p2', ''], 'p2-1');
    q.push(['flood', 'p2', ''], 'p2-2');
    q.push(['quiet', 'q', ''], 'quiet-1');
    expect(q.size).toBe(9);
    expect(drain(q)).toEqual(['p1-s1-1', 'quiet-1', 'p2-1', 'p1-s2-1', 'p2-2', 'p1-s3-1', 'p1-s1-2', 'p1-s2-2', 'p1-s3-2']);
    expect(q.size).toBe(0);
  });

  test("a child that ran empty remembers its turns: a pod just served comes after its service account's other pods", () => {
    const q = new NestedFairQueue<string>(2);
    q.push(['sa', 'flood'], 'f0');
    expect(q.shift()).toBe('f0');
    q.push(['sa', 'flood'], 'f1');
    q.push(['sa', 'flood'], 'f2');
    q.push(['sa', 'quiet'], 'q0');
    expect(drain(q)).toEqual(['q0', 'f1', 'f2']);
  });

  test('remove takes a waiting item out at every level; a removed or unknown item is refused', () => {
    const q = new NestedFairQueue<string>(2);
    q.push(['a', 'x'], 'a1');
    q.push(['a', 'x'], 'a2');
    q.push(['b', 'y'], 'b1');
    expect(q.remove(['a', 'x'], 'a1')).toBe(true);
    expect(q.remove(['a', 'x'], 'a1')).toBe(false);
    expect(q.remove(['a', 'y'], 'a2')).toBe(false);
    expect(q.remove(['a'], 'a2')).toBe(false);
    expect(q.remove(['b', 'y'], 'b1')).toBe(true);
    expect(q.size).toBe(1);
    expect(drain(q)).toEqual(['a2']);
    expect(() => q.push(['a'], 'a3')).toThrow('a path of 1 keys, expected 2');
    expect(() => new NestedFairQueue(0)).toThrow('depth must be a whole number');
  });

  test('property: everything pushed and not removed comes out once; at the top level, owners are served in turn', () => {
    const path = fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constantFrom('p', 'q'), fc.constantFrom('', 's'));
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ push: path }), fc.record({ remove: fc.nat(50) }), fc.constant({ shift: true as const })), { maxLength: 150 }),
        (ops) => {
          const q = new NestedFairQueue<string>(3);
          const live = new Map<string, string[]>();
          let n = 0;
          const out: string[] = [];
          for (const op of ops) {
            if ('push' in op) {
              const id = `${op.push.join('.')}#${n++}`;
              q.push(op.push, id);
              live.set(id, op.push);
            } else if ('remove' in op) {
              const id = [...live.keys()][op.remove % Math.max(1, live.size)];
              if (id !== undefined) {
                expect(q.remove(live.get(id)!, id)).toBe(true);
                live.delete(id);
              }
            } else {
              const x = q.shift();
              if (x !== undefined) {
                expect(live.has(x)).toBe(true);
                live.delete(x);
                out.push(x);
              }
            }
            expect(q.size).toBe(live.size);
          }
          // With everything queued, when a top-level owner gets its (c+1)-th turn, every owner with items left has had c.
          const left = new Map<string, number>();
          for (const p of live.values()) left.set(p[0]!, (left.get(p[0]!) ?? 0) + 1);
          const turns = new Map<string, number>();
          for (let x = q.shift(); x !== undefined; x = q.shift()) {
            const k = x[0]!;
            const c = turns.get(k) ?? 0;
            for (const [o, m] of left) if (o !== k && m > 0) expect(turns.get(o) ?? 0).toBeGreaterThanOrEqual(c);
            turns.set(k, c + 1);
            left.set(k, left.get(k)! - 1);
            live.delete(x);
          }
          expect(live.size).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// Whose turn it is to post (pure): one post per lane, round-robin across owners, ended requests
// dropped, a bound on waiting keys. The relay's use of it is tried in e2e/approvals.test.ts.
import { PostTurns } from './post-turns.js';

const own = (sa: string, pod: string, session = ''): string[] => [sa, pod, session];

/** Runs a lane to the end: the holder posts, then the next, …; the keys in the order they posted. */
function postAll(t: PostTurns, first: string | undefined): string[] {
  const order: string[] = [];
  for (let k = first; k !== undefined; k = t.done(k)) order.push(k);
  return order;
}

describe('PostTurns', () => {
  test("one workload floods a lane: another workload's request is next after the post in flight", () => {
    const t = new PostTurns(1000);
    expect(t.take('ns/approvals', own('agent', 'flood'), 'f0')).toBe('go');
    for (let i = 1; i <= 100; i++) expect(t.take('ns/approvals', own('agent', 'flood'), `f${i}`)).toBe('wait');
    expect(t.take('ns/approvals', own('agent', 'quiet'), 'q0')).toBe('wait');
    expect(t.waiting).toBe(101);
    // Asking again changes nothing (a resync, an unrelated update).
    expect(t.take('ns/approvals', own('agent', 'quiet'), 'q0')).toBe('wait');
    expect(t.take('ns/approvals', own('agent', 'flood'), 'f0')).toBe('go');
    const order = postAll(t, 'f0');
    expect(order.slice(0, 3)).toEqual(['f0', 'q0', 'f1']);
    expect(order).toHaveLength(102);
    expect(t.waiting).toBe(0);
  });

  test('service accounts first, then pods, then sessions', () => {
    const t = new PostTurns(1000);
    expect(t.take('l', own('sa-a', 'p1', 's1'), 'a1')).toBe('go');
    for (const [k, o] of [
      ['a2', own('sa-a', 'p1', 's1')],
      ['a3', own('sa-a', 'p1', 's2')],
      ['a4', own('sa-a', 'p2')],
      ['b1', own('sa-b', 'p9')],
      ['b2', own('sa-b', 'p9')],
    ] as const) {
      expect(t.take('l', o, k)).toBe('wait');
    }
    // a1 was sa-a/p1/s1's turn: then sa-b; in sa-a the pod not yet served (p2); in p1 the session not yet served (s2).
    expect(postAll(t, 'a1')).toEqual(['a1', 'b1', 'a4', 'b2', 'a3', 'a2']);
  });

  test('lanes are independent: each has its own turn', () => {
    const t = new PostTurns(1000);
    expect(t.take('ns-a/approvals', own('x', 'p'), 'a')).toBe('go');
    expect(t.take('ns-b/approvals', own('x', 'p'), 'b')).toBe('go');
    expect(t.take('ns-a/other', own('x', 'p'), 'c')).toBe('go');
    expect(t.take('ns-a/approvals', own('x', 'p'), 'a2')).toBe('wait');
    expect(t.done('b')).toBeUndefined();
    expect(t.done('a')).toBe('a2');
  });

  test('a request that ends while waiting is never given the turn; one that ends holding it passes it on', () => {
    const t = new PostTurns(1000);
    expect(t.take('l', own('sa', 'flood'), 'f0')).toBe('go');
    for (let i = 1; i <= 5; i++) t.take('l', own('sa', 'flood'), `f${i}`);
    t.take('l', own('sa', 'quiet'), 'q0');
    for (const k of ['f1', 'f3', 'f5', 'q0']) expect(t.drop(k)).toBeUndefined();
    expect(t.drop('f3')).toBeUndefined();
    expect(t.waiting).toBe(2);
    // The holder ends (cancelled while posting was planned): the turn passes on.
    expect(t.drop('f0')).toBe('f2');
    expect(t.holds('f2')).toBe(true);
    expect(postAll(t, 'f2')).toEqual(['f2', 'f4']);
    expect(t.holds('f4')).toBe(false);
    expect(t.drop('nobody')).toBeUndefined();
    expect(t.done('nobody')).toBeUndefined();
  });

  test('bounded: beyond max waiting keys, take says full; a free lane still goes', () => {
    const t = new PostTurns(3);
    expect(t.take('l', own('sa', 'p'), 'k0')).toBe('go');
    for (const k of ['k1', 'k2', 'k3']) expect(t.take('l', own('sa', 'p'), k)).toBe('wait');
    expect(t.take('l', own('sa', 'other'), 'k4')).toBe('full');
    expect(t.take('m', own('sa', 'p'), 'm0')).toBe('go');
    expect(t.take('m', own('sa', 'p'), 'm1')).toBe('full');
    expect(t.waiting).toBe(3);
    expect(t.done('k0')).toBe('k1');
    expect(t.take('l', own('sa', 'other'), 'k4')).toBe('wait');
    expect(() => t.take('l', ['sa'], 'x')).toThrow('an owner of 1 keys, expected 3');
  });

  test('clear forgets every lane (a replica that stops leading)', () => {
    const t = new PostTurns(10);
    t.take('l', own('sa', 'p'), 'a');
    t.take('l', own('sa', 'p'), 'b');
    t.clear();
    expect(t.waiting).toBe(0);
    expect(t.holds('a')).toBe(false);
    expect(t.take('l', own('sa', 'p'), 'b')).toBe('go');
  });
});

// The reflector's decisions: when to list again, when and how long to back off, what a relist
// changes. The loop itself runs against a real kube-apiserver in e2e/kube.test.ts.
import type { KubeObject } from './protocol.js';
import { HEALTHY_WATCH_MS, listAdmission, nextStep, relistChanges, SHORT_WATCH_MS, withinLimits, type Memory } from './reflector-plan.js';

const policy = { baseMs: 100, maxMs: 1600, random: () => 1 }; // no jitter: the ceiling each time
const fresh: Memory = { attempt: 0, gones: 0 };

describe('nextStep', () => {
  it('resumes at once after a watch the server ended normally, and forgets past failures', () => {
    expect(nextStep({ attempt: 4, gones: 1 }, { kind: 'ended', ranMs: 300_000, events: 0 }, policy)).toEqual({
      memory: fresh,
      relist: false,
      delayMs: 0,
      count: null,
    });
    expect(nextStep({ attempt: 4, gones: 0 }, { kind: 'ended', ranMs: 10, events: 3 }, policy)).toMatchObject({ memory: fresh, delayMs: 0 });
  });

  it('backs off after a watch that ended at once with nothing (a misbehaving proxy)', () => {
    const s = nextStep({ attempt: 2, gones: 0 }, { kind: 'ended', ranMs: SHORT_WATCH_MS - 1, events: 0 }, policy);
    expect(s).toEqual({ memory: { attempt: 3, gones: 0 }, relist: false, delayMs: 400, count: null });
  });

  it('lists again on 410 at once; a second 410 in a row backs off', () => {
    const first = nextStep(fresh, { kind: 'gone' }, policy);
    expect(first).toEqual({ memory: { attempt: 0, gones: 1 }, relist: true, delayMs: 0, count: 'relists' });
    const second = nextStep(first.memory, { kind: 'gone' }, policy);
    expect(second).toEqual({ memory: { attempt: 1, gones: 2 }, relist: true, delayMs: 100, count: 'relists' });
    expect(nextStep(second.memory, { kind: 'gone' }, policy).delayMs).toBe(200);
  });

  it('re-watches at once when the watchdog cut a silent watch, without a relist', () => {
    expect(nextStep({ attempt: 3, gones: 0 }, { kind: 'watchdog' }, policy)).toEqual({
      memory: { attempt: 3, gones: 0 },
      relist: false,
      delayMs: 0,
      count: 'watchdogRestarts',
    });
  });

  it('backs off exponentially on failures up to the ceiling', () => {
    let m = fresh;
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const s = nextStep(m, { kind: 'failed', delivered: 0, openMs: 0 }, policy);
      expect(s).toMatchObject({ relist: false, count: 'failures' });
      delays.push(s.delayMs);
      m = s.memory;
    }
    expect(delays).toEqual([100, 200, 400, 800, 1600, 1600, 1600]);
  });

  it('starts the backoff over after a watch that was healthy before it broke', () => {
    const tired: Memory = { attempt: 5, gones: 0 };
    expect(nextStep(tired, { kind: 'failed', delivered: 1, openMs: 5 }, policy)).toMatchObject({ delayMs: 100, memory: { attempt: 1 } });
    expect(nextStep(tired, { kind: 'failed', delivered: 0, openMs: HEALTHY_WATCH_MS }, policy)).toMatchObject({ delayMs: 100, memory: { attempt: 1 } });
    expect(nextStep(tired, { kind: 'failed', delivered: 0, openMs: HEALTHY_WATCH_MS - 1 }, policy)).toMatchObject({ delayMs: 1600, memory: { attempt: 6 } });
  });

  it('waits as long as Retry-After asks when that is longer, within the ceiling', () => {
    expect(nextStep(fresh, { kind: 'failed', delivered: 0, openMs: 0, retryAfterMs: 700 }, policy).delayMs).toBe(700);
    expect(nextStep(fresh, { kind: 'failed', delivered: 0, openMs: 0, retryAfterMs: 10 }, policy).delayMs).toBe(100);
    expect(nextStep(fresh, { kind: 'failed', delivered: 0, openMs: 0, retryAfterMs: 60_000 }, policy).delayMs).toBe(1600);
  });

  it('jitters within the upper half of each step', () => {
    for (let i = 0; i < 50; i++) {
      const d = nextStep({ attempt: 3, gones: 0 }, { kind: 'failed', delivered: 0, openMs: 0 }, { baseMs: 100, maxMs: 1600 }).delayMs;
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
  });
});

describe('relistChanges', () => {
  const obj = (name: string, rv: string, namespace = 'a'): KubeObject => ({ metadata: { name, namespace, resourceVersion: rv } });
  const store = (...xs: KubeObject[]) => new Map(xs.map((x) => [`${x.metadata.namespace}/${x.metadata.name}`, x]));

  it('reports adds, updates (resourceVersion moved) and deletes (missing from the list), not unchanged objects', () => {
    const before = store(obj('same', '1'), obj('changed', '2'), obj('deleted', '3'));
    const changes = relistChanges(before, [obj('same', '1'), obj('changed', '9'), obj('new', '10')]);
    expect(changes).toEqual([
      { type: 'update', object: obj('changed', '9'), old: obj('changed', '2') },
      { type: 'add', object: obj('new', '10') },
      { type: 'delete', object: obj('deleted', '3') },
    ]);
  });

  it('keys by namespace and name, and treats a first list as all adds', () => {
    expect(relistChanges(store(obj('x', '1', 'a')), [obj('x', '1', 'b')]).map((c) => `${c.type} ${c.object.metadata.namespace}`)).toEqual([
      'add b',
      'delete a',
    ]);
    expect(relistChanges(new Map(), [obj('x', '1'), obj('y', '1')]).map((c) => c.type)).toEqual(['add', 'add']);
    expect(relistChanges(store(obj('x', '1')), [])).toEqual([{ type: 'delete', object: obj('x', '1') }]);
  });
});

test('withinLimits: a new object fits below both bounds, the per-namespace one optional', () => {
  expect(withinLimits({ total: 3, perNamespace: 2 }, 2, 1)).toBe(true);
  expect(withinLimits({ total: 3, perNamespace: 2 }, 3, 0)).toBe(false);
  expect(withinLimits({ total: 3, perNamespace: 2 }, 1, 2)).toBe(false);
  expect(withinLimits({ total: 3 }, 2, 100)).toBe(true);
});

test('listAdmission: held objects always; new ones while everything admitted so far is within the limits', () => {
  const held = new Set(['a/h1', 'a/h2']);
  const admit = listAdmission({ total: 4, perNamespace: 2 }, (k) => held.has(k));
  const got = [
    ['a/n1', 'a'],
    ['a/h1', 'a'],
    ['a/n2', 'a'], // a holds 2 already (n1, h1)
    ['a/h2', 'a'], // held: admitted over the namespace's bound
    ['b/n1', 'b'],
    ['b/n2', 'b'], // 4 admitted: the total is reached
    ['c/n1', 'c'],
  ].map(([k, ns]) => admit(k!, ns!));
  expect(got).toEqual([true, true, false, true, true, false, false]);
});

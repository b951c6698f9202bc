// The memory-reducing collection once the sidecar is quiet: when the plan collects (quiet after
// start, then only after enough work since the last one), the timer that acts on it, and V8's
// collection itself.
import { getHeapSpaceStatistics } from 'node:v8';
import { exposedGc, IDLE_START, idlePlan, QUIET_CPU_MS, QUIET_WINDOWS, reclaimEvery, reclaimWhenIdle, WORK_PER_COLLECTION, type IdleState } from './reclaim.js';

/** The plan after `n` quiet windows from `s`. */
const quietFor = (s: IdleState, n: number) => {
  let p = { collect: false, state: s };
  for (let i = 0; i < n; i++) p = idlePlan(p.state, 0);
  return p;
};

describe('idlePlan', () => {
  test('QUIET_WINDOWS quiet windows in a row after start collect; a busy one, or one in which a request started, resets the count', () => {
    expect(QUIET_WINDOWS).toBeGreaterThan(1);
    expect(idlePlan(IDLE_START, QUIET_CPU_MS).collect).toBe(false);
    expect(quietFor(IDLE_START, QUIET_WINDOWS - 1).collect).toBe(false);
    expect(quietFor(IDLE_START, QUIET_WINDOWS).collect).toBe(true);
    const almost = quietFor(IDLE_START, QUIET_WINDOWS - 1).state;
    expect(idlePlan(almost, QUIET_CPU_MS - 0.1, 1)).toEqual({ collect: false, state: { ...almost, quiet: 0 } });
    expect(idlePlan(almost, QUIET_CPU_MS).state.quiet).toBe(0);
  });

  test('after a collection, the next needs WORK_PER_COLLECTION times its cost in work, then quiet windows', () => {
    let s: IdleState = { workMs: 0, lastCostMs: 10, quiet: 0 };
    expect(quietFor(s, QUIET_WINDOWS).collect).toBe(false); // nothing done since
    for (let i = 0; i < WORK_PER_COLLECTION - 1; i++) {
      const p = idlePlan(s, 10);
      expect(p.collect).toBe(false);
      s = p.state;
    }
    expect(s.workMs).toBe((WORK_PER_COLLECTION - 1) * 10);
    expect(quietFor(s, QUIET_WINDOWS).collect).toBe(false); // 95 % of the work needed
    s = idlePlan(s, 10).state;
    expect(quietFor(s, QUIET_WINDOWS).collect).toBe(true);
  });

  test('with no collection cost known yet, any work then quiet collects', () => {
    const s = idlePlan({ workMs: 0, lastCostMs: 0, quiet: 0 }, 6).state;
    expect(quietFor(s, QUIET_WINDOWS).collect).toBe(true);
  });
});

describe('reclaimEvery', () => {
  test('counts large reads only, and collects at most once per minGapMs however fast the bytes come', () => {
    let t = 0;
    let collected = 0;
    const count = reclaimEvery(
      1000,
      100,
      () => collected++,
      10,
      () => t,
    );
    count(99);
    count(999);
    expect(collected).toBe(0);
    count(100); // 1099 counted
    expect(collected).toBe(1);
    count(5000); // over again, but 0 ms later
    expect(collected).toBe(1);
    t = 9;
    count(100);
    expect(collected).toBe(1);
    t = 10;
    count(100); // the bytes kept counting
    expect(collected).toBe(2);
  });
});

describe('reclaimWhenIdle', () => {
  const until = async (ok: () => boolean) => {
    for (let i = 0; i < 2000 && !ok(); i++) await new Promise((r) => setTimeout(r, 2));
    expect(ok()).toBe(true);
  };

  test('collects once quiet after start, then again only after enough work; stopped, never', async () => {
    let cpu = 0;
    const calls: unknown[] = [];
    let started = 0;
    const idle = reclaimWhenIdle({
      windowMs: 2,
      cpu: () => cpu,
      requests: () => started,
      collect: (o) => {
        calls.push(o);
        cpu += 10; // the collection's own cost
      },
    });
    try {
      await until(() => calls.length === 1);
      expect(calls[0]).toEqual({ type: 'major', execution: 'sync', flavor: 'last-resort' });
      // Quiet windows, and work below WORK_PER_COLLECTION × 10 ms: nothing more.
      cpu += 10 * WORK_PER_COLLECTION - 20;
      await new Promise((r) => setTimeout(r, 30));
      expect(calls).toHaveLength(1);
      cpu += 20;
      await until(() => calls.length === 2);
      // A config applied (heap grown for little CPU) is owed one; requests starting every window hold it off.
      const requesting = setInterval(() => started++, 1);
      idle.owe();
      await new Promise((r) => setTimeout(r, 30));
      clearInterval(requesting);
      expect(calls).toHaveLength(2);
      await until(() => calls.length === 3);
    } finally {
      idle.stop();
    }
    cpu += 1000;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toHaveLength(3);
  });

  test('a gc() that throws is survived', async () => {
    let n = 0;
    const idle = reclaimWhenIdle({
      windowMs: 2,
      cpu: () => 0,
      collect: () => {
        n++;
        throw new Error('refused');
      },
    });
    try {
      await until(() => n === 1);
    } finally {
      idle.stop();
    }
  });

  test('without gc() it does nothing', () => {
    const idle = reclaimWhenIdle({ collect: null });
    expect(idle.stop()).toBeUndefined();
    expect(idle.owe()).toBeUndefined();
  });

  test("V8's memory-reducing collection runs and leaves the young generation no larger", () => {
    const gc = exposedGc()!;
    const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
    const before = young();
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    expect(young()).toBeLessThanOrEqual(before);
  });
});

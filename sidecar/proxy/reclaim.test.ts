// The memory-reducing collection once the sidecar is quiet: when the plan collects (quiet after
// start, then only after enough work since the last one), the timer that acts on it, and V8's
// collection itself.
import { getHeapSpaceStatistics } from 'node:v8';
import { exposedGc, IDLE_START, idlePlan, QUIET_CPU_MS, reclaimWhenIdle, WORK_PER_COLLECTION, type IdleState } from './reclaim.js';

describe('idlePlan', () => {
  test('the first quiet window after start collects; a busy one does not', () => {
    expect(idlePlan(IDLE_START, QUIET_CPU_MS).collect).toBe(false);
    expect(idlePlan(IDLE_START, QUIET_CPU_MS - 0.1).collect).toBe(true);
  });

  test('after a collection, the next needs WORK_PER_COLLECTION times its cost in work, then a quiet window', () => {
    let s: IdleState = { workMs: 0, lastCostMs: 10 };
    expect(idlePlan(s, 0).collect).toBe(false); // nothing done since
    for (let i = 0; i < WORK_PER_COLLECTION - 1; i++) {
      const p = idlePlan(s, 10);
      expect(p.collect).toBe(false);
      s = p.state;
    }
    expect(s.workMs).toBe((WORK_PER_COLLECTION - 1) * 10);
    expect(idlePlan(s, 0).collect).toBe(false); // 95 % of the work needed
    s = idlePlan(s, 10).state;
    expect(idlePlan(s, 1).collect).toBe(true);
  });

  test('with no collection cost known yet, any work then quiet collects', () => {
    const s = idlePlan({ workMs: 0, lastCostMs: 0 }, 6).state;
    expect(idlePlan(s, 0).collect).toBe(true);
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
    const stop = reclaimWhenIdle({
      windowMs: 2,
      cpu: () => cpu,
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
    } finally {
      stop();
    }
    cpu += 1000;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toHaveLength(2);
  });

  test('without gc() it does nothing', () => {
    expect(reclaimWhenIdle({ collect: null })()).toBeUndefined();
  });

  test("V8's memory-reducing collection runs and leaves the young generation no larger", () => {
    const gc = exposedGc()!;
    const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
    const before = young();
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    expect(young()).toBeLessThanOrEqual(before);
  });
});

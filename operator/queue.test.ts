import { canAcquire } from './leader.js';
import { startQueue } from './queue.js';

describe('work queue', () => {
  test('coalesces a key added while waiting, reruns a key added while running, retries failures', async () => {
    const runs: string[] = [];
    let failOnce = true;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const q = startQueue<string>(
      async (key) => {
        runs.push(key);
        if (key === 'slow' && runs.filter((k) => k === 'slow').length === 1) await gate;
        if (key === 'flaky' && failOnce) {
          failOnce = false;
          throw new Error('boom');
        }
      },
      { id: (k) => k, concurrency: 1 },
    );
    q.add('slow');
    q.add('slow'); // running: marked dirty, runs once more afterwards
    q.add('a');
    q.add('a'); // waiting: coalesced
    q.add('flaky');
    release();
    await q.idle();
    expect(runs.filter((k) => k === 'slow')).toHaveLength(2);
    expect(runs.filter((k) => k === 'a')).toHaveLength(1);
    expect(runs.filter((k) => k === 'flaky')).toHaveLength(2);
    await q.close();
  });

  test('typed keys: equal ids are one key, and the worker gets the key object', async () => {
    const seen: { namespace: string; name: string }[] = [];
    const q = startQueue<{ namespace: string; name: string }>(
      async (k) => {
        seen.push(k);
      },
      { id: (k) => `${k.namespace}/${k.name}` },
    );
    q.add({ namespace: 'a', name: 'x' }, 20);
    q.add({ namespace: 'a', name: 'x' }, 20);
    q.add({ namespace: 'b', name: 'x' });
    await q.idle();
    expect(seen).toEqual([
      { namespace: 'b', name: 'x' },
      { namespace: 'a', name: 'x' },
    ]);
    expect(q.size()).toBe(0);
    await q.close();
  });
});

describe('lease decisions', () => {
  const now = new Date('2026-01-01T00:00:10Z');
  test('free, ours, or expired can be taken; a live lease of another cannot', () => {
    expect(canAcquire(null, 'me', now)).toBe(true);
    expect(canAcquire({ holder: '', renewTime: now, durationSec: 15, transitions: 0 }, 'me', now)).toBe(true);
    expect(canAcquire({ holder: 'me', renewTime: now, durationSec: 15, transitions: 0 }, 'me', now)).toBe(true);
    expect(canAcquire({ holder: 'other', renewTime: new Date('2026-01-01T00:00:00Z'), durationSec: 15, transitions: 0 }, 'me', now)).toBe(false);
    expect(canAcquire({ holder: 'other', renewTime: new Date('2026-01-01T00:00:00Z'), durationSec: 5, transitions: 0 }, 'me', now)).toBe(true);
  });
});

// Who holds a directory lock, judged from what the lock file says and what this machine shows
// (the two-process test is in sidecar/approvals/approval-store.test.ts).
import { staleReason, STALE_AFTER_MS, type LockHolder, type Probe } from './dir-lock.js';

const holder: LockHolder = { pid: 42, bootId: 'boot-1', startTime: '1000', host: 'pod-a' };
const probe = (p: Partial<Probe> = {}): Probe => ({
  bootId: () => 'boot-1',
  host: () => 'pod-a',
  startTime: (pid) => (pid === 42 ? '1000' : null),
  now: () => 1_000_000,
  ...p,
});

test('a live holder on this host keeps its lock', () => {
  expect(staleReason(holder, 0, probe())).toBeNull();
});

test('a dead pid, a reused pid, or another boot make the lock stale', () => {
  expect(staleReason(holder, 0, probe({ startTime: () => null }))).toMatch(/process 42 is not running/);
  expect(staleReason(holder, 0, probe({ startTime: () => '2000' }))).toMatch(/pid was reused/);
  expect(staleReason(holder, 1_000_000, probe({ bootId: () => 'boot-2' }))).toMatch(/before the machine restarted/);
});

test('a holder on another host (another pid namespace) is judged by its heartbeat', () => {
  const other = probe({ host: () => 'pod-b', startTime: () => null });
  expect(staleReason(holder, 1_000_000 - STALE_AFTER_MS + 1000, other)).toBeNull();
  expect(staleReason(holder, 1_000_000 - STALE_AFTER_MS - 1000, other)).toMatch(/has not renewed it for 31 s/);
});

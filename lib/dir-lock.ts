// An exclusive lock on a directory for the life of a process: a file created with O_EXCL that
// names its holder (pid, boot id, the pid's start time, host name). Two processes sharing a
// volume (a rolling update with a ReadWriteOnce volume) must not both write what is in it.
// A lock left by a holder that is gone is taken over with a warning: another boot id (the machine
// restarted), or the same host (same pid namespace) with the pid dead or reused (its start time
// differs). A holder on another host name (another pod: another pid namespace, whose pids this
// process cannot see) is judged by its heartbeat: the holder touches the file every
// HEARTBEAT_MS, and one not touched for STALE_AFTER_MS is gone.
// Not covered: two processes taking over the same stale lock at the very same moment.
import { constants as fsc, promises as fsp, readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export const HEARTBEAT_MS = 10_000;
export const STALE_AFTER_MS = 3 * HEARTBEAT_MS;

export interface LockHolder {
  pid: number;
  bootId: string;
  /** The pid's start time (clock ticks since boot, /proc/<pid>/stat), to tell a reused pid. */
  startTime: string;
  host: string;
}

/** The directory is locked by a live process. */
export class DirLockedError extends Error {
  override readonly name = 'DirLockedError';
}

/** What this machine says about a pid (injected in tests). */
export interface Probe {
  bootId(): string;
  host(): string;
  /** The pid's start time, or null when no such process is visible. */
  startTime(pid: number): string | null;
  now(): number;
}

export const procProbe: Probe = {
  bootId: () => readText('/proc/sys/kernel/random/boot_id') ?? 'unknown',
  host: () => hostname(),
  startTime(pid) {
    const stat = readText(`/proc/${pid}/stat`);
    if (stat === null) return null;
    // Field 22; the command name (field 2) may hold spaces, so count after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  },
  now: () => Date.now(),
};

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Pure: why a lock's holder is gone (take it over), or null when it may be alive (refuse). */
export function staleReason(h: LockHolder, touchedAt: number, p: Probe): string | null {
  if (h.bootId !== p.bootId()) return `it was taken before the machine restarted (boot id ${h.bootId})`;
  if (h.host !== p.host()) {
    const age = p.now() - touchedAt;
    return age > STALE_AFTER_MS ? `its holder on ${h.host} has not renewed it for ${Math.round(age / 1000)} s` : null;
  }
  const start = p.startTime(h.pid);
  if (start === null) return `process ${h.pid} is not running`;
  if (start !== h.startTime) return `process ${h.pid} is another process than the one that took it (the pid was reused)`;
  return null;
}

export interface DirLock {
  readonly file: string;
  release(): Promise<void>;
}

/**
 * Takes `<dir>/<name>` for this process, or rejects with DirLockedError naming the live holder.
 * `warn` hears about a stale lock taken over.
 */
export async function lockDir(file: string, warn: (message: string) => void, probe: Probe = procProbe): Promise<DirLock> {
  const me: LockHolder = { pid: process.pid, bootId: probe.bootId(), startTime: probe.startTime(process.pid) ?? '', host: probe.host() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(me)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const { holder, touchedAt } = await readHolder(file);
    const why = holder ? staleReason(holder, touchedAt, probe) : 'it does not name its holder (cut short by a crash)';
    if (why === null)
      throw new DirLockedError(
        `${file} is held by process ${holder!.pid} on ${holder!.host}: another sidecar uses this state directory; two must never share one (each would run approved calls the other ran)`,
      );
    warn(`${file}: taking over a stale lock: ${why}`);
    await fsp.rm(file, { force: true });
  }
  const timer = setInterval(() => {
    const t = new Date(probe.now());
    fsp.utimes(file, t, t).catch(() => undefined);
  }, HEARTBEAT_MS);
  timer.unref();
  return {
    file,
    async release() {
      clearInterval(timer);
      // Only our own lock goes (a successor may hold it after a takeover).
      const { holder } = await readHolder(file);
      if (holder && holder.pid === me.pid && holder.startTime === me.startTime && holder.host === me.host) await fsp.rm(file, { force: true });
    },
  };
}

async function readHolder(file: string): Promise<{ holder: LockHolder | null; touchedAt: number }> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.lstat(file)]);
    const h = JSON.parse(text) as Partial<LockHolder>;
    const ok = typeof h.pid === 'number' && typeof h.bootId === 'string' && typeof h.startTime === 'string' && typeof h.host === 'string';
    return { holder: ok ? (h as LockHolder) : null, touchedAt: st.mtimeMs };
  } catch {
    return { holder: null, touchedAt: 0 };
  }
}

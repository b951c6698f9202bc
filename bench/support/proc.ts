// What Linux says about a process the benchmarks run: CPU time from /proc/<pid>/stat, memory from
// /proc/<pid>/status and smaps_rollup, and which cores to pin it to. Linux only; elsewhere the
// figures read NaN and nothing is pinned.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let tickMicros: number | undefined;
/** Microseconds per clock tick (`getconf CLK_TCK`, 100 on almost every Linux). */
function microsPerTick(): number {
  if (tickMicros === undefined) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // getconf missing: Linux's USER_HZ is 100 on every architecture we run on.
    }
    tickMicros = 1e6 / hz;
  }
  return tickMicros;
}

/** User + system CPU time the process has used so far, in µs (resolution: one clock tick). */
export function cpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) * microsPerTick();
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time the process's threads have used so far, in µs with ns resolution: the sum of each
 * thread's on-CPU time from /proc/<pid>/task/<tid>/schedstat. A clock tick (10 ms) is a large share
 * of a short load run or a start; this is not. NaN when the process is gone.
 */
export function cpuPreciseMicros(pid: number): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return Number.NaN;
  }
  let ns = 0;
  let read_ = 0;
  for (const tid of tids) {
    // '' when the thread ended between the listing and the read: it no longer counts.
    const text = read(`/proc/${pid}/task/${tid}/schedstat`);
    if (text === '') continue;
    ns += Number(text.slice(0, text.indexOf(' ')));
    read_++;
  }
  // None readable: a kernel without schedstat; the clock-tick figure then.
  return read_ > 0 ? ns / 1e3 : cpuMicros(pid);
}

export interface Memory {
  /** Resident set, MiB. */
  rss: number;
  /** Resident anonymous memory (heap, stacks), MiB: what the process itself allocated. */
  anon: number;
  /** Private_Clean + Private_Dirty from smaps_rollup, MiB: pages no other process shares. */
  private: number;
}

const kib = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN) / 1024;
const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // Gone or not Linux: NaN figures.
  }
};

/** VmRSS and RssAnon from /proc/<pid>/status: cheap (~0.1 ms). */
export function statusMemory(pid: number): { rss: number; anon: number } {
  const status = read(`/proc/${pid}/status`);
  return { rss: kib(status, 'VmRSS'), anon: kib(status, 'RssAnon') };
}

/** Private pages from smaps_rollup: a walk of the whole address space under the process's mmap
 *  lock, ~5 ms for a sidecar with Cedar (wasm reserves GiBs), so never read in a tight loop. */
function privateMiB(pid: number): number {
  const rollup = read(`/proc/${pid}/smaps_rollup`);
  return kib(rollup, 'Private_Clean') + kib(rollup, 'Private_Dirty');
}

export function memory(pid: number): Memory {
  return { ...statusMemory(pid), private: privateMiB(pid) };
}

/**
 * Keeps the largest value of each field seen by `sample()`. RSS and anon come from the cheap status
 * file every sample; smaps_rollup (which stalls the process's mmap calls while it is read) only
 * when anon reaches a new high, at most once a second: its peak can read a little low.
 */
export function peakTracker(pid: number): { sample: () => void; peak: () => Memory } {
  const top: Memory = { rss: 0, anon: 0, private: 0 };
  let lastRollup = 0;
  const rollup = () => {
    lastRollup = Date.now();
    top.private = Math.max(top.private, privateMiB(pid));
  };
  return {
    sample: () => {
      const m = statusMemory(pid);
      top.rss = Math.max(top.rss, m.rss);
      if (m.anon > top.anon && Date.now() - lastRollup >= 1000) rollup();
      top.anon = Math.max(top.anon, m.anon);
    },
    peak: () => ({ ...top }),
  };
}

/** Time one core has spent running tasks so far (user, nice, system, and steal: another VM's), µs,
 *  from /proc/stat. Interrupt time is left out: much of it is our own loopback traffic. */
function coreBusyMicros(core: number): number {
  try {
    const row = new RegExp(`^cpu${core} (.*)$`, 'm').exec(readFileSync('/proc/stat', 'utf8'))?.[1];
    if (!row) return Number.NaN;
    const [user, nice, system, , , , , steal] = row.trim().split(/\s+/).map(Number);
    return (user! + nice! + system! + steal!) * microsPerTick();
  } catch {
    return Number.NaN;
  }
}

/**
 * How busy a core was with work that is not ours, as a share of the wall time between the call and
 * the returned function's call: other users of a shared machine, which the figures cannot account
 * for. `ours()` is the CPU µs used so far by the processes the benchmark runs on that core.
 */
export function foreignLoad(core: number | null, ours: () => number): () => number {
  if (core === null) return () => Number.NaN;
  const [busy0, mine0, t0] = [coreBusyMicros(core), ours(), process.hrtime.bigint()];
  return () => {
    const wall = Number(process.hrtime.bigint() - t0) / 1e3;
    return Math.max(0, coreBusyMicros(core) - busy0 - (ours() - mine0)) / wall;
  };
}

/** CPU µs of the processes `pids` (gone ones count 0) plus that of this process's children that have
 *  exited (cutime + cstime), so a process ending in between does not take its time with it. */
export function cpuOf(pids: number[], withExitedChildren: boolean): number {
  let sum = 0;
  for (const pid of pids) sum += cpuMicros(pid) || 0;
  if (withExitedChildren) {
    try {
      const stat = readFileSync('/proc/self/stat', 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += (Number(fields[13]) + Number(fields[14])) * microsPerTick();
    } catch {
      // Not Linux.
    }
  }
  return sum;
}

export interface Pinning {
  /** Cores of the proxy under test and of the load generator, or null when not pinned. */
  cores: { proxy: number; load: number } | null;
  /** Prefix for the command line of the process under test (the proxy), e.g. ['taskset', '-c', '0']. */
  proxy: string[];
  /** Said in the output: which cores, or why nothing is pinned. */
  note: string;
}

/**
 * Pins this process (the load generator; the upstream it starts inherits it) to the second core
 * it may use and returns how to start the proxy under test on the first, so the proxy never
 * competes with its own load. Without taskset or two cores, nothing is pinned and the note says so.
 */
export function pinSelfAndPlanProxy(): Pinning {
  let allowed: number[] = [];
  try {
    allowed = cpuList(/^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '');
  } catch {
    return { cores: null, proxy: [], note: 'not pinned: no /proc (not Linux)' };
  }
  if (allowed.length < 2) return { cores: null, proxy: [], note: `not pinned: only ${allowed.length} core allowed` };
  if (spawnSync('taskset', ['-V']).status !== 0) return { cores: null, proxy: [], note: 'not pinned: taskset not found' };
  const [proxyCore, loadCore] = [allowed[0]!, allowed[1]!];
  const self = spawnSync('taskset', ['-a', '-p', '-c', String(loadCore), String(process.pid)]);
  if (self.status !== 0) return { cores: null, proxy: [], note: `not pinned: taskset failed (${String(self.stderr).trim()})` };
  return {
    cores: { proxy: proxyCore, load: loadCore },
    proxy: ['taskset', '-c', String(proxyCore)],
    note: `pinned: proxy under test on core ${proxyCore}; load generator and upstream on core ${loadCore}${allowed.length > 2 ? ` (of ${allowed.length})` : ''}`,
  };
}

/** "0-3,6" → [0, 1, 2, 3, 6]. */
function cpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a!; i <= (b ?? a!); i++) out.push(i);
  }
  return out;
}

/**
 * Opt-in (BENCH_NICE, e.g. -10, root only for negative values): runs this process and so every
 * child it starts afterwards at that nice value, so a machine shared with other work yields more
 * of its CPU to the benchmark. Every thread of this process is reniced (children inherit it).
 */
export function niceSelf(value: string | undefined): string {
  if (!value) return 'nice: not changed (BENCH_NICE unset)';
  let tids: string[] = [String(process.pid)];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    // Not Linux: the main thread only.
  }
  const r = spawnSync('renice', ['-n', value, '-p', ...tids]);
  return r.status === 0 ? `nice: ${value} for the load generator, upstream and proxies` : `nice: not changed (renice failed: ${String(r.stderr).trim()})`;
}

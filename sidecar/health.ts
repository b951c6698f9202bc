// Upstream reachability for /ready: a TCP connect to each source's host:port, on every config
// change and then periodically. A connect says nothing about MCP, which is the point: it is cheap,
// has no side effects on the upstream, and catches the common failure (nothing listening).
import net from 'node:net';
import type { SidecarMetrics } from './metrics.js';
import type { CompiledSource, Snapshot } from './snapshot.js';

export interface UpstreamStatus {
  up: boolean;
  checkedAt: string | null;
  error?: string;
}

function probe(s: CompiledSource): Promise<string | null> {
  const port = s.url.port ? Number(s.url.port) : s.url.protocol === 'https:' ? 443 : 80;
  const host = s.url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (err: string | null) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => done('connect timed out'), s.connectTimeoutMs);
    sock.once('connect', () => done(null));
    sock.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'connect failed'));
  });
}

export class UpstreamHealth {
  private status = new Map<string, UpstreamStatus>();
  private sources: CompiledSource[] = [];
  private timer: NodeJS.Timeout | null = null;
  private round = 0;

  constructor(
    private metrics: SidecarMetrics,
    private intervalMs = 10_000,
  ) {}

  /** Starts probing the snapshot's sources (at once, then every interval). */
  track(snap: Snapshot): Promise<void> {
    this.sources = [...snap.sources.values()];
    const names = new Set(this.sources.map((s) => s.name));
    for (const n of this.status.keys())
      if (!names.has(n)) {
        this.status.delete(n);
        this.metrics.upstreamUp.remove({ source: n });
      }
    for (const s of this.sources) if (!this.status.has(s.name)) this.status.set(s.name, { up: false, checkedAt: null });
    if (!this.timer) {
      this.timer = setInterval(() => void this.check(), this.intervalMs);
      this.timer.unref();
    }
    return this.check();
  }

  async check(): Promise<void> {
    const round = ++this.round;
    const sources = this.sources;
    const results = await Promise.all(sources.map(probe));
    if (round !== this.round && sources !== this.sources) return; // a newer config superseded this round
    const now = new Date().toISOString();
    sources.forEach((s, i) => {
      const err = results[i];
      this.status.set(s.name, err ? { up: false, checkedAt: now, error: err } : { up: true, checkedAt: now });
      this.metrics.upstreamUp.set({ source: s.name }, err ? 0 : 1);
    });
  }

  allUp(): boolean {
    for (const s of this.status.values()) if (!s.up) return false;
    return true;
  }

  report(): Record<string, UpstreamStatus> {
    return Object.fromEntries(this.status);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

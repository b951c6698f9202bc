// One JSON object per line on stdout. Secrets never reach it: credential headers are redacted
// and tool arguments are summarised (keys and size), never logged whole.
import { createLineWriter, type LineWriter, stdoutSink } from './log-writer.js';

export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];

export interface Logger {
  level: Level;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  enabled(level: Level): boolean;
}

export function isLevel(v: string): v is Level {
  return (LEVELS as readonly string[]).includes(v);
}

let stdout: LineWriter | undefined;

/**
 * The process's stdout writer (lib/log-writer.ts): lines batched per event-loop turn, written
 * without blocking, at most 1 MiB queued (beyond: dropped, counted, and one warn line once
 * stdout keeps up again); what is queued at exit is written synchronously, best effort.
 */
export function stdoutWriter(): LineWriter {
  if (!stdout) {
    const w = createLineWriter(stdoutSink(), { dropNotice: (n) => formatLine('warn', `${n} log lines dropped`, { dropped: n }) });
    process.once('exit', () => w.flushSync());
    stdout = w;
  }
  return stdout;
}

/** Log lines the stdout writer dropped because stdout was slower than the log (0 before any). */
export function logLinesDropped(): number {
  return stdout?.dropped() ?? 0;
}

function formatLine(level: Level, msg: string, fields?: Record<string, unknown>): string {
  try {
    return `${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`;
  } catch {
    return `${JSON.stringify({ ts: new Date().toISOString(), level, msg, note: 'fields not serialisable' })}\n`;
  }
}

/** A logger; `write` gets each line (with its newline); by default the stdout writer. */
export function createLogger(level: Level = 'info', write: (line: string) => void = (l) => stdoutWriter().write(l)): Logger {
  const rank = LEVELS.indexOf(level);
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) < rank) return;
    write(formatLine(lvl, msg, fields));
  };
  return {
    level,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    enabled: (l) => LEVELS.indexOf(l) >= rank,
  };
}

const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-auth-token']);

/** Headers safe to log: credential-bearing ones keep their name and lose their value. */
export function redactHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k] = SECRET_HEADERS.has(k.toLowerCase()) ? '[redacted]' : v;
  }
  return out;
}

/** What the logs say about tool arguments: their top-level keys and serialised size, not values. */
export function summariseArguments(args: unknown): { keys: string[]; bytes: number } | undefined {
  if (args === undefined) return undefined;
  let bytes = 0;
  try {
    bytes = JSON.stringify(args)?.length ?? 0;
  } catch {
    bytes = -1;
  }
  const keys = args !== null && typeof args === 'object' && !Array.isArray(args) ? Object.keys(args).slice(0, 32) : [];
  return { keys, bytes };
}

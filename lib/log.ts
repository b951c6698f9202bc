// One JSON object per line on stdout. Secrets never reach it: credential headers are redacted
// and tool arguments are summarised (keys and size), never logged whole.

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

export function createLogger(level: Level = 'info', write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const rank = LEVELS.indexOf(level);
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) < rank) return;
    let line: string;
    try {
      line = JSON.stringify({ ts: new Date().toISOString(), level: lvl, msg, ...fields });
    } catch {
      line = JSON.stringify({ ts: new Date().toISOString(), level: lvl, msg, note: 'fields not serialisable' });
    }
    write(`${line}\n`);
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

// Request ids in flight per upstream session. An MCP server sends each response on the HTTP stream
// of the request with that id (the SDK keeps one id → stream Map per session, where the last POST
// wins), so two requests in flight with the same id in one session can get each other's answers,
// and an answer arriving on another request's stream escapes the edits made for its own (a list
// left unfiltered). MCP forbids reusing an id within a session; ThoughtGate refuses a request
// whose id (in any spelling, see idKeys) is still in flight in its session.
import { idKeys, type RawId } from '../../lib/jsonrpc.js';

export class InflightIds {
  private readonly sessions = new Map<string, Map<string, number>>();
  private count = 0;

  constructor(private readonly onSize?: (ids: number) => void) {}

  /** Claims the ids for the session until release(); or names the first one already in flight. */
  claim(session: string, ids: readonly RawId[]): { ok: true; release: () => void } | { ok: false; id: RawId } {
    const held = this.sessions.get(session);
    if (held) {
      for (const id of ids) if (idKeys(id).some((k) => held.has(k))) return { ok: false, id };
    }
    const keys = ids.flatMap(idKeys);
    if (keys.length === 0) return { ok: true, release: () => undefined };
    const map = held ?? new Map<string, number>();
    if (!held) this.sessions.set(session, map);
    for (const k of keys) map.set(k, (map.get(k) ?? 0) + 1);
    this.count += keys.length;
    this.onSize?.(this.count);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        for (const k of keys) {
          const n = (map.get(k) ?? 1) - 1;
          if (n > 0) map.set(k, n);
          else map.delete(k);
        }
        if (map.size === 0 && this.sessions.get(session) === map) this.sessions.delete(session);
        this.count -= keys.length;
        this.onSize?.(this.count);
      },
    };
  }

  get size(): number {
    return this.count;
  }
}

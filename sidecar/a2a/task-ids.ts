// Where an A2A answer names a task or a context, and a byte scanner that finds those ids in a JSON
// answer as it streams past (issue 13, DESIGN §2.7, §2.10). Pure apart from the callback.
//
// The scanner never holds an answer: it tracks only the stack of open objects, and holds back at
// most one id's bytes (the value being read), so the caller can record the id's owner before the
// bytes that name it are written. It is not a validator: a body no JSON parser accepts gives its
// client nothing, and an id this scanner misses is unknown to the owner table, which refuses it for
// everyone (fail closed); so it only needs to read every id a strict parser would read, the same way
// (escapes decoded, every duplicate key seen).

import { A2A_MAX_ID_BYTES } from '../../policy/gates/a2a-operation.js';
import { BACKSLASH, COLON, COMMA, LBRACE, LBRACKET, QUOTE, RBRACE, RBRACKET } from '../../lib/char-codes.js';

export type IdKind = 'task' | 'context';

/** Objects of a send/stream result that carry a task's or a context's id (both generations, both bindings). */
const HOLDERS = new Set(['task', 'message', 'msg', 'statusUpdate', 'artifactUpdate']);

/**
 * Which id a member names, by its keys from the answer's root (null: none). `root` is where the
 * result is: `['result']` for JSON-RPC, `[]` for HTTP+JSON. Read: 0.3 results (`{kind:'task', id,
 * contextId}`, messages and updates with `taskId`/`contextId`) and 1.0 results (`{task:{id,
 * contextId}}`, `{message|statusUpdate|artifactUpdate:{taskId, contextId}}`). Ids inside arrays
 * (a task's history) are not read: they repeat the task's own.
 */
export function idAt(root: readonly string[], path: readonly (string | null)[]): IdKind | null {
  const n = root.length;
  if (path.length !== n + 1 && path.length !== n + 2) return null;
  for (let i = 0; i < n; i++) if (path[i] !== root[i]) return null;
  const last = path[path.length - 1];
  if (path.length === n + 2) {
    const holder = path[n];
    if (typeof holder !== 'string' || !HOLDERS.has(holder)) return null;
    if (last === 'id') return holder === 'task' ? 'task' : null;
  } else if (last === 'id') return 'task';
  return last === 'taskId' ? 'task' : last === 'contextId' ? 'context' : null;
}

/** The ids a parsed answer (an SSE event's data) names, read at the same places as idAt. */
export function idsOf(root: readonly string[], answer: unknown): { kind: IdKind; id: string }[] {
  const out: { kind: IdKind; id: string }[] = [];
  let at: unknown = answer;
  for (const k of root) at = isObject(at) && Object.hasOwn(at, k) ? at[k] : undefined;
  if (!isObject(at)) return out;
  const take = (o: Record<string, unknown>, key: string, kind: IdKind) => {
    const v = Object.hasOwn(o, key) ? o[key] : undefined;
    if (typeof v === 'string' && v !== '') out.push({ kind, id: v });
  };
  take(at, 'id', 'task');
  take(at, 'taskId', 'task');
  take(at, 'contextId', 'context');
  for (const h of HOLDERS) {
    const o = Object.hasOwn(at, h) ? at[h] : undefined;
    if (!isObject(o)) continue;
    if (h === 'task') take(o, 'id', 'task');
    take(o, 'taskId', 'task');
    take(o, 'contextId', 'context');
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A key longer than this is no key the scanner looks for: its text is not kept. */
const MAX_KEY_BYTES = 64;

interface Frame {
  object: boolean;
  /** Objects: the member key being read (null: none yet, or too long to be one we want). */
  key: string | null;
  expectKey: boolean;
}

export class IdTooLongError extends Error {
  constructor(max: number) {
    super(`an id in the agent's answer is longer than ${max} bytes`);
  }
}

/** The JSON string body (between the quotes) as a parser reads it, or null if it is not one. */
function decodeString(raw: Buffer): string | null {
  try {
    return JSON.parse(`"${raw.toString('utf8')}"`) as string;
  } catch {
    return null;
  }
}

/**
 * Incremental scanner over one JSON answer. feed() scans a chunk, calling onId (which may throw)
 * for every id completed in it, and says from which byte of the chunk an id is still being read
 * (`holdFrom`, or -1): those bytes must not be written yet. done: the root value is complete.
 */
export class JsonIdScanner {
  private readonly stack: Frame[] = [];
  /** Containers open below the deepest one a watched id can be in: counted, not kept (memory stays bounded whatever the nesting). */
  private deeper = 0;
  private readonly maxFrames: number;
  private inString = false;
  private escape = false;
  /** The string being read is a key (kept while short) or a watched value (kept, bounded). */
  private collect: 'key' | IdKind | null = null;
  private parts: Buffer[] = [];
  private bytes = 0;
  private started = false;
  done = false;

  constructor(
    private readonly root: readonly string[],
    private readonly onId: (kind: IdKind, id: string) => void,
    /** On the id's JSON text (escapes undecoded: up to 6 bytes a character); the caller bounds the decoded id. */
    private readonly maxIdBytes = 6 * A2A_MAX_ID_BYTES,
  ) {
    this.maxFrames = root.length + 2;
  }

  /** Whether a watched value is open at the end of the last chunk (its bytes are held). */
  get holding(): boolean {
    return this.inString && this.collect !== null && this.collect !== 'key';
  }

  feed(chunk: Buffer): { holdFrom: number } {
    let holdFrom = -1;
    let strFrom = 0; // where the open string's bytes start in this chunk
    const n = chunk.length;
    for (let i = 0; i < n && !this.done; i++) {
      const c = chunk[i]!;
      if (!this.inString) {
        if (c === QUOTE) {
          strFrom = i + 1;
          if (this.openString()) holdFrom = i;
        } else this.structure(c);
      } else if (this.escape) this.escape = false;
      else if (c === BACKSLASH) this.escape = true;
      else if (c === QUOTE) {
        this.endString(chunk.subarray(strFrom, i));
        holdFrom = -1;
      }
    }
    if (this.inString && this.collect !== null) this.keep(chunk.subarray(strFrom));
    return { holdFrom: this.holding ? Math.max(holdFrom, 0) : -1 };
  }

  /** A string starts: a key, or a value (watched or not). True when its bytes must be held. */
  private openString(): boolean {
    this.inString = true;
    this.parts = [];
    this.bytes = 0;
    const top = this.stack[this.stack.length - 1];
    if (this.deeper > 0) this.collect = null;
    else if (top?.object && top.expectKey) this.collect = 'key';
    else this.collect = top ? idAt(this.root, this.path()) : null;
    return this.collect !== null && this.collect !== 'key';
  }

  /** Any byte outside a string: brackets, ":" and "," move the stack; the rest is skipped. */
  private structure(c: number): void {
    if (this.deeper > 0) {
      if (c === LBRACE || c === LBRACKET) this.deeper++;
      else if (c === RBRACE || c === RBRACKET) this.deeper--;
      return;
    }
    const top = this.stack[this.stack.length - 1];
    switch (c) {
      case LBRACE:
      case LBRACKET:
        this.started = true;
        if (this.stack.length >= this.maxFrames) this.deeper = 1;
        else this.stack.push({ object: c === LBRACE, key: null, expectKey: c === LBRACE });
        break;
      case RBRACE:
      case RBRACKET:
        this.stack.pop();
        if (this.stack.length === 0) this.done = true;
        break;
      case COLON:
        if (top) top.expectKey = false;
        break;
      case COMMA:
        if (top?.object) {
          top.expectKey = true;
          top.key = null;
        }
        break;
      default:
        // Whitespace, numbers, true/false/null: nothing to track. A scalar root ends the answer.
        if (!this.started && c > 0x20) this.done = true;
    }
  }

  private path(): (string | null)[] {
    const p: (string | null)[] = [];
    for (const f of this.stack) {
      if (!f.object) return [null, null, null, null]; // inside an array: never a watched place
      p.push(f.key);
    }
    return p;
  }

  private keep(b: Buffer): void {
    if (b.length === 0) return;
    this.bytes += b.length;
    const max = this.collect === 'key' ? MAX_KEY_BYTES : this.maxIdBytes;
    if (this.bytes > max) {
      if (this.collect !== 'key') throw new IdTooLongError(this.maxIdBytes);
      this.collect = null; // a long key: not one we look for
      this.parts = [];
      return;
    }
    this.parts.push(Buffer.from(b)); // a copy: the chunk may be reused by its producer
  }

  private endString(tail: Buffer): void {
    this.inString = false;
    if (this.collect === null) return;
    this.keep(tail);
    const what = this.collect as 'key' | IdKind | null; // keep() drops a key that grew too long
    this.collect = null;
    const text = what === null ? null : decodeString(Buffer.concat(this.parts));
    this.parts = [];
    if (what === 'key') {
      const top = this.stack[this.stack.length - 1];
      if (top) top.key = text;
    } else if (what !== null && text !== null && text !== '') this.onId(what, text);
  }
}

// W3C Trace Context (https://www.w3.org/TR/trace-context/): reading the `traceparent` and
// `tracestate` a caller sent, and writing ours. The caller may be hostile: anything that is not
// exactly the grammar, or is longer than the bounds below, is treated as absent (a new trace
// starts) and never passed on as sent.

/** A span's identity as it crosses a process boundary. */
export interface SpanRef {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** 16 lower-case hex digits, not all zero. */
  spanId: string;
  sampled: boolean;
  /** A validated tracestate (tracestateOf), if any. */
  traceState?: string;
  /**
   * Read from outside this process (a caller's traceparent, an annotation): its sampled flag is not
   * trusted. Our own spans' refs are not remote, so their children follow them.
   */
  remote?: true;
}

/** Longer traceparent values are refused whole (version 00 is 55 characters; future versions may append). */
export const MAX_TRACEPARENT_CHARS = 256;
/** W3C: at most 32 list members; vendors must propagate at least 512 characters. Longer is dropped whole. */
export const MAX_TRACESTATE_CHARS = 512;
export const MAX_TRACESTATE_MEMBERS = 32;

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The caller's traceparent, or null when absent, repeated, oversized or not the W3C grammar. */
export function parseTraceparent(header: string | string[] | undefined): SpanRef | null {
  if (typeof header !== 'string' || header.length > MAX_TRACEPARENT_CHARS) return null;
  const v = header.trim();
  const m = TRACEPARENT.exec(v);
  if (!m) return null;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  // Version 00 has exactly four fields; a later version may add fields after a dash.
  if (version === '00' && rest !== undefined) return null;
  if (rest !== undefined && !/^-[\x21-\x7e]*$/.test(rest)) return null;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1, remote: true };
}

const KEY = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * The caller's tracestate, normalised (members joined by ","), or undefined when absent, oversized,
 * over 32 members, with a duplicate key or any member outside the grammar. Repeated header fields
 * are one list (RFC 9110 §5.3).
 */
export function tracestateOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const joined = Array.isArray(header) ? header.join(',') : header;
  if (joined.length > MAX_TRACESTATE_CHARS) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of joined.split(',')) {
    const member = raw.trim();
    if (member === '') continue; // empty list members are allowed and ignored
    const eq = member.indexOf('=');
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    const value = member.slice(eq + 1);
    if (!KEY.test(key) || !VALUE.test(value) || keys.has(key)) return undefined;
    keys.add(key);
    members.push(`${key}=${value}`);
  }
  if (members.length === 0 || members.length > MAX_TRACESTATE_MEMBERS) return undefined;
  return members.join(',');
}

/** The incoming context of a request: its traceparent, with its tracestate when both are valid. */
export function incomingSpan(headers: Readonly<Record<string, string | string[] | undefined>>): SpanRef | null {
  const parent = parseTraceparent(headers['traceparent']);
  if (parent === null) return null; // a tracestate without a valid traceparent is meaningless (W3C §3.3)
  const state = tracestateOf(headers['tracestate']);
  return state === undefined ? parent : { ...parent, traceState: state };
}

export function formatTraceparent(ref: SpanRef): string {
  return `00-${ref.traceId}-${ref.spanId}-${ref.sampled ? '01' : '00'}`;
}

/** The headers that carry `ref` to the next hop. */
export function propagationHeaders(ref: SpanRef): Record<string, string> {
  const h: Record<string, string> = { traceparent: formatTraceparent(ref) };
  if (ref.traceState !== undefined) h['tracestate'] = ref.traceState;
  return h;
}

// Which A2A endpoint a request below /a2a/<source> names (issue 13, DESIGN §2.2). Pure.
//
// The sidecar's path mirrors the agent's: /a2a/<source> + the path on the agent's origin, so the
// card's interface URLs are rewritten by prefixing (card.ts). Only three things are served: the
// card, the JSON-RPC path, and routes below the REST base. The path is compared in one spelling
// (canonicalPath: %-encoded unreserved characters decoded) and anything an upstream could read as
// another path (%-encoding left, "\", "//", dot segments) is refused, as is every other path:
// the 1.3.0 SDK server matches REST routes case-insensitively, so an upstream must never see a
// spelling the route table (policy/gates/a2a-methods.ts, case-sensitive) did not.
import type { A2aSource } from '../../api/config.js';
import { AGENT_CARD_PATH, type A2aBinding, type A2aMethod } from '../../policy/gates/a2a-methods.js';
import { canonicalPath, isRelayablePath } from '../proxy/request-path.js';

export type A2aEndpoint =
  /** `upstreamPath`: path and query sent to the agent. */
  | { kind: 'card'; upstreamPath: string; query: string }
  | { kind: 'jsonrpc'; upstreamPath: string; query: string }
  /** `route`: the path below the REST base, as restRoute() reads it (e.g. `/message:send`, `/v1/tasks/t1`). */
  | { kind: 'rest'; upstreamPath: string; query: string; route: string }
  | { kind: 'refused'; reason: string };

/** Where the agent serves: its base URL's path (the card is below it) and its a2a block. */
export interface A2aLayout {
  /** The source URL's path ("/" for an origin). */
  basePath: string;
  jsonrpc?: string | undefined;
  rest?: string | undefined;
}

export function layoutOf(url: URL, a2a: Pick<A2aSource, 'jsonrpc' | 'rest'>): A2aLayout {
  return { basePath: url.pathname, jsonrpc: a2a.jsonrpc, rest: a2a.rest };
}

/** The card's path on the agent's origin: `<url>/.well-known/agent-card.json` (the SDKs' createFromUrl rule). */
export function cardPath(basePath: string): string {
  return `${basePath.replace(/\/+$/, '')}${AGENT_CARD_PATH}`;
}

/** `sub`: what follows /a2a/<source> in the request target (path and query). */
export function classifyA2a(sub: string, layout: A2aLayout): A2aEndpoint {
  const q = sub.indexOf('?');
  const raw = q < 0 ? sub : sub.slice(0, q);
  const query = q < 0 ? '' : sub.slice(q);
  // Anywhere in the target: the express servers drop a fragment from the query (?tenant=prod# is
  // tenant "prod" there) while URLSearchParams keeps it ("prod#"), so the gates would read another tenant.
  if (sub.includes('#')) return { kind: 'refused', reason: 'a fragment ("#") is not part of a request target' };
  const path = canonicalPath(raw);
  if (!path.startsWith('/') || !isRelayablePath(path) || path.includes('//'))
    return { kind: 'refused', reason: 'the path must be spelt plainly (no %-encoding of reserved characters, "\\", "//" or dot segments)' };
  if (path === AGENT_CARD_PATH) return { kind: 'card', upstreamPath: `${cardPath(layout.basePath)}${query}`, query };
  if (layout.jsonrpc !== undefined && path === layout.jsonrpc) return { kind: 'jsonrpc', upstreamPath: `${path}${query}`, query };
  const rest = layout.rest;
  if (rest !== undefined) {
    const prefix = rest === '/' ? '' : rest;
    if (path.startsWith(`${prefix}/`) && path.length > prefix.length + 1)
      return { kind: 'rest', upstreamPath: `${path}${query}`, query, route: path.slice(prefix.length) };
  }
  return { kind: 'refused', reason: 'not an A2A endpoint of this agent (its card, JSON-RPC path or REST routes)' };
}

/** A query parameter's values: undefined when absent, a string once, an array when repeated. */
function queryParam(query: string, name: string): string | string[] | undefined {
  if (query === '' || query === '?') return undefined;
  const all = new URLSearchParams(query.slice(1)).getAll(name);
  return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
}

/** The A2A-Version query parameter's values (the spec lets a client send it instead of the header). */
export const versionParam = (query: string) => queryParam(query, 'A2A-Version');

/** The `tenant` query parameter (the JS 1.3.0 REST server reads it when the path names none). */
export const tenantParam = (query: string) => queryParam(query, 'tenant');

/**
 * The query parameters an HTTP+JSON call may carry besides `A2A-Version` and `tenant`: what the SDK
 * clients send (JS 1.3.0/0.3.14, Python 1.3.0) and the SDK servers read. JSON-RPC calls and the
 * card take `A2A-Version` alone.
 */
const REST_QUERY: Partial<Record<A2aMethod, readonly string[]>> = {
  GetTask: ['historyLength'],
  ListTasks: ['contextId', 'status', 'pageSize', 'pageToken', 'historyLength', 'statusTimestampAfter', 'includeArtifacts'],
  ListTaskPushNotificationConfigs: ['pageSize', 'pageToken'],
};

/** At most this many `&`-separated parameters: every call takes fewer (ListTasks: 9). */
export const MAX_QUERY_PARAMS = 32;

/**
 * Why a call's query is refused, or null. The agent must read exactly what the gates decided on,
 * whatever its query parser: only the names the call takes (an allowlist, so `tenant[]=x`, which a
 * qs-style parser reads as a tenant, and every unknown name are refused), each at most once (a
 * repeated name is an array to some parsers, the first or last value to others), no `;` (some
 * parsers split on it too), no empty parameter and at most MAX_QUERY_PARAMS of them: express's
 * parser (querystring, maxKeys 1000) counts empty ones and stops at 1000 while URLSearchParams skips
 * them, so `?` + `&`×1000 + `tenant=x` was tenant x to the gates and none to the agent.
 */
export function queryRefusal(query: string, binding: A2aBinding | 'card', method: A2aMethod): string | null {
  if (query === '' || query === '?') return null;
  if (query.includes(';')) return 'the query has a ";" (some servers split parameters on it)';
  const segments = query.slice(1).split('&');
  if (segments.length > MAX_QUERY_PARAMS) return `the query has more than ${MAX_QUERY_PARAMS} parameters`;
  if (segments.includes('')) return 'the query has an empty parameter ("&&", or a leading or trailing "&")';
  const allowed = new Set(['A2A-Version', ...(binding === 'rest' ? ['tenant', ...(REST_QUERY[method] ?? [])] : [])]);
  const seen = new Set<string>();
  for (const [name] of new URLSearchParams(query.slice(1))) {
    const shown = JSON.stringify(name.length <= 64 ? name : `${name.slice(0, 64)}…`);
    if (!allowed.has(name)) return `query parameter ${shown} is not one ${method} takes (${[...allowed].join(', ')})`;
    if (seen.has(name)) return `query parameter ${shown} is given more than once`;
    seen.add(name);
  }
  return null;
}

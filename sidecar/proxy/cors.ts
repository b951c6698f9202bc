// CORS for browser clients whose Origin is in server.allowedOrigins. Pure: header sets only;
// mcp.ts (and sidecar/a2a/handler.ts, with A2A's profile) decides when they apply. Origins not
// listed never get here (they are refused with -32014).

const METHODS = 'GET, POST, DELETE';

/** Request headers a browser client may send: what the Streamable HTTP transport uses. */
const ALLOWED_REQUEST_HEADERS = new Set([
  'accept',
  'authorization',
  'content-type',
  'last-event-id',
  'mcp-method',
  'mcp-name',
  'mcp-protocol-version',
  'mcp-session-id',
]);

/** Response headers a browser client must be able to read. */
const EXPOSED = 'Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, X-ThoughtGate-Correlation-Id';

/** MCP's Streamable HTTP transport. */
export const MCP_CORS: CorsProfile = { methods: METHODS, requestHeader: corsRequestHeaderAllowed, exposed: EXPOSED };

/** How long a browser may cache a preflight (seconds). */
const MAX_AGE = '600';

/** What one protocol's browser clients send and read. */
export interface CorsProfile {
  methods: string;
  /** Whether a request header name (lower case) may be sent cross-origin. */
  requestHeader(name: string): boolean;
  exposed: string;
}

/** Headers on every response to an allowed origin (the preflight's included). */
export function corsHeaders(origin: string, profile: CorsProfile = MCP_CORS): Record<string, string> {
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': profile.exposed, vary: 'Origin' };
}

/** Whether a header name (lower case) may be sent cross-origin. Mcp-Param-* is the 2026-07-28 family. */
export function corsRequestHeaderAllowed(name: string): boolean {
  return ALLOWED_REQUEST_HEADERS.has(name) || (name.startsWith('mcp-param-') && name.length > 10);
}

/**
 * The answer to a preflight from an allowed origin. The requested headers are reflected when all
 * are allowed; otherwise only the allowed ones are listed, so the browser refuses the request.
 */
export function preflightHeaders(origin: string, requestHeaders: string | undefined, profile: CorsProfile = MCP_CORS): Record<string, string> {
  const asked = (requestHeaders ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const allowed = [...new Set(asked.filter((n) => profile.requestHeader(n)))];
  const h: Record<string, string> = {
    ...corsHeaders(origin, profile),
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    'access-control-allow-methods': profile.methods,
    'access-control-max-age': MAX_AGE,
    'content-length': '0',
  };
  if (allowed.length > 0) h['access-control-allow-headers'] = allowed.join(', ');
  return h;
}

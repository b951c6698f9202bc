// CORS for browser A2A clients: the same policy as MCP's (server.allowedOrigins, sidecar/proxy/cors.ts),
// with what A2A's HTTP bindings send and read. Pure.
import type { CorsProfile } from '../proxy/cors.js';

/**
 * Request headers an A2A client sends (A2A 1.0 §3.2.6 service parameters, the JSON and SSE
 * requests); 0.3 names the extensions header X-A2A-Extensions.
 */
const REQUEST_HEADERS = new Set(['accept', 'authorization', 'content-type', 'a2a-version', 'a2a-extensions', 'x-a2a-extensions']);

export const A2A_CORS: CorsProfile = {
  // DELETE: HTTP+JSON's DeleteTaskPushNotificationConfig.
  methods: 'GET, POST, DELETE',
  requestHeader: (name) => REQUEST_HEADERS.has(name),
  exposed: 'A2A-Version, A2A-Extensions, X-A2A-Extensions, WWW-Authenticate, X-ThoughtGate-Correlation-Id',
};

// How the sidecar reads a request path before deciding on it, shared by the forward proxy (MCP and
// OAuth paths on a source's origin) and the A2A endpoints (sidecar/a2a/classify.ts). Pure.

/** Servers may route %-encoded unreserved characters as their plain form ("/%6dcp" is "/mcp"). */
export function canonicalPath(p: string): string {
  return p.replace(/%([0-9A-Fa-f]{2})/g, (all, h: string) => {
    const c = String.fromCharCode(parseInt(h, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : all.toUpperCase();
  });
}

/**
 * A path relayed as it was sent: no `%` at all (an upstream that decodes %2F or %5C after routing
 * would read `/.well-known/oauth-authorization-server/..%2Fmcp` as `/mcp`, an ungoverned request),
 * no `\\`, no dot segments. Pure.
 */
export function isRelayablePath(raw: string): boolean {
  return !/[%\\]/.test(raw) && !raw.split('/').some((seg) => seg === '.' || seg === '..');
}

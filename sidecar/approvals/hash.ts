// What an approval is bound to: sha256 (hex) of the canonical JSON (api/canonical.ts) of
// {source, tool, arguments} for an MCP tools/call, and of {source, protocol: 'a2a', method,
// params, target: {tenant, version, binding}} for an A2A SendMessage / SendStreamingMessage (method
// canonical, params as parsed: the whole governed thing, message, configuration and metadata).
// The tenant (path, query or params), the A2A version and the binding say where and how the agent
// runs the message: none of them is always in the params, and the same message to tenant B, or
// read as 0.3, is another call. Pure.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../api/canonical.js';

export function requestHash(source: string, tool: string, args: Record<string, unknown>): string {
  return sha256(canonicalJson({ source, tool, arguments: args }));
}

/** Where an A2A call goes besides its source: its tenant ("" for none), protocol version and binding. */
export interface A2aTarget {
  tenant: string;
  version: '0.3' | '1.0';
  binding: 'jsonrpc' | 'rest';
}

/** An A2A call's hash; `method` is the canonical (1.0) name, so a 0.3 spelling binds the same way within its version. */
export function a2aRequestHash(source: string, method: string, params: Record<string, unknown>, target: A2aTarget | null): string {
  const t = target && { tenant: target.tenant, version: target.version, binding: target.binding };
  return sha256(canonicalJson({ source, protocol: 'a2a', method, params, target: t }));
}

/** The call an approval engine keeps: an MCP tool call, or (protocol a2a) an A2A method's params in `arguments`. */
export interface HashedCall {
  protocol?: 'a2a';
  method?: string;
  /** With protocol a2a: where it goes (part of what the hash binds; absent, e.g. a record written before targets were kept, binds as none). */
  target?: A2aTarget;
  tool: string;
  arguments: Record<string, unknown>;
}

/** The hash of whichever kind of call this is. */
export function callHash(source: string, call: HashedCall): string {
  return call.protocol === 'a2a'
    ? a2aRequestHash(source, call.method ?? '', call.arguments, call.target ?? null)
    : requestHash(source, call.tool, call.arguments);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

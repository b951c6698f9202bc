// What an approval is bound to: sha256 (hex) of the canonical JSON (api/canonical.ts) of
// {source, tool, arguments} for an MCP tools/call, and of {source, protocol: 'a2a', method,
// params} for an A2A SendMessage / SendStreamingMessage (method canonical, params as parsed: the
// whole governed thing, message, configuration and metadata). Pure.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../api/canonical.js';

export function requestHash(source: string, tool: string, args: Record<string, unknown>): string {
  return sha256(canonicalJson({ source, tool, arguments: args }));
}

/** An A2A call's hash; `method` is the canonical (1.0) name, so a 0.3 spelling binds the same way. */
export function a2aRequestHash(source: string, method: string, params: Record<string, unknown>): string {
  return sha256(canonicalJson({ source, protocol: 'a2a', method, params }));
}

/** The call an approval engine keeps: an MCP tool call, or (protocol a2a) an A2A method's params in `arguments`. */
export interface HashedCall {
  protocol?: 'a2a';
  method?: string;
  tool: string;
  arguments: Record<string, unknown>;
}

/** The hash of whichever kind of call this is. */
export function callHash(source: string, call: HashedCall): string {
  return call.protocol === 'a2a' ? a2aRequestHash(source, call.method ?? '', call.arguments) : requestHash(source, call.tool, call.arguments);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

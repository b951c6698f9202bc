// What an approval is bound to: sha256 (hex) of the canonical JSON (api/canonical.ts) of
// {source, tool, arguments}. Pure.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../api/canonical.js';

export function requestHash(source: string, tool: string, args: Record<string, unknown>): string {
  return createHash('sha256')
    .update(canonicalJson({ source, tool, arguments: args }))
    .digest('hex');
}

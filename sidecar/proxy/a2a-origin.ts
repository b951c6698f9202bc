// A captured request to an A2A agent's own origin (forward proxy or transparent listener): which
// A2A endpoint it names, as the `sub` that /a2a/<source><sub> would carry, so the A2A handler
// governs it exactly as it governs the sidecar's own /a2a/<source>/ URL. Pure.
//
// The sidecar's /a2a/<source> tree mirrors the agent's origin (sidecar/a2a/classify.ts): the
// JSON-RPC path and the REST routes are the same paths, and the card, at <base path>/.well-known/
// agent-card.json on the origin, is /a2a/<source>/.well-known/agent-card.json. Decided on the path
// as the agent sent it (before the URL parser resolved `%2e%2e`, `..` or `\`), so the spelling the
// agent chose is the one that is refused or governed, never a spelling the parser made up.
import { AGENT_CARD_PATH } from '../../policy/gates/a2a-methods.js';
import { type A2aLayout, cardPath, classifyA2a } from '../a2a/classify.js';
import { canonicalPath } from './request-path.js';

export type A2aOnOrigin = { ok: true; sub: string } | { ok: false; reason: string };

/** `raw`: the request target's path and query as sent. */
export function a2aOnOrigin(raw: string, layout: A2aLayout): A2aOnOrigin {
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? '' : raw.slice(q);
  const canonical = canonicalPath(path);
  // Equal to a plain path, so nothing in it (%2F, "\\", dot segments) can read as another one.
  if (canonical === cardPath(layout.basePath)) return { ok: true, sub: `${AGENT_CARD_PATH}${query}` };
  // An agent whose card is below a base path has nothing at the origin's root card path.
  if (canonical === AGENT_CARD_PATH) return { ok: false, reason: 'not an A2A endpoint of this agent (its card, JSON-RPC path or REST routes)' };
  const ep = classifyA2a(raw, layout);
  return ep.kind === 'refused' ? { ok: false, reason: ep.reason } : { ok: true, sub: raw };
}

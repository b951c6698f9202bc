// Gate 1 for an agent's card (issue 13, DESIGN §2.3): skills filtered by expose.skills, interface
// URLs rewritten to the sidecar so the client keeps talking through it, and interfaces the sidecar
// does not govern dropped (another origin, gRPC, a path that is not the configured JSON-RPC or REST
// one). An edited card cannot keep a JWS signature: `signatures` go when anything changed. Pure.
//
// Both generations: 0.3 cards carry `url` + `preferredTransport` and `additionalInterfaces[]{url,
// transport}`; 1.0 cards `supportedInterfaces[]{url, protocolBinding, tenant, protocolVersion}`.
import { isIP } from 'node:net';
import { isVisible, type Visibility } from '../../policy/gates/visibility.js';
import type { A2aLayout } from './classify.js';

export interface CardRewrite {
  visibility: Visibility;
  /** The agent's origin (scheme://host:port): interfaces elsewhere are dropped. */
  origin: string;
  layout: A2aLayout;
  /** Where the source is served by this sidecar, e.g. `http://127.0.0.1:7467/a2a/billing` (no trailing "/"). */
  sidecarBase: string;
}

export type CardResult = { ok: true; card: Record<string, unknown>; changed: boolean } | { ok: false; reason: string };

const record = (v: unknown): Record<string, unknown> | null =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

/** An interface URL as the sidecar serves it, or null when the sidecar does not govern it. */
function rewriteUrl(url: unknown, binding: unknown, r: CardRewrite): string | null {
  if (typeof url !== 'string') return null;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.origin !== r.origin || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return null;
  const path = u.pathname.replace(/\/+$/, '') || '/';
  const b = typeof binding === 'string' ? binding.toUpperCase() : '';
  if (b === 'JSONRPC' && path === r.layout.jsonrpc) return `${r.sidecarBase}${path}`;
  if (b === 'HTTP+JSON' && path === r.layout.rest) return `${r.sidecarBase}${path}`;
  return null; // GRPC, another binding, or a path the sidecar has no route for
}

/** The interfaces of a list the sidecar governs, their URLs rewritten; null when it is not a list. */
function governedInterfaces(list: unknown, bindingKey: 'protocolBinding' | 'transport', r: CardRewrite): Record<string, unknown>[] | null {
  if (!Array.isArray(list)) return null;
  const kept: Record<string, unknown>[] = [];
  for (const i of list) {
    const it = record(i);
    const url = it ? rewriteUrl(it['url'], it[bindingKey], r) : null;
    if (it && url !== null) kept.push({ ...it, url });
  }
  return kept;
}

/** Filters and rewrites a parsed card; a card whose shape is not a card is refused (never passed unfiltered). */
export function rewriteCard(raw: unknown, r: CardRewrite): CardResult {
  const card = record(raw);
  if (!card) return { ok: false, reason: 'the agent card is not a JSON object' };
  const out: Record<string, unknown> = { ...card };
  let changed = false;

  const skills = card['skills'];
  if (skills !== undefined) {
    if (!Array.isArray(skills)) return { ok: false, reason: 'the agent card skills are not a list' };
    const kept = skills.filter((s) => {
      const id = record(s)?.['id'];
      return typeof id === 'string' && isVisible(r.visibility, 'skill', id);
    });
    if (kept.length !== skills.length) changed = true;
    out['skills'] = kept;
  }

  for (const [key, bindingKey] of [
    ['supportedInterfaces', 'protocolBinding'],
    ['additionalInterfaces', 'transport'],
  ] as const) {
    if (card[key] === undefined) continue;
    const kept = governedInterfaces(card[key], bindingKey, r);
    if (kept === null) return { ok: false, reason: `the agent card ${key} are not a list` };
    out[key] = kept;
    changed = true;
  }
  if (card['url'] !== undefined) {
    // 0.3: the main interface. When it is not governed, the first governed additional one takes its place.
    const main = rewriteUrl(card['url'], card['preferredTransport'] ?? 'JSONRPC', r);
    if (main !== null) out['url'] = main;
    else {
      const next = (out['additionalInterfaces'] as Record<string, unknown>[] | undefined)?.[0];
      if (!next) return { ok: false, reason: 'the agent card names no interface the sidecar governs' };
      out['url'] = next['url'];
      out['preferredTransport'] = next['transport'];
    }
    changed = true;
  }
  if (changed && out['signatures'] !== undefined) delete out['signatures'];
  return { ok: true, card: out, changed };
}

/**
 * The sidecar's own address as a client's connection reached it (its socket's local address and
 * port), for the card's interface URLs: never the Host header, which the client writes (any port
 * passes the Host check for loopback names), so a card's contents depend on nothing a client sends
 * but A2A-Version.
 */
export function ownBase(socket: { localAddress?: string | undefined; localPort?: number | undefined }): string {
  let a = socket.localAddress ?? '127.0.0.1';
  if (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4) a = a.slice(7);
  const host = isIP(a) === 6 ? `[${a.replace('%', '%25')}]` : a;
  return `http://${host}:${socket.localPort ?? 80}`;
}

// The A2A extensions a call asks the agent to activate: the `A2A-Extensions` service parameter
// (1.0; 0.3 spelt it `X-A2A-Extensions`), comma-separated extension URIs. Pure.
//
// Which header each server reads (checked in the SDKs): 1.0 servers (JS 1.3.0, Python 1.3.0) only
// `A2A-Extensions`; JS 0.3.14 only `X-A2A-Extensions`; JS 1.3.0 on 0.3 `X-A2A-Extensions`, else
// `A2A-Extensions`; Python on 0.3 both, united. Each splits on commas, trims and drops empty items.
// So the gates decide on the union of both spellings (which must agree when both are sent: the
// servers would not agree on which counts), and the agent is sent exactly that, under the one name
// every server of the call's version reads.
import type { A2aVersion } from '../../api/config.js';

/** Distinct extensions one call may ask for. */
export const MAX_EXTENSIONS = 16;
/** The longest extension URI. */
export const MAX_EXTENSION_URI = 512;

/** The header the agent is sent, per version (lower case, as Node keys headers). */
export const EXTENSIONS_HEADER: Readonly<Record<A2aVersion, string>> = { '1.0': 'a2a-extensions', '0.3': 'x-a2a-extensions' };
const SPELLINGS = ['a2a-extensions', 'x-a2a-extensions'] as const;

// An absolute URI of visible ASCII, no comma (the separator) and no space.
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x2b\x2d-\x7e]+$/;

export type A2aExtensions =
  | {
      ok: true;
      /** Distinct, in the order first asked for. */
      extensions: string[];
      /** The one header to send the agent (name lower case), or null for none: every other spelling is removed. */
      header: { name: string; value: string } | null;
    }
  | { ok: false; reason: string };

function parse(value: string | string[], name: string): { ok: true; list: string[] } | { ok: false; reason: string } {
  const list: string[] = [];
  // Node joins repeated lines of a header with ", "; an array (set by code) is read the same way.
  for (const item of [value].flat().join(',').split(',')) {
    const uri = item.trim();
    if (uri === '') continue;
    if (uri.length > MAX_EXTENSION_URI) return { ok: false, reason: `${name}: an extension URI is longer than ${MAX_EXTENSION_URI} characters` };
    if (!URI.test(uri)) return { ok: false, reason: `${name}: ${JSON.stringify(uri.slice(0, 64))} is not an extension URI (an absolute URI of visible ASCII)` };
    if (!list.includes(uri)) list.push(uri);
    if (list.length > MAX_EXTENSIONS) return { ok: false, reason: `${name} asks for more than ${MAX_EXTENSIONS} extensions` };
  }
  return { ok: true, list };
}

/** The extensions of a request with these headers (keys lower case, as Node gives them), decided for `version`. */
export function a2aExtensionsOf(headers: Readonly<Record<string, string | string[] | undefined>>, version: A2aVersion): A2aExtensions {
  const named: { name: string; list: string[] }[] = [];
  for (const name of SPELLINGS) {
    const v = headers[name];
    if (v === undefined) continue;
    const p = parse(v, name === 'a2a-extensions' ? 'A2A-Extensions' : 'X-A2A-Extensions');
    if (!p.ok) return p;
    named.push({ name, list: p.list });
  }
  const [a, b] = named;
  if (a && b && (a.list.length !== b.list.length || a.list.some((x) => !b.list.includes(x))))
    return { ok: false, reason: 'A2A-Extensions and X-A2A-Extensions name different extensions (agents differ in which they read): send one' };
  const extensions = a?.list ?? [];
  return { ok: true, extensions, header: extensions.length ? { name: EXTENSIONS_HEADER[version], value: extensions.join(', ') } : null };
}

/**
 * Makes the request's headers carry exactly the decided extensions under the version's one name
 * (both spellings removed first), or says why it cannot: a Connection header naming either
 * spelling would strip the decided one on the way as hop-by-hop, so the call is refused.
 */
export function decideExtensionHeaders(headers: Record<string, string | string[] | undefined>, version: A2aVersion): A2aExtensions {
  const connection = [headers['connection'] ?? ''].flat().join(',').toLowerCase().split(',');
  if (connection.some((t) => (SPELLINGS as readonly string[]).includes(t.trim())))
    return { ok: false, reason: 'the Connection header names an extensions header (the agent would not receive it)' };
  const e = a2aExtensionsOf(headers, version);
  if (!e.ok) return e;
  for (const name of SPELLINGS) delete headers[name];
  if (e.header) headers[e.header.name] = e.header.value;
  return e;
}

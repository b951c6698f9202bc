// The upstream request target of a governed request: the source's own path and query, then the
// agent's query. A source's query parameters are the operator's (a token, a read-only mode):
// servers read repeated parameters differently (first, last, all), so an agent query may not name
// any of them again, in any spelling a server might read as the same name. Pure.

/**
 * A parameter name as lenient servers read it: percent-decoded ('+' is a space), case-folded, cut
 * at the first '[' (PHP and Rails read `a[]` and `a[x]` as `a`), with '.' and ' ' read as '_'
 * (PHP) once surrounding whitespace is dropped. Null when the name does not decode.
 */
export function canonicalParamName(raw: string): string | null {
  let name: string;
  try {
    name = decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return null;
  }
  const bracket = name.indexOf('[');
  if (bracket !== -1) name = name.slice(0, bracket);
  return name.trim().toLowerCase().replace(/[. ]/g, '_');
}

/** The raw names of a query string's parameters; `;` separates too, as some servers read it. */
function paramNames(query: string): string[] {
  if (query === '') return [];
  return query
    .split(/[&;]/)
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq === -1 ? p : p.slice(0, eq);
    });
}

export type UpstreamTarget = { ok: true; path: string } | { ok: false; reason: string };

/** The path and query sent upstream for a request to `requestUrl` on a source at `sourcePath`. */
export function upstreamTarget(sourcePath: string, requestUrl: string | undefined): UpstreamTarget {
  const q = requestUrl?.indexOf('?') ?? -1;
  let agentQuery = q >= 0 ? requestUrl!.slice(q + 1) : '';
  const sq = sourcePath.indexOf('?');
  if (sq >= 0) {
    // In forward-proxy mode the agent names the source's whole URL, its query included: that
    // exact text is the source's own, not a second copy of its parameters.
    const ownQuery = sourcePath.slice(sq + 1);
    if (agentQuery === ownQuery) agentQuery = '';
    else if (agentQuery.startsWith(`${ownQuery}&`)) agentQuery = agentQuery.slice(ownQuery.length + 1);
  }
  if (agentQuery === '') return { ok: true, path: sourcePath };
  if (sq >= 0) {
    const own = new Set(paramNames(sourcePath.slice(sq + 1)).map(canonicalParamName));
    for (const raw of paramNames(agentQuery)) {
      const name = canonicalParamName(raw);
      const shown = JSON.stringify(raw.length > 64 ? `${raw.slice(0, 64)}…` : raw);
      if (name === null) return { ok: false, reason: `query parameter name ${shown} is not valid percent-encoding` };
      if (own.has(name)) return { ok: false, reason: `query parameter ${shown} is set by ThoughtGate for this source and cannot be given by the agent` };
    }
  }
  return { ok: true, path: `${sourcePath}${sq >= 0 ? '&' : '?'}${agentQuery}` };
}

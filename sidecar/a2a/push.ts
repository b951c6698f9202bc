// Push notification URLs are egress (issue 13, DESIGN §2.11): a webhook URL a client hands an A2A
// agent is a request the agent will make for it, from inside the cluster, to wherever the URL says
// (169.254.169.254, a pod's admin port…). So every push URL a call carries (the call's facts.pushUrl:
// a push config create/set, or a config inside SendMessage, both generations, both bindings) is
// decided by the sidecar's own egress lists before the call is forwarded: the same parse
// (destination.ts), the same rules (egress-rules.ts: egress.deny wins, egress.allow lists), the same
// resolver. On top of the forward proxy's rules, because the agent (not the sidecar) connects, and
// to any address the name resolves to:
// - only http: and https:, no userinfo, a host the parse accepts;
// - every resolved address must pass (the agent may connect to any of them);
// - loopback, this host's addresses, link-local (cloud metadata), private, CGNAT, unique-local and
//   multicast addresses need an allow entry that writes its host out (no wildcard), like the forward
//   proxy's local addresses: `*` never opens them.
// The agent resolves the name again when it delivers: a name whose DNS answer changes later (DNS
// rebinding) is outside what the sidecar sees; allow names you control.
import { aliases, defaultPort, hostForUrl, inCidr, isLocalAddress, parseHost } from '../../lib/destination.js';
import { egressVerdict, type EgressRules, nameVerdict } from '../proxy/egress-rules.js';
import { ResolveError, type Resolver } from '../proxy/resolver.js';
import { type A2aRestError, type A2aVersionName, tgRestError } from '../../api/a2a-errors.js';
import { a2aGateError } from '../../api/errors.js';
import type { JsonRpcError } from '../../lib/jsonrpc-reply.js';
import { A2A_ROWS, type A2aBinding, type JsonPath } from '../../policy/gates/a2a-methods.js';
import { Counter, type Registry } from 'prom-client';

/** Address ranges an agent must not be pointed at unless an allow entry names them without wildcards. */
const SPECIAL: readonly [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
];

/**
 * Whether an address (canonical) is not a public unicast one, in any spelling (an IPv6 form that
 * embeds an internal IPv4 address counts): it needs an allow entry that writes its host out.
 */
export function isInternalAddress(address: string, own: ReadonlySet<string> = new Set()): boolean {
  return isLocalAddress(address, own) || aliases(address).some((a) => SPECIAL.some(([net, len]) => inCidr(a, net, len)));
}

export type PushUrlPlan =
  | { ok: true; url: URL; host: ReturnType<typeof parseHost> & { kind: 'name' | 'address' }; port: number; label: string }
  | { ok: false; reason: string };

/** The URL as WHATWG reads it (what the agent's fetch will do), refused when not a plain http(s) URL. Pure. */
export function planPushUrl(raw: string): PushUrlPlan {
  // Parsers disagree on these (WHATWG reads `http://a.example\@169.254.169.254/` as host
  // a.example; httpx, the Python SDK's sender, as 169.254.169.254 with user info): only a URL every
  // parser reads alike is decided on. (Without a backslash, every parser ends the authority at the
  // first / ? or #, and user info in it is refused below.)
  if (/[\\\s\u0000-\u001f\u007f]/.test(raw))
    return { ok: false, reason: 'push notification URL must not contain "\\", whitespace or control characters (parsers read its host differently)' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'push notification URL is not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { ok: false, reason: `push notification URL scheme ${url.protocol} is not allowed (http or https only)` };
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'push notification URL must not carry a user name or password' };
  const host = parseHost(url.hostname);
  if (host.kind === 'invalid') return { ok: false, reason: `push notification URL host is not valid: ${host.reason}` };
  const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
  const label = `${host.kind === 'address' ? hostForUrl(host.address) : host.name}:${port}`;
  return { ok: true, url, host, port, label };
}

export type PushVerdict = { ok: true } | { ok: false; reason: string };

const notAllowed = (label: string, why: string): PushVerdict => ({ ok: false, reason: `push notification URL ${label} is not in egress.allow${why}` });

/**
 * The verdict on a push URL's host once its addresses are known (for a literal address: itself).
 * Every address must pass egressVerdict; an internal one only through an explicit entry. Pure.
 */
export function decidePush(egress: EgressRules, plan: Extract<PushUrlPlan, { ok: true }>, addresses: readonly string[], own: ReadonlySet<string>): PushVerdict {
  if (addresses.length === 0) return notAllowed(plan.label, ' (it has no address)');
  const name = plan.host.kind === 'name' ? { name: plan.host.name } : {};
  for (const address of addresses) {
    const v = egressVerdict(egress, { ...name, addresses: [address], port: plan.port, local: isInternalAddress(address, own) });
    if (!v.ok)
      return notAllowed(
        plan.label,
        v.why === 'denied'
          ? ' (egress.deny)'
          : v.why === 'local'
            ? ` (it reaches ${hostForUrl(address)}, an internal address: egress.allow must name it without wildcards)`
            : address === addresses[0] && addresses.length === 1
              ? ''
              : ` (it resolves to ${hostForUrl(address)})`,
      );
  }
  return { ok: true };
}

export interface PushEnv {
  egress: EgressRules;
  resolver: Resolver;
  /** This host's addresses (resolver.ts ownAddresses()). */
  own: () => ReadonlySet<string>;
}

/**
 * The verdict on one push URL: parse, then (names) nameVerdict before any lookup, so a name no
 * allow entry could admit is refused without a DNS query (a lookup is itself a message to the
 * zone's server), then the resolved addresses. Never throws.
 */
export async function checkPushUrl(env: PushEnv, raw: string): Promise<PushVerdict> {
  const plan = planPushUrl(raw);
  if (!plan.ok) return plan;
  let addresses: string[];
  if (plan.host.kind === 'address') addresses = [plan.host.address];
  else {
    const v = nameVerdict(env.egress, plan.host.name, plan.port);
    if (v !== 'resolve') return notAllowed(plan.label, v === 'denied' ? ' (egress.deny)' : '');
    try {
      addresses = await env.resolver.resolve(plan.host.name);
    } catch (e) {
      return {
        ok: false,
        reason: `push notification URL ${plan.label} could not be checked: ${e instanceof ResolveError ? e.message : 'it does not resolve'}`,
      };
    }
  }
  return decidePush(env.egress, plan, addresses, env.own());
}

/** A member's names as the agent's parser may read them: the JSON name, and the proto field name (snake_case). */
const twins = (key: string): string[] => [...new Set([key, key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)])];

/** The secrets a push config hands the agent, relative to the config. */
const SECRETS: readonly JsonPath[] = [['token'], ['authentication', 'credentials']];

/**
 * Where a call's push config is (the parent of its url, A2A_ROWS' pushUrlAt): none for a method
 * without one; a 0.3 HTTP+JSON create may also nest it in `config` (a2a-operation.ts reads both).
 */
export function pushConfigPlaces(at: { version: A2aVersionName; binding: A2aBinding; canonical: string }): JsonPath[] {
  const row = A2A_ROWS.find((r) => r.version === at.version && r.binding === at.binding && r.canonical === at.canonical && r.pushUrlAt !== null);
  if (!row?.pushUrlAt) return [];
  const own = row.pushUrlAt.slice(0, -1);
  return at.version === '0.3' && at.binding === 'rest' && at.canonical === 'CreateTaskPushNotificationConfig' ? [own, ['config', ...own]] : [own];
}

/** The objects at `path` under `root`, each step by either of its names. */
function objectsAt(root: unknown, path: JsonPath): Record<string, unknown>[] {
  let at: Record<string, unknown>[] = root !== null && typeof root === 'object' && !Array.isArray(root) ? [root as Record<string, unknown>] : [];
  for (const k of path)
    at = at.flatMap((o) =>
      twins(k).flatMap((n) =>
        Object.hasOwn(o, n) && o[n] !== null && typeof o[n] === 'object' && !Array.isArray(o[n]) ? [o[n] as Record<string, unknown>] : [],
      ),
    );
  return at;
}

/**
 * A copy of a call's params fit for a log line or an approval record: the push config's token
 * and authentication.credentials (where this method, version and binding carry one, under either
 * member name) replaced by "[redacted]". Only there: a `token` or `credentials` elsewhere (the
 * message's metadata, a data part) is what the agent reads as the request, so the human sees it.
 * The caller bounded the body.
 */
export function redactPushSecrets(params: unknown, at: { version: A2aVersionName; binding: A2aBinding; canonical: string }): unknown {
  const places = pushConfigPlaces(at);
  if (places.length === 0 || params === null || typeof params !== 'object') return params;
  const out = structuredClone(params);
  for (const place of places)
    for (const cfg of objectsAt(out, place))
      for (const secret of SECRETS)
        for (const holder of objectsAt(cfg, secret.slice(0, -1)))
          for (const n of twins(secret.at(-1)!)) if (Object.hasOwn(holder, n) && holder[n] !== undefined) holder[n] = '[redacted]';
  return out;
}

/** A refused push URL as the client's binding and version expect it: PUSH_URL_NOT_ALLOWED (gate egress, A2A code). */
export function pushRefusal(
  version: A2aVersionName,
  binding: A2aBinding,
  reason: string,
  correlationId: string,
): { binding: 'jsonrpc'; error: JsonRpcError } | { binding: 'rest'; error: A2aRestError } {
  return binding === 'jsonrpc'
    ? { binding, error: a2aGateError('PUSH_URL_NOT_ALLOWED', { reason, correlationId }) }
    : { binding, error: tgRestError(version, 'PUSH_URL_NOT_ALLOWED', { reason, correlationId }) };
}

/** thoughtgate_sidecar_a2a_push_url_refusals_total{source}: push URLs refused (never forwarded). */
export function pushUrlRefusals(registry: Registry, prefix = 'thoughtgate_sidecar_'): (source: string) => void {
  const c = new Counter({
    name: `${prefix}a2a_push_url_refusals_total`,
    help: 'A2A calls refused because their push notification URL is not allowed egress, by source',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  return (source) => c.inc({ source });
}

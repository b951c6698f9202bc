// Captured and proxied requests to an A2A agent's own origin (issue 13): its card, JSON-RPC path and
// REST routes are handed to the A2A handler as /a2a/<source><sub>; every other path, every spelling
// an upstream could read as another path, and every tunnel is refused. Decided on addresses, so every
// spelling of the agent's host gets the same answer.
import { A2A_PASSTHROUGH, IdentitySchema, PolicyDocumentSchema } from '../../api/config.js';
import { formatIssues } from '../../api/issues.js';
import { compileSnapshot, type Snapshot } from '../snapshot.js';
import { a2aOnOrigin } from './a2a-origin.js';
import { layoutOf } from '../a2a/classify.js';
import { transparentTarget } from '../capture/transparent.js';
import { parseAbsolute, parseConnect, planRoute, route, type Facts, type Refusal, type Route, type Target } from './forward-proxy.js';
import { Resolver } from './resolver.js';

function snapshot(sources: unknown[]): Snapshot {
  const doc = PolicyDocumentSchema.parse({ sources, defaultAction: 'forward', egress: { allow: ['*'], deny: [] } });
  const r = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.snapshot;
}

const snap = snapshot([
  { name: 'billing', protocol: 'a2a', url: 'http://10.0.0.5:8080', a2a: { jsonrpc: '/a2a/jsonrpc', rest: '/a2a/rest' } },
  // A second agent on the same address, another port, another layout.
  { name: 'search', protocol: 'a2a', url: 'http://10.0.0.5:9090/agents/search', a2a: { jsonrpc: '/rpc' } },
  // An MCP server and an agent on one origin.
  { name: 'tools', url: 'http://10.0.0.6:7000/mcp' },
  { name: 'helper', protocol: 'a2a', url: 'http://10.0.0.6:7000', a2a: { rest: '/api' } },
  // Over TLS: the sidecar makes the connection itself, through /a2a/<source>/ only.
  { name: 'secure', protocol: 'a2a', url: 'https://10.0.0.7:8443', a2a: { jsonrpc: '/a2a/jsonrpc' } },
]);
const src = (name: string) => snap.sources.get(name)!;
const facts = (address: string): Facts => ({
  addresses: [address],
  sources: [...snap.sources.values()].map((s) => ({ source: s, addresses: [s.url.hostname] })),
  own: new Set(),
});
const planTarget = (t: Target | Refusal): Route =>
  t.kind === 'refused' ? t : planRoute(snap.egress, t, facts(t.host.kind === 'address' ? t.host.address : '203.0.113.9'));
/** The plan for an absolute-form request on the proxy port. */
const plan = (url: string, method = 'POST'): Route => planTarget(parseAbsolute(url, method));
/** The plan for a request on the transparent listener: origin-form `path`, destination from Host. */
const planHost = (host: string, path: string): Route => planTarget(transparentTarget({ method: 'POST', url: path, rawHeaders: ['Host', host] }));

describe('an A2A agent on its own origin', () => {
  test("the card, the JSON-RPC path and the REST routes are the handler's, as /a2a/<source><sub>", () => {
    const base = 'http://10.0.0.5:8080';
    const a2a = (sub: string) => ({ kind: 'a2a', source: src('billing'), sub, base });
    expect(plan(`${base}/.well-known/agent-card.json`, 'GET')).toEqual(a2a('/.well-known/agent-card.json'));
    expect(plan(`${base}/.well-known/agent-card.json?A2A-Version=1.0`, 'GET')).toEqual(a2a('/.well-known/agent-card.json?A2A-Version=1.0'));
    expect(plan(`${base}/a2a/jsonrpc`)).toEqual(a2a('/a2a/jsonrpc'));
    expect(planHost('10.0.0.5:8080', '/a2a/jsonrpc')).toEqual(a2a('/a2a/jsonrpc'));
    expect(planHost('10.0.0.5:8080', '/.well-known/agent-card.json')).toEqual(a2a('/.well-known/agent-card.json'));
    expect(plan(`${base}/a2a/jsonrpc?x=1`)).toEqual(a2a('/a2a/jsonrpc?x=1'));
    for (const route of [
      '/message:send',
      '/message:stream',
      '/v1/message:send',
      '/tasks/t-1',
      '/tasks/t-1:cancel',
      '/extendedAgentCard',
      '/v1/card',
      '/tenant-x/message:send',
    ])
      expect(plan(`${base}/a2a/rest${route}`)).toEqual(a2a(`/a2a/rest${route}`));
    // Routes the handler's table does not know (wrong case included) still go to it: it answers them in A2A's shape.
    expect(plan(`${base}/a2a/rest/Message:Send`)).toEqual(a2a('/a2a/rest/Message:Send'));
    // %-encoded unreserved characters are read as their plain form (the handler sends the canonical path upstream).
    expect(plan(`${base}/%612a/jsonrpc`)).toEqual(a2a('/%612a/jsonrpc'));
  });

  test('the card below a base path is the card; the root one is not', () => {
    const a2a = (sub: string) => ({ kind: 'a2a', source: src('search'), sub, base: 'http://10.0.0.5:9090' });
    expect(plan('http://10.0.0.5:9090/agents/search/.well-known/agent-card.json', 'GET')).toEqual(a2a('/.well-known/agent-card.json'));
    expect(plan('http://10.0.0.5:9090/rpc')).toEqual(a2a('/rpc'));
    expect(plan('http://10.0.0.5:9090/.well-known/agent-card.json', 'GET')).toMatchObject({ kind: 'refused', status: 403 });
    expect(plan('http://10.0.0.5:9090/agents/search/.well-known/%2E%2E/.well-known/agent-card.json', 'GET')).toMatchObject({ kind: 'refused' });
  });

  test("the port decides which agent: each one's paths only on its own port", () => {
    expect(plan('http://10.0.0.5:9090/a2a/jsonrpc')).toMatchObject({ kind: 'refused', status: 403 });
    expect(plan('http://10.0.0.5:8080/rpc')).toMatchObject({ kind: 'refused', status: 403 });
    expect(plan('http://10.0.0.5:8080/agents/search/.well-known/agent-card.json', 'GET')).toMatchObject({ kind: 'refused', status: 403 });
    expect(plan('http://10.0.0.5:9090/rpc')).toMatchObject({ kind: 'a2a', source: { name: 'search' } });
  });

  test.each([
    ['%2e%2e', '/x/%2e%2e/a2a/jsonrpc'],
    ['%2E%2E', '/x/%2E%2E/a2a/jsonrpc'],
    ['..', '/x/../a2a/jsonrpc'],
    ['.', '/a2a/./jsonrpc'],
    ['%2e', '/a2a/%2e/jsonrpc'],
    ['double slash', '/a2a//jsonrpc'],
    ['leading double slash', '//a2a/jsonrpc'],
    ['backslash', '/a2a\\jsonrpc'],
    ['%2F', '/a2a%2Fjsonrpc'],
    ['%5C', '/a2a%5Cjsonrpc'],
    ['trailing slash', '/a2a/jsonrpc/'],
    ['case', '/A2A/JSONRPC'],
    ['case of the card', '/.WELL-KNOWN/agent-card.json'],
    ['REST base alone', '/a2a/rest'],
    ['REST base with a slash', '/a2a/rest/'],
    ['REST route after a dot segment', '/a2a/rest/../rest/message:send'],
    ['REST route with //', '/a2a/rest//message:send'],
    ['the old card path', '/.well-known/agent.json'],
    ['another path', '/admin'],
    ['the root', '/'],
  ])('%s is refused, naming neither the agent nor its paths', (_what, path) => {
    // The same on the proxy port (absolute-form) and on the transparent listener (Host).
    expect(plan(`http://10.0.0.5:8080${path}`)).toEqual(planHost('10.0.0.5:8080', path));
    const r = planHost('10.0.0.5:8080', path);
    expect(r).toMatchObject({ kind: 'refused', status: 403 });
    const reason = (r as { reason: string }).reason;
    expect(reason).toMatch(/^10\.0\.0\.5:8080 is an A2A agent; only its governed endpoints are reachable \(/);
    expect(reason).not.toContain('billing');
    expect(reason).not.toContain('jsonrpc');
    expect(reason).not.toContain('/a2a/rest');
  });

  test("every spelling of the agent's address is the agent (decimal, hex, short, octal, IPv4-mapped IPv6, trailing dot)", () => {
    for (const host of ['10.0.0.5', '167772165', '0xa000005', '10.5', '012.0.0.05', '10.0.0.5.', '[::ffff:10.0.0.5]', '[::ffff:a00:5]']) {
      const r = plan(`http://${host}:8080/a2a/jsonrpc`);
      expect([host, r]).toEqual([host, expect.objectContaining({ kind: 'a2a', source: src('billing'), sub: '/a2a/jsonrpc' })]);
      expect([host, plan(`http://${host}:8080/other`)]).toEqual([host, expect.objectContaining({ kind: 'refused', status: 403 })]);
    }
    // The card points back where the agent addressed it, as the URL parser writes it: captured (or proxied) again.
    expect(plan('http://167772165:8080/a2a/jsonrpc')).toMatchObject({ base: 'http://10.0.0.5:8080' });
    expect(plan('http://[::ffff:10.0.0.5]:8080/a2a/jsonrpc')).toMatchObject({ base: 'http://[::ffff:a00:5]:8080' });
  });

  test("a name resolving to the agent is the agent; the name's spelling (case, trailing dot) does not matter", async () => {
    const named = snapshot([{ name: 'billing', protocol: 'a2a', url: 'http://billing.internal:8080', a2a: { jsonrpc: '/a2a/jsonrpc' } }]);
    const resolver = new Resolver({ lookup: async () => [{ address: '10.0.0.5' }] });
    const env = { resolver, own: () => new Set<string>() };
    for (const host of ['billing.internal', 'BILLING.Internal.', 'other-alias.example'])
      expect(await route(named, parseAbsolute(`http://${host}:8080/a2a/jsonrpc`, 'POST') as Target, env)).toMatchObject({
        kind: 'a2a',
        source: { name: 'billing' },
        sub: '/a2a/jsonrpc',
        base: new URL(`http://${host}:8080`).origin,
      });
    expect(await route(named, parseAbsolute('http://billing.internal:8080/a2a/x', 'POST') as Target, env)).toMatchObject({ kind: 'refused', status: 403 });
  });

  describe('two agents behind one address and port (a gateway routing on Host)', () => {
    const gw = snapshot([
      { name: 'billing', protocol: 'a2a', url: 'http://billing.agents:8080', a2a: { jsonrpc: '/a2a/jsonrpc' }, headers: { 'X-Key': 'billing-key' } },
      { name: 'search', protocol: 'a2a', url: 'http://search.agents:8080', a2a: { jsonrpc: '/a2a/jsonrpc' }, headers: { 'X-Key': 'search-key' } },
      // A third agent configured by the gateway's address itself.
      { name: 'direct', protocol: 'a2a', url: 'http://10.9.9.9:8080', a2a: { rest: '/api' } },
    ]);
    const gwFacts = (addresses: string[]): Facts => ({
      addresses,
      sources: [...gw.sources.values()].map((s) => ({ source: s, addresses: ['10.9.9.9'] })),
      own: new Set(),
    });
    const at = (url: string, method = 'POST') => {
      const t = parseAbsolute(url, method) as Target;
      return planRoute(gw.egress, t, gwFacts(['10.9.9.9']));
    };
    const ambiguous = (host: string) => ({
      kind: 'refused',
      status: 403,
      reason: `${host} reaches more than one governed source, configured under different host names, and names none of them; address the one meant by its own host name, or use http://<sidecar>/a2a/<source>/`,
    });

    test('the host name the client used decides, whatever the config order (case and a trailing dot do not matter)', () => {
      for (const host of ['search.agents', 'SEARCH.Agents.'])
        expect(at(`http://${host}:8080/a2a/jsonrpc`)).toEqual({
          kind: 'a2a',
          source: gw.sources.get('search'),
          sub: '/a2a/jsonrpc',
          base: new URL(`http://${host}:8080`).origin,
        });
      expect(at('http://billing.agents:8080/.well-known/agent-card.json', 'GET')).toMatchObject({ kind: 'a2a', source: { name: 'billing' } });
      // The address names the agent configured by it; its spellings too.
      expect(at('http://10.9.9.9:8080/api/message:send')).toMatchObject({ kind: 'a2a', source: { name: 'direct' } });
      for (const spelt of ['0xa090909', '168364297', '[::ffff:10.9.9.9]'])
        expect([spelt, at(`http://${spelt}:8080/api/message:send`)]).toEqual([
          spelt,
          expect.objectContaining({ kind: 'a2a', source: gw.sources.get('direct') }),
        ]);
      // Only the named agent's endpoints: billing's name does not reach direct's REST routes.
      expect(at('http://billing.agents:8080/api/message:send')).toMatchObject({ kind: 'refused', status: 403 });
      // On the transparent listener, Host names the agent the same way.
      const t = transparentTarget({ method: 'POST', url: '/a2a/jsonrpc', rawHeaders: ['Host', 'search.agents:8080'] }) as Target;
      expect(planRoute(gw.egress, t, gwFacts(['10.9.9.9']))).toMatchObject({ kind: 'a2a', source: { name: 'search' } });
    });

    test('a host that names none of them is refused as ambiguous, naming no agent', () => {
      const two = snapshot([
        { name: 'billing', protocol: 'a2a', url: 'http://billing.agents:8080', a2a: { jsonrpc: '/a2a/jsonrpc' } },
        { name: 'search', protocol: 'a2a', url: 'http://search.agents:8080', a2a: { jsonrpc: '/a2a/jsonrpc' } },
      ]);
      const f: Facts = { addresses: ['10.9.9.9'], sources: [...two.sources.values()].map((s) => ({ source: s, addresses: ['10.9.9.9'] })), own: new Set() };
      for (const [url, host] of [
        ['http://10.9.9.9:8080/a2a/jsonrpc', '10.9.9.9:8080'],
        ['http://gateway.agents:8080/a2a/jsonrpc', 'gateway.agents:8080'],
        ['http://gateway.agents:8080/.well-known/agent-card.json', 'gateway.agents:8080'],
      ]) {
        const r = planRoute(two.egress, parseAbsolute(url!, 'POST') as Target, f);
        expect(r).toEqual(ambiguous(host!));
        expect((r as Refusal).reason).not.toMatch(/billing|search|jsonrpc/);
      }
      // A tunnel is refused as any tunnel to an agent.
      expect(planRoute(two.egress, parseConnect('10.9.9.9:8080') as Target, f)).toMatchObject({
        kind: 'refused',
        reason: expect.stringMatching(/instead of a tunnel$/),
      });
    });

    test('through route(): the names resolve to one address, each is governed as itself', async () => {
      const resolver = new Resolver({ lookup: async () => [{ address: '10.9.9.9' }] });
      const env = { resolver, own: () => new Set<string>() };
      for (const name of ['billing', 'search'])
        expect(await route(gw, parseAbsolute(`http://${name}.agents:8080/a2a/jsonrpc`, 'POST') as Target, env)).toMatchObject({
          kind: 'a2a',
          source: { name },
          base: `http://${name}.agents:8080`,
        });
    });
  });

  describe("OAuth passthrough never opens an agent's origin", () => {
    test('the config refuses auth.mode passthrough on an a2a source (MCP keeps it; custody stays)', () => {
      const agent = { name: 'billing', protocol: 'a2a', url: 'http://10.0.0.5:8080', a2a: { jsonrpc: '/a2a/jsonrpc' } };
      const r = PolicyDocumentSchema.safeParse({ sources: [{ ...agent, auth: { mode: 'passthrough', relayPaths: ['/A2A/JSONRPC'] } }] });
      expect(r.success ? [] : formatIssues(r.error)).toEqual([`sources[0].auth.mode: ${A2A_PASSTHROUGH}`]);
      expect(PolicyDocumentSchema.safeParse({ sources: [{ ...agent, auth: { mode: 'passthrough' } }] }).success).toBe(false);
      expect(PolicyDocumentSchema.safeParse({ sources: [{ name: 'm', url: 'http://10.0.0.5:8080/mcp', auth: { mode: 'passthrough' } }] }).success).toBe(true);
      const custody = { mode: 'clientCredentials', clientId: 'c', clientSecret: { valueFrom: { env: 'SECRET' } } };
      expect(PolicyDocumentSchema.safeParse({ sources: [{ ...agent, auth: custody }] }).success).toBe(true);
    });

    test("an agent's source carrying passthrough (as no config can) relays nothing: discovery and relayPaths are refused", () => {
      // The compiled auth of an MCP passthrough source, put on the agent: the plan must not trust the config alone.
      const pass = snapshot([{ name: 'm', url: 'http://10.0.0.9:1/mcp', auth: { mode: 'passthrough', relayPaths: ['/token', '/A2A/JSONRPC'] } }]);
      const agent = { ...src('billing'), auth: pass.sources.get('m')!.auth };
      const f: Facts = { addresses: ['10.0.0.5'], sources: [{ source: agent, addresses: ['10.0.0.5'] }], own: new Set() };
      for (const [path, method] of [
        ['/.well-known/oauth-authorization-server', 'GET'],
        ['/.well-known/oauth-protected-resource', 'GET'],
        ['/.well-known/openid-configuration', 'HEAD'],
        ['/token', 'POST'],
        ['/A2A/JSONRPC', 'POST'],
      ])
        expect([path, planRoute(snap.egress, parseAbsolute(`http://10.0.0.5:8080${path}`, method) as Target, f)]).toEqual([
          path,
          expect.objectContaining({ kind: 'refused', status: 403 }),
        ]);
      // Its endpoints are still its own.
      expect(planRoute(snap.egress, parseAbsolute('http://10.0.0.5:8080/a2a/jsonrpc', 'POST') as Target, f)).toMatchObject({
        kind: 'a2a',
        sub: '/a2a/jsonrpc',
      });
    });
  });

  test('a tunnel to the agent is refused: the gates cannot see inside it', () => {
    for (const [authority, what, use] of [
      ['10.0.0.5:8080', 'an A2A agent', '/a2a/<source>/'],
      ['167772165:9090', 'an A2A agent', '/a2a/<source>/'],
      ['10.0.0.7:8443', 'an A2A agent', '/a2a/<source>/'],
      ['10.0.0.6:7000', 'a governed source', '/mcp/<source> or /a2a/<source>/'],
    ] as const) {
      const t = parseConnect(authority) as Extract<Target, { kind: 'connect' }>;
      const address = t.host.kind === 'address' ? t.host.address : '';
      expect(planRoute(snap.egress, t, facts(address))).toEqual({
        kind: 'refused',
        status: 403,
        reason: `${address}:${t.port} is ${what}; use http://<sidecar>${use} instead of a tunnel`,
      });
    }
  });

  test('an https:// agent is reached only through /a2a/<source>/ (the sidecar makes the TLS connection)', () => {
    expect(plan('http://10.0.0.7:8443/a2a/jsonrpc')).toEqual({
      kind: 'refused',
      status: 403,
      reason: '10.0.0.7:8443 is an A2A agent; only its governed endpoints are reachable (an https:// agent is reached at http://<sidecar>/a2a/<source>/)',
    });
  });

  test('an MCP server and an agent on one origin: each path to its own handler, the rest refused', () => {
    expect(plan('http://10.0.0.6:7000/mcp')).toEqual({ kind: 'source', source: src('tools') });
    expect(plan('http://10.0.0.6:7000/api/message:send')).toEqual({
      kind: 'a2a',
      source: src('helper'),
      sub: '/api/message:send',
      base: 'http://10.0.0.6:7000',
    });
    expect(plan('http://10.0.0.6:7000/.well-known/agent-card.json', 'GET')).toMatchObject({ kind: 'a2a', source: { name: 'helper' } });
    expect(plan('http://10.0.0.6:7000/other')).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/^10\.0\.0\.6:7000 is a governed source; only its governed endpoints are reachable/),
    });
  });

  test('an MCP source alone keeps its refusals word for word', () => {
    expect(plan('http://10.0.0.6:7000/x').kind).toBe('refused');
    const mcpOnly = snapshot([{ name: 'm', url: 'http://10.0.0.8:7000/mcp' }]);
    const t = parseAbsolute('http://10.0.0.8:7000/x', 'POST') as Target;
    expect(
      planRoute(mcpOnly.egress, t, { addresses: ['10.0.0.8'], sources: [{ source: mcpOnly.sources.get('m')!, addresses: ['10.0.0.8'] }], own: new Set() }),
    ).toEqual({
      kind: 'refused',
      status: 403,
      reason: '10.0.0.8:7000 is an MCP source; only its governed MCP endpoint is reachable',
    });
  });
});

describe('a2aOnOrigin', () => {
  const layout = layoutOf(new URL('http://h:1/base'), { jsonrpc: '/j', rest: '/r' });
  test("maps the card below the base path to the sidecar's card path, keeps every other path as sent", () => {
    expect(a2aOnOrigin('/base/.well-known/agent-card.json', layout)).toEqual({ ok: true, sub: '/.well-known/agent-card.json' });
    expect(a2aOnOrigin('/base/.well-known/agent-card.json?A2A-Version=0.3', layout)).toEqual({ ok: true, sub: '/.well-known/agent-card.json?A2A-Version=0.3' });
    expect(a2aOnOrigin('/b%61se/.well-known/agent-card.json', layout)).toEqual({ ok: true, sub: '/.well-known/agent-card.json' });
    expect(a2aOnOrigin('/j', layout)).toEqual({ ok: true, sub: '/j' });
    expect(a2aOnOrigin('/r/tasks/1', layout)).toEqual({ ok: true, sub: '/r/tasks/1' });
    for (const raw of [
      '',
      'j',
      '#/j',
      '/.well-known/agent-card.json',
      '/base/.well-known/agent-card.json#x',
      '/base//.well-known/agent-card.json',
      '/x/../base/.well-known/agent-card.json',
    ])
      expect([raw, a2aOnOrigin(raw, layout).ok]).toEqual([raw, false]);
  });
});

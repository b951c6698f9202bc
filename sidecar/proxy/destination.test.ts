// A destination is an address: every spelling of one address canonicalises the same way and gets
// the same forward-proxy decision (unit tests, then fast-check properties).
import fc from 'fast-check';
import { compileSnapshot, type Snapshot } from '../snapshot.js';
import { IdentitySchema, PolicyDocumentSchema } from '../../api/config.js';
import { aliases, canonicalAddress, embeddedIPv4, formatIPv4, isLocalAddress, parseHost } from '../../lib/destination.js';
import { compileEgressList, egressVerdict, nameVerdict } from './egress-rules.js';
import { parseAbsolute, parseConnect, planLookup, planRoute, route, type Facts, type Route, type Target } from './forward-proxy.js';
import { ResolveError, Resolver } from './resolver.js';

function snapshot(yaml: { sources: { name: string; url: string }[]; allow?: string[]; deny?: string[] }): Snapshot {
  const doc = PolicyDocumentSchema.parse({
    sources: yaml.sources,
    defaultAction: 'forward',
    egress: { allow: yaml.allow ?? [], deny: yaml.deny ?? [] },
  });
  const r = compileSnapshot(doc, IdentitySchema.parse({}), { hash: 'h', generation: 1 });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.snapshot;
}

const addr = (raw: string) => {
  const h = parseHost(raw);
  return h.kind === 'address' ? h.address : `${h.kind}:${'name' in h ? h.name : h.reason}`;
};

describe('parseHost', () => {
  test.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0X7F000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.000.000.001', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['4294967295', '255.255.255.255'],
    ['[::1]', '::1'],
    ['[0:0:0:0:0:0:0:1]', '::1'],
    ['[::]', '::'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['[::FFFF:7F00:1]', '127.0.0.1'],
    ['[0:0:0:0:0:ffff:7f00:0001]', '127.0.0.1'],
    ['[::ffff:a9fe:a9fe]', '169.254.169.254'],
    ['[FD00:0:0:0:0:0:0:1]', 'fd00::1'],
    ['[2001:db8:0:0:1:0:0:1]', '2001:db8::1:0:0:1'],
    ['[1:0:0:2:0:0:0:3]', '1:0:0:2::3'],
  ])('%s is the address %s', (raw, want) => expect(addr(raw)).toBe(want));

  test.each([
    ['LocalHost', 'localhost'],
    ['localhost.', 'localhost'],
    ['Example.COM.', 'example.com'],
    ['mcp_server.ns.svc', 'mcp_server.ns.svc'],
  ])('%s is the name %s', (raw, want) => expect(parseHost(raw)).toEqual({ kind: 'name', name: want }));

  test.each([
    '4294967296',
    '1.2.3.256',
    '1.2.3.4.5',
    '08.1',
    '127.0.0.08',
    '127..1',
    '[::1%lo]',
    '[fe80::1%25eth0]',
    '[1::2::3]',
    '[::1',
    'a..b',
    'a b',
    '-x.com',
    'x.com..',
    '[::1.2.3.4.5]',
    '[::01.2.3.4]',
  ])('%s is refused', (raw) => expect(parseHost(raw).kind).toBe('invalid'));

  test('embedded IPv4 forms are aliases of their IPv4 address', () => {
    expect(embeddedIPv4('::7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('64:ff9b::a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIPv4('::ffff:0:a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIPv4('2002:a9fe:a9fe::1')).toBe('169.254.169.254');
    expect(embeddedIPv4('::1')).toBeNull();
    expect(aliases('fd00::1')).toEqual(['fd00::1']);
    expect(aliases('0.0.0.0')).toContain('127.0.0.1');
    expect(aliases('::')).toContain('::1');
  });

  test('this host: loopback, unspecified and the interface addresses', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '0.0.0.0', '0.1.2.3', '::1', '::', '::7f00:1']) expect(isLocalAddress(a)).toBe(true);
    for (const a of ['10.0.0.1', 'fd00::1', '169.254.169.254']) expect(isLocalAddress(a)).toBe(false);
    expect(isLocalAddress('10.0.0.1', new Set(['10.0.0.1']))).toBe(true);
    expect(canonicalAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
  });
});

describe('egress entries', () => {
  const rules = (allow: string[], deny: string[] = []) => {
    const a = compileEgressList(allow, 'egress.allow');
    const d = compileEgressList(deny, 'egress.deny');
    expect([...a.errors, ...d.errors]).toEqual([]);
    return { allow: a.entries, deny: d.entries };
  };

  test('an address entry in any spelling denies every spelling of the address, and its embedding forms', () => {
    for (const entry of ['169.254.169.254', '0xa9fea9fe', '[::ffff:a9fe:a9fe]', '169.254.43518', '169.254.0.0/16', '[::ffff:169.254.0.0/112]']) {
      const r = rules(['*'], [entry]);
      for (const a of ['169.254.169.254', '64:ff9b::a9fe:a9fe', '2002:a9fe:a9fe::']) {
        expect(egressVerdict(r, { addresses: [a], port: 80, local: false })).toEqual({ ok: false, why: 'denied' });
      }
      expect(egressVerdict(r, { addresses: ['169.254.170.1'], port: 80, local: false }).ok).toBe(!entry.includes('/'));
    }
  });

  test('a name allowed that resolves to a denied address is denied', () => {
    const r = rules(['*.example.com'], ['10.0.0.0/8']);
    expect(egressVerdict(r, { name: 'api.example.com', addresses: ['93.184.216.34'], port: 443, local: false })).toEqual({ ok: true });
    expect(egressVerdict(r, { name: 'api.example.com', addresses: ['93.184.216.34', '10.1.2.3'], port: 443, local: false })).toEqual({
      ok: false,
      why: 'denied',
    });
  });

  test('globs match canonical names and canonical address text; ports are globs too', () => {
    const r = rules(['API.Example.com.:443', '10.0.0.*:80*', '[fd00::1]:443', 'fd00::2:443']);
    expect(egressVerdict(r, { name: 'api.example.com', addresses: ['1.1.1.1'], port: 443, local: false }).ok).toBe(true);
    expect(egressVerdict(r, { name: 'api.example.com', addresses: ['1.1.1.1'], port: 80, local: false }).ok).toBe(false);
    expect(egressVerdict(r, { addresses: ['10.0.0.7'], port: 8080, local: false }).ok).toBe(true);
    expect(egressVerdict(r, { addresses: ['fd00::1'], port: 443, local: false }).ok).toBe(true);
    expect(egressVerdict(r, { addresses: ['fd00::2'], port: 443, local: false }).ok).toBe(true);
  });

  test("this host's addresses need an entry without wildcards", () => {
    expect(egressVerdict(rules(['*']), { addresses: ['127.0.0.1'], port: 9, local: true })).toEqual({ ok: false, why: 'local' });
    expect(egressVerdict(rules(['*', '127.0.0.1:9']), { addresses: ['127.0.0.1'], port: 9, local: true })).toEqual({ ok: true });
    expect(egressVerdict(rules(['localhost']), { name: 'localhost', addresses: ['127.0.0.1'], port: 9, local: true })).toEqual({ ok: true });
  });

  test('ambiguous or invalid entries are config errors', () => {
    expect(compileEgressList(['::1', '1.2.3.256', 'x.com:abc', '[::1', '10.0.0.0/33'], 'egress.deny').errors).toHaveLength(5);
  });
});

describe('planRoute', () => {
  const snap = snapshot({
    sources: [
      { name: 'e', url: 'http://127.0.0.1:3001/mcp' },
      { name: 'named', url: 'http://mcp.internal:4000/mcp' },
    ],
    allow: ['*'],
    deny: ['169.254.169.254'],
  });
  const facts = (addresses: string[], own: string[] = []): Facts => ({
    addresses,
    sources: [
      { source: snap.sources.get('e')!, addresses: ['127.0.0.1'] },
      { source: snap.sources.get('named')!, addresses: ['10.9.9.9'] },
    ],
    own: new Set(own),
  });
  const abs = (u: string) => parseAbsolute(u) as Target;

  test('every local address at the source port is the source', () => {
    for (const a of ['127.0.0.1', '127.0.0.2', '0.0.0.0', '::1', '::', '::7f00:1', '10.1.1.1']) {
      expect(planRoute(snap.egress, abs('http://x:3001/mcp'), facts([a], ['10.1.1.1']))).toEqual({ kind: 'source', source: snap.sources.get('e') });
      expect(planRoute(snap.egress, abs('http://x:3001/other'), facts([a], ['10.1.1.1']))).toMatchObject({ kind: 'refused', status: 403 });
      expect(planRoute(snap.egress, parseConnect('x:3001') as Target, facts([a], ['10.1.1.1']))).toMatchObject({ kind: 'refused', status: 403 });
    }
  });

  test('a name resolving to a source address is the source; the path is compared canonically', () => {
    expect(planRoute(snap.egress, abs('http://evil.example:4000/%6dcp'), facts(['10.9.9.9']))).toMatchObject({ kind: 'source' });
    expect(planRoute(snap.egress, abs('http://evil.example:4000/mcp'), facts(['1.2.3.4', '10.9.9.9']))).toMatchObject({ kind: 'source' });
    expect(planRoute(snap.egress, abs('http://evil.example:4001/mcp'), facts(['10.9.9.9']))).toMatchObject({ kind: 'egress', address: '10.9.9.9' });
  });

  test('two MCP sources behind one address and port: the host name decides, a host naming neither is refused', () => {
    // Config order puts the other source first: a pick by order would govern the call as it and send its credentials.
    const gw = snapshot({
      sources: [
        { name: 'billing', url: 'http://billing.tools:8080/mcp' },
        { name: 'search', url: 'http://search.tools:8080/mcp' },
      ],
      allow: ['*'],
    });
    const f: Facts = { addresses: ['10.9.9.9'], sources: [...gw.sources.values()].map((s) => ({ source: s, addresses: ['10.9.9.9'] })), own: new Set() };
    for (const host of ['search.tools', 'Search.TOOLS.'])
      expect(planRoute(gw.egress, abs(`http://${host}:8080/mcp`), f)).toEqual({ kind: 'source', source: gw.sources.get('search') });
    expect(planRoute(gw.egress, abs('http://billing.tools:8080/mcp'), f)).toEqual({ kind: 'source', source: gw.sources.get('billing') });
    for (const [u, host] of [
      ['http://10.9.9.9:8080/mcp', '10.9.9.9:8080'],
      ['http://alias.example:8080/mcp', 'alias.example:8080'],
    ])
      expect(planRoute(gw.egress, abs(u!), f)).toEqual({
        kind: 'refused',
        status: 403,
        reason: `${host} reaches more than one governed source, configured under different host names, and names none of them; address the one meant by its own host name, or use http://<sidecar>/mcp/<source>`,
      });
    // One source's host alone keeps its refusal word for word.
    expect(planRoute(gw.egress, abs('http://search.tools:8080/other'), f)).toEqual({
      kind: 'refused',
      status: 403,
      reason: 'search.tools:8080 is an MCP source; only its governed MCP endpoint is reachable',
    });
  });

  test('default ports are explicit: http://localhost/mcp is a source at 127.0.0.1:80', () => {
    const s80 = snapshot({ sources: [{ name: 'p80', url: 'http://127.0.0.1/mcp' }], allow: ['*'] });
    const f: Facts = { addresses: ['127.0.0.1'], sources: [{ source: s80.sources.get('p80')!, addresses: ['127.0.0.1'] }], own: new Set() };
    for (const u of ['http://localhost/mcp', 'http://LOCALHOST.:80/mcp', 'http://127.1:080/mcp'])
      expect(planRoute(s80.egress, abs(u), f)).toMatchObject({ kind: 'source' });
    expect(planRoute(s80.egress, parseConnect('localhost:80') as Target, f)).toMatchObject({ kind: 'refused', status: 403 });
    expect(planRoute(s80.egress, parseConnect('localhost:0080') as Target, f)).toMatchObject({ kind: 'refused', status: 403 });
  });

  test('a deny on 127.0.0.1 also holds for 0.0.0.0, which reaches it', () => {
    const s = snapshot({ sources: [], allow: ['0.0.0.0:9'], deny: ['127.0.0.1'] });
    expect(planRoute(s.egress, parseConnect('0.0.0.0:9') as Target, { addresses: ['0.0.0.0'], sources: [], own: new Set() })).toMatchObject({
      kind: 'refused',
      status: 403,
    });
  });

  test("the sidecar's own port is reachable without an egress entry (it governs what arrives)", () => {
    const s = snapshot({ sources: [], allow: ['*'] });
    const f = (a: string): Facts => ({ addresses: [a], sources: [], own: new Set(), selfPort: 7467 });
    expect(planRoute(s.egress, abs('http://localhost:7467/mcp/e'), f('127.0.0.1'))).toMatchObject({ kind: 'egress', address: '127.0.0.1' });
    expect(planRoute(s.egress, parseConnect('127.0.0.1:7467') as Target, f('127.0.0.1'))).toMatchObject({ kind: 'tunnel' });
    expect(planRoute(s.egress, abs('http://localhost:7469/metrics'), f('127.0.0.1'))).toMatchObject({ kind: 'refused', status: 403 });
  });

  test('egress connects to the decided address', () => {
    expect(planRoute(snap.egress, abs('http://api.example/x'), facts(['93.184.216.34']))).toMatchObject({ kind: 'egress', address: '93.184.216.34', port: 80 });
    expect(planRoute(snap.egress, parseConnect('API.example.:443') as Target, facts(['2001:db8::1']))).toEqual({
      kind: 'tunnel',
      address: '2001:db8::1',
      port: 443,
    });
    expect(planRoute(snap.egress, abs('http://0xa9fea9fe/latest'), facts(['169.254.169.254']))).toMatchObject({ kind: 'refused', status: 403 });
  });

  test('full-width and percent-encoded hosts get the URL parser reading', () => {
    expect((parseConnect('\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11:80') as Target).host).toEqual({ kind: 'address', address: '127.0.0.1' });
    expect(abs('http://127%2e0%2e0%2e1/mcp').host).toEqual({ kind: 'address', address: '127.0.0.1' });
    expect(abs('http://LOCAL%48OST./mcp').host).toEqual({ kind: 'name', name: 'localhost' });
  });

  test('malformed targets are refused with 400', () => {
    for (const a of ['x', 'x:0', 'x:65536', '[::1%lo]:80', 'a@b:80', 'a%2eb:80', '1.2.3.256:80', ':80', 'a b:80'])
      expect(parseConnect(a)).toMatchObject({ kind: 'refused', status: 400 });
    for (const u of ['https://x/', 'http://1.2.3.256/', 'nonsense']) expect(parseAbsolute(u)).toMatchObject({ kind: 'refused', status: 400 });
  });
});

describe('route (resolution, then the plan)', () => {
  const snap = snapshot({ sources: [{ name: 'named', url: 'http://mcp.internal:4000/mcp' }], allow: ['*'] });

  test('the address resolved once is the one connected to, whatever DNS says later (rebinding)', async () => {
    const answers = [[{ address: '93.184.216.34' }], [{ address: '127.0.0.1' }]];
    let n = 0;
    const resolver = new Resolver({ lookup: async (name) => (name === 'mcp.internal' ? [{ address: '10.9.9.9' }] : answers[Math.min(n++, 1)]!) });
    const r = await route(snap, parseConnect('rebind.example:4000') as Target, { resolver, own: () => new Set() });
    expect(r).toEqual({ kind: 'tunnel', address: '93.184.216.34', port: 4000 });
    // Cached: the second answer is not even asked for within the ttl.
    expect(await route(snap, parseConnect('rebind.example:4000') as Target, { resolver, own: () => new Set() })).toEqual(r);
  });

  test('an unresolvable source refuses the destinations on its port (it might be them)', async () => {
    const resolver = new Resolver({
      lookup: async (name) => {
        if (name === 'mcp.internal') throw Object.assign(new Error('x'), { code: 'ENOTFOUND' });
        return [{ address: '93.184.216.34' }];
      },
    });
    expect(await route(snap, parseConnect('a.example:4000') as Target, { resolver, own: () => new Set() })).toMatchObject({ kind: 'refused', status: 502 });
    expect(await route(snap, parseConnect('a.example:443') as Target, { resolver, own: () => new Set() })).toMatchObject({ kind: 'tunnel' });
  });

  test('the resolver is bounded: timeout, in-flight cap, cache size, ttl', async () => {
    const results: string[] = [];
    let now = 0;
    const never = new Resolver({
      timeoutMs: 20,
      maxInFlight: 1,
      lookup: () => new Promise(() => undefined),
      metrics: { lookup: (r) => results.push(r), cacheSize: () => undefined },
    });
    const first = never.resolve('slow.example');
    await expect(never.resolve('other.example')).rejects.toMatchObject({ kind: 'busy' });
    await expect(first).rejects.toBeInstanceOf(ResolveError);
    expect(results).toEqual(['miss', 'busy', 'timeout']);
    let calls = 0;
    const r = new Resolver({
      maxEntries: 2,
      ttlMs: 100,
      now: () => now,
      lookup: async () => {
        calls++;
        return [{ address: '::ffff:1.2.3.4' }];
      },
    });
    expect(await r.resolve('a')).toEqual(['1.2.3.4']);
    await r.resolve('b');
    await r.resolve('c');
    expect(r.size).toBe(2);
    await r.resolve('c');
    expect(calls).toBe(3);
    now = 200;
    await r.resolve('c');
    expect(calls).toBe(4);
  });
});

describe('which names are resolved at all (the resolver is a channel out of the pod)', () => {
  const rules = (allow: string[], deny: string[] = []) => ({ allow: compileEgressList(allow, 'a').entries, deny: compileEgressList(deny, 'd').entries });

  test('nameVerdict: only an allow entry that could match the name, or any address entry on the port, resolves', () => {
    expect(nameVerdict(rules(['*.example.com']), 'api.example.com', 443)).toBe('resolve');
    expect(nameVerdict(rules(['*.example.com']), 'data.attacker.example', 443)).toBe('unlisted');
    expect(nameVerdict(rules(['api.example.com:443']), 'api.example.com', 80)).toBe('unlisted');
    expect(nameVerdict(rules(['*']), 'anything.example', 80)).toBe('resolve');
    for (const a of ['10.0.0.5', '10.0.0.0/8', '[fd00::/8]', '10.0.0.*', '[fd00::*]']) {
      expect([a, nameVerdict(rules([a]), 'data.attacker.example', 443)]).toEqual([a, 'resolve']);
      expect([a, nameVerdict(rules([`${a}:8443`]), 'data.attacker.example', 443)]).toEqual([a, 'unlisted']);
    }
    expect(nameVerdict(rules([]), 'x.example', 80)).toBe('unlisted');
    expect(nameVerdict(rules(['*'], ['*.attacker.example']), 'data.attacker.example', 80)).toBe('denied');
  });

  test('planLookup: a source on that port resolves (canonical name); an unlisted name is refused as unlisted egress', () => {
    const snap = snapshot({ sources: [{ name: 'n', url: 'http://MCP.Internal.:4000/mcp' }], allow: ['*.example.com'] });
    const t = (s: string) => parseAbsolute(`http://${s}/x`) as Target;
    expect(planLookup(snap, t('mcp.internal:4000'))).toBeNull();
    expect(planLookup(snap, t('api.example.com'))).toBeNull();
    expect(planLookup(snap, t('127.0.0.1:9'))).toBeNull(); // an address needs no lookup
    expect(planLookup(snap, t('mcp.internal:4001'))).toEqual({
      kind: 'refused',
      status: 403,
      reason: 'egress to mcp.internal:4001 is not allowed (see egress.allow)',
    });
    expect(planLookup(snap, t('localhost:4000'))).toMatchObject({ kind: 'refused', status: 403 });
    expect(planLookup(snap, t('localhost:7467'), 7467)).toBeNull(); // the sidecar itself, by a client whose NO_PROXY misses it
    expect(planLookup(snap, parseConnect('c2VjcmV0.attacker.example:443') as Target)).toMatchObject({ kind: 'refused', status: 403 });
  });

  test('route: an unlisted name is refused and never reaches the resolver (lookups counted)', async () => {
    const asked: string[] = [];
    const results: string[] = [];
    const resolver = new Resolver({
      lookup: async (name) => {
        asked.push(name);
        return [{ address: name === 'mcp.internal' ? '10.9.9.9' : '93.184.216.34' }];
      },
      metrics: { lookup: (r) => results.push(r), cacheSize: () => undefined },
    });
    const snap = snapshot({ sources: [{ name: 'n', url: 'http://mcp.internal:4000/mcp' }], allow: ['*.example.com'] });
    const env = { resolver, own: () => new Set<string>() };
    for (const target of [
      parseConnect('c2VjcmV0.attacker.example:443'),
      parseAbsolute('http://c2VjcmV0.attacker.example/'),
      parseConnect('c2VjcmV0.attacker.example:4000'),
      parseAbsolute('http://localhost:4000/mcp'),
    ])
      expect(await route(snap, target as Target, env)).toMatchObject({ kind: 'refused', status: 403, reason: expect.stringContaining('see egress.allow') });
    expect(asked).toEqual([]);
    expect(results).toEqual([]);
    // The counter counts: an allowed name is looked up, and so is the source on its port.
    expect(await route(snap, parseConnect('api.example.com:4000') as Target, env)).toMatchObject({ kind: 'tunnel' });
    expect(asked).toEqual(['api.example.com', 'mcp.internal']);
  });
});

// ------------------------------------------------------------------ properties

/** An IPv4 address written in one of the many forms the URL parser and inet_aton accept. */
const ipv4Spelling = fc
  .tuple(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.integer({ min: 1, max: 4 }),
    fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }),
    fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 4, maxLength: 4 }),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([v, parts, radixes, zeros, upper, dot]) => {
    const bytes = [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
    // The last part carries the remaining bytes: 127.1, 127.0.1, 2130706433.
    const nums = [...bytes.slice(0, parts - 1), bytes.slice(parts - 1).reduce((a, b) => a * 256 + b, 0)];
    const text = nums
      .map((n, i) => {
        const z = '0'.repeat(zeros[i]!);
        switch (radixes[i]) {
          case 1:
            return `0${z}${n.toString(8)}`;
          case 2: {
            const h = `0x${z}${n.toString(16)}`;
            return upper ? h.toUpperCase() : h;
          }
          case 3:
            return n === 0 ? '0x' : `0X${n.toString(16)}`;
          default:
            return String(n);
        }
      })
      .join('.');
    return { v, text: dot ? `${text}.` : text };
  });

/** The same address as IPv4-mapped IPv6, in its dotted or hex form, compressed or not. */
const mappedSpelling = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 3 }), fc.boolean()).map(([v, form, upper]) => {
  const hi = (v >>> 16).toString(16),
    lo = (v & 0xffff).toString(16);
  const texts = [`::ffff:${formatIPv4(v)}`, `::ffff:${hi}:${lo}`, `0:0:0:0:0:ffff:${hi.padStart(4, '0')}:${lo}`, `0000::FFFF:${formatIPv4(v)}`];
  const t = texts[form]!;
  return { v, text: `[${upper ? t.toUpperCase() : t}]` };
});

const anySpelling = fc.oneof(ipv4Spelling, mappedSpelling);

describe('properties: every spelling of an address gets the same canonical form and decision', () => {
  test('parseHost, the URL parser and CONNECT agree on the canonical address', () => {
    fc.assert(
      fc.property(anySpelling, fc.integer({ min: 1, max: 65535 }), ({ v, text }, port) => {
        const want = formatIPv4(v);
        expect(parseHost(text)).toEqual({ kind: 'address', address: want });
        const a = parseAbsolute(`http://${text}:${port}/mcp`) as Extract<Target, { kind: 'http' }>;
        expect(a.host).toEqual({ kind: 'address', address: want });
        expect(a.port).toBe(port);
        expect((parseConnect(`${text}:${port}`) as Target).host).toEqual({ kind: 'address', address: want });
      }),
      { numRuns: 2000 },
    );
  });

  test('a source and a denied host are recognised under every spelling, by absolute-form and CONNECT', () => {
    fc.assert(
      fc.property(anySpelling, anySpelling, fc.integer({ min: 1, max: 65535 }), ({ v, text }, deniedEntry, port) => {
        const address = formatIPv4(v);
        const snap = snapshot({ sources: [{ name: 's', url: `http://${address}:${port}/mcp` }], allow: ['*'], deny: [deniedEntry.text.replace(/\.$/, '')] });
        const facts: Facts = { addresses: [address], sources: [{ source: snap.sources.get('s')!, addresses: [address] }], own: new Set() };
        const viaUrl = planRoute(snap.egress, parseAbsolute(`http://${text}:${port}/mcp`) as Target, facts);
        expect(viaUrl).toEqual({ kind: 'source', source: snap.sources.get('s') });
        expect(planRoute(snap.egress, parseConnect(`${text}:${port}`) as Target, facts)).toMatchObject({ kind: 'refused', status: 403 });
        // Another port: not the source, so egress decides; the deny holds for every spelling.
        const other = port === 65535 ? 1 : port + 1;
        const d = formatIPv4(deniedEntry.v);
        const denyFacts: Facts = { addresses: [d], sources: facts.sources, own: new Set() };
        const r: Route = planRoute(snap.egress, parseAbsolute(`http://${deniedEntry.text}:${other}/`) as Target, denyFacts);
        expect(r).toMatchObject({ kind: 'refused', status: 403 });
        expect(planRoute(snap.egress, parseConnect(`${deniedEntry.text}:${other}`) as Target, denyFacts)).toMatchObject({ kind: 'refused', status: 403 });
      }),
      { numRuns: 300 },
    );
  });

  test('parseHost agrees with the WHATWG URL parser on arbitrary numeric-looking hosts', () => {
    const chars = fc.constantFrom(...'0123456789abcdefxX.'.split(''));
    fc.assert(
      fc.property(
        fc.array(chars, { minLength: 1, maxLength: 14 }).map((c) => c.join('')),
        (host) => {
          let url: string | null = null;
          try {
            url = new URL(`http://${host}/`).hostname;
          } catch {
            /* refused */
          }
          const mine = parseHost(host);
          if (url === null) expect(mine.kind).toBe('invalid');
          else if (mine.kind === 'address') expect(mine.address).toBe(url);
          else if (mine.kind === 'name') expect(mine.name).toBe(url.replace(/\.$/, ''));
          else expect(url).not.toMatch(/^\d+\.\d+\.\d+\.\d+$/); // refusing more than the URL parser is safe
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('IPv6 spellings (case, leading zeros, compression) canonicalise like the URL parser', () => {
    const hextets = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(hextets, fc.boolean(), fc.boolean(), (g, pad, upper) => {
        let t = g.map((x) => (pad ? x.toString(16).padStart(4, '0') : x.toString(16))).join(':');
        if (upper) t = t.toUpperCase();
        const url = new URL(`http://[${t}]/`).hostname.slice(1, -1);
        const mine = parseHost(`[${t}]`) as { address: string };
        // The URL parser keeps IPv4-mapped addresses as IPv6; they are the IPv4 host here.
        expect(mine.address).toBe(/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(url) ? canonicalAddress(url) : url);
      }),
      { numRuns: 2000 },
    );
    // fast-check found this one: the mapped prefix with an all-zero address (seeded runs missed it).
    expect((parseHost('[0:0:0:0:0:ffff:0:0]') as { address: string }).address).toBe('0.0.0.0');
  });
});

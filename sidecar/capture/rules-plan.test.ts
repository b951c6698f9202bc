// The capture rules as planned, and the reading of iptables-save output. The rules doing what they
// say in a real kernel: test/capture/capture-init.test.ts.
import fc from 'fast-check';
import type { CaptureSpec } from '../../api/capture.js';
import { jumpsIn, parseSave, planRules, restoreInput, ruleCount, rulesHash, verifySaved } from './rules-plan.js';

const spec: CaptureSpec = {
  uid: 7467,
  redirectPorts: [80, 8080],
  transparentPort: 7470,
  tlsPort: null,
  dns: 'resolv',
  exceptions: [
    { cidr: '10.0.0.0/8', family: 4, port: 5432 },
    { cidr: 'fd00::/8', family: 6, port: null },
  ],
};
const servers = ['10.96.0.10', 'fd00::a'];

describe('planRules', () => {
  it('IPv4: redirect, DNS to the IPv4 resolver, the IPv4 exception, reject the rest', () => {
    expect(planRules(spec, 'ipv4', servers)).toEqual({
      nat: ['-o lo -j RETURN', '-m owner --uid-owner 7467 -j RETURN', '-p tcp -m multiport --dports 80,8080 -j REDIRECT --to-ports 7470'],
      filter: [
        '-o lo -j ACCEPT',
        '-m owner --uid-owner 7467 -j ACCEPT',
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-d 127.0.0.1/32 -p tcp -m multiport --dports 7470 -m conntrack --ctstate DNAT -j ACCEPT',
        '-d 10.96.0.10/32 -p udp --dport 53 -j ACCEPT',
        '-d 10.96.0.10/32 -p tcp --dport 53 -j ACCEPT',
        '-d 10.0.0.0/8 -p tcp --dport 5432 -j ACCEPT',
        '-p tcp -j REJECT --reject-with tcp-reset',
        '-j REJECT --reject-with icmp-port-unreachable',
      ],
    });
  });

  it('IPv6: ::1, neighbour discovery, the IPv6 resolver and exception, icmp6 reject; 443 to the TLS listener', () => {
    const r = planRules({ ...spec, tlsPort: 7471 }, 'ipv6', servers);
    expect(r.nat.slice(2)).toEqual(['-p tcp -m multiport --dports 80,8080 -j REDIRECT --to-ports 7470', '-p tcp --dport 443 -j REDIRECT --to-ports 7471']);
    expect(r.filter).toContain('-d ::1/128 -p tcp -m multiport --dports 7470,7471 -m conntrack --ctstate DNAT -j ACCEPT');
    expect(r.filter).toContain('-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT');
    expect(r.filter.filter((x) => x.includes('--dport 53'))).toEqual([
      '-d fd00::a/128 -p udp --dport 53 -j ACCEPT',
      '-d fd00::a/128 -p tcp --dport 53 -j ACCEPT',
    ]);
    expect(r.filter).toContain('-d fd00::/8 -p tcp -j ACCEPT');
    expect(r.filter.at(-1)).toBe('-j REJECT --reject-with icmp6-port-unreachable');
  });

  it('DNS any / none', () => {
    expect(planRules({ ...spec, dns: 'any' }, 'ipv4', servers).filter.filter((x) => x.includes('53'))).toEqual([
      '-p udp --dport 53 -j ACCEPT',
      '-p tcp --dport 53 -j ACCEPT',
    ]);
    expect(planRules({ ...spec, dns: 'none' }, 'ipv4', servers).filter.some((x) => x.includes('--dport 53'))).toBe(false);
  });

  it('nothing redirected: no REDIRECT, no DNAT acceptance', () => {
    const r = planRules({ ...spec, redirectPorts: [] }, 'ipv4', []);
    expect(r.nat.some((x) => x.includes('REDIRECT'))).toBe(false);
    expect(r.filter.some((x) => x.includes('DNAT'))).toBe(false);
  });

  it('splits redirect ports in groups of 15 (multiport limit)', () => {
    const ports = Array.from({ length: 20 }, (_, i) => 8000 + i);
    const r = planRules({ ...spec, redirectPorts: ports }, 'ipv4', []);
    const redirects = r.nat.filter((x) => x.includes('REDIRECT'));
    expect(redirects).toHaveLength(2);
    expect(redirects[0]).toContain(ports.slice(0, 15).join(','));
    expect(redirects[1]).toContain('--dports 8015,8016,8017,8018,8019 ');
  });

  const arbSpec = fc.record({
    uid: fc.integer({ min: 1, max: 100000 }),
    redirectPorts: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 40 }),
    transparentPort: fc.integer({ min: 1, max: 65535 }),
    tlsPort: fc.option(fc.integer({ min: 1, max: 65535 })),
    dns: fc.constantFrom('resolv' as const, 'any' as const, 'none' as const),
    exceptions: fc.array(
      fc.oneof(
        fc.record({ cidr: fc.constant('10.0.0.0/8'), family: fc.constant(4 as const), port: fc.option(fc.integer({ min: 1, max: 65535 })) }),
        fc.record({ cidr: fc.constant('fd00::/8'), family: fc.constant(6 as const), port: fc.option(fc.integer({ min: 1, max: 65535 })) }),
      ),
      { maxLength: 5 },
    ),
  });
  it('for any spec: filter ends by rejecting everything, every other filter rule accepts, nat never accepts or rejects', () => {
    fc.assert(
      fc.property(arbSpec, fc.constantFrom('ipv4' as const, 'ipv6' as const), (s, family) => {
        const r = planRules(s, family, servers);
        const body = r.filter.slice(0, -2);
        const redirected = r.nat.filter((x) => x.includes('REDIRECT')).flatMap((x) => /--dports? ([\d,]+)/.exec(x)![1]!.split(',').map(Number));
        const expectRedirected = [...s.redirectPorts, ...(s.tlsPort === null ? [] : [443])];
        return (
          r.filter.at(-2) === '-p tcp -j REJECT --reject-with tcp-reset' &&
          r.filter.at(-1)!.startsWith('-j REJECT') &&
          body.every((x) => x.endsWith('-j ACCEPT')) &&
          r.nat.every((x) => /-j (RETURN|REDIRECT)/.test(x)) &&
          redirected.sort((a, b) => a - b).join() === expectRedirected.sort((a, b) => a - b).join() &&
          // Exceptions of the other family never show up.
          !r.filter.some((x) => x.includes(family === 'ipv4' ? 'fd00::/8' : '10.0.0.0/8'))
        );
      }),
    );
  });
});

describe('restoreInput', () => {
  const rules = planRules(spec, 'ipv4', servers);
  it('fresh: declares the chain, inserts the jump first, per table', () => {
    const text = restoreInput(rules);
    expect(text.split('\n').slice(0, 5)).toEqual([
      '*nat',
      ':TG_CAPTURE - [0:0]',
      '-I OUTPUT 1 -j TG_CAPTURE',
      '-A TG_CAPTURE -o lo -j RETURN',
      '-A TG_CAPTURE -m owner --uid-owner 7467 -j RETURN',
    ]);
    expect(text.match(/^COMMIT$/gm)).toHaveLength(2);
    expect(text).not.toContain('-D OUTPUT');
    expect(text.endsWith('COMMIT\n')).toBe(true);
  });
  it('re-run: deletes the jumps that are there, then inserts one', () => {
    const text = restoreInput(rules, { nat: 1, filter: 2 });
    const filter = text.slice(text.indexOf('*filter'));
    expect(filter.match(/^-D OUTPUT -j TG_CAPTURE$/gm)).toHaveLength(2);
    expect(text.match(/^-D OUTPUT -j TG_CAPTURE$/gm)).toHaveLength(3);
    expect(filter.indexOf('-D OUTPUT')).toBeLessThan(filter.indexOf('-I OUTPUT 1'));
  });
});

describe('rulesHash', () => {
  it('is the same for the same plan and differs when a rule does', () => {
    const a = [{ family: 'ipv4' as const, rules: planRules(spec, 'ipv4', servers) }];
    const b = [{ family: 'ipv4' as const, rules: planRules({ ...spec, uid: 7468 }, 'ipv4', servers) }];
    expect(rulesHash(a)).toBe(rulesHash([{ family: 'ipv4', rules: planRules(spec, 'ipv4', servers) }]));
    expect(rulesHash(a)).not.toBe(rulesHash(b));
    expect(rulesHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });
});

// iptables-nft-save's spelling of planRules(spec, 'ipv4', servers): matches written back its way.
const SAVED = `# Generated by iptables-nft-save v1.8.9 (nf_tables) on Sun Dec  6 05:01:25 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:TG_CAPTURE - [0:0]
-A OUTPUT -j TG_CAPTURE
-A OUTPUT -d 192.0.2.1/32 -j ACCEPT
-A TG_CAPTURE -o lo -j ACCEPT
-A TG_CAPTURE -m owner --uid-owner 7467 -j ACCEPT
-A TG_CAPTURE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A TG_CAPTURE -d 127.0.0.1/32 -p tcp -m multiport --dports 7470 -m conntrack --ctstate DNAT -j ACCEPT
-A TG_CAPTURE -d 10.96.0.10/32 -p udp -m udp --dport 53 -j ACCEPT
-A TG_CAPTURE -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j ACCEPT
-A TG_CAPTURE -d 10.0.0.0/8 -p tcp -m tcp --dport 5432 -j ACCEPT
-A TG_CAPTURE -p tcp -j REJECT --reject-with tcp-reset
-A TG_CAPTURE -j REJECT --reject-with icmp-port-unreachable
COMMIT
# Completed on Sun Dec  6 05:01:25 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:TG_CAPTURE - [0:0]
-A OUTPUT -j TG_CAPTURE
-A TG_CAPTURE -o lo -j RETURN
-A TG_CAPTURE -m owner --uid-owner 7467 -j RETURN
-A TG_CAPTURE -p tcp -m multiport --dports 80,8080 -j REDIRECT --to-ports 7470
COMMIT
`;

describe('reading iptables-save', () => {
  const rules = planRules(spec, 'ipv4', servers);
  it('parses tables, chains and rules', () => {
    const t = parseSave(SAVED);
    expect([...t.keys()]).toEqual(['filter', 'nat']);
    expect(t.get('filter')!.rules.get('OUTPUT')).toEqual(['-j TG_CAPTURE', '-d 192.0.2.1/32 -j ACCEPT']);
    expect(ruleCount(SAVED)).toBe(11 + 4);
    expect(ruleCount('')).toBe(0);
    expect(jumpsIn(SAVED)).toEqual({ nat: 1, filter: 1 });
    expect(jumpsIn('')).toEqual({ nat: 0, filter: 0 });
  });
  it('verifies what was planned', () => {
    expect(verifySaved(SAVED, rules)).toEqual([]);
  });
  it('names what is missing or out of place', () => {
    expect(verifySaved('', rules)).toEqual(['nat: no chain TG_CAPTURE', 'filter: no chain TG_CAPTURE']);
    const jumpSecond = SAVED.replace(
      '-A OUTPUT -j TG_CAPTURE\n-A OUTPUT -d 192.0.2.1/32 -j ACCEPT',
      '-A OUTPUT -d 192.0.2.1/32 -j ACCEPT\n-A OUTPUT -j TG_CAPTURE',
    );
    expect(verifySaved(jumpSecond, rules)).toEqual(['filter: OUTPUT does not start with the one jump to TG_CAPTURE (2 rules)']);
    const twice = SAVED.replace(
      '-A OUTPUT -j TG_CAPTURE\n-A TG_CAPTURE -o lo -j RETURN',
      '-A OUTPUT -j TG_CAPTURE\n-A OUTPUT -j TG_CAPTURE\n-A TG_CAPTURE -o lo -j RETURN',
    );
    expect(verifySaved(twice, rules)).toEqual(['nat: OUTPUT does not start with the one jump to TG_CAPTURE (2 rules)']);
    const noReject = SAVED.replace('-A TG_CAPTURE -j REJECT --reject-with icmp-port-unreachable\n', '');
    expect(verifySaved(noReject, rules)).toEqual(['filter: TG_CAPTURE has 8 rules, 9 planned', 'filter: TG_CAPTURE does not end in a REJECT of everything']);
  });
});

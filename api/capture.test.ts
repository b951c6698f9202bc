// The capture strings (flags of capture-init, the webhook's annotations): what is accepted, its
// canonical form, and the message for what is not.
import fc from 'fast-check';
import { parseCaptureCidr, parseCaptureException, parseCaptureExceptions, parseCapturePorts } from './capture.js';

const value = <T>(r: { ok: true; value: T } | { ok: false; error: string }): T => {
  if (!r.ok) throw new Error(r.error);
  return r.value;
};
const error = (r: { ok: true } | { ok: false; error: string }): string => {
  if (r.ok) throw new Error('accepted');
  return r.error;
};

describe('parseCapturePorts', () => {
  it('sorts, deduplicates and trims', () => {
    expect(value(parseCapturePorts('8080, 80,80'))).toEqual([80, 8080]);
    expect(value(parseCapturePorts(' '))).toEqual([]);
    expect(value(parseCapturePorts('65535,1'))).toEqual([1, 65535]);
  });
  it.each([
    ['0', '"0" is not a port'],
    ['65536', '"65536" is not a port'],
    ['80-90', '"80-90" is not a port'],
    ['80,,90', '"" is not a port'],
    ['http', '"http" is not a port'],
    ['080', '"080" is not a port'],
    ['8e1', '"8e1" is not a port'],
  ])('refuses %s', (text, message) => {
    expect(error(parseCapturePorts(text))).toContain(message);
  });
});

describe('parseCaptureCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8', 4],
    ['0.0.0.0/0', '0.0.0.0/0', 4],
    ['192.168.1.7/32', '192.168.1.7/32', 4],
    ['FD00:0::/8', 'fd00::/8', 6],
    ['2001:db8:0:0:0:0:0:1/128', '2001:db8::1/128', 6],
    ['::/0', '::/0', 6],
  ])('%s → %s', (text, cidr, family) => {
    const r = parseCaptureCidr(text);
    expect(r).toEqual({ ok: true, value: { cidr, family }, warnings: [] });
  });
  it('clears host bits and says so', () => {
    expect(parseCaptureCidr('10.1.2.3/8')).toEqual({
      ok: true,
      value: { cidr: '10.0.0.0/8', family: 4 },
      warnings: ['"10.1.2.3/8" has host bits set: using 10.0.0.0/8'],
    });
    const r = parseCaptureCidr('fd12:3456::1/16');
    expect(r.ok && r.value.cidr).toBe('fd12::/16');
    expect(r.ok && r.warnings).toEqual(['"fd12:3456::1/16" has host bits set: using fd12::/16']);
  });
  it.each([
    ['10.0.0.1', 'no prefix length'],
    ['10.0.0/8', 'not an IPv4 or IPv6 address'],
    ['010.0.0.0/8', 'not an IPv4 or IPv6 address'],
    ['0x0a.0.0.0/8', 'not an IPv4 or IPv6 address'],
    ['256.0.0.0/8', 'not an IPv4 or IPv6 address'],
    ['10.0.0.0/33', '"/33" is not a prefix length (0-32)'],
    ['10.0.0.0/08', '"/08" is not a prefix length'],
    ['10.0.0.0/', '"/" is not a prefix length'],
    ['fd00::/129', '"/129" is not a prefix length (0-128)'],
    ['fe80::1%eth0/64', 'not an IPv4 or IPv6 address'],
    ['fd00:::/8', 'not an IPv4 or IPv6 address'],
    ['example.com/8', 'not an IPv4 or IPv6 address'],
    ['::ffff:10.0.0.0/104', 'IPv4-mapped'],
  ])('refuses %s', (text, message) => {
    expect(error(parseCaptureCidr(text))).toContain(message);
  });

  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
  const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
  it('is idempotent and its output is canonical (no warning on a second parse)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.tuple(v4, fc.nat(32)), fc.tuple(v6, fc.nat(128))), ([a, len]) => {
        const first = parseCaptureCidr(`${a}/${len}`);
        if (!first.ok) return first.error.includes('IPv4-mapped');
        const again = parseCaptureCidr(first.value.cidr);
        return again.ok && again.value.cidr === first.value.cidr && again.warnings.length === 0;
      }),
    );
  });
  it('keeps exactly the prefix bits', () => {
    fc.assert(
      fc.property(v4, fc.nat(32), (a, len) => {
        const r = value(parseCaptureCidr(`${a}/${len}`));
        const num = (s: string) => s.split('.').reduce((v, b) => v * 256 + Number(b), 0);
        const net = num(r.cidr.split('/')[0]!);
        const mask = len === 0 ? 0 : 2 ** 32 - 2 ** (32 - len);
        return net === num(a) - (num(a) % 2 ** (32 - len)) && net % 2 ** (32 - len) === 0 && (net & mask) >>> 0 === net;
      }),
    );
  });
});

describe('parseCaptureException', () => {
  it.each([
    ['10.0.0.0/8:5432', { cidr: '10.0.0.0/8', family: 4, port: 5432 }],
    ['10.0.0.0/8:*', { cidr: '10.0.0.0/8', family: 4, port: null }],
    ['fd00::/8:443', { cidr: 'fd00::/8', family: 6, port: 443 }],
    ['[fd00::/8]:443', { cidr: 'fd00::/8', family: 6, port: 443 }],
    ['[2001:db8::1/128]:*', { cidr: '2001:db8::1/128', family: 6, port: null }],
    [' 192.168.0.0/16:22 ', { cidr: '192.168.0.0/16', family: 4, port: 22 }],
  ])('%s', (text, expected) => {
    expect(value(parseCaptureException(text))).toEqual(expected);
  });
  it.each([
    ['10.0.0.0/8', 'expected CIDR:PORT'],
    ['10.0.0.1:443', 'expected CIDR:PORT'],
    ['fd00::/8', 'expected CIDR:PORT'], // no port: the last colon is read as the separator
    ['10.0.0.0/8:', 'expected CIDR:PORT'],
    ['10.0.0.0/8:0', '"0" is not a port (1-65535 or *)'],
    ['10.0.0.0/8:70000', '"70000" is not a port'],
    ['10.0.0.0/8:80-90', '"80-90" is not a port'],
    ['[fd00::/8]443', 'expected CIDR:PORT'],
    ['db.example.com/32:5432', 'not an IPv4 or IPv6 address'],
  ])('refuses %s', (text, message) => {
    expect(error(parseCaptureException(text))).toContain(message);
  });
  it('warns when a whole family passes', () => {
    const r = parseCaptureException('0.0.0.0/0:*');
    expect(r.ok && r.warnings).toEqual(['"0.0.0.0/0:*" lets every TCP connection of this family past capture']);
    expect(parseCaptureException('0.0.0.0/0:443')).toMatchObject({ ok: true, warnings: [] });
  });
});

describe('parseCaptureExceptions', () => {
  it('takes repeated flags and comma lists, drops duplicates after canonicalising', () => {
    const r = parseCaptureExceptions(['10.0.0.0/8:5432, 10.9.9.9/8:5432', 'fd00::/8:443,']);
    expect(r).toEqual({
      ok: true,
      value: [
        { cidr: '10.0.0.0/8', family: 4, port: 5432 },
        { cidr: 'fd00::/8', family: 6, port: 443 },
      ],
      warnings: ['"10.9.9.9/8" has host bits set: using 10.0.0.0/8'],
    });
  });
  it('fails on the first bad entry, naming it', () => {
    expect(error(parseCaptureExceptions(['10.0.0.0/8:5432,10.0.0.0/8:x']))).toBe('"10.0.0.0/8:x": "x" is not a port (1-65535 or *)');
  });
});

import { formatCaptureException, parseCaptureException, parseCaptureExceptions, parseCapturePorts, parseDnsMode } from './capture.js';

describe('capture parsing', () => {
  it('parses port lists, sorted and deduplicated, and names a bad entry', () => {
    expect(parseCapturePorts(' 8080,80, 8080 ,')).toEqual([80, 8080]);
    expect(parseCapturePorts('')).toEqual([]);
    expect(() => parseCapturePorts('80,http')).toThrow('"http" is not a TCP port (1-65535)');
    expect(() => parseCapturePorts('0')).toThrow('"0" is not a TCP port');
    expect(() => parseCapturePorts('65536')).toThrow('"65536" is not a TCP port');
  });

  it('parses exceptions of both families, bare addresses and any port', () => {
    expect(parseCaptureException('10.0.0.0/8:5432')).toEqual({ cidr: '10.0.0.0/8', family: 4, port: 5432 });
    expect(parseCaptureException('fd00::/8:443')).toEqual({ cidr: 'fd00::/8', family: 6, port: 443 });
    expect(parseCaptureException('[2001:db8::1]:*')).toEqual({ cidr: '2001:db8::1/128', family: 6, port: null });
    expect(parseCaptureException('192.0.2.7:*')).toEqual({ cidr: '192.0.2.7/32', family: 4, port: null });
    expect(parseCaptureExceptions('10.0.0.0/8:5432, 192.0.2.7:*').map(formatCaptureException)).toEqual(['10.0.0.0/8:5432', '192.0.2.7/32:*']);
  });

  it('refuses malformed exceptions with the reason', () => {
    expect(() => parseCaptureException('10.0.0.0/8')).toThrow('"10.0.0.0/8" is not CIDR:PORT');
    expect(() => parseCaptureException('example.com:443')).toThrow('"example.com" is not an IPv4 or IPv6 address');
    expect(() => parseCaptureException('10.0.0.0/33:443')).toThrow('prefix length "33" is not 0-32');
    expect(() => parseCaptureException('10.0.0.0/8:99999')).toThrow('port "99999" is not 1-65535 or *');
    expect(() => parseCaptureException('nothing')).toThrow('is not CIDR:PORT');
  });

  it('parses DNS modes', () => {
    expect(parseDnsMode('any')).toBe('any');
    expect(() => parseDnsMode('all')).toThrow('"all" is not one of resolv, any, none');
  });
});

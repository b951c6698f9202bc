// capture-init's flags → options (defaults from api/capture.ts, errors naming the flag), and resolv.conf.
import { CAPTURE_STATE_FILE } from '../../api/capture.js';
import { captureInitOptions, parseResolvConf } from './spec.js';

describe('captureInitOptions', () => {
  it('defaults', () => {
    expect(captureInitOptions({})).toEqual({
      ok: true,
      value: {
        spec: { uid: 7467, redirectPorts: [80], transparentPort: 7470, tlsPort: null, dns: 'resolv', exceptions: [] },
        resolvConf: '/etc/resolv.conf',
        backend: 'auto',
        ipv6: 'auto',
        stateFile: CAPTURE_STATE_FILE,
        dryRun: false,
      },
      warnings: [],
    });
  });

  it('every flag', () => {
    const r = captureInitOptions({
      uid: '1000',
      'redirect-ports': '8080,80',
      'transparent-port': '9000',
      'tls-port': '9001',
      dns: 'none',
      'resolv-conf': '/tmp/r',
      allow: ['10.1.0.0/8:5432', 'fd00::/8:*'],
      backend: 'legacy',
      ipv6: 'off',
      'state-file': '/tmp/s.json',
      'dry-run': true,
    });
    expect(r).toEqual({
      ok: true,
      value: {
        spec: {
          uid: 1000,
          redirectPorts: [80, 8080],
          transparentPort: 9000,
          tlsPort: 9001,
          dns: 'none',
          exceptions: [
            { cidr: '10.0.0.0/8', family: 4, port: 5432 },
            { cidr: 'fd00::/8', family: 6, port: null },
          ],
        },
        resolvConf: '/tmp/r',
        backend: 'legacy',
        ipv6: 'off',
        stateFile: '/tmp/s.json',
        dryRun: true,
      },
      warnings: ['--allow: "10.1.0.0/8" has host bits set: using 10.0.0.0/8'],
    });
    expect(captureInitOptions({ 'redirect-ports': '' })).toMatchObject({ ok: true, value: { spec: { redirectPorts: [] } } });
  });

  it.each([
    [{ uid: '0' }, '--uid 0 would exempt root from capture'],
    [{ uid: 'sidecar' }, '--uid must be a numeric uid, got "sidecar"'],
    [{ uid: '-1' }, '--uid must be a numeric uid'],
    [{ 'redirect-ports': '80,http' }, '--redirect-ports: "http" is not a port (1-65535) in "80,http"'],
    [{ 'transparent-port': '70000' }, '--transparent-port must be one port (1-65535), got "70000"'],
    [{ 'transparent-port': '80,81' }, '--transparent-port must be one port'],
    [{ 'tls-port': '7470' }, '--tls-port and --transparent-port are both 7470'],
    [{ 'tls-port': '7471', 'redirect-ports': '80,443' }, '443 is in --redirect-ports and --tls-port is set'],
    [{ dns: 'cluster' }, '--dns must be one of resolv, any, none, got "cluster"'],
    [{ backend: 'iptables' }, '--backend must be one of auto, nft, legacy'],
    [{ ipv6: 'yes' }, '--ipv6 must be one of auto, on, off'],
    [{ allow: ['10.0.0.0/8'] }, '--allow: "10.0.0.0/8": expected CIDR:PORT'],
  ])('refuses %j', (flags, message) => {
    const r = captureInitOptions(flags);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toContain(message);
  });
});

describe('parseResolvConf', () => {
  it('takes the nameserver lines, canonical, once each, zones dropped', () => {
    const text = [
      '# generated',
      'search default.svc.cluster.local svc.cluster.local',
      'nameserver 10.96.0.10',
      '  nameserver   FD00:0::A  ',
      'nameserver fe80::1%eth0',
      'nameserver 10.96.0.10',
      'options ndots:5',
      '; nameserver 192.0.2.1',
    ].join('\n');
    expect(parseResolvConf(text)).toEqual({ nameservers: ['10.96.0.10', 'fd00::a', 'fe80::1'], warnings: [] });
  });
  it('skips what is not an address, saying so', () => {
    expect(parseResolvConf('nameserver dns.example\nnameserver 1.1.1.1\n')).toEqual({
      nameservers: ['1.1.1.1'],
      warnings: ['resolv.conf: nameserver "dns.example" is not an address: skipped'],
    });
  });
});

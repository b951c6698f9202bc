import { parseResources, webhookTimeoutSeconds, parseApprovalFlags, parseCaptureFlags } from './operator.js';
import { CLI, run } from '../test/support/processes.js';

describe('operator settings', () => {
  test('sidecar resources: either list replaces that half of the defaults', () => {
    expect(parseResources(undefined, undefined)).toBeUndefined();
    expect(parseResources('cpu=100m,memory=128Mi', undefined)).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '192Mi' } });
    expect(parseResources(undefined, 'memory=256Mi')).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
    expect(() => parseResources('cpu=lots', undefined)).toThrow('--sidecar-requests: "cpu=lots" is not');
    expect(() => parseResources('gpu=1', undefined)).toThrow(/is not <cpu\|memory\|ephemeral-storage>/);
  });

  test('webhook timeouts are whole seconds within what Kubernetes allows', () => {
    expect(webhookTimeoutSeconds(undefined)).toBe(5);
    expect(webhookTimeoutSeconds('10s')).toBe(10);
    expect(() => webhookTimeoutSeconds('45s')).toThrow('between 1s and 30s');
    expect(() => webhookTimeoutSeconds('ten')).toThrow('--webhook-timeout');
  });

  test.each([
    [['--sidecar-requests', 'cpu=x'], /--sidecar-requests/],
    [['--sidecar-run-as-user', 'root'], /--sidecar-run-as-user must be a numeric uid/],
    [['--max-pending-approvals', '0'], /--max-pending-approvals must be a whole number/],
    [['--slack-api-url', 'ftp://x'], /--slack-api-url: not an http\(s\) URL/],
    [['--failure-policy', 'Maybe'], /--failure-policy must be one of Fail, Ignore/],
  ])('bad operator flags %j exit 2 with the flag named', async (args, message) => {
    const p = run(process.execPath, [CLI, 'operator', ...args]);
    expect(await p.exited).toBe(2);
    expect(p.err()).toMatch(message);
  });
});

describe('parseApprovalFlags', () => {
  test('defaults are left to the operator; values are parsed', () => {
    expect(parseApprovalFlags({})).toEqual({});
    expect(
      parseApprovalFlags({ maxPending: '50', retention: '2h', slackTimeout: '5s', channelCheckInterval: '1m', slackApiUrls: ['https://slack.com/api/', '*'] }),
    ).toEqual({
      maxPending: 50,
      retentionMs: 7_200_000,
      slackRequestTimeoutMs: 5000,
      channelCheckIntervalMs: 60_000,
      slackApiUrls: ['https://slack.com/api/', '*'],
    });
  });

  test('bad values name their flag', () => {
    expect(() => parseApprovalFlags({ maxPending: '0' })).toThrow('--max-pending-approvals must be a whole number ≥ 1, got "0"');
    expect(() => parseApprovalFlags({ maxPending: '1e3' })).toThrow('--max-pending-approvals');
    expect(() => parseApprovalFlags({ retention: '10' })).toThrow(/^--approval-retention: invalid duration/);
    expect(() => parseApprovalFlags({ retention: '10s' })).toThrow('--approval-retention must be at least 60s');
    expect(() => parseApprovalFlags({ slackApiUrls: ['ftp://x/'] })).toThrow('--slack-api-url: not an http(s) URL: "ftp://x/"');
    expect(() => parseApprovalFlags({ slackApiUrls: ['slack'] })).toThrow('--slack-api-url: not a URL');
  });
});

describe('parseCaptureFlags', () => {
  it('is off with no flags, and parses each flag', () => {
    expect(parseCaptureFlags({})).toEqual({ capture: { enabled: false, tlsPassthrough: false, allowBypassablePods: false }, warnings: [] });
    expect(
      parseCaptureFlags({
        enabled: true,
        ports: '8080,80',
        dns: 'none',
        tlsPassthrough: true,
        allow: ['10.0.0.0/8:5432,fd00::/8:*', '192.0.2.1/24:53'],
        allowBypassablePods: true,
      }),
    ).toEqual({
      capture: {
        enabled: true,
        ports: [80, 8080],
        dns: 'none',
        tlsPassthrough: true,
        exceptions: [
          { cidr: '10.0.0.0/8', family: 4, port: 5432 },
          { cidr: 'fd00::/8', family: 6, port: null },
          { cidr: '192.0.2.0/24', family: 4, port: 53 },
        ],
        allowBypassablePods: true,
      },
      warnings: ['--capture-allow: "192.0.2.1/24" has host bits set: using 192.0.2.0/24'],
    });
  });

  it('names the flag of a bad value', () => {
    expect(() => parseCaptureFlags({ ports: '80,x' })).toThrow('--capture-ports: "x" is not a port (1-65535)');
    expect(() => parseCaptureFlags({ dns: 'cluster' })).toThrow('--capture-dns: "cluster" is not one of resolv, any, none');
    expect(() => parseCaptureFlags({ allow: ['10.0.0.0/8'] })).toThrow('--capture-allow: "10.0.0.0/8": expected CIDR:PORT');
  });
});

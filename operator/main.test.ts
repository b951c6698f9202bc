import { parseResources, webhookTimeoutSeconds } from './main.js';
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

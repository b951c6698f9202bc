// thoughtgate_operator_webhook_certificate_expiry_timestamp_seconds: the notAfter of the certificate
// the webhook serves, through trackCertificateExpiry around the server's certificate source, with
// certificates signed by webhook/x509.ts (what the operator serves by default).
import { createOperatorMetrics, trackCertificateExpiry } from '../../operator/metrics.js';
import { issueCa, issueServing } from '../../webhook/x509.js';

const DAY = 86_400_000;
const value = async (m: ReturnType<typeof createOperatorMetrics>) => (await m.webhookCertificateExpiry.get()).values[0]?.value;

test('the gauge follows the served certificate: none yet, the first, a renewed one; a chain counts by its leaf', async () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const ca = await issueCa({ now, validityMs: 365 * DAY });
  const sans = { dnsNames: ['thoughtgate-webhook.thoughtgate-system.svc'], ipAddresses: [] };
  const first = await issueServing({ ca, sans, now, validityMs: 7 * DAY });
  const renewed = await issueServing({ ca, sans, now: new Date(now.getTime() + 5 * DAY), validityMs: 7 * DAY });
  const m = createOperatorMetrics();
  let served: { cert: string; key: string } | undefined;
  const getTls = trackCertificateExpiry(m.webhookCertificateExpiry, () => served);

  expect(getTls()).toBeUndefined();
  expect(await value(m)).toBe(0);
  served = { cert: first.cert, key: first.key };
  expect(getTls()).toBe(served);
  expect(await value(m)).toBe(Math.floor(first.notAfter.getTime() / 1000));
  served = { cert: renewed.cert + ca.cert, key: renewed.key };
  getTls();
  expect(await value(m)).toBe(Math.floor(renewed.notAfter.getTime() / 1000));
  expect(await m.registry.metrics()).toMatch(/thoughtgate_operator_webhook_certificate_expiry_timestamp_seconds \d{10}/);
});

// The serving certificate when cert-manager issues it (chart value webhook.certManager.enabled):
// the kubelet mounts cert-manager's Secret as a directory (tls.crt, tls.key, ca.crt) and replaces
// its files when cert-manager renews. The operator manages no certificate then; it reads the
// files whenever the webhook server asks (every 10 s), and the cainjector keeps the caBundle.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../lib/log.js';
import type { ServingTls } from './cert.js';
import { describeError } from '../lib/describe-error.js';

export class MountedCertificate {
  private last: ServingTls | undefined;
  private lastError = '';

  constructor(
    private readonly dir: string,
    private readonly log?: Logger,
  ) {}

  /**
   * The certificate in the directory now, or the last good one when the files cannot be read or
   * do not fit together (the kubelet swaps the files at once, but a read can straddle the swap).
   */
  current(): ServingTls | undefined {
    try {
      const cert = readFileSync(join(this.dir, 'tls.crt'), 'utf8');
      const key = readFileSync(join(this.dir, 'tls.key'), 'utf8');
      let ca = '';
      try {
        ca = readFileSync(join(this.dir, 'ca.crt'), 'utf8');
      } catch {
        // An issuer that publishes no CA (e.g. a public ACME CA): ca.crt is optional.
      }
      if (this.last && this.last.cert === cert && this.last.key === key) return this.last;
      if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) throw new Error('tls.key does not match tls.crt');
      this.last = { cert, key, ca };
      this.lastError = '';
    } catch (err) {
      const message = describeError(err);
      // Logged once per distinct problem, not every poll.
      if (message !== this.lastError) this.log?.warn('webhook certificate files unusable; keeping the last good ones', { dir: this.dir, error: message });
      this.lastError = message;
    }
    return this.last;
  }
}

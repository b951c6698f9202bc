// The installation's names. The chart passes every name the operator uses as a flag of its
// Deployment (charts/thoughtgate/templates/deployment.yaml), so they are read from there; an
// absent flag means the operator's default (cmd/operator.ts DEFAULTS, pinned by a test).
import { DEFAULT_WEBHOOK_NAME, REQUIRED_WEBHOOK_PREFIX } from '../webhook/config.js';
import type { Deployment, Installation } from './model.js';

export const DEFAULT_NAMESPACE = 'thoughtgate-system';
export const DEFAULT_NAMES = {
  lease: 'thoughtgate-operator',
  secret: 'thoughtgate-webhook-tls',
  webhookConfig: 'thoughtgate',
} as const;
/** The chart's selector labels of the operator Deployment. */
export const OPERATOR_SELECTOR = 'app.kubernetes.io/name=thoughtgate,app.kubernetes.io/component=operator';
/** The webhooks every ThoughtGate installation registers (webhook/config.ts). */
export const WEBHOOK_NAMES = [DEFAULT_WEBHOOK_NAME, REQUIRED_WEBHOOK_PREFIX + DEFAULT_WEBHOOK_NAME] as const;
/** The chart's volume of cert-manager's Secret. */
const CERT_VOLUME = 'webhook-tls';

/** The value of `--name` in args (`--name=v` or `--name v`), true for a bare flag, undefined when absent. */
export function flag(args: readonly string[], name: string): string | true | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) {
      const next = args[i + 1];
      return next !== undefined && !next.startsWith('--') ? next : true;
    }
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

export function installationFrom(deployment: Deployment | null, namespace: string): Installation {
  const containers = deployment?.spec?.template?.spec?.containers ?? [];
  const args = (containers.find((c) => c.name === 'operator') ?? containers[0])?.args ?? [];
  const text = (name: string, fallback: string) => {
    const v = flag(args, name);
    return typeof v === 'string' && v ? v : fallback;
  };
  const certManager = flag(args, 'webhook-cert-dir') !== undefined;
  const volume = deployment?.spec?.template?.spec?.volumes?.find((v) => v.name === CERT_VOLUME);
  return {
    namespace,
    leaseName: text('lease-name', DEFAULT_NAMES.lease),
    leaderElection: flag(args, 'no-leader-election') === undefined,
    webhook: flag(args, 'no-webhook') === undefined,
    webhookConfigName: text('webhook-config', DEFAULT_NAMES.webhookConfig),
    secretName: certManager ? (volume?.secret?.secretName ?? null) : text('webhook-secret', DEFAULT_NAMES.secret),
    certManager,
  };
}

// The operator's transport for kube/'s reflector: the server, TLS material and credentials of the
// KubeConfig it already loaded (client-node stays its config loader and its client for writes).
import type https from 'node:https';
import type * as k8s from '@kubernetes/client-node';
import { KubeError } from '../kube/protocol.js';
import { createTransport, type Credentials, type Transport, type TransportOptions } from '../kube/transport.js';

/** What client-node would put on a request: TLS options and headers (Authorization). */
async function httpsOptions(kc: k8s.KubeConfig): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  return opts;
}

/**
 * Credentials from a KubeConfig: client certificates, a CA, tokens (static, a token file, or an
 * exec/OIDC provider, which client-node caches and refreshes). Asked again after a 401.
 */
export function kubeConfigCredentials(kc: k8s.KubeConfig): Credentials {
  const user = kc.getCurrentUser();
  return {
    describe: `kubeconfig context ${kc.getCurrentContext()} (user ${user?.name ?? 'none'})`,
    async tls() {
      const o = await httpsOptions(kc);
      const cluster = kc.getCurrentCluster();
      return {
        ...(o.ca ? { ca: o.ca as string | Buffer } : {}),
        ...(o.cert ? { cert: o.cert as string | Buffer } : {}),
        ...(o.key ? { key: o.key as string | Buffer } : {}),
        ...(cluster?.skipTLSVerify ? { rejectUnauthorized: false } : {}),
        ...(cluster?.tlsServerName ? { servername: cluster.tlsServerName } : {}),
      };
    },
    async authorization() {
      const o = await httpsOptions(kc);
      const h = (o.headers ?? {}) as Record<string, string | undefined>;
      if (h.Authorization ?? h.authorization) return h.Authorization ?? h.authorization;
      // Basic auth, which client-node puts in `auth`.
      return o.auth ? `Basic ${Buffer.from(o.auth).toString('base64')}` : undefined;
    },
  };
}

export function transportFromKubeConfig(kc: k8s.KubeConfig, extra: Omit<TransportOptions, 'server' | 'credentials'> = {}): Transport {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeError('config', 'the kubeconfig has no current cluster');
  return createTransport({ userAgent: 'thoughtgate-operator', connections: 8, ...extra, server: cluster.server, credentials: kubeConfigCredentials(kc) });
}

/** A kubeconfig that cannot be used: unreadable, no such context, no cluster. */
export class KubeConfigError extends Error {}

/**
 * Loads a kubeconfig as kubectl does (client-node: $KUBECONFIG, else ~/.kube/config; contexts,
 * exec and OIDC credentials), for the commands people run (check, approve, reject).
 */
export async function loadKubeConfig(o: { kubeconfig?: string; context?: string }): Promise<k8s.KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new KubeConfigError(`cannot load the kubeconfig${o.kubeconfig ? ` ${o.kubeconfig}` : ''}: ${(err as Error).message}`);
  }
  if (o.context) {
    if (!kc.getContextObject(o.context)) throw new KubeConfigError(`the kubeconfig has no context "${o.context}"`);
    kc.setCurrentContext(o.context);
  }
  if (!kc.getCurrentCluster()) throw new KubeConfigError('the kubeconfig has no current cluster (pass --kubeconfig or --context)');
  return kc;
}

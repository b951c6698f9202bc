// `thoughtgate check`: kubeconfig → kube/'s transport → one snapshot → pure checks → output.
// The kubeconfig is loaded by client-node's KubeConfig (contexts, exec and OIDC credentials, as
// kubectl reads them); every request goes through kube/'s undici transport, which has connect and
// request timeouts (client-node's requests have none) and errors by category (a 403 is told apart
// from an unreachable server).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Transport } from '../kube/transport.js';
import { KubeConfigError, loadKubeConfig as loadKube, transportFromKubeConfig } from '../operator/kube-transport.js';
import type { CheckResult, CheckSettings } from './model.js';
import { observePost, observePre, readVersion } from './observe.js';
import { postChecks } from './post-checks.js';
import { preChecks } from './pre-checks.js';
import { exitCode, renderHuman, renderJson } from './render.js';

export interface CheckOptions {
  pre: boolean;
  namespace: string;
  kubeconfig?: string;
  context?: string;
  output: 'human' | 'json';
  /** Re-run every 2 s until no check fails, for at most this long (ms); 0: once. */
  waitMs: number;
  settings: CheckSettings;
  now?: () => Date;
  /** Where output goes (default process.stdout). */
  write?: (text: string) => void;
  /** Instead of loading a kubeconfig (tests). */
  transport?: Transport;
}

/** Cannot start checking: bad kubeconfig or context, or the API server unreachable (exit status 2). */
export class CheckSetupError extends Error {}

async function loadKubeConfig(o: CheckOptions): Promise<KubeConfig> {
  try {
    return await loadKube(o);
  } catch (err) {
    if (err instanceof KubeConfigError) throw new CheckSetupError(err.message);
    throw err;
  }
}

export async function runChecks(o: CheckOptions, t: Transport): Promise<CheckResult[]> {
  const now = o.now ?? (() => new Date());
  const version = await readVersion(t);
  if (!version.ok && ['network', 'config', 'unauthorized', 'protocol'].includes(version.category))
    throw new CheckSetupError(`cannot reach the Kubernetes API server at ${t.server}: ${version.error}`);
  return o.pre ? preChecks(await observePre(t, o.namespace, version, now)) : postChecks(await observePost(t, o.namespace, version, now), o.settings);
}

/** Runs the checks (again, with --wait), writes the output, returns the exit status (0 or 1; throws CheckSetupError for 2). */
export async function check(o: CheckOptions): Promise<number> {
  const write = o.write ?? ((s: string) => void process.stdout.write(s));
  const now = o.now ?? (() => new Date());
  const t =
    o.transport ??
    transportFromKubeConfig(await loadKubeConfig(o), { userAgent: 'thoughtgate-check', connections: 8, connectTimeoutMs: 5_000, requestTimeoutMs: 15_000 });
  try {
    const deadline = Date.now() + o.waitMs;
    let results = await runChecks(o, t);
    while (exitCode(results) !== 0 && Date.now() + 2_000 < deadline) {
      await new Promise((r) => setTimeout(r, 2_000));
      results = await runChecks(o, t);
    }
    const mode = o.pre ? 'pre' : 'post';
    write(
      o.output === 'json'
        ? renderJson(results, { mode, server: t.server, namespace: o.namespace, time: now() })
        : renderHuman(results, `thoughtgate check${o.pre ? ' --pre' : ''}: ${t.server}, namespace ${o.namespace}`),
    );
    return exitCode(results);
  } finally {
    if (!o.transport) await t.close();
  }
}

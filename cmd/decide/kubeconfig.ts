// The CLI's connection to the API server from a kubeconfig, as kubectl would make it: client-node
// loads the file (contexts, certificates, tokens, OIDC), and this adds what client-node does not
// do for us: impersonation (`as`, `as-groups`, `as-uid`, `as-user-extra`, --as/--as-group/--as-uid)
// and a bounded exec credential plugin (exec-credential.ts).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { createTransport, type Credentials, type Transport } from '../../kube/transport.js';
import { kubeConfigCredentials, loadKubeConfig } from '../../operator/kube-transport.js';
import { boundText, CredentialError, EXEC_TIMEOUT_MS, execPlan, runExecPlugin, type ExecCredential, type ExecSpec } from './exec-credential.js';
import { impersonationHeaders, impersonationOfUser, mergeImpersonation, type Impersonation, type RawKubeUser } from './impersonation.js';

export interface KubeconfigChoice {
  kubeconfig?: string;
  context?: string;
  impersonate?: Impersonation;
}

export interface ConnectDeps {
  env?: NodeJS.ProcessEnv;
  stdinIsTTY?: boolean;
  stderr?: (text: string) => void;
  signal?: AbortSignal;
  execTimeoutMs?: number;
}

export interface Connection {
  transport: Transport;
  /** The context's namespace, if it has one. */
  namespace?: string;
}

/** Throws an Error (the caller says it is a setup problem) when the kubeconfig cannot be used. */
export async function connect(o: KubeconfigChoice, deps: ConnectDeps = {}): Promise<Connection> {
  const env = deps.env ?? process.env;
  const kc = await loadKubeConfig(o);
  const user = kc.getCurrentUser();
  const raw = user ? rawUser(kubeconfigFiles(o.kubeconfig, env), user.name) : undefined;
  const headers = impersonationHeaders(mergeImpersonation(impersonationOfUser(raw?.user, user?.name ?? ''), o.impersonate ?? {}));
  const exec = (user?.exec ?? undefined) as ExecSpec | undefined;
  const credentials = exec
    ? execCredentials(kc, exec, { ...deps, env, ...(raw?.dir ? { kubeconfigDir: raw.dir } : {}) })
    : bounded(kubeConfigCredentials(kc), deps.execTimeoutMs ?? EXEC_TIMEOUT_MS, deps.signal);
  const ns = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return {
    transport: createTransport({
      server: kc.getCurrentCluster()!.server,
      credentials,
      headers,
      userAgent: 'thoughtgate-decide',
      connections: 2,
      connectTimeoutMs: 5_000,
      requestTimeoutMs: 15_000,
    }),
    ...(ns ? { namespace: ns } : {}),
  };
}

/** The files kubectl reads: --kubeconfig, else each of $KUBECONFIG, else ~/.kube/config. */
export function kubeconfigFiles(flag: string | undefined, env: NodeJS.ProcessEnv): string[] {
  if (flag) return [flag];
  const list = (env['KUBECONFIG'] ?? '').split(delimiter).filter(Boolean);
  return list.length ? list : [join(env['HOME'] ?? homedir(), '.kube', 'config')];
}

/**
 * The `user` map of kubeconfig user `name` as written, and its file's directory: the first file
 * that defines it wins, as in kubectl's merge. client-node has already parsed these files, so a
 * file that cannot be read or parsed here is skipped.
 */
export function rawUser(files: string[], name: string): { user: RawKubeUser; dir: string } | undefined {
  for (const f of files) {
    if (!existsSync(f)) continue;
    let doc: { users?: Array<{ name?: unknown; user?: RawKubeUser }> } | null;
    try {
      doc = parseYaml(readFileSync(f, 'utf8')) as typeof doc;
    } catch {
      continue;
    }
    const u = doc?.users?.find((x) => x?.name === name);
    if (u) return { user: u.user ?? {}, dir: dirname(f) };
  }
  return undefined;
}

/**
 * Credentials of a user with an exec plugin: the CA and any static parts from client-node with the
 * exec left out (its runner would be used otherwise), the token or client certificate from our
 * bounded run of the plugin. Run once and kept until it expires; run again after a 401, as
 * kubectl does.
 */
function execCredentials(kc: KubeConfig, spec: ExecSpec, d: ConnectDeps & { env: NodeJS.ProcessEnv; kubeconfigDir?: string }): Credentials {
  const user = kc.getCurrentUser()!;
  const cluster = kc.getCurrentCluster()!;
  const bare = new KubeConfig();
  bare.loadFromOptions({
    clusters: kc.clusters,
    contexts: kc.contexts,
    users: kc.users.map((u) => (u.name === user.name ? { ...u, exec: undefined } : u)),
    currentContext: kc.getCurrentContext(),
  });
  const base = kubeConfigCredentials(bare);
  const plan = execPlan(spec, {
    userName: user.name,
    stdinIsTTY: d.stdinIsTTY ?? process.stdin.isTTY === true,
    env: d.env,
    cluster,
    ...(d.kubeconfigDir ? { kubeconfigDir: d.kubeconfigDir } : {}),
    ...(d.execTimeoutMs !== undefined ? { timeoutMs: d.execTimeoutMs, interactiveTimeoutMs: d.execTimeoutMs } : {}),
  });
  let current: Promise<ExecCredential> | undefined;
  const credential = async (refresh: boolean): Promise<ExecCredential> => {
    if (refresh || !current) current = run();
    const c = await current;
    if (c.expiresAt === undefined || c.expiresAt > Date.now()) return c;
    current = run();
    return current;
  };
  const run = () =>
    runExecPlugin(plan, {
      stderr: d.stderr ?? ((s) => void process.stderr.write(s)),
      ...(spec.apiVersion ? { apiVersion: spec.apiVersion } : {}),
      ...(spec.installHint ? { installHint: spec.installHint } : {}),
      ...(d.signal ? { signal: d.signal } : {}),
    });
  return {
    describe: plan.describe,
    async tls() {
      const [t, c] = await Promise.all([base.tls(), credential(false)]);
      return c.clientCertificateData ? { ...t, cert: c.clientCertificateData, key: c.clientKeyData! } : t;
    },
    async authorization(refresh) {
      const c = await credential(refresh);
      return c.token ? `Bearer ${c.token}` : undefined;
    },
  };
}

/**
 * Other credentials bounded too: an auth-provider (OIDC) may refresh its token over the network
 * with no deadline of its own, and Ctrl-C must not wait for it.
 */
export function bounded(c: Credentials, ms: number, signal?: AbortSignal): Credentials {
  const within = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const finish = (f: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        f();
      };
      const onAbort = () => finish(() => reject(signal!.reason));
      const timer = setTimeout(() => finish(() => reject(new CredentialError(`the credentials of ${c.describe} did not come within ${boundText(ms)}`))), ms);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => finish(() => resolve(v)),
        (e: unknown) => finish(() => reject(e)),
      );
    });
  return { describe: c.describe, tls: () => within(c.tls()), authorization: (refresh) => within(c.authorization(refresh)) };
}

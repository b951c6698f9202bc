// A kubeconfig's exec credential plugin (`users[].user.exec`: kubelogin, aws eks get-token,
// gke-gcloud-auth-plugin, ...), run as kubectl runs it but bounded. client-node's runner gives the
// plugin a stdin pipe nobody writes or closes and no deadline, so a plugin that asks for a
// password waits forever; here the plugin gets the terminal only when its interactiveMode allows
// it and there is one, and it must answer within a bound. Its stderr (prompts, login URLs) goes
// to ours, as with kubectl.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';

/** `users[].user.exec` of a kubeconfig, as client-node keeps it. */
export interface ExecSpec {
  command?: string;
  args?: string[] | null;
  env?: Array<{ name: string; value: string }> | null;
  apiVersion?: string;
  interactiveMode?: string;
  provideClusterInfo?: boolean;
  installHint?: string;
}

/** The cluster as client-node keeps it, for KUBERNETES_EXEC_INFO when provideClusterInfo. */
export interface ExecCluster {
  server: string;
  caData?: string;
  caFile?: string;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
}

export interface ExecCredential {
  token?: string;
  clientCertificateData?: string;
  clientKeyData?: string;
  /** ms since the epoch; undefined: valid for this process's life. */
  expiresAt?: number;
}

/** No credential could be had (a plugin failed or hung, a provider did not answer); the message names the source. */
export class CredentialError extends Error {}

/** Bound on a plugin that cannot prompt anyone (no terminal, or interactiveMode: Never). */
export const EXEC_TIMEOUT_MS = 30_000;
/** Bound on a plugin given the terminal: a person types a password or finishes a browser login. */
export const EXEC_INTERACTIVE_TIMEOUT_MS = 120_000;

/** A bound for messages: "30s", or "500 ms" below a second (tests). */
export const boundText = (ms: number): string => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)}s`);

export interface ExecPlan {
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
  /** inherit: the plugin may prompt on our terminal; ignore: it reads end-of-file at once. */
  stdin: 'inherit' | 'ignore';
  timeoutMs: number;
  /** For messages: `the credential plugin "kubelogin get-token" (kubeconfig user oidc)`. */
  describe: string;
}

export interface PlanContext {
  userName: string;
  stdinIsTTY: boolean;
  /** The kubeconfig file's directory: a relative command with a "/" is resolved against it (kubectl's rule). */
  kubeconfigDir?: string;
  cluster?: ExecCluster;
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
  interactiveTimeoutMs?: number;
}

/** How to run the plugin (pure); throws CredentialError when it cannot be run as configured. */
export function execPlan(spec: ExecSpec, c: PlanContext): ExecPlan {
  const args = spec.args ?? [];
  const shown = [spec.command ?? '', ...args].join(' ');
  const describe = `the credential plugin "${shown.length > 120 ? `${shown.slice(0, 117)}...` : shown}" (kubeconfig user ${c.userName})`;
  if (!spec.command) throw new CredentialError(`kubeconfig user ${c.userName}: exec has no command`);
  const mode = spec.interactiveMode || 'IfAvailable';
  if (mode !== 'Never' && mode !== 'IfAvailable' && mode !== 'Always')
    throw new CredentialError(`${describe}: interactiveMode "${mode}" is not one of Never, IfAvailable, Always`);
  if (mode === 'Always' && !c.stdinIsTTY)
    throw new CredentialError(`${describe} needs a terminal (interactiveMode: Always) and standard input is not one; run it from a terminal`);
  const interactive = mode !== 'Never' && c.stdinIsTTY;
  const command = c.kubeconfigDir && !isAbsolute(spec.command) && spec.command.includes(sep) ? join(c.kubeconfigDir, spec.command) : spec.command;
  const info = {
    apiVersion: spec.apiVersion ?? 'client.authentication.k8s.io/v1',
    kind: 'ExecCredential',
    spec: { interactive, ...(spec.provideClusterInfo && c.cluster ? { cluster: execClusterInfo(c.cluster) } : {}) },
  };
  const env: Record<string, string | undefined> = { ...c.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) };
  for (const e of spec.env ?? []) env[e.name] = e.value;
  return {
    command,
    args,
    env,
    stdin: interactive ? 'inherit' : 'ignore',
    timeoutMs: interactive ? (c.interactiveTimeoutMs ?? EXEC_INTERACTIVE_TIMEOUT_MS) : (c.timeoutMs ?? EXEC_TIMEOUT_MS),
    describe,
  };
}

function execClusterInfo(c: ExecCluster): Record<string, unknown> {
  let ca = c.caData;
  if (!ca && c.caFile) {
    try {
      ca = readFileSync(c.caFile).toString('base64');
    } catch {
      // the connection reports an unreadable CA; the plugin just does not get it
    }
  }
  return {
    server: c.server,
    ...(c.tlsServerName ? { 'tls-server-name': c.tlsServerName } : {}),
    ...(c.skipTLSVerify ? { 'insecure-skip-tls-verify': true } : {}),
    ...(ca ? { 'certificate-authority-data': ca } : {}),
  };
}

/** The credential in a plugin's stdout (pure); throws CredentialError naming what is wrong. */
export function parseExecCredential(stdout: string, plan: Pick<ExecPlan, 'describe'>, apiVersion?: string): ExecCredential {
  let o: { apiVersion?: unknown; kind?: unknown; status?: Record<string, unknown> };
  try {
    o = JSON.parse(stdout) as typeof o;
  } catch {
    throw new CredentialError(`${plan.describe} printed no ExecCredential JSON (${JSON.stringify(stdout.slice(0, 80))})`);
  }
  if (o?.kind !== 'ExecCredential')
    throw new CredentialError(`${plan.describe} printed a ${String(o?.kind ?? 'document without kind')}, not an ExecCredential`);
  if (apiVersion && o.apiVersion !== apiVersion)
    throw new CredentialError(`${plan.describe} answered apiVersion ${String(o.apiVersion)}, but the kubeconfig asks for ${apiVersion}`);
  const s = o.status ?? {};
  const str = (k: string) => (typeof s[k] === 'string' && s[k] ? (s[k] as string) : undefined);
  const token = str('token');
  const cert = str('clientCertificateData');
  const key = str('clientKeyData');
  if (!token && !(cert && key)) throw new CredentialError(`${plan.describe} gave neither a token nor a client certificate and key`);
  const exp = str('expirationTimestamp');
  const expiresAt = exp ? Date.parse(exp) : undefined;
  return {
    ...(token ? { token } : {}),
    ...(cert && key ? { clientCertificateData: cert, clientKeyData: key } : {}),
    ...(expiresAt !== undefined && !Number.isNaN(expiresAt) ? { expiresAt } : {}),
  };
}

const MAX_STDOUT = 1024 * 1024;

/**
 * Runs the plugin, bounded by plan.timeoutMs and `signal` (the plugin is killed at either).
 * Without the terminal it runs in a process group of its own, and a kill is the group's: a
 * wrapper's children (`sh -c 'kubelogin ...'`) die with it instead of outliving us and keeping,
 * say, a login's local port. With the terminal it must stay in our (foreground) group, so only it
 * is killed. Whatever still runs when this process exits (cli.ts exits right after a failure,
 * before any grace period is over) is SIGKILLed then.
 */
export function runExecPlugin(
  plan: ExecPlan,
  o: { apiVersion?: string; installHint?: string; signal?: AbortSignal; stderr: (chunk: string) => void },
): Promise<ExecCredential> {
  return new Promise((resolve, reject) => {
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let wroteStderr = false;
    let settled = false;
    let killed = false;
    const group = plan.stdin === 'ignore';
    const child = spawn(plan.command, plan.args, { env: plan.env, stdio: [plan.stdin, 'pipe', 'pipe'], detached: group });
    const signalPlugin = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      if (!group) {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig);
        return;
      }
      try {
        process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the whole group is gone
      }
    };
    const onExit = () => signalPlugin('SIGKILL');
    process.on('exit', onExit);
    const release = () => process.removeListener('exit', onExit);
    const stop = () => {
      if (killed) return;
      killed = true;
      signalPlugin('SIGTERM');
      // A plugin that ignores SIGTERM is not waited for; the exit hook stays until then.
      setTimeout(() => {
        signalPlugin('SIGKILL');
        release();
      }, 2_000).unref();
    };
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      reject(new CredentialError(message));
    };
    const timer = setTimeout(() => {
      stop();
      fail(
        `${plan.describe} gave no credential within ${boundText(plan.timeoutMs)}` +
          (plan.stdin === 'ignore'
            ? '; it may be waiting for input it cannot get (no terminal, or interactiveMode: Never): run it yourself (or kubectl) to log in, then retry'
            : ''),
      );
    }, plan.timeoutMs);
    const onAbort = () => {
      stop();
      fail(`${plan.describe} was interrupted`);
    };
    if (o.signal?.aborted) onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => {
      if (settled) return;
      stdoutBytes += d.length;
      if (stdoutBytes > MAX_STDOUT) {
        // Nothing more is read: its next write fails (EPIPE), and it is killed.
        child.stdout.destroy();
        stop();
        fail(`${plan.describe} printed more than ${MAX_STDOUT} bytes`);
        return;
      }
      stdout.push(d);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      wroteStderr = true;
      o.stderr(d);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) release();
      fail(
        err.code === 'ENOENT'
          ? `${plan.describe} cannot be run: ${plan.command} not found${o.installHint ? `\n${o.installHint.trim()}` : ''}`
          : `${plan.describe} cannot be run: ${err.message}`,
      );
    });
    child.on('close', (code, signal) => {
      // Ended by itself: nothing of it is ours to kill any more (a killed one keeps the hook until the SIGKILL).
      if (!killed) release();
      if (settled) return;
      if (code !== 0)
        return fail(`${plan.describe} failed (${signal ? `killed by ${signal}` : `exit status ${code}`})${wroteStderr ? '; its messages are above' : ''}`);
      try {
        const c = parseExecCredential(Buffer.concat(stdout).toString('utf8'), plan, o.apiVersion);
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        resolve(c);
      } catch (err) {
        fail((err as Error).message);
      }
    });
  });
}

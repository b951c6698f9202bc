// The sidecar command's start path, after cli.ts has read the flags: the config provider
// (standalone file or, in a pod, the watched ConfigMap), the approval backend, then startSidecar.
// One module on purpose: cli.ts imports it with one dynamic import, and scripts/build.mjs bundles
// it as an entry of its own, so the standalone start loads a few files rather than ~30 chunks
// (each one a module Node resolves and links before the sidecar is ready; docs/performance.md,
// "Start to ready"). Only the ConfigMap provider (it brings the CRD schemas) and the approval
// backends a config asks for stay behind dynamic imports.
import { ENV } from '../api/wellknown.js';
import { describeError } from '../lib/describe-error.js';
import type { Logger } from '../lib/log.js';
import { createTransport, type Transport } from '../kube/transport.js';
import { createClusterBackend } from './approvals/cluster-backend.js';
import { identityFromEnv } from './config/podinfo.js';
import { fileProvider, loadInitial } from './providers/file.js';
import { startSidecar, type ConfigProvider, type SidecarOptions } from './sidecar.js';

export { parseDuration } from '../api/duration.js';
export { createLogger, isLevel } from '../lib/log.js';

export interface SidecarRun {
  /** --config (standalone) or, when absent, the ConfigMap named by the environment (in a pod). */
  configPath?: string;
  configMap?: string;
  /** --state-dir: where standalone approvals and A2A task owners are kept across restarts (ignored in a pod). */
  stateDir?: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  options: Omit<SidecarOptions, 'log' | 'provider' | 'approvals' | 'auditEvents' | 'taskStore'>;
}

/** Started (close it on a signal), or an exit status with its message written, or a usage error. */
export type SidecarStarted = { kind: 'running'; close: () => Promise<void> } | { kind: 'exit'; code: number } | { kind: 'usage'; message: string };

export async function runSidecar(r: SidecarRun): Promise<SidecarStarted> {
  const { env, log } = r;
  let provider: ConfigProvider;
  let approvals: SidecarOptions['approvals'];
  let auditEvents: SidecarOptions['auditEvents'];
  let kube: Transport | undefined;
  let taskStore: SidecarOptions['taskStore'];
  if (r.configPath) {
    const initial = await loadInitial(r.configPath, env);
    if (!initial.ok) {
      process.stderr.write(`thoughtgate sidecar: invalid configuration\n${initial.errors.map((e) => `  ${e}`).join('\n')}\n`);
      return { kind: 'exit', code: 1 };
    }
    provider = fileProvider(r.configPath, env, initial, log);
    if (r.stateDir) {
      // Dynamic, like the approval store: a chunk loaded only when state is kept on disk.
      const { openTaskOwnerStore } = await import('./a2a/task-store.js');
      try {
        taskStore = await openTaskOwnerStore(r.stateDir, { log });
      } catch (err) {
        process.stderr.write(`thoughtgate sidecar: cannot open the A2A task owner store: ${describeError(err)}\n`);
        return { kind: 'exit', code: 1 };
      }
    }
    if (initial.config.approvalChannels) {
      // Standalone, the sidecar talks to Slack itself (tokens from the environment).
      const { standaloneBackend, ApprovalSetupError } = await import('./approvals/standalone.js');
      let store: import('./approvals/approval-store.js').ApprovalStore | undefined;
      if (r.stateDir) {
        // Dynamic: the store is a chunk of its own, loaded only when approvals are kept on disk.
        const { openApprovalStore } = await import('./approvals/approval-store.js');
        try {
          store = await openApprovalStore(r.stateDir, { log });
        } catch (err) {
          process.stderr.write(`thoughtgate sidecar: cannot open the approval store: ${describeError(err)}\n`);
          await taskStore?.close();
          return { kind: 'exit', code: 1 };
        }
        log.info('approvals survive a restart', { file: store.file, found: store.found });
      } else log.info('approvals are kept in memory only and do not survive a restart (--state-dir keeps them)');
      let backend: ReturnType<typeof standaloneBackend>;
      try {
        backend = standaloneBackend(initial.config.approvalChannels, env, log, undefined, store ? { store } : {});
      } catch (err) {
        await store?.close();
        await taskStore?.close();
        if (!(err instanceof ApprovalSetupError)) throw err;
        process.stderr.write(`thoughtgate sidecar: invalid configuration\n  ${err.message}\n`);
        return { kind: 'exit', code: 1 };
      }
      try {
        // A revoked or invalid app-level token refuses the start; Slack unreachable does not.
        await backend.checkAppTokens();
      } catch (err) {
        await backend.close();
        await taskStore?.close();
        if (!(err instanceof ApprovalSetupError)) throw err;
        process.stderr.write(`thoughtgate sidecar: invalid configuration\n  ${err.message.replaceAll('\n', '\n  ')}\n`);
        return { kind: 'exit', code: 1 };
      }
      approvals = backend;
      void backend.check().then(
        (results) => {
          for (const c of results) (c.ok ? log.info : log.warn)('approval channel check', c);
        },
        () => undefined,
      );
    }
  } else {
    // In a pod: the identity from the downward API, the config from the watched ConfigMap.
    // Dynamic: it brings the CRD schemas (api/crds.ts), built at import, which a standalone start never needs.
    const { configMapProvider } = await import('./providers/configmap.js');
    const id = identityFromEnv(env);
    if (!id)
      return {
        kind: 'usage',
        message: `thoughtgate sidecar: ${ENV.configMap} is set but ${ENV.podNamespace} is not; in a pod both come from the ThoughtGate webhook`,
      };
    for (const w of id.warnings) log.warn('identity', { warning: w });
    // One connection pool to the API server for the ConfigMap watch, ApprovalRequests and audit
    // Events (each pod's connections count against the API server's).
    kube = createTransport({ userAgent: 'thoughtgate-sidecar', env });
    provider = configMapProvider({ namespace: id.identity.namespace, name: r.configMap!, identity: id.identity, log, env, transport: kube });
    // Approvals in a cluster: ApprovalRequests in the pod's namespace; the operator talks to Slack.
    const { namespace, serviceAccount, pod } = id.identity;
    approvals = createClusterBackend({ workload: { namespace, serviceAccount, pod }, log, transport: kube });
    if (r.stateDir)
      log.warn('--state-dir is ignored in a cluster: the ApprovalRequests keep approvals across restarts; A2A task owners are kept in memory only');
    auditEvents = { namespace, pod, transport: kube };
  }
  let sc: Awaited<ReturnType<typeof startSidecar>>;
  try {
    // The memory-reducing collection shrinks the young generation on Node 24's V8 (our image); on
    // Node 20 it was measured to leave it as is, so there it would be a full collection for nothing.
    const idleReclaim = Number(process.versions.node.split('.')[0]) >= 24;
    sc = await startSidecar({ ...r.options, log, provider, approvals, auditEvents, idleReclaim, ...(taskStore ? { taskStore } : {}) });
  } catch (err) {
    process.stderr.write(`thoughtgate sidecar: cannot start: ${describeError(err)}\n`);
    await provider.close();
    await taskStore?.close();
    await kube?.close();
    return { kind: 'exit', code: 1 };
  }
  return {
    kind: 'running',
    close: async () => {
      try {
        await sc.close();
      } finally {
        await kube?.close();
      }
    },
  };
}

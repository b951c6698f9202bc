#!/usr/bin/env node
// The `thoughtgate` command. Each subcommand is imported only when chosen, so the sidecar never
// loads the operator's dependencies (@kubernetes/client-node: +66–72 MiB RSS, docs/performance.md).
import * as nodeModule from 'node:module';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CAPTURE_PORTS, CAPTURE_STATE_FILE, SIDECAR_UID } from './api/capture.js';
import { ALLOWED_HOST, ENV, PORTS } from './api/wellknown.js';
import { describeError } from './lib/describe-error.js';

const VERSION = '0.1.0';

/**
 * Node's module compile cache (Node ≥ 22.1; absent on 20, which then compiles as before): V8's
 * compiled code for our chunks is kept on disk, so a later start skips most of the parse and compile
 * (docs/performance.md, "Start to ready"). Only where $NODE_COMPILE_CACHE names it (the sidecar image
 * sets it to a cache baked at build time, read-only in a pod): Node's default lives in the shared
 * temp directory, where another user of the host could plant code for us to run.
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off. A directory that cannot be written is not an error.
 */
const compileCache = nodeModule as { enableCompileCache?: (dir?: string) => unknown; flushCompileCache?: () => void };
const compileCacheDir = process.env['NODE_COMPILE_CACHE'];
if (compileCacheDir) compileCache.enableCompileCache?.(compileCacheDir);

const MAIN_HELP = `thoughtgate ${VERSION} — governs what AI agents may do through MCP

Usage: thoughtgate <command> [options]

Commands:
  sidecar       run the governance proxy in front of MCP servers
  operator      run the Kubernetes operator and the sidecar-injection webhook
  validate      check a thoughtgate.yaml and exit (0 valid, 1 invalid)
  test          run policy tests offline: expected decisions per call (CI, JUnit)
  explain       decide one call offline and print the trace, gate by gate
  capture-init  install a pod's traffic-capture rules (the injected init container)
  check         check an installation (or, with --pre, a cluster before installing)
  approve       approve a pending ApprovalRequest as your Kubernetes user (no Slack needed)
  reject        reject a pending ApprovalRequest as your Kubernetes user
  version       print the version

Run "thoughtgate <command> --help" for the options of a command.
Docs: docs/configuration.md, docs/errors.md, docs/operations.md, docs/policy-testing.md,
      docs/check.md, docs/observability.md
`;

const SIDECAR_HELP = `Usage: thoughtgate sidecar [options]

Runs the MCP governance proxy. The agent reaches each configured source at
  http://<bind>:<port>/mcp/<source>
and may also use the sidecar as an HTTP proxy (HTTP_PROXY=http://<bind>:<port>).
Every request passes gate 1 (visibility), gate 2 (rules) and gate 3 (Cedar)
before it reaches the upstream MCP server.

Options (each also settable by environment; a flag wins over its variable):
  --config <file>         thoughtgate.yaml to load and watch          [${ENV.config}]
                          (in a pod: no file; ${ENV.configMap}=<name> watches that
                          ConfigMap of the pod's namespace through the API)
  --port <n>              proxy port (default ${PORTS.proxy})                     [${ENV.port}]
  --admin-port <n>        admin port: /health /ready /metrics (default ${PORTS.admin}) [${ENV.adminPort}]
  --bind <address>        address the proxy port listens on (default       [${ENV.bind}]
                          127.0.0.1: only the pod's own containers reach it)
  --admin-bind <address>  address the admin port listens on (default the  [${ENV.adminBind}]
                          --bind address; in a pod 0.0.0.0 so probes reach it)
  --allowed-hosts <list>  comma-separated Host names (host or host:port)  [${ENV.allowedHosts}]
                          both ports accept besides localhost, 127.0.0.1,
                          [::1] and the bind address (DNS-rebinding
                          protection; the config's server.allowedHosts adds)
  --log-level <level>     debug | info | warn | error (default info)   [${ENV.logLevel}]
  --drain-timeout <dur>   on SIGTERM, how long in-flight requests may   [${ENV.drainTimeout}]
                          finish before connections are closed (default 10s)
  --state-dir <dir>       standalone approvals: a directory of its own    [${ENV.stateDir}]
                          (0700) where pending approvals and A2A task owners
                          survive a restart (docs/approvals.md); unset: kept
                          in memory only

Capture (a pod whose traffic the init container "capture-init" redirects; the
webhook sets these; each listener binds 127.0.0.1 and ::1):
  --transparent-port <n>  turns capture on: plain HTTP redirected from    [${ENV.transparentPort}]
                          the agent, governed by its Host header
                          (in a pod ${CAPTURE_PORTS.transparent})
  --tls-port <n>          TLS redirected from the agent (its port 443):  [${ENV.tlsPort}]
                          tunnelled unopened when the SNI name is in
                          egress.allow (in a pod ${CAPTURE_PORTS.tlsPassthrough})
  --capture-state <file>  the init container's state file; /ready fails [${ENV.captureState}]
                          while it is missing or invalid
                          (default ${CAPTURE_STATE_FILE})
  -h, --help              show this help

In a Kubernetes pod (set up by the ThoughtGate webhook) the identity comes from
POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT and the labels file at
${ENV.labelsFile} (default /etc/podinfo/labels); standalone it comes from the
config file's "identity" section.

The config file is watched: a valid change applies without restart; an invalid
one is logged and counted (thoughtgate_sidecar_config_reloads_total{result="error"})
and the last good config keeps serving.

Tracing (OpenTelemetry, off by default) is configured by the standard variables:
OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP/HTTP; set
one to turn it on), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER
and OTEL_TRACES_SAMPLER_ARG; OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true turn
it off. docs/observability.md lists the spans and attributes.

Exit status: 0 after a clean shutdown, 1 when the config is invalid at start,
2 for bad options.
`;

const VALIDATE_HELP = `Usage: thoughtgate validate --config <file>

Parses and validates a thoughtgate.yaml (YAML, \${VAR} substitution with the
current environment, schema, Cedar policies) and prints every problem as
file:line:column: path: message. Exit status 0 when valid, 1 when not.
`;

class UsageError extends Error {}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(
      `thoughtgate ${command}: ${(err as Error).message.replace(/\. To specify.*$/s, '')}\nRun "thoughtgate ${command} --help" for the options.`,
    );
  }
}

/** Runs until SIGTERM or SIGINT, then closes gracefully and exits 0. */
function untilSignal(close: () => Promise<void>, log: { info(msg: string, f?: Record<string, unknown>): void }): Promise<number> {
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info('signal received', { signal });
      void close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function port(value: string | undefined, what: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`thoughtgate: ${what} must be a port number (0-65535), got "${value}"`);
  return n;
}

function allowedHosts(value: string | undefined): string[] {
  const list = (value ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const bad = list.filter((h) => !ALLOWED_HOST.test(h));
  if (bad.length) throw new UsageError(`thoughtgate sidecar: --allowed-hosts: expected host or host:port (IPv6 in brackets), got "${bad[0]}"`);
  return list;
}

/** The capture listeners: on with --transparent-port; --tls-port and --capture-state only with it. */
function captureOptions(v: Record<string, unknown>, env: NodeJS.ProcessEnv): { capture?: { transparentPort: number; tlsPort?: number; stateFile: string } } {
  const text = (flag: string, name: string) => {
    const value = (v[flag] as string | undefined) ?? env[name];
    return value === '' ? undefined : value;
  };
  const transparent = text('transparent-port', ENV.transparentPort);
  const tls = text('tls-port', ENV.tlsPort);
  const stateFile = text('capture-state', ENV.captureState);
  if (transparent === undefined) {
    if (tls !== undefined || stateFile !== undefined)
      throw new UsageError('thoughtgate sidecar: --tls-port and --capture-state need --transparent-port (capture is on only with it)');
    return {};
  }
  return {
    capture: {
      transparentPort: port(transparent, '--transparent-port', CAPTURE_PORTS.transparent),
      ...(tls !== undefined ? { tlsPort: port(tls, '--tls-port', CAPTURE_PORTS.tlsPassthrough) } : {}),
      stateFile: stateFile ?? CAPTURE_STATE_FILE,
    },
  };
}

async function sidecar(args: string[]): Promise<number> {
  const v = parse(
    args,
    {
      config: { type: 'string' },
      port: { type: 'string' },
      'admin-port': { type: 'string' },
      bind: { type: 'string' },
      'admin-bind': { type: 'string' },
      'allowed-hosts': { type: 'string' },
      'log-level': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'state-dir': { type: 'string' },
      'transparent-port': { type: 'string' },
      'tls-port': { type: 'string' },
      'capture-state': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'sidecar',
  );
  if (v.help) {
    process.stdout.write(SIDECAR_HELP);
    return 0;
  }
  const env = process.env;
  // The whole start path in one module (its own bundle: scripts/build.mjs), one import.
  const start = await import('./sidecar/main.js');
  const level = (v['log-level'] as string | undefined) ?? env[ENV.logLevel] ?? 'info';
  if (!start.isLevel(level)) throw new UsageError(`thoughtgate sidecar: log level must be debug, info, warn or error, got "${level}"`);
  const drainText = (v['drain-timeout'] as string | undefined) ?? env[ENV.drainTimeout] ?? '10s';
  const drain = start.parseDuration(drainText);
  if (typeof drain !== 'number') throw new UsageError(`thoughtgate sidecar: --drain-timeout: ${drain.error}`);
  const configPath = (v.config as string | undefined) ?? env[ENV.config];
  const configMap = env[ENV.configMap];
  if (!configPath && !configMap)
    throw new UsageError(
      `thoughtgate sidecar: no config: pass --config <file> or set ${ENV.config} (standalone), or set ${ENV.configMap} in a pod\nRun "thoughtgate sidecar --help" for the options.`,
    );
  const options = {
    port: port((v.port as string | undefined) ?? env[ENV.port], '--port', PORTS.proxy),
    adminPort: port((v['admin-port'] as string | undefined) ?? env[ENV.adminPort], '--admin-port', PORTS.admin),
    bind: (v.bind as string | undefined) ?? env[ENV.bind] ?? '127.0.0.1',
    adminBind: (v['admin-bind'] as string | undefined) ?? env[ENV.adminBind],
    allowedHosts: allowedHosts((v['allowed-hosts'] as string | undefined) ?? env[ENV.allowedHosts]),
    ...captureOptions(v, env),
    drainTimeoutMs: drain,
  };
  const stateDir = (v['state-dir'] as string | undefined) || env[ENV.stateDir] || undefined;
  const log = start.createLogger(level);
  const run = await start.runSidecar({ configPath, configMap, ...(stateDir ? { stateDir } : {}), env, log, options });
  if (run.kind === 'usage') throw new UsageError(run.message);
  if (run.kind === 'exit') return run.code;
  // Written now rather than at exit: a pod is often stopped by SIGKILL. Nothing to write when every
  // chunk came from the cache.
  setImmediate(() => compileCache.flushCompileCache?.());
  return untilSignal(run.close, log);
}

const OPERATOR_HELP = `Usage: thoughtgate operator [options]

Runs the Kubernetes operator and the sidecar-injection webhook. Every replica serves
the webhook; the replica holding the Lease (leader election) reconciles
GovernancePolicies into each namespace's thoughtgate-config ConfigMap and keeps the
sidecars' RBAC in namespaces labelled thoughtgate.io/inject=enabled.

Cluster access:
  --kubeconfig <file>        default: $KUBECONFIG, ~/.kube/config, else in-cluster
  --namespace <ns>           the operator's namespace (Lease, webhook Secret)
                             [POD_NAMESPACE] (default thoughtgate-system)
  --identity <id>            this replica in the Lease and Events [POD_NAME]
  --no-leader-election       reconcile without a Lease (one replica only)
Health and metrics:
  --metrics-port <n>         /healthz /readyz /metrics (default 8080)
  --metrics-bind <address>   (default 0.0.0.0)
Webhook:
  --no-webhook               do not serve the admission webhook
  --webhook-port <n>         HTTPS port (default 9443)
  --webhook-bind <address>   (default 0.0.0.0)
  --webhook-service <name>   Service in front of the webhook; its DNS names go in the
                             certificate (default thoughtgate-webhook)
  --webhook-secret <name>    Secret holding the webhook's CA (each replica signs its own
                             serving certificate from it), created and rotated by the
                             operator (default thoughtgate-webhook-tls)
  --webhook-cert-dir <dir>   serve tls.crt/tls.key from this directory (cert-manager's
                             mounted Secret, re-read on change) and manage no certificate
                             nor caBundle (cert-manager's cainjector does)
  --webhook-config <name>    MutatingWebhookConfiguration whose caBundle is kept current
                             (default thoughtgate)
  --manage-webhook-config    also create/update that MutatingWebhookConfiguration
                             (plain kubectl installs, development); the Helm chart
                             ships it instead
  --webhook-url <url>        register the webhook by URL instead of the Service (an
                             operator running outside the cluster, e.g. make dev-cluster)
  --webhook-san <name|ip>    extra certificate names (repeatable)
  --failure-policy <p>       Fail | Ignore (default Fail: a down webhook refuses pods in
                             labelled namespaces rather than start them ungoverned)
  --webhook-timeout <dur>    1s..30s (default 5s)
Injected sidecar:
  --sidecar-image <ref>      (default ghcr.io/thoughtgate/thoughtgate-sidecar:<version>)
  --sidecar-pull-policy <p>  Always | IfNotPresent | Never (default IfNotPresent)
  --injection-mode <m>       native (init container with restartPolicy Always, on
                             by default from Kubernetes 1.29; ThoughtGate needs
                             1.30) | classic (default native)
  --sidecar-run-as-user <uid> the injected sidecar's uid, exempt from capture (default
                             7467; OpenShift assigns its own: set it to one in the
                             namespace's range)
  --sidecar-requests <list>  e.g. cpu=50m,memory=96Mi (the default)
  --sidecar-limits <list>    e.g. cpu=1,memory=192Mi (the default; see docs/operations.md)
  --sidecar-otel <K=V>       an OTEL_* variable for injected sidecars, e.g.
                             OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 (repeatable;
                             none: sidecar tracing off; docs/observability.md). The
                             operator's own tracing reads OTEL_* from its environment
  --excluded-namespaces <l>  comma list never injected (default kube-system,kube-public,
                             kube-node-lease; the operator's namespace always is)
Traffic capture (docs/operations.md; pods opt in with thoughtgate.io/capture: enabled):
  --capture-by-default       capture every injected pod unless its annotation or its
                             namespace's label thoughtgate.io/capture says disabled
  --capture-ports <list>     plain-HTTP ports always redirected to the sidecar, besides
                             the policies' and the pod's thoughtgate.io/capture-ports
  --capture-dns <mode>       resolv (the pod's nameservers) | any | none (default resolv)
  --capture-tls-passthrough  outbound 443 goes to the sidecar's SNI listener (else rejected)
  --capture-allow <CIDR:PORT> egress that passes capture (repeatable; PORT may be *)
  --allow-bypassable-pods    admit, with a warning, captured pods with a container that
                             could walk around capture (root, the sidecar's uid, setuid);
                             default: the webhook denies them
Leader election:
  --lease-name <name>        the Lease in --namespace (default thoughtgate-operator)
Approvals (ApprovalRequests relayed to Slack; docs/approvals.md):
  --max-pending-approvals <n>   open ApprovalRequests cluster-wide; beyond it new ones
                             fail and the agent gets -32010 (default 1000)
                             [THOUGHTGATE_MAX_PENDING_APPROVALS]
  --approval-retention <dur> ended ApprovalRequests are deleted after this (default 24h)
  --slack-api-url <url>      Slack API base URLs an ApprovalChannel may use (repeatable;
                             "*" = any; default https://slack.com/api/ and GovSlack's)
  --slack-timeout <dur>      per Slack API request (default 15s)
  --channel-check-interval <dur>  re-check ApprovalChannels' token and channel (default 5m)
Logging:
  --log-level <level>        debug | info | warn | error (default info)
  -h, --help
`;

async function operator(args: string[]): Promise<number> {
  const v = parse(
    args,
    {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      identity: { type: 'string' },
      'no-leader-election': { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'metrics-bind': { type: 'string' },
      'no-webhook': { type: 'boolean' },
      'webhook-port': { type: 'string' },
      'webhook-bind': { type: 'string' },
      'webhook-service': { type: 'string' },
      'webhook-secret': { type: 'string' },
      'webhook-cert-dir': { type: 'string' },
      'webhook-config': { type: 'string' },
      'manage-webhook-config': { type: 'boolean' },
      'webhook-url': { type: 'string' },
      'webhook-san': { type: 'string', multiple: true },
      'failure-policy': { type: 'string' },
      'webhook-timeout': { type: 'string' },
      'sidecar-image': { type: 'string' },
      'sidecar-pull-policy': { type: 'string' },
      'injection-mode': { type: 'string' },
      'sidecar-run-as-user': { type: 'string' },
      'sidecar-requests': { type: 'string' },
      'sidecar-limits': { type: 'string' },
      'excluded-namespaces': { type: 'string' },
      'capture-by-default': { type: 'boolean' },
      'capture-ports': { type: 'string' },
      'capture-dns': { type: 'string' },
      'capture-tls-passthrough': { type: 'boolean' },
      'capture-allow': { type: 'string', multiple: true },
      'allow-bypassable-pods': { type: 'boolean' },
      'lease-name': { type: 'string' },
      'max-pending-approvals': { type: 'string' },
      'approval-retention': { type: 'string' },
      'slack-api-url': { type: 'string', multiple: true },
      'sidecar-otel': { type: 'string', multiple: true },
      'slack-timeout': { type: 'string' },
      'channel-check-interval': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'operator',
  );
  if (v.help) {
    process.stdout.write(OPERATOR_HELP);
    return 0;
  }
  const env = process.env;
  const str = (k: string) => (v as Record<string, unknown>)[k] as string | undefined;
  const oneOf = <T extends string>(k: string, allowed: readonly T[], fallback: T): T => {
    const x = str(k) ?? fallback;
    if (!(allowed as readonly string[]).includes(x)) throw new UsageError(`thoughtgate operator: --${k} must be one of ${allowed.join(', ')}, got "${x}"`);
    return x as T;
  };
  const [{ createLogger, isLevel }, m] = await Promise.all([import('./lib/log.js'), import('./cmd/operator.js')]);
  const level = str('log-level') ?? env[ENV.logLevel] ?? 'info';
  if (!isLevel(level)) throw new UsageError(`thoughtgate operator: log level must be debug, info, warn or error, got "${level}"`);
  let timeoutSeconds: number;
  try {
    timeoutSeconds = m.webhookTimeoutSeconds(str('webhook-timeout'));
  } catch (err) {
    throw new UsageError(`thoughtgate operator: ${(err as Error).message}`);
  }
  let approvals: import('./cmd/operator.js').OperatorSettings['approvals'];
  let resources: ReturnType<typeof m.parseResources>;
  let capture: ReturnType<typeof m.parseCaptureFlags>;
  try {
    capture = m.parseCaptureFlags({
      enabled: !!v['capture-by-default'],
      ports: str('capture-ports'),
      dns: str('capture-dns'),
      tlsPassthrough: !!v['capture-tls-passthrough'],
      allow: (v as Record<string, unknown>)['capture-allow'] as string[] | undefined,
      allowBypassablePods: !!v['allow-bypassable-pods'],
    });
    approvals = m.parseApprovalFlags({
      maxPending: str('max-pending-approvals') ?? env['THOUGHTGATE_MAX_PENDING_APPROVALS'],
      retention: str('approval-retention'),
      slackApiUrls: (v as Record<string, unknown>)['slack-api-url'] as string[] | undefined,
      slackTimeout: str('slack-timeout'),
      channelCheckInterval: str('channel-check-interval'),
    });
    resources = m.parseResources(str('sidecar-requests'), str('sidecar-limits'));
  } catch (err) {
    throw new UsageError(`thoughtgate operator: ${(err as Error).message}`);
  }
  const otel = m.parseOtelFlags(((v as Record<string, unknown>)['sidecar-otel'] as string[] | undefined) ?? []);
  if (!otel.ok) throw new UsageError(`thoughtgate operator: ${otel.error}`);
  const runAsUser = str('sidecar-run-as-user');
  if (runAsUser !== undefined && !/^\d+$/.test(runAsUser))
    throw new UsageError(`thoughtgate operator: --sidecar-run-as-user must be a numeric uid, got "${runAsUser}"`);
  const excluded = str('excluded-namespaces')
    ?.split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const log = createLogger(level);
  for (const w of capture.warnings) log.warn(`thoughtgate operator: ${w}`);
  const settings: import('./cmd/operator.js').OperatorSettings = {
    kubeconfig: str('kubeconfig'),
    namespace: str('namespace') ?? env['POD_NAMESPACE'] ?? m.DEFAULTS.namespace,
    identity: str('identity') ?? m.defaultIdentity(env),
    metricsPort: port(str('metrics-port'), '--metrics-port', m.DEFAULTS.metricsPort),
    metricsBind: str('metrics-bind') ?? '0.0.0.0',
    leaderElection: !v['no-leader-election'],
    leaseName: str('lease-name'),
    approvals,
    webhook: v['no-webhook']
      ? null
      : {
          port: port(str('webhook-port'), '--webhook-port', m.DEFAULTS.webhookPort),
          bind: str('webhook-bind') ?? '0.0.0.0',
          service: str('webhook-service') ?? m.DEFAULTS.service,
          secret: str('webhook-secret') ?? m.DEFAULTS.secret,
          configName: str('webhook-config') ?? m.DEFAULTS.configName,
          url: str('webhook-url'),
          manageConfig: !!v['manage-webhook-config'],
          failurePolicy: oneOf('failure-policy', ['Fail', 'Ignore'] as const, 'Fail'),
          timeoutSeconds,
          extraSans: (v['webhook-san'] as string[] | undefined) ?? [],
          certDir: str('webhook-cert-dir'),
        },
    injection: {
      image: str('sidecar-image') ?? `${m.DEFAULTS.image}:${VERSION}`,
      imagePullPolicy: oneOf('sidecar-pull-policy', ['Always', 'IfNotPresent', 'Never'] as const, 'IfNotPresent'),
      mode: oneOf('injection-mode', ['native', 'classic'] as const, 'native'),
      ...(runAsUser !== undefined ? { runAsUser: Number(runAsUser) } : {}),
      ...(resources ? { resources } : {}),
      ...(excluded ? { excludedNamespaces: excluded } : {}),
      ...(otel.env.length > 0 ? { tracing: otel.env } : {}),
      capture: capture.capture,
    },
    version: VERSION,
  };
  let op: Awaited<ReturnType<typeof m.runOperator>>;
  try {
    op = await m.runOperator(settings, log);
  } catch (err) {
    process.stderr.write(`thoughtgate operator: cannot start: ${describeError(err)}\n`);
    return 1;
  }
  return untilSignal(() => op.close(), log);
}

async function validate(args: string[]): Promise<number> {
  const v = parse(args, { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, 'validate');
  if (v.help) {
    process.stdout.write(VALIDATE_HELP);
    return 0;
  }
  const path = (v.config as string | undefined) ?? process.env[ENV.config];
  if (!path) throw new UsageError('thoughtgate validate: pass --config <file>');
  const [{ loadInitial }, { compileSnapshot }, { resolveIdentity }] = await Promise.all([
    import('./sidecar/providers/file.js'),
    import('./sidecar/snapshot.js'),
    import('./sidecar/config/podinfo.js'),
  ]);
  const r = await loadInitial(path, process.env);
  if (!r.ok) {
    process.stderr.write(`${r.errors.join('\n')}\n`);
    return 1;
  }
  const { identity: _i, ...doc } = r.config;
  const c = compileSnapshot(doc, resolveIdentity(process.env, r.config).identity, { hash: r.hash, generation: 1 });
  if (!c.ok) {
    process.stderr.write(`${c.errors.map((e) => `${path}: ${e}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write(`${path}: valid (hash ${r.hash}, ${doc.sources.length} sources, ${doc.rules.length} rules)\n`);
  return 0;
}

const captureInitHelp = (d: typeof import('./sidecar/capture/spec.js')) => `Usage: thoughtgate capture-init [options]

Installs the rules that make the sidecar the only way out of this network
namespace (the init container the webhook adds to a captured pod; needs root
with NET_ADMIN and NET_RAW). For IPv4 and IPv6, in chains TG_CAPTURE of the nat
and filter tables jumped to first from OUTPUT (re-running replaces them):
loopback and the sidecar's uid pass; TCP to the redirect ports goes to the
sidecar's transparent listener, 443 to its TLS listener (with --tls-port);
DNS and the --allow exceptions pass; everything else is rejected.

Options:
  --uid <n>                the sidecar's uid, exempt from capture (default ${SIDECAR_UID})
  --redirect-ports <list>  plain-HTTP ports redirected to the transparent listener,
                           comma-separated (default ${d.DEFAULT_REDIRECT_PORTS.join(',')}; "" = none)
  --transparent-port <n>   the sidecar's transparent listener (default ${CAPTURE_PORTS.transparent})
  --tls-port <n>           redirect outbound 443 to the sidecar's TLS passthrough
                           listener (${CAPTURE_PORTS.tlsPassthrough} in a pod); omitted: 443 is rejected
  --dns <mode>             resolv: UDP/TCP 53 to the nameservers of --resolv-conf only;
                           any: to any address; none: rejected (default resolv)
  --resolv-conf <file>     (default ${d.DEFAULT_RESOLV_CONF})
  --allow <CIDR:PORT>      egress exception, repeatable or comma-separated: TCP to it
                           goes out directly, except on the redirect ports (and 443
                           with --tls-port), which the sidecar decides whatever the
                           address ("10.0.0.0/8:5432", "fd00::/8:443",
                           "[fd00::/8]:443"; PORT "*" = any)
  --backend <b>            auto | nft | legacy (default auto: the backend already
                           holding rules in this netns, else nft if it works, else legacy)
  --ipv6 <m>               auto | on | off (default auto: on when the netns has IPv6)
  --state-file <path>      where the result is written for the sidecar's /ready
                           (default ${CAPTURE_STATE_FILE})
  --dry-run                print the iptables-restore input of both families and exit
  -h, --help               show this help

XTABLES_LOCKFILE in the environment moves iptables' lock file (read-only root
filesystems). Exit status: 0 installed (or printed), 1 on any failure (the pod
then does not start: capture fails closed), 2 for bad options.
`;

async function captureInit(args: string[]): Promise<number> {
  const v = parse(
    args,
    {
      uid: { type: 'string' },
      'redirect-ports': { type: 'string' },
      'transparent-port': { type: 'string' },
      'tls-port': { type: 'string' },
      dns: { type: 'string' },
      'resolv-conf': { type: 'string' },
      allow: { type: 'string', multiple: true },
      backend: { type: 'string' },
      ipv6: { type: 'string' },
      'state-file': { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'capture-init',
  );
  const spec = await import('./sidecar/capture/spec.js');
  if (v.help) {
    process.stdout.write(captureInitHelp(spec));
    return 0;
  }
  const o = spec.captureInitOptions(v as import('./sidecar/capture/spec.js').CaptureInitFlags);
  if (!o.ok) throw new UsageError(`thoughtgate capture-init: ${o.error}\nRun "thoughtgate capture-init --help" for the options.`);
  const warn = (ws: string[]) => {
    for (const w of ws) process.stderr.write(`thoughtgate capture-init: warning: ${w}\n`);
  };
  warn(o.warnings);
  const { captureInit: install, dryRun, CaptureInitError } = await import('./sidecar/capture/install.js');
  try {
    if (o.value.dryRun) {
      const d = await dryRun(o.value);
      warn(d.warnings);
      process.stdout.write(d.text);
      return 0;
    }
    const r = await install(o.value);
    warn(r.warnings);
    const s = r.state;
    process.stdout.write(`thoughtgate capture-init: installed (${s.backend}, ${s.families.join('+')}) in ${s.durationMs} ms; state in ${o.value.stateFile}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof CaptureInitError)) throw err;
    process.stderr.write(`thoughtgate capture-init: ${err.message}\n`);
    return 1;
  }
}

async function check(args: string[]): Promise<number> {
  const c = await import('./check/options.js');
  const v = parse(
    c.withWaitDefault(args),
    {
      pre: { type: 'boolean' },
      namespace: { type: 'string', short: 'n' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      output: { type: 'string', short: 'o' },
      wait: { type: 'string' },
      'cert-expiry-warning': { type: 'string' },
      'approval-age-warning': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'check',
  );
  if (v.help) {
    process.stdout.write(c.CHECK_HELP);
    return 0;
  }
  let o: import('./check/run.js').CheckOptions;
  try {
    o = c.checkOptions(v);
  } catch (err) {
    throw new UsageError(`thoughtgate check: ${(err as Error).message}\nRun "thoughtgate check --help" for the options.`);
  }
  const { check: run, CheckSetupError } = await import('./check/run.js');
  try {
    return await run(o);
  } catch (err) {
    if (!(err instanceof CheckSetupError)) throw err;
    throw new UsageError(`thoughtgate check: ${err.message}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sidecar':
      return sidecar(rest);
    case 'validate':
      return validate(rest);
    case 'test':
      return (await import('./cmd/policy-test/commands.js')).testCommand(rest);
    case 'explain':
      return (await import('./cmd/policy-test/commands.js')).explainCommand(rest);
    case 'operator':
      return operator(rest);
    case 'capture-init':
      return captureInit(rest);
    case 'check':
      return check(rest);
    case 'approve':
    case 'reject':
      return (await import('./cmd/decide/command.js')).decideCommand(command, rest);
    case 'version':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(MAIN_HELP);
      return 0;
    default:
      throw new UsageError(`thoughtgate: unknown command "${command}"\n\n${MAIN_HELP}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`thoughtgate: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);

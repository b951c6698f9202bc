#!/usr/bin/env node
// The `thoughtgate` command. Each subcommand is imported only when chosen, so the sidecar never
// loads the operator's dependencies (@kubernetes/client-node costs ~74 MiB).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ENV, PORTS } from './api/wellknown.js';

const VERSION = '0.1.0';

const MAIN_HELP = `thoughtgate ${VERSION} — governs what AI agents may do through MCP

Usage: thoughtgate <command> [options]

Commands:
  sidecar     run the governance proxy in front of MCP servers
  validate    check a thoughtgate.yaml and exit (0 valid, 1 invalid)
  version     print the version

Run "thoughtgate <command> --help" for the options of a command.
Docs: docs/configuration.md, docs/errors.md, docs/operations.md
`;

const SIDECAR_HELP = `Usage: thoughtgate sidecar [options]

Runs the MCP governance proxy. The agent reaches each configured source at
  http://<bind>:<port>/mcp/<source>
and may also use the sidecar as an HTTP proxy (HTTP_PROXY=http://<bind>:<port>).
Every request passes gate 1 (visibility), gate 2 (rules) and gate 3 (Cedar)
before it reaches the upstream MCP server.

Options (each also settable by environment; a flag wins over its variable):
  --config <file>         thoughtgate.yaml to load and watch          [${ENV.config}]
  --port <n>              proxy port (default ${PORTS.proxy})                     [${ENV.port}]
  --admin-port <n>        admin port: /health /ready /metrics (default ${PORTS.admin}) [${ENV.adminPort}]
  --bind <address>        address the proxy port listens on (default       [${ENV.bind}]
                          127.0.0.1: only the pod's own containers reach it)
  --admin-bind <address>  address the admin port listens on (default the  [${ENV.adminBind}]
                          --bind address; in a pod 0.0.0.0 so probes reach it)
  --log-level <level>     debug | info | warn | error (default info)   [${ENV.logLevel}]
  --drain-timeout <dur>   on SIGTERM, how long in-flight requests may   [${ENV.drainTimeout}]
                          finish before connections are closed (default 10s)
  -h, --help              show this help

In a Kubernetes pod (set up by the ThoughtGate webhook) the identity comes from
POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT and the labels file at
${ENV.labelsFile} (default /etc/podinfo/labels); standalone it comes from the
config file's "identity" section.

The config file is watched: a valid change applies without restart; an invalid
one is logged and counted (thoughtgate_sidecar_config_reloads_total{result="error"})
and the last good config keeps serving.

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
    throw new UsageError(`thoughtgate ${command}: ${(err as Error).message.replace(/\. To specify.*$/s, '')}\nRun "thoughtgate ${command} --help" for the options.`);
  }
}

function port(value: string | undefined, what: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`thoughtgate sidecar: ${what} must be a port number (0-65535), got "${value}"`);
  return n;
}

async function sidecar(args: string[]): Promise<number> {
  const v = parse(args, {
    config: { type: 'string' },
    port: { type: 'string' },
    'admin-port': { type: 'string' },
    bind: { type: 'string' },
    'admin-bind': { type: 'string' },
    'log-level': { type: 'string' },
    'drain-timeout': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 'sidecar');
  if (v.help) { process.stdout.write(SIDECAR_HELP); return 0; }
  const env = process.env;
  const [{ createLogger, isLevel }, { parseDuration }] = await Promise.all([import('./sidecar/log.js'), import('./api/duration.js')]);
  const level = (v['log-level'] as string | undefined) ?? env[ENV.logLevel] ?? 'info';
  if (!isLevel(level)) throw new UsageError(`thoughtgate sidecar: log level must be debug, info, warn or error, got "${level}"`);
  const drainText = (v['drain-timeout'] as string | undefined) ?? env[ENV.drainTimeout] ?? '10s';
  const drain = parseDuration(drainText);
  if (typeof drain !== 'number') throw new UsageError(`thoughtgate sidecar: --drain-timeout: ${drain.error}`);
  const configPath = (v.config as string | undefined) ?? env[ENV.config];
  if (!configPath) throw new UsageError(`thoughtgate sidecar: no config: pass --config <file> or set ${ENV.config}\nRun "thoughtgate sidecar --help" for the options.`);
  const opts = {
    port: port(v.port as string | undefined ?? env[ENV.port], '--port', PORTS.proxy),
    adminPort: port(v['admin-port'] as string | undefined ?? env[ENV.adminPort], '--admin-port', PORTS.admin),
    bind: (v.bind as string | undefined) ?? env[ENV.bind] ?? '127.0.0.1',
    adminBind: (v['admin-bind'] as string | undefined) ?? env[ENV.adminBind],
  };
  const log = createLogger(level);
  const [{ startSidecar }, { fileProvider, loadInitial }] = await Promise.all([import('./sidecar/sidecar.js'), import('./sidecar/providers/file.js')]);
  const initial = await loadInitial(configPath, env);
  if (!initial.ok) {
    process.stderr.write(`thoughtgate sidecar: invalid configuration\n${initial.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 1;
  }
  const provider = fileProvider(configPath, env, initial, log);
  let sc;
  try {
    sc = await startSidecar({ ...opts, log, provider, drainTimeoutMs: drain });
  } catch (err) {
    process.stderr.write(`thoughtgate sidecar: cannot start: ${(err as Error).message}\n`);
    await provider.close();
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info('signal received', { signal });
      void sc.close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function validate(args: string[]): Promise<number> {
  const v = parse(args, { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, 'validate');
  if (v.help) { process.stdout.write(VALIDATE_HELP); return 0; }
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
  const c = compileSnapshot(doc, resolveIdentity(process.env, r.config).identity, { hash: r.hash, generation: 1, cedarSlot: 'validate' });
  if (!c.ok) {
    process.stderr.write(`${c.errors.map((e) => `${path}: ${e}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write(`${path}: valid (hash ${r.hash}, ${doc.sources.length} sources, ${doc.rules.length} rules)\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sidecar': return sidecar(rest);
    case 'validate': return validate(rest);
    case 'version': case '--version': process.stdout.write(`${VERSION}\n`); return 0;
    case undefined: case 'help': case '--help': case '-h': process.stdout.write(MAIN_HELP); return 0;
    default: throw new UsageError(`thoughtgate: unknown command "${command}"\n\n${MAIN_HELP}`);
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

// `thoughtgate test` and `thoughtgate explain`: flags → runs → output and exit status.
// cli.ts imports this module only when one of the two commands is chosen.
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { formatIssues } from '../../api/issues.js';
import { A2aCallSchema, IdentityOverrideSchema, type IdentityOverride } from '../../api/policy-test.js';
import { explainCall, messageOf, type CallSpec } from './explain.js';
import { junitXml } from './junit.js';
import { exitStatus, formatExplanation, formatRun, totals } from './report.js';
import { identityFor, runTestFile, type FileResult } from './run.js';
import { loadConfigTarget, loadPolicyTarget, TargetInvalid, TargetUnreadable, type Target } from './target.js';

export const TEST_HELP = `Usage: thoughtgate test [options] <dir|file>...

Runs policy tests offline, through the sidecar's own gate code: each case is
one call (workload, source, tool/resource/prompt, arguments; or an A2A call:
a2a: {version, binding, skill, metadata, text or parts, tenant, taskId,
extensions}) and the decision it expects (forward, deny, hidden, approve),
optionally the rule, the Cedar policy ids, the approval channel or the error. A directory is searched
recursively for *.test.yaml and *.test.yml files (not in node_modules or .git).
Format: docs/policy-testing.md.

Options:
  --junit <file>   also write the results as JUnit XML (for CI)
  -o, --output <f> text (default) or json
  -h, --help       show this help

Exit status: 0 every case passed; 1 a case failed, or a config or policy
under test is invalid (as the sidecar or the operator would find it); 2 bad
options, or a test file that cannot be read or is not a valid test file.
`;

export const EXPLAIN_HELP = `Usage: thoughtgate explain (--config <file> | --policy <file>...) [options]

Decides one call offline, through the sidecar's own gate code, and prints the
trace: gate 1 (exposed or hidden, by which expose entry), gate 2 (the rule that
matched, or the defaultAction), gate 3 (the Cedar decision, the policies that
determined it, the arguments as Cedar saw them), gate 4 (approval channel and
timeout).

What is loaded:
  --config <file>            a thoughtgate.yaml (standalone)
  --policy <file>            GovernancePolicy manifests (repeatable; ApprovalChannels
                             in them count as existing), rendered as the operator does
  --approval-channel <name>  an ApprovalChannel that exists besides (repeatable)
  --env <NAME=value>         a value for \${NAME} (repeatable; over the environment)

The call:
  --source <name>            default: the config's only source
  --tool <name> | --resource <uri> | --prompt <name>
  --method <method>          default tools/call, resources/read or prompts/get
  --arguments <json>         the call's arguments
  --params <json>            the message's params as sent (instead of the above)
  --a2a <json>               an A2A call, as a test case's a2a: (default method
                             SendMessage), e.g. '{"skill":"refund","metadata":
                             {"amount":5},"binding":"rest","extensions":["urn:x"]}'
  --time <RFC 3339>          the time Cedar sees (default now)

The workload (default: the config's identity, or the policies' namespace):
  --namespace <ns>  --service-account <sa>  --pod <name>
  --label <key=value>        a pod label (repeatable)

  -o, --output <f>           text (default) or json
  -h, --help                 show this help

Exit status: 0 the call was explained (whatever the decision); 1 the config or
policy is invalid; 2 bad options or a file that cannot be read.
`;

class Usage extends Error {}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, command: string, positionals: boolean) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: positionals });
  } catch (err) {
    throw new Usage(`thoughtgate ${command}: ${(err as Error).message.replace(/\. To specify.*$/s, '')}\nRun "thoughtgate ${command} --help" for the options.`);
  }
}

function outputFormat(v: string | undefined, command: string): 'text' | 'json' {
  if (v === undefined || v === 'text' || v === 'json') return v ?? 'text';
  throw new Usage(`thoughtgate ${command}: -o must be text or json, got "${v}"`);
}

/** Runs `fn`, turning a usage problem into its message on stderr and status 2. */
async function withUsage(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
}

const TEST_FILE = /\.test\.ya?ml$/;
/** Never searched: dependencies' test files are not ours, and a repository's own data is no test. */
const NOT_SEARCHED = new Set(['node_modules', '.git']);

/**
 * Test files: files as given, directories searched for *.test.yaml (sorted, so runs are stable).
 * The search skips node_modules and .git and does not follow symbolic links to directories (so a
 * link loop cannot make it run forever); a linked file is a file.
 */
export async function findTestFiles(paths: readonly string[]): Promise<{ files: string[]; errors: string[] }> {
  const files: string[] = [];
  const errors: string[] = [];
  const walk = async (dir: string): Promise<string[]> => {
    const found: string[] = [];
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      // A Dirent of a symbolic link is never a directory: links to directories are not walked.
      if (e.isDirectory()) {
        if (!NOT_SEARCHED.has(e.name)) found.push(...(await walk(p)));
      } else if (TEST_FILE.test(e.name)) found.push(p);
    }
    return found;
  };
  for (const p of paths) {
    try {
      if (!(await stat(p)).isDirectory()) {
        files.push(p);
        continue;
      }
      const found = await walk(p);
      if (found.length === 0) errors.push(`${p}: no *.test.yaml or *.test.yml file in it`);
      files.push(...found);
    } catch (err) {
      errors.push(`${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
    }
  }
  return { files, errors };
}

export function testCommand(args: string[]): Promise<number> {
  return withUsage(async () => {
    const { values: v, positionals } = parse(
      args,
      { junit: { type: 'string' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } },
      'test',
      true,
    );
    if (v.help) {
      process.stdout.write(TEST_HELP);
      return 0;
    }
    const format = outputFormat(v.output, 'test');
    if (positionals.length === 0) throw new Usage('thoughtgate test: name test files or directories\nRun "thoughtgate test --help" for the options.');
    const found = await findTestFiles(positionals);
    const results: FileResult[] = found.errors.map((e) => ({ file: e.slice(0, e.indexOf(': ')), kind: 'error', errors: [e], durationMs: 0 }));
    for (const f of found.files) results.push(await runTestFile(f));
    if (v.junit !== undefined) {
      try {
        await writeFile(v.junit, junitXml(results));
      } catch (err) {
        process.stderr.write(`thoughtgate test: cannot write ${v.junit}: ${(err as Error).message}\n`);
        return 2;
      }
    }
    if (format === 'json') process.stdout.write(`${JSON.stringify({ totals: totals(results), files: results }, null, 2)}\n`);
    else process.stdout.write(formatRun(results));
    return exitStatus(totals(results));
  });
}

function keyValues(list: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Usage(`thoughtgate explain: ${flag} expects key=value, got "${kv}"`);
    Object.defineProperty(out, kv.slice(0, eq), { value: kv.slice(eq + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function jsonFlag(text: string | undefined, flag: string): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Usage(`thoughtgate explain: ${flag} is not JSON: ${(err as Error).message}`);
  }
}

const EXPLAIN_OPTIONS = {
  config: { type: 'string' },
  policy: { type: 'string', multiple: true },
  'approval-channel': { type: 'string', multiple: true },
  env: { type: 'string', multiple: true },
  source: { type: 'string' },
  tool: { type: 'string' },
  resource: { type: 'string' },
  prompt: { type: 'string' },
  method: { type: 'string' },
  arguments: { type: 'string' },
  params: { type: 'string' },
  a2a: { type: 'string' },
  time: { type: 'string' },
  namespace: { type: 'string' },
  'service-account': { type: 'string' },
  pod: { type: 'string' },
  label: { type: 'string', multiple: true },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

type ExplainFlags = ReturnType<typeof parse<typeof EXPLAIN_OPTIONS>>['values'];

/** The call and the workload the flags name; a usage error for what they cannot mean. */
function callFromFlags(v: ExplainFlags): { override: IdentityOverride; spec: CallSpec; now: Date } {
  const targets = [v.tool, v.resource, v.prompt].filter((x) => x !== undefined);
  if (targets.length > 1) throw new Usage('thoughtgate explain: pass one of --tool, --resource, --prompt');
  if (v.params !== undefined && (targets.length > 0 || v.arguments !== undefined))
    throw new Usage('thoughtgate explain: --params replaces --tool, --resource, --prompt and --arguments');
  if (targets.length === 0 && v.method === undefined && v.a2a === undefined)
    throw new Usage('thoughtgate explain: pass --tool, --resource, --prompt, --method or --a2a');
  if (v.a2a !== undefined && (targets.length > 0 || v.arguments !== undefined))
    throw new Usage('thoughtgate explain: --a2a describes an A2A call: it replaces --tool, --resource, --prompt and --arguments');
  const a2a = v.a2a === undefined ? undefined : A2aCallSchema.safeParse(jsonFlag(v.a2a, '--a2a'));
  if (a2a && !a2a.success) throw new Usage(`thoughtgate explain: --a2a: ${formatIssues(a2a.error).join('; ')}`);
  const now = v.time !== undefined ? new Date(v.time) : new Date();
  if (Number.isNaN(now.getTime())) throw new Usage(`thoughtgate explain: --time is not a time: "${v.time}"`);
  const checked = IdentityOverrideSchema.safeParse({
    namespace: v.namespace,
    serviceAccount: v['service-account'],
    pod: v.pod,
    labels: v.label !== undefined ? keyValues(v.label, '--label') : undefined,
  });
  if (!checked.success) throw new Usage(`thoughtgate explain: ${formatIssues(checked.error).join('; ')}`);
  const spec: CallSpec = {
    ...(v.source !== undefined ? { source: v.source } : {}),
    ...(v.method !== undefined ? { method: v.method } : {}),
    ...(v.tool !== undefined ? { tool: v.tool } : {}),
    ...(v.resource !== undefined ? { resource: v.resource } : {}),
    ...(v.prompt !== undefined ? { prompt: v.prompt } : {}),
    arguments: jsonFlag(v.arguments, '--arguments'),
    params: jsonFlag(v.params, '--params'),
    ...(a2a ? { a2a: a2a.data! } : {}),
  };
  return { override: checked.data, spec, now };
}

async function loadForExplain(v: ExplainFlags): Promise<Target | number> {
  const env = { ...process.env, ...keyValues(v.env, '--env') };
  try {
    return v.config !== undefined ? await loadConfigTarget(v.config, env) : await loadPolicyTarget(v.policy!, env, v['approval-channel'] ?? []);
  } catch (err) {
    if (err instanceof TargetUnreadable) {
      process.stderr.write(`thoughtgate explain: ${err.message}\n`);
      return 2;
    }
    if (!(err instanceof TargetInvalid)) throw err;
    process.stderr.write(`${err.errors.join('\n')}\n`);
    return 1;
  }
}

export function explainCommand(args: string[]): Promise<number> {
  return withUsage(async () => {
    const { values: v } = parse(args, EXPLAIN_OPTIONS, 'explain', false);
    if (v.help) {
      process.stdout.write(EXPLAIN_HELP);
      return 0;
    }
    const format = outputFormat(v.output, 'explain');
    if ((v.config === undefined) === (v.policy === undefined))
      throw new Usage('thoughtgate explain: pass --config <file> or --policy <file>\nRun "thoughtgate explain --help" for the options.');
    const { override, spec, now } = callFromFlags(v);
    const target = await loadForExplain(v);
    if (typeof target === 'number') return target;
    try {
      const e = explainCall(target, {
        identity: identityFor(target.defaultIdentity, override),
        ...(spec.source !== undefined ? { source: spec.source } : {}),
        ...messageOf(spec),
        now,
      });
      // The config's warnings beside the trace: JSON gets them as a member, text on stderr (stdout stays the trace).
      if (format === 'json') process.stdout.write(`${JSON.stringify({ ...e, warnings: target.warnings }, null, 2)}\n`);
      else {
        process.stdout.write(`${formatExplanation(e)}\n`);
        for (const w of target.warnings) process.stderr.write(`warning: ${w}\n`);
      }
      return 0;
    } finally {
      target.close();
    }
  });
}

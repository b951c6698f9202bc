// `thoughtgate capture-init`, the act: reads the netns (IPv6? which iptables backend?), applies the
// plan of rules-plan.ts with iptables-restore, reads it back and writes CaptureState for the
// sidecar's /ready. Any failure throws CaptureInitError: the CLI exits 1 and the pod does not start.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CaptureState } from '../../api/capture-state.js';
import { type ChainRules, type Family, jumpsIn, planRules, restoreInput, ruleCount, rulesHash, verifySaved } from './rules-plan.js';
import { type CaptureInitOptions, parseResolvConf } from './spec.js';

export class CaptureInitError extends Error {}

export type Backend = 'nft' | 'legacy';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** What capture-init touches outside itself; tests may point it elsewhere. */
export interface CaptureInitHost {
  run(cmd: string, args: string[], input?: string): Promise<RunResult>;
  readFile(path: string): Promise<string>;
  now(): number;
}

const COMMAND_TIMEOUT_MS = 30_000;
/** Waits for the xtables lock (legacy; nft ignores it) at most 20 s, under COMMAND_TIMEOUT_MS. */
const RESTORE_ARGS = ['--wait=20', '--noflush'];

function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // ENOENT (no such binary) arrives here; EPIPE on stdin comes with the process' own exit status.
    child.on('error', (err) => resolve({ code: null, stdout, stderr: stderr || err.message }));
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) => resolve({ code, stdout, stderr: signal ? `${stderr}(killed by ${signal})` : stderr }));
    child.stdin.end(input ?? '');
  });
}

export const realHost: CaptureInitHost = { run, readFile: (p) => readFile(p, 'utf8'), now: () => performance.now() };

function binary(backend: Backend, family: Family, tool: '' | '-save' | '-restore'): string {
  return `${family === 'ipv6' ? 'ip6tables' : 'iptables'}-${backend}${tool}`;
}

async function save(host: CaptureInitHost, backend: Backend, family: Family): Promise<string> {
  const cmd = binary(backend, family, '-save');
  const r = await host.run(cmd, []);
  if (r.code !== 0) throw new CaptureInitError(`${cmd} failed (${r.code ?? 'not run'}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Rules a backend holds in this netns (both families); 0 when it holds none or cannot be read. */
async function rulesHeld(host: CaptureInitHost, backend: Backend): Promise<number> {
  let n = 0;
  for (const family of ['ipv4', 'ipv6'] as const) {
    const r = await host.run(binary(backend, family, '-save'), []);
    if (r.code === 0) n += ruleCount(r.stdout);
  }
  return n;
}

/**
 * `auto`: the backend that already holds rules here (the node's kube-proxy/CNI choice shows in a
 * pod's netns only if something wrote there; mixing backends works but confuses whoever reads the
 * rules), else nft when the kernel's nf_tables answers, else legacy.
 */
export async function detectBackend(host: CaptureInitHost, wanted: CaptureInitOptions['backend']): Promise<Backend> {
  if (wanted !== 'auto') return wanted;
  const [legacy, nft] = [await rulesHeld(host, 'legacy'), await rulesHeld(host, 'nft')];
  if (legacy > nft) return 'legacy';
  if (nft > 0) return 'nft';
  const probe = await host.run('iptables-nft', ['-t', 'nat', '-S']);
  return probe.code === 0 ? 'nft' : 'legacy';
}

/** The netns has IPv6 when an interface holds an IPv6 address or IPv6 is not disabled. */
export async function hasIPv6(host: CaptureInitHost): Promise<boolean> {
  const read = (p: string) =>
    host.readFile(p).then(
      (t) => t,
      () => '',
    );
  const [addresses, disabled] = await Promise.all([read('/proc/net/if_inet6'), read('/proc/sys/net/ipv6/conf/all/disable_ipv6')]);
  return addresses.trim() !== '' || disabled.trim() === '0';
}

export interface FamilyPlan {
  family: Family;
  rules: ChainRules;
}

async function nameservers(host: CaptureInitHost, opts: CaptureInitOptions, warnings: string[]): Promise<string[]> {
  if (opts.spec.dns !== 'resolv') return [];
  let text: string;
  try {
    text = await host.readFile(opts.resolvConf);
  } catch (err) {
    throw new CaptureInitError(`--dns resolv: cannot read ${opts.resolvConf}: ${(err as Error).message}`);
  }
  const r = parseResolvConf(text);
  warnings.push(...r.warnings);
  if (r.nameservers.length === 0) warnings.push(`--dns resolv: ${opts.resolvConf} names no nameserver: DNS is rejected`);
  return r.nameservers;
}

export function plans(opts: CaptureInitOptions, families: readonly Family[], servers: readonly string[]): FamilyPlan[] {
  return families.map((family) => ({ family, rules: planRules(opts.spec, family, servers) }));
}

/** `--dry-run`: the iptables-restore input of both families (for a netns without our chains), nothing run. */
export async function dryRun(opts: CaptureInitOptions, host: CaptureInitHost = realHost): Promise<{ text: string; warnings: string[] }> {
  const warnings: string[] = [];
  const servers = await nameservers(host, opts, warnings);
  const families: Family[] = opts.ipv6 === 'off' ? ['ipv4'] : ['ipv4', 'ipv6'];
  const text = plans(opts, families, servers)
    .map((p) => `# ${binary('nft', p.family, '-restore').replace('-nft', '[-nft|-legacy]')} ${RESTORE_ARGS.join(' ')}\n${restoreInput(p.rules)}`)
    .join('\n');
  return { text, warnings };
}

async function applyFamily(host: CaptureInitHost, backend: Backend, plan: FamilyPlan): Promise<void> {
  const input = restoreInput(plan.rules, jumpsIn(await save(host, backend, plan.family)));
  const cmd = binary(backend, plan.family, '-restore');
  const r = await host.run(cmd, RESTORE_ARGS, input);
  if (r.code !== 0) throw new CaptureInitError(`${cmd} failed (${r.code ?? 'not run'}): ${r.stderr.trim()}`);
  const problems = verifySaved(await save(host, backend, plan.family), plan.rules);
  if (problems.length) throw new CaptureInitError(`${cmd} ran but the rules read back are not ours: ${problems.join('; ')}`);
}

/** Writes next to the target and renames: the sidecar never reads half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
}

export async function captureInit(opts: CaptureInitOptions, host: CaptureInitHost = realHost): Promise<{ state: CaptureState; warnings: string[] }> {
  const started = host.now();
  // A state file left by an earlier run must not vouch for this one if it fails.
  await rm(opts.stateFile, { force: true }).catch((err: Error) => {
    throw new CaptureInitError(`cannot remove the earlier state file ${opts.stateFile}: ${err.message}`);
  });
  const warnings: string[] = [];
  const servers = await nameservers(host, opts, warnings);
  const v6 = opts.ipv6 === 'on' || (opts.ipv6 === 'auto' && (await hasIPv6(host)));
  if (opts.ipv6 === 'off' && (await hasIPv6(host))) warnings.push('--ipv6 off in a netns with IPv6: the agent can leave uncaptured over IPv6');
  const families: Family[] = v6 ? ['ipv4', 'ipv6'] : ['ipv4'];
  const backend = await detectBackend(host, opts.backend);
  const planned = plans(opts, families, servers);
  for (const p of planned) await applyFamily(host, backend, p);
  const state: CaptureState = {
    version: 1,
    backend,
    families,
    spec: opts.spec,
    rulesHash: rulesHash(planned),
    installedAt: new Date().toISOString(),
    durationMs: 0,
  };
  state.durationMs = Math.round((host.now() - started) * 10) / 10;
  try {
    await writeAtomically(opts.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  } catch (err) {
    throw new CaptureInitError(`rules installed but the state file ${opts.stateFile} could not be written: ${(err as Error).message}`);
  }
  return { state, warnings };
}

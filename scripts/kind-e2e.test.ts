// What keeps scripts/kind-e2e.sh correct on machines without Docker, where it cannot run: the names
// it hard-codes agree with the code and the chart, its GovernancePolicy is valid, and its agent
// (scripts/kind-agent.mjs) gets the answers the script expects from a real sidecar enforcing that
// very policy in front of the real server-everything.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ERRORS } from '../api/errors.js';
import { INJECT_ENABLED, LABELS, PORTS } from '../api/wellknown.js';
import { parseConfigText } from '../policy/config/load.js';
import { DEFAULT_CONTAINER_NAME } from '../webhook/mutate.js';
import { startTestSidecar, type TestSidecar } from '../test/support/sidecar.js';
import { ROOT, startEverything, type Proc } from '../test/support/processes.js';

const SCRIPT = readFileSync(join(ROOT, 'scripts/kind-e2e.sh'), 'utf8');
const AGENT = join(ROOT, 'scripts/kind-agent.mjs');

/** A `NAME=value` assignment at the top of the script. */
function assigned(name: string): string {
  const m = new RegExp(`^${name}=(\\S+)$`, 'm').exec(SCRIPT);
  if (!m) throw new Error(`no ${name}= in kind-e2e.sh`);
  return m[1]!; // the group is unconditional
}

/** The heredoc the script applies that holds `kind: <kind>`, with the script's variables filled in. */
function manifest(kind: string): Record<string, any> {
  const docs = [...SCRIPT.matchAll(/<<YAML\n([\s\S]*?)\nYAML$/gm)].flatMap((m) => m[1]!.split(/^---$/m));
  const doc = docs.find((d) => new RegExp(`^kind: ${kind}$`, 'm').test(d));
  if (!doc) throw new Error(`no ${kind} heredoc in kind-e2e.sh`);
  return parse(doc.replace(/\$([A-Z_]+)/g, (_, v: string) => assigned(v)));
}

function runAgent(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      // `app` idles once it has logged its one line.
      if (args[0] === 'app' && out.includes('\n')) child.kill('SIGTERM');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('kind-e2e.sh agrees with the code it tests', () => {
  it('uses the webhook container name, the admin port, the deny code and the injection label', () => {
    expect(assigned('SIDECAR')).toBe(DEFAULT_CONTAINER_NAME);
    expect(Number(assigned('ADMIN_PORT'))).toBe(PORTS.admin);
    expect(Number(assigned('DENIED_BY_RULE'))).toBe(ERRORS.DENIED_BY_RULE.code);
    expect(SCRIPT).toContain(`kubectl label namespace "$NS" ${LABELS.inject}=${INJECT_ENABLED} --overwrite`);
  });

  it('sets only chart values that exist', () => {
    const values = parse(readFileSync(join(ROOT, 'charts/thoughtgate/values.yaml'), 'utf8'));
    const keys = [...SCRIPT.matchAll(/--set ([A-Za-z.]+)=/g)].map((m) => m[1]!);
    expect(keys).toEqual(expect.arrayContaining(['image.repository', 'image.tag', 'sidecar.image.repository', 'sidecar.image.tag', 'sidecar.pullPolicy']));
    for (const key of keys) expect([key, key.split('.').reduce((o, k) => o?.[k], values)]).not.toEqual([key, undefined]);
  });

  it('runs files the tools image (the Dockerfile build stage, the repository at /src) has', () => {
    expect(readFileSync(join(ROOT, 'Dockerfile.sidecar'), 'utf8')).toMatch(/^FROM \S+ AS build\nWORKDIR \/src\n[\s\S]*^COPY \. \.$/m);
    const commands = [manifest('Deployment').spec.template.spec.containers[0].command, manifest('Pod').spec.containers[0].command];
    for (const [, file] of commands) expect(existsSync(join(ROOT, file.replace(/^\/src\//, '')))).toBe(true);
  });
});

describe('the agent of kind-e2e.sh against a real sidecar with its GovernancePolicy', () => {
  let everything: { url: string; proc: Proc };
  let sc: TestSidecar;

  beforeAll(async () => {
    everything = await startEverything();
    const spec = manifest('GovernancePolicy').spec;
    expect(spec.sources[0].url).toBe(`http://everything.${assigned('MCPNS')}.svc.cluster.local:3001/mcp`);
    spec.sources[0].url = everything.url;
    const text = stringify(spec);
    expect(parseConfigText(text, 'kind-e2e policy', {}).ok).toBe(true);
    sc = await startTestSidecar(text);
  }, 30_000);

  afterAll(async () => {
    await sc?.close();
    await everything?.proc.stop();
  });

  it('an allowed tool answers (exit 0), the denied one is refused by rule no-env (exit 3)', async () => {
    const env = { THOUGHTGATE_URL: sc.base };
    const allowed = await runAgent(['call', 'everything', 'echo', '{"message":"hello from kind"}'], env);
    expect(allowed).toEqual({ code: 0, out: expect.stringContaining('Echo: hello from kind') });
    const denied = await runAgent(['call', 'everything', 'get-env'], env);
    expect(denied.code).toBe(3);
    expect(JSON.parse(denied.out)).toMatchObject({ ok: false, code: Number(assigned('DENIED_BY_RULE')), data: { rule: 'no-env' } });
  });

  it('the app logs whether the sidecar answered at its start, in the words the script greps for', async () => {
    const up = await runAgent(['app'], { THOUGHTGATE_ADMIN_URL: sc.admin });
    expect(up.out).toBe('kind-agent: sidecar answered /health before the app started\n');
    expect(SCRIPT).toContain('"answered /health before the app started"');
    const down = await runAgent(['app'], { THOUGHTGATE_ADMIN_URL: 'http://127.0.0.1:9' });
    expect(down.out).toMatch(/^kind-agent: sidecar NOT reachable at app start/);
  });
});

// The built `thoughtgate test` and `thoughtgate explain`: the examples pass, a broken copy fails
// with its trace and a JUnit report, and the exit statuses CI relies on.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, run } from './support/processes.js';
import { parseXml } from './support/strict-xml.js';

const EXAMPLES = join(ROOT, 'examples/policy-tests');

async function cli(args: string[], env: Record<string, string> = {}) {
  const p = run(process.execPath, [CLI, ...args], env);
  const code = await p.exited;
  return { code, out: p.out(), err: p.err() };
}

test('the examples pass: exit 0, every file and case reported', async () => {
  const r = await cli(['test', EXAMPLES]);
  expect([r.code, r.err]).toEqual([0, '']);
  expect(r.out).toMatch(/^PASS {2}.*cluster\/cluster\.test\.yaml \(5 cases/m);
  expect(r.out).toMatch(/^PASS {2}.*files\.test\.yaml/m);
  expect(r.out).toMatch(/^PASS {2}.*github\.test\.yaml/m);
  expect(r.out).toMatch(/\n4 files, (\d+) cases: \1 passed, 0 failed\n$/);
});

test('a broken copy fails: exit 1, the failing case with its trace, and a JUnit report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-policy-cli-'));
  cpSync(EXAMPLES, dir, { recursive: true });
  // Someone turns the push ban into a forward.
  const config = join(dir, 'thoughtgate.yaml');
  const text = readFileSync(config, 'utf8');
  const broken = text.replace('    action: deny\n    reason: agents open pull requests', '    action: forward\n    reason: agents open pull requests');
  expect(broken).not.toBe(text);
  writeFileSync(config, broken);
  const junit = join(dir, 'junit.xml');
  const r = await cli(['test', '--junit', junit, dir]);
  expect(r.code).toBe(1);
  expect(r.out).toContain('FAIL  ');
  expect(r.out).toContain("  ✖ pushing is denied with the rule's reason (");
  expect(r.out).toContain('      expected deny, got forward (forwarded by no-pushes)');
  expect(r.out).toContain('        gate 2 rules       rule no-pushes (rules[0]) matched {"tool":"push_files","source":"github"} → forward');
  expect(r.out).toMatch(/\n4 files, (\d+) cases: \d+ passed, 1 failed\n$/);

  const xml = parseXml(readFileSync(junit, 'utf8'));
  expect(xml.attrs).toMatchObject({ failures: '1', errors: '0' });
  const failures = xml.children.flatMap((s) => s.children.flatMap((c) => c.children.map((f) => ({ suite: s.attrs['name'], test: c.attrs['name'], f }))));
  expect(failures).toHaveLength(1);
  expect(failures[0]!.suite).toBe(join(dir, 'github.test.yaml'));
  expect(failures[0]!.test).toBe("pushing is denied with the rule's reason");
  expect(failures[0]!.f.name).toBe('failure');
  expect(failures[0]!.f.text).toContain('decision           forward at gate rules (rule no-pushes): forwarded by no-pushes');
});

test('-o json carries the totals and each case with its explanation', async () => {
  const r = await cli(['test', '-o', 'json', join(EXAMPLES, 'files.test.yaml')]);
  expect(r.code).toBe(0);
  const j = JSON.parse(r.out) as {
    totals: { cases: number; passed: number };
    files: { cases: { explanation: { target?: { sent?: string; decided: string } } }[] }[];
  };
  expect(j.totals).toMatchObject({ files: 1, failed: 0 });
  expect(j.totals.passed).toBe(j.totals.cases);
  const targets = j.files[0]!.cases.map((c) => c.explanation.target);
  expect(targets).toContainEqual({ kind: 'resource', sent: 'file:///srv/docs/%2e%2e/secrets/key.pem', decided: 'file:///srv/secrets/key.pem' });
});

test('exit 2 for usage and file errors; an invalid config under test is a failure (1)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-policy-cli-'));
  writeFileSync(join(dir, 'bad.test.yaml'), 'config: c.yaml\ncases:\n  - tool: x\n    expect: maybe\n');
  writeFileSync(join(dir, 'invalid.test.yaml'), 'config: c.yaml\ncases: [{ tool: x, expect: forward }]\n');
  writeFileSync(join(dir, 'c.yaml'), 'sources: []\ndefaultAction: sometimes\n');
  expect((await cli(['test'])).code).toBe(2);
  expect((await cli(['test', '--nope', dir])).code).toBe(2);
  expect((await cli(['test', '-o', 'xml', dir])).code).toBe(2);
  const missing = await cli(['test', join(dir, 'nothing-here')]);
  expect([missing.code, missing.out]).toEqual([2, expect.stringContaining('no such file or directory')]);
  const bad = await cli(['test', join(dir, 'bad.test.yaml')]);
  expect([bad.code, bad.out]).toEqual([
    2,
    expect.stringContaining(`${join(dir, 'bad.test.yaml')}:4:13: cases[0].expect: expected one of forward, deny, hidden, approve`),
  ]);
  const invalid = await cli(['test', join(dir, 'invalid.test.yaml')]);
  expect([invalid.code, invalid.out]).toEqual([1, expect.stringContaining('c.yaml:2:16: defaultAction:')]);
  const empty = mkdtempSync(join(tmpdir(), 'tg-policy-cli-'));
  expect(await cli(['test', empty])).toMatchObject({ code: 2, out: expect.stringContaining('no *.test.yaml or *.test.yml file in it') });
});

test('explain prints the trace; exit 0 whatever the decision, 1 for an invalid config, 2 for bad options', async () => {
  const config = join(EXAMPLES, 'thoughtgate.yaml');
  const r = await cli([
    'explain',
    '--config',
    config,
    '--env',
    'GITHUB_TOKEN=x',
    '--source',
    'github',
    '--tool',
    'update_issue',
    '--arguments',
    '{"owner":"payments","labels":["release"],"ratio":0.5}',
  ]);
  expect([r.code, r.err]).toEqual([0, '']);
  expect(r.out).toContain('workload           agents/triage-bot (pod standalone, labels team=payments)\n');
  expect(r.out).toContain('gate 3 cedar       allow, determined by own-team-repos, release-labels-need-approval:');
  expect(r.out).toContain('context.arguments (normalised) {"owner":"payments","labels":["release"],"ratio":{"__extn":{"fn":"decimal","arg":"0.5"}}}');
  expect(r.out).toContain('gate 4 approval    channel release-approvals, timeout 15m (approvalChannels release-approvals)');
  const policy = await cli([
    'explain',
    '--policy',
    join(EXAMPLES, 'cluster/policies.yaml'),
    '--label',
    'app=research-agent',
    '--tool',
    'get-env',
    '-o',
    'json',
  ]);
  expect(policy.code).toBe(0);
  expect(JSON.parse(policy.out)).toMatchObject({ governancePolicy: 'research-agents', outcome: { decision: 'deny', rule: 'no-env' } });
  const dir = mkdtempSync(join(tmpdir(), 'tg-policy-cli-'));
  writeFileSync(join(dir, 'c.yaml'), 'sources: [{ name: s, url: "${NOT_SET_ANYWHERE_42}" }]\n');
  const unset = await cli(['explain', '--config', join(dir, 'c.yaml'), '--tool', 'x']);
  expect([unset.code, unset.err]).toEqual([1, expect.stringContaining('environment variable NOT_SET_ANYWHERE_42 is not set')]);
  expect((await cli(['explain', '--config', config, '--tool', 'a', '--resource', 'b'])).code).toBe(2);
  expect((await cli(['explain', '--tool', 'a'])).code).toBe(2);
  expect((await cli(['explain', '--config', config, '--tool', 'a', '--arguments', '{'])).code).toBe(2);
  expect((await cli(['explain', '--config', join(EXAMPLES, 'nope.yaml'), '--tool', 'a'])).code).toBe(2);
});

test('config warnings: explain shows them (stderr; -o json as "warnings"), validate too; the exit status stays 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-policy-cli-'));
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(
    config,
    [
      'sources: [{ name: billing, protocol: a2a, url: "https://billing.example", a2a: { jsonrpc: /rpc } }]',
      'rules: [{ name: refunds, match: { method: SendMessage }, action: deny }]',
      'defaultAction: forward',
      '',
    ].join('\n'),
  );
  const warning = 'refunds: match.method covers SendMessage but not SendStreamingMessage';
  const text = await cli(['explain', '--config', config, '--method', 'SendMessage', '--params', '{"message":{"parts":[]}}']);
  expect(text.code).toBe(0);
  expect(text.err).toBe(`warning: ${config}: ${warning}: the same message sent streaming does not match this rule (name both unless that is meant)\n`);
  const json = await cli(['explain', '--config', config, '--method', 'SendMessage', '--params', '{"message":{"parts":[]}}', '-o', 'json']);
  expect(json.code).toBe(0);
  expect(JSON.parse(json.out).warnings).toEqual([expect.stringContaining(warning)]);
  // An A2A call by --a2a: no params to write, the version and binding's shape is built.
  const a2a = await cli(['explain', '--config', config, '--a2a', '{"version":"0.3","text":"hi","metadata":{"n":1}}', '-o', 'json']);
  expect(JSON.parse(a2a.out)).toMatchObject({ method: 'SendMessage', outcome: { decision: 'deny', rule: 'refunds', error: { code: -32053 } } });
  const rest = await cli(['explain', '--config', config, '--a2a', '{"binding":"rest"}']);
  expect(rest.out).toContain('source "billing" has no HTTP+JSON (a2a.rest) interface');
  // thoughtgate test prints them under the file, and passes.
  writeFileSync(join(dir, 'a.test.yaml'), 'config: thoughtgate.yaml\ncases:\n  - { a2a: { text: hi }, expect: deny, rule: refunds }\n');
  const tested = await cli(['test', join(dir, 'a.test.yaml')]);
  expect(tested.code).toBe(0);
  expect(tested.out).toContain(`  ‼ warning: ${config}: ${warning}`);
  const validate = await cli(['validate', '--config', config]);
  expect(validate.code).toBe(0);
  expect(validate.err).toContain(`${config}: warning: ${warning}`);
});

test('help: both commands, and the main help lists them', async () => {
  const main = await cli(['--help']);
  expect(main.out).toMatch(/\n {2}test {10}run policy tests offline/);
  expect(main.out).toMatch(/\n {2}explain {7}decide one call offline/);
  expect((await cli(['test', '--help'])).out).toContain('Usage: thoughtgate test [options] <dir|file>...');
  expect((await cli(['explain', '-h'])).out).toContain('Usage: thoughtgate explain (--config <file> | --policy <file>...) [options]');
  // Loaded only when chosen: the entry point does not carry them (the sidecar's RSS stays as it was).
  expect(readFileSync(CLI, 'utf8')).not.toContain('Runs policy tests offline');
});

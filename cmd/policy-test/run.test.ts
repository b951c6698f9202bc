// The policy-test runner: test files validated with positions, cases decided by the sidecar's own
// gate code (the same answer as the proxy's planner for the same message), expectations compared.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseJsonRpc } from '../../lib/jsonrpc.js';
import { planPost } from '../../sidecar/proxy/plan.js';
import { explainCall, messageOf } from './explain.js';
import { readTestFile, runTestFile, type CaseResult, type FileResult } from './run.js';
import { loadConfigTarget, loadPolicyTarget, TargetUnreadable } from './target.js';

const CONFIG = `
sources:
  - name: files
    url: http://127.0.0.1:1/mcp
    expose: { mode: allowlist, resources: ["file:///srv/docs/*"], tools: ["read_*", "delete_*"] }
rules:
  - name: no-deletes
    match: { tool: "delete_*" }
    action: deny
  - name: by-policy
    match: { tool: read_file }
    action: policy
defaultAction: forward
cedar:
  policies: |
    @id("small")
    permit(principal, action, resource) when { context.arguments has n && context.arguments.n < 10 };
    @id("no-secrets")
    forbid(principal, action, resource) when { context.arguments has path && context.arguments.path like "*secret*" };
identity: { namespace: team, serviceAccount: bot }
`;

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'tg-policy-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

const ran = (r: FileResult): CaseResult[] => {
  if (r.kind !== 'ran') throw new Error(`${r.kind}: ${r.errors.join('\n')}`);
  return r.cases;
};

describe('test files', () => {
  test('every problem is reported with file:line:col and the path in the file', async () => {
    const d = dir({
      'a.test.yaml': `config: c.yaml
cases:
  - tool: x
    expect: allow
  - tool: y
    expect: deny
    channel: ops
    colour: red
  - expect: forward
  - tool: z
    expect: deny
    error: NOT_A_CODE
`,
    });
    const r = await readTestFile(join(d, 'a.test.yaml'));
    expect(r.ok).toBe(false);
    const errors = r.ok ? [] : r.errors.map((e) => e.replace(d, 'D'));
    expect(errors).toEqual([
      'D/a.test.yaml:4:13: cases[0].expect: expected one of forward, deny, hidden, approve',
      'D/a.test.yaml:7:14: cases[1].channel: "channel" applies only to expect: approve',
      'D/a.test.yaml:8:5: cases[1]: Unrecognized key: "colour"',
      'D/a.test.yaml:9:13: cases[2].expect: name a tool, resource or prompt, a method, or an a2a call',
      expect.stringMatching(/^D\/a\.test\.yaml:12:12: cases\[3\]\.error: unknown error "NOT_A_CODE"/),
    ]);
  });

  test('a file names a config or a policy, not both and not neither; YAML errors have positions', async () => {
    const d = dir({ 'both.test.yaml': 'config: a\npolicy: b\ncases: [{ tool: x, expect: forward }]\n', 'bad.test.yaml': 'config: a\ncases: [\n' });
    const both = await readTestFile(join(d, 'both.test.yaml'));
    expect(both.ok ? [] : both.errors).toEqual([
      `${join(d, 'both.test.yaml')}:1:1: (top level): name either "config" (a thoughtgate.yaml) or "policy" (GovernancePolicy manifests)`,
    ]);
    const bad = await readTestFile(join(d, 'bad.test.yaml'));
    expect(bad.ok ? [] : bad.errors[0]).toMatch(new RegExp(`^${join(d, 'bad.test.yaml')}:\\d+:\\d+: `));
  });

  test('a test file that cannot be used is a file error; a config that is invalid fails its cases', async () => {
    const d = dir({
      'missing.test.yaml': 'config: nope.yaml\ncases: [{ tool: x, expect: forward }]\n',
      'invalid.test.yaml': 'config: c.yaml\ncases: [{ tool: x, expect: forward }]\n',
      'c.yaml': 'sources: []\nrules: [{ match: { tool: x }, action: maybe }]\n',
      'env.test.yaml': 'config: e.yaml\ncases: [{ tool: x, expect: forward }]\n',
      'e.yaml': 'sources: [{ name: s, url: "${URL}" }]\n',
    });
    const missing = await runTestFile(join(d, 'missing.test.yaml'));
    expect(missing).toMatchObject({ kind: 'error', errors: [`${join(d, 'nope.yaml')}: no such file`] });
    const invalid = await runTestFile(join(d, 'invalid.test.yaml'));
    expect(invalid.kind).toBe('invalid-target');
    expect(invalid.kind === 'invalid-target' && invalid.errors[0]).toMatch(/c\.yaml:2:\d+: rules\[0\]\.action: expected one of forward, deny, approve, policy/);
    // Only the file's env is used: a variable it does not set is an error, whatever the environment holds.
    process.env['URL'] = 'http://127.0.0.1:1/mcp';
    try {
      const env = await runTestFile(join(d, 'env.test.yaml'));
      expect(env.kind === 'invalid-target' && env.errors[0]).toMatch(/environment variable URL is not set/);
    } finally {
      delete process.env['URL'];
    }
  });
});

describe('running cases', () => {
  test('expectations: decision, rule, Cedar policy ids, error; a failure says what differed', async () => {
    const d = dir({
      'c.yaml': CONFIG,
      't.test.yaml': `config: c.yaml
cases:
  - { tool: read_file, arguments: { n: 3 }, expect: forward, rule: by-policy, cedarPolicies: [small] }
  - { tool: read_file, arguments: { n: 3, path: /my/secret }, expect: deny, cedarPolicies: [no-secrets], error: -32004 }
  - { tool: delete_file, expect: deny, rule: no-deletes, error: DENIED_BY_RULE }
  - { tool: write_file, expect: hidden }
  - { name: wrong on purpose, tool: read_file, arguments: { n: 30 }, expect: deny, rule: no-deletes, cedarPolicies: [small], error: DENIED_BY_RULE }
  - { tool: read_file, arguments: { n: 30 }, expect: forward }
`,
    });
    const cases = ran(await runTestFile(join(d, 't.test.yaml')));
    expect(cases.map((c) => c.passed)).toEqual([true, true, true, true, false, false]);
    expect(cases[5]!.failures).toEqual(['expected forward, got deny (no policy permits tools/call on files/read_file)']);
    expect(cases[5]!.name).toBe('forward read_file');
    expect(cases[4]!.failures).toEqual([
      'expected rule no-deletes, decided by rule by-policy',
      'expected Cedar policies [small], determined by []',
      'expected error DENIED_BY_RULE (-32003), got DENIED_BY_POLICY (-32004)',
    ]);
    expect(cases[4]!.at).toBe(`${join(d, 't.test.yaml')}:7:5`);
  });

  test('the runner decides with decide() on the compiled config: changing a rule changes the result', async () => {
    const test = 'config: c.yaml\ncases: [{ tool: delete_file, expect: deny, rule: no-deletes }]\n';
    const d = dir({ 'c.yaml': CONFIG, 't.test.yaml': test });
    expect(ran(await runTestFile(join(d, 't.test.yaml')))[0]!.passed).toBe(true);
    writeFileSync(join(d, 'c.yaml'), CONFIG.replace('    action: deny\n', '    action: forward\n'));
    const after = ran(await runTestFile(join(d, 't.test.yaml')))[0]!;
    expect(after.passed).toBe(false);
    expect(after.explanation.outcome).toMatchObject({ decision: 'forward', rule: 'no-deletes' });
  });

  test('hostile spellings get the decision the sidecar gives: the proxy planner on the same message agrees', async () => {
    const d = dir({ 'c.yaml': CONFIG });
    const target = await loadConfigTarget(join(d, 'c.yaml'), {});
    const g = target.governing(target.defaultIdentity);
    if (!g.ok) throw new Error('config');
    const now = new Date('2026-12-06T00:00:00Z');
    const calls = [
      { resource: 'file:///srv/docs/%2e%2e/etc/passwd' },
      { resource: 'file:///srv/docs/a/%2E%2E/%2e%2e/%2e%2e/etc/passwd' },
      { resource: 'FILE:///srv/docs/./guide.md' },
      { resource: 'file:///srv/docs/guide.md' },
      { resource: 'file:///srv/docs/%zz' },
      { tool: 'DELETE_file' },
      { tool: 'Delete_File' },
      { tool: 'delete_file' },
      { tool: 'read_file', arguments: { n: 1, path: 'a\u0000secret' } },
      { tool: 'read_file', arguments: { n: 1.5 } },
      { tool: 'read_file', arguments: { n: 2, ___entity: { type: 'x' } } },
      { method: 'tools/list' },
    ];
    const seen = new Set<string>();
    for (const spec of calls) {
      const { method, params } = messageOf(spec);
      const e = explainCall(target, { identity: target.defaultIdentity, source: 'files', method, params, now });
      const parsed = parseJsonRpc(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }));
      if (!parsed.ok || parsed.batch) throw new Error('parse');
      const plan = planPost({
        messages: [parsed.message],
        batch: false,
        snap: g.snapshot,
        source: g.snapshot.sources.get('files')!,
        headers: {},
        approvals: null,
        now,
        correlationId: 'c',
        logging: false,
      });
      const sidecar = plan.outcomes[0]!;
      const ours = e.outcome;
      // The planner logs a refused message as "invalid"; the runner calls it a denial at the transport gate.
      const decision = sidecar.decision === 'invalid' ? 'deny' : sidecar.decision;
      expect([spec, ours.decision, ours.rule, ours.reason]).toEqual([spec, decision, sidecar.rule, sidecar.reason]);
      if (sidecar.decision !== 'invalid') expect([spec, ours.gate]).toEqual([spec, sidecar.gate]);
      seen.add(`${sidecar.decision}/${sidecar.gate ?? ''}`);
    }
    // Every path was taken: refused URI, hidden, rule denial, Cedar (allow and error), plumbing.
    expect([...seen].sort()).toEqual(['deny/cedar', 'deny/rules', 'forward/cedar', 'forward/rules', 'hidden/visibility', 'invalid/']);
    target.close();
  });

  test('an unknown source fails a case unless it expects UNKNOWN_SOURCE (a typo must not pass as a denial)', async () => {
    const d = dir({
      'c.yaml': CONFIG,
      't.test.yaml': `config: c.yaml
cases:
  - { source: flies, tool: read_file, expect: deny }
  - { source: flies, tool: read_file, expect: deny, error: UNKNOWN_SOURCE }
`,
    });
    const [typo, meant] = ran(await runTestFile(join(d, 't.test.yaml')));
    expect(typo!.failures).toEqual(['the call never reached the gates: no source "flies" in the config (it has files)']);
    expect(meant!.passed).toBe(true);
  });

  test('enforced defaults to expect and is always compared: a config put in audit fails its deny tests', async () => {
    // The shipped rollout config (enforcement: audit) under tests written before audit was added.
    const config = fileURLToPath(new URL('../../examples/policy-tests/rollout/thoughtgate.yaml', import.meta.url));
    const d = dir({
      't.test.yaml': `config: ${JSON.stringify(config)}
env: { SLACK_BOT_TOKEN: x }
source: crm
cases:
  - { tool: update_plan, expect: deny, rule: defaultAction }
  - { tool: export_customers, expect: hidden }
  - { tool: refund, expect: approve }
  - { tool: update_plan, expect: deny, enforced: forward }
  - { tool: delete_account, expect: deny }
  - { tool: get_customer, expect: forward }
  - { tool: delete_account, expect: deny, enforced: forward }
`,
    });
    const cases = ran(await runTestFile(join(d, 't.test.yaml')));
    expect(cases.map((c) => c.passed)).toEqual([false, false, false, true, true, true, false]);
    expect(cases[0]!.failures).toEqual([
      'expected the sidecar to deny the call after the enforcement step, it does forward (audit: the config or rule is in audit, so the sidecar would forward the call and only record that enforce would deny it; set "enforced: forward" if that is intended)',
    ]);
    expect(cases[1]!.failures).toEqual([expect.stringMatching(/^expected the sidecar to hide the call .*would hide it; set "enforced: forward"/)]);
    expect(cases[6]!.failures).toEqual(['expected the sidecar to forward the call after the enforcement step, it does deny']);
  });
});

const POLICIES = `apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: base, namespace: ns }
spec:
  sources: [{ name: s, url: "\${URL:-http://127.0.0.1:1/mcp}" }]
  rules: [{ name: gated, match: { tool: deploy }, action: approve, approval: { channel: ops, timeout: 2m } }]
  defaultAction: forward
---
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: locked, namespace: ns }
spec:
  podSelector: { matchLabels: { tier: locked } }
  priority: 5
  sources: [{ name: s, url: "http://127.0.0.1:1/mcp" }]
  defaultAction: deny
`;

test('env: the only values for ${VAR}; numbers and booleans are written as YAML allows', async () => {
  const d = dir({
    'c.yaml': 'sources: [{ name: s, url: "http://127.0.0.1:${PORT}/mcp" }]\nrules: [{ match: { tool: "${TOOL}" }, action: deny }]\ndefaultAction: forward\n',
    't.test.yaml': 'config: c.yaml\nenv: { PORT: 8080, TOOL: "true" }\ncases: [{ tool: "true", expect: deny }, { tool: other, expect: forward }]\n',
  });
  expect(ran(await runTestFile(join(d, 't.test.yaml'))).map((c) => c.failures)).toEqual([[], []]);
});

describe('GovernancePolicies', () => {
  test('rendered as the operator renders them: a policy it would mark Invalid fails with its errors', async () => {
    const d = dir({ 'p.yaml': POLICIES });
    await expect(loadPolicyTarget([join(d, 'p.yaml')], {})).rejects.toMatchObject({
      errors: ['GovernancePolicy ns/base: approval channel "ops" is referenced but no ApprovalChannel "ops" exists in namespace ns'],
    });
    const t = await loadPolicyTarget([join(d, 'p.yaml')], {}, ['ops']);
    t.close();
    // Manifests are what is under test: broken ones fail (exit 1); only a missing file is a file error.
    writeFileSync(join(d, 'broken.yaml'), `${POLICIES}---\nkind: [\n`);
    await expect(loadPolicyTarget([join(d, 'broken.yaml')], {}, ['ops'])).rejects.toMatchObject({ errors: [expect.stringMatching(/broken\.yaml:\d+:\d+: /)] });
    writeFileSync(join(d, 'other.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n');
    await expect(loadPolicyTarget([join(d, 'other.yaml')], {})).rejects.toMatchObject({
      errors: [expect.stringContaining('document 1: expected apiVersion thoughtgate.io/v1alpha1, kind GovernancePolicy or ApprovalChannel')],
    });
    await expect(loadPolicyTarget([join(d, 'none.yaml')], {})).rejects.toBeInstanceOf(TargetUnreadable);
  });

  test('selected per workload by podSelector and priority, as the sidecar selects from the ConfigMap', async () => {
    const d = dir({
      'p.yaml': POLICIES,
      't.test.yaml': `policy: p.yaml
approvalChannels: [ops]
cases:
  - { tool: deploy, expect: approve, channel: ops, timeout: 2m, governancePolicy: base }
  - { identity: { labels: { tier: locked } }, tool: deploy, expect: deny, rule: defaultAction, governancePolicy: locked }
  - { identity: { namespace: other }, tool: deploy, expect: deny, error: NOT_CONFIGURED }
`,
    });
    const cases = ran(await runTestFile(join(d, 't.test.yaml')));
    expect(cases.map((c) => [c.passed, c.failures])).toEqual([
      [true, []],
      [true, []],
      [true, []],
    ]);
    expect(cases[0]!.explanation.identity).toEqual({ namespace: 'ns', serviceAccount: 'default', pod: 'test', labels: {} });
  });
});

describe('A2A cases', () => {
  const AGENT = `
sources:
  - name: billing
    protocol: a2a
    url: http://127.0.0.1:1
    a2a: { jsonrpc: /rpc, rest: /rest, skillFrom: metadata.skill }
  - name: files
    url: http://127.0.0.1:1/mcp
rules:
  - name: refunds-by-policy
    match: { source: billing, skill: "refund*" }
    action: policy
  - name: no-cancel
    match: { method: CancelTask }
    action: deny
  - name: status
    match: { source: billing, skill: status }
    action: approve
    approval: { channel: finance }
defaultAction: forward
approvalChannels: [{ name: finance, slack: { channel: C1, tokenEnv: SLACK_TOKEN }, approvers: { users: [U1] } }]
cedar:
  policies: |
    @id("small") permit(principal, action in [ThoughtGate::Action::"SendMessage", ThoughtGate::Action::"SendStreamingMessage"], resource == ThoughtGate::Agent::"billing")
      when { context.metadata has amount && context.metadata.amount < 100 && context.version == "1.0" && context.binding == "rest" && context.tenant == "acme" };
    @id("no-unsafe") forbid(principal, action, resource is ThoughtGate::Agent) when { context.extensions.contains("urn:unsafe") };
    @id("no-pdf") forbid(principal, action, resource is ThoughtGate::Agent) when { context.partKinds.contains("url") };
`;

  test('a case names the skill, version, binding, tenant, extensions, metadata and parts of an A2A call', async () => {
    const d = dir({
      'c.yaml': AGENT,
      'a.test.yaml': `config: c.yaml
source: billing
cases:
  - name: a small refund over 1.0 HTTP+JSON for acme
    a2a: { version: "1.0", binding: rest, tenant: acme, skill: refund, metadata: { amount: 5 }, text: refund order 7 }
    expect: forward
    cedarPolicies: [small]
  - name: the same over JSON-RPC is not permitted (the policy asks for rest)
    a2a: { version: "1.0", tenant: acme, skill: refund, metadata: { amount: 5 } }
    expect: deny
    error: DENIED_BY_POLICY
  - name: a forbidden extension
    a2a: { version: "1.0", binding: rest, tenant: acme, skill: refund, metadata: { amount: 5 }, extensions: ["urn:unsafe"] }
    expect: deny
    cedarPolicies: [no-unsafe]
  - name: a url part in 0.3 JSON-RPC's shape
    method: message/send
    a2a: { skill: refund-big, parts: [{ kind: file, file: { uri: "https://x.example/a.pdf" } }] }
    expect: deny
    cedarPolicies: [no-pdf]
  - name: cancel in 0.3 HTTP+JSON, by task id
    method: tasks/cancel
    a2a: { binding: rest, taskId: t-1 }
    expect: deny
    rule: no-cancel
  - name: the status skill needs approval, streaming too
    method: SendStreamingMessage
    a2a: { skill: status }
    expect: approve
    channel: finance
`,
    });
    const cases = ran(await runTestFile(join(d, 'a.test.yaml')));
    expect(cases.map((c) => [c.name, c.failures])).toEqual(cases.map((c) => [c.name, []]));
    expect(cases[0]!.explanation).toMatchObject({ method: 'SendMessage', target: { kind: 'skill', decided: 'refund' } });
    expect(cases[5]!.explanation.outcome.approvalUnavailable).toBeUndefined();
  });

  test('what an A2A case cannot mean is an error, before or at the gates', async () => {
    const d = dir({
      'c.yaml': AGENT,
      'bad.test.yaml': `config: c.yaml
cases:
  - { a2a: { text: a, parts: [] }, source: billing, expect: forward }
  - { a2a: { skill: a }, tool: x, expect: forward }
  - { a2a: { skill: a }, method: SendMessage, params: {}, expect: forward }
`,
      'gates.test.yaml': `config: c.yaml
cases:
  - { a2a: { skill: refund }, source: files, expect: deny }
  - { a2a: { version: "0.3", tenant: acme }, source: billing, expect: deny }
  - { a2a: { extensions: ["not a uri"] }, source: billing, expect: deny }
  - { method: GetTask, a2a: { skill: refund }, source: billing, expect: deny }
`,
    });
    const bad = await readTestFile(join(d, 'bad.test.yaml'));
    expect(bad.ok ? [] : bad.errors.map((e) => e.replace(d, 'D'))).toEqual([
      expect.stringMatching(/cases\[0\]\.a2a\.parts: "text" and "parts" exclude each other/),
      expect.stringMatching(/cases\[1\]\.tool: "tool" is MCP's/),
      expect.stringMatching(/cases\[2\]\.a2a\.skill: with "params", a2a may only say version, binding, extensions/),
    ]);
    const cases = ran(await runTestFile(join(d, 'gates.test.yaml')));
    expect(cases.map((c) => c.explanation.outcome.reason)).toEqual([
      'source "files" is not an A2A agent (protocol: a2a): an a2a call goes to an agent',
      'a tenant is A2A 1.0 only',
      expect.stringContaining('is not an extension URI'),
      'GetTask carries no message: skill, text, parts and metadata go with SendMessage or SendStreamingMessage',
    ]);
    // A test expecting a denial does not pass on a call that never reached the gates.
    expect(cases.map((c) => c.failures.at(-1))).toEqual(cases.map((c) => `the call never reached the gates: ${c.explanation.outcome.reason}`));
  });
});

// The Argo CD health checks of examples/argocd/README.md, run as Argo CD runs them, against the
// statuses a real operator writes on a real kube-apiserver:
//  - the scripts are taken from the README's argocd-cm block itself (parsed as YAML), so what is
//    tested is exactly what users copy;
//  - the interpreter is glua, gopher-lua at the version Argo CD pins (v1.1.1, e2e/helm/go.mod), with
//    only the libraries Argo CD opens for a custom health check (base, package, table, a safe os;
//    no string, math or io), `obj` a global, and the script's returned table checked as Argo CD does;
//  - every object is read back from the API server: nothing is reconciled yet (the operator not
//    started), valid and invalid GovernancePolicies, a policy edited while the operator is down,
//    ApprovalChannels whose token works, is refused, or whose Slack is unreachable.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { run } from './cluster/cluster.js';
import { cluster, e2eCluster, getJson, kubectl, until as poll } from './support/k8s.js';
import { installHelm } from './support/helm.js';
import { ROOT } from '../test/support/processes.js';
import { createLogger } from '../lib/log.js';
import { startOperator, type Operator } from '../operator/operator.js';
import { startFakeSlack, type FakeSlack } from '../test/fakes/slack-server.js';

const e2e = e2eCluster('argohealth');
const OPNS = e2e.ns('system');
const NS = e2e.ns('team');
const CH = 'C0APPROVE';
const TOKEN = 'xoxb-good';

let glua: string;
let stateDir: string;
let fake: FakeSlack;
let op: Operator | undefined;
const lines: string[] = [];
const until = <T>(what: string, fn: () => Promise<T | null | undefined | false>): Promise<T> =>
  poll(what, fn, 30_000, { detail: () => lines.slice(-20).join('') });

/** The `resource.customizations.health.*` scripts of the README's argocd-cm block, by key suffix. */
function healthChecks(): Record<string, string> {
  const readme = readFileSync(join(ROOT, 'examples', 'argocd', 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('resource.customizations.health.'));
  if (!block) throw new Error('no health-check block in examples/argocd/README.md');
  const data = (parseAllDocuments(block)[0]?.toJS() as { data?: Record<string, string> } | undefined)?.data;
  if (!data) throw new Error('the health-check block of examples/argocd/README.md has no data');
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k.replace('resource.customizations.health.', ''), v]));
}

/** A JSON value as a Lua expression: what Argo CD's decodeValue builds from the object. */
function toLua(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    // Lua 5.1 strings know no \u escapes: every byte that is not printable ASCII becomes \ddd.
    return `"${[...Buffer.from(v, 'utf8')].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b}`)).join('')}"`;
  }
  if (Array.isArray(v)) return `{${v.map(toLua).join(', ')}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `[${toLua(k)}] = ${toLua(x)}`)
    .join(', ')}}`;
}

// Argo CD (util/lua/lua.go, runLua) opens package, base, table and its safe os (time, date) when
// useOpenLibs is off, the default for resource.customizations; glua opens everything, so the chunk
// runs in an environment of just those. It is a chunk (DoString), so a top-level `return` is its result.
const HARNESS = `
local source, obj = ...
local env = {}
for k, v in pairs(_G) do env[k] = v end
for _, lib in ipairs({ "string", "math", "io", "debug", "coroutine", "channel", "os" }) do env[lib] = nil end
env.os = { time = os.time, date = os.date }
env.obj = obj
env._G = env
local chunk, err = loadstring(source, "health.lua")
if chunk == nil then io.write("error\\n", err) return end
setfenv(chunk, env)
local ok, hs = pcall(chunk)
if not ok then io.write("error\\n", tostring(hs)) return end
if type(hs) ~= "table" then io.write("error\\nexpect table output from Lua script, not ", type(hs)) return end
if type(hs.status) ~= "string" or (hs.message ~= nil and type(hs.message) ~= "string") then
  io.write("error\\nstatus or message is not a string") return
end
io.write("ok\\n", hs.status, "\\n", hs.message or "")
`;

const VALID = new Set(['Unknown', 'Progressing', 'Suspended', 'Healthy', 'Degraded', 'Missing']);

/** What Argo CD shows for `obj` with this health script. */
async function argoHealth(script: string, obj: unknown): Promise<{ status: string; message: string }> {
  const file = join(stateDir, `health-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(file, `local f = assert(loadstring(${toLua(HARNESS)}))\nf(${toLua(script)}, ${toLua(obj)})\n`);
  const r = await run(glua, [file]);
  if (r.code !== 0) throw new Error(`glua: ${r.stderr}${r.stdout}`);
  const [outcome, status, ...message] = r.stdout.split('\n');
  if (outcome !== 'ok') throw new Error(`the health script failed (Argo CD would show Unknown): ${[status, ...message].join('\n')}`);
  // An unknown status is Unknown with this message in Argo CD, not an error.
  if (!VALID.has(status!)) return { status: 'Unknown', message: 'Lua returned an invalid health status' };
  return { status: status!, message: message.join('\n') };
}

const policy = (name: string, cedar: string) => `
apiVersion: thoughtgate.io/v1alpha1
kind: GovernancePolicy
metadata: { name: ${name} }
spec:
  sources: [{ name: s, url: "http://mcp.example/mcp" }]
  rules: [{ match: { tool: "transfer_*" }, action: policy }]
  defaultAction: deny
  cedar:
    policies: |
      ${cedar}
`;
const channel = (name: string, secret: string) => `
apiVersion: thoughtgate.io/v1alpha1
kind: ApprovalChannel
metadata: { name: ${name} }
spec:
  slack: { channel: ${CH}, apiUrl: "${fake.url}", tokenSecretRef: { name: ${secret} } }
  approvers: { users: [U0ALICE] }
`;

const get = (kind: string, name: string) => getJson(['get', kind, name, '-n', NS]);
/** The object once its Ready condition has this status (and, if given, generation observed). */
const withReady = (kind: string, name: string, status: string, generation?: number) =>
  until(`${kind} ${name} Ready=${status}`, async () => {
    const o = await get(kind, name);
    const ready = o?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
    return ready?.status === status && (generation === undefined || ready.observedGeneration === generation) ? o : null;
  });

function startOp(identity: string): Promise<Operator> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster().kubeconfig);
  return startOperator({
    kc,
    namespace: OPNS,
    identity,
    log: createLogger('debug', (l) => lines.push(l)),
    metricsPort: 0,
    metricsBind: '127.0.0.1',
    leaseDurationSec: 3,
    resyncMs: 60_000,
    approvals: { slackApiUrls: [fake.url], secretPollMs: 1000 },
  });
}

let checks: Record<string, string>;
let gpCheck: string;
let acCheck: string;

beforeAll(async () => {
  // glua is built with helm into the tool cache (scripts/helm-tools.sh), next to the helm binary.
  glua = join(await installHelm(), '..', 'glua');
  stateDir = mkdtempSync(join(tmpdir(), 'tg-e2e-argohealth-'));
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT', botId: 'BBOT', team: 'Acme' } },
    channels: [{ id: CH, name: 'approvals' }],
    users: [{ id: 'U0ALICE', name: 'alice', realName: 'Alice' }],
  });
  await e2e.namespace('system');
  await e2e.namespace('team');
  await kubectl(['create', 'secret', 'generic', 'slack-bot', '-n', NS, `--from-literal=token=${TOKEN}`]);
  await kubectl(['create', 'secret', 'generic', 'bad-bot', '-n', NS, '--from-literal=token=xoxb-revoked']);
  checks = healthChecks();
  gpCheck = checks['thoughtgate.io_GovernancePolicy']!;
  acCheck = checks['thoughtgate.io_ApprovalChannel']!;
}, 15 * 60_000);

e2e.cleanup(async () => {
  await op?.close();
  await fake?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test('the README has a health check for each kind users keep in Git, and nothing else', () => {
  expect(Object.keys(checks).sort()).toEqual(['thoughtgate.io_ApprovalChannel', 'thoughtgate.io_GovernancePolicy']);
});

test('before the operator has seen them: Progressing, waiting for the operator', async () => {
  await kubectl(['apply', '-n', NS, '-f', '-'], policy('valid', 'permit(principal, action, resource);'));
  await kubectl(['apply', '-n', NS, '-f', '-'], channel('approvals', 'slack-bot'));
  const waiting = { status: 'Progressing', message: 'waiting for the ThoughtGate operator' };
  const gp = await get('governancepolicy', 'valid');
  expect(gp.status?.conditions).toBeUndefined();
  expect(await argoHealth(gpCheck, gp)).toEqual(waiting);
  const ac = await get('approvalchannel', 'approvals');
  expect(ac.status?.conditions).toBeUndefined();
  expect(await argoHealth(acCheck, ac)).toEqual(waiting);
});

describe('with the operator running', () => {
  beforeAll(async () => {
    op = await startOp('op-1');
    await until('leader', async () => op!.isLeader());
  });

  test('a valid GovernancePolicy is Healthy with the Ready message', async () => {
    const gp = await withReady('governancepolicy', 'valid', 'True');
    expect(await argoHealth(gpCheck, gp)).toEqual({
      status: 'Healthy',
      message: 'rendered into ConfigMap thoughtgate-config; sidecars selected by this policy enforce generation 1',
    });
  });

  test('a GovernancePolicy whose Cedar does not parse is Degraded, saying so', async () => {
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('broken', 'permit(principal, action, resource) when { ;'));
    const gp = await withReady('governancepolicy', 'broken', 'False');
    expect(await argoHealth(gpCheck, gp)).toEqual({
      status: 'Degraded',
      message: 'generation 1 is invalid and no earlier generation was valid; nothing of this policy is served',
    });
  });

  test('a valid policy edited into an invalid one is Degraded, though its last good generation keeps serving', async () => {
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('regressed', 'permit(principal, action, resource);'));
    await withReady('governancepolicy', 'regressed', 'True', 1);
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('regressed', 'forbid(principal, action, resource) when { ;'));
    const gp = await withReady('governancepolicy', 'regressed', 'False', 2);
    expect(await argoHealth(gpCheck, gp)).toEqual({
      status: 'Degraded',
      message: 'generation 2 is invalid; generation 1, the last valid one, keeps serving',
    });
  });

  test('an ApprovalChannel whose token and channel work is Healthy; a refused token is Degraded', async () => {
    const good = await withReady('approvalchannel', 'approvals', 'True');
    expect(await argoHealth(acCheck, good)).toEqual({ status: 'Healthy', message: 'approvals can be posted; 1 approver after resolving user groups' });
    await kubectl(['apply', '-n', NS, '-f', '-'], channel('revoked', 'bad-bot'));
    const bad = await withReady('approvalchannel', 'revoked', 'False');
    expect(bad.status.conditions.find((c: { type: string }) => c.type === 'Ready').reason).toBe('TokenRefused');
    expect(await argoHealth(acCheck, bad)).toEqual({ status: 'Degraded', message: expect.stringContaining('invalid_auth') });
  });

  test('an ApprovalChannel while Slack cannot be reached is Progressing (Ready=Unknown), not Degraded', async () => {
    await fake.setDown('http500');
    try {
      await kubectl(['apply', '-n', NS, '-f', '-'], channel('during-outage', 'slack-bot'));
      const unsure = await withReady('approvalchannel', 'during-outage', 'Unknown');
      const ready = unsure.status.conditions.find((c: { type: string }) => c.type === 'Ready');
      expect(ready.reason).toBe('SlackUnreachable');
      expect(await argoHealth(acCheck, unsure)).toEqual({ status: 'Progressing', message: ready.message });
    } finally {
      await fake.setDown(false);
    }
  });

  test('a policy edited while the operator is down is Progressing until the operator sees the new generation', async () => {
    await op!.close();
    op = undefined;
    await kubectl(['apply', '-n', NS, '-f', '-'], policy('valid', 'permit(principal, action == Action::"tools/call", resource);'));
    const edited = await get('governancepolicy', 'valid');
    expect(edited.metadata.generation).toBe(2);
    expect(edited.status.conditions.find((c: { type: string }) => c.type === 'Ready').observedGeneration).toBe(1);
    expect(await argoHealth(gpCheck, edited)).toEqual({ status: 'Progressing', message: 'the operator has not seen generation 2 yet' });

    op = await startOp('op-2');
    const seen = await withReady('governancepolicy', 'valid', 'True', 2);
    expect(await argoHealth(gpCheck, seen)).toEqual({
      status: 'Healthy',
      message: 'rendered into ConfigMap thoughtgate-config; sidecars selected by this policy enforce generation 2',
    });
  }, 60_000);
});

test('the harness is Argo CD: no string library, a non-table result and an unknown status are not Healthy', async () => {
  // Without these, a script relying on what Argo CD does not give it would pass here and fail there.
  await expect(argoHealth('return { status = string.upper("healthy") }', {})).rejects.toThrow("attempt to index a non-table object(nil) with key 'upper'");
  await expect(argoHealth('return "Healthy"', {})).rejects.toThrow(/not string/);
  expect(await argoHealth('return { status = "Fine" }', {})).toEqual({ status: 'Unknown', message: 'Lua returned an invalid health status' });
  expect(await argoHealth('return { status = "Healthy", message = obj.metadata.name }', { metadata: { name: 'x' } })).toEqual({
    status: 'Healthy',
    message: 'x',
  });
});

// Cluster approvals end to end on a real kube-apiserver: the sidecar's cluster backend (driven
// directly, with a service-account token of the namespace, as a sidecar would run), the operator
// relaying ApprovalRequests to the fake Slack Web API through the real @slack/web-api client,
// and ApprovalChannel status. Restarts, a crash mid-post, two replicas, Slack outages, many
// pending approvals on one token, and what the sidecar's token may and may not do.
//
// Numbers (Slack calls per pending approval per minute) are printed, never asserted on time.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { approvalRequestName, TOO_MANY_PENDING } from '../api/approval-request.js';
import type { Operator } from '../operator/operator.js';
import type { Decision, PendingApproval } from '../sidecar/approvals/backend.js';
import { createClusterBackend, type ClusterApprovalBackend } from '../sidecar/approvals/cluster-backend.js';
import { SlackApprovalClient, SlackConnection } from '../slack/index.js';
import { startFakeSlack, type FakeMessage, type FakeSlack } from '../test/fakes/slack-server.js';
import { approvalOperators } from './support/approval-operators.js';
import { cluster, e2eCluster, getJson, kubectl, kubectlResult } from './support/k8s.js';

/** Per test: each waits on real polling (2 s, growing) and real timeouts. */
const T = 180_000;
const e2e = e2eCluster('approvals');
const OPNS = e2e.ns('system');
const NAMESPACES = ['team-a', 'team-b', 'team-c'].map(e2e.ns);
const NS = NAMESPACES[0]!;
const TEAM_C = NAMESPACES[2]!;
const CH = 'C0APPROVE';
const TOKEN = 'xoxb-good';
const ALICE = 'U0ALICE';
const MALLORY = 'U0MALLORY';

let stateDir: string;
let fake: FakeSlack;
const backends: ClusterApprovalBackend[] = [];
const { lines, log, operators, until, operator, stop } = approvalOperators(OPNS, () => fake.url);
/** Writes the leader Lease as another holder's, fresh: the operator steps down, then takes it back once it expires. */
async function takeLease(holder: string): Promise<void> {
  const micro = new Date().toISOString().replace(/Z$/, '000Z');
  const spec = { holderIdentity: holder, acquireTime: micro, renewTime: micro, leaseDurationSeconds: 3 };
  await kubectl(['patch', 'lease', 'thoughtgate-operator', '-n', OPNS, '--type=merge', '-p', JSON.stringify({ spec })]);
}

/** A service-account token of the namespace, as the kubelet would mount it for a sidecar. */
const tokenFiles = new Map<string, string>();
async function sidecarToken(ns: string): Promise<string> {
  let file = tokenFiles.get(ns);
  if (!file) {
    const token = (await kubectl(['create', 'token', 'agent', '-n', ns, '--duration', '1h'])).trim();
    file = join(stateDir, `token-${ns}`);
    writeFileSync(file, token);
    tokenFiles.set(ns, file);
  }
  return file;
}

interface Side {
  backend: ClusterApprovalBackend;
  decisions: Decision[];
  decision(id: string): Promise<Decision>;
}
async function sidecar(ns: string, pod: string): Promise<Side> {
  const backend = createClusterBackend({
    workload: { namespace: ns, serviceAccount: 'agent', pod },
    log,
    clientOptions: { server: cluster().server, caFile: cluster().caFile, tokenFile: await sidecarToken(ns) },
    backoffBaseMs: 100,
    backoffMaxMs: 2000,
  });
  backends.push(backend);
  const decisions: Decision[] = [];
  backend.onDecision((d) => decisions.push(d));
  return { backend, decisions, decision: (id) => until(`the decision on ${id}`, () => decisions.find((d) => d.id === id)) };
}

function pending(ns: string, pod: string, over: Partial<PendingApproval> = {}): PendingApproval {
  return {
    id: randomUUID(),
    channel: 'approvals',
    workload: { namespace: ns, serviceAccount: 'agent', pod },
    source: 'github',
    method: 'tools/call',
    tool: 'delete_repo',
    arguments: { repo: 'acme/site', force: true, token: 'ghp_secret' },
    requestHash: 'a'.repeat(64),
    reason: 'rule deletes-need-approval',
    createdAt: new Date(),
    expiresAt: new Date(Date.now() + 10 * 60_000),
    ...over,
  };
}

const requestKey = (p: PendingApproval) => `${p.workload.namespace}/${approvalRequestName(p.id)}`;
const messageOf = (p: PendingApproval): FakeMessage | undefined =>
  fake.messages().find((m) => (m.metadata as { event_payload?: { request_id?: string } } | undefined)?.event_payload?.request_id === requestKey(p));
const posted = (p: PendingApproval) => until(`the Slack message of ${requestKey(p)}`, () => messageOf(p));
const postCalls = (p: PendingApproval) =>
  fake
    .calls('chat.postMessage')
    .filter((c) => c.ok && (c.args.metadata as { event_payload?: { request_id?: string } } | undefined)?.event_payload?.request_id === requestKey(p)).length;
const request = (p: PendingApproval) => getJson(['get', 'approvalrequest', approvalRequestName(p.id), '-n', p.workload.namespace]);
const phaseOf = async (p: PendingApproval) => (await request(p))?.status?.phase as string | undefined;
const condition = (obj: any, type: string) => obj?.status?.conditions?.find((c: any) => c.type === type);

const channel = (name: string, secret: string, slackChannel = CH, extra = '') => `
apiVersion: thoughtgate.io/v1alpha1
kind: ApprovalChannel
metadata: { name: ${name} }
spec:
  slack: { channel: ${slackChannel}, apiUrl: "${fake.url}", tokenSecretRef: { name: ${secret} } }
  approvers: { users: [${ALICE}] }
  redact: [token]
${extra}`;

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'tg-e2e-approvals-'));
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT', botId: 'BBOT', team: 'Acme' } },
    channels: [{ id: CH, name: 'approvals' }],
    users: [
      { id: ALICE, name: 'alice', realName: 'Alice' },
      { id: MALLORY, name: 'mallory', realName: 'Mallory' },
    ],
  });
  await e2e.namespace('system');
  for (const short of ['team-a', 'team-b', 'team-c']) {
    const ns = await e2e.namespace(short, { 'thoughtgate.io/inject': 'enabled' });
    await kubectl(['create', 'serviceaccount', 'agent', '-n', ns]);
    await kubectl(['create', 'secret', 'generic', 'slack-bot', '-n', ns, `--from-literal=token=${TOKEN}`]);
    await kubectl(['apply', '-n', ns, '-f', '-'], channel('approvals', 'slack-bot'));
  }
}, 60_000);

e2e.cleanup(async () => {
  // TG_E2E_LOG=<file> keeps the operators' and sidecars' logs of the run.
  if (process.env.TG_E2E_LOG) writeFileSync(process.env.TG_E2E_LOG, lines.join(''));
  for (const b of backends) await b.close();
  for (const op of [...operators]) await op.close();
  await fake?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('with one operator', () => {
  let op: Operator;
  let side: Side;
  beforeAll(async () => {
    op = await operator('op-1');
    await until('leader', () => op.isLeader());
    // The operator's sidecar Role must exist before a sidecar token can create requests.
    for (const ns of NAMESPACES) await until(`the sidecar Role in ${ns}`, () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', ns]));
    side = await sidecar(NS, 'agent-0');
  });
  afterAll(async () => {
    await stop(op);
  }, 60_000);

  test(
    'ApprovalChannel status: Ready with a good token; False with a bad token, a missing Secret or an unknown channel',
    async () => {
      await kubectl(['create', 'secret', 'generic', 'bad-bot', '-n', NS, '--from-literal=token=xoxb-revoked']);
      await kubectl(['apply', '-n', NS, '-f', '-'], channel('bad-token', 'bad-bot'));
      await kubectl(['apply', '-n', NS, '-f', '-'], channel('no-secret', 'nowhere'));
      await kubectl(['apply', '-n', NS, '-f', '-'], channel('no-channel', 'slack-bot', 'C0NOPE'));
      const ready = async (name: string, status: string) => {
        const c = await getJson(['get', 'approvalchannel', name, '-n', NS]);
        return condition(c, 'Ready')?.status === status ? c : null;
      };
      const good = await until('approvals Ready', () => ready('approvals', 'True'));
      expect(condition(good, 'TokenValid')).toMatchObject({ status: 'True', reason: 'TokenValid' });
      expect(condition(good, 'ChannelFound')).toMatchObject({ status: 'True', message: expect.stringContaining('#approvals') });
      expect(good.status).toMatchObject({ team: 'Acme', botUser: 'UBOT', channelName: 'approvals', observedGeneration: 1 });

      const bad = await until('bad-token not Ready', () => ready('bad-token', 'False'));
      expect(condition(bad, 'TokenValid')).toMatchObject({ status: 'False', reason: 'TokenRefused', message: expect.stringContaining('invalid_auth') });
      const missing = await until('no-secret not Ready', () => ready('no-secret', 'False'));
      expect(condition(missing, 'TokenValid')).toMatchObject({
        status: 'False',
        reason: 'SecretNotFound',
        message: expect.stringContaining('Secret "nowhere"'),
      });
      const nochan = await until('no-channel not Ready', () => ready('no-channel', 'False'));
      expect(condition(nochan, 'ChannelFound')).toMatchObject({
        status: 'False',
        reason: 'ChannelNotFound',
        message: expect.stringContaining('channel_not_found'),
      });

      // Fixing the Secret is noticed without touching the channel (the Secret is re-read).
      await kubectl(['create', 'secret', 'generic', 'nowhere', '-n', NS, `--from-literal=token=${TOKEN}`]);
      await until('no-secret Ready once its Secret exists', () => ready('no-secret', 'True'));
      // A rotated, refused token too.
      await kubectl(['patch', 'secret', 'nowhere', '-n', NS, '--type=merge', '-p', JSON.stringify({ stringData: { token: 'xoxb-revoked' } })]);
      await until('no-secret not Ready after its token was replaced by a bad one', () => ready('no-secret', 'False'));
      const events = await getJson(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=bad-token']);
      expect(events.items.map((e: any) => e.reason)).toContain('TokenRefused');
    },
    T,
  );

  test(
    'submit → posted once → a non-approver is ignored → an approver approves → executing → result in Slack',
    async () => {
      const p = pending(NS, 'agent-0');
      await side.backend.submit(p);
      const obj = await request(p);
      expect(obj.metadata.labels).toEqual({ 'thoughtgate.io/pod': 'agent-0', 'thoughtgate.io/source': 'github' });
      expect(obj.spec).toMatchObject({
        taskId: p.id,
        tool: 'delete_repo',
        arguments: p.arguments,
        cancelRequested: false,
        expiresAt: p.expiresAt.toISOString(),
      });
      const m = await posted(p);
      // The channel's redact list hides the token argument in Slack; the request keeps it whole.
      expect(JSON.stringify(m)).not.toContain('ghp_secret');
      await until('Posted', async () => (await phaseOf(p)) === 'Posted');

      const polls = fake.calls('reactions.get').length;
      fake.addReaction(CH, m.ts, 'white_check_mark', MALLORY);
      // Two more polls after Mallory's reaction, and still no decision: she is not an approver.
      await until('two polls after a non-approver reacted', () => fake.calls('reactions.get').length >= polls + 2);
      expect(side.decisions.find((d) => d.id === p.id)).toBeUndefined();
      expect(await phaseOf(p)).toBe('Posted');

      fake.addReaction(CH, m.ts, 'white_check_mark', ALICE);
      const d = await side.decision(p.id);
      expect(d).toMatchObject({ id: p.id, outcome: 'approved', by: [{ id: ALICE, name: 'Alice' }], message: 'approved in Slack by Alice' });
      const done = await request(p);
      expect(done.status).toMatchObject({ phase: 'Approved', reason: 'Approved', decidedBy: [{ id: ALICE, name: 'Alice' }] });
      expect(postCalls(p)).toBe(1);
      await until('the Slack message says approved', () => /Approved/.test(messageOf(p)!.text ?? ''));
      const table = await kubectl(['get', 'approvalrequests', '-A']);
      expect(table).toMatch(new RegExp(`${NS}\\s+${approvalRequestName(p.id)}\\s+Approved\\s+delete_repo\\s+approvals\\s+agent-0\\s+Alice`));

      await side.backend.markExecuting(p.id);
      expect((await request(p)).spec.executionStartedAt).toEqual(expect.any(String));
      // At most once: a second mark is refused by this backend, and by the API server for anyone else.
      await expect(side.backend.markExecuting(p.id)).rejects.toThrow(/already marked/);
      await side.backend.finished(p.id, { ok: true, summary: 'deleted acme/site' });
      await until('the Slack message shows the result', () => /succeeded: deleted acme\/site/.test(JSON.stringify(messageOf(p)!.blocks)));
      expect((await request(p)).status.slack.messageState).toBe('Approved; succeeded: deleted acme/site');
      const events = await getJson(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${approvalRequestName(p.id)}`]);
      expect(events.items.map((e: any) => e.reason)).toEqual(expect.arrayContaining(['Posted', 'Approved']));
    },
    T,
  );

  test(
    'reject, expiry and cancel each end once, and rewrite the Slack message',
    async () => {
      const rej = pending(NS, 'agent-0');
      const exp = pending(NS, 'agent-0', { expiresAt: new Date(Date.now() + 4000) });
      const can = pending(NS, 'agent-0');
      await Promise.all([rej, exp, can].map((p) => side.backend.submit(p)));
      const [mr] = await Promise.all([posted(rej), posted(exp), posted(can)]);
      await until('can posted', async () => (await phaseOf(can)) === 'Posted');
      fake.addReaction(CH, mr.ts, 'x', ALICE);
      await side.backend.cancel(can.id);
      expect(await side.decision(rej.id)).toMatchObject({ outcome: 'rejected', by: [{ id: ALICE, name: 'Alice' }] });
      expect(await side.decision(can.id)).toMatchObject({ outcome: 'cancelled' });
      expect(await side.decision(exp.id)).toMatchObject({ outcome: 'expired' });
      await until('messages rewritten', () => [rej, exp, can].every((p) => (messageOf(p)?.history.length ?? 0) >= 2));
      expect(messageOf(rej)!.text).toMatch(/^Rejected by Alice/);
      expect(messageOf(exp)!.text).toMatch(/^Expired/);
      expect(messageOf(can)!.text).toMatch(/^Cancelled/);
      for (const p of [rej, exp, can]) expect(postCalls(p)).toBe(1);
      expect(side.decisions.filter((d) => [rej.id, exp.id, can.id].includes(d.id))).toHaveLength(3);
      // Cancelling after the end changes nothing.
      await side.backend.cancel(rej.id);
      expect(await phaseOf(rej)).toBe('Rejected');
    },
    T,
  );

  test(
    'a missing channel or Secret, or a refused token, fails the request with a clear message',
    async () => {
      const noChannel = pending(NS, 'agent-0', { channel: 'does-not-exist' });
      const noSecret = pending(NS, 'agent-0', { channel: 'bad-token' });
      await side.backend.submit(noChannel);
      await side.backend.submit(noSecret);
      expect(await side.decision(noChannel.id)).toMatchObject({
        outcome: 'failed',
        message: `ApprovalChannel "does-not-exist" does not exist in namespace ${NS}`,
      });
      const refused = await side.decision(noSecret.id);
      expect(refused).toMatchObject({ outcome: 'failed', message: expect.stringContaining('invalid_auth: the bot token is not valid') });
      expect((await request(noChannel)).status).toMatchObject({ phase: 'Failed', reason: 'ChannelNotFound' });
      expect((await request(noSecret)).status).toMatchObject({ phase: 'Failed', reason: 'SlackRefused' });
      await kubectl(['delete', 'secret', 'slack-bot', '-n', TEAM_C]);
      try {
        const other = await sidecar(TEAM_C, 'agent-9');
        const p = pending(TEAM_C, 'agent-9');
        await other.backend.submit(p);
        expect(await other.decision(p.id)).toMatchObject({
          outcome: 'failed',
          message: `ApprovalChannel "approvals": Secret "slack-bot" (spec.slack.tokenSecretRef) does not exist in namespace ${TEAM_C}`,
        });
      } finally {
        await kubectl(['create', 'secret', 'generic', 'slack-bot', '-n', TEAM_C, `--from-literal=token=${TOKEN}`]);
      }
    },
    T,
  );

  test(
    'Slack down: retried with backoff, posted once it is back; down for the whole window: Expired',
    async () => {
      await fake.setDown('http500');
      const back = pending(NS, 'agent-0');
      const never = pending(NS, 'agent-0', { expiresAt: new Date(Date.now() + 5000) });
      await side.backend.submit(back);
      await side.backend.submit(never);
      await until('status says Slack is unavailable', async () => /Slack unavailable/.test((await request(back))?.status?.message ?? ''));
      expect(await side.decision(never.id)).toMatchObject({
        outcome: 'expired',
        message: expect.stringContaining('expired before it could be posted to Slack'),
      });
      const tries = fake.calls('chat.postMessage').filter((c) => c.status === 500).length;
      console.log(`Slack down: ${tries} chat.postMessage attempts (HTTP 500) before it came back`);
      await fake.setDown(false);
      const m = await posted(back);
      await until('Posted after the outage', async () => (await phaseOf(back)) === 'Posted');
      expect(postCalls(back)).toBe(1);
      expect(messageOf(never)).toBeUndefined();
      fake.addReaction(CH, m.ts, 'white_check_mark', ALICE);
      expect(await side.decision(back.id)).toMatchObject({ outcome: 'approved' });
    },
    T,
  );

  test(
    'a request deleted before a decision ends as failed for the sidecar, and its message says so',
    async () => {
      const p = pending(NS, 'agent-0');
      await side.backend.submit(p);
      await posted(p);
      await until('Posted', async () => (await phaseOf(p)) === 'Posted');
      await kubectl(['delete', 'approvalrequest', approvalRequestName(p.id), '-n', NS]);
      expect(await side.decision(p.id)).toMatchObject({ outcome: 'failed', message: expect.stringContaining('was deleted') });
      await until('the Slack message says cancelled', () => /^Cancelled/.test(messageOf(p)?.text ?? ''));
    },
    T,
  );

  test(
    'the sidecar token creates and watches ApprovalRequests, but cannot write status, delete, or read Secrets',
    async () => {
      const tokenFile = await sidecarToken(NS);
      const token = (await import('node:fs')).readFileSync(tokenFile, 'utf8');
      const as = (args: string[]) =>
        kubectlResult([`--token=${token}`, `--server=${cluster().server}`, `--certificate-authority=${cluster().caFile}`, '--kubeconfig=/dev/null', ...args]);
      const can = async (verb: string, what: string, ns = NS, ...more: string[]) => (await as(['auth', 'can-i', verb, what, '-n', ns, ...more])).stdout.trim();
      for (const verb of ['create', 'get', 'list', 'watch', 'patch']) expect([verb, await can(verb, 'approvalrequests.thoughtgate.io')]).toEqual([verb, 'yes']);
      expect(await can('patch', 'approvalrequests.thoughtgate.io', NAMESPACES[1]!)).toBe('no');
      expect(await can('delete', 'approvalrequests.thoughtgate.io')).toBe('no');
      expect(await can('update', 'approvalrequests.thoughtgate.io', NS, '--subresource=status')).toBe('no');
      expect(await can('patch', 'approvalrequests.thoughtgate.io', NS, '--subresource=status')).toBe('no');
      expect(await can('get', 'secrets')).toBe('no');

      const p = pending(NS, 'agent-0');
      await side.backend.submit(p);
      const name = approvalRequestName(p.id);
      const status = await as(['patch', 'approvalrequest', name, '-n', NS, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Approved"}}']);
      expect(status.code).not.toBe(0);
      expect(status.stderr).toContain('Forbidden');
      const secrets = await as(['get', 'secrets', '-n', NS]);
      expect(secrets.stderr).toContain('Forbidden');
      // What it may patch, the CRD keeps to one-way changes.
      const tool = await as(['patch', 'approvalrequest', name, '-n', NS, '--type=merge', '-p', '{"spec":{"tool":"something_else"}}']);
      expect(tool.stderr).toContain('spec is immutable');
      const early = await as([
        'patch',
        'approvalrequest',
        name,
        '-n',
        NS,
        '--type=merge',
        '-p',
        `{"spec":{"executionStartedAt":"${new Date().toISOString()}"}}`,
      ]);
      expect(early.stderr).toContain('executionStartedAt may only be set on an Approved request');
      await expect(side.backend.markExecuting(p.id)).rejects.toThrow(/not Approved/);
      await side.backend.cancel(p.id);
      expect(await side.decision(p.id)).toMatchObject({ outcome: 'cancelled' });
      const uncancel = await as(['patch', 'approvalrequest', name, '-n', NS, '--type=merge', '-p', '{"spec":{"cancelRequested":false}}']);
      expect(uncancel.stderr).toContain('cancelRequested cannot be taken back');
    },
    T,
  );

  test(
    'a sidecar restarted re-adopts its requests: one decided while it was down, one still open',
    async () => {
      const first = await sidecar(NS, 'agent-adopt');
      const a = pending(NS, 'agent-adopt', { client: 'auth:0123456789abcdef0123456789abcdef' });
      const b = pending(NS, 'agent-adopt');
      await first.backend.submit(a);
      await first.backend.submit(b);
      const ma = await posted(a);
      const mb = await posted(b);
      await first.backend.close();
      fake.addReaction(CH, ma.ts, 'white_check_mark', ALICE);
      await until('a approved while the sidecar is down', async () => (await phaseOf(a)) === 'Approved');

      const second = await sidecar(NS, 'agent-adopt');
      const adopted = await second.backend.adopt();
      expect(adopted.map((x) => x.pending.id).sort()).toEqual([a.id, b.id].sort());
      const ra = adopted.find((x) => x.pending.id === a.id)!;
      const rb = adopted.find((x) => x.pending.id === b.id)!;
      expect(ra).toMatchObject({ executionStarted: false, decision: { id: a.id, outcome: 'approved', by: [{ id: ALICE, name: 'Alice' }] } });
      expect(ra.pending).toMatchObject({
        tool: 'delete_repo',
        arguments: a.arguments,
        requestHash: a.requestHash,
        expiresAt: a.expiresAt,
        workload: a.workload,
      });
      // The owner key comes back (adoption re-owns the task by it); none was stored for b.
      expect(ra.pending.client).toBe(a.client);
      expect(rb.pending.client).toBeUndefined();
      expect(rb.decision).toBeUndefined();
      // The decided one is never emitted again; the open one is, once decided.
      fake.addReaction(CH, mb.ts, 'x', ALICE);
      expect(await second.decision(b.id)).toMatchObject({ outcome: 'rejected' });
      expect(second.decisions.map((d) => d.id)).toEqual([b.id]);
      // Executed and finished: not adopted again.
      await second.backend.markExecuting(a.id);
      await second.backend.finished(a.id, { ok: false, summary: 'upstream error' });
      const third = await sidecar(NS, 'agent-adopt');
      expect((await third.backend.adopt()).map((x) => x.pending.id)).toEqual([b.id]);
      // Another pod's requests are not ours.
      expect((await side.backend.adopt()).some((x) => [a.id, b.id].includes(x.pending.id))).toBe(false);
    },
    T,
  );

  test(
    "one pod flooding its channel does not hold back another pod's request; requests cancelled while waiting are never posted",
    async () => {
      const flood = await sidecar(NS, 'flood-0');
      const quiet = await sidecar(NS, 'quiet-0');
      const postedOrder = () =>
        fake
          .calls('chat.postMessage')
          .filter((c) => c.ok)
          .map((c) => (c.args.metadata as { event_payload?: { request_id?: string } } | undefined)?.event_payload?.request_id);
      const before = postedOrder().length;
      // More than Slack takes in the time the test runs: posts go ~1/s per channel.
      const floods = Array.from({ length: 15 }, () => pending(NS, 'flood-0'));
      await Promise.all(floods.map((p) => flood.backend.submit(p)));
      await until('the flood is being posted', () => floods.some((p) => messageOf(p)));
      // The others are admitted and say why they wait.
      await until('waiting requests say so', async () =>
        (await getJson(['get', 'approvalrequests', '-n', NS]))?.items?.some(
          (i: any) => i.status?.phase === 'Pending' && i.status?.message === 'waiting for its turn to be posted to Slack',
        ),
      );
      // Behind the flood: five that the agent cancels before their turn, then one of another pod.
      const cancelled = Array.from({ length: 5 }, () => pending(NS, 'flood-0'));
      for (const p of cancelled) await flood.backend.submit(p);
      for (const p of cancelled) await flood.backend.cancel(p.id);
      const q = pending(NS, 'quiet-0');
      await quiet.backend.submit(q);
      await posted(q);
      const order = postedOrder().slice(before);
      const floodsBefore = order.slice(0, order.indexOf(requestKey(q))).length;
      // The one posting when it arrived, and at most the next one already given its turn.
      expect(floodsBefore).toBeLessThanOrEqual(3);
      for (const p of cancelled) expect(await flood.decision(p.id)).toMatchObject({ outcome: 'cancelled' });
      await until('the whole flood posted', () => floods.every((p) => messageOf(p)), 120_000);
      expect(floods.map((p) => postCalls(p))).toEqual(floods.map(() => 1));
      expect(cancelled.map((p) => postCalls(p))).toEqual([0, 0, 0, 0, 0]);
      for (const p of cancelled) expect((await request(p)).status).toMatchObject({ phase: 'Cancelled' });
      for (const p of floods) await flood.backend.cancel(p.id);
      await quiet.backend.cancel(q.id);
      await quiet.decision(q.id);
      for (const p of floods) await flood.decision(p.id);
    },
    T,
  );

  test(
    "within one pod, one MCP session flooding does not hold back another session's request",
    async () => {
      const shared = await sidecar(NS, 'shared-0');
      const postedOrder = () =>
        fake
          .calls('chat.postMessage')
          .filter((c) => c.ok)
          .map((c) => (c.args.metadata as { event_payload?: { request_id?: string } } | undefined)?.event_payload?.request_id);
      const before = postedOrder().length;
      const floods = Array.from({ length: 12 }, () => pending(NS, 'shared-0', { mcpSessionId: 'greedy' }));
      await Promise.all(floods.map((p) => shared.backend.submit(p)));
      await until('the flood is being posted', () => floods.some((p) => messageOf(p)));
      const q = pending(NS, 'shared-0', { mcpSessionId: 'polite' });
      await shared.backend.submit(q);
      await posted(q);
      const order = postedOrder().slice(before);
      expect(order.slice(0, order.indexOf(requestKey(q))).length).toBeLessThanOrEqual(3);
      for (const p of [...floods, q]) await shared.backend.cancel(p.id);
      for (const p of [...floods, q]) await shared.decision(p.id);
      expect([...floods, q].map((p) => postCalls(p)).filter((n) => n > 1)).toEqual([]);
    },
    T,
  );

  test(
    `beyond the cluster-wide cap, new requests fail with "${TOO_MANY_PENDING}"`,
    async () => {
      // A known starting point: no request open anywhere (their sidecars see them fail as deleted).
      await kubectl(['delete', 'approvalrequests', '--all', '-A', '--wait']);
      await stop(op);
      op = await operator('op-1', { maxPending: 2 });
      try {
        await until('leader', () => op.isLeader());
        const [a, b, c] = [pending(NS, 'agent-0'), pending(NS, 'agent-0'), pending(NS, 'agent-0')];
        // One at a time: which request is over the cap must not depend on reconcile order.
        for (const p of [a, b]) {
          await side.backend.submit(p);
          await until(`${p.id} posted`, async () => (await phaseOf(p)) === 'Posted');
        }
        await side.backend.submit(c);
        expect(await side.decision(c.id)).toMatchObject({
          outcome: 'failed',
          message: `${TOO_MANY_PENDING}: 2 are open cluster-wide (the operator's limit is 2)`,
        });
        expect((await request(c)).status).toMatchObject({ phase: 'Failed', reason: 'TooManyPending' });
        expect(messageOf(c)).toBeUndefined();
        // A slot frees up when one ends.
        await side.backend.cancel(a.id);
        await side.decision(a.id);
        const d = pending(NS, 'agent-0');
        await side.backend.submit(d);
        await until(`${d.id} posted`, async () => (await phaseOf(d)) === 'Posted');
        await side.backend.cancel(b.id);
        await side.backend.cancel(d.id);
        await side.decision(d.id);
      } finally {
        await stop(op);
        op = await operator('op-1');
      }
      await until('leader', () => op.isLeader());
    },
    T,
  );
});

describe('restarts and replicas', () => {
  // A failed test must not leave a leader behind for the next one.
  afterEach(async () => {
    for (const op of [...operators]) await stop(op);
  }, 60_000);
  test(
    'operator restart mid-approval: no second post; the decision made while it was down is picked up',
    async () => {
      let op = await operator('op-1');
      const side = await sidecar(NS, 'agent-r');
      const p = pending(NS, 'agent-r');
      await side.backend.submit(p);
      const m = await posted(p);
      await until('Posted', async () => (await phaseOf(p)) === 'Posted');
      await stop(op);
      fake.addReaction(CH, m.ts, 'white_check_mark', ALICE);
      op = await operator('op-1');
      expect(await side.decision(p.id)).toMatchObject({ outcome: 'approved' });
      expect(postCalls(p)).toBe(1);
      await stop(op);
    },
    T,
  );

  test(
    'a crash between postingStartedAt and ts: the message is found and adopted, not posted again',
    async () => {
      const side = await sidecar(NS, 'agent-crash');
      const p = pending(NS, 'agent-crash');
      // No operator runs: the request stays as the sidecar wrote it.
      await side.backend.submit(p);
      const name = approvalRequestName(p.id);
      // What a crashed operator left: postingStartedAt recorded, then the post went out, then it died.
      await kubectl([
        'patch',
        'approvalrequest',
        name,
        '-n',
        NS,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { phase: 'Pending', slack: { channel: CH, postingStartedAt: new Date().toISOString(), postingBy: 'op-crashed' } } }),
      ]);
      const conn = new SlackConnection({ token: TOKEN, apiUrl: fake.url });
      const { ts } = await new SlackApprovalClient(conn, {
        channel: CH,
        approvers: { users: [ALICE], userGroups: [] },
        reactions: { approve: ['white_check_mark'], reject: ['x'] },
      }).post({ id: requestKey(p), tool: p.tool, source: p.source, arguments: p.arguments, workload: p.workload, expiresAt: p.expiresAt });
      conn.close();
      const op = await operator('op-1');
      const obj = await until('adopted', async () => {
        const o = await request(p);
        return o?.status?.slack?.ts ? o : null;
      });
      expect(obj.status).toMatchObject({ phase: 'Posted', slack: { ts, postingBy: 'op-crashed' } });
      expect(postCalls(p)).toBe(1);
      expect(fake.calls('conversations.history').length).toBeGreaterThan(0);
      const events = await getJson(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name}`]);
      expect(events.items.map((e: any) => e.reason)).toContain('Adopted');
      fake.addReaction(CH, ts, 'white_check_mark', ALICE);
      expect(await side.decision(p.id)).toMatchObject({ outcome: 'approved' });
      expect(postCalls(p)).toBe(1);
      await stop(op);
    },
    T,
  );

  test(
    'two replicas: only the leader posts and polls; the other takes over when it stops',
    async () => {
      const a = await operator('op-a');
      await until('a leads', () => a.isLeader());
      const b = await operator('op-b');
      const side = await sidecar(NS, 'agent-ha');
      const p1 = pending(NS, 'agent-ha');
      await side.backend.submit(p1);
      const m1 = await posted(p1);
      await new Promise((r) => setTimeout(r, 2000));
      // Posted once, by the leader: b never posts it, even if (on a loaded machine) the 3 s lease
      // moved to b meanwhile — so who leads now is not asserted.
      expect(postCalls(p1)).toBe(1);
      expect(lines.some((l) => l.startsWith('[op-b]') && l.includes('approval posted to Slack'))).toBe(false);
      await stop(a);
      await until('b takes over', () => b.isLeader(), 20_000);
      fake.addReaction(CH, m1.ts, 'white_check_mark', ALICE);
      expect(await side.decision(p1.id)).toMatchObject({ outcome: 'approved' });
      const p2 = pending(NS, 'agent-ha');
      await side.backend.submit(p2);
      await posted(p2);
      expect([postCalls(p1), postCalls(p2)]).toEqual([1, 1]);
      // The fake has the message before the operator has recorded its ts and logged the post.
      await until('op-b logs the post', async () => lines.some((l) => l.startsWith('[op-b]') && l.includes('approval posted to Slack')));
      await side.backend.cancel(p2.id);
      await side.decision(p2.id);
      await stop(b);
    },
    T,
  );

  test(
    "many pending approvals across pods and namespaces share one token within Slack's limits, across lost and regained leases",
    async () => {
      // Slack's tiers as the fake enforces them: Tier 3 (50/min) for reactions.get, ~1/s posts.
      fake.setRateLimit('reactions.get', { limit: 50, windowMs: 60_000 });
      fake.setRateLimit('chat.postMessage', { limit: 60, windowMs: 60_000 });
      fake.setRateLimit('chat.update', { limit: 50, windowMs: 60_000 });
      const op = await operator('op-1');
      for (const ns of NAMESPACES) await until(`the sidecar Role in ${ns}`, () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', ns]));
      const perPod = 5;
      const pods = NAMESPACES.flatMap((ns) => [`${ns}/load-0`, `${ns}/load-1`]);
      const sides = await Promise.all(
        pods.map(async (k) => {
          const [ns, pod] = k.split('/') as [string, string];
          return { ns, pod, side: await sidecar(ns, pod) };
        }),
      );
      const all = sides.flatMap(({ ns, pod, side }) => Array.from({ length: perPod }, () => ({ side, p: pending(ns, pod) })));
      fake.clearCalls();
      const t0 = Date.now();
      // The operator loses its lease and takes it back, again and again while it is posting (as a
      // slow API server under load makes it do), and once in the steady state below. Each new term
      // re-polls every request at once and must do so with the budget the last terms spent, not with
      // full buckets; and reconciles in flight when a term stops must not leave a poller or a Slack
      // client behind, polling beside the next term's.
      // Counted by what the operator logs on each new term: under load it may also lose the lease on
      // its own (then ours lands while it is not leading, and it logs no step-down for it).
      const terms = () => lines.filter((l) => l.startsWith('[op-1]') && l.includes('became leader')).length;
      const termsBefore = terms();
      const flap = async () => {
        const at = Date.now();
        await takeLease('intruder');
        // Ours expires after 3 s; op-1 acquiring it after that is a new term.
        await until(
          'op-1 takes the lease back',
          async () => {
            const l = await getJson(['get', 'lease', 'thoughtgate-operator', '-n', OPNS]);
            return l?.spec?.holderIdentity === 'op-1' && Date.parse(l.spec.acquireTime) > at && op.isLeader();
          },
          30_000,
        );
      };
      await Promise.all(all.map(({ side, p }) => side.backend.submit(p)));
      let flaps = 0;
      const allPosted = () => all.every(({ p }) => messageOf(p));
      const whilePosting = (async () => {
        await new Promise((r) => setTimeout(r, 3_000));
        while (!allPosted() && flaps < 6) {
          await flap();
          flaps++;
        }
      })();
      await until('all posted', allPosted, 120_000);
      await whilePosting;
      expect(flaps).toBeGreaterThanOrEqual(3);
      const tPosted = Date.now();
      // Measure the steady state for 40 s with every approval pending (and one lost lease in it).
      const from = Date.now();
      await new Promise((r) => setTimeout(r, 10_000));
      await flap();
      // Only that the forced losses happened (under CI load the 3 s lease is also lost on its own, so
      // there may be more); what must hold across all of them is the 429 check below.
      expect(terms() - termsBefore).toBeGreaterThanOrEqual(flaps + 1);
      await new Promise((r) => setTimeout(r, from + 40_000 - Date.now()));
      const to = Date.now();
      const inWindow = fake.calls().filter((c) => c.time >= from && c.time < to);
      const perMethod: Record<string, number> = {};
      for (const c of inWindow) perMethod[c.method] = (perMethod[c.method] ?? 0) + 1;
      const minutes = (to - from) / 60_000;
      const n = all.length;
      console.log(
        [
          `${n} pending approvals (${pods.length} pods, ${NAMESPACES.length} namespaces, one bot token): all posted in ${((tPosted - t0) / 1000).toFixed(1)} s`,
          `steady state over ${(minutes * 60).toFixed(0)} s: ${inWindow.length} Slack calls = ${(inWindow.length / n / minutes).toFixed(2)} per pending approval per minute`,
          `  by method: ${Object.entries(perMethod)
            .map(([m, k]) => `${m} ${k} (${(k / n / minutes).toFixed(2)}/approval/min)`)
            .join(', ')}`,
          `  leases lost and regained: ${flaps} while posting, 1 in the steady state (by the test; ${terms() - termsBefore} new terms in all)`,
          `  429 answers during the whole test: ${fake.calls().filter((c) => c.status === 429).length}`,
        ].join('\n'),
      );
      expect(all.map(({ p }) => postCalls(p)).filter((n) => n !== 1)).toEqual([]);
      expect(fake.calls().filter((c) => c.status === 429)).toHaveLength(0);
      // Every one is still decided: the approver reacts on all of them.
      for (const { p } of all) fake.addReaction(CH, messageOf(p)!.ts, 'white_check_mark', ALICE);
      for (const { side, p } of all) await until(`decision ${p.id}`, () => side.decisions.find((d) => d.id === p.id), 180_000);
      console.log(
        `all ${n} decided ${((Date.now() - to) / 1000).toFixed(1)} s after the approver reacted on each; 429 answers: ${fake.calls().filter((c) => c.status === 429).length}`,
      );
      expect(fake.calls().filter((c) => c.status === 429)).toHaveLength(0);
      for (const m of ['reactions.get', 'chat.postMessage', 'chat.update']) fake.setRateLimit(m, null);
      await stop(op);
    },
    10 * 60_000,
  );
});

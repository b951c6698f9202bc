// Slack buttons in a cluster, on a real kube-apiserver: the operator's leader holds the Socket Mode
// connection (the real @slack/socket-mode client against the fake Slack), writes each click into
// the ApprovalRequest's status.votes before acknowledging it, and decides by the two-person rule;
// the sidecar's cluster backend sees the decision. A leader change while a click is not
// acknowledged (no socket open) loses nothing and applies it once.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { approvalRequestName } from '../api/approval-request.js';
import type { Decision, PendingApproval } from '../sidecar/approvals/backend.js';
import { createClusterBackend, type ClusterApprovalBackend } from '../sidecar/approvals/cluster-backend.js';
import { APPROVE_ACTION_ID } from '../slack/message.js';
import { startFakeSlack, type FakeMessage, type FakeSlack } from '../test/fakes/slack-server.js';
import { approvalOperators } from './support/approval-operators.js';
import { cluster, e2eCluster, getJson, kubectl } from './support/k8s.js';

const T = 180_000;
const e2e = e2eCluster('buttons');
const OPNS = e2e.ns('system');
const NS = e2e.ns('team');
const CH = 'C0BUTTONS';
const TOKEN = 'xoxb-buttons';
const APP_TOKEN = 'xapp-buttons';
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const MALLORY = 'U0MALLORY';

let stateDir: string;
let fake: FakeSlack;
const ops = approvalOperators(OPNS, () => fake.url);
const { lines, log, operators, until, stop } = ops;
const operator = (identity: string) => ops.operator(identity, { socket: { reconnect: { baseMs: 100, maxMs: 500 } } });

let sidecarBackend: ClusterApprovalBackend;
const decisions: Decision[] = [];
const decision = (id: string) => until(`the decision on ${id}`, () => decisions.find((d) => d.id === id));

function pending(channel: string): PendingApproval {
  return {
    id: randomUUID(),
    channel,
    workload: { namespace: NS, serviceAccount: 'agent', pod: 'agent-0' },
    source: 'github',
    method: 'tools/call',
    tool: 'delete_repo',
    arguments: { repo: 'acme/site' },
    requestHash: 'a'.repeat(64),
    reason: 'rule deletes-need-approval',
    createdAt: new Date(),
    expiresAt: new Date(Date.now() + 10 * 60_000),
  };
}

const requestKey = (p: PendingApproval) => `${NS}/${approvalRequestName(p.id)}`;
const messageOf = (p: PendingApproval): FakeMessage | undefined =>
  fake.messages().find((m) => (m.metadata as { event_payload?: { request_id?: string } } | undefined)?.event_payload?.request_id === requestKey(p));
const posted = (p: PendingApproval) => until(`the Slack message of ${requestKey(p)}`, () => messageOf(p));
const request = (p: PendingApproval) => getJson(['get', 'approvalrequest', approvalRequestName(p.id), '-n', NS]);
const click = (ts: string, user: string) => fake.socketMode.click({ channel: CH, ts, user, actionId: APPROVE_ACTION_ID });
const text = (p: PendingApproval) => JSON.stringify(messageOf(p)?.blocks ?? []);

const channel = (name: string, required: number) => `
apiVersion: thoughtgate.io/v1alpha1
kind: ApprovalChannel
metadata: { name: ${name} }
spec:
  slack: { channel: ${CH}, apiUrl: "${fake.url}", tokenSecretRef: { name: slack-bot }, appTokenKey: appToken }
  approvers: { users: [${ALICE}, ${BOB}], required: ${required} }
`;

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'tg-e2e-buttons-'));
  fake = await startFakeSlack({
    tokens: { [TOKEN]: { userId: 'UBOT', botId: 'BBOT', team: 'Acme' } },
    appTokens: [APP_TOKEN],
    channels: [{ id: CH, name: 'approvals' }],
    users: [
      { id: ALICE, name: 'alice', realName: 'Alice' },
      { id: BOB, name: 'bob', realName: 'Bob' },
      { id: MALLORY, name: 'mallory' },
    ],
    // Slack documents redelivery for Events API envelopes only; the harder case is tested: a click
    // not acknowledged (no socket open) comes again, to the next leader.
    socketMode: { redeliverAfterMs: 1000, maxRedeliveries: 10, redeliverInteractive: true },
  });
  await e2e.namespace('system');
  await e2e.namespace('team', { 'thoughtgate.io/inject': 'enabled' });
  await kubectl(['create', 'serviceaccount', 'agent', '-n', NS]);
  await kubectl(['create', 'secret', 'generic', 'slack-bot', '-n', NS, `--from-literal=token=${TOKEN}`, `--from-literal=appToken=${APP_TOKEN}`]);
  await kubectl(['apply', '-n', NS, '-f', '-'], channel('one', 1));
  await kubectl(['apply', '-n', NS, '-f', '-'], channel('two', 2));
  const op = await operator('op-setup');
  await until('leader', () => op.isLeader());
  await until('the sidecar Role', () => getJson(['get', 'role', 'thoughtgate-sidecar', '-n', NS]));
  await stop(op);
  const token = (await kubectl(['create', 'token', 'agent', '-n', NS, '--duration', '1h'])).trim();
  const tokenFile = join(stateDir, 'token');
  writeFileSync(tokenFile, token);
  sidecarBackend = createClusterBackend({
    workload: { namespace: NS, serviceAccount: 'agent', pod: 'agent-0' },
    log,
    clientOptions: { server: cluster().server, caFile: cluster().caFile, tokenFile },
    backoffBaseMs: 100,
    backoffMaxMs: 2000,
  });
  sidecarBackend.onDecision((d) => decisions.push(d));
}, 120_000);

afterEach(async () => {
  for (const op of [...operators]) await stop(op);
}, 60_000);

e2e.cleanup(async () => {
  if (process.env.TG_E2E_LOG) writeFileSync(process.env.TG_E2E_LOG, lines.join(''));
  await sidecarBackend?.close();
  for (const op of [...operators]) await op.close();
  await fake?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test(
  'a click decides: a non-approver gets the ephemeral; an approver’s click is in status.votes and decidedBy, then acked; the message says who',
  async () => {
    const op = await operator('op-1');
    await until('leader', () => op.isLeader());
    await until('the socket', () => fake.socketMode.connections >= 1);
    const p = pending('one');
    await sidecarBackend.submit(p);
    const m = await posted(p);
    expect(JSON.stringify(m.blocks)).toContain(APPROVE_ACTION_ID);
    await until('Posted', async () => (await request(p))?.status?.slack?.ts);

    const mallory = click(m.ts, MALLORY);
    await fake.socketMode.acked(mallory.envelopeId, 20_000);
    // The notice goes out after the ack (non-approver clicks are acked at once).
    await until('the ephemeral', () => fake.socketMode.ephemerals().some((e) => e.user === MALLORY));
    expect((await request(p)).status.phase).toBe('Posted');

    const alice = click(m.ts, ALICE);
    await fake.socketMode.acked(alice.envelopeId, 20_000);
    // Acked only after the write: the vote and the decision are there by now.
    const obj = await request(p);
    expect(obj.status).toMatchObject({
      phase: 'Approved',
      votes: [{ by: ALICE, via: 'slack', decision: 'approve' }],
      decidedBy: [{ id: ALICE, name: 'Alice' }],
      approvals: '1/1',
    });
    expect(await decision(p.id)).toMatchObject({ outcome: 'approved' });
    await until('the outcome in Slack', () => /Approved/.test(text(p)) && /U0ALICE/.test(text(p)));
    // No reaction polling for it yet: its reactions are on the slow safety schedule.
    expect(fake.calls('reactions.get').filter((c) => c.args['timestamp'] === m.ts)).toHaveLength(0);
  },
  T,
);

test(
  'two of two across a leader change: the first click, written by the old leader, counts; a click while no socket is open waits for the next leader and is applied once',
  async () => {
    const a = await operator('op-a');
    await until('a leads', () => a.isLeader());
    await until('a’s socket', () => fake.socketMode.connections >= 1);
    const p = pending('two');
    await sidecarBackend.submit(p);
    const m = await posted(p);
    await until('Posted', async () => (await request(p))?.status?.slack?.ts);

    const alice = click(m.ts, ALICE);
    await fake.socketMode.acked(alice.envelopeId, 20_000);
    await until('Alice’s vote written', async () => (await request(p))?.status?.votes?.length === 1);
    expect((await request(p)).status).toMatchObject({ phase: 'Posted', approvals: '1/2' });
    await until('the progress in Slack', () => /1 of 2/.test(text(p)));
    await stop(a);

    // No socket open now: Bob's click waits at Slack for the next connection.
    const bob = click(m.ts, BOB);
    const b = await operator('op-b');
    await until('b leads', () => b.isLeader(), 60_000);
    await fake.socketMode.acked(bob.envelopeId, 30_000);
    const obj = await until('Approved', async () => {
      const o = await request(p);
      return o?.status?.phase === 'Approved' ? o : null;
    });
    // Alice once (written by a, kept in status), Bob once (delivered to b when its socket opened).
    expect(obj.status.votes.map((v: { by: string }) => v.by)).toEqual([ALICE, BOB]);
    expect(obj.status.decidedBy.map((d: { id: string }) => d.id)).toEqual([ALICE, BOB]);
    expect(obj.status.approvals).toBe('2/2');
    expect(await decision(p.id)).toMatchObject({ outcome: 'approved' });
    const events = await getJson(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${approvalRequestName(p.id)}`]);
    expect(events.items.filter((e: { reason: string }) => e.reason === 'Approved')).toHaveLength(1);
  },
  T,
);

// Deciding from kubectl, on the real API server: `thoughtgate approve|reject` (the real binary)
// creates an ApprovalDecision as the person running it; the ValidatingAdmissionPolicy shipped in
// the chart ties spec.user to the API server's userInfo; the operator (the real binary) counts it
// into the ApprovalRequest when that user is a Kubernetes approver of the channel, and the held
// call of an injected pod's sidecar completes. People of different rights are a person with a
// client certificate (the approver), ServiceAccounts (their own tokens: no ServiceAccount may be
// an approver) and impersonated users (the admin's Impersonate-User/Group).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { PodSandbox } from './support/kubelet.js';
import {
  applyDecisionPolicy,
  approvalChannel,
  approvalsPolicy,
  decisionPolicyEnforced,
  startAgentPod,
  startApprovalsBase,
  startApprovalsOperator,
  type ApprovalsBase,
} from './support/approval-pod.js';
import { createApprovalRequest, decideCli } from './support/decide-cli.js';
import { e2eCluster, getJson, kubectl, kubectlResult, until } from './support/k8s.js';
import { serviceAccountKubeconfig, userKubeconfig } from './support/kube-users.js';
import { ALICE, BOB, CHANNEL, type ApprovalUpstream } from '../test/approvals-harness.js';
import type { FakeSlack } from '../test/fakes/slack-server.js';
import type { Proc } from '../test/support/processes.js';

const e2e = e2eCluster('apkube');
const NS = e2e.ns('agents');
const OPNS = e2e.ns('system');
const MWC = e2e.ns('injector');
const sa = (name: string) => `system:serviceaccount:${NS}:${name}`;
/** The Kubernetes approver: a person with a client certificate. */
const APPROVER = 'dora';
let base: ApprovalsBase;
let fake: FakeSlack;
let upstream: ApprovalUpstream;
let operator: Proc;
let sidecar: Proc;
let sandbox: PodSandbox;
let URL_: string;
let dir: string;
/** kubeconfig files: the approver's, and ServiceAccounts' by name. */
const kubeconfigs: Record<string, string> = {};

const cli = (args: string[]) => decideCli(dir, args);
const createRequest = (name: string, expiresInMs?: number, channel?: string) => createApprovalRequest(NS, name, expiresInMs, channel);

/** kubectl as `user` with `groups` (impersonated by the admin). */
const as = (user: string, groups: string[]) => [`--as=${user}`, ...groups.map((g) => `--as-group=${g}`)];

/** An ApprovalDecision body; `user` is what spec.user claims. */
const decisionJson = (request: string, user: { username: string; groups: string[] }, decision = 'Approve') =>
  JSON.stringify({
    apiVersion: 'thoughtgate.io/v1alpha1',
    kind: 'ApprovalDecision',
    metadata: { generateName: `${request}-` },
    spec: { approvalRequest: request, decision, user: { username: user.username, groups: user.groups } },
  });

const request = (name: string) => getJson(['get', 'approvalrequest', name, '-n', NS]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-apkube-'));
  base = await startApprovalsBase(e2e);
  ({ fake, upstream } = base);
  for (const n of ['mallory', 'nobody']) await kubectl(['create', 'serviceaccount', n, '-n', NS]);

  // The chart's admission policy (labelled as the chart labels it: the harness deletes it after
  // the file); enforced once a forged decision is refused (the API server loads policies async).
  await applyDecisionPolicy();
  e2e.cleanup(() => kubectlResult(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', 'thoughtgate-approval-decisions']));
  await decisionPolicyEnforced(NS);

  // Who may decide: a Role to create (and read back) ApprovalDecisions and read requests, bound
  // to the approver, to mallory (who may create but is no approver) and to the group oncall.
  await kubectl(
    ['apply', '-n', NS, '-f', '-'],
    `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: approval-deciders }
rules:
  - apiGroups: [thoughtgate.io]
    resources: [approvaldecisions]
    verbs: [create, get, list, watch]
  - apiGroups: [thoughtgate.io]
    resources: [approvalrequests]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: approval-deciders }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: approval-deciders }
subjects:
  - { kind: User, apiGroup: rbac.authorization.k8s.io, name: ${APPROVER} }
  - { kind: ServiceAccount, name: mallory, namespace: ${NS} }
  - { kind: Group, apiGroup: rbac.authorization.k8s.io, name: oncall }
  - { kind: User, apiGroup: rbac.authorization.k8s.io, name: mallory-user }
`,
  );
  kubeconfigs['approver'] = await userKubeconfig(dir, NS, APPROVER);
  for (const n of ['mallory', 'nobody']) kubeconfigs[n] = await serviceAccountKubeconfig(dir, NS, n);

  operator = await startApprovalsOperator(OPNS, MWC, fake);

  await kubectl(
    ['apply', '-n', NS, '-f', '-'],
    [
      approvalChannel('approvals', fake.url, { users: [ALICE], kubernetes: { users: [APPROVER], groups: ['oncall'] } }),
      approvalChannel('two-person', fake.url, { kubernetes: { users: [APPROVER], groups: ['oncall'] }, required: 2 }),
      approvalChannel('two-mixed', fake.url, { users: [ALICE], kubernetes: { users: [APPROVER] }, required: 2 }),
    ].join('---'),
  );
  await kubectl(['apply', '-n', NS, '-f', '-'], approvalsPolicy(upstream.url));
  ({ sandbox, sidecar, url: URL_ } = await startAgentPod(NS, MWC, upstream.url));
}, 180_000);

e2e.cleanup(async () => {
  await sidecar?.stop();
  await sandbox?.stop();
  await operator?.stop();
  await base?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("an approver's `thoughtgate approve` counts, the held call completes, and kubectl and Slack show who decided", async () => {
  const client = new Client({ name: 'agent', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(URL_)));
  const before = fake.messages(CHANNEL).length;
  const call = client.callTool({ name: 'deploy', arguments: { service: 'api', version: '7' } }, undefined, { timeout: 120_000 });
  const ar = await until('the ApprovalRequest', async () => {
    const items = (await getJson(['get', 'approvalrequests', '-n', NS])).items as any[];
    return items.find((r) => r.spec.arguments?.service === 'api' && r.status?.phase === 'Posted');
  });
  const ts = await until('the Slack message', async () => fake.messages(CHANNEL)[before]?.ts);

  const r = await cli(['approve', ar.metadata.name, '-n', NS, '--kubeconfig', kubeconfigs['approver']!, '--reason', 'release train']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toContain(`approve by ${APPROVER} counted. The ApprovalRequest is Approved (approvals 1/1)`);

  const result = await call;
  expect(JSON.stringify(result)).toContain('api');
  expect(upstream.calls.filter((c) => c.args['service'] === 'api')).toHaveLength(1);

  const decided = await request(ar.metadata.name);
  expect(decided.status).toMatchObject({
    phase: 'Approved',
    approvals: '1/1',
    decidedBy: [{ id: `k8s:${APPROVER}`, name: `${APPROVER} (kubectl)` }],
    votes: [{ by: `k8s:${APPROVER}`, via: 'kubernetes', decision: 'approve' }],
  });
  expect(decided.status.message).toContain('release train');
  const table = await kubectl(['get', 'approvalrequests', '-n', NS]);
  expect(table).toMatch(/APPROVALS/);
  expect(table).toMatch(new RegExp(`${ar.metadata.name}\\s+Approved.*1/1`));
  // The Slack message was rewritten with the outcome and who decided.
  await until('the Slack message rewritten', async () => {
    const m = fake.messages(CHANNEL).find((x) => x.ts === ts)!;
    return m.history.length > 1 && JSON.stringify(m.blocks ?? m.text).includes('kubectl');
  });
  // Approving again: already decided, said clearly.
  const again = await cli(['approve', ar.metadata.name, '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(again.code).toBe(1);
  expect(again.out).toContain(`ApprovalRequest ${NS}/${ar.metadata.name} is already Approved`);
  await client.close();
}, 120_000);

test("a non-approver's decision is Ignored (with its reason) and changes nothing", async () => {
  await createRequest('not-yours');
  const r = await cli(['reject', 'not-yours', '-n', NS, '--kubeconfig', kubeconfigs['mallory']!]);
  expect(r.code).toBe(1);
  expect(r.out).toContain('was not counted (NotAnApprover)');
  expect(r.out).toContain(`${sa('mallory')} is not a Kubernetes approver of ApprovalChannel "approvals"`);
  const ar = await request('not-yours');
  expect(ar.status?.phase).not.toBe('Rejected');
  expect(ar.status?.votes).toBeUndefined();
  const events = await kubectl(['get', 'events', '-n', NS, '--field-selector', 'reason=NotAnApprover', '-o', 'jsonpath={.items[*].message}']);
  expect(events).toContain('is not a Kubernetes approver');
});

test('a member of an approver group decides with kubectl itself; the API server refuses a forged identity and any change', async () => {
  await createRequest('by-group');
  // The identity the API server gives an impersonated user (what `thoughtgate approve` would write).
  const who = JSON.parse(await kubectl(['auth', 'whoami', '-o', 'json', ...as('carol', ['oncall'])])).status.userInfo;
  expect(who).toMatchObject({ username: 'carol', groups: expect.arrayContaining(['oncall', 'system:authenticated']) });

  // mallory-user may create decisions (RBAC) but not in someone else's name, nor claim a group.
  const forged = await kubectlResult(
    ['create', '-n', NS, '-f', '-', ...as('mallory-user', [])],
    decisionJson('by-group', { username: 'carol', groups: who.groups }),
  );
  expect(forged.code).not.toBe(0);
  expect(forged.stderr).toContain('ValidatingAdmissionPolicy');
  expect(forged.stderr).toContain('spec.user.username must be your own username');
  const claimsGroup = await kubectlResult(
    ['create', '-n', NS, '-f', '-', ...as('mallory-user', [])],
    decisionJson('by-group', { username: 'mallory-user', groups: ['oncall', 'system:authenticated'] }),
  );
  expect(claimsGroup.code).not.toBe(0);
  expect(claimsGroup.stderr).toContain('spec.user.groups must be exactly your groups');

  // carol, truthfully: counted through her group.
  const name = (
    await kubectl(['create', '-n', NS, '-f', '-', '-o', 'jsonpath={.metadata.name}', ...as('carol', ['oncall'])], decisionJson('by-group', who, 'Reject'))
  ).trim();
  const d = await until('the decision counted', async () => (await getJson(['get', 'approvaldecision', name, '-n', NS]))?.status?.phase === 'Counted' && true);
  expect(d).toBe(true);
  expect((await request('by-group')).status).toMatchObject({ phase: 'Rejected', decidedBy: [{ id: 'k8s:carol' }] });

  // Nobody changes a decision afterwards: carol's Role has no patch, and even the admin (who may
  // do anything RBAC allows) is refused by the CRD and the admission policy.
  const byCarol = await kubectlResult([
    'patch',
    'approvaldecision',
    name,
    '-n',
    NS,
    '--type=merge',
    '-p',
    '{"spec":{"decision":"Approve"}}',
    ...as('carol', ['oncall']),
  ]);
  expect(byCarol.code).not.toBe(0);
  const byAdmin = await kubectlResult(['patch', 'approvaldecision', name, '-n', NS, '--type=merge', '-p', '{"spec":{"decision":"Approve"}}']);
  expect(byAdmin.code).not.toBe(0);
  expect(byAdmin.stderr).toContain('an ApprovalDecision cannot be changed');
  expect((await getJson(['get', 'approvaldecision', name, '-n', NS])).spec.decision).toBe('Reject');
});

test('a user without RBAC for ApprovalDecisions is told so by the CLI', async () => {
  await createRequest('no-rights');
  const r = await cli(['approve', 'no-rights', '-n', NS, '--kubeconfig', kubeconfigs['nobody']!]);
  expect(r.code).toBe(1);
  expect(r.out).toContain(`forbidden: ${sa('nobody')} may not create approvaldecisions.thoughtgate.io in namespace ${NS}`);
  expect((await getJson(['get', 'approvaldecisions', '-n', NS])).items.filter((d: any) => d.spec.approvalRequest === 'no-rights')).toEqual([]);
});

test('an expired or missing request is refused by the CLI before anything is written', async () => {
  await createRequest('gone-by', -1000);
  const expired = await cli(['approve', 'gone-by', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(expired.code).toBe(1);
  expect(expired.out).toMatch(/expired|already Expired/);
  const missing = await cli(['approve', 'no-such-request', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(missing.code).toBe(1);
  expect(missing.out).toContain(`there is no ApprovalRequest "no-such-request" in namespace ${NS}`);
});

test('fails closed: without the policy binding no decision counts, whoever makes it', async () => {
  await createRequest('unguarded');
  await kubectl(['delete', 'validatingadmissionpolicybinding', 'thoughtgate-approval-decisions']);
  try {
    const r = await cli(['approve', 'unguarded', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('was not counted (IdentityUnverified)');
    expect(r.out).toContain('the ValidatingAdmissionPolicyBinding thoughtgate-approval-decisions is not installed');
    expect((await request('unguarded')).status?.phase).not.toBe('Approved');
  } finally {
    await applyDecisionPolicy('binding');
    await decisionPolicyEnforced(NS);
  }
});

test('fails closed: a binding narrowed with resourceNames is not the one shipped, so no decision counts', async () => {
  await createRequest('narrowed');
  const rule = { apiGroups: ['thoughtgate.io'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['approvaldecisions'] };
  await kubectl([
    'patch',
    'validatingadmissionpolicybinding',
    'thoughtgate-approval-decisions',
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { matchResources: { resourceRules: [{ ...rule, resourceNames: ['nothing-is-called-this'] }] } } }),
  ]);
  try {
    const r = await cli(['approve', 'narrowed', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('was not counted (IdentityUnverified)');
    expect(r.out).toContain('the ValidatingAdmissionPolicyBinding is not as shipped');
    expect(r.out).toContain('resourceNames');
    expect((await request('narrowed')).status?.phase).not.toBe('Approved');
  } finally {
    await kubectl(['delete', 'validatingadmissionpolicybinding', 'thoughtgate-approval-decisions']);
    await applyDecisionPolicy('binding');
    await decisionPolicyEnforced(NS);
  }
});

test('a ServiceAccount or a system group as a Kubernetes approver: the channel is not Ready and says why', async () => {
  await kubectl(
    ['apply', '-n', NS, '-f', '-'],
    approvalChannel('self-approval', fake.url, { kubernetes: { users: [sa('agent')], groups: ['system:authenticated'] } }),
  );
  const ready = await until('the channel checked', async () =>
    (await getJson(['get', 'approvalchannel', 'self-approval', '-n', NS]))?.status?.conditions?.find((c: any) => c.type === 'Ready'),
  );
  expect(ready).toMatchObject({ status: 'False', reason: 'ChannelInvalid' });
  expect(ready.message).toContain(`"${sa('agent')}" is a ServiceAccount: a workload could approve its own calls (self-approval)`);
  expect(ready.message).toContain('"system:authenticated" is a Kubernetes system group');
  const events = await until('the Event', async () =>
    kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=self-approval,reason=ChannelInvalid', '-o', 'jsonpath={.items[*].message}']),
  );
  expect(events).toContain('self-approval');
});

test('two-person rule: one approval is a vote (1/2), the same person again counts once, a second approver decides', async () => {
  await createRequest('two-keys', 300_000, 'two-person');
  await until('the request posted', async () => (await request('two-keys'))?.status?.phase === 'Posted');
  const first = await cli(['approve', 'two-keys', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(first).toMatchObject({ code: 0, out: expect.stringContaining('counted. The ApprovalRequest is Posted (approvals 1/2)') });
  const again = await cli(['approve', 'two-keys', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(again.code).toBe(0);
  expect((await request('two-keys')).status).toMatchObject({ phase: 'Posted', approvals: '1/2' });
  expect((await request('two-keys')).status.votes).toHaveLength(1);

  const who = JSON.parse(await kubectl(['auth', 'whoami', '-o', 'json', ...as('carol', ['oncall'])])).status.userInfo;
  await kubectl(['create', '-n', NS, '-f', '-', ...as('carol', ['oncall'])], decisionJson('two-keys', who));
  const done = await until('two approvals', async () => ((await request('two-keys'))?.status?.phase === 'Approved' ? request('two-keys') : null));
  expect(done.status).toMatchObject({
    approvals: '2/2',
    decidedBy: [{ id: `k8s:${APPROVER}` }, { id: 'k8s:carol' }],
  });
}, 60_000);

test('two-person rule across Slack and kubectl: a reaction is recorded in status.votes and adds up with a kubectl approval', async () => {
  const posted = async (name: string): Promise<string> => {
    await createRequest(name, 300_000, 'two-mixed');
    const r = await until('the request posted', async () => ((await request(name))?.status?.phase === 'Posted' ? request(name) : null));
    return r.status.slack.ts as string;
  };
  const slackVote = (s: { votes?: { by: string; via: string }[] }) => s.votes?.find((v) => v.by === ALICE && v.via === 'slack');

  // The reaction first: the poll records it (1/2); a non-approver's reaction is not recorded; the
  // kubectl approval then sees it and decides.
  const ts1 = await posted('react-then-kubectl');
  fake.addReaction(CHANNEL, ts1, 'white_check_mark', BOB);
  fake.addReaction(CHANNEL, ts1, 'white_check_mark', ALICE);
  const one = await until('the reaction recorded', async () => {
    const r = await request('react-then-kubectl');
    return r?.status && slackVote(r.status) ? r : null;
  });
  expect(one.status).toMatchObject({ phase: 'Posted', approvals: '1/2' });
  expect(one.status.votes).toHaveLength(1);
  const second = await cli(['approve', 'react-then-kubectl', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(second).toMatchObject({ code: 0 });
  const done = await until('two approvals', async () =>
    (await request('react-then-kubectl'))?.status?.phase === 'Approved' ? request('react-then-kubectl') : null,
  );
  expect(done.status).toMatchObject({ approvals: '2/2', decidedBy: [{ id: ALICE }, { id: `k8s:${APPROVER}` }] });

  // kubectl first (1/2), then a reaction: the poll that reads it decides, and a reaction taken away
  // afterwards changes nothing.
  const ts2 = await posted('kubectl-then-react');
  const first = await cli(['approve', 'kubectl-then-react', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(first).toMatchObject({ code: 0, out: expect.stringContaining('(approvals 1/2)') });
  fake.addReaction(CHANNEL, ts2, 'white_check_mark', ALICE);
  const both = await until('two approvals', async () =>
    (await request('kubectl-then-react'))?.status?.phase === 'Approved' ? request('kubectl-then-react') : null,
  );
  expect(both.status).toMatchObject({ approvals: '2/2', decidedBy: [{ id: `k8s:${APPROVER}` }, { id: ALICE }] });
  expect(both.status.votes.map((v: { via: string }) => v.via)).toEqual(['kubernetes', 'slack']);
  fake.removeReaction(CHANNEL, ts2, 'white_check_mark', ALICE);
  expect((await request('kubectl-then-react')).status.phase).toBe('Approved');
}, 90_000);

test("a recorded vote stops counting once its voter is no longer one of the channel's approvers", async () => {
  await kubectl(
    ['apply', '-n', NS, '-f', '-'],
    approvalChannel('shrinking', fake.url, { users: [ALICE, BOB], kubernetes: { users: [APPROVER] }, required: 2 }),
  );
  await createRequest('left-early', 300_000, 'shrinking');
  const posted = await until('the request posted', async () => ((await request('left-early'))?.status?.phase === 'Posted' ? request('left-early') : null));
  fake.addReaction(CHANNEL, posted.status.slack.ts, 'white_check_mark', ALICE);
  await until('the reaction recorded', async () => (await request('left-early'))?.status?.approvals === '1/2');

  // Alice leaves the approvers; once the operator has seen that, her recorded approval no longer counts.
  await kubectl(['patch', 'approvalchannel', 'shrinking', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { approvers: { users: [BOB] } } })]);
  await until('the operator saw the change', async () => {
    const ch = await getJson(['get', 'approvalchannel', 'shrinking', '-n', NS]);
    return ch?.status?.observedGeneration === ch?.metadata.generation;
  });
  const r = await cli(['approve', 'left-early', '-n', NS, '--kubeconfig', kubeconfigs['approver']!]);
  expect(r).toMatchObject({ code: 0, out: expect.stringContaining('(approvals 1/2)') });
  const after = await request('left-early');
  expect(after.status).toMatchObject({ phase: 'Posted', approvals: '1/2' });
  // Her vote stays on record.
  expect(after.status.votes.map((v: { by: string }) => v.by)).toEqual([ALICE, `k8s:${APPROVER}`]);
}, 60_000);

// `thoughtgate approve|reject` (the real binary) on the real API server, for what the CLI itself
// adds: the ownerReference that lets kube-controller-manager's garbage collector (the e2e cluster
// runs all default controllers) delete a decision with its request, through the admission policy
// and the CRD's immutability rule; impersonation from --as/--as-group and from a kubeconfig's
// `as`/`as-groups` (the SelfSubjectReview, the policy and the operator all see the impersonated
// user); and an exec credential plugin. The operator (the real binary) counts the decisions. The
// approvers are people (impersonated by the admin), never ServiceAccounts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  applyDecisionPolicy,
  approvalChannel,
  decisionPolicyEnforced,
  startApprovalsBase,
  startApprovalsOperator,
  type ApprovalsBase,
} from './support/approval-pod.js';
import { createApprovalRequest, decideCli } from './support/decide-cli.js';
import { e2eCluster, getJson, kubectl, kubectlResult, until } from './support/k8s.js';
import { serviceAccountKubeconfig } from './support/kube-users.js';
import type { Proc } from '../test/support/processes.js';

const e2e = e2eCluster('apcli');
const NS = e2e.ns('agents');
const OPNS = e2e.ns('system');
const MWC = e2e.ns('injector');
let base: ApprovalsBase;
let operator: Proc;
let dir: string;
/** The admin's kubeconfig, flattened (certificates inline). */
let admin: any;
let adminFile: string;
let approverFile: string;

const cli = (args: string[]) => decideCli(dir, args);

/** The admin's kubeconfig with this `user` map (and namespace NS). */
function kubeconfigWith(name: string, user: Record<string, unknown>): string {
  const kc = structuredClone(admin);
  kc.users = [{ name, user }];
  kc.contexts = [{ name, context: { cluster: kc.clusters[0].name, user: name, namespace: NS } }];
  kc['current-context'] = name;
  const file = join(dir, `${name}.kubeconfig`);
  writeFileSync(file, stringifyYaml(kc), { mode: 0o600 });
  return file;
}

/** A pending request of channel approvals; its uid. */
async function createRequest(name: string): Promise<string> {
  await createApprovalRequest(NS, name);
  return (await getJson(['get', 'approvalrequest', name, '-n', NS])).metadata.uid;
}

/** The decision named in `thoughtgate approve|reject --no-wait`'s line. */
const createdName = (out: string): string => {
  const m = new RegExp(`ApprovalDecision ${NS}/(\\S+) created`).exec(out);
  if (!m) throw new Error(`no decision in ${JSON.stringify(out)}`);
  return m[1]!;
};

const decision = (name: string) => getJson(['get', 'approvaldecision', name, '-n', NS]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-apcli-'));
  base = await startApprovalsBase(e2e);
  await kubectl(['create', 'serviceaccount', 'approver', '-n', NS]);
  admin = parseYaml(await kubectl(['config', 'view', '--raw', '--minify', '--flatten']));
  adminFile = kubeconfigWith('admin', admin.users[0].user);
  approverFile = await serviceAccountKubeconfig(dir, NS, 'approver');

  await applyDecisionPolicy();
  e2e.cleanup(() => kubectlResult(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', 'thoughtgate-approval-decisions']));
  await decisionPolicyEnforced(NS);
  // The people decide (approver-user, and the group oncall): they may read requests, so their
  // decisions are owned by them. The ServiceAccount only shows a refused impersonation.
  await kubectl(
    ['apply', '-n', NS, '-f', '-'],
    `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: approval-deciders }
rules:
  - { apiGroups: [thoughtgate.io], resources: [approvaldecisions], verbs: [create, get] }
  - { apiGroups: [thoughtgate.io], resources: [approvalrequests], verbs: [get] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: approval-deciders }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: approval-deciders }
subjects:
  - { kind: User, apiGroup: rbac.authorization.k8s.io, name: approver-user }
  - { kind: Group, apiGroup: rbac.authorization.k8s.io, name: oncall }
---
${approvalChannel('approvals', base.fake.url, { kubernetes: { users: ['approver-user'], groups: ['oncall'] } })}`,
  );
  operator = await startApprovalsOperator(OPNS, MWC, base.fake);
}, 180_000);

e2e.cleanup(async () => {
  await operator?.stop();
  await base?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the CLI on the real API server', () => {
  test('a decision is owned by its request: deleting the request deletes it (the garbage collector, through the admission policy); an orphaning delete only drops the reference', async () => {
    const uid = await createRequest('gc-cascade');
    const r = await cli(['approve', 'gc-cascade', '-n', NS, '--kubeconfig', adminFile, '--as', 'approver-user', '--no-wait']);
    expect(r).toEqual({ code: 0, err: '', out: expect.stringContaining('created (approve gc-cascade as') });
    const name = createdName(r.out);
    expect((await decision(name)).metadata.ownerReferences).toEqual([
      { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'ApprovalRequest', name: 'gc-cascade', uid, controller: false, blockOwnerDeletion: false },
    ]);
    await kubectl(['delete', 'approvalrequest', 'gc-cascade', '-n', NS]);
    // kube-controller-manager's garbage collector deletes the dependent (its discovery of the CRDs
    // may take a resync period).
    await until('the decision garbage-collected', async () => (await kubectlResult(['get', 'approvaldecision', name, '-n', NS])).code !== 0, 90_000);
    expect((await kubectlResult(['get', 'approvaldecision', name, '-n', NS])).stderr).toContain('NotFound');

    // --cascade=orphan: the garbage collector removes the ownerReference (an update of metadata,
    // which the policy's and the CRD's spec immutability allow) and leaves the decision.
    await createRequest('gc-orphan');
    const o = await cli(['reject', 'gc-orphan', '-n', NS, '--kubeconfig', adminFile, '--as', 'approver-user', '--no-wait']);
    expect(o).toEqual({ code: 0, err: '', out: expect.stringContaining('created (reject gc-orphan as') });
    const orphan = createdName(o.out);
    await kubectl(['delete', 'approvalrequest', 'gc-orphan', '-n', NS, '--cascade=orphan']);
    const left = await until(
      'the reference dropped',
      async () => {
        const d = await decision(orphan);
        return d && !d.metadata.ownerReferences?.length ? d : null;
      },
      90_000,
    );
    expect(left.spec).toMatchObject({ approvalRequest: 'gc-orphan', decision: 'Reject', user: { username: 'approver-user' } });
  }, 200_000);

  test('--as from an admin kubeconfig decides as the impersonated user, and it counts', async () => {
    await createRequest('as-flag');
    const r = await cli(['approve', 'as-flag', '-n', NS, '--kubeconfig', adminFile, '--as', 'approver-user', '--reason', 'on behalf']);
    expect(r).toEqual({ code: 0, err: '', out: expect.stringContaining('approve by approver-user counted. The ApprovalRequest is Approved (approvals 1/1)') });
    const ar = await getJson(['get', 'approvalrequest', 'as-flag', '-n', NS]);
    expect(ar.status).toMatchObject({ phase: 'Approved', decidedBy: [{ id: 'k8s:approver-user' }] });
    const items = (await getJson(['get', 'approvaldecisions', '-n', NS])).items.filter((d: any) => d.spec.approvalRequest === 'as-flag');
    expect(items.map((d: any) => d.spec.user)).toEqual([{ username: 'approver-user', groups: ['system:authenticated'] }]);
  });

  test("a kubeconfig's as and as-groups impersonate (--as-group counts through a group); without the impersonate verb it is refused, said so", async () => {
    await createRequest('as-kubeconfig');
    const file = kubeconfigWith('as-carol', { ...admin.users[0].user, as: 'carol', 'as-groups': ['oncall'] });
    const r = await cli(['reject', 'as-kubeconfig', '-n', NS, '--kubeconfig', file, '--reason', 'freeze']);
    expect(r).toEqual({ code: 0, err: '', out: expect.stringContaining('reject by carol counted. The ApprovalRequest is Rejected') });
    const d = (await getJson(['get', 'approvaldecisions', '-n', NS])).items.find((x: any) => x.spec.approvalRequest === 'as-kubeconfig');
    expect(d.spec.user).toEqual({ username: 'carol', groups: ['oncall', 'system:authenticated'] });

    // The same flags on the command line, over a kubeconfig without impersonation.
    await createRequest('as-group-flag');
    const g = await cli(['approve', 'as-group-flag', '-n', NS, '--kubeconfig', adminFile, '--as', 'dave', '--as-group', 'oncall']);
    expect(g).toEqual({ code: 0, err: '', out: expect.stringContaining('approve by dave counted') });

    // The approver's ServiceAccount may not impersonate: the API server refuses, the CLI says why.
    const no = await cli(['approve', 'as-group-flag', '-n', NS, '--kubeconfig', approverFile, '--as', 'approver-user']);
    expect(no.code).toBe(2);
    expect(no.err).toMatch(/refused to say who you are: .*cannot impersonate resource "users".*impersonate verb/);
  });

  test("an exec credential plugin's client certificate authenticates (no stdin, KUBERNETES_EXEC_INFO), impersonating the kubeconfig's as", async () => {
    await createRequest('by-exec');
    const u = admin.users[0].user;
    const pem = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(
      plugin,
      `const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);
if (info.spec.interactive !== false || !info.spec.cluster?.server) { process.stderr.write('unexpected ' + JSON.stringify(info)); process.exit(4); }
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: ${JSON.stringify({
        clientCertificateData: pem(u['client-certificate-data']),
        clientKeyData: pem(u['client-key-data']),
      })} }));`,
    );
    const file = kubeconfigWith('exec', {
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin], interactiveMode: 'Never', provideClusterInfo: true },
      as: 'approver-user',
    });
    const r = await cli(['approve', 'by-exec', '-n', NS, '--kubeconfig', file]);
    expect(r).toEqual({ code: 0, err: '', out: expect.stringContaining('approve by approver-user counted') });
  });
});

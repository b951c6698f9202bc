// The ApprovalDecision controller against a small HTTP API server (port 0): a failed read of the
// identity policy (403, 5xx) or a request that keeps changing (409) is not a verdict on the
// decision — the reconcile throws (the queue retries with backoff) and the decision stays open, to
// be counted once the API server answers; only a definitive state (no policy) marks it Ignored.
import http from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { DECISION_POLICY_NAME, decisionPolicyObjects } from '../api/approval-decision.js';
import { createLogger } from '../lib/log.js';
import { approvalDecisionController } from './approval-decision-controller.js';
import { EventRecorder } from './events.js';
import type { ObjectKey } from './keys.js';
import type { ControllerContext } from './manager.js';
import { APPROVAL_CHANNELS, APPROVAL_DECISIONS } from './sources.js';

const NS = 'team';
const created = new Date(Date.now() - 3_600_000).toISOString();
const decided = new Date(Date.now() - 60_000).toISOString();
const [policy, binding] = decisionPolicyObjects().map((o) => ({
  ...o,
  metadata: { ...(o.metadata as object), creationTimestamp: created, managedFields: [{ manager: 'helm', operation: 'Update', time: created }] },
}));
const decision = {
  apiVersion: 'thoughtgate.io/v1alpha1',
  kind: 'ApprovalDecision',
  metadata: { name: 'd1', namespace: NS, uid: 'u1', creationTimestamp: decided },
  spec: { approvalRequest: 'r1', decision: 'Approve', user: { username: 'alice', groups: ['oncall'] } },
};
const channel = {
  apiVersion: 'thoughtgate.io/v1alpha1',
  kind: 'ApprovalChannel',
  metadata: { name: 'oncall', namespace: NS },
  spec: { slack: { channel: 'C0123', tokenSecretRef: { name: 't' } }, approvers: { kubernetes: { users: ['alice'] } } },
};
const request = {
  apiVersion: 'thoughtgate.io/v1alpha1',
  kind: 'ApprovalRequest',
  metadata: { name: 'r1', namespace: NS, resourceVersion: '7' },
  spec: {
    channel: 'oncall',
    workload: { namespace: NS, serviceAccount: 'agent', pod: 'agent-1' },
    source: 'github',
    method: 'tools/call',
    tool: 'deploy',
    arguments: {},
    requestHash: 'a'.repeat(64),
    taskId: 'r1',
    reason: 'deploys need approval',
    expiresAt: new Date(Date.now() + 600_000).toISOString(),
  },
  status: { phase: 'Posted' },
};

interface Api {
  /** What a GET of the policy and binding answers: the objects, or this status code. */
  policyAnswer: number | 'ok';
  /**
   * What the dry-run create of the probe decision answers: refused by the identity policy
   * (enforced), accepted (the admission plugin is off), or this status code from something else.
   */
  probe: 'enforced' | 'accepted' | number;
  /** The probes' query strings (each must be a dry run). */
  probes: string[];
  /** What a PATCH of the request's status answers. */
  requestPatch: number;
  decisionStatus: unknown[];
  requestWrites: number;
  events: { reason: string; type: string; message: string }[];
}

async function start(api: Api): Promise<{ reconcile: () => Promise<void>; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const send = (code: number, o: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(o));
      const url = req.url ?? '';
      const status = (code: number) => send(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, message: `answered ${code}` });
      if (req.method === 'GET' && url.includes('/validatingadmissionpolic')) {
        if (api.policyAnswer !== 'ok') return status(api.policyAnswer);
        return send(200, url.includes('bindings') ? binding : policy);
      }
      if (req.method === 'POST' && url.startsWith(`/apis/thoughtgate.io/v1alpha1/namespaces/${NS}/approvaldecisions?`)) {
        api.probes.push(url.slice(url.indexOf('?')));
        if (api.probe === 'accepted') return send(201, JSON.parse(body));
        if (typeof api.probe === 'number') return status(api.probe);
        // As kube-apiserver words a refusal by the policy (see check/decision-enforcement.test.ts).
        return send(403, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          code: 403,
          reason: 'Forbidden',
          message: `approvaldecisions.thoughtgate.io "thoughtgate-operator-x7" is forbidden: ValidatingAdmissionPolicy '${DECISION_POLICY_NAME}' with binding '${DECISION_POLICY_NAME}' denied request: spec.user.username must be your own username`,
        });
      }
      if (req.method === 'GET' && url === `/apis/thoughtgate.io/v1alpha1/namespaces/${NS}/approvalrequests/r1`) return send(200, request);
      if (req.method === 'PATCH' && url === `/apis/thoughtgate.io/v1alpha1/namespaces/${NS}/approvalrequests/r1/status`) {
        api.requestWrites++;
        if (api.requestPatch !== 200) return status(api.requestPatch);
        return send(200, { ...request, status: { ...request.status, ...(JSON.parse(body) as { status: object }).status } });
      }
      if (req.method === 'PATCH' && url === `/apis/thoughtgate.io/v1alpha1/namespaces/${NS}/approvaldecisions/d1/status`) {
        api.decisionStatus.push((JSON.parse(body) as { status: unknown }).status);
        return send(200, decision);
      }
      if (req.method === 'POST' && url === `/api/v1/namespaces/${NS}/events`) {
        const e = JSON.parse(body) as { reason: string; type: string; message: string };
        api.events.push({ reason: e.reason, type: e.type, message: e.message });
        return send(201, e);
      }
      status(404);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }, { name: 'op' });
  const log = createLogger('error', () => undefined);
  const ctx = {
    kc,
    log,
    events: new EventRecorder(kc, 'test', log),
    enqueue: () => undefined,
    cache: (source: unknown) => ({
      list: () => [],
      get: (name: string) =>
        source === APPROVAL_DECISIONS && name === 'd1' ? decision : source === APPROVAL_CHANNELS && name === 'oncall' ? channel : undefined,
    }),
  } as unknown as ControllerContext<ObjectKey>;
  const reconciler = approvalDecisionController().setup(ctx);
  return {
    reconcile: () => reconciler.reconcile({ namespace: NS, name: 'd1' }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Runs `fn` against a controller and a fresh API server answering as `over` says; closes it after. */
async function withController(over: Partial<Api>, fn: (reconcile: () => Promise<void>, api: Api) => Promise<void>): Promise<void> {
  const api: Api = { policyAnswer: 'ok', probe: 'enforced', probes: [], requestPatch: 200, decisionStatus: [], requestWrites: 0, events: [], ...over };
  const c = await start(api);
  try {
    await fn(c.reconcile, api);
  } finally {
    await c.close();
  }
}

test.each([403, 500, 503])('a %i reading the identity policy leaves the decision open (retried), and it counts once the read works', (code) =>
  withController({ policyAnswer: code }, async (reconcile, api) => {
    await expect(reconcile()).rejects.toThrow(code === 403 ? /may not read the ValidatingAdmissionPolicy/ : /cannot read the ValidatingAdmissionPolicy/);
    expect(api.decisionStatus).toEqual([]);
    expect(api.requestWrites).toBe(0);
    api.policyAnswer = 'ok';
    await reconcile();
    expect(api.requestWrites).toBe(1);
    expect(api.decisionStatus).toEqual([expect.objectContaining({ phase: 'Counted' })]);
  }),
);

test('no policy installed is definitive: the decision is Ignored with its reason', () =>
  withController({ policyAnswer: 404 }, async (reconcile, api) => {
    await reconcile();
    expect(api.decisionStatus).toEqual([expect.objectContaining({ phase: 'Ignored', reason: 'IdentityUnverified' })]);
    expect(api.requestWrites).toBe(0);
  }));

test('a request that keeps changing (409 on every write) is retried with backoff, said in an Event, and the decision stays open', () =>
  withController({ requestPatch: 409 }, async (reconcile, api) => {
    await expect(reconcile()).rejects.toThrow(/changed 5 times while this decision was being counted/);
    expect(api.requestWrites).toBe(5);
    expect(api.decisionStatus).toEqual([]);
    expect(api.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'CountRetried' })]);
  }));

test('a decision counts only once a dry run in a name nobody has is refused by the identity policy (the API server enforces it)', () =>
  withController({}, async (reconcile, api) => {
    await reconcile();
    expect(api.probes).toEqual(['?dryRun=All']);
    expect(api.decisionStatus).toEqual([expect.objectContaining({ phase: 'Counted' })]);
  }));

test('the policy installed as shipped but a dry run in a name nobody has accepted (admission plugin off): Ignored, nothing counted', () =>
  withController({ probe: 'accepted' }, async (reconcile, api) => {
    await reconcile();
    expect(api.probes).toEqual(['?dryRun=All']);
    expect(api.requestWrites).toBe(0);
    expect(api.decisionStatus).toEqual([
      expect.objectContaining({ phase: 'Ignored', reason: 'IdentityUnverified', message: expect.stringContaining('installed but not enforced') }),
    ]);
    expect(api.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'IdentityUnverified' })]);
  }));

test.each([
  [403, /may not create a dry-run ApprovalDecision/],
  [500, /cannot prove the identity policy .* is enforced now/],
])('a dry run refused by something else (%i) proves nothing: the decision stays open and counts once the proof works', (code, said) =>
  withController({ probe: code }, async (reconcile, api) => {
    await expect(reconcile()).rejects.toThrow(said);
    expect(api.requestWrites).toBe(0);
    expect(api.decisionStatus).toEqual([]);
    api.probe = 'enforced';
    await reconcile();
    expect(api.decisionStatus).toEqual([expect.objectContaining({ phase: 'Counted' })]);
  }),
);

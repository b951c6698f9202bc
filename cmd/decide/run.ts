// `thoughtgate approve|reject NAME`: who am I (SelfSubjectReview) → the ApprovalRequest (is it
// still open?) → an ApprovalDecision created as me → wait until the operator counted or ignored it.
// The identity written into spec.user is the API server's own answer, so the admission policy
// (api/approval-decision.ts) accepts it; a hand-written one that differs is refused there.
import type { KubeConfig } from '@kubernetes/client-node';
import { APPROVAL_DECISION_KIND, type ApprovalDecisionSpec, type ApprovalDecisionStatus, type DecisionUser } from '../../api/approval-decision.js';
import { APPROVAL_REQUEST_KIND, TERMINAL_PHASES, type ApprovalPhase, type ApprovalRequestStatus } from '../../api/approval-request.js';
import { API_VERSION } from '../../api/wellknown.js';
import { KubeError } from '../../kube/protocol.js';
import type { Response, Transport } from '../../kube/transport.js';
import { loadKubeConfig, transportFromKubeConfig } from '../../operator/kube-transport.js';
import { decisionGenerateName, type DecideOptions } from './options.js';

/** Cannot start: bad kubeconfig, API server unreachable or refusing the credentials (exit 2). */
export class DecideSetupError extends Error {}

interface Deps {
  /** Instead of loading a kubeconfig (tests). */
  transport?: Transport;
  write?: (text: string) => void;
  now?: () => Date;
  pollMs?: number;
}

type Obj<S, T> = { metadata: { name: string; namespace?: string }; spec?: S; status?: T };

const path = (ns: string, plural: string, name?: string) => `/apis/${API_VERSION}/namespaces/${ns}/${plural}${name ? `/${name}` : ''}`;

async function send(t: Transport, what: string, method: 'GET' | 'POST', p: string, body?: unknown): Promise<Response> {
  try {
    return await t.request({ method, path: p, what, ...(body !== undefined ? { body: JSON.stringify(body), contentType: 'application/json' } : {}) });
  } catch (err) {
    throw new DecideSetupError(`cannot reach the Kubernetes API server at ${t.server}: ${(err as Error).message}`);
  }
}

/** The Status message of an error answer, else the body's start. */
function apiMessage(r: Response): string {
  try {
    const m = (JSON.parse(r.body) as { message?: unknown }).message;
    if (typeof m === 'string' && m) return m;
  } catch {
    // not a Status (a proxy's page): its start below
  }
  return `HTTP ${r.status}: ${r.body.slice(0, 200).trim()}`;
}

/** Who the API server says we are (authentication.k8s.io/v1, GA in 1.28; no RBAC needed). */
export async function whoAmI(t: Transport): Promise<DecisionUser> {
  const r = await send(t, 'create SelfSubjectReview', 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  if (r.status === 401) throw new DecideSetupError(`the API server at ${t.server} refused your credentials (expired or not of this cluster)`);
  if (r.status !== 200 && r.status !== 201)
    throw new DecideSetupError(`cannot learn who you are (SelfSubjectReview, Kubernetes 1.28 or later): ${apiMessage(r)}`);
  const u = (JSON.parse(r.body) as { status?: { userInfo?: { username?: string; groups?: string[]; uid?: string } } }).status?.userInfo;
  if (!u?.username) throw new DecideSetupError('the API server did not say who you are (SelfSubjectReview without a username)');
  return { username: u.username, groups: u.groups ?? [], ...(u.uid ? { uid: u.uid } : {}) };
}

export async function decide(o: DecideOptions, deps: Deps = {}): Promise<number> {
  const write = deps.write ?? ((s: string) => void process.stdout.write(s));
  let kc: KubeConfig | undefined;
  if (!deps.transport) {
    try {
      kc = await loadKubeConfig(o);
    } catch (err) {
      throw new DecideSetupError((err as Error).message);
    }
  }
  const t =
    deps.transport ?? transportFromKubeConfig(kc!, { userAgent: 'thoughtgate-decide', connections: 2, connectTimeoutMs: 5_000, requestTimeoutMs: 15_000 });
  const ns = o.namespace ?? kc?.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const verb = o.decision === 'Approve' ? 'approve' : 'reject';
  try {
    const user = await whoAmI(t);
    const outcome = (await stillOpen(t, ns, o.name, (deps.now ?? (() => new Date()))())) ?? (await create(t, ns, o, user));
    if (typeof outcome === 'string') {
      write(`thoughtgate ${verb}: ${outcome}\n`);
      return 1;
    }
    if (o.waitMs === 0) {
      write(`ApprovalDecision ${ns}/${outcome.name} created (${verb} ${o.name} as ${user.username}); not waiting for the operator\n`);
      return 0;
    }
    const r = await outcomeOf(t, ns, outcome.name, o.waitMs, deps.pollMs ?? 500);
    if (r.ok) {
      write(`ApprovalDecision ${ns}/${outcome.name}: ${verb} by ${user.username} ${r.text}\n`);
      return 0;
    }
    write(`thoughtgate ${verb}: ApprovalDecision ${ns}/${outcome.name} ${r.text}\n`);
    return 1;
  } catch (err) {
    if (err instanceof KubeError) throw new DecideSetupError(err.message);
    throw err;
  } finally {
    if (!deps.transport) await t.close();
  }
}

/** Why the request cannot be decided (not found, already decided, expired), or null when it can (or cannot be read). */
async function stillOpen(t: Transport, ns: string, name: string, now: Date): Promise<string | null> {
  const rr = await send(t, `get ApprovalRequest ${ns}/${name}`, 'GET', path(ns, APPROVAL_REQUEST_KIND.plural, name));
  if (rr.status === 404) return `there is no ApprovalRequest "${name}" in namespace ${ns} (${apiMessage(rr)})`;
  // 403: this user may decide without reading requests; the operator checks the rest.
  if (rr.status === 403) return null;
  if (rr.status !== 200) return `cannot read ApprovalRequest ${ns}/${name}: ${apiMessage(rr)}`;
  const req = JSON.parse(rr.body) as Obj<{ expiresAt?: string }, ApprovalRequestStatus>;
  const phase = req.status?.phase;
  if (phase && TERMINAL_PHASES.has(phase as ApprovalPhase)) {
    const by = req.status?.decidedBy?.map((b) => b.name ?? b.id).join(', ');
    return `ApprovalRequest ${ns}/${name} is already ${phase}${by ? ` (by ${by})` : ''}${req.status?.message ? `: ${req.status.message}` : ''}`;
  }
  if (Date.parse(req.spec?.expiresAt ?? '') <= now.getTime()) return `ApprovalRequest ${ns}/${name} expired at ${req.spec?.expiresAt}; the call is rejected`;
  return null;
}

/** Creates the decision as `user`: its name, or why the API server refused it. */
async function create(t: Transport, ns: string, o: DecideOptions, user: DecisionUser): Promise<{ name: string } | string> {
  const spec: ApprovalDecisionSpec = { approvalRequest: o.name, decision: o.decision, user, ...(o.reason ? { reason: o.reason } : {}) };
  const cr = await send(t, `create ApprovalDecision in ${ns}`, 'POST', path(ns, APPROVAL_DECISION_KIND.plural), {
    apiVersion: API_VERSION,
    kind: APPROVAL_DECISION_KIND.kind,
    metadata: { generateName: decisionGenerateName(o.name), namespace: ns },
    spec,
  });
  if (cr.status === 403)
    return (
      `forbidden: ${user.username} may not create approvaldecisions.thoughtgate.io in namespace ${ns} (${apiMessage(cr)}); ` +
      'ask for a Role that allows it (docs/approvals.md, "Deciding from kubectl")'
    );
  if (cr.status === 404) return `the API server does not serve ApprovalDecisions (is this ThoughtGate's version installed? ${apiMessage(cr)})`;
  if (cr.status !== 201 && cr.status !== 200) return `the API server refused the decision: ${apiMessage(cr)}`;
  return { name: (JSON.parse(cr.body) as Obj<unknown, unknown>).metadata.name };
}

/** Waits (bounded) until the operator counted or ignored the decision. */
async function outcomeOf(t: Transport, ns: string, name: string, waitMs: number, pollMs: number): Promise<{ ok: boolean; text: string }> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const g = await send(t, `get ApprovalDecision ${ns}/${name}`, 'GET', path(ns, APPROVAL_DECISION_KIND.plural, name));
    if (g.status === 403) return { ok: true, text: 'created; you may not read it back (get on approvaldecisions), so its outcome is not shown' };
    const s = g.status === 200 ? (JSON.parse(g.body) as Obj<unknown, ApprovalDecisionStatus>).status : undefined;
    if (s?.phase === 'Counted') {
      return { ok: true, text: `counted. The ApprovalRequest is ${s.requestPhase ?? 'pending'}${s.approvals ? ` (approvals ${s.approvals})` : ''}` };
    }
    if (s?.phase === 'Ignored') return { ok: false, text: `was not counted (${s.reason ?? 'Ignored'}): ${s.message ?? ''}` };
    if (Date.now() + pollMs > deadline) {
      return {
        ok: false,
        text: `was created, but the operator did not count it within ${Math.round(waitMs / 1000)}s (is it running?); see kubectl get approvaldecision ${name} -n ${ns}`,
      };
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

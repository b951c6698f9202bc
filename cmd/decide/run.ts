// `thoughtgate approve|reject NAME`: who am I (SelfSubjectReview) → the ApprovalRequest (is it
// still open? its uid) → an ApprovalDecision created as me, owned by the request → wait until the
// operator counted or ignored it. The identity written into spec.user is the API server's own
// answer (the impersonated user's, with --as or a kubeconfig's `as`), so the admission policy
// (api/approval-decision.ts) accepts it; a hand-written one that differs is refused there.
// Every step is bounded (requests, the exec credential plugin, the wait) and Ctrl-C says what was
// left behind (exit 130).
import { setTimeout as sleep } from 'node:timers/promises';
import { APPROVAL_DECISION_KIND, type ApprovalDecisionSpec, type ApprovalDecisionStatus, type DecisionUser } from '../../api/approval-decision.js';
import { APPROVAL_REQUEST_KIND, TERMINAL_PHASES, type ApprovalPhase, type ApprovalRequestStatus } from '../../api/approval-request.js';
import { API_VERSION } from '../../api/wellknown.js';
import { KubeError } from '../../kube/protocol.js';
import type { Response, Transport } from '../../kube/transport.js';
import { apiMessage, DecideSetupError, jsonAnswer } from './answers.js';
import { CredentialError } from './exec-credential.js';
import { impersonationSource } from './impersonation.js';
import { connect, type ConnectDeps } from './kubeconfig.js';
import { decisionGenerateName, type DecideOptions } from './options.js';

export { DecideSetupError } from './answers.js';

/** The exit status after Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

interface Deps {
  /** Instead of loading a kubeconfig (tests); `namespace` is then the context's. */
  transport?: Transport;
  namespace?: string;
  /** How the kubeconfig's exec plugin is run (tests). */
  connect?: Pick<ConnectDeps, 'env' | 'stdinIsTTY' | 'execTimeoutMs'>;
  write?: (text: string) => void;
  /** Messages that are no result: notes, interruptions (default stderr). */
  warn?: (text: string) => void;
  now?: () => Date;
  pollMs?: number;
  /** Instead of Ctrl-C (tests). */
  signal?: AbortSignal;
}

type Obj<S, T> = { metadata?: { name?: string; namespace?: string; uid?: string }; spec?: S; status?: T };

const path = (ns: string, plural: string, name?: string) => `/apis/${API_VERSION}/namespaces/${ns}/${plural}${name ? `/${name}` : ''}`;

interface Call {
  t: Transport;
  signal: AbortSignal;
}

async function send(c: Call, what: string, method: 'GET' | 'POST', p: string, body?: unknown): Promise<Response> {
  try {
    return await c.t.request({
      method,
      path: p,
      what,
      signal: c.signal,
      ...(body !== undefined ? { body: JSON.stringify(body), contentType: 'application/json' } : {}),
    });
  } catch (err) {
    if (c.signal.aborted) throw err;
    if (err instanceof CredentialError) throw new DecideSetupError(err.message);
    const refused = refusedHeader(err);
    if (refused) throw new DecideSetupError(`cannot ${what}: ${refused}`);
    throw new DecideSetupError(`cannot reach the Kubernetes API server at ${c.t.server}: ${(err as Error).message}`);
  }
}

/**
 * The header the HTTP client refused to send (undici's "invalid X header"), named with the flag it
 * came from: nothing was sent, so it is no network trouble.
 */
function refusedHeader(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause?.code !== 'UND_ERR_INVALID_ARG' || typeof cause.message !== 'string') return undefined;
  const header = /^invalid (\S+) header$/.exec(cause.message)?.[1];
  if (!header) return undefined;
  const source = impersonationSource(header);
  return `the ${header} header${source ? ` (from ${source})` : ''} is not a value an HTTP header can carry`;
}

/** Who the API server says we are (authentication.k8s.io/v1, GA in 1.28; no RBAC needed). */
export async function whoAmI(c: Call): Promise<DecisionUser> {
  const what = 'create SelfSubjectReview';
  const r = await send(c, what, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  if (r.status === 401) throw new DecideSetupError(`the API server at ${c.t.server} refused your credentials (expired or not of this cluster)`);
  if (r.status === 403)
    throw new DecideSetupError(
      `the API server at ${c.t.server} refused to say who you are: ${apiMessage(r)} (to act as someone else, with --as or a kubeconfig's "as", you need the impersonate verb)`,
    );
  if (r.status !== 200 && r.status !== 201)
    throw new DecideSetupError(`cannot learn who you are (SelfSubjectReview, Kubernetes 1.28 or later): ${apiMessage(r)}`);
  const u = jsonAnswer<{ status?: { userInfo?: { username?: unknown; groups?: unknown; uid?: unknown } } }>(r, c.t.server, what).status?.userInfo;
  if (typeof u?.username !== 'string' || !u.username)
    throw new DecideSetupError('the API server did not say who you are (SelfSubjectReview without a username)');
  const groups = Array.isArray(u.groups) ? u.groups.filter((g): g is string => typeof g === 'string') : [];
  return { username: u.username, groups, ...(typeof u.uid === 'string' && u.uid ? { uid: u.uid } : {}) };
}

/** Where a run got to, for the message after Ctrl-C or a failure. */
interface Progress {
  ns: string;
  stage: 'before' | 'creating' | 'created';
  decision?: string;
}

export async function decide(o: DecideOptions, deps: Deps = {}): Promise<number> {
  const write = deps.write ?? ((s: string) => void process.stdout.write(s));
  const warn = deps.warn ?? ((s: string) => void process.stderr.write(s));
  const verb = o.decision === 'Approve' ? 'approve' : 'reject';
  // Ctrl-C aborts whatever is in flight (a request, the plugin, the wait); a second one kills.
  const ctrlC = new AbortController();
  const onSigint = () => ctrlC.abort();
  if (!deps.signal) process.once('SIGINT', onSigint);
  const signal = deps.signal ?? ctrlC.signal;
  const progress: Progress = { ns: o.namespace ?? deps.namespace ?? 'default', stage: 'before' };
  let t = deps.transport;
  try {
    if (!t) {
      try {
        const c = await connect(o, { ...deps.connect, signal, stderr: warn });
        t = c.transport;
        progress.ns = o.namespace ?? c.namespace ?? 'default';
      } catch (err) {
        if (signal.aborted) throw err;
        throw new DecideSetupError((err as Error).message);
      }
    }
    const ns = progress.ns;
    const call: Call = { t, signal };
    const user = await whoAmI(call);
    const open = await readRequest(call, ns, o.name, (deps.now ?? (() => new Date()))());
    if (typeof open === 'string') {
      write(`thoughtgate ${verb}: ${open}\n`);
      return 1;
    }
    progress.stage = 'creating';
    const outcome = await create(call, ns, o, user, open.uid);
    if (typeof outcome === 'string') {
      write(`thoughtgate ${verb}: ${outcome}\n`);
      return 1;
    }
    progress.stage = 'created';
    progress.decision = outcome.name;
    if (!open.uid)
      warn(
        `thoughtgate ${verb}: note: you may not read ApprovalRequest ${ns}/${o.name}, so the decision has no ownerReference ` +
          'and is not deleted with the request (get on approvalrequests, docs/approvals.md)\n',
      );
    if (o.waitMs === 0) {
      write(`ApprovalDecision ${ns}/${outcome.name} created (${verb} ${o.name} as ${user.username}); not waiting for the operator\n`);
      return 0;
    }
    const r = await outcomeOf(call, ns, outcome.name, o.waitMs, deps.pollMs ?? 500);
    if (r.ok) {
      write(`ApprovalDecision ${ns}/${outcome.name}: ${verb} by ${user.username} ${r.text}\n`);
      return 0;
    }
    write(`thoughtgate ${verb}: ApprovalDecision ${ns}/${outcome.name} ${r.text}\n`);
    return 1;
  } catch (err) {
    if (signal.aborted) {
      warn(`thoughtgate ${verb}: ${interruptedText(progress)}\n`);
      return EXIT_INTERRUPTED;
    }
    const e = err instanceof KubeError ? new DecideSetupError(err.message) : err;
    if (e instanceof DecideSetupError && progress.stage !== 'before')
      e.message +=
        progress.stage === 'created'
          ? `; the decision was created as ${progress.ns}/${progress.decision} (kubectl get approvaldecision ${progress.decision} -n ${progress.ns})`
          : `; the decision may have been created (kubectl get approvaldecisions -n ${progress.ns})`;
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
    if (!deps.transport) await t?.close();
  }
}

/** What Ctrl-C left behind (pure). */
export function interruptedText(p: Progress): string {
  if (p.stage === 'created')
    return `interrupted; the decision was created as ${p.ns}/${p.decision}; the request is still pending (kubectl get approvaldecision ${p.decision} -n ${p.ns} shows whether the operator counted it)`;
  if (p.stage === 'creating') return `interrupted while creating the decision; it may have been created (kubectl get approvaldecisions -n ${p.ns})`;
  return 'interrupted; no decision was created';
}

/**
 * Why the request cannot be decided (not found, already decided, expired), or its uid (for the
 * ownerReference) when it can; no uid when this user may not read requests.
 */
async function readRequest(c: Call, ns: string, name: string, now: Date): Promise<string | { uid?: string }> {
  const what = `get ApprovalRequest ${ns}/${name}`;
  const rr = await send(c, what, 'GET', path(ns, APPROVAL_REQUEST_KIND.plural, name));
  if (rr.status === 404) return `there is no ApprovalRequest "${name}" in namespace ${ns} (${apiMessage(rr)})`;
  // 403: this user may decide without reading requests; the operator checks the rest.
  if (rr.status === 403) return {};
  if (rr.status !== 200) return `cannot read ApprovalRequest ${ns}/${name}: ${apiMessage(rr)}`;
  const req = jsonAnswer<Obj<{ expiresAt?: string }, ApprovalRequestStatus>>(rr, c.t.server, what);
  const phase = req.status?.phase;
  if (phase && TERMINAL_PHASES.has(phase as ApprovalPhase)) {
    const by = req.status?.decidedBy?.map((b) => b.name ?? b.id).join(', ');
    return `ApprovalRequest ${ns}/${name} is already ${phase}${by ? ` (by ${by})` : ''}${req.status?.message ? `: ${req.status.message}` : ''}`;
  }
  if (Date.parse(req.spec?.expiresAt ?? '') <= now.getTime()) return `ApprovalRequest ${ns}/${name} expired at ${req.spec?.expiresAt}; the call is rejected`;
  const uid = req.metadata?.uid;
  return typeof uid === 'string' && uid ? { uid } : {};
}

/**
 * The decision's ownerReference: deleting the request (the operator deletes finished ones) lets
 * the garbage collector delete its decisions. Not a controller reference, and it does not block
 * the request's deletion (that would need delete on requests under OwnerReferencesPermissionEnforcement).
 */
export const ownerReference = (request: string, uid: string) => ({
  apiVersion: API_VERSION,
  kind: APPROVAL_REQUEST_KIND.kind,
  name: request,
  uid,
  controller: false,
  blockOwnerDeletion: false,
});

/** Creates the decision as `user`: its name, or why the API server refused it. */
async function create(c: Call, ns: string, o: DecideOptions, user: DecisionUser, requestUid: string | undefined): Promise<{ name: string } | string> {
  const spec: ApprovalDecisionSpec = { approvalRequest: o.name, decision: o.decision, user, ...(o.reason ? { reason: o.reason } : {}) };
  const what = `create ApprovalDecision in ${ns}`;
  const cr = await send(c, what, 'POST', path(ns, APPROVAL_DECISION_KIND.plural), {
    apiVersion: API_VERSION,
    kind: APPROVAL_DECISION_KIND.kind,
    metadata: {
      generateName: decisionGenerateName(o.name),
      namespace: ns,
      ...(requestUid ? { ownerReferences: [ownerReference(o.name, requestUid)] } : {}),
    },
    spec,
  });
  if (cr.status === 403)
    return (
      `forbidden: ${user.username} may not create approvaldecisions.thoughtgate.io in namespace ${ns} (${apiMessage(cr)}); ` +
      'ask for a Role that allows it (docs/approvals.md, "Deciding from kubectl")'
    );
  if (cr.status === 404) return `the API server does not serve ApprovalDecisions (is this ThoughtGate's version installed? ${apiMessage(cr)})`;
  if (cr.status !== 201 && cr.status !== 200) return `the API server refused the decision: ${apiMessage(cr)}`;
  const name = jsonAnswer<Obj<unknown, unknown>>(cr, c.t.server, what).metadata?.name;
  if (typeof name !== 'string' || !name) throw new DecideSetupError(`the API server at ${c.t.server} answered the create without a name`);
  return { name };
}

/**
 * Waits (bounded) until the operator counted or ignored the decision. A failed read (network,
 * a 5xx, a proxy's page) is tried again until the deadline, which then names it.
 */
async function outcomeOf(c: Call, ns: string, name: string, waitMs: number, pollMs: number): Promise<{ ok: boolean; text: string }> {
  const deadline = Date.now() + waitMs;
  const what = `get ApprovalDecision ${ns}/${name}`;
  let problem = '';
  for (;;) {
    try {
      const g = await send(c, what, 'GET', path(ns, APPROVAL_DECISION_KIND.plural, name));
      if (g.status === 403) return { ok: true, text: 'created; you may not read it back (get on approvaldecisions), so its outcome is not shown' };
      if (g.status === 404) return { ok: false, text: 'was deleted before the operator counted it (with its ApprovalRequest?)' };
      if (g.status !== 200) problem = apiMessage(g);
      else {
        const s = jsonAnswer<Obj<unknown, ApprovalDecisionStatus>>(g, c.t.server, what).status;
        problem = '';
        if (s?.phase === 'Counted')
          return { ok: true, text: `counted. The ApprovalRequest is ${s.requestPhase ?? 'pending'}${s.approvals ? ` (approvals ${s.approvals})` : ''}` };
        if (s?.phase === 'Ignored') return { ok: false, text: `was not counted (${s.reason ?? 'Ignored'}): ${s.message ?? ''}` };
      }
    } catch (err) {
      if (c.signal.aborted || !(err instanceof DecideSetupError)) throw err;
      problem = err.message;
    }
    if (Date.now() + pollMs > deadline) {
      return {
        ok: false,
        text: problem
          ? `was created, but could not be read back within ${Math.round(waitMs / 1000)}s: ${problem}; see kubectl get approvaldecision ${name} -n ${ns}`
          : `was created, but the operator did not count it within ${Math.round(waitMs / 1000)}s (is it running?); see kubectl get approvaldecision ${name} -n ${ns}`,
      };
    }
    await sleep(pollMs, undefined, { signal: c.signal });
  }
}

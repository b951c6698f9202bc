// The cluster approval backend: each pending approval is an ApprovalRequest in the pod's
// namespace; the operator relays it to Slack and writes the decision into its status. This side
// creates the requests, watches the pod's own requests and turns each terminal phase into one
// Decision, and records cancellation, the start of execution (at most once) and the result.
//
// The watch is kube/'s reflector over the pod's requests (by label): list, watch from the list's
// resourceVersion, resume, list again on 410, back off on failures, restart a silent watch; its
// store is the cache adopt() reads. Decisions are read from status, so one missed while the watch
// was down is found by the next list.
//
// Which approvals emit a Decision: the ones this instance submitted, and the ones adopt()
// returned without a decision. adopt() returns an already decided request with its decision and
// that request is never emitted again. A request deleted before it ended (kubectl delete, the
// operator's clean-up) ends as `failed`: nobody can decide it any more.
import {
  ApprovalRequestSpecSchema,
  APPROVAL_ANNOTATIONS,
  APPROVAL_LABELS,
  APPROVAL_REQUEST_KIND,
  approvalLabelValue,
  approvalRequestName,
  resultAnnotation,
  TERMINAL_PHASES,
  type ApprovalPhase,
  type ApprovalRequestSpec,
} from '../../api/approval-request.js';
import { API_VERSION } from '../../api/wellknown.js';
import { isConflict, isNotFound, KubeError } from '../../kube/protocol.js';
import { startReflector, type ReflectorCounters, type ReflectorTuning } from '../../kube/reflector.js';
import { resourceClient } from '../../kube/resource.js';
import { APPROVAL_REQUESTS, isApprovalRequest, type ApprovalRequestObject } from '../../kube/resources.js';
import { createTransport, type Transport, type TransportOptions } from '../../kube/transport.js';
import { describeError } from '../../lib/describe-error.js';
import { parseTraceparent } from '../../lib/trace-context.js';
import type { Logger } from '../../lib/log.js';
import type { AdoptedApproval, ApprovalBackend, ApprovalWorkload, Decision, DecisionOutcome, PendingApproval } from './backend.js';
import type { A2aTarget } from './hash.js';

// ---------- pure ----------

/** spec.a2a for an A2A call's target: no tenant is an absent field (the hash's ""). */
function a2aSpec(t: A2aTarget): NonNullable<ApprovalRequestSpec['a2a']> {
  return { ...(t.tenant !== '' ? { tenant: t.tenant } : {}), version: t.version, binding: t.binding };
}

/** The ApprovalRequest a sidecar creates for a pending approval. */
export function approvalRequestFor(p: PendingApproval): ApprovalRequestObject {
  return {
    apiVersion: API_VERSION,
    kind: APPROVAL_REQUEST_KIND.kind,
    metadata: {
      name: approvalRequestName(p.id),
      namespace: p.workload.namespace,
      labels: { [APPROVAL_LABELS.pod]: approvalLabelValue(p.workload.pod), [APPROVAL_LABELS.source]: approvalLabelValue(p.source) },
      ...(p.traceparent !== undefined ? { annotations: { [APPROVAL_ANNOTATIONS.traceparent]: p.traceparent } } : {}),
    },
    spec: {
      channel: p.channel,
      workload: { namespace: p.workload.namespace, serviceAccount: p.workload.serviceAccount, pod: p.workload.pod },
      source: p.source,
      method: p.method,
      ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
      ...(p.target !== undefined ? { a2a: a2aSpec(p.target) } : {}),
      tool: p.tool,
      arguments: p.arguments,
      requestHash: p.requestHash,
      taskId: p.id,
      reason: p.reason.length > 1024 ? `${p.reason.slice(0, 1023)}…` : p.reason,
      ...(p.mcpSessionId !== undefined ? { mcpSessionId: p.mcpSessionId } : {}),
      ...(p.client !== undefined ? { owner: p.client } : {}),
      expiresAt: p.expiresAt.toISOString(),
      cancelRequested: false,
    },
  };
}

/** The PendingApproval an ApprovalRequest stands for, or why it cannot be one. */
export function pendingFromRequest(obj: ApprovalRequestObject): { pending: PendingApproval; executionStarted: boolean } | { error: string } {
  const parsed = ApprovalRequestSpecSchema().safeParse(obj.spec);
  if (!parsed.success) return { error: `spec is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  const s = parsed.data;
  const expiresAt = new Date(s.expiresAt);
  if (Number.isNaN(expiresAt.getTime())) return { error: `spec.expiresAt is not a time: ${s.expiresAt}` };
  const created = obj.metadata.creationTimestamp ? new Date(obj.metadata.creationTimestamp) : expiresAt;
  const pending: PendingApproval = {
    id: s.taskId,
    channel: s.channel,
    workload: { ...s.workload },
    source: s.source,
    method: s.method,
    tool: s.tool,
    arguments: s.arguments,
    requestHash: s.requestHash,
    reason: s.reason,
    createdAt: Number.isNaN(created.getTime()) ? expiresAt : created,
    expiresAt,
  };
  if (s.mcpSessionId !== undefined) pending.mcpSessionId = s.mcpSessionId;
  if (s.owner !== undefined) pending.client = s.owner;
  if (s.protocol === 'a2a') pending.protocol = 'a2a';
  if (s.a2a !== undefined) pending.target = { tenant: s.a2a.tenant ?? '', version: s.a2a.version, binding: s.a2a.binding };
  return { pending, executionStarted: s.executionStartedAt !== undefined };
}

const OUTCOME: Record<string, DecisionOutcome> = { Approved: 'approved', Rejected: 'rejected', Expired: 'expired', Cancelled: 'cancelled', Failed: 'failed' };

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The Decision in a request's status, or null while it is still open. */
export function decisionFromRequest(obj: ApprovalRequestObject, now: Date): Decision | null {
  const status = obj.status ?? {};
  const phase = str(status.phase) as ApprovalPhase | undefined;
  if (!phase || !TERMINAL_PHASES.has(phase)) return null;
  const outcome = OUTCOME[phase]!;
  const id = str(obj.spec?.taskId) ?? obj.metadata.name;
  const decidedAt = str(status.decidedAt) ? new Date(status.decidedAt as string) : now;
  const by = Array.isArray(status.decidedBy)
    ? (status.decidedBy as unknown[]).flatMap((b) => {
        const e = b as { id?: unknown; name?: unknown } | null;
        if (!e || typeof e.id !== 'string') return [];
        return [typeof e.name === 'string' ? { id: e.id, name: e.name } : { id: e.id }];
      })
    : [];
  const names = by.map((b) => b.name ?? b.id).join(', ');
  const fallback: Record<DecisionOutcome, string> = {
    approved: `approved${names ? ` by ${names}` : ''}`,
    rejected: `rejected${names ? ` by ${names}` : ''}`,
    expired: 'no decision before the approval timed out',
    cancelled: 'the approval was cancelled',
    failed: 'the approval failed',
  };
  const d: Decision = { id, outcome, at: Number.isNaN(decidedAt.getTime()) ? now : decidedAt, message: str(status.message) || fallback[outcome] };
  if (by.length) d.by = by;
  // The operator records the decision span in the call's trace (as a child of the wait span the
  // annotation names) only when the annotation parses, as it reads it; else the sidecar records it.
  if (parseTraceparent(obj.metadata.annotations?.[APPROVAL_ANNOTATIONS.traceparent]) !== null) d.tracedElsewhere = true;
  return d;
}

/** Finished: the sidecar executed it and recorded the result. */
export function isFinished(obj: ApprovalRequestObject): boolean {
  return obj.metadata.annotations?.[APPROVAL_ANNOTATIONS.result] !== undefined;
}

// ---------- the shell ----------

export interface ClusterBackendOptions extends ReflectorTuning {
  /** This pod: its ApprovalRequests are created in workload.namespace, labelled with its name. */
  workload: ApprovalWorkload;
  log: Logger;
  /** A transport to use (not closed by the backend); else one is made from clientOptions. */
  transport?: Transport;
  clientOptions?: TransportOptions;
  /** How long adopt() waits for the first list before it rejects with the last error. Default 30 s. */
  adoptWaitMs?: number;
  now?: () => Date;
}

export interface ClusterBackendState {
  phase: 'listing' | 'connecting' | 'watching' | 'backoff' | 'closed';
  resourceVersion: string;
  lastError: string | null;
  /** Approvals this instance answers for that have not ended yet. */
  open: number;
  counters: ReflectorCounters & { decisions: number };
}

export interface ClusterApprovalBackend extends ApprovalBackend {
  state(): ClusterBackendState;
}

/** What a sidecar may do to ApprovalRequests (the thoughtgate-sidecar Role grants exactly this). */
const APPROVALS_RBAC = 'create, get, list, watch and patch on approvalrequests.thoughtgate.io in its namespace (the thoughtgate-sidecar Role)';

interface Tracked {
  id: string;
  /** creating: the POST has not answered yet, so a list without it proves nothing. */
  created: boolean;
  emitted: boolean;
}

export function createClusterBackend(o: ClusterBackendOptions): ClusterApprovalBackend {
  const { log, workload } = o;
  const namespace = workload.namespace;
  const selector = { [APPROVAL_LABELS.pod]: approvalLabelValue(workload.pod) };
  const now = o.now ?? (() => new Date());
  const ownTransport = !o.transport;
  const transport: Transport = o.transport ?? createTransport({ userAgent: 'thoughtgate-sidecar', ...o.clientOptions });
  const requests = resourceClient<ApprovalRequestObject>(transport, APPROVAL_REQUESTS, { is: isApprovalRequest, rbacHint: APPROVALS_RBAC });
  const where = `ApprovalRequests in ${namespace} (pod ${workload.pod})`;

  let open = 0;
  let decisions = 0;
  const tracked = new Map<string, Tracked>();
  const executing = new Set<string>();
  let onDecisionCb: ((d: Decision) => void) | null = null;
  const undelivered: Decision[] = [];
  let closed = false;

  const describe = describeError;
  const mine = (obj: ApprovalRequestObject) => (obj.spec?.workload as { pod?: unknown } | undefined)?.pod === workload.pod;

  const deliver = (d: Decision): void => {
    decisions++;
    if (!onDecisionCb) {
      undelivered.push(d);
      return;
    }
    try {
      onDecisionCb(d);
    } catch (err) {
      log.error('approval decision handler failed', { id: d.id, error: describe(err) });
    }
  };

  const countOpen = () => {
    open = [...tracked.values()].filter((t) => !t.emitted).length;
  };

  const emit = (name: string, t: Tracked, d: Decision): void => {
    if (t.emitted) return;
    t.emitted = true;
    countOpen();
    log.info('approval request decided', { id: t.id, approvalRequest: `${namespace}/${name}`, outcome: d.outcome, by: d.by?.map((b) => b.name ?? b.id) });
    deliver({ ...d, id: t.id });
  };

  /** Called with every version of one of our requests: emits its decision once it has one. */
  const consider = (obj: ApprovalRequestObject): void => {
    const t = tracked.get(obj.metadata.name);
    if (!t || t.emitted) return;
    const d = decisionFromRequest(obj, now());
    if (d) emit(obj.metadata.name, t, d);
  };

  const gone = (name: string, how: string): void => {
    const t = tracked.get(name);
    if (!t || t.emitted) return;
    emit(name, t, { id: t.id, outcome: 'failed', at: now(), message: `the ApprovalRequest ${namespace}/${name} was deleted ${how}before a decision` });
  };

  /** A request we created is missing from a list: check it really is gone before failing it. */
  const checkMissing = (name: string): void => {
    requests.get(name, namespace).then(
      (obj) => {
        if (closed) return;
        if (obj === null) gone(name, '');
        else if (mine(obj)) consider(obj);
      },
      (err: unknown) =>
        log.warn('could not check a missing ApprovalRequest; the next list will', { approvalRequest: `${namespace}/${name}`, error: describe(err) }),
    );
  };

  const reflector = startReflector<ApprovalRequestObject>({
    source: requests.listWatch({ namespace, labelSelector: selector }),
    // Watch events; a list's changes are handled whole in onList.
    onChangeError: (err, c) => o.log.error('approval request event could not be handled', { name: c.object.metadata.name, error: describeError(err) }),
    onChange: (c, relist) => {
      if (relist || !mine(c.object)) return;
      if (c.type === 'delete') gone(c.object.metadata.name, '');
      else consider(c.object);
    },
    onList: (items) => {
      const names = new Set<string>();
      for (const obj of items) {
        if (!mine(obj)) continue;
        names.add(obj.metadata.name);
        consider(obj);
      }
      for (const [name, t] of tracked) if (t.created && !t.emitted && !names.has(name)) checkMissing(name);
    },
    onRead: (afterError) => {
      if (afterError) log.info('watching approval requests again', { where, resourceVersion: reflector.state().resourceVersion });
    },
    onWatchdog: (silentMs) => log.warn('approval watch went silent; restarting it', { where, silentMs }),
    onGone: (rv) => log.info('approval watch expired (410); listing again', { where, resourceVersion: rv }),
    onFailure: (err, delay) => {
      const status = err instanceof KubeError ? err.status : undefined;
      // Decisions cannot arrive while this fails: an error when it is not a passing blip.
      log[status === 401 || status === 403 || (err instanceof KubeError && err.kind === 'config') ? 'error' : 'warn'](
        'cannot watch approval requests; retrying',
        { where, server: transport.server, error: describe(err), retryInMs: delay },
      );
    },
    watchdogMs: o.watchdogMs,
    backoffBaseMs: o.backoffBaseMs,
    backoffMaxMs: o.backoffMaxMs,
    watchTimeoutSeconds: o.watchTimeoutSeconds,
  });

  const nameOf = (id: string) => approvalRequestName(id);

  /** Waits for the first list (adopt needs the full picture), or rejects with why it is not there. */
  const firstList = (): Promise<void> => {
    if (reflector.isSynced()) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`cannot list ${where}: ${reflector.state().lastError ?? 'the API server did not answer in time'}`)),
        o.adoptWaitMs ?? 30_000,
      );
    });
    return Promise.race([reflector.synced(), timeout]).finally(() => clearTimeout(timer));
  };

  const failText = (what: string, err: unknown) => `${where}: cannot ${what}: ${describe(err)}`;

  return {
    description: where,

    state: () => {
      const r = reflector.state();
      return { phase: closed ? 'closed' : r.phase, resourceVersion: r.resourceVersion, lastError: r.lastError, open, counters: { ...r.counters, decisions } };
    },

    async submit(p) {
      if (closed) throw new Error(`${where}: the approval backend is closed`);
      if (p.workload.namespace !== namespace || p.workload.pod !== workload.pod) {
        throw new Error(`${where}: an approval for ${p.workload.namespace}/${p.workload.pod} cannot be submitted from this pod`);
      }
      const name = nameOf(p.id);
      if (tracked.has(name)) throw new Error(`${where}: approval ${p.id} was already submitted`);
      // Tracked before the POST: the watch may report the request (even decided) before the POST answers.
      const t: Tracked = { id: p.id, created: false, emitted: false };
      tracked.set(name, t);
      countOpen();
      const obj = approvalRequestFor(p);
      try {
        await requests.create(obj, { namespace });
      } catch (err) {
        if (isConflict(err)) {
          // A retry after an answer that got lost: the same request is fine, another one is not.
          const existing = await requests.get(name, namespace).catch(() => null);
          const s = existing?.spec ?? {};
          if (existing && s.taskId === p.id && s.requestHash === p.requestHash && mine(existing)) {
            t.created = true;
            consider(existing);
            return;
          }
          tracked.delete(name);
          countOpen();
          throw new Error(`${where}: cannot create ApprovalRequest ${name}: another request has that name (task ids must be unique)`);
        }
        tracked.delete(name);
        countOpen();
        throw new Error(failText(`create ApprovalRequest ${name}`, err), { cause: err });
      }
      t.created = true;
      log.info('approval request created', {
        id: p.id,
        approvalRequest: `${namespace}/${name}`,
        channel: p.channel,
        tool: p.tool,
        expiresAt: p.expiresAt.toISOString(),
      });
    },

    onDecision(cb) {
      onDecisionCb = cb;
      for (const d of undelivered.splice(0)) {
        try {
          cb(d);
        } catch (err) {
          log.error('approval decision handler failed', { id: d.id, error: describe(err) });
        }
      }
    },

    async cancel(id) {
      const name = nameOf(id);
      try {
        await requests.patch(name, { spec: { cancelRequested: true } }, 'merge', { namespace });
      } catch (err) {
        if (isNotFound(err)) return; // nothing left to cancel
        throw new Error(failText(`cancel ApprovalRequest ${name}`, err), { cause: err });
      }
    },

    async markExecuting(id) {
      const name = nameOf(id);
      if (executing.has(id)) throw new Error(`${where}: approval ${id} is already marked as executing`);
      executing.add(id);
      try {
        // The test makes the API server refuse unless the record says Approved; the CRD's rules
        // make executionStartedAt write-once, so a second attempt (another instance) fails too.
        await requests.patch(
          name,
          [
            { op: 'test', path: '/status/phase', value: 'Approved' },
            { op: 'add', path: '/spec/executionStartedAt', value: now().toISOString() },
          ],
          'json',
          { namespace },
        );
      } catch (err) {
        const e = err as KubeError;
        const why =
          e instanceof KubeError && (e.status === 422 || e.status === 409)
            ? `the request is not Approved or was already marked (${describe(err)})`
            : describe(err);
        throw new Error(`${where}: cannot mark ApprovalRequest ${name} as executing: ${why}`, { cause: err });
      }
    },

    async finished(id, result) {
      const name = nameOf(id);
      try {
        await requests.patch(name, { metadata: { annotations: { [APPROVAL_ANNOTATIONS.result]: resultAnnotation(result) } } }, 'merge', { namespace });
      } catch (err) {
        if (isNotFound(err)) {
          log.warn('approval result not recorded: the ApprovalRequest is gone', { id, approvalRequest: `${namespace}/${name}` });
          return;
        }
        throw new Error(failText(`record the result on ApprovalRequest ${name}`, err), { cause: err });
      }
    },

    async adopt() {
      await firstList();
      const out: AdoptedApproval[] = [];
      for (const obj of reflector.list(namespace)) {
        const name = obj.metadata.name;
        if (!mine(obj) || isFinished(obj) || tracked.has(name)) continue;
        const r = pendingFromRequest(obj);
        if ('error' in r) {
          log.warn('ignoring an ApprovalRequest this sidecar cannot use', { approvalRequest: `${namespace}/${name}`, error: r.error });
          continue;
        }
        const decision = decisionFromRequest(obj, now());
        tracked.set(name, { id: r.pending.id, created: true, emitted: decision !== null });
        const a: AdoptedApproval = { pending: r.pending, executionStarted: r.executionStarted };
        if (decision) a.decision = decision;
        out.push(a);
      }
      countOpen();
      if (out.length) log.info('adopted approvals', { where, count: out.length, decided: out.filter((a) => a.decision).length });
      return out;
    },

    async close() {
      if (closed) return;
      closed = true;
      await reflector.stop('approval backend closed');
      if (ownTransport) await transport.close();
    },
  };
}
